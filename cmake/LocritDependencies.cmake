# Every dependency comes from a Debian 12 package (see scripts/deps.sh).
find_package(SQLite3 REQUIRED)
find_package(fmt REQUIRED)
find_package(CLI11 REQUIRED)
find_package(Threads REQUIRED)
# Versioned Boost 1.81 packages only (1.74 and 1.81 exclude each other); Asio/Beast are header-only.
find_package(Boost 1.81 CONFIG REQUIRED COMPONENTS json url)
find_package(OpenSSL REQUIRED)
# The benchmarks reuse the test support library, which needs GoogleTest.
if(LOCRIT_BUILD_TESTS OR LOCRIT_BUILD_BENCH)
  find_package(GTest REQUIRED)
endif()
if(LOCRIT_BUILD_BENCH)
  find_package(benchmark REQUIRED)
endif()
find_program(CCACHE_PROGRAM ccache)
if(CCACHE_PROGRAM)
  set(CMAKE_CXX_COMPILER_LAUNCHER "${CCACHE_PROGRAM}")
endif()

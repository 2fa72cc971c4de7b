# Warnings for our own targets only; third-party headers come in as SYSTEM.
add_library(locrit_warnings INTERFACE)
target_compile_options(locrit_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast
  -Wcast-align -Wunused -Woverloaded-virtual
  -Wimplicit-fallthrough -Wformat=2)
if(LOCRIT_WERROR)
  target_compile_options(locrit_warnings INTERFACE -Werror)
endif()

// Memory store benchmarks, each next to its raw-SQLite baseline (filled in with the store work).
#include <benchmark/benchmark.h>

BENCHMARK_MAIN();

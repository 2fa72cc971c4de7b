// Memory manager benchmarks, each with its baseline in the same run:
//  - GroupCommit: 64 writer threads over 16 Locrits, durable (synchronous=FULL) acknowledgements,
//    group commit (max_batch 512) against one transaction per message (max_batch 1), with a work
//    pool of 4 and of 16 threads. Each Locrit has 4 writers with one write in flight each, so a
//    batch never holds more than 4 writes: group commit divides the per-commit cost (BEGIN, COMMIT,
//    shared pages, fsync) by at most 4, and its rate stays below 4x the baseline's whatever the
//    machine. cpu_us_per_ack (process CPU per acknowledged write) moves less with the load than
//    acked_per_s does, though a busy machine inflates it too.
//  - OpenThousand: open 1 000 Locrits of 100 messages each through the manager; time and the
//    process's resident memory with all of them open.
#include <benchmark/benchmark.h>
#include <malloc.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "memory/memory_manager.h"
#include "tests/support/store_fixture.h"
#include "tests/support/temp_dir.h"

namespace locrit {
namespace {

using ::locrit::testing::StoreHarness;
using ::locrit::testing::TempDir;

int64_t ResidentKiB() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return 0;
}

// User + system CPU time of the whole process so far, in seconds: per acknowledged write or per
// open, a figure that moves less with the machine's load than wall-clock rates do.
double ProcessCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

MemoryManager::Handle GetOrDie(MemoryManager& manager, const std::string& slug) {
  std::promise<Result<MemoryManager::Handle>> got;
  manager.Get(slug, {}, [&](Result<MemoryManager::Handle> r) { got.set_value(std::move(r)); });
  auto handle = got.get_future().get();
  if (!handle.ok()) {
    std::fprintf(stderr, "open %s: %s\n", slug.c_str(), handle.status().ToString().c_str());
    std::abort();
  }
  return *handle;
}

// 64 writers, each with one write in flight at a time, spread over 16 Locrits for a fixed wall
// time. A writer is a thread that waits for each acknowledgement (async:0), or, as the server's
// connections are, a chain of completion handlers: each acknowledgement issues the writer's next
// write from the handler, with no thread of its own waiting (async:1).
void BM_ConcurrentDurableWriters(benchmark::State& state) {
  const int max_batch = static_cast<int>(state.range(0));
  const bool async = state.range(2) != 0;
  constexpr int kWriters = 64;
  constexpr int kLocrits = 16;
  for (auto _ : state) {
    TempDir dir;
    SystemClock clock;
    IdGenerator ids(&clock, 1);
    ThreadPool pool(static_cast<int>(state.range(1)));
    MemoryManagerOptions options;
    options.data_dir = dir.path().string();
    options.clock = &clock;
    options.ids = &ids;
    options.pool = &pool;
    options.max_batch = max_batch;
    MemoryManager manager(options);
    std::vector<MemoryManager::Handle> locrits;
    for (int i = 0; i < kLocrits; ++i) locrits.push_back(GetOrDie(manager, "l" + std::to_string(i)));

    std::atomic<bool> stop{false};
    std::atomic<int64_t> acknowledged{0};
    const auto start = std::chrono::steady_clock::now();
    const double cpu_start = ProcessCpuSeconds();
    std::vector<std::thread> writers;
    // The async writers: Issue(w, i) writes message i of writer w and, once it is acknowledged,
    // issues i + 1 until stopped; `chains` counts the writers still going.
    std::atomic<int> chains{async ? kWriters : 0};
    std::function<void(int, int)> issue = [&](int w, int i) {
      const auto& memory = locrits[static_cast<size_t>(w % kLocrits)];
      memory->Write<SavedMessage>(
          [w, i](MemoryStore& store) {
            return store.SaveMessage(StoreHarness::UserMessage("w" + std::to_string(w),
                                                               "message " + std::to_string(i)));
          },
          [&, w, i](Result<SavedMessage> r) {
            if (r.ok()) ++acknowledged;
            if (stop.load()) {
              --chains;
            } else {
              issue(w, i + 1);
            }
          });
    };
    for (int w = 0; async && w < kWriters; ++w) issue(w, 0);
    for (int w = 0; !async && w < kWriters; ++w) {
      writers.emplace_back([&, w] {
        const auto& memory = locrits[static_cast<size_t>(w % kLocrits)];
        for (int i = 0; !stop.load(); ++i) {
          std::promise<bool> done;
          memory->Write<SavedMessage>(
              [w, i](MemoryStore& store) {
                return store.SaveMessage(StoreHarness::UserMessage(
                    "w" + std::to_string(w), "message " + std::to_string(i)));
              },
              [&done](Result<SavedMessage> r) { done.set_value(r.ok()); });
          if (done.get_future().get()) ++acknowledged;
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::seconds(3));
    stop = true;
    for (auto& t : writers) t.join();
    while (chains.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    state.SetIterationTime(seconds);
    state.counters["acked_per_s"] = static_cast<double>(acknowledged.load()) / seconds;
    state.counters["acked"] = static_cast<double>(acknowledged.load());
    state.counters["cpu_us_per_ack"] =
        (ProcessCpuSeconds() - cpu_start) * 1e6 / static_cast<double>(acknowledged.load());
    int64_t batches = 0;
    for (const auto& l : locrits) batches += l->BatchesCommitted();
    state.counters["mean_batch"] =
        static_cast<double>(acknowledged.load()) / static_cast<double>(std::max<int64_t>(1, batches));
    locrits.clear();
  }
}
// max_batch 1 is the baseline: one transaction (one fsync) per message; 512 is group commit.
// threads is the work pool's size. A commit holds its pool thread through the fsync, which is I/O
// wait, not CPU: with 4 threads at most 4 of the 16 Locrits commit at once; with 16 every Locrit
// can have its fsync in flight. Each pair (baseline, group commit) shares a pool size.
BENCHMARK(BM_ConcurrentDurableWriters)
    ->ArgNames({"max_batch", "threads", "async"})
    ->ArgsProduct({{1, 512}, {4, 16}, {0, 1}})
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

void BM_OpenThousandLocrits(benchmark::State& state) {
  constexpr int kLocrits = 1000;
  constexpr int kMessages = 100;
  TempDir dir;
  SystemClock clock;
  IdGenerator ids(&clock, 2);
  ThreadPool pool(4);
  MemoryManagerOptions options;
  options.data_dir = dir.path().string();
  options.clock = &clock;
  options.ids = &ids;
  options.pool = &pool;
  options.max_open_stores = kLocrits;
  {
    // Setup, not measured: 1 000 stores of 100 messages, each written as one batch.
    options.durability = Durability::kRelaxed;
    MemoryManager setup(options);
    std::vector<std::future<bool>> done;
    for (int l = 0; l < kLocrits; ++l) {
      auto memory = GetOrDie(setup, "l" + std::to_string(l));
      for (int m = 0; m < kMessages; ++m) {
        auto p = std::make_shared<std::promise<bool>>();
        done.push_back(p->get_future());
        memory->Write<SavedMessage>(
            [m](MemoryStore& store) {
              return store.SaveMessage(StoreHarness::UserMessage(
                  "s" + std::to_string(m % 5), "setup message " + std::to_string(m)));
            },
            [p](Result<SavedMessage> r) { p->set_value(r.ok()); });
      }
    }
    for (auto& f : done) f.get();
    options.durability = Durability::kFull;
  }
  // Give the setup's freed memory back, so the RSS below is what the open stores hold.
  malloc_trim(0);
  for (auto _ : state) {
    const int64_t rss_before = ResidentKiB();
    const double cpu_start = ProcessCpuSeconds();
    const auto start = std::chrono::steady_clock::now();
    MemoryManager manager(options);
    std::vector<std::future<Result<MemoryManager::Handle>>> opened;
    for (int l = 0; l < kLocrits; ++l) {
      auto p = std::make_shared<std::promise<Result<MemoryManager::Handle>>>();
      opened.push_back(p->get_future());
      manager.Get("l" + std::to_string(l), {},
                  [p](Result<MemoryManager::Handle> r) { p->set_value(std::move(r)); });
    }
    std::vector<MemoryManager::Handle> handles;
    for (auto& f : opened) {
      auto r = f.get();
      if (!r.ok()) state.SkipWithError(r.status().ToString().c_str());
      handles.push_back(*r);
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    state.SetIterationTime(seconds);
    state.counters["cpu_s"] = ProcessCpuSeconds() - cpu_start;
    state.counters["open_stores"] = manager.OpenStores();
    state.counters["rss_MiB"] = static_cast<double>(ResidentKiB()) / 1024.0;
    state.counters["rss_growth_MiB"] = static_cast<double>(ResidentKiB() - rss_before) / 1024.0;
    handles.clear();
  }
}
BENCHMARK(BM_OpenThousandLocrits)->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace locrit

BENCHMARK_MAIN();

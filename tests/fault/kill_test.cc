// kill -9 at a random moment while a child process writes through the memory manager. After every
// kill: the store opens, quick_check is ok, every acknowledged message is present, and no message
// is half-saved (no message without its session edge, no edge without both ends).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <future>
#include <filesystem>
#include <random>
#include <set>
#include <thread>

#include "memory/memory_manager.h"
#include "tests/support/fake_clock.h"
#include "tests/support/matchers.h"
#include "tests/support/store_fixture.h"
#include "tests/support/temp_dir.h"

namespace locrit {
namespace {

using ::locrit::testing::FindBrokenInvariants;
using ::locrit::testing::IsOk;
using ::locrit::testing::StoreHarness;
using ::locrit::testing::TempDir;

constexpr size_t kRecord = 40;  // One acknowledged id per fixed-size pipe write (< PIPE_BUF).

int TrialCount() {
  const char* env = std::getenv("LOCRIT_KILL_TRIALS");
  return env != nullptr ? std::max(1, std::atoi(env)) : 200;
}

// The child: writes forever with several writes in flight (so group commit batches them), and
// reports each acknowledged id on `fd`. Never returns.
[[noreturn]] void WriteUntilKilled(const std::string& data_dir, int fd, uint64_t seed) {
  SystemClock clock;
  IdGenerator ids(&clock, seed);
  ThreadPool pool(3);
  MemoryManagerOptions options;
  options.data_dir = data_dir;
  options.clock = &clock;
  options.ids = &ids;
  options.pool = &pool;
  options.max_batch = 16;
  MemoryManager manager(options);
  std::promise<Result<MemoryManager::Handle>> got;
  LocritMemoryOptions locrit;
  locrit.max_messages = 300;  // Retention runs inside many of the killed transactions.
  manager.Get("victim", locrit, [&](Result<MemoryManager::Handle> r) { got.set_value(std::move(r)); });
  auto handle = got.get_future().get();
  if (!handle.ok()) _exit(3);
  std::atomic<int> in_flight{0};
  for (int i = 0;; ++i) {
    while (in_flight.load() >= 8) std::this_thread::yield();
    ++in_flight;
    (*handle)->Write<SavedMessage>(
        [i](MemoryStore& store) {
          return store.SaveMessage(StoreHarness::UserMessage("s" + std::to_string(i % 3),
                                                             "message " + std::to_string(i)));
        },
        [fd, &in_flight](Result<SavedMessage> saved) {
          if (saved.ok()) {
            char record[kRecord] = {};
            std::snprintf(record, sizeof(record), "%s", saved->id.c_str());
            if (::write(fd, record, sizeof(record)) != static_cast<ssize_t>(sizeof(record))) {
              _exit(4);
            }
          }
          --in_flight;
        });
  }
}

TEST(KillTest, AcknowledgedMessagesSurviveKillNineAndNothingIsHalfSaved) {
  const int trials = TrialCount();
  std::mt19937_64 rng(20261128);
  int trials_mid_stream = 0;
  for (int trial = 0; trial < trials; ++trial) {
    TempDir dir;
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const uint64_t seed = rng();
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      ::close(fds[0]);
      WriteUntilKilled(dir.path().string(), fds[1], seed);
    }
    ::close(fds[1]);
    // Let it run a random while: sometimes before the first commit, usually mid-stream.
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 120000));
    ASSERT_EQ(::kill(child, SIGKILL), 0);
    int wstatus = 0;
    ASSERT_EQ(::waitpid(child, &wstatus, 0), child);
    ASSERT_TRUE(WIFSIGNALED(wstatus)) << "child exited by itself with " << WEXITSTATUS(wstatus);

    std::vector<std::string> acknowledged;
    char record[kRecord];
    while (::read(fds[0], record, sizeof(record)) == static_cast<ssize_t>(sizeof(record))) {
      acknowledged.emplace_back(record, strnlen(record, sizeof(record)));
    }
    ::close(fds[0]);
    trials_mid_stream += acknowledged.size() >= 5;

    const std::string db = (dir.path() / "locrits" / "victim" / "memory.db").string();
    if (!std::filesystem::exists(db)) {
      ASSERT_TRUE(acknowledged.empty()) << "trial " << trial;
      continue;
    }
    StoreHarness harness;
    harness.options().path = db;
    harness.options().max_messages = 0;
    ASSERT_OK_AND_ASSIGN(auto store, harness.Open());
    ASSERT_OK_AND_ASSIGN(std::string check, store->QuickCheck());
    ASSERT_EQ(check, "ok") << "trial " << trial;
    // Retention keeps the newest 300: every acknowledged message among the newest 300 must be
    // there. Acknowledgements arrive in commit order, so those are the last 300 acknowledged.
    const size_t from = acknowledged.size() > 300 ? acknowledged.size() - 300 : 0;
    for (size_t i = from; i < acknowledged.size(); ++i) {
      ASSERT_THAT(store->GetMessage(acknowledged[i]), IsOk())
          << "trial " << trial << ": acknowledged message " << acknowledged[i] << " is missing";
    }
    const std::vector<std::string> broken = FindBrokenInvariants(db);
    ASSERT_TRUE(broken.empty()) << "trial " << trial << ": " << broken.front();
  }
  // The kills must have landed mid-stream, not only before the first write.
  EXPECT_GE(trials_mid_stream, trials / 2);
}

}  // namespace
}  // namespace locrit

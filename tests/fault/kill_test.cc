// kill -9 at a random moment while a child process writes through the memory manager. After every
// kill: the store opens, quick_check is ok, every acknowledged message is present, and no message
// is half-saved (no message without its session edge, no edge without both ends).
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
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

using ::locrit::testing::CountRows;
using ::locrit::testing::FindBrokenInvariants;
using ::locrit::testing::IsOk;
using ::locrit::testing::StoreHarness;
using ::locrit::testing::TempDir;

constexpr size_t kRecord = 64;  // "<id> <seq>" per fixed-size pipe write (< PIPE_BUF).

struct Acked {
  std::string id;
  int64_t seq = 0;
};

Acked ParseRecord(const char* record) {
  const std::string text(record, strnlen(record, kRecord));
  const size_t space = text.find(' ');
  return Acked{text.substr(0, space), std::stoll(text.substr(space + 1))};
}

std::string ScalarText(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* stmt = nullptr;
  std::string out;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
      sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0) != nullptr) {
    out = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
  }
  sqlite3_finalize(stmt);
  sqlite3_close_v2(db);
  return out;
}

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
            std::snprintf(record, sizeof(record), "%s %lld", saved->id.c_str(),
                          static_cast<long long>(saved->seq));
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
    // Kill at a moment chosen by progress, not by wall time (which a loaded machine stretches):
    // after a random number of acknowledgements (sometimes none), plus a random few microseconds.
    std::vector<Acked> acknowledged;
    char record[kRecord];
    const size_t kill_after = rng() % 8 == 0 ? 0 : rng() % 400;
    while (acknowledged.size() < kill_after &&
           ::read(fds[0], record, sizeof(record)) == static_cast<ssize_t>(sizeof(record))) {
      acknowledged.push_back(ParseRecord(record));
    }
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));
    ASSERT_EQ(::kill(child, SIGKILL), 0);
    int wstatus = 0;
    ASSERT_EQ(::waitpid(child, &wstatus, 0), child);
    ASSERT_TRUE(WIFSIGNALED(wstatus)) << "child exited by itself with " << WEXITSTATUS(wstatus);
    while (::read(fds[0], record, sizeof(record)) == static_cast<ssize_t>(sizeof(record))) {
      acknowledged.push_back(ParseRecord(record));
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
    // Retention keeps the newest 300 committed messages by seq. So every acknowledged message
    // at or above the oldest seq still stored must be there, and none may be newer than the
    // newest stored one (that would be a lost acknowledged write).
    int64_t oldest = 0;
    int64_t newest = 0;
    if (!acknowledged.empty()) {
      ASSERT_GT(CountRows(db, "messages"), 0) << "trial " << trial;
      oldest = std::stoll(ScalarText(db, "SELECT min(seq) FROM messages"));
      newest = std::stoll(ScalarText(db, "SELECT max(seq) FROM messages"));
    }
    for (const Acked& a : acknowledged) {
      ASSERT_LE(a.seq, newest) << "trial " << trial << ": acknowledged message " << a.id << " lost";
      if (a.seq < oldest) continue;  // Evicted by retention, legitimately.
      ASSERT_THAT(store->GetMessage(a.id), IsOk())
          << "trial " << trial << ": acknowledged message " << a.id << " is missing";
    }
    const std::vector<std::string> broken = FindBrokenInvariants(db);
    ASSERT_TRUE(broken.empty()) << "trial " << trial << ": " << broken.front();
  }
  // The kills must have landed mid-stream, not only before the first write.
  EXPECT_GE(trials_mid_stream, trials / 2);
}

}  // namespace
}  // namespace locrit

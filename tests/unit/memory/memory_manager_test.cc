// MemoryManager: exactly-once open, the open-store bound, group commit, readers, process lock,
// shutdown draining.
#include "memory/memory_manager.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <latch>
#include <set>
#include <thread>

#include "tests/support/await.h"
#include "tests/support/fake_clock.h"
#include "tests/support/matchers.h"
#include "tests/support/store_fixture.h"
#include "tests/support/temp_dir.h"

namespace locrit {
namespace {

using ::locrit::testing::Await;
using ::locrit::testing::FakeClock;
using ::locrit::testing::IsOk;
using ::locrit::testing::StatusIs;
using ::locrit::testing::StoreHarness;
using ::locrit::testing::TempDir;
using Handle = MemoryManager::Handle;

size_t ListSnapshotsForTest(const std::filesystem::path& dir) {
  size_t n = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    n += entry.path().extension() == ".db";
  }
  return n;
}

class MemoryManagerTest : public ::testing::Test {
 protected:
  MemoryManagerOptions Options(int threads = 4) {
    pool_ = std::make_unique<ThreadPool>(threads);
    MemoryManagerOptions o;
    o.data_dir = dir_.path().string();
    o.clock = &clock_;
    o.ids = &ids_;
    o.pool = pool_.get();
    o.durability = Durability::kRelaxed;  // These tests are about concurrency, not fsync.
    return o;
  }

  Result<Handle> GetSync(MemoryManager& manager, const std::string& slug) {
    return Await<Handle>([&](auto done) { manager.Get(slug, {}, done); });
  }

  static Result<SavedMessage> SaveSync(const Handle& memory, const std::string& session,
                                       const std::string& content) {
    return Await<SavedMessage>([&](auto done) {
      memory->Write<SavedMessage>(
          [session, content](MemoryStore& store) {
            return store.SaveMessage(StoreHarness::UserMessage(session, content));
          },
          done);
    });
  }

  static Result<std::vector<Message>> HistorySync(const Handle& memory, const std::string& session) {
    return Await<std::vector<Message>>([&](auto done) {
      memory->Read<std::vector<Message>>(
          [session](MemoryStore& store) { return store.History({session, 1000, {}}); }, done);
    });
  }

  TempDir dir_;
  FakeClock clock_;
  IdGenerator ids_{&clock_, 9};
  std::unique_ptr<ThreadPool> pool_;
};

TEST_F(MemoryManagerTest, ThousandConcurrentGetsOpenOnce) {
  MemoryManager manager(Options());
  constexpr int kCallers = 1000;
  std::vector<std::promise<Result<Handle>>> promises(kCallers);
  std::vector<std::thread> threads;
  std::latch go(8);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      go.arrive_and_wait();
      for (int i = t; i < kCallers; i += 8) {
        manager.Get("bob", {}, [&, i](Result<Handle> r) { promises[i].set_value(std::move(r)); });
      }
    });
  }
  for (auto& t : threads) t.join();
  std::set<LocritMemory*> distinct;
  std::vector<Handle> handles;
  for (auto& p : promises) {
    Result<Handle> r = p.get_future().get();
    ASSERT_THAT(r, IsOk());
    distinct.insert(r->get());
    handles.push_back(*r);
  }
  EXPECT_EQ(distinct.size(), 1u);
  EXPECT_EQ(manager.OpensPerformed(), 1);
  EXPECT_EQ(manager.OpenStores(), 1);
}

TEST_F(MemoryManagerTest, ThousandGetsOverTwoHundredLocritsRespectTheBound) {
  MemoryManagerOptions options = Options();
  options.max_open_stores = 50;
  MemoryManager manager(options);
  constexpr int kCallers = 1000;
  std::atomic<int> max_seen{0};
  std::atomic<int> errors{0};
  std::vector<std::promise<void>> finished(kCallers);
  for (int i = 0; i < kCallers; ++i) {
    const std::string slug = "locrit-" + std::to_string(i % 200);
    manager.Get(slug, {}, [&, i, slug](Result<Handle> r) {
      int open = manager.OpenStores();
      int seen = max_seen.load();
      while (open > seen && !max_seen.compare_exchange_weak(seen, open)) {
      }
      if (!r.ok()) {
        ++errors;
        finished[i].set_value();
        return;
      }
      Handle handle = *r;
      handle->Write<SavedMessage>(
          [slug](MemoryStore& store) {
            return store.SaveMessage(StoreHarness::UserMessage("s", slug));
          },
          [&, i, handle](Result<SavedMessage> saved) mutable {
            if (!saved.ok()) ++errors;
            handle.reset();  // Release before signalling, so the slot frees up.
            finished[i].set_value();
          });
    });
  }
  for (auto& f : finished) f.get_future().get();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_LE(max_seen.load(), 50);
  EXPECT_LE(manager.OpenStores(), 50);
  EXPECT_GE(manager.ClosesPerformed(), 150);
  // Every Locrit got all five of its messages, across closes and reopens.
  for (int i = 0; i < 200; i += 37) {
    ASSERT_OK_AND_ASSIGN(Handle h, GetSync(manager, "locrit-" + std::to_string(i)));
    ASSERT_OK_AND_ASSIGN(auto history, HistorySync(h, "s"));
    EXPECT_EQ(history.size(), 5u);
  }
}

TEST_F(MemoryManagerTest, OpenFailureReachesEveryWaiterAndCanBeRetried) {
  MemoryManager manager(Options());
  // A file where the Locrit's directory should be makes the open fail.
  std::filesystem::create_directories(dir_.path() / "locrits");
  { std::ofstream(dir_.path() / "locrits" / "broken") << "not a directory"; }
  std::vector<std::promise<Result<Handle>>> promises(20);
  for (auto& p : promises) {
    manager.Get("broken", {}, [&p](Result<Handle> r) { p.set_value(std::move(r)); });
  }
  for (auto& p : promises) EXPECT_THAT(p.get_future().get(), StatusIs(StatusCode::kIoError));
  EXPECT_EQ(manager.OpenStores(), 0);
  std::filesystem::remove(dir_.path() / "locrits" / "broken");
  EXPECT_THAT(GetSync(manager, "broken"), IsOk());
}

TEST_F(MemoryManagerTest, InvalidSlugsAreRejected) {
  MemoryManager manager(Options());
  for (const std::string& slug : std::vector<std::string>{"", "../etc", "Bob", "a/b", "a b", std::string(65, 'a'), "é"}) {
    EXPECT_THAT(GetSync(manager, slug), StatusIs(StatusCode::kInvalidArgument)) << slug;
  }
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "locrits"));
}

TEST_F(MemoryManagerTest, SecondOwnerOfTheDirectoryIsRefusedWithThePid) {
  const MemoryManagerOptions options = Options();
  MemoryManager first(options);
  ASSERT_OK_AND_ASSIGN(Handle held, GetSync(first, "bob"));
  MemoryManager second(options);
  auto refused = GetSync(second, "bob");
  ASSERT_THAT(refused, StatusIs(StatusCode::kFailedPrecondition));
  EXPECT_NE(refused.status().message().find(std::to_string(::getpid())), std::string::npos)
      << refused.status();
}

TEST_F(MemoryManagerTest, QueuedWritesCommitAsOneBatch) {
  MemoryManager manager(Options(/*threads=*/1));
  ASSERT_OK_AND_ASSIGN(Handle memory, GetSync(manager, "bob"));
  // Hold the only pool thread so that every write queues before the writer runs.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  pool_->Post([released] { released.wait(); });
  constexpr int kWrites = 100;
  std::vector<std::promise<Result<SavedMessage>>> results(kWrites);
  for (int i = 0; i < kWrites; ++i) {
    memory->Write<SavedMessage>(
        [i](MemoryStore& store) {
          if (i == 50) return Result<SavedMessage>(InvalidArgumentError("this one fails"));
          return store.SaveMessage(StoreHarness::UserMessage("s", std::to_string(i)));
        },
        [&results, i](Result<SavedMessage> r) { results[i].set_value(std::move(r)); });
  }
  EXPECT_EQ(memory->QueuedWrites(), static_cast<size_t>(kWrites));
  release.set_value();
  for (int i = 0; i < kWrites; ++i) {
    auto r = results[i].get_future().get();
    if (i == 50) {
      EXPECT_THAT(r, StatusIs(StatusCode::kInvalidArgument));
    } else {
      EXPECT_THAT(r, IsOk());
    }
  }
  EXPECT_EQ(memory->BatchesCommitted(), 1);
  ASSERT_OK_AND_ASSIGN(auto history, HistorySync(memory, "s"));
  ASSERT_EQ(history.size(), static_cast<size_t>(kWrites - 1));
  EXPECT_EQ(history.front().content, "0");
  EXPECT_EQ(history.back().content, "99");
}

TEST_F(MemoryManagerTest, QueueBoundGivesResourceExhausted) {
  MemoryManagerOptions options = Options(/*threads=*/1);
  options.max_queued_writes = 5;
  MemoryManager manager(options);
  ASSERT_OK_AND_ASSIGN(Handle memory, GetSync(manager, "bob"));
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  pool_->Post([released] { released.wait(); });
  std::vector<std::future<Result<SavedMessage>>> futures;
  for (int i = 0; i < 7; ++i) {
    auto p = std::make_shared<std::promise<Result<SavedMessage>>>();
    futures.push_back(p->get_future());
    memory->Write<SavedMessage>(
        [](MemoryStore& store) { return store.SaveMessage(StoreHarness::UserMessage("s", "x")); },
        [p](Result<SavedMessage> r) { p->set_value(std::move(r)); });
  }
  release.set_value();
  int ok = 0, exhausted = 0;
  for (auto& f : futures) {
    auto r = f.get();
    ok += r.ok();
    exhausted += r.status().code() == StatusCode::kResourceExhausted;
  }
  EXPECT_EQ(ok, 5);
  EXPECT_EQ(exhausted, 2);
}

TEST_F(MemoryManagerTest, ReadsSeeAcknowledgedWrites) {
  MemoryManager manager(Options());
  ASSERT_OK_AND_ASSIGN(Handle memory, GetSync(manager, "bob"));
  for (int i = 0; i < 20; ++i) {
    ASSERT_THAT(SaveSync(memory, "s", std::to_string(i)), IsOk());
    ASSERT_OK_AND_ASSIGN(auto history, HistorySync(memory, "s"));
    ASSERT_EQ(history.size(), static_cast<size_t>(i + 1));
  }
}

TEST_F(MemoryManagerTest, ShutdownDrainsQueuedWritesAndRefusesNewOnes) {
  const std::string db = (dir_.path() / "locrits" / "bob" / "memory.db").string();
  {
    MemoryManager manager(Options(/*threads=*/1));
    ASSERT_OK_AND_ASSIGN(Handle memory, GetSync(manager, "bob"));
    std::promise<void> release;
    std::shared_future<void> released = release.get_future().share();
    pool_->Post([released] { released.wait(); });
    std::vector<std::future<Result<SavedMessage>>> futures;
    for (int i = 0; i < 50; ++i) {
      auto p = std::make_shared<std::promise<Result<SavedMessage>>>();
      futures.push_back(p->get_future());
      memory->Write<SavedMessage>(
          [i](MemoryStore& store) {
            return store.SaveMessage(StoreHarness::UserMessage("s", std::to_string(i)));
          },
          [p](Result<SavedMessage> r) { p->set_value(std::move(r)); });
    }
    memory.reset();
    std::thread stopper([&] { manager.Shutdown(); });
    release.set_value();
    stopper.join();
    for (auto& f : futures) EXPECT_THAT(f.get(), IsOk());
    EXPECT_EQ(manager.OpenStores(), 0);
    EXPECT_THAT(GetSync(manager, "bob"), StatusIs(StatusCode::kUnavailable));
  }
  EXPECT_EQ(::locrit::testing::CountRows(db, "messages"), 50);
  EXPECT_TRUE(::locrit::testing::FindBrokenInvariants(db).empty());
}

TEST_F(MemoryManagerTest, SnapshotsOnDemandAreOpenableAndPruned) {
  MemoryManagerOptions options = Options();
  options.snapshot_keep = 2;
  MemoryManager manager(options);
  ASSERT_OK_AND_ASSIGN(Handle memory, GetSync(manager, "bob"));
  std::vector<std::string> paths;
  for (int i = 0; i < 4; ++i) {
    ASSERT_THAT(SaveSync(memory, "s", std::to_string(i)), IsOk());
    clock_.AdvanceMillis(1000);
    ASSERT_OK_AND_ASSIGN(std::string path,
                         Await<std::string>([&](auto done) { memory->Snapshot(done); }));
    paths.push_back(path);
  }
  ASSERT_OK_AND_ASSIGN(MemoryHealth health,
                       Await<MemoryHealth>([&](auto done) { memory->Health(done); }));
  EXPECT_EQ(health.integrity, "ok");
  EXPECT_FALSE(health.last_recovery.has_value());
  ASSERT_EQ(health.snapshots.size(), 2u);
  EXPECT_EQ(health.snapshots[0], paths[3]);
  EXPECT_EQ(health.snapshots[1], paths[2]);
  EXPECT_FALSE(std::filesystem::exists(paths[0]));
  EXPECT_EQ(::locrit::testing::CountRows(paths[3], "messages"), 4);
  EXPECT_EQ(::locrit::testing::CountRows(paths[2], "messages"), 3);
}

TEST_F(MemoryManagerTest, PeriodicSnapshotOnlyWhenDueAndChanged) {
  MemoryManagerOptions options = Options();
  options.snapshot_interval_ms = 60'000;
  MemoryManager manager(options);
  ASSERT_OK_AND_ASSIGN(Handle memory, GetSync(manager, "bob"));
  const auto snapshots = [&] {
    return ListSnapshotsForTest(dir_.path() / "locrits" / "bob" / "snapshots");
  };
  ASSERT_THAT(SaveSync(memory, "s", "x"), IsOk());
  manager.SnapshotDueStores();  // Changed, but not due yet.
  clock_.AdvanceMillis(60'000);
  manager.SnapshotDueStores();  // Due and changed.
  // A read queued behind the snapshot on the pool lets it finish.
  ASSERT_THAT(SaveSync(memory, "s", "y"), IsOk());
  EXPECT_EQ(snapshots(), 1u);
  clock_.AdvanceMillis(60'000);
  manager.SnapshotDueStores();
  ASSERT_THAT(HistorySync(memory, "s"), IsOk());
  ASSERT_THAT(SaveSync(memory, "s", "z"), IsOk());
  EXPECT_EQ(snapshots(), 2u);
  clock_.AdvanceMillis(60'000);
  manager.SnapshotDueStores();  // Changed by "z": due.
  ASSERT_THAT(SaveSync(memory, "t", "sync"), IsOk());
  clock_.AdvanceMillis(60'000);
  EXPECT_EQ(snapshots(), 3u);
}

// Files of `dir` this process still has open (their links are gone once it is removed).
std::vector<std::string> OpenFilesUnder(const std::filesystem::path& dir) {
  std::vector<std::string> out;
  for (const auto& fd : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    const std::string target = std::filesystem::read_symlink(fd.path(), ec).string();
    if (!ec && target.starts_with(dir.string() + "/")) out.push_back(target);
  }
  return out;
}

Status PurgeSync(MemoryManager& manager, const std::string& slug) {
  auto promise = std::make_shared<std::promise<Status>>();
  auto future = promise->get_future();
  manager.Purge(slug, [promise](Status s) { promise->set_value(std::move(s)); });
  return future.get();
}

TEST_F(MemoryManagerTest, PurgeWaitsForHandlesThenClosesTheStoreAndRemovesTheDirectory) {
  MemoryManager manager(Options());
  const std::filesystem::path bob_dir = dir_.path() / "locrits" / "bob";
  ASSERT_OK_AND_ASSIGN(Handle held, GetSync(manager, "bob"));
  ASSERT_THAT(SaveSync(held, "s", "à oublier"), IsOk());
  ASSERT_OK_AND_ASSIGN(Handle alice, GetSync(manager, "alice"));
  ASSERT_FALSE(OpenFilesUnder(bob_dir).empty()) << "the open store holds its files";

  std::promise<Status> purged;
  manager.Purge("bob", [&purged](Status s) { purged.set_value(std::move(s)); });
  auto purge_done = purged.get_future();
  // The handle is held: the purge cannot have finished, and no new handle is handed out.
  EXPECT_NE(purge_done.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  EXPECT_THAT(GetSync(manager, "bob"), StatusIs(StatusCode::kNotFound));
  EXPECT_TRUE(std::filesystem::exists(bob_dir / "memory.db"));
  // The holder can still use what it holds.
  ASSERT_THAT(HistorySync(held, "s"), IsOk());

  held.reset();
  EXPECT_THAT(purge_done.get(), IsOk());
  EXPECT_FALSE(std::filesystem::exists(bob_dir));
  EXPECT_TRUE(OpenFilesUnder(bob_dir).empty()) << "closed, lock released";
  EXPECT_EQ(manager.OpenStores(), 1) << "only alice";
  // Refused for good: nothing recreates the directory.
  EXPECT_THAT(GetSync(manager, "bob"), StatusIs(StatusCode::kNotFound));
  EXPECT_FALSE(std::filesystem::exists(bob_dir));
  // Other Locrits are untouched.
  ASSERT_THAT(SaveSync(alice, "s", "toujours là"), IsOk());
}

TEST_F(MemoryManagerTest, PurgeOfMemoryThatIsNotOpenRemovesItsDirectory) {
  const MemoryManagerOptions options = Options();
  MemoryManager manager(options);
  {
    ASSERT_OK_AND_ASSIGN(Handle h, GetSync(manager, "closed"));
    ASSERT_THAT(SaveSync(h, "s", "x"), IsOk());
  }
  // Closed by a second manager's Shutdown: files on disk, nothing open.
  MemoryManager other(options);
  {
    ASSERT_OK_AND_ASSIGN(Handle h, GetSync(other, "on-disk"));
    ASSERT_THAT(SaveSync(h, "s", "x"), IsOk());
  }
  other.Shutdown();
  ASSERT_TRUE(std::filesystem::exists(dir_.path() / "locrits" / "on-disk" / "memory.db"));
  EXPECT_THAT(PurgeSync(manager, "on-disk"), IsOk());
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "locrits" / "on-disk"));
  EXPECT_THAT(PurgeSync(manager, "closed"), IsOk()) << "open and idle";
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "locrits" / "closed"));
  EXPECT_THAT(PurgeSync(manager, "never-existed"), IsOk());
  EXPECT_EQ(manager.OpenStores(), 0);
  EXPECT_THAT(PurgeSync(manager, "../etc"), StatusIs(StatusCode::kInvalidArgument));
  manager.Shutdown();
  EXPECT_THAT(PurgeSync(manager, "late"), StatusIs(StatusCode::kUnavailable));
}

TEST_F(MemoryManagerTest, GetsRacingAPurgeGetAWorkingHandleOrNotFoundAndNeverResurrectIt) {
  MemoryManager manager(Options());
  const std::filesystem::path bob_dir = dir_.path() / "locrits" / "bob";
  ASSERT_THAT(GetSync(manager, "bob"), IsOk());
  constexpr int kThreads = 6;
  std::atomic<int> granted{0};
  std::atomic<int> granted_after_refusal{0};
  std::atomic<int> other{0};
  std::latch start(kThreads + 1);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      // Each thread goes on until it is refused (bounded), which the purge guarantees.
      bool refused = false;
      for (int i = 0; i < 100'000 && !refused; ++i) {
        Result<Handle> got = GetSync(manager, "bob");
        if (got.ok()) {
          // A handle granted before the purge keeps working until released.
          if (SaveSync(*got, "s" + std::to_string(t), "m" + std::to_string(i)).ok()) {
            ++granted;
          } else {
            ++other;
          }
        } else if (got.status().code() == StatusCode::kNotFound) {
          refused = true;
        } else {
          ++other;
        }
      }
      if (!refused) ++other;
      // Once refused, refused for good.
      for (int i = 0; i < 20; ++i) granted_after_refusal += GetSync(manager, "bob").ok();
    });
  }
  start.arrive_and_wait();
  const Status purge = PurgeSync(manager, "bob");
  for (auto& t : threads) t.join();
  EXPECT_THAT(purge, IsOk());
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(granted_after_refusal.load(), 0);
  EXPECT_FALSE(std::filesystem::exists(bob_dir));
  EXPECT_EQ(manager.OpenStores(), 0);
}

TEST_F(MemoryManagerTest, APurgeRefusesGetsWaitingForASlot) {
  MemoryManagerOptions options = Options();
  options.max_open_stores = 1;
  MemoryManager manager(options);
  ASSERT_OK_AND_ASSIGN(Handle alice, GetSync(manager, "alice"));
  std::promise<Result<Handle>> waiting;
  manager.Get("bob", {}, [&waiting](Result<Handle> r) { waiting.set_value(std::move(r)); });
  auto waiting_result = waiting.get_future();
  EXPECT_NE(waiting_result.wait_for(std::chrono::seconds(0)), std::future_status::ready)
      << "every slot is held";
  std::promise<Status> purged;
  manager.Purge("bob", [&purged](Status s) { purged.set_value(std::move(s)); });
  EXPECT_THAT(waiting_result.get(), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(purged.get_future().get(), IsOk());
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "locrits" / "bob"));
  EXPECT_EQ(manager.OpenStores(), 1);
}

}  // namespace
}  // namespace locrit

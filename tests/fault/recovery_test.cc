// Recovery from corruption through the memory manager: quarantine, salvage, snapshot merge,
// recorded event; and the transient failures that must never be treated as corruption.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "memory/memory_manager.h"
#include "memory/recovery.h"
#include "tests/support/await.h"
#include "tests/support/fake_clock.h"
#include "tests/support/matchers.h"
#include "tests/support/store_fixture.h"
#include "tests/support/temp_dir.h"

namespace locrit {
namespace {

namespace fs = std::filesystem;
using ::locrit::testing::Await;
using ::locrit::testing::CountRows;
using ::locrit::testing::FakeClock;
using ::locrit::testing::FindBrokenInvariants;
using ::locrit::testing::IsOk;
using ::locrit::testing::StatusIs;
using ::locrit::testing::StoreHarness;
using ::locrit::testing::TempDir;
using Handle = MemoryManager::Handle;

class RecoveryTest : public ::testing::Test {
 protected:
  RecoveryTest() : pool_(2) {
    options_.data_dir = dir_.path().string();
    options_.clock = &clock_;
    options_.ids = &ids_;
    options_.pool = &pool_;
  }

  fs::path LocritDir() const { return dir_.path() / "locrits" / "bob"; }
  std::string DbPath() const { return (LocritDir() / "memory.db").string(); }

  StoreOptions DirectOptions() {
    StoreOptions o;
    o.path = DbPath();
    o.clock = &clock_;
    o.ids = &ids_;
    o.max_messages = 0;
    return o;
  }

  // Writes `count` messages straight into the store file and checkpoints, so that every row is
  // in the main database file.
  void Populate(int count, int first = 0) {
    fs::create_directories(LocritDir());
    ASSERT_OK_AND_ASSIGN(auto store, MemoryStore::Open(DirectOptions()));
    const std::string padding(300, 'p');
    for (int i = first; i < first + count; ++i) {
      ASSERT_THAT(store->SaveMessage(StoreHarness::UserMessage(
                      "s" + std::to_string(i % 4), "message " + std::to_string(i) + padding)),
                  IsOk());
    }
    ASSERT_THAT(store->Checkpoint(), IsOk());
  }

  void Snapshot() {
    ASSERT_OK_AND_ASSIGN(auto store, MemoryStore::Open(DirectOptions()));
    fs::create_directories(LocritDir() / "snapshots");
    ASSERT_THAT(
        store->Snapshot((LocritDir() / "snapshots" /
                         (CompactUtcTimestamp(clock_.NowMillis()) + ".db")).string()),
        IsOk());
  }

  void OverwritePages(int64_t first_page, int64_t count, char byte) {
    std::fstream f(DbPath(), std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f.good());
    f.seekp((first_page - 1) * 4096);
    const std::string bytes(static_cast<size_t>(count) * 4096, byte);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }

  Result<Handle> Get(MemoryManager& manager) {
    return Await<Handle>([&](auto done) { manager.Get("bob", {}, done); });
  }

  int64_t Messages() { return CountRows(DbPath(), "messages"); }

  // Opens the memory through a manager (which recovers it if it is damaged), returns its last
  // recovery event, and shuts the manager down.
  std::optional<RecoveryEvent> OpenAndReadRecoveryEvent() {
    MemoryManager manager(options_);
    Result<Handle> memory = Get(manager);
    EXPECT_THAT(memory, IsOk());
    if (!memory.ok()) return std::nullopt;
    auto event = Await<std::optional<RecoveryEvent>>([&](auto done) {
      (*memory)->Read<std::optional<RecoveryEvent>>(
          [](MemoryStore& store) { return store.LastRecoveryEvent(); }, done);
    });
    EXPECT_THAT(event, IsOk());
    memory = Status(StatusCode::kCancelled, "released");
    manager.Shutdown();
    return event.ok() ? *event : std::nullopt;
  }

  TempDir dir_;
  FakeClock clock_;
  IdGenerator ids_{&clock_, 5};
  ThreadPool pool_;
  MemoryManagerOptions options_;
};

TEST_F(RecoveryTest, DamagedPagesAreQuarantinedAndTheRestSalvaged) {
  Populate(400);
  const int64_t pages = static_cast<int64_t>(fs::file_size(DbPath()) / 4096);
  OverwritePages(pages / 2, 2, '\0');
  {
    MemoryManager manager(options_);
    ASSERT_OK_AND_ASSIGN(Handle memory, Get(manager));
    auto event = Await<std::optional<RecoveryEvent>>([&](auto done) {
      memory->Read<std::optional<RecoveryEvent>>(
          [](MemoryStore& store) { return store.LastRecoveryEvent(); }, done);
    });
    ASSERT_THAT(event, IsOk());
    ASSERT_TRUE(event->has_value());
    const RecoveryEvent& e = **event;
    // Found by quick_check or by the first read that meets a zeroed page, depending on what the
    // zeroed pages held.
    EXPECT_THAT(e.reason, ::testing::ContainsRegex("integrity|malformed"));
    EXPECT_GT(e.rows_salvaged.at("messages"), 300);
    EXPECT_TRUE(fs::exists(fs::path(e.quarantine_path) / "memory.db"));
    EXPECT_EQ(fs::path(e.quarantine_path).parent_path(), LocritDir() / "quarantine");
  }
  EXPECT_GT(Messages(), 300);
  EXPECT_TRUE(FindBrokenInvariants(DbPath()).empty());
  EXPECT_FALSE(fs::exists(LocritDir() / "recovery-in-progress"));
  EXPECT_FALSE(fs::exists(LocritDir() / "recovery-scratch"));
}

TEST_F(RecoveryTest, UnreadableFileIsRebuiltFromTheNewestSnapshot) {
  Populate(50);
  clock_.AdvanceMillis(1000);
  Snapshot();
  Populate(10, 50);  // Written after the snapshot: lost with the file.
  // Every page: not a database any more, and nothing left to read page by page.
  OverwritePages(1, static_cast<int64_t>(fs::file_size(DbPath()) / 4096), 'x');
  const std::optional<RecoveryEvent> event = OpenAndReadRecoveryEvent();
  ASSERT_TRUE(event.has_value());
  EXPECT_EQ(event->rows_from_snapshot.at("messages"), 50);
  EXPECT_FALSE(event->snapshot_path.empty());
  EXPECT_EQ(Messages(), 50);
  EXPECT_TRUE(FindBrokenInvariants(DbPath()).empty());
}

TEST_F(RecoveryTest, OverwrittenHeaderLosesNoRowThePagesStillHold) {
  Populate(50);
  clock_.AdvanceMillis(1000);
  Snapshot();
  Populate(10, 50);  // Written after the snapshot: only the damaged file has them.
  OverwritePages(1, 1, 'x');  // The header and the schema: SQL can read nothing.
  const std::optional<RecoveryEvent> event = OpenAndReadRecoveryEvent();
  ASSERT_TRUE(event.has_value());
  // The page pass found every message on its leaf, the newest ten included.
  EXPECT_EQ(event->rows_salvaged.at("messages"), 60);
  EXPECT_EQ(event->rows_from_snapshot.count("messages") == 0
                ? 0
                : event->rows_from_snapshot.at("messages"),
            0);
  EXPECT_EQ(Messages(), 60);
  EXPECT_TRUE(FindBrokenInvariants(DbPath()).empty());
}

TEST_F(RecoveryTest, InterruptedRecoveryResumesInsteadOfStartingEmpty) {
  Populate(30);
  // A crash right after the quarantine step: the files are moved, the marker is written, and
  // no memory.db exists.
  const fs::path quarantine = LocritDir() / "quarantine" / "20250101T000000.000Z";
  fs::create_directories(quarantine);
  fs::rename(DbPath(), quarantine / "memory.db");
  { std::ofstream(LocritDir() / "recovery-in-progress") << quarantine.string() << "\n"; }
  {
    MemoryManager manager(options_);
    ASSERT_THAT(Get(manager), IsOk());
  }
  EXPECT_EQ(Messages(), 30);
  EXPECT_TRUE(fs::exists(quarantine / "memory.db"));
  EXPECT_FALSE(fs::exists(LocritDir() / "recovery-in-progress"));
}

TEST_F(RecoveryTest, TransientErrorsLeaveTheFilesUntouched) {
  Populate(10);
  const auto before = fs::file_size(DbPath());
  {
    // The Locrit is held by another owner: a lock, not damage.
    MemoryManager holder(options_);
    ASSERT_OK_AND_ASSIGN(Handle held, Get(holder));
    MemoryManager second(options_);
    EXPECT_THAT(Get(second), StatusIs(StatusCode::kFailedPrecondition));
  }
  // A directory where the database should be: an I/O error, not corruption.
  const fs::path other = dir_.path() / "locrits" / "carol";
  fs::create_directories(other / "memory.db");
  {
    MemoryManager manager(options_);
    EXPECT_THAT(Await<Handle>([&](auto done) { manager.Get("carol", {}, done); }),
                StatusIs(StatusCode::kIoError));
  }
  EXPECT_FALSE(fs::exists(other / "quarantine"));
  EXPECT_FALSE(fs::exists(LocritDir() / "quarantine"));
  EXPECT_EQ(fs::file_size(DbPath()), before);
  EXPECT_EQ(Messages(), 10);
}

}  // namespace
}  // namespace locrit

// Opening a store: creation, migration from an empty file, pragmas, version and damage checks,
// integrity check and online snapshots.
#include <gtest/gtest.h>

#include <sqlite3.h>

#include <filesystem>
#include <fstream>

#include "store/internal/schema.h"
#include "store/memory_store.h"
#include "tests/support/matchers.h"
#include "tests/support/store_fixture.h"

namespace locrit {
namespace {

using ::locrit::testing::CountRows;
using ::locrit::testing::IsOk;
using ::locrit::testing::StatusIs;
using ::locrit::testing::StoreHarness;

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

TEST(OpenTest, NewStoreHasLatestSchemaAndDurablePragmas) {
  StoreHarness harness;
  ASSERT_OK_AND_ASSIGN(auto store, harness.Open());
  ASSERT_OK_AND_ASSIGN(StorageInfo info, store->Storage());
  EXPECT_EQ(info.schema_version, 3);
  EXPECT_EQ(info.journal_mode, "wal");
  EXPECT_EQ(info.synchronous, 2);  // FULL
  EXPECT_EQ(info.auto_vacuum, 2);  // INCREMENTAL
  EXPECT_TRUE(info.foreign_keys);
}

TEST(OpenTest, RelaxedDurabilityIsSynchronousNormal) {
  StoreHarness harness;
  harness.options().durability = Durability::kRelaxed;
  ASSERT_OK_AND_ASSIGN(auto store, harness.Open());
  ASSERT_OK_AND_ASSIGN(StorageInfo info, store->Storage());
  EXPECT_EQ(info.synchronous, 1);
}

TEST(OpenTest, MigratesAnEmptyFile) {
  StoreHarness harness;
  WriteFile(harness.path(), "");
  ASSERT_OK_AND_ASSIGN(auto store, harness.Open());
  EXPECT_EQ(store->SchemaVersion(), 3);
  ASSERT_THAT(store->SaveMessage(StoreHarness::UserMessage("s", "hello")), IsOk());
  ASSERT_OK_AND_ASSIGN(StorageInfo info, store->Storage());
  EXPECT_EQ(info.auto_vacuum, 2);
}

TEST(OpenTest, MigratesAVersionOneStoreForwardKeepingItsData) {
  StoreHarness harness;
  {
    // A store as version 1 left it: only the first migration applied.
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(harness.path().c_str(), &raw), SQLITE_OK);
    const std::string v1(store_internal::Migrations()[0]);
    ASSERT_EQ(sqlite3_exec(raw, v1.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(raw,
                           "INSERT INTO sessions(id, created_at, last_activity) VALUES ('s', 1, 1);"
                           "INSERT INTO messages(id, session_id, role, content, created_at) "
                           "VALUES ('m1', 's', 'user', 'from version one', 1);"
                           "PRAGMA user_version = 1;"
                           "INSERT INTO counters(name, value) VALUES ('schema_version', 1);",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(raw);
  }
  ASSERT_OK_AND_ASSIGN(auto store, harness.Open());
  EXPECT_EQ(store->SchemaVersion(), store_internal::LatestSchemaVersion());
  ASSERT_OK_AND_ASSIGN(Message m, store->GetMessage("m1"));
  EXPECT_EQ(m.content, "from version one");
  ASSERT_OK_AND_ASSIGN(auto none, store->LastRecoveryEvent());  // A version 2 table.
  EXPECT_FALSE(none.has_value());
  RecoveryEvent event;
  event.reason = "test";
  ASSERT_THAT(store->RecordRecoveryEvent(event), IsOk());
  ASSERT_OK_AND_ASSIGN(auto recorded, store->LastRecoveryEvent());
  ASSERT_TRUE(recorded.has_value());
  EXPECT_EQ(recorded->reason, "test");
}

TEST(OpenTest, ReopenKeepsData) {
  StoreHarness harness;
  std::string id;
  {
    ASSERT_OK_AND_ASSIGN(auto store, harness.Open());
    ASSERT_OK_AND_ASSIGN(auto saved, store->SaveMessage(StoreHarness::UserMessage("s", "kept")));
    id = saved.id;
  }
  ASSERT_OK_AND_ASSIGN(auto store, harness.Open());
  ASSERT_OK_AND_ASSIGN(Message m, store->GetMessage(id));
  EXPECT_EQ(m.content, "kept");
}

TEST(OpenTest, NewerSchemaIsRefusedWithoutTouchingTheFile) {
  StoreHarness harness;
  {
    ASSERT_OK_AND_ASSIGN(auto store, harness.Open());
    ASSERT_THAT(store->SaveMessage(StoreHarness::UserMessage("s", "x")), IsOk());
  }
  {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(harness.path().c_str(), &raw), SQLITE_OK);
    // A newer build records its version in both places.
    ASSERT_EQ(sqlite3_exec(raw,
                           "PRAGMA user_version = 99;"
                           "UPDATE counters SET value = 99 WHERE name = 'schema_version';",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(raw);
  }
  auto store = harness.Open();
  EXPECT_THAT(store, StatusIs(StatusCode::kFailedPrecondition));
  EXPECT_NE(store.status().message().find("99"), std::string::npos);
  EXPECT_EQ(CountRows(harness.path(), "messages"), 1);
}

// The header's version field has no checksum: a flipped byte there is damage to repair, not a
// newer build to wait for, and a zeroed one must not make the store look new.
TEST(OpenTest, HeaderVersionThatDisagreesWithTheRecordedOneIsCorruption) {
  for (const int64_t damaged : {int64_t{0}, int64_t{1}, int64_t{53506}}) {
    SCOPED_TRACE(damaged);
    StoreHarness harness;
    {
      ASSERT_OK_AND_ASSIGN(auto store, harness.Open());
      ASSERT_THAT(store->SaveMessage(StoreHarness::UserMessage("s", "x")), IsOk());
    }
    {
      sqlite3* raw = nullptr;
      ASSERT_EQ(sqlite3_open(harness.path().c_str(), &raw), SQLITE_OK);
      const std::string pragma = "PRAGMA user_version = " + std::to_string(damaged);
      ASSERT_EQ(sqlite3_exec(raw, pragma.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
      sqlite3_close(raw);
    }
    auto store = harness.Open();
    EXPECT_THAT(store, StatusIs(StatusCode::kCorruption));
    EXPECT_EQ(CountRows(harness.path(), "messages"), 1);
  }
}

TEST(OpenTest, GarbageFileIsCorruption) {
  StoreHarness harness;
  WriteFile(harness.path(), std::string(8192, 'x'));
  EXPECT_THAT(harness.Open(), StatusIs(StatusCode::kCorruption));
  // The damaged file is left as it was for recovery to examine.
  std::ifstream in(harness.path(), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(bytes, std::string(8192, 'x'));
}

TEST(OpenTest, MissingDirectoryIsIoError) {
  StoreHarness harness;
  harness.options().path = harness.dir().File("no/such/dir/memory.db");
  EXPECT_THAT(harness.Open(), StatusIs(StatusCode::kIoError));
}

TEST(OpenTest, ReadOnlyStoreReadsAndRefusesWrites) {
  StoreHarness harness;
  {
    ASSERT_OK_AND_ASSIGN(auto store, harness.Open());
    ASSERT_THAT(store->SaveMessage(StoreHarness::UserMessage("s", "x")), IsOk());
  }
  harness.options().read_only = true;
  ASSERT_OK_AND_ASSIGN(auto reader, harness.Open());
  ASSERT_OK_AND_ASSIGN(auto history, reader->History({"s", 10, {}}));
  EXPECT_EQ(history.size(), 1u);
  EXPECT_THAT(reader->SaveMessage(StoreHarness::UserMessage("s", "y")),
              StatusIs(StatusCode::kIoError));
}

TEST(OpenTest, ReadOnlyOpenOfMissingFileFails) {
  StoreHarness harness;
  harness.options().read_only = true;
  EXPECT_THAT(harness.Open(), StatusIs(StatusCode::kIoError));
}

TEST(OpenTest, NegativeRetentionIsInvalid) {
  StoreHarness harness;
  harness.options().max_messages = -1;
  EXPECT_THAT(harness.Open(), StatusIs(StatusCode::kInvalidArgument));
}

TEST(IntegrityTest, QuickCheckIsOkOnAHealthyStore) {
  StoreHarness harness;
  ASSERT_OK_AND_ASSIGN(auto store, harness.Open());
  ASSERT_THAT(store->SaveMessage(StoreHarness::UserMessage("s", "x")), IsOk());
  ASSERT_OK_AND_ASSIGN(std::string check, store->QuickCheck());
  EXPECT_EQ(check, "ok");
}

// A message's sender is a column that SENT (a view) joins to users; the deep check must see a
// sender row that damage took away, since no foreign key does.
TEST(IntegrityTest, DeepCheckFindsAMessageWhoseSenderIsGone) {
  StoreHarness harness;
  ASSERT_OK_AND_ASSIGN(auto store, harness.Open());
  ASSERT_THAT(store->SaveMessage(StoreHarness::UserMessage("s", "x")), IsOk());
  ASSERT_OK_AND_ASSIGN(std::string healthy, store->IntegrityCheck());
  EXPECT_EQ(healthy, "ok");
  {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(harness.path().c_str(), &raw), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(raw, "DELETE FROM users", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(raw);
  }
  ASSERT_OK_AND_ASSIGN(std::string damaged, store->IntegrityCheck());
  EXPECT_EQ(damaged, "1 rows reference missing nodes");
}

TEST(SnapshotTest, OnlineSnapshotIsAConsistentOpenableCopy) {
  StoreHarness harness;
  ASSERT_OK_AND_ASSIGN(auto store, harness.Open());
  for (int i = 0; i < 50; ++i) {
    ASSERT_THAT(store->SaveMessage(StoreHarness::UserMessage("s", "m" + std::to_string(i))), IsOk());
  }
  const std::string copy = harness.dir().File("snapshot.db");
  ASSERT_THAT(store->Snapshot(copy), IsOk());
  // The source stays usable, and later writes do not reach the copy.
  ASSERT_THAT(store->SaveMessage(StoreHarness::UserMessage("s", "after")), IsOk());

  StoreOptions options = harness.options();
  options.path = copy;
  ASSERT_OK_AND_ASSIGN(auto restored, MemoryStore::Open(options));
  ASSERT_OK_AND_ASSIGN(std::string check, restored->QuickCheck());
  EXPECT_EQ(check, "ok");
  EXPECT_EQ(CountRows(copy, "messages"), 50);
  ASSERT_OK_AND_ASSIGN(auto history, restored->History({"s", 1, {}}));
  EXPECT_EQ(history.at(0).content, "m49");
  EXPECT_FALSE(std::filesystem::exists(copy + ".partial"));
}

TEST(SnapshotTest, UnwritableDestinationIsIoError) {
  StoreHarness harness;
  ASSERT_OK_AND_ASSIGN(auto store, harness.Open());
  EXPECT_THAT(store->Snapshot(harness.dir().File("missing/dir/snap.db")),
              StatusIs(StatusCode::kIoError));
}

}  // namespace
}  // namespace locrit

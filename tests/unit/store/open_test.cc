// Opening a store: creation, migration from an empty file, pragmas, version and damage checks,
// integrity check and online snapshots.
#include <gtest/gtest.h>

#include <sqlite3.h>

#include <filesystem>
#include <fstream>

#include "store/internal/schema.h"
#include "store/memory_store.h"
#include "tests/support/matchers.h"
#include "tests/support/raw_sql.h"
#include "tests/support/store_fixture.h"

namespace locrit {
namespace {

using ::locrit::testing::CountRows;
using ::locrit::testing::IsOk;
using ::locrit::testing::RawSql;
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
  EXPECT_EQ(info.schema_version, 4);
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
  EXPECT_EQ(store->SchemaVersion(), store_internal::LatestSchemaVersion());
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

// Version 4 drops the messages' and memories' FTS5 tables (keyword search reads the tables
// through the in-memory index) and rewrites the message triggers without them.
TEST(OpenTest, MigratesAVersionThreeStoreOffItsMessageAndMemoryFtsTables) {
  StoreHarness harness;
  {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(harness.path().c_str(), &raw), SQLITE_OK);
    for (int v = 0; v < 3; ++v) {
      const std::string sql(store_internal::Migrations()[static_cast<size_t>(v)]);
      ASSERT_EQ(sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK) << v;
    }
    ASSERT_EQ(sqlite3_exec(raw,
                           "INSERT INTO users(id, created_at) VALUES ('u', 1);"
                           "INSERT INTO sessions(id, created_at, last_activity) VALUES ('s', 1, 1);"
                           "INSERT INTO messages(id, session_id, user_id, role, content, created_at)"
                           " VALUES ('m1', 's', 'u', 'user', 'un éléphant rose', 1),"
                           " ('m2', 's', 'u', 'user', 'a grey mouse', 2);"
                           "INSERT INTO memories(id, content, importance, created_at, last_accessed)"
                           " VALUES ('mem', 'elephants never forget', 0.5, 1, 1);"
                           "INSERT INTO concepts(id, name, created_at) VALUES ('c', 'elephant', 1);"
                           "PRAGMA user_version = 3;"
                           "INSERT INTO counters(name, value) VALUES ('schema_version', 3);",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(raw);
  }
  ASSERT_OK_AND_ASSIGN(auto store, harness.Open());
  EXPECT_EQ(store->SchemaVersion(), 4);
  EXPECT_EQ(CountRows(harness.path(), "sqlite_schema WHERE name IN ('messages_fts', 'memories_fts')"),
            0);
  SearchQuery query;
  query.text = "elephant";
  ASSERT_OK_AND_ASSIGN(auto hits, store->Search(query));
  std::vector<std::string> ids;
  for (const SearchHit& hit : hits) ids.push_back(hit.id);
  EXPECT_THAT(ids, ::testing::UnorderedElementsAre("m1", "c"));
  query.text = "elephants";
  ASSERT_OK_AND_ASSIGN(hits, store->Search(query));
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].id, "mem");

  // The rewritten triggers still keep the session and the message counter in step.
  NewMessage message;
  message.session_id = "s";
  message.user_id = "u";
  message.content = "a third";
  ASSERT_THAT(store->SaveMessage(message), IsOk());
  ASSERT_THAT(store->DeleteMessage("m2"), IsOk());
  ASSERT_OK_AND_ASSIGN(Session session, store->GetSession("s"));
  EXPECT_EQ(session.message_count, 2);
  EXPECT_EQ(CountRows(harness.path(), "counters WHERE name = 'messages' AND value = 2"), 1);
}

// SQLite's allocation counting takes a process-wide mutex on every malloc; the store turns it off
// at load time (store/internal/sqlite.cc). Counting off, SQLite reports no memory in use.
TEST(OpenTest, SqliteDoesNotCountAllocationsUnderItsGlobalMutex) {
  StoreHarness harness;
  ASSERT_OK_AND_ASSIGN(auto store, harness.Open());
  ASSERT_THAT(store->SaveMessage(StoreHarness::UserMessage("s", "counted?")), IsOk());
  EXPECT_EQ(sqlite3_memory_used(), 0);
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

// The schema's text has no checksum: a changed byte that renames a column passes quick_check
// and would leave every query failing. It is corruption, found on open and by the deep check.
TEST(OpenTest, SchemaTextThatDiffersFromTheMigrationsIsCorruption) {
  StoreHarness harness;
  {
    ASSERT_OK_AND_ASSIGN(auto store, harness.Open());
    ASSERT_THAT(store->SaveMessage(StoreHarness::UserMessage("s", "x")), IsOk());
  }
  RawSql raw(harness.path());
  raw.Exec("PRAGMA writable_schema = ON;"
           "UPDATE sqlite_schema SET sql = replace(sql, 'name       TEXT', 'nime       TEXT')"
           " WHERE name = 'users'");
  auto store = harness.Open();
  EXPECT_THAT(store, StatusIs(StatusCode::kCorruption));
  EXPECT_NE(store.status().message().find("table users"), std::string::npos)
      << store.status().message();

  // Put back, the store opens; the deep check sees a later change the same way.
  raw.Exec("UPDATE sqlite_schema SET sql = replace(sql, 'nime       TEXT', 'name       TEXT')"
           " WHERE name = 'users'");
  ASSERT_OK_AND_ASSIGN(auto reopened, harness.Open());
  ASSERT_OK_AND_ASSIGN(std::string deep, reopened->IntegrityCheck());
  EXPECT_EQ(deep, "ok");
  raw.Exec("UPDATE sqlite_schema SET sql = replace(sql, 'NOT NULL', 'NOT NULX') WHERE name = 'topics'");
  ASSERT_OK_AND_ASSIGN(deep, reopened->IntegrityCheck());
  EXPECT_NE(deep.find("table topics"), std::string::npos) << deep;
}

// Objects added by hand (an operator's index, ANALYZE's statistics) are not damage.
TEST(OpenTest, ObjectsAddedByHandAreLetBe) {
  StoreHarness harness;
  { ASSERT_OK_AND_ASSIGN(auto store, harness.Open()); }
  RawSql(harness.path()).Exec("CREATE INDEX messages_by_role ON messages(role); ANALYZE;");
  ASSERT_OK_AND_ASSIGN(auto store, harness.Open());
  ASSERT_OK_AND_ASSIGN(std::string deep, store->IntegrityCheck());
  EXPECT_EQ(deep, "ok");
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

// The WAL write gathering shim (store/internal/coalescing_vfs.h), over a FaultVfs that counts and
// fails the writes reaching it.
#include "store/internal/coalescing_vfs.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <string>

#include "store/memory_store.h"
#include "tests/support/fault_vfs.h"
#include "tests/support/matchers.h"
#include "tests/support/raw_sql.h"
#include "tests/support/store_fixture.h"
#include "tests/support/temp_dir.h"

namespace locrit {
namespace {

using ::locrit::testing::FaultVfs;
using ::locrit::testing::IsOk;
using ::locrit::testing::RawSql;
using ::locrit::testing::StoreHarness;
using ::locrit::testing::TempDir;

// A raw connection through a named VFS, in WAL mode with every commit synced and no automatic
// checkpoint, so that every write the VFS sees goes to the WAL.
class Connection {
 public:
  Connection(const std::string& path, const std::string& vfs) {
    EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                              vfs.c_str()),
              SQLITE_OK);
    EXPECT_EQ(Exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
                   "PRAGMA wal_autocheckpoint = 0"),
              SQLITE_OK);
  }
  ~Connection() { sqlite3_close(db_); }
  int Exec(const std::string& sql) {
    return sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
  }
  std::string Text(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK);
    std::string out;
    if (sqlite3_step(stmt) == SQLITE_ROW) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    }
    sqlite3_finalize(stmt);
    return out;
  }

 private:
  sqlite3* db_ = nullptr;
};

// A transaction that dirties pages of three B-trees (a table and two indexes).
constexpr const char* kSchema =
    "CREATE TABLE t(id INTEGER PRIMARY KEY, a TEXT UNIQUE, b TEXT);"
    "CREATE INDEX t_by_b ON t(b);";
std::string InsertRows(int first, int count) {
  return "WITH RECURSIVE n(value) AS (SELECT " + std::to_string(first) +
         " UNION ALL SELECT value + 1 FROM n WHERE value < " +
         std::to_string(first + count - 1) +
         ") INSERT INTO t(id, a, b) SELECT value, 'a' || value || hex(randomblob(40)),"
         " 'b' || hex(randomblob(40)) FROM n";
}

TEST(CoalescingVfsTest, ACommitsFramesReachTheFileAsOneWrite) {
  FaultVfs fault;
  TempDir dir;
  for (const bool gathered : {false, true}) {
    const std::string path = dir.path() / (gathered ? "gathered.db" : "plain.db");
    Connection db(path, gathered ? store_internal::CoalescingVfsName(fault.name()) : fault.name());
    ASSERT_EQ(db.Exec(kSchema), SQLITE_OK);
    const int64_t before = fault.total_ops(FaultVfs::kWrite);
    ASSERT_EQ(db.Exec("BEGIN; " + InsertRows(1, 20) + "; COMMIT"), SQLITE_OK);
    const int64_t writes = fault.total_ops(FaultVfs::kWrite) - before;
    if (gathered) {
      EXPECT_EQ(writes, 1);
    } else {
      EXPECT_GE(writes, 6);  // A header and a page per frame, three B-trees at least.
    }
    EXPECT_EQ(db.Text("SELECT count(*) FROM t"), "20");
  }
}

TEST(CoalescingVfsTest, SpilledPagesReadBackAndBigTransactionsAreWhole) {
  FaultVfs fault;
  TempDir dir;
  const std::string path = dir.path() / "big.db";
  {
    Connection db(path, store_internal::CoalescingVfsName(fault.name()));
    // A tiny page cache makes the transaction spill frames to the WAL mid-way and read them
    // back; 5 000 rows are far more than one gathering's 120 KiB.
    ASSERT_EQ(db.Exec(std::string(kSchema) + "PRAGMA cache_size = 4;"), SQLITE_OK);
    ASSERT_EQ(db.Exec("BEGIN; " + InsertRows(1, 5000) + ";"
                      "UPDATE t SET b = 'x' || b WHERE id % 7 = 0; COMMIT"),
              SQLITE_OK);
    EXPECT_EQ(db.Text("SELECT count(*) FROM t WHERE b LIKE 'x%'"), "714");
  }
  // Another connection, through SQLite's own VFS, reads the same file.
  RawSql plain(path);
  EXPECT_EQ(plain.Text("SELECT count(*) FROM t"), "5000");
  EXPECT_EQ(plain.Text("SELECT count(*) FROM t WHERE b LIKE 'x%'"), "714");
  EXPECT_EQ(plain.Text("PRAGMA integrity_check"), "ok");
}

// The gathered bytes reach the file at the commit's sync: a write that fails there (an I/O
// error, a full disk) fails that commit, and the file holds exactly the transactions before it.
TEST(CoalescingVfsTest, AWriteThatFailsAtTheSyncFailsItsCommitAndNothingElse) {
  for (const bool disk_full : {false, true}) {
    FaultVfs fault;
    TempDir dir;
    const std::string path = dir.path() / "fail.db";
    {
      Connection db(path, store_internal::CoalescingVfsName(fault.name()));
      ASSERT_EQ(db.Exec(kSchema), SQLITE_OK);
      ASSERT_EQ(db.Exec("BEGIN; " + InsertRows(1, 10) + "; COMMIT"), SQLITE_OK);
      FaultVfs::Fault failure;
      failure.disk_full = disk_full;
      fault.Arm(0, FaultVfs::kWrite, failure);
      const int rc = db.Exec("BEGIN; " + InsertRows(11, 10) + "; COMMIT");
      EXPECT_EQ(rc & 0xFF, disk_full ? SQLITE_FULL : SQLITE_IOERR) << rc;
      EXPECT_TRUE(fault.fired());
      fault.Disarm();
      db.Exec("ROLLBACK");
      EXPECT_EQ(db.Text("SELECT count(*) FROM t"), "10");
      // The connection goes on: the next commit writes its frames again, whole.
      ASSERT_EQ(db.Exec("BEGIN; " + InsertRows(21, 10) + "; COMMIT"), SQLITE_OK);
    }
    RawSql plain(path);
    EXPECT_EQ(plain.Text("SELECT count(*) FROM t"), "20");
    EXPECT_EQ(plain.Text("SELECT count(*) FROM t WHERE id BETWEEN 11 AND 20"), "0");
    EXPECT_EQ(plain.Text("PRAGMA integrity_check"), "ok");
  }
}

// Only a store whose every commit syncs may gather: with synchronous=NORMAL a reader on another
// connection could look for frames still held in memory.
TEST(CoalescingVfsTest, TheStoreGathersOnlyWhenEveryCommitSyncs) {
  for (const Durability durability : {Durability::kFull, Durability::kRelaxed}) {
    FaultVfs fault;
    StoreHarness harness;
    harness.options().vfs = fault.name();
    harness.options().durability = durability;
    ASSERT_OK_AND_ASSIGN(auto store, harness.Open());
    ASSERT_THAT(store->SaveMessage(StoreHarness::UserMessage("s", "first")), IsOk());
    const int64_t before = fault.total_ops(FaultVfs::kWrite);
    ASSERT_THAT(store->SaveMessage(StoreHarness::UserMessage("s", "second")), IsOk());
    const int64_t writes = fault.total_ops(FaultVfs::kWrite) - before;
    if (durability == Durability::kFull) {
      EXPECT_EQ(writes, 1);
    } else {
      EXPECT_GE(writes, 10);
    }
  }
}

}  // namespace
}  // namespace locrit

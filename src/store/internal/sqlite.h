// A thin RAII layer over the SQLite C API for store/: a connection with a prepared-statement
// cache, a statement handle that resets itself, transactions, and the one mapping from SQLite
// result codes to Status (STYLE.md).
//
// Thread-compatible: a Db and its statements are used by one thread at a time.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/status.h"

namespace locrit::store_internal {

// SQLITE_BUSY/LOCKED -> unavailable, IOERR/FULL/CANTOPEN/PERM/READONLY -> io_error,
// CORRUPT/NOTADB -> corruption, CONSTRAINT/MISMATCH/TOOBIG/RANGE -> invalid_argument,
// NOMEM -> resource_exhausted, anything else -> internal.
StatusCode CodeForSqlite(int rc);

class Db;

// A prepared statement borrowed from a Db's cache. Resets and clears its bindings when it goes
// out of scope, so a cached statement never keeps a read transaction open. Move-only.
class Stmt {
 public:
  Stmt() = default;
  Stmt(Db* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  Stmt(Stmt&& other) noexcept;
  Stmt& operator=(Stmt&& other) noexcept;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt();

  // Parameters are 1-based. Text and blobs are copied (SQLITE_TRANSIENT).
  Stmt& Bind(int index, int64_t value);
  Stmt& Bind(int index, int value) { return Bind(index, static_cast<int64_t>(value)); }
  Stmt& Bind(int index, double value);
  Stmt& Bind(int index, std::string_view value);
  Stmt& Bind(int index, const std::string& value) { return Bind(index, std::string_view(value)); }
  Stmt& Bind(int index, const char* value) { return Bind(index, std::string_view(value)); }
  Stmt& BindBlob(int index, std::span<const std::byte> value);
  Stmt& BindNull(int index);

  // Binds each argument to parameters 1..N in order.
  template <typename... Args>
  Stmt& BindAll(const Args&... args) {
    int i = 0;
    (Bind(++i, args), ...);
    return *this;
  }

  // Advances to the next row: true when a row is available, false when done.
  Result<bool> Step();
  // Steps until done, for statements run for their effect.
  Status Run();

  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  double Double(int col) const { return sqlite3_column_double(stmt_, col); }
  std::string Text(int col) const { return std::string(TextView(col)); }
  std::string_view TextView(int col) const;
  std::span<const std::byte> Blob(int col) const;
  bool IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

  sqlite3_stmt* raw() const { return stmt_; }

 private:
  void Release();
  void Rewind();

  Db* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
  bool rewound_ = true;  // False once stepped: the next Bind resets first.
};

struct DbOpenOptions {
  bool read_only = false;
  bool create = true;
  std::string vfs;  // Empty: SQLite's default VFS.
  // Through the WAL write gathering shim over `vfs` (coalescing_vfs.h). Only for connections
  // whose every commit syncs the WAL (synchronous=FULL).
  bool coalesce_wal_writes = false;
};

// One SQLite connection. Owns its statement cache; statements must not outlive it.
class Db {
 public:
  static Result<std::unique_ptr<Db>> Open(const std::string& path, const DbOpenOptions& options);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // Runs one or more statements that return no rows we need.
  Status Exec(std::string_view sql);

  // Runs one statement from the statement cache, for the fixed statements run on every write
  // (BEGIN, COMMIT, SAVEPOINT, RELEASE, ROLLBACK): Exec would parse them again each time.
  Status RunCached(std::string_view sql);

  // Returns the cached prepared statement for `sql`, preparing it on first use.
  // REQUIRES: the same SQL is not already borrowed (statements are not re-entrant).
  Result<Stmt> Prepare(std::string_view sql);

  // A one-off statement (not cached), e.g. for PRAGMAs built at run time.
  Result<int64_t> QueryInt(std::string_view sql);
  // A one-off statement's first column of every row, as text (e.g. the integrity pragmas, whose
  // programs cover every table and are not worth keeping prepared).
  Result<std::vector<std::string>> QueryTexts(std::string_view sql);

  int64_t Changes() const { return sqlite3_changes64(db_); }
  int64_t LastInsertRowid() const { return sqlite3_last_insert_rowid(db_); }
  bool InTransaction() const { return sqlite3_get_autocommit(db_) == 0; }

  // The Status for result code `rc` of an operation described by `what`, with SQLite's message.
  Status Error(int rc, std::string_view what) const;

  sqlite3* raw() const { return db_; }
  const std::string& path() const { return path_; }

 private:
  Db(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  friend class Stmt;

  sqlite3* db_;
  std::string path_;
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

// A unit of work that is all-or-nothing. At the top level it is BEGIN IMMEDIATE ... COMMIT; inside
// an enclosing transaction (a batch of writes committed together) it is a SAVEPOINT, so a failing
// write undoes only itself. Begins on construction (see status()); rolls back on destruction
// unless committed.
class Transaction {
 public:
  explicit Transaction(Db* db);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  const Status& status() const { return begin_status_; }
  Status Commit();

 private:
  Db* db_;
  Status begin_status_;
  bool open_ = false;
  bool nested_ = false;
};

}  // namespace locrit::store_internal

#include "store/internal/sqlite.h"

#include "store/internal/coalescing_vfs.h"

#include <fmt/format.h>

namespace locrit::store_internal {
namespace {

// SQLite counts every allocation under one process-wide mutex unless told not to. With several
// work-pool threads running statements, that mutex was the hottest lock in the process: in a
// group-commit benchmark a third of the CPU went to taking it and waking its waiters. Nothing
// reads those counts (sqlite3_memory_used, soft heap limits). The setting only takes before
// SQLite initializes, hence at load time, before main and before any thread.
[[maybe_unused]] const int kAllocationCountingOff = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);

}  // namespace

StatusCode CodeForSqlite(int rc) {
  switch (rc & 0xFF) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
      return StatusCode::kOk;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return StatusCode::kUnavailable;
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_PROTOCOL:
      return StatusCode::kIoError;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return StatusCode::kCorruption;
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
      return StatusCode::kInvalidArgument;
    case SQLITE_NOMEM:
      return StatusCode::kResourceExhausted;
    case SQLITE_INTERRUPT:
      return StatusCode::kCancelled;
    default:
      return StatusCode::kInternal;
  }
}

Stmt::Stmt(Stmt&& other) noexcept
    : db_(other.db_), stmt_(other.stmt_), rewound_(other.rewound_) {
  other.db_ = nullptr;
  other.stmt_ = nullptr;
}

Stmt& Stmt::operator=(Stmt&& other) noexcept {
  if (this != &other) {
    Release();
    db_ = other.db_;
    stmt_ = other.stmt_;
    rewound_ = other.rewound_;
    other.db_ = nullptr;
    other.stmt_ = nullptr;
  }
  return *this;
}

Stmt::~Stmt() { Release(); }

void Stmt::Release() {
  if (stmt_ != nullptr) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    stmt_ = nullptr;
  }
}

void Stmt::Rewind() {
  // Binding is only allowed on a statement that is not mid-run or halted; resetting keeps the
  // earlier bindings, so a cached statement can be re-bound and run again in a loop.
  if (!rewound_) {
    sqlite3_reset(stmt_);
    rewound_ = true;
  }
}

Stmt& Stmt::Bind(int index, int64_t value) {
  Rewind();
  sqlite3_bind_int64(stmt_, index, value);
  return *this;
}

Stmt& Stmt::Bind(int index, double value) {
  Rewind();
  sqlite3_bind_double(stmt_, index, value);
  return *this;
}

Stmt& Stmt::Bind(int index, std::string_view value) {
  Rewind();
  sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  return *this;
}

Stmt& Stmt::BindBlob(int index, std::span<const std::byte> value) {
  Rewind();
  sqlite3_bind_blob64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT);
  return *this;
}

Stmt& Stmt::BindNull(int index) {
  Rewind();
  sqlite3_bind_null(stmt_, index);
  return *this;
}

Result<bool> Stmt::Step() {
  rewound_ = false;
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return db_->Error(rc, "step");
}

Status Stmt::Run() {
  while (true) {
    ASSIGN_OR_RETURN(const bool row, Step());
    if (!row) return Status::Ok();
  }
}

std::string_view Stmt::TextView(int col) const {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
  if (text == nullptr) return {};
  return std::string_view(text, static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
}

std::span<const std::byte> Stmt::Blob(int col) const {
  const auto* data = static_cast<const std::byte*>(sqlite3_column_blob(stmt_, col));
  if (data == nullptr) return {};
  return {data, static_cast<size_t>(sqlite3_column_bytes(stmt_, col))};
}

Result<std::unique_ptr<Db>> Db::Open(const std::string& path, const DbOpenOptions& options) {
  int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
  flags |= options.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
  if (options.create && !options.read_only) flags |= SQLITE_OPEN_CREATE;
  const std::string vfs =
      options.coalesce_wal_writes ? CoalescingVfsName(options.vfs) : options.vfs;
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw, flags, vfs.empty() ? nullptr : vfs.c_str());
  if (rc != SQLITE_OK) {
    std::string message = raw != nullptr ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
    sqlite3_close_v2(raw);
    return Status(CodeForSqlite(rc), fmt::format("cannot open {}: {}", path, message));
  }
  sqlite3_extended_result_codes(raw, 1);
  return std::unique_ptr<Db>(new Db(raw, path));
}

Db::~Db() {
  for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);
}

Status Db::Exec(std::string_view sql) {
  const std::string owned(sql);
  const int rc = sqlite3_exec(db_, owned.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return Error(rc, "exec");
  return Status::Ok();
}

Status Db::RunCached(std::string_view sql) {
  ASSIGN_OR_RETURN(Stmt stmt, Prepare(sql));
  return stmt.Run();
}

Result<Stmt> Db::Prepare(std::string_view sql) {
  std::string key(sql);
  auto it = cache_.find(key);
  if (it == cache_.end()) {
    sqlite3_stmt* stmt = nullptr;
    const int rc = sqlite3_prepare_v3(db_, key.data(), static_cast<int>(key.size()),
                                      SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) return Error(rc, "prepare");
    it = cache_.emplace(std::move(key), stmt).first;
  }
  return Stmt(this, it->second);
}

Result<int64_t> Db::QueryInt(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) return Error(rc, "prepare");
  rc = sqlite3_step(stmt);
  int64_t value = 0;
  if (rc == SQLITE_ROW) {
    value = sqlite3_column_int64(stmt, 0);
    rc = SQLITE_OK;
  } else if (rc == SQLITE_DONE) {
    rc = SQLITE_OK;
  }
  sqlite3_finalize(stmt);
  if (rc != SQLITE_OK) return Error(rc, "query");
  return value;
}

Result<std::vector<std::string>> Db::QueryTexts(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) return Error(rc, "prepare");
  std::vector<std::string> rows;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    rows.emplace_back(text != nullptr ? text : "");
  }
  sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE) return Error(rc, "query");
  return rows;
}

Status Db::Error(int rc, std::string_view what) const {
  const char* detail = sqlite3_errmsg(db_);
  if (sqlite3_errcode(db_) != rc) detail = sqlite3_errstr(rc);
  return Status(CodeForSqlite(rc), fmt::format("{} ({}): {}", what, path_, detail));
}

Transaction::Transaction(Db* db) : db_(db), nested_(db->InTransaction()) {
  begin_status_ = db_->RunCached(nested_ ? "SAVEPOINT unit" : "BEGIN IMMEDIATE");
  // After SQLITE_FULL aborted a transaction whose pages had spilled to the WAL, SQLite 3.40 fails
  // the connection's next BEGIN once more with the same error although the disk has room again.
  // One retry tells that echo apart from a disk that is still full.
  if (!begin_status_.ok() && !nested_ && begin_status_.code() == StatusCode::kIoError) {
    begin_status_ = db_->RunCached("BEGIN IMMEDIATE");
  }
  open_ = begin_status_.ok();
}

Transaction::~Transaction() {
  if (!open_ || !db_->InTransaction()) return;
  if (nested_) {
    if (db_->RunCached("ROLLBACK TO unit").ok()) (void)db_->RunCached("RELEASE unit");
  } else {
    (void)db_->RunCached("ROLLBACK");
  }
}

Status Transaction::Commit() {
  if (!open_) return begin_status_.ok() ? InternalError("transaction already finished") : begin_status_;
  Status status = db_->RunCached(nested_ ? "RELEASE unit" : "COMMIT");
  if (!status.ok()) return status;  // The destructor rolls back what is left.
  open_ = false;
  return Status::Ok();
}

}  // namespace locrit::store_internal

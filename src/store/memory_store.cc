// MemoryStore: opening, schema, messages, sessions, retention, integrity and snapshots.
// Search, graph, transfer and vector operations live in the sibling memory_store_*.cc files.
#include "store/memory_store.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>

#include "base/utf8.h"
#include "store/internal/rows.h"
#include "store/internal/schema.h"
#include "store/internal/sqlite.h"
#include "store/internal/keyword_index.h"
#include "store/internal/vector_cache.h"

namespace locrit {

using store_internal::Db;
using store_internal::Stmt;
using store_internal::Transaction;

namespace {

// Free pages worth returning to the file system in one go; smaller amounts wait, so that a save
// at the retention cap pays for reclaiming only now and then.
constexpr int64_t kReclaimThresholdPages = 256;

Status ValidateText(std::string_view text, std::string_view field) {
  if (!IsValidUtf8(text)) return InvalidArgumentError(fmt::format("{} is not valid UTF-8", field));
  return Status::Ok();
}

Status FsyncPath(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), (directory ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError(fmt::format("cannot open {} to sync it", path));
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return IoError(fmt::format("fsync of {} failed", path));
  return Status::Ok();
}

}  // namespace

MemoryStore::MemoryStore(StoreOptions options, std::unique_ptr<Db> db)
    : options_(std::move(options)),
      db_(std::move(db)),
      vectors_(std::make_unique<store_internal::VectorCache>()),
      keywords_(std::make_unique<store_internal::KeywordIndex>()) {}

MemoryStore::~MemoryStore() = default;

Result<std::unique_ptr<MemoryStore>> MemoryStore::Open(const StoreOptions& options) {
  if (options.clock == nullptr || options.ids == nullptr) {
    std::fputs("locrit: MemoryStore::Open needs a clock and an id generator\n", stderr);
    std::abort();
  }
  if (options.max_messages < 0) {
    return InvalidArgumentError("max_messages must be 0 (unlimited) or positive");
  }
  store_internal::DbOpenOptions db_options;
  db_options.read_only = options.read_only;
  db_options.vfs = options.vfs;
  // Every commit of a FULL store syncs its WAL, which is what makes gathering its writes safe.
  db_options.coalesce_wal_writes = options.durability == Durability::kFull && !options.read_only;
  ASSIGN_OR_RETURN(auto db, Db::Open(options.path, db_options));
  std::unique_ptr<MemoryStore> store(new MemoryStore(options, std::move(db)));
  ASSIGN_OR_RETURN(const int64_t pages, store->db_->QueryInt("PRAGMA page_count"));
  RETURN_IF_ERROR(store->Configure(pages == 0));
  RETURN_IF_ERROR(store->Migrate());
  return store;
}

Status MemoryStore::Configure(bool is_new) {
  // auto_vacuum can only be chosen before the first table exists.
  if (is_new && !options_.read_only) RETURN_IF_ERROR(db_->Exec("PRAGMA auto_vacuum = INCREMENTAL"));
  RETURN_IF_ERROR(db_->Exec(fmt::format(
      "PRAGMA foreign_keys = ON; PRAGMA synchronous = {}; PRAGMA cache_size = -{};"
      "PRAGMA temp_store = MEMORY; PRAGMA busy_timeout = 5000;",
      options_.durability == Durability::kFull ? "FULL" : "NORMAL", options_.cache_kib)));
  if (!options_.read_only) {
    ASSIGN_OR_RETURN(Stmt wal, db_->Prepare("PRAGMA journal_mode = WAL"));
    ASSIGN_OR_RETURN(const bool row, wal.Step());
    if (!row || wal.TextView(0) != "wal") {
      return IoError(fmt::format("{}: cannot switch to WAL journal mode", options_.path));
    }
  }
  return Status::Ok();
}

// The header's user_version is four bytes without a checksum. The store keeps a second copy in
// counters('schema_version'), written in the same transaction, so that a damaged header is told
// apart from a file written by a newer build (which writes both) and is repaired, not refused.
Status MemoryStore::CheckRecordedVersion(int64_t version) {
  ASSIGN_OR_RETURN(const int64_t objects, db_->QueryInt("SELECT count(*) FROM sqlite_schema"));
  if (version == 0) {
    if (objects == 0) return Status::Ok();  // A new database.
    return CorruptionError(fmt::format(
        "{}: the header says the memory is empty (schema version 0) but it has {} schema objects",
        options_.path, objects));
  }
  std::optional<int64_t> recorded;
  if (auto stmt = db_->Prepare("SELECT value FROM counters WHERE name = 'schema_version'");
      stmt.ok()) {
    ASSIGN_OR_RETURN(const bool row, stmt->Step());
    if (row) recorded = stmt->Int(0);
  }
  if (recorded == version) return Status::Ok();
  return CorruptionError(fmt::format(
      "{}: the header says schema version {} but the memory records {}", options_.path, version,
      recorded ? std::to_string(*recorded) : std::string("none")));
}

Status MemoryStore::Migrate() {
  ASSIGN_OR_RETURN(const int64_t version, db_->QueryInt("PRAGMA user_version"));
  RETURN_IF_ERROR(CheckRecordedVersion(version));
  const auto migrations = store_internal::Migrations();
  const int64_t latest = static_cast<int64_t>(migrations.size());
  if (version > latest) {
    return FailedPreconditionError(fmt::format(
        "{} has memory schema version {}, newer than this build's {}; upgrade Locrit",
        options_.path, version, latest));
  }
  if (version < latest && options_.read_only) {
    return FailedPreconditionError(
        fmt::format("{} has schema version {} and a read-only open cannot migrate it to {}",
                    options_.path, version, latest));
  }
  for (int64_t v = version; v < latest; ++v) {
    Transaction tx(db_.get());
    RETURN_IF_ERROR(tx.status());
    RETURN_IF_ERROR(db_->Exec(migrations[static_cast<size_t>(v)]));
    RETURN_IF_ERROR(db_->Exec(fmt::format(
        "PRAGMA user_version = {0}; INSERT INTO counters(name, value) VALUES ('schema_version', {0})"
        " ON CONFLICT(name) DO UPDATE SET value = excluded.value",
        v + 1)));
    RETURN_IF_ERROR(tx.Commit());
  }
  schema_version_ = static_cast<int>(latest);
  ASSIGN_OR_RETURN(const std::string damage, SchemaDamage());
  if (!damage.empty()) return CorruptionError(fmt::format("{}: {}", options_.path, damage));
  return Status::Ok();
}

Result<std::string> MemoryStore::SchemaDamage() {
  // One pass in name order, like ExpectedSchema: sqlite_schema has no index, so a lookup per
  // object would read the whole table each time.
  ASSIGN_OR_RETURN(Stmt stmt, db_->Prepare(
      "SELECT type, name, coalesce(sql, '') FROM sqlite_schema ORDER BY name"));
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  for (const store_internal::SchemaObject& expected : store_internal::ExpectedSchema()) {
    // Objects added by hand sort in between; skip them.
    while (row && stmt.TextView(1) < expected.name) {
      ASSIGN_OR_RETURN(row, stmt.Step());
    }
    if (!row || stmt.TextView(1) != expected.name) {
      return fmt::format("the schema has no {} {}", expected.type, expected.name);
    }
    if (stmt.TextView(0) != expected.type || stmt.TextView(2) != expected.sql) {
      return fmt::format("the schema's {} {} is not the one this build creates", expected.type,
                         expected.name);
    }
    ASSIGN_OR_RETURN(row, stmt.Step());
  }
  return std::string();
}

int MemoryStore::SchemaVersion() const { return schema_version_; }

// ---- Messages and sessions ----

Status MemoryStore::EnsureSession(const NewMessage& message, int64_t now) {
  ASSIGN_OR_RETURN(Stmt user, db_->Prepare(
      "INSERT INTO users(id, name, created_at) VALUES (?1, ?2, ?3) "
      "ON CONFLICT(id) DO UPDATE SET name = excluded.name "
      "WHERE excluded.name <> '' AND excluded.name <> users.name"));
  RETURN_IF_ERROR(user.BindAll(message.user_id, message.user_name, now).Run());
  ASSIGN_OR_RETURN(Stmt session, db_->Prepare(
      "INSERT INTO sessions(id, user_id, name, topic, created_at, last_activity) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT(id) DO NOTHING"));
  return session
      .BindAll(message.session_id, message.user_id, message.session_name, message.session_topic,
               now)
      .Run();
}

Result<SavedMessage> MemoryStore::SaveMessage(const NewMessage& message) {
  if (message.session_id.empty()) return InvalidArgumentError("session_id is required");
  if (message.user_id.empty()) return InvalidArgumentError("user_id is required");
  RETURN_IF_ERROR(ValidateText(message.session_id, "session_id"));
  RETURN_IF_ERROR(ValidateText(message.user_id, "user_id"));
  RETURN_IF_ERROR(ValidateText(message.user_name, "user_name"));
  RETURN_IF_ERROR(ValidateText(message.content, "content"));
  RETURN_IF_ERROR(ValidateText(message.session_name, "session_name"));
  RETURN_IF_ERROR(ValidateText(message.session_topic, "session_topic"));
  if (message.id && (message.id->empty() || !IsValidUtf8(*message.id))) {
    return InvalidArgumentError("message id must be non-empty UTF-8");
  }
  const std::string metadata = message.metadata.empty() ? "{}" : message.metadata;

  Transaction tx(db_.get());
  RETURN_IF_ERROR(tx.status());

  if (metadata != "{}") {
    ASSIGN_OR_RETURN(Stmt check, db_->Prepare("SELECT CASE WHEN json_valid(?1) THEN json_type(?1) = 'object' ELSE 0 END"));
    ASSIGN_OR_RETURN(const bool row, check.Bind(1, metadata).Step());
    if (!row || check.Int(0) == 0) return InvalidArgumentError("metadata must be a JSON object");
  }

  SavedMessage saved;
  saved.id = message.id ? *message.id : options_.ids->Next();
  saved.created_at = message.created_at ? *message.created_at : Now();
  saved.session_id = message.session_id;

  if (message.id) {
    ASSIGN_OR_RETURN(Stmt exists, db_->Prepare("SELECT 1 FROM messages WHERE id = ?1"));
    ASSIGN_OR_RETURN(const bool found, exists.Bind(1, saved.id).Step());
    if (found) return AlreadyExistsError(fmt::format("message {} already exists", saved.id));
  }

  RETURN_IF_ERROR(EnsureSession(message, saved.created_at));

  // The previous message of the session, which this one responds to unless told otherwise.
  int64_t position = 0;
  std::optional<int64_t> previous_created_at;
  {
    ASSIGN_OR_RETURN(Stmt count, db_->Prepare("SELECT message_count FROM sessions WHERE id = ?1"));
    ASSIGN_OR_RETURN(const bool row, count.Bind(1, saved.session_id).Step());
    if (row) position = count.Int(0);
  }
  if (message.responds_to) {
    ASSIGN_OR_RETURN(Stmt target, db_->Prepare("SELECT created_at FROM messages WHERE id = ?1"));
    ASSIGN_OR_RETURN(const bool found, target.Bind(1, *message.responds_to).Step());
    if (!found) {
      return NotFoundError(fmt::format("responds_to: message {} does not exist", *message.responds_to));
    }
    saved.responds_to = *message.responds_to;
    previous_created_at = target.Int(0);
  } else if (position > 0) {
    ASSIGN_OR_RETURN(Stmt last, db_->Prepare(
        "SELECT id, created_at FROM messages WHERE session_id = ?1 ORDER BY seq DESC LIMIT 1"));
    ASSIGN_OR_RETURN(const bool found, last.Bind(1, saved.session_id).Step());
    if (found) {
      saved.responds_to = last.Text(0);
      previous_created_at = last.Int(1);
    }
  }

  {
    ASSIGN_OR_RETURN(Stmt insert, db_->Prepare(
        "INSERT INTO messages(id, session_id, user_id, role, content, created_at, metadata, status,"
        " position) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"));
    // SENT and PART_OF are these columns (views over messages, docs/memory-format.md).
    RETURN_IF_ERROR(insert
                        .BindAll(saved.id, saved.session_id, message.user_id,
                                 RoleName(message.role), message.content, saved.created_at,
                                 metadata, MessageStatusName(message.status), position)
                        .Run());
    saved.seq = db_->LastInsertRowid();
  }
  if (saved.responds_to) {
    ASSIGN_OR_RETURN(Stmt responds, db_->Prepare(
        "INSERT INTO responds_to(from_id, to_id, delay_seconds) VALUES (?1, ?2, ?3)"));
    const int64_t delay = std::max<int64_t>(0, (saved.created_at - *previous_created_at) / 1000);
    RETURN_IF_ERROR(responds.BindAll(saved.id, *saved.responds_to, delay).Run());
  }

  RETURN_IF_ERROR(EnforceRetention(saved));
  RETURN_IF_ERROR(tx.Commit());
  return saved;
}

Status MemoryStore::EnforceRetention(SavedMessage& saved) {
  if (options_.max_messages <= 0) return Status::Ok();
  int64_t count = 0;
  {
    ASSIGN_OR_RETURN(Stmt counter, db_->Prepare("SELECT value FROM counters WHERE name = 'messages'"));
    ASSIGN_OR_RETURN(const bool row, counter.Step());
    if (row) count = counter.Int(0);
  }
  const int64_t excess = count - options_.max_messages;
  if (excess <= 0) return Status::Ok();

  // The newest seq to delete: walking the rowid B-tree from the start costs O(excess).
  int64_t cutoff = 0;
  {
    ASSIGN_OR_RETURN(Stmt find, db_->Prepare(
        "SELECT seq FROM messages ORDER BY seq LIMIT 1 OFFSET ?1"));
    ASSIGN_OR_RETURN(const bool row, find.Bind(1, excess - 1).Step());
    if (!row) return InternalError("retention: message counter is ahead of the messages table");
    cutoff = find.Int(0);
  }
  std::vector<std::string> touched_sessions;
  {
    // NOT INDEXED: the covering (session_id, seq) index would tempt the planner into reading
    // every entry; the rowid range reads only the rows about to go.
    ASSIGN_OR_RETURN(Stmt sessions, db_->Prepare(
        "SELECT DISTINCT session_id FROM messages NOT INDEXED WHERE seq <= ?1"));
    sessions.Bind(1, cutoff);
    while (true) {
      ASSIGN_OR_RETURN(const bool row, sessions.Step());
      if (!row) break;
      touched_sessions.push_back(sessions.Text(0));
    }
  }
  {
    ASSIGN_OR_RETURN(Stmt evict, db_->Prepare("DELETE FROM messages WHERE seq <= ?1"));
    RETURN_IF_ERROR(evict.Bind(1, cutoff).Run());
    saved.evicted = db_->Changes();
  }
  {
    ASSIGN_OR_RETURN(Stmt drop, db_->Prepare(
        "DELETE FROM sessions WHERE id = ?1 AND message_count <= 0"));
    for (const std::string& id : touched_sessions) RETURN_IF_ERROR(drop.Bind(1, id).Run());
  }
  ASSIGN_OR_RETURN(const int64_t free_pages, db_->QueryInt("PRAGMA freelist_count"));
  if (free_pages >= kReclaimThresholdPages) RETURN_IF_ERROR(ReclaimSpace(0));
  return Status::Ok();
}

Result<std::vector<Message>> MemoryStore::History(const HistoryQuery& query) {
  const int limit = std::clamp(query.limit, 1, kMaxHistory);
  ASSIGN_OR_RETURN(Stmt session, db_->Prepare("SELECT 1 FROM sessions WHERE id = ?1"));
  ASSIGN_OR_RETURN(const bool exists, session.Bind(1, query.session_id).Step());
  if (!exists) return NotFoundError(fmt::format("session {} does not exist", query.session_id));

  static const std::string kSql = fmt::format(
      "SELECT {} FROM messages WHERE session_id = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3",
      store_internal::kMessageColumns);
  ASSIGN_OR_RETURN(Stmt stmt, db_->Prepare(kSql));
  stmt.BindAll(query.session_id, query.before_seq.value_or(std::numeric_limits<int64_t>::max()),
               limit);
  std::vector<Message> out;
  while (true) {
    ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) break;
    out.push_back(store_internal::ReadMessage(stmt));
  }
  std::reverse(out.begin(), out.end());
  return out;
}

Result<Message> MemoryStore::GetMessage(const std::string& id) {
  static const std::string kSql =
      fmt::format("SELECT {} FROM messages WHERE id = ?1", store_internal::kMessageColumns);
  ASSIGN_OR_RETURN(Stmt stmt, db_->Prepare(kSql));
  ASSIGN_OR_RETURN(const bool row, stmt.Bind(1, id).Step());
  if (!row) return NotFoundError(fmt::format("message {} does not exist", id));
  return store_internal::ReadMessage(stmt);
}

Status MemoryStore::EditMessage(const std::string& id, const std::string& content) {
  RETURN_IF_ERROR(ValidateText(content, "content"));
  Transaction tx(db_.get());
  RETURN_IF_ERROR(tx.status());
  ASSIGN_OR_RETURN(Stmt stmt, db_->Prepare("UPDATE messages SET content = ?2 WHERE id = ?1"));
  RETURN_IF_ERROR(stmt.BindAll(id, content).Run());
  if (db_->Changes() == 0) return NotFoundError(fmt::format("message {} does not exist", id));
  // The vector was the old text's meaning: gone with it, so the message is embedded again.
  ASSIGN_OR_RETURN(Stmt stale, db_->Prepare("DELETE FROM message_vectors WHERE node_id = ?1"));
  RETURN_IF_ERROR(stale.Bind(1, id).Run());
  return tx.Commit();
}

Status MemoryStore::SetMessageStatus(const std::string& id, MessageStatus status) {
  Transaction tx(db_.get());
  RETURN_IF_ERROR(tx.status());
  ASSIGN_OR_RETURN(Stmt stmt, db_->Prepare("UPDATE messages SET status = ?2 WHERE id = ?1"));
  RETURN_IF_ERROR(stmt.BindAll(id, MessageStatusName(status)).Run());
  if (db_->Changes() == 0) return NotFoundError(fmt::format("message {} does not exist", id));
  return tx.Commit();
}

Status MemoryStore::DeleteMessage(const std::string& id) {
  Transaction tx(db_.get());
  RETURN_IF_ERROR(tx.status());
  ASSIGN_OR_RETURN(Stmt stmt, db_->Prepare("DELETE FROM messages WHERE id = ?1"));
  RETURN_IF_ERROR(stmt.Bind(1, id).Run());
  if (db_->Changes() == 0) return NotFoundError(fmt::format("message {} does not exist", id));
  return tx.Commit();
}

Result<std::vector<Session>> MemoryStore::ListSessions(int limit) {
  static const std::string kSql = fmt::format(
      "SELECT {} FROM sessions ORDER BY last_activity DESC, id LIMIT ?1",
      store_internal::kSessionColumns);
  ASSIGN_OR_RETURN(Stmt stmt, db_->Prepare(kSql));
  stmt.Bind(1, std::clamp(limit, 1, kMaxListResults));
  std::vector<Session> out;
  while (true) {
    ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) break;
    out.push_back(store_internal::ReadSession(stmt));
  }
  return out;
}

Result<Session> MemoryStore::GetSession(const std::string& id) {
  static const std::string kSql =
      fmt::format("SELECT {} FROM sessions WHERE id = ?1", store_internal::kSessionColumns);
  ASSIGN_OR_RETURN(Stmt stmt, db_->Prepare(kSql));
  ASSIGN_OR_RETURN(const bool row, stmt.Bind(1, id).Step());
  if (!row) return NotFoundError(fmt::format("session {} does not exist", id));
  return store_internal::ReadSession(stmt);
}

Status MemoryStore::DeleteSession(const std::string& id) {
  Transaction tx(db_.get());
  RETURN_IF_ERROR(tx.status());
  ASSIGN_OR_RETURN(Stmt stmt, db_->Prepare("DELETE FROM sessions WHERE id = ?1"));
  RETURN_IF_ERROR(stmt.Bind(1, id).Run());
  if (db_->Changes() == 0) return NotFoundError(fmt::format("session {} does not exist", id));
  return tx.Commit();
}

Result<User> MemoryStore::GetUser(const std::string& id) {
  ASSIGN_OR_RETURN(Stmt stmt, db_->Prepare("SELECT id, name, created_at FROM users WHERE id = ?1"));
  ASSIGN_OR_RETURN(const bool row, stmt.Bind(1, id).Step());
  if (!row) return NotFoundError(fmt::format("user {} does not exist", id));
  return User{stmt.Text(0), stmt.Text(1), stmt.Int(2)};
}

// ---- Group commit ----

Status MemoryStore::BeginBatch() {
  if (db_->InTransaction()) return FailedPreconditionError("a batch is already open");
  Status status = db_->RunCached("BEGIN IMMEDIATE");
  // See Transaction: one retry absorbs SQLite's echo of an earlier disk-full abort.
  if (status.code() == StatusCode::kIoError) status = db_->RunCached("BEGIN IMMEDIATE");
  return status;
}

Status MemoryStore::CommitBatch() {
  if (!db_->InTransaction()) return FailedPreconditionError("no batch is open");
  return db_->RunCached("COMMIT");
}

void MemoryStore::RollbackBatch() {
  if (db_->InTransaction()) (void)db_->RunCached("ROLLBACK");
}

bool MemoryStore::InBatch() const { return db_->InTransaction(); }

Status MemoryStore::Atomically(const std::function<Status()>& body) {
  Transaction tx(db_.get());
  RETURN_IF_ERROR(tx.status());
  RETURN_IF_ERROR(body());
  return tx.Commit();
}

Status MemoryStore::ReadConsistently(const std::function<Status()>& body) {
  if (db_->InTransaction()) return body();
  RETURN_IF_ERROR(db_->RunCached("BEGIN"));
  Status status = body();
  // A read transaction has nothing to keep: ending it either way only releases the read lock.
  Status ended = db_->RunCached(status.ok() ? "COMMIT" : "ROLLBACK");
  if (!ended.ok() && db_->InTransaction()) (void)db_->RunCached("ROLLBACK");
  return status.ok() ? ended : status;
}

// ---- Integrity and backup ----

Result<std::string> MemoryStore::QuickCheck() {
  // The check reads every page once. Through a page cache of a few pages it recycles the same
  // buffers; through the full cache each page would cost an allocation and a first touch of fresh
  // memory, kept until ReleaseMemory frees it again: most of the time an open spends in the check.
  const bool small_cache = !db_->InTransaction();  // Shrinking would spill a writer's dirty pages.
  if (small_cache) RETURN_IF_ERROR(db_->Exec("PRAGMA cache_size = 32"));
  Result<std::vector<std::string>> rows = db_->QueryTexts("PRAGMA quick_check");
  if (small_cache) {
    const Status restored = db_->Exec(fmt::format("PRAGMA cache_size = -{}", options_.cache_kib));
    if (rows.ok()) RETURN_IF_ERROR(restored);
  }
  if (!rows.ok()) return rows.status();
  return fmt::format("{}", fmt::join(*rows, "\n"));
}

Result<int64_t> MemoryStore::DanglingReferences() {
  ASSIGN_OR_RETURN(Stmt stmt, db_->Prepare("PRAGMA foreign_key_check"));
  int64_t count = 0;
  while (true) {
    ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) break;
    ++count;
  }
  // A message's sender is a column, not a foreign key (its SENT edge is a view that joins
  // users), so foreign_key_check cannot see a message whose user row is gone.
  ASSIGN_OR_RETURN(const int64_t senderless, db_->QueryInt(
      "SELECT count(*) FROM messages m WHERE m.user_id <> '' "
      "AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = m.user_id)"));
  return count + senderless;
}

Result<std::string> MemoryStore::IntegrityCheck() {
  ASSIGN_OR_RETURN(const std::vector<std::string> rows, db_->QueryTexts("PRAGMA integrity_check"));
  const std::string out = fmt::format("{}", fmt::join(rows, "\n"));
  if (out != "ok") return out;
  ASSIGN_OR_RETURN(const std::string schema_damage, SchemaDamage());
  if (!schema_damage.empty()) return schema_damage;
  ASSIGN_OR_RETURN(const int64_t dangling, DanglingReferences());
  if (dangling > 0) return fmt::format("{} rows reference missing nodes", dangling);
  return out;
}

Status MemoryStore::Snapshot(const std::string& path) {
  const std::string temp = path + ".partial";
  std::filesystem::remove(temp);
  sqlite3* dest = nullptr;
  int rc = sqlite3_open_v2(temp.c_str(), &dest,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_close_v2(dest);
    return IoError(fmt::format("snapshot: cannot create {}", temp));
  }
  sqlite3_backup* backup = sqlite3_backup_init(dest, "main", db_->raw(), "main");
  if (backup == nullptr) {
    Status status = IoError(fmt::format("snapshot: {}", sqlite3_errmsg(dest)));
    sqlite3_close_v2(dest);
    std::filesystem::remove(temp);
    return status;
  }
  rc = sqlite3_backup_step(backup, -1);
  const int finish_rc = sqlite3_backup_finish(backup);
  if (rc == SQLITE_DONE) rc = finish_rc;
  const int close_rc = sqlite3_close_v2(dest);
  if (rc == SQLITE_OK) rc = close_rc;
  if (rc != SQLITE_OK) {
    std::filesystem::remove(temp);
    return Status(store_internal::CodeForSqlite(rc),
                  fmt::format("snapshot to {} failed: {}", path, sqlite3_errstr(rc)));
  }
  RETURN_IF_ERROR(FsyncPath(temp, false));
  std::error_code ec;
  std::filesystem::rename(temp, path, ec);
  if (ec) return IoError(fmt::format("snapshot: cannot rename into {}: {}", path, ec.message()));
  const std::string dir = std::filesystem::path(path).parent_path().string();
  return FsyncPath(dir.empty() ? "." : dir, true);
}

Result<StorageInfo> MemoryStore::Storage() {
  StorageInfo info;
  info.schema_version = schema_version_;
  {
    ASSIGN_OR_RETURN(Stmt mode, db_->Prepare("PRAGMA journal_mode"));
    ASSIGN_OR_RETURN(const bool row, mode.Step());
    if (row) info.journal_mode = mode.Text(0);
  }
  ASSIGN_OR_RETURN(const int64_t synchronous, db_->QueryInt("PRAGMA synchronous"));
  ASSIGN_OR_RETURN(const int64_t auto_vacuum, db_->QueryInt("PRAGMA auto_vacuum"));
  ASSIGN_OR_RETURN(const int64_t foreign_keys, db_->QueryInt("PRAGMA foreign_keys"));
  ASSIGN_OR_RETURN(info.page_size, db_->QueryInt("PRAGMA page_size"));
  ASSIGN_OR_RETURN(info.page_count, db_->QueryInt("PRAGMA page_count"));
  ASSIGN_OR_RETURN(info.freelist_count, db_->QueryInt("PRAGMA freelist_count"));
  info.synchronous = static_cast<int>(synchronous);
  info.auto_vacuum = static_cast<int>(auto_vacuum);
  info.foreign_keys = foreign_keys != 0;
  return info;
}

void MemoryStore::ReleaseMemory() { sqlite3_db_release_memory(db_->raw()); }

Status MemoryStore::Checkpoint() { return db_->Exec("PRAGMA wal_checkpoint(TRUNCATE)"); }

Status MemoryStore::ReclaimSpace(int64_t pages) {
  // PRAGMA arguments cannot be bound; the pragma does its work as it is stepped to completion.
  return db_->Exec(fmt::format("PRAGMA incremental_vacuum({})", std::max<int64_t>(0, pages)));
}

}  // namespace locrit

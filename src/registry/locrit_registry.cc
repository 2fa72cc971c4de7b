#include "registry/locrit_registry.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <iterator>
#include <set>
#include <system_error>
#include <utility>

#include "base/utf8.h"

namespace locrit {
namespace {

constexpr int kSchemaVersion = 3;

// Forward migrations, applied in order to a registry at an older version: migration i takes
// version i + 1 to i + 2 (kSchema is version 1). Each runs in the opening transaction.
constexpr const char* kMigrations[] = {
    // 2: a Locrit's embedding model (hybrid retrieval); NULL means none.
    "ALTER TABLE locrits ADD COLUMN embedding_model TEXT",
    // 3: the directories of deleted Locrits, never assigned again (a purge may have failed
    // half-way, and a new Locrit must never inherit an old one's memory).
    "CREATE TABLE retired_slugs(slug TEXT PRIMARY KEY, name TEXT NOT NULL,"
    " retired_at INTEGER NOT NULL) STRICT",
};
static_assert(std::size(kMigrations) == kSchemaVersion - 1);

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS locrits(
  slug TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  name_key TEXT NOT NULL UNIQUE,
  description TEXT NOT NULL,
  system_prompt TEXT,
  model TEXT NOT NULL,
  llm_provider TEXT NOT NULL,
  llm_url TEXT,
  active INTEGER NOT NULL,
  public_address TEXT,
  open_humans INTEGER NOT NULL,
  open_locrits INTEGER NOT NULL,
  open_invitations INTEGER NOT NULL,
  open_internet INTEGER NOT NULL,
  open_platform INTEGER NOT NULL,
  access_logs INTEGER NOT NULL,
  access_quick_memory INTEGER NOT NULL,
  access_full_memory INTEGER NOT NULL,
  access_llm_info INTEGER NOT NULL,
  max_messages INTEGER NOT NULL,
  context_messages INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;
)sql";

// The row's columns, in the order BindRow numbers them (?1 ... ?24) and ReadRow reads them.
constexpr const char* kColumnNames[] = {
    "slug", "name", "name_key", "description", "system_prompt", "model", "llm_provider", "llm_url",
    "active", "public_address", "open_humans", "open_locrits", "open_invitations", "open_internet",
    "open_platform", "access_logs", "access_quick_memory", "access_full_memory",
    "access_llm_info", "max_messages", "context_messages", "created_at", "updated_at",
    "embedding_model"};
constexpr int kColumnCount = static_cast<int>(std::size(kColumnNames));

std::string ColumnList() {
  std::string out;
  for (const char* column : kColumnNames) out += std::string(out.empty() ? "" : ", ") + column;
  return out;
}

std::string InsertSql() {
  std::string values;
  for (int i = 1; i <= kColumnCount; ++i) values += (i == 1 ? "?" : ",?") + std::to_string(i);
  return "INSERT INTO locrits(" + ColumnList() + ") VALUES(" + values + ")";
}

// Every column but the key (slug, ?1).
std::string UpdateSql() {
  std::string set;
  for (int i = 2; i <= kColumnCount; ++i) {
    set += std::string(i == 2 ? "" : ", ") + kColumnNames[i - 1] + "=?" + std::to_string(i);
  }
  return "UPDATE locrits SET " + set + " WHERE slug=?1";
}

Status SqliteError(sqlite3* db, int rc, std::string_view what) {
  const std::string message =
      std::string(what) + ": " + (db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (rc & 0xFF) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return UnavailableError(message);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return CorruptionError(message);
    case SQLITE_CONSTRAINT:
      return InvalidArgumentError(message);
    case SQLITE_NOMEM:
      return ResourceExhaustedError(message);
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
      return IoError(message);
    default:
      return InternalError(message);
  }
}

Status Exec(sqlite3* db, const char* sql) {
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return SqliteError(db, rc, std::string("registry: ") + sql);
  return Status::Ok();
}

// A prepared statement finalised on scope exit.
class Statement {
 public:
  Statement(sqlite3* db, const std::string& sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt_, nullptr);
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Status prepared() const {
    return rc_ == SQLITE_OK ? Status::Ok() : SqliteError(db_, rc_, "registry: prepare");
  }
  sqlite3_stmt* get() const { return stmt_; }

  void Text(int i, const std::string& v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  void OptionalText(int i, const std::optional<std::string>& v) {
    if (v) {
      Text(i, *v);
    } else {
      sqlite3_bind_null(stmt_, i);
    }
  }
  void Int(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }

  std::string ColumnText(int i) const {
    const auto* p = sqlite3_column_text(stmt_, i);
    return p == nullptr ? std::string()
                        : std::string(reinterpret_cast<const char*>(p),
                                      static_cast<size_t>(sqlite3_column_bytes(stmt_, i)));
  }
  std::optional<std::string> ColumnOptionalText(int i) const {
    if (sqlite3_column_type(stmt_, i) == SQLITE_NULL) return std::nullopt;
    return ColumnText(i);
  }
  int64_t ColumnInt(int i) const { return sqlite3_column_int64(stmt_, i); }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

// FNV-1a: a short stable suffix for slugs.
uint64_t Fnv1a(std::string_view text, uint64_t salt) {
  uint64_t h = 1469598103934665603ull ^ salt;
  for (const char c : text) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h;
}

std::string Hex8(uint64_t v) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(8, '0');
  for (int i = 7; i >= 0; --i) {
    out[static_cast<size_t>(i)] = kDigits[v & 0xF];
    v >>= 4;
  }
  return out;
}

void BindRow(Statement& s, const LocritConfig& config) {
  s.Text(1, config.slug);
  s.Text(2, config.name);
  s.Text(3, LocritNameKey(config.name));
  s.Text(4, config.description);
  s.OptionalText(5, config.system_prompt);
  s.Text(6, config.model);
  s.Text(7, std::string(LocritProviderName(config.llm.provider)));
  s.OptionalText(8, config.llm.url);
  s.Int(9, config.active);
  s.OptionalText(10, config.public_address);
  s.Int(11, config.open_to.humans);
  s.Int(12, config.open_to.locrits);
  s.Int(13, config.open_to.invitations);
  s.Int(14, config.open_to.internet);
  s.Int(15, config.open_to.platform);
  s.Int(16, config.access_to.logs);
  s.Int(17, config.access_to.quick_memory);
  s.Int(18, config.access_to.full_memory);
  s.Int(19, config.access_to.llm_info);
  s.Int(20, config.memory.max_messages);
  s.Int(21, config.memory.context_messages);
  s.Int(22, config.created_at);
  s.Int(23, config.updated_at);
  s.OptionalText(24, config.embedding_model);
}

Result<LocritConfig> ReadRow(const Statement& s) {
  LocritConfig c;
  c.slug = s.ColumnText(0);
  c.name = s.ColumnText(1);
  c.description = s.ColumnText(3);
  c.system_prompt = s.ColumnOptionalText(4);
  c.model = s.ColumnText(5);
  auto provider = ParseLocritProvider(s.ColumnText(6));
  if (!provider.ok()) return CorruptionError("registry: Locrit " + c.name + ": bad llm_provider");
  c.llm.provider = *provider;
  c.llm.url = s.ColumnOptionalText(7);
  c.active = s.ColumnInt(8) != 0;
  c.public_address = s.ColumnOptionalText(9);
  c.open_to = {s.ColumnInt(10) != 0, s.ColumnInt(11) != 0, s.ColumnInt(12) != 0,
               s.ColumnInt(13) != 0, s.ColumnInt(14) != 0};
  c.access_to = {s.ColumnInt(15) != 0, s.ColumnInt(16) != 0, s.ColumnInt(17) != 0,
                 s.ColumnInt(18) != 0};
  c.memory.max_messages = s.ColumnInt(19);
  c.memory.context_messages = static_cast<int>(s.ColumnInt(20));
  c.created_at = s.ColumnInt(21);
  c.updated_at = s.ColumnInt(22);
  c.embedding_model = s.ColumnOptionalText(23);
  if (!IsValidSlug(c.slug)) return CorruptionError("registry: Locrit " + c.name + ": bad slug");
  return c;
}

}  // namespace

Result<std::unique_ptr<LocritRegistry>> LocritRegistry::Open(RegistryOptions options) {
  if (options.clock == nullptr) return InvalidArgumentError("registry: a clock is required");
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(options.path.c_str(), &db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                 nullptr);
  if (rc != SQLITE_OK) {
    Status status = SqliteError(db, rc, "registry: cannot open " + options.path);
    sqlite3_close(db);
    return status;
  }
  std::unique_ptr<LocritRegistry> registry(new LocritRegistry(std::move(options), db));
  sqlite3_busy_timeout(db, 5000);
  RETURN_IF_ERROR(Exec(db, "PRAGMA journal_mode=WAL"));
  RETURN_IF_ERROR(Exec(db, "PRAGMA synchronous=FULL"));
  int64_t found_version = 0;
  {
    Statement version(db, "PRAGMA user_version");
    RETURN_IF_ERROR(version.prepared());
    const int step = sqlite3_step(version.get());
    if (step != SQLITE_ROW) return SqliteError(db, step, "registry: read the schema version");
    const int64_t found = version.ColumnInt(0);
    found_version = found;
    if (found > kSchemaVersion) {
      return FailedPreconditionError("registry: " + registry->options_.path +
                                     " was written by a newer Locrit (schema " +
                                     std::to_string(found) + ")");
    }
  }
  RETURN_IF_ERROR(Exec(db, "BEGIN IMMEDIATE"));
  // A fresh file gets version 1 and then every migration, like an old file.
  Status schema = Exec(db, kSchema);
  for (int64_t v = std::max<int64_t>(found_version, 1); schema.ok() && v < kSchemaVersion; ++v) {
    schema = Exec(db, kMigrations[v - 1]);
  }
  if (schema.ok()) {
    schema = Exec(db, ("PRAGMA user_version=" + std::to_string(kSchemaVersion)).c_str());
  }
  if (schema.ok()) schema = Exec(db, "COMMIT");
  if (!schema.ok()) {
    (void)Exec(db, "ROLLBACK");
    return schema;
  }
  RETURN_IF_ERROR(registry->Load());
  return registry;
}

LocritRegistry::LocritRegistry(RegistryOptions options, sqlite3* db)
    : options_(std::move(options)), db_(db) {}

LocritRegistry::~LocritRegistry() { sqlite3_close(db_); }

Status LocritRegistry::Load() {
  Statement s(db_, "SELECT " + ColumnList() + " FROM locrits");
  RETURN_IF_ERROR(s.prepared());
  std::map<std::string, LocritConfig> loaded;
  for (;;) {
    const int rc = sqlite3_step(s.get());
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return SqliteError(db_, rc, "registry: load");
    ASSIGN_OR_RETURN(LocritConfig config, ReadRow(s));
    loaded.emplace(LocritNameKey(config.name), std::move(config));
  }
  Statement r(db_, "SELECT slug FROM retired_slugs");
  RETURN_IF_ERROR(r.prepared());
  std::set<std::string> retired;
  for (;;) {
    const int rc = sqlite3_step(r.get());
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return SqliteError(db_, rc, "registry: load retired slugs");
    retired.insert(r.ColumnText(0));
  }
  std::lock_guard lock(mu_);
  by_key_ = std::move(loaded);
  retired_slugs_ = std::move(retired);
  return Status::Ok();
}

Result<std::string> LocritRegistry::ChooseSlug(const std::string& name) const {
  std::set<std::string> used;
  {
    std::lock_guard lock(mu_);
    for (const auto& [key, config] : by_key_) used.insert(config.slug);
    used.insert(retired_slugs_.begin(), retired_slugs_.end());
  }
  auto free = [&](const std::string& slug) {
    if (used.count(slug) != 0) return false;
    if (options_.locrits_dir.empty()) return true;
    std::error_code ec;
    return !std::filesystem::exists(std::filesystem::path(options_.locrits_dir) / slug, ec) && !ec;
  };
  const std::string base = SlugBase(name);
  if (!base.empty() && free(base)) return base;
  for (uint64_t salt = 0; salt < 64; ++salt) {
    const std::string hash = Hex8(Fnv1a(name, salt));
    std::string slug = base.empty() ? hash : base + "-" + hash;
    if (free(slug)) return slug;
  }
  return InternalError("registry: no free directory name for Locrit " + name);
}

Result<LocritConfig> LocritRegistry::Create(LocritConfig config) {
  RETURN_IF_ERROR(ValidateLocritConfig(config));
  std::lock_guard write(write_mu_);
  const std::string key = LocritNameKey(config.name);
  {
    std::lock_guard lock(mu_);
    if (by_key_.count(key) != 0) {
      return AlreadyExistsError("a Locrit named " + by_key_.at(key).name + " already exists");
    }
  }
  ASSIGN_OR_RETURN(config.slug, ChooseSlug(config.name));
  config.created_at = config.updated_at = options_.clock->NowMillis();

  Statement s(db_, InsertSql());
  RETURN_IF_ERROR(s.prepared());
  BindRow(s, config);
  // One statement in autocommit mode is one transaction: all of the row or none of it.
  const int rc = sqlite3_step(s.get());
  if (rc != SQLITE_DONE) return SqliteError(db_, rc, "registry: create " + config.name);

  std::lock_guard lock(mu_);
  by_key_.emplace(key, config);
  return config;
}

Result<LocritConfig> LocritRegistry::Update(std::string_view name, const Mutation& mutate) {
  std::lock_guard write(write_mu_);
  ASSIGN_OR_RETURN(const LocritConfig current, Get(name));
  LocritConfig next = current;
  RETURN_IF_ERROR(mutate(next));
  next.slug = current.slug;
  next.created_at = current.created_at;
  RETURN_IF_ERROR(ValidateLocritConfig(next));
  const std::string old_key = LocritNameKey(current.name);
  const std::string new_key = LocritNameKey(next.name);
  if (new_key != old_key) {
    std::lock_guard lock(mu_);
    if (auto it = by_key_.find(new_key); it != by_key_.end()) {
      return AlreadyExistsError("a Locrit named " + it->second.name + " already exists");
    }
  }
  next.updated_at = std::max(options_.clock->NowMillis(), current.updated_at);

  Statement s(db_, UpdateSql());
  RETURN_IF_ERROR(s.prepared());
  BindRow(s, next);
  // One statement in autocommit mode is one transaction.
  const int rc = sqlite3_step(s.get());
  if (rc != SQLITE_DONE) return SqliteError(db_, rc, "registry: update " + current.name);
  if (sqlite3_changes(db_) != 1) {
    return InternalError("registry: the row of " + current.name + " is missing on disk");
  }

  std::lock_guard lock(mu_);
  by_key_.erase(old_key);
  by_key_.insert_or_assign(new_key, next);
  return next;
}

Result<LocritConfig> LocritRegistry::Rename(std::string_view name, std::string new_name) {
  return Update(name, [&new_name](LocritConfig& config) {
    config.name = std::move(new_name);
    return Status::Ok();
  });
}

Result<LocritConfig> LocritRegistry::Toggle(std::string_view name) {
  return Update(name, [](LocritConfig& config) {
    config.active = !config.active;
    return Status::Ok();
  });
}

Result<LocritConfig> LocritRegistry::Delete(std::string_view name) {
  std::lock_guard write(write_mu_);
  ASSIGN_OR_RETURN(const LocritConfig current, Get(name));
  RETURN_IF_ERROR(Exec(db_, "BEGIN IMMEDIATE"));
  auto run = [&]() -> Status {
    Statement remove(db_, "DELETE FROM locrits WHERE slug=?1");
    RETURN_IF_ERROR(remove.prepared());
    remove.Text(1, current.slug);
    int rc = sqlite3_step(remove.get());
    if (rc != SQLITE_DONE) return SqliteError(db_, rc, "registry: delete " + current.name);
    Statement retire(db_,
                     "INSERT OR IGNORE INTO retired_slugs(slug, name, retired_at) VALUES(?1,?2,?3)");
    RETURN_IF_ERROR(retire.prepared());
    retire.Text(1, current.slug);
    retire.Text(2, current.name);
    retire.Int(3, options_.clock->NowMillis());
    rc = sqlite3_step(retire.get());
    if (rc != SQLITE_DONE) return SqliteError(db_, rc, "registry: retire " + current.slug);
    return Exec(db_, "COMMIT");
  };
  if (Status status = run(); !status.ok()) {
    (void)Exec(db_, "ROLLBACK");
    return status;
  }

  std::lock_guard lock(mu_);
  by_key_.erase(LocritNameKey(current.name));
  retired_slugs_.insert(current.slug);
  return current;
}

Result<LocritConfig> LocritRegistry::Get(std::string_view name) const {
  if (!IsValidUtf8(name)) return NotFoundError("no Locrit has that name (not valid UTF-8)");
  const std::string key = LocritNameKey(name);
  std::lock_guard lock(mu_);
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return NotFoundError("no Locrit named " + std::string(name));
  return it->second;
}

std::vector<LocritConfig> LocritRegistry::List() const {
  std::vector<LocritConfig> out;
  {
    std::lock_guard lock(mu_);
    out.reserve(by_key_.size());
    for (const auto& [key, config] : by_key_) out.push_back(config);
  }
  std::stable_sort(out.begin(), out.end(), [](const LocritConfig& a, const LocritConfig& b) {
    return a.created_at < b.created_at;
  });
  return out;
}

size_t LocritRegistry::Count() const {
  std::lock_guard lock(mu_);
  return by_key_.size();
}

}  // namespace locrit

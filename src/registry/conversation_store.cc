#include "registry/conversation_store.h"

#include <algorithm>
#include <utility>

#include "base/id_generator.h"
#include "store/internal/sqlite.h"

namespace locrit {
namespace {

using store_internal::Db;
using store_internal::Stmt;
using store_internal::Transaction;

constexpr int kSchemaVersion = 1;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS conversations(
  id TEXT PRIMARY KEY,
  locrit_slug TEXT NOT NULL,
  user_id TEXT NOT NULL,
  session_id TEXT NOT NULL,
  metadata TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  last_activity INTEGER NOT NULL,
  message_count INTEGER NOT NULL
) WITHOUT ROWID;
)sql";

constexpr const char* kColumns =
    "id, locrit_slug, user_id, session_id, metadata, created_at, last_activity, message_count";

Conversation ReadRow(const Stmt& s) {
  Conversation c;
  c.id = s.Text(0);
  c.locrit_slug = s.Text(1);
  c.user_id = s.Text(2);
  c.session_id = s.Text(3);
  c.metadata = s.Text(4);
  c.created_at = s.Int(5);
  c.last_activity = s.Int(6);
  c.message_count = s.Int(7);
  return c;
}

}  // namespace

Result<std::unique_ptr<ConversationStore>> ConversationStore::Open(
    ConversationStoreOptions options) {
  if (options.clock == nullptr) return InvalidArgumentError("conversations: a clock is required");
  auto db = Db::Open(options.path, store_internal::DbOpenOptions{});
  if (!db.ok()) return db.status();
  RETURN_IF_ERROR((*db)->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL"));
  auto version = (*db)->QueryInt("PRAGMA user_version");
  if (!version.ok()) return version.status();
  if (*version > kSchemaVersion) {
    return FailedPreconditionError(options.path + " was written by a newer Locrit (schema " +
                                   std::to_string(*version) + ")");
  }
  if (*version == 0) {
    Transaction tx(db->get());
    RETURN_IF_ERROR(tx.status());
    RETURN_IF_ERROR((*db)->Exec(kSchema));
    RETURN_IF_ERROR((*db)->Exec("PRAGMA user_version=" + std::to_string(kSchemaVersion)));
    RETURN_IF_ERROR(tx.Commit());
  }
  std::unique_ptr<ConversationStore> store(
      new ConversationStore(std::move(options), std::move(*db)));
  RETURN_IF_ERROR(store->Load());
  return store;
}

ConversationStore::ConversationStore(ConversationStoreOptions options, std::unique_ptr<Db> db)
    : options_(std::move(options)), db_(std::move(db)) {}

ConversationStore::~ConversationStore() = default;

Status ConversationStore::Load() {
  std::lock_guard write(write_mu_);
  ASSIGN_OR_RETURN(Stmt s, db_->Prepare(std::string("SELECT ") + kColumns + " FROM conversations"));
  std::map<std::string, Conversation> loaded;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    Conversation c = ReadRow(s);
    loaded.emplace(c.id, std::move(c));
  }
  std::lock_guard lock(mu_);
  by_id_ = std::move(loaded);
  return Status::Ok();
}

Result<Conversation> ConversationStore::Create(const std::string& locrit_slug,
                                               const std::string& user_id, std::string metadata) {
  if (metadata.size() > kMaxMetadataBytes) {
    return InvalidArgumentError("metadata is larger than " + std::to_string(kMaxMetadataBytes) +
                                " bytes");
  }
  Conversation c;
  c.id = UnguessableId();
  c.locrit_slug = locrit_slug;
  c.user_id = user_id;
  c.session_id = c.id;
  c.metadata = metadata.empty() ? "{}" : std::move(metadata);
  c.created_at = options_.clock->NowMillis();
  c.last_activity = c.created_at;
  std::lock_guard write(write_mu_);
  ASSIGN_OR_RETURN(Stmt s, db_->Prepare(std::string("INSERT INTO conversations(") + kColumns +
                                        ") VALUES(?,?,?,?,?,?,?,?)"));
  s.BindAll(c.id, c.locrit_slug, c.user_id, c.session_id, c.metadata, c.created_at,
            c.last_activity, c.message_count);
  RETURN_IF_ERROR(s.Run());
  std::lock_guard lock(mu_);
  by_id_[c.id] = c;
  return c;
}

Result<Conversation> ConversationStore::RecordMessages(const std::string& id, int64_t added) {
  const int64_t now = options_.clock->NowMillis();
  std::lock_guard write(write_mu_);
  ASSIGN_OR_RETURN(Stmt s, db_->Prepare(
                               "UPDATE conversations SET message_count = message_count + ?, "
                               "last_activity = max(last_activity, ?) WHERE id = ?"));
  s.BindAll(added, now, id);
  RETURN_IF_ERROR(s.Run());
  if (db_->Changes() == 0) return NotFoundError("no conversation " + id);
  std::lock_guard lock(mu_);
  Conversation& c = by_id_[id];
  c.message_count += added;
  c.last_activity = std::max(c.last_activity, now);
  return c;
}

Status ConversationStore::Delete(const std::string& id) {
  std::lock_guard write(write_mu_);
  ASSIGN_OR_RETURN(Stmt s, db_->Prepare("DELETE FROM conversations WHERE id = ?"));
  s.BindAll(id);
  RETURN_IF_ERROR(s.Run());
  if (db_->Changes() == 0) return NotFoundError("no conversation " + id);
  std::lock_guard lock(mu_);
  by_id_.erase(id);
  return Status::Ok();
}

std::optional<Conversation> ConversationStore::Get(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return std::nullopt;
  return it->second;
}

std::vector<Conversation> ConversationStore::List(const ConversationFilter& filter) const {
  std::vector<Conversation> out;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, c] : by_id_) {
      if (filter.user_id && c.user_id != *filter.user_id) continue;
      if (filter.locrit_slug && c.locrit_slug != *filter.locrit_slug) continue;
      out.push_back(c);
    }
  }
  std::sort(out.begin(), out.end(), [](const Conversation& a, const Conversation& b) {
    return a.last_activity != b.last_activity ? a.last_activity > b.last_activity : a.id > b.id;
  });
  out.resize(std::min(out.size(), static_cast<size_t>(std::clamp(filter.limit, 1, kMaxList))));
  return out;
}

}  // namespace locrit

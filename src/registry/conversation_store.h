// ConversationStore: server-side conversations (API.md "Conversations"), kept in
// <data>/conversations.db (SQLite, WAL, synchronous=FULL) so they survive restarts.
//
// A conversation binds a user to one Locrit and one memory session: its messages live in that
// Locrit's memory like any other session's; this store keeps only who, which Locrit, when and
// how many. The Locrit is recorded by slug, which never changes, so a rename keeps its
// conversations.
//
// Every conversation is also held in memory, so Get and List never touch the disk and may run on
// a network thread. Writes run one at a time, each in its own transaction, and the in-memory copy
// changes only after the commit. Writes do file I/O: call them from a work-pool thread.
// Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/status.h"

namespace locrit {

namespace store_internal {
class Db;
}

struct Conversation {
  std::string id;              // 32 lower-case hex digits, unguessable.
  std::string locrit_slug;     // The Locrit's memory directory; stable across renames.
  std::string user_id;
  std::string session_id;      // The memory session holding its messages.
  std::string metadata = "{}";  // A JSON object, as text.
  int64_t created_at = 0;      // Unix millis.
  int64_t last_activity = 0;   // Unix millis of the last message.
  int64_t message_count = 0;   // Messages saved through it (user and assistant).
};

struct ConversationFilter {
  std::optional<std::string> user_id;
  std::optional<std::string> locrit_slug;
  int limit = 50;  // Clamped to [1, ConversationStore::kMaxList].
};

struct ConversationStoreOptions {
  std::string path;              // conversations.db; created when missing.
  const Clock* clock = nullptr;  // Required; outlives the store.
};

class ConversationStore {
 public:
  static constexpr int kMaxList = 500;
  static constexpr size_t kMaxMetadataBytes = 16 * 1024;

  // Opens or creates the store. corruption when the file is not a readable conversation store
  // (it is never replaced), failed_precondition when a newer schema wrote it, io_error when it
  // cannot be opened.
  static Result<std::unique_ptr<ConversationStore>> Open(ConversationStoreOptions options);
  ~ConversationStore();
  ConversationStore(const ConversationStore&) = delete;
  ConversationStore& operator=(const ConversationStore&) = delete;

  // A new conversation of `user_id` with the Locrit `locrit_slug`; its session id is its own id.
  // invalid_argument when metadata is over kMaxMetadataBytes.
  Result<Conversation> Create(const std::string& locrit_slug, const std::string& user_id,
                              std::string metadata);

  // Counts `added` more messages and marks the conversation active now. not_found when it was
  // deleted meanwhile.
  Result<Conversation> RecordMessages(const std::string& id, int64_t added);

  // not_found when there is no such conversation.
  Status Delete(const std::string& id);

  std::optional<Conversation> Get(const std::string& id) const;
  // Newest activity first.
  std::vector<Conversation> List(const ConversationFilter& filter) const;

 private:
  ConversationStore(ConversationStoreOptions options, std::unique_ptr<store_internal::Db> db);
  Status Load();

  const ConversationStoreOptions options_;
  std::mutex write_mu_;  // Serialises writers; held across their I/O.
  const std::unique_ptr<store_internal::Db> db_;  // Used only under write_mu_.
  mutable std::mutex mu_;  // Guards the copy below; never held across I/O.
  std::map<std::string, Conversation> by_id_;  // GUARDED_BY(mu_)
};

}  // namespace locrit

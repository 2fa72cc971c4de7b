// MemoryStore: one Locrit's graph memory in one SQLite file (docs/memory-format.md).
//
// Nodes (users, sessions, messages, memories, concepts, topics) and typed relations, keyword
// search (FTS5 bm25, accent-folding), embeddings with exact cosine top-k, retention, integrity
// check, online snapshot, JSON Lines export/import.
//
// Every write is one transaction: after a crash it is either wholly there or not at all. The
// store knows nothing of threads, HTTP or LLMs.
//
// Thread-compatible: one MemoryStore (one SQLite connection) is used by one thread at a time.
// Concurrency (one writer, several readers, group commit) is the memory manager's job, which
// opens several MemoryStore objects on the same file.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/id_generator.h"
#include "base/status.h"
#include "core/memory_types.h"

namespace locrit {

namespace store_internal {
class Db;
class KeywordIndex;
class VectorCache;
struct SalvageTable;
}  // namespace store_internal

enum class Durability {
  kFull,     // synchronous=FULL: an acknowledged commit survives power loss.
  kRelaxed,  // synchronous=NORMAL: may lose the last commits on power loss, never corrupts.
};

struct StoreOptions {
  std::string path;                 // The database file; created when missing (unless read_only).
  const Clock* clock = nullptr;     // Required; must outlive the store.
  IdGenerator* ids = nullptr;       // Required; must outlive the store.
  Durability durability = Durability::kFull;
  int64_t max_messages = 5000;      // Retention cap; 0 = unlimited.
  std::string vfs;                  // SQLite VFS name; empty = default (tests inject faults here).
  bool read_only = false;           // A reader connection: no migrations, writes fail.
  int64_t cache_kib = 8192;         // SQLite page cache per connection.
};

// What SaveMessage writes. Users and sessions are created on first use.
struct NewMessage {
  std::string session_id;  // Required, non-empty.
  std::string user_id;     // The sender (a person, or the Locrit for replies). Required.
  std::string user_name;   // Used when the user is created.
  Role role = Role::kUser;
  std::string content;
  std::string metadata = "{}";  // Must be a JSON object.
  MessageStatus status = MessageStatus::kOk;
  std::optional<std::string> id;          // Defaults to a fresh time-ordered id.
  std::optional<int64_t> created_at;      // Defaults to now.
  // The message this one responds to. Defaults to the previous message of the session; an
  // explicit value must be a message of this store.
  std::optional<std::string> responds_to;
  std::string session_name;   // Used when the session is created.
  std::string session_topic;  // Used when the session is created.
};

struct SavedMessage {
  std::string id;
  int64_t seq = 0;
  int64_t created_at = 0;
  std::string session_id;
  std::optional<std::string> responds_to;
  int64_t evicted = 0;  // Messages retention deleted in the same transaction.
};

struct HistoryQuery {
  std::string session_id;
  int limit = 20;                     // Clamped to [1, kMaxHistory].
  std::optional<int64_t> before_seq;  // Only messages with seq < before_seq.
};

struct SearchQuery {
  std::string text;  // Any user string; never a syntax error.
  int limit = 10;    // Clamped to [1, kMaxSearchResults].
  bool messages = true;
  bool memories = true;
  bool concepts = true;
  std::optional<std::string> session_id;  // Restricts to messages of this session.
  std::optional<Role> role;               // Restricts to messages with this role.
};

struct SearchHit {
  NodeType type = NodeType::kMessage;  // kMessage, kMemory or kConcept.
  std::string id;
  std::string content;  // Concepts: "name: description".
  std::string snippet;  // Matches wrapped in [ ], long text elided with "…".
  double score = 0;     // Higher is better (negated bm25).
  int64_t timestamp = 0;
  int64_t seq = 0;                        // Messages only.
  std::optional<std::string> session_id;  // Messages only.
  std::optional<Role> role;               // Messages only.
};

// What RankByKeywords ranks: messages and memories by bm25 against the words of `text`, from the
// store's in-memory keyword index (no snippets, no content: a chat turn's recall reads only the
// few items it keeps).
struct KeywordQuery {
  std::string text;  // Any user string.
  int limit = 10;    // Clamped to [1, kMaxSearchResults].
  bool messages = true;
  bool memories = true;
  std::optional<std::string> session_id;  // Only messages of this session (no memories).
  std::optional<Role> role;               // Only messages with this role (no memories).
  // Leaves out the messages of `window_session` with seq >= *window_first_seq (the ones a chat
  // turn's window already holds) and the node whose id is `exclude_id`.
  std::string window_session;
  std::optional<int64_t> window_first_seq;
  std::string exclude_id;
};

struct KeywordHit {
  NodeType type = NodeType::kMessage;  // kMessage or kMemory.
  std::string id;
  double score = 0;  // Higher is better: FTS5's bm25, negated.
  int64_t seq = 0;   // Messages only.
};

struct NewMemory {
  std::string content;  // Non-empty.
  double importance = 0.5;
  std::string metadata = "{}";
  std::optional<std::string> id;
};

struct MemoryEdit {
  std::optional<std::string> content;
  std::optional<double> importance;
  std::optional<std::string> metadata;
};

struct NewConcept {
  std::string name;  // Non-empty; (name case-insensitively, type) is unique.
  std::string type;
  std::optional<std::string> description;  // On upsert, only given fields change.
  std::optional<double> confidence;
  std::optional<std::string> id;
};

struct ConceptEdit {
  std::optional<std::string> name;
  std::optional<std::string> type;
  std::optional<std::string> description;
  std::optional<double> confidence;
};

struct ConceptDetails {
  Concept node;
  int64_t mention_count = 0;
  std::optional<int64_t> first_mention;  // created_at of the earliest mentioning message.
  std::optional<int64_t> last_mention;
  std::vector<Message> recent_mentions;   // Newest first, at most kMaxDetailMentions.
  std::vector<Relation> relations;        // RELATES_TO edges from or to it.
};

struct RelatedConcept {
  Concept node;
  int depth = 1;  // Shortest number of RELATES_TO hops (either direction).
};

struct NewTopic {
  std::string name;
  std::string description;
  std::string category;
  std::optional<std::string> id;
};

struct GraphNode {
  std::string id;
  NodeType type = NodeType::kMessage;
  std::string label;
};

struct GraphEdge {
  std::string id;
  RelationType type = RelationType::kRelatesTo;
  std::string from_id;
  std::string to_id;
};

struct GraphView {
  std::vector<GraphNode> nodes;
  std::vector<GraphEdge> edges;  // Only edges whose both ends are in `nodes`.
};

struct StoreStatistics {
  int64_t users = 0;
  int64_t sessions = 0;
  int64_t messages = 0;
  int64_t memories = 0;
  int64_t concepts = 0;
  int64_t topics = 0;
  int64_t relations = 0;
  int64_t vectors = 0;
  int64_t db_bytes = 0;  // Database file plus WAL.
};

struct ConceptMentions {
  Concept node;
  int64_t mentions = 0;
};

struct StoreSummary {
  StoreStatistics statistics;
  std::vector<Message> recent_messages;  // Newest first.
  std::vector<Session> sessions;         // Most recent activity first.
  std::vector<ConceptMentions> top_concepts;
};

struct VectorQuery {
  std::vector<float> vector;  // Non-empty.
  std::string model;          // Only vectors made by this model (and of the same dimension).
  int k = 10;                 // Clamped to [1, kMaxVectorResults].
  bool messages = true;
  bool memories = true;
  bool concepts = true;
};

struct VectorHit {
  NodeType type = NodeType::kMessage;
  std::string id;
  double similarity = 0;  // Cosine, in [-1, 1].
};

// How the database file is set up, for health reports and tests.
struct StorageInfo {
  int schema_version = 0;
  std::string journal_mode;  // "wal" for a writable store.
  int synchronous = 0;       // 2 = FULL, 1 = NORMAL.
  int auto_vacuum = 0;       // 2 = INCREMENTAL.
  bool foreign_keys = false;
  int64_t page_size = 0;
  int64_t page_count = 0;
  int64_t freelist_count = 0;
};

// What one recovery from corruption did (recorded in the recovered store).
struct RecoveryEvent {
  int64_t at = 0;  // Unix millis.
  std::string reason;
  std::string quarantine_path;
  std::map<std::string, int64_t> rows_salvaged;       // Per table, from the damaged file.
  std::map<std::string, int64_t> rows_from_snapshot;  // Per table, added from the snapshot.
  int64_t rows_lost = 0;  // Estimate: rows that could not be read and were not in the snapshot.
  std::string snapshot_path;
};

// What CopyRowsFrom did.
struct CopyReport {
  std::map<std::string, int64_t> copied;  // Per table: rows added to this store.
  int64_t unreadable = 0;                 // Row ranges of one rowid that could not be read.
  std::vector<std::string> unreadable_tables;  // Tables whose extent could not be read at all.
  // The page pass (CopyScannedRowsFrom) only:
  int64_t rows_rejected = 0;      // Rows of a known table that break a constraint of this store.
  int64_t rows_unclassified = 0;  // Orphan rows that fit no table, or more than one.
};

struct ImportReport {
  int64_t lines = 0;
  int64_t inserted = 0;  // Nodes and edges added.
  int64_t skipped = 0;   // Already present (same id or same edge).
};

class MemoryStore {
 public:
  static constexpr int kMaxHistory = 1000;
  static constexpr int kMaxSearchResults = 100;
  static constexpr int kMaxSearchTerms = 32;
  static constexpr int kMaxListResults = 1000;
  static constexpr int kMaxRelatedDepth = 5;
  static constexpr int kMaxGraphNodes = 2000;
  static constexpr int kMaxDetailMentions = 20;
  static constexpr int kMaxVectorResults = 1000;
  static constexpr int kMaxVectorDim = 16384;

  // Opens (creating and migrating as needed) the store at options.path. Errors: corruption when
  // the file is not a healthy database, failed_precondition when its schema is newer than this
  // build, io_error for file-system problems, unavailable when it is locked.
  static Result<std::unique_ptr<MemoryStore>> Open(const StoreOptions& options);
  ~MemoryStore();
  MemoryStore(const MemoryStore&) = delete;
  MemoryStore& operator=(const MemoryStore&) = delete;

  int SchemaVersion() const;
  const StoreOptions& options() const { return options_; }

  // ---- Messages and sessions ----

  // One transaction: upsert user and session, insert the message with the next seq (its SENT and
  // PART_OF edges are its own columns), RESPONDS_TO (to the previous message of the session), and
  // retention.
  Result<SavedMessage> SaveMessage(const NewMessage& message);
  // The newest `limit` messages of the session (before `before_seq`), in chronological order.
  // not_found when the session does not exist.
  Result<std::vector<Message>> History(const HistoryQuery& query);
  Result<Message> GetMessage(const std::string& id);
  Status EditMessage(const std::string& id, const std::string& content);
  Status SetMessageStatus(const std::string& id, MessageStatus status);
  Status DeleteMessage(const std::string& id);

  // Sessions, most recent activity first.
  Result<std::vector<Session>> ListSessions(int limit);
  Result<Session> GetSession(const std::string& id);
  // Deletes the session, its messages and every edge of either.
  Status DeleteSession(const std::string& id);
  Result<User> GetUser(const std::string& id);

  // ---- Search ----
  Result<std::vector<SearchHit>> Search(const SearchQuery& query);
  // The same ranking as Search over messages and memories (bm25 with FTS5's parameters, each kind
  // scored against its own statistics), from an in-memory index this connection keeps in step
  // with the file: a few hundred microseconds where FTS5 scores every matching row. Words are
  // FTS5's (same tokenizer); a word that FTS5 would read as a phrase ("aujourd'hui") counts as its
  // separate words. Best first; equal scores oldest first.
  Result<std::vector<KeywordHit>> RankByKeywords(const KeywordQuery& query);

  // ---- Standalone memories ----
  Result<Memory> AddMemory(const NewMemory& memory);
  Result<Memory> GetMemory(const std::string& id);
  // Highest importance first, then newest.
  Result<std::vector<Memory>> ListMemories(int limit);
  Result<Memory> EditMemory(const std::string& id, const MemoryEdit& edit);
  Status DeleteMemory(const std::string& id);
  // Sets last_accessed to now for each existing id (missing ids are ignored).
  Status TouchMemories(const std::vector<std::string>& ids);

  // ---- Concepts, topics and relations ----
  // Creates the concept, or updates the given fields of the existing (name, type) one.
  Result<Concept> UpsertConcept(const NewConcept& input);
  Result<Concept> GetConcept(const std::string& id);
  // Most mentioned first.
  Result<std::vector<Concept>> ListConcepts(int limit);
  // By name, case-insensitively; `type` narrows when several concepts share the name.
  Result<ConceptDetails> GetConceptDetails(const std::string& name,
                                           const std::optional<std::string>& type = {});
  Result<Concept> EditConcept(const std::string& id, const ConceptEdit& edit);
  Status DeleteConcept(const std::string& id);
  // Concepts reachable over RELATES_TO (either direction) within `depth` hops (1..5), nearest
  // first, the start excluded; cycles are harmless.
  Result<std::vector<RelatedConcept>> RelatedConcepts(const std::string& concept_id, int depth);

  Result<Topic> UpsertTopic(const NewTopic& topic);
  Result<std::vector<Topic>> ListTopics(int limit);
  Status DeleteTopic(const std::string& id);

  // Adds (or, for an existing natural key, updates the properties of) an edge. invalid_argument
  // when the ends do not fit the type, not_found when an end does not exist.
  Result<Relation> AddRelation(const Relation& relation);
  Result<Relation> GetRelation(const std::string& id);
  Status DeleteRelation(const std::string& id);

  // A bounded view for drawing: the newest nodes of each type up to `limit` in all, and the
  // edges among them.
  Result<GraphView> Graph(int limit);

  // ---- Summary ----
  Result<StoreStatistics> Statistics();
  Result<StoreSummary> Summary(int recent_limit);

  // ---- Whole-store operations ----
  // Deletes every node and edge in one transaction.
  Status ClearAll();
  // Every node, edge and vector as JSON Lines, nodes before the edges that need them.
  Status Export(std::ostream& out);
  // Reads an export. All-or-nothing: the first invalid line aborts with invalid_argument naming
  // the line number. Idempotent: nodes already present (by id) and edges already present (by
  // their ends) are skipped.
  Result<ImportReport> Import(std::istream& in);

  // ---- Embeddings ----
  Status SetEmbedding(NodeType type, const std::string& id, const std::string& model,
                      std::span<const float> vector);
  Status DeleteEmbedding(NodeType type, const std::string& id);
  // Exact cosine top-k, best first.
  Result<std::vector<VectorHit>> NearestByEmbedding(const VectorQuery& query);
  // Ids of messages without a vector from `model`, oldest first (for backfilling).
  Result<std::vector<std::string>> MessagesMissingEmbedding(const std::string& model, int limit);
  // Ids of memories without a vector from `model`, oldest first.
  Result<std::vector<std::string>> MemoriesMissingEmbedding(const std::string& model, int limit);

  // ---- Group commit (the memory manager's writer) ----
  // BeginBatch opens a transaction that every following write joins as a savepoint, so a failing
  // write undoes only itself; CommitBatch makes them all durable at once. If SQLite aborts the
  // batch (an I/O error, a full disk), InBatch() turns false and the earlier writes are gone.
  Status BeginBatch();
  Status CommitBatch();
  void RollbackBatch();
  bool InBatch() const;
  // Runs `body` all-or-nothing: its own transaction, or a savepoint inside a batch.
  Status Atomically(const std::function<Status()>& body);
  // Runs `body`'s reads in one read transaction: they all see the file as it was when the first
  // one ran, and they share one read lock instead of taking one each. Inside a transaction
  // already, `body` just runs in it.
  Status ReadConsistently(const std::function<Status()>& body);

  // ---- Recovery support (the memory manager orchestrates; see memory/recovery.h) ----
  // Copies into this store every row of the memory file at `source_path` (possibly damaged) that
  // can be read and that this store lacks (by id, seq or edge key). Unreadable row ranges are
  // narrowed down to single rowids and skipped. Messages whose session or user is missing get a
  // placeholder session/user rather than being lost.
  Result<CopyReport> CopyRowsFrom(const std::string& source_path);
  // The page pass, run after CopyRowsFrom: reads the damaged file at `db_path` (and its WAL at
  // `wal_path`, if any) page by page without SQLite and adds the rows this store still lacks:
  // rows of trees whose interior pages are damaged, rows of leaves cut off from their tree.
  // Schema-driven: the targets are this store's tables; a record's values fill the table's
  // columns in declaration order (its rowid the INTEGER PRIMARY KEY). Parents are inserted
  // before children; a row that breaks a constraint is skipped and counted, and so is an orphan
  // row whose shape fits no table or several. Never modifies the files it reads.
  Result<CopyReport> CopyScannedRowsFrom(const std::string& db_path, const std::string& wal_path);
  // Recreates what can be derived: the users of messages whose user row was lost (so that every
  // message has its SENT edge), the concepts' FTS index, and the message counters.
  Status RebuildDerivedData();
  Status RecordRecoveryEvent(const RecoveryEvent& event);
  Result<std::optional<RecoveryEvent>> LastRecoveryEvent();

  // ---- Integrity and backup ----
  // PRAGMA quick_check: "ok", or SQLite's description of the first problems. Outside a
  // transaction it reads through a page cache of 32 pages, so it leaves the cache nearly empty.
  Result<std::string> QuickCheck();
  // Rows whose foreign key points nowhere (PRAGMA foreign_key_check): damage that quick_check
  // cannot see, e.g. a flipped byte inside a node id. 0 on a healthy store.
  Result<int64_t> DanglingReferences();
  // The deep check: PRAGMA integrity_check (which also compares every index with its table),
  // SchemaDamage and DanglingReferences. "ok", or a description of the first problems. Slower
  // than QuickCheck.
  Result<std::string> IntegrityCheck();
  // An online, consistent copy of the database at `path` (SQLite backup API), written to a
  // temporary name, synced and renamed into place.
  Status Snapshot(const std::string& path);
  // Checkpoints the WAL into the database file (TRUNCATE).
  Status Checkpoint();
  Result<StorageInfo> Storage();
  // Frees this connection's page cache (it refills on demand). Called after the open-time checks,
  // so that a thousand idle open stores do not each hold the pages the checks read.
  void ReleaseMemory();
  // Returns free pages to the file system, at most `pages` of them (0 = all).
  Status ReclaimSpace(int64_t pages);

 private:
  MemoryStore(StoreOptions options, std::unique_ptr<store_internal::Db> db);
  Status Configure(bool is_new);
  Status CheckRecordedVersion(int64_t version);
  Status Migrate();
  // SQLite parses the schema's text on every open, and that text sits in ordinary pages without a
  // checksum: a flipped byte can rename a column or a table and still pass quick_check, leaving
  // a store whose every query fails. "" when every object the migrations create is there
  // unchanged (objects added by hand, e.g. sqlite_stat1, are let be); otherwise what differs.
  Result<std::string> SchemaDamage();
  Status EnforceRetention(SavedMessage& saved);
  Status EnsureSession(const NewMessage& message, int64_t now);
  // The ids `sql` selects (?1 the model, ?2 the limit): nodes of one kind without its vector.
  Result<std::vector<std::string>> IdsMissingEmbedding(const char* sql, const std::string& model,
                                                       int limit);
  // Salvage: runs `insert` (and the table's preparatory statement) for keys [from, to) of the
  // attached source; adds the rows copied to `copied`; returns the SQLite result code.
  int CopyRange(const store_internal::SalvageTable& copy, const std::string& insert, int64_t from,
                int64_t to, int64_t& copied);
  int64_t Now() const { return options_.clock->NowMillis(); }

  StoreOptions options_;
  std::unique_ptr<store_internal::Db> db_;
  std::unique_ptr<store_internal::VectorCache> vectors_;
  std::unique_ptr<store_internal::KeywordIndex> keywords_;  // Filled on the first search.
  int schema_version_ = 0;
};

}  // namespace locrit

// MemoryStore standalone memories, concepts, topics, relations, the graph view and statistics.
//
// Relations live in one table per type (docs/memory-format.md); kEdgeTables below is the one place
// that maps a RelationType to its table, end columns and property columns, so every edge query is
// generated from it rather than written seven times.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <string_view>
#include <unordered_set>
#include <utility>

#include "base/utf8.h"
#include "store/internal/rows.h"
#include "store/internal/sqlite.h"
#include "store/memory_store.h"

namespace locrit {

using store_internal::Db;
using store_internal::Stmt;
using store_internal::Transaction;

namespace {

// Result-count bounds of the views below (STYLE.md: every limit is named).
constexpr int kMaxSummaryRecent = 100;
constexpr int kSummarySessions = 20;
constexpr int kSummaryTopConcepts = 10;
// A graph of kMaxGraphNodes densely related concepts could have millions of edges; a drawing
// needs far fewer.
constexpr size_t kMaxGraphEdges = 10000;
constexpr size_t kMaxLabelCodePoints = 60;

// ---- Validation ----

Status ValidateUtf8(std::string_view text, std::string_view field) {
  if (!IsValidUtf8(text)) return InvalidArgumentError(fmt::format("{} is not valid UTF-8", field));
  return Status::Ok();
}

Status ValidateNonEmpty(std::string_view text, std::string_view field) {
  if (text.empty()) return InvalidArgumentError(fmt::format("{} must not be empty", field));
  return ValidateUtf8(text, field);
}

// Importance, confidence: NaN compares false with everything, so test finiteness first.
Status ValidateUnit(double value, std::string_view field) {
  if (!std::isfinite(value) || value < 0.0 || value > 1.0) {
    return InvalidArgumentError(fmt::format("{} must be a number in [0, 1], not {}", field, value));
  }
  return Status::Ok();
}

Status ValidateExplicitId(const std::optional<std::string>& id) {
  if (id && (id->empty() || !IsValidUtf8(*id))) {
    return InvalidArgumentError("an explicit id must be non-empty UTF-8");
  }
  return Status::Ok();
}

// The same SQL as SaveMessage's check, so both share one cached statement.
Status ValidateMetadata(Db* db, const std::string& metadata) {
  if (metadata == "{}") return Status::Ok();
  ASSIGN_OR_RETURN(Stmt check, db->Prepare("SELECT CASE WHEN json_valid(?1) THEN json_type(?1) = 'object' ELSE 0 END"));
  ASSIGN_OR_RETURN(const bool row, check.Bind(1, metadata).Step());
  if (!row || check.Int(0) == 0) return InvalidArgumentError("metadata must be a JSON object");
  return Status::Ok();
}

// ---- Small query helpers ----

template <typename T, typename Read>
Result<std::vector<T>> ReadAll(Stmt& stmt, Read read) {
  std::vector<T> out;
  while (true) {
    ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) break;
    out.push_back(read(stmt));
  }
  return out;
}

// Makes a borrowed statement bindable again after it ran (sqlite3_bind_* refuses a statement
// that has stepped since its last reset), for loops that run one statement per item.
void Rewind(Stmt& stmt) { sqlite3_reset(stmt.raw()); }

// "a, b" -> "m.a, m.b", for joins that select a node's columns.
std::string Prefixed(std::string_view alias, std::string_view columns) {
  std::string out;
  size_t start = 0;
  while (start < columns.size()) {
    size_t end = columns.find(',', start);
    if (end == std::string_view::npos) end = columns.size();
    std::string_view column = columns.substr(start, end - start);
    while (!column.empty() && column.front() == ' ') column.remove_prefix(1);
    if (!out.empty()) out += ", ";
    out += fmt::format("{}.{}", alias, column);
    start = end + 1;
  }
  return out;
}

// Several reads seen from one snapshot, so counts and lists agree with each other. Inside an
// enclosing transaction (a writer's batch) that transaction already is the snapshot.
class ReadSnapshot {
 public:
  explicit ReadSnapshot(Db* db) : db_(db), own_(!db->InTransaction()) {
    if (own_) status_ = db_->Exec("BEGIN");
  }
  ~ReadSnapshot() {
    if (own_ && status_.ok() && db_->InTransaction()) (void)db_->Exec("COMMIT");
  }
  ReadSnapshot(const ReadSnapshot&) = delete;
  ReadSnapshot& operator=(const ReadSnapshot&) = delete;
  const Status& status() const { return status_; }

 private:
  Db* db_;
  bool own_;
  Status status_;
};

// At most kMaxLabelCodePoints code points of `text`, cut on a code point boundary, with line
// breaks and tabs flattened so a label stays on one line.
std::string ShortLabel(std::string_view text) {
  size_t count = 0;
  size_t end = 0;
  for (; end < text.size(); ++end) {
    const bool continuation = (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80;
    if (continuation) continue;
    if (count == kMaxLabelCodePoints) break;
    ++count;
  }
  std::string out(text.substr(0, end));
  std::replace_if(out.begin(), out.end(), [](char c) { return c == '\n' || c == '\r' || c == '\t'; },
                  ' ');
  if (end < text.size()) out += "…";
  return out;
}

// ---- Node and edge tables ----

// Indexed by NodeType.
constexpr std::array<std::string_view, 6> kNodeTables = {"users",    "sessions", "messages",
                                                         "concepts", "topics",   "memories"};

// One relation table. `strength_col` / `position_col` name the column behind Relation::strength /
// Relation::position (empty when the type has none); `key` is the table's UNIQUE natural key.
struct EdgeTable {
  RelationType type;
  std::string_view table;
  std::string_view from_col;
  std::string_view to_col;
  std::string_view strength_col;
  std::string_view position_col;
  std::string_view key;
};

// Indexed by RelationType.
constexpr std::array<EdgeTable, 7> kEdgeTables = {{
    {RelationType::kSent, "sent", "user_id", "message_id", "weight", "", "message_id, user_id"},
    {RelationType::kPartOf, "part_of", "message_id", "session_id", "", "position",
     "message_id, session_id"},
    {RelationType::kRespondsTo, "responds_to", "from_id", "to_id", "", "delay_seconds",
     "from_id, to_id"},
    {RelationType::kMentions, "mentions", "message_id", "concept_id", "confidence", "",
     "message_id, concept_id"},
    {RelationType::kRelatesTo, "relates_to", "from_id", "to_id", "strength", "",
     "from_id, to_id, relationship_type"},
    {RelationType::kDiscusses, "discusses", "session_id", "topic_id", "relevance", "",
     "session_id, topic_id"},
    {RelationType::kLearns, "learns", "session_id", "memory_id", "strength", "",
     "session_id, memory_id"},
}};

constexpr bool EdgeTablesMatchEnum() {
  for (size_t i = 0; i < kEdgeTables.size(); ++i) {
    if (static_cast<size_t>(kEdgeTables[i].type) != i) return false;
  }
  return true;
}
static_assert(EdgeTablesMatchEnum(), "kEdgeTables must be in RelationType order");

const EdgeTable* FindEdgeTable(RelationType type) {
  const auto index = static_cast<size_t>(type);
  return index < kEdgeTables.size() ? &kEdgeTables[index] : nullptr;
}

// The generated SQL of one edge table. Every statement that returns edges selects the same
// columns: id, from, to, strength, position, relationship_type (see ReadRelation).
struct EdgeSql {
  std::string select_by_id;
  std::string upsert;
  std::string delete_by_id;
  std::string by_lead;  // id, other end, for the graph view; see GraphLeadIsFrom.
};

// The graph view looks edges up from the end whose index gives each node few edges: a message
// has one SENT edge, whereas a user may have thousands. Every other table leads with `from`.
bool GraphLeadIsFrom(RelationType type) { return type != RelationType::kSent; }

std::string EdgeColumns(const EdgeTable& e) {
  return fmt::format("id, {}, {}, {}, {}, {}", e.from_col, e.to_col,
                     e.strength_col.empty() ? "1.0" : e.strength_col,
                     e.position_col.empty() ? "0" : e.position_col,
                     e.type == RelationType::kRelatesTo ? "relationship_type" : "''");
}

EdgeSql MakeEdgeSql(const EdgeTable& e) {
  EdgeSql sql;
  const std::string columns = EdgeColumns(e);
  sql.select_by_id = fmt::format("SELECT {} FROM {} WHERE id = ?1", columns, e.table);
  std::string insert_columns = fmt::format("{}, {}", e.from_col, e.to_col);
  std::string values = "?1, ?2";
  std::string updates;
  auto add_property = [&](std::string_view column, std::string_view param) {
    insert_columns += fmt::format(", {}", column);
    values += fmt::format(", {}", param);
    if (column == "relationship_type") return;  // Part of the natural key, never updated.
    if (!updates.empty()) updates += ", ";
    updates += fmt::format("{0} = excluded.{0}", column);
  };
  if (!e.strength_col.empty()) add_property(e.strength_col, "?3");
  if (!e.position_col.empty()) add_property(e.position_col, "?4");
  if (e.type == RelationType::kRelatesTo) add_property("relationship_type", "?5");
  sql.upsert = fmt::format(
      "INSERT INTO {}({}) VALUES ({}) ON CONFLICT({}) DO UPDATE SET {} RETURNING {}", e.table,
      insert_columns, values, e.key, updates, columns);
  // SENT and PART_OF are views over their message's columns: "adding" one that restates the
  // message (AddRelation checks that it does) sets its property on the message.
  if (e.type == RelationType::kSent) {
    sql.upsert =
        "UPDATE messages SET sent_weight = ?3 WHERE id = ?2 AND user_id = ?1 "
        "RETURNING seq, user_id, id, sent_weight, 0, ''";
  } else if (e.type == RelationType::kPartOf) {
    sql.upsert =
        "UPDATE messages SET position = ?4 WHERE id = ?1 AND session_id = ?2 "
        "RETURNING seq, id, session_id, 1.0, position, ''";
  }
  sql.delete_by_id = fmt::format("DELETE FROM {} WHERE id = ?1", e.table);
  const bool lead_from = GraphLeadIsFrom(e.type);
  sql.by_lead = fmt::format("SELECT id, {} FROM {} WHERE {} = ?1",
                            lead_from ? e.to_col : e.from_col, e.table,
                            lead_from ? e.from_col : e.to_col);
  return sql;
}

const EdgeSql& SqlFor(const EdgeTable& e) {
  static const std::array<EdgeSql, 7> kSql = [] {
    std::array<EdgeSql, 7> out;
    for (size_t i = 0; i < kEdgeTables.size(); ++i) out[i] = MakeEdgeSql(kEdgeTables[i]);
    return out;
  }();
  return kSql[static_cast<size_t>(e.type)];
}

std::string EdgeId(const EdgeTable& e, int64_t rowid) { return fmt::format("{}:{}", e.table, rowid); }

Relation ReadRelation(const EdgeTable& e, const Stmt& s) {
  Relation r;
  r.id = EdgeId(e, s.Int(0));
  r.type = e.type;
  r.from_id = s.Text(1);
  r.to_id = s.Text(2);
  r.strength = s.Double(3);
  r.position = s.Int(4);
  r.relationship_type = s.Text(5);
  return r;
}

struct EdgeRef {
  const EdgeTable* table;
  int64_t rowid;
};

// "<table>:<rowid>", the rowid in canonical decimal form.
Result<EdgeRef> ParseEdgeId(std::string_view id) {
  const size_t colon = id.find(':');
  if (colon == std::string_view::npos) {
    return InvalidArgumentError(fmt::format("relation id '{}' is not of the form <type>:<number>",
                                            std::string(id)));
  }
  const std::string_view name = id.substr(0, colon);
  const std::string_view digits = id.substr(colon + 1);
  const EdgeTable* table = nullptr;
  for (const EdgeTable& e : kEdgeTables) {
    if (e.table == name) table = &e;
  }
  if (table == nullptr) {
    return InvalidArgumentError(fmt::format("relation id '{}' names no relation type",
                                            std::string(id)));
  }
  int64_t rowid = 0;
  const bool canonical = !digits.empty() && std::all_of(digits.begin(), digits.end(), [](char c) {
    return c >= '0' && c <= '9';
  }) && (digits.size() == 1 || digits.front() != '0');
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), rowid);
  if (!canonical || ec != std::errc() || end != digits.data() + digits.size()) {
    return InvalidArgumentError(fmt::format("relation id '{}' has no valid number",
                                            std::string(id)));
  }
  return EdgeRef{table, rowid};
}

Result<bool> NodeExists(Db* db, NodeType type, const std::string& id) {
  static const std::array<std::string, 6> kSql = [] {
    std::array<std::string, 6> out;
    for (size_t i = 0; i < kNodeTables.size(); ++i) {
      out[i] = fmt::format("SELECT 1 FROM {} WHERE id = ?1", kNodeTables[i]);
    }
    return out;
  }();
  ASSIGN_OR_RETURN(Stmt stmt, db->Prepare(kSql[static_cast<size_t>(type)]));
  return stmt.Bind(1, id).Step();
}

// not_found when `id` is no node at all; invalid_argument when it is a node of another type
// (which only costs the extra lookups on this error path).
Status CheckEnd(Db* db, RelationType relation, std::string_view end, NodeType want,
                const std::string& id) {
  ASSIGN_OR_RETURN(const bool found, NodeExists(db, want, id));
  if (found) return Status::Ok();
  for (size_t i = 0; i < kNodeTables.size(); ++i) {
    const auto other = static_cast<NodeType>(i);
    if (other == want) continue;
    ASSIGN_OR_RETURN(const bool elsewhere, NodeExists(db, other, id));
    if (elsewhere) {
      return InvalidArgumentError(fmt::format("{} {} must be a {}, but {} is a {}",
                                              RelationTypeName(relation), end, NodeTypeName(want),
                                              id, NodeTypeName(other)));
    }
  }
  return NotFoundError(fmt::format("{} {}: {} {} does not exist", RelationTypeName(relation), end,
                                   NodeTypeName(want), id));
}

// ---- Concepts ranked by mentions ----

Result<std::vector<ConceptMentions>> ConceptsByMentions(Db* db, int limit) {
  // No index can rank by a count; this walks concepts once and counts each one's mentions with
  // the mentions_by_concept index.
  static const std::string kSql = fmt::format(
      "SELECT {}, (SELECT count(*) FROM mentions m WHERE m.concept_id = c.id) AS n "
      "FROM concepts c ORDER BY n DESC, c.name COLLATE NOCASE, c.rid LIMIT ?1",
      Prefixed("c", store_internal::kConceptColumns));
  ASSIGN_OR_RETURN(Stmt stmt, db->Prepare(kSql));
  stmt.Bind(1, limit);
  return ReadAll<ConceptMentions>(stmt, [](const Stmt& s) {
    return ConceptMentions{store_internal::ReadConcept(s), s.Int(6)};
  });
}

// ---- Graph view ----

struct GraphCandidate {
  std::string id;
  std::string label;
  // Messages only: the session and sender drawn with them.
  std::optional<std::pair<std::string, std::string>> session;  // id, label
  std::optional<std::pair<std::string, std::string>> user;     // id, label
};

Result<std::vector<GraphCandidate>> GraphCandidates(Db* db, std::string_view sql, int limit) {
  ASSIGN_OR_RETURN(Stmt stmt, db->Prepare(sql));
  stmt.Bind(1, limit);
  return ReadAll<GraphCandidate>(stmt, [](const Stmt& s) {
    GraphCandidate c{s.Text(0), ShortLabel(s.TextView(1)), std::nullopt, std::nullopt};
    if (sqlite3_column_count(s.raw()) > 2) {
      if (!s.IsNull(2)) c.session.emplace(s.Text(2), ShortLabel(s.TextView(3)));
      if (!s.IsNull(4)) c.user.emplace(s.Text(4), ShortLabel(s.TextView(5)));
    }
    return c;
  });
}

// Fills a node budget fairly from several newest-first candidate lists.
class GraphPicker {
 public:
  explicit GraphPicker(size_t budget) : budget_(budget) {}

  bool Full() const { return view_.nodes.size() >= budget_; }
  size_t Remaining() const { return budget_ - view_.nodes.size(); }
  bool Has(NodeType type, const std::string& id) const {
    return ids_[static_cast<size_t>(type)].contains(id);
  }
  void Add(NodeType type, const std::string& id, const std::string& label) {
    if (ids_[static_cast<size_t>(type)].insert(id).second) {
      view_.nodes.push_back(GraphNode{id, type, label});
    }
  }
  const std::unordered_set<std::string>& Ids(NodeType type) const {
    return ids_[static_cast<size_t>(type)];
  }
  GraphView& view() { return view_; }

 private:
  size_t budget_;
  GraphView view_;
  std::array<std::unordered_set<std::string>, 6> ids_;  // Indexed by NodeType.
};

}  // namespace

// ---- Standalone memories ----

Result<Memory> MemoryStore::AddMemory(const NewMemory& memory) {
  RETURN_IF_ERROR(ValidateNonEmpty(memory.content, "content"));
  RETURN_IF_ERROR(ValidateUnit(memory.importance, "importance"));
  RETURN_IF_ERROR(ValidateUtf8(memory.metadata, "metadata"));
  RETURN_IF_ERROR(ValidateExplicitId(memory.id));
  const std::string metadata = memory.metadata.empty() ? "{}" : memory.metadata;

  Transaction tx(db_.get());
  RETURN_IF_ERROR(tx.status());
  RETURN_IF_ERROR(ValidateMetadata(db_.get(), metadata));
  Memory out;
  out.id = memory.id ? *memory.id : options_.ids->Next();
  if (memory.id) {
    ASSIGN_OR_RETURN(const bool exists, NodeExists(db_.get(), NodeType::kMemory, out.id));
    if (exists) return AlreadyExistsError(fmt::format("memory {} already exists", out.id));
  }
  out.content = memory.content;
  out.importance = memory.importance;
  out.created_at = Now();
  out.last_accessed = out.created_at;
  out.metadata = metadata;
  {
    ASSIGN_OR_RETURN(Stmt insert, db_->Prepare(
        "INSERT INTO memories(id, content, importance, created_at, last_accessed, metadata) "
        "VALUES (?1, ?2, ?3, ?4, ?4, ?5)"));
    RETURN_IF_ERROR(
        insert.BindAll(out.id, out.content, out.importance, out.created_at, out.metadata).Run());
  }
  RETURN_IF_ERROR(tx.Commit());
  return out;
}

Result<Memory> MemoryStore::GetMemory(const std::string& id) {
  static const std::string kSql =
      fmt::format("SELECT {} FROM memories WHERE id = ?1", store_internal::kMemoryColumns);
  ASSIGN_OR_RETURN(Stmt stmt, db_->Prepare(kSql));
  ASSIGN_OR_RETURN(const bool row, stmt.Bind(1, id).Step());
  if (!row) return NotFoundError(fmt::format("memory {} does not exist", id));
  return store_internal::ReadMemory(stmt);
}

Result<std::vector<Memory>> MemoryStore::ListMemories(int limit) {
  // No index orders by importance; LIMIT makes this a bounded top-N sort.
  static const std::string kSql = fmt::format(
      "SELECT {} FROM memories ORDER BY importance DESC, created_at DESC, rid DESC LIMIT ?1",
      store_internal::kMemoryColumns);
  ASSIGN_OR_RETURN(Stmt stmt, db_->Prepare(kSql));
  stmt.Bind(1, std::clamp(limit, 1, kMaxListResults));
  return ReadAll<Memory>(stmt, [](const Stmt& s) { return store_internal::ReadMemory(s); });
}

Result<Memory> MemoryStore::EditMemory(const std::string& id, const MemoryEdit& edit) {
  if (edit.content) RETURN_IF_ERROR(ValidateNonEmpty(*edit.content, "content"));
  if (edit.importance) RETURN_IF_ERROR(ValidateUnit(*edit.importance, "importance"));
  std::optional<std::string> metadata = edit.metadata;
  if (metadata) {
    RETURN_IF_ERROR(ValidateUtf8(*metadata, "metadata"));
    if (metadata->empty()) metadata = "{}";
  }

  Transaction tx(db_.get());
  RETURN_IF_ERROR(tx.status());
  if (metadata) RETURN_IF_ERROR(ValidateMetadata(db_.get(), *metadata));
  Memory out;
  {
    // last_accessed is left alone: it records retrieval, not editing.
    static const std::string kSql = fmt::format(
        "UPDATE memories SET content = coalesce(?2, content), "
        "importance = coalesce(?3, importance), metadata = coalesce(?4, metadata) "
        "WHERE id = ?1 RETURNING {}",
        store_internal::kMemoryColumns);
    ASSIGN_OR_RETURN(Stmt update, db_->Prepare(kSql));
    update.Bind(1, id);
    if (edit.content) update.Bind(2, *edit.content);
    if (edit.importance) update.Bind(3, *edit.importance);
    if (metadata) update.Bind(4, *metadata);
    ASSIGN_OR_RETURN(const bool row, update.Step());
    if (!row) return NotFoundError(fmt::format("memory {} does not exist", id));
    out = store_internal::ReadMemory(update);
  }
  if (edit.content) {
    // The vector was the old text's meaning: gone with it, so the memory is embedded again.
    ASSIGN_OR_RETURN(Stmt stale, db_->Prepare("DELETE FROM memory_vectors WHERE node_id = ?1"));
    RETURN_IF_ERROR(stale.Bind(1, id).Run());
  }
  RETURN_IF_ERROR(tx.Commit());
  return out;
}

Status MemoryStore::DeleteMemory(const std::string& id) {
  Transaction tx(db_.get());
  RETURN_IF_ERROR(tx.status());
  {
    ASSIGN_OR_RETURN(Stmt stmt, db_->Prepare("DELETE FROM memories WHERE id = ?1"));
    RETURN_IF_ERROR(stmt.Bind(1, id).Run());
  }
  if (db_->Changes() == 0) return NotFoundError(fmt::format("memory {} does not exist", id));
  return tx.Commit();
}

Status MemoryStore::TouchMemories(const std::vector<std::string>& ids) {
  if (ids.empty()) return Status::Ok();
  const int64_t now = Now();
  Transaction tx(db_.get());
  RETURN_IF_ERROR(tx.status());
  {
    ASSIGN_OR_RETURN(Stmt touch,
                     db_->Prepare("UPDATE memories SET last_accessed = ?2 WHERE id = ?1"));
    for (const std::string& id : ids) {
      RETURN_IF_ERROR(touch.BindAll(id, now).Run());
      Rewind(touch);
    }
  }
  return tx.Commit();
}

// ---- Concepts ----

Result<Concept> MemoryStore::UpsertConcept(const NewConcept& input) {
  RETURN_IF_ERROR(ValidateNonEmpty(input.name, "name"));
  RETURN_IF_ERROR(ValidateUtf8(input.type, "type"));
  if (input.description) RETURN_IF_ERROR(ValidateUtf8(*input.description, "description"));
  if (input.confidence) RETURN_IF_ERROR(ValidateUnit(*input.confidence, "confidence"));
  RETURN_IF_ERROR(ValidateExplicitId(input.id));

  Transaction tx(db_.get());
  RETURN_IF_ERROR(tx.status());
  const std::string id = input.id ? *input.id : options_.ids->Next();
  if (input.id) {
    // An explicit id may name this very concept (an idempotent re-upsert), never another one.
    ASSIGN_OR_RETURN(Stmt taken, db_->Prepare(
        "SELECT 1 FROM concepts WHERE id = ?1 AND NOT (name = ?2 COLLATE NOCASE AND type = ?3)"));
    ASSIGN_OR_RETURN(const bool clash, taken.BindAll(id, input.name, input.type).Step());
    if (clash) return AlreadyExistsError(fmt::format("concept {} already exists", id));
  }
  Concept out;
  {
    // On a (name, type) match the stored id, name spelling and created_at stay; an explicit id
    // only applies to a new concept.
    static const std::string kSql = fmt::format(
        "INSERT INTO concepts(id, name, type, description, confidence, created_at) "
        "VALUES (?1, ?2, ?3, coalesce(?4, ''), coalesce(?5, 1.0), ?6) "
        "ON CONFLICT(name COLLATE NOCASE, type) DO UPDATE SET "
        "description = coalesce(?4, description), confidence = coalesce(?5, confidence) "
        "RETURNING {}",
        store_internal::kConceptColumns);
    ASSIGN_OR_RETURN(Stmt upsert, db_->Prepare(kSql));
    upsert.BindAll(id, input.name, input.type);
    if (input.description) upsert.Bind(4, *input.description);
    if (input.confidence) upsert.Bind(5, *input.confidence);
    upsert.Bind(6, Now());
    ASSIGN_OR_RETURN(const bool row, upsert.Step());
    if (!row) return InternalError("concept upsert returned no row");
    out = store_internal::ReadConcept(upsert);
  }
  RETURN_IF_ERROR(tx.Commit());
  return out;
}

Result<Concept> MemoryStore::GetConcept(const std::string& id) {
  static const std::string kSql =
      fmt::format("SELECT {} FROM concepts WHERE id = ?1", store_internal::kConceptColumns);
  ASSIGN_OR_RETURN(Stmt stmt, db_->Prepare(kSql));
  ASSIGN_OR_RETURN(const bool row, stmt.Bind(1, id).Step());
  if (!row) return NotFoundError(fmt::format("concept {} does not exist", id));
  return store_internal::ReadConcept(stmt);
}

Result<std::vector<Concept>> MemoryStore::ListConcepts(int limit) {
  ASSIGN_OR_RETURN(auto ranked, ConceptsByMentions(db_.get(), std::clamp(limit, 1, kMaxListResults)));
  std::vector<Concept> out;
  out.reserve(ranked.size());
  for (ConceptMentions& c : ranked) out.push_back(std::move(c.node));
  return out;
}

Result<ConceptDetails> MemoryStore::GetConceptDetails(const std::string& name,
                                                      const std::optional<std::string>& type) {
  if (name.empty()) return InvalidArgumentError("name must not be empty");
  ReadSnapshot snapshot(db_.get());
  RETURN_IF_ERROR(snapshot.status());
  ConceptDetails details;
  {
    static const std::string kSql = fmt::format(
        "SELECT {}, (SELECT count(*) FROM mentions m WHERE m.concept_id = c.id) AS n "
        "FROM concepts c WHERE c.name = ?1 COLLATE NOCASE AND (?2 IS NULL OR c.type = ?2) "
        "ORDER BY n DESC, c.rid LIMIT 1",
        Prefixed("c", store_internal::kConceptColumns));
    ASSIGN_OR_RETURN(Stmt find, db_->Prepare(kSql));
    find.Bind(1, name);
    if (type) find.Bind(2, *type);
    ASSIGN_OR_RETURN(const bool row, find.Step());
    if (!row) {
      return NotFoundError(type ? fmt::format("concept {} of type {} does not exist", name, *type)
                                : fmt::format("concept {} does not exist", name));
    }
    details.node = store_internal::ReadConcept(find);
  }
  const std::string& id = details.node.id;
  {
    ASSIGN_OR_RETURN(Stmt stats, db_->Prepare(
        "SELECT count(*), min(m.created_at), max(m.created_at) FROM mentions x "
        "JOIN messages m ON m.id = x.message_id WHERE x.concept_id = ?1"));
    ASSIGN_OR_RETURN(const bool row, stats.Bind(1, id).Step());
    if (row) {
      details.mention_count = stats.Int(0);
      if (!stats.IsNull(1)) details.first_mention = stats.Int(1);
      if (!stats.IsNull(2)) details.last_mention = stats.Int(2);
    }
  }
  {
    static const std::string kSql = fmt::format(
        "SELECT {} FROM mentions x JOIN messages m ON m.id = x.message_id "
        "WHERE x.concept_id = ?1 ORDER BY m.created_at DESC, m.seq DESC LIMIT ?2",
        Prefixed("m", store_internal::kMessageColumns));
    ASSIGN_OR_RETURN(Stmt recent, db_->Prepare(kSql));
    recent.BindAll(id, kMaxDetailMentions);
    ASSIGN_OR_RETURN(details.recent_mentions, ReadAll<Message>(recent, [](const Stmt& s) {
                       return store_internal::ReadMessage(s);
                     }));
  }
  {
    // Two index lookups (by from, by to); a self-loop is counted once.
    const EdgeTable& e = kEdgeTables[static_cast<size_t>(RelationType::kRelatesTo)];
    static const std::string kSql = fmt::format(
        "SELECT {0} FROM relates_to WHERE from_id = ?1 UNION ALL "
        "SELECT {0} FROM relates_to WHERE to_id = ?1 AND from_id <> ?1 ORDER BY 1 LIMIT ?2",
        EdgeColumns(e));
    ASSIGN_OR_RETURN(Stmt relations, db_->Prepare(kSql));
    relations.BindAll(id, kMaxListResults);
    ASSIGN_OR_RETURN(details.relations, ReadAll<Relation>(relations, [&e](const Stmt& s) {
                       return ReadRelation(e, s);
                     }));
  }
  return details;
}

Result<Concept> MemoryStore::EditConcept(const std::string& id, const ConceptEdit& edit) {
  if (edit.name) RETURN_IF_ERROR(ValidateNonEmpty(*edit.name, "name"));
  if (edit.type) RETURN_IF_ERROR(ValidateUtf8(*edit.type, "type"));
  if (edit.description) RETURN_IF_ERROR(ValidateUtf8(*edit.description, "description"));
  if (edit.confidence) RETURN_IF_ERROR(ValidateUnit(*edit.confidence, "confidence"));

  Transaction tx(db_.get());
  RETURN_IF_ERROR(tx.status());
  ASSIGN_OR_RETURN(const Concept current, GetConcept(id));
  const std::string& name = edit.name ? *edit.name : current.name;
  const std::string& type = edit.type ? *edit.type : current.type;
  if (edit.name || edit.type) {
    // Checked here rather than left to the UNIQUE constraint, whose error would read as
    // invalid_argument.
    ASSIGN_OR_RETURN(Stmt taken, db_->Prepare(
        "SELECT id FROM concepts WHERE name = ?1 COLLATE NOCASE AND type = ?2 AND id <> ?3"));
    ASSIGN_OR_RETURN(const bool clash, taken.BindAll(name, type, id).Step());
    if (clash) {
      return AlreadyExistsError(fmt::format("concept {} of type '{}' already exists as {}", name,
                                            type, taken.Text(0)));
    }
  }
  Concept out;
  {
    static const std::string kSql = fmt::format(
        "UPDATE concepts SET name = ?2, type = ?3, description = coalesce(?4, description), "
        "confidence = coalesce(?5, confidence) WHERE id = ?1 RETURNING {}",
        store_internal::kConceptColumns);
    ASSIGN_OR_RETURN(Stmt update, db_->Prepare(kSql));
    update.BindAll(id, name, type);
    if (edit.description) update.Bind(4, *edit.description);
    if (edit.confidence) update.Bind(5, *edit.confidence);
    ASSIGN_OR_RETURN(const bool row, update.Step());
    if (!row) return NotFoundError(fmt::format("concept {} does not exist", id));
    out = store_internal::ReadConcept(update);
  }
  RETURN_IF_ERROR(tx.Commit());
  return out;
}

Status MemoryStore::DeleteConcept(const std::string& id) {
  Transaction tx(db_.get());
  RETURN_IF_ERROR(tx.status());
  {
    ASSIGN_OR_RETURN(Stmt stmt, db_->Prepare("DELETE FROM concepts WHERE id = ?1"));
    RETURN_IF_ERROR(stmt.Bind(1, id).Run());
  }
  if (db_->Changes() == 0) return NotFoundError(fmt::format("concept {} does not exist", id));
  return tx.Commit();
}

Result<std::vector<RelatedConcept>> MemoryStore::RelatedConcepts(const std::string& concept_id,
                                                                 int depth) {
  if (depth < 1 || depth > kMaxRelatedDepth) {
    return InvalidArgumentError(
        fmt::format("depth must be between 1 and {}, not {}", kMaxRelatedDepth, depth));
  }
  ASSIGN_OR_RETURN(const bool exists, NodeExists(db_.get(), NodeType::kConcept, concept_id));
  if (!exists) return NotFoundError(fmt::format("concept {} does not exist", concept_id));

  // UNION (not UNION ALL) drops repeated (concept, depth) pairs and the depth bound stops the
  // walk, so a cycle costs at most one row per concept per level. Each direction is its own
  // recursive step so each is an index lookup (the natural key by from_id, relates_to_by_to).
  static const std::string kSql = fmt::format(
      "WITH RECURSIVE reach(id, depth) AS ("
      " SELECT ?1, 0"
      " UNION SELECT r.to_id, reach.depth + 1 FROM reach JOIN relates_to r"
      "   ON r.from_id = reach.id WHERE reach.depth < ?2"
      " UNION SELECT r.from_id, reach.depth + 1 FROM reach JOIN relates_to r"
      "   ON r.to_id = reach.id WHERE reach.depth < ?2)"
      " SELECT {}, min(reach.depth) AS d FROM reach JOIN concepts c ON c.id = reach.id"
      " WHERE reach.id <> ?1 GROUP BY c.rid ORDER BY d, c.name COLLATE NOCASE, c.rid LIMIT ?3",
      Prefixed("c", store_internal::kConceptColumns));
  ASSIGN_OR_RETURN(Stmt stmt, db_->Prepare(kSql));
  stmt.BindAll(concept_id, depth, kMaxListResults);
  return ReadAll<RelatedConcept>(stmt, [](const Stmt& s) {
    return RelatedConcept{store_internal::ReadConcept(s), static_cast<int>(s.Int(6))};
  });
}

// ---- Topics ----

Result<Topic> MemoryStore::UpsertTopic(const NewTopic& topic) {
  RETURN_IF_ERROR(ValidateNonEmpty(topic.name, "name"));
  RETURN_IF_ERROR(ValidateUtf8(topic.description, "description"));
  RETURN_IF_ERROR(ValidateUtf8(topic.category, "category"));
  RETURN_IF_ERROR(ValidateExplicitId(topic.id));

  Transaction tx(db_.get());
  RETURN_IF_ERROR(tx.status());
  const std::string id = topic.id ? *topic.id : options_.ids->Next();
  if (topic.id) {
    // topics.name is declared COLLATE NOCASE, so <> compares case-insensitively.
    ASSIGN_OR_RETURN(Stmt taken, db_->Prepare("SELECT 1 FROM topics WHERE id = ?1 AND name <> ?2"));
    ASSIGN_OR_RETURN(const bool clash, taken.BindAll(id, topic.name).Step());
    if (clash) return AlreadyExistsError(fmt::format("topic {} already exists", id));
  }
  Topic out;
  {
    // Empty description/category mean "keep what is stored", as NewTopic has no optionals.
    static const std::string kSql = fmt::format(
        "INSERT INTO topics(id, name, description, category, created_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(name) DO UPDATE SET "
        "description = CASE WHEN excluded.description <> '' THEN excluded.description "
        "ELSE description END, "
        "category = CASE WHEN excluded.category <> '' THEN excluded.category ELSE category END "
        "RETURNING {}",
        store_internal::kTopicColumns);
    ASSIGN_OR_RETURN(Stmt upsert, db_->Prepare(kSql));
    upsert.BindAll(id, topic.name, topic.description, topic.category, Now());
    ASSIGN_OR_RETURN(const bool row, upsert.Step());
    if (!row) return InternalError("topic upsert returned no row");
    out = store_internal::ReadTopic(upsert);
  }
  RETURN_IF_ERROR(tx.Commit());
  return out;
}

Result<std::vector<Topic>> MemoryStore::ListTopics(int limit) {
  // By name: the UNIQUE (NOCASE) index on name already holds this order.
  static const std::string kSql = fmt::format("SELECT {} FROM topics ORDER BY name LIMIT ?1",
                                              store_internal::kTopicColumns);
  ASSIGN_OR_RETURN(Stmt stmt, db_->Prepare(kSql));
  stmt.Bind(1, std::clamp(limit, 1, kMaxListResults));
  return ReadAll<Topic>(stmt, [](const Stmt& s) { return store_internal::ReadTopic(s); });
}

Status MemoryStore::DeleteTopic(const std::string& id) {
  Transaction tx(db_.get());
  RETURN_IF_ERROR(tx.status());
  {
    ASSIGN_OR_RETURN(Stmt stmt, db_->Prepare("DELETE FROM topics WHERE id = ?1"));
    RETURN_IF_ERROR(stmt.Bind(1, id).Run());
  }
  if (db_->Changes() == 0) return NotFoundError(fmt::format("topic {} does not exist", id));
  return tx.Commit();
}

// ---- Relations ----

Result<Relation> MemoryStore::AddRelation(const Relation& relation) {
  const EdgeTable* e = FindEdgeTable(relation.type);
  if (e == nullptr) return InvalidArgumentError("unknown relation type");
  const std::string_view name = RelationTypeName(e->type);
  RETURN_IF_ERROR(ValidateNonEmpty(relation.from_id, fmt::format("{} from id", name)));
  RETURN_IF_ERROR(ValidateNonEmpty(relation.to_id, fmt::format("{} to id", name)));
  if (!e->strength_col.empty() && !std::isfinite(relation.strength)) {
    return InvalidArgumentError(fmt::format("{} {} must be finite", name, e->strength_col));
  }
  if (e->type == RelationType::kMentions) {
    RETURN_IF_ERROR(ValidateUnit(relation.strength, "MENTIONS confidence"));
  }
  if (!e->position_col.empty() && relation.position < 0) {
    return InvalidArgumentError(fmt::format("{} {} must not be negative", name, e->position_col));
  }
  if ((e->type == RelationType::kRespondsTo || e->type == RelationType::kRelatesTo) &&
      relation.from_id == relation.to_id) {
    return InvalidArgumentError(fmt::format("{} cannot link {} to itself", name, relation.from_id));
  }
  std::string relationship_type;
  if (e->type == RelationType::kRelatesTo) {
    RETURN_IF_ERROR(ValidateUtf8(relation.relationship_type, "relationship_type"));
    relationship_type = relation.relationship_type.empty() ? "related" : relation.relationship_type;
  }

  Transaction tx(db_.get());
  RETURN_IF_ERROR(tx.status());
  RETURN_IF_ERROR(
      CheckEnd(db_.get(), e->type, "from", RelationFromType(e->type), relation.from_id));
  RETURN_IF_ERROR(CheckEnd(db_.get(), e->type, "to", RelationToType(e->type), relation.to_id));
  // SENT and PART_OF restate a message's own user_id and session_id columns; an edge that
  // contradicted them would give a message two senders or two sessions.
  if (e->type == RelationType::kSent || e->type == RelationType::kPartOf) {
    const bool sent = e->type == RelationType::kSent;
    ASSIGN_OR_RETURN(Stmt owner,
                     db_->Prepare("SELECT user_id, session_id FROM messages WHERE id = ?1"));
    const std::string& message_id = sent ? relation.to_id : relation.from_id;
    ASSIGN_OR_RETURN(const bool row, owner.Bind(1, message_id).Step());
    const std::string_view expected = row ? owner.TextView(sent ? 0 : 1) : std::string_view();
    const std::string& given = sent ? relation.from_id : relation.to_id;
    if (given != expected) {
      return InvalidArgumentError(fmt::format(
          "{}: message {} belongs to {} {}, not {}", name, message_id, sent ? "user" : "session",
          expected, given));
    }
  }
  Relation out;
  {
    ASSIGN_OR_RETURN(Stmt upsert, db_->Prepare(SqlFor(*e).upsert));
    upsert.BindAll(relation.from_id, relation.to_id);
    if (!e->strength_col.empty()) upsert.Bind(3, relation.strength);
    if (!e->position_col.empty()) upsert.Bind(4, relation.position);
    if (e->type == RelationType::kRelatesTo) upsert.Bind(5, relationship_type);
    ASSIGN_OR_RETURN(const bool row, upsert.Step());
    if (!row) return InternalError(fmt::format("{} upsert returned no row", name));
    out = ReadRelation(*e, upsert);
  }
  RETURN_IF_ERROR(tx.Commit());
  return out;
}

Result<Relation> MemoryStore::GetRelation(const std::string& id) {
  ASSIGN_OR_RETURN(const EdgeRef ref, ParseEdgeId(id));
  ASSIGN_OR_RETURN(Stmt stmt, db_->Prepare(SqlFor(*ref.table).select_by_id));
  ASSIGN_OR_RETURN(const bool row, stmt.Bind(1, ref.rowid).Step());
  if (!row) return NotFoundError(fmt::format("relation {} does not exist", id));
  return ReadRelation(*ref.table, stmt);
}

Status MemoryStore::DeleteRelation(const std::string& id) {
  ASSIGN_OR_RETURN(const EdgeRef ref, ParseEdgeId(id));
  Transaction tx(db_.get());
  RETURN_IF_ERROR(tx.status());
  if (ref.table->type == RelationType::kSent || ref.table->type == RelationType::kPartOf) {
    // Every message keeps the SENT and PART_OF edges that restate its own columns
    // (docs/memory-format.md, invariant 2); they go with the message.
    ASSIGN_OR_RETURN(Stmt derived, db_->Prepare(SqlFor(*ref.table).select_by_id));
    ASSIGN_OR_RETURN(const bool exists, derived.Bind(1, ref.rowid).Step());
    if (!exists) return NotFoundError(fmt::format("relation {} does not exist", id));
    return FailedPreconditionError(
        fmt::format("relation {} belongs to its message; delete the message instead", id));
  }
  {
    ASSIGN_OR_RETURN(Stmt stmt, db_->Prepare(SqlFor(*ref.table).delete_by_id));
    RETURN_IF_ERROR(stmt.Bind(1, ref.rowid).Run());
  }
  if (db_->Changes() == 0) return NotFoundError(fmt::format("relation {} does not exist", id));
  return tx.Commit();
}

// ---- Graph view ----

Result<GraphView> MemoryStore::Graph(int limit) {
  const int budget = std::clamp(limit, 1, kMaxGraphNodes);
  ReadSnapshot snapshot(db_.get());
  RETURN_IF_ERROR(snapshot.status());
  Db* db = db_.get();

  // Newest first, each an index walk of at most `budget` rows. Labels are cut in SQL first
  // (substr counts characters) so a long message is not copied out whole.
  ASSIGN_OR_RETURN(auto messages, GraphCandidates(db,
      "SELECT m.id, substr(m.content, 1, 64), s.id, "
      "coalesce(nullif(s.name, ''), nullif(s.topic, ''), s.id), "
      "u.id, coalesce(nullif(u.name, ''), u.id) "
      "FROM messages m LEFT JOIN sessions s ON s.id = m.session_id "
      "LEFT JOIN users u ON u.id = m.user_id ORDER BY m.seq DESC LIMIT ?1", budget));
  ASSIGN_OR_RETURN(auto concepts, GraphCandidates(db,
      "SELECT id, name FROM concepts ORDER BY rid DESC LIMIT ?1", budget));
  ASSIGN_OR_RETURN(auto memories, GraphCandidates(db,
      "SELECT id, substr(content, 1, 64) FROM memories ORDER BY rid DESC LIMIT ?1", budget));
  ASSIGN_OR_RETURN(auto topics, GraphCandidates(db,
      "SELECT id, name FROM topics ORDER BY rowid DESC LIMIT ?1", budget));
  ASSIGN_OR_RETURN(auto sessions, GraphCandidates(db,
      "SELECT id, coalesce(nullif(name, ''), nullif(topic, ''), id) FROM sessions "
      "ORDER BY last_activity DESC LIMIT ?1", budget));
  ASSIGN_OR_RETURN(auto users, GraphCandidates(db,
      "SELECT id, coalesce(nullif(name, ''), id) FROM users ORDER BY rowid DESC LIMIT ?1",
      budget));

  // Turns are dealt round-robin so no kind crowds out the others, messages twice per round as
  // they are most of a memory. A message comes with its session and sender, so its edges show.
  GraphPicker picker(static_cast<size_t>(budget));
  struct Source {
    NodeType type;
    const std::vector<GraphCandidate>* candidates;
    size_t next = 0;
  };
  std::array<Source, 6> sources = {{{NodeType::kMessage, &messages, 0},
                                    {NodeType::kConcept, &concepts, 0},
                                    {NodeType::kMemory, &memories, 0},
                                    {NodeType::kTopic, &topics, 0},
                                    {NodeType::kSession, &sessions, 0},
                                    {NodeType::kUser, &users, 0}}};
  constexpr std::array<size_t, 7> kTurns = {0, 1, 0, 2, 3, 4, 5};
  auto take_one = [&picker](Source& source) {
    while (source.next < source.candidates->size()) {
      const GraphCandidate& c = (*source.candidates)[source.next++];
      if (picker.Has(source.type, c.id)) continue;
      size_t needed = 1;
      if (c.session && !picker.Has(NodeType::kSession, c.session->first)) ++needed;
      if (c.user && !picker.Has(NodeType::kUser, c.user->first)) ++needed;
      if (needed > picker.Remaining()) continue;  // A later message may need fewer.
      picker.Add(source.type, c.id, c.label);
      if (c.session) picker.Add(NodeType::kSession, c.session->first, c.session->second);
      if (c.user) picker.Add(NodeType::kUser, c.user->first, c.user->second);
      return true;
    }
    return false;
  };
  for (bool progress = true; progress && !picker.Full();) {
    progress = false;
    for (size_t turn : kTurns) {
      if (picker.Full()) break;
      if (take_one(sources[turn])) progress = true;
    }
  }

  // Edges among the chosen nodes: look each one up from its lead end's index, keep it when the
  // other end was chosen too.
  GraphView& view = picker.view();
  for (const EdgeTable& e : kEdgeTables) {
    const bool lead_from = GraphLeadIsFrom(e.type);
    const NodeType lead_type = lead_from ? RelationFromType(e.type) : RelationToType(e.type);
    const NodeType other_type = lead_from ? RelationToType(e.type) : RelationFromType(e.type);
    if (picker.Ids(other_type).empty()) continue;
    ASSIGN_OR_RETURN(Stmt stmt, db_->Prepare(SqlFor(e).by_lead));
    for (const GraphNode& node : view.nodes) {
      if (node.type != lead_type) continue;
      stmt.Bind(1, node.id);
      while (true) {
        ASSIGN_OR_RETURN(const bool row, stmt.Step());
        if (!row) break;
        std::string other = stmt.Text(1);
        if (!picker.Has(other_type, other)) continue;
        if (view.edges.size() >= kMaxGraphEdges) return std::move(view);
        GraphEdge edge{EdgeId(e, stmt.Int(0)), e.type, node.id, std::move(other)};
        if (!lead_from) std::swap(edge.from_id, edge.to_id);
        view.edges.push_back(std::move(edge));
      }
      Rewind(stmt);
    }
  }
  return std::move(view);
}

// ---- Summary ----

Result<StoreStatistics> MemoryStore::Statistics() {
  // One statement, so every count comes from the same snapshot. Only messages have a
  // trigger-kept counter; the other counts walk their table's smallest index.
  ASSIGN_OR_RETURN(Stmt stmt, db_->Prepare(
      "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM sessions), "
      "coalesce((SELECT value FROM counters WHERE name = 'messages'), 0), "
      "(SELECT count(*) FROM memories), (SELECT count(*) FROM concepts), "
      "(SELECT count(*) FROM topics), "
      "(SELECT count(*) FROM sent) + (SELECT count(*) FROM part_of) + "
      "(SELECT count(*) FROM responds_to) + (SELECT count(*) FROM mentions) + "
      "(SELECT count(*) FROM relates_to) + (SELECT count(*) FROM discusses) + "
      "(SELECT count(*) FROM learns), "
      "(SELECT count(*) FROM message_vectors) + (SELECT count(*) FROM memory_vectors) + "
      "(SELECT count(*) FROM concept_vectors), "
      "(SELECT page_count FROM pragma_page_count()) * (SELECT page_size FROM pragma_page_size())"));
  ASSIGN_OR_RETURN(const bool row, stmt.Step());
  if (!row) return InternalError("statistics query returned no row");
  StoreStatistics stats;
  stats.users = stmt.Int(0);
  stats.sessions = stmt.Int(1);
  stats.messages = stmt.Int(2);
  stats.memories = stmt.Int(3);
  stats.concepts = stmt.Int(4);
  stats.topics = stmt.Int(5);
  stats.relations = stmt.Int(6);
  stats.vectors = stmt.Int(7);
  stats.db_bytes = stmt.Int(8);
  // Committed pages not yet checkpointed live only in the WAL; they are part of the footprint.
  std::error_code ec;
  const auto wal_bytes = std::filesystem::file_size(db_->path() + "-wal", ec);
  if (!ec) stats.db_bytes += static_cast<int64_t>(wal_bytes);
  return stats;
}

Result<StoreSummary> MemoryStore::Summary(int recent_limit) {
  ReadSnapshot snapshot(db_.get());
  RETURN_IF_ERROR(snapshot.status());
  StoreSummary summary;
  ASSIGN_OR_RETURN(summary.statistics, Statistics());
  {
    static const std::string kSql = fmt::format(
        "SELECT {} FROM messages ORDER BY seq DESC LIMIT ?1", store_internal::kMessageColumns);
    ASSIGN_OR_RETURN(Stmt recent, db_->Prepare(kSql));
    recent.Bind(1, std::clamp(recent_limit, 1, kMaxSummaryRecent));
    ASSIGN_OR_RETURN(summary.recent_messages, ReadAll<Message>(recent, [](const Stmt& s) {
                       return store_internal::ReadMessage(s);
                     }));
  }
  ASSIGN_OR_RETURN(summary.sessions, ListSessions(kSummarySessions));
  ASSIGN_OR_RETURN(summary.top_concepts, ConceptsByMentions(db_.get(), kSummaryTopConcepts));
  return summary;
}

}  // namespace locrit

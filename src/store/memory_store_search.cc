// MemoryStore keyword search: FTS5 bm25 over messages, memories and concepts.
//
// Each kind is one cached statement that joins its FTS table to the node table and orders by the
// FTS5 `rank` column (bm25 by default). Ordering by `rank` lets FTS5 sort the matches itself, so
// SQLite needs no temporary sorter and snippet() runs only for the rows returned, which LIMIT keeps
// to at most the number asked for; the kinds are then merged by score.
#include <fmt/format.h>

#include <algorithm>
#include <string>

#include "store/internal/fts_query.h"
#include "store/internal/keyword_index.h"
#include "store/internal/sqlite.h"
#include "store/memory_store.h"

namespace locrit {

using store_internal::Stmt;

namespace {

// Tokens of context in a snippet: about a sentence around the best match.
constexpr int kSnippetTokens = 16;

std::string Snippet(std::string_view table, int column) {
  return fmt::format("snippet({}, {}, '[', ']', '…', {})", table, column, kSnippetTokens);
}

// ?1 the MATCH expression, ?2 the limit, ?3 the session or NULL, ?4 the role or NULL.
const std::string& MessageSearchSql() {
  static const std::string sql = fmt::format(
      "SELECT m.seq, m.id, m.session_id, m.role, m.content, m.created_at, {}, messages_fts.rank "
      "FROM messages_fts JOIN messages m ON m.seq = messages_fts.rowid "
      "WHERE messages_fts MATCH ?1 AND (?3 IS NULL OR m.session_id = ?3) "
      "AND (?4 IS NULL OR m.role = ?4) "
      "ORDER BY messages_fts.rank LIMIT ?2",
      Snippet("messages_fts", 0));
  return sql;
}

const std::string& MemorySearchSql() {
  static const std::string sql = fmt::format(
      "SELECT m.id, m.content, m.created_at, {}, memories_fts.rank "
      "FROM memories_fts JOIN memories m ON m.rid = memories_fts.rowid "
      "WHERE memories_fts MATCH ?1 ORDER BY memories_fts.rank LIMIT ?2",
      Snippet("memories_fts", 0));
  return sql;
}

// A concept reads "name: description" (just "name" without a description). Names are short, so
// the name is shown whole with its matches marked and only the description is cut to a snippet.
const std::string& ConceptSearchSql() {
  static const std::string sql = fmt::format(
      "SELECT c.id, "
      "CASE WHEN c.description = '' THEN c.name ELSE c.name || ': ' || c.description END, "
      "c.created_at, "
      "CASE WHEN c.description = '' THEN highlight(concepts_fts, 0, '[', ']') "
      "ELSE highlight(concepts_fts, 0, '[', ']') || ': ' || {} END, "
      "concepts_fts.rank "
      "FROM concepts_fts JOIN concepts c ON c.rid = concepts_fts.rowid "
      "WHERE concepts_fts MATCH ?1 ORDER BY concepts_fts.rank LIMIT ?2",
      Snippet("concepts_fts", 1));
  return sql;
}

}  // namespace

Result<std::vector<SearchHit>> MemoryStore::Search(const SearchQuery& query) {
  std::vector<SearchHit> hits;
  const int limit = std::clamp(query.limit, 1, kMaxSearchResults);
  // Never a syntax error: the text only ever reaches FTS5 as quoted strings.
  const std::string match =
      store_internal::BuildFtsQuery(query.text, static_cast<size_t>(kMaxSearchTerms));
  if (match.empty()) return hits;

  if (query.messages) {
    ASSIGN_OR_RETURN(Stmt stmt, db_->Prepare(MessageSearchSql()));
    stmt.Bind(1, match).Bind(2, limit);
    if (query.session_id) stmt.Bind(3, *query.session_id);
    if (query.role) stmt.Bind(4, RoleName(*query.role));
    while (true) {
      ASSIGN_OR_RETURN(const bool row, stmt.Step());
      if (!row) break;
      SearchHit& hit = hits.emplace_back();
      hit.type = NodeType::kMessage;
      hit.seq = stmt.Int(0);
      hit.id = stmt.Text(1);
      hit.session_id = stmt.Text(2);
      hit.role = ParseRole(stmt.TextView(3));
      hit.content = stmt.Text(4);
      hit.timestamp = stmt.Int(5);
      hit.snippet = stmt.Text(6);
      hit.score = -stmt.Double(7);
    }
  }

  // Sessions and roles belong to messages only: a filter on either leaves the other kinds out.
  const bool messages_only = query.session_id.has_value() || query.role.has_value();
  const auto collect = [&](const std::string& sql, NodeType type) -> Status {
    ASSIGN_OR_RETURN(Stmt stmt, db_->Prepare(sql));
    stmt.Bind(1, match).Bind(2, limit);
    while (true) {
      ASSIGN_OR_RETURN(const bool row, stmt.Step());
      if (!row) break;
      SearchHit& hit = hits.emplace_back();
      hit.type = type;
      hit.id = stmt.Text(0);
      hit.content = stmt.Text(1);
      hit.timestamp = stmt.Int(2);
      hit.snippet = stmt.Text(3);
      hit.score = -stmt.Double(4);
    }
    return Status::Ok();
  };
  if (query.memories && !messages_only) {
    RETURN_IF_ERROR(collect(MemorySearchSql(), NodeType::kMemory));
  }
  if (query.concepts && !messages_only) {
    RETURN_IF_ERROR(collect(ConceptSearchSql(), NodeType::kConcept));
  }

  // Each kind arrives best first; a stable merge keeps that order among equal scores.
  std::stable_sort(hits.begin(), hits.end(),
                   [](const SearchHit& a, const SearchHit& b) { return a.score > b.score; });
  if (hits.size() > static_cast<size_t>(limit)) hits.resize(static_cast<size_t>(limit));
  return hits;
}

Result<std::vector<KeywordHit>> MemoryStore::RankByKeywords(const KeywordQuery& query) {
  if (!keywords_) keywords_ = std::make_unique<store_internal::KeywordIndex>();
  KeywordQuery clamped = query;
  clamped.limit = std::clamp(query.limit, 1, kMaxSearchResults);
  return keywords_->Rank(*db_, clamped);
}

}  // namespace locrit

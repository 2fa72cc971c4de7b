// MemoryStore keyword search: bm25 over messages, memories and concepts.
//
// Messages and memories are ranked by the connection's in-memory keyword index (FTS5's bm25
// scores without FTS5 scoring every matching row), then only the rows returned are read, and
// their snippets built from the tokenizer's offsets (store/internal/snippet.h). Concepts, few and
// short, are one cached FTS5 statement ordered by the FTS5 `rank` column (bm25), so snippet()
// runs only for the rows returned. The kinds are then merged by score.
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

  // Sessions and roles belong to messages only: a filter on either leaves the other kinds out.
  const bool messages_only = query.session_id.has_value() || query.role.has_value();
  KeywordQuery ranked;
  ranked.text = query.text;
  ranked.limit = limit;
  ranked.messages = query.messages;
  ranked.memories = query.memories && !messages_only;
  ranked.session_id = query.session_id;
  ranked.role = query.role;
  if (ranked.messages || ranked.memories) {
    ASSIGN_OR_RETURN(const std::vector<KeywordHit> found, keywords_->Rank(*db_, ranked));
    ASSIGN_OR_RETURN(const std::vector<std::string> words,
                     keywords_->QueryWords(*db_, query.text));
    for (const KeywordHit& found_hit : found) {
      SearchHit hit;
      hit.type = found_hit.type;
      hit.id = found_hit.id;
      hit.score = found_hit.score;
      if (hit.type == NodeType::kMessage) {
        ASSIGN_OR_RETURN(Stmt row, db_->Prepare("SELECT session_id, role, content, created_at "
                                                "FROM messages WHERE seq = ?1"));
        ASSIGN_OR_RETURN(const bool present, row.Bind(1, found_hit.seq).Step());
        if (!present) continue;  // Deleted since it was ranked.
        hit.seq = found_hit.seq;
        hit.session_id = row.Text(0);
        hit.role = ParseRole(row.TextView(1));
        hit.content = row.Text(2);
        hit.timestamp = row.Int(3);
      } else {
        ASSIGN_OR_RETURN(Stmt row,
                         db_->Prepare("SELECT content, created_at FROM memories WHERE id = ?1"));
        ASSIGN_OR_RETURN(const bool present, row.Bind(1, found_hit.id).Step());
        if (!present) continue;
        hit.content = row.Text(0);
        hit.timestamp = row.Int(1);
      }
      ASSIGN_OR_RETURN(hit.snippet, keywords_->Snippet(*db_, hit.content, words));
      hits.push_back(std::move(hit));
    }
  }

  if (query.concepts && !messages_only) {
    // Never a syntax error: the text only ever reaches FTS5 as quoted strings.
    const std::string match =
        store_internal::BuildFtsQuery(query.text, static_cast<size_t>(kMaxSearchTerms));
    if (!match.empty()) {
      ASSIGN_OR_RETURN(Stmt stmt, db_->Prepare(ConceptSearchSql()));
      stmt.Bind(1, match).Bind(2, limit);
      while (true) {
        ASSIGN_OR_RETURN(const bool row, stmt.Step());
        if (!row) break;
        SearchHit& hit = hits.emplace_back();
        hit.type = NodeType::kConcept;
        hit.id = stmt.Text(0);
        hit.content = stmt.Text(1);
        hit.timestamp = stmt.Int(2);
        hit.snippet = stmt.Text(3);
        hit.score = -stmt.Double(4);
      }
    }
  }

  // Each kind arrives best first; a stable merge keeps that order among equal scores.
  std::stable_sort(hits.begin(), hits.end(),
                   [](const SearchHit& a, const SearchHit& b) { return a.score > b.score; });
  if (hits.size() > static_cast<size_t>(limit)) hits.resize(static_cast<size_t>(limit));
  return hits;
}

Result<std::vector<KeywordHit>> MemoryStore::RankByKeywords(const KeywordQuery& query) {
  KeywordQuery clamped = query;
  clamped.limit = std::clamp(query.limit, 1, kMaxSearchResults);
  return keywords_->Rank(*db_, clamped);
}

}  // namespace locrit

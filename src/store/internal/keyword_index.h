// KeywordIndex: one connection's in-memory inverted index of the messages and memories, ranking
// them by bm25 exactly as FTS5 tables of them would (same tokenizer, same formula and parameters:
// k1 = 1.2, b = 0.75, idf = ln((N - n + 0.5) / (n + 0.5)) floored at 1e-6, each kind against its
// own N and average length), without FTS5's cost of scoring every matching row through SQL.
//
// Why it exists: a chat turn's recall searches with the whole new message, up to 32 OR-ed words;
// in ordinary text most messages then match, and FTS5 spends milliseconds ranking them. Adding
// up the postings of those words in memory takes well under one.
//
// Kept in step with the file by what changed since the last query, read from the counters table
// (docs/memory-format.md):
//   - messages have a seq that only grows (AUTOINCREMENT), so new ones are those past the newest
//     indexed seq; deletions show as counters('messages') falling short of the indexed count,
//     and retention's (the oldest) are found from the smallest seq left, any other by one pass
//     over the seqs; counters('message_edits') changes when a text is edited: the messages are
//     then re-read;
//   - counters('memory_changes') changes with every memory added, edited or deleted: the
//     memories are then re-read (they are few and rarely written).
// A query made inside a transaction that has written may see uncommitted rows that a rollback
// would take back, so what it loads there is dropped afterwards (a read transaction is kept).
//
// Thread-compatible, like the Db it reads: used by the one thread that uses its MemoryStore.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "core/memory_types.h"
#include "store/internal/sqlite.h"
#include "store/internal/text_tokenizer.h"
#include "store/memory_store.h"

namespace locrit::store_internal {

class KeywordIndex {
 public:
  KeywordIndex() = default;
  KeywordIndex(const KeywordIndex&) = delete;
  KeywordIndex& operator=(const KeywordIndex&) = delete;

  // Brings the index up to date with `db`, then ranks. `query.limit` is used as given (>= 1).
  Result<std::vector<KeywordHit>> Rank(Db& db, const KeywordQuery& query);
  // The distinct folded words of a query text, at most MemoryStore::kMaxSearchTerms: what Rank
  // looks up.
  Result<std::vector<std::string>> QueryWords(Db& db, std::string_view text);
  // A hit's snippet (snippet.h) for the query words `words`.
  Result<std::string> Snippet(Db& db, std::string_view text, const std::vector<std::string>& words);

 private:
  // Lets the postings be looked up by a string_view (the tokenizer's words) without a copy.
  struct WordHash {
    using is_transparent = void;
    size_t operator()(std::string_view word) const { return std::hash<std::string_view>{}(word); }
  };
  struct Posting {
    uint32_t doc;  // Index into Corpus::docs.
    uint32_t frequency;
  };
  struct Doc {
    int64_t rowid = 0;  // seq for messages, rid for memories.
    std::string id;
    uint32_t session = 0;  // Messages: index into sessions_.
    uint32_t length = 0;   // Tokens.
    Role role = Role::kUser;  // Messages only.
    bool live = true;
  };
  // The documents of one kind and their postings, with the statistics bm25 needs.
  struct Corpus {
    std::vector<Doc> docs;  // In rowid order.
    std::unordered_map<std::string, std::vector<Posting>, WordHash, std::equal_to<>> postings;
    int64_t last_rowid = 0;  // The largest rowid ever loaded (0: none).
    int64_t live_docs = 0;
    int64_t live_tokens = 0;
    bool loaded = false;
    // Per document, bm25's length normalisation k1 * (1 - b + b * length / average length), or
    // -1 for a removed one; computed for `norms_average` and redone when the average changes.
    // Contiguous, so that scoring reads 8 bytes per posting rather than a whole Doc.
    std::vector<double> norms;
    // Per document, a single occurrence's term-frequency factor (k1 + 1) / (1 + norm), or -1
    // for a removed one: most postings have a frequency of 1, and this spares them a division.
    std::vector<double> single_weights;
    double norms_average = -1;

    void Clear();
    void Remove(size_t doc);
    // Drops removed documents from `docs` and the postings, once they are the majority.
    void CompactIfSparse();
  };

  Status Update(Db& db);
  Status UpdateMessages(Db& db, int64_t count, int64_t edits);
  Status RemoveDeletedMessages(Db& db, int64_t count);
  // Appends the rows `stmt` yields: (rowid, id, content[, session_id, role]), in rowid order.
  Status Load(Stmt& stmt, Corpus& corpus, bool with_session);
  void Forget();
  uint32_t SessionIndex(std::string_view session_id);
  Status EnsureTokenizer(Db& db);
  // Adds each matching live document's bm25 score to scores_ (touched_ lists them).
  void Score(Corpus& corpus, const std::vector<std::string>& words);

  std::unique_ptr<TextTokenizer> tokenizer_;
  Corpus messages_;
  Corpus memories_;
  int64_t message_edits_ = 0;   // counters('message_edits') when messages_ was read.
  int64_t memory_changes_ = 0;  // counters('memory_changes') when memories_ was read.
  std::vector<std::string> sessions_;
  std::unordered_map<std::string, uint32_t, WordHash, std::equal_to<>> session_index_;

  // Scratch space reused by every query and load.
  std::vector<double> scores_;
  std::vector<uint32_t> touched_;
};

}  // namespace locrit::store_internal

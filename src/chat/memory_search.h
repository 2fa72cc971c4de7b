// Search of a Locrit's memory as the memory routes offer it (GET …/memory/search), in three
// modes:
//   - keyword: FTS5 bm25 (MemoryStore::Search), snippets with the matches in [ ];
//   - semantic: cosine similarity between the query's vector and the stored ones (messages,
//     memories, concepts), nearest first, whatever their similarity — the caller asked for the
//     nearest; the snippet is the text's beginning;
//   - hybrid: both rankings fused by reciprocal rank, as a chat turn's recall does (a hit found
//     by both comes first); the score is the fused one.
// Filters (kinds, session, role) apply in every mode; a session or role filter keeps messages
// only, as keyword search does.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"
#include "store/memory_store.h"

namespace locrit {

enum class SearchMode { kKeyword, kSemantic, kHybrid };

struct MemorySearch {
  SearchQuery query;           // Text, limit, kinds and filters.
  SearchMode mode = SearchMode::kKeyword;
  std::vector<float> vector;   // Semantic and hybrid: the query's vector (not empty).
  std::string embedding_model; // The model that made it; only its vectors are compared.
};

// Runs on a reader of the Locrit's memory. Best first, at most query.limit hits. Errors:
// invalid_argument for a vector the store cannot compare (no direction, too long) in semantic
// mode (hybrid then falls back to its keyword ranking), storage errors as they come.
Result<std::vector<SearchHit>> SearchMemory(MemoryStore& store, const MemorySearch& search);

}  // namespace locrit

// Recall for a chat turn: the memories and the older messages most relevant to the new message.
//
// Two rankings are fused by reciprocal rank (each candidate scores the sum, over the rankings
// that hold it, of 1 / (60 + its rank there)):
//   - keyword relevance: bm25 over messages and memories (the store's keyword index, FTS5's scores);
//   - meaning: cosine similarity between the new message's vector and the stored ones, when the
//     turn has a vector (hybrid retrieval, with an embedding model configured). Hits below
//     min_similarity are left out: the nearest vectors always exist, related or not.
// Without a vector, recall is bm25 alone. A memory's fused score is then weighted by its
// importance (0.5 + importance), so an important memory outranks an equally relevant trivial one.
// Messages of the current session that are in the window (seq >= window_first_seq) and the new
// message are left out before ranking: the model already reads them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "chat/context.h"
#include "store/memory_store.h"

namespace locrit {

struct RecallQuery {
  std::string text;        // The new message.
  std::string session_id;  // The current session.
  // The seq of the oldest message in the window; messages of the session from it on are in the
  // window. Absent: nothing of the session is in the window.
  std::optional<int64_t> window_first_seq;
  std::string exclude_id;  // The new message itself.
  int limit = 8;
  // The new message's vector and the model that made it; empty: bm25 only.
  std::vector<float> vector;
  std::string embedding_model;
  double min_similarity = 0.5;  // Cosine below which a vector hit is not relevant.
};

// One id of a fused ranking, with its reciprocal-rank score.
struct FusedRank {
  std::string id;
  double score = 0;
};

// Reciprocal rank fusion, a pure function: every id scores the sum of 1 / (60 + rank) (rank
// from 1) over the rankings that hold it; an id listed twice in one ranking counts once, at its
// best rank. Best first; equal scores keep the order in which the ids were first met.
std::vector<FusedRank> FuseByReciprocalRank(const std::vector<std::vector<std::string>>& rankings);

// Runs on a reader of the Locrit's memory. Best first. A vector search that fails on the vector
// itself (invalid_argument) degrades to bm25; storage errors are returned.
Result<std::vector<RecalledItem>> Recall(MemoryStore& store, const RecallQuery& query);

}  // namespace locrit

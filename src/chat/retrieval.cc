#include "chat/retrieval.h"

#include <algorithm>

namespace locrit {
namespace {

// The usual reciprocal-rank-fusion constant: damps the difference between the first ranks.
constexpr double kRankDamping = 60;
// Candidates read per wanted item: room for the ones the window excludes.
constexpr int kCandidatesPerItem = 3;

struct Candidate {
  RecalledItem item;
  double score = 0;
};

}  // namespace

Result<std::vector<RecalledItem>> Recall(MemoryStore& store, const RecallQuery& query) {
  std::vector<Candidate> candidates;
  if (query.limit <= 0) return std::vector<RecalledItem>{};
  SearchQuery search;
  search.text = query.text;
  search.limit = query.limit * kCandidatesPerItem;
  search.concepts = false;
  ASSIGN_OR_RETURN(const std::vector<SearchHit> hits, store.Search(search));
  int rank = 0;
  for (const SearchHit& hit : hits) {
    ++rank;
    if (hit.id == query.exclude_id) continue;
    const bool in_window = hit.type == NodeType::kMessage && hit.session_id == query.session_id &&
                           query.window_first_seq && hit.seq >= *query.window_first_seq;
    if (in_window) continue;
    Candidate c;
    c.score = 1.0 / (kRankDamping + rank);
    c.item.id = hit.id;
    c.item.text = hit.content;
    c.item.at = hit.timestamp;
    if (hit.type == NodeType::kMemory) {
      c.item.kind = RecalledItem::Kind::kMemory;
      ASSIGN_OR_RETURN(const Memory memory, store.GetMemory(hit.id));
      c.score *= 0.5 + memory.importance;
    } else {
      c.item.kind = RecalledItem::Kind::kMessage;
      c.item.role = hit.role.value_or(Role::kUser);
    }
    candidates.push_back(std::move(c));
  }
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const Candidate& a, const Candidate& b) { return a.score > b.score; });
  std::vector<RecalledItem> out;
  for (Candidate& c : candidates) {
    if (static_cast<int>(out.size()) == query.limit) break;
    out.push_back(std::move(c.item));
  }
  return out;
}

}  // namespace locrit

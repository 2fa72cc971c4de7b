#include "chat/retrieval.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

namespace locrit {
namespace {

// The usual reciprocal-rank-fusion constant: damps the difference between the first ranks.
constexpr double kRankDamping = 60;
// Candidates read per wanted item and per ranking: room for the ones the window excludes.
constexpr int kCandidatesPerItem = 3;

struct Candidate {
  RecalledItem item;
  double importance = -1;  // Memories only.
};

bool InWindow(const RecallQuery& query, const std::string& session_id, int64_t seq) {
  return session_id == query.session_id && query.window_first_seq &&
         seq >= *query.window_first_seq;
}

// The bm25 ranking, eligible candidates only; fills `candidates`.
Result<std::vector<std::string>> KeywordRanking(
    MemoryStore& store, const RecallQuery& query,
    std::unordered_map<std::string, Candidate>& candidates) {
  SearchQuery search;
  search.text = query.text;
  search.limit = query.limit * kCandidatesPerItem;
  search.concepts = false;
  ASSIGN_OR_RETURN(const std::vector<SearchHit> hits, store.Search(search));
  std::vector<std::string> ranking;
  for (const SearchHit& hit : hits) {
    if (hit.id == query.exclude_id) continue;
    if (hit.type == NodeType::kMessage && InWindow(query, hit.session_id.value_or(""), hit.seq)) continue;
    Candidate c;
    c.item.id = hit.id;
    c.item.text = hit.content;
    c.item.at = hit.timestamp;
    if (hit.type == NodeType::kMemory) {
      c.item.kind = RecalledItem::Kind::kMemory;
      ASSIGN_OR_RETURN(const Memory memory, store.GetMemory(hit.id));
      c.importance = memory.importance;
    } else {
      c.item.kind = RecalledItem::Kind::kMessage;
      c.item.role = hit.role.value_or(Role::kUser);
    }
    ranking.push_back(hit.id);
    candidates.try_emplace(hit.id, std::move(c));
  }
  return ranking;
}

// The cosine ranking, eligible candidates at min_similarity or more; fills `candidates`.
Result<std::vector<std::string>> VectorRanking(
    MemoryStore& store, const RecallQuery& query,
    std::unordered_map<std::string, Candidate>& candidates) {
  VectorQuery nearest;
  nearest.vector = query.vector;
  nearest.model = query.embedding_model;
  nearest.k = query.limit * kCandidatesPerItem;
  nearest.concepts = false;
  Result<std::vector<VectorHit>> hits = store.NearestByEmbedding(nearest);
  // A vector the store refuses (no direction, too long) only costs the turn its hybrid part.
  if (hits.status().code() == StatusCode::kInvalidArgument) return std::vector<std::string>{};
  if (!hits.ok()) return hits.status();
  std::vector<std::string> ranking;
  for (const VectorHit& hit : *hits) {
    if (hit.similarity < query.min_similarity) break;  // Best first: the rest are lower.
    if (hit.id == query.exclude_id) continue;
    if (!candidates.contains(hit.id)) {
      Candidate c;
      c.item.id = hit.id;
      if (hit.type == NodeType::kMemory) {
        Result<Memory> memory = store.GetMemory(hit.id);
        if (memory.status().code() == StatusCode::kNotFound) continue;
        if (!memory.ok()) return memory.status();
        c.item.kind = RecalledItem::Kind::kMemory;
        c.item.text = memory->content;
        c.item.at = memory->created_at;
        c.importance = memory->importance;
      } else {
        Result<Message> message = store.GetMessage(hit.id);
        if (message.status().code() == StatusCode::kNotFound) continue;
        if (!message.ok()) return message.status();
        if (InWindow(query, message->session_id, message->seq)) continue;
        c.item.kind = RecalledItem::Kind::kMessage;
        c.item.text = message->content;
        c.item.at = message->created_at;
        c.item.role = message->role;
      }
      candidates.emplace(hit.id, std::move(c));
    }
    ranking.push_back(hit.id);
  }
  return ranking;
}

}  // namespace

std::vector<FusedRank> FuseByReciprocalRank(
    const std::vector<std::vector<std::string>>& rankings) {
  std::vector<FusedRank> fused;
  std::unordered_map<std::string, size_t> position;
  for (const std::vector<std::string>& ranking : rankings) {
    std::unordered_set<std::string> seen;
    for (size_t i = 0; i < ranking.size(); ++i) {
      if (!seen.insert(ranking[i]).second) continue;
      auto [it, inserted] = position.try_emplace(ranking[i], fused.size());
      if (inserted) fused.push_back(FusedRank{ranking[i], 0});
      fused[it->second].score += 1.0 / (kRankDamping + static_cast<double>(i + 1));
    }
  }
  std::stable_sort(fused.begin(), fused.end(),
                   [](const FusedRank& a, const FusedRank& b) { return a.score > b.score; });
  return fused;
}

Result<std::vector<RecalledItem>> Recall(MemoryStore& store, const RecallQuery& query) {
  if (query.limit <= 0) return std::vector<RecalledItem>{};
  std::unordered_map<std::string, Candidate> candidates;
  std::vector<std::vector<std::string>> rankings;
  ASSIGN_OR_RETURN(std::vector<std::string> keyword, KeywordRanking(store, query, candidates));
  rankings.push_back(std::move(keyword));
  if (!query.vector.empty() && !query.embedding_model.empty()) {
    ASSIGN_OR_RETURN(std::vector<std::string> meaning, VectorRanking(store, query, candidates));
    rankings.push_back(std::move(meaning));
  }
  std::vector<FusedRank> fused = FuseByReciprocalRank(rankings);
  for (FusedRank& f : fused) {
    const Candidate& c = candidates.at(f.id);
    if (c.item.kind == RecalledItem::Kind::kMemory) f.score *= 0.5 + c.importance;
  }
  std::stable_sort(fused.begin(), fused.end(),
                   [](const FusedRank& a, const FusedRank& b) { return a.score > b.score; });
  std::vector<RecalledItem> out;
  for (const FusedRank& f : fused) {
    if (static_cast<int>(out.size()) == query.limit) break;
    out.push_back(std::move(candidates.at(f.id).item));
  }
  return out;
}

}  // namespace locrit

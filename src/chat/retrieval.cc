#include "chat/retrieval.h"

#include <algorithm>
#include <optional>
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
  std::string session_id;  // Messages only.
  int64_t seq = 0;         // Messages only.
};

// A ranking: the ids best first, and the kind of each.
struct Ranking {
  std::vector<std::string> ids;
  std::unordered_map<std::string, NodeType> types;
};

bool InWindow(const RecallQuery& query, const std::string& session_id, int64_t seq) {
  return session_id == query.session_id && query.window_first_seq &&
         seq >= *query.window_first_seq;
}

// The bm25 ranking of the eligible nodes, from the store's keyword index. Only ids: the few
// candidates fusion keeps are read afterwards (Resolve).
Result<Ranking> KeywordRanking(MemoryStore& store, const RecallQuery& query) {
  KeywordQuery keywords;
  keywords.text = query.text;
  keywords.limit = query.limit * kCandidatesPerItem;
  keywords.window_session = query.session_id;
  keywords.window_first_seq = query.window_first_seq;
  keywords.exclude_id = query.exclude_id;
  ASSIGN_OR_RETURN(const std::vector<KeywordHit> hits, store.RankByKeywords(keywords));
  Ranking ranking;
  for (const KeywordHit& hit : hits) {
    ranking.ids.push_back(hit.id);
    ranking.types.emplace(hit.id, hit.type);
  }
  return ranking;
}

// Reads a candidate's text (and a memory's importance). nullopt when it is gone, deleted since
// it was ranked.
Result<std::optional<Candidate>> Resolve(MemoryStore& store, NodeType type,
                                         const std::string& id) {
  Candidate c;
  c.item.id = id;
  if (type == NodeType::kMemory) {
    Result<Memory> memory = store.GetMemory(id);
    if (memory.status().code() == StatusCode::kNotFound) return std::optional<Candidate>();
    if (!memory.ok()) return memory.status();
    c.item.kind = RecalledItem::Kind::kMemory;
    c.item.text = std::move(memory->content);
    c.item.at = memory->created_at;
    c.importance = memory->importance;
  } else {
    Result<Message> message = store.GetMessage(id);
    if (message.status().code() == StatusCode::kNotFound) return std::optional<Candidate>();
    if (!message.ok()) return message.status();
    c.item.kind = RecalledItem::Kind::kMessage;
    c.item.text = std::move(message->content);
    c.item.at = message->created_at;
    c.item.role = message->role;
    c.session_id = std::move(message->session_id);
    c.seq = message->seq;
  }
  return std::optional<Candidate>(std::move(c));
}

// The cosine ranking of the eligible nodes at min_similarity or more. Its messages are read at
// once, to leave out the ones in the window; they go into `resolved`.
Result<Ranking> VectorRanking(MemoryStore& store, const RecallQuery& query,
                              std::unordered_map<std::string, Candidate>& resolved) {
  VectorQuery nearest;
  nearest.vector = query.vector;
  nearest.model = query.embedding_model;
  nearest.k = query.limit * kCandidatesPerItem;
  nearest.concepts = false;
  Result<std::vector<VectorHit>> hits = store.NearestByEmbedding(nearest);
  Ranking ranking;
  // A vector the store refuses (no direction, too long) only costs the turn its hybrid part.
  if (hits.status().code() == StatusCode::kInvalidArgument) return ranking;
  if (!hits.ok()) return hits.status();
  for (const VectorHit& hit : *hits) {
    if (hit.similarity < query.min_similarity) break;  // Best first: the rest are lower.
    if (hit.id == query.exclude_id) continue;
    if (hit.type == NodeType::kMessage && !resolved.contains(hit.id)) {
      ASSIGN_OR_RETURN(std::optional<Candidate> c, Resolve(store, hit.type, hit.id));
      if (!c || InWindow(query, c->session_id, c->seq)) continue;
      resolved.emplace(hit.id, std::move(*c));
    }
    ranking.ids.push_back(hit.id);
    ranking.types.emplace(hit.id, hit.type);
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
  std::unordered_map<std::string, Candidate> resolved;
  std::vector<Ranking> rankings;
  ASSIGN_OR_RETURN(rankings.emplace_back(), KeywordRanking(store, query));
  if (!query.vector.empty() && !query.embedding_model.empty()) {
    ASSIGN_OR_RETURN(rankings.emplace_back(), VectorRanking(store, query, resolved));
  }
  std::vector<std::vector<std::string>> ids;
  std::unordered_map<std::string, NodeType> types;
  for (Ranking& ranking : rankings) {
    ids.push_back(std::move(ranking.ids));
    types.merge(ranking.types);
  }
  // Reads each candidate once, when first needed; false when it is gone.
  const auto resolve = [&](const std::string& id) -> Result<bool> {
    if (resolved.contains(id)) return true;
    ASSIGN_OR_RETURN(std::optional<Candidate> c, Resolve(store, types.at(id), id));
    if (!c) return false;
    resolved.emplace(id, std::move(*c));
    return true;
  };
  std::vector<FusedRank> fused = FuseByReciprocalRank(ids);
  // Importance weighs on the order, so every memory among the candidates is read first.
  for (FusedRank& f : fused) {
    if (types.at(f.id) != NodeType::kMemory) continue;
    ASSIGN_OR_RETURN(const bool present, resolve(f.id));
    f.score = present ? f.score * (0.5 + resolved.at(f.id).importance) : -1;
  }
  std::stable_sort(fused.begin(), fused.end(),
                   [](const FusedRank& a, const FusedRank& b) { return a.score > b.score; });
  std::vector<RecalledItem> out;
  for (const FusedRank& f : fused) {
    if (static_cast<int>(out.size()) == query.limit || f.score < 0) break;
    ASSIGN_OR_RETURN(const bool present, resolve(f.id));
    if (present) out.push_back(std::move(resolved.at(f.id).item));
  }
  return out;
}

}  // namespace locrit

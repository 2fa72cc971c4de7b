#include "chat/memory_search.h"

#include <algorithm>
#include <optional>
#include <unordered_map>

#include "base/utf8.h"
#include "chat/retrieval.h"

namespace locrit {
namespace {

// Candidates read per wanted hit and per ranking: room for the ones the filters leave out.
constexpr int kCandidatesPerHit = 3;
constexpr size_t kSnippetChars = 160;

std::string Beginning(const std::string& text) {
  std::string_view prefix = Utf8Prefix(text, kSnippetChars);
  return prefix.size() == text.size() ? text : std::string(prefix) + "…";
}

const std::optional<SearchHit> kLeftOut;

// The hit for a node found by its vector; kLeftOut when it is gone (deleted since the vector
// search) or left out by the filters.
Result<std::optional<SearchHit>> HitOf(MemoryStore& store, const SearchQuery& query,
                                       const VectorHit& found) {
  SearchHit hit;
  hit.type = found.type;
  hit.id = found.id;
  hit.score = found.similarity;
  const bool messages_only = query.session_id.has_value() || query.role.has_value();
  switch (found.type) {
    case NodeType::kMessage: {
      Result<Message> message = store.GetMessage(found.id);
      if (message.status().code() == StatusCode::kNotFound) return kLeftOut;
      if (!message.ok()) return message.status();
      if (query.session_id && message->session_id != *query.session_id) return kLeftOut;
      if (query.role && message->role != *query.role) return kLeftOut;
      hit.content = message->content;
      hit.timestamp = message->created_at;
      hit.seq = message->seq;
      hit.session_id = message->session_id;
      hit.role = message->role;
      break;
    }
    case NodeType::kMemory: {
      if (messages_only) return kLeftOut;
      Result<Memory> memory = store.GetMemory(found.id);
      if (memory.status().code() == StatusCode::kNotFound) return kLeftOut;
      if (!memory.ok()) return memory.status();
      hit.content = memory->content;
      hit.timestamp = memory->created_at;
      break;
    }
    case NodeType::kConcept: {
      if (messages_only) return kLeftOut;
      Result<Concept> concept_node = store.GetConcept(found.id);
      if (concept_node.status().code() == StatusCode::kNotFound) return kLeftOut;
      if (!concept_node.ok()) return concept_node.status();
      hit.content = concept_node->name + ": " + concept_node->description;
      hit.timestamp = concept_node->created_at;
      break;
    }
    default:
      return kLeftOut;
  }
  hit.snippet = Beginning(hit.content);
  return std::optional<SearchHit>(std::move(hit));
}

// The nearest nodes that pass the filters, nearest first, at most `want`.
Result<std::vector<SearchHit>> NearestHits(MemoryStore& store, const MemorySearch& search,
                                           int want) {
  const SearchQuery& query = search.query;
  const bool filtered = query.session_id.has_value() || query.role.has_value();
  VectorQuery nearest;
  nearest.vector = search.vector;
  nearest.model = search.embedding_model;
  nearest.k = filtered ? want * kCandidatesPerHit : want;
  nearest.messages = query.messages;
  nearest.memories = query.memories && !filtered;
  nearest.concepts = query.concepts && !filtered;
  ASSIGN_OR_RETURN(const std::vector<VectorHit> found, store.NearestByEmbedding(nearest));
  std::vector<SearchHit> hits;
  for (const VectorHit& f : found) {
    if (static_cast<int>(hits.size()) == want) break;
    ASSIGN_OR_RETURN(std::optional<SearchHit> hit, HitOf(store, query, f));
    if (hit) hits.push_back(std::move(*hit));
  }
  return hits;
}

Result<std::vector<SearchHit>> Hybrid(MemoryStore& store, const MemorySearch& search) {
  const int limit = std::max(1, search.query.limit);
  SearchQuery keyword_query = search.query;
  keyword_query.limit = limit * kCandidatesPerHit;
  ASSIGN_OR_RETURN(std::vector<SearchHit> keyword, store.Search(keyword_query));
  Result<std::vector<SearchHit>> meaning = NearestHits(store, search, limit * kCandidatesPerHit);
  // A vector the store cannot compare only costs the search its semantic half.
  if (meaning.status().code() == StatusCode::kInvalidArgument) {
    meaning = std::vector<SearchHit>{};
  }
  if (!meaning.ok()) return meaning.status();

  std::unordered_map<std::string, SearchHit> by_id;
  std::vector<std::vector<std::string>> rankings(2);
  for (SearchHit& hit : keyword) {
    rankings[0].push_back(hit.id);
    by_id.try_emplace(hit.id, std::move(hit));  // The keyword hit keeps its marked snippet.
  }
  for (SearchHit& hit : *meaning) {
    rankings[1].push_back(hit.id);
    by_id.try_emplace(hit.id, std::move(hit));
  }
  std::vector<SearchHit> out;
  for (const FusedRank& fused : FuseByReciprocalRank(rankings)) {
    if (static_cast<int>(out.size()) == limit) break;
    SearchHit& hit = by_id.at(fused.id);
    hit.score = fused.score;
    out.push_back(std::move(hit));
  }
  return out;
}

}  // namespace

Result<std::vector<SearchHit>> SearchMemory(MemoryStore& store, const MemorySearch& search) {
  switch (search.mode) {
    case SearchMode::kKeyword:
      return store.Search(search.query);
    case SearchMode::kSemantic:
      return NearestHits(store, search, std::max(1, search.query.limit));
    case SearchMode::kHybrid:
      return Hybrid(store, search);
  }
  return InvalidArgumentError("unknown search mode");
}

}  // namespace locrit

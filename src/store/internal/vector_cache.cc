#include "store/internal/vector_cache.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

namespace locrit::store_internal {
namespace {

struct VectorTable {
  NodeType type;
  const char* sql;
};

// Every kind goes into the group; the kinds a query wants are picked when ranking.
constexpr VectorTable kTables[] = {
    {NodeType::kMessage,
     "SELECT node_id, vector FROM message_vectors WHERE model = ?1 AND dim = ?2"},
    {NodeType::kMemory, "SELECT node_id, vector FROM memory_vectors WHERE model = ?1 AND dim = ?2"},
    {NodeType::kConcept,
     "SELECT node_id, vector FROM concept_vectors WHERE model = ?1 AND dim = ?2"},
};

bool Wanted(NodeType type, const VectorKinds& kinds) {
  switch (type) {
    case NodeType::kMessage:
      return kinds.messages;
    case NodeType::kMemory:
      return kinds.memories;
    case NodeType::kConcept:
      return kinds.concepts;
    default:
      return false;
  }
}

// Eight independent partial sums: the floating-point order of the additions is then fixed by the
// source, so g++ -O2 may pack them into SIMD registers without -ffast-math, and the chains of
// dependent additions are short enough to keep the adders busy.
float Dot(const float* a, const float* b, size_t n) {
  constexpr size_t kLanes = 8;
  float acc[kLanes] = {};
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (size_t j = 0; j < kLanes; ++j) acc[j] += a[i + j] * b[i + j];
  }
  float sum = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

// Reads `count` little-endian float32 values (the storage format) into `out`.
void DecodeLittleEndian(const std::byte* data, size_t count, float* out) {
  std::memcpy(out, data, count * sizeof(float));
  if constexpr (std::endian::native == std::endian::big) {
    for (size_t i = 0; i < count; ++i) {
      uint32_t bits = std::bit_cast<uint32_t>(out[i]);
      bits = (bits >> 24) | ((bits >> 8) & 0xFF00u) | ((bits << 8) & 0xFF0000u) | (bits << 24);
      out[i] = std::bit_cast<float>(bits);
    }
  }
}

// Scales `v` to unit length; false when it has none (zero, or not finite).
bool Normalize(float* v, size_t n) {
  // In double, so that no float value can overflow the sum.
  double squares[4] = {};
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    for (size_t j = 0; j < 4; ++j) squares[j] += static_cast<double>(v[i + j]) * v[i + j];
  }
  for (; i < n; ++i) squares[0] += static_cast<double>(v[i]) * v[i];
  const double norm = std::sqrt((squares[0] + squares[1]) + (squares[2] + squares[3]));
  if (!std::isfinite(norm) || norm <= 0) return false;
  const double inverse = 1.0 / norm;
  for (i = 0; i < n; ++i) v[i] = static_cast<float>(v[i] * inverse);
  return true;
}

}  // namespace

Status VectorCache::Revalidate(Db& db) {
  int64_t version = 0;
  {
    ASSIGN_OR_RETURN(Stmt stmt, db.Prepare("SELECT value FROM counters WHERE name = 'vectors'"));
    ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) return CorruptionError("the counters table has no 'vectors' row");
    version = stmt.Int(0);
  }
  const bool in_transaction = db.InTransaction();
  const int64_t total_changes = sqlite3_total_changes64(db.raw());
  bool current = valid_ && version == version_;
  if (current && in_transaction_) {
    current = in_transaction && total_changes == total_changes_;
  }
  if (!current) {
    // Groups not asked for since the previous change are dropped; the others are reloaded on
    // demand into the memory they already hold (no reallocation or page faults on each reload).
    std::erase_if(groups_, [](const auto& entry) { return entry.second.stale; });
    for (auto& [key, group] : groups_) group.stale = true;
    valid_ = true;
    version_ = version;
    in_transaction_ = in_transaction;
    total_changes_ = total_changes;
  }
  return Status::Ok();
}

Status VectorCache::LoadTable(Db& db, NodeType type, const std::string& sql, const GroupKey& key,
                              Group& group) {
  ASSIGN_OR_RETURN(Stmt stmt, db.Prepare(sql));
  stmt.Bind(1, key.first).Bind(2, static_cast<int64_t>(key.second));
  const size_t dim = key.second;
  while (true) {
    ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) break;
    const std::span<const std::byte> blob = stmt.Blob(1);
    if (blob.size() != dim * sizeof(float)) {
      // The schema's CHECK makes this impossible in a healthy file.
      return CorruptionError(fmt::format("vector of {} {} has {} bytes, expected {}",
                                         NodeTypeName(type), stmt.TextView(0), blob.size(),
                                         dim * sizeof(float)));
    }
    const size_t offset = group.unit.size();
    group.unit.resize(offset + dim);
    DecodeLittleEndian(blob.data(), dim, group.unit.data() + offset);
    if (!Normalize(group.unit.data() + offset, dim)) {
      group.unit.resize(offset);  // No direction: it can never be a neighbour.
      continue;
    }
    group.types.push_back(type);
    group.ids.push_back(stmt.Text(0));
  }
  return Status::Ok();
}

Result<const VectorCache::Group*> VectorCache::GetGroup(Db& db, std::string_view model,
                                                        size_t dim) {
  GroupKey key(std::string(model), dim);
  auto it = groups_.find(key);
  if (it == groups_.end()) {
    it = groups_.emplace(std::move(key), Group{}).first;
  } else if (!it->second.stale) {
    return &it->second;
  }
  Group& group = it->second;
  group.unit.clear();
  group.types.clear();
  group.ids.clear();
  for (const VectorTable& table : kTables) {
    Status status = LoadTable(db, table.type, table.sql, it->first, group);
    if (!status.ok()) {
      groups_.erase(it);
      return status;
    }
  }
  group.stale = false;
  return &group;
}

Result<std::vector<ScoredNode>> VectorCache::Nearest(Db& db, std::string_view model,
                                                     std::span<const float> unit_query, int k,
                                                     const VectorKinds& kinds) {
  RETURN_IF_ERROR(Revalidate(db));
  const size_t dim = unit_query.size();
  ASSIGN_OR_RETURN(const Group* group, GetGroup(db, model, dim));

  const size_t count = group->types.size();
  scores_.resize(count);
  const float* query = unit_query.data();
  const float* row = group->unit.data();
  for (size_t i = 0; i < count; ++i, row += dim) scores_[i] = Dot(query, row, dim);

  order_.clear();
  for (size_t i = 0; i < count; ++i) {
    if (Wanted(group->types[i], kinds)) order_.push_back(static_cast<uint32_t>(i));
  }
  // Best first; equal scores in load order, so results are deterministic.
  const auto better = [this](uint32_t a, uint32_t b) {
    return scores_[a] > scores_[b] || (scores_[a] == scores_[b] && a < b);
  };
  const size_t top = std::min(order_.size(), static_cast<size_t>(std::max(k, 1)));
  const auto middle = order_.begin() + static_cast<std::ptrdiff_t>(top);
  if (top < order_.size()) std::nth_element(order_.begin(), middle, order_.end(), better);
  std::sort(order_.begin(), middle, better);

  std::vector<ScoredNode> out;
  out.reserve(top);
  for (auto it = order_.begin(); it != middle; ++it) {
    ScoredNode& node = out.emplace_back();
    node.type = group->types[*it];
    node.id = group->ids[*it];
    node.similarity = std::clamp(static_cast<double>(scores_[*it]), -1.0, 1.0);
  }
  return out;
}

}  // namespace locrit::store_internal

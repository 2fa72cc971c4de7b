// VectorCache: one connection's in-memory copy of the store's embedding vectors, for exact cosine
// top-k without reading the vector tables on every query.
//
// Vectors are grouped by (model, dimension), the only vectors a query may be compared with; each
// group holds its vectors L2-normalised and contiguous, so a similarity is a plain dot product
// over one array. A group is loaded the first time a query asks for it. The cache is current while
// counters('vectors') (bumped by triggers on every change to a vector table, from any connection,
// cascades included) keeps the value it had at load; when it differs, every group becomes stale
// and is reloaded when next asked for (into the memory it already has), and groups nobody asked
// for since the previous change are dropped. Vectors that cannot be normalised (zero or
// non-finite) are never returned.
//
// Invariant: every group not marked stale reflects the vector tables as they were when
// counters('vectors') had the value `version_`. Committed values of that counter only grow, so an
// equal value means no change. Inside a transaction this connection also sees its own uncommitted
// changes, which a rollback can undo while later writes bring the counter back to the same value;
// what is loaded there is therefore trusted only until this connection writes anything or leaves
// the transaction.
//
// Owned by a MemoryStore and read through that store's connection. Thread-compatible, like the Db
// it reads: used by the one thread that uses its MemoryStore.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "core/memory_types.h"
#include "store/internal/sqlite.h"

namespace locrit::store_internal {

// Which kinds of node a nearest-neighbour query considers.
struct VectorKinds {
  bool messages = true;
  bool memories = true;
  bool concepts = true;
};

struct ScoredNode {
  NodeType type = NodeType::kMessage;
  std::string id;
  double similarity = 0;  // Cosine, in [-1, 1].
};

class VectorCache {
 public:
  VectorCache() = default;
  VectorCache(const VectorCache&) = delete;
  VectorCache& operator=(const VectorCache&) = delete;

  // The `k` vectors of `model` with dimension unit_query.size() most similar to `unit_query`,
  // best first (ties by load order). Brings the cache up to date with `db` first.
  // REQUIRES: unit_query is non-empty, finite and of unit length; k >= 1.
  Result<std::vector<ScoredNode>> Nearest(Db& db, std::string_view model,
                                          std::span<const float> unit_query, int k,
                                          const VectorKinds& kinds);

 private:
  struct Group {
    std::vector<float> unit;  // types.size() rows of the key's dimension, each normalised.
    std::vector<NodeType> types;
    std::vector<std::string> ids;
    bool stale = false;  // Loaded before the last change: reload before use.
  };
  using GroupKey = std::pair<std::string, size_t>;  // (model, dimension)

  // Marks every group stale when the vector tables may have changed since they were loaded.
  Status Revalidate(Db& db);
  Result<const Group*> GetGroup(Db& db, std::string_view model, size_t dim);
  Status LoadTable(Db& db, NodeType type, const std::string& sql, const GroupKey& key,
                   Group& group);

  std::map<GroupKey, Group> groups_;
  bool valid_ = false;
  int64_t version_ = 0;          // counters('vectors') at the last revalidation that changed it.
  bool in_transaction_ = false;  // That was inside a transaction (may see uncommitted rows).
  int64_t total_changes_ = 0;    // sqlite3_total_changes64() then.

  // Scratch space reused by every query, so a query allocates only its result.
  std::vector<float> scores_;
  std::vector<uint32_t> order_;
};

}  // namespace locrit::store_internal

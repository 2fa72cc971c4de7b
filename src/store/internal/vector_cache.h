// VectorCache: an in-memory copy of a store's embedding vectors for fast exact top-k.
// (Filled in by the embeddings work; a placeholder keeps MemoryStore's layout stable.)
#pragma once

namespace locrit::store_internal {

class VectorCache {
 public:
  VectorCache() = default;
};

}  // namespace locrit::store_internal

// MemoryStore embeddings: storage and exact cosine top-k.
#include "store/memory_store.h"

namespace locrit {

Status MemoryStore::SetEmbedding(NodeType, const std::string&, const std::string&,
                                 std::span<const float>) {
  return UnimplementedError("embeddings are not implemented yet");
}
Status MemoryStore::DeleteEmbedding(NodeType, const std::string&) {
  return UnimplementedError("embeddings are not implemented yet");
}
Result<std::vector<VectorHit>> MemoryStore::NearestByEmbedding(const VectorQuery&) {
  return UnimplementedError("embeddings are not implemented yet");
}
Result<std::vector<std::string>> MemoryStore::MessagesMissingEmbedding(const std::string&, int) {
  return UnimplementedError("embeddings are not implemented yet");
}

}  // namespace locrit

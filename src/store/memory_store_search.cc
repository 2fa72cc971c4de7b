// MemoryStore keyword search (FTS5 bm25 over messages, memories and concepts).
#include "store/memory_store.h"

namespace locrit {

Result<std::vector<SearchHit>> MemoryStore::Search(const SearchQuery&) {
  return UnimplementedError("search is not implemented yet");
}

}  // namespace locrit

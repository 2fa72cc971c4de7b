// MemoryStore whole-store operations: clear-all, JSON Lines export and import.
#include "store/memory_store.h"

namespace locrit {

Status MemoryStore::ClearAll() { return UnimplementedError("not implemented yet"); }
Status MemoryStore::Export(std::ostream&) { return UnimplementedError("not implemented yet"); }
Result<ImportReport> MemoryStore::Import(std::istream&) {
  return UnimplementedError("not implemented yet");
}

}  // namespace locrit

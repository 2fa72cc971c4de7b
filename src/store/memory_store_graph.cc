// MemoryStore standalone memories, concepts, topics, relations and the graph view.
#include "store/memory_store.h"

namespace locrit {

#define LOCRIT_TODO return UnimplementedError("not implemented yet")
Result<Memory> MemoryStore::AddMemory(const NewMemory&) { LOCRIT_TODO; }
Result<Memory> MemoryStore::GetMemory(const std::string&) { LOCRIT_TODO; }
Result<std::vector<Memory>> MemoryStore::ListMemories(int) { LOCRIT_TODO; }
Result<Memory> MemoryStore::EditMemory(const std::string&, const MemoryEdit&) { LOCRIT_TODO; }
Status MemoryStore::DeleteMemory(const std::string&) { LOCRIT_TODO; }
Status MemoryStore::TouchMemories(const std::vector<std::string>&) { LOCRIT_TODO; }
Result<Concept> MemoryStore::UpsertConcept(const NewConcept&) { LOCRIT_TODO; }
Result<Concept> MemoryStore::GetConcept(const std::string&) { LOCRIT_TODO; }
Result<std::vector<Concept>> MemoryStore::ListConcepts(int) { LOCRIT_TODO; }
Result<ConceptDetails> MemoryStore::GetConceptDetails(const std::string&,
                                                      const std::optional<std::string>&) {
  LOCRIT_TODO;
}
Result<Concept> MemoryStore::EditConcept(const std::string&, const ConceptEdit&) { LOCRIT_TODO; }
Status MemoryStore::DeleteConcept(const std::string&) { LOCRIT_TODO; }
Result<std::vector<RelatedConcept>> MemoryStore::RelatedConcepts(const std::string&, int) {
  LOCRIT_TODO;
}
Result<Topic> MemoryStore::UpsertTopic(const NewTopic&) { LOCRIT_TODO; }
Result<std::vector<Topic>> MemoryStore::ListTopics(int) { LOCRIT_TODO; }
Status MemoryStore::DeleteTopic(const std::string&) { LOCRIT_TODO; }
Result<Relation> MemoryStore::AddRelation(const Relation&) { LOCRIT_TODO; }
Result<Relation> MemoryStore::GetRelation(const std::string&) { LOCRIT_TODO; }
Status MemoryStore::DeleteRelation(const std::string&) { LOCRIT_TODO; }
Result<GraphView> MemoryStore::Graph(int) { LOCRIT_TODO; }
Result<StoreStatistics> MemoryStore::Statistics() { LOCRIT_TODO; }
Result<StoreSummary> MemoryStore::Summary(int) { LOCRIT_TODO; }
#undef LOCRIT_TODO

}  // namespace locrit

// MemoryStore embeddings: storage (float32 little-endian blobs with their model and dimension)
// and exact cosine top-k through the connection's VectorCache.
#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "base/utf8.h"
#include "store/internal/sqlite.h"
#include "store/internal/vector_cache.h"
#include "store/memory_store.h"

namespace locrit {

using store_internal::Stmt;
using store_internal::Transaction;

namespace {

// A model name is an identifier like "nomic-embed-text" or "text-embedding-3-small@1536".
constexpr size_t kMaxModelBytes = 256;

struct VectorTable {
  const char* exists_sql;  // ?1 = node id
  const char* upsert_sql;  // ?1 node id, ?2 model, ?3 dim, ?4 vector
  const char* delete_sql;  // ?1 = node id
};

constexpr VectorTable kMessageTable = {
    "SELECT 1 FROM messages WHERE id = ?1",
    "INSERT INTO message_vectors(node_id, model, dim, vector) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT(node_id) DO UPDATE SET model = excluded.model, dim = excluded.dim, "
    "vector = excluded.vector",
    "DELETE FROM message_vectors WHERE node_id = ?1"};
constexpr VectorTable kMemoryTable = {
    "SELECT 1 FROM memories WHERE id = ?1",
    "INSERT INTO memory_vectors(node_id, model, dim, vector) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT(node_id) DO UPDATE SET model = excluded.model, dim = excluded.dim, "
    "vector = excluded.vector",
    "DELETE FROM memory_vectors WHERE node_id = ?1"};
constexpr VectorTable kConceptTable = {
    "SELECT 1 FROM concepts WHERE id = ?1",
    "INSERT INTO concept_vectors(node_id, model, dim, vector) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT(node_id) DO UPDATE SET model = excluded.model, dim = excluded.dim, "
    "vector = excluded.vector",
    "DELETE FROM concept_vectors WHERE node_id = ?1"};

Result<const VectorTable*> TableFor(NodeType type) {
  switch (type) {
    case NodeType::kMessage:
      return &kMessageTable;
    case NodeType::kMemory:
      return &kMemoryTable;
    case NodeType::kConcept:
      return &kConceptTable;
    default:
      return InvalidArgumentError(
          fmt::format("{} nodes have no embeddings (only messages, memories and concepts)",
                      NodeTypeName(type)));
  }
}

Status ValidateModel(const std::string& model) {
  if (model.empty()) return InvalidArgumentError("the embedding model name is required");
  if (model.size() > kMaxModelBytes) {
    return InvalidArgumentError(
        fmt::format("the embedding model name is longer than {} bytes", kMaxModelBytes));
  }
  if (!IsValidUtf8(model)) return InvalidArgumentError("the embedding model name is not UTF-8");
  return Status::Ok();
}

// Non-empty, within kMaxVectorDim, every value finite.
Status ValidateVector(std::span<const float> vector, std::string_view what) {
  if (vector.empty()) return InvalidArgumentError(fmt::format("{} is empty", what));
  if (vector.size() > static_cast<size_t>(MemoryStore::kMaxVectorDim)) {
    return InvalidArgumentError(fmt::format("{} has {} dimensions, more than the {} allowed", what,
                                            vector.size(), MemoryStore::kMaxVectorDim));
  }
  const auto bad =
      std::find_if(vector.begin(), vector.end(), [](float x) { return !std::isfinite(x); });
  if (bad != vector.end()) {
    return InvalidArgumentError(
        fmt::format("{} has a non-finite value at index {}", what, bad - vector.begin()));
  }
  return Status::Ok();
}

// The storage format: float32, little-endian, whatever the host.
std::vector<std::byte> EncodeLittleEndian(std::span<const float> vector) {
  std::vector<std::byte> out(vector.size() * sizeof(float));
  std::memcpy(out.data(), vector.data(), out.size());
  if constexpr (std::endian::native == std::endian::big) {
    for (size_t i = 0; i < out.size(); i += 4) {
      std::swap(out[i], out[i + 3]);
      std::swap(out[i + 1], out[i + 2]);
    }
  }
  return out;
}

}  // namespace

Status MemoryStore::SetEmbedding(NodeType type, const std::string& id, const std::string& model,
                                 std::span<const float> vector) {
  ASSIGN_OR_RETURN(const VectorTable* table, TableFor(type));
  RETURN_IF_ERROR(ValidateModel(model));
  RETURN_IF_ERROR(ValidateVector(vector, "the embedding"));
  const std::vector<std::byte> blob = EncodeLittleEndian(vector);

  Transaction tx(db_.get());
  RETURN_IF_ERROR(tx.status());
  {
    ASSIGN_OR_RETURN(Stmt exists, db_->Prepare(table->exists_sql));
    ASSIGN_OR_RETURN(const bool found, exists.Bind(1, id).Step());
    if (!found) return NotFoundError(fmt::format("{} {} does not exist", NodeTypeName(type), id));
  }
  {
    ASSIGN_OR_RETURN(Stmt upsert, db_->Prepare(table->upsert_sql));
    upsert.BindAll(id, model, static_cast<int64_t>(vector.size()));
    RETURN_IF_ERROR(upsert.BindBlob(4, blob).Run());
  }
  // The cache notices the change through counters('vectors'), bumped by the table's triggers.
  return tx.Commit();
}

Status MemoryStore::DeleteEmbedding(NodeType type, const std::string& id) {
  ASSIGN_OR_RETURN(const VectorTable* table, TableFor(type));
  Transaction tx(db_.get());
  RETURN_IF_ERROR(tx.status());
  ASSIGN_OR_RETURN(Stmt stmt, db_->Prepare(table->delete_sql));
  RETURN_IF_ERROR(stmt.Bind(1, id).Run());
  if (db_->Changes() == 0) {
    return NotFoundError(fmt::format("{} {} has no embedding", NodeTypeName(type), id));
  }
  return tx.Commit();
}

Result<std::vector<VectorHit>> MemoryStore::NearestByEmbedding(const VectorQuery& query) {
  RETURN_IF_ERROR(ValidateModel(query.model));
  RETURN_IF_ERROR(ValidateVector(query.vector, "the query vector"));
  // Normalised once here, so the cache compares unit vectors with plain dot products.
  double squares = 0;
  for (const float x : query.vector) squares += static_cast<double>(x) * x;
  const double norm = std::sqrt(squares);
  if (!(norm > 0) || !std::isfinite(norm)) {
    return InvalidArgumentError("the query vector has no direction (zero length)");
  }
  std::vector<float> unit(query.vector.size());
  for (size_t i = 0; i < unit.size(); ++i) {
    unit[i] = static_cast<float>(query.vector[i] / norm);
  }

  std::vector<VectorHit> hits;
  if (!query.messages && !query.memories && !query.concepts) return hits;
  const int k = std::clamp(query.k, 1, kMaxVectorResults);
  const store_internal::VectorKinds kinds{query.messages, query.memories, query.concepts};
  ASSIGN_OR_RETURN(std::vector<store_internal::ScoredNode> nearest,
                   vectors_->Nearest(*db_, query.model, unit, k, kinds));
  hits.reserve(nearest.size());
  for (store_internal::ScoredNode& node : nearest) {
    hits.push_back(VectorHit{node.type, std::move(node.id), node.similarity});
  }
  return hits;
}

Result<std::vector<std::string>> MemoryStore::MessagesMissingEmbedding(const std::string& model,
                                                                       int limit) {
  // The primary key on message_vectors.node_id makes each NOT EXISTS a single lookup.
  return IdsMissingEmbedding(
      "SELECT m.id FROM messages m WHERE NOT EXISTS (SELECT 1 FROM message_vectors v "
      "WHERE v.node_id = m.id AND v.model = ?1) ORDER BY m.seq LIMIT ?2",
      model, limit);
}

Result<std::vector<std::string>> MemoryStore::MemoriesMissingEmbedding(const std::string& model,
                                                                       int limit) {
  return IdsMissingEmbedding(
      "SELECT m.id FROM memories m WHERE NOT EXISTS (SELECT 1 FROM memory_vectors v "
      "WHERE v.node_id = m.id AND v.model = ?1) ORDER BY m.rid LIMIT ?2",
      model, limit);
}

Result<std::vector<std::string>> MemoryStore::IdsMissingEmbedding(const char* sql,
                                                                  const std::string& model,
                                                                  int limit) {
  RETURN_IF_ERROR(ValidateModel(model));
  ASSIGN_OR_RETURN(Stmt stmt, db_->Prepare(sql));
  stmt.BindAll(model, std::clamp(limit, 1, kMaxListResults));
  std::vector<std::string> ids;
  while (true) {
    ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) break;
    ids.push_back(stmt.Text(0));
  }
  return ids;
}

}  // namespace locrit

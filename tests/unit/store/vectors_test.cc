// Embeddings: storage format and upsert, exact top-k against a brute-force cosine computed here,
// model and dimension filtering, the vector cache noticing every kind of change (own writes,
// cascades, other connections, rolled-back batches), validation, and backfill listing. Memories
// and concepts are written with raw SQL over a separate connection, so these tests depend only on
// the schema, not on the memory/concept API.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "store/memory_store.h"
#include "tests/support/matchers.h"
#include "tests/support/raw_sql.h"
#include "tests/support/store_fixture.h"

namespace locrit {
namespace {

using ::locrit::testing::CountRows;
using ::locrit::testing::FindBrokenInvariants;
using ::locrit::testing::IsOk;
using ::locrit::testing::StatusIs;
using ::locrit::testing::StoreHarness;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();
const std::string kModel = "test-embed";

using ::locrit::testing::RawSql;

struct VectorRow {
  std::string model;
  int64_t dim = 0;
  std::vector<unsigned char> bytes;
};

// The stored vector row of node `id` in `table`, read without the store.
std::optional<VectorRow> ReadVector(RawSql& raw, const std::string& table, const std::string& id) {
  sqlite3_stmt* stmt = nullptr;
  const std::string sql = "SELECT model, dim, vector FROM " + table + " WHERE node_id = ?1";
  EXPECT_EQ(sqlite3_prepare_v2(raw.db(), sql.c_str(), -1, &stmt, nullptr), SQLITE_OK);
  sqlite3_bind_text(stmt, 1, id.c_str(), -1, SQLITE_TRANSIENT);
  std::optional<VectorRow> out;
  if (sqlite3_step(stmt) == SQLITE_ROW) {
    VectorRow row;
    row.model = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    row.dim = sqlite3_column_int64(stmt, 1);
    const auto* data = static_cast<const unsigned char*>(sqlite3_column_blob(stmt, 2));
    row.bytes.assign(data, data + sqlite3_column_bytes(stmt, 2));
    out = std::move(row);
  }
  sqlite3_finalize(stmt);
  return out;
}

// Cosine similarity in double precision: the reference the store is checked against.
double Cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double dot = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    dot += static_cast<double>(a[i]) * b[i];
    na += static_cast<double>(a[i]) * a[i];
    nb += static_cast<double>(b[i]) * b[i];
  }
  return dot / std::sqrt(na * nb);
}

std::vector<float> RandomVector(std::mt19937& rng, size_t dim) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(dim);
  for (float& x : v) x = normal(rng);
  return v;
}

std::vector<std::string> Ids(const std::vector<VectorHit>& hits) {
  std::vector<std::string> out;
  for (const VectorHit& hit : hits) out.push_back(hit.id);
  return out;
}

class VectorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = harness_.Open();
    ASSERT_THAT(store, IsOk());
    store_ = std::move(store).value();
    raw_ = std::make_unique<RawSql>(harness_.path());
  }

  std::string Save(const std::string& content, const std::string& session = "s1") {
    harness_.clock().AdvanceMillis(1000);
    auto saved = store_->SaveMessage(StoreHarness::UserMessage(session, content));
    EXPECT_THAT(saved, IsOk());
    return saved.ok() ? saved->id : "";
  }

  void AddMemory(const std::string& id) {
    raw_->Exec(
        "INSERT INTO memories(id, content, importance, created_at, last_accessed) VALUES ('" + id +
        "', 'memory " + id + "', 0.5, 1000, 1000)");
  }

  void AddConcept(const std::string& id) {
    raw_->Exec("INSERT INTO concepts(id, name, type, description, created_at) VALUES ('" + id +
               "', 'concept " + id + "', 'thing', '', 1000)");
  }

  std::vector<VectorHit> Nearest(const std::vector<float>& vector, int k,
                                 const std::string& model = kModel) {
    VectorQuery query;
    query.vector = vector;
    query.model = model;
    query.k = k;
    auto hits = store_->NearestByEmbedding(query);
    EXPECT_THAT(hits, IsOk());
    return hits.ok() ? *hits : std::vector<VectorHit>{};
  }

  StoreHarness harness_;
  std::unique_ptr<MemoryStore> store_;
  std::unique_ptr<RawSql> raw_;  // Opened after the store has created the file.
};

TEST_F(VectorsTest, StoresLittleEndianFloat32WithModelAndDim) {
  const std::string id = Save("hello");
  const std::vector<float> vector = {1.0f, -2.5f, 0.0f, 3.25f};
  ASSERT_OK(store_->SetEmbedding(NodeType::kMessage, id, kModel, vector));

  const auto row = ReadVector(*raw_, "message_vectors", id);
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->model, kModel);
  EXPECT_EQ(row->dim, 4);
  ASSERT_THAT(row->bytes, SizeIs(16));
  // 1.0f = 0x3F800000 and -2.5f = 0xC0200000, least significant byte first.
  EXPECT_THAT(std::vector<unsigned char>(row->bytes.begin(), row->bytes.begin() + 8),
              ElementsAre(0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x20, 0xC0));
  for (size_t i = 0; i < vector.size(); ++i) {
    uint32_t bits = 0;
    for (int b = 3; b >= 0; --b) bits = (bits << 8) | row->bytes[i * 4 + static_cast<size_t>(b)];
    float value = 0;
    std::memcpy(&value, &bits, sizeof value);
    EXPECT_EQ(value, vector[i]);
  }

  const std::vector<VectorHit> hits = Nearest(vector, 5);
  ASSERT_THAT(hits, SizeIs(1));
  EXPECT_EQ(hits[0].type, NodeType::kMessage);
  EXPECT_EQ(hits[0].id, id);
  EXPECT_NEAR(hits[0].similarity, 1.0, 1e-6);
}

TEST_F(VectorsTest, SetEmbeddingUpserts) {
  const std::string id = Save("hello");
  ASSERT_OK(store_->SetEmbedding(NodeType::kMessage, id, kModel, std::vector<float>{1, 0}));
  ASSERT_OK(
      store_->SetEmbedding(NodeType::kMessage, id, "other-model", std::vector<float>{0, 1, 0}));
  EXPECT_EQ(CountRows(harness_.path(), "message_vectors"), 1);
  const auto row = ReadVector(*raw_, "message_vectors", id);
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->model, "other-model");
  EXPECT_EQ(row->dim, 3);
  EXPECT_THAT(Nearest({1, 0}, 5), IsEmpty());
  EXPECT_THAT(Ids(Nearest({0, 1, 0}, 5, "other-model")), ElementsAre(id));
}

TEST_F(VectorsTest, TopKMatchesBruteForce) {
  constexpr size_t kDim = 48;
  std::mt19937 rng(7);
  struct Stored {
    NodeType type;
    std::string id;
    std::vector<float> vector;
  };
  std::vector<Stored> stored;
  for (int i = 0; i < 120; ++i) {
    stored.push_back({NodeType::kMessage, Save("m" + std::to_string(i)), RandomVector(rng, kDim)});
  }
  for (int i = 0; i < 60; ++i) {
    const std::string id = "mem-" + std::to_string(i);
    AddMemory(id);
    stored.push_back({NodeType::kMemory, id, RandomVector(rng, kDim)});
  }
  for (int i = 0; i < 60; ++i) {
    const std::string id = "con-" + std::to_string(i);
    AddConcept(id);
    stored.push_back({NodeType::kConcept, id, RandomVector(rng, kDim)});
  }
  for (const Stored& s : stored) ASSERT_OK(store_->SetEmbedding(s.type, s.id, kModel, s.vector));

  for (int trial = 0; trial < 20; ++trial) {
    const std::vector<float> query = RandomVector(rng, kDim);
    const int k = 1 + trial * 3;
    VectorQuery q;
    q.vector = query;
    q.model = kModel;
    q.k = k;
    // Every other trial leaves one kind out.
    q.memories = trial % 2 == 0;
    std::vector<std::pair<double, std::string>> expected;
    for (const Stored& s : stored) {
      if (s.type == NodeType::kMemory && !q.memories) continue;
      expected.emplace_back(Cosine(query, s.vector), s.id);
    }
    std::sort(expected.begin(), expected.end(),
              [](const auto& a, const auto& b) { return a.first > b.first; });
    expected.resize(std::min(expected.size(), static_cast<size_t>(k)));

    ASSERT_OK_AND_ASSIGN(const std::vector<VectorHit> hits, store_->NearestByEmbedding(q));
    ASSERT_THAT(hits, SizeIs(expected.size()));
    for (size_t i = 0; i < hits.size(); ++i) {
      EXPECT_EQ(hits[i].id, expected[i].second) << "trial " << trial << " rank " << i;
      EXPECT_NEAR(hits[i].similarity, expected[i].first, 1e-5);
      if (!q.memories) {
        EXPECT_NE(hits[i].type, NodeType::kMemory);
      }
    }
  }
}

TEST_F(VectorsTest, SimilarityIsCosineWhateverTheScale) {
  const std::string a = Save("a");
  const std::string b = Save("b");
  const std::string c = Save("c");
  ASSERT_OK(store_->SetEmbedding(NodeType::kMessage, a, kModel, std::vector<float>{1000, 0}));
  ASSERT_OK(
      store_->SetEmbedding(NodeType::kMessage, b, kModel, std::vector<float>{0.001f, 0.001f}));
  ASSERT_OK(store_->SetEmbedding(NodeType::kMessage, c, kModel, std::vector<float>{-3, 0}));
  const std::vector<VectorHit> hits = Nearest({2, 0}, 10);
  ASSERT_THAT(Ids(hits), ElementsAre(a, b, c));
  EXPECT_NEAR(hits[0].similarity, 1.0, 1e-6);
  EXPECT_NEAR(hits[1].similarity, std::sqrt(0.5), 1e-6);
  EXPECT_NEAR(hits[2].similarity, -1.0, 1e-6);
}

TEST_F(VectorsTest, OnlyTheQueryModelAndDimensionAreCompared) {
  const std::string same = Save("same");
  const std::string other_model = Save("other model");
  const std::string other_dim = Save("other dim");
  AddMemory("mem-1");
  ASSERT_OK(store_->SetEmbedding(NodeType::kMessage, same, kModel, std::vector<float>{1, 2, 3}));
  ASSERT_OK(store_->SetEmbedding(NodeType::kMessage, other_model, "model-b",
                                 std::vector<float>{1, 2, 3}));
  ASSERT_OK(
      store_->SetEmbedding(NodeType::kMessage, other_dim, kModel, std::vector<float>{1, 2, 3, 4}));
  ASSERT_OK(store_->SetEmbedding(NodeType::kMemory, "mem-1", kModel, std::vector<float>{3, 2, 1}));

  EXPECT_THAT(Ids(Nearest({1, 2, 3}, 10)), ElementsAre(same, "mem-1"));
  EXPECT_THAT(Ids(Nearest({1, 2, 3}, 10, "model-b")), ElementsAre(other_model));
  EXPECT_THAT(Ids(Nearest({1, 2, 3, 4}, 10)), ElementsAre(other_dim));
  EXPECT_THAT(Nearest({1, 2}, 10), IsEmpty());
  EXPECT_THAT(Nearest({1, 2, 3}, 10, "unknown-model"), IsEmpty());
}

TEST_F(VectorsTest, KIsClampedAndKindsFilter) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(Save("m" + std::to_string(i)));
    ASSERT_OK(store_->SetEmbedding(NodeType::kMessage, ids.back(), kModel,
                                   std::vector<float>{1, static_cast<float>(i)}));
  }
  AddConcept("con-1");
  ASSERT_OK(store_->SetEmbedding(NodeType::kConcept, "con-1", kModel, std::vector<float>{1, 0}));

  EXPECT_THAT(Nearest({1, 0}, 0), SizeIs(1));
  EXPECT_THAT(Nearest({1, 0}, -3), SizeIs(1));
  EXPECT_THAT(Nearest({1, 0}, 100000), SizeIs(6));

  VectorQuery query;
  query.vector = {1, 0};
  query.model = kModel;
  query.messages = false;
  ASSERT_OK_AND_ASSIGN(const std::vector<VectorHit> concepts, store_->NearestByEmbedding(query));
  ASSERT_THAT(concepts, SizeIs(1));
  EXPECT_EQ(concepts[0].type, NodeType::kConcept);
  query.concepts = false;
  query.memories = false;
  ASSERT_OK_AND_ASSIGN(const std::vector<VectorHit> nothing, store_->NearestByEmbedding(query));
  EXPECT_THAT(nothing, IsEmpty());
}

TEST_F(VectorsTest, CacheFollowsInsertUpdateAndDelete) {
  const std::string a = Save("a");
  const std::string b = Save("b");
  const std::string c = Save("c");
  ASSERT_OK(store_->SetEmbedding(NodeType::kMessage, a, kModel, std::vector<float>{1, 0}));
  ASSERT_OK(store_->SetEmbedding(NodeType::kMessage, b, kModel, std::vector<float>{1, 1}));
  EXPECT_THAT(Ids(Nearest({1, 0}, 10)), ElementsAre(a, b));  // Loads the cache.

  // Insert.
  ASSERT_OK(store_->SetEmbedding(NodeType::kMessage, c, kModel, std::vector<float>{1, 0.1f}));
  EXPECT_THAT(Ids(Nearest({1, 0}, 10)), ElementsAre(a, c, b));
  // Update.
  ASSERT_OK(store_->SetEmbedding(NodeType::kMessage, a, kModel, std::vector<float>{0, 1}));
  EXPECT_THAT(Ids(Nearest({1, 0}, 10)), ElementsAre(c, b, a));
  // Delete the vector.
  ASSERT_OK(store_->DeleteEmbedding(NodeType::kMessage, c));
  EXPECT_THAT(Ids(Nearest({1, 0}, 10)), ElementsAre(b, a));
  // Delete the node: the vector goes by cascade.
  ASSERT_OK(store_->DeleteMessage(b));
  EXPECT_THAT(Ids(Nearest({1, 0}, 10)), ElementsAre(a));
  ASSERT_OK(store_->DeleteSession("s1"));
  EXPECT_THAT(Nearest({1, 0}, 10), IsEmpty());
  EXPECT_EQ(CountRows(harness_.path(), "message_vectors"), 0);
  EXPECT_THAT(FindBrokenInvariants(harness_.path()), IsEmpty());
}

TEST_F(VectorsTest, CacheFollowsRawDeletesOfMemoriesAndConcepts) {
  AddMemory("mem-1");
  AddConcept("con-1");
  ASSERT_OK(store_->SetEmbedding(NodeType::kMemory, "mem-1", kModel, std::vector<float>{1, 0}));
  ASSERT_OK(store_->SetEmbedding(NodeType::kConcept, "con-1", kModel, std::vector<float>{0, 1}));
  EXPECT_THAT(Ids(Nearest({1, 0}, 10)), ElementsAre("mem-1", "con-1"));
  raw_->Exec("DELETE FROM memories WHERE id = 'mem-1'");
  EXPECT_THAT(Ids(Nearest({1, 0}, 10)), ElementsAre("con-1"));
  raw_->Exec("DELETE FROM concepts WHERE id = 'con-1'");
  EXPECT_THAT(Nearest({1, 0}, 10), IsEmpty());
  EXPECT_EQ(CountRows(harness_.path(), "memory_vectors"), 0);
  EXPECT_EQ(CountRows(harness_.path(), "concept_vectors"), 0);
}

TEST_F(VectorsTest, CacheSeesWritesFromAnotherConnection) {
  const std::string a = Save("a");
  const std::string b = Save("b");
  ASSERT_OK(store_->SetEmbedding(NodeType::kMessage, a, kModel, std::vector<float>{1, 0}));

  StoreOptions options = harness_.options();
  options.read_only = true;
  ASSERT_OK_AND_ASSIGN(auto reader, MemoryStore::Open(options));
  VectorQuery query;
  query.vector = {1, 0};
  query.model = kModel;
  ASSERT_OK_AND_ASSIGN(const std::vector<VectorHit> before, reader->NearestByEmbedding(query));
  EXPECT_THAT(Ids(before), ElementsAre(a));

  ASSERT_OK(store_->SetEmbedding(NodeType::kMessage, b, kModel, std::vector<float>{1, 0.01f}));
  ASSERT_OK_AND_ASSIGN(const std::vector<VectorHit> inserted, reader->NearestByEmbedding(query));
  EXPECT_THAT(Ids(inserted), ElementsAre(a, b));

  ASSERT_OK(store_->SetEmbedding(NodeType::kMessage, a, kModel, std::vector<float>{-1, 0}));
  ASSERT_OK_AND_ASSIGN(const std::vector<VectorHit> updated, reader->NearestByEmbedding(query));
  EXPECT_THAT(Ids(updated), ElementsAre(b, a));

  ASSERT_OK(store_->DeleteMessage(b));
  ASSERT_OK_AND_ASSIGN(const std::vector<VectorHit> deleted, reader->NearestByEmbedding(query));
  EXPECT_THAT(Ids(deleted), ElementsAre(a));
}

// A vector written inside a batch is visible to queries in that batch; after a rollback the
// vector counter returns to an earlier value, which a later write reaches again. The cache must
// not take that equal value for "nothing changed".
TEST_F(VectorsTest, CacheIsNotFooledByARolledBackBatch) {
  const std::string a = Save("a");
  const std::string b = Save("b");
  const std::string c = Save("c");
  ASSERT_OK(store_->SetEmbedding(NodeType::kMessage, a, kModel, std::vector<float>{0, 1}));
  EXPECT_THAT(Ids(Nearest({1, 0}, 10)), ElementsAre(a));

  ASSERT_OK(store_->BeginBatch());
  ASSERT_OK(store_->SetEmbedding(NodeType::kMessage, b, kModel, std::vector<float>{1, 0}));
  EXPECT_THAT(Ids(Nearest({1, 0}, 10)), ElementsAre(b, a));
  store_->RollbackBatch();
  EXPECT_THAT(Ids(Nearest({1, 0}, 10)), ElementsAre(a));

  ASSERT_OK(store_->BeginBatch());
  ASSERT_OK(store_->SetEmbedding(NodeType::kMessage, b, kModel, std::vector<float>{1, 0}));
  EXPECT_THAT(Ids(Nearest({1, 0}, 10)), ElementsAre(b, a));
  store_->RollbackBatch();
  // Same counter value as inside the rolled-back batch, different content.
  ASSERT_OK(store_->SetEmbedding(NodeType::kMessage, c, kModel, std::vector<float>{1, 0.5f}));
  EXPECT_THAT(Ids(Nearest({1, 0}, 10)), ElementsAre(c, a));

  // The same inside one batch, with a write undone by its savepoint.
  ASSERT_OK(store_->BeginBatch());
  const Status failed = store_->Atomically([&]() -> Status {
    RETURN_IF_ERROR(store_->SetEmbedding(NodeType::kMessage, b, kModel, std::vector<float>{1, 0}));
    EXPECT_THAT(Ids(Nearest({1, 0}, 10)), ElementsAre(b, c, a));
    return CancelledError("undo");
  });
  EXPECT_THAT(failed, StatusIs(StatusCode::kCancelled));
  ASSERT_OK(store_->DeleteEmbedding(NodeType::kMessage, c));
  EXPECT_THAT(Ids(Nearest({1, 0}, 10)), ElementsAre(a));
  ASSERT_OK(store_->CommitBatch());
  EXPECT_THAT(Ids(Nearest({1, 0}, 10)), ElementsAre(a));
}

TEST_F(VectorsTest, UnusableStoredVectorsAreNeverReturned) {
  const std::string zero = Save("zero");
  const std::string good = Save("good");
  // A zero vector is accepted (an embedding server may return one for empty text) but has no
  // direction, so it is nobody's neighbour.
  ASSERT_OK(store_->SetEmbedding(NodeType::kMessage, zero, kModel, std::vector<float>{0, 0}));
  ASSERT_OK(store_->SetEmbedding(NodeType::kMessage, good, kModel, std::vector<float>{1, 1}));
  // Written behind the store's back: NaN and infinity bytes.
  AddMemory("mem-nan");
  AddMemory("mem-inf");
  raw_->Exec(
      "INSERT INTO memory_vectors(node_id, model, dim, vector) VALUES "
      "('mem-nan', '" +
      kModel +
      "', 2, X'0000C07F0000803F'), "
      "('mem-inf', '" +
      kModel + "', 2, X'0000807F0000803F')");
  EXPECT_THAT(Ids(Nearest({1, 0}, 10)), ElementsAre(good));
}

TEST_F(VectorsTest, SetEmbeddingValidates) {
  const std::string id = Save("x");
  const std::vector<float> ok = {1, 2};
  EXPECT_THAT(store_->SetEmbedding(NodeType::kMessage, id, kModel, std::vector<float>{}),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->SetEmbedding(NodeType::kMessage, id, kModel,
                                   std::vector<float>(MemoryStore::kMaxVectorDim + 1, 1.0f)),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->SetEmbedding(NodeType::kMessage, id, kModel, std::vector<float>{1, kNaN}),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->SetEmbedding(NodeType::kMessage, id, kModel, std::vector<float>{kInf, 1}),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->SetEmbedding(NodeType::kMessage, id, kModel, std::vector<float>{-kInf, 1}),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->SetEmbedding(NodeType::kMessage, id, "", ok),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->SetEmbedding(NodeType::kMessage, id, std::string(300, 'm'), ok),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->SetEmbedding(NodeType::kMessage, id, "bad\xff", ok),
              StatusIs(StatusCode::kInvalidArgument));
  for (NodeType type : {NodeType::kUser, NodeType::kSession, NodeType::kTopic}) {
    EXPECT_THAT(store_->SetEmbedding(type, "user-alice", kModel, ok),
                StatusIs(StatusCode::kInvalidArgument));
    EXPECT_THAT(store_->DeleteEmbedding(type, "user-alice"),
                StatusIs(StatusCode::kInvalidArgument));
  }
  EXPECT_THAT(store_->SetEmbedding(NodeType::kMessage, "no-such-message", kModel, ok),
              StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(store_->SetEmbedding(NodeType::kMemory, "no-such-memory", kModel, ok),
              StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(store_->SetEmbedding(NodeType::kConcept, "no-such-concept", kModel, ok),
              StatusIs(StatusCode::kNotFound));
  // A message id is not a memory id.
  EXPECT_THAT(store_->SetEmbedding(NodeType::kMemory, id, kModel, ok),
              StatusIs(StatusCode::kNotFound));
  EXPECT_EQ(CountRows(harness_.path(), "message_vectors"), 0);
  EXPECT_EQ(CountRows(harness_.path(), "memory_vectors"), 0);

  // The largest allowed dimension is fine.
  EXPECT_OK(store_->SetEmbedding(NodeType::kMessage, id, kModel,
                                 std::vector<float>(MemoryStore::kMaxVectorDim, 0.5f)));
}

TEST_F(VectorsTest, DeleteEmbeddingOfNothingIsNotFound) {
  const std::string id = Save("x");
  EXPECT_THAT(store_->DeleteEmbedding(NodeType::kMessage, id), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(store_->DeleteEmbedding(NodeType::kMessage, "no-such-message"),
              StatusIs(StatusCode::kNotFound));
  ASSERT_OK(store_->SetEmbedding(NodeType::kMessage, id, kModel, std::vector<float>{1}));
  EXPECT_OK(store_->DeleteEmbedding(NodeType::kMessage, id));
  EXPECT_THAT(store_->DeleteEmbedding(NodeType::kMessage, id), StatusIs(StatusCode::kNotFound));
}

TEST_F(VectorsTest, NearestValidatesTheQuery) {
  const std::string id = Save("x");
  ASSERT_OK(store_->SetEmbedding(NodeType::kMessage, id, kModel, std::vector<float>{1, 0}));
  const auto nearest = [&](std::vector<float> vector, std::string model = kModel) {
    VectorQuery query;
    query.vector = std::move(vector);
    query.model = std::move(model);
    return store_->NearestByEmbedding(query);
  };
  EXPECT_THAT(nearest({}), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(nearest({0, 0}), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(nearest({kNaN, 1}), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(nearest({1, kInf}), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(nearest(std::vector<float>(MemoryStore::kMaxVectorDim + 1, 1.0f)),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(nearest({1, 0}, ""), StatusIs(StatusCode::kInvalidArgument));
  // Tiny but non-zero is a direction.
  EXPECT_THAT(nearest({1e-30f, 0}), IsOk());
  // Huge values do not overflow the norm.
  ASSERT_OK_AND_ASSIGN(const std::vector<VectorHit> huge, nearest({3e38f, 3e38f}));
  ASSERT_THAT(huge, SizeIs(1));
  EXPECT_NEAR(huge[0].similarity, std::sqrt(0.5), 1e-6);
}

TEST_F(VectorsTest, MessagesMissingEmbeddingOldestFirst) {
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(Save("m" + std::to_string(i)));
  ASSERT_OK(store_->SetEmbedding(NodeType::kMessage, ids[1], kModel, std::vector<float>{1}));
  ASSERT_OK(store_->SetEmbedding(NodeType::kMessage, ids[4], kModel, std::vector<float>{1}));
  ASSERT_OK(store_->SetEmbedding(NodeType::kMessage, ids[2], "older-model", std::vector<float>{1}));

  ASSERT_OK_AND_ASSIGN(const std::vector<std::string> missing,
                       store_->MessagesMissingEmbedding(kModel, 10));
  EXPECT_THAT(missing, ElementsAre(ids[0], ids[2], ids[3], ids[5]));
  ASSERT_OK_AND_ASSIGN(const std::vector<std::string> first_two,
                       store_->MessagesMissingEmbedding(kModel, 2));
  EXPECT_THAT(first_two, ElementsAre(ids[0], ids[2]));
  ASSERT_OK_AND_ASSIGN(const std::vector<std::string> clamped,
                       store_->MessagesMissingEmbedding(kModel, 0));
  EXPECT_THAT(clamped, ElementsAre(ids[0]));
  ASSERT_OK_AND_ASSIGN(const std::vector<std::string> other,
                       store_->MessagesMissingEmbedding("older-model", 10));
  EXPECT_THAT(other, ElementsAre(ids[0], ids[1], ids[3], ids[4], ids[5]));
  EXPECT_THAT(store_->MessagesMissingEmbedding("", 10), StatusIs(StatusCode::kInvalidArgument));

  ASSERT_OK(store_->DeleteMessage(ids[0]));
  ASSERT_OK_AND_ASSIGN(const std::vector<std::string> after_delete,
                       store_->MessagesMissingEmbedding(kModel, 10));
  EXPECT_THAT(after_delete, ElementsAre(ids[2], ids[3], ids[5]));
}

TEST_F(VectorsTest, EmbeddingsSurviveReopen) {
  const std::string id = Save("x");
  ASSERT_OK(store_->SetEmbedding(NodeType::kMessage, id, kModel, std::vector<float>{0.5f, 0.25f}));
  store_.reset();
  ASSERT_OK_AND_ASSIGN(store_, harness_.Open());
  const std::vector<VectorHit> hits = Nearest({2, 1}, 1);
  ASSERT_THAT(Ids(hits), ElementsAre(id));
  EXPECT_NEAR(hits[0].similarity, 1.0, 1e-6);
  EXPECT_THAT(store_->QuickCheck(), IsOk());
  EXPECT_THAT(FindBrokenInvariants(harness_.path()), IsEmpty());
}

// A vector is the meaning of a text: editing the text drops it (in the edit's transaction), so
// search never finds a node by what it used to say, and the backfill embeds the new text.
TEST_F(VectorsTest, EditingTheTextDropsItsVector) {
  const std::string message = Save("il pleut");
  AddMemory("mem-1");
  ASSERT_OK(store_->SetEmbedding(NodeType::kMessage, message, kModel, std::vector<float>{1, 0}));
  ASSERT_OK(store_->SetEmbedding(NodeType::kMemory, "mem-1", kModel, std::vector<float>{0, 1}));
  EXPECT_THAT(Nearest({1, 0}, 5), SizeIs(2));

  ASSERT_OK(store_->EditMessage(message, "il fait beau"));
  MemoryEdit importance_only;
  importance_only.importance = 0.9;
  ASSERT_OK(store_->EditMemory("mem-1", importance_only));
  EXPECT_FALSE(ReadVector(*raw_, "message_vectors", message).has_value());
  EXPECT_TRUE(ReadVector(*raw_, "memory_vectors", "mem-1").has_value())
      << "the text did not change";
  EXPECT_THAT(Ids(Nearest({1, 0}, 5)), ElementsAre("mem-1")) << "the cache saw the delete";
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> messages,
                       store_->MessagesMissingEmbedding(kModel, 10));
  EXPECT_THAT(messages, ElementsAre(message));

  MemoryEdit content;
  content.content = "autre chose";
  ASSERT_OK(store_->EditMemory("mem-1", content));
  EXPECT_FALSE(ReadVector(*raw_, "memory_vectors", "mem-1").has_value());
  EXPECT_THAT(Nearest({1, 0}, 5), IsEmpty());
  EXPECT_THAT(store_->EditMessage("no-such-id", "x"), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(FindBrokenInvariants(harness_.path()), IsEmpty());
}

}  // namespace
}  // namespace locrit

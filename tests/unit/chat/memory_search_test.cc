// SearchMemory (chat/memory_search.h) over a real store: each mode's ranking, the filters in
// every mode, texts edited or deleted after their vector was found, and a question vector the
// store cannot compare.
#include "chat/memory_search.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "tests/support/matchers.h"
#include "tests/support/store_fixture.h"

namespace locrit {
namespace {

using ::locrit::testing::StatusIs;
using ::locrit::testing::StoreHarness;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

const std::string kModel = "test-embed";

// Unit vectors along the axes of a 3-d space: "weather", "animals", "food".
const std::vector<float> kWeather = {1, 0, 0};
const std::vector<float> kAnimals = {0, 1, 0};
const std::vector<float> kFood = {0, 0, 1};

class MemorySearchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = harness_.Open();
    ASSERT_TRUE(opened.ok()) << opened.status();
    store_ = std::move(opened).value();
  }

  std::string SaveMessage(const std::string& session, const std::string& content,
                          const std::vector<float>& vector, Role role = Role::kUser) {
    NewMessage message = StoreHarness::UserMessage(session, content);
    message.role = role;
    auto saved = store_->SaveMessage(message);
    EXPECT_TRUE(saved.ok()) << saved.status();
    EXPECT_TRUE(store_->SetEmbedding(NodeType::kMessage, saved->id, kModel, vector).ok());
    return saved->id;
  }
  std::string AddMemory(const std::string& content, const std::vector<float>& vector) {
    NewMemory memory;
    memory.content = content;
    auto added = store_->AddMemory(memory);
    EXPECT_TRUE(added.ok()) << added.status();
    EXPECT_TRUE(store_->SetEmbedding(NodeType::kMemory, added->id, kModel, vector).ok());
    return added->id;
  }

  std::vector<std::string> Ids(SearchMode mode, const std::string& text,
                               const std::vector<float>& vector,
                               void (*adjust)(SearchQuery&) = nullptr) {
    MemorySearch search;
    search.mode = mode;
    search.query.text = text;
    search.query.limit = 10;
    if (adjust != nullptr) adjust(search.query);
    search.vector = vector;
    search.embedding_model = kModel;
    auto hits = SearchMemory(*store_, search);
    EXPECT_TRUE(hits.ok()) << hits.status();
    std::vector<std::string> ids;
    if (hits.ok()) {
      for (const SearchHit& hit : *hits) ids.push_back(hit.id);
    }
    return ids;
  }

  StoreHarness harness_;
  std::unique_ptr<MemoryStore> store_;
};

TEST_F(MemorySearchTest, EachModeRanksByWhatItReads) {
  const std::string rain = SaveMessage("s1", "il pleut des cordes", kWeather);
  const std::string cat = SaveMessage("s1", "mon chat dort", kAnimals, Role::kAssistant);
  const std::string soup = AddMemory("la soupe du chat est prête", kFood);

  // Keyword: the words, not the vectors.
  EXPECT_THAT(Ids(SearchMode::kKeyword, "chat", kWeather),
              ::testing::UnorderedElementsAre(cat, soup));
  // Semantic: every vector of the model, nearest first, words or not.
  EXPECT_THAT(Ids(SearchMode::kSemantic, "météo", kWeather)[0], rain);
  EXPECT_EQ(Ids(SearchMode::kSemantic, "météo", kWeather).size(), 3u);
  // Hybrid: found by both ranks first; found by one only still comes in.
  const std::vector<std::string> hybrid = Ids(SearchMode::kHybrid, "chat", kAnimals);
  ASSERT_EQ(hybrid.size(), 3u);
  EXPECT_EQ(hybrid[0], cat);
  EXPECT_EQ(hybrid[2], rain) << "vector side only, and last there";
}

TEST_F(MemorySearchTest, FiltersHoldInEveryMode) {
  const std::string s1_user = SaveMessage("s1", "chat un", kAnimals);
  const std::string s1_bot = SaveMessage("s1", "chat deux", kAnimals, Role::kAssistant);
  const std::string s2_user = SaveMessage("s2", "chat trois", kAnimals);
  AddMemory("chat quatre", kAnimals);
  auto session_s1 = [](SearchQuery& q) { q.session_id = "s1"; };
  auto assistant = [](SearchQuery& q) { q.role = Role::kAssistant; };
  auto memories_only = [](SearchQuery& q) { q.messages = false; q.concepts = false; };
  for (SearchMode mode : {SearchMode::kKeyword, SearchMode::kSemantic, SearchMode::kHybrid}) {
    SCOPED_TRACE(static_cast<int>(mode));
    EXPECT_THAT(Ids(mode, "chat", kAnimals, session_s1),
                ::testing::UnorderedElementsAre(s1_user, s1_bot));
    EXPECT_THAT(Ids(mode, "chat", kAnimals, assistant), ElementsAre(s1_bot));
    EXPECT_EQ(Ids(mode, "chat", kAnimals, memories_only).size(), 1u);
  }
  EXPECT_THAT(Ids(SearchMode::kSemantic, "chat", kAnimals, [](SearchQuery& q) {
                q.session_id = "s2";
              }),
              ElementsAre(s2_user));
}

TEST_F(MemorySearchTest, ALimitAndAnEditedTextAreRespected) {
  for (int i = 0; i < 5; ++i) AddMemory("souvenir " + std::to_string(i), kWeather);
  MemorySearch search;
  search.mode = SearchMode::kSemantic;
  search.query.text = "x";
  search.query.limit = 2;
  search.vector = kWeather;
  search.embedding_model = kModel;
  auto hits = SearchMemory(*store_, search);
  ASSERT_TRUE(hits.ok());
  EXPECT_EQ(hits->size(), 2u);
  // An edited text lost its vector: semantic search no longer finds it by the old meaning.
  const std::string edited = (*hits)[0].id;
  MemoryEdit edit;
  edit.content = "autre chose";
  ASSERT_TRUE(store_->EditMemory(edited, edit).ok());
  search.query.limit = 10;
  hits = SearchMemory(*store_, search);
  ASSERT_TRUE(hits.ok());
  EXPECT_EQ(hits->size(), 4u);
  for (const SearchHit& hit : *hits) EXPECT_NE(hit.id, edited);
}

TEST_F(MemorySearchTest, AVectorTheStoreCannotCompare) {
  const std::string cat = SaveMessage("s1", "mon chat", kAnimals);
  MemorySearch search;
  search.query.text = "chat";
  search.query.limit = 5;
  search.vector = {0, 0, 0};  // No direction.
  search.embedding_model = kModel;
  search.mode = SearchMode::kSemantic;
  EXPECT_THAT(SearchMemory(*store_, search), StatusIs(StatusCode::kInvalidArgument));
  search.mode = SearchMode::kHybrid;
  auto hits = SearchMemory(*store_, search);
  ASSERT_TRUE(hits.ok()) << hits.status();
  ASSERT_EQ(hits->size(), 1u) << "hybrid keeps its keyword half";
  EXPECT_EQ((*hits)[0].id, cat);
  search.embedding_model = "other-model";
  search.vector = kAnimals;
  search.mode = SearchMode::kSemantic;
  hits = SearchMemory(*store_, search);
  ASSERT_TRUE(hits.ok());
  EXPECT_THAT(*hits, IsEmpty()) << "only the vectors of the question's model are compared";
}

}  // namespace
}  // namespace locrit

// Memories, concepts, topics, relations, related-concept walks, the graph view, statistics and
// summary: behaviour, validation and not-found paths, and that deletes never leave a dangling edge.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <utility>

#include "base/utf8.h"
#include "store/memory_store.h"
#include "tests/support/matchers.h"
#include "tests/support/store_fixture.h"

namespace locrit {
namespace {

using ::locrit::testing::CountRows;
using ::locrit::testing::FindBrokenInvariants;
using ::locrit::testing::IsOk;
using ::locrit::testing::StatusIs;
using ::locrit::testing::StoreHarness;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

int64_t CountEdges(const std::string& path) {
  int64_t total = 0;
  for (const char* table :
       {"sent", "part_of", "responds_to", "mentions", "relates_to", "discusses", "learns"}) {
    total += CountRows(path, table);
  }
  return total;
}

class GraphStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = harness_.Open();
    ASSERT_THAT(store, IsOk());
    store_ = std::move(store).value();
  }

  SavedMessage Save(const std::string& session, const std::string& content,
                    const std::string& user = "user-alice") {
    auto saved = store_->SaveMessage(StoreHarness::UserMessage(session, content, user));
    EXPECT_THAT(saved, IsOk());
    return saved.ok() ? *saved : SavedMessage{};
  }

  Concept MakeConcept(const std::string& name, const std::string& type = "thing") {
    NewConcept input;
    input.name = name;
    input.type = type;
    auto made = store_->UpsertConcept(input);
    EXPECT_THAT(made, IsOk());
    return made.ok() ? *made : Concept{};
  }

  Memory MakeMemory(const std::string& content, double importance = 0.5) {
    NewMemory input;
    input.content = content;
    input.importance = importance;
    auto made = store_->AddMemory(input);
    EXPECT_THAT(made, IsOk());
    return made.ok() ? *made : Memory{};
  }

  Topic MakeTopic(const std::string& name) {
    NewTopic input;
    input.name = name;
    auto made = store_->UpsertTopic(input);
    EXPECT_THAT(made, IsOk());
    return made.ok() ? *made : Topic{};
  }

  Result<Relation> Link(RelationType type, const std::string& from, const std::string& to,
                        double strength = 1.0, const std::string& relationship_type = "") {
    Relation r;
    r.type = type;
    r.from_id = from;
    r.to_id = to;
    r.strength = strength;
    r.relationship_type = relationship_type;
    return store_->AddRelation(r);
  }

  Relation MustLink(RelationType type, const std::string& from, const std::string& to,
                    double strength = 1.0, const std::string& relationship_type = "") {
    auto r = Link(type, from, to, strength, relationship_type);
    EXPECT_THAT(r, IsOk());
    return r.ok() ? *r : Relation{};
  }

  StoreHarness harness_;
  std::unique_ptr<MemoryStore> store_;
};

// ---- Standalone memories ----

class MemoriesTest : public GraphStoreTest {};

TEST_F(MemoriesTest, AddAndGetRoundTrip) {
  NewMemory input;
  input.content = "Alice prefers tea, not coffee ☕";
  input.importance = 0.8;
  input.metadata = R"({"source":"chat","tags":["drinks"]})";
  ASSERT_OK_AND_ASSIGN(Memory added, store_->AddMemory(input));
  EXPECT_FALSE(added.id.empty());
  EXPECT_EQ(added.created_at, harness_.clock().NowMillis());
  EXPECT_EQ(added.last_accessed, added.created_at);

  ASSERT_OK_AND_ASSIGN(Memory got, store_->GetMemory(added.id));
  EXPECT_EQ(got.id, added.id);
  EXPECT_EQ(got.content, input.content);
  EXPECT_DOUBLE_EQ(got.importance, 0.8);
  EXPECT_EQ(got.metadata, input.metadata);
  EXPECT_EQ(got.created_at, added.created_at);

  EXPECT_THAT(store_->GetMemory("no-such-memory"), StatusIs(StatusCode::kNotFound));
}

TEST_F(MemoriesTest, BoundaryImportanceIsAccepted) {
  EXPECT_DOUBLE_EQ(MakeMemory("zero", 0.0).importance, 0.0);
  EXPECT_DOUBLE_EQ(MakeMemory("one", 1.0).importance, 1.0);
}

TEST_F(MemoriesTest, RejectsInvalidInputAndWritesNothing) {
  for (double importance : {-0.1, 1.1, kNaN, kInf, -kInf}) {
    NewMemory input;
    input.content = "x";
    input.importance = importance;
    EXPECT_THAT(store_->AddMemory(input), StatusIs(StatusCode::kInvalidArgument)) << importance;
  }
  NewMemory input;
  input.content = "";
  EXPECT_THAT(store_->AddMemory(input), StatusIs(StatusCode::kInvalidArgument));
  input.content = "bad \xff utf8";
  EXPECT_THAT(store_->AddMemory(input), StatusIs(StatusCode::kInvalidArgument));
  input.content = "ok";
  for (const char* metadata : {"[1,2]", "{not json", "42", "\"text\""}) {
    input.metadata = metadata;
    EXPECT_THAT(store_->AddMemory(input), StatusIs(StatusCode::kInvalidArgument)) << metadata;
  }
  input.metadata = "{}";
  input.id = "";
  EXPECT_THAT(store_->AddMemory(input), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_EQ(CountRows(harness_.path(), "memories"), 0);
}

TEST_F(MemoriesTest, ExplicitIdIsUsedOnceThenAlreadyExists) {
  NewMemory input;
  input.content = "fixed";
  input.id = "memory-1";
  ASSERT_OK_AND_ASSIGN(Memory added, store_->AddMemory(input));
  EXPECT_EQ(added.id, "memory-1");
  EXPECT_THAT(store_->AddMemory(input), StatusIs(StatusCode::kAlreadyExists));
  EXPECT_EQ(CountRows(harness_.path(), "memories"), 1);
}

TEST_F(MemoriesTest, ListIsByImportanceThenNewest) {
  MakeMemory("low", 0.1);
  harness_.clock().AdvanceMillis(10);
  MakeMemory("high old", 0.9);
  harness_.clock().AdvanceMillis(10);
  MakeMemory("high new", 0.9);
  harness_.clock().AdvanceMillis(10);
  MakeMemory("mid", 0.5);
  ASSERT_OK_AND_ASSIGN(auto all, store_->ListMemories(10));
  std::vector<std::string> contents;
  for (const Memory& m : all) contents.push_back(m.content);
  EXPECT_THAT(contents, ElementsAre("high new", "high old", "mid", "low"));

  ASSERT_OK_AND_ASSIGN(auto two, store_->ListMemories(2));
  EXPECT_EQ(two.size(), 2u);
  // Limits are clamped, never an error.
  ASSERT_OK_AND_ASSIGN(auto clamped, store_->ListMemories(0));
  EXPECT_EQ(clamped.size(), 1u);
}

TEST_F(MemoriesTest, EditChangesOnlyTheGivenFields) {
  NewMemory input;
  input.content = "original";
  input.importance = 0.3;
  input.metadata = R"({"k":1})";
  ASSERT_OK_AND_ASSIGN(Memory added, store_->AddMemory(input));
  harness_.clock().AdvanceMillis(5000);

  MemoryEdit edit;
  edit.importance = 0.9;
  ASSERT_OK_AND_ASSIGN(Memory edited, store_->EditMemory(added.id, edit));
  EXPECT_EQ(edited.content, "original");
  EXPECT_DOUBLE_EQ(edited.importance, 0.9);
  EXPECT_EQ(edited.metadata, R"({"k":1})");
  EXPECT_EQ(edited.last_accessed, added.last_accessed);

  edit = {};
  edit.content = "rewritten";
  edit.metadata = R"({"k":2})";
  ASSERT_OK_AND_ASSIGN(edited, store_->EditMemory(added.id, edit));
  EXPECT_EQ(edited.content, "rewritten");
  EXPECT_DOUBLE_EQ(edited.importance, 0.9);
  ASSERT_OK_AND_ASSIGN(Memory got, store_->GetMemory(added.id));
  EXPECT_EQ(got.content, "rewritten");
  EXPECT_EQ(got.metadata, R"({"k":2})");

  // Invalid edits change nothing.
  for (double importance : {-0.1, 1.1, kNaN}) {
    edit = {};
    edit.importance = importance;
    EXPECT_THAT(store_->EditMemory(added.id, edit), StatusIs(StatusCode::kInvalidArgument));
  }
  edit = {};
  edit.content = "";
  EXPECT_THAT(store_->EditMemory(added.id, edit), StatusIs(StatusCode::kInvalidArgument));
  edit = {};
  edit.metadata = "[]";
  EXPECT_THAT(store_->EditMemory(added.id, edit), StatusIs(StatusCode::kInvalidArgument));
  ASSERT_OK_AND_ASSIGN(got, store_->GetMemory(added.id));
  EXPECT_EQ(got.content, "rewritten");
  EXPECT_DOUBLE_EQ(got.importance, 0.9);

  edit = {};
  edit.content = "x";
  auto missing = store_->EditMemory("no-such-memory", edit);
  EXPECT_THAT(missing, StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(missing.status().message(), HasSubstr("no-such-memory"));
}

TEST_F(MemoriesTest, DeleteRemovesItAndItsEdges) {
  const SavedMessage m = Save("s1", "hello");
  const Memory memory = MakeMemory("learned");
  MustLink(RelationType::kLearns, m.session_id, memory.id, 0.7);
  EXPECT_EQ(CountRows(harness_.path(), "learns"), 1);

  ASSERT_OK(store_->DeleteMemory(memory.id));
  EXPECT_THAT(store_->GetMemory(memory.id), StatusIs(StatusCode::kNotFound));
  EXPECT_EQ(CountRows(harness_.path(), "learns"), 0);
  EXPECT_THAT(FindBrokenInvariants(harness_.path()), IsEmpty());

  auto again = store_->DeleteMemory(memory.id);
  EXPECT_THAT(again, StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(again.message(), HasSubstr(memory.id));
}

TEST_F(MemoriesTest, TouchSetsLastAccessedOfEveryExistingId) {
  const Memory a = MakeMemory("a");
  const Memory b = MakeMemory("b");
  const Memory c = MakeMemory("c");
  harness_.clock().AdvanceMillis(60'000);
  const int64_t now = harness_.clock().NowMillis();

  ASSERT_OK(store_->TouchMemories({a.id, "no-such-memory", c.id}));
  ASSERT_OK_AND_ASSIGN(Memory got_a, store_->GetMemory(a.id));
  ASSERT_OK_AND_ASSIGN(Memory got_b, store_->GetMemory(b.id));
  ASSERT_OK_AND_ASSIGN(Memory got_c, store_->GetMemory(c.id));
  EXPECT_EQ(got_a.last_accessed, now);
  EXPECT_EQ(got_b.last_accessed, b.last_accessed);
  EXPECT_EQ(got_c.last_accessed, now);
  EXPECT_EQ(got_a.created_at, a.created_at);

  EXPECT_OK(store_->TouchMemories({}));
}

// ---- Concepts ----

class ConceptsTest : public GraphStoreTest {};

TEST_F(ConceptsTest, UpsertCreatesThenChangesOnlyGivenFields) {
  NewConcept input;
  input.name = "Paris";
  input.type = "place";
  input.description = "capital of France";
  input.confidence = 0.6;
  ASSERT_OK_AND_ASSIGN(Concept created, store_->UpsertConcept(input));
  EXPECT_EQ(created.name, "Paris");
  EXPECT_EQ(created.description, "capital of France");
  EXPECT_DOUBLE_EQ(created.confidence, 0.6);
  EXPECT_EQ(created.created_at, harness_.clock().NowMillis());

  harness_.clock().AdvanceMillis(1000);
  NewConcept again;
  again.name = "PARIS";  // Same concept: names compare case-insensitively.
  again.type = "place";
  again.confidence = 0.9;
  ASSERT_OK_AND_ASSIGN(Concept updated, store_->UpsertConcept(again));
  EXPECT_EQ(updated.id, created.id);
  EXPECT_EQ(updated.name, "Paris");  // The stored spelling stays.
  EXPECT_EQ(updated.description, "capital of France");
  EXPECT_DOUBLE_EQ(updated.confidence, 0.9);
  EXPECT_EQ(updated.created_at, created.created_at);
  EXPECT_EQ(CountRows(harness_.path(), "concepts"), 1);

  again.confidence.reset();
  again.description = "";
  ASSERT_OK_AND_ASSIGN(updated, store_->UpsertConcept(again));
  EXPECT_EQ(updated.description, "");
  EXPECT_DOUBLE_EQ(updated.confidence, 0.9);
}

TEST_F(ConceptsTest, DefaultsOnCreate) {
  NewConcept input;
  input.name = "bare";
  ASSERT_OK_AND_ASSIGN(Concept c, store_->UpsertConcept(input));
  EXPECT_EQ(c.type, "");
  EXPECT_EQ(c.description, "");
  EXPECT_DOUBLE_EQ(c.confidence, 1.0);
}

TEST_F(ConceptsTest, SameNameDifferentTypesAreDistinct) {
  const Concept city = MakeConcept("Paris", "place");
  const Concept person = MakeConcept("paris", "person");
  EXPECT_NE(city.id, person.id);
  EXPECT_EQ(CountRows(harness_.path(), "concepts"), 2);
}

TEST_F(ConceptsTest, RejectsInvalidInput) {
  NewConcept input;
  input.name = "";
  EXPECT_THAT(store_->UpsertConcept(input), StatusIs(StatusCode::kInvalidArgument));
  input.name = "bad \xc3\x28";
  EXPECT_THAT(store_->UpsertConcept(input), StatusIs(StatusCode::kInvalidArgument));
  input.name = "ok";
  input.type = "\xff";
  EXPECT_THAT(store_->UpsertConcept(input), StatusIs(StatusCode::kInvalidArgument));
  input.type = "t";
  input.description = "\xed\xa0\x80";  // A UTF-16 surrogate.
  EXPECT_THAT(store_->UpsertConcept(input), StatusIs(StatusCode::kInvalidArgument));
  input.description.reset();
  for (double confidence : {-0.1, 1.1, kNaN, kInf}) {
    input.confidence = confidence;
    EXPECT_THAT(store_->UpsertConcept(input), StatusIs(StatusCode::kInvalidArgument))
        << confidence;
  }
  EXPECT_EQ(CountRows(harness_.path(), "concepts"), 0);
}

TEST_F(ConceptsTest, ExplicitIdOfAnotherConceptIsAlreadyExists) {
  NewConcept input;
  input.name = "Rust";
  input.type = "language";
  input.id = "concept-rust";
  ASSERT_OK_AND_ASSIGN(Concept c, store_->UpsertConcept(input));
  EXPECT_EQ(c.id, "concept-rust");
  // The same id for the same concept is an idempotent upsert.
  ASSERT_OK_AND_ASSIGN(Concept same, store_->UpsertConcept(input));
  EXPECT_EQ(same.id, "concept-rust");
  input.name = "Go";
  EXPECT_THAT(store_->UpsertConcept(input), StatusIs(StatusCode::kAlreadyExists));
  EXPECT_EQ(CountRows(harness_.path(), "concepts"), 1);
}

TEST_F(ConceptsTest, GetNotFoundNamesTheId) {
  auto missing = store_->GetConcept("no-such-concept");
  EXPECT_THAT(missing, StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(missing.status().message(), HasSubstr("no-such-concept"));
}

TEST_F(ConceptsTest, ListIsMostMentionedFirst) {
  const Concept rare = MakeConcept("rare");
  const Concept common = MakeConcept("common");
  const Concept never = MakeConcept("never");
  for (int i = 0; i < 3; ++i) {
    const SavedMessage m = Save("s", "message " + std::to_string(i));
    MustLink(RelationType::kMentions, m.id, common.id);
    if (i == 0) MustLink(RelationType::kMentions, m.id, rare.id);
  }
  ASSERT_OK_AND_ASSIGN(auto listed, store_->ListConcepts(10));
  std::vector<std::string> names;
  for (const Concept& c : listed) names.push_back(c.name);
  EXPECT_THAT(names, ElementsAre("common", "rare", "never"));
  ASSERT_OK_AND_ASSIGN(auto one, store_->ListConcepts(1));
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].id, common.id);
  (void)never;
}

TEST_F(ConceptsTest, DetailsByCaseInsensitiveName) {
  const Concept python = MakeConcept("Python", "language");
  const Concept snake = MakeConcept("python", "animal");
  const Concept guido = MakeConcept("Guido", "person");
  std::vector<SavedMessage> messages;
  for (int i = 0; i < MemoryStore::kMaxDetailMentions + 5; ++i) {
    harness_.clock().AdvanceMillis(1000);
    messages.push_back(Save("s", "python talk " + std::to_string(i)));
    MustLink(RelationType::kMentions, messages.back().id, python.id, 0.8);
  }
  MustLink(RelationType::kMentions, messages[0].id, snake.id);
  const Relation created_by =
      MustLink(RelationType::kRelatesTo, python.id, guido.id, 0.9, "created_by");
  const Relation named_after = MustLink(RelationType::kRelatesTo, snake.id, python.id, 0.2);

  // No type given and two match: the most mentioned wins.
  ASSERT_OK_AND_ASSIGN(ConceptDetails d, store_->GetConceptDetails("PYTHON"));
  EXPECT_EQ(d.node.id, python.id);
  EXPECT_EQ(d.mention_count, MemoryStore::kMaxDetailMentions + 5);
  EXPECT_EQ(d.first_mention, messages.front().created_at);
  EXPECT_EQ(d.last_mention, messages.back().created_at);
  ASSERT_EQ(d.recent_mentions.size(), static_cast<size_t>(MemoryStore::kMaxDetailMentions));
  EXPECT_EQ(d.recent_mentions.front().id, messages.back().id);
  for (size_t i = 1; i < d.recent_mentions.size(); ++i) {
    EXPECT_GE(d.recent_mentions[i - 1].created_at, d.recent_mentions[i].created_at);
  }
  ASSERT_EQ(d.relations.size(), 2u);
  EXPECT_EQ(d.relations[0].id, created_by.id);
  EXPECT_EQ(d.relations[0].relationship_type, "created_by");
  EXPECT_DOUBLE_EQ(d.relations[0].strength, 0.9);
  EXPECT_EQ(d.relations[1].id, named_after.id);
  EXPECT_EQ(d.relations[1].relationship_type, "related");
  EXPECT_EQ(d.relations[1].to_id, python.id);

  // The type narrows.
  ASSERT_OK_AND_ASSIGN(ConceptDetails animal, store_->GetConceptDetails("Python", "animal"));
  EXPECT_EQ(animal.node.id, snake.id);
  EXPECT_EQ(animal.mention_count, 1);

  // A concept never mentioned.
  ASSERT_OK_AND_ASSIGN(ConceptDetails quiet, store_->GetConceptDetails("guido"));
  EXPECT_EQ(quiet.mention_count, 0);
  EXPECT_FALSE(quiet.first_mention.has_value());
  EXPECT_FALSE(quiet.last_mention.has_value());
  EXPECT_THAT(quiet.recent_mentions, IsEmpty());
  ASSERT_EQ(quiet.relations.size(), 1u);

  EXPECT_THAT(store_->GetConceptDetails("Python", "plant"), StatusIs(StatusCode::kNotFound));
  auto missing = store_->GetConceptDetails("Haskell");
  EXPECT_THAT(missing, StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(missing.status().message(), HasSubstr("Haskell"));
  EXPECT_THAT(store_->GetConceptDetails(""), StatusIs(StatusCode::kInvalidArgument));
}

TEST_F(ConceptsTest, EditRenamesAndRefusesToCollide) {
  const Concept a = MakeConcept("Lyon", "place");
  const Concept b = MakeConcept("Marseille", "place");

  ConceptEdit edit;
  edit.description = "a city";
  edit.confidence = 0.4;
  ASSERT_OK_AND_ASSIGN(Concept edited, store_->EditConcept(a.id, edit));
  EXPECT_EQ(edited.name, "Lyon");
  EXPECT_EQ(edited.description, "a city");
  EXPECT_DOUBLE_EQ(edited.confidence, 0.4);

  // Changing only the case of its own name is no collision.
  edit = {};
  edit.name = "LYON";
  ASSERT_OK_AND_ASSIGN(edited, store_->EditConcept(a.id, edit));
  EXPECT_EQ(edited.name, "LYON");
  EXPECT_EQ(edited.description, "a city");

  edit = {};
  edit.name = "marseille";
  EXPECT_THAT(store_->EditConcept(a.id, edit), StatusIs(StatusCode::kAlreadyExists));
  // A different type is a different key.
  edit.type = "team";
  ASSERT_OK_AND_ASSIGN(edited, store_->EditConcept(a.id, edit));
  EXPECT_EQ(edited.name, "marseille");
  EXPECT_EQ(edited.type, "team");
  // Moving the type onto an existing (name, type) collides too.
  edit = {};
  edit.type = "place";
  EXPECT_THAT(store_->EditConcept(a.id, edit), StatusIs(StatusCode::kAlreadyExists));
  ASSERT_OK_AND_ASSIGN(Concept unchanged, store_->GetConcept(b.id));
  EXPECT_EQ(unchanged.name, "Marseille");

  edit = {};
  edit.name = "";
  EXPECT_THAT(store_->EditConcept(a.id, edit), StatusIs(StatusCode::kInvalidArgument));
  edit = {};
  edit.confidence = 1.1;
  EXPECT_THAT(store_->EditConcept(a.id, edit), StatusIs(StatusCode::kInvalidArgument));
  edit = {};
  edit.description = "x";
  EXPECT_THAT(store_->EditConcept("no-such-concept", edit), StatusIs(StatusCode::kNotFound));
}

TEST_F(ConceptsTest, DeleteRemovesItsMentionsAndRelations) {
  const Concept a = MakeConcept("a");
  const Concept b = MakeConcept("b");
  const Concept c = MakeConcept("c");
  const SavedMessage m = Save("s", "about a and b");
  MustLink(RelationType::kMentions, m.id, a.id);
  MustLink(RelationType::kMentions, m.id, b.id);
  MustLink(RelationType::kRelatesTo, a.id, b.id);
  MustLink(RelationType::kRelatesTo, c.id, a.id);
  MustLink(RelationType::kRelatesTo, b.id, c.id);

  ASSERT_OK(store_->DeleteConcept(a.id));
  EXPECT_THAT(store_->GetConcept(a.id), StatusIs(StatusCode::kNotFound));
  EXPECT_EQ(CountRows(harness_.path(), "mentions"), 1);
  EXPECT_EQ(CountRows(harness_.path(), "relates_to"), 1);
  EXPECT_THAT(FindBrokenInvariants(harness_.path()), IsEmpty());
  EXPECT_THAT(store_->DeleteConcept(a.id), StatusIs(StatusCode::kNotFound));
}

// ---- Related concepts ----

class ConceptRelatedTest : public GraphStoreTest {
 protected:
  // A triangle a-b-c (a cycle), then a chain c -> d <- e -> f, and an unrelated g.
  void SetUp() override {
    GraphStoreTest::SetUp();
    for (const char* name : {"a", "b", "c", "d", "e", "f", "g"}) ids_[name] = MakeConcept(name).id;
    MustLink(RelationType::kRelatesTo, ids_["a"], ids_["b"]);
    MustLink(RelationType::kRelatesTo, ids_["b"], ids_["c"]);
    MustLink(RelationType::kRelatesTo, ids_["c"], ids_["a"]);
    MustLink(RelationType::kRelatesTo, ids_["a"], ids_["b"], 0.5, "part_of");  // Parallel edge.
    MustLink(RelationType::kRelatesTo, ids_["c"], ids_["d"]);
    MustLink(RelationType::kRelatesTo, ids_["e"], ids_["d"]);
    MustLink(RelationType::kRelatesTo, ids_["e"], ids_["f"]);
  }

  std::vector<std::pair<std::string, int>> Walk(const std::string& start, int depth) {
    auto related = store_->RelatedConcepts(ids_[start], depth);
    EXPECT_THAT(related, IsOk());
    std::vector<std::pair<std::string, int>> out;
    if (related.ok()) {
      for (const RelatedConcept& r : *related) out.emplace_back(r.node.name, r.depth);
    }
    return out;
  }

  std::map<std::string, std::string> ids_;
};

TEST_F(ConceptRelatedTest, DepthOneIsTheNeighboursInBothDirections) {
  EXPECT_THAT(Walk("a", 1), ElementsAre(Pair("b", 1), Pair("c", 1)));
  EXPECT_THAT(Walk("d", 1), ElementsAre(Pair("c", 1), Pair("e", 1)));
}

TEST_F(ConceptRelatedTest, DeeperWalksReportTheShortestDepthOnce) {
  EXPECT_THAT(Walk("a", 2), ElementsAre(Pair("b", 1), Pair("c", 1), Pair("d", 2)));
  EXPECT_THAT(Walk("a", 3), ElementsAre(Pair("b", 1), Pair("c", 1), Pair("d", 2), Pair("e", 3)));
  EXPECT_THAT(Walk("a", 5),
              ElementsAre(Pair("b", 1), Pair("c", 1), Pair("d", 2), Pair("e", 3), Pair("f", 4)));
  EXPECT_THAT(Walk("f", 5),
              ElementsAre(Pair("e", 1), Pair("d", 2), Pair("c", 3), Pair("a", 4), Pair("b", 4)));
}

TEST_F(ConceptRelatedTest, IsolatedConceptHasNoRelated) { EXPECT_THAT(Walk("g", 5), IsEmpty()); }

TEST_F(ConceptRelatedTest, RejectsBadDepthAndMissingStart) {
  for (int depth : {0, -1, MemoryStore::kMaxRelatedDepth + 1, 100}) {
    EXPECT_THAT(store_->RelatedConcepts(ids_["a"], depth), StatusIs(StatusCode::kInvalidArgument))
        << depth;
  }
  auto missing = store_->RelatedConcepts("no-such-concept", 2);
  EXPECT_THAT(missing, StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(missing.status().message(), HasSubstr("no-such-concept"));
}

TEST_F(ConceptRelatedTest, DenseCyclicGraphTerminates) {
  // A complete graph on 12 concepts: every walk is full of cycles.
  std::vector<std::string> k;
  for (int i = 0; i < 12; ++i) k.push_back(MakeConcept("k" + std::to_string(i)).id);
  for (size_t i = 0; i < k.size(); ++i) {
    for (size_t j = 0; j < k.size(); ++j) {
      if (i != j) MustLink(RelationType::kRelatesTo, k[i], k[j]);
    }
  }
  ASSERT_OK_AND_ASSIGN(auto related, store_->RelatedConcepts(k[0], MemoryStore::kMaxRelatedDepth));
  EXPECT_EQ(related.size(), 11u);
  for (const RelatedConcept& r : related) EXPECT_EQ(r.depth, 1);
}

// ---- Topics ----

class GraphTopicsTest : public GraphStoreTest {};

TEST_F(GraphTopicsTest, UpsertByCaseInsensitiveNameKeepsWhatIsNotGiven) {
  NewTopic input;
  input.name = "Cooking";
  input.description = "recipes";
  input.category = "hobby";
  ASSERT_OK_AND_ASSIGN(Topic created, store_->UpsertTopic(input));
  EXPECT_EQ(created.created_at, harness_.clock().NowMillis());

  NewTopic again;
  again.name = "cooking";
  again.description = "recipes and techniques";
  ASSERT_OK_AND_ASSIGN(Topic updated, store_->UpsertTopic(again));
  EXPECT_EQ(updated.id, created.id);
  EXPECT_EQ(updated.name, "Cooking");
  EXPECT_EQ(updated.description, "recipes and techniques");
  EXPECT_EQ(updated.category, "hobby");
  EXPECT_EQ(CountRows(harness_.path(), "topics"), 1);
}

TEST_F(GraphTopicsTest, ValidationAndExplicitIds) {
  NewTopic input;
  EXPECT_THAT(store_->UpsertTopic(input), StatusIs(StatusCode::kInvalidArgument));
  input.name = "\xff";
  EXPECT_THAT(store_->UpsertTopic(input), StatusIs(StatusCode::kInvalidArgument));
  input.name = "music";
  input.category = "\xc0\x80";  // Overlong NUL.
  EXPECT_THAT(store_->UpsertTopic(input), StatusIs(StatusCode::kInvalidArgument));
  input.category = "";
  input.id = "topic-music";
  ASSERT_OK_AND_ASSIGN(Topic t, store_->UpsertTopic(input));
  EXPECT_EQ(t.id, "topic-music");
  // The same id for the same topic is an idempotent upsert.
  input.name = "Music";
  input.description = "songs";
  ASSERT_OK_AND_ASSIGN(Topic same, store_->UpsertTopic(input));
  EXPECT_EQ(same.id, "topic-music");
  EXPECT_EQ(same.description, "songs");
  input.name = "art";
  EXPECT_THAT(store_->UpsertTopic(input), StatusIs(StatusCode::kAlreadyExists));
  EXPECT_EQ(CountRows(harness_.path(), "topics"), 1);
}

TEST_F(GraphTopicsTest, ListByNameAndDelete) {
  const Topic zoo = MakeTopic("zoo");
  MakeTopic("Art");
  MakeTopic("music");
  ASSERT_OK_AND_ASSIGN(auto topics, store_->ListTopics(10));
  std::vector<std::string> names;
  for (const Topic& t : topics) names.push_back(t.name);
  EXPECT_THAT(names, ElementsAre("Art", "music", "zoo"));

  const SavedMessage m = Save("s", "let's talk about animals");
  MustLink(RelationType::kDiscusses, m.session_id, zoo.id, 0.4);
  ASSERT_OK(store_->DeleteTopic(zoo.id));
  EXPECT_EQ(CountRows(harness_.path(), "discusses"), 0);
  EXPECT_THAT(FindBrokenInvariants(harness_.path()), IsEmpty());
  EXPECT_THAT(store_->DeleteTopic(zoo.id), StatusIs(StatusCode::kNotFound));
  ASSERT_OK_AND_ASSIGN(topics, store_->ListTopics(10));
  EXPECT_EQ(topics.size(), 2u);
}

// ---- Relations ----

class GraphRelationsTest : public GraphStoreTest {
 protected:
  void SetUp() override {
    GraphStoreTest::SetUp();
    first_ = Save("s1", "I love Rust");
    harness_.clock().AdvanceMillis(2000);
    second_ = Save("s1", "Rust is fast");
    other_session_ = Save("s2", "elsewhere");
    rust_ = MakeConcept("Rust", "language");
    speed_ = MakeConcept("speed", "quality");
    topic_ = MakeTopic("programming");
    memory_ = MakeMemory("likes Rust");
  }

  SavedMessage first_, second_, other_session_;
  Concept rust_, speed_;
  Topic topic_;
  Memory memory_;
};

TEST_F(GraphRelationsTest, AddAndGetEveryWritableType) {
  struct Case {
    RelationType type;
    std::string from, to;
    std::string prefix;
  };
  const std::vector<Case> cases = {
      {RelationType::kMentions, first_.id, rust_.id, "mentions:"},
      {RelationType::kRelatesTo, rust_.id, speed_.id, "relates_to:"},
      {RelationType::kDiscusses, first_.session_id, topic_.id, "discusses:"},
      {RelationType::kLearns, first_.session_id, memory_.id, "learns:"},
      {RelationType::kRespondsTo, other_session_.id, first_.id, "responds_to:"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(RelationTypeName(c.type));
    ASSERT_OK_AND_ASSIGN(Relation added, Link(c.type, c.from, c.to, 0.75));
    EXPECT_THAT(added.id, ::testing::StartsWith(c.prefix));
    EXPECT_EQ(added.type, c.type);
    EXPECT_EQ(added.from_id, c.from);
    EXPECT_EQ(added.to_id, c.to);
    ASSERT_OK_AND_ASSIGN(Relation got, store_->GetRelation(added.id));
    EXPECT_EQ(got.id, added.id);
    EXPECT_EQ(got.type, c.type);
    EXPECT_EQ(got.from_id, c.from);
    EXPECT_EQ(got.to_id, c.to);
    if (c.type != RelationType::kRespondsTo) {
      EXPECT_DOUBLE_EQ(got.strength, 0.75);
    }
  }
  ASSERT_OK_AND_ASSIGN(Relation related, store_->GetRelation("relates_to:1"));
  EXPECT_EQ(related.relationship_type, "related");  // The default for an empty label.
  EXPECT_THAT(FindBrokenInvariants(harness_.path()), IsEmpty());
}

TEST_F(GraphRelationsTest, PositionPropertiesRoundTrip) {
  Relation r;
  r.type = RelationType::kRespondsTo;
  r.from_id = other_session_.id;
  r.to_id = first_.id;
  r.position = 42;
  ASSERT_OK_AND_ASSIGN(Relation added, store_->AddRelation(r));
  EXPECT_EQ(added.position, 42);
  r.position = -1;
  EXPECT_THAT(store_->AddRelation(r), StatusIs(StatusCode::kInvalidArgument));
}

TEST_F(GraphRelationsTest, ExistingNaturalKeyUpdatesPropertiesAndKeepsTheId) {
  ASSERT_OK_AND_ASSIGN(Relation first, Link(RelationType::kMentions, first_.id, rust_.id, 0.5));
  ASSERT_OK_AND_ASSIGN(Relation again, Link(RelationType::kMentions, first_.id, rust_.id, 0.9));
  EXPECT_EQ(again.id, first.id);
  EXPECT_DOUBLE_EQ(again.strength, 0.9);
  ASSERT_OK_AND_ASSIGN(Relation got, store_->GetRelation(first.id));
  EXPECT_DOUBLE_EQ(got.strength, 0.9);
  EXPECT_EQ(CountRows(harness_.path(), "mentions"), 1);

  // RELATES_TO's label is part of its key: another label is another edge.
  ASSERT_OK_AND_ASSIGN(Relation r1, Link(RelationType::kRelatesTo, rust_.id, speed_.id, 0.3));
  ASSERT_OK_AND_ASSIGN(Relation r2, Link(RelationType::kRelatesTo, rust_.id, speed_.id, 0.6));
  ASSERT_OK_AND_ASSIGN(Relation r3,
                       Link(RelationType::kRelatesTo, rust_.id, speed_.id, 0.8, "is_known_for"));
  EXPECT_EQ(r1.id, r2.id);
  EXPECT_NE(r1.id, r3.id);
  EXPECT_DOUBLE_EQ(r2.strength, 0.6);
  EXPECT_EQ(r3.relationship_type, "is_known_for");
  EXPECT_EQ(CountRows(harness_.path(), "relates_to"), 2);
}

TEST_F(GraphRelationsTest, EndsOfTheWrongTypeAreInvalidArgument) {
  // A concept where a message belongs, a memory where a topic belongs, ...
  auto r = Link(RelationType::kMentions, rust_.id, speed_.id);
  EXPECT_THAT(r, StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(r.status().message(), HasSubstr(rust_.id));
  EXPECT_THAT(Link(RelationType::kDiscusses, first_.session_id, memory_.id),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(Link(RelationType::kLearns, first_.id, memory_.id),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(Link(RelationType::kRelatesTo, rust_.id, topic_.id),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(Link(RelationType::kSent, first_.id, "user-alice"),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_EQ(CountEdges(harness_.path()), 3 + 3 + 1);  // Only SaveMessage's SENT/PART_OF/RESPONDS_TO.
}

TEST_F(GraphRelationsTest, MissingEndsAreNotFoundNamingTheEnd) {
  auto r = Link(RelationType::kMentions, "ghost-message", rust_.id);
  EXPECT_THAT(r, StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(r.status().message(), HasSubstr("ghost-message"));
  r = Link(RelationType::kMentions, first_.id, "ghost-concept");
  EXPECT_THAT(r, StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(r.status().message(), HasSubstr("ghost-concept"));
  EXPECT_THAT(Link(RelationType::kLearns, "ghost-session", memory_.id),
              StatusIs(StatusCode::kNotFound));
  EXPECT_EQ(CountRows(harness_.path(), "mentions"), 0);
  EXPECT_EQ(CountRows(harness_.path(), "learns"), 0);
}

TEST_F(GraphRelationsTest, BadIdsAndPropertiesAreInvalidArgument) {
  EXPECT_THAT(Link(RelationType::kMentions, "", rust_.id), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(Link(RelationType::kMentions, first_.id, ""), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(Link(RelationType::kMentions, "bad \xff", rust_.id),
              StatusIs(StatusCode::kInvalidArgument));
  for (double confidence : {-0.1, 1.1, kNaN}) {
    EXPECT_THAT(Link(RelationType::kMentions, first_.id, rust_.id, confidence),
                StatusIs(StatusCode::kInvalidArgument));
  }
  EXPECT_THAT(Link(RelationType::kRelatesTo, rust_.id, speed_.id, kInf),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(Link(RelationType::kRelatesTo, rust_.id, rust_.id),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(Link(RelationType::kRespondsTo, first_.id, first_.id),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(Link(static_cast<RelationType>(99), first_.id, rust_.id),
              StatusIs(StatusCode::kInvalidArgument));
}

TEST_F(GraphRelationsTest, SentAndPartOfMustAgreeWithTheMessage) {
  // The message's own PART_OF edge can have its position updated...
  Relation part;
  part.type = RelationType::kPartOf;
  part.from_id = second_.id;
  part.to_id = "s1";
  part.position = 7;
  ASSERT_OK_AND_ASSIGN(Relation updated, store_->AddRelation(part));
  EXPECT_EQ(updated.position, 7);
  EXPECT_EQ(CountRows(harness_.path(), "part_of"), 3);
  // ... but a message belongs to one session and has one sender.
  part.to_id = "s2";
  EXPECT_THAT(store_->AddRelation(part), StatusIs(StatusCode::kInvalidArgument));
  Save("s1", "from bob", "user-bob");
  EXPECT_THAT(Link(RelationType::kSent, "user-bob", first_.id),
              StatusIs(StatusCode::kInvalidArgument));
  ASSERT_OK_AND_ASSIGN(Relation sent, Link(RelationType::kSent, "user-alice", first_.id, 0.5));
  EXPECT_DOUBLE_EQ(sent.strength, 0.5);

  // They go with the message, never alone.
  EXPECT_THAT(store_->DeleteRelation(updated.id), StatusIs(StatusCode::kFailedPrecondition));
  EXPECT_THAT(store_->DeleteRelation(sent.id), StatusIs(StatusCode::kFailedPrecondition));
  EXPECT_THAT(FindBrokenInvariants(harness_.path()), IsEmpty());
}

TEST_F(GraphRelationsTest, MalformedIdsAreInvalidArgument) {
  for (const char* id : {"", "mentions", "mentions:", ":1", "mentions:abc", "mentions:-1",
                         "mentions:+1", "mentions:01", "mentions:1x", "mentions: 1", "MENTIONS:1",
                         "nope:1", "mentions:99999999999999999999", "mentions:1:2"}) {
    EXPECT_THAT(store_->GetRelation(id), StatusIs(StatusCode::kInvalidArgument)) << id;
    EXPECT_THAT(store_->DeleteRelation(id), StatusIs(StatusCode::kInvalidArgument)) << id;
  }
}

TEST_F(GraphRelationsTest, MissingIdsAreNotFound) {
  auto got = store_->GetRelation("mentions:999");
  EXPECT_THAT(got, StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(got.status().message(), HasSubstr("mentions:999"));
  EXPECT_THAT(store_->DeleteRelation("learns:0"), StatusIs(StatusCode::kNotFound));
}

TEST_F(GraphRelationsTest, DeleteRemovesOnlyThatEdge) {
  ASSERT_OK_AND_ASSIGN(Relation a, Link(RelationType::kMentions, first_.id, rust_.id));
  ASSERT_OK_AND_ASSIGN(Relation b, Link(RelationType::kMentions, second_.id, rust_.id));
  ASSERT_OK(store_->DeleteRelation(a.id));
  EXPECT_THAT(store_->GetRelation(a.id), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(store_->GetRelation(b.id), IsOk());
  EXPECT_THAT(store_->DeleteRelation(a.id), StatusIs(StatusCode::kNotFound));
  // A SaveMessage-made RESPONDS_TO edge is an ordinary edge.
  ASSERT_OK_AND_ASSIGN(Relation responds, store_->GetRelation("responds_to:1"));
  EXPECT_EQ(responds.from_id, second_.id);
  EXPECT_EQ(responds.position, 2);  // delay_seconds
  ASSERT_OK(store_->DeleteRelation(responds.id));
  EXPECT_THAT(FindBrokenInvariants(harness_.path()), IsEmpty());
}

TEST_F(GraphRelationsTest, WritesJoinABatchAsSavepoints) {
  ASSERT_OK(store_->BeginBatch());
  ASSERT_THAT(Link(RelationType::kMentions, first_.id, rust_.id), IsOk());
  EXPECT_THAT(Link(RelationType::kMentions, first_.id, "ghost"), StatusIs(StatusCode::kNotFound));
  ASSERT_THAT(MakeMemory("in batch").id, ::testing::Not(IsEmpty()));
  ASSERT_OK(store_->CommitBatch());
  EXPECT_EQ(CountRows(harness_.path(), "mentions"), 1);
  EXPECT_EQ(CountRows(harness_.path(), "memories"), 2);
}

// ---- Cascades ----

class GraphCascadeTest : public GraphStoreTest {
 protected:
  void SetUp() override {
    GraphStoreTest::SetUp();
    m1_ = Save("s1", "hello Rust");
    m2_ = Save("s1", "Rust and Go");
    m3_ = Save("s2", "Go only");
    rust_ = MakeConcept("Rust");
    go_ = MakeConcept("Go");
    topic_ = MakeTopic("languages");
    memory_ = MakeMemory("compares languages");
    MustLink(RelationType::kMentions, m1_.id, rust_.id);
    MustLink(RelationType::kMentions, m2_.id, rust_.id);
    MustLink(RelationType::kMentions, m2_.id, go_.id);
    MustLink(RelationType::kMentions, m3_.id, go_.id);
    MustLink(RelationType::kRelatesTo, rust_.id, go_.id);
    MustLink(RelationType::kDiscusses, "s1", topic_.id);
    MustLink(RelationType::kDiscusses, "s2", topic_.id);
    MustLink(RelationType::kLearns, "s1", memory_.id);
    ASSERT_THAT(FindBrokenInvariants(harness_.path()), IsEmpty());
  }

  SavedMessage m1_, m2_, m3_;
  Concept rust_, go_;
  Topic topic_;
  Memory memory_;
};

TEST_F(GraphCascadeTest, DeletingAMessageRemovesItsEdges) {
  ASSERT_OK(store_->DeleteMessage(m2_.id));
  EXPECT_EQ(CountRows(harness_.path(), "mentions"), 2);
  EXPECT_EQ(CountRows(harness_.path(), "responds_to"), 0);
  EXPECT_THAT(FindBrokenInvariants(harness_.path()), IsEmpty());
}

TEST_F(GraphCascadeTest, DeletingASessionRemovesItsMessagesAndAllTheirEdges) {
  ASSERT_OK(store_->DeleteSession("s1"));
  EXPECT_EQ(CountRows(harness_.path(), "mentions"), 1);
  EXPECT_EQ(CountRows(harness_.path(), "discusses"), 1);
  EXPECT_EQ(CountRows(harness_.path(), "learns"), 0);
  EXPECT_EQ(CountRows(harness_.path(), "part_of"), 1);
  EXPECT_THAT(FindBrokenInvariants(harness_.path()), IsEmpty());
  // The concepts, topic and memory outlive the session.
  EXPECT_THAT(store_->GetConcept(rust_.id), IsOk());
  EXPECT_THAT(store_->GetMemory(memory_.id), IsOk());
}

TEST_F(GraphCascadeTest, DeletingEachKindOfNodeLeavesNoDanglingEdge) {
  ASSERT_OK(store_->DeleteConcept(rust_.id));
  EXPECT_EQ(CountRows(harness_.path(), "relates_to"), 0);
  EXPECT_THAT(FindBrokenInvariants(harness_.path()), IsEmpty());
  ASSERT_OK(store_->DeleteTopic(topic_.id));
  EXPECT_EQ(CountRows(harness_.path(), "discusses"), 0);
  EXPECT_THAT(FindBrokenInvariants(harness_.path()), IsEmpty());
  ASSERT_OK(store_->DeleteMemory(memory_.id));
  EXPECT_EQ(CountRows(harness_.path(), "learns"), 0);
  EXPECT_THAT(FindBrokenInvariants(harness_.path()), IsEmpty());
  ASSERT_OK(store_->DeleteMessage(m3_.id));
  ASSERT_OK(store_->DeleteSession("s1"));
  EXPECT_EQ(CountEdges(harness_.path()), 0);
  EXPECT_THAT(FindBrokenInvariants(harness_.path()), IsEmpty());
}

// ---- Graph view ----

class GraphViewTest : public GraphStoreTest {
 protected:
  // Two sessions by two users with replies, concepts with mentions and a cycle, topics, memories.
  void BuildGraph() {
    std::vector<std::string> concepts;
    for (int i = 0; i < 8; ++i) concepts.push_back(MakeConcept("c" + std::to_string(i)).id);
    for (size_t i = 0; i < concepts.size(); ++i) {
      MustLink(RelationType::kRelatesTo, concepts[i], concepts[(i + 1) % concepts.size()]);
    }
    const Topic t1 = MakeTopic("t1");
    const Topic t2 = MakeTopic("t2");
    std::vector<std::string> memories;
    for (int i = 0; i < 4; ++i) memories.push_back(MakeMemory("memory " + std::to_string(i)).id);
    for (int i = 0; i < 30; ++i) {
      harness_.clock().AdvanceMillis(100);
      const std::string session = i % 2 == 0 ? "s-even" : "s-odd";
      const SavedMessage m = Save(session, "message " + std::to_string(i),
                                  i % 3 == 0 ? "user-bob" : "user-alice");
      MustLink(RelationType::kMentions, m.id, concepts[static_cast<size_t>(i) % concepts.size()]);
    }
    MustLink(RelationType::kDiscusses, "s-even", t1.id);
    MustLink(RelationType::kDiscusses, "s-odd", t2.id);
    MustLink(RelationType::kLearns, "s-even", memories[0]);
    MustLink(RelationType::kLearns, "s-odd", memories[1]);
  }

  // Every edge joins two listed nodes of the types its relation requires; no duplicates.
  void ExpectClosed(const GraphView& view) {
    std::set<std::pair<NodeType, std::string>> nodes;
    for (const GraphNode& n : view.nodes) {
      EXPECT_TRUE(nodes.emplace(n.type, n.id).second) << "duplicate node " << n.id;
      EXPECT_TRUE(IsValidUtf8(n.label)) << n.id;
    }
    std::set<std::string> edge_ids;
    for (const GraphEdge& e : view.edges) {
      EXPECT_TRUE(edge_ids.insert(e.id).second) << "duplicate edge " << e.id;
      EXPECT_TRUE(nodes.contains({RelationFromType(e.type), e.from_id})) << e.id;
      EXPECT_TRUE(nodes.contains({RelationToType(e.type), e.to_id})) << e.id;
    }
  }
};

TEST_F(GraphViewTest, EmptyStoreIsAnEmptyView) {
  ASSERT_OK_AND_ASSIGN(GraphView view, store_->Graph(200));
  EXPECT_THAT(view.nodes, IsEmpty());
  EXPECT_THAT(view.edges, IsEmpty());
}

TEST_F(GraphViewTest, EveryLimitGivesAnEdgeClosedViewWithinTheLimit) {
  BuildGraph();
  for (int limit : {-5, 0, 1, 2, 3, 4, 5, 7, 10, 13, 20, 33, 50}) {
    SCOPED_TRACE(limit);
    ASSERT_OK_AND_ASSIGN(GraphView view, store_->Graph(limit));
    EXPECT_LE(view.nodes.size(), static_cast<size_t>(std::max(limit, 1)));
    // The budget is filled whenever there is enough to fill it (48 nodes in all).
    EXPECT_EQ(view.nodes.size(), std::min<size_t>(static_cast<size_t>(std::max(limit, 1)), 48u));
    ExpectClosed(view);
  }
}

TEST_F(GraphViewTest, LargeLimitShowsEverythingAndEveryEdge) {
  BuildGraph();
  ASSERT_OK_AND_ASSIGN(GraphView view, store_->Graph(MemoryStore::kMaxGraphNodes + 100));
  // 8 concepts, 2 topics, 4 memories, 30 messages, 2 sessions, 2 users.
  EXPECT_EQ(view.nodes.size(), 48u);
  EXPECT_EQ(static_cast<int64_t>(view.edges.size()), CountEdges(harness_.path()));
  ExpectClosed(view);
  ASSERT_OK_AND_ASSIGN(Relation any, store_->GetRelation(view.edges.front().id));
  EXPECT_EQ(any.from_id, view.edges.front().from_id);
}

TEST_F(GraphViewTest, SmallLimitsStillMixTheKinds) {
  BuildGraph();
  ASSERT_OK_AND_ASSIGN(GraphView view, store_->Graph(20));
  std::set<NodeType> kinds;
  for (const GraphNode& n : view.nodes) kinds.insert(n.type);
  EXPECT_THAT(kinds, UnorderedElementsAre(NodeType::kMessage, NodeType::kSession, NodeType::kUser,
                                          NodeType::kConcept, NodeType::kTopic,
                                          NodeType::kMemory));
  // The newest message is in, with its session and sender, and the edges between them.
  ASSERT_OK_AND_ASSIGN(auto recent, store_->Summary(1));
  const std::string newest = recent.recent_messages.at(0).id;
  int newest_edges = 0;
  for (const GraphEdge& e : view.edges) {
    if (e.from_id == newest || e.to_id == newest) ++newest_edges;
  }
  EXPECT_GE(newest_edges, 2);  // SENT and PART_OF.
  ExpectClosed(view);
}

TEST_F(GraphViewTest, LabelsAreShortAndCutOnCharacters) {
  std::string long_text;
  for (int i = 0; i < 100; ++i) long_text += "é";
  Save("s", long_text + "\nsecond line");
  NewConcept c;
  c.name = "日本語";
  ASSERT_THAT(store_->UpsertConcept(c), IsOk());
  ASSERT_OK_AND_ASSIGN(GraphView view, store_->Graph(10));
  bool saw_message = false;
  for (const GraphNode& n : view.nodes) {
    EXPECT_TRUE(IsValidUtf8(n.label));
    if (n.type == NodeType::kMessage) {
      saw_message = true;
      EXPECT_EQ(CountCodePoints(n.label), 61u);  // 60 characters and the ellipsis.
      EXPECT_EQ(n.label.substr(n.label.size() - 3), "…");
    }
    if (n.type == NodeType::kConcept) {
      EXPECT_EQ(n.label, "日本語");
    }
    if (n.type == NodeType::kUser) {
      EXPECT_EQ(n.label, "user-alice");  // No name: the id.
    }
  }
  EXPECT_TRUE(saw_message);
}

// ---- Statistics and summary ----

class GraphStatisticsTest : public GraphStoreTest {};

TEST_F(GraphStatisticsTest, EmptyStoreCountsZero) {
  ASSERT_OK_AND_ASSIGN(StoreStatistics stats, store_->Statistics());
  EXPECT_EQ(stats.users, 0);
  EXPECT_EQ(stats.sessions, 0);
  EXPECT_EQ(stats.messages, 0);
  EXPECT_EQ(stats.relations, 0);
  EXPECT_EQ(stats.vectors, 0);
  EXPECT_GT(stats.db_bytes, 0);
}

TEST_F(GraphStatisticsTest, CountsEveryKind) {
  const SavedMessage a = Save("s1", "one");
  Save("s1", "two", "user-bob");
  Save("s2", "three");
  const Concept c = MakeConcept("c");
  MakeConcept("d");
  MakeTopic("t");
  MakeMemory("m");
  MustLink(RelationType::kMentions, a.id, c.id);

  ASSERT_OK_AND_ASSIGN(StoreStatistics stats, store_->Statistics());
  EXPECT_EQ(stats.users, 2);
  EXPECT_EQ(stats.sessions, 2);
  EXPECT_EQ(stats.messages, 3);
  EXPECT_EQ(stats.memories, 1);
  EXPECT_EQ(stats.concepts, 2);
  EXPECT_EQ(stats.topics, 1);
  EXPECT_EQ(stats.relations, CountEdges(harness_.path()));
  EXPECT_EQ(stats.relations, 3 + 3 + 1 + 1);  // SENT, PART_OF, RESPONDS_TO, MENTIONS.
  EXPECT_EQ(stats.vectors, 0);
  ASSERT_OK_AND_ASSIGN(StorageInfo storage, store_->Storage());
  EXPECT_GE(stats.db_bytes, storage.page_count * storage.page_size);
}

TEST_F(GraphStatisticsTest, SummaryListsRecentSessionsAndTopConcepts) {
  std::vector<SavedMessage> saved;
  for (int i = 0; i < 5; ++i) {
    harness_.clock().AdvanceMillis(1000);
    saved.push_back(Save(i < 3 ? "old" : "new", "m" + std::to_string(i)));
  }
  std::vector<Concept> concepts;
  for (int i = 0; i < 12; ++i) concepts.push_back(MakeConcept("k" + std::to_string(i)));
  for (size_t i = 0; i < 3; ++i) MustLink(RelationType::kMentions, saved[i].id, concepts[5].id);
  MustLink(RelationType::kMentions, saved[0].id, concepts[7].id);

  ASSERT_OK_AND_ASSIGN(StoreSummary summary, store_->Summary(2));
  EXPECT_EQ(summary.statistics.messages, 5);
  EXPECT_EQ(summary.statistics.concepts, 12);
  ASSERT_EQ(summary.recent_messages.size(), 2u);
  EXPECT_EQ(summary.recent_messages[0].content, "m4");
  EXPECT_EQ(summary.recent_messages[1].content, "m3");
  ASSERT_EQ(summary.sessions.size(), 2u);
  EXPECT_EQ(summary.sessions[0].id, "new");
  EXPECT_EQ(summary.sessions[1].id, "old");
  ASSERT_EQ(summary.top_concepts.size(), 10u);
  EXPECT_EQ(summary.top_concepts[0].node.id, concepts[5].id);
  EXPECT_EQ(summary.top_concepts[0].mentions, 3);
  EXPECT_EQ(summary.top_concepts[1].node.id, concepts[7].id);
  EXPECT_EQ(summary.top_concepts[1].mentions, 1);
  EXPECT_EQ(summary.top_concepts[2].mentions, 0);

  ASSERT_OK_AND_ASSIGN(summary, store_->Summary(0));
  EXPECT_EQ(summary.recent_messages.size(), 1u);
  ASSERT_OK_AND_ASSIGN(summary, store_->Summary(1'000'000));
  EXPECT_EQ(summary.recent_messages.size(), 5u);
}

TEST_F(GraphStatisticsTest, SummaryClampsRecentMessagesAndSessions) {
  for (int i = 0; i < 130; ++i) Save("s" + std::to_string(i % 25), "m" + std::to_string(i));
  ASSERT_OK_AND_ASSIGN(StoreSummary summary, store_->Summary(500));
  EXPECT_EQ(summary.recent_messages.size(), 100u);
  EXPECT_EQ(summary.recent_messages.front().content, "m129");
  EXPECT_EQ(summary.sessions.size(), 20u);
  EXPECT_EQ(summary.statistics.sessions, 25);
  EXPECT_EQ(summary.statistics.messages, 130);
}

}  // namespace
}  // namespace locrit

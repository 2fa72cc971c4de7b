// Keyword search: the safe query builder (table-driven), bm25 ranking, snippets, session and role
// filters, accent folding, hostile input that must never be a syntax error, and the FTS indexes
// following every edit and delete. Memories and concepts are written with raw SQL over a separate
// connection, so these tests depend only on the schema, not on the memory/concept API.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <memory>
#include <string>
#include <vector>

#include "store/internal/fts_query.h"
#include "store/memory_store.h"
#include "tests/support/matchers.h"
#include "tests/support/raw_sql.h"
#include "tests/support/store_fixture.h"

namespace locrit {
namespace {

using ::locrit::store_internal::BuildFtsQuery;
using ::locrit::store_internal::ExtractSearchTerms;
using ::locrit::store_internal::QuoteFtsString;
using ::locrit::testing::FindBrokenInvariants;
using ::locrit::testing::IsOk;
using ::locrit::testing::RawSql;
using ::locrit::testing::StoreHarness;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;
using ::testing::UnorderedElementsAre;

constexpr size_t kTerms = MemoryStore::kMaxSearchTerms;

// ---- The query builder (pure) ----

struct QueryCase {
  std::string text;
  std::string expected;
};

TEST(FtsQueryTest, BuildsQuotedOrOfTerms) {
  const std::vector<QueryCase> cases = {
      {"hello world", R"("hello" OR "world")"},
      {"", ""},
      {" \t\r\n ", ""},
      {"!?.,;:()[]{}*^+-", ""},
      {R"(say "hi")", R"("say" OR "hi")"},
      {R"("unterminated)", R"("unterminated")"},
      {"AND", R"("AND")"},
      {"OR NOT", R"("OR" OR "NOT")"},
      {"NEAR(a b, 2)", R"("NEAR" OR "a" OR "b" OR "2")"},
      {"a* ^x -y +z", R"("a" OR "x" OR "y" OR "z")"},
      {"col:val {a b}:c", R"("col" OR "val" OR "a" OR "b" OR "c")"},
      {"snake_case", R"("snake" OR "case")"},
      {"Hello hello HELLO", R"("Hello")"},
      {"éléphant rose", R"("éléphant" OR "rose")"},
      {"Größe straße", R"("Größe" OR "straße")"},
      {"l’éléphant", R"("l" OR "éléphant")"},
      {"« bonjour »", R"("bonjour")"},
      {"fin…début", R"("fin" OR "début")"},
      {"😀 chat 🐈‍⬛", R"("chat")"},
      {"日本語 テキスト", R"("日本語" OR "テキスト")"},
      {std::string("nul\0byte", 8), R"("nul" OR "byte")"},
      {"\xff\xfe"
       "abc\x80",
       R"("abc")"},
      {"caf\xc3", R"("caf")"},
      {"\xed\xa0\x80surrogate", R"("surrogate")"},
      {"\xc0\xafoverlong", R"("overlong")"},
  };
  for (const QueryCase& c : cases) {
    EXPECT_EQ(BuildFtsQuery(c.text, kTerms), c.expected) << "text: " << c.text;
  }
}

TEST(FtsQueryTest, QuotesDoubleInnerQuotes) {
  EXPECT_EQ(QuoteFtsString("plain"), R"("plain")");
  EXPECT_EQ(QuoteFtsString(R"(a"b)"), R"("a""b")");
  EXPECT_EQ(QuoteFtsString(R"(")"), R"("""")");
  EXPECT_EQ(QuoteFtsString(""), R"("")");
}

TEST(FtsQueryTest, CapsTheNumberOfTerms) {
  std::string text;
  for (int i = 0; i < 100; ++i) text += "w" + std::to_string(i) + " ";
  const std::vector<std::string> terms = ExtractSearchTerms(text, kTerms);
  ASSERT_THAT(terms, SizeIs(kTerms));
  EXPECT_EQ(terms.front(), "w0");
  EXPECT_EQ(terms.back(), "w" + std::to_string(kTerms - 1));
  // Repeats do not use up the budget.
  EXPECT_THAT(ExtractSearchTerms("a a a a a b", 2), ElementsAre("a", "b"));
}

TEST(FtsQueryTest, CutsLongTermsOnACharacterBoundary) {
  EXPECT_EQ(ExtractSearchTerms(std::string(200, 'x'), kTerms).at(0), std::string(64, 'x'));
  std::string accents;
  for (int i = 0; i < 100; ++i) accents += "é";  // Two bytes each.
  // "a" + 31 × "é" is 63 bytes: a 32nd "é" would not fit whole.
  const std::string cut = ExtractSearchTerms("a" + accents, kTerms).at(0);
  EXPECT_EQ(cut.size(), 63u);
  EXPECT_EQ(cut.substr(0, 3), "aé");
  EXPECT_EQ(cut.substr(61), "é");
  // The rest of a cut word is dropped, not taken as another term.
  EXPECT_THAT(ExtractSearchTerms(std::string(100, 'y') + " z", kTerms),
              ElementsAre(std::string(64, 'y'), "z"));
}

TEST(FtsQueryTest, HandlesAMegabyte) {
  std::string big;
  while (big.size() < (1u << 20)) big += "NEAR(\"x\" OR y*) AND -z ^col:val ";
  const std::string query = BuildFtsQuery(big, kTerms);
  EXPECT_EQ(query, R"("NEAR" OR "x" OR "OR" OR "y" OR "AND" OR "z" OR "col" OR "val")");
}

// ---- Search over a store ----


std::string Quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

std::vector<std::string> Ids(const std::vector<SearchHit>& hits) {
  std::vector<std::string> out;
  for (const SearchHit& hit : hits) out.push_back(hit.id);
  return out;
}

class SearchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = harness_.Open();
    ASSERT_THAT(store, IsOk());
    store_ = std::move(store).value();
    raw_ = std::make_unique<RawSql>(harness_.path());
  }

  std::string Save(const std::string& session, const std::string& content,
                   Role role = Role::kUser) {
    NewMessage m = StoreHarness::UserMessage(session, content);
    m.role = role;
    if (role != Role::kUser) m.user_id = "locrit";
    harness_.clock().AdvanceMillis(1000);
    auto saved = store_->SaveMessage(m);
    EXPECT_THAT(saved, IsOk());
    return saved.ok() ? saved->id : "";
  }

  void AddMemory(const std::string& id, const std::string& content) {
    raw_->Exec("INSERT INTO memories(id, content, importance, created_at, last_accessed) VALUES (" +
               Quote(id) + ", " + Quote(content) + ", 0.5, 1000, 1000)");
  }

  void AddConcept(const std::string& id, const std::string& name, const std::string& description) {
    raw_->Exec("INSERT INTO concepts(id, name, type, description, created_at) VALUES (" +
               Quote(id) + ", " + Quote(name) + ", 'thing', " + Quote(description) + ", 2000)");
  }

  // Words that occur nowhere else, so the tested terms stay rare and bm25 weighs them.
  void AddFiller(int count) {
    for (int i = 0; i < count; ++i) Save("filler", "filler number " + std::to_string(i));
  }

  std::vector<SearchHit> Find(const std::string& text, int limit = 10) {
    SearchQuery query;
    query.text = text;
    query.limit = limit;
    return Find(query);
  }

  std::vector<SearchHit> Find(const SearchQuery& query) {
    auto hits = store_->Search(query);
    EXPECT_THAT(hits, IsOk()) << "query: " << query.text.substr(0, 80);
    return hits.ok() ? *hits : std::vector<SearchHit>{};
  }

  // The concepts' FTS5 index agrees with its content table (external content can drift if a
  // write path forgets a trigger).
  void ExpectFtsInSync() {
    raw_->Exec("INSERT INTO concepts_fts(concepts_fts) VALUES ('integrity-check')");
  }

  StoreHarness harness_;
  std::unique_ptr<MemoryStore> store_;
  std::unique_ptr<RawSql> raw_;  // Opened after the store has created the file.
};

TEST_F(SearchTest, EmptyStoreAndEmptyQueryFindNothing) {
  EXPECT_THAT(Find("anything"), IsEmpty());
  Save("s1", "some words");
  EXPECT_THAT(Find(""), IsEmpty());
  EXPECT_THAT(Find("   "), IsEmpty());
  EXPECT_THAT(Find("nothing-matches-this"), IsEmpty());
}

TEST_F(SearchTest, RanksByBm25BestFirst) {
  AddFiller(20);
  const std::string once = Save("s1", "the cat sat on the mat in the long afternoon sun");
  const std::string many = Save("s1", "cat cat cat");
  const std::string both = Save("s1", "a cat and a dog");
  const std::string none = Save("s1", "only a dog here");

  const std::vector<SearchHit> cat = Find("cat");
  EXPECT_THAT(Ids(cat), ElementsAre(many, both, once));
  for (size_t i = 0; i < cat.size(); ++i) {
    EXPECT_GT(cat[i].score, 0);
    if (i > 0) {
      EXPECT_GE(cat[i - 1].score, cat[i].score);
    }
  }

  // Sharing more of the terms ranks higher; a document with any one term still matches.
  const std::vector<SearchHit> cat_dog = Find("dog cat");
  ASSERT_THAT(cat_dog, SizeIs(4));
  EXPECT_EQ(cat_dog[0].id, both);
  EXPECT_THAT(Ids(cat_dog), Contains(none));
}

TEST_F(SearchTest, FillsEveryFieldOfAMessageHit) {
  const std::string id = Save("s1", "the answer is forty two", Role::kAssistant);
  ASSERT_OK_AND_ASSIGN(const Message message, store_->GetMessage(id));
  const std::vector<SearchHit> hits = Find("forty");
  ASSERT_THAT(hits, SizeIs(1));
  const SearchHit& hit = hits[0];
  EXPECT_EQ(hit.type, NodeType::kMessage);
  EXPECT_EQ(hit.id, id);
  EXPECT_EQ(hit.content, "the answer is forty two");
  EXPECT_EQ(hit.snippet, "the answer is [forty] two");
  EXPECT_EQ(hit.seq, message.seq);
  EXPECT_EQ(hit.timestamp, message.created_at);
  EXPECT_EQ(hit.session_id, "s1");
  EXPECT_EQ(hit.role, Role::kAssistant);
}

TEST_F(SearchTest, LimitIsRespectedAndClamped) {
  for (int i = 0; i < 120; ++i) Save("s1", "apple " + std::to_string(i));
  EXPECT_THAT(Find("apple", 5), SizeIs(5));
  EXPECT_THAT(Find("apple", 0), SizeIs(1));
  EXPECT_THAT(Find("apple", -7), SizeIs(1));
  EXPECT_THAT(Find("apple", 100000), SizeIs(MemoryStore::kMaxSearchResults));
}

TEST_F(SearchTest, SnippetsMarkMatchesAndElideLongText) {
  std::string long_text;
  for (int i = 0; i < 60; ++i) long_text += "word" + std::to_string(i) + " ";
  long_text += "zebra ";
  for (int i = 60; i < 120; ++i) long_text += "word" + std::to_string(i) + " ";
  Save("s1", long_text);

  const std::vector<SearchHit> hits = Find("ZEBRA");
  ASSERT_THAT(hits, SizeIs(1));
  EXPECT_EQ(hits[0].content, long_text);
  EXPECT_THAT(hits[0].snippet, AllOf(HasSubstr("[zebra]"), HasSubstr("…")));
  EXPECT_LT(hits[0].snippet.size(), long_text.size() / 2);
  EXPECT_THAT(hits[0].snippet, Not(HasSubstr("word0 ")));

  Save("s1", "Le Chat et le chien");
  const std::vector<SearchHit> chat = Find("chat chien");
  ASSERT_THAT(chat, SizeIs(1));
  EXPECT_EQ(chat[0].snippet, "Le [Chat] et le [chien]");
}

TEST_F(SearchTest, SessionAndRoleFiltersSearchOnlyMatchingMessages) {
  const std::string s1_user = Save("s1", "planning the garden");
  const std::string s1_bot = Save("s1", "the garden needs water", Role::kAssistant);
  const std::string s2_user = Save("s2", "my garden is small");
  const std::string s2_system = Save("s2", "garden rules", Role::kSystem);
  AddMemory("mem-1", "the garden is behind the house");
  AddConcept("con-1", "garden", "a place for plants");

  EXPECT_THAT(Ids(Find("garden", 20)),
              UnorderedElementsAre(s1_user, s1_bot, s2_user, s2_system, "mem-1", "con-1"));

  SearchQuery query;
  query.text = "garden";
  query.session_id = "s1";
  EXPECT_THAT(Ids(Find(query)), UnorderedElementsAre(s1_user, s1_bot));

  query.session_id.reset();
  query.role = Role::kUser;
  EXPECT_THAT(Ids(Find(query)), UnorderedElementsAre(s1_user, s2_user));

  query.role = Role::kSystem;
  EXPECT_THAT(Ids(Find(query)), ElementsAre(s2_system));

  query.session_id = "s2";
  query.role = Role::kAssistant;
  EXPECT_THAT(Find(query), IsEmpty());

  query.session_id = "no-such-session";
  query.role.reset();
  EXPECT_THAT(Find(query), IsEmpty());
}

TEST_F(SearchTest, KindFlagsChooseWhatIsSearched) {
  const std::string message = Save("s1", "orange juice");
  AddMemory("mem-1", "likes orange");
  AddConcept("con-1", "orange", "a fruit");

  SearchQuery query;
  query.text = "orange";
  query.messages = false;
  EXPECT_THAT(Ids(Find(query)), UnorderedElementsAre("mem-1", "con-1"));
  query.messages = true;
  query.memories = false;
  EXPECT_THAT(Ids(Find(query)), UnorderedElementsAre(message, "con-1"));
  query.concepts = false;
  EXPECT_THAT(Ids(Find(query)), ElementsAre(message));
  query.messages = false;
  EXPECT_THAT(Find(query), IsEmpty());
}

TEST_F(SearchTest, FindsMemoriesAndConceptsWithTheirShape) {
  harness_.clock().AdvanceMillis(1);
  AddMemory("mem-1", "Alice prefers green tea in the morning");
  AddConcept("con-1", "Green tea", "a drink Alice likes");
  AddConcept("con-2", "Tea", "");

  const std::vector<SearchHit> hits = Find("tea", 10);
  ASSERT_THAT(hits, SizeIs(3));
  for (const SearchHit& hit : hits) {
    EXPECT_GT(hit.score, 0);
    EXPECT_FALSE(hit.session_id.has_value());
    EXPECT_FALSE(hit.role.has_value());
    if (hit.id == "mem-1") {
      EXPECT_EQ(hit.type, NodeType::kMemory);
      EXPECT_EQ(hit.content, "Alice prefers green tea in the morning");
      EXPECT_EQ(hit.snippet, "Alice prefers green [tea] in the morning");
      EXPECT_EQ(hit.timestamp, 1000);
    } else if (hit.id == "con-1") {
      EXPECT_EQ(hit.type, NodeType::kConcept);
      EXPECT_EQ(hit.content, "Green tea: a drink Alice likes");
      EXPECT_EQ(hit.snippet, "Green [tea]: a drink Alice likes");
      EXPECT_EQ(hit.timestamp, 2000);
    } else {
      EXPECT_EQ(hit.id, "con-2");
      EXPECT_EQ(hit.type, NodeType::kConcept);
      EXPECT_EQ(hit.content, "Tea");
      EXPECT_EQ(hit.snippet, "[Tea]");
    }
  }
  // A concept also matches on its description.
  const std::vector<SearchHit> drink = Find("drink");
  ASSERT_THAT(drink, SizeIs(1));
  EXPECT_EQ(drink[0].snippet, "Green tea: a [drink] Alice likes");
}

TEST_F(SearchTest, AccentsFoldBothWays) {
  const std::string accented = Save("s1", "Un éléphant rose dans la cuisine");
  const std::string plain = Save("s1", "the elephant is grey");
  EXPECT_THAT(Ids(Find("elephant")), UnorderedElementsAre(accented, plain));
  EXPECT_THAT(Ids(Find("éléphant")), UnorderedElementsAre(accented, plain));
  EXPECT_THAT(Ids(Find("ÉLÉPHANT")), UnorderedElementsAre(accented, plain));
  EXPECT_THAT(Ids(Find("Elephant")), UnorderedElementsAre(accented, plain));
  // The snippet shows the text as written.
  for (const SearchHit& hit : Find("elephant")) {
    if (hit.id == accented) {
      EXPECT_THAT(hit.snippet, HasSubstr("[éléphant]"));
    }
  }
}

TEST_F(SearchTest, FrenchText) {
  AddFiller(10);
  const std::string ete = Save("fr", "L’été dernier, nous sommes allés à la plage près de Nîmes.");
  const std::string noel = Save("fr", "Pour Noël, le garçon a reçu une bibliothèque.");
  const std::string ou = Save("fr", "Où est passée la clé ? « Je ne sais pas », répondit-il.");
  const std::string coeur = Save("fr", "Il a le cœur sur la main, ce Benoît.");

  EXPECT_THAT(Ids(Find("ete")), ElementsAre(ete));
  EXPECT_THAT(Ids(Find("l'été")), Contains(ete));
  EXPECT_THAT(Ids(Find("l’été")), Contains(ete));
  EXPECT_THAT(Ids(Find("nimes")), ElementsAre(ete));
  EXPECT_THAT(Ids(Find("noel")), ElementsAre(noel));
  EXPECT_THAT(Ids(Find("garcon recu")), ElementsAre(noel));
  EXPECT_THAT(Ids(Find("BIBLIOTHÈQUE")), ElementsAre(noel));
  EXPECT_THAT(Ids(Find("ou est la cle")), Contains(ou));
  EXPECT_EQ(Find("ou est la cle").at(0).id, ou);
  EXPECT_THAT(Ids(Find("« sais »")), ElementsAre(ou));
  EXPECT_THAT(Ids(Find("repondit")), ElementsAre(ou));
  EXPECT_THAT(Ids(Find("cœur benoit")), ElementsAre(coeur));
}

// Every one of these is an ordinary search: OK, never a syntax error.
TEST_F(SearchTest, HostileStringsAreSafe) {
  Save("s1", "plain words: a AND b OR c NOT d; NEAR the col x");
  AddMemory("mem-1", "a memory with quote \" inside");
  AddConcept("con-1", "col", "val");

  std::string megabyte;
  while (megabyte.size() < (1u << 20)) megabyte += "\"(AND OR* ^NEAR{col}:x -+ ";
  std::string megabyte_one_word(1u << 20, 'q');
  const std::vector<std::string> hostile = {
      "\"",
      "'",
      "\"unterminated",
      "unterminated\"",
      "\"\"",
      "''; DROP TABLE messages; --",
      "AND",
      "OR NOT",
      "NOT",
      "a AND",
      "NEAR(a b)",
      "NEAR(a b, 10)",
      "NEAR",
      "a*",
      "*",
      "^x",
      "col:val",
      "content:plain",
      "{a b}:c",
      "{content}: words",
      "-x",
      "+x",
      "(",
      ")",
      "(a OR b",
      "\\",
      "\\\"",
      std::string("\0", 1),
      std::string("a\0b\0c", 5),
      "😀",
      "👩‍👩‍👧‍👦 words 🇫🇷",
      "\xff\xfe\xfd",
      "\xc3",
      megabyte,
      megabyte_one_word,
      "",
      " ",
      "\t\n\r\v\f",
      "\u00a0\u2003\u3000",
      "%_[]",
      "a\"b\"c",
      "rank MATCH bm25()",
  };
  ASSERT_GE(hostile.size(), 20u);
  for (const std::string& text : hostile) {
    SearchQuery query;
    query.text = text;
    EXPECT_THAT(store_->Search(query), IsOk()) << "text: " << text.substr(0, 40);
    query.session_id = text;
    query.role = Role::kUser;
    EXPECT_THAT(store_->Search(query), IsOk()) << "filtered, text: " << text.substr(0, 40);
  }
  // Operators are searched as the words they are.
  EXPECT_THAT(Find("NEAR"), SizeIs(1));
  EXPECT_THAT(Ids(Find("col:val")), Contains("con-1"));
  EXPECT_THAT(Ids(Find("\"quote")), ElementsAre("mem-1"));
  EXPECT_THAT(Find("''; DROP TABLE messages; --"), IsEmpty());
  EXPECT_THAT(Find("plain"), SizeIs(1));  // Still there.
}

TEST_F(SearchTest, EditsAndDeletesAreReflected) {
  const std::string id = Save("s1", "the quick brown fox");
  const std::string other = Save("s2", "another fox story");
  ASSERT_THAT(Ids(Find("quick")), ElementsAre(id));

  ASSERT_OK(store_->EditMessage(id, "the slow grey wolf"));
  EXPECT_THAT(Find("quick"), IsEmpty());
  EXPECT_THAT(Ids(Find("wolf")), ElementsAre(id));
  const std::vector<SearchHit> wolf = Find("wolf");
  EXPECT_EQ(wolf.at(0).content, "the slow grey wolf");
  EXPECT_EQ(wolf.at(0).snippet, "the slow grey [wolf]");

  ASSERT_OK(store_->DeleteMessage(id));
  EXPECT_THAT(Find("wolf"), IsEmpty());
  EXPECT_THAT(Ids(Find("fox")), ElementsAre(other));

  ASSERT_OK(store_->DeleteSession("s2"));
  EXPECT_THAT(Find("fox"), IsEmpty());

  AddMemory("mem-1", "a memory about kites");
  AddConcept("con-1", "kite", "a toy that flies");
  EXPECT_THAT(Ids(Find("kites kite")), UnorderedElementsAre("mem-1", "con-1"));
  raw_->Exec("UPDATE memories SET content = 'a memory about boats' WHERE id = 'mem-1'");
  raw_->Exec("UPDATE concepts SET description = 'a toy that floats' WHERE id = 'con-1'");
  EXPECT_THAT(Ids(Find("boats")), ElementsAre("mem-1"));
  EXPECT_THAT(Ids(Find("flies")), IsEmpty());
  EXPECT_THAT(Ids(Find("floats")), ElementsAre("con-1"));
  raw_->Exec("DELETE FROM memories WHERE id = 'mem-1'");
  raw_->Exec("DELETE FROM concepts WHERE id = 'con-1'");
  EXPECT_THAT(Find("boats kite floats memory"), IsEmpty());

  ExpectFtsInSync();
  EXPECT_THAT(FindBrokenInvariants(harness_.path()), IsEmpty());
}

TEST(SearchRetentionTest, EvictedMessagesAreNotFound) {
  StoreHarness harness(3);
  ASSERT_OK_AND_ASSIGN(auto store, harness.Open());
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) {
    ASSERT_OK_AND_ASSIGN(SavedMessage saved, store->SaveMessage(StoreHarness::UserMessage(
                                                 "s1", "pebble number " + std::to_string(i))));
    ids.push_back(saved.id);
  }
  SearchQuery query;
  query.text = "pebble";
  ASSERT_OK_AND_ASSIGN(const std::vector<SearchHit> hits, store->Search(query));
  EXPECT_THAT(Ids(hits), UnorderedElementsAre(ids[3], ids[4], ids[5]));
  query.text = "0 1 2";
  ASSERT_OK_AND_ASSIGN(const std::vector<SearchHit> evicted, store->Search(query));
  EXPECT_THAT(evicted, IsEmpty());
}

TEST(SearchReaderTest, AReadOnlyConnectionSearchesToo) {
  StoreHarness harness;
  ASSERT_OK_AND_ASSIGN(auto writer, harness.Open());
  ASSERT_OK(writer->SaveMessage(StoreHarness::UserMessage("s1", "shared words")).status());
  StoreOptions options = harness.options();
  options.read_only = true;
  ASSERT_OK_AND_ASSIGN(auto reader, MemoryStore::Open(options));
  SearchQuery query;
  query.text = "words";
  ASSERT_OK_AND_ASSIGN(const std::vector<SearchHit> hits, reader->Search(query));
  EXPECT_THAT(hits, SizeIs(1));
  ASSERT_OK(writer->SaveMessage(StoreHarness::UserMessage("s1", "more words")).status());
  ASSERT_OK_AND_ASSIGN(const std::vector<SearchHit> more, reader->Search(query));
  EXPECT_THAT(more, SizeIs(2));
}

}  // namespace
}  // namespace locrit

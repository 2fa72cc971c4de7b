// The in-memory keyword index behind MemoryStore::RankByKeywords and Search: the same bm25 scores
// as the FTS5 tables (queried over a separate connection) on a random corpus, before and after deletions; staying in step with
// writes made through another connection (new, edited, deleted and evicted messages, memories,
// clear-all); the chat window and the excluded node; a rolled-back batch forgotten; hostile text.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "store/internal/fts_query.h"
#include "store/memory_store.h"
#include "tests/support/matchers.h"
#include "tests/support/raw_sql.h"
#include "tests/support/store_fixture.h"

namespace locrit {
namespace {

using ::locrit::testing::IsOk;
using ::locrit::testing::RawSql;
using ::locrit::testing::StoreHarness;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using ::testing::UnorderedElementsAre;

// Words with accents and capitals, so that folding is part of what must agree with FTS5.
const std::vector<std::string> kWords = {
    "éléphant", "Elephant", "café",    "cafe",    "jardin", "Jardin",  "pluie",  "soleil",
    "train",    "rivière",  "riviere", "montagne", "livre", "musique", "chat",   "chien",
    "école",    "ECOLE",    "fête",    "forêt",   "lac",    "mer",     "plage",  "vélo",
    "pomme",    "fraise",   "hiver",   "été",     "nuit",   "matin",   "soir",   "semaine",
    "zèbre",    "girafe",   "hibou",   "renard",  "loup",   "ours",    "castor", "lynx"};

// Words from `words`, Zipf-like: early ones common, later ones rare, so idf varies.
std::string RandomText(std::mt19937& rng, int min_words, int max_words,
                       const std::vector<std::string>& words = kWords) {
  std::vector<double> weights;
  for (size_t i = 0; i < words.size(); ++i) weights.push_back(1.0 / static_cast<double>(i + 1));
  std::discrete_distribution<size_t> word(weights.begin(), weights.end());
  std::uniform_int_distribution<int> length(min_words, max_words);
  std::string text;
  for (int n = length(rng); n > 0; --n) {
    if (!text.empty()) text += ' ';
    text += words[word(rng)];
  }
  return text;
}

// A query: words of kWords that no other word of the query folds to. FTS5 scores each spelling
// of a word as its own term ("éléphant Elephant" counts "elephant" twice); the index counts a word
// once (KeywordIndexTest.SpellingsOfOneWordCountOnce).
std::string RandomQuery(std::mt19937& rng, int max_words) {
  static const std::vector<std::string> distinct = [] {
    std::vector<std::string> words = kWords;
    std::erase_if(words, [](const std::string& w) {
      return w == "Elephant" || w == "cafe" || w == "Jardin" || w == "riviere" || w == "ECOLE";
    });
    return words;
  }();
  return RandomText(rng, 1, max_words, distinct);
}

class KeywordIndexTest : public ::testing::Test {
 protected:
  explicit KeywordIndexTest(int64_t max_messages = 5000) : harness_(max_messages) {}

  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(writer_, harness_.Open());
    StoreOptions options = harness_.options();
    options.read_only = true;
    ASSERT_OK_AND_ASSIGN(reader_, MemoryStore::Open(options));
  }

  std::string Save(const std::string& session, const std::string& content) {
    Result<SavedMessage> saved = writer_->SaveMessage(StoreHarness::UserMessage(session, content));
    EXPECT_THAT(saved.status(), IsOk());
    return saved.ok() ? saved->id : "";
  }

  std::string AddMemory(const std::string& content) {
    NewMemory memory;
    memory.content = content;
    Result<Memory> added = writer_->AddMemory(memory);
    EXPECT_THAT(added.status(), IsOk());
    return added.ok() ? added->id : "";
  }

  // The ids the reader's index ranks for `text`.
  std::vector<std::string> Ranked(const std::string& text, int limit = 100) {
    KeywordQuery query;
    query.text = text;
    query.limit = limit;
    Result<std::vector<KeywordHit>> hits = reader_->RankByKeywords(query);
    EXPECT_THAT(hits.status(), IsOk());
    std::vector<std::string> ids;
    if (hits.ok()) {
      for (const KeywordHit& hit : *hits) ids.push_back(hit.id);
    }
    return ids;
  }

  // Asserts that the index ranks `text` with exactly FTS5's scores: the same score sequence as
  // FTS5's bm25 over the messages and memories tables (read over a separate connection), and each
  // id at FTS5's score for it.
  void ExpectSameAsFts5(const std::string& text) {
    SCOPED_TRACE("query: " + text);
    KeywordQuery query;
    query.text = text;
    query.limit = 20;
    ASSERT_OK_AND_ASSIGN(const std::vector<KeywordHit> ours, reader_->RankByKeywords(query));
    const std::vector<Fts5Hit> fts5 = Fts5Ranking(text);
    ASSERT_EQ(ours.size(), std::min<size_t>(fts5.size(), 20));
    const auto near = [](double a, double b) {
      return std::abs(a - b) <= 1e-9 * std::max(1.0, std::abs(b));
    };
    for (size_t i = 0; i < ours.size(); ++i) {
      EXPECT_TRUE(near(ours[i].score, fts5[i].score))
          << "rank " << i << ": " << ours[i].score << " vs " << fts5[i].score;
      const auto same = std::find_if(fts5.begin(), fts5.end(),
                                     [&](const Fts5Hit& h) { return h.id == ours[i].id; });
      ASSERT_NE(same, fts5.end()) << ours[i].id << " is not an FTS5 hit";
      EXPECT_TRUE(near(ours[i].score, same->score));
      EXPECT_EQ(ours[i].type, same->type);
      if (ours[i].type == NodeType::kMessage) {
        EXPECT_EQ(ours[i].seq, same->seq);
      }
    }
  }

  struct Fts5Hit {
    NodeType type;
    std::string id;
    double score;  // Negated rank, as KeywordHit.
    int64_t seq;
  };

  // Every message and memory FTS5 finds for the query Search would give it, best first. The
  // reference is a pair of FTS5 tables built afresh from the file's current rows, with the
  // store's tokenizer, in this connection's temp schema.
  std::vector<Fts5Hit> Fts5Ranking(const std::string& text) {
    const std::string match =
        store_internal::BuildFtsQuery(text, static_cast<size_t>(MemoryStore::kMaxSearchTerms));
    RawSql raw(harness_.path());
    raw.Exec(
        "CREATE VIRTUAL TABLE temp.messages_fts USING fts5(content,"
        " tokenize='unicode61 remove_diacritics 2');"
        "INSERT INTO temp.messages_fts(rowid, content) SELECT seq, content FROM messages;"
        "CREATE VIRTUAL TABLE temp.memories_fts USING fts5(content,"
        " tokenize='unicode61 remove_diacritics 2');"
        "INSERT INTO temp.memories_fts(rowid, content) SELECT rid, content FROM memories;");
    std::vector<Fts5Hit> hits;
    const auto collect = [&](NodeType type, const char* sql) {
      sqlite3_stmt* stmt = nullptr;
      ASSERT_EQ(sqlite3_prepare_v2(raw.db(), sql, -1, &stmt, nullptr), SQLITE_OK)
          << sqlite3_errmsg(raw.db());
      sqlite3_bind_text(stmt, 1, match.c_str(), -1, SQLITE_TRANSIENT);
      while (sqlite3_step(stmt) == SQLITE_ROW) {
        hits.push_back(Fts5Hit{type, reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)),
                               -sqlite3_column_double(stmt, 1), sqlite3_column_int64(stmt, 2)});
      }
      sqlite3_finalize(stmt);
    };
    collect(NodeType::kMessage,
            "SELECT m.id, messages_fts.rank, m.seq FROM messages_fts "
            "JOIN messages m ON m.seq = messages_fts.rowid WHERE messages_fts MATCH ?1");
    collect(NodeType::kMemory,
            "SELECT m.id, memories_fts.rank, 0 FROM memories_fts "
            "JOIN memories m ON m.rid = memories_fts.rowid WHERE memories_fts MATCH ?1");
    std::stable_sort(hits.begin(), hits.end(),
                     [](const Fts5Hit& a, const Fts5Hit& b) { return a.score > b.score; });
    return hits;
  }

  StoreHarness harness_;
  std::unique_ptr<MemoryStore> writer_;
  std::unique_ptr<MemoryStore> reader_;
};

TEST_F(KeywordIndexTest, ScoresLikeFts5BeforeAndAfterDeletions) {
  std::mt19937 rng(7);
  std::vector<std::string> messages;
  ASSERT_THAT(writer_->BeginBatch(), IsOk());
  for (int i = 0; i < 400; ++i) {
    messages.push_back(Save("s" + std::to_string(i % 7), RandomText(rng, 1, 30)));
  }
  for (int i = 0; i < 80; ++i) AddMemory(RandomText(rng, 1, 12));
  ASSERT_THAT(writer_->CommitBatch(), IsOk());
  std::vector<std::string> queries;
  for (int i = 0; i < 40; ++i) queries.push_back(RandomQuery(rng, 8));
  queries.push_back("ÉLÉPHANT Café");
  for (const std::string& q : queries) ExpectSameAsFts5(q);

  // Deletions of every kind change N, the lengths and the document frequencies.
  for (size_t i = 0; i < messages.size(); i += 3) {
    ASSERT_THAT(writer_->DeleteMessage(messages[i]), IsOk());
  }
  ASSERT_THAT(writer_->DeleteSession("s3"), IsOk());
  for (const std::string& q : queries) ExpectSameAsFts5(q);
}

TEST_F(KeywordIndexTest, FollowsMessagesWrittenThroughAnotherConnection) {
  Save("s", "bonjour");
  EXPECT_THAT(Ranked("zeppelin"), IsEmpty());  // The index is loaded now.
  const std::string id = Save("s", "un zeppelin passe");
  EXPECT_THAT(Ranked("zeppelin"), ElementsAre(id));

  ASSERT_THAT(writer_->EditMessage(id, "un dirigeable passe"), IsOk());
  EXPECT_THAT(Ranked("zeppelin"), IsEmpty());
  EXPECT_THAT(Ranked("dirigeable"), ElementsAre(id));

  ASSERT_THAT(writer_->DeleteMessage(id), IsOk());
  EXPECT_THAT(Ranked("dirigeable passe"), IsEmpty());
  EXPECT_THAT(Ranked("bonjour"), SizeIs(1));

  ASSERT_THAT(writer_->ClearAll(), IsOk());
  EXPECT_THAT(Ranked("bonjour"), IsEmpty());
  const std::string after = Save("s", "bonjour encore");
  EXPECT_THAT(Ranked("bonjour"), ElementsAre(after));
}

TEST_F(KeywordIndexTest, FollowsMemoriesWrittenThroughAnotherConnection) {
  EXPECT_THAT(Ranked("licorne"), IsEmpty());
  const std::string id = AddMemory("Alice aime les licornes et la licorne");
  KeywordQuery query;
  query.text = "licorne";
  ASSERT_OK_AND_ASSIGN(std::vector<KeywordHit> hits, reader_->RankByKeywords(query));
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].type, NodeType::kMemory);
  EXPECT_EQ(hits[0].id, id);

  MemoryEdit edit;
  edit.content = "Alice aime les dragons";
  ASSERT_THAT(writer_->EditMemory(id, edit).status(), IsOk());
  EXPECT_THAT(Ranked("licorne"), IsEmpty());
  EXPECT_THAT(Ranked("dragons"), ElementsAre(id));
  ASSERT_THAT(writer_->DeleteMemory(id), IsOk());
  EXPECT_THAT(Ranked("dragons"), IsEmpty());
}

TEST_F(KeywordIndexTest, LeavesOutTheWindowAndTheExcludedNode) {
  const std::string old_here = Save("here", "parlons du budget");
  const std::string elsewhere = Save("there", "le budget encore");
  const std::string recent_here = Save("here", "budget budget");
  const std::string newest = Save("here", "et le budget ?");
  ASSERT_OK_AND_ASSIGN(const Message recent, writer_->GetMessage(recent_here));

  KeywordQuery query;
  query.text = "budget";
  query.window_session = "here";
  query.window_first_seq = recent.seq;
  query.exclude_id = elsewhere;
  ASSERT_OK_AND_ASSIGN(std::vector<KeywordHit> hits, reader_->RankByKeywords(query));
  std::vector<std::string> ids;
  for (const KeywordHit& hit : hits) ids.push_back(hit.id);
  EXPECT_THAT(ids, ElementsAre(old_here));
  EXPECT_THAT(Ranked("budget"), UnorderedElementsAre(old_here, elsewhere, recent_here, newest));
}

TEST_F(KeywordIndexTest, SpellingsOfOneWordCountOnce) {
  Save("s", "un éléphant");
  Save("s", "une girafe");
  KeywordQuery query;
  query.text = "elephant";
  ASSERT_OK_AND_ASSIGN(const std::vector<KeywordHit> once, reader_->RankByKeywords(query));
  query.text = "éléphant Elephant ELEPHANT";
  ASSERT_OK_AND_ASSIGN(const std::vector<KeywordHit> thrice, reader_->RankByKeywords(query));
  ASSERT_EQ(once.size(), 1u);
  ASSERT_EQ(thrice.size(), 1u);
  EXPECT_DOUBLE_EQ(thrice[0].score, once[0].score);
}

TEST_F(KeywordIndexTest, RanksEqualScoresOldestFirstAndHonoursTheLimit) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(Save("s", "même phrase"));
  EXPECT_THAT(Ranked("phrase", 3), ElementsAre(ids[0], ids[1], ids[2]));
}

TEST_F(KeywordIndexTest, ForgetsWhatARolledBackBatchWrote) {
  Save("s", "avant");
  ASSERT_THAT(writer_->BeginBatch(), IsOk());
  Save("s", "fantôme");
  KeywordQuery query;
  query.text = "fantome";
  ASSERT_OK_AND_ASSIGN(std::vector<KeywordHit> inside, writer_->RankByKeywords(query));
  EXPECT_EQ(inside.size(), 1u);  // Its own uncommitted write.
  writer_->RollbackBatch();
  // The next message takes the rolled-back one's seq.
  const std::string real = Save("s", "réel");
  ASSERT_OK_AND_ASSIGN(std::vector<KeywordHit> after, writer_->RankByKeywords(query));
  EXPECT_THAT(after, IsEmpty());
  query.text = "reel";
  ASSERT_OK_AND_ASSIGN(after, writer_->RankByKeywords(query));
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].id, real);
}

TEST_F(KeywordIndexTest, AReadTransactionRanksOneSnapshotAndKeepsTheIndex) {
  Save("s", "avant");
  ASSERT_THAT(reader_->ReadConsistently([&]() -> Status {
    EXPECT_THAT(Ranked("apres"), IsEmpty());
    Save("s", "apres");  // Committed by the writer meanwhile.
    EXPECT_THAT(Ranked("apres"), IsEmpty());
    EXPECT_THAT(Ranked("avant"), SizeIs(1));
    return Status::Ok();
  }),
              IsOk());
  EXPECT_THAT(Ranked("apres"), SizeIs(1));
}

TEST_F(KeywordIndexTest, AFailedReadTransactionEndsAndReturnsItsError) {
  const Status failed = writer_->ReadConsistently([] { return NotFoundError("nothing there"); });
  EXPECT_EQ(failed.code(), StatusCode::kNotFound);
  // The transaction is over: the writer writes and another connection sees it.
  const std::string id = Save("s", "ensuite");
  EXPECT_THAT(Ranked("ensuite"), ElementsAre(id));
}

TEST_F(KeywordIndexTest, AnyTextIsASafeQuery) {
  Save("s", "du texte ordinaire");
  for (const std::string& text :
       {std::string(), std::string("\"\"\" AND OR NOT NEAR( *^-+ col:val {}"),
        std::string("\xff\xfe invalid \xc3"), std::string(1 << 20, 'x'),
        std::string(100000, ' ') + "texte"}) {
    KeywordQuery query;
    query.text = text;
    EXPECT_THAT(reader_->RankByKeywords(query).status(), IsOk());
  }
  EXPECT_THAT(Ranked(std::string(100000, ' ') + "texte"), SizeIs(1));
}

class KeywordIndexRetentionTest : public KeywordIndexTest {
 protected:
  KeywordIndexRetentionTest() : KeywordIndexTest(/*max_messages=*/50) {}
};

TEST_F(KeywordIndexRetentionTest, ForgetsEvictedMessagesAndKeepsFts5Scores) {
  std::mt19937 rng(11);
  std::vector<std::string> ids;
  // Past the cap several times over, querying along the way, so that evicted documents pile up
  // in the index and are compacted away more than once.
  for (int i = 0; i < 400; ++i) {
    ids.push_back(Save("s", "mot" + std::to_string(i) + " " + RandomText(rng, 1, 10)));
    if (i % 25 == 0) ExpectSameAsFts5(RandomQuery(rng, 5));
  }
  for (int i = 0; i < 400; ++i) {
    const std::vector<std::string> found = Ranked("mot" + std::to_string(i));
    if (i < 350) {
      EXPECT_THAT(found, IsEmpty()) << i;
    } else {
      EXPECT_THAT(found, ElementsAre(ids[static_cast<size_t>(i)])) << i;
    }
  }
  ExpectSameAsFts5("éléphant café jardin");
}

}  // namespace
}  // namespace locrit

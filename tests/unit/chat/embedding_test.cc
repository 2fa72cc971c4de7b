// Hybrid retrieval end to end: the EmbeddingIndexer embeds messages after the replies (and
// backfills after a restart), turns fuse bm25 with cosine similarity, and an embedding server
// that is down or stalled never costs a reply. Real parts throughout: MemoryManager on real
// files, LlmRuntime over HTTP to the fake LLM server, whose vectors are EmbeddingFor(text).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "chat/chat_service.h"
#include "chat/embedding_indexer.h"
#include "tests/unit/chat/chat_fixture.h"

namespace locrit {
namespace {

using ::locrit::testing::ChatFixture;
using ::locrit::testing::FakeLlmServer;
using ::locrit::testing::FakeReply;
using ::locrit::testing::IsOk;
using ::locrit::testing::RecordedRequest;
using ::locrit::testing::TurnOutcome;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kModel[] = "fake-embed";
// The emoji are no word for FTS5: only their meaning (their vector) can find them.
constexpr char kCats[] = "🐱🐱🐱";

class EmbeddingTest : public ChatFixture {
 protected:
  ChatLocrit WithEmbeddings() {
    ChatLocrit locrit = WithModel();
    locrit.llm->embedding_model = kModel;
    return locrit;
  }

  EmbeddingTarget Target() { return *ChatService::EmbeddingTargetOf(WithEmbeddings()); }

  // Ids of Bob's messages without a vector from kModel (all of them if the read fails).
  std::vector<std::string> Missing() {
    auto missing = Read<std::vector<std::string>>(
        [](MemoryStore& store) { return store.MessagesMissingEmbedding(kModel, 1000); });
    return missing.ok() ? *missing : std::vector<std::string>{"(read failed)"};
  }

  EmbeddingLaneStats Lane() { return indexer_->Stats("bob").value_or(EmbeddingLaneStats{}); }

  bool Idle() {
    const EmbeddingLaneStats lane = Lane();
    return !lane.running && lane.queued == 0 && !lane.backfill_pending;
  }

  // Polls `condition` (background work has no completion to wait on); false after 30 s.
  static bool Eventually(const std::function<bool()>& condition) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!condition()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
  }

  // The inputs of every embedding request, in the order the server received them, and the
  // position of each request among all requests.
  struct EmbedCall {
    size_t position = 0;
    std::vector<std::string> inputs;
  };
  std::vector<EmbedCall> EmbedCalls() {
    std::vector<EmbedCall> calls;
    const std::vector<RecordedRequest> requests = server_.Requests();
    for (size_t i = 0; i < requests.size(); ++i) {
      if (requests[i].target != "/api/embed") continue;
      EmbedCall call{i, {}};
      const boost::json::value input = boost::json::parse(requests[i].body).at("input");
      if (input.is_string()) {  // One text may go as a plain string.
        call.inputs.emplace_back(input.as_string());
      } else {
        for (const auto& text : input.as_array()) call.inputs.emplace_back(text.as_string());
      }
      calls.push_back(std::move(call));
    }
    return calls;
  }

  size_t ChatPosition() {
    const std::vector<RecordedRequest> requests = server_.Requests();
    for (size_t i = 0; i < requests.size(); ++i) {
      if (requests[i].target == "/api/chat") return i;
    }
    return requests.size();
  }

  // Drives the lane through its backoffs (on the fake clock) until it has nothing left to do;
  // false after 30 s.
  bool Settles() {
    return Eventually([&] {
      if (!Lane().running) {
        clock_.AdvanceMillis(EmbeddingIndexerOptions{}.max_backoff_ms);
        indexer_->RetryDue();
      }
      return Idle();
    });
  }

  static FakeReply Down() {
    FakeReply down;
    down.status = 503;
    down.error_message = "embedding model unavailable";
    return down;
  }
};

TEST(EmbeddingInputTest, KeepsTheFirstCharactersWhole) {
  EXPECT_EQ(EmbeddingInput("abc", 5), "abc");
  EXPECT_EQ(EmbeddingInput("abc", 3), "abc");
  EXPECT_EQ(EmbeddingInput("abcdef", 2), "ab");
  EXPECT_EQ(EmbeddingInput("héllo", 2), "hé");
  EXPECT_EQ(EmbeddingInput("🐱🐱🐱", 1), "🐱");
  EXPECT_EQ(EmbeddingInput("", 3), "");
  EXPECT_EQ(EmbeddingInput("é", 0), "");
}

TEST_F(EmbeddingTest, MessagesAreEmbeddedAfterTheReply) {
  const TurnOutcome out = Turn(WithEmbeddings(), Request("Bonjour Bob"));
  ASSERT_THAT(out.status, IsOk());
  ASSERT_TRUE(Eventually([&] { return Missing().empty() && Idle(); }));

  // Each message's vector is the server's vector for its text.
  for (const auto& [id, text] : {std::pair{out.result.user_message_id, "Bonjour Bob"},
                                 std::pair{out.result.assistant_message_id, "Hello, world!"}}) {
    ASSERT_OK_AND_ASSIGN(auto hits, Read<std::vector<VectorHit>>([text](MemoryStore& store) {
      VectorQuery q;
      q.vector = FakeLlmServer::EmbeddingFor(text);
      q.model = kModel;
      q.k = 1;
      return store.NearestByEmbedding(q);
    }));
    ASSERT_EQ(hits.size(), 1u);
    EXPECT_EQ(hits[0].id, id);
    EXPECT_NEAR(hits[0].similarity, 1.0, 1e-5);
  }

  // The question's vector was asked before the model was called (for its recall); the
  // messages' vectors after the reply.
  const size_t chat = ChatPosition();
  const std::vector<EmbedCall> calls = EmbedCalls();
  ASSERT_GE(calls.size(), 2u);
  EXPECT_LT(calls.front().position, chat);
  EXPECT_EQ(calls.front().inputs, std::vector<std::string>{"Bonjour Bob"});
  bool reply_embedded_after = false;
  for (const EmbedCall& call : calls) {
    for (const std::string& input : call.inputs) {
      if (input == "Hello, world!") reply_embedded_after = call.position > chat;
    }
  }
  EXPECT_TRUE(reply_embedded_after);
  EXPECT_EQ(Lane().embedded, 2);
  EXPECT_EQ(Lane().failed_batches, 0);
}

TEST_F(EmbeddingTest, RecallFindsByMeaningWhatKeywordsMiss) {
  ChatLocrit locrit = WithEmbeddings();
  ASSERT_THAT(Turn(locrit, Request(kCats)).status, IsOk());
  ASSERT_TRUE(Eventually([&] { return Missing().empty() && Idle(); }));

  // Another session: the first one can only be recalled, and bm25 finds no word to match.
  ASSERT_THAT(Turn(locrit, Request(kCats)).status, IsOk());
  auto context = SentContext();
  ASSERT_EQ(context.size(), 3u);
  EXPECT_EQ(context[1].first, "system");
  EXPECT_THAT(context[1].second, HasSubstr("Souvenirs rappelés"));
  EXPECT_THAT(context[1].second, HasSubstr(kCats));

  // Without an embedding model the same question recalls nothing: recall is bm25 alone.
  ASSERT_THAT(Turn(WithModel(), Request(kCats)).status, IsOk());
  context = SentContext();
  ASSERT_EQ(context.size(), 2u);
  EXPECT_THAT(context[0].second, Not(HasSubstr(kCats)));
}

TEST_F(EmbeddingTest, EmbeddingServerDownRepliesStillSucceedAndRecallIsBm25) {
  server_.SetEmbeddingReply(Down());
  ChatLocrit locrit = WithEmbeddings();
  ASSERT_THAT(Turn(locrit, Request("Mon chat s'appelle Pistache")).status, IsOk());
  ASSERT_THAT(Turn(locrit, Request(kCats)).status, IsOk());

  // Keyword recall still works...
  const TurnOutcome keyword = Turn(locrit, Request("Comment s'appelle mon chat ?"));
  ASSERT_THAT(keyword.status, IsOk());
  EXPECT_EQ(keyword.result.response, "Hello, world!");
  auto context = SentContext();
  ASSERT_EQ(context.size(), 3u);
  EXPECT_THAT(context[1].second, HasSubstr("Pistache"));
  // ...and only keyword recall: what only a vector could find is not recalled.
  ASSERT_THAT(Turn(locrit, Request(kCats)).status, IsOk());
  EXPECT_EQ(SentContext().size(), 2u);

  // The failures stay in the indexer: it backs off and will backfill.
  ASSERT_TRUE(Eventually([&] { return Lane().failed_batches >= 1 && !Lane().running; }));
  EmbeddingLaneStats lane = Lane();
  EXPECT_EQ(lane.embedded, 0);
  EXPECT_TRUE(lane.backfill_pending);
  EXPECT_GT(lane.retry_at, clock_.NowMillis());
  EXPECT_THAT(lane.last_error, HasSubstr("embedding model unavailable"));
  EXPECT_EQ(Missing().size(), 8u);

  // The server comes back: after the backoff, the backfill embeds everything.
  server_.SetEmbeddingReply(std::nullopt);
  clock_.AdvanceMillis(EmbeddingIndexerOptions{}.max_backoff_ms);
  indexer_->RetryDue();
  ASSERT_TRUE(Eventually([&] { return Missing().empty() && Idle(); }));
}

TEST_F(EmbeddingTest, AStalledEmbeddingServerDoesNotHoldTheReply) {
  FakeReply stall;
  stall.end = FakeReply::End::kStall;
  server_.SetEmbeddingReply(stall);
  query_vector_timeout_ = std::chrono::milliseconds(100);
  Restart();
  ChatLocrit locrit = WithEmbeddings();
  // Were the turn to wait on the Locrit's own timeouts, it would wait ten minutes.
  locrit.llm->timeouts.first_token = std::chrono::minutes(10);
  locrit.llm->timeouts.total = std::chrono::minutes(10);
  const TurnOutcome out = Turn(locrit, Request("Une question"));
  ASSERT_THAT(out.status, IsOk());
  EXPECT_EQ(out.result.response, "Hello, world!");
  // The indexer's own request is still stalled; shutting down cancels it.
}

TEST_F(EmbeddingTest, BackfillAfterARestartEmbedsWhatTheLastRunMissed) {
  // The first run: the embedding server is down the whole time.
  server_.SetEmbeddingReply(Down());
  std::string session;
  for (int i = 0; i < 5; ++i) {
    const TurnOutcome out = Turn(WithEmbeddings(), Request("message " + std::to_string(i), session));
    ASSERT_THAT(out.status, IsOk());
    session = out.result.session_id;
  }
  ASSERT_EQ(Missing().size(), 10u);

  // A new process, the server back: the Locrit's first turn starts the backfill, in batches.
  server_.SetEmbeddingReply(std::nullopt);
  EmbeddingIndexerOptions small;
  small.batch_size = 4;
  Restart(small);
  const size_t before = EmbedCalls().size();
  ASSERT_THAT(Turn(WithEmbeddings(), Request("après le redémarrage", session)).status, IsOk());
  ASSERT_TRUE(Eventually([&] { return Missing().empty() && Idle(); }));
  EXPECT_EQ(Lane().embedded, 12);
  const std::vector<EmbedCall> calls = EmbedCalls();
  ASSERT_GT(calls.size(), before + 3);  // The question, then at least three batches.
  for (size_t i = before; i < calls.size(); ++i) EXPECT_LE(calls[i].inputs.size(), 4u);
}

TEST_F(EmbeddingTest, TheQueueIsBoundedAndTheBackfillFindsWhatItDropped) {
  EmbeddingIndexerOptions small;
  small.max_queued = 3;
  Restart(small);
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    const TurnOutcome out = Turn(WithModel(), Request("message " + std::to_string(i)));
    ASSERT_THAT(out.status, IsOk());
    ids.push_back(out.result.user_message_id);
    ids.push_back(out.result.assistant_message_id);
  }
  server_.SetEmbeddingReply(Down());
  // First sight of the Locrit: a backfill, which fails; the lane backs off.
  indexer_->Enqueue(Target(), {});
  ASSERT_TRUE(Eventually([&] { return Lane().failed_batches == 1 && !Lane().running; }));

  indexer_->Enqueue(Target(), ids);
  EmbeddingLaneStats lane = Lane();
  EXPECT_EQ(lane.queued, 3u);
  EXPECT_EQ(lane.dropped, 3);
  EXPECT_FALSE(lane.running);  // Backing off.

  server_.SetEmbeddingReply(std::nullopt);
  indexer_->RetryDue();  // Too early: the backoff is not over.
  EXPECT_FALSE(Lane().running);
  EXPECT_EQ(Lane().queued, 3u);

  clock_.AdvanceMillis(small.initial_backoff_ms);
  indexer_->RetryDue();
  ASSERT_TRUE(Eventually([&] { return Missing().empty() && Idle(); }));
  EXPECT_EQ(Lane().embedded, 6);  // The three queued, then the three dropped, by backfill.
}

TEST_F(EmbeddingTest, ATextTheServerKeepsRefusingIsSkippedAndTheRestIsEmbedded) {
  std::vector<std::string> ids;
  for (int i = 0; i < 2; ++i) {
    const TurnOutcome out = Turn(WithModel(), Request("message " + std::to_string(i)));
    ASSERT_THAT(out.status, IsOk());
    ids.push_back(out.result.user_message_id);
    ids.push_back(out.result.assistant_message_id);
  }
  FakeReply refuse;
  refuse.status = 400;
  refuse.error_message = "input is too long for this model";
  // The batch of four, then the oldest text alone three times; then everything is accepted.
  for (int i = 0; i < 4; ++i) server_.Script(refuse);
  indexer_->Enqueue(Target(), {});
  EXPECT_TRUE(Settles()) << Lane().last_error;

  const EmbeddingLaneStats lane = Lane();
  EXPECT_EQ(lane.skipped, 1);
  EXPECT_THAT(lane.last_skipped, HasSubstr("message " + ids[0]));
  EXPECT_THAT(lane.last_skipped, HasSubstr("input is too long"));
  EXPECT_EQ(lane.embedded, 3) << "the texts behind the refused one are not held back";
  EXPECT_THAT(Missing(), ElementsAre(ids[0]));
}

TEST_F(EmbeddingTest, AServerThatIsDownNeverMakesTheLaneSkipAnything) {
  ASSERT_THAT(Turn(WithModel(), Request("message")).status, IsOk());
  server_.SetEmbeddingReply(Down());  // 503: transient, whatever the text.
  indexer_->Enqueue(Target(), {});
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(Eventually([&] { return Lane().failed_batches > i && !Lane().running; }));
    clock_.AdvanceMillis(EmbeddingIndexerOptions{}.max_backoff_ms);
    indexer_->RetryDue();
  }
  EXPECT_EQ(Lane().skipped, 0);
  EXPECT_EQ(Missing().size(), 2u);
  server_.SetEmbeddingReply(std::nullopt);
  EXPECT_TRUE(Settles()) << Lane().last_error;
  EXPECT_TRUE(Missing().empty());
}

TEST_F(EmbeddingTest, MemoriesAreEmbeddedByTheBackfill) {
  auto handle = ::locrit::testing::Await<MemoryManager::Handle>(
      [&](auto done) { manager_->Get("bob", {}, done); });
  ASSERT_THAT(handle, IsOk());
  NewMemory tea;
  tea.content = "Alice boit du thé vert";
  auto added = ::locrit::testing::Await<Memory>([&](auto done) {
    (*handle)->Write<Memory>([tea](MemoryStore& store) { return store.AddMemory(tea); }, done);
  });
  ASSERT_THAT(added, IsOk());
  handle->reset();

  indexer_->RequestBackfill(Target());
  EXPECT_TRUE(Settles()) << Lane().last_error;
  auto missing = Read<std::vector<std::string>>(
      [](MemoryStore& store) { return store.MemoriesMissingEmbedding(kModel, 10); });
  ASSERT_THAT(missing, IsOk());
  EXPECT_TRUE(missing->empty());
  EXPECT_EQ(Lane().embedded, 1);
  const std::vector<EmbedCall> calls = EmbedCalls();
  ASSERT_FALSE(calls.empty());
  EXPECT_THAT(calls.back().inputs, ElementsAre("Alice boit du thé vert"));
}

}  // namespace
}  // namespace locrit

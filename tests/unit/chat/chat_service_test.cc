// ChatService end to end over real parts: a MemoryManager on a temporary directory (real SQLite
// files), an LlmRuntime talking HTTP to the scripted fake LLM server on 127.0.0.1.
#include "chat/chat_service.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <future>
#include <mutex>
#include <string>
#include <vector>

#include "tests/unit/chat/chat_fixture.h"

namespace locrit {
namespace {

using std::chrono::milliseconds;
using ::locrit::testing::Await;
using ::locrit::testing::FakeClock;
using ::locrit::testing::FakeLlmServer;
using ::locrit::testing::FakeReply;
using ::locrit::testing::IsOk;
using ::locrit::testing::RawSql;
using ::locrit::testing::StatusIs;
using ::locrit::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

using ChatServiceTest = ::locrit::testing::ChatFixture;
using ::locrit::testing::TurnOutcome;

TEST_F(ChatServiceTest, ATurnStreamsTheReplyAndSavesBothMessagesLinked) {
  const TurnOutcome out = Turn(WithModel(), Request("Bonjour Bob"));
  ASSERT_THAT(out.status, IsOk());
  EXPECT_THAT(out.deltas, ElementsAre("Hello", ", ", "world", "!"));
  EXPECT_EQ(out.result.response, "Hello, world!");
  EXPECT_EQ(out.result.model, "llama3.2");
  EXPECT_EQ(out.result.session_id.size(), 32u);  // A new unguessable session.

  ASSERT_OK_AND_ASSIGN(Message user, GetMessage(out.result.user_message_id));
  EXPECT_EQ(user.content, "Bonjour Bob");
  EXPECT_EQ(user.status, MessageStatus::kOk);
  ASSERT_OK_AND_ASSIGN(Message reply, GetMessage(out.result.assistant_message_id));
  EXPECT_EQ(reply.role, Role::kAssistant);
  EXPECT_EQ(reply.content, "Hello, world!");
  EXPECT_EQ(reply.session_id, out.result.session_id);
  const auto meta = boost::json::parse(reply.metadata).as_object();
  EXPECT_EQ(meta.at("model").as_string(), "llama3.2");
  EXPECT_EQ(meta.at("prompt_tokens").as_int64(), 12);
  EXPECT_EQ(meta.at("completion_tokens").as_int64(), 4);
  EXPECT_TRUE(meta.contains("latency_ms"));

  EXPECT_EQ(RespondsTo(out.result.assistant_message_id), out.result.user_message_id);
}

TEST_F(ChatServiceTest, ContextIsTheNewestMessagesInOrderThenTheNewOneOnce) {
  ChatLocrit locrit = WithModel();
  locrit.context_messages = 4;
  std::string session;
  for (int i = 0; i < 5; ++i) {
    const TurnOutcome out = Turn(locrit, Request("question " + std::to_string(i), session));
    ASSERT_THAT(out.status, IsOk());
    session = out.result.session_id;
  }
  const TurnOutcome last = Turn(locrit, Request("question finale", session));
  ASSERT_THAT(last.status, IsOk());
  const auto context = SentContext();
  ASSERT_GE(context.size(), 6u);
  EXPECT_EQ(context.front().first, "system");
  EXPECT_THAT(context.front().second, HasSubstr("Tu es Bob Technique, un Locrit."));
  // The last four messages before the new one: question 3, its reply, question 4, its reply.
  const size_t n = context.size();
  EXPECT_EQ(context[n - 5].second, "question 3");
  EXPECT_EQ(context[n - 4].first, "assistant");
  EXPECT_EQ(context[n - 3].second, "question 4");
  EXPECT_EQ(context[n - 2].first, "assistant");
  EXPECT_EQ(context[n - 1], std::make_pair(std::string("user"), std::string("question finale")));
  int finals = 0;
  for (const auto& [role, content] : context) finals += content == "question finale";
  EXPECT_EQ(finals, 1);
}

TEST_F(ChatServiceTest, OlderMessagesOutsideTheWindowAreRecalled) {
  ChatLocrit locrit = WithModel();
  locrit.context_messages = 2;
  ASSERT_THAT(Turn(locrit, Request("Mon chat s'appelle Pistache")).status, IsOk());
  // Another session: the first one is outside its window and can only be recalled.
  const TurnOutcome out = Turn(locrit, Request("Comment s'appelle mon chat ?"));
  ASSERT_THAT(out.status, IsOk());
  const auto context = SentContext();
  ASSERT_EQ(context.size(), 3u);
  EXPECT_EQ(context[1].first, "system");
  EXPECT_THAT(context[1].second, HasSubstr("Souvenirs rappelés"));
  EXPECT_THAT(context[1].second, HasSubstr("Pistache"));
}

// The old app's failure: the fact had left the 20-message window and the model never saw it.
TEST_F(ChatServiceTest, NameRecallAfterTheFactLeftTheWindow) {
  const ChatLocrit locrit = WithModel();  // context_messages = 20, the default.
  const TurnOutcome first = Turn(locrit, Request("My name is Alice, remember it"));
  ASSERT_THAT(first.status, IsOk());
  const std::string session = first.result.session_id;
  for (int i = 0; i < 30; ++i) {
    ASSERT_THAT(Turn(locrit, Request("filler turn " + std::to_string(i), session)).status, IsOk());
  }
  ASSERT_THAT(Turn(locrit, Request("What is my name?", session)).status, IsOk());

  const auto context = SentContext();
  // System prompt, recalled items, the 20 newest messages, the question.
  ASSERT_EQ(context.size(), 23u);
  EXPECT_EQ(context[0].first, "system");
  EXPECT_EQ(context[1].first, "system");
  EXPECT_THAT(context[1].second, HasSubstr("Souvenirs rappelés"));
  EXPECT_THAT(context[1].second, HasSubstr("My name is Alice, remember it"));
  // The window: filler turns 20..29 and their replies, oldest first, alternating.
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(context[2 + 2 * i],
              std::make_pair(std::string("user"), "filler turn " + std::to_string(20 + i)));
    EXPECT_EQ(context[3 + 2 * i].first, "assistant");
  }
  EXPECT_EQ(context[22], std::make_pair(std::string("user"), std::string("What is my name?")));
  int questions = 0;
  int facts = 0;
  for (const auto& [role, content] : context) {
    questions += content.find("What is my name?") != std::string::npos;
    facts += content.find("My name is Alice") != std::string::npos;
  }
  EXPECT_EQ(questions, 1);
  EXPECT_EQ(facts, 1);  // Only as a recalled item: it is not in the window.
}

TEST_F(ChatServiceTest, RecallAnswersWhatIsMyNameWithoutAnyLlmServer) {
  const TurnOutcome first = Turn(Recall(), Request("My name is Alice, remember it"));
  ASSERT_THAT(first.status, IsOk());
  const TurnOutcome out = Turn(Recall(), Request("What is my name?", first.result.session_id));
  ASSERT_THAT(out.status, IsOk());
  EXPECT_EQ(out.result.model, "recall");
  EXPECT_THAT(out.result.response, HasSubstr("« My name is Alice, remember it »"));
  EXPECT_TRUE(server_.Requests().empty());
}

TEST_F(ChatServiceTest, RecallAnswersFromMemoryWithoutAModel) {
  ChatLocrit locrit = Recall();
  ASSERT_OK_AND_ASSIGN(auto memory, Await<MemoryManager::Handle>([&](auto done) {
    manager_->Get("bob", {}, done);
  }));
  NewMemory fact;
  fact.content = "Alice cultive des tomates à Lyon.";
  fact.importance = 0.9;
  ASSERT_THAT(Await<Memory>([&](auto done) {
    memory->Write<Memory>([fact](MemoryStore& store) { return store.AddMemory(fact); }, done);
  }), IsOk());
  memory.reset();

  const TurnOutcome out = Turn(locrit, Request("Où sont les tomates ?"));
  ASSERT_THAT(out.status, IsOk());
  EXPECT_EQ(out.result.model, "recall");
  EXPECT_THAT(out.result.response, HasSubstr("Aucun modèle de langage n'est configuré"));
  EXPECT_THAT(out.result.response, HasSubstr("Alice cultive des tomates à Lyon."));
  EXPECT_THAT(out.result.response, HasSubstr("2025-01-01"));
  EXPECT_GT(out.deltas.size(), 1u);  // Streamed, not one block.
  std::string joined;
  for (const auto& d : out.deltas) joined += d;
  EXPECT_EQ(joined, out.result.response);
  ASSERT_OK_AND_ASSIGN(Message reply, GetMessage(out.result.assistant_message_id));
  EXPECT_EQ(reply.content, out.result.response);
  EXPECT_TRUE(server_.Requests().empty());  // No language model was contacted.
}

TEST_F(ChatServiceTest, RecallSaysSoWhenNothingIsRemembered) {
  const TurnOutcome out = Turn(Recall(), Request("Bonjour"));
  ASSERT_THAT(out.status, IsOk());
  EXPECT_THAT(out.result.response, HasSubstr("aucun souvenir"));
}

TEST_F(ChatServiceTest, RecallQuotesWhatUsersSaidNotItsOwnEarlierAnswers) {
  ASSERT_THAT(Turn(Recall(), Request("Le train part de Lyon")).status, IsOk());
  // This answer quotes the first message, so it holds "train" too.
  const TurnOutcome second = Turn(Recall(), Request("Et ce train ?"));
  ASSERT_THAT(second.status, IsOk());
  ASSERT_THAT(second.result.response, HasSubstr("« Le train part de Lyon »"));
  const TurnOutcome out = Turn(Recall(), Request("Quel train ?"));
  ASSERT_THAT(out.status, IsOk());
  EXPECT_THAT(out.result.response, HasSubstr("« Le train part de Lyon »"));
  EXPECT_THAT(out.result.response, HasSubstr("« Et ce train ? »"));
  EXPECT_EQ(out.result.response.find("Je suis"), out.result.response.rfind("Je suis"));
}

TEST_F(ChatServiceTest, InvalidMessagesAreRefusedBeforeAnythingIsSaved) {
  for (const std::string& bad : {std::string(), std::string("  \n\t"), std::string("a\xff"),
                                std::string(101, 'x')}) {
    const TurnOutcome out = Turn(WithModel(), Request(bad));
    EXPECT_THAT(out.status, StatusIs(StatusCode::kInvalidArgument)) << bad.size();
    EXPECT_TRUE(out.result.user_message_id.empty());
  }
  EXPECT_TRUE(server_.Requests().empty());
  // 100 characters of two bytes each are within the limit of 100 characters.
  std::string accented;
  for (int i = 0; i < 100; ++i) accented += "é";
  EXPECT_THAT(Turn(WithModel(), Request(accented)).status, IsOk());
}

struct FailureCase {
  std::string name;
  FakeReply reply;
  StatusCode code;
};

class ChatFailureTest : public ChatServiceTest,
                        public ::testing::WithParamInterface<FailureCase> {};

TEST_P(ChatFailureTest, TheUserMessageStaysMarkedUnansweredAndTheErrorNamesIt) {
  server_.Script(GetParam().reply);
  const TurnOutcome out = Turn(WithModel(), Request("Une question"));
  EXPECT_THAT(out.status, StatusIs(GetParam().code));
  ASSERT_FALSE(out.result.user_message_id.empty());
  EXPECT_TRUE(out.result.assistant_message_id.empty());
  ASSERT_OK_AND_ASSIGN(Message user, GetMessage(out.result.user_message_id));
  EXPECT_EQ(user.content, "Une question");
  EXPECT_EQ(user.status, MessageStatus::kUnanswered);
  ASSERT_OK_AND_ASSIGN(auto history, Read<std::vector<Message>>([&](MemoryStore& store) {
    HistoryQuery q;
    q.session_id = out.result.session_id;
    return store.History(q);
  }));
  EXPECT_EQ(history.size(), 1u);  // No partial reply was saved.
}

std::vector<FailureCase> FailureCases() {
  FakeReply missing_model;
  missing_model.status = 404;
  missing_model.error_message = "model 'llama3.2' not found";
  FakeReply server_error;
  server_error.status = 500;
  FakeReply malformed;
  malformed.end = FakeReply::End::kMalformedLine;
  malformed.end_after = 1;
  FakeReply disconnect;
  disconnect.end = FakeReply::End::kDisconnect;
  disconnect.end_after = 2;
  FakeReply truncated;
  truncated.end = FakeReply::End::kNoDoneMarker;
  return {{"MissingModel", missing_model, StatusCode::kInvalidArgument},
          {"ServerError", server_error, StatusCode::kLlmError},
          {"MalformedLine", malformed, StatusCode::kLlmError},
          {"DisconnectMidStream", disconnect, StatusCode::kUnavailable},
          {"TruncatedStream", truncated, StatusCode::kLlmError}};
}

INSTANTIATE_TEST_SUITE_P(Upstream, ChatFailureTest, ::testing::ValuesIn(FailureCases()),
                         [](const auto& test) { return test.param.name; });

TEST_F(ChatServiceTest, UnreachableServerIsUnavailableAndKeepsTheMessage) {
  ChatLocrit locrit = WithModel();
  locrit.llm->base_url = "http://127.0.0.1:1";  // Nothing listens on port 1.
  const TurnOutcome out = Turn(locrit, Request("Il y a quelqu'un ?"));
  EXPECT_THAT(out.status, StatusIs(StatusCode::kUnavailable));
  ASSERT_OK_AND_ASSIGN(Message user, GetMessage(out.result.user_message_id));
  EXPECT_EQ(user.status, MessageStatus::kUnanswered);
}

TEST_F(ChatServiceTest, ConcurrentTurnsOnOneSessionEachAnswerTheirOwnMessage) {
  ChatLocrit locrit = WithModel();
  const TurnOutcome first = Turn(locrit, Request("début"));
  ASSERT_THAT(first.status, IsOk());
  const std::string session = first.result.session_id;
  constexpr int kTurns = 8;
  std::vector<std::future<TurnOutcome>> turns;
  for (int i = 0; i < kTurns; ++i) {
    turns.push_back(std::async(std::launch::async, [this, &locrit, &session, i] {
      return Turn(locrit, Request("question " + std::to_string(i), session));
    }));
  }
  for (auto& f : turns) {
    const TurnOutcome out = f.get();
    ASSERT_THAT(out.status, IsOk());
    EXPECT_EQ(RespondsTo(out.result.assistant_message_id), out.result.user_message_id);
  }
  ASSERT_OK_AND_ASSIGN(auto history, Read<std::vector<Message>>([&](MemoryStore& store) {
    HistoryQuery q;
    q.session_id = session;
    q.limit = 100;
    return store.History(q);
  }));
  EXPECT_EQ(history.size(), 2u + 2u * kTurns);
}

TEST_F(ChatServiceTest, CancellingATurnStopsTheModelAndKeepsTheMessage) {
  FakeReply stall;
  stall.end = FakeReply::End::kStall;
  stall.end_after = 1;
  server_.Script(stall);
  std::promise<TurnOutcome> promise;
  auto future = promise.get_future();
  std::promise<void> first_delta;
  auto first = std::make_shared<std::once_flag>();
  auto handle = chat_->Turn(
      WithModel(), Request("Longue réponse ?"),
      [&first_delta, first](std::string_view) {
        std::call_once(*first, [&] { first_delta.set_value(); });
      },
      [&promise](Status status, TurnResult result) {
        promise.set_value({std::move(status), std::move(result), {}});
      });
  first_delta.get_future().wait();
  handle->Cancel();
  const TurnOutcome out = future.get();
  EXPECT_THAT(out.status, StatusIs(StatusCode::kCancelled));
  ASSERT_OK_AND_ASSIGN(Message user, GetMessage(out.result.user_message_id));
  EXPECT_EQ(user.status, MessageStatus::kUnanswered);
}

}  // namespace
}  // namespace locrit

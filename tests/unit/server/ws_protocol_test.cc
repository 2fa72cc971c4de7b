// WsSession (server/ws_protocol.h) without sockets: frames in through OnText/OnBinary/OnTooLarge,
// events out through a recording sink. Chat turns are real (ChatService over a real memory, the
// recall responder, so no model server is needed).
#include "server/ws_protocol.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "base/id_generator.h"
#include "base/thread_pool.h"
#include "memory/memory_manager.h"
#include "server/api.h"
#include "tests/support/fake_clock.h"
#include "tests/support/matchers.h"
#include "tests/support/temp_dir.h"

namespace locrit {
namespace {

namespace json = boost::json;
using ::locrit::testing::FakeClock;
using ::locrit::testing::IsOk;
using ::locrit::testing::TempDir;
using ::testing::HasSubstr;

// Records every event; refuses (like a connection past its bound) after `capacity` events.
class RecordingSink : public WsSink {
 public:
  explicit RecordingSink(size_t capacity = SIZE_MAX) : capacity_(capacity) {}
  bool Send(std::string text) override {
    std::lock_guard lock(mu_);
    if (events_.size() >= capacity_) return false;
    events_.push_back(json::parse(text).as_object());
    cv_.notify_all();
    return true;
  }
  void TurnStarted() override { ++turns_started_; }
  void TurnFinished() override {
    std::lock_guard lock(mu_);
    ++turns_finished_;
    cv_.notify_all();
  }

  // The events so far, once there are at least `n` (bounded wait: 30 s).
  std::vector<json::object> WaitFor(size_t n) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(30), [&] { return events_.size() >= n; });
    return events_;
  }
  // Waits (bounded) until `n` turns finished.
  bool WaitTurnsFinished(int n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(30), [&] { return turns_finished_ >= n; });
  }
  std::vector<json::object> events() {
    std::lock_guard lock(mu_);
    return events_;
  }
  int turns_started() const { return turns_started_.load(); }

 private:
  const size_t capacity_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<json::object> events_;
  std::atomic<int> turns_started_{0};
  int turns_finished_ = 0;
};

std::string S(const json::value* v) {
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : "";
}

class WsProtocolTest : public ::testing::Test {
 protected:
  WsProtocolTest() {
    RegistryOptions registry;
    registry.path = dir_.File("registry.db");
    registry.clock = &clock_;
    registry.locrits_dir = (dir_.path() / "locrits").string();
    registry_ = std::move(LocritRegistry::Open(registry).value());
    LocritConfig bob;
    bob.name = "Bob Technique";
    bob.description = "technicien";
    EXPECT_THAT(registry_->Create(bob), IsOk());
    LocritConfig asleep = bob;
    asleep.name = "Endormi";
    asleep.active = false;
    EXPECT_THAT(registry_->Create(asleep), IsOk());

    MemoryManagerOptions memory;
    memory.data_dir = dir_.path().string();
    memory.clock = &clock_;
    memory.ids = &ids_;
    memory.pool = &pool_;
    memory_ = std::make_unique<MemoryManager>(memory);
    ChatServiceOptions chat;
    chat.memory = memory_.get();
    chat.ids = &ids_;
    chat.clock = &clock_;
    chat.max_message_chars = 100;
    chat_ = std::make_unique<ChatService>(chat);

    context_.registry = registry_.get();
    context_.chat = chat_.get();
    context_.max_message_chars = 100;
    context_.turns_in_flight = &turns_in_flight_;
    context_.draining = [this] { return draining_.load(); };
    context_.chat_locrit = [](const LocritConfig& c) { return Api::ChatLocritOf(c, {}); };
  }
  ~WsProtocolTest() override { memory_->Shutdown(); }

  std::shared_ptr<WsSession> Open(std::shared_ptr<RecordingSink> sink) {
    auto session = std::make_shared<WsSession>(&context_, sink);
    session->Open();
    return session;
  }

  TempDir dir_;
  FakeClock clock_;
  IdGenerator ids_{&clock_, 3};
  ThreadPool pool_{2};
  std::unique_ptr<LocritRegistry> registry_;
  std::unique_ptr<MemoryManager> memory_;
  std::unique_ptr<ChatService> chat_;
  std::atomic<int64_t> turns_in_flight_{0};
  std::atomic<bool> draining_{false};
  WsContext context_;
};

TEST_F(WsProtocolTest, MalformedFramesEachGetTheirErrorAndTheSessionGoesOn) {
  auto sink = std::make_shared<RecordingSink>();
  auto session = Open(sink);
  struct Case {
    std::string frame;
    std::string code;
    std::string mentions;    // In the error message.
    std::string request_id;  // Echoed when readable.
  };
  const std::vector<Case> cases = {
      {"not json", "invalid_argument", "not valid JSON", ""},
      {"\xff\xfe", "invalid_argument", "UTF-8", ""},
      {"[1]", "invalid_argument", "JSON object", ""},
      {R"({"request_id":"r1"})", "invalid_argument", "type is required", "r1"},
      {R"({"type":7})", "invalid_argument", "type", ""},
      {R"({"type":"dance","request_id":"r2"})", "invalid_argument", "unknown type dance", "r2"},
      {R"({"type":"join_chat"})", "invalid_argument", "locrit_name is required", ""},
      {R"({"type":"join_chat","locrit_name":"Personne"})", "not_found", "Personne", ""},
      {R"({"type":"join_chat","locrit_name":"Endormi"})", "forbidden", "inactive", ""},
      {R"({"type":"leave_chat","locrit_name":"Bob Technique"})", "invalid_argument",
       "not in a chat", ""},
      {R"({"type":"chat_message","locrit_name":"Bob Technique","request_id":"r3"})",
       "invalid_argument", "message is required", "r3"},
      {R"({"type":"chat_message","locrit_name":"Bob Technique","message":1})", "invalid_argument",
       "message must be a string", ""},
      {R"({"type":"chat_message","locrit_name":"Bob Technique","message":"x","stream":1})",
       "invalid_argument", "stream must be a boolean", ""},
      {R"({"type":"chat_message","locrit_name":"Bob Technique","message":")" +
           std::string(101, 'a') + R"("})",
       "payload_too_large", "longer than 100", ""},
      {R"({"type":"chat_message","locrit_name":"Bob Technique","message":"x",)"
       R"("conversation_id":"c1"})",
       "not_found", "no conversation", ""},
      {R"({"type":"chat_message","locrit_name":"Endormi","message":"x","request_id":"r4"})",
       "forbidden", "inactive", "r4"},
  };
  for (const Case& c : cases) session->OnText(c.frame);
  session->OnBinary();
  session->OnTooLarge(1024);
  const std::vector<json::object> events = sink->WaitFor(cases.size() + 3);
  ASSERT_EQ(events.size(), cases.size() + 3);
  EXPECT_EQ(S(events[0].if_contains("type")), "connected");
  for (size_t i = 0; i < cases.size(); ++i) {
    const json::object& e = events[i + 1];
    SCOPED_TRACE(cases[i].frame.substr(0, 60));
    EXPECT_EQ(S(e.if_contains("type")), "error");
    EXPECT_EQ(S(e.if_contains("code")), cases[i].code);
    EXPECT_THAT(S(e.if_contains("message")), HasSubstr(cases[i].mentions));
    EXPECT_EQ(S(e.if_contains("request_id")), cases[i].request_id);
  }
  EXPECT_EQ(S(events[cases.size() + 1].if_contains("code")), "invalid_argument");  // Binary.
  EXPECT_EQ(S(events[cases.size() + 2].if_contains("code")), "payload_too_large");
  EXPECT_EQ(sink->turns_started(), 0) << "no refused message started a turn";

  session->OnText(R"({"type":"ping"})");
  EXPECT_EQ(S(sink->WaitFor(cases.size() + 4).back().if_contains("type")), "pong");
}

TEST_F(WsProtocolTest, JoinChatStreamAndLeave) {
  auto sink = std::make_shared<RecordingSink>();
  auto session = Open(sink);
  session->OnText(R"({"type":"join_chat","locrit_name":"bob technique","session_id":"s-1"})");
  json::object joined = sink->WaitFor(2)[1];
  EXPECT_EQ(S(joined.if_contains("type")), "joined_chat");
  EXPECT_EQ(S(joined.if_contains("locrit_name")), "Bob Technique");
  EXPECT_EQ(S(joined.if_contains("session_id")), "s-1");

  // Streamed (the default): chunks naming the joined session, then chat_complete with both ids.
  session->OnText(
      R"({"type":"chat_message","locrit_name":"Bob Technique","message":"bonjour","request_id":"q"})");
  ASSERT_TRUE(sink->WaitTurnsFinished(1));
  std::vector<json::object> events = sink->events();
  ASSERT_GE(events.size(), 4u);
  for (size_t i = 2; i + 1 < events.size(); ++i) {
    EXPECT_EQ(S(events[i].if_contains("type")), "chat_chunk");
    EXPECT_EQ(S(events[i].if_contains("session_id")), "s-1");
    EXPECT_EQ(S(events[i].if_contains("request_id")), "q");
  }
  const json::object& complete = events.back();
  EXPECT_EQ(S(complete.if_contains("type")), "chat_complete") << complete;
  EXPECT_EQ(S(complete.if_contains("session_id")), "s-1");
  EXPECT_EQ(S(complete.if_contains("model")), "recall");
  EXPECT_FALSE(S(complete.if_contains("user_message_id")).empty());
  EXPECT_FALSE(S(complete.if_contains("assistant_message_id")).empty());

  // One-shot: chat_response with the whole reply.
  const size_t before = events.size();
  session->OnText(
      R"({"type":"chat_message","locrit_name":"Bob Technique","message":"encore","stream":false})");
  ASSERT_TRUE(sink->WaitTurnsFinished(2));
  events = sink->events();
  ASSERT_EQ(events.size(), before + 1);
  EXPECT_EQ(S(events.back().if_contains("type")), "chat_response");
  EXPECT_THAT(S(events.back().if_contains("response")), HasSubstr("Bob Technique"));

  session->OnText(R"({"type":"leave_chat","locrit_name":"Bob Technique"})");
  json::object left = sink->WaitFor(before + 2).back();
  EXPECT_EQ(S(left.if_contains("type")), "left_chat");
  EXPECT_EQ(S(left.if_contains("session_id")), "s-1");
  EXPECT_EQ(turns_in_flight_.load(), 0);
}

TEST_F(WsProtocolTest, DrainingRefusesNewTurns) {
  auto sink = std::make_shared<RecordingSink>();
  auto session = Open(sink);
  draining_ = true;
  session->OnText(
      R"({"type":"chat_message","locrit_name":"Bob Technique","message":"x","request_id":"d"})");
  json::object refused = sink->WaitFor(2)[1];
  EXPECT_EQ(S(refused.if_contains("code")), "unavailable");
  EXPECT_EQ(S(refused.if_contains("request_id")), "d");
  EXPECT_EQ(sink->turns_started(), 0);
}

TEST_F(WsProtocolTest, AfterCloseNothingMoreIsStarted) {
  auto sink = std::make_shared<RecordingSink>();
  auto session = Open(sink);
  session->Close();
  session->OnText(R"({"type":"chat_message","locrit_name":"Bob Technique","message":"x"})");
  EXPECT_EQ(sink->turns_started(), 0);
  EXPECT_EQ(turns_in_flight_.load(), 0);
}

}  // namespace
}  // namespace locrit

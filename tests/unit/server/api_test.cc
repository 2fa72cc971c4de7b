// The routes and handlers without sockets: requests in, responses out through a recording
// Responder, over a real registry and chat service on a temporary directory (recall responder).
#include "server/api.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "base/thread_pool.h"
#include "llm/llm_runtime.h"
#include "memory/memory_manager.h"
#include "server/admin_tokens.h"
#include "server/http_errors.h"
#include "tests/support/fake_clock.h"
#include "tests/support/fake_llm_server.h"
#include "tests/support/matchers.h"
#include "tests/support/temp_dir.h"

namespace locrit {
namespace {

namespace json = boost::json;
using ::locrit::testing::FakeClock;
using ::locrit::testing::FakeLlmServer;
using ::locrit::testing::IsOk;
using ::locrit::testing::StatusIs;
using ::locrit::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(HttpErrorsTest, OneMappingFromStatusCodes) {
  struct Case {
    StatusCode code;
    int status;
    const char* name;
  };
  const Case cases[] = {
      {StatusCode::kInvalidArgument, 400, "invalid_argument"},
      {StatusCode::kNotFound, 404, "not_found"},
      {StatusCode::kAlreadyExists, 409, "conflict"},
      {StatusCode::kFailedPrecondition, 409, "conflict"},
      {StatusCode::kResourceExhausted, 429, "rate_limited"},
      {StatusCode::kLlmError, 502, "llm_error"},
      {StatusCode::kUnavailable, 503, "unavailable"},
      {StatusCode::kCancelled, 503, "unavailable"},
      {StatusCode::kDeadlineExceeded, 504, "timeout"},
      {StatusCode::kIoError, 500, "internal"},
      {StatusCode::kCorruption, 500, "internal"},
      {StatusCode::kInternal, 500, "internal"},
      {StatusCode::kUnimplemented, 500, "internal"},
  };
  for (const Case& c : cases) {
    const HttpError error = ErrorForStatus(Status(c.code, "why"));
    EXPECT_EQ(error.status, c.status) << c.name;
    EXPECT_EQ(error.code, c.name);
    EXPECT_EQ(ErrorBody(error),
              std::string(R"({"success":false,"error":"why","code":")") + c.name + "\"}");
  }
}

TEST(ApiCodecTest, PercentDecodeAndTimestamps) {
  EXPECT_EQ(PercentDecode("Bob%20Technique"), "Bob Technique");
  EXPECT_EQ(PercentDecode("%C3%89lodie"), "Élodie");
  EXPECT_EQ(PercentDecode("a%2Fb"), "a/b");
  EXPECT_EQ(PercentDecode("%"), std::nullopt);
  EXPECT_EQ(PercentDecode("%4"), std::nullopt);
  EXPECT_EQ(PercentDecode("%zz"), std::nullopt);
  EXPECT_EQ(FormatRfc3339Millis(1'735'718'400'007), "2025-01-01T08:00:00.007Z");
  EXPECT_EQ(FormatRfc3339Millis(0), "1970-01-01T00:00:00.000Z");
}

// Records what a handler answered; Wait() blocks until the answer is complete.
class RecordingResponder final : public Responder {
 public:
  void Send(HttpResponse response) override {
    std::lock_guard lock(mu_);
    response_ = std::move(response);
    complete_ = true;
    cv_.notify_all();
  }
  void StartStream(int status, std::string content_type) override {
    std::lock_guard lock(mu_);
    response_.status = status;
    response_.content_type = std::move(content_type);
  }
  bool Write(std::string data) override {
    std::lock_guard lock(mu_);
    chunks_.push_back(std::move(data));
    return true;
  }
  void End() override {
    std::lock_guard lock(mu_);
    complete_ = true;
    cv_.notify_all();
  }

  HttpResponse Wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return complete_; });
    return response_;
  }
  std::vector<std::string> chunks() {
    std::lock_guard lock(mu_);
    return chunks_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  HttpResponse response_;
  std::vector<std::string> chunks_;
  bool complete_ = false;
};

class ApiTest : public ::testing::Test {
 protected:
  ApiTest() {
    RegistryOptions registry;
    registry.path = dir_.File("registry.db");
    registry.clock = &clock_;
    registry.locrits_dir = (dir_.path() / "locrits").string();
    registry_ = std::move(LocritRegistry::Open(registry).value());
    LocritConfig bob;
    bob.name = "Bob Technique";
    bob.description = "technicien";
    EXPECT_THAT(registry_->Create(bob), IsOk());
    LocritConfig off = bob;
    off.name = "Endormi";
    off.active = false;
    off.embedding_model = "nomic-embed-text";
    EXPECT_THAT(registry_->Create(off), IsOk());

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
    chat.max_message_chars = 10;
    chat_ = std::make_unique<ChatService>(chat);
    ConversationStoreOptions conversations;
    conversations.path = dir_.File("conversations.db");
    conversations.clock = &clock_;
    conversations_ = std::move(ConversationStore::Open(conversations).value());
    ApiOptions api;
    api.registry = registry_.get();
    api.chat = chat_.get();
    api.memory = memory_.get();
    api.conversations = conversations_.get();
    api.pool = &pool_;
    api.llm = &llm_;
    api.clock = &clock_;
    api.version = "9.9.9";
    api.max_message_chars = 10;
    api.access.allowed_hosts = {"localhost", "127.0.0.1", "[::1]"};
    api_ = std::make_unique<Api>(api);
  }
  ~ApiTest() override { memory_->Shutdown(); }

  std::pair<HttpResponse, std::shared_ptr<RecordingResponder>> Call(
      std::string method, std::string target, std::string body = "",
      std::string content_type = "application/json", std::string host = "127.0.0.1:8000") {
    HttpRequest request;
    request.method = std::move(method);
    request.target = std::move(target);
    request.content_type = std::move(content_type);
    request.host = std::move(host);
    request.body = std::move(body);
    request.from_loopback = true;
    auto responder = std::make_shared<RecordingResponder>();
    api_->Handle(request, responder);
    return {responder->Wait(), responder};
  }

  static json::object Body(const HttpResponse& r) { return json::parse(r.body).as_object(); }

  TempDir dir_;
  FakeClock clock_;
  IdGenerator ids_{&clock_, 7};
  ThreadPool pool_{2};
  LlmRuntime llm_;
  std::unique_ptr<LocritRegistry> registry_;
  std::unique_ptr<ConversationStore> conversations_;
  std::unique_ptr<MemoryManager> memory_;
  std::unique_ptr<ChatService> chat_;
  std::unique_ptr<Api> api_;
};

TEST_F(ApiTest, HealthAndReadiness) {
  auto [health, r1] = Call("GET", "/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(Body(health)["version"], "9.9.9");
  EXPECT_EQ(Call("GET", "/health").first.status, 200);
  EXPECT_EQ(Call("GET", "/readyz").first.status, 200);
  api_->SetDraining();
  auto [ready, r2] = Call("GET", "/readyz");
  EXPECT_EQ(ready.status, 503);
  EXPECT_EQ(Body(ready)["code"], "unavailable");
  auto [chat, r3] = Call("POST", "/api/locrits/Bob%20Technique/chat", R"({"message":"x"})");
  EXPECT_EQ(chat.status, 503);
}

TEST_F(ApiTest, ListAndGet) {
  auto [list, r1] = Call("GET", "/api/locrits?limit=5");
  ASSERT_EQ(list.status, 200);
  json::object body = Body(list);
  EXPECT_EQ(body["count"], 2);
  json::object bob = body["locrits"].as_array()[0].as_object();
  EXPECT_EQ(bob["name"], "Bob Technique");
  EXPECT_TRUE(bob["system_prompt"].is_null());
  EXPECT_TRUE(bob["embedding_model"].is_null());
  EXPECT_EQ(body["locrits"].as_array()[1].as_object()["embedding_model"], "nomic-embed-text");
  EXPECT_EQ(bob["memory"].as_object()["context_messages"], 20);
  EXPECT_EQ(bob["created_at"], "2025-01-01T08:00:00.000Z");
  EXPECT_EQ(Call("GET", "/api/locrits/bob%20technique").first.status, 200);
  EXPECT_EQ(Call("GET", "/api/locrits/Bob%20Technique/config").first.status, 200);
  EXPECT_EQ(Call("GET", "/api/locrits/nobody").first.status, 404);
}

TEST(ChatLocritOfTest, TheEmbeddingModelReachesTheTurnsLlmSettings) {
  LocritConfig config;
  config.name = "Hybride";
  config.model = "llama3.2";
  config.llm.provider = LocritProvider::kOllama;
  EXPECT_EQ(Api::ChatLocritOf(config, {}).llm->embedding_model, "") << "none: bm25 alone";
  config.embedding_model = "nomic-embed-text";
  const ChatLocrit locrit = Api::ChatLocritOf(config, {});
  ASSERT_TRUE(locrit.llm.has_value());
  EXPECT_EQ(locrit.llm->embedding_model, "nomic-embed-text");
  EXPECT_TRUE(ChatService::EmbeddingTargetOf(locrit).has_value());
}

TEST_F(ApiTest, RoutingErrors) {
  auto [unknown, r1] = Call("GET", "/api/unknown");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(Body(unknown)["code"], "not_found");
  auto [method, r2] = Call("PUT", "/healthz");
  EXPECT_EQ(method.status, 405);
  EXPECT_THAT(method.headers, ElementsAre(std::pair<std::string, std::string>("Allow", "GET")));
  auto [host, r3] = Call("GET", "/healthz", "", "", "evil.example:8000");
  EXPECT_EQ(host.status, 403);
  EXPECT_EQ(Body(host)["code"], "forbidden");
  EXPECT_EQ(Call("GET", "/healthz", "", "", "LOCALHOST:1").first.status, 200);
  EXPECT_EQ(Call("GET", "/healthz", "", "", "[::1]:8000").first.status, 200);
}

TEST_F(ApiTest, ChatValidation) {
  struct Case {
    std::string target;
    std::string content_type;
    std::string body;
    int status;
    const char* code;
  };
  const std::string chat = "/api/locrits/Bob%20Technique/chat";
  const Case cases[] = {
      {chat, "text/plain", R"({"message":"x"})", 415, "unsupported_media_type"},
      {chat, "application/json; charset=utf-8", "{", 400, "invalid_argument"},
      {chat, "application/json", R"({"message":true})", 400, "invalid_argument"},
      {chat, "application/json", R"({"message":"x","user_id":[]})", 400, "invalid_argument"},
      {chat, "application/json", R"({"message":"x","conversation_id":1})", 400,
       "invalid_argument"},
      {chat, "application/json", "{\"message\":\"\xed\xa0\x80\"}", 400, "invalid_argument"},
      {chat, "application/json", R"({"message":"onze lettres"})", 413, "payload_too_large"},
      {"/api/locrits/Endormi/chat", "application/json", R"({"message":"x"})", 403, "forbidden"},
      {"/api/locrits/Nobody/chat/stream", "application/json", R"({"message":"x"})", 404,
       "not_found"},
  };
  for (const Case& c : cases) {
    auto [response, r] = Call("POST", c.target, c.body, c.content_type);
    EXPECT_EQ(response.status, c.status) << c.body;
    EXPECT_EQ(Body(response)["code"], c.code) << c.body;
  }
}

TEST_F(ApiTest, ChatAndStreamThroughTheResponder) {
  auto [reply, r1] = Call("POST", "/api/locrits/Bob%20Technique/chat",
                          R"({"message":"bonjour","user_id":"u1","extra":1})");
  ASSERT_EQ(reply.status, 200) << reply.body;
  json::object body = Body(reply);
  EXPECT_EQ(body["model"], "recall");
  EXPECT_EQ(body["locrit_name"], "Bob Technique");
  const std::string session(body["session_id"].as_string());

  auto [stream, responder] =
      Call("POST", "/api/locrits/Bob%20Technique/chat/stream",
           R"({"message":"bonjour ?","session_id":")" + session + "\"}");
  EXPECT_EQ(stream.status, 200);
  EXPECT_EQ(stream.content_type, "text/event-stream");
  const std::vector<std::string> chunks = responder->chunks();
  ASSERT_GE(chunks.size(), 2u);
  for (const std::string& c : chunks) {
    EXPECT_TRUE(c.starts_with("data: ")) << c;
    EXPECT_TRUE(c.ends_with("\n\n")) << c;
  }
  json::object done = json::parse(chunks.back().substr(6)).as_object();
  EXPECT_EQ(done["done"], true);
  EXPECT_EQ(done["session_id"].as_string(), session);
  // The turn leaves the count just after its last answer reaches the responder, on the turn's
  // own thread: wait (bounded) for that rather than race it.
  for (int i = 0; i < 500 && api_->TurnsInFlight() != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(api_->TurnsInFlight(), 0);
}

TEST_F(ApiTest, ConversationLifecycle) {
  auto [created, r1] = Call("POST", "/api/conversations/create",
                            R"({"locrit_name":"bob technique","user_id":"alice","metadata":{"a":1}})");
  ASSERT_EQ(created.status, 201) << created.body;
  json::object c = Body(created);
  EXPECT_EQ(c["locrit_name"], "Bob Technique");
  const std::string id(c["conversation_id"].as_string());
  EXPECT_EQ(c["session_id"].as_string(), id);
  auto [fresh, r0] = Call("GET", "/api/conversations/" + id);
  ASSERT_EQ(fresh.status, 200) << "no message yet: " << fresh.body;
  EXPECT_TRUE(Body(fresh)["messages"].as_array().empty());

  auto [said, r2] = Call("POST", "/api/conversations/" + id + "/message", R"({"message":"salut"})");
  ASSERT_EQ(said.status, 200) << said.body;
  EXPECT_EQ(Body(said)["conversation_id"].as_string(), id);
  EXPECT_EQ(Body(said)["message_count"], 2);
  EXPECT_EQ(Body(said)["session_id"].as_string(), id);

  // The legacy route joins the same conversation by id; its session and user win.
  auto [legacy, r3] = Call("POST", "/api/locrits/Bob%20Technique/chat",
                           R"({"message":"encore","conversation_id":")" + id +
                               R"(","session_id":"other"})");
  ASSERT_EQ(legacy.status, 200) << legacy.body;
  EXPECT_EQ(Body(legacy)["session_id"].as_string(), id);
  EXPECT_EQ(Body(legacy)["message_count"], 4);

  auto [read, r4] = Call("GET", "/api/conversations/" + id + "?limit=3");
  ASSERT_EQ(read.status, 200) << read.body;
  json::object full = Body(read);
  EXPECT_EQ(full["user_id"], "alice");
  EXPECT_EQ(full["message_count"], 4);
  const json::array& messages = full["messages"].as_array();
  ASSERT_EQ(messages.size(), 3u) << "the newest three, oldest first";
  EXPECT_EQ(messages[0].at("role"), "assistant");
  EXPECT_EQ(messages[1].at("content"), "encore");
  EXPECT_EQ(messages[1].at("user_id"), "alice");
  EXPECT_EQ(messages[2].at("role"), "assistant");

  auto [info, r5] = Call("GET", "/api/conversations/" + id + "/info");
  ASSERT_EQ(info.status, 200);
  EXPECT_FALSE(Body(info)["conversation"].as_object().contains("messages"));
  EXPECT_EQ(Body(info)["conversation"].at("metadata").at("a"), 1);

  Call("POST", "/api/conversations/create", R"({"locrit_name":"Bob Technique","user_id":"carol"})");
  auto [mine, r6] = Call("GET", "/api/conversations?user_id=alice&locrit_name=Bob%20Technique");
  ASSERT_EQ(mine.status, 200);
  EXPECT_EQ(Body(mine)["count"], 1);
  auto [all, r7] = Call("GET", "/api/conversations");
  EXPECT_EQ(Body(all)["count"], 2);

  auto [gone, r8] = Call("DELETE", "/api/conversations/" + id);
  EXPECT_EQ(gone.status, 200);
  EXPECT_EQ(Call("GET", "/api/conversations/" + id).first.status, 404);
  // Without purge, its messages stay in the Locrit's memory.
  auto [history, r9] = Call("POST", "/api/locrits/Bob%20Technique/chat",
                            R"({"message":"et alors","session_id":")" + id + "\"}");
  EXPECT_EQ(history.status, 200);
}

TEST_F(ApiTest, ConversationPurgeDeletesItsMessages) {
  auto [created, r1] =
      Call("POST", "/api/conversations/create", R"({"locrit_name":"Bob Technique"})");
  const std::string id(Body(created)["conversation_id"].as_string());
  EXPECT_EQ(Body(created)["success"], true);
  ASSERT_EQ(Call("POST", "/api/conversations/" + id + "/message", R"({"message":"salut"})")
                .first.status,
            200);
  auto [purged, r2] = Call("DELETE", "/api/conversations/" + id + "?purge=true");
  ASSERT_EQ(purged.status, 200) << purged.body;

  const LocritConfig bob = registry_->Get("Bob Technique").value();
  std::promise<Result<std::vector<Message>>> promise;
  memory_->Get(bob.slug, {}, [&](Result<MemoryManager::Handle> memory) {
    ASSERT_THAT(memory, IsOk());
    (*memory)->Read<std::vector<Message>>(
        [id](MemoryStore& m) {
          HistoryQuery query;
          query.session_id = id;
          return m.History(query);
        },
        [&](Result<std::vector<Message>> r) { promise.set_value(std::move(r)); });
  });
  EXPECT_THAT(promise.get_future().get(), StatusIs(StatusCode::kNotFound))
      << "the session is gone with its messages";
}

TEST_F(ApiTest, ConversationErrors) {
  struct Case {
    std::string method, target, body;
    int status;
    std::string code;
  };
  auto [other, r] = Call("POST", "/api/conversations/create", R"({"locrit_name":"Bob Technique"})");
  const std::string id(Body(other)["conversation_id"].as_string());
  LocritConfig eve;
  eve.name = "Eve";
  eve.description = "autre";
  ASSERT_THAT(registry_->Create(eve), IsOk());
  const Case cases[] = {
      {"POST", "/api/conversations/create", R"({})", 400, "invalid_argument"},
      {"POST", "/api/conversations/create", R"({"locrit_name":5})", 400, "invalid_argument"},
      {"POST", "/api/conversations/create", R"({"locrit_name":"Nobody"})", 404, "not_found"},
      {"POST", "/api/conversations/create", R"({"locrit_name":"Endormi"})", 403, "forbidden"},
      {"POST", "/api/conversations/create", R"({"locrit_name":"Eve","metadata":[1]})", 400,
       "invalid_argument"},
      {"POST", "/api/conversations/create", R"({"locrit_name":"Eve","user_id":""})", 400,
       "invalid_argument"},
      {"GET", "/api/conversations/create", "", 405, "method_not_allowed"},
      {"POST", "/api/conversations/0123/message", R"({"message":"x"})", 404, "not_found"},
      {"POST", "/api/conversations/" + id + "/message", R"({"nope":"x"})", 400,
       "invalid_argument"},
      {"POST", "/api/conversations/" + id + "/message", R"({"message":"onze lettres"})", 413,
       "payload_too_large"},
      {"GET", "/api/conversations/" + id + "/message", "", 405, "method_not_allowed"},
      {"PUT", "/api/conversations/" + id, "", 405, "method_not_allowed"},
      {"GET", "/api/conversations/" + id + "?limit=0", "", 400, "invalid_argument"},
      {"GET", "/api/conversations/" + id + "?limit=abc", "", 400, "invalid_argument"},
      {"GET", "/api/conversations?limit=100000", "", 400, "invalid_argument"},
      {"GET", "/api/conversations?locrit_name=Nobody", "", 404, "not_found"},
      {"GET", "/api/conversations/" + id + "/other", "", 404, "not_found"},
      {"DELETE", "/api/conversations/" + id + "?purge=maybe", "", 400, "invalid_argument"},
      {"POST", "/api/locrits/Eve/chat", R"({"message":"x","conversation_id":")" + id + "\"}", 400,
       "invalid_argument"},
      {"POST", "/api/locrits/Eve/chat", R"({"message":"x","conversation_id":"missing"})", 404,
       "not_found"},
  };
  for (const Case& c : cases) {
    auto [response, rr] = Call(c.method, c.target, c.body);
    EXPECT_EQ(response.status, c.status) << c.method << " " << c.target << " " << c.body << " -> "
                                         << response.body;
    EXPECT_EQ(Body(response)["code"], json::value(c.code)) << c.target;
  }
}

TEST_F(ApiTest, PublicRoutesAndTheirGates) {
  LocritConfig open;
  open.name = "Ouverte";
  open.description = "publique";
  open.system_prompt = "secret prompt";
  open.llm.provider = LocritProvider::kOllama;
  open.llm.url = "http://10.0.0.7:11434";
  open.model = "m";
  open.open_to.internet = true;
  ASSERT_THAT(registry_->Create(open), IsOk());
  LocritConfig closed = open;
  closed.name = "Fermee";
  closed.open_to.locrits = false;
  closed.open_to.internet = false;
  closed.access_to.llm_info = false;
  ASSERT_THAT(registry_->Create(closed), IsOk());

  auto [ping, r1] = Call("GET", "/api/v1/ping");
  ASSERT_EQ(ping.status, 200);
  EXPECT_EQ(Body(ping)["message"], "Locrit API v1 is running");
  EXPECT_EQ(Body(ping)["version"], "9.9.9");

  // Discovery: active && open_to.locrits (Bob, Ouverte), no secrets anywhere.
  auto [v1, r2] = Call("GET", "/api/v1/locrits");
  ASSERT_EQ(v1.status, 200);
  EXPECT_EQ(Body(v1)["count"], 2);
  EXPECT_THAT(v1.body, Not(HasSubstr("secret prompt")));
  EXPECT_THAT(v1.body, Not(HasSubstr("10.0.0.7")));
  EXPECT_THAT(v1.body, Not(HasSubstr("system_prompt")));
  EXPECT_THAT(v1.body, Not(HasSubstr("Endormi")));
  EXPECT_THAT(v1.body, Not(HasSubstr("Fermee")));
  auto [info, r3] = Call("GET", "/api/v1/locrits/ouverte/info");
  ASSERT_EQ(info.status, 200);
  EXPECT_EQ(Body(info)["locrit"].as_object()["model"], "m");
  EXPECT_FALSE(Body(info)["locrit"].as_object().contains("llm"));

  auto [pub, r4] = Call("GET", "/public/list");
  ASSERT_EQ(pub.status, 200);
  EXPECT_EQ(Body(pub)["count"], 1);
  EXPECT_EQ(Body(pub)["locrits"].as_array()[0].as_object()["name"], "Ouverte");

  struct Case {
    std::string method;
    std::string target;
    int status;
  };
  const std::string msg = R"({"message":"salut"})";
  const Case cases[] = {
      {"GET", "/api/v1/locrits/Fermee/info", 403},
      {"GET", "/api/v1/locrits/Endormi/info", 403},
      {"GET", "/api/v1/locrits/Nobody/info", 404},
      {"POST", "/api/v1/locrits/Fermee/chat", 403},
      {"POST", "/api/v1/locrits/Endormi/chat/stream", 403},
      {"GET", "/public/Fermee", 403},
      {"GET", "/public/Bob%20Technique", 403},
      {"POST", "/public/Bob%20Technique/chat", 403},
      {"POST", "/public/Endormi/chat", 403},
      {"GET", "/public/Ouverte", 200},
      {"GET", "/public/Ouverte/chat", 405},
      {"POST", "/api/v1/locrits", 405},
      {"GET", "/api/v1/nothing", 404},
      {"GET", "/public/Ouverte/other", 404},
  };
  for (const Case& c : cases) {
    auto [response, r] = Call(c.method, c.target, c.method == "POST" ? msg : "");
    EXPECT_EQ(response.status, c.status) << c.method << " " << c.target << " " << response.body;
  }
}

TEST_F(ApiTest, V1AndPublicChatTakeTheSenderAsTheUser) {
  LocritConfig open;
  open.name = "Ouverte";
  open.description = "publique";
  open.open_to.internet = true;
  ASSERT_THAT(registry_->Create(open), IsOk());

  auto [v1, r1] = Call("POST", "/api/v1/locrits/Ouverte/chat",
                       R"({"message":"salut","sender_name":"Autre","sender_type":"locrit",)"
                       R"("context":{"k":1}})");
  ASSERT_EQ(v1.status, 200) << v1.body;
  EXPECT_EQ(Body(v1)["sender_acknowledged"], true);
  EXPECT_EQ(Body(v1)["locrit_name"], "Ouverte");

  auto [stream, responder] =
      Call("POST", "/api/v1/locrits/Ouverte/chat/stream", R"({"message":"encore"})");
  ASSERT_EQ(stream.status, 200);
  json::object done = json::parse(responder->chunks().back().substr(6)).as_object();
  EXPECT_EQ(done["done"], true);
  EXPECT_EQ(done["sender_acknowledged"], true);

  auto [pub, r2] =
      Call("POST", "/public/Ouverte/chat", R"({"message":"bonjour","visitor_name":"Zoé"})");
  ASSERT_EQ(pub.status, 200) << pub.body;
  EXPECT_FALSE(Body(pub).contains("sender_acknowledged"));
  // Public channels never name a conversation: the field is ignored, not looked up.
  auto [no_conversation, r3] = Call("POST", "/public/Ouverte/chat",
                                    R"({"message":"re","conversation_id":"not-a-conversation"})");
  EXPECT_EQ(no_conversation.status, 200) << no_conversation.body;

  const std::string v1chat = "/api/v1/locrits/Ouverte/chat";
  EXPECT_EQ(Call("POST", v1chat, R"({"message":"x","sender_name":1})").first.status, 400);
  EXPECT_EQ(Call("POST", v1chat, R"({"message":"x","context":1})").first.status, 400);
  EXPECT_EQ(Call("POST", "/public/Ouverte/chat", R"({"message":"x","visitor_name":[]})")
                .first.status,
            400);
  for (int i = 0; i < 500 && api_->TurnsInFlight() != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

TEST_F(ApiTest, OperatorRoutesAnswer401ToPublicCallers) {
  ApiOptions options;
  options.registry = registry_.get();
  options.chat = chat_.get();
  options.clock = &clock_;
  options.access.local_mode = false;
  options.access.admin_token_hashes = {HashAdminToken("lct_admin-token-for-tests")};
  Api api(options);
  auto call = [&](std::string target, std::string authorization) {
    HttpRequest request;
    request.method = "GET";
    request.target = std::move(target);
    request.host = "127.0.0.1:8000";
    request.authorization = std::move(authorization);
    request.from_loopback = true;
    auto responder = std::make_shared<RecordingResponder>();
    api.Handle(request, responder);
    return responder->Wait();
  };
  const HttpResponse missing = call("/api/locrits", "");
  EXPECT_EQ(missing.status, 401);
  EXPECT_EQ(Body(missing)["code"], "unauthorized");
  EXPECT_THAT(missing.headers,
              ElementsAre(std::pair<std::string, std::string>("WWW-Authenticate", "Bearer")));
  const HttpResponse wrong = call("/api/locrits/Bob%20Technique", "Bearer nope");
  EXPECT_EQ(wrong.status, 401);
  EXPECT_THAT(wrong.headers, ElementsAre(std::pair<std::string, std::string>(
                                 "WWW-Authenticate", R"(Bearer error="invalid_token")")));
  EXPECT_EQ(call("/api/locrits", "Bearer lct_admin-token-for-tests").status, 200);
  EXPECT_EQ(call("/api/locrits?token=lct_admin-token-for-tests", "").status, 200);
  // Public routes still answer callers without (or with a wrong) token.
  EXPECT_EQ(call("/api/v1/locrits", "").status, 200);
  EXPECT_EQ(call("/api/v1/locrits", "Bearer nope").status, 200);
  EXPECT_EQ(call("/healthz", "").status, 200);
}

// ---- Memory routes (/api/locrits/{name}/memory/...) ----

class MemoryApiTest : public ApiTest {
 protected:
  static constexpr const char* kBob = "/api/locrits/Bob%20Technique/memory";

  // Status and JSON body of a call on the memory routes of Bob Technique.
  std::pair<int, json::object> M(const std::string& method, const std::string& path,
                                 const std::string& body = "",
                                 const std::string& content_type = "application/json") {
    auto [response, r] = Call(method, kBob + path, body, content_type);
    if (response.content_type != "application/json") return {response.status, {}};
    return {response.status, Body(response)};
  }
  std::string Chat(const std::string& message, const std::string& session) {
    auto [reply, r] = Call("POST", "/api/locrits/Bob%20Technique/chat",
                           R"({"message":")" + message + R"(","session_id":")" + session + "\"}");
    EXPECT_EQ(reply.status, 200) << reply.body;
    return std::string(Body(reply)["user_message_id"].as_string());
  }
  // An Api for public callers (not local mode: nobody is the operator without a token).
  std::unique_ptr<Api> PublicApi() {
    ApiOptions api;
    api.registry = registry_.get();
    api.chat = chat_.get();
    api.memory = memory_.get();
    api.conversations = conversations_.get();
    api.pool = &pool_;
    api.clock = &clock_;
    api.access.local_mode = false;
    return std::make_unique<Api>(api);
  }
  std::pair<int, json::object> CallOn(Api& api, const std::string& method,
                                      const std::string& target, const std::string& body = "") {
    HttpRequest request;
    request.method = method;
    request.target = target;
    request.content_type = "application/json";
    request.host = "127.0.0.1:8000";
    request.body = body;
    auto responder = std::make_shared<RecordingResponder>();
    api.Handle(request, responder);
    HttpResponse response = responder->Wait();
    return {response.status, Body(response)};
  }
};

TEST_F(MemoryApiTest, ReadsWhatChatSavedAndEditsMessages) {
  const std::string first = Chat("bonjour", "s1");
  Chat("pomme", "s1");
  Chat("poire", "s2");

  auto [status, summary] = M("GET", "/summary");
  ASSERT_EQ(status, 200);
  EXPECT_EQ(summary["locrit_name"], "Bob Technique");
  EXPECT_EQ(summary["statistics"].as_object()["total_messages"], 6);
  EXPECT_EQ(summary["statistics"].as_object()["total_sessions"], 2);
  EXPECT_EQ(summary["sessions"].as_array().size(), 2u);
  EXPECT_EQ(summary["recent_messages"].as_array().size(), 6u);

  auto [s2, stats] = M("GET", "/stats");
  EXPECT_EQ(stats["access_level"], "operator");
  EXPECT_EQ(stats["statistics"].as_object()["total_messages"], 6);

  auto [s3, sessions] = M("GET", "/sessions");
  EXPECT_EQ(sessions["count"], 2);
  auto [s4, one] = M("GET", "/sessions/s1");
  EXPECT_EQ(one["session"].as_object()["message_count"], 4);

  // Chronological, with a `before` cursor by seq or by message id.
  auto [s5, page] = M("GET", "/sessions/s1/messages?limit=3");
  ASSERT_EQ(s5, 200);
  json::array messages = page["messages"].as_array();
  ASSERT_EQ(messages.size(), 3u);
  EXPECT_EQ(page["total"], 4);
  EXPECT_EQ(messages[0].as_object()["role"], "assistant");
  EXPECT_EQ(messages[1].as_object()["content"], "pomme");
  EXPECT_LT(messages[0].as_object()["seq"].as_int64(), messages[1].as_object()["seq"].as_int64());
  const int64_t next = page["next_before"].as_int64();
  auto [s6, older] = M("GET", "/sessions/s1/messages?before=" + std::to_string(next));
  ASSERT_EQ(older["messages"].as_array().size(), 1u);
  EXPECT_EQ(older["messages"].as_array()[0].as_object()["id"], json::value(first));
  auto [s7, by_id] = M("GET", "/sessions/s1/messages?before=" + first);
  EXPECT_EQ(s7, 200);
  EXPECT_TRUE(by_id["messages"].as_array().empty());
  EXPECT_EQ(M("GET", "/sessions/s2/messages?before=" + first).first, 400);
  EXPECT_EQ(M("GET", "/sessions/nope/messages").first, 404);

  auto [s8, found] = M("GET", "/search?q=pomme");
  ASSERT_EQ(s8, 200);
  EXPECT_EQ(found["mode"], "keyword");
  ASSERT_GE(found["total"].as_int64(), 1);
  json::object hit = found["results"].as_array()[0].as_object();
  EXPECT_EQ(hit["type"], "message");
  EXPECT_THAT(std::string(hit["snippet"].as_string()), HasSubstr("[pomme]"));
  auto [s9, semantic] = M("GET", "/search?q=pomme&mode=semantic");
  EXPECT_EQ(s9, 400) << "no embedding model: no semantic search";
  EXPECT_THAT(std::string(semantic["error"].as_string()), HasSubstr("embedding_model"));
  auto [s9b, automatic] = M("GET", "/search?q=pomme&mode=auto");
  EXPECT_EQ(automatic["mode"], "keyword") << "auto without an embedding model";

  // Edit: the search follows; delete: gone.
  auto [s10, edited] = M("PUT", "/messages/" + first, R"({"content":"ananas"})");
  ASSERT_EQ(s10, 200) << edited;
  EXPECT_EQ(edited["message"].as_object()["content"], "ananas");
  EXPECT_EQ(M("GET", "/search?q=ananas").second["total"], 1);
  EXPECT_EQ(M("GET", "/search?q=bonjour&session_id=s1").second["total"], 0);
  EXPECT_EQ(M("PUT", "/messages/" + first, R"({"content":""})").first, 400);
  EXPECT_EQ(M("PUT", "/messages/" + first, R"({"content":"onze lettres"})").first, 413);
  EXPECT_EQ(M("PUT", "/messages/" + first, R"({"text":"x"})").second["error"],
            json::value("content is required"));
  EXPECT_EQ(M("DELETE", "/messages/" + first).first, 200);
  EXPECT_EQ(M("GET", "/messages/" + first).first, 404);
  EXPECT_EQ(M("DELETE", "/messages/" + first).first, 404);
  EXPECT_EQ(M("PUT", "/messages/missing", R"({"content":"x"})").first, 404);

  EXPECT_EQ(M("DELETE", "/sessions/s2").first, 200);
  EXPECT_EQ(M("GET", "/sessions/s2").first, 404);
}

TEST_F(MemoryApiTest, MemoriesCrudValidatesImportance) {
  struct Case {
    std::string body;
    int status;
    std::string error;
  };
  const Case bad[] = {
      {R"({"importance":0.5})", 400, "content is required"},
      {R"({"content":"x","importance":1.5})", 400, "importance must be a number from 0 to 1"},
      {R"({"content":"x","importance":-0.1})", 400, "importance must be a number from 0 to 1"},
      {R"({"content":"x","importance":"haute"})", 400, "importance must be a number from 0 to 1"},
      {R"({"content":"x","metadata":[]})", 400, "metadata must be a JSON object"},
      {R"({"content":7})", 400, "content must be a string"},
  };
  for (const Case& c : bad) {
    auto [status, body] = M("POST", "/memories", c.body);
    EXPECT_EQ(status, c.status) << c.body;
    EXPECT_EQ(body["error"], json::value(c.error)) << c.body;
  }
  auto [s1, created] = M("POST", "/memories", R"({"content":"chat noir","importance":0.9,
                                                   "metadata":{"source":"test"}})");
  ASSERT_EQ(s1, 200) << created;
  json::object memory = created["memory"].as_object();
  const std::string id(memory["id"].as_string());
  EXPECT_EQ(memory["importance"], 0.9);
  EXPECT_EQ(memory["metadata"].as_object()["source"], "test");
  M("POST", "/memories", R"({"content":"chien"})");
  auto [s2, list] = M("GET", "/memories");
  ASSERT_EQ(list["count"], 2);
  EXPECT_EQ(list["memories"].as_array()[0].as_object()["id"], json::value(id));  // Most important first.

  auto [s3, edited] = M("PUT", "/memories/" + id, R"({"importance":0.1})");
  ASSERT_EQ(s3, 200);
  EXPECT_EQ(edited["memory"].as_object()["importance"], 0.1);
  EXPECT_EQ(edited["memory"].as_object()["content"], "chat noir");
  EXPECT_EQ(M("PUT", "/memories/" + id, R"({"importance":2})").first, 400);
  EXPECT_EQ(M("PUT", "/memories/" + id, "{}").first, 400);
  EXPECT_EQ(M("PUT", "/memories/nope", R"({"importance":0.2})").first, 404);
  EXPECT_EQ(M("GET", "/search?q=chat").second["results"].as_array()[0].as_object()["type"],
            "memory");
  EXPECT_EQ(M("DELETE", "/memories/" + id).first, 200);
  EXPECT_EQ(M("GET", "/memories/" + id).first, 404);
  EXPECT_EQ(M("DELETE", "/memories/" + id).first, 404);
}

TEST_F(MemoryApiTest, ConceptsRelationsAndGraph) {
  std::map<std::string, std::string> ids;
  for (const char* name : {"Rust", "Cargo", "Crates", "Python"}) {
    auto [status, body] = M("POST", "/concepts",
                            std::string(R"({"name":")") + name + R"(","type":"tech"})");
    ASSERT_EQ(status, 200) << body;
    ids[name] = std::string(body["concept"].as_object()["id"].as_string());
  }
  auto relate = [&](const std::string& from, const std::string& to) {
    return M("POST", "/relations",
             R"({"from":{"type":"concept","id":")" + from + R"("},"rel":"RELATES_TO",)" +
                 R"("to":{"type":"concept","id":")" + to + R"("},"properties":{"strength":0.7}})");
  };
  auto [s1, rel] = relate(ids["Rust"], ids["Cargo"]);
  ASSERT_EQ(s1, 200) << rel;
  EXPECT_EQ(rel["relation"].as_object()["rel"], "RELATES_TO");
  EXPECT_EQ(relate(ids["Cargo"], ids["Crates"]).first, 200);
  EXPECT_EQ(relate(ids["Cargo"], "missing").first, 404);

  struct Case {
    std::string body;
    std::string error;
  };
  const Case bad[] = {
      {R"({"from":{"type":"concept","id":"a"},"rel":"LIKES","to":{"type":"concept","id":"b"}})",
       "rel is not a relation type: LIKES"},
      {R"({"from":{"type":"message","id":"a"},"rel":"RELATES_TO","to":{"type":"concept","id":"b"}})",
       "from.type must be concept for this rel"},
      {R"({"from":{"type":"concept","id":"a"},"rel":"RELATES_TO"})",
       "to must be an object {type, id}"},
      {R"({"from":{"type":"concept"},"rel":"RELATES_TO","to":{"type":"concept","id":"b"}})",
       "from.id is required"},
      {R"({"from":{"type":"concept","id":"a"},"rel":"RELATES_TO","to":{"type":"concept","id":"b"},"properties":{"strength":"x"}})",
       "properties.strength must be a number"},
  };
  for (const Case& c : bad) {
    auto [status, body] = M("POST", "/relations", c.body);
    EXPECT_EQ(status, 400) << c.body;
    EXPECT_EQ(body["error"], json::value(c.error)) << c.body;
  }

  auto [s2, near] = M("GET", "/concepts/rust/related?depth=1");
  ASSERT_EQ(s2, 200) << near;
  ASSERT_EQ(near["total"], 1);
  EXPECT_EQ(near["related"].as_array()[0].as_object()["name"], "Cargo");
  auto [s3, far] = M("GET", "/concepts/" + ids["Rust"] + "/related?depth=5");
  ASSERT_EQ(far["total"], 2);
  EXPECT_EQ(far["related"].as_array()[1].as_object()["depth"], 2);
  EXPECT_EQ(M("GET", "/concepts/Rust/related?depth=99").second["error"],
            "depth must be an integer from 1 to 5");
  EXPECT_EQ(M("GET", "/concepts/Rust/related?depth=0").first, 400);
  EXPECT_EQ(M("GET", "/concepts/Nothing/related").first, 404);

  auto [s4, details] = M("GET", "/concepts/details?name=cargo");
  ASSERT_EQ(s4, 200);
  EXPECT_EQ(details["relations"].as_array().size(), 2u);
  EXPECT_EQ(M("GET", "/concepts/details").second["error"], "name is required");
  EXPECT_EQ(M("GET", "/concepts/details?name=Nothing").first, 404);

  auto [s5, edited] = M("PUT", "/concepts/" + ids["Python"], R"({"confidence":0.25})");
  ASSERT_EQ(s5, 200) << edited;
  EXPECT_EQ(edited["concept"].as_object()["confidence"], 0.25);
  EXPECT_EQ(M("PUT", "/concepts/" + ids["Python"], R"({"confidence":3})").first, 400);
  EXPECT_EQ(M("GET", "/concepts").second["count"], 4);

  auto [s6, graph] = M("GET", "/graph?limit=50");
  ASSERT_EQ(s6, 200);
  EXPECT_EQ(graph["nodes"].as_array().size(), 4u);
  EXPECT_EQ(graph["edges"].as_array().size(), 2u);

  const std::string rel_id(rel["relation"].as_object()["id"].as_string());
  EXPECT_EQ(M("DELETE", "/relations/" + rel_id).first, 200);
  EXPECT_EQ(M("DELETE", "/relations/" + rel_id).first, 404);
  EXPECT_EQ(M("DELETE", "/concepts/" + ids["Python"]).first, 200);
  EXPECT_EQ(M("GET", "/concepts/" + ids["Python"]).first, 404);
}

TEST_F(MemoryApiTest, HostileParametersGetPreciseErrors) {
  Chat("bonjour", "s1");
  struct Case {
    std::string method;
    std::string path;
    int status;
    std::string error;  // Empty: only the status is checked.
  };
  const std::string limit_error =
      "limit must be an integer of at least 1 (larger values are clamped to 1000)";
  const Case cases[] = {
      {"GET", "/sessions?limit=-1", 400, limit_error},
      {"GET", "/sessions?limit=0", 400, limit_error},
      {"GET", "/sessions?limit=abc", 400, limit_error},
      {"GET", "/sessions?limit=99999999999999999999999", 400, limit_error},
      {"GET", "/search?q=x&limit=-5", 400,
       "limit must be an integer of at least 1 (larger values are clamped to 100)"},
      {"GET", "/search", 400, "q is required"},
      {"GET", "/search?q=x&mode=psychic", 400, "mode must be auto, keyword, semantic or hybrid"},
      {"GET", "/search?q=x&session_id=%01", 400, "session_id contains a control character"},
      {"GET", "/messages/%00", 400, "message id contains a control character"},
      {"GET", "/messages/" + std::string(129, 'a'), 400,
       "message id is longer than 128 characters"},
      {"GET", "/messages/%FF", 400, "message id is not valid UTF-8"},
      {"GET", "/messages/..%2F..%2Fetc%2Fpasswd", 404, ""},
      {"GET", "/memories/..%2F..", 404, ""},
      {"GET", "/sessions/s1/messages?before=-3", 400, ""},
      {"GET", "/sessions/s1/messages?before=nope", 400, "before names no message: nope"},
      {"GET", "/graph?limit=-1", 400, ""},
      {"GET", "/nothing", 404, ""},
      {"GET", "/messages/a/b", 404, ""},
      {"POST", "/summary", 405, ""},
      {"PATCH", "/memories/x", 405, ""},
  };
  for (const Case& c : cases) {
    auto [status, body] = M(c.method, c.path);
    EXPECT_EQ(status, c.status) << c.path;
    if (!c.error.empty()) {
      EXPECT_EQ(body["error"], json::value(c.error)) << c.path;
    }
  }
  // Above the maximum a limit is clamped, not refused.
  auto [status, sessions] = M("GET", "/sessions?limit=1000000");
  EXPECT_EQ(status, 200);
  EXPECT_EQ(sessions["count"], 1);
  EXPECT_EQ(M("GET", "/summary?limit=100000").first, 200);
  EXPECT_EQ(Call("GET", "/api/locrits/Nobody/memory/stats").first.status, 404);
}

TEST_F(MemoryApiTest, ExportClearImportRoundTrip) {
  Chat("bonjour", "s1");
  M("POST", "/memories", R"({"content":"chat noir","importance":0.8})");
  M("POST", "/concepts", R"({"name":"Chat","type":"animal"})");
  const json::object before = M("GET", "/stats").second["statistics"].as_object();

  auto [exported, r1] = Call("GET", std::string(kBob) + "/export");
  ASSERT_EQ(exported.status, 200);
  EXPECT_EQ(exported.content_type, "application/x-ndjson");
  EXPECT_GE(std::count(exported.body.begin(), exported.body.end(), '\n'), 7);

  EXPECT_EQ(M("DELETE", "/clear").first, 400);
  // Without any body, hence without a Content-Type: still the missing confirmation, not a 415.
  auto [bare, r0] = Call("DELETE", std::string(kBob) + "/clear", "", "");
  EXPECT_EQ(bare.status, 400) << bare.body;
  EXPECT_THAT(bare.body, HasSubstr("confirm must be true"));
  EXPECT_EQ(M("DELETE", "/clear", "{}", "text/plain").first, 415) << "a body must still be JSON";
  EXPECT_EQ(M("DELETE", "/clear", R"({"confirm":false})").second["error"],
            "confirm must be true: clearing deletes this Locrit's memory");
  EXPECT_EQ(M("DELETE", "/clear", R"({"confirm":"yes"})").first, 400);
  auto [s1, cleared] = M("DELETE", "/clear", R"({"confirm":true})");
  ASSERT_EQ(s1, 200) << cleared;
  EXPECT_THAT(std::string(cleared["snapshot"].as_string()), ::testing::EndsWith(".db"));
  EXPECT_EQ(M("GET", "/stats").second["statistics"].as_object()["total_messages"], 0);
  auto [s2, health] = M("GET", "/health");
  ASSERT_EQ(s2, 200);
  EXPECT_EQ(health["snapshots"].as_array()[0], cleared["snapshot"]);
  EXPECT_EQ(health["retention"].as_object()["max_messages"], 5000);

  EXPECT_EQ(M("POST", "/import", "", "application/x-ndjson").first, 400);
  EXPECT_EQ(M("POST", "/import", exported.body, "text/plain").first, 415);
  auto [s3, broken] = M("POST", "/import", exported.body + "{oops\n", "application/x-ndjson");
  EXPECT_EQ(s3, 400);
  EXPECT_THAT(std::string(broken["error"].as_string()), HasSubstr("line"));
  EXPECT_EQ(M("GET", "/stats").second["statistics"].as_object()["total_messages"], 0);  // All or nothing.

  auto [s4, imported] = M("POST", "/import", exported.body, "application/x-ndjson");
  ASSERT_EQ(s4, 200) << imported;
  EXPECT_GT(imported["inserted"].as_int64(), 0);
  json::object after = M("GET", "/stats").second["statistics"].as_object();
  after.erase("db_bytes");
  json::object expected = before;
  expected.erase("db_bytes");
  EXPECT_EQ(after, expected);
  auto [s5, again] = M("POST", "/import", exported.body, "application/x-ndjson");
  EXPECT_EQ(again["inserted"], 0);  // Idempotent by id.
  EXPECT_EQ(M("GET", "/search?q=bonjour").second["total"], 1);
}

// Semantic and hybrid search ask the Locrit's own embedding server for the question's vector.
// Memory "chat dort" carries the vector of the words "zzz quux" without containing them, so only
// the vector side can find it.
TEST_F(MemoryApiTest, SemanticAndHybridSearchUseTheQuestionsVector) {
  FakeLlmServer server;
  LocritConfig hybrid;
  hybrid.name = "Hybride";
  hybrid.description = "d";
  hybrid.model = "fake-chat";
  hybrid.llm = {LocritProvider::kOllama, server.url()};
  hybrid.embedding_model = "fake-embed";
  ASSERT_THAT(registry_->Create(hybrid), IsOk());
  const std::string base = "/api/locrits/Hybride/memory";
  auto add = [&](const std::string& content) {
    auto [reply, r] = Call("POST", base + "/memories", R"({"content":")" + content + "\"}");
    EXPECT_EQ(reply.status, 200) << reply.body;
    return std::string(Body(reply)["memory"].as_object()["id"].as_string());
  };
  const std::string quux = add("chat dort");  // At most 10 characters here.
  const std::string soleil = add("zzz soleil");
  const std::string pluie = add("il pleut");
  const std::string slug = registry_->Get("Hybride")->slug;
  std::promise<Status> stored;
  memory_->Get(slug, {}, [&](Result<MemoryManager::Handle> memory) {
    ASSERT_THAT(memory, IsOk());
    (*memory)->Write<bool>(
        [&](MemoryStore& m) -> Result<bool> {
          RETURN_IF_ERROR(m.SetEmbedding(NodeType::kMemory, quux, "fake-embed",
                                         FakeLlmServer::EmbeddingFor("zzz quux")));
          RETURN_IF_ERROR(m.SetEmbedding(NodeType::kMemory, soleil, "fake-embed",
                                         FakeLlmServer::EmbeddingFor("soleil")));
          RETURN_IF_ERROR(m.SetEmbedding(NodeType::kMemory, pluie, "fake-embed",
                                         FakeLlmServer::EmbeddingFor("pluie")));
          return true;
        },
        [&](Result<bool> r) { stored.set_value(r.status()); });
  });
  ASSERT_THAT(stored.get_future().get(), IsOk());
  auto search = [&](const std::string& query) {
    auto [reply, r] = Call("GET", base + "/search?" + query);
    return std::make_pair(reply.status, reply.status == 200 ? Body(reply) : json::object{});
  };
  auto ids = [](json::object& body) {
    std::vector<std::string> out;
    for (const json::value& hit : body["results"].as_array()) {
      out.emplace_back(hit.as_object().at("id").as_string());
    }
    return out;
  };

  auto [k, keyword] = search("q=zzz%20quux&mode=keyword");
  ASSERT_EQ(k, 200);
  EXPECT_THAT(ids(keyword), ElementsAre(soleil)) << "bm25 sees only the word zzz";
  EXPECT_TRUE(server.Requests().empty()) << "keyword search asks no server";

  auto [s, semantic] = search("q=zzz%20quux&mode=semantic&limit=2");
  ASSERT_EQ(s, 200);
  EXPECT_EQ(semantic["mode"], "semantic");
  ASSERT_EQ(ids(semantic).size(), 2u);
  EXPECT_EQ(ids(semantic)[0], quux) << "the nearest vector first";
  json::object best = semantic["results"].as_array()[0].as_object();
  EXPECT_NEAR(best["score"].to_number<double>(), 1.0, 1e-5);
  EXPECT_EQ(best["snippet"], "chat dort");
  ASSERT_EQ(server.Requests().size(), 1u);
  EXPECT_EQ(server.Requests()[0].target, "/api/embed");
  EXPECT_THAT(server.Requests()[0].body, HasSubstr("fake-embed"));
  EXPECT_THAT(server.Requests()[0].body, HasSubstr("zzz quux"));

  auto [h, fused] = search("q=zzz%20quux&mode=auto");
  ASSERT_EQ(h, 200);
  EXPECT_EQ(fused["mode"], "hybrid") << "auto with an embedding model";
  std::vector<std::string> fused_ids = ids(fused);
  ASSERT_GE(fused_ids.size(), 2u);
  EXPECT_THAT(std::vector<std::string>(fused_ids.begin(), fused_ids.begin() + 2),
              ::testing::UnorderedElementsAre(quux, soleil))
      << "each side's best, fused";
  EXPECT_FALSE(fused.contains("fallback"));

  // The embedding server fails: hybrid falls back to bm25 and says why; semantic fails.
  locrit::testing::FakeReply down;
  down.status = 500;
  server.SetEmbeddingReply(down);
  auto [d, degraded] = search("q=zzz%20quux&mode=hybrid");
  ASSERT_EQ(d, 200);
  EXPECT_EQ(degraded["mode"], "keyword");
  EXPECT_THAT(std::string(degraded["fallback"].as_string()), HasSubstr("could not be embedded"));
  EXPECT_THAT(ids(degraded), ElementsAre(soleil));
  auto [reply, r] = Call("GET", base + "/search?q=zzz&mode=semantic");
  EXPECT_EQ(reply.status, 502) << reply.body;
  EXPECT_EQ(Body(reply)["code"], "llm_error");
  EXPECT_EQ(Call("GET", base + "/search?q=zzz&mode=fuzzy").first.status, 400);
}

TEST_F(MemoryApiTest, PublicCallersReadOnlyWhatTheLocritShares) {
  LocritConfig quick;
  quick.name = "Quick";
  quick.description = "d";
  ASSERT_THAT(registry_->Create(quick), IsOk());
  LocritConfig full = quick;
  full.name = "Full";
  full.access_to.full_memory = true;
  ASSERT_THAT(registry_->Create(full), IsOk());
  LocritConfig closed = quick;
  closed.name = "Closed";
  closed.access_to.quick_memory = false;
  ASSERT_THAT(registry_->Create(closed), IsOk());
  for (int i = 0; i < 7; ++i) {
    EXPECT_EQ(Call("POST", "/api/locrits/Quick/memory/memories",
                   R"({"content":"pomme )" + std::to_string(i) + "\"}")
                  .first.status,
              200);
  }
  std::unique_ptr<Api> api = PublicApi();

  auto [s1, stats] = CallOn(*api, "GET", "/api/locrits/Quick/memory/stats");
  ASSERT_EQ(s1, 200);
  EXPECT_EQ(stats["access_level"], "quick");
  EXPECT_EQ(stats["statistics"].as_object()["total_memories"], 7);
  auto [s2, search] = CallOn(*api, "GET", "/api/locrits/Quick/memory/search?q=pomme&limit=50");
  ASSERT_EQ(s2, 200);
  EXPECT_EQ(search["total"], 5);
  EXPECT_EQ(search["access_level"], "quick");
  EXPECT_EQ(CallOn(*api, "GET", "/api/locrits/Quick/memory/summary").first, 403);
  EXPECT_EQ(CallOn(*api, "GET", "/api/locrits/Quick/memory/memories").first, 403);
  EXPECT_EQ(CallOn(*api, "POST", "/api/locrits/Quick/memory/memories", R"({"content":"x"})").first,
            401);

  auto [s3, summary] = CallOn(*api, "GET", "/api/locrits/Full/memory/summary");
  EXPECT_EQ(s3, 200);
  auto [s4, full_stats] = CallOn(*api, "GET", "/api/locrits/Full/memory/stats");
  EXPECT_EQ(full_stats["access_level"], "full");
  EXPECT_EQ(CallOn(*api, "DELETE", "/api/locrits/Full/memory/clear", R"({"confirm":true})").first,
            401);
  EXPECT_EQ(CallOn(*api, "GET", "/api/locrits/Closed/memory/stats").first, 403);
  EXPECT_EQ(CallOn(*api, "GET", "/api/locrits/Endormi/memory/stats").first, 403);  // Inactive.
  // Writes and everything else under /api/locrits stay the operator's: 401, asking for a token.
  EXPECT_EQ(CallOn(*api, "GET", "/api/locrits/Full").first, 401);
}

// ---- The operator's Locrit routes ----

std::string ErrorText(const HttpResponse& r) {
  return std::string(json::parse(r.body).as_object()["error"].as_string());
}

TEST_F(ApiTest, CreateAnswers201WithTheLocritAndItsDefaults) {
  auto [created, r1] = Call("POST", "/api/locrits",
                            R"({"name":"Élodie","description":"ingénieure","unknown":1})");
  ASSERT_EQ(created.status, 201) << created.body;
  json::object body = Body(created);
  EXPECT_EQ(body["success"], true);
  json::object locrit = body["locrit"].as_object();
  EXPECT_EQ(locrit["name"], "Élodie");
  EXPECT_EQ(locrit["description"], "ingénieure");
  EXPECT_TRUE(locrit["system_prompt"].is_null());
  EXPECT_EQ(locrit["model"], "recall") << "no server default model: the recall responder";
  EXPECT_EQ(locrit["llm"].as_object()["provider"], "recall");
  EXPECT_EQ(locrit["active"], true);
  EXPECT_EQ(locrit["open_to"].as_object()["humans"], true);
  EXPECT_EQ(locrit["open_to"].as_object()["internet"], false);
  EXPECT_EQ(locrit["access_to"].as_object()["quick_memory"], true);
  EXPECT_EQ(locrit["access_to"].as_object()["full_memory"], false);
  EXPECT_EQ(locrit["memory"].as_object()["max_messages"], 5000);
  EXPECT_EQ(locrit["memory"].as_object()["context_messages"], 20);
  EXPECT_TRUE(locrit["created_at"].is_string());
  ASSERT_THAT(registry_->Get("élodie"), IsOk()) << "stored";

  // The old app's path and field names.
  auto [legacy, r2] = Call("POST", "/api/create-locrit",
                           R"({"name":"Ollie","description":"d","ollama_model":"llama3.2",
                               "ollama_url":"http://gpu.lan:11434"})");
  ASSERT_EQ(legacy.status, 201) << legacy.body;
  json::object ollie = Body(legacy)["locrit"].as_object();
  EXPECT_EQ(ollie["model"], "llama3.2");
  EXPECT_EQ(ollie["llm"].as_object()["provider"], "ollama");
  EXPECT_EQ(ollie["llm"].as_object()["url"], "http://gpu.lan:11434");

  auto [full, r3] = Call("POST", "/api/locrits", R"({"name":"Full","description":"d",
      "system_prompt":"Tu es Full.","model":"gpt-x","ollama_model":"ignored",
      "llm":{"provider":"openai","url":"https://llm.example/v1"},"active":false,
      "public_address":"full@locrit.example","open_to":{"internet":true},
      "access_to":{"full_memory":true,"logs":false},"memory":{"max_messages":0,"context_messages":3}})");
  ASSERT_EQ(full.status, 201) << full.body;
  json::object f = Body(full)["locrit"].as_object();
  EXPECT_EQ(f["model"], "gpt-x") << "the canonical field wins over its alias";
  EXPECT_EQ(f["llm"].as_object()["provider"], "openai");
  EXPECT_EQ(f["active"], false);
  EXPECT_EQ(f["public_address"], "full@locrit.example");
  EXPECT_EQ(f["open_to"].as_object()["internet"], true);
  EXPECT_EQ(f["open_to"].as_object()["humans"], true);
  EXPECT_EQ(f["access_to"].as_object()["logs"], false);
  EXPECT_EQ(f["memory"].as_object()["context_messages"], 3);
  EXPECT_EQ(Body(Call("GET", "/api/locrits").first)["count"], 5);
}

TEST_F(ApiTest, CreateRefusesDuplicatesAndBadBodies) {
  auto [duplicate, r1] =
      Call("POST", "/api/locrits", R"({"name":"bob TECHNIQUE","description":"d"})");
  EXPECT_EQ(duplicate.status, 409);
  EXPECT_EQ(Body(duplicate)["code"], "conflict");
  EXPECT_THAT(ErrorText(duplicate), HasSubstr("Bob Technique"));
  auto [media, r2] = Call("POST", "/api/locrits", R"({"name":"x","description":"d"})", "text/plain");
  EXPECT_EQ(media.status, 415);
  EXPECT_EQ(Body(media)["code"], "unsupported_media_type");
  auto [method, r3] = Call("DELETE", "/api/locrits");
  EXPECT_EQ(method.status, 405);
  EXPECT_THAT(method.headers, ElementsAre(std::pair<std::string, std::string>("Allow", "GET, POST")));
  EXPECT_EQ(Call("GET", "/api/create-locrit").first.status, 405);

  struct Case {
    std::string body;
    const char* field;
  };
  const Case cases[] = {
      {R"({"description":"d"})", "name is required"},
      {R"({"name":"x"})", "description is required"},
      {R"({"name":"x","description":"  "})", "description"},
      {R"({"name":7,"description":"d"})", "name must be a string"},
      {R"({"name":"a/b","description":"d"})", "name"},
      {R"({"name":"","description":"d"})", "name"},
      {R"({"name":"x","description":"d","system_prompt":5})", "system_prompt"},
      {R"({"name":"x","description":"d","model":5})", "model"},
      {R"({"name":"x","description":"d","ollama_model":[]})", "ollama_model"},
      {R"({"name":"x","description":"d","llm":"ollama"})", "llm must be an object"},
      {R"({"name":"x","description":"d","llm":{"provider":"gpt"}})", "llm.provider"},
      {R"({"name":"x","description":"d","llm":{"provider":"ollama"}})", "model is required"},
      {R"({"name":"x","description":"d","model":"m","llm":{"provider":"openai"}})", "llm.url"},
      {R"({"name":"x","description":"d","model":"m","llm":{"url":"ftp://x"}})", "llm.url"},
      {R"({"name":"x","description":"d","model":"m","ollama_url":"not a url"})", "llm.url"},
      {R"({"name":"x","description":"d","llm":{"url":3}})", "llm.url"},
      {R"({"name":"x","description":"d","active":"yes"})", "active"},
      {R"({"name":"x","description":"d","public_address":[]})", "public_address"},
      {R"({"name":"x","description":"d","open_to":{"internet":1}})", "open_to.internet"},
      {R"({"name":"x","description":"d","open_to":true})", "open_to"},
      {R"({"name":"x","description":"d","access_to":{"llm_info":null}})", "access_to.llm_info"},
      {R"({"name":"x","description":"d","memory":{"context_messages":5000}})",
       "memory.context_messages"},
      {R"({"name":"x","description":"d","memory":{"context_messages":2.5}})",
       "memory.context_messages"},
      {R"({"name":"x","description":"d","memory":{"max_messages":-1}})", "memory.max_messages"},
      {R"({"name":"x","description":"d","memory":{"max_messages":99999999999999999999}})",
       "memory.max_messages"},
      {R"({"name":"x","description":"d\u0000"})", "description"},
      {"{\"name\":\"x\",\"description\":\"" + std::string(4097, 'd') + "\"}", "description"},
      {"[1]", "object"},
  };
  for (const Case& c : cases) {
    auto [response, r] = Call("POST", "/api/locrits", c.body);
    EXPECT_EQ(response.status, 400) << c.body;
    EXPECT_EQ(Body(response)["code"], "invalid_argument") << c.body;
    EXPECT_THAT(ErrorText(response), HasSubstr(c.field)) << c.body;
  }
  EXPECT_EQ(registry_->Count(), 2u) << "nothing was created";
}

TEST_F(ApiTest, UpdateChangesOnlyTheFieldsSent) {
  auto [put, r1] = Call("PUT", "/api/locrits/bob%20technique",
                        R"({"description":"nouvelle","system_prompt":"Tu es Bob.",
                            "open_to":{"internet":true},"memory":{"context_messages":4}})");
  ASSERT_EQ(put.status, 200) << put.body;
  json::object bob = Body(put)["locrit"].as_object();
  EXPECT_EQ(Body(put)["success"], true);
  EXPECT_EQ(bob["description"], "nouvelle");
  EXPECT_EQ(bob["system_prompt"], "Tu es Bob.");
  EXPECT_EQ(bob["open_to"].as_object()["internet"], true);
  EXPECT_EQ(bob["open_to"].as_object()["humans"], true);
  EXPECT_EQ(bob["memory"].as_object()["context_messages"], 4);
  EXPECT_EQ(bob["memory"].as_object()["max_messages"], 5000);

  auto [patch, r2] = Call("PATCH", "/api/locrits/Bob%20Technique", R"({"system_prompt":null})");
  ASSERT_EQ(patch.status, 200) << patch.body;
  EXPECT_TRUE(Body(patch)["locrit"].as_object()["system_prompt"].is_null()) << "null clears";
  auto [config, r3] = Call("PUT", "/api/locrits/Bob%20Technique/config",
                           R"({"ollama_model":"llama3.2"})");
  ASSERT_EQ(config.status, 200) << config.body;
  json::object llm = Body(config)["locrit"].as_object()["llm"].as_object();
  EXPECT_EQ(llm["provider"], "ollama") << "a model given to a recall Locrit means Ollama";
  EXPECT_EQ(Body(config)["locrit"].as_object()["model"], "llama3.2");

  const LocritConfig stored = registry_->Get("Bob Technique").value();
  EXPECT_EQ(stored.description, "nouvelle");
  EXPECT_EQ(stored.model, "llama3.2");
  EXPECT_EQ(stored.memory.context_messages, 4);
  // GET shows the same.
  EXPECT_EQ(Body(Call("GET", "/api/locrits/Bob%20Technique").first)["locrit"].as_object()["model"],
            "llama3.2");

  auto [hybrid, r4] = Call("PATCH", "/api/locrits/Bob%20Technique",
                           R"({"embedding_model":"nomic-embed-text"})");
  ASSERT_EQ(hybrid.status, 200) << hybrid.body;
  EXPECT_EQ(Body(hybrid)["locrit"].as_object()["embedding_model"], "nomic-embed-text");
  EXPECT_EQ(registry_->Get("Bob Technique")->embedding_model, "nomic-embed-text");
  auto [plain, r5] = Call("PATCH", "/api/locrits/Bob%20Technique", R"({"embedding_model":""})");
  ASSERT_EQ(plain.status, 200) << plain.body;
  EXPECT_TRUE(Body(plain)["locrit"].as_object()["embedding_model"].is_null()) << "empty clears";
  EXPECT_EQ(Call("PATCH", "/api/locrits/Bob%20Technique", R"({"embedding_model":7})").first.status,
            400);
}

TEST_F(ApiTest, UpdateErrorsChangeNothing) {
  struct Case {
    std::string method;
    std::string target;
    std::string body;
    std::string content_type;
    int status;
    const char* code;
    const char* mentions;
  };
  const std::string bob = "/api/locrits/Bob%20Technique";
  const Case cases[] = {
      {"PUT", "/api/locrits/Nobody", "{}", "application/json", 404, "not_found", "Nobody"},
      {"PUT", bob, R"({"description":"x"})", "text/plain", 415, "unsupported_media_type", "JSON"},
      {"PUT", bob, "{", "application/json", 400, "invalid_argument", "JSON"},
      {"PUT", bob, R"({"description":"x","active":"no"})", "application/json", 400,
       "invalid_argument", "active"},
      {"PATCH", bob, R"({"description":"x","memory":{"context_messages":-1}})",
       "application/json", 400, "invalid_argument", "memory.context_messages"},
      {"PUT", bob, R"({"description":"x","name":"endormi"})", "application/json", 409, "conflict",
       "Endormi"},
      {"PUT", bob, R"({"description":"x","name":"a\\b"})", "application/json", 400,
       "invalid_argument", "name"},
      {"POST", bob, "{}", "application/json", 405, "method_not_allowed", "GET, PUT, PATCH, DELETE"},
      {"DELETE", bob + "/config", "", "", 405, "method_not_allowed", "GET, PUT"},
  };
  for (const Case& c : cases) {
    auto [response, r] = Call(c.method, c.target, c.body, c.content_type);
    EXPECT_EQ(response.status, c.status) << c.method << " " << c.body;
    EXPECT_EQ(Body(response)["code"], c.code) << c.body;
    EXPECT_THAT(ErrorText(response), HasSubstr(c.mentions)) << c.body;
  }
  EXPECT_EQ(registry_->Get("Bob Technique")->description, "technicien");
  EXPECT_TRUE(registry_->Get("Bob Technique")->active);
}

TEST_F(ApiTest, RenameKeepsTheMemoryAndFreesTheOldName) {
  auto [first, r1] = Call("POST", "/api/locrits/Bob%20Technique/chat",
                          R"({"message":"zanzibar"})");
  ASSERT_EQ(first.status, 200) << first.body;
  const std::string session(Body(first)["session_id"].as_string());
  const std::string slug = registry_->Get("Bob Technique")->slug;

  auto [renamed, r2] =
      Call("POST", "/api/locrits/bob%20technique/rename", R"({"new_name":"Robert"})");
  ASSERT_EQ(renamed.status, 200) << renamed.body;
  EXPECT_EQ(Body(renamed)["success"], true);
  EXPECT_EQ(Body(renamed)["old_name"], "Bob Technique");
  EXPECT_EQ(Body(renamed)["new_name"], "Robert");
  EXPECT_EQ(Call("GET", "/api/locrits/Bob%20Technique").first.status, 404);
  EXPECT_EQ(registry_->Get("Robert")->slug, slug);

  // The recall responder quotes the session's earlier message: the memory followed.
  auto [again, r3] = Call("POST", "/api/locrits/Robert/chat",
                          R"({"message":"zanzibar ?","session_id":")" + session + "\"}");
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_THAT(std::string(Body(again)["response"].as_string()), HasSubstr("zanzibar"));
  EXPECT_EQ(Body(again)["locrit_name"], "Robert");

  struct Case {
    std::string target;
    std::string body;
    int status;
    const char* mentions;
  };
  const Case cases[] = {
      {"/api/locrits/Robert/rename", "{}", 400, "new_name is required"},
      {"/api/locrits/Robert/rename", R"({"new_name":5})", 400, "new_name must be a string"},
      {"/api/locrits/Robert/rename", R"({"new_name":"a/b"})", 400, "new_name"},
      {"/api/locrits/Robert/rename", R"({"new_name":" x"})", 400, "new_name"},
      {"/api/locrits/Robert/rename", R"({"new_name":"ENDORMI"})", 409, "Endormi"},
      {"/api/locrits/Nobody/rename", R"({"new_name":"Z"})", 404, "Nobody"},
  };
  for (const Case& c : cases) {
    auto [response, r] = Call("POST", c.target, c.body);
    EXPECT_EQ(response.status, c.status) << c.body;
    EXPECT_THAT(ErrorText(response), HasSubstr(c.mentions)) << c.body;
  }
  auto [media, r4] = Call("POST", "/api/locrits/Robert/rename", R"({"new_name":"Z"})", "");
  EXPECT_EQ(media.status, 415);
  auto [method, r5] = Call("GET", "/api/locrits/Robert/rename");
  EXPECT_EQ(method.status, 405);
  EXPECT_THAT(method.headers, ElementsAre(std::pair<std::string, std::string>("Allow", "POST")));
  EXPECT_THAT(registry_->Get("Robert"), IsOk());
}

TEST_F(ApiTest, ToggleGatesTheChat) {
  auto [off, r1] = Call("POST", "/api/locrits/Bob%20Technique/toggle", "", "");
  ASSERT_EQ(off.status, 200) << off.body;
  EXPECT_EQ(Body(off)["success"], true);
  EXPECT_EQ(Body(off)["active"], false);
  auto [refused, r2] = Call("POST", "/api/locrits/Bob%20Technique/chat", R"({"message":"x"})");
  EXPECT_EQ(refused.status, 403);
  auto [on, r3] = Call("POST", "/api/locrits/Bob%20Technique/toggle", "{}");
  EXPECT_EQ(Body(on)["active"], true);
  EXPECT_EQ(Call("POST", "/api/locrits/Bob%20Technique/chat", R"({"message":"x"})").first.status,
            200);
  EXPECT_EQ(Call("POST", "/api/locrits/Nobody/toggle").first.status, 404);
  EXPECT_EQ(Call("PUT", "/api/locrits/Bob%20Technique/toggle").first.status, 405);
}

TEST_F(ApiTest, DeleteKeepsTheMemoryUnlessPurged) {
  const std::filesystem::path locrits = dir_.path() / "locrits";
  ASSERT_EQ(Call("POST", "/api/locrits/Bob%20Technique/chat", R"({"message":"x"})").first.status,
            200);
  const std::string bob_slug = registry_->Get("Bob Technique")->slug;
  ASSERT_TRUE(std::filesystem::exists(locrits / bob_slug / "memory.db"));

  auto [bad, r0] = Call("DELETE", "/api/locrits/Bob%20Technique?purge_memory=maybe");
  EXPECT_EQ(bad.status, 400);
  EXPECT_THAT(ErrorText(bad), HasSubstr("purge_memory"));
  auto [kept, r1] = Call("DELETE", "/api/locrits/Bob%20Technique");
  ASSERT_EQ(kept.status, 200) << kept.body;
  EXPECT_EQ(Body(kept)["success"], true);
  EXPECT_EQ(Body(kept)["memory_purged"], false);
  EXPECT_TRUE(std::filesystem::exists(locrits / bob_slug / "memory.db"));
  EXPECT_EQ(Call("GET", "/api/locrits/Bob%20Technique").first.status, 404);
  EXPECT_EQ(Call("DELETE", "/api/locrits/Bob%20Technique").first.status, 404);

  // A new Bob never inherits the old one's memory.
  auto [bob2, r2] = Call("POST", "/api/locrits", R"({"name":"Bob Technique","description":"d"})");
  ASSERT_EQ(bob2.status, 201);
  EXPECT_NE(registry_->Get("Bob Technique")->slug, bob_slug);

  ASSERT_EQ(Call("POST", "/api/locrits/Endormi/toggle").first.status, 200);
  ASSERT_EQ(Call("POST", "/api/locrits/Endormi/chat", R"({"message":"x"})").first.status, 200);
  const std::string endormi_slug = registry_->Get("Endormi")->slug;
  ASSERT_TRUE(std::filesystem::exists(locrits / endormi_slug));
  auto [purged, r3] = Call("POST", "/api/locrits/endormi/delete?purge_memory=true", "", "");
  ASSERT_EQ(purged.status, 200) << purged.body;
  EXPECT_EQ(Body(purged)["memory_purged"], true);
  EXPECT_FALSE(std::filesystem::exists(locrits / endormi_slug));
  EXPECT_EQ(Call("GET", "/api/locrits/Endormi").first.status, 404);
  EXPECT_EQ(Call("GET", "/api/locrits/Bob%20Technique/delete").first.status, 405);
  EXPECT_TRUE(std::filesystem::exists(locrits / bob_slug / "memory.db")) << "others untouched";
}

TEST_F(ApiTest, ModelsComeOnlyFromTheLocritsOwnServer) {
  FakeLlmServer configured;
  FakeLlmServer other;
  LocritConfig ollama;
  ollama.name = "Olla";
  ollama.description = "d";
  ollama.model = "fake-chat";
  ollama.llm = {LocritProvider::kOllama, configured.url()};
  ASSERT_THAT(registry_->Create(ollama), IsOk());
  LocritConfig openai = ollama;
  openai.name = "Opie";
  openai.llm = {LocritProvider::kOpenAi, configured.url()};
  ASSERT_THAT(registry_->Create(openai), IsOk());

  auto [models, r1] =
      Call("GET", "/api/llm/models?locrit=Olla&url=" + other.url() + "&base_url=" + other.url());
  ASSERT_EQ(models.status, 200) << models.body;
  json::object body = Body(models);
  EXPECT_EQ(body["success"], true);
  EXPECT_EQ(body["provider"], "ollama");
  EXPECT_EQ(body["url"].as_string(), configured.url());
  EXPECT_EQ(body["count"], 2);
  json::object first = body["models"].as_array()[0].as_object();
  EXPECT_EQ(first["name"], "fake-chat:latest");
  EXPECT_EQ(first["size_bytes"], 1234);
  auto [v1, r2] = Call("GET", "/api/llm/models?locrit=opie");
  ASSERT_EQ(v1.status, 200) << v1.body;
  EXPECT_EQ(Body(v1)["models"].as_array()[0].as_object()["name"], "fake-chat");

  std::vector<std::string> paths;
  for (const auto& request : configured.Requests()) paths.push_back(request.target);
  EXPECT_THAT(paths, ElementsAre("/api/tags", "/v1/models"));
  EXPECT_TRUE(other.Requests().empty()) << "a URL from the request is never contacted";

  auto [recall, r3] = Call("GET", "/api/llm/models?locrit=Bob%20Technique");
  ASSERT_EQ(recall.status, 200);
  EXPECT_EQ(Body(recall)["provider"], "recall");
  EXPECT_EQ(Body(recall)["models"].as_array().size(), 1u);
  EXPECT_EQ(Body(recall)["models"].as_array()[0].as_object()["name"], "recall");

  auto [missing, r4] = Call("GET", "/api/llm/models");
  EXPECT_EQ(missing.status, 400);
  EXPECT_THAT(ErrorText(missing), HasSubstr("locrit"));
  EXPECT_EQ(Call("GET", "/api/llm/models?locrit=Nobody").first.status, 404);
  EXPECT_EQ(Call("POST", "/api/llm/models?locrit=Olla", "{}").first.status, 405);
  EXPECT_EQ(Call("GET", "/api/llm/other").first.status, 404);

  LocritConfig down = ollama;
  down.name = "Down";
  down.llm.url = "http://127.0.0.1:" + std::to_string(FakeLlmServer::UnusedPort());
  ASSERT_THAT(registry_->Create(down), IsOk());
  auto [unreachable, r5] = Call("GET", "/api/llm/models?locrit=Down");
  EXPECT_EQ(unreachable.status, 503) << unreachable.body;
  EXPECT_EQ(Body(unreachable)["code"], "unavailable");
}

}  // namespace
}  // namespace locrit

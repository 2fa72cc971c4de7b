// End to end: the real `locrit serve` binary on 127.0.0.1:0 with a temporary data directory,
// driven by real HTTP clients (libcurl) over loopback (tests/support/locrit_process.h and
// e2e_http.h).
#include <curl/curl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "registry/locrit_registry.h"
#include "tests/support/e2e_http.h"
#include "tests/support/fake_llm_server.h"
#include "tests/support/locrit_process.h"
#include "tests/support/raw_sql.h"
#include "tests/support/temp_dir.h"

namespace locrit {
namespace {

namespace json = boost::json;
using ::locrit::testing::FakeLlmServer;
using ::locrit::testing::CommandResult;
using ::locrit::testing::FakeReply;
using ::locrit::testing::HttpCall;
using ::locrit::testing::HttpClient;
using ::locrit::testing::HttpReply;
using ::locrit::testing::JsonObject;
using ::locrit::testing::LocritCommand;
using ::locrit::testing::LocritServer;
using ::locrit::testing::ParseSse;
using ::locrit::testing::RawSql;
using ::locrit::testing::RunToEnd;
using ::locrit::testing::Send;
using ::locrit::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;

class ServeTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(); }

  // Adds Locrits to <data>/registry.db before the server starts, as an earlier run would have.
  void Register(const std::vector<LocritConfig>& locrits) {
    std::filesystem::create_directories(data_ / "locrits");
    SystemClock clock;
    RegistryOptions options;
    options.path = (data_ / "registry.db").string();
    options.clock = &clock;
    options.locrits_dir = (data_ / "locrits").string();
    auto registry = LocritRegistry::Open(options);
    ASSERT_TRUE(registry.ok()) << registry.status();
    for (const LocritConfig& locrit : locrits) {
      auto created = (*registry)->Create(locrit);
      ASSERT_TRUE(created.ok()) << created.status();
    }
  }

  void Start() {
    server_ = std::make_unique<LocritServer>(LOCRIT_BINARY, data_, dir_.File("server.log"),
                                             extra_args_, env_);
    base_ = server_->WaitReady();
    ASSERT_FALSE(base_.empty()) << "locrit serve did not start: " << Log();
  }

  // Sends `sig` and returns the exit code (-1 when killed by a signal).
  int Stop(int sig) { return server_->Stop(sig); }

  std::string Log() const { return server_ != nullptr ? server_->Log() : ""; }

  HttpReply Call(const std::string& method, const std::string& path,
                 const std::string& content_type = "", const std::string& body = "") {
    HttpCall call;
    call.method = method;
    call.url = base_ + path;
    call.content_type = content_type;
    call.body = body;
    return Send(call);
  }
  HttpReply Post(const std::string& path, const std::string& body,
                 const std::string& content_type = "application/json") {
    return Call("POST", path, content_type, body);
  }
  HttpReply Get(const std::string& path) { return Call("GET", path); }

  void ExpectHealthy() {
    const HttpReply health = Get("/healthz");
    EXPECT_EQ(health.status, 200) << health.body << health.error;
  }

  TempDir dir_;
  std::filesystem::path data_ = dir_.path() / "data";
  std::vector<std::string> extra_args_;  // Appended to `locrit serve ...` by Start().
  std::map<std::string, std::string> env_;  // Its environment (no other LOCRIT_* variable).
  std::unique_ptr<LocritServer> server_;
  std::string base_;
};

constexpr const char* kBobChat = "/api/locrits/Bob%20Technique/chat";

TEST_F(ServeTest, TheReadmeCurlGetsAnAnswerFromRecall) {
  const HttpReply reply = Post(kBobChat, R"({"message":"test"})");
  ASSERT_EQ(reply.status, 200) << reply.body << reply.error;
  EXPECT_THAT(reply.content_type, HasSubstr("application/json"));
  json::object body = JsonObject(reply);
  EXPECT_EQ(body["success"], true);
  ASSERT_TRUE(body["response"].is_string());
  EXPECT_THAT(std::string(body["response"].get_string()), HasSubstr("Bob Technique"));
  EXPECT_EQ(body["locrit_name"], "Bob Technique");
  EXPECT_EQ(body["model"], "recall");
  for (const char* field : {"session_id", "user_message_id", "assistant_message_id", "timestamp"}) {
    ASSERT_TRUE(body[field].is_string()) << field;
    EXPECT_FALSE(body[field].get_string().empty()) << field;
  }
  EXPECT_THAT(Log(), HasSubstr("recall responder"));
  EXPECT_THAT(Log(), HasSubstr("listening on http://127.0.0.1:"));

  EXPECT_EQ(Get("/readyz").status, 200);
  const HttpReply list = Get("/api/locrits");
  ASSERT_EQ(list.status, 200);
  json::object listed = JsonObject(list);
  EXPECT_EQ(listed["count"], 1);
  const HttpReply one = Get("/api/locrits/bob%20TECHNIQUE");
  ASSERT_EQ(one.status, 200) << one.body;
  json::object locrit = JsonObject(one)["locrit"].as_object();
  EXPECT_EQ(locrit["name"], "Bob Technique");
  EXPECT_EQ(locrit["llm"].as_object()["provider"], "recall");
  EXPECT_EQ(locrit["active"], true);
}

TEST_F(ServeTest, TenConcurrentPostsAllSucceedAndAreInMemoryAfterShutdown) {
  constexpr int kClients = 10;
  std::vector<HttpReply> replies(kClients);
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      replies[static_cast<size_t>(i)] =
          Post(kBobChat, R"({"message":"message concurrent numéro )" + std::to_string(i) + "\"}");
    });
  }
  for (auto& t : clients) t.join();
  std::vector<std::string> ids;
  for (const HttpReply& reply : replies) {
    ASSERT_EQ(reply.status, 200) << reply.body << reply.error;
    json::object body = JsonObject(reply);
    EXPECT_EQ(body["success"], true);
    ids.emplace_back(body["user_message_id"].as_string());
    ids.emplace_back(body["assistant_message_id"].as_string());
  }
  ExpectHealthy();
  ASSERT_EQ(Stop(SIGTERM), 0) << Log();

  RawSql sql((data_ / "locrits" / "bob-technique" / "memory.db").string());
  for (const std::string& id : ids) {
    EXPECT_EQ(sql.Text("SELECT count(*) FROM messages WHERE id = '" + id + "'"), "1") << id;
  }
}

TEST_F(ServeTest, TheStreamParsesAsABrowserWould) {
  ASSERT_EQ(Post(kBobChat, R"({"message":"le routeur wifi clignote"})").status, 200);
  const HttpReply reply = Post(std::string(kBobChat) + "/stream",
                           R"({"message":"pourquoi le routeur clignote ?"})");
  ASSERT_EQ(reply.status, 200) << reply.body << reply.error;
  EXPECT_THAT(reply.content_type, HasSubstr("text/event-stream"));
  const std::vector<std::string> events = ParseSse(reply.body);
  ASSERT_GE(events.size(), 2u) << reply.body;
  std::string text;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    json::object event = json::parse(events[i]).as_object();
    EXPECT_EQ(event["done"], false) << events[i];
    text += event["chunk"].as_string();
  }
  EXPECT_THAT(text, HasSubstr("routeur wifi")) << "recall quotes the earlier message";
  json::object last = json::parse(events.back()).as_object();
  EXPECT_EQ(last["done"], true);
  for (const char* field : {"session_id", "user_message_id", "assistant_message_id"}) {
    ASSERT_TRUE(last[field].is_string()) << field;
    EXPECT_FALSE(last[field].get_string().empty()) << field;
  }
  ExpectHealthy();
}

TEST_F(ServeTest, BadRequestsGetTheirPreciseJsonErrorsAndTheServerStaysHealthy) {
  struct Case {
    const char* what;
    std::string method;
    std::string path;
    std::string content_type;
    std::string body;
    long status;
    const char* code;
    const char* mentions;
  };
  const Case cases[] = {
      {"malformed JSON", "POST", kBobChat, "application/json", R"({"message":)", 400,
       "invalid_argument", "JSON"},
      {"not an object", "POST", kBobChat, "application/json", "[1]", 400, "invalid_argument",
       "object"},
      {"wrong type", "POST", kBobChat, "application/json", R"({"message":42})", 400,
       "invalid_argument", "message"},
      {"wrong type of session_id", "POST", kBobChat, "application/json",
       R"({"message":"x","session_id":7})", 400, "invalid_argument", "session_id"},
      {"missing message", "POST", kBobChat, "application/json", "{}", 400, "invalid_argument",
       "message"},
      {"empty message", "POST", kBobChat, "application/json", R"({"message":"  "})", 400,
       "invalid_argument", ""},
      {"invalid UTF-8", "POST", kBobChat, "application/json", "{\"message\":\"\xc3\x28\"}", 400,
       "invalid_argument", "UTF-8"},
      {"huge body", "POST", kBobChat, "application/json",
       R"({"message":")" + std::string(2 << 20, 'a') + "\"}", 413, "payload_too_large", ""},
      {"message over max_message_chars", "POST", kBobChat, "application/json",
       R"({"message":")" + std::string(32769, 'a') + "\"}", 413, "payload_too_large", "message"},
      {"not JSON", "POST", kBobChat, "text/plain", R"({"message":"x"})", 415,
       "unsupported_media_type", "JSON"},
      {"unknown Locrit", "POST", "/api/locrits/Personne/chat", "application/json",
       R"({"message":"x"})", 404, "not_found", "Personne"},
      {"traversal in the name", "GET", "/api/locrits/..%2F..%2Fetc", "", "", 404, "not_found", ""},
      {"unknown route", "GET", "/api/nothing-here", "", "", 404, "not_found", ""},
      {"root", "GET", "/", "", "", 404, "not_found", ""},
      {"wrong method on chat", "GET", kBobChat, "", "", 405, "method_not_allowed", "POST"},
      {"wrong method on a Locrit", "DELETE", "/api/locrits/Bob%20Technique/chat/stream", "", "",
       405, "method_not_allowed", "POST"},
      {"bad escape", "GET", "/api/locrits/%zz", "", "", 400, "invalid_argument", ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    const HttpReply reply = Call(c.method, c.path, c.content_type, c.body);
    ASSERT_EQ(reply.status, c.status) << reply.body << reply.error;
    EXPECT_THAT(reply.content_type, HasSubstr("application/json"));
    json::object body = JsonObject(reply);
    EXPECT_EQ(body["success"], false);
    EXPECT_EQ(body["code"], c.code);
    ASSERT_TRUE(body["error"].is_string());
    EXPECT_THAT(std::string(body["error"].get_string()), HasSubstr(c.mentions));
    EXPECT_THAT(reply.body, Not(HasSubstr("<html")));
    ExpectHealthy();
  }
  // Still answering chats after all that.
  EXPECT_EQ(Post(kBobChat, R"({"message":"toujours là ?"})").status, 200);
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "etc"));
}

TEST_F(ServeTest, AnInactiveOrUnknownLocritIsRefusedBeforeAnythingIsSaved) {
  // Restart on a fresh directory without the example: nothing to talk to.
  ASSERT_EQ(Stop(SIGTERM), 0) << Log();
  std::filesystem::remove_all(data_);
  std::filesystem::create_directories(data_);
  env_ = {{"LOCRIT_NO_EXAMPLE", "1"}};
  Start();
  const HttpReply list = Get("/api/locrits");
  ASSERT_EQ(list.status, 200);
  EXPECT_EQ(JsonObject(list)["count"], 0);
  EXPECT_EQ(Post(kBobChat, R"({"message":"x"})").status, 404);
}

TEST_F(ServeTest, TheRegistryAndMemorySurviveARestart) {
  const HttpReply first = Post(kBobChat, R"({"message":"retiens le mot zanzibar"})");
  ASSERT_EQ(first.status, 200);
  ASSERT_EQ(Stop(SIGTERM), 0) << Log();
  Start();
  EXPECT_THAT(Log(), Not(HasSubstr("created the example"))) << "the registry was not empty";
  const HttpReply second = Post(kBobChat, R"({"message":"zanzibar ?"})");
  ASSERT_EQ(second.status, 200) << second.body;
  EXPECT_THAT(std::string(JsonObject(second)["response"].as_string()), HasSubstr("zanzibar"));
}

TEST_F(ServeTest, ConversationsSurviveARestartWithTheirMessages) {
  const HttpReply created = Post("/api/conversations/create",
                             R"({"locrit_name":"Bob Technique","user_id":"alice"})");
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string id(JsonObject(created)["conversation_id"].as_string());
  const HttpReply said =
      Post("/api/conversations/" + id + "/message", R"({"message":"retiens le mot zanzibar"})");
  ASSERT_EQ(said.status, 200) << said.body;
  EXPECT_EQ(JsonObject(said)["message_count"], 2);
  ASSERT_EQ(Stop(SIGTERM), 0) << Log();

  Start();
  const HttpReply listed = Get("/api/conversations?user_id=alice");
  ASSERT_EQ(listed.status, 200) << listed.body;
  ASSERT_EQ(JsonObject(listed)["count"], 1);
  const HttpReply read = Get("/api/conversations/" + id);
  ASSERT_EQ(read.status, 200) << read.body;
  json::object conversation = JsonObject(read);
  EXPECT_EQ(conversation["message_count"], 2);
  const json::array& messages = conversation["messages"].as_array();
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[0].at("content"), "retiens le mot zanzibar");
  EXPECT_EQ(messages[1].at("role"), "assistant");
  const HttpReply again = Post("/api/conversations/" + id + "/message", R"({"message":"zanzibar ?"})");
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(JsonObject(again)["message_count"], 4);
}

// 1 000 requests over 100 keep-alive connections, spread over 20 Locrits: every one answered,
// every acknowledged message in its Locrit's memory afterwards, the server healthy throughout.
TEST_F(ServeTest, AThousandRequestsOverAHundredConnectionsToTwentyLocrits) {
  constexpr int kLocrits = 20;
  constexpr int kConnections = 100;
  constexpr int kRequestsEach = 10;
  ASSERT_EQ(Stop(SIGTERM), 0) << Log();
  std::vector<LocritConfig> locrits;
  for (int i = 0; i < kLocrits; ++i) {
    LocritConfig locrit;
    locrit.name = "Charge " + std::to_string(i);
    locrit.description = "un Locrit de la charge";
    locrit.llm.provider = LocritProvider::kRecall;
    locrit.model = "recall";
    locrits.push_back(locrit);
  }
  Register(locrits);
  Start();

  struct Acknowledged {
    int locrit;
    std::string user_message_id, assistant_message_id;
  };
  std::vector<std::vector<Acknowledged>> acknowledged(kConnections);
  std::vector<std::string> failures(kConnections);
  std::vector<std::thread> clients;
  for (int c = 0; c < kConnections; ++c) {
    clients.emplace_back([&, c] {
      HttpClient connection;  // Kept alive between its requests.
      for (int r = 0; r < kRequestsEach; ++r) {
        const int locrit = (c * kRequestsEach + r) % kLocrits;
        HttpCall call;
        call.method = "POST";
        call.url = base_ + "/api/locrits/Charge%20" + std::to_string(locrit) + "/chat";
        call.body = R"({"message":"requête )" + std::to_string(r) + " de " + std::to_string(c) +
                    R"(","user_id":"client-)" + std::to_string(c) + "\"}";
        call.timeout_seconds = 120;
        const HttpReply reply = connection.Send(call);
        boost::system::error_code ec;
        const json::value parsed = json::parse(reply.body, ec);
        if (!reply.error.empty() || reply.status != 200 || ec || !parsed.is_object()) {
          failures[static_cast<size_t>(c)] +=
              reply.error + " " + std::to_string(reply.status) + " " + reply.body + "\n";
          continue;
        }
        const json::object& o = parsed.get_object();
        acknowledged[static_cast<size_t>(c)].push_back(
            {locrit, std::string(o.at("user_message_id").as_string()),
             std::string(o.at("assistant_message_id").as_string())});
      }
    });
  }
  for (auto& t : clients) t.join();
  size_t answered = 0;
  for (int c = 0; c < kConnections; ++c) {
    EXPECT_EQ(failures[static_cast<size_t>(c)], "") << "connection " << c;
    answered += acknowledged[static_cast<size_t>(c)].size();
  }
  EXPECT_EQ(answered, static_cast<size_t>(kConnections * kRequestsEach));
  ExpectHealthy();
  ASSERT_EQ(Stop(SIGTERM), 0) << Log();

  // Each Locrit's memory holds exactly what was acknowledged to it.
  for (int l = 0; l < kLocrits; ++l) {
    RawSql sql((data_ / "locrits" / ("charge-" + std::to_string(l)) / "memory.db").string());
    size_t expected = 0;
    for (const auto& connection : acknowledged) {
      for (const Acknowledged& a : connection) {
        if (a.locrit != l) continue;
        expected += 2;
        EXPECT_EQ(sql.Text("SELECT count(*) FROM messages WHERE id IN ('" + a.user_message_id +
                           "','" + a.assistant_message_id + "')"),
                  "2");
      }
    }
    EXPECT_EQ(sql.Text("SELECT count(*) FROM messages"), std::to_string(expected)) << l;
  }
}

// SIGTERM while a reply streams: the stream ends cleanly with its final event, the server exits
// 0, and the whole exchange is in memory.
TEST_F(ServeTest, ShutdownWhileStreamingEndsTheStreamCleanlyAndLosesNothing) {
  FakeLlmServer llm;
  FakeReply slow;
  slow.deltas = {"une ", "réponse ", "entière"};
  slow.hold_before_last = true;
  llm.SetDefault(slow);
  ASSERT_EQ(Stop(SIGTERM), 0) << Log();
  LocritConfig lent;
  lent.name = "Lent";
  lent.description = "répond lentement";
  lent.llm.provider = LocritProvider::kOllama;
  lent.llm.url = llm.url();
  lent.model = "lent";
  Register({lent});
  Start();

  std::mutex mu;
  std::string stream;  // GUARDED_BY(mu)
  auto collect = +[](char* data, size_t size, size_t n, void* out) -> size_t {
    auto* sink = static_cast<std::pair<std::mutex*, std::string*>*>(out);
    std::lock_guard lock(*sink->first);
    sink->second->append(data, size * n);
    return size * n;
  };
  std::pair<std::mutex*, std::string*> sink{&mu, &stream};
  long status = 0;
  std::thread client([&] {
    CURL* curl = curl_easy_init();
    curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
    const std::string url = base_ + "/api/locrits/Lent/chat/stream";
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, R"({"message":"parle lentement"})");
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
    curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
  });
  auto received = [&](const std::string& text) {
    for (int i = 0; i < 1500; ++i) {
      {
        std::lock_guard lock(mu);
        if (stream.find(text) != std::string::npos) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  };
  ASSERT_TRUE(received("réponse")) << "the stream never started";
  server_->Signal(SIGTERM);
  // Draining: once the log says so, let the model finish its reply.
  for (int i = 0; i < 1500 && Log().find("shutting down") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  llm.Release();
  client.join();
  EXPECT_EQ(server_->Wait(), 0) << Log();

  EXPECT_EQ(status, 200);
  const std::vector<std::string> events = ParseSse(stream);
  ASSERT_FALSE(events.empty()) << stream;
  json::object done = json::parse(events.back()).as_object();
  EXPECT_EQ(done["done"], true) << events.back() << Log();
  ASSERT_TRUE(done.contains("assistant_message_id")) << "a clean end, not an error: " << events.back();
  RawSql sql((data_ / "locrits" / "lent" / "memory.db").string());
  EXPECT_EQ(sql.Text("SELECT content FROM messages WHERE id = '" +
                     std::string(done["assistant_message_id"].as_string()) + "'"),
            "une réponse entière");
  EXPECT_EQ(sql.Text("SELECT content FROM messages WHERE id = '" +
                     std::string(done["user_message_id"].as_string()) + "'"),
            "parle lentement");
}

TEST_F(ServeTest, ANonLoopbackAddressIsRefusedWithExitCode2) {
  LocritCommand command;
  command.args = {"serve", "--listen", "0.0.0.0:0", "--data", (dir_.path() / "other").string()};
  command.cwd = dir_.path();
  const CommandResult refused = RunToEnd(LOCRIT_BINARY, command);
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_THAT(refused.err, HasSubstr("needs an admin token"));
}

TEST_F(ServeTest, ASecondServerOnTheSameDataDirectoryExitsWith3) {
  LocritCommand command;
  command.args = {"serve", "--listen", "127.0.0.1:0", "--data", data_.string()};
  command.cwd = dir_.path();
  const CommandResult second = RunToEnd(LOCRIT_BINARY, command);
  EXPECT_EQ(second.exit_code, 3);
  EXPECT_THAT(second.err, HasSubstr("pid"));
}

// A Locrit with an embedding model on a fake LLM server: the server embeds its messages after
// the turns, and a restart backfills what was saved while the embedding server was down.
class HybridServeTest : public ServeTest {
 protected:
  void SetUp() override {
    LocritConfig hybrid;
    hybrid.name = "Hybride";
    hybrid.description = "retrouve par le sens";
    hybrid.model = "chat-model";
    hybrid.embedding_model = "embed-model";
    hybrid.llm = {LocritProvider::kOllama, llm_.url()};
    Register({hybrid});
    Start();
  }

  std::string MemoryDb() const { return (data_ / "locrits" / "hybride" / "memory.db").string(); }

  // {messages, messages with a vector from embed-model}.
  std::pair<int, int> Counts() {
    RawSql sql(MemoryDb());
    return {std::stoi("0" + sql.Text("SELECT count(*) FROM messages")),
            std::stoi("0" + sql.Text("SELECT count(*) FROM message_vectors "
                                     "WHERE model = 'embed-model'"))};
  }

  // Bounded: true once `messages` messages all have their vector.
  bool WaitAllEmbedded(int messages) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      if (Counts() == std::pair<int, int>(messages, messages)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  // Every stored vector is the one the fake server computes for its message's text.
  void ExpectVectorsMatchTheirMessages() {
    RawSql sql(MemoryDb());
    sqlite3_stmt* stmt = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(sql.db(),
                                 "SELECT m.content, v.vector FROM messages m "
                                 "JOIN message_vectors v ON v.node_id = m.id",
                                 -1, &stmt, nullptr),
              SQLITE_OK);
    int rows = 0;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      ++rows;
      const std::string content = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
      const std::vector<float> expected = FakeLlmServer::EmbeddingFor(content);
      ASSERT_EQ(static_cast<size_t>(sqlite3_column_bytes(stmt, 1)),
                expected.size() * sizeof(float));
      std::vector<float> stored(expected.size());
      std::memcpy(stored.data(), sqlite3_column_blob(stmt, 1), expected.size() * sizeof(float));
      EXPECT_EQ(stored, expected) << content;
    }
    sqlite3_finalize(stmt);
    EXPECT_GT(rows, 0);
  }

  FakeLlmServer llm_;
};

constexpr const char* kHybridChat = "/api/locrits/Hybride/chat";

TEST_F(HybridServeTest, MessagesAreEmbeddedAfterTheTurnsAndBackfilledAfterARestart) {
  for (const char* message : {"mon chat s'appelle Moustache", "il aime le poisson"}) {
    const HttpReply reply = Post(kHybridChat, std::string(R"({"message":")") + message + "\"}");
    ASSERT_EQ(reply.status, 200) << reply.body;
    EXPECT_EQ(JsonObject(reply)["response"], "Hello, world!");
  }
  EXPECT_TRUE(WaitAllEmbedded(4)) << "messages/vectors: " << Counts().first << "/"
                                  << Counts().second << "\n" << Log();

  // The embedding server goes down: the turn still answers, its messages wait for a vector.
  FakeReply down;
  down.end = FakeReply::End::kDisconnect;
  llm_.SetEmbeddingReply(down);
  const HttpReply offline = Post(kHybridChat, R"({"message":"et il dort beaucoup"})");
  ASSERT_EQ(offline.status, 200) << offline.body;
  ASSERT_EQ(Stop(SIGTERM), 0) << Log();
  EXPECT_EQ(Counts(), std::make_pair(6, 4)) << "saved, not embedded while the server was down";

  // Back up: the restart backfills without any new turn.
  llm_.SetEmbeddingReply(std::nullopt);
  Start();
  EXPECT_TRUE(WaitAllEmbedded(6)) << Log();
  ASSERT_EQ(Stop(SIGTERM), 0) << Log();
  EXPECT_EQ(Counts(), std::make_pair(6, 6)) << "after shutdown";
  ExpectVectorsMatchTheirMessages();
}

// A memory added through the memory routes gets its vector without waiting for a turn or a
// restart, an edit replaces it, and semantic search then finds the memory by its meaning.
TEST_F(HybridServeTest, MemoriesFromTheRoutesAreEmbeddedAndFoundByMeaning) {
  const std::string base = "/api/locrits/Hybride/memory";
  const HttpReply added = Post(base + "/memories", R"({"content":"Moustache aime le poisson"})");
  ASSERT_EQ(added.status, 200) << added.body;
  json::object memory = JsonObject(added)["memory"].as_object();
  const std::string id = memory["id"].is_string() ? std::string(memory["id"].get_string()) : "";
  ASSERT_FALSE(id.empty());
  // Vectors as upper-case hex of their float32 bytes, as SQLite's hex() writes them.
  auto vector_of = [&](const std::string& text) {
    const std::vector<float> v = FakeLlmServer::EmbeddingFor(text);
    std::string hex;
    for (size_t i = 0; i < v.size() * sizeof(float); ++i) {
      char byte[3];
      std::snprintf(byte, sizeof byte, "%02X", reinterpret_cast<const unsigned char*>(v.data())[i]);
      hex += byte;
    }
    return hex;
  };
  auto stored = [&] {
    RawSql sql(MemoryDb());
    return sql.Text("SELECT hex(vector) FROM memory_vectors WHERE node_id = '" + id + "'");
  };
  auto wait_for = [&](const std::string& expected) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      if (stored() == expected) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  };
  EXPECT_TRUE(wait_for(vector_of("Moustache aime le poisson"))) << Log();

  const HttpReply edited =
      Call("PUT", base + "/memories/" + id, "application/json",
           R"({"content":"Moustache dort au soleil"})");
  ASSERT_EQ(edited.status, 200) << edited.body;
  EXPECT_TRUE(wait_for(vector_of("Moustache dort au soleil"))) << "re-embedded after the edit";

  const HttpReply found = Get(base + "/search?q=Moustache%20dort%20au%20soleil&mode=semantic");
  ASSERT_EQ(found.status, 200) << found.body;
  json::object body = JsonObject(found);
  EXPECT_EQ(body["mode"], "semantic");
  ASSERT_FALSE(body["results"].as_array().empty());
  EXPECT_EQ(body["results"].as_array()[0].as_object()["id"], json::value(id));
  EXPECT_EQ(JsonObject(Get(base + "/search?q=poisson"))["mode"], "hybrid") << "auto";
}

}  // namespace
}  // namespace locrit

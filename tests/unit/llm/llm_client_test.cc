// The Ollama and OpenAI-compatible clients against the scripted fake server: every scripted
// behaviour maps to its defined outcome, for both wire formats.
#include "llm/llm_client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/json.hpp>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "llm/llm_runtime.h"
#include "tests/support/fake_llm_server.h"
#include "tests/support/matchers.h"
#include "tests/support/temp_dir.h"

namespace locrit {
namespace {

using ::locrit::testing::FakeLlmServer;
using ::locrit::testing::FakeReply;
using ::locrit::testing::IsOk;
using ::locrit::testing::StatusIs;
using std::chrono::milliseconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
namespace json = boost::json;

constexpr auto kEventWait = std::chrono::seconds(10);

// Deltas collected by a sink; callbacks of one call never overlap, but the test thread reads.
struct Deltas {
  std::mutex mu;
  std::vector<std::string> seen;
  std::vector<std::string> Get() {
    std::lock_guard<std::mutex> lock(mu);
    return seen;
  }
};

template <typename T>
struct Completion {
  std::shared_ptr<std::promise<Result<T>>> promise = std::make_shared<std::promise<Result<T>>>();
  std::future<Result<T>> future = promise->get_future();
  LlmClient::Done<T> Callback() {
    return [p = promise](Result<T> r) { p->set_value(std::move(r)); };
  }
};

ChatRequest Hello() {
  ChatRequest request;
  request.messages = {{"system", "Tu es Bob, un Locrit."}, {"user", "Bonjour"}};
  return request;
}

// A runtime, a fake server and helpers, for the wire format that provider() names.
class LlmFixture : public ::testing::Test {
 protected:
  virtual LlmProvider provider() const = 0;

  LlmSettings Settings(const std::string& url) const {
    LlmSettings s;
    s.provider = provider();
    s.base_url = url;
    s.model = "fake-chat";
    s.embedding_model = "fake-embed";
    s.timeouts.connect = milliseconds(5'000);
    s.timeouts.first_token = milliseconds(5'000);
    s.timeouts.idle = milliseconds(5'000);
    s.timeouts.total = milliseconds(30'000);
    s.retry.max_retries = 0;
    s.retry.initial_backoff = milliseconds(1);
    s.retry.max_backoff = milliseconds(5);
    return s;
  }

  std::shared_ptr<LlmClient> Client(const LlmSettings& settings) {
    auto client = runtime_.NewClient(settings);
    EXPECT_THAT(client, IsOk());
    return client.ok() ? *client : nullptr;
  }
  std::shared_ptr<LlmClient> Client() { return Client(Settings(server_.url())); }

  struct ChatOutcome {
    Result<ChatReply> reply;
    std::vector<std::string> deltas;
  };
  ChatOutcome RunChat(LlmClient& client, ChatRequest request = Hello()) {
    auto deltas = std::make_shared<Deltas>();
    Completion<ChatReply> done;
    LlmCall call = client.Chat(
        std::move(request),
        [deltas](std::string_view d) {
          std::lock_guard<std::mutex> lock(deltas->mu);
          deltas->seen.emplace_back(d);
        },
        done.Callback());
    Result<ChatReply> reply = done.future.get();
    return {std::move(reply), deltas->Get()};
  }

  json::value LastBody() {
    auto requests = server_.Requests();
    EXPECT_FALSE(requests.empty());
    return requests.empty() ? json::value() : json::parse(requests.back().body);
  }

  bool Ollama() const { return provider() == LlmProvider::kOllama; }

  // Starts a chat on `client` whose reply stalls after its first delta; returns once the sink
  // has that delta.
  LlmCall StartStalledChat(LlmClient& client, Completion<ChatReply>& done) {
    FakeReply reply;
    reply.end = FakeReply::End::kStall;
    reply.end_after = 1;
    server_.Script(reply);
    auto first = std::make_shared<std::promise<void>>();
    auto got_first = std::make_shared<std::atomic<bool>>(false);
    LlmCall call = client.Chat(
        Hello(),
        [first, got_first](std::string_view) {
          if (!got_first->exchange(true)) first->set_value();
        },
        done.Callback());
    first->get_future().wait();
    return call;
  }

  FakeLlmServer server_;
  LlmRuntime runtime_{LlmRuntimeOptions{.threads = 2}};
};

class LlmClientTest : public LlmFixture, public ::testing::WithParamInterface<LlmProvider> {
 protected:
  LlmProvider provider() const override { return GetParam(); }
};

TEST_P(LlmClientTest, StreamsDeltasThenTheWholeReply) {
  auto client = Client();
  ChatOutcome out = RunChat(*client);
  ASSERT_THAT(out.reply, IsOk());
  EXPECT_THAT(out.deltas, ElementsAre("Hello", ", ", "world", "!"));
  EXPECT_EQ(out.reply->text, "Hello, world!");
  EXPECT_EQ(out.reply->model, "fake-chat");
  EXPECT_EQ(out.reply->prompt_tokens, 12);
  EXPECT_EQ(out.reply->completion_tokens, 4);
  EXPECT_EQ(out.reply->finish_reason, "stop");
  EXPECT_EQ(out.reply->attempts, 1);
}

TEST_P(LlmClientTest, SendsModelMessagesStreamFlagAndOptions) {
  LlmSettings settings = Settings(server_.url());
  settings.api_key = "sk-test";
  auto client = Client(settings);
  ChatRequest request = Hello();
  request.temperature = 0.5;
  request.max_tokens = 64;
  ASSERT_THAT(RunChat(*client, request).reply, IsOk());

  auto requests = server_.Requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].target, Ollama() ? "/api/chat" : "/v1/chat/completions");
  EXPECT_EQ(requests[0].authorization, "Bearer sk-test");
  EXPECT_EQ(requests[0].accept, Ollama() ? "application/x-ndjson" : "text/event-stream");
  json::value body = json::parse(requests[0].body);
  EXPECT_EQ(body.at("model"), "fake-chat");
  EXPECT_EQ(body.at("stream"), true);
  const json::array& messages = body.at("messages").as_array();
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[0].at("role"), "system");
  EXPECT_EQ(messages[0].at("content"), "Tu es Bob, un Locrit.");
  EXPECT_EQ(messages[1].at("role"), "user");
  EXPECT_EQ(messages[1].at("content"), "Bonjour");
  if (Ollama()) {
    EXPECT_EQ(body.at("options").at("temperature"), 0.5);
    EXPECT_EQ(body.at("options").at("num_predict"), 64);
  } else {
    EXPECT_EQ(body.at("temperature"), 0.5);
    EXPECT_EQ(body.at("max_tokens"), 64);
    EXPECT_EQ(body.at("stream_options").at("include_usage"), true);
  }
}

TEST_P(LlmClientTest, NoKeyNoAuthorizationHeaderAndTheRequestModelWins) {
  auto client = Client();
  ChatRequest request = Hello();
  request.model = "other-model";
  ChatOutcome out = RunChat(*client, request);
  ASSERT_THAT(out.reply, IsOk());
  EXPECT_EQ(out.reply->model, "other-model");
  EXPECT_EQ(server_.Requests().at(0).authorization, "");
  EXPECT_EQ(LastBody().at("model"), "other-model");
  EXPECT_FALSE(LastBody().as_object().contains(Ollama() ? "options" : "temperature"));
}

TEST_P(LlmClientTest, TheSinkSeesTheFirstDeltaBeforeTheServerSendsTheLast) {
  FakeReply reply;
  reply.deltas = {"one ", "two ", "three"};
  reply.hold_before_last = true;
  server_.Script(reply);
  auto client = Client();
  std::atomic<bool> first_before_last{false};
  std::atomic<int> seen{0};
  Completion<ChatReply> done;
  LlmCall call = client->Chat(
      Hello(),
      [&](std::string_view) {
        if (seen++ == 0) {
          first_before_last = !server_.SentLast();
          server_.Release();
        }
      },
      done.Callback());
  Result<ChatReply> r = done.future.get();
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->text, "one two three");
  EXPECT_TRUE(first_before_last);
}

TEST_P(LlmClientTest, TheRuntimeCountsEachCallByProviderKindAndOutcome) {
  auto client = Client();
  FakeReply failing;
  failing.status = 500;
  server_.Script(FakeReply{});
  server_.Script(failing);
  EXPECT_THAT(RunChat(*client).reply, IsOk());
  EXPECT_THAT(RunChat(*client).reply, StatusIs(StatusCode::kLlmError));
  Completion<Embeddings> embedded;
  LlmCall call = client->Embed(EmbedRequest{.inputs = {"x"}, .model = ""}, embedded.Callback());
  EXPECT_THAT(embedded.future.get(), IsOk());

  const LlmMetrics& m = runtime_.metrics();
  const LlmProvider other = Ollama() ? LlmProvider::kOpenAi : LlmProvider::kOllama;
  EXPECT_EQ(m.Calls(provider(), LlmCallKind::kChat, StatusCode::kOk), 1);
  EXPECT_EQ(m.Calls(provider(), LlmCallKind::kChat, StatusCode::kLlmError), 1);
  EXPECT_EQ(m.Calls(provider(), LlmCallKind::kEmbed, StatusCode::kOk), 1);
  EXPECT_EQ(m.Latency(provider(), LlmCallKind::kChat).Read().count, 2);
  EXPECT_EQ(m.Latency(provider(), LlmCallKind::kEmbed).Read().count, 1);
  EXPECT_EQ(m.Latency(other, LlmCallKind::kChat).Read().count, 0);
  EXPECT_EQ(m.Latency(provider(), LlmCallKind::kModels).Read().count, 0);
}

TEST_P(LlmClientTest, OneShotReplyIsOneDelta) {
  FakeReply reply;
  reply.one_shot = true;
  server_.Script(reply);
  auto client = Client();
  ChatOutcome out = RunChat(*client);
  ASSERT_THAT(out.reply, IsOk());
  EXPECT_THAT(out.deltas, ElementsAre("Hello, world!"));
  EXPECT_EQ(out.reply->text, "Hello, world!");
  EXPECT_EQ(out.reply->completion_tokens, 4);
}

TEST_P(LlmClientTest, RefusedConnectionIsUnavailable) {
  LlmSettings settings =
      Settings("http://127.0.0.1:" + std::to_string(FakeLlmServer::UnusedPort()));
  settings.retry.max_retries = 1;
  auto client = Client(settings);
  ChatOutcome out = RunChat(*client);
  EXPECT_THAT(out.reply, StatusIs(StatusCode::kUnavailable));
  EXPECT_THAT(out.reply.status().message(), HasSubstr("cannot connect"));
}

TEST_P(LlmClientTest, SlowFirstTokenWithinTheTimeoutIsFine) {
  FakeReply reply;
  reply.first_token_delay = milliseconds(100);
  server_.Script(reply);
  auto client = Client();
  EXPECT_THAT(RunChat(*client).reply, IsOk());
}

TEST_P(LlmClientTest, RetriesBeforeTheFirstTokenThenSucceeds) {
  FakeReply failing;
  failing.status = 503;
  server_.Script(failing);
  FakeReply cut;
  cut.end = FakeReply::End::kDisconnect;
  cut.end_after = 0;
  server_.Script(cut);
  LlmSettings settings = Settings(server_.url());
  settings.retry.max_retries = 2;
  auto client = Client(settings);
  ChatOutcome out = RunChat(*client);
  ASSERT_THAT(out.reply, IsOk());
  EXPECT_EQ(out.reply->attempts, 3);
  EXPECT_EQ(out.reply->text, "Hello, world!");
  EXPECT_EQ(server_.Requests().size(), 3u);
}

TEST_P(LlmClientTest, RetriesStopAtMaxRetries) {
  FakeReply failing;
  failing.status = 502;
  server_.SetDefault(failing);
  LlmSettings settings = Settings(server_.url());
  settings.retry.max_retries = 2;
  auto client = Client(settings);
  EXPECT_THAT(RunChat(*client).reply, StatusIs(StatusCode::kLlmError));
  EXPECT_EQ(server_.Requests().size(), 3u);
}

TEST_P(LlmClientTest, CancelStopsTheUpstreamRequest) {
  auto client = Client();
  Completion<ChatReply> done;
  LlmCall call = StartStalledChat(*client, done);
  call.Cancel();
  EXPECT_THAT(done.future.get(), StatusIs(StatusCode::kCancelled));
  EXPECT_TRUE(server_.WaitForClientDisconnects(1, kEventWait));
}

TEST_P(LlmClientTest, DroppingTheHandleCancels) {
  auto client = Client();
  Completion<ChatReply> done;
  std::optional<LlmCall> call = StartStalledChat(*client, done);
  call.reset();
  EXPECT_THAT(done.future.get(), StatusIs(StatusCode::kCancelled));
  EXPECT_TRUE(server_.WaitForClientDisconnects(1, kEventWait));
}

TEST_P(LlmClientTest, CancelFromInsideTheSinkStopsFurtherDeltas) {
  FakeReply reply;
  reply.deltas = {"a", "b", "c", "d"};
  reply.end = FakeReply::End::kStall;
  reply.end_after = 4;
  server_.Script(reply);
  auto client = Client();
  struct Holder {
    std::mutex mu;
    LlmCall call;
    int deltas = 0;
  };
  auto holder = std::make_shared<Holder>();
  Completion<ChatReply> done;
  {
    std::lock_guard<std::mutex> lock(holder->mu);
    holder->call = client->Chat(
        Hello(),
        [holder](std::string_view) {
          std::lock_guard<std::mutex> inner(holder->mu);
          ++holder->deltas;
          holder->call.Cancel();
        },
        done.Callback());
  }
  EXPECT_THAT(done.future.get(), StatusIs(StatusCode::kCancelled));
  std::lock_guard<std::mutex> lock(holder->mu);
  EXPECT_EQ(holder->deltas, 1);
}

TEST_P(LlmClientTest, ShutdownCancelsCallsInFlightAndRefusesNewOnes) {
  LlmRuntime runtime;
  auto client = runtime.NewClient(Settings(server_.url()));
  ASSERT_THAT(client, IsOk());
  Completion<ChatReply> done;
  LlmCall call = StartStalledChat(**client, done);
  runtime.Shutdown();
  EXPECT_THAT(done.future.get(), StatusIs(StatusCode::kCancelled));
  Completion<ChatReply> later;
  LlmCall refused = (*client)->Chat(Hello(), nullptr, later.Callback());
  EXPECT_THAT(later.future.get(), StatusIs(StatusCode::kUnavailable));
}

TEST_P(LlmClientTest, EmbeddingsAreOneVectorPerInputInOrder) {
  auto client = Client();
  Completion<Embeddings> done;
  LlmCall call = client->Embed(EmbedRequest{{"alpha", "beta gamma"}, ""}, done.Callback());
  Result<Embeddings> e = done.future.get();
  ASSERT_THAT(e, IsOk());
  EXPECT_EQ(e->model, "fake-embed");
  ASSERT_EQ(e->vectors.size(), 2u);
  EXPECT_THAT(e->vectors[0],
              ::testing::Pointwise(::testing::FloatEq(), FakeLlmServer::EmbeddingFor("alpha")));
  EXPECT_THAT(e->vectors[1], ::testing::Pointwise(::testing::FloatEq(),
                                                  FakeLlmServer::EmbeddingFor("beta gamma")));
  auto requests = server_.Requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].target, Ollama() ? "/api/embed" : "/v1/embeddings");
  json::value body = json::parse(requests[0].body);
  EXPECT_EQ(body.at("model"), "fake-embed");
  EXPECT_EQ(body.at("input"), (json::array{"alpha", "beta gamma"}));
}

TEST_P(LlmClientTest, EmbeddingErrorsMapLikeChat) {
  FakeReply reply;
  reply.status = 404;
  reply.error_message = "model \"fake-embed\" not found";
  server_.Script(reply);
  auto client = Client();
  Completion<Embeddings> done;
  LlmCall call = client->Embed(EmbedRequest{{"alpha"}, ""}, done.Callback());
  Result<Embeddings> e = done.future.get();
  EXPECT_THAT(e, StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(e.status().message(), HasSubstr("not found"));
}

TEST_P(LlmClientTest, ListsModels) {
  auto client = Client();
  Completion<std::vector<ModelInfo>> done;
  LlmCall call = client->ListModels(done.Callback());
  Result<std::vector<ModelInfo>> models = done.future.get();
  ASSERT_THAT(models, IsOk());
  ASSERT_EQ(models->size(), 2u);
  EXPECT_EQ((*models)[0].name, Ollama() ? "fake-chat:latest" : "fake-chat");
  EXPECT_EQ(server_.Requests().at(0).method, "GET");
  EXPECT_EQ(server_.Requests().at(0).target, Ollama() ? "/api/tags" : "/v1/models");
}

TEST_P(LlmClientTest, ARequestWithoutAModelFailsAtOnce) {
  LlmSettings settings = Settings(server_.url());
  settings.model.clear();
  auto client = Client(settings);
  EXPECT_THAT(RunChat(*client).reply, StatusIs(StatusCode::kInvalidArgument));
  EXPECT_TRUE(server_.Requests().empty());
}

INSTANTIATE_TEST_SUITE_P(BothWireFormats, LlmClientTest,
                         ::testing::Values(LlmProvider::kOllama, LlmProvider::kOpenAi),
                         [](const auto& test_info) {
                           return std::string(LlmProviderName(test_info.param));
                         });

// ---- Each scripted failure maps to its defined outcome, in both wire formats ----

struct Scenario {
  const char* name;
  // Scripts the reply and adjusts the client's settings (retries are off unless set here).
  std::function<void(FakeReply&, LlmSettings&)> script;
  StatusCode code;
  const char* message;                        // Part of the error message.
  std::vector<std::string> deltas_delivered;  // Before the error.
  size_t requests = 1;                        // Made to the server.
};

class LlmFailureTest : public LlmFixture,
                       public ::testing::WithParamInterface<std::tuple<LlmProvider, Scenario>> {
 protected:
  LlmProvider provider() const override { return std::get<0>(GetParam()); }
};

TEST_P(LlmFailureTest, MapsToItsOutcome) {
  const Scenario& scenario = std::get<1>(GetParam());
  FakeReply reply;
  LlmSettings settings = Settings(server_.url());
  scenario.script(reply, settings);
  server_.Script(reply);
  auto client = Client(settings);
  ChatOutcome out = RunChat(*client);
  EXPECT_THAT(out.reply, StatusIs(scenario.code));
  EXPECT_THAT(out.reply.status().message(), HasSubstr(scenario.message));
  EXPECT_EQ(out.deltas, scenario.deltas_delivered);
  EXPECT_EQ(server_.Requests().size(), scenario.requests);
}

using End = FakeReply::End;
const Scenario kScenarios[] = {
    {"ModelMissingNotRetried",
     [](FakeReply& r, LlmSettings& s) {
       r.status = 404;
       r.error_message = "model \"nope\" not found, try pulling it first";
       s.retry.max_retries = 2;
     },
     StatusCode::kInvalidArgument,
     "HTTP 404: model \"nope\" not found",
     {}},
    {"ServerError",
     [](FakeReply& r, LlmSettings&) {
       r.status = 500;
       r.error_message = "CUDA out of memory";
     },
     StatusCode::kLlmError,
     "HTTP 500: CUDA out of memory",
     {}},
    {"NoFirstTokenInTime",
     [](FakeReply& r, LlmSettings& s) {
       r.first_token_delay = std::chrono::seconds(60);  // Cut short when the server stops.
       s.timeouts.first_token = milliseconds(200);
     },
     StatusCode::kDeadlineExceeded,
     "first-token",
     {}},
    {"HeadersWithoutATokenAreStillFirstToken",
     [](FakeReply& r, LlmSettings& s) {
       r.end = End::kStall;
       r.end_after = 0;
       s.timeouts.first_token = milliseconds(200);
     },
     StatusCode::kDeadlineExceeded,
     "first-token",
     {}},
    {"StallMidStream",
     [](FakeReply& r, LlmSettings& s) {
       r.end = End::kStall;
       r.end_after = 2;
       s.timeouts.idle = milliseconds(200);
     },
     StatusCode::kDeadlineExceeded,
     "mid-reply",
     {"Hello", ", "}},
    {"TotalTimeout",
     [](FakeReply& r, LlmSettings& s) {
       r.end = End::kStall;
       r.end_after = 1;
       s.timeouts.total = milliseconds(300);
     },
     StatusCode::kDeadlineExceeded,
     "total timeout",
     {"Hello"}},
    {"DisconnectMidStreamNotRetried",
     [](FakeReply& r, LlmSettings& s) {
       r.end = End::kDisconnect;
       r.end_after = 2;
       s.retry.max_retries = 2;
     },
     StatusCode::kUnavailable,
     "closed mid-reply",
     {"Hello", ", "}},
    {"MalformedLine",
     [](FakeReply& r, LlmSettings&) {
       r.end = End::kMalformedLine;
       r.end_after = 1;
     },
     StatusCode::kLlmError,
     "malformed",
     {"Hello"}},
    {"NoDoneMarker",
     [](FakeReply& r, LlmSettings&) { r.end = End::kNoDoneMarker; },
     StatusCode::kLlmError,
     "ended without",
     {"Hello", ", ", "world", "!"}},
    {"OversizedReply",
     [](FakeReply& r, LlmSettings& s) {
       r.deltas.assign(20, std::string(1000, 'x'));
       s.max_reply_bytes = 4096;
     },
     StatusCode::kLlmError, "max_reply_bytes (4096",
     std::vector<std::string>(4, std::string(1000, 'x'))},
};

INSTANTIATE_TEST_SUITE_P(BothWireFormats, LlmFailureTest,
                         ::testing::Combine(::testing::Values(LlmProvider::kOllama,
                                                              LlmProvider::kOpenAi),
                                            ::testing::ValuesIn(kScenarios)),
                         [](const auto& test_info) {
                           return std::string(LlmProviderName(std::get<0>(test_info.param))) + "_" +
                                  std::get<1>(test_info.param).name;
                         });

// ---- https ----

class LlmTlsTest : public ::testing::Test {
 protected:
  LlmSettings Settings() const {
    LlmSettings s;
    s.provider = LlmProvider::kOpenAi;
    s.base_url = server_.url() + "/v1";
    s.model = "fake-chat";
    s.retry.max_retries = 0;
    return s;
  }
  Result<ChatReply> Chat(const LlmSettings& settings) {
    auto client = runtime_.NewClient(settings);
    if (!client.ok()) return client.status();
    Completion<ChatReply> done;
    LlmCall call = (*client)->Chat(Hello(), nullptr, done.Callback());
    return done.future.get();
  }

  FakeLlmServer server_{FakeLlmServer::Options{.tls = true}};
  LlmRuntime runtime_;
  testing::TempDir dir_;
};

TEST_F(LlmTlsTest, TrustedCertificateWorks) {
  const std::string ca = dir_.File("ca.pem");
  std::ofstream(ca) << server_.certificate_pem();
  LlmSettings settings = Settings();
  settings.ca_file = ca;
  Result<ChatReply> reply = Chat(settings);
  ASSERT_THAT(reply, IsOk());
  EXPECT_EQ(reply->text, "Hello, world!");
  EXPECT_EQ(server_.Requests().at(0).target, "/v1/chat/completions");
}

TEST_F(LlmTlsTest, SelfSignedCertificateIsRefusedWithAClearError) {
  Result<ChatReply> reply = Chat(Settings());
  EXPECT_THAT(reply, StatusIs(StatusCode::kFailedPrecondition));
  EXPECT_THAT(reply.status().message(), HasSubstr("certificate"));
  EXPECT_TRUE(server_.Requests().empty());
}

TEST_F(LlmTlsTest, UnreadableCaFileIsInvalidArgument) {
  LlmSettings settings = Settings();
  settings.ca_file = dir_.File("missing.pem");
  EXPECT_THAT(runtime_.NewClient(settings), StatusIs(StatusCode::kInvalidArgument));
}

TEST(LlmSettingsTest, NewClientValidatesTheSettings) {
  LlmRuntime runtime;
  LlmSettings s;
  s.model = "m";
  EXPECT_THAT(runtime.NewClient(s), IsOk());  // Ollama's documented default URL.
  s.provider = LlmProvider::kOpenAi;
  EXPECT_THAT(runtime.NewClient(s), StatusIs(StatusCode::kInvalidArgument));  // No URL.
  s.base_url = "ftp://host";
  EXPECT_THAT(runtime.NewClient(s), StatusIs(StatusCode::kInvalidArgument));
  s.base_url = "http://host:8000/v1";
  s.timeouts.idle = milliseconds(0);
  EXPECT_THAT(runtime.NewClient(s), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseLlmProvider("openai"), IsOk());
  EXPECT_THAT(ParseLlmProvider("recall"), StatusIs(StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace locrit

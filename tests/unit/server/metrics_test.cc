// The route template table (bounded labels whatever the path), ServerMetrics' families, and
// GET /metrics through the pure Api.
#include "server/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <set>

#include "base/thread_pool.h"
#include "server/api.h"
#include "tests/support/fake_clock.h"
#include "tests/support/matchers.h"
#include "tests/support/temp_dir.h"

namespace locrit {
namespace {

using ::locrit::testing::FakeClock;
using ::locrit::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;

std::string_view TemplateOf(std::string_view target) {
  return RouteTemplateName(RouteIndexOf(target));
}

TEST(RouteTemplateTest, EveryPathOfTheApiHasItsTemplate) {
  struct Case {
    const char* target;
    const char* route;
  };
  const Case cases[] = {
      {"/", "/"},
      {"/health", "/health"},
      {"/healthz", "/healthz"},
      {"/readyz", "/readyz"},
      {"/metrics", "/metrics"},
      {"/ws?token=secret", "/ws"},
      {"/api/v1/ping", "/api/v1/ping"},
      {"/api/v1/locrits", "/api/v1/locrits"},
      {"/api/v1/locrits/Bob/info", "/api/v1/locrits/{name}/info"},
      {"/api/v1/locrits/Bob/chat", "/api/v1/locrits/{name}/chat"},
      {"/api/v1/locrits/Bob/chat/stream", "/api/v1/locrits/{name}/chat/stream"},
      {"/public/list", "/public/list"},
      {"/public/Bob", "/public/{name}"},
      {"/public/Bob/chat", "/public/{name}/chat"},
      {"/api/create-locrit", "/api/create-locrit"},
      {"/api/llm/models?locrit=Bob", "/api/llm/models"},
      {"/api/locrits", "/api/locrits"},
      {"/api/locrits/Bob%20Technique", "/api/locrits/{name}"},
      {"/api/locrits/Bob/config", "/api/locrits/{name}/config"},
      {"/api/locrits/Bob/rename", "/api/locrits/{name}/rename"},
      {"/api/locrits/Bob/toggle", "/api/locrits/{name}/toggle"},
      {"/api/locrits/Bob/delete", "/api/locrits/{name}/delete"},
      {"/api/locrits/Bob%20Technique/chat", "/api/locrits/{name}/chat"},
      {"/api/locrits/Bob/chat/stream", "/api/locrits/{name}/chat/stream"},
      {"/api/locrits/Bob/memory/summary", "/api/locrits/{name}/memory/summary"},
      {"/api/locrits/Bob/memory/search?q=x", "/api/locrits/{name}/memory/search"},
      {"/api/locrits/Bob/memory/sessions/s1", "/api/locrits/{name}/memory/sessions/{session}"},
      {"/api/locrits/Bob/memory/sessions/s1/messages",
       "/api/locrits/{name}/memory/sessions/{session}/messages"},
      {"/api/locrits/Bob/memory/messages/m1", "/api/locrits/{name}/memory/messages/{id}"},
      {"/api/locrits/Bob/memory/memories/m1", "/api/locrits/{name}/memory/memories/{id}"},
      // A literal segment wins over a placeholder at the same place.
      {"/api/locrits/Bob/memory/concepts/details?name=x",
       "/api/locrits/{name}/memory/concepts/details"},
      {"/api/locrits/Bob/memory/concepts/c1", "/api/locrits/{name}/memory/concepts/{concept}"},
      {"/api/locrits/Bob/memory/concepts/c1/related",
       "/api/locrits/{name}/memory/concepts/{concept}/related"},
      {"/api/locrits/Bob/memory/relations/r1", "/api/locrits/{name}/memory/relations/{id}"},
      {"/api/locrits/Bob/memory/graph", "/api/locrits/{name}/memory/graph"},
      {"/api/locrits/Bob/memory/export", "/api/locrits/{name}/memory/export"},
      {"/api/conversations?user_id=u", "/api/conversations"},
      {"/api/conversations/create", "/api/conversations/create"},
      {"/api/conversations/c1", "/api/conversations/{id}"},
      {"/api/conversations/c1/message", "/api/conversations/{id}/message"},
      {"/api/conversations/c1/info", "/api/conversations/{id}/info"},
  };
  for (const Case& c : cases) EXPECT_EQ(TemplateOf(c.target), c.route) << c.target;
}

TEST(RouteTemplateTest, HostilePathsAreOther) {
  const char* cases[] = {
      "",
      "*",
      "http://evil.example/health",
      "/nope",
      "/api/locrits/Bob/unknown",
      "/api/locrits//chat",  // An empty name is no name.
      "/api/locrits/Bob/chat/stream/more",
      "/health/",
      "/%zz",
      "/api/locrits/%/chat",
      "/../../etc/passwd",
      "/api/locrits/..%2F..%2Fetc/chat/x",
  };
  for (const char* target : cases) EXPECT_EQ(TemplateOf(target), "other") << target;
  // A placeholder takes any one segment, however strange: the label is still the template.
  EXPECT_EQ(TemplateOf("/api/locrits/..%2F..%2Fetc%0A%22/chat"), "/api/locrits/{name}/chat");
}

TEST(RouteTemplateTest, EveryTemplateMatchesItselfAndIsUnique) {
  std::set<std::string_view> seen;
  for (int i = 0; i < RouteCount(); ++i) {
    const std::string_view name = RouteTemplateName(i);
    EXPECT_TRUE(seen.insert(name).second) << name;
    if (i == kOtherRoute) continue;
    // Placeholders stand for themselves as segments, which a literal never shadows.
    EXPECT_EQ(RouteIndexOf(name), i) << name;
  }
  EXPECT_EQ(RouteTemplateName(-1), "other");
  EXPECT_EQ(RouteTemplateName(RouteCount()), "other");
}

TEST(RouteTemplateTest, MethodsAreBounded) {
  for (const char* m : {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}) {
    EXPECT_EQ(MetricMethod(m), m);
  }
  EXPECT_EQ(MetricMethod("get"), "other");
  EXPECT_EQ(MetricMethod("BREW"), "other");
  EXPECT_EQ(MetricMethod(std::string(10000, 'X')), "other");
}

TEST(ServerMetricsTest, RequestsByRouteMethodAndStatus) {
  ServerMetrics metrics;
  const int chat = RouteIndexOf("/api/locrits/Bob/chat");
  metrics.RecordRequest(chat, "POST", 200, 1500);
  metrics.RecordRequest(RouteIndexOf("/api/locrits/Alice/chat"), "POST", 200, 2500);
  metrics.RecordRequest(chat, "POST", 404, 100);
  metrics.RecordRequest(RouteIndexOf("/random/1"), "BREW", 404, 100);
  metrics.RecordRequest(RouteIndexOf("/random/2"), "BREW", 404, 100);
  metrics.RecordRequest(chat, "POST", 999, 100);  // Out of range: status 0.
  metrics.websocket_connections().Add(3);
  metrics.websocket_connections().Sub();
  EXPECT_EQ(metrics.Requests(chat, "POST", 200), 2);

  PrometheusText text;
  metrics.Write(text);
  const std::string& t = text.text();
  EXPECT_THAT(t, HasSubstr("# TYPE locrit_http_requests_total counter\n"));
  EXPECT_THAT(t, HasSubstr("locrit_http_requests_total{route=\"/api/locrits/{name}/chat\","
                           "method=\"POST\",status=\"200\"} 2\n"));
  EXPECT_THAT(t, HasSubstr("locrit_http_requests_total{route=\"/api/locrits/{name}/chat\","
                           "method=\"POST\",status=\"404\"} 1\n"));
  EXPECT_THAT(t, HasSubstr("locrit_http_requests_total{route=\"other\",method=\"other\","
                           "status=\"404\"} 2\n"));
  EXPECT_THAT(t, HasSubstr("status=\"0\"} 1\n"));
  EXPECT_THAT(t, HasSubstr("# TYPE locrit_http_request_duration_seconds histogram\n"));
  EXPECT_THAT(t, HasSubstr("locrit_http_request_duration_seconds_bucket{route=\"/api/locrits/"
                           "{name}/chat\",le=\"0.001\"} 2\n"));
  EXPECT_THAT(t, HasSubstr("locrit_http_request_duration_seconds_count{route=\"/api/locrits/"
                           "{name}/chat\"} 4\n"));
  EXPECT_THAT(t, HasSubstr("locrit_websocket_connections 2\n"));
  // Routes never called print no histogram.
  EXPECT_THAT(t, Not(HasSubstr("route=\"/readyz\"")));
  // No source given: no memory or LLM families.
  EXPECT_THAT(t, Not(HasSubstr("locrit_memory_")));
}

// GET /metrics through the pure Api: the operator gets the text format, a public caller 403.
class MetricsRouteTest : public ::testing::Test {
 protected:
  class Recorder final : public Responder {
   public:
    void Send(HttpResponse response) override {
      std::lock_guard lock(mu_);
      response_ = std::move(response);
      done_ = true;
      cv_.notify_all();
    }
    void StartStream(int, std::string) override {}
    bool Write(std::string) override { return true; }
    void End() override {}
    HttpResponse Wait() {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return done_; });
      return response_;
    }

   private:
    std::mutex mu_;
    std::condition_variable cv_;
    HttpResponse response_;
    bool done_ = false;
  };

  MetricsRouteTest() {
    RegistryOptions registry;
    registry.path = dir_.File("registry.db");
    registry.clock = &clock_;
    registry_ = std::move(LocritRegistry::Open(registry).value());
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
    chat_ = std::make_unique<ChatService>(chat);
    metrics_ = std::make_unique<ServerMetrics>(
        ServerMetricsSources{.memory = memory_.get(), .work_pool = &pool_});
  }
  ~MetricsRouteTest() override { memory_->Shutdown(); }

  HttpResponse Get(bool local_mode, std::string method = "GET") {
    ApiOptions options;
    options.registry = registry_.get();
    options.chat = chat_.get();
    options.clock = &clock_;
    options.access.local_mode = local_mode;
    options.metrics = metrics_.get();
    Api api(options);
    HttpRequest request;
    request.method = std::move(method);
    request.target = "/metrics";
    request.host = "127.0.0.1:8000";
    request.from_loopback = true;
    auto recorder = std::make_shared<Recorder>();
    api.Handle(request, recorder);
    return recorder->Wait();
  }

  TempDir dir_;
  FakeClock clock_;
  IdGenerator ids_{&clock_, 7};
  ThreadPool pool_{1};
  std::unique_ptr<LocritRegistry> registry_;
  std::unique_ptr<MemoryManager> memory_;
  std::unique_ptr<ChatService> chat_;
  std::unique_ptr<ServerMetrics> metrics_;
};

TEST_F(MetricsRouteTest, OperatorScrapesTheTextFormat) {
  metrics_->RecordRequest(RouteIndexOf("/health"), "GET", 200, 10);
  HttpResponse r = Get(/*local_mode=*/true);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_THAT(r.body, HasSubstr("locrit_http_requests_total{route=\"/health\",method=\"GET\","
                                "status=\"200\"} 1\n"));
  EXPECT_THAT(r.body, HasSubstr("locrit_memory_open_stores 0\n"));
  EXPECT_THAT(r.body, HasSubstr("locrit_memory_recoveries_total 0\n"));
  EXPECT_THAT(r.body, HasSubstr("locrit_work_pool_queued_tasks 0\n"));
  EXPECT_THAT(r.body, HasSubstr("locrit_chat_turns_in_flight 0\n"));
  EXPECT_EQ(Get(true, "POST").status, 405);
}

TEST_F(MetricsRouteTest, PublicCallersAreRefused) {
  // As every operator route: 401 asking for the admin token.
  HttpResponse r = Get(/*local_mode=*/false);
  EXPECT_EQ(r.status, 401);
  EXPECT_THAT(r.body, HasSubstr("\"code\":\"unauthorized\""));
  EXPECT_THAT(r.body, Not(HasSubstr("locrit_")));
}

}  // namespace
}  // namespace locrit

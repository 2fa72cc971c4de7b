// End to end, the operator's side of the real `locrit serve`: /metrics scraped and parsed after
// known traffic, request logs and ids, and the connection limits (slow headers, thousands of idle
// connections, the max_connections cap, WebSockets holding their slot), over raw loopback sockets.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <cctype>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/locrit_process.h"
#include "tests/support/raw_connection.h"
#include "tests/support/temp_dir.h"

namespace locrit {
namespace {

using ::locrit::testing::LocritServer;
using ::locrit::testing::RawConnection;
using ::locrit::testing::TempDir;
using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;

constexpr auto kWait = std::chrono::seconds(30);

std::string GetRequest(const std::string& path, const std::string& extra_headers = "") {
  return "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra_headers + "\r\n";
}

std::string PostJson(const std::string& path, const std::string& body) {
  return "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

int StatusOf(const std::string& response) {
  if (response.rfind("HTTP/1.1 ", 0) != 0 || response.size() < 12) return 0;
  return std::stoi(response.substr(9, 3));
}

// The value of header `name` (case-insensitive) in a raw response, or "".
std::string HeaderOf(const std::string& response, const std::string& name) {
  auto lower = [](std::string text) {
    for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return text;
  };
  const std::string head = lower(response.substr(0, response.find("\r\n\r\n") + 2));
  const size_t at = head.find("\r\n" + lower(name) + ": ");
  if (at == std::string::npos) return "";
  const size_t value = at + 4 + name.size();
  return response.substr(value, head.find("\r\n", value) - value);
}

std::string BodyOf(const std::string& response) {
  const size_t at = response.find("\r\n\r\n");
  return at == std::string::npos ? "" : response.substr(at + 4);
}

// One request on a fresh connection; the whole response, or "" when none came.
std::string Exchange(uint16_t port, const std::string& request) {
  RawConnection c(port);
  if (!c.ok() || !c.Send(request)) return "";
  return c.ReadResponse(kWait).value_or("");
}

// The samples of a Prometheus text exposition: "name{labels}" -> value. Comment lines must be
// HELP or TYPE; every other line must be "series value".
std::map<std::string, double> ParseMetrics(const std::string& text) {
  std::map<std::string, double> samples;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (line[0] == '#') {
      EXPECT_TRUE(line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) << line;
      continue;
    }
    const size_t space = line.rfind(' ');
    EXPECT_NE(space, std::string::npos) << line;
    if (space == std::string::npos) continue;
    const std::string series = line.substr(0, space);
    EXPECT_EQ(samples.count(series), 0u) << "duplicate series " << series;
    samples[series] = std::stod(line.substr(space + 1));
  }
  return samples;
}

class OperationsTest : public ::testing::Test {
 protected:
  void Start(std::vector<std::string> args = {}) {
    if (server_ != nullptr && server_->running()) {
      EXPECT_EQ(server_->Stop(SIGTERM), 0) << server_->Log();
    }
    server_ = std::make_unique<LocritServer>(LOCRIT_BINARY, dir_.path() / "data",
                                             dir_.File("server.log"), std::move(args));
    const std::string base = server_->WaitReady();
    ASSERT_FALSE(base.empty()) << server_->Log();
    port_ = static_cast<uint16_t>(std::stoi(base.substr(base.rfind(':') + 1)));
  }

  std::map<std::string, double> Scrape() {
    const std::string response = Exchange(port_, GetRequest("/metrics"));
    EXPECT_EQ(StatusOf(response), 200) << response;
    EXPECT_EQ(HeaderOf(response, "Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
    return ParseMetrics(BodyOf(response));
  }

  // Polls /metrics (bounded) until `done` holds for a scrape, and returns the last scrape. A
  // request is counted when its answer has been written, which may be just after the client
  // read it, so a scrape right after a request may not count it yet.
  std::map<std::string, double> ScrapeUntil(
      const std::function<bool(std::map<std::string, double>&)>& done) {
    std::map<std::string, double> m;
    const auto deadline = std::chrono::steady_clock::now() + kWait;
    while (std::chrono::steady_clock::now() < deadline) {
      m = Scrape();
      if (done(m)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return m;
  }
  double WaitForMetric(const std::string& series, double value) {
    return ScrapeUntil([&](auto& m) { return m[series] == value; })[series];
  }

  TempDir dir_;
  std::unique_ptr<LocritServer> server_;  // Stopped, expecting exit code 0, at the end.
  uint16_t port_ = 0;
};

constexpr const char* kChatPath = "/api/locrits/Bob%20Technique/chat";

TEST_F(OperationsTest, TheScrapeCountsRequestsByRouteTemplateAndStatus) {
  Start();
  const uint16_t port = port_;
  {
    RawConnection c(port);  // Keep-alive: three requests on one connection.
    ASSERT_TRUE(c.ok());
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(c.Send(GetRequest("/health")));
      EXPECT_EQ(StatusOf(c.ReadResponse(kWait).value_or("")), 200);
    }
  }
  EXPECT_EQ(StatusOf(Exchange(port, PostJson(kChatPath, R"({"message":"the-secret-words"})"))),
            200);
  EXPECT_EQ(StatusOf(Exchange(port, PostJson(kChatPath, R"({"message":"again"})"))), 200);
  EXPECT_EQ(StatusOf(Exchange(port, PostJson("/api/locrits/Nobody/chat", R"({"message":"x"})"))),
            404);
  EXPECT_EQ(StatusOf(Exchange(port, GetRequest("/no/such/path-1"))), 404);
  EXPECT_EQ(StatusOf(Exchange(port, GetRequest("/no/such/path-2"))), 404);
  EXPECT_EQ(StatusOf(Exchange(port, "BREW /x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")), 404);

  std::map<std::string, double> m = ScrapeUntil([](auto& scrape) {
    return scrape[R"(locrit_http_requests_total{route="other",method="other",status="404"})"] == 1 &&
           scrape["locrit_http_connections"] == 1;
  });
  EXPECT_EQ(m[R"(locrit_http_requests_total{route="/health",method="GET",status="200"})"], 3);
  EXPECT_EQ(
      m[R"(locrit_http_requests_total{route="/api/locrits/{name}/chat",method="POST",status="200"})"],
      2);
  EXPECT_EQ(
      m[R"(locrit_http_requests_total{route="/api/locrits/{name}/chat",method="POST",status="404"})"],
      1);
  EXPECT_EQ(m[R"(locrit_http_requests_total{route="other",method="GET",status="404"})"], 2);
  EXPECT_EQ(m[R"(locrit_http_requests_total{route="other",method="other",status="404"})"], 1);
  EXPECT_EQ(m[R"(locrit_http_request_duration_seconds_count{route="/api/locrits/{name}/chat"})"],
            3);
  EXPECT_EQ(
      m[R"(locrit_http_request_duration_seconds_bucket{route="/api/locrits/{name}/chat",le="+Inf"})"],
      3);
  EXPECT_EQ(m["locrit_memory_open_stores"], 1);  // Bob's memory, opened by the chats.
  EXPECT_EQ(m["locrit_memory_recoveries_total"], 0);
  EXPECT_EQ(m["locrit_chat_turns_in_flight"], 0);
  EXPECT_EQ(m["locrit_websocket_connections"], 0);
  EXPECT_EQ(m["locrit_http_connections"], 1);  // The scrape's own.
  for (const auto& [series, value] : m) {
    EXPECT_THAT(series, Not(HasSubstr("Bob"))) << "raw paths never become labels";
    EXPECT_THAT(series, Not(HasSubstr("path-1")));
  }
}

TEST_F(OperationsTest, OneLogLinePerRequestWithItsIdAndNothingPrivate) {
  Start();
  const uint16_t port = port_;
  const std::string kept =
      Exchange(port, GetRequest("/healthz", "X-Request-Id: trace-42.a_b:c\r\n"));
  EXPECT_EQ(HeaderOf(kept, "X-Request-Id"), "trace-42.a_b:c");
  const std::string replaced =
      Exchange(port, GetRequest("/healthz", "X-Request-Id: bad id\"with<stuff>\r\n"));
  const std::string generated = HeaderOf(replaced, "X-Request-Id");
  EXPECT_THAT(generated, MatchesRegex("[0-9a-f]{16}"));
  const std::string too_long =
      Exchange(port, GetRequest("/healthz", "X-Request-Id: " + std::string(65, 'a') + "\r\n"));
  EXPECT_THAT(HeaderOf(too_long, "X-Request-Id"), MatchesRegex("[0-9a-f]{16}"));
  const std::string chat = Exchange(
      port, PostJson(kChatPath, R"({"message":"my password is hunter2","user_id":"alice"})"));
  EXPECT_EQ(StatusOf(chat), 200);
  const std::string chat_id = HeaderOf(chat, "X-Request-Id");
  ASSERT_EQ(server_->Stop(SIGTERM), 0);

  const std::string log = server_->Log();
  EXPECT_THAT(log, HasSubstr("locrit: request id=trace-42.a_b:c method=GET route=/healthz "
                             "status=200 ms="));
  EXPECT_THAT(log, HasSubstr("locrit: request id=" + generated + " method=GET route=/healthz "));
  EXPECT_THAT(log, ContainsRegex("locrit: request id=" + chat_id +
                                  " method=POST route=/api/locrits/\\{name\\}/chat status=200 "
                                  "ms=[0-9]+\\.[0-9]{3} bytes=[0-9]+ peer=127\\.0\\.0\\.1\n"));
  EXPECT_THAT(log, Not(HasSubstr("hunter2")));
  EXPECT_THAT(log, Not(HasSubstr("alice")));
  EXPECT_THAT(log, Not(HasSubstr("bad id")));
  size_t lines = 0;
  for (size_t at = log.find("locrit: request "); at != std::string::npos;
       at = log.find("locrit: request ", at + 1)) {
    ++lines;
  }
  EXPECT_EQ(lines, 4u);

  Start({"--no-request-log"});
  EXPECT_EQ(StatusOf(Exchange(port_, GetRequest("/healthz"))), 200);
  ASSERT_EQ(server_->Stop(SIGTERM), 0);
  EXPECT_THAT(server_->Log(), Not(HasSubstr("locrit: request ")));
}

TEST_F(OperationsTest, ASlowlorisClientIsCutOffAtTheHeaderDeadlineWhileOthersAreServed) {
  Start({"--header-timeout", "2", "--no-request-log"});
  const uint16_t port = port_;
  RawConnection slow(port);
  ASSERT_TRUE(slow.ok());
  // Headers that would take a minute at one byte a second.
  const std::string request = GetRequest("/health", "X-Padding: " + std::string(40, 'p') + "\r\n");
  size_t sent = 0;
  bool cut_off = false;
  int served = 0;
  while (sent < request.size()) {
    if (!slow.Send(request.substr(sent, 1))) {
      cut_off = true;
      break;
    }
    ++sent;
    // Another client is answered at once meanwhile.
    if (StatusOf(Exchange(port, GetRequest("/healthz"))) == 200) ++served;
    if (slow.PeerClosed(std::chrono::milliseconds(1000))) {
      cut_off = true;
      break;
    }
  }
  EXPECT_TRUE(cut_off) << "the whole request went through one byte a second";
  EXPECT_LT(sent, request.size());
  EXPECT_EQ(served, static_cast<int>(sent));
  EXPECT_EQ(WaitForMetric("locrit_http_header_timeouts_total", 1), 1);
}

TEST_F(OperationsTest, ThousandsOfIdleConnectionsDoNotStopANewClient) {
  constexpr int kIdle = 2000;
  ASSERT_GE(testing::RaiseOpenFileLimit(), static_cast<uint64_t>(kIdle + 200))
      << "the hard limit on open files is too low for this test";
  Start({"--no-request-log"});
  std::vector<RawConnection> idle;
  idle.reserve(kIdle);
  for (int i = 0; i < kIdle; ++i) {
    idle.emplace_back(port_);
    ASSERT_TRUE(idle.back().ok()) << "connection " << i;
  }
  // Half of them even began a request and stopped.
  for (int i = 0; i < kIdle; i += 2) ASSERT_TRUE(idle[i].Send("GET /health HTTP/1.1\r\n"));
  EXPECT_EQ(WaitForMetric("locrit_http_connections", kIdle + 1), kIdle + 1);
  const std::string response = Exchange(port_, GetRequest("/healthz"));
  EXPECT_EQ(StatusOf(response), 200) << response;
}

TEST_F(OperationsTest, TheConnectionCapIsRespected) {
  constexpr int kCap = 20;
  Start({"--max-connections", std::to_string(kCap), "--idle-timeout", "600", "--no-request-log"});
  const uint16_t port = port_;
  // Each slot is taken by a keep-alive connection that was answered, which proves the server
  // holds it. (Filling slots with a scrape in between would race: the scrape's slot is released
  // a little after its client closed, and a connection arriving then is rightly refused.)
  std::vector<RawConnection> held;
  for (int i = 0; i < kCap; ++i) {
    held.emplace_back(port);
    ASSERT_TRUE(held.back().ok());
    ASSERT_TRUE(held.back().Send(GetRequest("/healthz")));
    const std::string got = held.back().ReadResponse(kWait).value_or("");
    ASSERT_EQ(StatusOf(got), 200) << "connection " << i << ": " << got;
  }
  // Every slot is held: newcomers get the bare 503 (or a closed connection), never a 200, and
  // the server stays up.
  for (int i = 0; i < 5; ++i) {
    RawConnection extra(port);
    ASSERT_TRUE(extra.ok());
    extra.Send(GetRequest("/healthz"));
    const std::string got = extra.ReadUntilClosed(kWait).value_or("timeout");
    EXPECT_THAT(got, Not(HasSubstr("200 OK"))) << "extra connection " << i << ": " << got;
    if (!got.empty()) {
      EXPECT_EQ(StatusOf(got), 503) << got;
      EXPECT_THAT(BodyOf(got), HasSubstr("\"code\":\"unavailable\""));
    }
  }
  // The held connections are still served.
  ASSERT_TRUE(held.front().Send(GetRequest("/healthz")));
  EXPECT_EQ(StatusOf(held.front().ReadResponse(kWait).value_or("")), 200);
  // Freed slots serve again.
  for (int i = 0; i < 5; ++i) held.pop_back();
  std::string response;
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (std::chrono::steady_clock::now() < deadline) {
    response = Exchange(port, GetRequest("/metrics"));
    if (StatusOf(response) == 200) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(StatusOf(response), 200);
  std::map<std::string, double> m = ParseMetrics(BodyOf(response));
  EXPECT_GE(m["locrit_http_connections_refused_total"], 5);
  EXPECT_LE(m["locrit_http_connections"], kCap);
}

// A raw WebSocket handshake on /ws; the response head (101 when upgraded).
std::string UpgradeToWebSocket(RawConnection& c) {
  const std::string request =
      "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  if (!c.Send(request)) return "";
  return c.ReadResponse(kWait).value_or("");
}

TEST_F(OperationsTest, WebSocketsAreCountedAndKeepTheirConnectionSlot) {
  constexpr int kCap = 3;
  Start({"--max-connections", std::to_string(kCap), "--idle-timeout", "600", "--no-request-log"});
  const uint16_t port = port_;
  std::vector<RawConnection> sockets;
  for (int i = 0; i < 2; ++i) {
    sockets.emplace_back(port);
    ASSERT_TRUE(sockets.back().ok());
    const std::string head = UpgradeToWebSocket(sockets.back());
    ASSERT_EQ(StatusOf(head), 101) << head;
    EXPECT_THAT(HeaderOf(head, "X-Request-Id"), MatchesRegex("[0-9a-f]{16}")) << head;
  }
  // The third slot: one keep-alive connection that scrapes (a scrape per connection would race
  // with its own slot's release).
  RawConnection scraper(port);
  ASSERT_TRUE(scraper.ok());
  auto scrape_until = [&](const std::function<bool(std::map<std::string, double>&)>& done) {
    std::map<std::string, double> m;
    const auto deadline = std::chrono::steady_clock::now() + kWait;
    while (std::chrono::steady_clock::now() < deadline) {
      EXPECT_TRUE(scraper.Send(GetRequest("/metrics")));
      const std::string response = scraper.ReadResponse(kWait).value_or("");
      EXPECT_EQ(StatusOf(response), 200) << response;
      m = ParseMetrics(BodyOf(response));
      if (done(m)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return m;
  };
  std::map<std::string, double> m =
      scrape_until([](auto& s) { return s["locrit_websocket_connections"] == 2; });
  EXPECT_EQ(m["locrit_websocket_connections"], 2);
  EXPECT_EQ(m["locrit_http_connections"], 3);  // Both WebSockets and the scraper.
  EXPECT_EQ(m[R"(locrit_http_requests_total{route="/ws",method="GET",status="101"})"], 2);

  // The upgraded connections still hold their slots: a newcomer is refused.
  {
    RawConnection extra(port);
    ASSERT_TRUE(extra.ok());
    extra.Send(GetRequest("/healthz"));
    const std::string got = extra.ReadUntilClosed(kWait).value_or("timeout");
    EXPECT_THAT(got, Not(HasSubstr("200 OK"))) << got;
  }

  // A WebSocket that ends gives its slot and its count back.
  sockets.pop_back();
  m = scrape_until([](auto& s) { return s["locrit_websocket_connections"] == 1; });
  EXPECT_EQ(m["locrit_websocket_connections"], 1);
  std::string response;
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (std::chrono::steady_clock::now() < deadline) {
    response = Exchange(port, GetRequest("/healthz"));
    if (StatusOf(response) == 200) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(StatusOf(response), 200) << response;
  m = scrape_until([](auto& s) { return s["locrit_http_connections_refused_total"] >= 1; });
  EXPECT_GE(m["locrit_http_connections_refused_total"], 1);
}

}  // namespace
}  // namespace locrit

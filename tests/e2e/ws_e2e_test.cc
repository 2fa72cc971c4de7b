// End to end: WebSockets on GET /ws of the real `locrit serve` binary (127.0.0.1:0, temporary data
// directory), driven by a real WebSocket client written with Beast.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "registry/locrit_registry.h"
#include "server/ws_protocol.h"
#include "tests/support/e2e_http.h"
#include "tests/support/fake_llm_server.h"
#include "tests/support/locrit_process.h"
#include "tests/support/raw_sql.h"
#include "tests/support/temp_dir.h"

namespace locrit {
namespace {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
namespace json = boost::json;
using tcp = net::ip::tcp;
using ::locrit::testing::FakeLlmServer;
using ::locrit::testing::FakeReply;
using ::locrit::testing::HttpCall;
using ::locrit::testing::LocritServer;
using ::locrit::testing::RawSql;
using ::locrit::testing::TempDir;

// A blocking WebSocket client; every read has a deadline (socket timeout) so a test never hangs.
class WsClient {
 public:
  explicit WsClient(const std::string& address, int receive_buffer = 0) : ws_(ioc_) {
    const auto colon = address.rfind(':');
    const std::string host = address.substr(0, colon);
    const std::string port = address.substr(colon + 1);
    tcp::resolver resolver(ioc_);
    auto& socket = ws_.next_layer();
    socket.open(tcp::v4());
    if (receive_buffer > 0) socket.set_option(net::socket_base::receive_buffer_size(receive_buffer));
    net::connect(socket, resolver.resolve(host, port));
    timeval tv{30, 0};
    setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ws_.handshake(host, "/ws");
  }

  void Send(const std::string& text) {
    ws_.text(true);
    ws_.write(net::buffer(text));
  }
  void SendBinary(const std::string& data) {
    ws_.binary(true);
    ws_.write(net::buffer(data));
  }
  json::object Next() {
    beast::flat_buffer buffer;
    ws_.read(buffer);
    return json::parse(beast::buffers_to_string(buffer.data())).as_object();
  }
  // Reads until the close frame; its code, or -1 when the connection ended otherwise.
  int ReadUntilClosed() {
    try {
      for (;;) {
        beast::flat_buffer buffer;
        ws_.read(buffer);
      }
    } catch (const beast::system_error& e) {
      if (e.code() == websocket::error::closed) return ws_.reason().code;
      return -1;
    }
  }
  websocket::stream<tcp::socket>& ws() { return ws_; }

 private:
  net::io_context ioc_;
  websocket::stream<tcp::socket> ws_;
};

class WsTest : public ::testing::Test {
 protected:
  void Register(const std::vector<LocritConfig>& locrits) {
    std::filesystem::create_directories(data_ / "locrits");
    SystemClock clock;
    RegistryOptions options;
    options.path = (data_ / "registry.db").string();
    options.clock = &clock;
    options.locrits_dir = (data_ / "locrits").string();
    auto registry = LocritRegistry::Open(options);
    ASSERT_TRUE(registry.ok()) << registry.status();
    for (const LocritConfig& locrit : locrits) ASSERT_TRUE((*registry)->Create(locrit).ok());
  }

  void Start(std::map<std::string, std::string> env = {}) {
    server_ = std::make_unique<LocritServer>(LOCRIT_BINARY, data_, dir_.File("server.log"),
                                             std::vector<std::string>{"--no-example"},
                                             std::move(env));
    const std::string base = server_->WaitReady();
    ASSERT_FALSE(base.empty()) << "locrit serve did not start: " << server_->Log();
    address_ = base.substr(std::string("http://").size());
  }

  std::string Log() const { return server_->Log(); }

  static LocritConfig Lent(const std::string& url) {
    LocritConfig locrit;
    locrit.name = "Lent";
    locrit.description = "parle par morceaux";
    locrit.llm.provider = LocritProvider::kOllama;
    locrit.llm.url = url;
    locrit.model = "lent";
    return locrit;
  }

  std::string MemoryText(const std::string& id) {
    RawSql sql((data_ / "locrits" / "lent" / "memory.db").string());
    return sql.Text("SELECT content FROM messages WHERE id = '" + id + "'");
  }

  TempDir dir_;
  std::filesystem::path data_ = dir_.path() / "data";
  std::unique_ptr<LocritServer> server_;
  std::string address_;  // host:port
};

std::string S(const json::value& v) { return v.is_string() ? std::string(v.as_string()) : ""; }

TEST_F(WsTest, JoinThenStreamedChunksThenCompleteWhoseIdsAreInMemory) {
  FakeLlmServer llm;
  FakeReply reply;
  reply.deltas = {"une ", "réponse ", "entière"};
  llm.SetDefault(reply);
  Register({Lent(llm.url())});
  Start();
  WsClient client(address_);
  EXPECT_EQ(client.Next()["type"], "connected");
  client.Send(R"({"type":"join_chat","locrit_name":"lent"})");
  json::object joined = client.Next();
  ASSERT_EQ(joined["type"], "joined_chat") << joined;
  EXPECT_EQ(joined["locrit_name"], "Lent");
  const std::string session = S(joined["session_id"]);
  ASSERT_FALSE(session.empty());

  client.Send(R"({"type":"chat_message","locrit_name":"Lent","message":"bonjour","request_id":"r1"})");
  std::string streamed;
  json::object event;
  for (event = client.Next(); event["type"] == "chat_chunk"; event = client.Next()) {
    EXPECT_EQ(S(event["session_id"]), session);
    EXPECT_EQ(event["request_id"], "r1");
    streamed += S(event["content"]);
  }
  ASSERT_EQ(event["type"], "chat_complete") << event;
  EXPECT_EQ(streamed, "une réponse entière");
  EXPECT_EQ(S(event["session_id"]), session);
  EXPECT_EQ(event["request_id"], "r1");
  const std::string user_id = S(event["user_message_id"]);
  const std::string assistant_id = S(event["assistant_message_id"]);

  client.Send(R"({"type":"chat_message","locrit_name":"Lent","message":"encore","stream":false})");
  json::object response = client.Next();
  ASSERT_EQ(response["type"], "chat_response") << response;
  EXPECT_EQ(response["response"], "une réponse entière");
  EXPECT_EQ(S(response["session_id"]), session);

  client.Send(R"({"type":"ping"})");
  EXPECT_EQ(client.Next()["type"], "pong");
  client.Send(R"({"type":"leave_chat","locrit_name":"Lent"})");
  json::object left = client.Next();
  EXPECT_EQ(left["type"], "left_chat");
  EXPECT_EQ(S(left["session_id"]), session);

  ASSERT_EQ(server_->Stop(SIGTERM), 0) << Log();
  EXPECT_EQ(MemoryText(user_id), "bonjour");
  EXPECT_EQ(MemoryText(assistant_id), "une réponse entière");
  EXPECT_EQ(MemoryText(S(response["user_message_id"])), "encore");
}

TEST_F(WsTest, MalformedFramesGetErrorsAndTheConnectionStaysUsable) {
  FakeLlmServer llm;
  Register({Lent(llm.url())});
  Start();
  WsClient client(address_);
  EXPECT_EQ(client.Next()["type"], "connected");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not json", "invalid_argument"},
      {"[1,2]", "invalid_argument"},
      {R"({"type":"dance"})", "invalid_argument"},
      {R"({"type":"chat_message","locrit_name":"Lent"})", "invalid_argument"},
      {R"({"type":"chat_message","locrit_name":"Lent","message":7})", "invalid_argument"},
      {R"({"type":"chat_message","locrit_name":"Lent","message":"x","stream":"yes"})",
       "invalid_argument"},
      {R"({"type":"chat_message","locrit_name":"Personne","message":"x","request_id":"q"})",
       "not_found"},
      {R"({"type":"join_chat","locrit_name":"Personne"})", "not_found"},
      {R"({"type":"chat_message","locrit_name":"Lent","message":")" + std::string(40000, 'a') +
           R"("})",
       "payload_too_large"},
      {std::string(2 << 20, ' '), "payload_too_large"},
  };
  for (const auto& [frame, code] : cases) {
    client.Send(frame);
    json::object error = client.Next();
    EXPECT_EQ(error["type"], "error") << frame.substr(0, 80);
    EXPECT_EQ(S(error["code"]), code) << frame.substr(0, 80) << " " << error;
  }
  client.SendBinary("\x01\x02");
  EXPECT_EQ(client.Next()["code"], "invalid_argument");

  client.Send(R"({"type":"chat_message","locrit_name":"Lent","message":"et maintenant ?"})");
  json::object event;
  for (event = client.Next(); event["type"] == "chat_chunk"; event = client.Next()) {
  }
  EXPECT_EQ(event["type"], "chat_complete") << event;
}

TEST_F(WsTest, SigtermClosesWebSocketsWith1001AfterTheTurnInFlight) {
  FakeLlmServer llm;
  FakeReply held;
  held.deltas = {"presque ", "fini"};
  held.hold_before_last = true;
  llm.SetDefault(held);
  Register({Lent(llm.url())});
  Start();
  WsClient client(address_);
  EXPECT_EQ(client.Next()["type"], "connected");
  client.Send(R"({"type":"chat_message","locrit_name":"Lent","message":"attends"})");
  EXPECT_EQ(client.Next()["content"], "presque ");
  server_->Signal(SIGTERM);
  for (int i = 0; i < 1500 && Log().find("shutting down") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  llm.Release();
  EXPECT_EQ(client.Next()["content"], "fini");
  json::object complete = client.Next();
  EXPECT_EQ(complete["type"], "chat_complete") << complete;
  EXPECT_EQ(client.ReadUntilClosed(), 1001);
  EXPECT_EQ(server_->Wait(), 0) << Log();
  EXPECT_EQ(MemoryText(S(complete["assistant_message_id"])), "presque fini");
}

// A flood of chat messages on one connection: four turns run at once, the rest are refused with
// rate_limited at once (nothing saved for them), and the connection serves on.
TEST_F(WsTest, AFloodOfChatMessagesRunsFourTurnsAndRefusesTheRest) {
  FakeLlmServer llm;
  FakeReply held;
  held.deltas = {"un ", "deux"};
  held.hold_before_last = true;
  llm.SetDefault(held);
  Register({Lent(llm.url())});
  Start();
  WsClient client(address_);
  EXPECT_EQ(client.Next()["type"], "connected");
  constexpr int kFlood = 20;
  for (int i = 0; i < kFlood; ++i) {
    client.Send(R"({"type":"chat_message","locrit_name":"Lent","message":"vite )" +
                std::to_string(i) + R"(","request_id":"r)" + std::to_string(i) + "\"}");
  }
  int refused = 0;
  int chunks = 0;
  while (refused + chunks < kFlood) {
    json::object event = client.Next();
    if (event["type"] == "error") {
      EXPECT_EQ(S(event["code"]), "rate_limited") << event;
      ++refused;
    } else {
      EXPECT_EQ(event["type"], "chat_chunk") << event;
      EXPECT_EQ(event["content"], "un ");
      ++chunks;
    }
  }
  EXPECT_EQ(chunks, kWsMaxTurnsPerConnection);
  EXPECT_EQ(refused, kFlood - kWsMaxTurnsPerConnection);
  llm.Release();
  int complete = 0;
  while (complete < kWsMaxTurnsPerConnection) {
    json::object event = client.Next();
    if (event["type"] == "chat_complete") ++complete;
  }
  client.Send(R"({"type":"ping"})");
  EXPECT_EQ(client.Next()["type"], "pong");
  RawSql sql((data_ / "locrits" / "lent" / "memory.db").string());
  EXPECT_EQ(sql.Text("SELECT count(*) FROM messages"),
            std::to_string(2 * kWsMaxTurnsPerConnection))
      << "refused messages are not saved";
}

// A client that sends and never reads: once the events it lets pile up pass
// limits.max_ws_queue_bytes, the server drops the connection (a close frame would wait behind
// the queue), says so in its log, and serves the next client.
TEST_F(WsTest, AReaderThatNeverReadsIsDisconnectedAtItsBound) {
  Start({{"LOCRIT_MAX_WS_QUEUE_BYTES", "16384"}});
  bool dropped = false;
  int sent = 0;
  {
    WsClient flood(address_, /*receive_buffer=*/4096);
    // Each ping queues a 15-byte pong; the kernel's buffers absorb a few MiB of them at most.
    try {
      for (; sent < 2'000'000; ++sent) flood.Send(R"({"type":"ping"})");
    } catch (const beast::system_error&) {
      dropped = true;
    }
  }
  EXPECT_TRUE(dropped) << "still connected after " << sent << " pings";
  EXPECT_THAT(Log(), ::testing::HasSubstr("websocket closed: the client let"));

  WsClient next(address_);
  EXPECT_EQ(next.Next()["type"], "connected");
  next.Send(R"({"type":"ping"})");
  EXPECT_EQ(next.Next()["type"], "pong");
  HttpCall health;
  health.url = "http://" + address_ + "/healthz";
  EXPECT_EQ(locrit::testing::Send(health).status, 200);
}

}  // namespace
}  // namespace locrit

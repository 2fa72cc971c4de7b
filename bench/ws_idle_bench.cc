// Idle WebSockets: how much resident memory `locrit serve` needs to hold many open, silent
// WebSocket connections (issue goal: 10 000 within 200 MB). The real binary runs on 127.0.0.1:0
// with a temporary data directory; one client process opens the connections one after another
// (TCP connect, the upgrade, then the server's `connected` event, so each is fully set up on the
// server) and keeps them open. Baseline in the same run: the server's RSS once started and
// serving one HTTP request, before any WebSocket.
//
//   build-bench/bench/ws_idle_bench [connections=10000] [path/to/locrit]

#include <csignal>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/e2e_http.h"
#include "tests/support/locrit_process.h"
#include "tests/support/raw_connection.h"
#include "tests/support/temp_dir.h"

namespace {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

// VmRSS of `pid` in KiB, or -1.
long ResidentKiB(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  const int wanted = argc > 1 ? std::stoi(argv[1]) : 10'000;
  const std::string binary = argc > 2 ? argv[2] : LOCRIT_BINARY;
  locrit::testing::RaiseOpenFileLimit();  // One descriptor per connection here too.

  locrit::testing::TempDir dir;
  // Every WebSocket holds one of the server's max_connections (10 000 by default): the cap leaves
  // room for the /health requests made while they are held.
  locrit::testing::LocritServer server(binary, dir.path() / "data", dir.File("server.log"),
                                       {"--max-connections", std::to_string(wanted + 16)});
  const std::string base = server.WaitReady();
  if (base.empty()) {
    std::fprintf(stderr, "the server did not start:\n%s\n", server.Log().c_str());
    return 1;
  }
  const std::string address = base.substr(std::string("http://").size());
  const std::string host = address.substr(0, address.rfind(':'));
  const std::string port = address.substr(address.rfind(':') + 1);
  locrit::testing::HttpCall health;
  health.url = base + "/health";
  if (locrit::testing::Send(health).status != 200) {
    std::fprintf(stderr, "GET /health failed\n");
    return 1;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const long baseline_kib = ResidentKiB(server.pid());

  net::io_context ioc;
  tcp::resolver resolver(ioc);
  const auto endpoints = resolver.resolve(host, port);
  std::vector<std::unique_ptr<websocket::stream<tcp::socket>>> connections;
  connections.reserve(static_cast<size_t>(wanted));
  const auto started = std::chrono::steady_clock::now();
  std::string failure;
  for (int i = 0; i < wanted; ++i) {
    try {
      auto ws = std::make_unique<websocket::stream<tcp::socket>>(ioc);
      net::connect(ws->next_layer(), endpoints);
      ws->handshake(host, "/ws");
      beast::flat_buffer connected;
      ws->read(connected);  // The server's `connected` event: the session exists.
      connections.push_back(std::move(ws));
    } catch (const std::exception& e) {
      failure = e.what();
      break;
    }
  }
  const double open_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::this_thread::sleep_for(std::chrono::seconds(2));  // Let allocations settle.
  const long held_kib = ResidentKiB(server.pid());
  const size_t held = connections.size();

  // Still served while they are held.
  const bool healthy = locrit::testing::Send(health).status == 200;
  connections.clear();
  const int exit_code = server.Stop(SIGTERM);

  std::printf("idle WebSockets held       %zu of %d%s%s\n", held, wanted,
              failure.empty() ? "" : " (stopped: ", failure.empty() ? "" : (failure + ")").c_str());
  std::printf("time to open them          %.2f s (%.0f per second, one client thread)\n",
              open_seconds, static_cast<double>(held) / open_seconds);
  std::printf("server RSS, baseline       %.1f MiB (started, one HTTP request served)\n",
              static_cast<double>(baseline_kib) / 1024);
  std::printf("server RSS, held           %.1f MiB\n", static_cast<double>(held_kib) / 1024);
  std::printf("per connection             %.1f KiB\n",
              held == 0 ? 0.0 : static_cast<double>(held_kib - baseline_kib) / static_cast<double>(held));
  std::printf("GET /health while held     %s\n", healthy ? "200" : "FAILED");
  std::printf("clean shutdown             %s\n", exit_code == 0 ? "exit 0" : "FAILED");
  return held == static_cast<size_t>(wanted) && healthy && exit_code == 0 ? 0 : 1;
}

// HttpServer: the HTTP/1.1 listener and connections (Boost.Beast), handing each request to an Api.
//
// - One io_context with `threads` network threads; each accepted socket gets its own strand, so a
//   connection's handlers never run concurrently.
// - Keep-alive, one request at a time per connection (pipelined requests wait in the buffer and
//   are answered in order). Every read and write has a deadline: a connection waiting for the
//   first byte of a request is closed after idle_timeout; once that byte came, the headers must
//   be complete within header_timeout (slowloris), then the body within read_timeout; each
//   write must finish within write_timeout.
// - At most max_connections connections are held; one arriving beyond that is answered a bare
//   503 and closed at once, so a flood of idle connections cannot exhaust descriptors or memory.
// - Each request gets an id (a valid incoming X-Request-Id, else a generated one) echoed in the
//   X-Request-Id response header; with request_log, one line per answered request goes to stderr
//   (docs/server.md gives the format: no path, body, message or token is ever logged). Answered
//   requests are counted in `metrics` (server/metrics.h) by route template.
// - Bodies over max_body_bytes get a JSON 413, headers over max_header_bytes a JSON 431, and
//   unparseable requests a JSON 400; those connections are then closed.
// - Streams (SSE) are written as chunks, one per Write, flushed as they come, one write in flight;
//   a client whose unsent backlog passes max_stream_backlog_bytes is disconnected.
// - GET /ws upgrades to a WebSocket (Api::OpenWebSocket, ws_protocol.h): text messages of at most
//   max_body_bytes (larger or binary ones get an error event and the connection goes on), pings
//   when the client is silent for half of ws_idle_timeout and a close when it stays silent for
//   all of it, one write in flight behind a queue of at most max_ws_queue_bytes: a client that
//   does not read is disconnected when its queue passes that bound.
//
// Shutdown: BeginDrain() stops accepting and ends keep-alive after each response; WaitIdle()
// waits for the requests in flight (WebSocket chat turns included); Stop() closes every WebSocket
// with 1001 (going away) after what is queued for it, then stops the network threads.
// Thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"
#include "server/api.h"
#include "server/metrics.h"

namespace locrit {

struct HttpServerOptions {
  std::string host = "127.0.0.1";  // An IP address or "localhost".
  uint16_t port = 8000;            // 0: any free port.
  int threads = 2;
  size_t max_body_bytes = 1 << 20;
  size_t max_header_bytes = 16 << 10;
  std::chrono::milliseconds idle_timeout{30'000};    // Waiting for a request's first byte.
  std::chrono::milliseconds header_timeout{10'000};  // First byte to the end of the headers.
  std::chrono::milliseconds read_timeout{30'000};    // The body, once the headers are in.
  std::chrono::milliseconds write_timeout{30'000};
  size_t max_stream_backlog_bytes = 1 << 20;
  size_t max_ws_queue_bytes = 1 << 20;
  std::chrono::milliseconds ws_idle_timeout{60'000};
  // How long Stop() waits for WebSockets to finish their closing handshake.
  std::chrono::milliseconds ws_close_timeout{3'000};
  size_t max_connections = 10'000;   // Open connections held at most (WebSocket included).
  bool request_log = true;           // One line per request on stderr.
  ServerMetrics* metrics = nullptr;  // Optional; outlives the server.
};

// A request id sent by a client is used when it is 1-64 characters of [A-Za-z0-9._:-]; anything
// else (empty, too long, other characters) is replaced by a generated id. Pure.
bool IsValidRequestId(std::string_view id);

class HttpServer {
 public:
  // Binds, listens and starts the network threads. `api` outlives the server.
  // io_error (or failed_precondition) when the address cannot be bound; invalid_argument when it
  // is not an address.
  static Result<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options, Api* api);
  ~HttpServer();  // Stop().
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The bound address, e.g. "127.0.0.1:43817" (IPv6 as "[::1]:8000").
  std::string address() const;
  uint16_t port() const;

  // Stops accepting; connections close after their current response.
  void BeginDrain();
  // Waits until no request is being answered, or `timeout` passed. True when idle.
  bool WaitIdle(std::chrono::milliseconds timeout);
  // Closes every WebSocket with 1001, then stops the network threads (closing every connection)
  // and joins them. Idempotent.
  void Stop();

  class Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace locrit

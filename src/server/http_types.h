// The plain request and response values the router and handlers work on, and the Responder a
// handler answers through. No Boost types: handlers are tested without sockets, with a fake
// Responder, and only server/internal/http_session.cc knows Beast.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace locrit {

struct HttpRequest {
  std::string method;  // "GET", "POST", ... as sent.
  std::string target;  // Path and query, as sent (still percent-encoded).
  std::string content_type;  // The Content-Type header; empty when absent.
  std::string host;          // The Host header; empty when absent.
  std::string authorization;  // The Authorization header; empty when absent.
  bool from_loopback = false;  // The peer's address is a loopback address.
  std::string request_id;      // X-Request-Id: the client's when valid, else generated.
  std::string body;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // Extra headers (e.g. Allow).
  std::string body;
};

// How a handler answers one request: either Send once, or StartStream, any number of Write, then
// End. Every method may be called from any thread (the implementation moves the work onto its
// connection's strand); calls for one request must not overlap. Thread-safe.
class Responder {
 public:
  virtual ~Responder() = default;
  // A whole response.
  virtual void Send(HttpResponse response) = 0;
  // The status line and headers of a streamed (chunked) response.
  virtual void StartStream(int status, std::string content_type) = 0;
  // Queues one piece of the stream; it is written (and flushed) as its own chunk. Returns false
  // when the client is gone or does not read fast enough: the producer should stop.
  virtual bool Write(std::string data) = 0;
  // Ends the stream.
  virtual void End() = 0;
};

}  // namespace locrit

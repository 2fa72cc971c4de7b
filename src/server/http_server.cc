// The only translation unit of server/ that includes Beast (it is costly to compile).
#include "server/http_server.h"

#include <fmt/format.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "server/http_errors.h"

namespace locrit {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

// After an error response that ends the connection, what the client is still sending is read and
// dropped for a while, so closing does not reset the connection before the client read the answer.
constexpr std::chrono::milliseconds kLingerTimeout{2'000};
constexpr size_t kLingerMaxBytes = 4 << 20;

std::string Chunk(std::string_view data) {
  char size[20];
  const int n = std::snprintf(size, sizeof(size), "%zx\r\n", data.size());
  std::string chunk;
  chunk.reserve(static_cast<size_t>(n) + data.size() + 2);
  chunk.append(size, static_cast<size_t>(n));
  chunk.append(data);
  chunk.append("\r\n");
  return chunk;
}

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// What a connection arriving beyond max_connections gets before being closed.
constexpr std::string_view kBusyResponse =
    "HTTP/1.1 503 Service Unavailable\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 91\r\n"
    "Connection: close\r\n"
    "\r\n"
    "{\"success\":false,\"error\":\"too many open connections; try again "
    "later\",\"code\":\"unavailable\"}";

}  // namespace

bool IsValidRequestId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

class HttpServer::Impl {
 public:
  Impl(HttpServerOptions options, Api* api)
      : options_(std::move(options)),
        api_(api),
        acceptor_(net::make_strand(ioc_)),
        request_id_seed_(std::random_device{}()) {}

  Status Listen();
  void Accept();
  // Answers the bare 503 and closes: the max_connections are in use.
  void Refuse(tcp::socket socket);
  // A fresh request id: 16 hex digits, unique in this process (a bijection of a counter).
  std::string NewRequestId() {
    const uint64_t n = request_id_seed_ + request_counter_.fetch_add(1);
    return fmt::format("{:016x}", SplitMix64(n));
  }
  // Connection counting: a ConnectionSlot holds one of the max_connections.
  void ConnectionOpened() {
    connections_.fetch_add(1);
    if (options_.metrics) options_.metrics->http_connections().Add();
  }
  void ConnectionClosed() {
    connections_.fetch_sub(1);
    if (options_.metrics) options_.metrics->http_connections().Sub();
  }
  void RequestStarted() {
    std::lock_guard lock(mu_);
    ++active_;
  }
  void RequestFinished() {
    std::lock_guard lock(mu_);
    if (--active_ == 0) idle_.notify_all();
  }

  const HttpServerOptions options_;
  Api* const api_;
  net::io_context ioc_;
  // Keeps the network threads running while draining: once the acceptor is closed, a streaming
  // connection may have no operation pending between two writes, and without this guard run()
  // would return and the rest of the stream would never be written.
  net::executor_work_guard<net::io_context::executor_type> keep_running_{ioc_.get_executor()};
  tcp::acceptor acceptor_;  // Confined to its own strand once accepting.
  tcp::endpoint bound_;
  std::vector<std::thread> threads_;
  std::atomic<bool> draining_{false};
  std::atomic<bool> stopped_{false};
  std::mutex mu_;
  std::condition_variable idle_;
  int64_t active_ = 0;                  // GUARDED_BY(mu_): requests read and not yet answered.
  std::atomic<size_t> connections_{0};  // Connections held (ConnectionSlots alive).
  const uint64_t request_id_seed_;
  std::atomic<uint64_t> request_counter_{0};

  // Open WebSockets, each with what closes it with 1001 (posted to its strand).
  int64_t AddWebSocket(std::function<void()> close_going_away) {
    std::lock_guard lock(ws_mu_);
    const int64_t id = next_ws_++;
    websockets_.emplace(id, std::move(close_going_away));
    if (options_.metrics) options_.metrics->websocket_connections().Add();
    return id;
  }
  void RemoveWebSocket(int64_t id) {
    std::lock_guard lock(ws_mu_);
    if (websockets_.erase(id) == 1 && options_.metrics) {
      options_.metrics->websocket_connections().Sub();
    }
    if (websockets_.empty()) ws_gone_.notify_all();
  }
  void CloseWebSockets();

  mutable std::mutex ws_mu_;
  std::condition_variable ws_gone_;
  std::map<int64_t, std::function<void()>> websockets_;  // GUARDED_BY(ws_mu_)
  int64_t next_ws_ = 0;                                  // GUARDED_BY(ws_mu_)
};

namespace {

// One connection. Every member is confined to the connection's strand (stream_'s executor),
// except gone_ and backlog_bytes_, which the Responder reads from any thread.
bool PeerIsLoopback(beast::tcp_stream& stream) {
  beast::error_code ec;
  const tcp::endpoint peer = stream.socket().remote_endpoint(ec);
  if (ec) return false;
  const net::ip::address a = peer.address();
  if (a.is_v4()) return a.to_v4().is_loopback();
  return a.to_v6().is_loopback() || (a.to_v6().is_v4_mapped() &&
                                     net::ip::make_address_v4(net::ip::v4_mapped, a.to_v6())
                                         .is_loopback());
}

HttpRequest ToHttpRequest(http::request<http::string_body> req, bool from_loopback,
                          std::string request_id) {
  HttpRequest request;
  request.method = std::string(req.method_string());
  request.target = std::string(req.target());
  request.content_type = std::string(req[http::field::content_type]);
  request.host = std::string(req[http::field::host]);
  request.authorization = std::string(req[http::field::authorization]);
  request.from_loopback = from_loopback;
  request.request_id = std::move(request_id);
  request.body = std::move(req.body());
  return request;
}

std::string PeerAddress(beast::tcp_stream& stream) {
  beast::error_code ec;
  const tcp::endpoint peer = stream.socket().remote_endpoint(ec);
  return ec ? std::string("unknown") : peer.address().to_string();
}

// One of the server's max_connections, held for as long as its connection lives: whoever takes
// over the socket (a WebSocket session after an upgrade) moves the slot along with it.
class ConnectionSlot {
 public:
  explicit ConnectionSlot(HttpServer::Impl* server) : server_(server) {
    server_->ConnectionOpened();
  }
  ConnectionSlot(ConnectionSlot&& other) noexcept
      : server_(std::exchange(other.server_, nullptr)) {}
  ConnectionSlot& operator=(ConnectionSlot&&) = delete;
  ~ConnectionSlot() {
    if (server_ != nullptr) server_->ConnectionClosed();
  }

 private:
  HttpServer::Impl* server_;
};

constexpr std::string_view kRequestIdHeader = "X-Request-Id";

// One answered request (a WebSocket upgrade included), as counted and logged.
struct AnsweredRequest {
  std::string_view id;
  std::string_view method;  // Bounded (MetricMethod).
  int route = kOtherRoute;
  int status = 0;
  std::chrono::steady_clock::time_point started;
  size_t bytes = 0;  // Body bytes written (chunk framing included for streams).
  std::string_view peer;
  bool aborted = false;  // The client went away before the end.
};

void RecordAnswered(const HttpServerOptions& options, const AnsweredRequest& r) {
  const int64_t micros = std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::steady_clock::now() - r.started)
                             .count();
  if (options.metrics) options.metrics->RecordRequest(r.route, r.method, r.status, micros);
  if (!options.request_log) return;
  // One fwrite per line (stdio locks the stream), so lines of concurrent requests never mix.
  const std::string line = fmt::format(
      "locrit: request id={} method={} route={} status={} ms={:.3f} bytes={} peer={}{}\n", r.id,
      r.method, RouteTemplateName(r.route), r.status, static_cast<double>(micros) / 1000.0,
      r.bytes, r.peer, r.aborted ? " aborted=true" : "");
  std::fwrite(line.data(), 1, line.size(), stderr);
}

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket&& socket, HttpServer::Impl* server)
      : stream_(std::move(socket)),
        server_(server),
        slot_(server),
        from_loopback_(PeerIsLoopback(stream_)),
        peer_(PeerAddress(stream_)) {}

  void Run() {
    net::dispatch(stream_.get_executor(), beast::bind_front_handler(&Connection::Read,
                                                                   shared_from_this()));
  }

  // Responder entry points (any thread).
  void PostSend(HttpResponse response) {
    net::post(stream_.get_executor(),
              [self = shared_from_this(), r = std::move(response)]() mutable {
                self->SendResponse(std::move(r));
              });
  }
  void PostStartStream(int status, std::string content_type) {
    net::post(stream_.get_executor(),
              [self = shared_from_this(), status, ct = std::move(content_type)]() mutable {
                self->StartStream(status, std::move(ct));
              });
  }
  bool PostWrite(std::string data) {
    if (gone_.load()) return false;
    std::string chunk = Chunk(data);
    const size_t backlog = backlog_bytes_.fetch_add(chunk.size()) + chunk.size();
    if (backlog > server_->options_.max_stream_backlog_bytes) {
      gone_.store(true);
      net::post(stream_.get_executor(), [self = shared_from_this()] { self->Fail(); });
      return false;
    }
    net::post(stream_.get_executor(), [self = shared_from_this(), c = std::move(chunk)]() mutable {
      self->QueueChunk(std::move(c));
    });
    return true;
  }
  void PostEnd() {
    net::post(stream_.get_executor(), [self = shared_from_this()] { self->EndStream(); });
  }

 private:
  // Waits (up to idle_timeout) for the first byte of the next request, unless a pipelined one
  // is already buffered; the header deadline starts with that byte.
  void Read() {
    parser_.emplace();
    parser_->body_limit(server_->options_.max_body_bytes);
    parser_->header_limit(static_cast<std::uint32_t>(server_->options_.max_header_bytes));
    if (buffer_.size() > 0) return ReadHeader();
    stream_.expires_after(server_->options_.idle_timeout);
    stream_.async_read_some(
        buffer_.prepare(4096), [self = shared_from_this()](beast::error_code ec, size_t n) {
          self->buffer_.commit(n);
          if (ec) return self->Close();  // Idle too long, or the client left: nobody to answer.
          self->ReadHeader();
        });
  }

  void ReadHeader() {
    stream_.expires_after(server_->options_.header_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Connection::OnHeader, shared_from_this()));
  }

  void OnHeader(beast::error_code ec, size_t) {
    if (ec == beast::error::timeout && server_->options_.metrics) {
      server_->options_.metrics->header_timeouts().Add();
    }
    if (ec) return OnReadError(ec);
    const auto& req = parser_->get();
    if (beast::iequals(req[http::field::expect], "100-continue") && !parser_->is_done()) {
      if (parser_->content_length() && *parser_->content_length() >
                                           server_->options_.max_body_bytes) {
        return OnReadError(http::error::body_limit);
      }
      continue_ = std::make_shared<http::response<http::empty_body>>(http::status::continue_, 11);
      stream_.expires_after(server_->options_.write_timeout);
      return http::async_write(stream_, *continue_,
                               [self = shared_from_this()](beast::error_code e, size_t) {
                                 self->continue_.reset();
                                 if (e) return self->Fail();
                                 self->ReadBody();
                               });
    }
    ReadBody();
  }

  void ReadBody() {
    stream_.expires_after(server_->options_.read_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Connection::OnRead, shared_from_this()));
  }

  void OnReadError(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == net::error::eof ||
        ec == beast::error::timeout || ec == net::error::operation_aborted ||
        ec == net::error::connection_reset) {
      return Close();
    }
    HttpError error{400, "invalid_argument", "malformed HTTP request: " + ec.message()};
    if (ec == http::error::body_limit) {
      error = PayloadTooLargeError("the body is larger than " +
                                   std::to_string(server_->options_.max_body_bytes) + " bytes");
    } else if (ec == http::error::header_limit) {
      error = HeadersTooLargeError("the request headers are larger than " +
                                   std::to_string(server_->options_.max_header_bytes) + " bytes");
    } else if (ec.category() != http::make_error_code(http::error::body_limit).category()) {
      return Close();  // A socket error: nobody to answer.
    }
    keep_alive_ = false;
    linger_ = true;
    StartRequest(parser_->get().method_string(), parser_->get().target(),
                 parser_->get()[kRequestIdHeader]);
    SendResponse(ErrorResponse(error));
  }

  void OnRead(beast::error_code ec, size_t) {
    if (ec) return OnReadError(ec);
    http::request<http::string_body> req = parser_->release();
    keep_alive_ = req.keep_alive();
    if (websocket::is_upgrade(req) && req.target().substr(0, req.target().find('?')) == "/ws") {
      return UpgradeToWebSocket(std::move(req));
    }
    StartRequest(req.method_string(), req.target(), req[kRequestIdHeader]);
    HttpRequest request = ToHttpRequest(std::move(req), from_loopback_, request_id_);
    stream_.expires_never();  // A chat turn may take long; the writes have their own deadline.
    server_->api_->Handle(request, MakeResponder());
  }

  std::shared_ptr<Responder> MakeResponder();
  void UpgradeToWebSocket(http::request<http::string_body> req);  // After WsConnection.

  // A request was read (or refused while reading): its id, route and clock start.
  void StartRequest(std::string_view method, std::string_view target, std::string_view id) {
    in_request_ = true;
    server_->RequestStarted();
    request_id_ = IsValidRequestId(id) ? std::string(id) : server_->NewRequestId();
    method_ = MetricMethod(method);
    route_ = RouteIndexOf(target);
    status_ = 0;
    bytes_ = 0;
    started_ = std::chrono::steady_clock::now();
  }

  bool KeepAlive() const { return keep_alive_ && !server_->draining_.load(); }

  void SendResponse(HttpResponse r) {
    if (!in_request_ || streaming_) return;  // A second answer to one request is a bug upstream.
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(r.status), 11);
    res->set(http::field::server, "locrit");
    res->set(http::field::content_type, r.content_type);
    res->set(http::field::cache_control, "no-store");
    res->set(kRequestIdHeader, request_id_);
    for (auto& [name, value] : r.headers) res->set(name, value);
    res->keep_alive(KeepAlive());
    status_ = r.status;
    bytes_ = r.body.size();
    res->body() = std::move(r.body);
    res->prepare_payload();
    stream_.expires_after(server_->options_.write_timeout);
    http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code ec,
                                                                      size_t) {
      self->FinishRequest();
      if (ec) return self->Fail();
      if (!res->keep_alive()) return self->linger_ ? self->Linger() : self->Close();
      self->Read();
    });
  }

  void StartStream(int status, std::string content_type) {
    if (!in_request_ || streaming_) return;
    streaming_ = true;
    head_ = std::make_unique<http::response<http::empty_body>>(static_cast<http::status>(status),
                                                               11);
    head_->set(http::field::server, "locrit");
    head_->set(http::field::content_type, content_type);
    head_->set(http::field::cache_control, "no-cache");
    head_->set("X-Accel-Buffering", "no");
    head_->set(kRequestIdHeader, request_id_);
    status_ = status;
    head_->keep_alive(KeepAlive());
    head_->chunked(true);
    serializer_ = std::make_unique<http::response_serializer<http::empty_body>>(*head_);
    Pump();
  }

  void QueueChunk(std::string chunk) {
    if (!streaming_ || gone_.load()) {
      backlog_bytes_.fetch_sub(chunk.size());
      return;
    }
    backlog_.push_back(std::move(chunk));
    Pump();
  }

  void EndStream() {
    if (!streaming_ || gone_.load()) return;
    end_queued_ = true;
    Pump();
  }

  // Writes what is queued, one write in flight.
  void Pump() {
    if (writing_ || gone_.load()) return;
    if (!head_written_) {
      writing_ = true;
      stream_.expires_after(server_->options_.write_timeout);
      return http::async_write_header(
          stream_, *serializer_, [self = shared_from_this()](beast::error_code ec, size_t) {
            self->writing_ = false;
            if (ec) return self->Fail();
            self->head_written_ = true;
            self->Pump();
          });
    }
    if (backlog_.empty() && end_queued_) {
      backlog_.push_back("0\r\n\r\n");
      backlog_bytes_.fetch_add(backlog_.back().size());
      end_queued_ = false;
      end_written_ = true;
    }
    if (backlog_.empty()) {
      stream_.expires_never();
      return;
    }
    writing_ = true;
    stream_.expires_after(server_->options_.write_timeout);
    net::async_write(stream_, net::buffer(backlog_.front()),
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       self->writing_ = false;
                       self->bytes_ += self->backlog_.front().size();
                       self->backlog_bytes_.fetch_sub(self->backlog_.front().size());
                       self->backlog_.pop_front();
                       if (ec) return self->Fail();
                       if (self->backlog_.empty() && self->end_written_) return self->StreamDone();
                       self->Pump();
                     });
  }

  void StreamDone() {
    const bool keep = head_->keep_alive();
    streaming_ = head_written_ = end_written_ = false;
    serializer_.reset();
    head_.reset();
    FinishRequest();
    if (!keep) return Close();
    Read();
  }

  void FinishRequest() {
    if (!in_request_) return;
    in_request_ = false;
    RecordAnswered(server_->options_, {.id = request_id_,
                                       .method = method_,
                                       .route = route_,
                                       .status = status_,
                                       .started = started_,
                                       .bytes = bytes_,
                                       .peer = peer_,
                                       .aborted = gone_.load()});
    server_->RequestFinished();
  }

  void Fail() {
    gone_.store(true);
    FinishRequest();
    Close();
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  // Half-closes, then drops what the client still sends for a while before closing.
  void Linger() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(kLingerTimeout);
    buffer_.consume(buffer_.size());
    stream_.async_read_some(buffer_.prepare(64 << 10), [self = shared_from_this()](
                                                           beast::error_code ec, size_t n) {
      self->lingered_ += n;
      if (ec || self->lingered_ > kLingerMaxBytes) return self->Close();
      self->Linger();
    });
  }

  beast::tcp_stream stream_;
  HttpServer::Impl* const server_;
  ConnectionSlot slot_;  // Moved to the WebSocket on an upgrade.
  const bool from_loopback_;  // The peer is a loopback address (access.h).
  const std::string peer_;    // The peer's address, for the request log.
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<http::response<http::empty_body>> continue_;
  bool keep_alive_ = false;
  bool in_request_ = false;  // A request was read and is not yet fully answered.
  // The current request, for the log and the metrics.
  std::string request_id_;
  std::string_view method_;  // Bounded (MetricMethod).
  int route_ = kOtherRoute;
  int status_ = 0;
  size_t bytes_ = 0;  // Body bytes written (chunk framing included for streams).
  std::chrono::steady_clock::time_point started_;
  bool linger_ = false;
  size_t lingered_ = 0;
  // The current stream.
  bool streaming_ = false;
  bool head_written_ = false;
  bool writing_ = false;
  bool end_queued_ = false;
  bool end_written_ = false;
  std::unique_ptr<http::response<http::empty_body>> head_;
  std::unique_ptr<http::response_serializer<http::empty_body>> serializer_;
  std::deque<std::string> backlog_;
  // Any thread.
  std::atomic<bool> gone_{false};
  std::atomic<size_t> backlog_bytes_{0};
};

class SessionResponder final : public Responder {
 public:
  explicit SessionResponder(std::shared_ptr<Connection> session) : session_(std::move(session)) {}
  void Send(HttpResponse response) override { session_->PostSend(std::move(response)); }
  void StartStream(int status, std::string content_type) override {
    session_->PostStartStream(status, std::move(content_type));
  }
  bool Write(std::string data) override { return session_->PostWrite(std::move(data)); }
  void End() override { session_->PostEnd(); }

 private:
  const std::shared_ptr<Connection> session_;
};

std::shared_ptr<Responder> Connection::MakeResponder() {
  return std::make_shared<SessionResponder>(shared_from_this());
}

// One WebSocket, from the upgrade request on. Every member is confined to the connection's strand
// (ws_'s executor), except gone_ and queued_bytes_, which the sink reads from any thread.
class WsConnection : public std::enable_shared_from_this<WsConnection> {
 public:
  // `slot` is the upgraded connection's: the WebSocket keeps holding it, so max_connections
  // counts WebSockets too.
  WsConnection(beast::tcp_stream&& stream, ConnectionSlot slot, HttpServer::Impl* server,
               bool from_loopback, std::string peer, http::request<http::string_body> upgrade)
      : ws_(std::move(stream)),
        slot_(std::move(slot)),
        server_(server),
        from_loopback_(from_loopback),
        peer_(std::move(peer)),
        upgrade_(std::move(upgrade)),
        request_id_(IsValidRequestId(upgrade_[kRequestIdHeader])
                        ? std::string(upgrade_[kRequestIdHeader])
                        : server->NewRequestId()),
        route_(RouteIndexOf(upgrade_.target())),
        started_(std::chrono::steady_clock::now()) {}

  void Run();

  // Sink entry points (any thread).
  bool PostSend(std::string text) {
    if (gone_.load()) return false;
    const size_t queued = queued_bytes_.fetch_add(text.size()) + text.size();
    if (queued > server_->options_.max_ws_queue_bytes) {
      // It does not read: a close frame would wait behind the queue, so the socket just closes.
      if (!gone_.exchange(true)) {
        fmt::print(stderr,
                   "locrit: websocket closed: the client let {} bytes of events pile up without "
                   "reading (limits.max_ws_queue_bytes = {})\n",
                   queued, server_->options_.max_ws_queue_bytes);
      }
      net::post(ws_.get_executor(), [self = shared_from_this()] { self->Abort(); });
      return false;
    }
    net::post(ws_.get_executor(), [self = shared_from_this(), t = std::move(text)]() mutable {
      self->Queue(std::move(t));
    });
    return true;
  }
  void PostClose(websocket::close_code code) {
    net::post(ws_.get_executor(), [self = shared_from_this(), code] {
      if (self->close_code_) return;
      self->close_code_ = code;
      self->Pump();
    });
  }

 private:
  void Refuse(const HttpError& error) {
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(error.status), 11);
    const HttpResponse body = ErrorResponse(error);
    res->set(http::field::server, "locrit");
    res->set(http::field::content_type, body.content_type);
    res->set(kRequestIdHeader, request_id_);
    res->keep_alive(false);
    res->body() = body.body;
    res->prepare_payload();
    ws_.next_layer().expires_after(server_->options_.write_timeout);
    http::async_write(ws_.next_layer(), *res,
                      [self = shared_from_this(), res](beast::error_code ec, size_t) {
                        self->LogUpgrade(res->result_int(), res->body().size(), ec.failed());
                        beast::error_code ignored;
                        self->ws_.next_layer().socket().shutdown(tcp::socket::shutdown_both,
                                                                 ignored);
                        self->ws_.next_layer().close();
                      });
  }

  // The upgrade request's line and count: 101 when accepted.
  void LogUpgrade(int status, size_t bytes, bool aborted) {
    RecordAnswered(server_->options_, {.id = request_id_,
                                       .method = "GET",
                                       .route = route_,
                                       .status = status,
                                       .started = started_,
                                       .bytes = bytes,
                                       .peer = peer_,
                                       .aborted = aborted});
  }

  void OnAccept(beast::error_code ec) {
    upgrade_ = {};
    // A handshake Beast refused was answered 400 by Beast; any other error is the socket's.
    const bool refused = ec == websocket::condition::handshake_failed;
    LogUpgrade(refused ? 400 : 101, 0, ec && !refused);
    if (ec) return Done();
    registration_ = server_->AddWebSocket([weak = weak_from_this()] {
      if (auto self = weak.lock()) self->PostClose(websocket::close_code::going_away);
    });
    session_->Open();
    Read();
  }

  void Read() {
    ws_.async_read_some(net::buffer(chunk_),
                        beast::bind_front_handler(&WsConnection::OnRead, shared_from_this()));
  }

  void OnRead(beast::error_code ec, size_t n) {
    if (ec) return Done();
    const size_t limit = server_->options_.max_body_bytes;
    if (!too_large_ && message_.size() + n > limit) {
      too_large_ = true;
      std::string().swap(message_);
    }
    if (!too_large_) message_.append(chunk_.data(), n);
    if (ws_.is_message_done()) {
      if (ws_.got_binary()) {
        session_->OnBinary();
      } else if (too_large_) {
        session_->OnTooLarge(limit);
      } else {
        session_->OnText(message_);
      }
      too_large_ = false;
      // An idle connection keeps no large buffer.
      if (message_.capacity() > 4096) std::string().swap(message_);
      message_.clear();
    }
    Read();
  }

  void Queue(std::string text) {
    if (gone_.load()) {
      queued_bytes_.fetch_sub(text.size());
      return;
    }
    outbox_.push_back(std::move(text));
    Pump();
  }

  // One write in flight; the close (1001 at shutdown) goes after what is queued.
  void Pump() {
    if (writing_ || gone_.load() || closing_) return;
    if (outbox_.empty()) {
      if (!close_code_) return;
      closing_ = true;
      return ws_.async_close(websocket::close_reason(*close_code_),
                             [self = shared_from_this()](beast::error_code) { self->Done(); });
    }
    writing_ = true;
    ws_.text(true);
    ws_.async_write(net::buffer(outbox_.front()),
                    [self = shared_from_this()](beast::error_code ec, size_t) {
                      self->writing_ = false;
                      self->queued_bytes_.fetch_sub(self->outbox_.front().size());
                      self->outbox_.pop_front();
                      if (ec) return self->Done();
                      self->Pump();
                    });
  }

  void Abort() {
    beast::error_code ignored;
    ws_.next_layer().socket().shutdown(tcp::socket::shutdown_both, ignored);
    ws_.next_layer().close();
    Done();
  }

  // The connection is over: cancel its turns and forget it. Pending operations complete with
  // errors and release their references.
  void Done() {
    gone_.store(true);
    if (done_) return;
    done_ = true;
    if (session_) session_->Close();
    if (registration_) server_->RemoveWebSocket(*registration_);
    registration_.reset();
  }

  websocket::stream<beast::tcp_stream> ws_;
  const ConnectionSlot slot_;  // Released when the WebSocket is destroyed.
  HttpServer::Impl* const server_;
  const bool from_loopback_;
  const std::string peer_;
  http::request<http::string_body> upgrade_;  // Until accepted.
  // The upgrade request, for the log and the metrics.
  const std::string request_id_;
  const int route_;
  const std::chrono::steady_clock::time_point started_;
  std::shared_ptr<WsSession> session_;
  std::optional<int64_t> registration_;
  // Reading: pieces of a message land in chunk_ and are gathered in message_.
  std::array<char, 2048> chunk_;
  std::string message_;
  bool too_large_ = false;  // The current message passed max_body_bytes: dropped.
  // Writing.
  std::deque<std::string> outbox_;
  bool writing_ = false;
  bool closing_ = false;
  bool done_ = false;
  std::optional<websocket::close_code> close_code_;
  // Any thread.
  std::atomic<bool> gone_{false};
  std::atomic<size_t> queued_bytes_{0};
};

// The session's sink: refers to the connection weakly, so a session kept alive by a turn in
// flight does not keep a closed connection. Turns count as requests in flight, so shutdown waits
// for their answers.
class WsConnectionSink final : public WsSink {
 public:
  WsConnectionSink(const std::shared_ptr<WsConnection>& connection, HttpServer::Impl* server)
      : connection_(connection), server_(server) {}
  bool Send(std::string text) override {
    auto c = connection_.lock();
    return c && c->PostSend(std::move(text));
  }
  void TurnStarted() override { server_->RequestStarted(); }
  void TurnFinished() override { server_->RequestFinished(); }

 private:
  const std::weak_ptr<WsConnection> connection_;
  HttpServer::Impl* const server_;
};

void WsConnection::Run() {
  auto sink = std::make_shared<WsConnectionSink>(shared_from_this(), server_);
  auto opened =
      server_->api_->OpenWebSocket(ToHttpRequest(upgrade_, from_loopback_, request_id_), sink);
  if (auto* error = std::get_if<HttpError>(&opened)) return Refuse(*error);
  session_ = std::move(std::get<std::shared_ptr<WsSession>>(opened));
  // The WebSocket has its own timeouts: the handshake, and the idle one with pings.
  ws_.next_layer().expires_never();
  websocket::stream_base::timeout timeouts;
  timeouts.handshake_timeout = server_->options_.write_timeout;
  timeouts.idle_timeout = server_->options_.ws_idle_timeout;
  timeouts.keep_alive_pings = true;
  ws_.set_option(timeouts);
  ws_.set_option(
      websocket::stream_base::decorator([id = request_id_](websocket::response_type& res) {
        res.set(http::field::server, "locrit");
        res.set(kRequestIdHeader, id);
      }));
  ws_.read_message_max(0);  // OnRead enforces max_body_bytes and keeps the connection.
  ws_.auto_fragment(false);
  ws_.async_accept(upgrade_, beast::bind_front_handler(&WsConnection::OnAccept,
                                                       shared_from_this()));
}

void Connection::UpgradeToWebSocket(http::request<http::string_body> req) {
  std::make_shared<WsConnection>(std::move(stream_), std::move(slot_), server_, from_loopback_,
                                 peer_, std::move(req))
      ->Run();
}

}  // namespace

Status HttpServer::Impl::Listen() {
  beast::error_code ec;
  const std::string host = options_.host == "localhost" ? "127.0.0.1" : options_.host;
  const net::ip::address address = net::ip::make_address(host, ec);
  if (ec) return InvalidArgumentError("not an IP address: " + options_.host);
  const tcp::endpoint endpoint(address, options_.port);
  const std::string where = "cannot listen on " + options_.host + ":" +
                            std::to_string(options_.port) + ": ";
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (!ec) bound_ = acceptor_.local_endpoint(ec);
  if (ec) return IoError(where + ec.message());
  return Status::Ok();
}

void HttpServer::Impl::Accept() {
  acceptor_.async_accept(net::make_strand(ioc_), [this](beast::error_code ec, tcp::socket socket) {
    if (!acceptor_.is_open()) return;
    if (ec) {
      // Out of descriptors and the like: try again a little later rather than spin.
      auto timer = std::make_shared<net::steady_timer>(acceptor_.get_executor(),
                                                       std::chrono::milliseconds(50));
      return timer->async_wait([this, timer](beast::error_code) { Accept(); });
    }
    if (connections_.load() >= std::max<size_t>(1, options_.max_connections)) {
      Refuse(std::move(socket));
    } else {
      std::make_shared<Connection>(std::move(socket), this)->Run();
    }
    Accept();
  });
}

void HttpServer::Impl::Refuse(tcp::socket socket) {
  if (options_.metrics) options_.metrics->connections_refused().Add();
  // One non-blocking write into an empty socket buffer: it either fits at once or is dropped;
  // never waits on the client (that is what the cap protects against).
  beast::error_code ignored;
  socket.non_blocking(true, ignored);
  socket.write_some(net::buffer(kBusyResponse), ignored);
  socket.shutdown(tcp::socket::shutdown_both, ignored);
  socket.close(ignored);
}

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options, Api* api) {
  auto impl = std::make_unique<Impl>(options, api);
  RETURN_IF_ERROR(impl->Listen());
  impl->Accept();
  for (int i = 0; i < std::max(1, options.threads); ++i) {
    impl->threads_.emplace_back([ioc = &impl->ioc_] { ioc->run(); });
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { Stop(); }

std::string HttpServer::address() const {
  const auto& a = impl_->bound_.address();
  const uint16_t port = impl_->bound_.port();
  return a.is_v6() ? fmt::format("[{}]:{}", a.to_string(), port)
                   : fmt::format("{}:{}", a.to_string(), port);
}

uint16_t HttpServer::port() const { return impl_->bound_.port(); }

void HttpServer::BeginDrain() {
  impl_->draining_.store(true);
  net::post(impl_->acceptor_.get_executor(), [impl = impl_.get()] {
    beast::error_code ignored;
    impl->acceptor_.close(ignored);
  });
}

bool HttpServer::WaitIdle(std::chrono::milliseconds timeout) {
  std::unique_lock lock(impl_->mu_);
  return impl_->idle_.wait_for(lock, timeout, [&] { return impl_->active_ == 0; });
}

void HttpServer::Impl::CloseWebSockets() {
  std::vector<std::function<void()>> closers;
  {
    std::lock_guard lock(ws_mu_);
    for (auto& [id, close] : websockets_) closers.push_back(close);
  }
  for (auto& close : closers) close();
  std::unique_lock lock(ws_mu_);
  ws_gone_.wait_for(lock, options_.ws_close_timeout, [&] { return websockets_.empty(); });
}

void HttpServer::Stop() {
  if (impl_->stopped_.exchange(true)) return;
  impl_->CloseWebSockets();
  impl_->ioc_.stop();
  for (auto& t : impl_->threads_) t.join();
  impl_->threads_.clear();
}

}  // namespace locrit

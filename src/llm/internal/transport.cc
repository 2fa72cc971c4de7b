#include "llm/internal/transport.h"

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <vector>

namespace locrit::llm_internal {
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;
using boost::system::error_code;
using Strand = net::strand<net::io_context::executor_type>;
using SteadyClock = std::chrono::steady_clock;

class TlsContext {
 public:
  TlsContext() : ctx(ssl::context::tls_client) {}
  ssl::context ctx;
};

Result<std::shared_ptr<TlsContext>> NewTlsContext(const std::string& ca_file) {
  std::shared_ptr<TlsContext> tls;
  try {
    tls = std::make_shared<TlsContext>();
  } catch (const boost::system::system_error& e) {
    return InternalError(fmt::format("cannot create a TLS context: {}", e.what()));
  }
  tls->ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  error_code ec;
  tls->ctx.set_default_verify_paths(ec);
  if (ec) return InternalError("cannot load the system CA store: " + ec.message());
  if (!ca_file.empty()) {
    tls->ctx.load_verify_file(ca_file, ec);
    if (ec) {
      return InvalidArgumentError(
          fmt::format("ca_file \"{}\" is not a readable PEM file: {}", ca_file, ec.message()));
    }
  }
  tls->ctx.set_verify_mode(ssl::verify_peer);
  return tls;
}

namespace {

// A plain or TLS socket behind one AsyncReadStream/AsyncWriteStream, so that the HTTP code is
// instantiated once for both.
class AnyStream {
 public:
  using executor_type = Strand;

  AnyStream(const Strand& strand, ssl::context* tls) : strand_(strand) {
    if (tls != nullptr) {
      tls_.emplace(strand, *tls);
    } else {
      plain_.emplace(strand);
    }
  }

  executor_type get_executor() const noexcept { return strand_; }
  tcp::socket& socket() { return tls_ ? tls_->next_layer() : *plain_; }
  ssl::stream<tcp::socket>* tls() { return tls_ ? &*tls_ : nullptr; }

  template <typename Buffers, typename Handler>
  void async_read_some(const Buffers& buffers, Handler&& handler) {
    if (tls_) {
      tls_->async_read_some(buffers, std::forward<Handler>(handler));
    } else {
      plain_->async_read_some(buffers, std::forward<Handler>(handler));
    }
  }

  template <typename Buffers, typename Handler>
  void async_write_some(const Buffers& buffers, Handler&& handler) {
    if (tls_) {
      tls_->async_write_some(buffers, std::forward<Handler>(handler));
    } else {
      plain_->async_write_some(buffers, std::forward<Handler>(handler));
    }
  }

 private:
  Strand strand_;
  std::optional<tcp::socket> plain_;
  std::optional<ssl::stream<tcp::socket>> tls_;
};

constexpr size_t kReadChunk = 16 * 1024;
constexpr size_t kMaxErrorBody = 64 * 1024;
constexpr uint32_t kMaxHeaderBytes = 64 * 1024;

int64_t MillisSince(SteadyClock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - start).count();
}

bool IsDisconnect(const error_code& ec) {
  return ec == http::error::end_of_stream || ec == http::error::partial_message ||
         ec == net::error::eof || ec == net::error::connection_reset ||
         ec == net::error::broken_pipe || ec == ssl::error::stream_truncated;
}

}  // namespace

class Exchange;

struct Transport::Impl {
  net::io_context ioc;
  net::executor_work_guard<net::io_context::executor_type> work{ioc.get_executor()};
  std::vector<std::thread> threads;

  std::mutex mu;
  bool stopping = false;  // GUARDED_BY(mu): no new exchanges.
  bool drained = false;   // GUARDED_BY(mu): the threads are gone; nothing may be posted.
  uint64_t next_id = 0;   // GUARDED_BY(mu)
  std::map<uint64_t, std::weak_ptr<Exchange>> live;  // GUARDED_BY(mu)

  // Posts unless the io_context no longer runs (then the target has finished anyway).
  template <typename F>
  void Post(const Strand& strand, F&& f) {
    std::lock_guard<std::mutex> lock(mu);
    if (!drained) net::post(strand, std::forward<F>(f));
  }
};

// One logical request (see transport.h). Strand-confined except Cancel() and the callback guard.
class Exchange final : public LlmCall::Target, public std::enable_shared_from_this<Exchange> {
 public:
  Exchange(std::shared_ptr<Transport::Impl> core, uint64_t id,
           std::shared_ptr<const Endpoint> endpoint, ExchangeSpec spec, ReaderFactory readers,
           ExchangeDone done)
      : core_(std::move(core)),
        id_(id),
        endpoint_(std::move(endpoint)),
        spec_(std::move(spec)),
        readers_(std::move(readers)),
        done_(std::move(done)),
        strand_(net::make_strand(core_->ioc)),
        resolver_(strand_),
        timer_(strand_),
        total_timer_(strand_),
        chunk_(kReadChunk) {}

  const Strand& strand() const { return strand_; }

  void Cancel() override {
    if (cancelled_.exchange(true)) return;
    // Waits for a callback running on another thread; from inside a callback, does not.
    if (cb_thread_.load() != std::this_thread::get_id()) {
      std::lock_guard<std::mutex> wait(cb_mu_);
    }
    if (finished_flag_.load()) return;
    core_->Post(strand_, [self = shared_from_this()] {
      self->Abort(CancelledError("the LLM call was cancelled"));
    });
  }

  void Begin() {
    start_ = SteadyClock::now();
    total_timer_.expires_after(spec_.timeouts.total);
    total_timer_.async_wait([self = shared_from_this()](error_code ec) {
      if (ec) return;
      self->Abort(DeadlineExceededError(
          fmt::format("{}: no complete reply within the total timeout of {} ms", self->spec_.what,
                      self->spec_.timeouts.total.count())));
    });
    StartAttempt();
  }

  // Stops the exchange for good with `why`: the pending operation completes with an error and
  // the chain ends in Complete(why).
  void Abort(Status why) {
    if (finished_) return;
    if (stop_) return;
    stop_ = true;
    interrupt_ = std::move(why);
    timer_.cancel();
    resolver_.cancel();
    CloseStream();
  }

 private:
  void StartAttempt() {
    ++attempts_;
    interrupt_ = Status::Ok();
    http_status_ = 0;
    body_bytes_ = 0;
    error_body_.clear();
    reader_.reset();
    buffer_.clear();
    parser_.reset();
    stream_.reset();
    stream_.emplace(strand_, endpoint_->tls ? &endpoint_->tls->ctx : nullptr);
    ArmTimer(spec_.timeouts.connect,
             fmt::format("{}: could not connect to {}:{} within {} ms", spec_.what,
                         endpoint_->url.host, endpoint_->url.port, spec_.timeouts.connect.count()));
    resolver_.async_resolve(
        endpoint_->url.host, endpoint_->url.port,
        [self = shared_from_this()](error_code ec, const tcp::resolver::results_type& results) {
          self->OnResolved(ec, results);
        });
  }

  void OnResolved(error_code ec, const tcp::resolver::results_type& results) {
    if (ec || !interrupt_.ok()) {
      return AttemptFailed(
          Interrupted(ec, UnavailableError(fmt::format("{}: cannot resolve {}: {}", spec_.what,
                                                       endpoint_->url.host, ec.message()))));
    }
    net::async_connect(
        stream_->socket(), results,
        [self = shared_from_this()](error_code e, const tcp::endpoint&) { self->OnConnected(e); });
  }

  void OnConnected(error_code ec) {
    if (ec || !interrupt_.ok()) {
      return AttemptFailed(Interrupted(
          ec,
          UnavailableError(fmt::format("{}: cannot connect to {}:{}: {}", spec_.what,
                                       endpoint_->url.host, endpoint_->url.port, ec.message()))));
    }
    ssl::stream<tcp::socket>* tls = stream_->tls();
    if (tls == nullptr) return Send();
    const std::string& host = endpoint_->url.host;
    error_code not_ip;
    net::ip::make_address(host, not_ip);
    // SNI carries names only; the certificate is checked against the name or the address.
    if (not_ip && SSL_ctrl(tls->native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME,
                           TLSEXT_NAMETYPE_host_name, const_cast<char*>(host.c_str())) != 1) {
      return AttemptFailed(InternalError("cannot set the TLS server name"));
    }
    tls->set_verify_callback(ssl::host_name_verification(host));
    tls->async_handshake(ssl::stream_base::client,
                         [self = shared_from_this()](error_code e) { self->OnHandshake(e); });
  }

  void OnHandshake(error_code ec) {
    if (ec || !interrupt_.ok()) return AttemptFailed(Interrupted(ec, HandshakeError(ec)));
    Send();
  }

  Status HandshakeError(const error_code& ec) {
    const long verify = SSL_get_verify_result(stream_->tls()->native_handle());
    const bool verify_failed =
        ec.category() == net::error::get_ssl_category() &&
        ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_CERTIFICATE_VERIFY_FAILED;
    if (verify_failed || verify != X509_V_OK) {
      const char* why = verify != X509_V_OK ? X509_verify_cert_error_string(verify)
                                            : "it does not match the host name";
      return FailedPreconditionError(fmt::format(
          "{}: the TLS certificate of {} did not verify ({}); trust its CA with ca_file",
          spec_.what, endpoint_->url.host, why));
    }
    return UnavailableError(fmt::format("{}: TLS handshake with {} failed: {}", spec_.what,
                                        endpoint_->url.host, ec.message()));
  }

  void Send() {
    request_.emplace(spec_.method == "POST" ? http::verb::post : http::verb::get, spec_.target, 11);
    request_->set(http::field::host, endpoint_->url.host_header);
    request_->set(http::field::user_agent, "locrit");
    request_->set(http::field::accept, spec_.accept);
    if (!spec_.bearer_token.empty()) {
      request_->set(http::field::authorization, "Bearer " + spec_.bearer_token);
    }
    if (spec_.method == "POST") {
      request_->set(http::field::content_type, "application/json");
      request_->body() = spec_.body;
    }
    request_->keep_alive(false);
    request_->prepare_payload();
    http::async_write(*stream_, *request_,
                      [self = shared_from_this()](error_code ec, size_t) { self->OnSent(ec); });
  }

  void OnSent(error_code ec) {
    if (ec || !interrupt_.ok()) {
      return AttemptFailed(
          Interrupted(ec, UnavailableError(fmt::format("{}: sending the request failed: {}",
                                                       spec_.what, ec.message()))));
    }
    ArmFirstTokenTimer();
    parser_.emplace();
    parser_->header_limit(kMaxHeaderBytes);
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    http::async_read_header(
        *stream_, buffer_, *parser_,
        [self = shared_from_this()](error_code e, size_t) { self->OnHeader(e); });
  }

  void OnHeader(error_code ec) {
    if (ec || !interrupt_.ok()) {
      Status fallback =
          IsDisconnect(ec)
              ? UnavailableError(fmt::format(
                    "{}: the server closed the connection without answering", spec_.what))
              : LlmError(fmt::format("{}: malformed HTTP answer: {}", spec_.what, ec.message()));
      return AttemptFailed(Interrupted(ec, std::move(fallback)));
    }
    http_status_ = static_cast<int>(parser_->get().result_int());
    if (http_status_ / 100 == 2) {
      const auto content_type = parser_->get()[http::field::content_type];
      std::unique_ptr<BodyReader> reader =
          readers_(std::string_view(content_type.data(), content_type.size()));
      reader_ = std::move(reader);
      reader_->set_cancelled_flag(&cancelled_);
    }
    ReadBody();
  }

  void ReadBody() {
    if (parser_->is_done()) return BodyDone();
    parser_->get().body().data = chunk_.data();
    parser_->get().body().size = chunk_.size();
    http::async_read_some(*stream_, buffer_, *parser_,
                          [self = shared_from_this()](error_code ec, size_t) { self->OnBody(ec); });
  }

  void OnBody(error_code ec) {
    if (ec == http::error::need_buffer) ec = {};
    if (ec || !interrupt_.ok()) {
      Status fallback =
          IsDisconnect(ec)
              ? UnavailableError(fmt::format("{}: the connection closed mid-reply after {} bytes",
                                             spec_.what, body_bytes_))
              : LlmError(fmt::format("{}: malformed HTTP body: {}", spec_.what, ec.message()));
      return AttemptFailed(Interrupted(ec, std::move(fallback)));
    }
    const size_t n = chunk_.size() - parser_->get().body().size;
    body_bytes_ += n;
    if (body_bytes_ > spec_.max_response_bytes) {
      return AttemptFailed(LlmError(fmt::format("{}: the answer exceeds max_response_bytes ({})",
                                                spec_.what, spec_.max_response_bytes)));
    }
    if (n > 0 && reader_ == nullptr) {
      error_body_.append(chunk_.data(), std::min(n, kMaxErrorBody - error_body_.size()));
      if (error_body_.size() >= kMaxErrorBody) return BodyDone();
    } else if (n > 0) {
      Result<bool> progressed = Guarded([&]() -> Result<bool> {
        if (cancelled_.load()) return CancelledError("the LLM call was cancelled");
        return reader_->Consume(std::string_view(chunk_.data(), n));
      });
      if (!progressed.ok()) return AttemptFailed(progressed.status());
      if (cancelled_.load()) return AttemptFailed(CancelledError("the LLM call was cancelled"));
      if (*progressed && !progressed_) {
        progressed_ = true;
        first_progress_ms_ = MillisSince(start_);
      }
    }
    // Until the first delta the first-token deadline stands; after it, each read has `idle`.
    if (progressed_ || reader_ == nullptr) {
      ArmTimer(spec_.timeouts.idle, fmt::format("{}: the server sent nothing for {} ms mid-reply",
                                                spec_.what, spec_.timeouts.idle.count()));
    }
    ReadBody();
  }

  void BodyDone() {
    if (reader_ == nullptr) {
      return AttemptFailed(StatusForHttpError(http_status_, error_body_, spec_.what));
    }
    Status finished = Guarded([&]() -> Status {
      if (cancelled_.load()) return CancelledError("the LLM call was cancelled");
      return reader_->Finish();
    });
    if (!finished.ok()) return AttemptFailed(finished);
    if (!progressed_) first_progress_ms_ = MillisSince(start_);
    Complete(Status::Ok());
  }

  // The error of an interrupted operation: why it was interrupted, else what it failed with.
  Status Interrupted(const error_code&, Status fallback) {
    return interrupt_.ok() ? std::move(fallback) : interrupt_;
  }

  void AttemptFailed(Status status) {
    ++timer_gen_;
    timer_.cancel();
    CloseStream();
    if (stop_) return Complete(interrupt_);
    const bool retryable =
        !progressed_ && attempts_ <= spec_.retry.max_retries && interrupt_.ok() &&
        (status.code() == StatusCode::kUnavailable ||
         (reader_ == nullptr && http_status_ != 0 && IsRetryableHttpStatus(http_status_)));
    if (!retryable) return Complete(std::move(status));
    auto backoff = spec_.retry.initial_backoff;
    for (int i = 1; i < attempts_ && backoff < spec_.retry.max_backoff; ++i) backoff *= 2;
    backoff = std::min(backoff, spec_.retry.max_backoff);
    timer_.expires_after(backoff);
    timer_.async_wait([self = shared_from_this()](error_code) {
      if (self->stop_) return self->Complete(self->interrupt_);
      self->StartAttempt();
    });
  }

  void Complete(Status status) {
    if (finished_) return;
    finished_ = true;
    finished_flag_.store(true);
    ++timer_gen_;
    timer_.cancel();
    total_timer_.cancel();
    resolver_.cancel();
    CloseStream();
    ExchangeOutcome outcome;
    outcome.attempts = attempts_;
    outcome.latency_ms = MillisSince(start_);
    outcome.first_progress_ms = first_progress_ms_;
    Guarded([&] {
      if (cancelled_.load() && status.code() != StatusCode::kCancelled) {
        status = CancelledError("the LLM call was cancelled");
      }
      ExchangeDone done = std::move(done_);
      done(status, outcome);
      return 0;
    });
    reader_.reset();
    readers_ = nullptr;
    std::lock_guard<std::mutex> lock(core_->mu);
    core_->live.erase(id_);
  }

  void ArmFirstTokenTimer() {
    ArmTimer(spec_.timeouts.first_token,
             fmt::format("{}: no reply within the first-token timeout of {} ms", spec_.what,
                         spec_.timeouts.first_token.count()));
  }

  void ArmTimer(std::chrono::milliseconds after, std::string why) {
    const uint64_t gen = ++timer_gen_;
    timer_.expires_after(after);
    timer_.async_wait([self = shared_from_this(), gen, why = std::move(why)](error_code ec) {
      if (ec || gen != self->timer_gen_ || self->finished_ || self->stop_) return;
      self->interrupt_ = DeadlineExceededError(why);
      self->resolver_.cancel();
      self->CloseStream();
    });
  }

  void CloseStream() {
    if (!stream_) return;
    error_code ignored;
    stream_->socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_->socket().close(ignored);
  }

  // Runs `f` (which may call the caller's callbacks) so that Cancel() can wait for it.
  template <typename F>
  std::invoke_result_t<F&> Guarded(F&& f) {
    std::lock_guard<std::mutex> lock(cb_mu_);
    cb_thread_.store(std::this_thread::get_id());
    auto result = f();
    cb_thread_.store(std::thread::id());
    return result;
  }

  const std::shared_ptr<Transport::Impl> core_;  // First: the io_context outlives the sockets.
  const uint64_t id_;
  const std::shared_ptr<const Endpoint> endpoint_;
  const ExchangeSpec spec_;
  ReaderFactory readers_;
  ExchangeDone done_;

  // Strand-confined.
  Strand strand_;
  tcp::resolver resolver_;
  net::steady_timer timer_;  // The attempt's current timeout, or the backoff.
  net::steady_timer total_timer_;
  std::optional<AnyStream> stream_;
  boost::beast::flat_buffer buffer_;
  std::optional<http::request<http::string_body>> request_;
  std::optional<http::response_parser<http::buffer_body>> parser_;
  std::vector<char> chunk_;
  std::unique_ptr<BodyReader> reader_;  // Null for a non-2xx answer.
  std::string error_body_;
  int http_status_ = 0;
  size_t body_bytes_ = 0;
  Status interrupt_;   // Why the pending operation was interrupted (timeout, abort).
  bool stop_ = false;  // Aborted: no more attempts.
  bool finished_ = false;
  bool progressed_ = false;  // Something reached the caller: no retry.
  int attempts_ = 0;
  uint64_t timer_gen_ = 0;
  SteadyClock::time_point start_;
  int64_t first_progress_ms_ = 0;

  // Shared with Cancel().
  std::mutex cb_mu_;
  std::atomic<std::thread::id> cb_thread_{};
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> finished_flag_{false};
};

Transport::Transport(int threads) : impl_(std::make_shared<Impl>()) {
  for (int i = 0; i < std::max(threads, 1); ++i) {
    impl_->threads.emplace_back([impl = impl_.get()] { impl->ioc.run(); });
  }
}

Transport::~Transport() { Shutdown(); }

void Transport::Shutdown() {
  std::vector<std::shared_ptr<Exchange>> running;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->drained) return;
    impl_->stopping = true;
    for (auto& [id, weak] : impl_->live) {
      if (auto e = weak.lock()) running.push_back(std::move(e));
    }
  }
  for (auto& e : running) {
    impl_->Post(e->strand(), [e] { e->Abort(CancelledError("the LLM runtime shut down")); });
  }
  running.clear();
  impl_->work.reset();
  for (std::thread& t : impl_->threads) t.join();
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->drained = true;
  }
  // What was posted while the threads were leaving (cancellations of finished calls).
  impl_->ioc.restart();
  impl_->ioc.poll();
}

LlmCall Transport::Start(std::shared_ptr<const Endpoint> endpoint, ExchangeSpec spec,
                         ReaderFactory readers, ExchangeDone done) {
  std::unique_lock<std::mutex> lock(impl_->mu);
  if (impl_->stopping) {
    lock.unlock();
    done(UnavailableError("the LLM runtime is shut down"), ExchangeOutcome{});
    return LlmCall();
  }
  const uint64_t id = impl_->next_id++;
  auto exchange = std::make_shared<Exchange>(impl_, id, std::move(endpoint), std::move(spec),
                                             std::move(readers), std::move(done));
  impl_->live[id] = exchange;
  net::post(exchange->strand(), [exchange] { exchange->Begin(); });
  return LlmCall(exchange);
}

}  // namespace locrit::llm_internal

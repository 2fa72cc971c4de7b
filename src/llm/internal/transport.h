// Transport: HTTP(S) exchanges with an LLM server on the runtime's io_context — the only place
// Boost.Beast, Asio and OpenSSL are used in llm/ (they are costly to compile; this header keeps
// them out of every other file).
//
// An exchange is one logical request: attempts with backoff while nothing has reached the caller,
// the connect / first-token / idle / total timeouts, a bound on the body, cancellation through
// its LlmCall, and the body handed to a BodyReader piece by piece as it arrives (a chunked
// stream is read incrementally, never held back until its end).
//
// Transport is thread-safe; each exchange runs on its own strand.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"
#include "llm/internal/wire.h"
#include "llm/llm_client.h"
#include "llm/llm_settings.h"

namespace locrit::llm_internal {

// The trust store of https endpoints: the system CA store plus an optional PEM file.
class TlsContext;
Result<std::shared_ptr<TlsContext>> NewTlsContext(const std::string& ca_file);

struct Endpoint {
  ParsedUrl url;
  std::shared_ptr<TlsContext> tls;  // Set iff url.tls.
};

struct ExchangeSpec {
  std::string what;    // "ollama POST /api/chat", for messages.
  std::string method;  // "GET" or "POST".
  std::string target;  // Request path.
  std::string body;    // JSON, for POST.
  std::string accept;  // Accept header.
  std::string bearer_token;
  LlmTimeouts timeouts;
  LlmRetryPolicy retry;
  size_t max_response_bytes = 0;
};

// Consumes the body of one 2xx answer; a new reader per attempt. Runs on the exchange's strand,
// under the exchange's callback guard (so it may call the caller's callbacks).
class BodyReader {
 public:
  virtual ~BodyReader() = default;
  // A piece of the body as it arrives. Returns whether the caller has now been given something
  // (a delta): from then on no retry, and the idle timeout replaces the first-token one.
  virtual Result<bool> Consume(std::string_view bytes) = 0;
  // The body ended cleanly; an incomplete reply is an error here.
  virtual Status Finish() = 0;

  // Set by the transport: becomes true when the caller cancels. A reader calls nothing back
  // once it is true, even in the middle of a piece.
  void set_cancelled_flag(const std::atomic<bool>* flag) { cancelled_ = flag; }

 protected:
  bool cancelled() const { return cancelled_ != nullptr && cancelled_->load(); }

 private:
  const std::atomic<bool>* cancelled_ = nullptr;
};
// Builds the reader for an answer with this Content-Type.
using ReaderFactory = std::function<std::unique_ptr<BodyReader>(std::string_view content_type)>;

struct ExchangeOutcome {
  int attempts = 0;
  int64_t latency_ms = 0;
  int64_t first_progress_ms = 0;
};
// Called once, under the callback guard: OK after the reader finished, else why not.
using ExchangeDone = std::function<void(Status, const ExchangeOutcome&)>;

class Transport {
 public:
  // Starts `threads` network threads on a fresh io_context.
  explicit Transport(int threads);
  ~Transport();  // Shutdown().
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // Refuses new exchanges, cancels the running ones (their `done` gets cancelled) and joins the
  // threads once they finished. Idempotent. REQUIRES: not called on a network thread.
  void Shutdown();

  // Starts an exchange. After Shutdown, `done` is called at once with unavailable.
  LlmCall Start(std::shared_ptr<const Endpoint> endpoint, ExchangeSpec spec, ReaderFactory readers,
                ExchangeDone done);

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace locrit::llm_internal

// FakeLlmServer: a real HTTP(S) server on 127.0.0.1:0 that speaks the Ollama (/api/chat,
// /api/embed, /api/tags) and OpenAI-compatible (/v1/chat/completions, /v1/embeddings,
// /v1/models) wire formats, scripted per test, and records every request it receives.
//
// Each request takes the next scripted FakeReply (FIFO), or the default one when none is queued.
// A reply can stream normally, answer in one shot, fail with an HTTP status, wait before its
// first token, stall or disconnect mid-stream, send a malformed line, end without its done
// marker, or hold its last delta until Release(). Embeddings are deterministic (EmbeddingFor).
//
// One thread per connection, blocking I/O: simple, and fine for tests. Thread-safe. The
// destructor unblocks every connection (stalls included) and joins its threads.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace locrit::testing {

struct FakeReply {
  enum class End {
    kComplete,       // The whole stream and its done marker.
    kStall,          // Stop sending (keep the connection open) until the client goes away.
    kDisconnect,     // Close the connection abruptly.
    kMalformedLine,  // Send a line that is not JSON, then finish normally.
    kNoDoneMarker,   // End the HTTP body cleanly but without the done object / [DONE].
  };

  int status = 200;
  std::string error_message = "scripted failure";  // The upstream message of a non-2xx answer.
  std::vector<std::string> deltas = {"Hello", ", ", "world", "!"};
  bool one_shot = false;  // One JSON reply instead of a stream.
  std::string model;      // Reported model; empty: the requested one.
  int prompt_tokens = 12;
  int completion_tokens = 4;
  End end = End::kComplete;
  size_t end_after = 0;  // Deltas sent before a misbehaviour (other than kComplete/kNoDoneMarker).
  std::chrono::milliseconds first_token_delay{0};  // Before anything is sent (headers included).
  bool hold_before_last = false;  // Wait for Release() (at most 10 s) before the last delta.
};

struct RecordedRequest {
  std::string method;
  std::string target;
  std::string authorization;
  std::string accept;
  std::string body;
};

class FakeLlmServer {
 public:
  struct Options {
    bool tls = false;  // Serve https with a fresh self-signed certificate for 127.0.0.1.
  };

  FakeLlmServer() : FakeLlmServer(Options{}) {}
  explicit FakeLlmServer(Options options);
  ~FakeLlmServer();
  FakeLlmServer(const FakeLlmServer&) = delete;
  FakeLlmServer& operator=(const FakeLlmServer&) = delete;

  std::string url() const;  // "http://127.0.0.1:<port>" (https with tls).
  uint16_t port() const { return port_; }
  // The self-signed certificate (PEM) when serving https.
  const std::string& certificate_pem() const { return certificate_pem_; }

  void Script(FakeReply reply);      // Queued for the next request.
  void SetDefault(FakeReply reply);  // For requests that find the queue empty.
  // From now on every embedding request gets `reply` and leaves the script to the others
  // (an embedding server that is down or slow while chat works); nullopt undoes it.
  void SetEmbeddingReply(std::optional<FakeReply> reply);
  std::vector<RecordedRequest> Requests() const;

  void Release();         // Lets held replies send their last delta.
  bool SentLast() const;  // Whether a held reply has sent its last delta.
  // Waits until `n` stalled replies saw their client go away; false after `within`.
  bool WaitForClientDisconnects(int n, std::chrono::milliseconds within);

  static constexpr int kEmbeddingDims = 8;
  // The vector the server gives `text`: a hash spread over kEmbeddingDims values, unit length.
  static std::vector<float> EmbeddingFor(std::string_view text);
  // A port on 127.0.0.1 with nothing listening (for a refused connection).
  static uint16_t UnusedPort();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  uint16_t port_ = 0;
  bool tls_ = false;
  std::string certificate_pem_;
};

}  // namespace locrit::testing

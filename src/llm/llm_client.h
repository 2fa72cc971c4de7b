// LlmClient: the asynchronous interface to a language model server — streamed chat, embeddings
// and the model list.
//
// Every call returns an LlmCall handle and completes exactly once through its `done` callback.
// Callbacks run on an LlmRuntime network thread and must not block. A streamed chat also calls
// `on_delta` with each piece of text as the server produces it; the callbacks of one call never
// run concurrently, and no on_delta follows done.
//
// Cancellation: LlmCall::Cancel(), or dropping the LlmCall, aborts the request (its connection is
// closed, so the server stops generating). Once Cancel() has returned, on_delta is not called
// again; `done` is still called, with cancelled, unless it had already been called. Callbacks may
// therefore run after the caller moved on: capture what they use by shared_ptr. Cancel() may be
// called from inside a callback. A request refused before any I/O (no model configured, no
// messages or inputs, the runtime shut down) completes inside the call, on the caller's thread.
//
// Errors (see docs/llm.md): unreachable server → unavailable; upstream 4xx (model missing, bad
// key) → invalid_argument carrying the upstream message (429 → resource_exhausted); upstream 5xx,
// malformed or truncated streams, an error event mid-stream, a reply over max_reply_bytes →
// llm_error; a certificate that does not verify → failed_precondition; a timeout →
// deadline_exceeded; a connection lost mid-reply → unavailable.
//
// Implementations are thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "llm/llm_settings.h"

namespace locrit {

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant".
  std::string content;
};

struct ChatRequest {
  std::vector<ChatMessage> messages;
  std::string model;                  // Empty: the settings' model.
  std::optional<double> temperature;  // Server default when absent.
  std::optional<int> max_tokens;      // Server default when absent.
};

// What a chat turn needs to record about the reply.
struct ChatReply {
  std::string text;                          // The whole reply, exactly the deltas concatenated.
  std::string model;                         // As reported by the server, else as requested.
  std::string finish_reason;                 // "stop", "length"... when the server says.
  std::optional<int64_t> prompt_tokens;      // When the server reports them.
  std::optional<int64_t> completion_tokens;  // When the server reports them.
  int64_t latency_ms = 0;      // Call start to the end of the reply (retries included).
  int64_t first_token_ms = 0;  // Call start to the first delta.
  int attempts = 0;            // 1 + retries made.
};

struct EmbedRequest {
  std::vector<std::string> inputs;
  std::string model;  // Empty: the settings' embedding_model, else model.
};

struct Embeddings {
  std::string model;
  std::vector<std::vector<float>> vectors;  // One per input, in input order.
  int64_t latency_ms = 0;
};

struct ModelInfo {
  std::string name;                   // What to put in `model`.
  std::optional<int64_t> size_bytes;  // Ollama reports it.
};

// The handle of one call in flight. Move-only; dropping it cancels the call (see above).
class LlmCall {
 public:
  // What a handle controls; implemented by the transport.
  class Target {
   public:
    virtual ~Target() = default;
    virtual void Cancel() = 0;
  };

  LlmCall() = default;
  explicit LlmCall(std::shared_ptr<Target> target) : target_(std::move(target)) {}
  LlmCall(LlmCall&&) noexcept = default;
  LlmCall& operator=(LlmCall&& other) noexcept;
  LlmCall(const LlmCall&) = delete;
  LlmCall& operator=(const LlmCall&) = delete;
  ~LlmCall() { Cancel(); }

  // Aborts the call; harmless once it finished or after an earlier Cancel.
  void Cancel();
  // Lets the call run to its end without a handle (fire and forget); `done` is still called.
  void Detach() { target_.reset(); }

 private:
  std::shared_ptr<Target> target_;
};

class LlmClient {
 public:
  using DeltaSink = std::function<void(std::string_view delta)>;
  template <typename T>
  using Done = std::function<void(Result<T>)>;

  virtual ~LlmClient() = default;

  // Streams a reply: each delta to `on_delta` as it arrives, then `done` with the whole reply.
  [[nodiscard]] virtual LlmCall Chat(ChatRequest request, DeltaSink on_delta,
                                     Done<ChatReply> done) = 0;
  // One vector per input.
  [[nodiscard]] virtual LlmCall Embed(EmbedRequest request, Done<Embeddings> done) = 0;
  // The models the server offers.
  [[nodiscard]] virtual LlmCall ListModels(Done<std::vector<ModelInfo>> done) = 0;

  virtual const LlmSettings& settings() const = 0;
};

}  // namespace locrit

// The Ollama and OpenAI wire formats, as pure functions and byte-fed decoders: request bodies,
// stream decoders (NDJSON, Server-Sent Events, one-shot JSON), response parsers and the mapping
// of upstream errors to Status. No I/O, no threads; thread-compatible.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "llm/llm_client.h"

namespace locrit::llm_internal {

struct ParsedUrl {
  bool tls = false;
  std::string host;         // Without IPv6 brackets: what the resolver wants.
  std::string port;         // Explicit, or 80/443.
  std::string host_header;  // Host header value ("host" or "host:port").
  std::string base_path;    // Path prefix without a trailing '/' ("" or "/proxy/v1").
};

// Accepts http:// and https:// URLs with a host; no query, fragment or user info.
Result<ParsedUrl> ParseBaseUrl(std::string_view url);

// The request path of `api_path` ("/v1/chat/completions") under an OpenAI-compatible base path;
// a base path already ending in "/v1" is not doubled.
std::string OpenAiPath(const std::string& base_path, std::string_view api_path);

// ---- Request bodies ----
std::string OllamaChatBody(const ChatRequest& request, const std::string& model);
std::string OpenAiChatBody(const ChatRequest& request, const std::string& model);
std::string EmbedBody(const std::vector<std::string>& inputs, const std::string& model);

// ---- Streamed chat ----

// Decodes one reply body fed in arbitrary pieces. Each text delta goes to `on_delta` and is
// appended to reply().text; text beyond max_reply_bytes is an error. Finish() checks that the
// reply was complete (a done marker), so a cut stream is never a short answer.
class ChatDecoder {
 public:
  using DeltaFn = std::function<void(std::string_view)>;
  virtual ~ChatDecoder() = default;
  virtual Status Feed(std::string_view bytes, const DeltaFn& on_delta) = 0;
  virtual Status Finish(const DeltaFn& on_delta) = 0;
  ChatReply& reply() { return reply_; }

  ChatDecoder(size_t max_reply_bytes, size_t max_line_bytes)
      : max_reply_bytes_(max_reply_bytes), max_line_bytes_(max_line_bytes) {}

 protected:
  Status Emit(std::string_view text, const DeltaFn& on_delta);
  // Splits `bytes` into lines (LF or CRLF), calling `line` for each complete one; keeps the tail.
  Status SplitLines(std::string_view bytes, const std::function<Status(std::string_view)>& line);

  ChatReply reply_;
  std::string pending_;  // A partial line.
  const size_t max_reply_bytes_;
  const size_t max_line_bytes_;
};

// Ollama /api/chat: one JSON object per line, the last with "done": true. Also reads a one-shot
// (non-streamed) reply, which is the same object alone.
std::unique_ptr<ChatDecoder> NewOllamaDecoder(size_t max_reply_bytes, size_t max_line_bytes);
// OpenAI /v1/chat/completions with stream: true: SSE "data:" events ending with "data: [DONE]".
std::unique_ptr<ChatDecoder> NewOpenAiSseDecoder(size_t max_reply_bytes, size_t max_line_bytes);
// An OpenAI-compatible server that answered with one JSON completion instead of a stream.
std::unique_ptr<ChatDecoder> NewOpenAiOneShotDecoder(size_t max_reply_bytes, size_t max_body_bytes);

// ---- Other responses ----
Result<Embeddings> ParseOllamaEmbeddings(std::string_view body, size_t inputs);
Result<Embeddings> ParseOpenAiEmbeddings(std::string_view body, size_t inputs);
Result<std::vector<ModelInfo>> ParseOllamaModels(std::string_view body);
Result<std::vector<ModelInfo>> ParseOpenAiModels(std::string_view body);

// ---- Errors ----

// The upstream's own error sentence from an error body ({"error": "..."} for Ollama,
// {"error": {"message": "..."}} for OpenAI), else the body's start; bounded and printable.
std::string UpstreamErrorMessage(std::string_view body);

// The Status for a non-2xx answer: 408 → deadline_exceeded, 429 → resource_exhausted, other 4xx →
// invalid_argument, 5xx and anything else → llm_error; the message names `what` (e.g.
// "ollama POST /api/chat"), the HTTP status and the upstream message.
Status StatusForHttpError(int http_status, std::string_view body, std::string_view what);

// Whether an attempt that failed with `http_status` (0: no HTTP answer) may be retried.
bool IsRetryableHttpStatus(int http_status);

}  // namespace locrit::llm_internal

// LlmSettings: which language model server a Locrit talks to, and the limits of every call.
//
// A plain value type (thread-compatible). Per-Locrit settings are built by overlaying a Locrit's
// provider/URL/model on the server-wide defaults; nothing here knows where they come from. The
// only host that appears anywhere is the documented Ollama default, kDefaultOllamaUrl.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "base/status.h"

namespace locrit {

enum class LlmProvider {
  kOllama,  // Native Ollama API: /api/chat (NDJSON), /api/embed, /api/tags.
  kOpenAi,  // OpenAI-compatible: /v1/chat/completions (SSE), /v1/embeddings, /v1/models.
};

// "ollama" / "openai".
std::string_view LlmProviderName(LlmProvider provider);
// Accepts "ollama" and "openai" (case-sensitive); anything else is invalid_argument.
Result<LlmProvider> ParseLlmProvider(std::string_view name);

// Used when an Ollama provider has no base_url. An OpenAI-compatible provider has no default.
inline constexpr std::string_view kDefaultOllamaUrl = "http://localhost:11434";

struct LlmTimeouts {
  // Resolving, TCP connect and TLS handshake of one attempt.
  std::chrono::milliseconds connect{10'000};
  // From sending the request to the first piece of reply text (embeddings and model lists: to
  // the first body byte). Generous because Ollama loads a model on its first use.
  std::chrono::milliseconds first_token{120'000};
  // Longest silence between two reads once text is flowing.
  std::chrono::milliseconds idle{60'000};
  // The whole call, retries and backoff included.
  std::chrono::milliseconds total{600'000};
};

// Retries happen only while nothing has reached the caller: connection failures, a connection
// closed before any reply text, and upstream 429/500/502/503/504. Never after the first delta.
struct LlmRetryPolicy {
  int max_retries = 2;                             // Attempts = 1 + max_retries.
  std::chrono::milliseconds initial_backoff{250};  // Doubles after each failed attempt...
  std::chrono::milliseconds max_backoff{4'000};    // ...up to this.
};

struct LlmSettings {
  LlmProvider provider = LlmProvider::kOllama;
  // Server root, e.g. "http://gpu-box:11434" or "https://llm.example/v1" (a trailing "/v1" is
  // accepted for OpenAI-compatible servers). Empty: kDefaultOllamaUrl for Ollama, an error for
  // OpenAI-compatible servers.
  std::string base_url;
  std::string model;            // Chat model; a request may override it.
  std::string embedding_model;  // Empty: `model`.
  std::string api_key;          // Sent as "Authorization: Bearer <key>" when not empty.
  // A PEM file of extra trusted certificates for https, in addition to the system CA store.
  std::string ca_file;
  LlmTimeouts timeouts;
  LlmRetryPolicy retry;
  // Longest reply text accepted; a longer reply fails with llm_error (never a cut answer).
  size_t max_reply_bytes = 1 << 20;
  // Longest raw HTTP body accepted (stream framing included; embeddings of large batches).
  size_t max_response_bytes = 64 << 20;
};

// Checks the settings a client needs: a parseable http(s) URL (after the default), positive
// timeouts and limits, a non-negative retry count. invalid_argument naming the field otherwise.
Status ValidateLlmSettings(const LlmSettings& settings);

// base_url, or the provider's default when it is empty ("" for OpenAI-compatible servers).
std::string EffectiveBaseUrl(const LlmSettings& settings);

}  // namespace locrit

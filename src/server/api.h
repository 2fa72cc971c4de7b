// Api: the routes of this server and their handlers (API.md), on plain HttpRequest values.
//
// Pure of sockets: Handle() reads the request, answers through the Responder, and never blocks
// (registry reads are in memory; a chat turn runs asynchronously on the ChatService's threads and
// answers from there). Routing, validation and JSON codecs live here; business logic stays in
// chat/ and registry/.
//
// Routes of this slice: GET /health, /healthz, /readyz; GET /api/locrits; GET
// /api/locrits/{name} (alias .../config); POST /api/locrits/{name}/chat and .../chat/stream.
// Unknown paths are JSON 404s; a known path with another method is a JSON 405 with Allow.
//
// Thread-safe.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "chat/chat_service.h"
#include "core/locrit_config.h"
#include "llm/llm_settings.h"
#include "registry/locrit_registry.h"
#include "server/http_types.h"

namespace locrit {

struct ApiOptions {
  LocritRegistry* registry = nullptr;  // Required; outlives the Api.
  ChatService* chat = nullptr;         // Required; outlives the Api.
  const Clock* clock = nullptr;        // Required.
  std::string version;
  size_t max_message_chars = 32768;    // Longer messages: 413.
  // Timeouts, retries and limits of every Locrit's LLM calls; provider, URL and model come from
  // the Locrit.
  LlmSettings llm_defaults;
  // Local mode: requests whose Host is not one of these (any port) are refused with 403 (DNS
  // rebinding). Empty: no check.
  std::vector<std::string> allowed_hosts;
};

class Api {
 public:
  explicit Api(ApiOptions options);

  // Answers `request` through `responder`, now or later (chat turns).
  void Handle(const HttpRequest& request, std::shared_ptr<Responder> responder);

  // Draining: /readyz answers 503 and new chat turns are refused with 503.
  void SetDraining() { draining_.store(true); }
  bool draining() const { return draining_.load(); }

  // Chat turns started and not yet answered.
  int64_t TurnsInFlight() const { return turns_in_flight_.load(); }

  // The settings a turn with `locrit` uses (recall: no LLM settings).
  static ChatLocrit ChatLocritOf(const LocritConfig& locrit, const LlmSettings& defaults);

 private:
  void Chat(const HttpRequest& request, const LocritConfig& locrit, bool stream,
            std::shared_ptr<Responder> responder);

  const ApiOptions options_;
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> turns_in_flight_{0};
};

// "2025-01-01T08:00:00.000Z" for Unix milliseconds.
std::string FormatRfc3339Millis(int64_t unix_millis);

// Percent-decodes one path segment; nullopt when an escape is malformed.
std::optional<std::string> PercentDecode(std::string_view segment);

}  // namespace locrit

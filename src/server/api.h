// Api: the routes of this server and their handlers (API.md), on plain HttpRequest values.
//
// Pure of sockets: Handle() identifies the caller (access.h), routes the request to its group and
// answers through the Responder, never blocking a network thread: registry reads are in memory,
// memory reads and chat turns run asynchronously on the memory manager's and ChatService's
// threads and answer from there. Routing, validation and JSON codecs live here; business logic
// stays in chat/, memory/ and registry/.
//
// One file per route group: api.cc (operations and dispatch), api_locrits.cc (/api/locrits,
// /api/create-locrit, /api/llm/models), api_chat.cc (the chat turn every channel shares),
// api_memory.cc (/api/locrits/{name}/memory/...), api_conversations.cc (/api/conversations),
// api_public.cc (/api/v1/..., /public/...). Unknown paths are JSON 404s; a known path with another
// method is a JSON 405 with Allow.
//
// Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "chat/chat_service.h"
#include "core/locrit_config.h"
#include "llm/llm_settings.h"
#include "registry/conversation_store.h"
#include "registry/locrit_registry.h"
#include "server/access.h"
#include "server/api_json.h"
#include "server/http_types.h"
#include "server/metrics.h"
#include "server/ws_protocol.h"

namespace locrit {

class LlmRuntime;
class MemoryManager;
class ThreadPool;

struct ApiOptions {
  LocritRegistry* registry = nullptr;  // Required; outlives the Api.
  ChatService* chat = nullptr;         // Required; outlives the Api.
  MemoryManager* memory = nullptr;     // Required by the memory routes; outlives the Api.
  LlmRuntime* llm = nullptr;           // Required by /api/llm/models; outlives the Api.
  ConversationStore* conversations = nullptr;  // Required by /api/conversations; outlives the Api.
  // Where routes run their blocking file work (registry and conversation writes), never on a
  // network thread. Required by the routes that write; outlives the Api.
  ThreadPool* pool = nullptr;
  const Clock* clock = nullptr;        // Required.
  std::string version;
  size_t max_message_chars = 32768;    // Longer messages: 413.
  // The HTTP server's request body limit. A memory export larger than this is refused (413), so
  // that every export can be imported back.
  size_t max_body_bytes = 1 << 20;
  // Timeouts, retries and limits of every Locrit's LLM calls; provider, URL and model come from
  // the Locrit.
  LlmSettings llm_defaults;
  AccessOptions access;
  // Optional: embeds what the memory routes add or change (without it, the next backfill does),
  // and its max_input_chars bounds a search question's text.
  EmbeddingIndexer* indexer = nullptr;
  // Longest a semantic or hybrid memory search waits for its question's vector.
  std::chrono::milliseconds search_vector_timeout{10'000};
  // What GET /metrics reports; null: /metrics is a 404. Outlives the Api.
  const ServerMetrics* metrics = nullptr;
};

// How to answer a request from a completion that runs after Handle returned.
struct Reply {
  std::shared_ptr<Responder> responder;

  void Send(HttpResponse response) const { responder->Send(std::move(response)); }
  void Fail(const HttpError& error) const { responder->Send(ErrorResponse(error)); }
};

// One request being routed: its decoded path, its caller and how to answer it. It refers to the
// request, which does not outlive Handle: asynchronous work keeps reply() instead.
struct Route {
  const HttpRequest& request;
  std::string_view path;          // Without the query.
  std::vector<std::string> seg;   // Percent-decoded path segments.
  Caller caller;
  std::shared_ptr<Responder> responder;

  Reply reply() const { return Reply{responder}; }
  void Send(HttpResponse response) const { responder->Send(std::move(response)); }
  void Fail(const HttpError& error) const { responder->Send(ErrorResponse(error)); }
  // 405 naming the allowed methods, e.g. "GET, PUT".
  void WrongMethod(std::string_view allow) const;
  void NotFound() const;
  // 401 (with WWW-Authenticate: Bearer) unless the caller is the operator; true when refused.
  bool RefuseUnlessOperator() const;
};

class Api {
 public:
  explicit Api(ApiOptions options);

  // Answers `request` through `responder`, now or later (chat turns, memory reads).
  void Handle(const HttpRequest& request, std::shared_ptr<Responder> responder);

  // Draining: /readyz answers 503 and new chat turns are refused with 503.
  void SetDraining() { draining_.store(true); }
  bool draining() const { return draining_.load(); }

  // Chat turns started and not yet answered (HTTP and WebSocket).
  int64_t TurnsInFlight() const { return turns_in_flight_.load(); }

  // A WebSocket upgrade of GET /ws (ws_protocol.h): the session that will speak to the client
  // through `sink`, or the HTTP error that refuses the upgrade (a foreign Host, a caller who is
  // not the operator). The caller accepts the upgrade, then calls Open() on the session.
  std::variant<std::shared_ptr<WsSession>, HttpError> OpenWebSocket(
      const HttpRequest& upgrade, std::shared_ptr<WsSink> sink);

  // The settings a turn with `locrit` uses (recall: no LLM settings).
  static ChatLocrit ChatLocritOf(const LocritConfig& locrit, const LlmSettings& defaults);
  // What embeds `locrit`'s memory, or nothing without an embedding model (or an LLM runtime).
  std::optional<EmbeddingTarget> EmbeddingTargetFor(const LocritConfig& locrit) const;

 private:
  // Route groups; each answers every request under its prefixes.
  void RouteLocrits(const Route& route);        // api_locrits.cc
  // The operator's Locrit routes (api_locrits.cc). Registry writes run on options_.pool.
  void CreateLocrit(const Route& route);
  void UpdateLocrit(const Route& route, const LocritConfig& locrit);
  void RenameLocrit(const Route& route, const LocritConfig& locrit);
  void ToggleLocrit(const Route& route, const LocritConfig& locrit);
  void DeleteLocrit(const Route& route, const LocritConfig& locrit);
  void ListLlmModels(const Route& route);
  // Runs `work` (which answers the request itself) on options_.pool, or answers 503 when the
  // pool no longer takes work.
  void RunWork(const Route& route, std::function<void()> work) const;
  void RouteMemory(const Route& route, const LocritConfig& locrit);  // api_memory.cc
  void RouteConversations(const Route& route);  // api_conversations.cc
  void RoutePublic(const Route& route);         // api_public.cc
  // GET /metrics: the ServerMetrics families and the Api's own.
  HttpResponse MetricsResponse() const;

  // A chat turn from `route`'s JSON body (message, session_id?, user_id?, conversation_id?),
  // answered as JSON or as SSE, once `locrit` passes the gate of `channel`. A turn in a
  // conversation (`conversation`, or the body's conversation_id) takes its session and user, its
  // messages are counted there, and the answer carries the conversation's id and message count.
  // api_chat.cc.
  void Chat(const Route& route, const LocritConfig& locrit, ChatChannel channel, bool stream,
            std::optional<Conversation> conversation = std::nullopt);

  const ApiOptions options_;
  const AccessPolicy access_;
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> turns_in_flight_{0};
  WsContext ws_;  // Refers to options_ and turns_in_flight_.
};

}  // namespace locrit

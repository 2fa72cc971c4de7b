#include "server/metrics.h"

#include <array>

#include "base/thread_pool.h"
#include "llm/llm_runtime.h"
#include "memory/memory_manager.h"
#include "server/api_json.h"

namespace locrit {
namespace {

// Every path of API.md (and of the server's own operations). A segment in braces matches any
// one segment; the first template that matches wins, so literal segments come before a
// placeholder at the same place (".../concepts/details" before ".../concepts/{concept}").
constexpr std::string_view kTemplates[] = {
    "other",  // kOtherRoute: no template matched.
    "/",
    "/health",
    "/healthz",
    "/readyz",
    "/metrics",
    "/ws",
    "/api/v1/ping",
    "/api/v1/locrits",
    "/api/v1/locrits/{name}/info",
    "/api/v1/locrits/{name}/chat",
    "/api/v1/locrits/{name}/chat/stream",
    "/api/v1/locrits/{name}/memory/stats",
    "/api/v1/locrits/{name}/memory/search",
    "/public/list",
    "/public/{name}",
    "/public/{name}/chat",
    "/api/create-locrit",
    "/api/llm/models",
    "/api/locrits",
    "/api/locrits/{name}",
    "/api/locrits/{name}/config",
    "/api/locrits/{name}/rename",
    "/api/locrits/{name}/toggle",
    "/api/locrits/{name}/delete",
    "/api/locrits/{name}/chat",
    "/api/locrits/{name}/chat/stream",
    "/api/locrits/{name}/memory/summary",
    "/api/locrits/{name}/memory/stats",
    "/api/locrits/{name}/memory/search",
    "/api/locrits/{name}/memory/sessions",
    "/api/locrits/{name}/memory/sessions/{session}",
    "/api/locrits/{name}/memory/sessions/{session}/messages",
    "/api/locrits/{name}/memory/messages/{id}",
    "/api/locrits/{name}/memory/memories",
    "/api/locrits/{name}/memory/memories/{id}",
    "/api/locrits/{name}/memory/concepts",
    "/api/locrits/{name}/memory/concepts/details",
    "/api/locrits/{name}/memory/concepts/{concept}",
    "/api/locrits/{name}/memory/concepts/{concept}/related",
    "/api/locrits/{name}/memory/relations",
    "/api/locrits/{name}/memory/relations/{id}",
    "/api/locrits/{name}/memory/graph",
    "/api/locrits/{name}/memory/health",
    "/api/locrits/{name}/memory/clear",
    "/api/locrits/{name}/memory/export",
    "/api/locrits/{name}/memory/import",
    "/api/conversations",
    "/api/conversations/create",
    "/api/conversations/{id}",
    "/api/conversations/{id}/message",
    "/api/conversations/{id}/info",
};
constexpr int kTemplateCount = static_cast<int>(std::size(kTemplates));

using Segments = std::vector<std::string_view>;

// kTemplates split at '/'; "/" is the empty list... of one empty segment, as DecodePathSegments
// gives for "/".
const std::vector<Segments>& TemplateSegments() {
  static const std::vector<Segments> table = [] {
    std::vector<Segments> out(kTemplateCount);
    for (int i = 1; i < kTemplateCount; ++i) {
      std::string_view t = kTemplates[i].substr(1);
      while (true) {
        const size_t slash = t.find('/');
        out[i].push_back(t.substr(0, slash));
        if (slash == std::string_view::npos) break;
        t = t.substr(slash + 1);
      }
    }
    return out;
  }();
  return table;
}

bool Matches(const Segments& pattern, const std::vector<std::string>& segments) {
  if (pattern.size() != segments.size()) return false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const std::string_view p = pattern[i];
    const bool placeholder = p.size() >= 2 && p.front() == '{' && p.back() == '}';
    if (placeholder ? segments[i].empty() : p != segments[i]) return false;
  }
  return true;
}

constexpr std::string_view kMethods[] = {"GET",   "HEAD",   "POST",   "PUT",
                                         "PATCH", "DELETE", "OPTIONS"};

}  // namespace

int RouteIndexOfSegments(const std::vector<std::string>& segments) {
  const std::vector<Segments>& table = TemplateSegments();
  for (int i = 1; i < kTemplateCount; ++i) {
    if (Matches(table[i], segments)) return i;
  }
  return kOtherRoute;
}

int RouteIndexOf(std::string_view target) {
  const std::string_view path = target.substr(0, target.find('?'));
  if (path.empty() || path.front() != '/') return kOtherRoute;
  std::optional<std::vector<std::string>> segments = DecodePathSegments(path);
  if (!segments) return kOtherRoute;
  return RouteIndexOfSegments(*segments);
}

std::string_view RouteTemplateName(int index) {
  if (index < 0 || index >= kTemplateCount) return kTemplates[kOtherRoute];
  return kTemplates[index];
}

int RouteCount() { return kTemplateCount; }

std::string_view MetricMethod(std::string_view method) {
  for (std::string_view m : kMethods) {
    if (m == method) return m;
  }
  return "other";
}

ServerMetrics::ServerMetrics(ServerMetricsSources sources) : sources_(sources) {
  latency_.reserve(kTemplateCount);
  for (int i = 0; i < kTemplateCount; ++i) {
    latency_.push_back(std::make_unique<Histogram>(kRequestSecondsBuckets));
  }
}

void ServerMetrics::RecordRequest(int route, std::string_view method, int status, int64_t micros) {
  if (route < 0 || route >= kTemplateCount) route = kOtherRoute;
  if (status < 100 || status > 599) status = 0;
  latency_[route]->ObserveMicros(micros);
  std::lock_guard lock(mu_);
  ++requests_[{route, MetricMethod(method), status}];
}

int64_t ServerMetrics::Requests(int route, std::string_view method, int status) const {
  std::lock_guard lock(mu_);
  auto it = requests_.find({route, MetricMethod(method), status});
  return it == requests_.end() ? 0 : it->second;
}

void ServerMetrics::Write(PrometheusText& out) const {
  std::map<std::tuple<int, std::string_view, int>, int64_t> requests;
  {
    std::lock_guard lock(mu_);
    requests = requests_;
  }
  out.Family("locrit_http_requests_total", "counter",
             "HTTP requests answered, by route template, method and status.");
  for (const auto& [key, count] : requests) {
    const auto& [route, method, status] = key;
    const std::string status_text = std::to_string(status);
    out.Sample("locrit_http_requests_total",
               {{"route", RouteTemplateName(route)}, {"method", method}, {"status", status_text}},
               count);
  }
  out.Family("locrit_http_request_duration_seconds", "histogram",
             "Time from a request read whole to its answer written whole, by route template.");
  for (int route = 0; route < kTemplateCount; ++route) {
    Histogram::Snapshot s = latency_[route]->Read();
    if (s.count == 0) continue;  // Routes never called would be hundreds of empty lines.
    out.HistogramSamples("locrit_http_request_duration_seconds",
                         {{"route", RouteTemplateName(route)}}, s);
  }
  out.Family("locrit_http_connections", "gauge", "HTTP connections open (WebSocket included).");
  out.Sample("locrit_http_connections", {}, http_connections_.value());
  out.Family("locrit_http_connections_refused_total", "counter",
             "Connections closed on arrival because max_connections were open.");
  out.Sample("locrit_http_connections_refused_total", {}, connections_refused_.value());
  out.Family("locrit_http_header_timeouts_total", "counter",
             "Connections closed because their request headers came too slowly.");
  out.Sample("locrit_http_header_timeouts_total", {}, header_timeouts_.value());
  out.Family("locrit_websocket_connections", "gauge", "WebSocket connections open.");
  out.Sample("locrit_websocket_connections", {}, websocket_connections_.value());

  if (const MemoryManager* memory = sources_.memory) {
    out.Family("locrit_memory_open_stores", "gauge",
               "Locrit memories opening, open or closing (bounded by max_open_stores).");
    out.Sample("locrit_memory_open_stores", {}, static_cast<int64_t>(memory->OpenStores()));
    out.Family("locrit_memory_queued_writes", "gauge",
               "Writes queued in every memory and not yet taken by a commit batch.");
    out.Sample("locrit_memory_queued_writes", {}, memory->QueuedWrites());
    out.Family("locrit_memory_queued_reads", "gauge",
               "Reads waiting for a reader connection, in every memory.");
    out.Sample("locrit_memory_queued_reads", {}, memory->QueuedReads());
    out.Family("locrit_memory_waiting_opens", "gauge",
               "Memory opens waiting for a free slot (every open store busy).");
    out.Sample("locrit_memory_waiting_opens", {}, memory->WaitingGets());
    out.Family("locrit_memory_recoveries_total", "counter",
               "Recoveries of damaged memory (quarantine, salvage, merge) since start.");
    out.Sample("locrit_memory_recoveries_total", {}, memory->RecoveriesPerformed());
  }
  if (const ThreadPool* pool = sources_.work_pool) {
    out.Family("locrit_work_pool_queued_tasks", "gauge",
               "Tasks queued on the work pool (every SQLite call) and not yet started.");
    out.Sample("locrit_work_pool_queued_tasks", {}, static_cast<int64_t>(pool->QueueDepth()));
  }
  if (const LlmRuntime* llm = sources_.llm) {
    const LlmMetrics& m = llm->metrics();
    constexpr LlmProvider kProviders[] = {LlmProvider::kOllama, LlmProvider::kOpenAi};
    constexpr LlmCallKind kKinds[] = {LlmCallKind::kChat, LlmCallKind::kEmbed,
                                      LlmCallKind::kModels};
    out.Family("locrit_llm_calls_total", "counter",
               "Calls to language model servers, by provider, kind and outcome code.");
    for (LlmProvider p : kProviders) {
      for (LlmCallKind k : kKinds) {
        for (int c = 0; c < kStatusCodes; ++c) {
          const int64_t n = m.Calls(p, k, static_cast<StatusCode>(c));
          if (n == 0) continue;
          out.Sample("locrit_llm_calls_total",
                     {{"provider", LlmProviderName(p)},
                      {"kind", LlmCallKindName(k)},
                      {"code", StatusCodeName(static_cast<StatusCode>(c))}},
                     n);
        }
      }
    }
    out.Family("locrit_llm_call_duration_seconds", "histogram",
               "Duration of calls to language model servers (retries included), by provider "
               "and kind.");
    for (LlmProvider p : kProviders) {
      for (LlmCallKind k : kKinds) {
        Histogram::Snapshot s = m.Latency(p, k).Read();
        if (s.count == 0) continue;
        out.HistogramSamples("locrit_llm_call_duration_seconds",
                             {{"provider", LlmProviderName(p)}, {"kind", LlmCallKindName(k)}}, s);
      }
    }
  }
}

}  // namespace locrit

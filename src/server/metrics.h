// ServerMetrics: what GET /metrics reports (Prometheus text, version 0.0.4), and the route
// templates that keep its labels bounded.
//
// Requests are labelled by route *template* ("/api/locrits/{name}/chat"), never by the raw path,
// and by a bounded method name, so a client sending random paths or methods cannot grow the
// label set: every path that matches no template is counted as route "other". The HTTP server
// records each request when its answer is written; the WebSocket endpoint moves the
// websocket_connections gauge; the memory manager's, LLM runtime's and work pool's own figures
// are read when scraped.
//
// Thread-safe. Recording a request is one short lock (the per-status counter map) plus lock-free
// atomics; a scrape copies the counters under the same lock.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "base/metrics.h"

namespace locrit {

class LlmRuntime;
class MemoryManager;
class ThreadPool;

// ---- Route templates (pure) ----

// The index, in the template table, of the route `target` (path and query, still
// percent-encoded) names; kOtherRoute when it matches none or cannot be decoded.
int RouteIndexOf(std::string_view target);
// The same for already decoded path segments.
int RouteIndexOfSegments(const std::vector<std::string>& segments);
inline constexpr int kOtherRoute = 0;
// The template text of an index ("other" for kOtherRoute).
std::string_view RouteTemplateName(int index);
// Number of indexes, "other" included.
int RouteCount();

// GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS as themselves; anything else "other".
std::string_view MetricMethod(std::string_view method);

// ---- The registry ----

struct ServerMetricsSources {
  const MemoryManager* memory = nullptr;  // Optional; outlives the metrics.
  const LlmRuntime* llm = nullptr;        // Optional; outlives the metrics.
  const ThreadPool* work_pool = nullptr;  // Optional; outlives the metrics.
};

class ServerMetrics {
 public:
  explicit ServerMetrics(ServerMetricsSources sources = {});
  ServerMetrics(const ServerMetrics&) = delete;
  ServerMetrics& operator=(const ServerMetrics&) = delete;

  // One answered request: its route index, method (as sent), HTTP status and duration (from
  // the request read whole to its answer written whole).
  void RecordRequest(int route, std::string_view method, int status, int64_t micros);

  // Connections the HTTP server holds open (WebSocket ones included).
  Gauge& http_connections() { return http_connections_; }
  // Connections closed at once because max_connections were open.
  Counter& connections_refused() { return connections_refused_; }
  // Connections closed because their request headers did not arrive within the header deadline.
  Counter& header_timeouts() { return header_timeouts_; }
  // Open WebSocket connections: the /ws endpoint adds one when the upgrade succeeds and
  // subtracts one when the connection ends.
  Gauge& websocket_connections() { return websocket_connections_; }

  // Every family, in the text format; the Api appends its own (chat turns in flight).
  void Write(PrometheusText& out) const;

  int64_t Requests(int route, std::string_view method, int status) const;  // For tests.

 private:
  const ServerMetricsSources sources_;
  mutable std::mutex mu_;
  // (route, method, status) -> count; bounded by the template table, the method list and the
  // status range, whatever clients send.
  std::map<std::tuple<int, std::string_view, int>, int64_t> requests_;  // GUARDED_BY(mu_)
  std::vector<std::unique_ptr<Histogram>> latency_;                     // One per route; lock-free.
  Gauge http_connections_;
  Counter connections_refused_;
  Counter header_timeouts_;
  Gauge websocket_connections_;
};

}  // namespace locrit

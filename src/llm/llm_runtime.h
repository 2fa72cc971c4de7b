// LlmRuntime: the network threads every LLM client runs on, and the factory of clients.
//
// Owns one io_context and its threads (no globals); `cli/` builds one per process, tests build
// their own. Clients and call handles may outlive the runtime: after Shutdown their calls fail
// with unavailable. Thread-safe.
#pragma once

#include <memory>

#include "base/status.h"
#include "llm/llm_client.h"
#include "llm/llm_metrics.h"
#include "llm/llm_settings.h"

namespace locrit {

namespace llm_internal {
class Transport;
}

struct LlmRuntimeOptions {
  int threads = 1;  // Network threads; LLM I/O is light, one is plenty for most servers.
};

class LlmRuntime {
 public:
  explicit LlmRuntime(LlmRuntimeOptions options = {});
  ~LlmRuntime();  // Shutdown().
  LlmRuntime(const LlmRuntime&) = delete;
  LlmRuntime& operator=(const LlmRuntime&) = delete;

  // A client for `settings` (validated: invalid_argument naming the bad field; an unreadable
  // ca_file is invalid_argument too).
  Result<std::shared_ptr<LlmClient>> NewClient(const LlmSettings& settings);

  // Cancels every call in flight (each `done` gets cancelled), then joins the threads. Later
  // calls fail with unavailable. Idempotent. REQUIRES: not called from an LLM callback.
  void Shutdown();

  // How the calls of every client made by this runtime went (for /metrics).
  const LlmMetrics& metrics() const { return *metrics_; }

 private:
  std::shared_ptr<llm_internal::Transport> transport_;  // Owns the io_context and threads.
  // Shared with the clients, which may outlive the runtime.
  std::shared_ptr<LlmMetrics> metrics_ = std::make_shared<LlmMetrics>();
};

}  // namespace locrit

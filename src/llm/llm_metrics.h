// LlmMetrics: how the calls to language model servers went — latency per provider and call kind,
// and outcomes per provider, kind and status code. Recorded where each call completes (one
// histogram observation and one counter add, lock-free); read by the server's /metrics.
//
// Owned by the LlmRuntime; thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string_view>

#include "base/metrics.h"
#include "base/status.h"
#include "llm/llm_settings.h"

namespace locrit {

enum class LlmCallKind { kChat, kEmbed, kModels };
inline constexpr int kLlmCallKinds = 3;
inline constexpr int kLlmProviders = 2;  // LlmProvider values.
inline constexpr int kStatusCodes = static_cast<int>(StatusCode::kLlmError) + 1;

std::string_view LlmCallKindName(LlmCallKind kind);  // "chat", "embed", "models".

class LlmMetrics {
 public:
  LlmMetrics();

  // One finished call: its outcome (ok, or the code it failed with) and how long it took.
  void Record(LlmProvider provider, LlmCallKind kind, StatusCode code, int64_t micros);

  const Histogram& Latency(LlmProvider provider, LlmCallKind kind) const {
    return *latency_[Index(provider, kind)];
  }
  int64_t Calls(LlmProvider provider, LlmCallKind kind, StatusCode code) const {
    return calls_[Index(provider, kind)][static_cast<int>(code)].value();
  }

 private:
  static int Index(LlmProvider provider, LlmCallKind kind) {
    return static_cast<int>(provider) * kLlmCallKinds + static_cast<int>(kind);
  }
  std::array<std::unique_ptr<Histogram>, kLlmProviders * kLlmCallKinds> latency_;
  std::array<std::array<Counter, kStatusCodes>, kLlmProviders * kLlmCallKinds> calls_;
};

}  // namespace locrit

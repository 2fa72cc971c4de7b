#include "llm/llm_metrics.h"

namespace locrit {

std::string_view LlmCallKindName(LlmCallKind kind) {
  switch (kind) {
    case LlmCallKind::kChat:
      return "chat";
    case LlmCallKind::kEmbed:
      return "embed";
    case LlmCallKind::kModels:
      return "models";
  }
  return "unknown";
}

LlmMetrics::LlmMetrics() {
  for (auto& h : latency_) h = std::make_unique<Histogram>(kLlmSecondsBuckets);
}

void LlmMetrics::Record(LlmProvider provider, LlmCallKind kind, StatusCode code, int64_t micros) {
  const int i = Index(provider, kind);
  latency_[i]->ObserveMicros(micros);
  calls_[i][static_cast<int>(code)].Add();
}

}  // namespace locrit

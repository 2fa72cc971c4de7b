// HttpLlmClient: LlmClient over HTTP for both wire formats (Ollama and OpenAI-compatible); the
// provider in the settings picks paths, bodies and decoders. Thread-safe; immutable after
// construction.
#pragma once

#include <memory>

#include "llm/internal/transport.h"
#include "llm/llm_client.h"
#include "llm/llm_metrics.h"

namespace locrit::llm_internal {

class HttpLlmClient final : public LlmClient {
 public:
  // REQUIRES: ValidateLlmSettings(settings) is OK and `endpoint` was built from it. Every call
  // that reaches the transport is recorded in `metrics` when it completes.
  HttpLlmClient(std::shared_ptr<Transport> transport, std::shared_ptr<const Endpoint> endpoint,
                LlmSettings settings, std::shared_ptr<LlmMetrics> metrics);

  LlmCall Chat(ChatRequest request, DeltaSink on_delta, Done<ChatReply> done) override;
  LlmCall Embed(EmbedRequest request, Done<Embeddings> done) override;
  LlmCall ListModels(Done<std::vector<ModelInfo>> done) override;
  const LlmSettings& settings() const override { return settings_; }

 private:
  ExchangeSpec Spec(std::string method, std::string_view api_path, std::string body,
                    std::string accept) const;
  // Reads a whole JSON answer and parses it with `parse`.
  template <typename T>
  LlmCall Fetch(ExchangeSpec spec, std::function<Result<T>(std::string_view)> parse,
                std::function<void(T&, const ExchangeOutcome&)> annotate, LlmCallKind kind,
                Done<T> done);
  // Wraps `done` so that the call's outcome and duration (from now) are recorded.
  template <typename T>
  Done<T> Recorded(LlmCallKind kind, Done<T> done) const;

  const std::shared_ptr<Transport> transport_;
  const std::shared_ptr<const Endpoint> endpoint_;
  const LlmSettings settings_;
  const std::shared_ptr<LlmMetrics> metrics_;
};

}  // namespace locrit::llm_internal

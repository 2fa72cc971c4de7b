#include "llm/llm_settings.h"

#include <fmt/format.h>

#include "llm/internal/wire.h"

namespace locrit {

std::string_view LlmProviderName(LlmProvider provider) {
  switch (provider) {
    case LlmProvider::kOllama:
      return "ollama";
    case LlmProvider::kOpenAi:
      return "openai";
  }
  return "unknown";
}

Result<LlmProvider> ParseLlmProvider(std::string_view name) {
  if (name == "ollama") return LlmProvider::kOllama;
  if (name == "openai") return LlmProvider::kOpenAi;
  return InvalidArgumentError(
      fmt::format("unknown LLM provider \"{}\" (expected \"ollama\" or \"openai\")", name));
}

std::string EffectiveBaseUrl(const LlmSettings& settings) {
  if (!settings.base_url.empty()) return settings.base_url;
  return settings.provider == LlmProvider::kOllama ? std::string(kDefaultOllamaUrl) : "";
}

Status ValidateLlmSettings(const LlmSettings& settings) {
  const std::string url = EffectiveBaseUrl(settings);
  if (url.empty()) {
    return InvalidArgumentError("base_url is required for an OpenAI-compatible provider");
  }
  RETURN_IF_ERROR(llm_internal::ParseBaseUrl(url).status());
  const LlmTimeouts& t = settings.timeouts;
  const std::pair<const char*, std::chrono::milliseconds> timeouts[] = {
      {"connect", t.connect}, {"first_token", t.first_token}, {"idle", t.idle}, {"total", t.total}};
  for (const auto& [name, value] : timeouts) {
    if (value.count() <= 0) {
      return InvalidArgumentError(fmt::format("timeout {} must be positive", name));
    }
  }
  if (settings.retry.max_retries < 0 || settings.retry.initial_backoff.count() < 0 ||
      settings.retry.max_backoff < settings.retry.initial_backoff) {
    return InvalidArgumentError("retry: max_retries and backoffs must be >= 0, max >= initial");
  }
  if (settings.max_reply_bytes == 0 || settings.max_response_bytes == 0) {
    return InvalidArgumentError("max_reply_bytes and max_response_bytes must be positive");
  }
  return Status::Ok();
}

}  // namespace locrit

#include "llm/llm_runtime.h"

#include "llm/internal/http_client.h"
#include "llm/internal/transport.h"
#include "llm/internal/wire.h"

namespace locrit {

LlmRuntime::LlmRuntime(LlmRuntimeOptions options)
    : transport_(std::make_shared<llm_internal::Transport>(options.threads)) {}

LlmRuntime::~LlmRuntime() { Shutdown(); }

void LlmRuntime::Shutdown() { transport_->Shutdown(); }

Result<std::shared_ptr<LlmClient>> LlmRuntime::NewClient(const LlmSettings& settings) {
  RETURN_IF_ERROR(ValidateLlmSettings(settings));
  auto endpoint = std::make_shared<llm_internal::Endpoint>();
  ASSIGN_OR_RETURN(endpoint->url, llm_internal::ParseBaseUrl(EffectiveBaseUrl(settings)));
  if (endpoint->url.tls) {
    ASSIGN_OR_RETURN(endpoint->tls, llm_internal::NewTlsContext(settings.ca_file));
  }
  return std::shared_ptr<LlmClient>(std::make_shared<llm_internal::HttpLlmClient>(
      transport_, std::move(endpoint), settings, metrics_));
}

}  // namespace locrit

#include "chat/query_embedding.h"

#include <memory>
#include <string>
#include <utility>

#include "llm/llm_runtime.h"

namespace locrit {

LlmCall EmbedQuery(LlmRuntime& llm, const EmbeddingTarget& target, std::string_view text,
                   size_t max_input_chars, std::chrono::milliseconds timeout,
                   std::function<void(Result<std::vector<float>>)> done) {
  LlmSettings settings = target.llm;
  settings.timeouts.connect = timeout;
  settings.timeouts.first_token = timeout;
  settings.timeouts.idle = timeout;
  settings.timeouts.total = timeout;
  settings.retry.max_retries = 0;
  Result<std::shared_ptr<LlmClient>> client = llm.NewClient(settings);
  if (!client.ok()) {
    done(client.status());
    return LlmCall();
  }
  EmbedRequest embed;
  embed.inputs.push_back(EmbeddingInput(text, max_input_chars));
  embed.model = settings.embedding_model;
  // The callback keeps the client alive until the call has ended.
  return (*client)->Embed(
      std::move(embed),
      [client = *client, done = std::move(done)](Result<Embeddings> embeddings) {
        if (!embeddings.ok()) return done(embeddings.status());
        if (embeddings->vectors.size() != 1) {
          return done(LlmError("the embedding server answered " +
                               std::to_string(embeddings->vectors.size()) +
                               " vectors for one text"));
        }
        done(std::move(embeddings->vectors.front()));
      });
}

}  // namespace locrit

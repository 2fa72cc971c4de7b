// The vector of a question, for retrieval: a chat turn's new message, or the text of a memory
// search. One embedding request with the Locrit's embedding model, never retried, bounded as a
// whole by `timeout` (a question waits for it, so it must not wait long). Whether a failure
// degrades to bm25 or is reported is the caller's choice.
#pragma once

#include <chrono>
#include <functional>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "chat/embedding_indexer.h"
#include "llm/llm_client.h"

namespace locrit {

class LlmRuntime;

// `done` runs exactly once, on an LLM network thread or inside the call when the request is
// refused before any I/O; it gets the vector, or the error. The text is embedded by its first
// `max_input_chars` characters, as stored messages are. Dropping or cancelling the returned call
// cancels the request (`done` then gets cancelled); Detach() lets it run to its end.
LlmCall EmbedQuery(LlmRuntime& llm, const EmbeddingTarget& target, std::string_view text,
                   size_t max_input_chars, std::chrono::milliseconds timeout,
                   std::function<void(Result<std::vector<float>>)> done);

}  // namespace locrit

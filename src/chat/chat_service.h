// ChatService: one chat turn with a Locrit.
//
//   1. validate the message (non-empty, at most max_message_chars characters, valid UTF-8);
//   2. durably save the user's message (a new unguessable session when none is given);
//   3. assemble the context (chat/context.h) from the session's newest messages and recall;
//   4. stream the reply to the sink while accumulating it: from the Locrit's language model, or,
//      when it has none, from the built-in `recall` responder, which quotes what memory holds;
//   5. save the reply, responding to the user's message, with its model, latency and tokens;
//   6. report both ids.
// If the model fails, the user's message stays, marked unanswered, and the error is reported
// together with its id. Concurrent turns on one session each answer their own message.
//
// Hybrid retrieval: when the Locrit's settings name an embedding_model and the service has an
// EmbeddingIndexer, the question is embedded while it is being saved, and recall fuses bm25 with
// cosine similarity. That wait is bounded by query_vector_timeout (the embedding request's whole
// deadline); a down, slow or failing embedding server only makes the turn's recall bm25 alone.
// After the turn its messages go to the indexer, which embeds them in the background.
//
// Asynchronous: `done` is called exactly once, on a work-pool or LLM thread; the sink is called
// on those threads too, never concurrently with itself. Thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/clock.h"
#include "base/id_generator.h"
#include "base/status.h"
#include "chat/embedding_indexer.h"
#include "llm/llm_runtime.h"
#include "llm/llm_settings.h"
#include "memory/memory_manager.h"

namespace locrit {

// What a turn needs to know of the Locrit.
struct ChatLocrit {
  std::string slug;  // Its memory directory (MemoryManager slug).
  std::string name;
  std::string description;
  std::string system_prompt;       // Empty: "Tu es {name}, un Locrit. {description}".
  std::optional<LlmSettings> llm;  // Absent: the built-in recall responder.
  int context_messages = 20;       // Newest messages of the session sent to the model.
  int64_t max_messages = 5000;     // Retention cap of its memory (0: unlimited).
  int recall_items = 8;            // Recalled memories and messages at most...
  size_t recall_budget_chars = 4000;  // ...within this many characters.
  // Hybrid retrieval (with llm->embedding_model set): cosine similarity below which a stored
  // vector is not recalled. The right value depends on the model (docs/chat.md).
  double recall_min_similarity = 0.5;
};

struct TurnRequest {
  std::string message;
  std::string session_id;  // Empty: a new session.
  std::string user_id;     // Empty: "anonymous".
  std::string user_name;
};

// Filled as far as the turn got: on failure after step 2, user_message_id names the saved
// (unanswered) message.
struct TurnResult {
  std::string session_id;
  std::string user_message_id;
  std::string assistant_message_id;
  std::string response;
  std::string model;  // "recall" for the built-in responder.
  int64_t timestamp = 0;  // Unix millis of the reply.
};

struct ChatServiceOptions {
  MemoryManager* memory = nullptr;  // Required; outlives the service.
  LlmRuntime* llm = nullptr;        // Required unless every Locrit uses recall.
  IdGenerator* ids = nullptr;       // Required.
  const Clock* clock = nullptr;     // Required.
  size_t max_message_chars = 32768;
  // Optional: embeds messages after each turn. Without it retrieval is bm25 only.
  EmbeddingIndexer* indexer = nullptr;
  // Longest a turn waits for its question's vector (the embedding request's whole deadline; it
  // runs while the question is being saved). Zero: no question vector, bm25 only.
  std::chrono::milliseconds query_vector_timeout{250};
};

// Cancels a turn whose caller went away: the model call stops; the user's message stays
// (unanswered). Dropping the handle does not cancel.
class TurnHandle {
 public:
  virtual ~TurnHandle() = default;
  virtual void Cancel() = 0;
};

class ChatService {
 public:
  using DeltaSink = std::function<void(std::string_view delta)>;
  using Done = std::function<void(Status status, TurnResult result)>;

  explicit ChatService(ChatServiceOptions options);

  std::shared_ptr<TurnHandle> Turn(const ChatLocrit& locrit, TurnRequest request, DeltaSink sink,
                                   Done done);

  // The user id of a Locrit's own replies in its memory.
  static std::string LocritUserId(const std::string& slug) { return "locrit:" + slug; }
  // What the indexer embeds for the Locrit, or nothing without an embedding model.
  static std::optional<EmbeddingTarget> EmbeddingTargetOf(const ChatLocrit& locrit);
  // The answer of the recall responder, from what was recalled for the message.
  static std::string RecallAnswer(const ChatLocrit& locrit,
                                  const std::vector<struct RecalledItem>& recalled);

 private:
  class TurnState;
  const ChatServiceOptions options_;
};

}  // namespace locrit

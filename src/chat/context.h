// AssembleContext: what a Locrit's language model reads for one turn. A pure function, so that
// every rule below is table-tested (tests/unit/chat/context_test.cc).
//
// In order:
//   1. the system prompt: the Locrit's own, or "Tu es {name}, un Locrit. {description}";
//   2. the recalled items (memories, and messages outside the window: other sessions, or older
//      messages of this one) in the order given (best first), skipping any already in the window,
//      as many as fit the character budget, in one system message that marks them as recalled;
//   3. the window: the newest messages of the session, in chronological order;
//   4. the new message, exactly once (a window that already holds it does not repeat it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/memory_types.h"
#include "llm/llm_client.h"

namespace locrit {

// Something recalled from memory for this turn.
struct RecalledItem {
  enum class Kind { kMemory, kMessage };
  Kind kind = Kind::kMemory;
  std::string id;
  std::string text;
  int64_t at = 0;           // Unix millis: a memory's creation, a message's time.
  Role role = Role::kUser;  // Messages only.
};

struct ContextInput {
  std::string locrit_name;
  std::string description;
  std::string system_prompt;            // The Locrit's own; empty: the default one.
  std::vector<RecalledItem> recalled;   // Best first.
  std::vector<Message> window;          // Chronological.
  std::string new_message_id;           // Left out of the window and the recalled items.
  std::string new_message;
  size_t recall_budget_chars = 4000;    // Characters of recalled text at most.
};

// The default system prompt of a Locrit without its own.
std::string DefaultSystemPrompt(const std::string& name, const std::string& description);

// "2025-01-31 08:00 UTC".
std::string FormatUtcMinute(int64_t unix_millis);

std::vector<ChatMessage> AssembleContext(const ContextInput& input);

}  // namespace locrit

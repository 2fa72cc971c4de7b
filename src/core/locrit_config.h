// LocritConfig: the definition of one Locrit (API.md "Locrit object"), and the pure rules on its
// name: validation, the case-insensitive key that makes names unique, and the ASCII slug its
// memory directory is derived from (DESIGN.md "Names and files").
//
// Plain value types and pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace locrit {

// Where a Locrit's replies come from. kRecall is the built-in responder (no language model).
enum class LocritProvider { kOllama, kOpenAi, kRecall };

// "ollama" / "openai" / "recall".
std::string_view LocritProviderName(LocritProvider provider);
// The inverse; anything else is invalid_argument.
Result<LocritProvider> ParseLocritProvider(std::string_view name);

struct LocritLlm {
  LocritProvider provider = LocritProvider::kRecall;
  std::optional<std::string> url;  // Absent: the provider's default.
};

struct LocritOpenTo {
  bool humans = true;
  bool locrits = true;
  bool invitations = true;
  bool internet = false;
  bool platform = false;
};

struct LocritAccessTo {
  bool logs = true;
  bool quick_memory = true;
  bool full_memory = false;
  bool llm_info = true;
};

struct LocritMemorySettings {
  int64_t max_messages = 5000;  // Retention cap (0: unlimited).
  int context_messages = 20;    // Newest messages of a session sent to the model.
};

struct LocritConfig {
  std::string name;
  std::string slug;  // Assigned once by the registry at creation; never changes.
  std::string description;
  std::optional<std::string> system_prompt;
  std::string model;
  // Enables hybrid retrieval (bm25 + cosine): the model that embeds its messages and memories, on
  // the same LLM server as `model`. Absent: bm25 alone.
  std::optional<std::string> embedding_model;
  LocritLlm llm;
  bool active = true;
  std::optional<std::string> public_address;
  LocritOpenTo open_to;
  LocritAccessTo access_to;
  LocritMemorySettings memory;
  int64_t created_at = 0;  // Unix millis.
  int64_t updated_at = 0;
};

inline constexpr size_t kMaxLocritNameChars = 64;
inline constexpr size_t kMaxLocritDescriptionChars = 4096;
inline constexpr size_t kMaxSystemPromptChars = 32768;
inline constexpr int64_t kMaxContextMessages = 1000;

// A name is valid UTF-8, 1 to 64 characters, without control characters (C0, DEL, C1), without
// '/' or '\', and without leading or trailing spaces. invalid_argument saying which rule failed.
Status ValidateLocritName(std::string_view name);

// Checks every field of a definition whose name is valid: lengths, memory settings in range.
Status ValidateLocritConfig(const LocritConfig& config);

// The key two names are compared by: equal keys mean "the same name" (case-insensitive). Folds
// ASCII, Latin-1, Latin Extended-A, Greek and Cyrillic capitals to small letters; other
// characters compare as they are. REQUIRES: valid UTF-8.
std::string LocritNameKey(std::string_view name);

// The readable part of a slug: ASCII letters lowered, digits, '_' and '-' kept, every other run of
// characters becomes one '-', trimmed of '-', at most 40 bytes. May be empty (e.g. a name in
// another script); the registry then relies on the hash suffix alone.
std::string SlugBase(std::string_view name);

// True when `slug` is a non-empty run of [a-z0-9_-] of at most 64 bytes: a safe directory name
// that cannot reach outside <data>/locrits/.
bool IsValidSlug(std::string_view slug);

}  // namespace locrit

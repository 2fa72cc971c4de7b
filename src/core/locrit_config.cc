#include "core/locrit_config.h"

#include <cstdint>
#include <vector>

#include "base/utf8.h"

namespace locrit {
namespace {

// Decodes well-formed UTF-8 (checked by the caller) into code points.
std::vector<uint32_t> CodePoints(std::string_view text) {
  std::vector<uint32_t> out;
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char c = s[i];
    size_t len = 1;
    uint32_t cp = c;
    if (c >= 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else if (c >= 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xC0) {
      len = 2;
      cp = c & 0x1F;
    }
    for (size_t k = 1; k < len && i + k < text.size(); ++k) cp = (cp << 6) | (s[i + k] & 0x3F);
    out.push_back(cp);
    i += len;
  }
  return out;
}

void AppendUtf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

uint32_t FoldCase(uint32_t cp) {
  if (cp >= 'A' && cp <= 'Z') return cp + 0x20;
  if (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) return cp + 0x20;  // Latin-1 capitals.
  if (cp >= 0x100 && cp <= 0x137 && cp % 2 == 0) return cp + 1;  // Latin Extended-A pairs...
  if (cp >= 0x139 && cp <= 0x148 && cp % 2 == 1) return cp + 1;
  if (cp >= 0x14A && cp <= 0x177 && cp % 2 == 0) return cp + 1;
  if (cp == 0x178) return 0xFF;
  if (cp >= 0x179 && cp <= 0x17E && cp % 2 == 1) return cp + 1;
  if (cp >= 0x391 && cp <= 0x3AB && cp != 0x3A2) return cp + 0x20;  // Greek.
  if (cp == 0x386) return 0x3AC;  // Greek capitals with tonos.
  if (cp >= 0x388 && cp <= 0x38A) return cp + 0x25;
  if (cp == 0x38C) return 0x3CC;
  if (cp == 0x38E || cp == 0x38F) return cp + 0x3F;
  if (cp == 0x3C2) return 0x3C3;  // Final sigma.
  if (cp >= 0x410 && cp <= 0x42F) return cp + 0x20;                   // Cyrillic.
  if (cp >= 0x400 && cp <= 0x40F) return cp + 0x50;
  return cp;
}

// The ASCII letter a Latin-1 accented letter is written with in a slug (0 when none).
char LatinBase(uint32_t cp) {
  // U+00C0..U+00FF, lowered first; '.' marks characters with no ASCII letter.
  static constexpr std::string_view kBase =
      "aaaaaaaceeeeiiii"  // U+00E0..U+00EF
      "dnooooo.ouuuuyty";  // U+00F0..U+00FF
  cp = FoldCase(cp);
  if (cp < 0xE0 || cp > 0xFF) return 0;
  const char c = kBase[cp - 0xE0];
  return c == '.' ? 0 : c;
}

bool IsControl(uint32_t cp) { return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F); }

bool IsSpace(uint32_t cp) {
  return cp == ' ' || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200B) ||
         cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000 ||
         cp == 0xFEFF;
}

}  // namespace

std::string_view LocritProviderName(LocritProvider provider) {
  switch (provider) {
    case LocritProvider::kOllama:
      return "ollama";
    case LocritProvider::kOpenAi:
      return "openai";
    case LocritProvider::kRecall:
      return "recall";
  }
  return "recall";
}

Result<LocritProvider> ParseLocritProvider(std::string_view name) {
  if (name == "ollama") return LocritProvider::kOllama;
  if (name == "openai") return LocritProvider::kOpenAi;
  if (name == "recall") return LocritProvider::kRecall;
  return InvalidArgumentError("llm.provider must be \"ollama\", \"openai\" or \"recall\"");
}

Status ValidateLocritName(std::string_view name) {
  if (!IsValidUtf8(name)) return InvalidArgumentError("the name is not valid UTF-8");
  const std::vector<uint32_t> cps = CodePoints(name);
  if (cps.empty()) return InvalidArgumentError("the name is empty");
  if (cps.size() > kMaxLocritNameChars) {
    return InvalidArgumentError("the name is longer than 64 characters");
  }
  for (const uint32_t cp : cps) {
    if (IsControl(cp)) return InvalidArgumentError("the name contains a control character");
    if (cp == '/' || cp == '\\') return InvalidArgumentError("the name contains '/' or '\\'");
  }
  if (IsSpace(cps.front()) || IsSpace(cps.back())) {
    return InvalidArgumentError("the name starts or ends with a space");
  }
  return Status::Ok();
}

Status ValidateLocritConfig(const LocritConfig& config) {
  RETURN_IF_ERROR(ValidateLocritName(config.name));
  auto too_long = [](const std::string& text, size_t max) {
    return !IsValidUtf8(text) || CountCodePoints(text) > max;
  };
  if (too_long(config.description, kMaxLocritDescriptionChars)) {
    return InvalidArgumentError("description must be valid UTF-8 of at most 4096 characters");
  }
  if (config.system_prompt && too_long(*config.system_prompt, kMaxSystemPromptChars)) {
    return InvalidArgumentError("system_prompt must be valid UTF-8 of at most 32768 characters");
  }
  if (too_long(config.model, 256)) {
    return InvalidArgumentError("model must be valid UTF-8 of at most 256 characters");
  }
  if (config.embedding_model &&
      (config.embedding_model->empty() || too_long(*config.embedding_model, 256))) {
    return InvalidArgumentError("embedding_model must be null or 1 to 256 characters of UTF-8");
  }
  if (config.llm.url && too_long(*config.llm.url, 2048)) {
    return InvalidArgumentError("llm.url must be valid UTF-8 of at most 2048 characters");
  }
  if (config.memory.max_messages < 0) {
    return InvalidArgumentError("memory.max_messages must be 0 (unlimited) or more");
  }
  if (config.memory.context_messages < 0 || config.memory.context_messages > kMaxContextMessages) {
    return InvalidArgumentError("memory.context_messages must be between 0 and 1000");
  }
  return Status::Ok();
}

std::string LocritNameKey(std::string_view name) {
  std::string key;
  key.reserve(name.size());
  for (const uint32_t cp : CodePoints(name)) AppendUtf8(FoldCase(cp), key);
  return key;
}

std::string SlugBase(std::string_view name) {
  constexpr size_t kMaxBase = 40;
  std::string slug;
  bool pending_dash = false;
  for (const uint32_t cp : CodePoints(name)) {
    char c = 0;
    if (cp < 0x80) {
      c = static_cast<char>(FoldCase(cp));
      const bool keep = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
      if (!keep) c = 0;
    } else {
      c = LatinBase(cp);
    }
    if (c == 0 || c == '-') {
      pending_dash = true;
      continue;
    }
    if (pending_dash && !slug.empty()) slug += '-';
    pending_dash = false;
    if (slug.size() >= kMaxBase) break;
    slug += c;
  }
  while (!slug.empty() && slug.back() == '-') slug.pop_back();
  return slug;
}

bool IsValidSlug(std::string_view slug) {
  if (slug.empty() || slug.size() > 64) return false;
  for (const char c : slug) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace locrit

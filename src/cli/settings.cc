#include "cli/settings.h"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <string_view>
#include <variant>

extern char** environ;

namespace locrit {
namespace {

using SettingValue = std::variant<std::string, int64_t, bool, std::vector<std::string>>;

enum class SettingType { kString, kInteger, kBoolean, kStringList };

std::string_view TypeName(SettingType type) {
  switch (type) {
    case SettingType::kString:
      return "a string";
    case SettingType::kInteger:
      return "an integer";
    case SettingType::kBoolean:
      return "a boolean";
    case SettingType::kStringList:
      return "an array of strings";
  }
  return "?";
}

// Sets one field from a value of the spec's type; returns an error sentence (without the
// source) for a bad value.
using Apply = std::function<std::optional<std::string>(ServeSettings&, const SettingValue&)>;

struct SettingSpec {
  std::string_view key;  // "section.name", as in the file.
  std::string_view env;  // LOCRIT_...
  SettingType type;
  Apply apply;
};

const std::string& Str(const SettingValue& v) { return std::get<std::string>(v); }
int64_t Int(const SettingValue& v) { return std::get<int64_t>(v); }

// An integer field within [min, max].
template <typename T>
Apply IntIn(T ServeSettings::*field, int64_t min, int64_t max) {
  return [field, min, max](ServeSettings& s, const SettingValue& v) -> std::optional<std::string> {
    if (Int(v) < min || Int(v) > max) return fmt::format("must be between {} and {}", min, max);
    s.*field = static_cast<T>(Int(v));
    return std::nullopt;
  };
}

// A millisecond timeout of the LLM defaults.
Apply TimeoutMs(std::chrono::milliseconds LlmTimeouts::*field) {
  return [field](ServeSettings& s, const SettingValue& v) -> std::optional<std::string> {
    if (Int(v) < 1 || Int(v) > 86'400'000) return "must be between 1 and 86400000 (ms)";
    s.llm.timeouts.*field = std::chrono::milliseconds(Int(v));
    return std::nullopt;
  };
}

const std::vector<SettingSpec>& Specs() {
  static const std::vector<SettingSpec> specs = {
      {"server.listen", "LOCRIT_LISTEN", SettingType::kString,
       [](ServeSettings& s, const SettingValue& v) -> std::optional<std::string> {
         if (Str(v).empty()) return "must be HOST:PORT";
         s.listen = Str(v);
         return std::nullopt;
       }},
      {"server.data", "LOCRIT_DATA", SettingType::kString,
       [](ServeSettings& s, const SettingValue& v) -> std::optional<std::string> {
         if (Str(v).empty()) return "must not be empty";
         s.data = Str(v);
         return std::nullopt;
       }},
      {"server.no_example", "LOCRIT_NO_EXAMPLE", SettingType::kBoolean,
       [](ServeSettings& s, const SettingValue& v) -> std::optional<std::string> {
         s.no_example = std::get<bool>(v);
         return std::nullopt;
       }},
      {"server.shutdown_timeout_s", "LOCRIT_SHUTDOWN_TIMEOUT", SettingType::kInteger,
       IntIn(&ServeSettings::shutdown_timeout_s, 0, 3600)},
      {"server.request_log", "LOCRIT_REQUEST_LOG", SettingType::kBoolean,
       [](ServeSettings& s, const SettingValue& v) -> std::optional<std::string> {
         s.request_log = std::get<bool>(v);
         return std::nullopt;
       }},
      {"access.admin_tokens", "LOCRIT_ADMIN_TOKEN", SettingType::kStringList,
       [](ServeSettings& s, const SettingValue& v) -> std::optional<std::string> {
         const auto& tokens = std::get<std::vector<std::string>>(v);
         for (const std::string& t : tokens) {
           if (t.size() < 16) return "each admin token must have at least 16 characters";
           if (std::any_of(t.begin(), t.end(), [](char c) { return c <= ' ' || c == 0x7f; })) {
             return "admin tokens must not contain spaces or control characters";
           }
         }
         s.admin_tokens = tokens;
         return std::nullopt;
       }},
      {"llm.provider", "LOCRIT_LLM_PROVIDER", SettingType::kString,
       [](ServeSettings& s, const SettingValue& v) -> std::optional<std::string> {
         if (Str(v) == "recall") {
           s.llm_provider = "recall";
           return std::nullopt;
         }
         Result<LlmProvider> provider = ParseLlmProvider(Str(v));
         if (!provider.ok()) return "must be \"ollama\", \"openai\" or \"recall\"";
         s.llm_provider = Str(v);
         s.llm.provider = *provider;
         return std::nullopt;
       }},
      {"llm.url", "LOCRIT_LLM_URL", SettingType::kString,
       [](ServeSettings& s, const SettingValue& v) -> std::optional<std::string> {
         if (!Str(v).empty() && Str(v).rfind("http://", 0) != 0 &&
             Str(v).rfind("https://", 0) != 0) {
           return "must be an http:// or https:// URL";
         }
         s.llm.base_url = Str(v);
         return std::nullopt;
       }},
      {"llm.model", "LOCRIT_LLM_MODEL", SettingType::kString,
       [](ServeSettings& s, const SettingValue& v) -> std::optional<std::string> {
         s.llm.model = Str(v);
         return std::nullopt;
       }},
      {"llm.connect_timeout_ms", "LOCRIT_LLM_CONNECT_TIMEOUT_MS", SettingType::kInteger,
       TimeoutMs(&LlmTimeouts::connect)},
      {"llm.first_token_timeout_ms", "LOCRIT_LLM_FIRST_TOKEN_TIMEOUT_MS", SettingType::kInteger,
       TimeoutMs(&LlmTimeouts::first_token)},
      {"llm.idle_timeout_ms", "LOCRIT_LLM_IDLE_TIMEOUT_MS", SettingType::kInteger,
       TimeoutMs(&LlmTimeouts::idle)},
      {"llm.total_timeout_ms", "LOCRIT_LLM_TOTAL_TIMEOUT_MS", SettingType::kInteger,
       TimeoutMs(&LlmTimeouts::total)},
      {"llm.max_retries", "LOCRIT_LLM_MAX_RETRIES", SettingType::kInteger,
       [](ServeSettings& s, const SettingValue& v) -> std::optional<std::string> {
         if (Int(v) < 0 || Int(v) > 10) return "must be between 0 and 10";
         s.llm.retry.max_retries = static_cast<int>(Int(v));
         return std::nullopt;
       }},
      {"limits.max_body_bytes", "LOCRIT_MAX_BODY_BYTES", SettingType::kInteger,
       IntIn(&ServeSettings::max_body_bytes, 1024, int64_t{1} << 30)},
      {"limits.max_message_chars", "LOCRIT_MAX_MESSAGE_CHARS", SettingType::kInteger,
       IntIn(&ServeSettings::max_message_chars, 1, 1 << 24)},
      {"limits.max_ws_queue_bytes", "LOCRIT_MAX_WS_QUEUE_BYTES", SettingType::kInteger,
       IntIn(&ServeSettings::max_ws_queue_bytes, 4096, int64_t{1} << 30)},
      {"limits.max_connections", "LOCRIT_MAX_CONNECTIONS", SettingType::kInteger,
       IntIn(&ServeSettings::max_connections, 1, 1'000'000)},
      {"limits.header_timeout_s", "LOCRIT_HEADER_TIMEOUT", SettingType::kInteger,
       IntIn(&ServeSettings::header_timeout_s, 1, 3600)},
      {"limits.idle_timeout_s", "LOCRIT_IDLE_TIMEOUT", SettingType::kInteger,
       IntIn(&ServeSettings::idle_timeout_s, 1, 3600)},
      {"storage.synchronous", "LOCRIT_SYNCHRONOUS", SettingType::kString,
       [](ServeSettings& s, const SettingValue& v) -> std::optional<std::string> {
         if (Str(v) == "full") {
           s.durability = Durability::kFull;
         } else if (Str(v) == "relaxed") {
           s.durability = Durability::kRelaxed;
         } else {
           return "must be \"full\" or \"relaxed\"";
         }
         return std::nullopt;
       }},
  };
  return specs;
}

const SettingSpec* FindByKey(std::string_view key) {
  for (const SettingSpec& spec : Specs()) {
    if (spec.key == key) return &spec;
  }
  return nullptr;
}

// GCC 12 with -fsanitize=address reports the inner variant's string and vector as "maybe
// uninitialized" when a SettingValue is moved into the result (a false positive: every path below
// constructs it); -Werror would fail the sanitizer build on it.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// Text from the environment or a flag, read as the spec's type.
std::variant<SettingValue, std::string> FromText(const SettingSpec& spec, const std::string& text) {
  switch (spec.type) {
    case SettingType::kString:
      return SettingValue(text);
    case SettingType::kInteger: {
      int64_t n = 0;
      const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
      if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
        return "must be an integer, got \"" + text + "\"";
      }
      return SettingValue(n);
    }
    case SettingType::kBoolean: {
      std::string lower = text;
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (lower == "1" || lower == "true" || lower == "yes" || lower == "on") {
        return SettingValue(true);
      }
      if (lower == "0" || lower == "false" || lower == "no" || lower == "off" || lower.empty()) {
        return SettingValue(false);
      }
      return "must be true or false (1/0, yes/no, on/off), got \"" + text + "\"";
    }
    case SettingType::kStringList:
      return SettingValue(SplitCommaList(text));
  }
  return std::string("unknown type");
}
#pragma GCC diagnostic pop

// A TOML node read as the spec's type; an error sentence when its type differs.
std::variant<SettingValue, std::string> FromToml(const SettingSpec& spec, const toml::node& node) {
  switch (spec.type) {
    case SettingType::kString:
      if (auto v = node.value_exact<std::string>()) return SettingValue(*v);
      break;
    case SettingType::kInteger:
      if (auto v = node.value_exact<int64_t>()) return SettingValue(*v);
      break;
    case SettingType::kBoolean:
      if (auto v = node.value_exact<bool>()) return SettingValue(*v);
      break;
    case SettingType::kStringList:
      if (const toml::array* array = node.as_array()) {
        std::vector<std::string> out;
        for (const toml::node& item : *array) {
          auto v = item.value_exact<std::string>();
          if (!v) return std::string("must be an array of strings");
          out.push_back(*v);
        }
        return SettingValue(std::move(out));
      }
      break;
  }
  return "must be " + std::string(TypeName(spec.type));
}

// Applies a value read from one source, or returns why it was refused.
std::optional<std::string> ApplyValue(const SettingSpec& spec,
                                      const std::variant<SettingValue, std::string>& value,
                                      ServeSettings* settings) {
  if (auto* message = std::get_if<std::string>(&value)) return *message;
  return spec.apply(*settings, std::get<SettingValue>(value));
}

Status ApplyFile(const std::string& file_name, const std::string& text, ServeSettings* settings) {
  toml::table root;
  try {
    root = toml::parse(text, file_name);
  } catch (const toml::parse_error& error) {
    return InvalidArgumentError(fmt::format("{}:{}:{}: {}", file_name, error.source().begin.line,
                                            error.source().begin.column, error.description()));
  }
  for (const auto& [section_key, section] : root) {
    const std::string section_name(section_key.str());
    const auto line = section.source().begin.line;
    const toml::table* table = section.as_table();
    if (table == nullptr) {
      return InvalidArgumentError(fmt::format(
          "{}:{}: unknown setting \"{}\" (settings live in the sections [server], [access], "
          "[llm], [limits] and [storage])",
          file_name, line, section_name));
    }
    for (const auto& [name_key, node] : *table) {
      const std::string key = section_name + "." + std::string(name_key.str());
      const auto node_line = node.source().begin.line;
      const SettingSpec* spec = FindByKey(key);
      if (spec == nullptr) {
        return InvalidArgumentError(
            fmt::format("{}:{}: unknown setting \"{}\"", file_name, node_line, key));
      }
      if (std::optional<std::string> error = ApplyValue(*spec, FromToml(*spec, node), settings)) {
        return InvalidArgumentError(fmt::format("{}:{}: {} {}", file_name, node_line, key, *error));
      }
    }
  }
  return Status::Ok();
}

}  // namespace

std::vector<std::string> SplitCommaList(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    const size_t begin = item.find_first_not_of(" \t");
    if (begin == std::string::npos) continue;
    const size_t end = item.find_last_not_of(" \t");
    out.push_back(item.substr(begin, end - begin + 1));
  }
  return out;
}

Result<ServeSettings> ResolveSettings(const SettingsSources& sources) {
  ServeSettings settings;
  if (sources.file_text) {
    Status status =
        ApplyFile(sources.file_name.value_or("locrit.toml"), *sources.file_text, &settings);
    if (!status.ok()) return status;
  }
  for (const SettingSpec& spec : Specs()) {
    auto it = sources.env.find(std::string(spec.env));
    if (it == sources.env.end()) continue;
    if (auto error = ApplyValue(spec, FromText(spec, it->second), &settings))
      return InvalidArgumentError(fmt::format("{}: {}", spec.env, *error));
  }
  for (const auto& [key, text] : sources.flags) {
    const SettingSpec* spec = FindByKey(key);
    if (spec == nullptr) return InvalidArgumentError("unknown setting \"" + key + "\"");
    if (auto error = ApplyValue(*spec, FromText(*spec, text), &settings))
      return InvalidArgumentError(fmt::format("{} (flag): {}", key, *error));
  }
  if (settings.llm_provider == "openai" && settings.llm.base_url.empty()) {
    return InvalidArgumentError("llm.url is required when llm.provider is \"openai\"");
  }
  return settings;
}

Status ReadConfigFile(const std::optional<std::string>& explicit_path, SettingsSources* sources) {
  std::string path;
  if (explicit_path && !explicit_path->empty()) {
    path = *explicit_path;
  } else {
    std::error_code ec;
    if (!std::filesystem::is_regular_file("locrit.toml", ec)) return Status::Ok();
    path = "locrit.toml";
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgumentError("cannot read the config file " + path);
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) return InvalidArgumentError("cannot read the config file " + path);
  sources->file_name = path;
  sources->file_text = text.str();
  return Status::Ok();
}

std::map<std::string, std::string> LocritEnvironment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view entry(*e);
    if (entry.rfind("LOCRIT_", 0) != 0) continue;
    const size_t eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    env.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
  }
  return env;
}

}  // namespace locrit

#include "server/api_locrit_fields.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/utf8.h"

namespace locrit {
namespace json = boost::json;
namespace {

constexpr size_t kMaxPublicAddressChars = 2048;

Status WrongType(std::string_view field, std::string_view expected) {
  return InvalidArgumentError(std::string(field) + " must be " + std::string(expected));
}

// Control characters: C0 and DEL; tab, line feed and carriage return allowed in prose.
bool HasControl(std::string_view text, bool prose) {
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (prose && (c == '\t' || c == '\n' || c == '\r')) continue;
    if (u < 0x20 || u == 0x7f) return true;
  }
  return false;
}

// A string field: absent leaves `out` alone. `nullable` fields accept null (clearing them).
// Lengths are checked by ValidateLocritConfig, except where noted by the caller.
Status ReadText(const json::object& o, std::string_view key, std::string_view field, bool prose,
                std::string* out) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return Status::Ok();
  if (!v->is_string()) return WrongType(field, "a string");
  const std::string_view text(v->get_string().data(), v->get_string().size());
  if (!IsValidUtf8(text)) return InvalidArgumentError(std::string(field) + " is not valid UTF-8");
  if (HasControl(text, prose)) {
    return InvalidArgumentError(std::string(field) + " contains a control character");
  }
  out->assign(text);
  return Status::Ok();
}

Status ReadOptionalText(const json::object& o, std::string_view key, std::string_view field,
                        bool prose, std::optional<std::string>* out) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return Status::Ok();
  if (v->is_null()) {
    out->reset();
    return Status::Ok();
  }
  if (!v->is_string()) return WrongType(field, "a string or null");
  std::string text;
  RETURN_IF_ERROR(ReadText(o, key, field, prose, &text));
  *out = std::move(text);
  return Status::Ok();
}

Status ReadBool(const json::object& o, std::string_view key, std::string_view field, bool* out) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return Status::Ok();
  if (!v->is_bool()) return WrongType(field, "a boolean");
  *out = v->get_bool();
  return Status::Ok();
}

Status ReadInt(const json::object& o, std::string_view key, std::string_view field, int64_t min,
               int64_t max, int64_t* out) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return Status::Ok();
  std::optional<int64_t> n;
  if (v->is_int64()) n = v->get_int64();
  if (v->is_uint64() && v->get_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
    n = static_cast<int64_t>(v->get_uint64());
  }
  if (!n && !v->is_uint64()) return WrongType(field, "an integer");
  if (!n || *n < min || *n > max) {
    return InvalidArgumentError(std::string(field) + " must be between " + std::to_string(min) +
                                " and " + std::to_string(max));
  }
  *out = *n;
  return Status::Ok();
}

// An optional nested object ("open_to", "llm", ...): nullptr when absent.
Result<const json::object*> ReadObject(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return static_cast<const json::object*>(nullptr);
  if (!v->is_object()) return WrongType(key, "an object");
  return &v->get_object();
}

// The provider-specific rules: what a turn needs to reach the model server.
Status CheckServable(const LocritConfig& config) {
  if (config.llm.provider == LocritProvider::kRecall) return Status::Ok();
  const std::string_view provider = LocritProviderName(config.llm.provider);
  if (config.model.empty()) {
    return InvalidArgumentError("model is required when llm.provider is " +
                                std::string(provider));
  }
  LlmSettings settings;
  settings.provider =
      config.llm.provider == LocritProvider::kOpenAi ? LlmProvider::kOpenAi : LlmProvider::kOllama;
  settings.base_url = config.llm.url.value_or("");
  settings.model = config.model;
  if (config.llm.provider == LocritProvider::kOpenAi && settings.base_url.empty()) {
    return InvalidArgumentError("llm.url is required when llm.provider is openai");
  }
  if (Status valid = ValidateLlmSettings(settings); !valid.ok()) {
    return InvalidArgumentError("llm.url is not a usable http(s) URL: " + valid.message());
  }
  return Status::Ok();
}

}  // namespace

LocritConfig NewLocritDefaults(const LlmSettings& llm_defaults) {
  LocritConfig config;
  if (!llm_defaults.model.empty()) {
    config.llm.provider = llm_defaults.provider == LlmProvider::kOpenAi ? LocritProvider::kOpenAi
                                                                        : LocritProvider::kOllama;
    if (!llm_defaults.base_url.empty()) config.llm.url = llm_defaults.base_url;
    config.model = llm_defaults.model;
  } else {
    config.llm.provider = LocritProvider::kRecall;
    config.model = "recall";
  }
  return config;
}

Status ApplyLocritFields(const json::object& body, LocritConfig* config) {
  RETURN_IF_ERROR(ReadText(body, "name", "name", false, &config->name));
  RETURN_IF_ERROR(ReadText(body, "description", "description", true, &config->description));
  RETURN_IF_ERROR(
      ReadOptionalText(body, "system_prompt", "system_prompt", true, &config->system_prompt));

  // Aliases first, so that the canonical spelling wins when both are sent.
  const bool model_given = body.contains("model") || body.contains("ollama_model");
  RETURN_IF_ERROR(ReadText(body, "ollama_model", "ollama_model", false, &config->model));
  RETURN_IF_ERROR(ReadText(body, "model", "model", false, &config->model));
  bool url_given = body.contains("ollama_url");
  RETURN_IF_ERROR(ReadOptionalText(body, "ollama_url", "ollama_url", false, &config->llm.url));
  bool provider_given = false;
  ASSIGN_OR_RETURN(const json::object* llm, ReadObject(body, "llm"));
  if (llm != nullptr) {
    if (const json::value* p = llm->if_contains("provider"); p != nullptr) {
      if (!p->is_string()) return WrongType("llm.provider", "\"ollama\", \"openai\" or \"recall\"");
      Result<LocritProvider> provider =
          ParseLocritProvider(std::string_view(p->get_string().data(), p->get_string().size()));
      if (!provider.ok()) {
        return WrongType("llm.provider", "\"ollama\", \"openai\" or \"recall\"");
      }
      config->llm.provider = *provider;
      provider_given = true;
    }
    url_given = url_given || llm->contains("url");
    RETURN_IF_ERROR(ReadOptionalText(*llm, "url", "llm.url", false, &config->llm.url));
  }
  if (!provider_given && config->llm.provider == LocritProvider::kRecall &&
      ((model_given && config->model != "recall") || (url_given && config->llm.url))) {
    config->llm.provider = LocritProvider::kOllama;
  }
  if (config->llm.provider == LocritProvider::kRecall && config->model.empty()) {
    config->model = "recall";
  }
  if (config->llm.provider != LocritProvider::kRecall && !model_given &&
      config->model == "recall") {
    config->model.clear();  // Left from the recall responder: not a model to ask a server for.
  }

  // Empty means none: the form's way of clearing it, like null.
  RETURN_IF_ERROR(ReadOptionalText(body, "embedding_model", "embedding_model", false,
                                   &config->embedding_model));
  if (config->embedding_model && config->embedding_model->empty()) config->embedding_model.reset();

  RETURN_IF_ERROR(ReadBool(body, "active", "active", &config->active));
  RETURN_IF_ERROR(
      ReadOptionalText(body, "public_address", "public_address", false, &config->public_address));
  if (config->public_address &&
      CountCodePoints(*config->public_address) > kMaxPublicAddressChars) {
    return InvalidArgumentError("public_address is longer than 2048 characters");
  }

  ASSIGN_OR_RETURN(const json::object* open_to, ReadObject(body, "open_to"));
  if (open_to != nullptr) {
    LocritOpenTo& t = config->open_to;
    RETURN_IF_ERROR(ReadBool(*open_to, "humans", "open_to.humans", &t.humans));
    RETURN_IF_ERROR(ReadBool(*open_to, "locrits", "open_to.locrits", &t.locrits));
    RETURN_IF_ERROR(ReadBool(*open_to, "invitations", "open_to.invitations", &t.invitations));
    RETURN_IF_ERROR(ReadBool(*open_to, "internet", "open_to.internet", &t.internet));
    RETURN_IF_ERROR(ReadBool(*open_to, "platform", "open_to.platform", &t.platform));
  }
  ASSIGN_OR_RETURN(const json::object* access_to, ReadObject(body, "access_to"));
  if (access_to != nullptr) {
    LocritAccessTo& a = config->access_to;
    RETURN_IF_ERROR(ReadBool(*access_to, "logs", "access_to.logs", &a.logs));
    RETURN_IF_ERROR(
        ReadBool(*access_to, "quick_memory", "access_to.quick_memory", &a.quick_memory));
    RETURN_IF_ERROR(ReadBool(*access_to, "full_memory", "access_to.full_memory", &a.full_memory));
    RETURN_IF_ERROR(ReadBool(*access_to, "llm_info", "access_to.llm_info", &a.llm_info));
  }
  ASSIGN_OR_RETURN(const json::object* memory, ReadObject(body, "memory"));
  if (memory != nullptr) {
    RETURN_IF_ERROR(ReadInt(*memory, "max_messages", "memory.max_messages", 0, INT64_MAX,
                            &config->memory.max_messages));
    int64_t context = config->memory.context_messages;
    RETURN_IF_ERROR(ReadInt(*memory, "context_messages", "memory.context_messages", 0,
                            kMaxContextMessages, &context));
    config->memory.context_messages = static_cast<int>(context);
  }
  return CheckServable(*config);
}

}  // namespace locrit

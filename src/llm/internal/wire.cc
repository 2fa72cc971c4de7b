#include "llm/internal/wire.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
#include <cmath>
#include <utility>

namespace locrit::llm_internal {
namespace json = boost::json;
namespace {

constexpr size_t kMaxQuotedBody = 300;

// A bounded, printable excerpt of upstream text for error messages.
std::string Excerpt(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, kMaxQuotedBody)) {
    out += (static_cast<unsigned char>(c) < 0x20) ? ' ' : c;
  }
  if (text.size() > kMaxQuotedBody) out += "...";
  return out;
}

Result<json::value> ParseJson(std::string_view text, std::string_view what) {
  json::error_code ec;
  json::value v = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec) return LlmError(fmt::format("malformed {}: {}", what, Excerpt(text)));
  return v;
}

const json::value* Field(const json::value& v, std::string_view key) {
  const json::object* o = v.if_object();
  if (o == nullptr) return nullptr;
  return o->if_contains(json::string_view(key.data(), key.size()));
}

std::string StringField(const json::value& v, std::string_view key) {
  const json::value* f = Field(v, key);
  if (f == nullptr || !f->is_string()) return "";
  return std::string(f->get_string());
}

std::optional<int64_t> IntField(const json::value& v, std::string_view key) {
  const json::value* f = Field(v, key);
  if (f == nullptr) return std::nullopt;
  if (f->is_int64()) return f->get_int64();
  if (f->is_uint64()) return static_cast<int64_t>(f->get_uint64());
  return std::nullopt;
}

// An error object inside a stream ({"error": "..."} or {"error": {"message": "..."}}).
std::optional<std::string> StreamError(const json::value& v) {
  const json::value* e = Field(v, "error");
  if (e == nullptr || e->is_null()) return std::nullopt;
  if (e->is_string()) return std::string(e->get_string());
  std::string m = StringField(*e, "message");
  return m.empty() ? json::serialize(*e) : m;
}

json::array Messages(const ChatRequest& request) {
  json::array messages;
  for (const ChatMessage& m : request.messages) {
    messages.push_back(json::object{{"role", m.role}, {"content", m.content}});
  }
  return messages;
}

Result<std::vector<float>> Vector(const json::value& v) {
  const json::array* a = v.if_array();
  if (a == nullptr) return LlmError("an embedding is not an array of numbers");
  std::vector<float> out;
  out.reserve(a->size());
  for (const json::value& x : *a) {
    if (!x.is_number()) return LlmError("an embedding is not an array of numbers");
    const double d = x.to_number<double>();
    if (!std::isfinite(d)) return LlmError("an embedding holds a non-finite number");
    out.push_back(static_cast<float>(d));
  }
  return out;
}

Status CheckCount(const Embeddings& e, size_t inputs) {
  if (e.vectors.size() != inputs) {
    return LlmError(
        fmt::format("the server returned {} embeddings for {} inputs", e.vectors.size(), inputs));
  }
  for (const auto& v : e.vectors) {
    if (v.empty() || v.size() != e.vectors.front().size()) {
      return LlmError("the server returned embeddings of differing or zero dimension");
    }
  }
  return Status::Ok();
}

// A decoder of line-framed streams: Line() for each line, the last one even without its newline,
// then End().
class LineDecoder : public ChatDecoder {
 public:
  using ChatDecoder::ChatDecoder;

  Status Feed(std::string_view bytes, const DeltaFn& on_delta) final {
    return SplitLines(bytes, [&](std::string_view line) { return Line(line, on_delta); });
  }

  Status Finish(const DeltaFn& on_delta) final {
    if (!pending_.empty()) {
      std::string last = std::move(pending_);
      pending_.clear();
      RETURN_IF_ERROR(Line(last, on_delta));
    }
    return End(on_delta);
  }

 protected:
  virtual Status Line(std::string_view line, const DeltaFn& on_delta) = 0;
  virtual Status End(const DeltaFn& on_delta) = 0;
};

class OllamaDecoder final : public LineDecoder {
 public:
  using LineDecoder::LineDecoder;

 private:
  Status End(const DeltaFn&) override {
    if (!done_) {
      return LlmError(
          fmt::format("the reply stream ended without its final \"done\" object after "
                      "{} bytes of text",
                      reply_.text.size()));
    }
    return Status::Ok();
  }

  Status Line(std::string_view line, const DeltaFn& on_delta) override {
    if (line.find_first_not_of(" \t\r") == std::string_view::npos || done_) return Status::Ok();
    ASSIGN_OR_RETURN(json::value v, ParseJson(line, "line in the reply stream"));
    if (!v.is_object()) return LlmError("a reply stream line is not a JSON object");
    if (auto error = StreamError(v)) return LlmError("the server reported: " + *error);
    if (std::string model = StringField(v, "model"); !model.empty()) reply_.model = model;
    if (const json::value* message = Field(v, "message")) {
      RETURN_IF_ERROR(Emit(StringField(*message, "content"), on_delta));
    }
    const json::value* done = Field(v, "done");
    if (done != nullptr && done->is_bool() && done->get_bool()) {
      done_ = true;
      reply_.finish_reason = StringField(v, "done_reason");
      reply_.prompt_tokens = IntField(v, "prompt_eval_count");
      reply_.completion_tokens = IntField(v, "eval_count");
    }
    return Status::Ok();
  }

  bool done_ = false;
};

// Reads the fields of one OpenAI completion object (a stream chunk or a whole reply).
void ReadUsageAndModel(const json::value& v, ChatReply& reply) {
  if (std::string model = StringField(v, "model"); !model.empty()) reply.model = model;
  if (const json::value* usage = Field(v, "usage"); usage != nullptr && usage->is_object()) {
    reply.prompt_tokens = IntField(*usage, "prompt_tokens");
    reply.completion_tokens = IntField(*usage, "completion_tokens");
  }
}

const json::value* FirstChoice(const json::value& v) {
  const json::value* choices = Field(v, "choices");
  if (choices == nullptr || !choices->is_array() || choices->get_array().empty()) return nullptr;
  return &choices->get_array().front();
}

class OpenAiSseDecoder final : public LineDecoder {
 public:
  using LineDecoder::LineDecoder;

 private:
  Status End(const DeltaFn& on_delta) override {
    RETURN_IF_ERROR(Line("", on_delta));  // Dispatches an event not followed by a blank line.
    // Some servers end with a finish_reason chunk and no [DONE]; the body still ended cleanly.
    if (!done_ && reply_.finish_reason.empty()) {
      return LlmError(
          fmt::format("the reply stream ended without \"data: [DONE]\" after {} "
                      "bytes of text",
                      reply_.text.size()));
    }
    return Status::Ok();
  }

  // SSE: "field: value" lines; a blank line dispatches the event; ':' starts a comment.
  Status Line(std::string_view line, const DeltaFn& on_delta) override {
    if (done_) return Status::Ok();
    if (line.empty()) {
      if (!has_data_) {
        event_.clear();
        return Status::Ok();
      }
      std::string data = std::move(data_);
      data_.clear();
      has_data_ = false;
      std::string event = std::move(event_);
      event_.clear();
      return Event(event, data, on_delta);
    }
    if (line.front() == ':') return Status::Ok();
    const size_t colon = line.find(':');
    std::string_view field = line.substr(0, colon);
    std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (field == "data") {
      if (has_data_) data_ += '\n';
      data_ += value;
      has_data_ = true;
    } else if (field == "event") {
      event_ = std::string(value);
    }
    return Status::Ok();
  }

  Status Event(std::string_view event, std::string_view data, const DeltaFn& on_delta) {
    if (data == "[DONE]") {
      done_ = true;
      return Status::Ok();
    }
    ASSIGN_OR_RETURN(json::value v, ParseJson(data, "event in the reply stream"));
    if (auto error = StreamError(v)) return LlmError("the server reported: " + *error);
    if (event == "error") return LlmError("the server reported: " + Excerpt(data));
    if (!v.is_object()) return LlmError("a reply stream event is not a JSON object");
    ReadUsageAndModel(v, reply_);
    if (const json::value* choice = FirstChoice(v)) {
      if (const json::value* delta = Field(*choice, "delta")) {
        RETURN_IF_ERROR(Emit(StringField(*delta, "content"), on_delta));
      }
      if (std::string reason = StringField(*choice, "finish_reason"); !reason.empty()) {
        reply_.finish_reason = reason;
      }
    }
    return Status::Ok();
  }

  bool done_ = false;
  bool has_data_ = false;
  std::string data_;
  std::string event_;
};

class OpenAiOneShotDecoder final : public ChatDecoder {
 public:
  using ChatDecoder::ChatDecoder;

  Status Feed(std::string_view bytes, const DeltaFn&) override {
    if (pending_.size() + bytes.size() > max_line_bytes_) {
      return LlmError(
          fmt::format("the reply exceeds max_response_bytes ({} bytes)", max_line_bytes_));
    }
    pending_ += bytes;
    return Status::Ok();
  }

  Status Finish(const DeltaFn& on_delta) override {
    ASSIGN_OR_RETURN(json::value v, ParseJson(pending_, "reply"));
    if (auto error = StreamError(v)) return LlmError("the server reported: " + *error);
    const json::value* choice = FirstChoice(v);
    const json::value* message = choice == nullptr ? nullptr : Field(*choice, "message");
    if (message == nullptr) return LlmError("the reply has no choices[0].message");
    ReadUsageAndModel(v, reply_);
    reply_.finish_reason = StringField(*choice, "finish_reason");
    return Emit(StringField(*message, "content"), on_delta);
  }
};

}  // namespace

Result<ParsedUrl> ParseBaseUrl(std::string_view text) {
  auto parsed = boost::urls::parse_absolute_uri(boost::core::string_view(text.data(), text.size()));
  if (!parsed) return InvalidArgumentError(fmt::format("base_url \"{}\" is not a URL", text));
  const boost::urls::url_view& u = *parsed;
  ParsedUrl out;
  const std::string scheme(u.scheme());
  if (scheme == "https") {
    out.tls = true;
  } else if (scheme != "http") {
    return InvalidArgumentError(
        fmt::format("base_url \"{}\" must start with http:// or https://", text));
  }
  if (u.has_userinfo() || u.has_query() || u.has_fragment()) {
    return InvalidArgumentError(
        fmt::format("base_url \"{}\" may not hold user info, a query or a fragment", text));
  }
  std::string host(u.encoded_host());
  if (host.empty()) return InvalidArgumentError(fmt::format("base_url \"{}\" has no host", text));
  out.host_header = host;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  out.host = host;
  if (u.has_port() && !u.port().empty()) {
    out.port = std::string(u.port());
    out.host_header += ":" + out.port;
  } else {
    out.port = out.tls ? "443" : "80";
  }
  out.base_path = std::string(u.encoded_path());
  while (!out.base_path.empty() && out.base_path.back() == '/') out.base_path.pop_back();
  return out;
}

std::string OpenAiPath(const std::string& base_path, std::string_view api_path) {
  constexpr std::string_view kV1 = "/v1";
  const bool base_has_v1 = base_path.size() >= kV1.size() &&
                           base_path.compare(base_path.size() - kV1.size(), kV1.size(), kV1) == 0;
  if (base_has_v1 && api_path.substr(0, kV1.size()) == kV1) api_path.remove_prefix(kV1.size());
  return base_path + std::string(api_path);
}

std::string OllamaChatBody(const ChatRequest& request, const std::string& model) {
  json::object body{{"model", model}, {"messages", Messages(request)}, {"stream", true}};
  json::object options;
  if (request.temperature) options["temperature"] = *request.temperature;
  if (request.max_tokens) options["num_predict"] = *request.max_tokens;
  if (!options.empty()) body["options"] = std::move(options);
  return json::serialize(body);
}

std::string OpenAiChatBody(const ChatRequest& request, const std::string& model) {
  json::object body{{"model", model},
                    {"messages", Messages(request)},
                    {"stream", true},
                    {"stream_options", json::object{{"include_usage", true}}}};
  if (request.temperature) body["temperature"] = *request.temperature;
  if (request.max_tokens) body["max_tokens"] = *request.max_tokens;
  return json::serialize(body);
}

std::string EmbedBody(const std::vector<std::string>& inputs, const std::string& model) {
  json::array input;
  for (const std::string& s : inputs) input.emplace_back(s);
  return json::serialize(json::object{{"model", model}, {"input", std::move(input)}});
}

Status ChatDecoder::Emit(std::string_view text, const DeltaFn& on_delta) {
  if (text.empty()) return Status::Ok();
  if (reply_.text.size() + text.size() > max_reply_bytes_) {
    return LlmError(fmt::format("the reply exceeds max_reply_bytes ({} bytes)", max_reply_bytes_));
  }
  reply_.text += text;
  on_delta(text);
  return Status::Ok();
}

Status ChatDecoder::SplitLines(std::string_view bytes,
                               const std::function<Status(std::string_view)>& line) {
  while (!bytes.empty()) {
    const size_t nl = bytes.find('\n');
    const std::string_view piece = bytes.substr(0, nl);
    if (pending_.size() + piece.size() > max_line_bytes_) {
      return LlmError(fmt::format("a reply stream line exceeds {} bytes", max_line_bytes_));
    }
    if (nl == std::string_view::npos) {
      pending_ += piece;
      return Status::Ok();
    }
    std::string_view complete = piece;
    if (!pending_.empty()) {
      pending_ += piece;
      complete = pending_;
    }
    if (!complete.empty() && complete.back() == '\r') complete.remove_suffix(1);
    Status s = line(complete);
    pending_.clear();
    RETURN_IF_ERROR(s);
    bytes.remove_prefix(nl + 1);
  }
  return Status::Ok();
}

std::unique_ptr<ChatDecoder> NewOllamaDecoder(size_t max_reply_bytes, size_t max_line_bytes) {
  return std::make_unique<OllamaDecoder>(max_reply_bytes, max_line_bytes);
}
std::unique_ptr<ChatDecoder> NewOpenAiSseDecoder(size_t max_reply_bytes, size_t max_line_bytes) {
  return std::make_unique<OpenAiSseDecoder>(max_reply_bytes, max_line_bytes);
}
std::unique_ptr<ChatDecoder> NewOpenAiOneShotDecoder(size_t max_reply_bytes,
                                                     size_t max_body_bytes) {
  return std::make_unique<OpenAiOneShotDecoder>(max_reply_bytes, max_body_bytes);
}

Result<Embeddings> ParseOllamaEmbeddings(std::string_view body, size_t inputs) {
  ASSIGN_OR_RETURN(json::value v, ParseJson(body, "embeddings reply"));
  const json::value* list = Field(v, "embeddings");
  if (list == nullptr || !list->is_array())
    return LlmError("the reply has no \"embeddings\" array");
  Embeddings out;
  out.model = StringField(v, "model");
  for (const json::value& e : list->get_array()) {
    ASSIGN_OR_RETURN(std::vector<float> vec, Vector(e));
    out.vectors.push_back(std::move(vec));
  }
  RETURN_IF_ERROR(CheckCount(out, inputs));
  return out;
}

Result<Embeddings> ParseOpenAiEmbeddings(std::string_view body, size_t inputs) {
  ASSIGN_OR_RETURN(json::value v, ParseJson(body, "embeddings reply"));
  const json::value* data = Field(v, "data");
  if (data == nullptr || !data->is_array()) return LlmError("the reply has no \"data\" array");
  Embeddings out;
  out.model = StringField(v, "model");
  out.vectors.resize(data->get_array().size());
  for (const json::value& item : data->get_array()) {
    const std::optional<int64_t> index = IntField(item, "index");
    if (!index || *index < 0 || static_cast<size_t>(*index) >= out.vectors.size() ||
        !out.vectors[static_cast<size_t>(*index)].empty()) {
      return LlmError("an embedding in the reply has a missing or wrong index");
    }
    const json::value* e = Field(item, "embedding");
    if (e == nullptr) return LlmError("an item of the reply has no \"embedding\"");
    ASSIGN_OR_RETURN(out.vectors[static_cast<size_t>(*index)], Vector(*e));
  }
  RETURN_IF_ERROR(CheckCount(out, inputs));
  return out;
}

Result<std::vector<ModelInfo>> ParseOllamaModels(std::string_view body) {
  ASSIGN_OR_RETURN(json::value v, ParseJson(body, "model list"));
  const json::value* models = Field(v, "models");
  if (models == nullptr || !models->is_array())
    return LlmError("the reply has no \"models\" array");
  std::vector<ModelInfo> out;
  for (const json::value& m : models->get_array()) {
    ModelInfo info;
    info.name = StringField(m, "name");
    if (info.name.empty()) info.name = StringField(m, "model");
    info.size_bytes = IntField(m, "size");
    if (!info.name.empty()) out.push_back(std::move(info));
  }
  return out;
}

Result<std::vector<ModelInfo>> ParseOpenAiModels(std::string_view body) {
  ASSIGN_OR_RETURN(json::value v, ParseJson(body, "model list"));
  const json::value* data = Field(v, "data");
  if (data == nullptr || !data->is_array()) return LlmError("the reply has no \"data\" array");
  std::vector<ModelInfo> out;
  for (const json::value& m : data->get_array()) {
    ModelInfo info;
    info.name = StringField(m, "id");
    if (!info.name.empty()) out.push_back(std::move(info));
  }
  return out;
}

std::string UpstreamErrorMessage(std::string_view body) {
  json::error_code ec;
  json::value v = json::parse(json::string_view(body.data(), body.size()), ec);
  if (!ec) {
    if (auto error = StreamError(v)) return Excerpt(*error);
    if (std::string m = StringField(v, "message"); !m.empty()) return Excerpt(m);
  }
  return Excerpt(body);
}

Status StatusForHttpError(int http_status, std::string_view body, std::string_view what) {
  std::string upstream = UpstreamErrorMessage(body);
  std::string message = fmt::format("{} answered HTTP {}", what, http_status);
  if (!upstream.empty()) message += ": " + upstream;
  if (http_status == 408) return DeadlineExceededError(std::move(message));
  if (http_status == 429) return ResourceExhaustedError(std::move(message));
  if (http_status >= 400 && http_status < 500) return InvalidArgumentError(std::move(message));
  return LlmError(std::move(message));
}

bool IsRetryableHttpStatus(int http_status) {
  return http_status == 429 || http_status == 500 || http_status == 502 || http_status == 503 ||
         http_status == 504;
}

}  // namespace locrit::llm_internal

#include "server/api.h"

#include <boost/json.hpp>
#include <ctime>
#include <mutex>
#include <optional>
#include <utility>

#include "base/utf8.h"
#include "server/http_errors.h"

namespace locrit {
namespace json = boost::json;

namespace {

constexpr size_t kMaxIdChars = 128;

HttpResponse JsonResponse(int status, const json::object& body) {
  HttpResponse response;
  response.status = status;
  response.body = json::serialize(body);
  return response;
}

json::value OptionalString(const std::optional<std::string>& value) {
  if (!value) return nullptr;
  return json::string(*value);
}

json::object LocritObject(const LocritConfig& c) {
  json::object o;
  o["name"] = c.name;
  o["description"] = c.description;
  o["system_prompt"] = OptionalString(c.system_prompt);
  o["model"] = c.model;
  o["llm"] = json::object{{"provider", LocritProviderName(c.llm.provider)},
                          {"url", OptionalString(c.llm.url)}};
  o["active"] = c.active;
  o["public_address"] = OptionalString(c.public_address);
  o["open_to"] = json::object{{"humans", c.open_to.humans},
                              {"locrits", c.open_to.locrits},
                              {"invitations", c.open_to.invitations},
                              {"internet", c.open_to.internet},
                              {"platform", c.open_to.platform}};
  o["access_to"] = json::object{{"logs", c.access_to.logs},
                                {"quick_memory", c.access_to.quick_memory},
                                {"full_memory", c.access_to.full_memory},
                                {"llm_info", c.access_to.llm_info}};
  o["memory"] = json::object{{"max_messages", c.memory.max_messages},
                             {"context_messages", c.memory.context_messages}};
  o["created_at"] = FormatRfc3339Millis(c.created_at);
  o["updated_at"] = FormatRfc3339Millis(c.updated_at);
  return o;
}

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> out;
  size_t start = 1;  // Past the leading '/'.
  while (start <= path.size()) {
    const size_t slash = path.find('/', start);
    const size_t end = slash == std::string_view::npos ? path.size() : slash;
    out.push_back(path.substr(start, end - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return out;
}

// "application/json", any case, with or without parameters.
bool IsJsonContentType(std::string_view value) {
  const size_t semi = value.find(';');
  std::string_view type = value.substr(0, semi);
  while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) type.remove_suffix(1);
  while (!type.empty() && (type.front() == ' ' || type.front() == '\t')) type.remove_prefix(1);
  constexpr std::string_view kJson = "application/json";
  if (type.size() != kJson.size()) return false;
  for (size_t i = 0; i < type.size(); ++i) {
    char c = type[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kJson[i]) return false;
  }
  return true;
}

// The host part of a Host header: "localhost:8000" -> "localhost", "[::1]:80" -> "[::1]".
std::string_view HostName(std::string_view host) {
  if (!host.empty() && host.front() == '[') {
    const size_t close = host.find(']');
    return close == std::string_view::npos ? host : host.substr(0, close + 1);
  }
  return host.substr(0, host.find(':'));
}

bool EqualsIgnoringAsciiCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// A parsed chat body: {message, session_id?, user_id?, conversation_id?}.
struct ChatBody {
  std::string message;
  std::string session_id;
  std::string user_id;
};

// Reads an optional string field: absent or null leave `out` empty; another type is an error.
std::optional<HttpError> OptionalStringField(const json::object& body, std::string_view name,
                                             size_t max_chars, std::string* out) {
  const json::value* v = body.if_contains(name);
  if (v == nullptr || v->is_null()) return std::nullopt;
  if (!v->is_string()) {
    return HttpError{400, "invalid_argument", std::string(name) + " must be a string"};
  }
  const json::string& s = v->get_string();
  if (CountCodePoints(std::string_view(s.data(), s.size())) > max_chars) {
    return HttpError{400, "invalid_argument",
                     std::string(name) + " is longer than " + std::to_string(max_chars) +
                         " characters"};
  }
  for (const char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return HttpError{400, "invalid_argument",
                       std::string(name) + " contains a control character"};
    }
  }
  out->assign(s.data(), s.size());
  return std::nullopt;
}

std::variant<ChatBody, HttpError> ParseChatBody(const HttpRequest& request,
                                                size_t max_message_chars) {
  if (!IsJsonContentType(request.content_type)) {
    return UnsupportedMediaTypeError("the body must be JSON (Content-Type: application/json)");
  }
  if (!IsValidUtf8(request.body)) {
    return HttpError{400, "invalid_argument", "the body is not valid UTF-8"};
  }
  boost::system::error_code ec;
  json::value parsed = json::parse(request.body, ec);
  if (ec) return HttpError{400, "invalid_argument", "the body is not valid JSON: " + ec.message()};
  if (!parsed.is_object()) {
    return HttpError{400, "invalid_argument", "the body must be a JSON object"};
  }
  const json::object& body = parsed.get_object();
  ChatBody out;
  const json::value* message = body.if_contains("message");
  if (message == nullptr || message->is_null()) {
    return HttpError{400, "invalid_argument", "message is required"};
  }
  if (!message->is_string()) return HttpError{400, "invalid_argument", "message must be a string"};
  out.message.assign(message->get_string().data(), message->get_string().size());
  if (CountCodePoints(out.message) > max_message_chars) {
    return PayloadTooLargeError("message is longer than " + std::to_string(max_message_chars) +
                                " characters");
  }
  if (auto e = OptionalStringField(body, "session_id", kMaxIdChars, &out.session_id)) return *e;
  if (auto e = OptionalStringField(body, "user_id", kMaxIdChars, &out.user_id)) return *e;
  std::string ignored;  // Conversations arrive with their own slice; the type is checked now.
  if (auto e = OptionalStringField(body, "conversation_id", kMaxIdChars, &ignored)) return *e;
  return out;
}

std::string SseEvent(const json::object& data) {
  return "data: " + json::serialize(data) + "\n\n";
}

json::object DoneEvent(const TurnResult& result) {
  return json::object{{"done", true},
                      {"session_id", result.session_id},
                      {"user_message_id", result.user_message_id},
                      {"assistant_message_id", result.assistant_message_id},
                      {"model", result.model},
                      {"timestamp", FormatRfc3339Millis(result.timestamp)}};
}

json::object ErrorEvent(const HttpError& error) {
  return json::object{{"error", error.message}, {"code", error.code}, {"done", true}};
}

HttpResponse TurnErrorResponse(const Status& status, const TurnResult& result) {
  const HttpError error = ErrorForStatus(status);
  json::object body{{"success", false}, {"error", error.message}, {"code", error.code}};
  if (!result.user_message_id.empty()) {
    body["user_message_id"] = result.user_message_id;
    body["session_id"] = result.session_id;
  }
  return JsonResponse(error.status, body);
}

}  // namespace

std::string FormatRfc3339Millis(int64_t unix_millis) {
  const std::time_t seconds = static_cast<std::time_t>(unix_millis / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[40];
  const size_t n = std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &utc);
  char millis[8];
  std::snprintf(millis, sizeof(millis), ".%03dZ", static_cast<int>(unix_millis % 1000));
  return std::string(text, n) + millis;
}

std::optional<std::string> PercentDecode(std::string_view segment) {
  std::string out;
  out.reserve(segment.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < segment.size(); ++i) {
    if (segment[i] != '%') {
      out += segment[i];
      continue;
    }
    if (i + 2 >= segment.size()) return std::nullopt;
    const int hi = hex(segment[i + 1]);
    const int lo = hex(segment[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

Api::Api(ApiOptions options) : options_(std::move(options)) {}

ChatLocrit Api::ChatLocritOf(const LocritConfig& locrit, const LlmSettings& defaults) {
  ChatLocrit out;
  out.slug = locrit.slug;
  out.name = locrit.name;
  out.description = locrit.description;
  out.system_prompt = locrit.system_prompt.value_or("");
  out.context_messages = locrit.memory.context_messages;
  out.max_messages = locrit.memory.max_messages;
  if (locrit.llm.provider != LocritProvider::kRecall) {
    LlmSettings llm = defaults;
    llm.provider = locrit.llm.provider == LocritProvider::kOpenAi ? LlmProvider::kOpenAi
                                                                   : LlmProvider::kOllama;
    llm.base_url = locrit.llm.url.value_or("");
    llm.model = locrit.model;
    out.llm = std::move(llm);
  }
  return out;
}

void Api::Handle(const HttpRequest& request, std::shared_ptr<Responder> responder) {
  auto fail = [&](const HttpError& error, std::string allow = {}) {
    HttpResponse response = ErrorResponse(error);
    if (!allow.empty()) response.headers.emplace_back("Allow", std::move(allow));
    responder->Send(std::move(response));
  };

  if (!options_.allowed_hosts.empty() && !request.host.empty()) {
    const std::string_view host = HostName(request.host);
    bool allowed = false;
    for (const std::string& h : options_.allowed_hosts) allowed |= EqualsIgnoringAsciiCase(h, host);
    if (!allowed) {
      return fail(ForbiddenError(
          "this server runs in local mode and only answers requests for localhost, 127.0.0.1 "
          "or [::1]"));
    }
  }

  std::string_view target = request.target;
  const std::string_view path = target.substr(0, target.find('?'));
  if (path.empty() || path.front() != '/') {
    return fail({400, "invalid_argument", "the request target must be an absolute path"});
  }
  const std::vector<std::string_view> raw = SplitPath(path);
  std::vector<std::string> seg;
  for (const std::string_view s : raw) {
    std::optional<std::string> decoded = PercentDecode(s);
    if (!decoded) return fail({400, "invalid_argument", "malformed percent-encoding in the path"});
    seg.push_back(std::move(*decoded));
  }
  const bool get = request.method == "GET";
  const bool post = request.method == "POST";
  auto wrong_method = [&](const char* allow) {
    fail(MethodNotAllowedError(request.method + " is not allowed on this path (allowed: " +
                               allow + ")"),
         allow);
  };

  // Operations.
  if (seg.size() == 1 && (seg[0] == "health" || seg[0] == "healthz")) {
    if (!get) return wrong_method("GET");
    return responder->Send(JsonResponse(
        200, {{"status", "healthy"}, {"service", "locrit"}, {"version", options_.version}}));
  }
  if (seg.size() == 1 && seg[0] == "readyz") {
    if (!get) return wrong_method("GET");
    if (draining()) return fail({503, "unavailable", "the server is shutting down"});
    return responder->Send(JsonResponse(200, {{"status", "ready"}}));
  }

  // Locrits.
  if (seg.size() >= 2 && seg[0] == "api" && seg[1] == "locrits") {
    if (seg.size() == 2) {
      if (!get) return wrong_method("GET");
      json::array list;
      for (const LocritConfig& c : options_.registry->List()) list.push_back(LocritObject(c));
      const size_t count = list.size();
      return responder->Send(JsonResponse(
          200, {{"success", true}, {"locrits", std::move(list)}, {"count", count}}));
    }
    const bool is_config = seg.size() == 3 || (seg.size() == 4 && seg[3] == "config");
    const bool is_chat = seg.size() == 4 && seg[3] == "chat";
    const bool is_stream = seg.size() == 5 && seg[3] == "chat" && seg[4] == "stream";
    if (!is_config && !is_chat && !is_stream) {
      return fail({404, "not_found", "no such path: " + std::string(path)});
    }
    if (is_config && !get) return wrong_method("GET");
    if ((is_chat || is_stream) && !post) return wrong_method("POST");
    Result<LocritConfig> locrit = options_.registry->Get(seg[2]);
    if (!locrit.ok()) return fail(ErrorForStatus(locrit.status()));
    if (is_config) {
      return responder->Send(
          JsonResponse(200, {{"success", true}, {"locrit", LocritObject(*locrit)}}));
    }
    return Chat(request, *locrit, is_stream, std::move(responder));
  }

  return fail({404, "not_found", "no such path: " + std::string(path)});
}

void Api::Chat(const HttpRequest& request, const LocritConfig& locrit, bool stream,
               std::shared_ptr<Responder> responder) {
  auto parsed = ParseChatBody(request, options_.max_message_chars);
  if (auto* error = std::get_if<HttpError>(&parsed)) {
    return responder->Send(ErrorResponse(*error));
  }
  if (!locrit.active) {
    return responder->Send(ErrorResponse(ForbiddenError("Locrit " + locrit.name + " is inactive")));
  }
  if (draining()) {
    return responder->Send(ErrorResponse({503, "unavailable", "the server is shutting down"}));
  }
  ChatBody body = std::move(std::get<ChatBody>(parsed));
  TurnRequest turn;
  turn.message = std::move(body.message);
  turn.session_id = std::move(body.session_id);
  turn.user_id = std::move(body.user_id);

  // What one turn shares between the sink and the completion (called on ChatService threads,
  // never concurrently, but possibly on different threads).
  struct TurnState {
    std::mutex mu;
    bool started = false;  // GUARDED_BY(mu): the stream's headers were sent.
    bool client_gone = false;  // GUARDED_BY(mu)
    bool finished = false;     // GUARDED_BY(mu): done ran.
    std::shared_ptr<TurnHandle> handle;  // GUARDED_BY(mu)
  };
  auto state = std::make_shared<TurnState>();
  const std::string locrit_name = locrit.name;
  ChatService::DeltaSink sink;
  if (stream) {
    sink = [state, responder](std::string_view delta) {
      std::shared_ptr<TurnHandle> cancel;
      {
        std::lock_guard lock(state->mu);
        if (state->client_gone) return;
        if (!state->started) {
          state->started = true;
          responder->StartStream(200, "text/event-stream");
        }
        if (!responder->Write(SseEvent({{"chunk", delta}, {"done", false}}))) {
          state->client_gone = true;
          cancel = state->handle;
        }
      }
      if (cancel) cancel->Cancel();
    };
  } else {
    sink = [](std::string_view) {};
  }
  auto done = [this, state, responder, stream, locrit_name](Status status, TurnResult result) {
    std::lock_guard lock(state->mu);
    state->finished = true;
    state->handle.reset();  // Breaks the cycle handle -> callbacks -> state.
    if (stream && state->started) {
      if (status.ok()) {
        responder->Write(SseEvent(DoneEvent(result)));
      } else {
        json::object event = ErrorEvent(ErrorForStatus(status));
        if (!result.user_message_id.empty()) event["user_message_id"] = result.user_message_id;
        responder->Write(SseEvent(event));
      }
      responder->End();
    } else if (stream && status.ok()) {
      // An empty reply: the stream is only its final event.
      responder->StartStream(200, "text/event-stream");
      responder->Write(SseEvent(DoneEvent(result)));
      responder->End();
    } else if (!status.ok()) {
      responder->Send(TurnErrorResponse(status, result));
    } else {
      responder->Send(JsonResponse(200, {{"success", true},
                                         {"response", result.response},
                                         {"locrit_name", locrit_name},
                                         {"model", result.model},
                                         {"session_id", result.session_id},
                                         {"user_message_id", result.user_message_id},
                                         {"assistant_message_id", result.assistant_message_id},
                                         {"timestamp", FormatRfc3339Millis(result.timestamp)}}));
    }
    turns_in_flight_.fetch_sub(1);
  };
  turns_in_flight_.fetch_add(1);
  std::shared_ptr<TurnHandle> handle =
      options_.chat->Turn(ChatLocritOf(locrit, options_.llm_defaults), std::move(turn),
                          std::move(sink), std::move(done));
  {
    std::lock_guard lock(state->mu);
    if (state->finished || !handle) return;
    if (!state->client_gone) {
      state->handle = std::move(handle);
      return;
    }
  }
  handle->Cancel();  // The client left before the handle existed.
}

}  // namespace locrit

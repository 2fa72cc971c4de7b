#include "server/api.h"

#include <utility>

namespace locrit {
namespace json = boost::json;

void Route::WrongMethod(std::string_view allow) const {
  HttpResponse response = ErrorResponse(MethodNotAllowedError(
      request.method + " is not allowed on this path (allowed: " + std::string(allow) + ")"));
  response.headers.emplace_back("Allow", std::string(allow));
  Send(std::move(response));
}

void Route::NotFound() const { Fail({404, "not_found", "no such path: " + std::string(path)}); }

bool Route::RefuseUnlessOperator() const {
  if (caller.is_operator) return false;
  // RFC 6750: a missing token gets the bare challenge, a wrong one says so.
  HttpResponse response = ErrorResponse(UnauthorizedError(
      caller.presented_wrong_token
          ? "this path is for the operator and the token sent is not an admin token"
          : "this path is for the operator: send \"Authorization: Bearer <admin token>\""));
  response.headers.emplace_back("WWW-Authenticate", caller.presented_wrong_token
                                                        ? R"(Bearer error="invalid_token")"
                                                        : "Bearer");
  Send(std::move(response));
  return true;
}

Api::Api(ApiOptions options) : options_(std::move(options)), access_(options_.access) {
  ws_.registry = options_.registry;
  ws_.chat = options_.chat;
  ws_.conversations = options_.conversations;
  ws_.max_message_chars = options_.max_message_chars;
  ws_.llm_defaults = options_.llm_defaults;
  ws_.turns_in_flight = &turns_in_flight_;
  ws_.draining = [this] { return draining(); };
  ws_.chat_locrit = [this](const LocritConfig& locrit) {
    return ChatLocritOf(locrit, options_.llm_defaults);
  };
}

std::variant<std::shared_ptr<WsSession>, HttpError> Api::OpenWebSocket(
    const HttpRequest& upgrade, std::shared_ptr<WsSink> sink) {
  std::variant<Caller, HttpError> caller = access_.Identify(upgrade);
  if (auto* error = std::get_if<HttpError>(&caller)) return *error;
  if (!std::get<Caller>(caller).is_operator) {
    return UnauthorizedError(
        "the WebSocket is for the operator: send \"Authorization: Bearer <admin token>\" or "
        "?token=<admin token>");
  }
  if (draining()) return HttpError{503, "unavailable", "the server is shutting down"};
  return std::make_shared<WsSession>(&ws_, std::move(sink));
}

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
    llm.embedding_model = locrit.embedding_model.value_or("");
    out.llm = std::move(llm);
  }
  return out;
}

std::optional<EmbeddingTarget> Api::EmbeddingTargetFor(const LocritConfig& locrit) const {
  if (options_.llm == nullptr) return std::nullopt;
  return ChatService::EmbeddingTargetOf(ChatLocritOf(locrit, options_.llm_defaults));
}

HttpResponse Api::MetricsResponse() const {
  PrometheusText text;
  options_.metrics->Write(text);
  text.Family("locrit_chat_turns_in_flight", "gauge", "Chat turns started and not yet answered.");
  text.Sample("locrit_chat_turns_in_flight", {}, TurnsInFlight());
  HttpResponse response;
  response.content_type = std::string(PrometheusText::kContentType);
  response.body = text.Take();
  return response;
}

void Api::Handle(const HttpRequest& request, std::shared_ptr<Responder> responder) {
  std::variant<Caller, HttpError> caller = access_.Identify(request);
  if (auto* error = std::get_if<HttpError>(&caller)) return responder->Send(ErrorResponse(*error));

  const std::string_view target = request.target;
  const std::string_view path = target.substr(0, target.find('?'));
  if (path.empty() || path.front() != '/') {
    return responder->Send(
        ErrorResponse({400, "invalid_argument", "the request target must be an absolute path"}));
  }
  std::optional<std::vector<std::string>> seg = DecodePathSegments(path);
  if (!seg) {
    return responder->Send(
        ErrorResponse({400, "invalid_argument", "malformed percent-encoding in the path"}));
  }
  const Route route{request, path, std::move(*seg), std::get<Caller>(caller), std::move(responder)};
  const std::vector<std::string>& s = route.seg;
  const bool get = request.method == "GET";

  // Operations: open to every caller.
  if (s.size() == 1 && (s[0] == "health" || s[0] == "healthz")) {
    if (!get) return route.WrongMethod("GET");
    return route.Send(JsonResponse(
        200, {{"status", "healthy"}, {"service", "locrit"}, {"version", options_.version}}));
  }
  if (s.size() == 1 && s[0] == "readyz") {
    if (!get) return route.WrongMethod("GET");
    if (draining()) return route.Fail({503, "unavailable", "the server is shutting down"});
    return route.Send(JsonResponse(200, {{"status", "ready"}}));
  }

  if (s.size() == 1 && s[0] == "ws") {
    // Upgrades never reach Handle (the server hands them to OpenWebSocket).
    if (!get) return route.WrongMethod("GET");
    return route.Fail({400, "invalid_argument", "GET /ws expects a WebSocket upgrade"});
  }

  if (s.size() == 1 && s[0] == "metrics" && options_.metrics != nullptr) {
    if (!get) return route.WrongMethod("GET");
    if (route.RefuseUnlessOperator()) return;
    return route.Send(MetricsResponse());
  }

  if ((s.size() >= 2 && s[0] == "api" && s[1] == "v1") || s[0] == "public") {
    return RoutePublic(route);
  }
  if (s.size() >= 2 && s[0] == "api" && s[1] == "conversations") {
    return RouteConversations(route);
  }
  if (s.size() >= 2 && s[0] == "api" &&
      (s[1] == "locrits" || s[1] == "create-locrit" || s[1] == "llm")) {
    return RouteLocrits(route);
  }
  return route.NotFound();
}

}  // namespace locrit

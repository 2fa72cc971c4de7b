#include "server/ws_protocol.h"

#include <boost/json.hpp>
#include <optional>
#include <utility>
#include <vector>

#include "base/id_generator.h"
#include "base/utf8.h"
#include "core/locrit_config.h"
#include "server/access.h"
#include "server/api_json.h"

namespace locrit {
namespace json = boost::json;
namespace {

std::string Event(json::object event) { return json::serialize(event); }

// A required string field: nullopt and `error` set when it is absent, null or not a string.
std::optional<std::string> RequiredString(const json::object& frame, std::string_view name,
                                          HttpError* error) {
  const json::value* value = frame.if_contains(name);
  if (value == nullptr || value->is_null()) {
    *error = {400, "invalid_argument", std::string(name) + " is required"};
    return std::nullopt;
  }
  if (!value->is_string()) {
    *error = {400, "invalid_argument", std::string(name) + " must be a string"};
    return std::nullopt;
  }
  return std::string(value->get_string());
}

}  // namespace

// One chat turn of the session; `handle` is set once ChatService returned it, unless the turn
// already finished.
struct WsSession::Turn {
  bool finished = false;                // GUARDED_BY(session mu_)
  std::shared_ptr<TurnHandle> handle;   // GUARDED_BY(session mu_)
};

WsSession::WsSession(const WsContext* context, std::shared_ptr<WsSink> sink)
    : context_(context), sink_(std::move(sink)) {}

WsSession::~WsSession() = default;

std::string WsSession::ErrorEvent(const HttpError& error, std::string_view request_id) {
  json::object event{{"type", "error"}, {"message", error.message}, {"code", error.code}};
  if (!request_id.empty()) event["request_id"] = request_id;
  return Event(std::move(event));
}

void WsSession::Open() { Send(Event({{"type", "connected"}})); }

bool WsSession::Send(std::string text) {
  if (sink_->Send(std::move(text))) return true;
  CancelAll();
  return false;
}

void WsSession::SendError(const HttpError& error, std::string_view request_id) {
  Send(ErrorEvent(error, request_id));
}

void WsSession::OnBinary() {
  SendError({400, "invalid_argument", "binary messages are not supported: send JSON text"});
}

void WsSession::OnTooLarge(size_t limit_bytes) {
  SendError(PayloadTooLargeError("the message is larger than " + std::to_string(limit_bytes) +
                                 " bytes"));
}

void WsSession::OnText(std::string_view text) {
  if (!IsValidUtf8(text)) return SendError({400, "invalid_argument", "the message is not valid UTF-8"});
  json::error_code ec;
  json::value parsed = json::parse(text, ec);
  if (ec) return SendError({400, "invalid_argument", "the message is not valid JSON: " + ec.message()});
  if (!parsed.is_object()) {
    return SendError({400, "invalid_argument", "the message must be a JSON object"});
  }
  const json::object& frame = parsed.get_object();
  // Errors about a chat_message name its request, when it has a readable one.
  std::string request_id;
  if (const json::value* id = frame.if_contains("request_id");
      id != nullptr && id->is_string() && id->get_string().size() <= kMaxIdChars) {
    request_id = std::string(id->get_string());
  }
  const json::value* type = frame.if_contains("type");
  if (type == nullptr || !type->is_string()) {
    return SendError({400, "invalid_argument", "type is required and must be a string"},
                     request_id);
  }
  const std::string_view kind = type->get_string();
  if (kind == "ping") return (void)Send(Event({{"type", "pong"}}));
  if (kind == "join_chat") return Join(frame);
  if (kind == "leave_chat") return Leave(frame);
  if (kind == "chat_message") return ChatMessage(frame);
  SendError({400, "invalid_argument",
             "unknown type " + std::string(kind.substr(0, 64)) +
                 " (expected join_chat, leave_chat, chat_message or ping)"},
            request_id);
}

void WsSession::Join(const json::object& frame) {
  HttpError error;
  std::optional<std::string> name = RequiredString(frame, "locrit_name", &error);
  if (!name) return SendError(error);
  std::string session_id;
  if (auto e = OptionalStringField(frame, "session_id", kMaxIdChars, &session_id)) {
    return SendError(*e);
  }
  Result<LocritConfig> locrit = context_->registry->Get(*name);
  if (!locrit.ok()) return SendError(ErrorForStatus(locrit.status()));
  if (auto refused = ChatGate(*locrit, ChatChannel::kOperator)) return SendError(*refused);
  if (session_id.empty()) session_id = UnguessableId();
  {
    std::lock_guard lock(mu_);
    joined_[LocritNameKey(locrit->name)] = session_id;
  }
  Send(Event({{"type", "joined_chat"}, {"locrit_name", locrit->name}, {"session_id", session_id}}));
}

void WsSession::Leave(const json::object& frame) {
  HttpError error;
  std::optional<std::string> name = RequiredString(frame, "locrit_name", &error);
  if (!name) return SendError(error);
  std::string session_id;
  if (auto e = OptionalStringField(frame, "session_id", kMaxIdChars, &session_id)) {
    return SendError(*e);
  }
  std::string left;
  {
    std::lock_guard lock(mu_);
    auto it = joined_.find(LocritNameKey(*name));
    if (it != joined_.end() && (session_id.empty() || session_id == it->second)) {
      left = it->second;
      joined_.erase(it);
    }
  }
  if (left.empty()) {
    return SendError({400, "invalid_argument", "not in a chat with " + name->substr(0, 64) +
                                                   (session_id.empty() ? "" : " in that session")});
  }
  Send(Event({{"type", "left_chat"}, {"locrit_name", *name}, {"session_id", left}}));
}

void WsSession::ChatMessage(const json::object& frame) {
  std::string request_id;
  if (auto e = OptionalStringField(frame, "request_id", kMaxIdChars, &request_id)) {
    return SendError(*e);
  }
  HttpError error;
  std::optional<std::string> name = RequiredString(frame, "locrit_name", &error);
  if (!name) return SendError(error, request_id);
  std::optional<std::string> message = RequiredString(frame, "message", &error);
  if (!message) return SendError(error, request_id);
  if (CountCodePoints(*message) > context_->max_message_chars) {
    return SendError(PayloadTooLargeError("message is longer than " +
                                          std::to_string(context_->max_message_chars) +
                                          " characters"),
                     request_id);
  }
  std::string session_id;
  std::string conversation_id;
  if (auto e = OptionalStringField(frame, "session_id", kMaxIdChars, &session_id)) {
    return SendError(*e, request_id);
  }
  if (auto e = OptionalStringField(frame, "conversation_id", kMaxIdChars, &conversation_id)) {
    return SendError(*e, request_id);
  }
  bool stream = true;
  if (const json::value* s = frame.if_contains("stream"); s != nullptr && !s->is_null()) {
    if (!s->is_bool()) {
      return SendError({400, "invalid_argument", "stream must be a boolean"}, request_id);
    }
    stream = s->get_bool();
  }

  Result<LocritConfig> found = context_->registry->Get(*name);
  if (!found.ok()) return SendError(ErrorForStatus(found.status()), request_id);
  const LocritConfig& locrit = *found;
  if (auto refused = ChatGate(locrit, ChatChannel::kOperator)) {
    return SendError(*refused, request_id);
  }
  std::optional<Conversation> conversation;
  if (!conversation_id.empty()) {
    if (context_->conversations != nullptr) {
      conversation = context_->conversations->Get(conversation_id);
    }
    if (!conversation) {
      return SendError({404, "not_found", "no conversation " + conversation_id}, request_id);
    }
    if (conversation->locrit_slug != locrit.slug) {
      return SendError({400, "invalid_argument",
                        "conversation " + conversation_id + " is not with " + locrit.name},
                       request_id);
    }
  }
  TurnRequest turn;
  turn.message = std::move(*message);
  if (conversation) {
    turn.session_id = conversation->session_id;
    turn.user_id = conversation->user_id;
  } else if (!session_id.empty()) {
    turn.session_id = std::move(session_id);
  }
  auto state = std::make_shared<Turn>();
  uint64_t turn_id = 0;
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    if (turn.session_id.empty()) {
      auto joined = joined_.find(LocritNameKey(locrit.name));
      // The chunks name their session, so a new one is chosen here rather than by ChatService.
      turn.session_id = joined != joined_.end() ? joined->second : UnguessableId();
    }
    if (context_->draining()) {
      return (void)sink_->Send(
          ErrorEvent({503, "unavailable", "the server is shutting down"}, request_id));
    }
    if (turns_running_ >= kWsMaxTurnsPerConnection) {
      return (void)sink_->Send(ErrorEvent(
          {429, "rate_limited",
           "at most " + std::to_string(kWsMaxTurnsPerConnection) +
               " chat turns run at once on one connection: wait for an answer"},
          request_id));
    }
    ++turns_running_;
    turn_id = next_turn_++;
    turns_.emplace(turn_id, nullptr);
  }

  auto self = shared_from_this();
  const std::string locrit_name = locrit.name;
  const std::string turn_session = turn.session_id;
  ChatService::DeltaSink sink;
  if (stream) {
    sink = [self, locrit_name, turn_session, request_id](std::string_view delta) {
      json::object chunk{{"type", "chat_chunk"},
                         {"locrit_name", locrit_name},
                         {"session_id", turn_session},
                         {"content", delta}};
      if (!request_id.empty()) chunk["request_id"] = request_id;
      self->Send(Event(std::move(chunk)));
    };
  } else {
    sink = [](std::string_view) {};
  }
  auto done = [self, state, turn_id, stream, locrit_name, request_id,
               conversation = std::move(conversation)](Status status, TurnResult result) {
    json::object event;
    if (status.ok()) {
      event = {{"type", stream ? "chat_complete" : "chat_response"},
               {"locrit_name", locrit_name},
               {"session_id", result.session_id},
               {"user_message_id", result.user_message_id},
               {"assistant_message_id", result.assistant_message_id},
               {"model", result.model},
               {"timestamp", FormatRfc3339Millis(result.timestamp)}};
      if (!stream) event["response"] = result.response;
    } else {
      const HttpError failure = ErrorForStatus(status);
      event = {{"type", "error"}, {"message", failure.message}, {"code", failure.code}};
      if (!result.user_message_id.empty()) {
        event["user_message_id"] = result.user_message_id;
        event["session_id"] = result.session_id;
      }
    }
    if (!request_id.empty()) event["request_id"] = request_id;
    if (conversation) {
      const int64_t saved = status.ok() ? 2 : (result.user_message_id.empty() ? 0 : 1);
      int64_t count = conversation->message_count;
      // A turn that saved something completes on a work-pool thread, where this file write may
      // block (as on the HTTP routes).
      if (saved > 0 && self->context_->conversations != nullptr) {
        Result<Conversation> counted =
            self->context_->conversations->RecordMessages(conversation->id, saved);
        count = counted.ok() ? counted->message_count : count + saved;
      }
      event["conversation_id"] = conversation->id;
      event["message_count"] = count;
    }
    self->Send(Event(std::move(event)));
    {
      std::lock_guard lock(self->mu_);
      state->finished = true;
      self->turns_.erase(turn_id);
      --self->turns_running_;
    }
    self->context_->turns_in_flight->fetch_sub(1);
    self->sink_->TurnFinished();
  };
  context_->turns_in_flight->fetch_add(1);
  sink_->TurnStarted();
  std::shared_ptr<TurnHandle> handle = context_->chat->Turn(
      context_->chat_locrit(locrit), std::move(turn), std::move(sink), std::move(done));
  bool cancel = false;
  {
    std::lock_guard lock(mu_);
    if (state->finished || !handle) return;
    auto it = turns_.find(turn_id);
    if (it != turns_.end()) it->second = handle;
    cancel = closed_;
  }
  if (cancel) handle->Cancel();  // The connection went away before the handle existed.
}

void WsSession::Close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  CancelAll();
}

void WsSession::CancelAll() {
  std::vector<std::shared_ptr<TurnHandle>> handles;
  {
    std::lock_guard lock(mu_);
    closed_ = true;
    for (auto& [id, handle] : turns_) {
      if (handle) handles.push_back(handle);
    }
  }
  for (auto& handle : handles) handle->Cancel();
}

}  // namespace locrit

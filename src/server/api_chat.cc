// The chat turn every HTTP channel shares: body, gate, ChatService turn, JSON or SSE answer.
#include <mutex>
#include <utility>

#include "base/utf8.h"
#include "server/api.h"

namespace locrit {
namespace json = boost::json;
namespace {

// A parsed chat body: {message, session_id?, user_id?, conversation_id?} from the operator,
// {message, sender_name?, sender_type?, context?, session_id?} on /api/v1 and
// {message, visitor_name?, session_id?} on /public; the sender or visitor is the turn's user.
// Public channels never name a conversation.
struct ChatBody {
  std::string message;
  std::string session_id;
  std::string user_id;
  std::string conversation_id;
};

std::variant<ChatBody, HttpError> ParseChatBody(const HttpRequest& request,
                                                size_t max_message_chars, ChatChannel channel) {
  auto parsed = ParseJsonObjectBody(request);
  if (auto* error = std::get_if<HttpError>(&parsed)) return *error;
  const json::object& body = std::get<json::object>(parsed);
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
  std::string ignored;  // Fields checked for their type, not used yet.
  switch (channel) {
    case ChatChannel::kOperator:
      if (auto e = OptionalStringField(body, "user_id", kMaxIdChars, &out.user_id)) return *e;
      if (auto e =
              OptionalStringField(body, "conversation_id", kMaxIdChars, &out.conversation_id)) {
        return *e;
      }
      break;
    case ChatChannel::kLocritToLocrit:
      if (auto e = OptionalStringField(body, "sender_name", kMaxIdChars, &out.user_id)) return *e;
      if (auto e = OptionalStringField(body, "sender_type", kMaxIdChars, &ignored)) return *e;
      if (const json::value* context = body.if_contains("context");
          context != nullptr && !context->is_null() && !context->is_string() &&
          !context->is_object()) {
        return HttpError{400, "invalid_argument", "context must be a string or an object"};
      }
      break;
    case ChatChannel::kPublic:
      if (auto e = OptionalStringField(body, "visitor_name", kMaxIdChars, &out.user_id)) return *e;
      break;
  }
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

// The error answer of a failed turn; `extra` fields are added (a conversation's id and count).
HttpResponse TurnErrorResponse(const Status& status, const TurnResult& result,
                               const json::object& extra) {
  const HttpError error = ErrorForStatus(status);
  json::object body{{"success", false}, {"error", error.message}, {"code", error.code}};
  for (const auto& [key, value] : extra) body[key] = value;
  if (!result.user_message_id.empty()) {
    body["user_message_id"] = result.user_message_id;
    body["session_id"] = result.session_id;
  }
  return JsonResponse(error.status, body);
}

}  // namespace

void Api::Chat(const Route& route, const LocritConfig& locrit, ChatChannel channel, bool stream,
               std::optional<Conversation> conversation) {
  auto parsed = ParseChatBody(route.request, options_.max_message_chars, channel);
  if (auto* error = std::get_if<HttpError>(&parsed)) return route.Fail(*error);
  ChatBody body = std::move(std::get<ChatBody>(parsed));
  TurnRequest turn;
  turn.message = std::move(body.message);
  turn.session_id = std::move(body.session_id);
  turn.user_id = std::move(body.user_id);
  if (!conversation && !body.conversation_id.empty()) {
    // The conversation decides the session and the user, as its own route does.
    conversation = options_.conversations == nullptr
                       ? std::nullopt
                       : options_.conversations->Get(body.conversation_id);
    if (!conversation) {
      return route.Fail({404, "not_found", "no conversation " + body.conversation_id});
    }
    if (conversation->locrit_slug != locrit.slug) {
      return route.Fail({400, "invalid_argument",
                         "conversation " + body.conversation_id + " is not with " + locrit.name});
    }
  }
  if (conversation) {
    turn.session_id = conversation->session_id;
    turn.user_id = conversation->user_id;
  }
  const std::shared_ptr<Responder>& responder = route.responder;
  if (std::optional<HttpError> refused = ChatGate(locrit, channel)) return route.Fail(*refused);
  if (draining()) return route.Fail({503, "unavailable", "the server is shutting down"});

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
  // Other Locrits learn that their sender_name was taken as the turn's user.
  const bool acknowledge_sender = channel == ChatChannel::kLocritToLocrit;
  auto done = [this, state, responder, stream, locrit_name, acknowledge_sender,
               conversation = std::move(conversation)](Status status, TurnResult result) {
    json::object conversation_fields;
    if (conversation) {
      const int64_t saved = status.ok() ? 2 : (result.user_message_id.empty() ? 0 : 1);
      int64_t count = conversation->message_count;
      // A turn that saved something completes after a memory write, on a work-pool thread, where
      // this file write may block; one that saved nothing may complete on the caller's thread.
      if (saved > 0) {
        Result<Conversation> counted =
            options_.conversations->RecordMessages(conversation->id, saved);
        count = counted.ok() ? counted->message_count : count + saved;
      }
      conversation_fields["conversation_id"] = conversation->id;
      conversation_fields["message_count"] = count;
    }
    auto with_conversation = [&conversation_fields, acknowledge_sender](json::object answer) {
      for (const auto& [key, value] : conversation_fields) answer[key] = value;
      if (acknowledge_sender) answer["sender_acknowledged"] = true;
      return answer;
    };
    std::lock_guard lock(state->mu);
    state->finished = true;
    state->handle.reset();  // Breaks the cycle handle -> callbacks -> state.
    if (stream && state->started) {
      if (status.ok()) {
        responder->Write(SseEvent(with_conversation(DoneEvent(result))));
      } else {
        json::object event = ErrorEvent(ErrorForStatus(status));
        if (!result.user_message_id.empty()) event["user_message_id"] = result.user_message_id;
        responder->Write(SseEvent(with_conversation(std::move(event))));
      }
      responder->End();
    } else if (stream && status.ok()) {
      // An empty reply: the stream is only its final event.
      responder->StartStream(200, "text/event-stream");
      responder->Write(SseEvent(with_conversation(DoneEvent(result))));
      responder->End();
    } else if (!status.ok()) {
      responder->Send(TurnErrorResponse(status, result, conversation_fields));
    } else {
      responder->Send(JsonResponse(200, with_conversation({{"success", true},
                                         {"response", result.response},
                                         {"locrit_name", locrit_name},
                                         {"model", result.model},
                                         {"session_id", result.session_id},
                                         {"user_message_id", result.user_message_id},
                                         {"assistant_message_id", result.assistant_message_id},
                                         {"timestamp", FormatRfc3339Millis(result.timestamp)}})));
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

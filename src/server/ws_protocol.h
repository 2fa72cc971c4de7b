// The WebSocket protocol of GET /ws (API.md): client frames in, server events out, chat turns
// through ChatService. Pure of sockets: the connection (http_server.cc) hands each received
// message to a WsSession and writes what the session sends to its WsSink, so every rule here is
// unit-tested with a recording sink.
//
// Client -> server (one JSON object per text frame, with "type"):
//   join_chat {locrit_name, session_id?}        -> joined_chat {locrit_name, session_id}
//   leave_chat {locrit_name, session_id?}       -> left_chat {locrit_name, session_id}
//   chat_message {locrit_name, message, session_id?, conversation_id?, stream?:true,
//                 request_id?}                  -> chat_chunk* then chat_complete, or
//                                                  chat_response when stream is false
//   ping                                        -> pong
// Anything else (not JSON, not an object, unknown type, missing or mistyped field, binary or
// oversized message) gets error {message, code, request_id?} and the session goes on.
//
// Gates: the caller must be the operator (checked at the upgrade, Api::OpenWebSocket); a Locrit
// must exist and pass ChatGate(kOperator) at join and at every message. Thread-safe: received
// messages come from the connection's strand, turn events from ChatService threads.
#pragma once

#include <atomic>
#include <boost/json/object.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "chat/chat_service.h"
#include "llm/llm_settings.h"
#include "registry/conversation_store.h"
#include "registry/locrit_registry.h"
#include "server/http_errors.h"

namespace locrit {

// Where a session's events go: the connection's bounded outbound queue. Thread-safe.
class WsSink {
 public:
  virtual ~WsSink() = default;
  // Queues one text message. False when the connection is gone, or when this message took its
  // queue past its bound (the connection is then being closed).
  virtual bool Send(std::string text) = 0;
  // A chat turn of this session started / was answered: shutdown waits for answered turns
  // before closing the connection.
  virtual void TurnStarted() = 0;
  virtual void TurnFinished() = 0;
};

// What sessions share; owned by the Api, outlives every session.
struct WsContext {
  const LocritRegistry* registry = nullptr;   // Required.
  ChatService* chat = nullptr;                // Required.
  ConversationStore* conversations = nullptr;  // Optional: conversation_id is refused without.
  size_t max_message_chars = 32768;
  LlmSettings llm_defaults;
  // Chat turns started by any channel and not yet answered (Api::TurnsInFlight).
  std::atomic<int64_t>* turns_in_flight = nullptr;  // Required.
  std::function<bool()> draining;                   // Required: new turns are refused.
  std::function<ChatLocrit(const LocritConfig&)> chat_locrit;  // Required: Api::ChatLocritOf.
};

// Chat turns one connection may run at once; more is a flood and gets rate_limited.
inline constexpr int kWsMaxTurnsPerConnection = 4;

class WsSession : public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(const WsContext* context, std::shared_ptr<WsSink> sink);
  ~WsSession();

  // Sends `connected`.
  void Open();
  // One complete text message from the client.
  void OnText(std::string_view text);
  // A binary message, or a message over the connection's size limit: an error event.
  void OnBinary();
  void OnTooLarge(size_t limit_bytes);
  // The connection is gone: turns in flight are cancelled (their user messages stay).
  void Close();

  // The `error` event of API.md, serialized.
  static std::string ErrorEvent(const HttpError& error, std::string_view request_id = {});

 private:
  struct Turn;
  void SendError(const HttpError& error, std::string_view request_id = {});
  void Join(const boost::json::object& frame);
  void Leave(const boost::json::object& frame);
  void ChatMessage(const boost::json::object& frame);
  // Sends, and cancels every turn when the connection can take no more.
  bool Send(std::string text);
  void CancelAll();

  const WsContext* const context_;
  const std::shared_ptr<WsSink> sink_;
  std::mutex mu_;
  bool closed_ = false;                         // GUARDED_BY(mu_)
  std::map<std::string, std::string> joined_;   // GUARDED_BY(mu_): LocritNameKey -> session id.
  std::map<uint64_t, std::shared_ptr<TurnHandle>> turns_;  // GUARDED_BY(mu_): running turns.
  int turns_running_ = 0;                       // GUARDED_BY(mu_)
  uint64_t next_turn_ = 0;                      // GUARDED_BY(mu_)
};

}  // namespace locrit

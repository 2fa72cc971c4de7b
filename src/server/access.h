// Who is calling (API.md "Access"): the operator or a public caller, decided once per request
// before routing; and the per-Locrit gates each way of chatting must pass.
//
// Operator: a loopback request while the server runs in local mode (bound to loopback, no admin
// token configured), or a request carrying an admin token as "Authorization: Bearer <token>" or
// as the query parameter ?token= (browsers cannot set headers on a WebSocket). Everyone else is
// public: operator routes answer them 401 with WWW-Authenticate (Route::RefuseUnlessOperator),
// public routes serve them behind each Locrit's gates.
// Pure; thread-safe.
#pragma once

#include <optional>
#include <variant>
#include <string>
#include <vector>

#include "core/locrit_config.h"
#include "server/http_errors.h"
#include "server/http_types.h"

namespace locrit {

struct Caller {
  bool is_operator = false;
  // A bearer token (header or ?token=) was sent and is not an admin token: operator routes
  // answer 401 "invalid_token" rather than asking for one.
  bool presented_wrong_token = false;
};

struct AccessOptions {
  // Bound to loopback with no admin token: loopback callers are the operator.
  bool local_mode = true;
  // Local mode: requests whose Host is not one of these (any port) are refused with 403 (DNS
  // rebinding). Empty: no check.
  std::vector<std::string> allowed_hosts;
  // SHA-256 hex of every admin token (admin_tokens.h). A request bearing one is the operator,
  // from anywhere.
  std::vector<std::string> admin_token_hashes;
};

// The ways a message reaches a Locrit; each has its gate (see ChatGate).
enum class ChatChannel {
  kOperator,      // /api/locrits/{name}/chat(/stream), conversations, WebSocket.
  kLocritToLocrit,  // /api/v1/locrits/{name}/chat(/stream).
  kPublic,        // /public/{name}/chat.
};

class AccessPolicy {
 public:
  explicit AccessPolicy(AccessOptions options);

  // The caller of `request`, or the error that refuses it outright (403 for a foreign Host in
  // local mode).
  std::variant<Caller, HttpError> Identify(const HttpRequest& request) const;

 private:
  AccessOptions options_;
};

// Whether `locrit` takes a message on `channel`: nullopt, or the 403 that refuses it.
std::optional<HttpError> ChatGate(const LocritConfig& locrit, ChatChannel channel);

}  // namespace locrit

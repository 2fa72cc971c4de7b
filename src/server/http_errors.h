// The one mapping from Status codes to HTTP statuses and API error codes (API.md "Conventions"),
// and the JSON error body every error response carries. Pure; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"
#include "server/http_types.h"

namespace locrit {

struct HttpError {
  int status = 500;
  std::string code;  // API.md error code: "not_found", "payload_too_large", ...
  std::string message;
};

// invalid_argument 400, not_found 404, already_exists and failed_precondition 409 conflict,
// resource_exhausted 429 rate_limited, llm_error 502, unavailable and cancelled 503,
// deadline_exceeded 504 timeout, everything else 500 internal.
HttpError ErrorForStatus(const Status& status);

// Errors that have no Status code of their own.
HttpError UnauthorizedError(std::string message);          // 401 unauthorized
HttpError ForbiddenError(std::string message);             // 403 forbidden
HttpError MethodNotAllowedError(std::string message);      // 405 method_not_allowed
HttpError PayloadTooLargeError(std::string message);       // 413 payload_too_large
HttpError UnsupportedMediaTypeError(std::string message);  // 415 unsupported_media_type
HttpError HeadersTooLargeError(std::string message);       // 431 payload_too_large

// {"success":false,"error":"<message>","code":"<code>"} as JSON text.
std::string ErrorBody(const HttpError& error);
// The whole response for `error`.
HttpResponse ErrorResponse(const HttpError& error);

}  // namespace locrit

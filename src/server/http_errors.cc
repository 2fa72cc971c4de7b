#include "server/http_errors.h"

#include <boost/json.hpp>

namespace locrit {

HttpError ErrorForStatus(const Status& status) {
  auto error = [&](int http, const char* code) { return HttpError{http, code, status.message()}; };
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
      return error(400, "invalid_argument");
    case StatusCode::kNotFound:
      return error(404, "not_found");
    case StatusCode::kAlreadyExists:
    case StatusCode::kFailedPrecondition:
      return error(409, "conflict");
    case StatusCode::kResourceExhausted:
      return error(429, "rate_limited");
    case StatusCode::kLlmError:
      return error(502, "llm_error");
    case StatusCode::kUnavailable:
    case StatusCode::kCancelled:
      return error(503, "unavailable");
    case StatusCode::kDeadlineExceeded:
      return error(504, "timeout");
    case StatusCode::kOk:
    case StatusCode::kUnimplemented:
    case StatusCode::kIoError:
    case StatusCode::kCorruption:
    case StatusCode::kInternal:
      break;
  }
  return error(500, "internal");
}

HttpError UnauthorizedError(std::string message) {
  return {401, "unauthorized", std::move(message)};
}
HttpError ForbiddenError(std::string message) { return {403, "forbidden", std::move(message)}; }
HttpError MethodNotAllowedError(std::string message) {
  return {405, "method_not_allowed", std::move(message)};
}
HttpError PayloadTooLargeError(std::string message) {
  return {413, "payload_too_large", std::move(message)};
}
HttpError UnsupportedMediaTypeError(std::string message) {
  return {415, "unsupported_media_type", std::move(message)};
}
HttpError HeadersTooLargeError(std::string message) {
  return {431, "payload_too_large", std::move(message)};
}

std::string ErrorBody(const HttpError& error) {
  boost::json::object body;
  body["success"] = false;
  body["error"] = error.message;
  body["code"] = error.code;
  return boost::json::serialize(body);
}

HttpResponse ErrorResponse(const HttpError& error) {
  HttpResponse response;
  response.status = error.status;
  response.body = ErrorBody(error);
  return response;
}

}  // namespace locrit

// The small codecs every route group shares: JSON responses, the Locrit object, request bodies
// and fields, query parameters, timestamps and percent-decoding. Pure; thread-safe.
#pragma once

#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/locrit_config.h"
#include "core/memory_types.h"
#include "server/http_errors.h"
#include "server/http_types.h"

namespace locrit {

// Ids and other short strings taken from a body or a query (session_id, user_id, ...).
inline constexpr size_t kMaxIdChars = 128;

HttpResponse JsonResponse(int status, const boost::json::object& body);

// null for nullopt.
boost::json::value OptionalString(const std::optional<std::string>& value);

// The "open_to" and "access_to" objects of a Locrit (API.md).
boost::json::object OpenToObject(const LocritConfig& locrit);
boost::json::object AccessToObject(const LocritConfig& locrit);

// The Locrit object of API.md.
boost::json::object LocritObject(const LocritConfig& locrit);

// A message of a Locrit's memory: {id, seq, session_id, user_id, role, content, timestamp,
// status, metadata}.
boost::json::object MessageObject(const Message& message);

// "application/json", any case, with or without parameters.
bool IsJsonContentType(std::string_view content_type);

// The request's body as a JSON object: 415 when the Content-Type is not JSON, 400 when the body
// is not valid UTF-8, not JSON, or not an object.
std::variant<boost::json::object, HttpError> ParseJsonObjectBody(const HttpRequest& request);

// Reads an optional string field of at most `max_chars` code points without control
// characters: absent or null leave `out` untouched; another type or a bad value is a 400 naming
// the field.
std::optional<HttpError> OptionalStringField(const boost::json::object& body,
                                             std::string_view name, size_t max_chars,
                                             std::string* out);

// The path of a request target, split at '/' (without the leading one) and percent-decoded;
// nullopt when an escape is malformed. "/a/b%20c" -> {"a", "b c"}.
std::optional<std::vector<std::string>> DecodePathSegments(std::string_view path);

// The percent-decoded value of query parameter `name` ('+' is a space); nullopt when absent.
std::optional<std::string> QueryParam(std::string_view target, std::string_view name);

// Query parameter `name` as an integer in [min, max]; `fallback` when absent; a 400 naming the
// parameter and its range otherwise.
std::variant<int64_t, HttpError> IntParam(std::string_view target, std::string_view name,
                                          int64_t fallback, int64_t min, int64_t max);

// "2025-01-01T08:00:00.000Z" for Unix milliseconds.
std::string FormatRfc3339Millis(int64_t unix_millis);

// Percent-decodes one path segment; nullopt when an escape is malformed.
std::optional<std::string> PercentDecode(std::string_view segment);

bool EqualsIgnoringAsciiCase(std::string_view a, std::string_view b);

}  // namespace locrit

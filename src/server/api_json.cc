#include "server/api_json.h"

#include <charconv>
#include <cstdio>
#include <ctime>

#include "base/utf8.h"

namespace locrit {
namespace json = boost::json;

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

json::object OpenToObject(const LocritConfig& c) {
  return json::object{{"humans", c.open_to.humans},
                      {"locrits", c.open_to.locrits},
                      {"invitations", c.open_to.invitations},
                      {"internet", c.open_to.internet},
                      {"platform", c.open_to.platform}};
}

json::object AccessToObject(const LocritConfig& c) {
  return json::object{{"logs", c.access_to.logs},
                      {"quick_memory", c.access_to.quick_memory},
                      {"full_memory", c.access_to.full_memory},
                      {"llm_info", c.access_to.llm_info}};
}

json::object LocritObject(const LocritConfig& c) {
  json::object o;
  o["name"] = c.name;
  o["description"] = c.description;
  o["system_prompt"] = OptionalString(c.system_prompt);
  o["model"] = c.model;
  o["embedding_model"] = OptionalString(c.embedding_model);
  o["llm"] = json::object{{"provider", LocritProviderName(c.llm.provider)},
                          {"url", OptionalString(c.llm.url)}};
  o["active"] = c.active;
  o["public_address"] = OptionalString(c.public_address);
  o["open_to"] = OpenToObject(c);
  o["access_to"] = AccessToObject(c);
  o["memory"] = json::object{{"max_messages", c.memory.max_messages},
                             {"context_messages", c.memory.context_messages}};
  o["created_at"] = FormatRfc3339Millis(c.created_at);
  o["updated_at"] = FormatRfc3339Millis(c.updated_at);
  return o;
}

json::object MessageObject(const Message& m) {
  boost::system::error_code ec;
  json::value metadata = json::parse(m.metadata, ec);
  if (ec || !metadata.is_object()) metadata = json::object();
  return json::object{{"id", m.id},
                      {"seq", m.seq},
                      {"session_id", m.session_id},
                      {"user_id", m.user_id},
                      {"role", RoleName(m.role)},
                      {"content", m.content},
                      {"timestamp", FormatRfc3339Millis(m.created_at)},
                      {"status", MessageStatusName(m.status)},
                      {"metadata", std::move(metadata)}};
}

bool EqualsIgnoringAsciiCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

bool IsJsonContentType(std::string_view value) {
  std::string_view type = value.substr(0, value.find(';'));
  while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) type.remove_suffix(1);
  while (!type.empty() && (type.front() == ' ' || type.front() == '\t')) type.remove_prefix(1);
  return EqualsIgnoringAsciiCase(type, "application/json");
}

std::variant<json::object, HttpError> ParseJsonObjectBody(const HttpRequest& request) {
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
  return std::move(parsed.get_object());
}

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

std::optional<std::vector<std::string>> DecodePathSegments(std::string_view path) {
  std::vector<std::string> out;
  size_t start = path.empty() || path.front() != '/' ? 0 : 1;
  while (start <= path.size()) {
    const size_t slash = path.find('/', start);
    const size_t end = slash == std::string_view::npos ? path.size() : slash;
    std::optional<std::string> decoded = PercentDecode(path.substr(start, end - start));
    if (!decoded) return std::nullopt;
    out.push_back(std::move(*decoded));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return out;
}

std::optional<std::string> QueryParam(std::string_view target, std::string_view name) {
  const size_t question = target.find('?');
  if (question == std::string_view::npos) return std::nullopt;
  std::string_view query = target.substr(question + 1);
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const size_t eq = pair.find('=');
    if (pair.substr(0, eq) != name) continue;
    std::string value(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    for (char& c : value) {
      if (c == '+') c = ' ';
    }
    return PercentDecode(value).value_or(std::string());
  }
  return std::nullopt;
}

std::variant<int64_t, HttpError> IntParam(std::string_view target, std::string_view name,
                                          int64_t fallback, int64_t min, int64_t max) {
  const std::optional<std::string> text = QueryParam(target, name);
  if (!text) return fallback;
  int64_t value = 0;
  const char* end = text->data() + text->size();
  const auto [stop, ec] = std::from_chars(text->data(), end, value);
  if (text->empty() || ec != std::errc() || stop != end || value < min || value > max) {
    return HttpError{400, "invalid_argument",
                     std::string(name) + " must be an integer from " + std::to_string(min) +
                         " to " + std::to_string(max)};
  }
  return value;
}

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

}  // namespace locrit

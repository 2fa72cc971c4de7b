#include "server/access.h"

#include <string_view>

#include "server/admin_tokens.h"
#include "server/api_json.h"

namespace locrit {
namespace {

// The host part of a Host header: "localhost:8000" -> "localhost", "[::1]:80" -> "[::1]".
std::string_view HostName(std::string_view host) {
  if (!host.empty() && host.front() == '[') {
    const size_t close = host.find(']');
    return close == std::string_view::npos ? host : host.substr(0, close + 1);
  }
  return host.substr(0, host.find(':'));
}

// The token of "Authorization: Bearer <token>" (scheme in any case), else of ?token=.
std::optional<std::string> BearerToken(const HttpRequest& request) {
  std::string_view auth = request.authorization;
  constexpr std::string_view kScheme = "bearer ";
  if (auth.size() > kScheme.size() && EqualsIgnoringAsciiCase(auth.substr(0, kScheme.size()),
                                                              kScheme)) {
    auth.remove_prefix(kScheme.size());
    while (!auth.empty() && auth.front() == ' ') auth.remove_prefix(1);
    while (!auth.empty() && auth.back() == ' ') auth.remove_suffix(1);
    if (!auth.empty()) return std::string(auth);
  }
  if (!auth.empty()) return std::string();  // Another scheme: a wrong token.
  std::optional<std::string> query = QueryParam(request.target, "token");
  if (query && !query->empty()) return query;
  return std::nullopt;
}

}  // namespace

AccessPolicy::AccessPolicy(AccessOptions options) : options_(std::move(options)) {}

std::variant<Caller, HttpError> AccessPolicy::Identify(const HttpRequest& request) const {
  if (options_.local_mode && !options_.allowed_hosts.empty() && !request.host.empty()) {
    const std::string_view host = HostName(request.host);
    bool allowed = false;
    for (const std::string& h : options_.allowed_hosts) allowed |= EqualsIgnoringAsciiCase(h, host);
    if (!allowed) {
      return ForbiddenError(
          "this server runs in local mode and only answers requests for localhost, 127.0.0.1 "
          "or [::1]");
    }
  }
  std::optional<std::string> token = BearerToken(request);
  if (token && AdminTokenMatches(*token, options_.admin_token_hashes)) {
    return Caller{.is_operator = true};
  }
  if (options_.local_mode && request.from_loopback) return Caller{.is_operator = true};
  return Caller{.is_operator = false, .presented_wrong_token = token.has_value()};
}

std::optional<HttpError> ChatGate(const LocritConfig& locrit, ChatChannel channel) {
  if (!locrit.active) return ForbiddenError("Locrit " + locrit.name + " is inactive");
  switch (channel) {
    case ChatChannel::kOperator:
      return std::nullopt;
    case ChatChannel::kLocritToLocrit:
      if (!locrit.open_to.locrits) {
        return ForbiddenError("Locrit " + locrit.name + " is not open to other Locrits");
      }
      return std::nullopt;
    case ChatChannel::kPublic:
      if (!locrit.open_to.internet) {
        return ForbiddenError("Locrit " + locrit.name + " is not open to the internet");
      }
      return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace locrit

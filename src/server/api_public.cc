// /api/v1/... (other Locrits and programs) and /public/... (the internet): what public callers
// reach, behind each Locrit's gates. The gates apply to the operator too on these paths: they say
// what a Locrit accepts on each channel, not who asks.
#include <utility>

#include "server/api.h"

namespace locrit {
namespace json = boost::json;
namespace {

// What a public caller may see of a Locrit: never its system prompt, LLM URL, public address or
// memory settings; the model only when access_to.llm_info allows it.
json::object PublicLocritObject(const LocritConfig& c) {
  json::object o;
  o["name"] = c.name;
  o["description"] = c.description;
  o["active"] = c.active;
  o["open_to"] = OpenToObject(c);
  o["access_to"] = AccessToObject(c);
  if (c.access_to.llm_info) {
    o["model"] = c.model;
    o["provider"] = LocritProviderName(c.llm.provider);
  }
  o["created_at"] = FormatRfc3339Millis(c.created_at);
  return o;
}

}  // namespace

void Api::RoutePublic(const Route& route) {
  const std::vector<std::string>& s = route.seg;
  const bool get = route.request.method == "GET";
  const bool post = route.request.method == "POST";
  const bool v1 = s[0] == "api";
  const ChatChannel channel = v1 ? ChatChannel::kLocritToLocrit : ChatChannel::kPublic;

  // The Locrits listed on this channel: those whose gate lets it through.
  auto list = [&] {
    if (!get) return route.WrongMethod("GET");
    json::array locrits;
    for (const LocritConfig& c : options_.registry->List()) {
      if (!ChatGate(c, channel)) locrits.push_back(PublicLocritObject(c));
    }
    const size_t count = locrits.size();
    route.Send(
        JsonResponse(200, {{"success", true}, {"locrits", std::move(locrits)}, {"count", count}}));
  };
  // One Locrit behind its gate: its public object (info) or a chat turn.
  auto one = [&](const std::string& name, bool chat, bool stream) {
    if (chat && !post) return route.WrongMethod("POST");
    if (!chat && !get) return route.WrongMethod("GET");
    Result<LocritConfig> locrit = options_.registry->Get(name);
    if (!locrit.ok()) return route.Fail(ErrorForStatus(locrit.status()));
    if (chat) return Chat(route, *locrit, channel, stream);
    if (std::optional<HttpError> refused = ChatGate(*locrit, channel)) return route.Fail(*refused);
    route.Send(JsonResponse(200, {{"success", true}, {"locrit", PublicLocritObject(*locrit)}}));
  };

  if (v1) {
    if (s.size() == 3 && s[2] == "ping") {
      if (!get) return route.WrongMethod("GET");
      return route.Send(
          JsonResponse(200, {{"success", true},
                             {"message", "Locrit API v1 is running"},
                             {"version", options_.version},
                             {"timestamp", FormatRfc3339Millis(options_.clock->NowMillis())}}));
    }
    if (s.size() < 3 || s[2] != "locrits") return route.NotFound();
    if (s.size() == 3) return list();
    if (s.size() == 5 && s[4] == "info") return one(s[3], false, false);
    if (s.size() == 5 && s[4] == "chat") return one(s[3], true, false);
    if (s.size() == 6 && s[4] == "chat" && s[5] == "stream") return one(s[3], true, true);
    return route.NotFound();
  }
  // /public/...
  if (s.size() == 2 && s[1] == "list") return list();
  if (s.size() == 2) return one(s[1], false, false);
  if (s.size() == 3 && s[2] == "chat") return one(s[1], true, false);
  return route.NotFound();
}

}  // namespace locrit

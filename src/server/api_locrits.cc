// /api/locrits, /api/create-locrit and /api/llm/models: the operator's management of Locrits,
// and the legacy chat routes under /api/locrits/{name}.
#include <utility>

#include "server/api.h"

namespace locrit {
namespace json = boost::json;

void Api::RouteLocrits(const Route& route) {
  const std::vector<std::string>& s = route.seg;
  const bool get = route.request.method == "GET";
  const bool post = route.request.method == "POST";
  if (s[1] != "locrits") return route.NotFound();
  if (s.size() >= 4 && s[3] == "memory") {  // RouteMemory decides who may read what.
    Result<LocritConfig> locrit = options_.registry->Get(s[2]);
    if (!locrit.ok()) return route.Fail(ErrorForStatus(locrit.status()));
    return RouteMemory(route, *locrit);
  }
  if (route.RefuseUnlessOperator()) return;

  if (s.size() == 2) {
    if (!get) return route.WrongMethod("GET");
    json::array list;
    for (const LocritConfig& c : options_.registry->List()) list.push_back(LocritObject(c));
    const size_t count = list.size();
    return route.Send(
        JsonResponse(200, {{"success", true}, {"locrits", std::move(list)}, {"count", count}}));
  }
  const bool is_config = s.size() == 3 || (s.size() == 4 && s[3] == "config");
  const bool is_chat = s.size() == 4 && s[3] == "chat";
  const bool is_stream = s.size() == 5 && s[3] == "chat" && s[4] == "stream";
  if (!is_config && !is_chat && !is_stream) return route.NotFound();
  if (is_config && !get) return route.WrongMethod("GET");
  if ((is_chat || is_stream) && !post) return route.WrongMethod("POST");
  Result<LocritConfig> locrit = options_.registry->Get(s[2]);
  if (!locrit.ok()) return route.Fail(ErrorForStatus(locrit.status()));
  if (is_config) {
    return route.Send(JsonResponse(200, {{"success", true}, {"locrit", LocritObject(*locrit)}}));
  }
  return Chat(route, *locrit, ChatChannel::kOperator, is_stream);
}

}  // namespace locrit

// /api/locrits/{name}/memory/...: reading and editing one Locrit's memory.
#include "server/api.h"

namespace locrit {

void Api::RouteMemory(const Route& route, const LocritConfig& /*locrit*/) { route.NotFound(); }

}  // namespace locrit

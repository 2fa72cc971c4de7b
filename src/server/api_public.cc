// /api/v1/... (other Locrits and programs) and /public/... (the internet): what public callers
// reach, behind each Locrit's gates.
#include "server/api.h"

namespace locrit {

void Api::RoutePublic(const Route& route) { route.NotFound(); }

}  // namespace locrit

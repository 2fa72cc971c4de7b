// /api/conversations: server-side conversations, persisted.
#include "server/api.h"

namespace locrit {

void Api::RouteConversations(const Route& route) { route.NotFound(); }

}  // namespace locrit

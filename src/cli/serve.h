// `locrit serve`: builds the real parts (clock, pools, memory manager, LLM runtime, registry,
// chat service, HTTP server), creates the example Locrit on first start, serves until SIGINT or
// SIGTERM, then shuts down in order.
#pragma once

#include "cli/settings.h"

namespace locrit {


// Runs the server; returns the process exit code (0 clean shutdown, 2 bad configuration, 3 data
// directory in use, 1 anything else).
int Serve(const ServeSettings& settings);

}  // namespace locrit

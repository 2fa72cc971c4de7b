// `locrit serve`: builds the real parts (clock, pools, memory manager, LLM runtime, registry,
// chat service, HTTP server), creates the example Locrit on first start, serves until SIGINT or
// SIGTERM, then shuts down in order.
#pragma once

#include <string>

namespace locrit {

struct ServeSettings {
  std::string listen = "127.0.0.1:8000";  // HOST:PORT; port 0 picks a free port.
  std::string data = "./data";
  bool no_example = false;
  int shutdown_timeout_s = 30;  // How long in-flight requests may take to finish.
};

// Runs the server; returns the process exit code (0 clean shutdown, 2 bad configuration, 3 data
// directory in use, 1 anything else).
int Serve(const ServeSettings& settings);

}  // namespace locrit

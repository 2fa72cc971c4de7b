// The settings of `locrit serve` and where they come from: an optional TOML file (locrit.toml),
// LOCRIT_* environment variables and command-line flags. Each later source wins over the earlier
// one: flags over the environment, the environment over the file, the file over the defaults.
//
// Every setting has one key ("server.listen"), one environment variable and, for the common ones,
// one flag; docs/configuration.md lists them all. Unknown keys and sections in the file, wrong
// types and bad values are invalid_argument errors naming the file, line and key (or the
// variable, or the flag): `locrit serve` exits 2 on them. Pure apart from LoadSettings reading the
// file; thread-compatible.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "llm/llm_settings.h"
#include "store/memory_store.h"

namespace locrit {

struct ServeSettings {
  // [server]
  std::string listen = "127.0.0.1:8000";  // HOST:PORT; port 0 picks a free port.
  std::string data = "./data";
  bool no_example = false;
  int shutdown_timeout_s = 30;  // How long in-flight requests may take to finish.
  bool request_log = true;      // One line per request on stderr (docs/server.md).

  // [access] Admin tokens in clear (from the file or LOCRIT_ADMIN_TOKEN). Tokens created with
  // `locrit token create` live hashed in the data directory instead.
  std::vector<std::string> admin_tokens;

  // [llm] The server's default language model: what the example Locrit (and a Locrit created
  // without `llm`) uses, and the timeouts and retries of every Locrit's calls. "recall": the
  // built-in responder, no model server.
  std::string llm_provider = "ollama";  // "ollama" | "openai" | "recall".
  LlmSettings llm;                      // base_url, model, timeouts, retry.

  // [limits]
  size_t max_body_bytes = 1 << 20;
  size_t max_message_chars = 32768;
  // Unsent WebSocket events per connection before a client that does not read is disconnected.
  size_t max_ws_queue_bytes = 1 << 20;
  int max_connections = 10000;  // Open connections held at most; more are answered 503.
  int header_timeout_s = 10;    // A request's headers must arrive within this (slowloris).
  int idle_timeout_s = 30;      // A keep-alive connection idle this long is closed.

  // [storage] synchronous = "full" | "relaxed" (memory stores; registry.db is always full).
  Durability durability = Durability::kFull;
};

// The raw inputs: the config file's text (when there is one), the environment and the flags
// given on the command line.
struct SettingsSources {
  std::optional<std::string> file_name;  // For messages ("locrit.toml").
  std::optional<std::string> file_text;
  std::map<std::string, std::string> env;    // Only LOCRIT_* variables matter; others ignored.
  std::map<std::string, std::string> flags;  // Setting key -> the flag's text, e.g.
                                             // {"server.listen", "0.0.0.0:80"}; booleans "true".
};

// Applies the file, then the environment, then the flags over the defaults.
Result<ServeSettings> ResolveSettings(const SettingsSources& sources);

// Which config file to read: `explicit_path` (--config, else LOCRIT_CONFIG) must exist; without
// one, "./locrit.toml" when present, else none. Fills file_name and file_text of `sources`.
Status ReadConfigFile(const std::optional<std::string>& explicit_path, SettingsSources* sources);

// The LOCRIT_* variables of the process environment.
std::map<std::string, std::string> LocritEnvironment();

// "a, b,,c" -> {"a", "b", "c"}: the comma-separated form of LOCRIT_ADMIN_TOKEN.
std::vector<std::string> SplitCommaList(const std::string& text);

}  // namespace locrit

// The locrit command line. The only place where real defaults (clock, id seed) are built.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <random>

#include "base/clock.h"
#include "base/id_generator.h"
#include "cli/serve.h"
#include "cli/settings.h"
#include "server/admin_tokens.h"
#include "server/api_json.h"
#include "store/memory_store.h"

namespace locrit {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

uint64_t EntropySeed() {
  std::random_device device;
  return (static_cast<uint64_t>(device()) << 32) ^ device();
}

struct StoreTool {
  SystemClock clock;
  IdGenerator ids{&clock, EntropySeed()};

  Result<std::unique_ptr<MemoryStore>> Open(const std::string& path, bool read_only) {
    StoreOptions options;
    options.path = path;
    options.clock = &clock;
    options.ids = &ids;
    options.read_only = read_only;
    options.max_messages = 0;  // Tools never evict.
    return MemoryStore::Open(options);
  }
};

int Fail(const Status& status) {
  std::cerr << "locrit: " << status << "\n";
  return status.code() == StatusCode::kInvalidArgument ? kExitUsage : kExitFailure;
}

int Run(int argc, char** argv) {
  CLI::App app{"Locrit: a self-hosted server for persistent AI chat agents"};
  app.require_subcommand(1);

  app.add_subcommand("version", "Print the version")->callback([] {
    std::cout << "locrit " << LOCRIT_VERSION << "\n";
  });

  int exit_code = kExitOk;
  // Flags are collected as text and resolved with the file and the environment (settings.h):
  // flags win over the environment, which wins over the file.
  auto* serve = app.add_subcommand("serve", "Run the HTTP server");
  std::string config_path;
  std::map<std::string, std::string> serve_flags;
  std::string listen, data_dir, shutdown_timeout;
  bool no_example = false;
  serve->add_option("--config", config_path,
                    "TOML settings file (also LOCRIT_CONFIG; default ./locrit.toml if present)");
  auto* listen_opt = serve->add_option(
      "--listen", listen, "HOST:PORT to listen on, port 0: any (default 127.0.0.1:8000)");
  auto* data_opt = serve->add_option("--data", data_dir, "Data directory (default ./data)");
  auto* no_example_opt = serve->add_flag("--no-example", no_example,
                                         "Do not create the example Locrit on first start");
  auto* shutdown_opt = serve->add_option(
      "--shutdown-timeout", shutdown_timeout,
      "Seconds in-flight requests get to finish on SIGINT/SIGTERM (default 30)");
  std::string max_connections, header_timeout, idle_timeout;
  bool no_request_log = false;
  auto* no_request_log_opt =
      serve->add_flag("--no-request-log", no_request_log, "Do not log one line per request");
  auto* max_connections_opt = serve->add_option(
      "--max-connections", max_connections,
      "Open connections held at most; more are answered 503 and closed (default 10000)");
  auto* header_timeout_opt = serve->add_option(
      "--header-timeout", header_timeout,
      "Seconds a request's headers may take once its first byte arrived (default 10)");
  auto* idle_timeout_opt =
      serve->add_option("--idle-timeout", idle_timeout,
                        "Seconds a keep-alive connection may wait for its next request (default 30)");
  serve->callback([&] {
    SettingsSources sources;
    sources.env = LocritEnvironment();
    if (config_path.empty()) {
      if (auto it = sources.env.find("LOCRIT_CONFIG"); it != sources.env.end()) {
        config_path = it->second;
      }
    }
    if (Status s = ReadConfigFile(config_path.empty() ? std::nullopt
                                                      : std::optional<std::string>(config_path),
                                  &sources);
        !s.ok()) {
      return void(exit_code = Fail(s));
    }
    if (listen_opt->count() > 0) sources.flags["server.listen"] = listen;
    if (data_opt->count() > 0) sources.flags["server.data"] = data_dir;
    if (no_example_opt->count() > 0 && no_example) sources.flags["server.no_example"] = "true";
    if (shutdown_opt->count() > 0) sources.flags["server.shutdown_timeout_s"] = shutdown_timeout;
    if (no_request_log_opt->count() > 0 && no_request_log) {
      sources.flags["server.request_log"] = "false";
    }
    if (max_connections_opt->count() > 0) {
      sources.flags["limits.max_connections"] = max_connections;
    }
    if (header_timeout_opt->count() > 0) sources.flags["limits.header_timeout_s"] = header_timeout;
    if (idle_timeout_opt->count() > 0) sources.flags["limits.idle_timeout_s"] = idle_timeout;
    Result<ServeSettings> settings = ResolveSettings(sources);
    if (!settings.ok()) return void(exit_code = Fail(settings.status()));
    exit_code = Serve(*settings);
  });

  auto* token = app.add_subcommand("token", "Manage the admin tokens stored in the data directory");
  token->require_subcommand(1);
  std::string token_data = "./data";
  std::string token_name;
  auto add_data_option = [&](CLI::App* command) {
    command->add_option("--data", token_data, "Data directory")
        ->envname("LOCRIT_DATA")
        ->capture_default_str();
  };
  auto* token_create =
      token->add_subcommand("create", "Create an admin token, print it once, store its hash");
  add_data_option(token_create);
  token_create->add_option("--name", token_name, "A name to list and revoke it by (default: "
                                                 "token-<n>)");
  token_create->callback([&] {
    auto existing = LoadAdminTokens(token_data);
    if (!existing.ok()) return void(exit_code = Fail(existing.status()));
    if (token_name.empty()) token_name = "token-" + std::to_string(existing->size() + 1);
    auto secret = NewAdminToken();
    if (!secret.ok()) return void(exit_code = Fail(secret.status()));
    SystemClock clock;
    StoredAdminToken stored{token_name, HashAdminToken(*secret),
                            FormatRfc3339Millis(clock.NowMillis())};
    if (Status s = AddAdminToken(token_data, stored); !s.ok()) return void(exit_code = Fail(s));
    std::cout << *secret << "\n";
    std::cerr << "locrit: token \"" << token_name << "\" stored (hashed) in " << token_data
              << "; it is shown only once. A running server reads tokens at start-up: restart it.\n";
  });
  auto* token_list = token->add_subcommand("list", "List the stored admin tokens (names only)");
  add_data_option(token_list);
  token_list->callback([&] {
    auto tokens = LoadAdminTokens(token_data);
    if (!tokens.ok()) return void(exit_code = Fail(tokens.status()));
    for (const StoredAdminToken& t : *tokens) std::cout << t.name << "\t" << t.created_at << "\n";
  });
  auto* token_revoke = token->add_subcommand("revoke", "Delete a stored admin token");
  add_data_option(token_revoke);
  token_revoke->add_option("name", token_name, "The token's name")->required();
  token_revoke->callback([&] {
    if (Status s = RevokeAdminToken(token_data, token_name); !s.ok()) {
      return void(exit_code = Fail(s));
    }
  });

  auto* memory = app.add_subcommand("memory", "Inspect one Locrit memory file");
  memory->require_subcommand(1);
  std::string db_path;
  std::string file;
  StoreTool tool;

  auto* check = memory->add_subcommand("check", "Run PRAGMA quick_check on a memory file");
  check->add_option("db", db_path, "Path to memory.db")->required();
  check->callback([&] {
    auto store = tool.Open(db_path, true);
    if (!store.ok()) return void(exit_code = Fail(store.status()));
    auto result = (*store)->QuickCheck();
    if (!result.ok()) return void(exit_code = Fail(result.status()));
    std::cout << *result << "\n";
    if (*result != "ok") exit_code = kExitFailure;
  });

  auto* stats = memory->add_subcommand("stats", "Print node and edge counts");
  stats->add_option("db", db_path, "Path to memory.db")->required();
  stats->callback([&] {
    auto store = tool.Open(db_path, true);
    if (!store.ok()) return void(exit_code = Fail(store.status()));
    auto s = (*store)->Statistics();
    if (!s.ok()) return void(exit_code = Fail(s.status()));
    std::cout << fmt::format(
        "users {}\nsessions {}\nmessages {}\nmemories {}\nconcepts {}\ntopics {}\n"
        "relations {}\nvectors {}\ndb_bytes {}\n",
        s->users, s->sessions, s->messages, s->memories, s->concepts, s->topics, s->relations,
        s->vectors, s->db_bytes);
  });

  auto* export_cmd = memory->add_subcommand("export", "Write every node and edge as JSON Lines");
  export_cmd->add_option("db", db_path, "Path to memory.db")->required();
  export_cmd->add_option("-o,--output", file, "Output file (default: standard output)");
  export_cmd->callback([&] {
    auto store = tool.Open(db_path, true);
    if (!store.ok()) return void(exit_code = Fail(store.status()));
    Status status;
    if (file.empty()) {
      status = (*store)->Export(std::cout);
    } else {
      std::ofstream out(file, std::ios::binary | std::ios::trunc);
      if (!out) return void(exit_code = Fail(IoError("cannot write " + file)));
      status = (*store)->Export(out);
    }
    if (!status.ok()) exit_code = Fail(status);
  });

  auto* import_cmd = memory->add_subcommand("import", "Add the nodes and edges of a JSON Lines export");
  import_cmd->add_option("db", db_path, "Path to memory.db (created when missing)")->required();
  import_cmd->add_option("input", file, "The export file")->required();
  import_cmd->callback([&] {
    std::ifstream in(file, std::ios::binary);
    if (!in) return void(exit_code = Fail(NotFoundError("cannot read " + file)));
    auto store = tool.Open(db_path, false);
    if (!store.ok()) return void(exit_code = Fail(store.status()));
    auto report = (*store)->Import(in);
    if (!report.ok()) return void(exit_code = Fail(report.status()));
    std::cout << fmt::format("lines {} inserted {} skipped {}\n", report->lines, report->inserted,
                             report->skipped);
  });

  // CLI11 would take an unknown word for a missing subcommand ("A subcommand is required"): name
  // it instead.
  if (argc > 1 && argv[1][0] != '-') {
    try {
      app.get_subcommand(argv[1]);
    } catch (const CLI::OptionNotFound&) {
      std::string known;
      for (const CLI::App* command : app.get_subcommands([](CLI::App*) { return true; })) {
        known += (known.empty() ? "" : ", ") + command->get_name();
      }
      std::cerr << "locrit: unknown command \"" << argv[1] << "\" (commands: " << known
                << "; see locrit --help)\n";
      return kExitUsage;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }
  return exit_code;
}

}  // namespace
}  // namespace locrit

int main(int argc, char** argv) { return locrit::Run(argc, argv); }

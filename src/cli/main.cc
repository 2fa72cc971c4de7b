// The locrit command line. The only place where real defaults (clock, id seed) are built.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <fstream>
#include <iostream>
#include <random>

#include "base/clock.h"
#include "base/id_generator.h"
#include "cli/serve.h"
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
  ServeSettings serve_settings;
  auto* serve = app.add_subcommand("serve", "Run the HTTP server");
  serve->add_option("--listen", serve_settings.listen, "HOST:PORT to listen on (port 0: any)")
      ->envname("LOCRIT_LISTEN")
      ->capture_default_str();
  serve->add_option("--data", serve_settings.data, "Data directory")
      ->envname("LOCRIT_DATA")
      ->capture_default_str();
  serve->add_flag("--no-example", serve_settings.no_example,
                  "Do not create the example Locrit on first start")
      ->envname("LOCRIT_NO_EXAMPLE");
  serve->add_option("--shutdown-timeout", serve_settings.shutdown_timeout_s,
                    "Seconds in-flight requests get to finish on SIGINT/SIGTERM")
      ->envname("LOCRIT_SHUTDOWN_TIMEOUT")
      ->check(CLI::Range(0, 3600))
      ->capture_default_str();
  serve->callback([&] { exit_code = Serve(serve_settings); });

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

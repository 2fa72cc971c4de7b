#include "cli/serve.h"

#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "base/clock.h"
#include "base/file_lock.h"
#include "base/id_generator.h"
#include "base/thread_pool.h"
#include "chat/chat_service.h"
#include "chat/embedding_indexer.h"
#include "llm/llm_runtime.h"
#include "memory/memory_manager.h"
#include "registry/conversation_store.h"
#include "registry/locrit_registry.h"
#include "server/admin_tokens.h"
#include "server/api.h"
#include "server/http_server.h"

namespace locrit {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitConfig = 2;
constexpr int kExitInUse = 3;

constexpr const char* kExampleName = "Bob Technique";
constexpr const char* kExampleDescription =
    "Le Locrit d'exemple : un technicien serviable qui répond aux questions techniques.";

void Log(const std::string& line) { std::cerr << "locrit: " << line << std::endl; }

// Each connection is a descriptor: the soft limit (often 1024) is raised to the hard one so
// that max_connections can be reached; a warning says when even the hard limit is lower.
void RaiseOpenFileLimit(int max_connections) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  // Memory files, the registry and the listener need descriptors too.
  constexpr rlim_t kReserved = 256;
  if (limit.rlim_cur != RLIM_INFINITY &&
      limit.rlim_cur < static_cast<rlim_t>(max_connections) + kReserved) {
    Log(
        fmt::format("warning: the open file limit ({}) is below max_connections ({}) + {}; "
                    "connections beyond it will be refused by the system",
                    limit.rlim_cur, max_connections, kReserved));
  }
}

uint64_t EntropySeed() {
  std::random_device device;
  return (static_cast<uint64_t>(device()) << 32) ^ device();
}

struct ListenAddress {
  std::string host;
  uint16_t port = 0;
};

// "HOST:PORT", "[V6]:PORT".
Result<ListenAddress> ParseListen(const std::string& text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) {
    return InvalidArgumentError("--listen must be HOST:PORT, got \"" + text + "\"");
  }
  ListenAddress out;
  out.host = text.substr(0, colon);
  if (out.host.size() > 2 && out.host.front() == '[' && out.host.back() == ']') {
    out.host = out.host.substr(1, out.host.size() - 2);
  }
  const std::string port = text.substr(colon + 1);
  if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port) > 65535) {
    return InvalidArgumentError("--listen: bad port \"" + port + "\"");
  }
  out.port = static_cast<uint16_t>(std::stoi(port));
  return out;
}

bool IsLoopback(const std::string& host) {
  if (host == "localhost" || host == "::1") return true;
  unsigned a, b, c, d;
  char extra;
  if (std::sscanf(host.c_str(), "%u.%u.%u.%u%c", &a, &b, &c, &d, &extra) == 4) {
    return a == 127 && b < 256 && c < 256 && d < 256;
  }
  return false;
}

Status WriteFileAtomically(const std::filesystem::path& path, const std::string& text) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out.flush()) return IoError("cannot write " + tmp.string());
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return IoError("cannot write " + path.string() + ": " + ec.message());
  return Status::Ok();
}

// Whether the default model server answers within a short probe; the model to use: the
// configured one, else the first it offers.
std::optional<std::string> ProbeModelServer(LlmRuntime& runtime, const LlmSettings& defaults) {
  LlmSettings settings = defaults;
  settings.timeouts.connect = std::chrono::milliseconds(500);
  settings.timeouts.first_token = std::chrono::milliseconds(1'500);
  settings.timeouts.idle = std::chrono::milliseconds(1'500);
  settings.timeouts.total = std::chrono::milliseconds(2'000);
  settings.retry.max_retries = 0;
  auto client = runtime.NewClient(settings);
  if (!client.ok()) return std::nullopt;
  std::promise<Result<std::vector<ModelInfo>>> promise;
  auto future = promise.get_future();
  LlmCall call = (*client)->ListModels(
      [&promise](Result<std::vector<ModelInfo>> models) { promise.set_value(std::move(models)); });
  Result<std::vector<ModelInfo>> models = future.get();
  if (!models.ok()) return std::nullopt;
  if (!defaults.model.empty()) return defaults.model;
  if (models->empty()) return std::nullopt;
  return models->front().name;
}

// The example Locrit uses the server's default model ([llm] settings) when that server answers,
// and the built-in recall responder otherwise (or when the default provider is "recall").
Status CreateExample(LocritRegistry& registry, LlmRuntime& runtime, const ServeSettings& settings) {
  LocritConfig bob;
  bob.name = kExampleName;
  bob.description = kExampleDescription;
  const bool recall = settings.llm_provider == "recall";
  const std::optional<std::string> model =
      recall ? std::nullopt : ProbeModelServer(runtime, settings.llm);
  const std::string url = EffectiveBaseUrl(settings.llm);
  if (model) {
    bob.llm.provider = settings.llm.provider == LlmProvider::kOpenAi ? LocritProvider::kOpenAi
                                                                     : LocritProvider::kOllama;
    if (!settings.llm.base_url.empty()) bob.llm.url = settings.llm.base_url;
    bob.model = *model;
  } else {
    bob.llm.provider = LocritProvider::kRecall;
    bob.model = "recall";
  }
  auto created = registry.Create(bob);
  if (!created.ok()) return created.status();
  if (model) {
    Log(fmt::format("created the example Locrit \"{}\": it uses the {} server at {} with model {}",
                    kExampleName, settings.llm_provider, url, *model));
  } else if (recall) {
    Log(fmt::format("created the example Locrit \"{}\": it uses the built-in recall responder "
                    "(llm.provider is \"recall\")",
                    kExampleName));
  } else {
    Log(fmt::format(
        "created the example Locrit \"{}\": it uses the built-in recall responder (no {} server "
        "with a model answered at {})",
        kExampleName, settings.llm_provider, url));
  }
  return Status::Ok();
}

// Calls RetryDue() every `period` until stopped: a lane that backed off after a failure (e.g. the
// embedding server was down) resumes even when its Locrit gets no new turn.
class RetryTimer {
 public:
  RetryTimer(EmbeddingIndexer* indexer, std::chrono::milliseconds period)
      : thread_([this, indexer, period] {
          std::unique_lock<std::mutex> lock(mu_);
          while (!cv_.wait_for(lock, period, [this] { return stopping_; })) {
            lock.unlock();
            indexer->RetryDue();
            lock.lock();
          }
        }) {}
  ~RetryTimer() { Stop(); }
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // GUARDED_BY(mu_)
  std::thread thread_;     // Last: starts once the members above exist.
};

int Fail(int code, const std::string& message) {
  Log(message);
  return code;
}

}  // namespace

int Serve(const ServeSettings& settings) {
  auto listen = ParseListen(settings.listen);
  if (!listen.ok()) return Fail(kExitConfig, listen.status().message());
  // Admin tokens: the configured ones (hashed now, so only hashes stay in memory) and those
  // `locrit token create` stored in the data directory.
  auto stored_tokens = LoadAdminTokens(settings.data);
  if (!stored_tokens.ok()) return Fail(kExitFailure, stored_tokens.status().ToString());
  std::vector<std::string> token_hashes;
  for (const std::string& token : settings.admin_tokens) {
    token_hashes.push_back(HashAdminToken(token));
  }
  for (const StoredAdminToken& token : *stored_tokens) token_hashes.push_back(token.hash);
  const bool local_mode = IsLoopback(listen->host) && token_hashes.empty();
  if (!IsLoopback(listen->host) && token_hashes.empty()) {
    return Fail(kExitConfig,
                "refusing to listen on " + settings.listen +
                    ": a non-loopback address needs an admin token (LOCRIT_ADMIN_TOKEN, "
                    "[access] admin_tokens in locrit.toml, or `locrit token create --data " +
                    settings.data + "`)");
  }

  const std::filesystem::path data = settings.data;
  std::error_code ec;
  std::filesystem::create_directories(data / "locrits", ec);
  if (ec) return Fail(kExitConfig, "cannot create the data directory " + data.string() + ": " +
                                       ec.message());
  auto lock = FileLock::Acquire((data / "locrit.lock").string());
  if (!lock.ok()) {
    return Fail(lock.status().code() == StatusCode::kFailedPrecondition ? kExitInUse
                                                                        : kExitFailure,
                "the data directory " + data.string() + " is in use: " + lock.status().message());
  }

  // Signals are taken by sigwait below; every thread started from here inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  SystemClock clock;
  IdGenerator ids(&clock, EntropySeed());
  RegistryOptions registry_options;
  registry_options.path = (data / "registry.db").string();
  registry_options.clock = &clock;
  registry_options.locrits_dir = (data / "locrits").string();
  auto registry = LocritRegistry::Open(registry_options);
  if (!registry.ok()) return Fail(kExitFailure, registry.status().ToString());

  ConversationStoreOptions conversation_options;
  conversation_options.path = (data / "conversations.db").string();
  conversation_options.clock = &clock;
  auto conversations = ConversationStore::Open(conversation_options);
  if (!conversations.ok()) return Fail(kExitFailure, conversations.status().ToString());

  ThreadPool pool(4);
  MemoryManagerOptions memory_options;
  memory_options.data_dir = data.string();
  memory_options.clock = &clock;
  memory_options.ids = &ids;
  memory_options.pool = &pool;
  memory_options.durability = settings.durability;
  MemoryManager memory(memory_options);
  LlmRuntime llm;

  if ((*registry)->Count() == 0 && !settings.no_example) {
    Status status = CreateExample(**registry, llm, settings);
    if (!status.ok()) return Fail(kExitFailure, "cannot create the example Locrit: " +
                                                    status.ToString());
  }

  EmbeddingIndexerOptions indexer_options;
  indexer_options.memory = &memory;
  indexer_options.llm = &llm;
  indexer_options.clock = &clock;
  EmbeddingIndexer indexer(indexer_options);

  ChatServiceOptions chat_options;
  chat_options.indexer = &indexer;
  chat_options.memory = &memory;
  chat_options.llm = &llm;
  chat_options.ids = &ids;
  chat_options.clock = &clock;
  chat_options.max_message_chars = settings.max_message_chars;
  ChatService chat(chat_options);

  ApiOptions api_options;
  api_options.registry = registry->get();
  api_options.chat = &chat;
  api_options.memory = &memory;
  api_options.llm = &llm;
  api_options.conversations = conversations->get();
  api_options.pool = &pool;
  api_options.clock = &clock;
  api_options.version = LOCRIT_VERSION;
  api_options.max_message_chars = chat_options.max_message_chars;
  api_options.llm_defaults = settings.llm;
  api_options.indexer = &indexer;
  api_options.access.local_mode = local_mode;
  api_options.access.admin_token_hashes = std::move(token_hashes);
  api_options.access.allowed_hosts = {"localhost", "127.0.0.1", "[::1]"};
  if (listen->host != "localhost" && listen->host != "127.0.0.1" && listen->host != "::1") {
    api_options.access.allowed_hosts.push_back(listen->host);
  }
  ServerMetrics metrics({.memory = &memory, .llm = &llm, .work_pool = &pool});
  api_options.metrics = &metrics;
  Api api(api_options);

  // Backfill from the start: messages saved while the embedding server was down, or before the
  // Locrit had an embedding model, get their vectors without waiting for a new turn.
  for (const LocritConfig& locrit : (*registry)->List()) {
    if (std::optional<EmbeddingTarget> target = api.EmbeddingTargetFor(locrit)) {
      indexer.RequestBackfill(*target);
    }
  }
  RetryTimer retry_timer(&indexer, std::chrono::seconds(1));

  HttpServerOptions server_options;
  server_options.host = listen->host;
  server_options.port = listen->port;
  server_options.max_body_bytes = settings.max_body_bytes;
  server_options.max_ws_queue_bytes = settings.max_ws_queue_bytes;
  server_options.request_log = settings.request_log;
  server_options.max_connections = static_cast<size_t>(settings.max_connections);
  server_options.header_timeout = std::chrono::seconds(settings.header_timeout_s);
  server_options.idle_timeout = std::chrono::seconds(settings.idle_timeout_s);
  server_options.metrics = &metrics;
  RaiseOpenFileLimit(settings.max_connections);
  auto server = HttpServer::Start(server_options, &api);
  if (!server.ok()) {
    return Fail(server.status().code() == StatusCode::kInvalidArgument ? kExitConfig
                                                                       : kExitFailure,
                server.status().message());
  }
  const std::string address = (*server)->address();
  const std::filesystem::path addr_file = data / "locrit.addr";
  Status written = WriteFileAtomically(addr_file, address + "\n");
  if (!written.ok()) Log(written.ToString());
  Log("listening on http://" + address);
  Log(local_mode ? "local mode: loopback callers are the operator (no admin token configured)"
                 : fmt::format("{} admin token(s): operator routes need "
                               "\"Authorization: Bearer <token>\"",
                               api_options.access.admin_token_hashes.size()));

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  Log(fmt::format("{}: shutting down", signal_number == SIGINT ? "SIGINT" : "SIGTERM"));

  api.SetDraining();
  (*server)->BeginDrain();
  if (!(*server)->WaitIdle(std::chrono::seconds(settings.shutdown_timeout_s))) {
    Log("requests still running after the shutdown deadline: cancelling them");
  }
  // The indexer stops before the LLM runtime (its calls are cancelled through it) and before the
  // memory manager drains (its passes read and write memory); what it had not embedded yet is
  // backfilled at the next start.
  retry_timer.Stop();
  indexer.Shutdown();
  llm.Shutdown();  // Cancels model calls still running; their turns answer with an error.
  (void)(*server)->WaitIdle(std::chrono::seconds(5));
  (*server)->Stop();
  memory.Shutdown();
  pool.Shutdown();
  std::filesystem::remove(addr_file, ec);
  Log("stopped");
  return kExitOk;
}

}  // namespace locrit

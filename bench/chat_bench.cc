// Chat benchmarks, each next to a baseline measured in the same run (bench/README.md):
//  1. Context assembly: what a chat turn does between "user message saved" and "prompt ready"
//     (the newest 20 messages of the session, Recall, AssembleContext) on a Locrit of 5 000
//     messages and 1 000 memories, bm25 alone and hybrid (768-d vectors on every message and
//     memory), against the history read alone.
//  2. Chat turn overhead: a whole ChatService turn against the fake LLM server answering at once,
//     against a direct LlmClient chat request to the same server.
// Every benchmark times each operation on its own (steady_clock) and reports p50_us and p99_us.
#include <benchmark/benchmark.h>
#include <sqlite3.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <future>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/clock.h"
#include "base/id_generator.h"
#include "base/thread_pool.h"
#include "bench/bench_util.h"
#include "chat/chat_service.h"
#include "chat/context.h"
#include "chat/retrieval.h"
#include "llm/llm_runtime.h"
#include "memory/memory_manager.h"
#include "store/memory_store.h"
#include "tests/support/fake_llm_server.h"
#include "tests/support/temp_dir.h"

namespace locrit {
namespace {

using ::locrit::bench::kVocabulary;
using ::locrit::bench::kVocabularySize;
using ::locrit::bench::LatencyRecorder;
using ::locrit::bench::MakeMessages;
using ::locrit::bench::OrDie;
using ::locrit::bench::SteadyClock;
using ::locrit::bench::ToNewMessage;
using ::locrit::testing::FakeLlmServer;
using ::locrit::testing::FakeReply;
using ::locrit::testing::TempDir;

constexpr int kMessages = 5000;  // The default retention cap.
constexpr int kMemories = 1000;
constexpr int kDims = 768;
constexpr int kFillBatch = 500;
constexpr int kPickPool = 1024;  // Distinct "new messages" the benchmarks cycle through.
constexpr uint64_t kSeed = 20250101;
constexpr const char* kEmbeddingModel = "bench-embed-768";
constexpr const char* kSlug = "bench";

// The product's defaults for a Locrit (ChatLocrit).
constexpr int kContextMessages = 20;
constexpr int kRecallItems = 8;
constexpr size_t kRecallBudgetChars = 4000;

// Deterministic vectors with some meaning, so that the cosine ranking is not noise: every
// vocabulary word has a fixed random direction (seeded), a text's vector is the sum of its words'.
class WordVectors {
 public:
  static const WordVectors& Get() {
    static const WordVectors vectors;
    return vectors;
  }

  std::vector<float> Of(std::string_view text) const {
    std::vector<float> out(kDims, 0.0f);
    size_t start = 0;
    while (start < text.size()) {
      size_t end = text.find(' ', start);
      if (end == std::string_view::npos) end = text.size();
      const auto word = index_.find(text.substr(start, end - start));
      if (word != index_.end()) {
        const float* v = &table_[static_cast<size_t>(word->second) * kDims];
        for (int d = 0; d < kDims; ++d) out[static_cast<size_t>(d)] += v[d];
      }
      start = end + 1;
    }
    return out;
  }

 private:
  WordVectors() : table_(static_cast<size_t>(kVocabularySize) * kDims) {
    std::mt19937_64 rng(kSeed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (float& x : table_) x = normal(rng);
    for (int i = 0; i < kVocabularySize; ++i) index_.emplace(kVocabulary[i], i);
  }

  std::vector<float> table_;
  std::unordered_map<std::string_view, int> index_;
};

// A message of the store taken as the turn's new message, as if it had just been saved.
struct Pick {
  std::string id;
  int64_t seq = 0;
  std::string session;
  std::string text;
  std::vector<float> vector;  // Its vector: the embedding server's answer, in hybrid mode.
};

// The Locrit's memory, built once (relaxed durability, batches: only the file matters) and closed:
// 5 000 messages over 50 sessions and 1 000 memories, each with its 768-d vector.
class Corpus {
 public:
  static const Corpus& Get() {
    static const Corpus corpus;
    return corpus;
  }

  const std::string& store_path() const { return store_path_; }
  const std::vector<Pick>& picks() const { return picks_; }

 private:
  Corpus() : store_path_(dir_.File("memory.db")) {
    const WordVectors& vectors = WordVectors::Get();
    const std::vector<bench::GeneratedMessage> messages = MakeMessages(kMessages, kSeed);
    // Memories: texts drawn like the messages, importance uniform in [0, 1].
    const std::vector<bench::GeneratedMessage> memories = MakeMessages(kMemories, kSeed + 1);
    SystemClock clock;
    IdGenerator ids(&clock, kSeed);
    StoreOptions options;
    options.path = store_path_;
    options.clock = &clock;
    options.ids = &ids;
    options.durability = Durability::kRelaxed;
    options.max_messages = 0;
    auto store = OrDie(MemoryStore::Open(options), "open corpus store");
    std::vector<SavedMessage> saved;
    for (size_t i = 0; i < messages.size(); ++i) {
      if (i % kFillBatch == 0) OrDie(store->BeginBatch(), "begin fill batch");
      saved.push_back(OrDie(store->SaveMessage(ToNewMessage(messages[i])), "fill messages"));
      OrDie(store->SetEmbedding(NodeType::kMessage, saved.back().id, kEmbeddingModel,
                                vectors.Of(messages[i].content)),
            "message vector");
      if ((i + 1) % kFillBatch == 0 || i + 1 == messages.size()) {
        OrDie(store->CommitBatch(), "commit fill batch");
      }
    }
    std::mt19937_64 rng(kSeed + 2);
    std::uniform_real_distribution<double> importance(0.0, 1.0);
    OrDie(store->BeginBatch(), "begin memories");
    for (const bench::GeneratedMessage& m : memories) {
      NewMemory memory;
      memory.content = m.content;
      memory.importance = importance(rng);
      const Memory added = OrDie(store->AddMemory(memory), "fill memories");
      OrDie(store->SetEmbedding(NodeType::kMemory, added.id, kEmbeddingModel,
                                vectors.Of(m.content)),
            "memory vector");
    }
    OrDie(store->CommitBatch(), "commit memories");
    // New messages among the newer half, so the session has a full window before each.
    std::uniform_int_distribution<size_t> pick(messages.size() / 2, messages.size() - 1);
    for (int i = 0; i < kPickPool; ++i) {
      const size_t at = pick(rng);
      picks_.push_back(Pick{saved[at].id, saved[at].seq, messages[at].session,
                            messages[at].content, vectors.Of(messages[at].content)});
    }
  }

  TempDir dir_;
  std::string store_path_;
  std::vector<Pick> picks_;
};

// The corpus store opened as a Locrit's reader would have it (durable, the default cap).
std::unique_ptr<MemoryStore> OpenCorpus(SystemClock& clock, IdGenerator& ids) {
  StoreOptions options;
  options.path = Corpus::Get().store_path();
  options.clock = &clock;
  options.ids = &ids;
  return OrDie(MemoryStore::Open(options), "open corpus");
}

HistoryQuery WindowQuery(const Pick& pick) {
  HistoryQuery history;
  history.session_id = pick.session;
  history.limit = kContextMessages;
  history.before_seq = pick.seq;  // The newest messages before the turn's own, as a turn reads.
  return history;
}

// What ChatService's turn does on its reader between the save and the model call, with the
// product's functions: the window, Recall, AssembleContext.
std::vector<ChatMessage> AssemblePrompt(MemoryStore& store, const Pick& pick, bool hybrid) {
  const std::vector<Message> window = OrDie(store.History(WindowQuery(pick)), "window");
  RecallQuery recall;
  recall.text = pick.text;
  recall.session_id = pick.session;
  recall.exclude_id = pick.id;
  recall.limit = kRecallItems;
  if (hybrid) {
    recall.vector = pick.vector;
    recall.embedding_model = kEmbeddingModel;
    // Every one of the nearest vectors is kept, so each is read back from the store: the
    // heaviest case (with 0.5, the default, these synthetic vectors would mostly be left out).
    recall.min_similarity = 0;
  }
  recall.window_first_seq = window.empty() ? pick.seq : window.front().seq;
  ContextInput input;
  input.locrit_name = "Bench";
  input.description = "Un Locrit de mesure.";
  input.recalled = OrDie(Recall(store, recall), "recall");
  input.window = window;
  input.new_message_id = pick.id;
  input.new_message = pick.text;
  input.recall_budget_chars = kRecallBudgetChars;
  return AssembleContext(input);
}

// ---- 1. Context assembly ----

void BM_History20_Baseline(benchmark::State& state) {
  SystemClock clock;
  IdGenerator ids(&clock, kSeed);
  auto store = OpenCorpus(clock, ids);
  const std::vector<Pick>& picks = Corpus::Get().picks();
  benchmark::DoNotOptimize(store->History(WindowQuery(picks[0])));  // Warm the page cache.
  LatencyRecorder latency(state);
  size_t i = 0;
  for (auto _ : state) {
    const auto start = SteadyClock::now();
    auto window = OrDie(store->History(WindowQuery(picks[i++ % picks.size()])), "window");
    benchmark::DoNotOptimize(window);
    latency.Add(start);
  }
  latency.Report(state);
}

void BM_ContextAssembly(benchmark::State& state) {
  const bool hybrid = state.range(0) != 0;
  SystemClock clock;
  IdGenerator ids(&clock, kSeed);
  auto store = OpenCorpus(clock, ids);
  const std::vector<Pick>& picks = Corpus::Get().picks();
  // The first assembly loads the vectors into the connection's cache: a cost paid once per open
  // store, reported apart from the steady state.
  const auto first = SteadyClock::now();
  benchmark::DoNotOptimize(AssemblePrompt(*store, picks[0], hybrid));
  state.counters["first_ms"] =
      std::chrono::duration<double, std::milli>(SteadyClock::now() - first).count();
  LatencyRecorder latency(state);
  size_t i = 0;
  size_t prompt_chars = 0;
  for (auto _ : state) {
    const auto start = SteadyClock::now();
    std::vector<ChatMessage> prompt = AssemblePrompt(*store, picks[i++ % picks.size()], hybrid);
    latency.Add(start);
    for (const ChatMessage& m : prompt) prompt_chars += m.content.size();
    benchmark::DoNotOptimize(prompt);
  }
  latency.Report(state);
  state.counters["prompt_bytes"] =
      benchmark::Counter(static_cast<double>(prompt_chars), benchmark::Counter::kAvgIterations);
}

// Where context assembly's time goes: the keyword ranking Recall needs (messages and memories,
// 24 candidates), with the whole new message as the query (words:0, up to 32 terms) or only its
// first 3 words (words:3), from the store's in-memory keyword index (index:1, what Recall uses)
// or from FTS5 (index:0: the same bm25 from FTS5 tables of the corpus's messages and memories,
// built with the store's tokenizer in a plain SQLite connection's temp schema, ORDER BY rank
// LIMIT 24 each; what Recall used before the index).
void BM_RecallKeywordSearch(benchmark::State& state) {
  SystemClock clock;
  IdGenerator ids(&clock, kSeed);
  auto store = OpenCorpus(clock, ids);
  sqlite3* raw = nullptr;
  if (sqlite3_open_v2(Corpus::Get().store_path().c_str(), &raw, SQLITE_OPEN_READWRITE, nullptr) !=
      SQLITE_OK) {
    bench::Die("cannot open the corpus with SQLite");
  }
  if (sqlite3_exec(raw,
                   "CREATE VIRTUAL TABLE temp.messages_fts USING fts5(content,"
                   " tokenize='unicode61 remove_diacritics 2');"
                   "INSERT INTO temp.messages_fts(rowid, content) SELECT seq, content FROM messages;"
                   "CREATE VIRTUAL TABLE temp.memories_fts USING fts5(content,"
                   " tokenize='unicode61 remove_diacritics 2');"
                   "INSERT INTO temp.memories_fts(rowid, content) SELECT rid, content FROM memories;",
                   nullptr, nullptr, nullptr) != SQLITE_OK) {
    bench::Die(sqlite3_errmsg(raw));
  }
  const auto prepare = [&](const char* sql) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(raw, sql, -1, &stmt, nullptr) != SQLITE_OK) {
      bench::Die(sqlite3_errmsg(raw));
    }
    return stmt;
  };
  sqlite3_stmt* const fts5[] = {
      prepare("SELECT rowid, rank FROM messages_fts WHERE messages_fts MATCH ?1 "
              "ORDER BY rank LIMIT ?2"),
      prepare("SELECT rowid, rank FROM memories_fts WHERE memories_fts MATCH ?1 "
              "ORDER BY rank LIMIT ?2")};
  const std::vector<Pick>& picks = Corpus::Get().picks();
  const size_t words = static_cast<size_t>(state.range(0));
  const bool index = state.range(1) != 0;
  const int limit = kRecallItems * 3;  // Recall's kCandidatesPerItem.
  LatencyRecorder latency(state);
  size_t i = 0;
  for (auto _ : state) {
    std::string text = picks[i++ % picks.size()].text;
    if (words > 0) {
      size_t end = 0;
      for (size_t w = 0; w < words && end != std::string::npos; ++w) end = text.find(' ', end + 1);
      text = text.substr(0, end);
    }
    // The MATCH expression the store's Search gives FTS5 for the same text.
    std::string match;
    if (!index) {
      for (size_t start = 0; start < text.size();) {
        size_t end = text.find(' ', start);
        if (end == std::string::npos) end = text.size();
        match += fmt::format("{}\"{}\"", match.empty() ? "" : " OR ",
                             text.substr(start, end - start));
        start = end + 1;
      }
    }
    const auto start = SteadyClock::now();
    if (index) {
      KeywordQuery query;
      query.text = text;
      query.limit = limit;
      benchmark::DoNotOptimize(OrDie(store->RankByKeywords(query), "rank"));
    } else {
      std::vector<std::pair<int64_t, double>> hits;
      for (sqlite3_stmt* stmt : fts5) {
        sqlite3_bind_text(stmt, 1, match.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(stmt, 2, limit);
        while (sqlite3_step(stmt) == SQLITE_ROW) {
          hits.emplace_back(sqlite3_column_int64(stmt, 0), sqlite3_column_double(stmt, 1));
        }
        sqlite3_reset(stmt);
      }
      std::sort(hits.begin(), hits.end(),
                [](const auto& a, const auto& b) { return a.second < b.second; });
      benchmark::DoNotOptimize(hits);
    }
    latency.Add(start);
  }
  latency.Report(state);
  for (sqlite3_stmt* stmt : fts5) sqlite3_finalize(stmt);
  sqlite3_close(raw);
}

// ---- 2. Chat turn overhead ----

// The fake LLM server, answering every request at once with one short JSON reply.
FakeLlmServer& InstantLlm() {
  static FakeLlmServer* server = [] {
    auto* s = new FakeLlmServer();
    FakeReply reply;
    reply.one_shot = true;
    reply.deltas = {"D'accord, je m'en souviendrai."};
    s->SetDefault(reply);
    return s;
  }();
  return *server;
}

LlmSettings InstantLlmSettings() {
  LlmSettings settings;
  settings.provider = LlmProvider::kOllama;
  settings.base_url = InstantLlm().url();
  settings.model = "instant";
  return settings;
}

template <typename T>
T Await(std::future<T>& future) {
  if (future.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
    bench::Die("no answer within 30 s");
  }
  return future.get();
}

void BM_LlmRequest_Baseline(benchmark::State& state) {
  LlmRuntime runtime;
  auto client = OrDie(runtime.NewClient(InstantLlmSettings()), "llm client");
  const std::vector<Pick>& picks = Corpus::Get().picks();
  LatencyRecorder latency(state);
  size_t i = 0;
  for (auto _ : state) {
    const auto start = SteadyClock::now();
    ChatRequest request;
    request.messages.push_back(ChatMessage{"user", picks[i++ % picks.size()].text});
    std::promise<Result<ChatReply>> done;
    std::future<Result<ChatReply>> reply = done.get_future();
    LlmCall call = client->Chat(
        std::move(request), [](std::string_view) {},
        [&done](Result<ChatReply> r) { done.set_value(std::move(r)); });
    Result<ChatReply> got = Await(reply);
    latency.Add(start);
    if (!got.ok()) {
      state.SkipWithError(got.status().ToString().c_str());
      break;
    }
  }
  latency.Report(state);
}

void BM_ChatTurn(benchmark::State& state) {
  // A fresh copy of the corpus as the Locrit's memory: every turn saves two messages, and at
  // the cap of 5 000 each save evicts the oldest, so the store stays the same size.
  TempDir data;
  const std::filesystem::path dir = data.path() / "locrits" / kSlug;
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(Corpus::Get().store_path(), dir / "memory.db");
  SystemClock clock;
  IdGenerator ids(&clock, kSeed);
  ThreadPool pool(4);  // As `locrit serve`.
  LlmRuntime runtime;
  MemoryManagerOptions memory_options;
  memory_options.data_dir = data.path().string();
  memory_options.clock = &clock;
  memory_options.ids = &ids;
  memory_options.pool = &pool;
  MemoryManager memory(memory_options);
  ChatServiceOptions options;
  options.memory = &memory;
  options.llm = &runtime;
  options.ids = &ids;
  options.clock = &clock;
  ChatService chat(options);
  ChatLocrit locrit;
  locrit.slug = kSlug;
  locrit.name = "Bench";
  locrit.description = "Un Locrit de mesure.";
  locrit.llm = InstantLlmSettings();
  locrit.context_messages = kContextMessages;
  locrit.max_messages = kMessages;
  locrit.recall_items = kRecallItems;
  locrit.recall_budget_chars = kRecallBudgetChars;

  const std::vector<Pick>& picks = Corpus::Get().picks();
  const auto turn = [&](const Pick& pick) {
    TurnRequest request;
    request.message = pick.text;
    request.session_id = pick.session;
    request.user_id = "user-alice";
    std::promise<Status> done;
    std::future<Status> finished = done.get_future();
    auto handle = chat.Turn(locrit, request, [](std::string_view) {},
                            [&done](Status status, TurnResult) { done.set_value(status); });
    return Await(finished);
  };
  // The first turn opens the store (and checks it): not a turn's steady cost.
  OrDie(turn(picks[0]), "first turn");
  LatencyRecorder latency(state);
  size_t i = 0;
  for (auto _ : state) {
    const auto start = SteadyClock::now();
    const Status status = turn(picks[i++ % picks.size()]);
    latency.Add(start);
    if (!status.ok()) {
      state.SkipWithError(status.ToString().c_str());
      break;
    }
  }
  latency.Report(state);
}

BENCHMARK(BM_History20_Baseline)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ContextAssembly)
    ->ArgName("hybrid")
    ->Arg(0)
    ->Arg(1)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_RecallKeywordSearch)
    ->ArgNames({"words", "index"})
    ->ArgsProduct({{0, 3}, {0, 1}})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_LlmRequest_Baseline)->UseRealTime()->MinTime(1.0)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ChatTurn)->UseRealTime()->MinTime(2.0)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace locrit

BENCHMARK_MAIN();

// Memory store benchmarks, each next to a raw-SQLite baseline measured in the same run, so that a
// ratio compares two figures taken on the same machine, disk and moment (bench/README.md):
//  1. Durable SaveMessage (synchronous=FULL, one transaction each) vs a raw single-row INSERT.
//  2. History of 20 in a 5 000-message store vs a raw indexed SELECT ... LIMIT 20.
//  3. Keyword search in a 5 000-message store vs a raw FTS5 MATCH ... ORDER BY rank LIMIT 10.
//  4. Open + quick_check of a 5 000-message store vs raw sqlite3_open_v2 + PRAGMA quick_check.
//  5. Durable SaveMessage at the retention cap vs below it.
// Every store benchmark times each operation on its own (steady_clock) and reports p50_us and
// p99_us counters; after the usual table, a summary puts each store figure next to its baseline
// with the ratio and the target from the issue.
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/id_generator.h"
#include "bench/bench_util.h"
#include "store/memory_store.h"
#include "tests/support/temp_dir.h"

namespace locrit {
namespace {

using ::locrit::testing::TempDir;
using ::locrit::bench::Die;
using ::locrit::bench::GeneratedMessage;
using ::locrit::bench::kVocabulary;
using ::locrit::bench::kVocabularySize;
using ::locrit::bench::LatencyRecorder;
using ::locrit::bench::MakeMessages;
using ::locrit::bench::OrDie;
using ::locrit::bench::SessionId;
using ::locrit::bench::SteadyClock;
using ::locrit::bench::ToNewMessage;
using ::locrit::bench::Words;
using ::locrit::bench::kSessions;

constexpr int kFillMessages = 5000;  // The store size of targets 2 to 5 (the default cap).
constexpr int kWritePool = 8192;     // Distinct messages the write benchmarks cycle through.
constexpr int kQueryPool = 1024;     // Distinct session picks and search queries.
constexpr int kFillBatch = 500;      // Messages per transaction while pre-filling.
constexpr int64_t kCacheKib = 8192;  // The store's default page cache, given to the raw side too.
constexpr uint64_t kSeed = 20250101;

// ---- Generated data (the same for a store benchmark and its baseline) ----

// Queries of 1 to 3 distinct vocabulary words, drawn uniformly whatever the corpus: people search
// for what a conversation was about, not for its most frequent words.
std::vector<std::vector<std::string_view>> MakeQueries(int count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> terms(1, 3);
  std::uniform_int_distribution<int> word(0, kVocabularySize - 1);
  std::vector<std::vector<std::string_view>> out(static_cast<size_t>(count));
  for (auto& query : out) {
    const size_t n = static_cast<size_t>(terms(rng));
    while (query.size() < n) {
      const std::string_view w = kVocabulary[word(rng)];
      if (std::find(query.begin(), query.end(), w) == query.end()) query.push_back(w);
    }
  }
  return out;
}

std::vector<std::string> MakeSessionPicks(int count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> session(0, kSessions - 1);
  std::vector<std::string> out;
  for (int i = 0; i < count; ++i) out.push_back(SessionId(session(rng)));
  return out;
}


// Bytes this process has handed to write()/pwrite() so far (/proc/self/io "wchar"): what a durable
// save pushes through the WAL and its checkpoints, which is what fsync then waits for.
int64_t BytesWritten() {
  std::ifstream io("/proc/self/io");
  std::string key;
  int64_t value = 0;
  while (io >> key >> value) {
    if (key == "wchar:") return value;
  }
  return 0;
}

// Reports the bytes written per iteration since `start` (from BytesWritten()).
void ReportWritten(benchmark::State& state, int64_t start) {
  state.counters["written_KiB"] = benchmark::Counter(
      static_cast<double>(BytesWritten() - start) / 1024.0, benchmark::Counter::kAvgIterations);
}

// ---- A minimal raw SQLite layer for the baselines (deliberately not store_internal::Db) ----

class RawStmt {
 public:
  RawStmt(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) {
      Die(fmt::format("prepare {}: {}", sql, sqlite3_errmsg(db)));
    }
  }
  ~RawStmt() { sqlite3_finalize(stmt_); }
  RawStmt(const RawStmt&) = delete;
  RawStmt& operator=(const RawStmt&) = delete;

  RawStmt& Bind(int index, std::string_view text) {
    sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
    return *this;
  }
  RawStmt& Bind(int index, int64_t value) {
    sqlite3_bind_int64(stmt_, index, value);
    return *this;
  }
  // True while a row is available; a failure is reported by Failed() after the loop.
  bool Step() {
    last_rc_ = sqlite3_step(stmt_);
    return last_rc_ == SQLITE_ROW;
  }
  bool Failed() const { return last_rc_ != SQLITE_ROW && last_rc_ != SQLITE_DONE; }
  const char* Error() const { return sqlite3_errmsg(db_); }
  void Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  double Double(int col) const { return sqlite3_column_double(stmt_, col); }
  std::string Text(int col) const {
    const unsigned char* text = sqlite3_column_text(stmt_, col);
    const int bytes = sqlite3_column_bytes(stmt_, col);
    return text == nullptr
               ? std::string()
               : std::string(reinterpret_cast<const char*>(text), static_cast<size_t>(bytes));
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int last_rc_ = SQLITE_OK;
};

class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    if (sqlite3_open_v2(path.c_str(), &db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        nullptr) != SQLITE_OK) {
      Die(fmt::format("open {}: {}", path, sqlite3_errmsg(db_)));
    }
  }
  ~RawDb() { sqlite3_close_v2(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  void Exec(const std::string& sql) {
    char* error = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
      const std::string message = error != nullptr ? error : "?";
      sqlite3_free(error);
      Die(fmt::format("exec {}: {}", sql, message));
    }
  }
  // The pragmas the store's Configure() sets that matter for speed, so a ratio compares code
  // paths, not settings.
  void ConfigureLikeStore(std::string_view synchronous) {
    Exec(fmt::format("PRAGMA journal_mode = WAL; PRAGMA synchronous = {}; PRAGMA cache_size = -{};",
                     synchronous, kCacheKib));
  }
  sqlite3* get() const { return db_; }

 private:
  sqlite3* db_ = nullptr;
};

// The raw table of the baselines: the four columns a chat message needs.
constexpr const char* kRawTable =
    "CREATE TABLE IF NOT EXISTS messages(id TEXT, session TEXT, content TEXT, created_at INT)";

// ---- The shared 5 000-message data set ----

// Built once (about a second) and shared by the read benchmarks, which leave it unchanged, and
// copied by the at-cap write benchmark. A function-local static because Google Benchmark calls
// each benchmark function several times while it sizes the run.
class Corpus {
 public:
  static const Corpus& Get(Words words = Words::kUniform) {
    if (words == Words::kZipf) {
      static const Corpus zipf(Words::kZipf);
      return zipf;
    }
    static const Corpus uniform(Words::kUniform);
    return uniform;
  }

  // The store: kFillMessages messages over kSessions sessions, closed (no WAL left over).
  const std::string& store_path() const { return store_path_; }
  // The same messages in the raw table (indexed on session) and in a raw FTS5 table.
  const std::string& raw_path() const { return raw_path_; }

 private:
  explicit Corpus(Words words)
      : store_path_(dir_.File("store.db")), raw_path_(dir_.File("raw.db")) {
    const std::vector<GeneratedMessage> messages = MakeMessages(kFillMessages, kSeed, words);
    SystemClock clock;
    IdGenerator ids(&clock, kSeed);
    std::vector<SavedMessage> saved;
    {
      // Relaxed durability and batches: only the resulting file matters here, not how it got
      // written; SaveMessage still runs once per message, so every derived row is as in use.
      StoreOptions options;
      options.path = store_path_;
      options.clock = &clock;
      options.ids = &ids;
      options.durability = Durability::kRelaxed;
      options.max_messages = 0;
      auto store = OrDie(MemoryStore::Open(options), "open corpus store");
      for (size_t i = 0; i < messages.size(); ++i) {
        if (i % kFillBatch == 0) OrDie(store->BeginBatch(), "begin fill batch");
        saved.push_back(OrDie(store->SaveMessage(ToNewMessage(messages[i])), "fill store"));
        if ((i + 1) % kFillBatch == 0 || i + 1 == messages.size()) {
          OrDie(store->CommitBatch(), "commit fill batch");
        }
      }
    }
    RawDb raw(raw_path_);
    raw.ConfigureLikeStore("NORMAL");
    raw.Exec(kRawTable);
    raw.Exec("CREATE INDEX messages_by_session ON messages(session)");
    // The store's tokenizer, so both sides index the same terms.
    raw.Exec(
        "CREATE VIRTUAL TABLE messages_fts USING fts5(content, "
        "tokenize='unicode61 remove_diacritics 2')");
    raw.Exec("BEGIN");
    RawStmt insert(raw.get(), "INSERT INTO messages VALUES (?1, ?2, ?3, ?4)");
    RawStmt index(raw.get(), "INSERT INTO messages_fts(rowid, content) VALUES (?1, ?2)");
    for (size_t i = 0; i < messages.size(); ++i) {
      insert.Bind(1, saved[i].id).Bind(2, messages[i].session).Bind(3, messages[i].content);
      insert.Bind(4, saved[i].created_at);
      if (insert.Step() || insert.Failed()) Die(fmt::format("raw fill: {}", insert.Error()));
      insert.Reset();
      index.Bind(1, sqlite3_last_insert_rowid(raw.get())).Bind(2, messages[i].content);
      if (index.Step() || index.Failed()) Die(fmt::format("raw fts fill: {}", index.Error()));
      index.Reset();
    }
    raw.Exec("COMMIT");
  }

  TempDir dir_;
  std::string store_path_;
  std::string raw_path_;
};

// A store on `path` with durable commits, the real clock and a real id generator.
class OpenStore {
 public:
  OpenStore(const std::string& path, int64_t max_messages) : ids_(&clock_, kSeed + 1) {
    StoreOptions options;
    options.path = path;
    options.clock = &clock_;
    options.ids = &ids_;
    options.durability = Durability::kFull;
    options.max_messages = max_messages;
    store_ = OrDie(MemoryStore::Open(options), "open store");
  }
  MemoryStore& operator*() { return *store_; }
  MemoryStore* operator->() { return store_.get(); }

 private:
  SystemClock clock_;
  IdGenerator ids_;
  std::unique_ptr<MemoryStore> store_;
};

const std::vector<GeneratedMessage>& WritePool() {
  static const std::vector<GeneratedMessage> pool = MakeMessages(kWritePool, kSeed + 2);
  return pool;
}

// The measured loop of every SaveMessage benchmark: one durable transaction per iteration.
void RunSaves(benchmark::State& state, MemoryStore& store) {
  const auto& pool = WritePool();
  LatencyRecorder latencies(state);
  size_t next = 0;
  const int64_t written = BytesWritten();
  for (auto _ : state) {
    const NewMessage message = ToNewMessage(pool[next++ % pool.size()]);
    const auto start = SteadyClock::now();
    auto saved = store.SaveMessage(message);
    latencies.Add(start);
    if (!saved.ok()) {
      state.SkipWithError(saved.status().ToString().c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
  ReportWritten(state, written);
  latencies.Report(state);
}

// ---- 1. Durable writes, one transaction each ----

void BM_SaveDurable_Raw(benchmark::State& state) {
  TempDir dir;
  SystemClock clock;
  IdGenerator ids(&clock, kSeed + 3);
  RawDb db(dir.File("raw.db"));
  db.ConfigureLikeStore("FULL");
  db.Exec(kRawTable);
  RawStmt insert(db.get(), "INSERT INTO messages VALUES (?1, ?2, ?3, ?4)");
  const auto& pool = WritePool();
  LatencyRecorder latencies(state);
  size_t next = 0;
  const int64_t written = BytesWritten();
  for (auto _ : state) {
    const GeneratedMessage& m = pool[next++ % pool.size()];
    const auto start = SteadyClock::now();
    // Bound SQLITE_STATIC: `id` outlives the step, and Reset() clears the bindings.
    const std::string id = ids.Next();
    insert.Bind(1, id).Bind(2, m.session).Bind(3, m.content).Bind(4, clock.NowMillis());
    const bool row = insert.Step();
    insert.Reset();  // Autocommit: the INSERT is its own transaction, committed by the step.
    latencies.Add(start);
    if (row || insert.Failed()) {
      state.SkipWithError(insert.Error());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
  ReportWritten(state, written);
  latencies.Report(state);
}

void BM_SaveDurable_Store(benchmark::State& state) {
  TempDir dir;
  OpenStore store(dir.File("memory.db"), /*max_messages=*/0);
  RunSaves(state, *store);
}

// ---- 2. History of 20 at 5 000 messages ----

void BM_History20_Raw(benchmark::State& state) {
  RawDb db(Corpus::Get().raw_path());
  db.ConfigureLikeStore("FULL");
  RawStmt select(db.get(),
                 "SELECT rowid, id, session, content, created_at FROM messages "
                 "WHERE session = ?1 ORDER BY rowid DESC LIMIT 20");
  // What the store returns per row, minus the columns the raw table lacks.
  struct Row {
    int64_t seq;
    std::string id;
    std::string session;
    std::string content;
    int64_t created_at;
  };
  const std::vector<std::string> sessions = MakeSessionPicks(kQueryPool, kSeed + 4);
  LatencyRecorder latencies(state);
  size_t next = 0;
  for (auto _ : state) {
    const std::string& session = sessions[next++ % sessions.size()];
    const auto start = SteadyClock::now();
    std::vector<Row> rows;
    select.Bind(1, session);
    while (select.Step()) {
      rows.push_back(
          {select.Int(0), select.Text(1), select.Text(2), select.Text(3), select.Int(4)});
    }
    const bool failed = select.Failed();
    select.Reset();
    std::reverse(rows.begin(), rows.end());  // Chronological, as History returns them.
    latencies.Add(start);
    if (failed || rows.empty()) {
      state.SkipWithError(failed ? select.Error() : "raw history: no rows");
      break;
    }
    benchmark::DoNotOptimize(rows.data());
  }
  state.SetItemsProcessed(state.iterations());
  latencies.Report(state);
}

void BM_History20_Store(benchmark::State& state) {
  OpenStore store(Corpus::Get().store_path(), /*max_messages=*/0);
  const std::vector<std::string> sessions = MakeSessionPicks(kQueryPool, kSeed + 4);
  LatencyRecorder latencies(state);
  size_t next = 0;
  for (auto _ : state) {
    HistoryQuery query;
    query.session_id = sessions[next++ % sessions.size()];
    query.limit = 20;
    const auto start = SteadyClock::now();
    auto history = store->History(query);
    latencies.Add(start);
    if (!history.ok() || history->empty()) {
      state.SkipWithError(history.ok() ? "history: no rows" : history.status().ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(history->data());
  }
  state.SetItemsProcessed(state.iterations());
  latencies.Report(state);
}

// ---- 3. Keyword search at 5 000 messages ----

Words CorpusArg(const benchmark::State& state) {
  return state.range(0) == 0 ? Words::kUniform : Words::kZipf;
}

void BM_Search_Raw(benchmark::State& state) {
  RawDb db(Corpus::Get(CorpusArg(state)).raw_path());
  db.ConfigureLikeStore("FULL");
  RawStmt select(db.get(),
                 "SELECT rowid, content, rank FROM messages_fts WHERE messages_fts MATCH ?1 "
                 "ORDER BY rank LIMIT 10");
  // The MATCH expression the store builds for the same words: quoted terms, OR-ed.
  std::vector<std::string> matches;
  for (const auto& words : MakeQueries(kQueryPool, kSeed + 5)) {
    std::string match;
    for (const std::string_view w : words) {
      match += fmt::format("{}\"{}\"", match.empty() ? "" : " OR ", w);
    }
    matches.push_back(std::move(match));
  }
  LatencyRecorder latencies(state);
  size_t next = 0;
  int64_t hits = 0;
  for (auto _ : state) {
    const std::string& match = matches[next++ % matches.size()];
    const auto start = SteadyClock::now();
    std::vector<std::pair<int64_t, std::string>> rows;
    select.Bind(1, match);
    while (select.Step()) rows.emplace_back(select.Int(0), select.Text(1));
    const bool failed = select.Failed();
    select.Reset();
    latencies.Add(start);
    if (failed) {
      state.SkipWithError(select.Error());
      break;
    }
    hits += static_cast<int64_t>(rows.size());
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["hits"] =
      benchmark::Counter(static_cast<double>(hits), benchmark::Counter::kAvgIterations);
  latencies.Report(state);
}

void BM_Search_Store(benchmark::State& state) {
  OpenStore store(Corpus::Get(CorpusArg(state)).store_path(), /*max_messages=*/0);
  std::vector<std::string> texts;
  for (const auto& words : MakeQueries(kQueryPool, kSeed + 5)) {
    std::string text;
    for (const std::string_view w : words) text += fmt::format("{}{}", text.empty() ? "" : " ", w);
    texts.push_back(std::move(text));
  }
  // The first search builds the connection's keyword index from the file: a cost paid once per
  // open connection, reported apart from the steady state.
  {
    SearchQuery first;
    first.text = texts[0];
    const auto start = SteadyClock::now();
    if (!store->Search(first).ok()) {
      state.SkipWithError("first search failed");
      return;
    }
    state.counters["first_ms"] =
        std::chrono::duration<double, std::milli>(SteadyClock::now() - start).count();
  }
  LatencyRecorder latencies(state);
  size_t next = 0;
  int64_t hits = 0;
  for (auto _ : state) {
    SearchQuery query;  // Defaults, as the server sends it: messages, memories and concepts.
    query.text = texts[next++ % texts.size()];
    query.limit = 10;
    const auto start = SteadyClock::now();
    auto found = store->Search(query);
    latencies.Add(start);
    if (!found.ok()) {
      const std::string error = found.status().code() == StatusCode::kUnimplemented
                                    ? "MemoryStore::Search is not implemented yet in this build: " +
                                          found.status().ToString()
                                    : found.status().ToString();
      state.SkipWithError(error.c_str());
      break;
    }
    hits += static_cast<int64_t>(found->size());
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["hits"] =
      benchmark::Counter(static_cast<double>(hits), benchmark::Counter::kAvgIterations);
  latencies.Report(state);
}

// ---- 4. Open + quick_check at 5 000 messages ----

// quick_check reads every page, so its time follows the file's size.
void ReportFileSize(benchmark::State& state, const std::string& path) {
  std::error_code error;
  const auto bytes = std::filesystem::file_size(path, error);
  if (!error) state.counters["db_MiB"] = static_cast<double>(bytes) / (1024.0 * 1024.0);
}

void BM_OpenCheck_Raw(benchmark::State& state) {
  const std::string& path = Corpus::Get().store_path();  // The store's own file.
  LatencyRecorder latencies(state);
  for (auto _ : state) {
    const auto start = SteadyClock::now();
    std::string result;
    bool failed = false;
    {
      RawDb db(path);
      RawStmt check(db.get(), "PRAGMA quick_check");
      while (check.Step()) result += check.Text(0);
      failed = check.Failed();
    }
    latencies.Add(start);
    if (failed || result != "ok") {
      state.SkipWithError(("raw quick_check: " + result).c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
  ReportFileSize(state, path);
  latencies.Report(state);
}

void BM_OpenCheck_Store(benchmark::State& state) {
  const std::string& path = Corpus::Get().store_path();
  SystemClock clock;
  IdGenerator ids(&clock, kSeed + 6);
  StoreOptions options;
  options.path = path;
  options.clock = &clock;
  options.ids = &ids;
  LatencyRecorder latencies(state);
  for (auto _ : state) {
    const auto start = SteadyClock::now();
    Result<std::string> check = InternalError("not run");
    {
      auto store = MemoryStore::Open(options);
      if (store.ok())
        check = (*store)->QuickCheck();
      else
        check = store.status();
    }  // Closing is part of the cost: the next open must not find the file already open.
    latencies.Add(start);
    if (!check.ok() || *check != "ok") {
      state.SkipWithError(
          (check.ok() ? "quick_check: " + *check : check.status().ToString()).c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
  ReportFileSize(state, path);
  latencies.Report(state);
}

// ---- 5. Durable writes at the retention cap ----

// The baseline of target 5: a store with a few messages and no cap, so no retention work.
void BM_SaveBelowCap_Store(benchmark::State& state) {
  TempDir dir;
  OpenStore store(dir.File("memory.db"), /*max_messages=*/0);
  OrDie(store->BeginBatch(), "begin");
  for (int s = 0; s < kSessions; ++s) {
    OrDie(store->SaveMessage(ToNewMessage({SessionId(s), "première note", true})), "seed");
  }
  OrDie(store->CommitBatch(), "commit");
  RunSaves(state, *store);
}

// A copy of the 5 000-message corpus opened with max_messages = 5 000: every save evicts the
// oldest message (with its edges and FTS entry) and now and then reclaims free pages.
void BM_SaveAtCap_Store(benchmark::State& state) {
  TempDir dir;
  const std::string path = dir.File("memory.db");
  std::filesystem::copy_file(Corpus::Get().store_path(), path);
  OpenStore store(path, /*max_messages=*/kFillMessages);
  RunSaves(state, *store);
  auto stats = store->Statistics();
  if (stats.ok()) state.counters["messages"] = static_cast<double>(stats->messages);
}

// Real time everywhere: fsync and page-cache I/O are what is being measured, and the process
// sleeps during them. Write benchmarks run longer because commit times vary a lot on a VM disk.
BENCHMARK(BM_SaveDurable_Raw)->UseRealTime()->MinTime(1.0)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SaveDurable_Store)->UseRealTime()->MinTime(1.0)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_History20_Raw)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_History20_Store)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Search_Raw)
    ->ArgName("zipf")
    ->Arg(0)
    ->Arg(1)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Search_Store)
    ->ArgName("zipf")
    ->Arg(0)
    ->Arg(1)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_OpenCheck_Raw)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_OpenCheck_Store)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SaveBelowCap_Store)->UseRealTime()->MinTime(1.0)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SaveAtCap_Store)->UseRealTime()->MinTime(1.0)->Unit(benchmark::kMicrosecond);

// ---- The summary: each store figure next to its baseline ----

enum class Metric {
  kItemsPerSecond,  // Higher is better.
  kMeanMicros,      // Real time per operation; lower is better.
  kP50Micros,       // Lower is better.
};

struct Comparison {
  const char* item;
  const char* store;  // Benchmark function names, with "/arg:value" when it has arguments.
  const char* baseline;
  Metric metric;
  const char* target;
  // Whether the target is met, given the store figure, the baseline figure and their ratio
  // (store / baseline of the metric).
  std::function<bool(double store, double baseline, double ratio)> met;
};

const std::vector<Comparison>& Comparisons() {
  static const std::vector<Comparison> comparisons = {
      {"1 durable save", "BM_SaveDurable_Store", "BM_SaveDurable_Raw", Metric::kItemsPerSecond,
       "ratio >= 0.70", [](double, double, double r) { return r >= 0.7; }},
      {"2 history 20 @5k", "BM_History20_Store", "BM_History20_Raw", Metric::kP50Micros,
       "store p50 <= 50 us", [](double s, double, double) { return s <= 50; }},
      {"3 search @5k", "BM_Search_Store/zipf:0", "BM_Search_Raw/zipf:0", Metric::kP50Micros,
       "store p50 <= 300 us", [](double s, double, double) { return s <= 300; }},
      {"3b same, Zipf", "BM_Search_Store/zipf:1", "BM_Search_Raw/zipf:1", Metric::kP50Micros,
       "store p50 <= 300 us", [](double s, double, double) { return s <= 300; }},
      {"4 open+check @5k", "BM_OpenCheck_Store", "BM_OpenCheck_Raw", Metric::kP50Micros,
       "store p50 <= 20 ms", [](double s, double, double) { return s <= 20000; }},
      {"5 save at cap", "BM_SaveAtCap_Store", "BM_SaveBelowCap_Store", Metric::kMeanMicros,
       "ratio <= 1.30", [](double, double, double r) { return r <= 1.3; }},
  };
  return comparisons;
}

// The console table as usual, then the summary. The figures are the medians over repetitions
// (--benchmark_repetitions), taken from the per-repetition runs.
class SummaryReporter : public benchmark::ConsoleReporter {
 public:
  explicit SummaryReporter(OutputOptions options) : ConsoleReporter(options) {}

  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      const std::string& args = run.run_name.args;
      Figures& figures = figures_[run.run_name.function_name + (args.empty() ? "" : "/" + args)];
      if (run.error_occurred) {
        figures.error = run.error_message;
      } else if (run.run_type == Run::RT_Iteration) {
        figures.runs.push_back(run);
      } else if (run.aggregate_name == "median") {
        figures.median = run;  // Only used when the per-repetition runs are not reported.
      }
    }
    ConsoleReporter::ReportRuns(runs);
  }

  void Finalize() override {
    ConsoleReporter::Finalize();
    std::ostream& out = GetOutputStream();
    out << "\nSummary (median over repetitions; ratio = store / baseline of the metric)\n";
    out << fmt::format("{:<18} {:<10} {:>12} {:>12} {:>7} {:>11} {:>11}  {:<20} {}\n", "item",
                       "metric", "store", "baseline", "ratio", "store p99", "base p99", "target",
                       "verdict");
    for (const Comparison& c : Comparisons()) {
      const auto store = Value(c.store, c.metric);
      const auto baseline = Value(c.baseline, c.metric);
      const char* metric = c.metric == Metric::kItemsPerSecond ? "items/s"
                           : c.metric == Metric::kMeanMicros   ? "mean us"
                                                               : "p50 us";
      if (!store || !baseline) {
        const std::string& error = figures_[store ? c.baseline : c.store].error;
        out << fmt::format("{:<18} {:<10} not measured{}\n", c.item, metric,
                           error.empty() ? " (filtered out)" : ": " + error);
        continue;
      }
      const double ratio = *store / *baseline;
      out << fmt::format(
          "{:<18} {:<10} {:>12.1f} {:>12.1f} {:>7.2f} {:>11.1f} {:>11.1f}  {:<20} {}\n", c.item,
          metric, *store, *baseline, ratio, Counter(c.store, "p99_us").value_or(0),
          Counter(c.baseline, "p99_us").value_or(0), c.target,
          c.met(*store, *baseline, ratio) ? "met" : "MISSED");
    }
  }

 private:
  struct Figures {
    std::vector<Run> runs;
    std::optional<Run> median;
    std::string error;
  };

  static double Median(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    const size_t n = values.size();
    return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
  }

  static std::optional<double> CounterOf(const Run& run, const std::string& name) {
    const auto it = run.counters.find(name);
    if (it == run.counters.end()) return std::nullopt;
    return it->second.value;
  }

  std::optional<double> Counter(const std::string& name, const std::string& counter) {
    const auto found = figures_.find(name);
    if (found == figures_.end() || !found->second.error.empty()) return std::nullopt;
    std::vector<double> values;
    for (const Run& run : found->second.runs) {
      if (auto v = CounterOf(run, counter)) values.push_back(*v);
    }
    if (!values.empty()) return Median(values);
    if (found->second.median) return CounterOf(*found->second.median, counter);
    return std::nullopt;
  }

  std::optional<double> Value(const std::string& name, Metric metric) {
    switch (metric) {
      case Metric::kItemsPerSecond:
        return Counter(name, "items_per_second");
      case Metric::kMeanMicros: {
        const auto rate = Counter(name, "items_per_second");
        if (!rate || *rate <= 0) return std::nullopt;
        return 1e6 / *rate;
      }
      case Metric::kP50Micros:
        return Counter(name, "p50_us");
    }
    return std::nullopt;
  }

  std::map<std::string, Figures> figures_;
};

}  // namespace
}  // namespace locrit

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  // Our own display reporter (for the summary); --benchmark_out still writes JSON or CSV files.
  using Reporter = locrit::SummaryReporter;
  Reporter reporter(isatty(STDOUT_FILENO) ? Reporter::OO_ColorTabular : Reporter::OO_Tabular);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}

// Memory store benchmarks, each beside a raw-SQLite baseline doing the same job in the same run.
//
//   store_bench [--benchmark_filter=...]
//
// Read the pairs: BM_Store* against BM_Raw*. Throughput benchmarks report items_per_second; the
// latency ones also report p50_us / p99_us counters measured per operation.
#include <benchmark/benchmark.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <string>
#include <vector>

#include "store/memory_store.h"
#include "tests/support/store_fixture.h"
#include "tests/support/temp_dir.h"

namespace locrit {
namespace {

using ::locrit::testing::StoreHarness;
using ::locrit::testing::TempDir;
using Clock = std::chrono::steady_clock;

constexpr int kFill = 5000;

// Words of the old app's French and English chat fixtures.
const std::vector<std::string>& Vocabulary() {
  static const std::vector<std::string> words = {
      "jardin", "tomate", "voyage", "musique", "piano", "jazz", "train", "japon", "lyon",
      "pluie", "weather", "birthday", "réunion", "demain", "tomorrow", "cuisine", "cooking",
      "recipe", "bread", "cheese", "family", "friend", "city", "mountain", "river", "sun",
      "travel", "plane", "ticket", "travail", "projet", "mémoire", "souvenir", "note", "plan",
      "question", "réponse", "answer", "movie", "livre", "book", "rust", "javascript", "query",
      "graph", "node", "edge", "session", "locrit", "assistant", "bonjour", "hello", "merci",
      "thanks", "salut", "toujours", "always", "jamais", "never", "encore", "again", "peut-être",
      "maybe", "aujourd'hui", "today", "éléphant", "café", "thé", "sucre", "printemps", "semis",
      "mars", "alice", "bob", "chat", "tu", "je", "nous", "elle", "il", "very", "much", "really"};
  return words;
}

std::string Sentence(std::mt19937& rng, int min_words, int max_words) {
  const auto& words = Vocabulary();
  const int n = min_words + static_cast<int>(rng() % static_cast<unsigned>(max_words - min_words + 1));
  std::string out;
  for (int i = 0; i < n; ++i) {
    if (i > 0) out += ' ';
    out += words[rng() % words.size()];
  }
  return out;
}

// Natural text is Zipfian: a few words are everywhere, most are rare. This corpus draws from
// 4 000 words with P(rank r) ~ 1/r; the uniform one above is the worst case for bm25.
class ZipfWords {
 public:
  ZipfWords() {
    for (const auto& w : Vocabulary()) words_.push_back(w);
    for (int i = 0; words_.size() < 4000; ++i) words_.push_back("mot" + std::to_string(i));
    double total = 0;
    for (size_t r = 1; r <= words_.size(); ++r) cdf_.push_back(total += 1.0 / static_cast<double>(r));
    for (double& c : cdf_) c /= total;
  }
  std::string Sentence(std::mt19937& rng, int min_words, int max_words) const {
    std::uniform_real_distribution<double> u(0, 1);
    const int n = min_words + static_cast<int>(rng() % static_cast<unsigned>(max_words - min_words + 1));
    std::string out;
    for (int i = 0; i < n; ++i) {
      const size_t r = static_cast<size_t>(std::lower_bound(cdf_.begin(), cdf_.end(), u(rng)) - cdf_.begin());
      if (i > 0) out += ' ';
      out += words_[std::min(r, words_.size() - 1)];
    }
    return out;
  }

 private:
  std::vector<std::string> words_;
  std::vector<double> cdf_;
};

void ReportPercentiles(benchmark::State& state, std::vector<double>& micros) {
  if (micros.empty()) return;
  std::sort(micros.begin(), micros.end());
  state.counters["p50_us"] = micros[micros.size() / 2];
  state.counters["p99_us"] = micros[std::min(micros.size() - 1, micros.size() * 99 / 100)];
}

template <typename F>
double TimeMicros(F&& f) {
  const auto start = Clock::now();
  f();
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

// ---- A raw SQLite baseline: one table of messages, the same pragmas, no graph. ----
class RawDb {
 public:
  explicit RawDb(const std::string& path, bool full = true) {
    sqlite3_open(path.c_str(), &db_);
    Exec(std::string("PRAGMA journal_mode=WAL; PRAGMA synchronous=") + (full ? "FULL" : "NORMAL") +
         "; CREATE TABLE IF NOT EXISTS m(id TEXT, session TEXT, content TEXT, created_at INT);"
         "CREATE INDEX IF NOT EXISTS m_session ON m(session);"
         "CREATE VIRTUAL TABLE IF NOT EXISTS f USING fts5(content, content='m', "
         "tokenize='unicode61 remove_diacritics 2');");
  }
  ~RawDb() { sqlite3_close_v2(db_); }
  void Exec(const std::string& sql) { sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr); }
  sqlite3_stmt* Prepare(const char* sql) {
    sqlite3_stmt* s = nullptr;
    sqlite3_prepare_v2(db_, sql, -1, &s, nullptr);
    return s;
  }
  sqlite3* raw() { return db_; }

 private:
  sqlite3* db_ = nullptr;
};

void RawInsert(sqlite3_stmt* insert, const std::string& id, const std::string& session,
               const std::string& content) {
  sqlite3_bind_text(insert, 1, id.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(insert, 2, session.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(insert, 3, content.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(insert, 4, 1735718400000);
  sqlite3_step(insert);
  sqlite3_reset(insert);
}

// ---- 1. Durable saves, one per transaction ----

void BM_StoreSaveMessageDurable(benchmark::State& state) {
  StoreHarness harness(0);
  auto store = std::move(harness.Open()).value();
  std::mt19937 rng(1);
  int i = 0;
  for (auto _ : state) {
    auto saved = store->SaveMessage(
        StoreHarness::UserMessage("s" + std::to_string(i++ % 20), Sentence(rng, 8, 30)));
    if (!saved.ok()) state.SkipWithError(saved.status().ToString().c_str());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_StoreSaveMessageDurable)->UseRealTime()->MinTime(2.0);

void BM_RawInsertDurable(benchmark::State& state) {
  TempDir dir;
  RawDb db(dir.File("raw.db"));
  sqlite3_stmt* insert = db.Prepare("INSERT INTO m VALUES (?1, ?2, ?3, ?4)");
  std::mt19937 rng(1);
  int i = 0;
  for (auto _ : state) {
    RawInsert(insert, "id" + std::to_string(i), "s" + std::to_string(i % 20), Sentence(rng, 8, 30));
    ++i;
  }
  sqlite3_finalize(insert);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RawInsertDurable)->UseRealTime()->MinTime(2.0);

// ---- Stores filled with 5 000 messages over 50 sessions, shared by the read benchmarks ----

enum class Corpus { kUniform, kZipf };

struct Filled {
  StoreHarness harness{0};
  std::unique_ptr<MemoryStore> store;
  TempDir raw_dir;
  std::unique_ptr<RawDb> raw;
};

Filled* Fill(Corpus corpus) {
    auto* f = new Filled;
    static const ZipfWords zipf;
    f->harness.options().durability = Durability::kRelaxed;
    f->store = std::move(f->harness.Open()).value();
    f->raw = std::make_unique<RawDb>(f->raw_dir.File("raw.db"), false);
    sqlite3_stmt* insert = f->raw->Prepare("INSERT INTO m VALUES (?1, ?2, ?3, ?4)");
    f->raw->Exec("BEGIN");
    (void)f->store->BeginBatch();
    std::mt19937 rng(7);
    for (int i = 0; i < kFill; ++i) {
      const std::string session = "s" + std::to_string(i % 50);
      const std::string content =
          corpus == Corpus::kZipf ? zipf.Sentence(rng, 8, 30) : Sentence(rng, 8, 30);
      (void)f->store->SaveMessage(StoreHarness::UserMessage(session, content));
      RawInsert(insert, "id" + std::to_string(i), session, content);
    }
    (void)f->store->CommitBatch();
    f->raw->Exec("COMMIT; INSERT INTO f(f) VALUES('rebuild');");
    sqlite3_finalize(insert);
    return f;
}

Filled& FilledStores(Corpus corpus = Corpus::kUniform) {
  static Filled* uniform = Fill(Corpus::kUniform);
  if (corpus == Corpus::kUniform) return *uniform;
  static Filled* zipfian = Fill(Corpus::kZipf);
  return *zipfian;
}

// ---- 2. History of 20 at 5 000 messages ----

void BM_StoreHistory20(benchmark::State& state) {
  Filled& f = FilledStores();
  std::mt19937 rng(3);
  std::vector<double> micros;
  for (auto _ : state) {
    const std::string session = "s" + std::to_string(rng() % 50);
    micros.push_back(TimeMicros([&] {
      auto h = f.store->History({session, 20, {}});
      benchmark::DoNotOptimize(h);
    }));
  }
  ReportPercentiles(state, micros);
}
BENCHMARK(BM_StoreHistory20)->MinTime(1.0);

void BM_RawHistory20(benchmark::State& state) {
  Filled& f = FilledStores();
  sqlite3_stmt* q = f.raw->Prepare(
      "SELECT rowid, id, session, content, created_at FROM m WHERE session = ?1 "
      "ORDER BY rowid DESC LIMIT 20");
  std::mt19937 rng(3);
  std::vector<double> micros;
  for (auto _ : state) {
    const std::string session = "s" + std::to_string(rng() % 50);
    micros.push_back(TimeMicros([&] {
      sqlite3_bind_text(q, 1, session.c_str(), -1, SQLITE_TRANSIENT);
      std::vector<std::string> rows;
      while (sqlite3_step(q) == SQLITE_ROW) {
        rows.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(q, 3)));
      }
      std::reverse(rows.begin(), rows.end());
      sqlite3_reset(q);
      benchmark::DoNotOptimize(rows);
    }));
  }
  sqlite3_finalize(q);
  ReportPercentiles(state, micros);
}
BENCHMARK(BM_RawHistory20)->MinTime(1.0);

// ---- 3. Keyword search at 5 000 messages (1 to 3 words) ----

void BM_StoreSearch(benchmark::State& state) {
  const Corpus corpus = static_cast<Corpus>(state.range(0));
  Filled& f = FilledStores(corpus);
  static const ZipfWords zipf;
  std::mt19937 rng(5);
  std::vector<double> micros;
  for (auto _ : state) {
    SearchQuery query;
    query.text = corpus == Corpus::kZipf ? zipf.Sentence(rng, 1, 3) : Sentence(rng, 1, 3);
    micros.push_back(TimeMicros([&] {
      auto hits = f.store->Search(query);
      benchmark::DoNotOptimize(hits);
    }));
  }
  ReportPercentiles(state, micros);
}
BENCHMARK(BM_StoreSearch)->ArgName("zipf")->Arg(0)->Arg(1)->MinTime(1.0);

void BM_RawFtsSearch(benchmark::State& state) {
  const Corpus corpus = static_cast<Corpus>(state.range(0));
  Filled& f = FilledStores(corpus);
  static const ZipfWords zipf;
  sqlite3_stmt* q = f.raw->Prepare(
      "SELECT m.id, m.content, snippet(f, 0, '[', ']', '…', 12), bm25(f) FROM f "
      "JOIN m ON m.rowid = f.rowid WHERE f MATCH ?1 ORDER BY bm25(f) LIMIT 10");
  std::mt19937 rng(5);
  std::vector<double> micros;
  for (auto _ : state) {
    // The same words the store benchmark draws, quoted and OR-ed by hand.
    const std::string text = corpus == Corpus::kZipf ? zipf.Sentence(rng, 1, 3) : Sentence(rng, 1, 3);
    std::string match;
    size_t start = 0;
    while (start < text.size()) {
      size_t end = text.find(' ', start);
      if (end == std::string::npos) end = text.size();
      if (!match.empty()) match += " OR ";
      match += "\"" + text.substr(start, end - start) + "\"";
      start = end + 1;
    }
    micros.push_back(TimeMicros([&] {
      sqlite3_bind_text(q, 1, match.c_str(), -1, SQLITE_TRANSIENT);
      int rows = 0;
      while (sqlite3_step(q) == SQLITE_ROW) ++rows;
      sqlite3_reset(q);
      benchmark::DoNotOptimize(rows);
    }));
  }
  sqlite3_finalize(q);
  ReportPercentiles(state, micros);
}
BENCHMARK(BM_RawFtsSearch)->ArgName("zipf")->Arg(0)->Arg(1)->MinTime(1.0);

// ---- 4. Open a 5 000-message store including quick_check ----

void BM_StoreOpenWithQuickCheck(benchmark::State& state) {
  Filled& f = FilledStores();
  (void)f.store->Checkpoint();
  StoreOptions options = f.harness.options();
  std::vector<double> micros;
  for (auto _ : state) {
    micros.push_back(TimeMicros([&] {
      auto store = MemoryStore::Open(options);
      auto check = (*store)->QuickCheck();
      if (!check.ok() || *check != "ok") state.SkipWithError("quick_check failed");
    }));
  }
  ReportPercentiles(state, micros);
}
BENCHMARK(BM_StoreOpenWithQuickCheck)->Unit(benchmark::kMillisecond)->MinTime(1.0);

void BM_RawOpenWithQuickCheck(benchmark::State& state) {
  Filled& f = FilledStores();
  (void)f.store->Checkpoint();
  std::vector<double> micros;
  for (auto _ : state) {
    micros.push_back(TimeMicros([&] {
      sqlite3* db = nullptr;
      sqlite3_open_v2(f.harness.path().c_str(), &db, SQLITE_OPEN_READWRITE, nullptr);
      sqlite3_exec(db, "PRAGMA quick_check", nullptr, nullptr, nullptr);
      sqlite3_close_v2(db);
    }));
  }
  ReportPercentiles(state, micros);
}
BENCHMARK(BM_RawOpenWithQuickCheck)->Unit(benchmark::kMillisecond)->MinTime(1.0);

// ---- 5. Durable saves at the retention cap against saves below it ----

void SaveLoop(benchmark::State& state, int64_t cap, int prefill) {
  StoreHarness harness(cap);
  auto store = std::move(harness.Open()).value();
  std::mt19937 rng(11);
  (void)store->BeginBatch();
  for (int i = 0; i < prefill; ++i) {
    (void)store->SaveMessage(StoreHarness::UserMessage("s" + std::to_string(i % 50), Sentence(rng, 8, 30)));
  }
  (void)store->CommitBatch();
  int i = 0;
  for (auto _ : state) {
    auto saved = store->SaveMessage(
        StoreHarness::UserMessage("s" + std::to_string(i++ % 50), Sentence(rng, 8, 30)));
    if (!saved.ok()) state.SkipWithError(saved.status().ToString().c_str());
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_StoreSaveAtRetentionCap(benchmark::State& state) { SaveLoop(state, kFill, kFill); }
BENCHMARK(BM_StoreSaveAtRetentionCap)->UseRealTime()->MinTime(2.0);

void BM_StoreSaveBelowCap(benchmark::State& state) { SaveLoop(state, 0, 100); }
BENCHMARK(BM_StoreSaveBelowCap)->UseRealTime()->MinTime(2.0);

}  // namespace
}  // namespace locrit

BENCHMARK_MAIN();

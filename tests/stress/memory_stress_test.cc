// Stress: 32 threads doing random saves, reads, searches, deletes, memory edits and clears over
// 10 Locrits through one memory manager whose open-store bound (4) forces constant closing and
// reopening. Run under ThreadSanitizer in CI. At the end every store is checked directly:
// quick_check ok, no dangling edge, every acknowledged message present unless deleted, and
// retention exact.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "memory/memory_manager.h"
#include "tests/support/await.h"
#include "tests/support/matchers.h"
#include "tests/support/store_fixture.h"
#include "tests/support/temp_dir.h"

namespace locrit {
namespace {

using ::locrit::testing::Await;
using ::locrit::testing::CountRows;
using ::locrit::testing::FindBrokenInvariants;
using ::locrit::testing::IsOk;
using ::locrit::testing::StoreHarness;
using ::locrit::testing::TempDir;
using Handle = MemoryManager::Handle;

constexpr int kThreads = 32;
constexpr int kLocrits = 10;
constexpr int64_t kCap = 150;

// Locrits 0-3: no cap, deletes; 4-7: retention cap, no deletes; 8-9: everything including clears.
enum class Group { kDeletes, kCapped, kClears };
Group GroupOf(int locrit) {
  return locrit < 4 ? Group::kDeletes : locrit < 8 ? Group::kCapped : Group::kClears;
}

double StressSeconds() {
  const char* env = std::getenv("LOCRIT_STRESS_SECONDS");
  return env != nullptr ? std::atof(env) : 3.0;
}

struct Ledger {
  std::mutex mu;
  std::map<int, std::map<int64_t, std::string>> acked;  // locrit -> seq -> id (kept, not deleted)
  std::map<int, int64_t> acked_total;                   // locrit -> saves acknowledged
};

TEST(MemoryStressTest, RandomOperationsKeepEveryInvariant) {
  TempDir dir;
  SystemClock clock;
  IdGenerator ids(&clock, 77);
  ThreadPool pool(4);
  MemoryManagerOptions options;
  options.data_dir = dir.path().string();
  options.clock = &clock;
  options.ids = &ids;
  options.pool = &pool;
  options.max_open_stores = 4;
  options.durability = Durability::kRelaxed;  // Concurrency, not fsync, is under test here.
  MemoryManager manager(options);
  Ledger ledger;
  std::atomic<int64_t> operations{0};
  std::atomic<int64_t> unexpected{0};
  std::mutex errors_mu;
  std::vector<std::string> errors;
  const auto note_error = [&](const std::string& what, const Status& s) {
    ++unexpected;
    std::lock_guard<std::mutex> lock(errors_mu);
    if (errors.size() < 10) errors.push_back(what + ": " + s.ToString());
  };

  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::duration<double>(StressSeconds());
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(1000 + t);
      int i = 0;
      while (std::chrono::steady_clock::now() < deadline) {
        const int locrit = static_cast<int>(rng() % kLocrits);
        LocritMemoryOptions locrit_options;
        locrit_options.max_messages = GroupOf(locrit) == Group::kCapped ? kCap : 0;
        auto got = Await<Handle>([&](auto done) {
          manager.Get("l" + std::to_string(locrit), locrit_options, done);
        });
        if (!got.ok()) {
          note_error("get", got.status());
          continue;
        }
        Handle memory = *got;
        // Each thread owns its sessions, so its deletes are unambiguous.
        const std::string session = "t" + std::to_string(t) + "-s" + std::to_string(rng() % 3);
        const int op = static_cast<int>(rng() % 100);
        ++operations;
        if (op < 45) {
          const std::string content = "thread " + std::to_string(t) + " message " +
                                      std::to_string(i++) + " éléphant";
          auto saved = Await<SavedMessage>([&](auto done) {
            memory->Write<SavedMessage>(
                [&](MemoryStore& store) {
                  return store.SaveMessage(StoreHarness::UserMessage(session, content));
                },
                done);
          });
          if (!saved.ok()) {
            note_error("save", saved.status());
            continue;
          }
          std::lock_guard<std::mutex> lock(ledger.mu);
          ledger.acked[locrit][saved->seq] = saved->id;
          ++ledger.acked_total[locrit];
        } else if (op < 60) {
          auto history = Await<std::vector<Message>>([&](auto done) {
            memory->Read<std::vector<Message>>(
                [&](MemoryStore& store) -> Result<std::vector<Message>> {
                  auto h = store.History({session, 20, {}});
                  if (!h.ok() && h.status().code() == StatusCode::kNotFound) {
                    return std::vector<Message>();
                  }
                  return h;
                },
                done);
          });
          if (!history.ok()) note_error("history", history.status());
          for (size_t k = 1; history.ok() && k < history->size(); ++k) {
            if ((*history)[k - 1].seq >= (*history)[k].seq) {
              note_error("history order", InternalError("not chronological"));
            }
          }
        } else if (op < 72) {
          auto hits = Await<std::vector<SearchHit>>([&](auto done) {
            memory->Read<std::vector<SearchHit>>(
                [](MemoryStore& store) { SearchQuery q;
                  q.text = "elephant message";
                  return store.Search(q);
                }, done);
          });
          if (!hits.ok()) note_error("search", hits.status());
        } else if (op < 80 && GroupOf(locrit) != Group::kCapped) {
          // Delete one of this thread's own messages in this Locrit, if any.
          auto deleted = Await<std::optional<Message>>([&](auto done) {
            memory->Write<std::optional<Message>>(
                [&](MemoryStore& store) -> Result<std::optional<Message>> {
                  auto h = store.History({session, 1, {}});
                  if (!h.ok() || h->empty()) return std::optional<Message>();
                  RETURN_IF_ERROR(store.DeleteMessage(h->front().id));
                  return std::optional<Message>(h->front());
                },
                done);
          });
          if (!deleted.ok()) {
            note_error("delete", deleted.status());
          } else if (deleted->has_value()) {
            std::lock_guard<std::mutex> lock(ledger.mu);
            ledger.acked[locrit].erase((*deleted)->seq);
          }
        } else if (op < 95) {
          auto memory_id = Await<Memory>([&](auto done) {
            memory->Write<Memory>(
                [&](MemoryStore& store) -> Result<Memory> {
                  ASSIGN_OR_RETURN(Memory m, store.AddMemory({"remember " + session, 0.5, "{}", {}}));
                  return store.EditMemory(m.id, MemoryEdit{{}, 0.9, {}});
                },
                done);
          });
          if (!memory_id.ok()) note_error("memory", memory_id.status());
        } else if (GroupOf(locrit) == Group::kClears) {
          auto cleared = Await<bool>([&](auto done) {
            memory->Write<bool>(
                [](MemoryStore& store) -> Result<bool> {
                  RETURN_IF_ERROR(store.ClearAll());
                  return true;
                },
                done);
          });
          if (!cleared.ok()) note_error("clear", cleared.status());
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  manager.Shutdown();

  EXPECT_EQ(unexpected.load(), 0) << (errors.empty() ? "" : errors.front());
  EXPECT_GT(operations.load(), 100);  // It did run; how much depends on the machine and sanitizer.
  for (int locrit = 0; locrit < kLocrits; ++locrit) {
    const std::string db = (dir.path() / "locrits" / ("l" + std::to_string(locrit)) / "memory.db").string();
    StoreHarness harness;
    harness.options().path = db;
    harness.options().max_messages = 0;
    ASSERT_OK_AND_ASSIGN(auto store, harness.Open());
    ASSERT_OK_AND_ASSIGN(std::string check, store->QuickCheck());
    EXPECT_EQ(check, "ok") << locrit;
    const auto broken = FindBrokenInvariants(db);
    EXPECT_TRUE(broken.empty()) << locrit << ": " << broken.front();
    const auto& acked = ledger.acked[locrit];
    const int64_t count = CountRows(db, "messages");
    switch (GroupOf(locrit)) {
      case Group::kDeletes:
        EXPECT_EQ(count, static_cast<int64_t>(acked.size())) << locrit;
        for (const auto& [seq, id] : acked) EXPECT_THAT(store->GetMessage(id), IsOk()) << id;
        break;
      case Group::kCapped: {
        EXPECT_EQ(count, std::min<int64_t>(ledger.acked_total[locrit], kCap)) << locrit;
        // The survivors are exactly the newest kCap acknowledged (seq is commit order).
        int64_t kept = 0;
        for (auto it = acked.rbegin(); it != acked.rend() && kept < kCap; ++it, ++kept) {
          EXPECT_THAT(store->GetMessage(it->second), IsOk()) << it->second;
        }
        break;
      }
      case Group::kClears:
        break;  // Concurrent clears make presence ambiguous; integrity is what is checked.
    }
  }
}

}  // namespace
}  // namespace locrit

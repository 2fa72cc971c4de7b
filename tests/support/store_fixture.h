// Helpers for tests of one memory store: a temp-dir store with a fake clock, and invariant checks
// made over a separate raw SQLite connection (so they do not trust the store's own code).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/id_generator.h"
#include "store/memory_store.h"
#include "tests/support/fake_clock.h"
#include "tests/support/temp_dir.h"

namespace locrit::testing {

class StoreHarness {
 public:
  explicit StoreHarness(int64_t max_messages = 5000);

  // Opens (or reopens) the store with the harness's options; `customize` may change them.
  Result<std::unique_ptr<MemoryStore>> Open() const { return MemoryStore::Open(options_); }
  StoreOptions& options() { return options_; }
  const std::string& path() const { return options_.path; }
  FakeClock& clock() { return clock_; }
  IdGenerator& ids() { return ids_; }
  TempDir& dir() { return dir_; }

  // A user message in `session` from `user`, content as given.
  static NewMessage UserMessage(const std::string& session, const std::string& content,
                                const std::string& user = "user-alice");

 private:
  TempDir dir_;
  FakeClock clock_;
  IdGenerator ids_{&clock_, 42};
  StoreOptions options_;
};

// Every edge whose end is missing, as "table:rowid" strings; empty when the graph is consistent.
// Also reports messages without their PART_OF or SENT edge, and counter drift.
std::vector<std::string> FindBrokenInvariants(const std::string& db_path);

// SELECT count(*) over `table` through a raw connection.
int64_t CountRows(const std::string& db_path, const std::string& table);

}  // namespace locrit::testing

// Recovery of a corrupt Locrit memory (DESIGN.md, "Recovery contract"):
//   1. quarantine: move memory.db, -wal and -shm to <dir>/quarantine/<UTC timestamp>/;
//   2. salvage every readable row into a fresh store;
//   3. merge the newest snapshot: add its rows that the salvage lacks;
//   4. rebuild derived data (FTS, counters, implied edges);
//   5. record a recovery event in the store, and log it.
// The fresh store is built beside the live name and renamed into place last, and a marker file
// names the quarantine while the sequence runs: a crash mid-recovery resumes it on the next open
// and can never leave an empty store where the memory was. Nothing is ever deleted: the damaged
// files stay in quarantine.
//
// Only corruption starts a recovery; transient errors (busy, I/O, permissions, locks) never do.
// Functions here are blocking and run on the memory manager's work pool. Thread-compatible: one
// recovery per directory at a time (the caller holds the Locrit's process lock).
#pragma once

#include <string>

#include "base/status.h"
#include "store/memory_store.h"

namespace locrit {

// True when a recovery of `directory` started and did not finish.
bool RecoveryInterrupted(const std::string& directory);

// Runs (or resumes) the recovery of the memory in `directory`. `store_options` describes the live
// store (its path must be <directory>/memory.db). Returns the event it recorded.
Result<RecoveryEvent> RecoverMemory(const std::string& directory, const StoreOptions& store_options,
                                    const std::string& reason);

// The snapshot files of `directory`, newest first.
std::vector<std::string> ListSnapshots(const std::string& directory);

// "20261128T062000.123Z": sortable, and safe in a file name.
std::string CompactUtcTimestamp(int64_t unix_millis);

}  // namespace locrit

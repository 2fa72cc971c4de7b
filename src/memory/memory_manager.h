// MemoryManager: the one owner of every open Locrit memory store in the process.
//
// - Get(slug) opens a Locrit's store exactly once however many callers race: callers arriving
//   during the open wait for the same result; a failed open is reported to all of them and a later
//   Get tries again. Different Locrits open in parallel on the work pool.
// - At most max_open_stores stores are open; the least recently used idle one is closed
//   (checkpoint, close) to make room. A store is idle when nobody holds a handle to it and no
//   operation is in flight: a store in use is never closed under its users. A Get that finds every
//   slot busy waits for one.
// - Each store has one writer with group commit and up to max_concurrent_queries readers
//   (LocritMemory below). Every SQLite call runs on the work pool, never on the caller's thread.
// - A process lock (flock on <dir>/lock) per Locrit: a second process gets failed_precondition
//   naming the holder's pid.
// - Purge(slug) deletes one Locrit's memory: it waits for the store to be idle, closes it,
//   releases its lock and removes its directory; the slug is refused from then on.
//
// The asynchronous API uses completion callbacks everywhere; they run on a work-pool thread and
// must not block. Thread-safe. REQUIRES: every handle is released before the manager is destroyed.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/file_lock.h"
#include "base/id_generator.h"
#include "base/metrics.h"
#include "base/status.h"
#include "base/thread_pool.h"
#include "store/memory_store.h"

namespace locrit {

struct MemoryManagerOptions {
  std::string data_dir;           // Stores live in <data_dir>/locrits/<slug>/memory.db.
  const Clock* clock = nullptr;   // Required; outlives the manager.
  IdGenerator* ids = nullptr;     // Required; outlives the manager.
  ThreadPool* pool = nullptr;     // Required: where every SQLite call runs; outlives the manager.
  int max_open_stores = 256;
  int max_concurrent_queries = 4;   // Reader connections per store.
  int max_batch = 512;              // Writes committed together at most.
  size_t max_queued_writes = 10000; // Per store; beyond it writes fail with resource_exhausted.
  Durability durability = Durability::kFull;
  std::string vfs;                  // SQLite VFS for every connection (tests inject faults).
  int64_t snapshot_interval_ms = 15 * 60 * 1000;
  int snapshot_keep = 3;
};

// Per-Locrit settings that come from its definition.
struct LocritMemoryOptions {
  int64_t max_messages = 5000;
};

class MemoryManager;

// A Locrit memory's health report.
struct MemoryHealth {
  std::string slug;
  std::string integrity;        // "ok", or what the last integrity check found.
  int64_t checked_at = 0;       // Unix millis of that check.
  bool recovered_on_open = false;
  std::optional<RecoveryEvent> last_recovery;
  std::vector<std::string> snapshots;  // Paths, newest first.
  int64_t max_messages = 0;
};

// One open Locrit memory: its writer queue and reader pool. Obtained from MemoryManager::Get;
// holding the handle keeps the store open. Thread-safe.
class LocritMemory : public std::enable_shared_from_this<LocritMemory> {
 public:
  template <typename T>
  using Op = std::function<Result<T>(MemoryStore&)>;
  template <typename T>
  using Done = std::function<void(Result<T>)>;

  const std::string& slug() const { return slug_; }
  const std::string& directory() const { return directory_; }

  // Queues a write. It runs on the writer connection inside a group-commit batch, in its own
  // savepoint (it commits or fails alone), and `done` is called once the batch is durable — or
  // with the error that kept it from being so.
  template <typename T>
  void Write(Op<T> op, Done<T> done);

  // Runs a read on one of the reader connections, concurrently with the writer.
  template <typename T>
  void Read(Op<T> op, Done<T> done);

  // Takes an online snapshot into <dir>/snapshots/<UTC timestamp>.db between write batches,
  // keeps the newest snapshot_keep, and gives the new snapshot's path.
  void Snapshot(Done<std::string> done);
  // Snapshots when the memory changed since the last snapshot and snapshot_interval has passed.
  void SnapshotIfDue();
  // Integrity state, last recovery event, snapshots, retention.
  void Health(Done<MemoryHealth> done);
  // The deep check (integrity_check + foreign keys) between write batches. Gives "ok" or what
  // it found; damage found marks the memory for recovery (see Damage()).
  void VerifyIntegrity(Done<std::string> done);
  // Why this memory is known to be damaged, or "" if it is not. Damaged memory gets no new
  // handles; once idle it is closed and the next Get recovers it (quarantine, salvage, merge).
  std::string Damage() const;

  // Writes queued and not yet committed.
  size_t QueuedWrites() const;
  // Batches committed so far (group commits), for metrics and tests.
  int64_t BatchesCommitted() const;

  LocritMemory(MemoryManager* manager, std::string slug, std::string directory,
               LocritMemoryOptions options);
  ~LocritMemory();
  LocritMemory(const LocritMemory&) = delete;
  LocritMemory& operator=(const LocritMemory&) = delete;

 private:
  friend class MemoryManager;


  struct WriteTask {
    std::function<Status(MemoryStore&)> run;  // Returns the op's own status.
    std::function<void(Status)> finish;       // Given OK, or why the batch did not commit.
    bool standalone = false;  // Runs alone, outside any batch transaction (e.g. a snapshot).
  };
  struct ReadTask {
    // Store is null when no reader could open. Returns the op's own status.
    std::function<Status(MemoryStore*, Status)> run;
  };

  // Takes the process lock, recovers the store if it is corrupt, and opens the writer connection
  // (on the pool). Called once, by the manager.
  Status OpenWriter();
  Result<std::unique_ptr<MemoryStore>> OpenChecked();
  // Records corruption met at run time (only the first reason is kept).
  void MarkDamaged(const std::string& reason);
  // Checkpoints and closes every connection, releases the process lock (on the pool).
  void CloseAll();

  void EnqueueWrite(WriteTask task);
  void EnqueueRead(ReadTask task);
  void DrainWrites();
  // Re-posts the writer when writes are queued; otherwise marks it stopped. True if re-posted.
  bool RepostIfMore();
  // Snapshots the writer's database into <dir>/snapshots/ and prunes old ones (writer only).
  Status WriteSnapshot(MemoryStore& store, std::string* path);
  void RunRead(ReadTask task, std::shared_ptr<MemoryStore> reader);
  Result<std::unique_ptr<MemoryStore>> OpenReader();
  StoreOptions BaseStoreOptions() const;
  void OperationStarted();
  void OperationFinished();

  MemoryManager* const manager_;
  const std::string slug_;
  const std::string directory_;
  const LocritMemoryOptions options_;

  std::optional<FileLock> lock_;         // Touched only by OpenWriter/CloseAll (pool, serialised).
  bool recovered_ = false;               // Set by OpenWriter: this open ran a recovery.
  std::string recover_reason_;           // Set before OpenWriter: recover even if checks pass.
  std::unique_ptr<MemoryStore> writer_;  // Used only by the drain task that writer_running_ owns.

  mutable std::mutex mu_;
  std::deque<WriteTask> write_queue_;                        // GUARDED_BY(mu_)
  bool writer_running_ = false;                              // GUARDED_BY(mu_)
  std::vector<std::shared_ptr<MemoryStore>> idle_readers_;   // GUARDED_BY(mu_)
  int readers_open_ = 0;                                     // GUARDED_BY(mu_)
  std::deque<ReadTask> read_queue_;                          // GUARDED_BY(mu_)
  int64_t batches_committed_ = 0;                            // GUARDED_BY(mu_)
  int64_t in_flight_ = 0;                                    // GUARDED_BY(mu_)
  int64_t batches_at_snapshot_ = 0;                          // GUARDED_BY(mu_)
  int64_t last_snapshot_at_ = 0;                             // GUARDED_BY(mu_)
  bool snapshot_queued_ = false;                             // GUARDED_BY(mu_)
  std::string integrity_ = "unknown";                        // GUARDED_BY(mu_)
  int64_t checked_at_ = 0;                                   // GUARDED_BY(mu_)
  std::string damage_;                                       // GUARDED_BY(mu_)
};

class MemoryManager {
 public:
  using Handle = std::shared_ptr<LocritMemory>;
  using GetDone = std::function<void(Result<Handle>)>;

  explicit MemoryManager(MemoryManagerOptions options);
  ~MemoryManager();
  MemoryManager(const MemoryManager&) = delete;
  MemoryManager& operator=(const MemoryManager&) = delete;

  // A slug is [a-z0-9_-], 1..64 characters (it names a directory under <data>/locrits/).
  static bool IsValidSlug(const std::string& slug);

  // Calls `done` with a handle to the Locrit's open memory (opening it if needed), or with the
  // error: invalid_argument for a bad slug, failed_precondition when another process holds it,
  // unavailable after Shutdown began, or the open's own error.
  void Get(const std::string& slug, const LocritMemoryOptions& options, GetDone done);

  using PurgeDone = std::function<void(Status)>;
  // Deletes a Locrit's memory for good (the Locrit was deleted with purge_memory). From this call
  // on the slug gets no new handle: Gets fail with not_found, for the manager's lifetime (the
  // registry never reassigns a slug, so only a stale request can still name it). Handles already
  // held and operations in flight finish first; then the store is closed, its process lock
  // released and <data_dir>/locrits/<slug> removed, and `done` runs on a work-pool thread: OK
  // (also when nothing was there), io_error when the directory could not be removed,
  // invalid_argument for a bad slug, unavailable after Shutdown began.
  void Purge(const std::string& slug, PurgeDone done);

  // Stops accepting Gets and writes, lets queued writes commit, checkpoints and closes every
  // store, and returns when all are closed. REQUIRES: not called on a work-pool thread.
  void Shutdown();

  // Asks every open store to snapshot if it is due (see LocritMemory::SnapshotIfDue). The server
  // calls this from a timer; tests call it after moving a fake clock.
  void SnapshotDueStores();

  int OpenStores() const;     // Opening, open or closing: what counts against the bound.
  int64_t OpensPerformed() const;  // Successful opens since start (for tests and metrics).
  int64_t ClosesPerformed() const;
  const MemoryManagerOptions& options() const { return options_; }

  // Read-only figures for /metrics (atomics; cheap to read at any time).
  // Writes queued in every store and not yet taken by a batch.
  int64_t QueuedWrites() const { return queued_writes_.value(); }
  // Reads waiting for a reader connection, in every store.
  int64_t QueuedReads() const { return queued_reads_.value(); }
  // Gets waiting for a free slot (every open store busy).
  int64_t WaitingGets() const;
  // Recoveries run (at open, after damage, or resuming an interrupted one) since start.
  int64_t RecoveriesPerformed() const { return recoveries_.value(); }

 private:
  friend class LocritMemory;

  enum class State { kOpening, kOpen, kClosing };
  struct Entry {
    std::shared_ptr<LocritMemory> memory;
    State state = State::kOpening;
    int pins = 0;                 // Handles held by callers.
    int64_t last_used = 0;        // Clock millis of the last Get or release.
    std::vector<GetDone> waiters; // Gets waiting for the open to finish.
    std::vector<PurgeDone> purges;  // Non-empty: close, then remove the directory.
    bool opened = false;          // The open succeeded (a close then counts).
  };
  struct PendingGet {
    std::string slug;
    LocritMemoryOptions options;
    GetDone done;
  };

  // All REQUIRE mu_ held. They collect callbacks to run after unlocking into `ready`.
  using Ready = std::vector<std::function<void()>>;
  void AdmitLocked(PendingGet get, Ready& ready);
  bool EvictOneLocked();
  // Starts closing `entry` if it is damaged and idle, so that it reopens with recovery.
  bool CloseDamagedIfIdleLocked(Entry& entry);
  void StartOpenLocked(const std::string& slug, const LocritMemoryOptions& options);
  // Marks `entry` closing and posts its close (then, when it is being purged, the removal).
  void StartCloseLocked(Entry& entry);
  // Starts closing `entry` if it is being purged, open and idle.
  bool ClosePurgedIfIdleLocked(Entry& entry);
  std::string DirectoryOf(const std::string& slug) const;
  Handle PinLocked(Entry& entry);
  void PumpWaitingLocked(Ready& ready);

  void FinishOpen(const std::string& slug, Status status);
  void FinishClose(const std::string& slug);
  // The end of a purge's close: removes the directory, then forgets the entry.
  void FinishPurge(const std::string& slug);
  void Unpin(const std::string& slug);
  void MaybeIdle(const std::string& slug);
  static void RunAll(Ready& ready);

  const MemoryManagerOptions options_;

  mutable std::mutex mu_;
  std::condition_variable all_closed_;
  std::map<std::string, Entry> entries_;  // GUARDED_BY(mu_)
  std::deque<PendingGet> waiting_;        // GUARDED_BY(mu_): Gets waiting for a free slot.
  std::map<std::string, std::string> recover_on_open_;  // GUARDED_BY(mu_): slug -> damage.
  std::set<std::string> purged_;          // GUARDED_BY(mu_): slugs refused since their Purge.
  bool stopping_ = false;                 // GUARDED_BY(mu_)
  std::atomic<bool> accepting_writes_{true};
  int64_t opens_ = 0;                     // GUARDED_BY(mu_)
  int64_t closes_ = 0;                    // GUARDED_BY(mu_)
  Gauge queued_writes_;
  Gauge queued_reads_;
  Counter recoveries_;
};

// ---- Template definitions ----

template <typename T>
void LocritMemory::Write(Op<T> op, Done<T> done) {
  auto slot = std::make_shared<std::optional<Result<T>>>();
  WriteTask task;
  task.run = [op = std::move(op), slot](MemoryStore& store) {
    slot->emplace(op(store));
    return (*slot)->status();
  };
  task.finish = [slot, done = std::move(done)](Status commit) {
    if (!commit.ok() || !slot->has_value()) {
      done(commit.ok() ? InternalError("write did not run") : commit);
    } else {
      done(std::move(**slot));
    }
  };
  EnqueueWrite(std::move(task));
}

template <typename T>
void LocritMemory::Read(Op<T> op, Done<T> done) {
  ReadTask task;
  task.run = [op = std::move(op), done = std::move(done)](MemoryStore* store,
                                                          Status status) -> Status {
    if (store == nullptr) {
      done(status);
      return status;
    }
    Result<T> result = op(*store);
    Status op_status = result.status();
    done(std::move(result));
    return op_status;
  };
  EnqueueRead(std::move(task));
}

}  // namespace locrit

// FaultVfs: a SQLite VFS shim for the fault tier (STYLE.md, "The fail loop").
//
// It wraps SQLite's default VFS and every file opened through it (database, WAL, journal, temp
// files) and can
//  - fail I/O on purpose: Arm(n, ops) makes the n-th operation (0-based, counted from arming) among
//    the chosen kinds fail with the code a failing disk gives SQLite (SQLITE_IOERR_READ,
//    SQLITE_IOERR_WRITE or SQLITE_FULL, SQLITE_IOERR_FSYNC, ...), once or from then on;
//  - lose power: in power-loss mode, writes to the database, WAL and journal files stay in memory
//    (like an OS page cache) until an xSync of that file succeeds, and PowerCut() drops every
//    write not yet synced and kills the disk, so nothing a closing connection does afterwards
//    reaches the files. Reopening the files with the default VFS then shows what survived.
//
// Usage: construct one per test (each instance registers under its own name, never as the
// default), pass name() as StoreOptions::vfs, close every connection before the FaultVfs dies.
//
// The power-loss model is deliberately simple; it is what a journaling file system guarantees
// after fsync, and it does not try to be worse than that:
//  - a write is lost or kept whole, never torn (no partial sectors);
//  - creating, deleting and truncating a file take effect on the disk at once; xTruncate first
//    makes the file's pending writes durable (so pending extents never have to be clipped), which
//    can only keep more data than a real crash would;
//  - pending writes belong to the file's path, not to the handle, because SQLite opens the same
//    WAL through several connections and each must read what the others wrote. Closing a handle
//    keeps them pending, as closing a file keeps the OS page cache.
// Temp files (no name, or not a database/WAL/journal) are written straight through, since they do
// not outlive a crash anyway; faults still apply to them.
//
// Thread-safe: SQLite may call it from several connections on several threads, and the test may
// Arm, Disarm and PowerCut from any thread. A PowerCut that races an xSync sees that sync either
// complete or not begun.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

struct sqlite3_vfs;

namespace locrit::testing {

class FaultVfs {
 public:
  // Kinds of operation, as bit flags to combine in Arm.
  enum Op : uint32_t {
    kRead = 1u << 0,      // xRead
    kWrite = 1u << 1,     // xWrite
    kSync = 1u << 2,      // xSync
    kTruncate = 1u << 3,  // xTruncate
    kFileSize = 1u << 4,  // xFileSize
    kLock = 1u << 5,      // xLock (taking or raising a lock; unlocking never fails)
    kDelete = 1u << 6,    // xDelete
    kOpen = 1u << 7,      // xOpen
  };
  // What changes the files: the kinds a write-path fail loop arms.
  static constexpr uint32_t kMutations = kWrite | kSync | kTruncate;
  static constexpr int kOpKinds = 8;

  // How an armed fault behaves when it fires.
  struct Fault {
    // Op n and every later op of the armed kinds fail: a disk that died, not a hiccup.
    bool persistent = false;
    // Writes fail with SQLITE_FULL (a full disk) rather than SQLITE_IOERR_WRITE.
    bool disk_full = false;
    // Op n cuts the power (PowerCut) instead of failing by itself. The op then fails if it would
    // change a file, like everything after it; reads still work so connections can close.
    bool power_cut = false;
  };

  FaultVfs();
  // REQUIRES: no file is open through this VFS (every connection using it is closed).
  ~FaultVfs();
  FaultVfs(const FaultVfs&) = delete;
  FaultVfs& operator=(const FaultVfs&) = delete;

  // The registered name, for StoreOptions::vfs or sqlite3_open_v2.
  const std::string& name() const { return name_; }

  // ---- Fail injection ----
  // Arms a fault at op `n` (0-based) among the kinds in `ops`, counting from now. Re-arming resets
  // the count and fired().
  void Arm(int64_t n, uint32_t ops, Fault fault);
  // A one-shot I/O error. (An overload, not a default argument: GCC cannot use Fault's member
  // initializers before FaultVfs is complete.)
  void Arm(int64_t n, uint32_t ops) { Arm(n, ops, Fault()); }
  // No further fault fires; fired() and ops_counted() keep their values.
  void Disarm();
  // Whether the armed fault fired since the last Arm.
  bool fired() const;
  // How many ops of the armed kinds were seen since the last Arm (until Disarm). When the
  // scenario ran to its end with ops_counted() <= n, the fault never fired: the loop is done.
  int64_t ops_counted() const;
  // Every op of kind `op` (a single flag) seen since construction, armed or not.
  int64_t total_ops(Op op) const;

  // ---- Power loss ----
  // REQUIRES: no file is open through this VFS yet.
  void EnablePowerLossMode();
  // Drops every write not yet synced, in every file, and marks the disk dead: from now on every
  // write, sync, truncate, delete and open fails with an I/O error. Idempotent.
  void PowerCut();
  bool power_cut() const { return dead_.load(); }

  // Files currently open through this VFS.
  int open_files() const;

  // Whether a successful xSync also fsyncs the real file (the default). Only a real crash of the
  // machine could tell the difference; the fault tier simulates its crashes inside the process,
  // so a test that runs thousands of iterations may turn the fsync off and save its cost.
  void set_real_sync(bool on) { real_sync_.store(on); }

 private:
  class Shim;  // The sqlite3_vfs and sqlite3_io_methods entry points (fault_vfs.cc).
  friend class Shim;
  struct PendingFile;  // One path's writes not yet synced (power-loss mode).

  // Counts one op of kind `op`; returns the SQLite code it must fail with, or SQLITE_OK (0).
  int Inject(Op op);
  // Counts a file opened at `path`, and returns its pending writes (shared by every handle on
  // the path), or null when writes must go straight to the file: power-loss mode is off, or the
  // file does not outlive a crash anyway.
  std::shared_ptr<PendingFile> OnOpen(const char* path, int open_flags);
  void OnClose();
  void ForgetPending(const char* path);
  void PowerCutLocked();

  const std::string name_;
  sqlite3_vfs* const real_;           // The default VFS at construction; every call ends there.
  std::unique_ptr<sqlite3_vfs> vfs_;  // What SQLite sees; pAppData points back here.

  mutable std::mutex mu_;         // Lock order: mu_ before any PendingFile::mu.
  bool armed_ = false;            // GUARDED_BY(mu_)
  uint32_t armed_ops_ = 0;        // GUARDED_BY(mu_)
  int64_t target_ = 0;            // GUARDED_BY(mu_)
  Fault fault_;                   // GUARDED_BY(mu_)
  int64_t counted_ = 0;           // GUARDED_BY(mu_)
  bool fired_ = false;            // GUARDED_BY(mu_)
  bool power_loss_mode_ = false;  // GUARDED_BY(mu_)
  int open_files_ = 0;            // GUARDED_BY(mu_)
  // Power-loss mode: pending writes by path. Handles share an entry; deleting the path drops it.
  std::map<std::string, std::shared_ptr<PendingFile>> pending_;  // GUARDED_BY(mu_)

  // Read on every mutating op without mu_; set only under mu_ (PowerCutLocked).
  std::atomic<bool> dead_{false};
  std::atomic<bool> real_sync_{true};
  std::array<std::atomic<int64_t>, kOpKinds> totals_{};
};

}  // namespace locrit::testing

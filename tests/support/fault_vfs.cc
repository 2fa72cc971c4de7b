#include "tests/support/fault_vfs.h"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace locrit::testing {
namespace {

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "FaultVfs: %s\n", what);
  std::abort();
}

// Each instance registers under its own name, so tests (and a test's several FaultVfs objects)
// never pick up one another's faults.
std::string NextName() {
  static std::atomic<int> next{0};
  return "locrit-fault-" + std::to_string(next.fetch_add(1));
}

sqlite3_vfs* DefaultVfs() {
  sqlite3_vfs* vfs = sqlite3_vfs_find(nullptr);
  if (vfs == nullptr) Die("SQLite has no default VFS to wrap");
  return vfs;
}

// The code a real disk failure of this kind gives SQLite (os_unix.c uses the same ones).
int ErrorFor(FaultVfs::Op op, bool disk_full) {
  switch (op) {
    case FaultVfs::kRead:
      return SQLITE_IOERR_READ;
    case FaultVfs::kWrite:
      return disk_full ? SQLITE_FULL : SQLITE_IOERR_WRITE;
    case FaultVfs::kSync:
      return SQLITE_IOERR_FSYNC;
    case FaultVfs::kTruncate:
      return SQLITE_IOERR_TRUNCATE;
    case FaultVfs::kFileSize:
      return SQLITE_IOERR_FSTAT;
    case FaultVfs::kLock:
      return SQLITE_IOERR_LOCK;
    case FaultVfs::kDelete:
      return SQLITE_IOERR_DELETE;
    case FaultVfs::kOpen:
      return SQLITE_CANTOPEN;
  }
  return SQLITE_IOERR;
}

}  // namespace

// The writes of one path that no xSync has made durable yet, in the order they were made.
struct FaultVfs::PendingFile {
  struct Extent {
    int64_t offset = 0;
    std::vector<std::byte> bytes;
    int64_t end() const { return offset + static_cast<int64_t>(bytes.size()); }
  };

  void Add(int64_t offset, const std::byte* data, int amount) {
    const int64_t end = offset + amount;
    // An earlier write that this one covers whole can never be seen again: drop it, so a page
    // rewritten many times between two syncs costs one extent. Partly covered ones stay; the
    // order of `writes` settles who wins.
    std::erase_if(writes, [&](const Extent& e) { return e.offset >= offset && e.end() <= end; });
    writes.push_back(Extent{offset, std::vector<std::byte>(data, data + amount)});
  }

  // The file's size as far as pending writes go (0 when there are none).
  int64_t End() const {
    int64_t end = 0;
    for (const Extent& e : writes) end = std::max(end, e.end());
    return end;
  }

  std::mutex mu;
  std::vector<Extent> writes;  // GUARDED_BY(mu)
};

// The C entry points SQLite calls. Each forwards to the wrapped default VFS or file, after asking
// the FaultVfs whether the op must fail, and (in power-loss mode) keeping writes pending.
class FaultVfs::Shim {
 public:
  static void Fill(sqlite3_vfs& vfs, FaultVfs& owner);

 private:
  // One open file: ours, and the default VFS's file it wraps (kept in its own allocation, since
  // its size is only known at run time).
  struct OpenFile {
    sqlite3_file* real() { return reinterpret_cast<sqlite3_file*>(real_storage.get()); }

    FaultVfs* owner = nullptr;
    std::unique_ptr<std::byte[]> real_storage;
    std::shared_ptr<PendingFile> pending;  // Null: writes go straight to the file.
  };
  // What SQLite allocates per file (szOsFile). `base` must come first: SQLite hands &base back.
  struct Handle {
    sqlite3_file base;
    OpenFile* file;
  };

  static FaultVfs& Owner(sqlite3_vfs* vfs) { return *static_cast<FaultVfs*>(vfs->pAppData); }
  static OpenFile& Of(sqlite3_file* file) { return *reinterpret_cast<Handle*>(file)->file; }
  static sqlite3_file* Real(sqlite3_file* file) { return Of(file).real(); }
  static const sqlite3_io_methods& RealMethods(sqlite3_file* file) { return *Real(file)->pMethods; }

  // Writes every pending extent to the real file, in order, and forgets them.
  // REQUIRES: pending.mu is held.
  static int ApplyPending(sqlite3_file* real, PendingFile& pending) {
    for (const PendingFile::Extent& e : pending.writes) {
      const int rc =
          real->pMethods->xWrite(real, e.bytes.data(), static_cast<int>(e.bytes.size()), e.offset);
      if (rc != SQLITE_OK) return rc;
    }
    pending.writes.clear();
    return SQLITE_OK;
  }

  // ---- sqlite3_vfs ----

  static int Open(sqlite3_vfs* vfs, const char* name, sqlite3_file* file, int flags,
                  int* out_flags) {
    FaultVfs& owner = Owner(vfs);
    file->pMethods = nullptr;  // Until the open succeeds: then SQLite calls no method at all.
    if (const int rc = owner.Inject(kOpen); rc != SQLITE_OK) return rc;
    if (owner.dead_.load()) return SQLITE_CANTOPEN;
    auto open = std::make_unique<OpenFile>();
    open->owner = &owner;
    open->real_storage = std::make_unique<std::byte[]>(static_cast<size_t>(owner.real_->szOsFile));
    sqlite3_file* real = open->real();
    const int rc = owner.real_->xOpen(owner.real_, name, real, flags, out_flags);
    if (rc != SQLITE_OK) {
      // The wrapped VFS may have set pMethods before failing, and then expects xClose.
      if (real->pMethods != nullptr) real->pMethods->xClose(real);
      return rc;
    }
    open->pending = owner.OnOpen(name, flags);
    reinterpret_cast<Handle*>(file)->file = open.release();
    file->pMethods = &kIoMethods;
    return SQLITE_OK;
  }

  static int Delete(sqlite3_vfs* vfs, const char* name, int sync_dir) {
    FaultVfs& owner = Owner(vfs);
    if (const int rc = owner.Inject(kDelete); rc != SQLITE_OK) return rc;
    if (owner.dead_.load()) return SQLITE_IOERR_DELETE;
    owner.ForgetPending(name);
    return owner.real_->xDelete(owner.real_, name, sync_dir);
  }

  static int Access(sqlite3_vfs* vfs, const char* name, int flags, int* out) {
    FaultVfs& owner = Owner(vfs);
    const int rc = owner.real_->xAccess(owner.real_, name, flags, out);
    // The default VFS calls an empty file absent; a WAL whose frames are all still pending is
    // not empty to the connections that share it.
    if (rc == SQLITE_OK && flags == SQLITE_ACCESS_EXISTS && *out == 0 && name != nullptr) {
      std::lock_guard lock(owner.mu_);
      auto it = owner.pending_.find(name);
      if (it != owner.pending_.end()) {
        std::lock_guard file_lock(it->second->mu);
        *out = it->second->End() > 0 ? 1 : 0;
      }
    }
    return rc;
  }

  static int FullPathname(sqlite3_vfs* vfs, const char* name, int size, char* out) {
    sqlite3_vfs* real = Owner(vfs).real_;
    return real->xFullPathname(real, name, size, out);
  }
  static void* DlOpen(sqlite3_vfs* vfs, const char* path) {
    sqlite3_vfs* real = Owner(vfs).real_;
    return real->xDlOpen(real, path);
  }
  static void DlError(sqlite3_vfs* vfs, int size, char* out) {
    sqlite3_vfs* real = Owner(vfs).real_;
    real->xDlError(real, size, out);
  }
  using Symbol = void (*)();
  static Symbol DlSym(sqlite3_vfs* vfs, void* handle, const char* symbol) {
    sqlite3_vfs* real = Owner(vfs).real_;
    return real->xDlSym(real, handle, symbol);
  }
  static void DlClose(sqlite3_vfs* vfs, void* handle) {
    sqlite3_vfs* real = Owner(vfs).real_;
    real->xDlClose(real, handle);
  }
  static int Randomness(sqlite3_vfs* vfs, int size, char* out) {
    sqlite3_vfs* real = Owner(vfs).real_;
    return real->xRandomness(real, size, out);
  }
  static int Sleep(sqlite3_vfs* vfs, int micros) {
    sqlite3_vfs* real = Owner(vfs).real_;
    return real->xSleep(real, micros);
  }
  static int CurrentTime(sqlite3_vfs* vfs, double* out) {
    sqlite3_vfs* real = Owner(vfs).real_;
    return real->xCurrentTime(real, out);
  }
  static int GetLastError(sqlite3_vfs* vfs, int size, char* out) {
    sqlite3_vfs* real = Owner(vfs).real_;
    return real->xGetLastError != nullptr ? real->xGetLastError(real, size, out) : 0;
  }
  static int CurrentTimeInt64(sqlite3_vfs* vfs, sqlite3_int64* out) {
    sqlite3_vfs* real = Owner(vfs).real_;
    if (real->iVersion >= 2 && real->xCurrentTimeInt64 != nullptr) {
      return real->xCurrentTimeInt64(real, out);
    }
    double days = 0;
    const int rc = real->xCurrentTime(real, &days);
    *out = static_cast<sqlite3_int64>(days * 86'400'000.0);
    return rc;
  }

  // ---- sqlite3_io_methods ----

  static int Close(sqlite3_file* file) {
    OpenFile* open = &Of(file);
    sqlite3_file* real = open->real();
    const int rc = real->pMethods != nullptr ? real->pMethods->xClose(real) : SQLITE_OK;
    open->owner->OnClose();
    // Pending writes stay with the path (open->pending is shared), as the OS page cache would.
    delete open;
    reinterpret_cast<Handle*>(file)->file = nullptr;
    return rc;
  }

  static int Read(sqlite3_file* file, void* buffer, int amount, sqlite3_int64 offset) {
    OpenFile& open = Of(file);
    if (const int rc = open.owner->Inject(kRead); rc != SQLITE_OK) return rc;
    sqlite3_file* real = open.real();
    if (open.pending == nullptr) return real->pMethods->xRead(real, buffer, amount, offset);

    std::lock_guard lock(open.pending->mu);
    int rc = real->pMethods->xRead(real, buffer, amount, offset);
    if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ) return rc;
    // The file as SQLite must see it: the disk, with the pending writes on top. A short read has
    // already zero-filled what lies past the real end.
    auto* out = static_cast<std::byte*>(buffer);
    const int64_t end = offset + amount;
    for (const PendingFile::Extent& e : open.pending->writes) {
      const int64_t from = std::max<int64_t>(offset, e.offset);
      const int64_t to = std::min(end, e.end());
      if (from < to) {
        std::memcpy(out + (from - offset), e.bytes.data() + (from - e.offset),
                    static_cast<size_t>(to - from));
      }
    }
    if (rc == SQLITE_IOERR_SHORT_READ && open.pending->End() >= end) rc = SQLITE_OK;
    return rc;
  }

  static int Write(sqlite3_file* file, const void* buffer, int amount, sqlite3_int64 offset) {
    OpenFile& open = Of(file);
    FaultVfs& owner = *open.owner;
    if (const int rc = owner.Inject(kWrite); rc != SQLITE_OK) return rc;
    if (owner.dead_.load()) return SQLITE_IOERR_WRITE;
    sqlite3_file* real = open.real();
    if (open.pending == nullptr) return real->pMethods->xWrite(real, buffer, amount, offset);
    std::lock_guard lock(open.pending->mu);
    // Checked again under the file's lock: PowerCut clears pending writes under it, so a write
    // that gets in here before the cut is dropped by it, and one after it fails.
    if (owner.dead_.load()) return SQLITE_IOERR_WRITE;
    open.pending->Add(offset, static_cast<const std::byte*>(buffer), amount);
    return SQLITE_OK;
  }

  static int Truncate(sqlite3_file* file, sqlite3_int64 size) {
    OpenFile& open = Of(file);
    FaultVfs& owner = *open.owner;
    if (const int rc = owner.Inject(kTruncate); rc != SQLITE_OK) return rc;
    if (owner.dead_.load()) return SQLITE_IOERR_TRUNCATE;
    sqlite3_file* real = open.real();
    if (open.pending == nullptr) return real->pMethods->xTruncate(real, size);
    // The simplification of the header: pending writes reach the disk first, so truncation never
    // has to clip pending extents.
    std::lock_guard lock(open.pending->mu);
    if (owner.dead_.load()) return SQLITE_IOERR_TRUNCATE;
    if (const int rc = ApplyPending(real, *open.pending); rc != SQLITE_OK) return rc;
    return real->pMethods->xTruncate(real, size);
  }

  static int Sync(sqlite3_file* file, int flags) {
    OpenFile& open = Of(file);
    FaultVfs& owner = *open.owner;
    if (const int rc = owner.Inject(kSync); rc != SQLITE_OK) return rc;
    if (owner.dead_.load()) return SQLITE_IOERR_FSYNC;
    sqlite3_file* real = open.real();
    const auto real_sync = [&] {
      return owner.real_sync_.load() ? real->pMethods->xSync(real, flags) : SQLITE_OK;
    };
    if (open.pending == nullptr) return real_sync();
    // The file's lock is held across the real I/O on purpose: a PowerCut racing this sync must
    // find it either finished (the data is durable) or not begun (the data is dropped).
    std::lock_guard lock(open.pending->mu);
    if (owner.dead_.load()) return SQLITE_IOERR_FSYNC;
    if (const int rc = ApplyPending(real, *open.pending); rc != SQLITE_OK) return rc;
    return real_sync();
  }

  static int FileSize(sqlite3_file* file, sqlite3_int64* size) {
    OpenFile& open = Of(file);
    if (const int rc = open.owner->Inject(kFileSize); rc != SQLITE_OK) return rc;
    sqlite3_file* real = open.real();
    const int rc = real->pMethods->xFileSize(real, size);
    if (rc != SQLITE_OK || open.pending == nullptr) return rc;
    std::lock_guard lock(open.pending->mu);
    *size = std::max<sqlite3_int64>(*size, open.pending->End());
    return SQLITE_OK;
  }

  static int Lock(sqlite3_file* file, int level) {
    if (const int rc = Of(file).owner->Inject(kLock); rc != SQLITE_OK) return rc;
    return RealMethods(file).xLock(Real(file), level);
  }
  static int Unlock(sqlite3_file* file, int level) {
    return RealMethods(file).xUnlock(Real(file), level);
  }
  static int CheckReservedLock(sqlite3_file* file, int* out) {
    return RealMethods(file).xCheckReservedLock(Real(file), out);
  }
  static int FileControl(sqlite3_file* file, int op, void* arg) {
    return RealMethods(file).xFileControl(Real(file), op, arg);
  }
  static int SectorSize(sqlite3_file* file) { return RealMethods(file).xSectorSize(Real(file)); }
  static int DeviceCharacteristics(sqlite3_file* file) {
    return RealMethods(file).xDeviceCharacteristics(Real(file));
  }

  // Shared memory (the WAL index) is not part of the durable state: SQLite rebuilds it from the
  // WAL after a crash. It passes through untouched.
  static bool HasShm(sqlite3_file* file) {
    return RealMethods(file).iVersion >= 2 && RealMethods(file).xShmMap != nullptr;
  }
  static int ShmMap(sqlite3_file* file, int page, int page_size, int extend, void volatile** out) {
    if (!HasShm(file)) return SQLITE_IOERR_SHMMAP;
    return RealMethods(file).xShmMap(Real(file), page, page_size, extend, out);
  }
  static int ShmLock(sqlite3_file* file, int offset, int n, int flags) {
    if (!HasShm(file)) return SQLITE_IOERR_SHMLOCK;
    return RealMethods(file).xShmLock(Real(file), offset, n, flags);
  }
  static void ShmBarrier(sqlite3_file* file) {
    if (HasShm(file)) RealMethods(file).xShmBarrier(Real(file));
  }
  static int ShmUnmap(sqlite3_file* file, int delete_flag) {
    if (!HasShm(file)) return SQLITE_OK;
    return RealMethods(file).xShmUnmap(Real(file), delete_flag);
  }

  // Version 2: shared memory for WAL, but no xFetch/xUnfetch, so SQLite never reads a file
  // through a memory map that would bypass the pending writes and the read faults.
  static constexpr sqlite3_io_methods kIoMethods = {
      .iVersion = 2,
      .xClose = &Close,
      .xRead = &Read,
      .xWrite = &Write,
      .xTruncate = &Truncate,
      .xSync = &Sync,
      .xFileSize = &FileSize,
      .xLock = &Lock,
      .xUnlock = &Unlock,
      .xCheckReservedLock = &CheckReservedLock,
      .xFileControl = &FileControl,
      .xSectorSize = &SectorSize,
      .xDeviceCharacteristics = &DeviceCharacteristics,
      .xShmMap = &ShmMap,
      .xShmLock = &ShmLock,
      .xShmBarrier = &ShmBarrier,
      .xShmUnmap = &ShmUnmap,
      .xFetch = nullptr,
      .xUnfetch = nullptr,
  };
};

void FaultVfs::Shim::Fill(sqlite3_vfs& vfs, FaultVfs& owner) {
  vfs.iVersion = 2;  // Up to xCurrentTimeInt64; no system-call overrides.
  vfs.szOsFile = static_cast<int>(sizeof(Handle));
  vfs.mxPathname = owner.real_->mxPathname;
  vfs.pNext = nullptr;
  vfs.zName = owner.name_.c_str();
  vfs.pAppData = &owner;
  vfs.xOpen = &Open;
  vfs.xDelete = &Delete;
  vfs.xAccess = &Access;
  vfs.xFullPathname = &FullPathname;
  vfs.xDlOpen = &DlOpen;
  vfs.xDlError = &DlError;
  vfs.xDlSym = &DlSym;
  vfs.xDlClose = &DlClose;
  vfs.xRandomness = &Randomness;
  vfs.xSleep = &Sleep;
  vfs.xCurrentTime = &CurrentTime;
  vfs.xGetLastError = &GetLastError;
  vfs.xCurrentTimeInt64 = &CurrentTimeInt64;
}

FaultVfs::FaultVfs()
    : name_(NextName()), real_(DefaultVfs()), vfs_(std::make_unique<sqlite3_vfs>()) {
  Shim::Fill(*vfs_, *this);
  if (sqlite3_vfs_register(vfs_.get(), /*makeDflt=*/0) != SQLITE_OK) {
    Die("sqlite3_vfs_register failed");
  }
}

FaultVfs::~FaultVfs() {
  // A connection still using this VFS would call into freed memory: that is a bug in the test.
  if (open_files() != 0) Die("destroyed while files are open; close every connection first");
  sqlite3_vfs_unregister(vfs_.get());
}

void FaultVfs::Arm(int64_t n, uint32_t ops, Fault fault) {
  std::lock_guard lock(mu_);
  armed_ = true;
  armed_ops_ = ops;
  target_ = n;
  fault_ = fault;
  counted_ = 0;
  fired_ = false;
}

void FaultVfs::Disarm() {
  std::lock_guard lock(mu_);
  armed_ = false;
}

bool FaultVfs::fired() const {
  std::lock_guard lock(mu_);
  return fired_;
}

int64_t FaultVfs::ops_counted() const {
  std::lock_guard lock(mu_);
  return counted_;
}

int64_t FaultVfs::total_ops(Op op) const {
  return totals_[static_cast<size_t>(std::countr_zero(static_cast<uint32_t>(op)))].load();
}

void FaultVfs::EnablePowerLossMode() {
  std::lock_guard lock(mu_);
  // A file opened before would write straight through, and a later cut could not drop its data.
  if (open_files_ != 0) Die("EnablePowerLossMode after a file was opened");
  power_loss_mode_ = true;
}

void FaultVfs::PowerCut() {
  std::lock_guard lock(mu_);
  PowerCutLocked();
}

void FaultVfs::PowerCutLocked() {
  dead_.store(true);
  for (auto& [path, file] : pending_) {
    std::lock_guard file_lock(file->mu);
    file->writes.clear();
  }
}

int FaultVfs::open_files() const {
  std::lock_guard lock(mu_);
  return open_files_;
}

int FaultVfs::Inject(Op op) {
  totals_[static_cast<size_t>(std::countr_zero(static_cast<uint32_t>(op)))].fetch_add(1);
  std::lock_guard lock(mu_);
  if (!armed_ || (armed_ops_ & op) == 0) return SQLITE_OK;
  const int64_t index = counted_++;
  if (index < target_ || (index > target_ && !fault_.persistent)) return SQLITE_OK;
  fired_ = true;
  if (fault_.power_cut) {
    // The op itself then meets a dead disk: a mutation fails, a read goes through.
    PowerCutLocked();
    return SQLITE_OK;
  }
  return ErrorFor(op, fault_.disk_full);
}

std::shared_ptr<FaultVfs::PendingFile> FaultVfs::OnOpen(const char* path, int open_flags) {
  // Only these outlive a crash; temp files and statement journals are gone with the process.
  constexpr int kDurable =
      SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_MAIN_JOURNAL | SQLITE_OPEN_WAL | SQLITE_OPEN_SUPER_JOURNAL;
  std::lock_guard lock(mu_);
  ++open_files_;
  if (!power_loss_mode_ || path == nullptr || (open_flags & kDurable) == 0) return nullptr;
  std::shared_ptr<PendingFile>& file = pending_[path];
  if (file == nullptr) file = std::make_shared<PendingFile>();
  return file;
}

void FaultVfs::OnClose() {
  std::lock_guard lock(mu_);
  --open_files_;
}

void FaultVfs::ForgetPending(const char* path) {
  if (path == nullptr) return;
  std::lock_guard lock(mu_);
  // Handles still open on the deleted path keep their (now unlinked) entry; a new file of the
  // same name starts clean.
  pending_.erase(path);
}

}  // namespace locrit::testing

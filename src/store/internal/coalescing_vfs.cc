#include "store/internal/coalescing_vfs.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>

namespace locrit::store_internal {
namespace {

// At most this much is gathered, then written at once. SQLite's unix VFS writes at most 128 KiB
// per call (it masks the length with 0x1ffff), and a save's frames take a few tens of KiB.
constexpr int kMaxGathered = 120 << 10;

// A WAL file. The wrapped VFS's own file object lives in the same allocation, after this one.
// Plain data: SQLite allocates the memory (szOsFile bytes) and never runs constructors.
struct WalFile {
  sqlite3_file base;  // First: SQLite hands back this address.
  sqlite3_file* real;
  char* gathered;        // malloc'd on first use.
  int length;            // Bytes gathered, to be written at `offset`.
  int capacity;
  sqlite3_int64 offset;
};

constexpr int kRealOffset = (sizeof(WalFile) + 15) & ~15;

WalFile* Wal(sqlite3_file* file) { return reinterpret_cast<WalFile*>(file); }

int Flush(WalFile* f) {
  if (f->length == 0) return SQLITE_OK;
  const int length = f->length;
  // Forgotten on failure too: like a failed write's, the bytes are gone, and SQLite writes the
  // frames again when it retries the transaction.
  f->length = 0;
  return f->real->pMethods->xWrite(f->real, f->gathered, length, f->offset);
}

bool Gather(WalFile* f, const void* data, int amount) {
  const int needed = f->length + amount;
  if (needed > f->capacity) {
    const int capacity = std::min(kMaxGathered, std::max({needed, 2 * f->capacity, 32 << 10}));
    char* grown = static_cast<char*>(std::realloc(f->gathered, static_cast<size_t>(capacity)));
    if (grown == nullptr) return false;
    f->gathered = grown;
    f->capacity = capacity;
  }
  std::memcpy(f->gathered + f->length, data, static_cast<size_t>(amount));
  f->length = needed;
  return true;
}

int WalClose(sqlite3_file* file) {
  WalFile* f = Wal(file);
  const int flushed = Flush(f);
  const int closed = f->real->pMethods->xClose(f->real);
  std::free(f->gathered);
  f->gathered = nullptr;
  return flushed != SQLITE_OK ? flushed : closed;
}

int WalWrite(sqlite3_file* file, const void* data, int amount, sqlite3_int64 offset) {
  WalFile* f = Wal(file);
  if (f->length > 0 && offset == f->offset + f->length && f->length + amount <= kMaxGathered) {
    if (Gather(f, data, amount)) return SQLITE_OK;
  }
  if (const int rc = Flush(f); rc != SQLITE_OK) return rc;
  if (amount <= kMaxGathered && Gather(f, data, amount)) {
    f->offset = offset;
    return SQLITE_OK;
  }
  return f->real->pMethods->xWrite(f->real, data, amount, offset);
}

// Everything else sees the file as it would be had each write gone through: flush, then ask.
int WalRead(sqlite3_file* file, void* data, int amount, sqlite3_int64 offset) {
  if (const int rc = Flush(Wal(file)); rc != SQLITE_OK) return rc;
  sqlite3_file* real = Wal(file)->real;
  return real->pMethods->xRead(real, data, amount, offset);
}

int WalTruncate(sqlite3_file* file, sqlite3_int64 size) {
  if (const int rc = Flush(Wal(file)); rc != SQLITE_OK) return rc;
  sqlite3_file* real = Wal(file)->real;
  return real->pMethods->xTruncate(real, size);
}

int WalSync(sqlite3_file* file, int flags) {
  if (const int rc = Flush(Wal(file)); rc != SQLITE_OK) return rc;
  sqlite3_file* real = Wal(file)->real;
  return real->pMethods->xSync(real, flags);
}

int WalFileSize(sqlite3_file* file, sqlite3_int64* size) {
  if (const int rc = Flush(Wal(file)); rc != SQLITE_OK) return rc;
  sqlite3_file* real = Wal(file)->real;
  return real->pMethods->xFileSize(real, size);
}

int WalFileControl(sqlite3_file* file, int op, void* arg) {
  if (const int rc = Flush(Wal(file)); rc != SQLITE_OK) return rc;
  sqlite3_file* real = Wal(file)->real;
  return real->pMethods->xFileControl(real, op, arg);
}

int WalLock(sqlite3_file* file, int level) {
  sqlite3_file* real = Wal(file)->real;
  return real->pMethods->xLock(real, level);
}

int WalUnlock(sqlite3_file* file, int level) {
  sqlite3_file* real = Wal(file)->real;
  return real->pMethods->xUnlock(real, level);
}

int WalCheckReservedLock(sqlite3_file* file, int* out) {
  sqlite3_file* real = Wal(file)->real;
  return real->pMethods->xCheckReservedLock(real, out);
}

int WalSectorSize(sqlite3_file* file) {
  sqlite3_file* real = Wal(file)->real;
  return real->pMethods->xSectorSize(real);
}

int WalDeviceCharacteristics(sqlite3_file* file) {
  sqlite3_file* real = Wal(file)->real;
  return real->pMethods->xDeviceCharacteristics(real);
}

// Version 1: SQLite maps and shares memory only through the database file, never the WAL.
const sqlite3_io_methods kWalMethods = {
    1,
    WalClose,
    WalRead,
    WalWrite,
    WalTruncate,
    WalSync,
    WalFileSize,
    WalLock,
    WalUnlock,
    WalCheckReservedLock,
    WalFileControl,
    WalSectorSize,
    WalDeviceCharacteristics,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
};

// ---- The VFS: every call but xOpen of a WAL goes to the wrapped VFS ----

sqlite3_vfs* Base(sqlite3_vfs* vfs) { return static_cast<sqlite3_vfs*>(vfs->pAppData); }

int Open(sqlite3_vfs* vfs, sqlite3_filename name, sqlite3_file* file, int flags, int* out_flags) {
  sqlite3_vfs* base = Base(vfs);
  // Not a WAL: the wrapped VFS opens it in place (the allocation is larger than it needs) and
  // SQLite calls that VFS's methods directly.
  if ((flags & SQLITE_OPEN_WAL) == 0) return base->xOpen(base, name, file, flags, out_flags);
  WalFile* f = Wal(file);
  f->base.pMethods = nullptr;
  f->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(file) + kRealOffset);
  f->real->pMethods = nullptr;
  f->gathered = nullptr;
  f->length = 0;
  f->capacity = 0;
  f->offset = 0;
  const int rc = base->xOpen(base, name, f->real, flags, out_flags);
  if (rc != SQLITE_OK) {
    // SQLite will not close a file whose pMethods we leave null, so a half-open real file is
    // closed here.
    if (f->real->pMethods != nullptr) f->real->pMethods->xClose(f->real);
    return rc;
  }
  f->base.pMethods = &kWalMethods;
  return SQLITE_OK;
}

int Delete(sqlite3_vfs* vfs, const char* name, int sync_dir) {
  return Base(vfs)->xDelete(Base(vfs), name, sync_dir);
}
int Access(sqlite3_vfs* vfs, const char* name, int flags, int* out) {
  return Base(vfs)->xAccess(Base(vfs), name, flags, out);
}
int FullPathname(sqlite3_vfs* vfs, const char* name, int size, char* out) {
  return Base(vfs)->xFullPathname(Base(vfs), name, size, out);
}
void* DlOpen(sqlite3_vfs* vfs, const char* name) { return Base(vfs)->xDlOpen(Base(vfs), name); }
void DlError(sqlite3_vfs* vfs, int size, char* out) { Base(vfs)->xDlError(Base(vfs), size, out); }
void (*DlSym(sqlite3_vfs* vfs, void* handle, const char* symbol))(void) {
  return Base(vfs)->xDlSym(Base(vfs), handle, symbol);
}
void DlClose(sqlite3_vfs* vfs, void* handle) { Base(vfs)->xDlClose(Base(vfs), handle); }
int Randomness(sqlite3_vfs* vfs, int size, char* out) {
  return Base(vfs)->xRandomness(Base(vfs), size, out);
}
int Sleep(sqlite3_vfs* vfs, int micros) { return Base(vfs)->xSleep(Base(vfs), micros); }
int CurrentTime(sqlite3_vfs* vfs, double* out) { return Base(vfs)->xCurrentTime(Base(vfs), out); }
int GetLastError(sqlite3_vfs* vfs, int size, char* out) {
  return Base(vfs)->xGetLastError(Base(vfs), size, out);
}
int CurrentTimeInt64(sqlite3_vfs* vfs, sqlite3_int64* out) {
  return Base(vfs)->xCurrentTimeInt64(Base(vfs), out);
}

// One registered shim over one base VFS.
struct Shim {
  std::string name;
  sqlite3_vfs* base = nullptr;
  sqlite3_vfs vfs{};
};

}  // namespace

std::string CoalescingVfsName(const std::string& base_name) {
  static std::mutex mu;
  static auto* shims = new std::map<std::string, std::unique_ptr<Shim>>();  // By base name.
  static int registered = 0;
  std::lock_guard<std::mutex> lock(mu);
  sqlite3_vfs* base = sqlite3_vfs_find(base_name.empty() ? nullptr : base_name.c_str());
  if (base == nullptr) return base_name;  // Opening then reports the unknown VFS.

  // A shim whose base is gone (a test's VFS, unregistered once its connections closed) has no
  // connection left either: unregister it.
  for (auto it = shims->begin(); it != shims->end();) {
    const char* lookup = it->first.empty() ? nullptr : it->first.c_str();
    if (sqlite3_vfs_find(lookup) == it->second->base) {
      ++it;
      continue;
    }
    sqlite3_vfs_unregister(&it->second->vfs);
    it = shims->erase(it);
  }
  if (auto it = shims->find(base_name); it != shims->end()) return it->second->name;

  auto shim = std::make_unique<Shim>();
  shim->name = fmt::format("locrit-coalescing-{}", ++registered);
  shim->base = base;
  sqlite3_vfs& vfs = shim->vfs;
  vfs.iVersion = std::min(base->iVersion, 2);  // No system-call overrides.
  vfs.szOsFile = kRealOffset + base->szOsFile;
  vfs.mxPathname = base->mxPathname;
  vfs.zName = shim->name.c_str();
  vfs.pAppData = base;
  vfs.xOpen = Open;
  vfs.xDelete = Delete;
  vfs.xAccess = Access;
  vfs.xFullPathname = FullPathname;
  vfs.xDlOpen = DlOpen;
  vfs.xDlError = DlError;
  vfs.xDlSym = DlSym;
  vfs.xDlClose = DlClose;
  vfs.xRandomness = Randomness;
  vfs.xSleep = Sleep;
  vfs.xCurrentTime = CurrentTime;
  vfs.xGetLastError = GetLastError;
  vfs.xCurrentTimeInt64 = vfs.iVersion >= 2 ? CurrentTimeInt64 : nullptr;
  if (sqlite3_vfs_register(&vfs, 0) != SQLITE_OK) return base_name;
  const std::string name = shim->name;
  shims->emplace(base_name, std::move(shim));
  return name;
}

}  // namespace locrit::store_internal

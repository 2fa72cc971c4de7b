#include "memory/recovery.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>

namespace locrit {
namespace fs = std::filesystem;

namespace {

constexpr const char* kMarker = "recovery-in-progress";
constexpr const char* kScratch = "recovery-scratch";
constexpr const char* kRebuilt = "memory.db.recovering";
constexpr const char* kDbFiles[] = {"memory.db", "memory.db-wal", "memory.db-shm"};

Status SyncDirectory(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return IoError(fmt::format("cannot open directory {} to sync it", dir.string()));
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return IoError(fmt::format("cannot sync directory {}", dir.string()));
  return Status::Ok();
}

Status WriteFileDurably(const fs::path& path, const std::string& text) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) return IoError(fmt::format("cannot write {}", path.string()));
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    if (fd >= 0) ::close(fd);
    return IoError(fmt::format("cannot sync {}", path.string()));
  }
  ::close(fd);
  return SyncDirectory(path.parent_path());
}

Status RemoveStore(const fs::path& db) {
  std::error_code ec;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    fs::remove(db.string() + suffix, ec);
    if (ec) return IoError(fmt::format("cannot remove {}{}: {}", db.string(), suffix, ec.message()));
  }
  return Status::Ok();
}

int64_t Sum(const std::map<std::string, int64_t>& counts) {
  int64_t total = 0;
  for (const auto& [table, n] : counts) total += n;
  return total;
}

// Moves the live database files into the quarantine directory named by the marker, creating
// both when this is a new recovery.
Result<fs::path> Quarantine(const fs::path& dir, const StoreOptions& options) {
  const fs::path marker = dir / kMarker;
  fs::path quarantine;
  std::error_code ec;
  if (fs::exists(marker)) {
    std::ifstream in(marker);
    std::string line;
    std::getline(in, line);
    quarantine = line;
  }
  if (quarantine.empty()) {
    const fs::path base = dir / "quarantine" / CompactUtcTimestamp(options.clock->NowMillis());
    quarantine = base;
    for (int i = 1; fs::exists(quarantine); ++i) quarantine = base.string() + "-" + std::to_string(i);
    fs::create_directories(quarantine, ec);
    if (ec) return IoError(fmt::format("cannot create {}: {}", quarantine.string(), ec.message()));
    RETURN_IF_ERROR(WriteFileDurably(marker, quarantine.string() + "\n"));
  }
  fs::create_directories(quarantine, ec);
  for (const char* name : kDbFiles) {
    const fs::path from = dir / name;
    if (!fs::exists(from)) continue;
    fs::path to = quarantine / name;
    if (fs::exists(to)) to = quarantine / (std::string(name) + ".later");
    fs::rename(from, to, ec);
    if (ec) return IoError(fmt::format("cannot quarantine {}: {}", from.string(), ec.message()));
  }
  RETURN_IF_ERROR(SyncDirectory(dir));
  RETURN_IF_ERROR(SyncDirectory(quarantine));
  return quarantine;
}

// Copies `files` of `from` into an empty scratch directory: salvage reads copies, so the
// quarantined originals stay exactly as they were found.
Result<fs::path> ScratchCopy(const fs::path& dir, const fs::path& db, bool with_wal) {
  const fs::path scratch = dir / kScratch;
  std::error_code ec;
  fs::remove_all(scratch, ec);
  fs::create_directories(scratch, ec);
  if (ec) return IoError(fmt::format("cannot create {}: {}", scratch.string(), ec.message()));
  const fs::path copy = scratch / "source.db";
  fs::copy_file(db, copy, ec);
  if (ec) return IoError(fmt::format("cannot copy {}: {}", db.string(), ec.message()));
  if (with_wal && fs::exists(db.string() + "-wal")) {
    fs::copy_file(db.string() + "-wal", copy.string() + "-wal", ec);
    if (ec) return IoError(fmt::format("cannot copy the WAL of {}: {}", db.string(), ec.message()));
  }
  return copy;
}

// Salvage reads whatever it can; a source too damaged to attach at all yields nothing, not an
// error. Errors writing the fresh store do abort (they are transient, and the marker resumes).
Result<CopyReport> CopyWhatCanBeRead(MemoryStore& fresh, const fs::path& source) {
  auto report = fresh.CopyRowsFrom(source.string());
  if (report.ok()) return report;
  if (report.status().code() == StatusCode::kCorruption) {
    CopyReport nothing;
    nothing.unreadable_tables.push_back("*");
    return nothing;
  }
  return report.status();
}

}  // namespace

std::string CompactUtcTimestamp(int64_t unix_millis) {
  const std::time_t seconds = static_cast<std::time_t>(unix_millis / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  return fmt::format("{:04}{:02}{:02}T{:02}{:02}{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, unix_millis % 1000);
}

bool RecoveryInterrupted(const std::string& directory) {
  return fs::exists(fs::path(directory) / kMarker);
}

std::vector<std::string> ListSnapshots(const std::string& directory) {
  std::vector<std::string> out;
  std::error_code ec;
  const fs::path dir = fs::path(directory) / "snapshots";
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_regular_file() && entry.path().extension() == ".db") {
      out.push_back(entry.path().string());
    }
  }
  std::sort(out.rbegin(), out.rend());  // Names are timestamps: newest first.
  return out;
}

Result<RecoveryEvent> RecoverMemory(const std::string& directory, const StoreOptions& store_options,
                                    const std::string& reason) {
  const fs::path dir(directory);
  ASSIGN_OR_RETURN(const fs::path quarantine, Quarantine(dir, store_options));

  const fs::path rebuilt = dir / kRebuilt;
  RETURN_IF_ERROR(RemoveStore(rebuilt));
  StoreOptions fresh_options = store_options;
  fresh_options.path = rebuilt.string();
  fresh_options.read_only = false;
  // The rebuilt file only counts once it is renamed into place after a checkpoint and directory
  // syncs, so its intermediate commits need not be synced one by one.
  fresh_options.durability = Durability::kRelaxed;

  RecoveryEvent event;
  event.at = store_options.clock->NowMillis();
  event.reason = reason;
  event.quarantine_path = quarantine.string();
  {
    ASSIGN_OR_RETURN(auto fresh, MemoryStore::Open(fresh_options));
    int64_t unreadable = 0;
    if (fs::exists(quarantine / "memory.db")) {
      ASSIGN_OR_RETURN(const fs::path source, ScratchCopy(dir, quarantine / "memory.db", true));
      ASSIGN_OR_RETURN(CopyReport salvaged, CopyWhatCanBeRead(*fresh, source));
      // Then the rows SQL could not reach, read page by page from the quarantined files
      // themselves (read-only; the SQL pass may have checkpointed the scratch copy's WAL).
      ASSIGN_OR_RETURN(const CopyReport scanned,
                       fresh->CopyScannedRowsFrom((quarantine / "memory.db").string(),
                                                  (quarantine / "memory.db-wal").string()));
      event.rows_salvaged = salvaged.copied;
      for (const auto& [table, n] : scanned.copied) event.rows_salvaged[table] += n;
      unreadable = salvaged.unreadable + scanned.rows_rejected;
    }
    const std::vector<std::string> snapshots = ListSnapshots(directory);
    if (!snapshots.empty()) {
      ASSIGN_OR_RETURN(const fs::path source, ScratchCopy(dir, snapshots.front(), false));
      ASSIGN_OR_RETURN(CopyReport merged, CopyWhatCanBeRead(*fresh, source));
      event.rows_from_snapshot = merged.copied;
      event.snapshot_path = snapshots.front();
    }
    event.rows_lost = std::max<int64_t>(0, unreadable - Sum(event.rows_from_snapshot));
    RETURN_IF_ERROR(fresh->RebuildDerivedData());
    RETURN_IF_ERROR(fresh->RecordRecoveryEvent(event));
    RETURN_IF_ERROR(fresh->Checkpoint());
  }
  std::error_code ec;
  fs::rename(rebuilt, dir / "memory.db", ec);
  if (ec) return IoError(fmt::format("cannot put the recovered memory in place: {}", ec.message()));
  RETURN_IF_ERROR(RemoveStore(rebuilt));  // A leftover -wal/-shm of the rebuilt name, if any.
  RETURN_IF_ERROR(SyncDirectory(dir));
  fs::remove(dir / kMarker, ec);
  fs::remove_all(dir / kScratch, ec);
  RETURN_IF_ERROR(SyncDirectory(dir));

  fmt::print(stderr,
             "locrit: recovered the memory in {} ({}): {} rows salvaged, {} taken from snapshot "
             "{}, about {} lost; the damaged files are in {}\n",
             directory, reason, Sum(event.rows_salvaged), Sum(event.rows_from_snapshot),
             event.snapshot_path.empty() ? "(none)" : event.snapshot_path, event.rows_lost,
             event.quarantine_path);
  return event;
}

}  // namespace locrit

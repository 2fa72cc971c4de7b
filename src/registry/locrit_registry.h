// LocritRegistry: the Locrit definitions of one server, kept in <data>/registry.db (SQLite, WAL,
// synchronous=FULL).
//
// Every definition is also held in memory, so Get and List never touch the disk and may run on a
// network thread. Writes run one at a time, each in its own transaction; the in-memory copy is
// updated only after the commit, so readers never see a definition that is not durable.
// Names are unique case-insensitively (LocritNameKey). A Locrit's slug (its memory directory) is
// assigned once at creation: SlugBase(name), with a short hash suffix when the base is empty,
// already used by another Locrit, or names an existing directory under `locrits_dir` (memory left
// by a Locrit deleted without purge is never inherited by a new one).
//
// Thread-safe. Create does file I/O: call it from a work-pool thread, not a network thread.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "core/locrit_config.h"

struct sqlite3;

namespace locrit {

struct RegistryOptions {
  std::string path;               // registry.db; created when missing.
  const Clock* clock = nullptr;   // Required; outlives the registry.
  std::string locrits_dir;        // Where memory directories live; empty: not consulted.
};

class LocritRegistry {
 public:
  // Opens or creates the registry. corruption when the file is not a readable registry (it is
  // never replaced), failed_precondition when it was written by a newer schema, io_error when it
  // cannot be opened.
  static Result<std::unique_ptr<LocritRegistry>> Open(RegistryOptions options);
  ~LocritRegistry();
  LocritRegistry(const LocritRegistry&) = delete;
  LocritRegistry& operator=(const LocritRegistry&) = delete;

  // Validates and stores a new Locrit; `slug`, `created_at` and `updated_at` are assigned here
  // (whatever the caller set). invalid_argument naming the rule, already_exists when the name is
  // taken (case-insensitively). Returns the stored definition.
  Result<LocritConfig> Create(LocritConfig config);

  // The Locrit called `name`, compared case-insensitively. not_found otherwise.
  Result<LocritConfig> Get(std::string_view name) const;

  // Every Locrit, oldest first.
  std::vector<LocritConfig> List() const;

  size_t Count() const;

 private:
  LocritRegistry(RegistryOptions options, sqlite3* db);
  Status Load();
  Result<std::string> ChooseSlug(const std::string& name) const;

  const RegistryOptions options_;
  sqlite3* const db_;          // Used only under write_mu_ (and by Open before publication).
  std::mutex write_mu_;        // Serialises writers; held across their I/O.
  mutable std::mutex mu_;      // Guards the copy below; never held across I/O.
  std::map<std::string, LocritConfig> by_key_;  // GUARDED_BY(mu_): LocritNameKey -> definition.
};

}  // namespace locrit

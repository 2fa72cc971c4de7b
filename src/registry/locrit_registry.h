// LocritRegistry: the Locrit definitions of one server, kept in <data>/registry.db (SQLite, WAL,
// synchronous=FULL).
//
// Every definition is also held in memory, so Get and List never touch the disk and may run on a
// network thread. Writes run one at a time, each in its own transaction; the in-memory copy is
// updated only after the commit, so readers never see a definition that is not durable.
// Names are unique case-insensitively (LocritNameKey). A Locrit's slug (its memory directory) is
// assigned once at creation: SlugBase(name), with a short hash suffix when the base is empty,
// already used by another Locrit, or names an existing directory under `locrits_dir` (memory left
// by a Locrit deleted without purge is never inherited by a new one). A slug is never assigned
// twice: Delete retires it (table retired_slugs), so a stale request naming a deleted Locrit's
// memory can never reach a later Locrit's.
//
// Thread-safe. Create, Update, Rename, Toggle and Delete do file I/O: call them from a work-pool
// thread, not a network thread.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
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

  // Changes the definition of `name` in one transaction: `mutate` edits a copy of the current
  // definition (under the write lock, so read-modify-write is atomic) and may fail, with its
  // error returned as is. The result is validated; its name may differ (a rename: the slug, hence
  // the memory, stays). slug and created_at are kept whatever `mutate` does; updated_at is set.
  // not_found, invalid_argument, already_exists when the new name is another Locrit's.
  using Mutation = std::function<Status(LocritConfig&)>;
  Result<LocritConfig> Update(std::string_view name, const Mutation& mutate);

  // Update that only changes the name (case changes included).
  Result<LocritConfig> Rename(std::string_view name, std::string new_name);

  // Update that flips `active`.
  Result<LocritConfig> Toggle(std::string_view name);

  // Removes `name` and retires its slug, in one transaction; returns the removed definition (its
  // slug says which memory directory to purge, if any). Nothing on disk besides registry.db is
  // touched. not_found.
  Result<LocritConfig> Delete(std::string_view name);

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
  std::set<std::string> retired_slugs_;         // GUARDED_BY(mu_): slugs of deleted Locrits.
};

}  // namespace locrit

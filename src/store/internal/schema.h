// The memory store's schema, as an ordered list of forward migrations (docs/memory-format.md).
//
// Migration i takes a database from user_version i to i+1 and runs in one transaction together
// with the version bump, so a crash leaves the database at a whole version. Migrations are
// append-only: a released migration is never edited.
#pragma once

#include <span>
#include <string_view>

namespace locrit::store_internal {

// kMigrations[i] upgrades version i to version i + 1.
std::span<const std::string_view> Migrations();

inline int LatestSchemaVersion() { return static_cast<int>(Migrations().size()); }

}  // namespace locrit::store_internal

// The memory store's schema, as an ordered list of forward migrations (docs/memory-format.md).
//
// Migration i takes a database from user_version i to i+1 and runs in one transaction together
// with the version bump, so a crash leaves the database at a whole version. Migrations are
// append-only: a released migration is never edited.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace locrit::store_internal {

// kMigrations[i] upgrades version i to version i + 1.
std::span<const std::string_view> Migrations();

inline int LatestSchemaVersion() { return static_cast<int>(Migrations().size()); }

// One row of sqlite_schema.
struct SchemaObject {
  std::string type;
  std::string name;
  std::string sql;  // Empty for the automatic indexes of UNIQUE constraints.
  bool operator==(const SchemaObject&) const = default;
};

// Every object the migrations create, in name order: read once per process from an in-memory
// database that ran them all. A store's own sqlite_schema must hold each of them unchanged.
const std::vector<SchemaObject>& ExpectedSchema();

}  // namespace locrit::store_internal

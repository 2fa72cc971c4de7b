// A SQLite VFS shim that gathers the small writes SQLite makes to a WAL file during a commit
// into one write.
//
// Why: SQLite writes every WAL frame as two writes (its 24-byte header, then the page), so a save
// that dirties ten pages makes some twenty system calls before its fsync, and on a virtual
// machine each costs microseconds. The frames of a commit are appended back to back, so they can
// be gathered in memory and handed to the file system at once.
//
// Only for connections whose every commit syncs the WAL (synchronous=FULL). SQLite tells other
// connections about new frames (through the wal-index) only after the commit's xSync, and xSync
// flushes the gathered bytes first, so no reader can look for a frame that is still here. With
// synchronous=NORMAL a commit does not sync, and a reader on another connection could: the store
// never uses the shim then. Gathered bytes are also flushed before any read, truncate, size query,
// file control or close of the same file, before a write that does not follow them, and once
// 120 KiB have gathered, so to SQLite the file reads exactly as if each write had gone through on
// its own.
// A write that fails at the flush fails the call that flushed (the commit's xSync, say), which
// SQLite handles as that transaction failing.
//
// Database and journal files are opened by the wrapped VFS itself, untouched.
#pragma once

#include <string>

namespace locrit::store_internal {

// The name of the shim over the VFS named `base` ("" = SQLite's default), registered with SQLite
// on first use (never as the default). REQUIRES: the base VFS stays registered while any
// connection opened through the shim is open.
std::string CoalescingVfsName(const std::string& base);

}  // namespace locrit::store_internal

// ScanDatabaseFile: reads every decodable table row out of a SQLite database file (and its WAL)
// page by page, without SQLite, for salvaging a damaged memory file (DESIGN.md "Recovery
// contract"). SQLite 3.40 has neither sqlite_dbpage nor the recover API, so this is our own
// reader of the documented file format (https://www.sqlite.org/fileformat2.html).
//
// What it does, in order:
//   1. Geometry: page size and reserved bytes from the header (offsets 16 and 20), cross-checked
//      against the pages themselves; when the header is damaged, the page size that makes the
//      most pages look like well-formed b-tree pages wins (4096 preferred on ties).
//   2. WAL: frames whose salts and cumulative checksum are valid, up to the last commit frame,
//      replace the file's pages (newest committed image wins); the first bad frame ends the log.
//   3. Ownership: sqlite_schema (the tree at page 1) maps root pages to table names; each table
//      tree is walked from its root, with cycle and depth limits, and a child page is accepted
//      only if most of its rowids fall inside the key range its parent assigns it (a damaged
//      child pointer therefore cannot attach another table's leaf to the wrong table).
//   4. Every other page of the file that is a table leaf and is not on the freelist is an orphan
//      (its tree above it is damaged): its rows are reported with an empty table name.
//
// The input is hostile: every length and offset is bounds-checked, sizes claimed by the header,
// the WAL or a cell are clamped to what the files hold, the pages examined, a record's payload,
// the cells visited, the overflow pages read and the tree depth are all capped (ScanLimits), and
// random bytes yield an empty report, never a crash, hang or absurd allocation.
//
// Pieces: page_format.h decodes bytes (varints, records, page headers), page_source.h turns the
// file and its WAL into page images, and this file finds the trees and their rows.
//
// Values are what the record holds, not what a SELECT returns: an INTEGER PRIMARY KEY column is
// stored as NULL (its value is the rowid), a REAL-affinity column may hold an integer (SQLite
// stores integral reals that way), text is raw bytes in the database's text encoding, and a row
// written before an ALTER TABLE ADD COLUMN has fewer values than the table has columns.
//
// Pure function of the files; thread-safe. The sink runs on the calling thread and must not throw.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"

namespace locrit::store_internal {

// One column value of a record, as stored.
struct SqlValue {
  enum class Type { kNull, kInteger, kReal, kText, kBlob };

  static SqlValue Null() { return {}; }
  static SqlValue Integer(int64_t v) { return {Type::kInteger, v, 0, {}}; }
  static SqlValue Real(double v) { return {Type::kReal, 0, v, {}}; }
  static SqlValue Text(std::string v) { return {Type::kText, 0, 0, std::move(v)}; }
  static SqlValue Blob(std::string v) { return {Type::kBlob, 0, 0, std::move(v)}; }

  Type type = Type::kNull;
  int64_t i = 0;      // kInteger.
  double r = 0;       // kReal.
  std::string bytes;  // kText (in the database's encoding, normally UTF-8) and kBlob.

  friend bool operator==(const SqlValue&, const SqlValue&) = default;
};

struct ScannedRow {
  // The owning table, or "" for a row of an orphan leaf (its tree above it is damaged, or the
  // schema is unreadable); the caller classifies those by shape.
  std::string table;
  // For an orphan row only: the table that the auto-vacuum pointer map names as the owner of its
  // page (via parent pointers up to a root in the schema), or "". A hint, not verified: the
  // pointer map has no checksum.
  std::string table_hint;
  int64_t rowid = 0;
  std::vector<SqlValue> values;
  uint32_t page = 0;                     // The table leaf the cell was found on.
  std::vector<uint32_t> overflow_pages;  // Its overflow chain, in order (usually empty).
};

// A table of sqlite_schema (type 'table' with a b-tree), as read from the damaged file.
struct ScannedTable {
  std::string name;
  uint32_t root_page = 0;
  std::string sql;  // Its CREATE TABLE statement ("" if unreadable).
};

struct ScanReport {
  uint32_t page_size = 0;
  uint32_t usable_size = 0;          // Page size minus reserved bytes.
  bool header_valid = false;         // Magic and geometry fields sane and matching the pages.
  int text_encoding = 0;             // 1 UTF-8, 2 UTF-16le, 3 UTF-16be; 0 unknown.
  int64_t pages_total = 0;           // Pages that exist (in the file or the committed WAL).
  int64_t pages_read_from_wal = 0;   // Of those, pages whose image came from the WAL.
  int64_t wal_frames_applied = 0;    // Valid frames up to the last commit.
  int64_t pages_unparseable = 0;     // Pages a tree points to that are not usable tree pages.
  int64_t leaf_pages = 0;            // Table leaves decoded, orphans included.
  int64_t orphan_leaf_pages = 0;     // Table leaves reached from no root.
  int64_t cells_decoded = 0;         // Rows reported.
  int64_t cells_undecodable = 0;     // Table-leaf cells that could not be decoded.
  bool schema_readable = false;      // The whole sqlite_schema tree was read undamaged.
  bool stopped_at_limit = false;     // A ScanLimits cap ended the scan early.
  std::vector<ScannedTable> tables;  // From sqlite_schema, internal sqlite_* tables included.
  std::map<std::string, int64_t> rows_per_table;  // Rows reported per table; "" = orphans.
};

// Bounds on the work one scan may do, whatever the input claims.
struct ScanLimits {
  // A cell whose payload claims more is undecodable (no Locrit row comes near this).
  int64_t max_record_bytes = int64_t{64} << 20;
  // Cells examined (decoded or not) before the scan stops with stopped_at_limit.
  int64_t max_cells = 200'000'000;
  // Nesting of a table b-tree; real trees are under 20 deep even at 512-byte pages.
  int max_tree_depth = 40;
  // Pages of the database examined: a larger database is read up to this page only, and the
  // scan reports stopped_at_limit. The default (64 GiB at 4 KiB pages) bounds the page map to
  // 16 MiB; below it, sizes the header or WAL claim are clamped to what the files hold anyway.
  int64_t max_pages = int64_t{1} << 24;
};

// Reads `db_path` (and `wal_path` when non-empty and the file exists) without SQLite, calling
// `sink` for every row of every table b-tree leaf it can decode: first the rows of each table in
// schema order (rowid order within a table), then orphan rows in page order. Rows of internal
// sqlite_* tables are not reported. A damaged or garbage file is not an error: it yields what can
// be read (possibly nothing).
// Errors: not_found if db_path does not exist; io_error if a file cannot be opened or read.
Result<ScanReport> ScanDatabaseFile(const std::string& db_path, const std::string& wal_path,
                                    const std::function<void(const ScannedRow&)>& sink,
                                    const ScanLimits& limits = {});

}  // namespace locrit::store_internal

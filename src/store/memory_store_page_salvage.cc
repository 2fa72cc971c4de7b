// MemoryStore::CopyScannedRowsFrom, the page pass of salvage: rows that SQL cannot reach in a
// damaged memory file (their tree's interior pages are damaged, or their leaf is cut off from the
// tree) are read page by page (store/internal/page_scanner.h) and added to this store.
//
// Nothing here knows the schema: the targets are the tables (not views, virtual or shadow
// tables) of this store as SQLite lists them, a record's values fill a table's columns in
// declaration order, and the store's own constraints (FOREIGN KEY, CHECK, UNIQUE, NOT NULL) decide
// what fits. A schema change therefore needs no change here.
#include <fmt/format.h>

#include <algorithm>
#include <cstddef>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "store/internal/page_scanner.h"
#include "store/internal/sqlite.h"
#include "store/memory_store.h"

namespace locrit {

using store_internal::Db;
using store_internal::ScannedRow;
using store_internal::SqlValue;
using store_internal::Stmt;
using store_internal::Transaction;

namespace {

// Column affinity by SQLite's rules (https://www.sqlite.org/datatype3.html §3.1).
enum class Affinity { kInteger, kText, kBlob, kReal, kNumeric };

Affinity AffinityOf(std::string declared) {
  for (char& c : declared) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  const auto has = [&declared](const char* word) {
    return declared.find(word) != std::string::npos;
  };
  if (has("INT")) return Affinity::kInteger;
  if (has("CHAR") || has("CLOB") || has("TEXT")) return Affinity::kText;
  if (has("BLOB") || declared.empty()) return Affinity::kBlob;
  if (has("REAL") || has("FLOA") || has("DOUB")) return Affinity::kReal;
  return Affinity::kNumeric;
}

struct Column {
  std::string name;
  Affinity affinity = Affinity::kBlob;
  bool not_null = false;
  bool has_default = false;
};

// A table of this store that scanned rows may go to.
struct Target {
  std::string name;
  std::vector<Column> columns;                    // Declaration order: the record's order.
  std::optional<size_t> rowid_column;             // The INTEGER PRIMARY KEY, stored as NULL.
  std::vector<size_t> key_columns;                // Another PRIMARY KEY, in key order.
  std::vector<std::string> parents;               // Tables its foreign keys reference.
  std::string present_sql;                        // Whether a row with this key exists.
};

std::string Quote(const std::string& name) {
  std::string out = "\"";
  for (const char c : name) {
    out += c;
    if (c == '"') out += '"';
  }
  return out + "\"";
}

// Whether a stored value can be a value of `column`: its storage class is one the column's
// affinity keeps (an integral REAL is stored as an integer), and NULL only where allowed.
bool ValueFits(const SqlValue& v, const Column& column) {
  using Type = SqlValue::Type;
  if (v.type == Type::kNull) return !column.not_null;
  switch (column.affinity) {
    case Affinity::kInteger:
    case Affinity::kReal:
      return v.type == Type::kInteger || v.type == Type::kReal;
    case Affinity::kNumeric:
      return v.type != Type::kBlob;
    case Affinity::kText:
      return v.type == Type::kText || v.type == Type::kBlob;
    case Affinity::kBlob:
      return true;
  }
  return false;
}

// Whether a record can be a row of `target`: no more values than columns (fewer when the row
// predates an added column, whose default then applies), the INTEGER PRIMARY KEY slot NULL, and
// every value of a storage class its column keeps.
bool ShapeFits(const std::vector<SqlValue>& values, const Target& target) {
  if (values.empty() || values.size() > target.columns.size()) return false;
  for (size_t i = 0; i < target.columns.size(); ++i) {
    const Column& column = target.columns[i];
    if (i >= values.size()) {
      if (column.not_null && !column.has_default) return false;
    } else if (target.rowid_column == i) {
      if (values[i].type != SqlValue::Type::kNull) return false;
    } else if (!ValueFits(values[i], column)) {
      return false;
    }
  }
  return true;
}

void BindValue(Stmt& stmt, int index, const SqlValue& v) {
  switch (v.type) {
    case SqlValue::Type::kNull:
      stmt.BindNull(index);
      return;
    case SqlValue::Type::kInteger:
      stmt.Bind(index, v.i);
      return;
    case SqlValue::Type::kReal:
      stmt.Bind(index, v.r);
      return;
    case SqlValue::Type::kText:  // Memory stores are UTF-8: the schema creates them so.
      stmt.Bind(index, std::string_view(v.bytes));
      return;
    case SqlValue::Type::kBlob:
      stmt.BindBlob(index, std::as_bytes(std::span(v.bytes.data(), v.bytes.size())));
      return;
  }
}

// This store's tables, parents before children (a cycle of foreign keys is broken in schema
// order). Internal sqlite_* tables, views, virtual tables and their shadow tables are not
// targets: SQLite and the triggers rebuild what they hold.
Result<std::vector<Target>> LoadTargets(Db& db) {
  std::vector<Target> found;
  {
    ASSIGN_OR_RETURN(Stmt tables, db.Prepare(
        "SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table' AND wr = 0 "
        "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"));
    while (true) {
      ASSIGN_OR_RETURN(const bool row, tables.Step());
      if (!row) break;
      found.push_back({tables.Text(0), {}, std::nullopt, {}, {}, ""});
    }
  }
  for (Target& t : found) {
    ASSIGN_OR_RETURN(Stmt info, db.Prepare(
        "SELECT name, type, \"notnull\", dflt_value IS NOT NULL, pk FROM pragma_table_info(?1) "
        "ORDER BY cid"));
    info.Bind(1, t.name);
    std::vector<std::pair<int64_t, size_t>> key;  // (position in the key, column)
    bool integer_key = false;
    while (true) {
      ASSIGN_OR_RETURN(const bool row, info.Step());
      if (!row) break;
      Column column{info.Text(0), AffinityOf(info.Text(1)), info.Int(2) != 0, info.Int(3) != 0};
      if (info.Int(4) > 0) {
        key.emplace_back(info.Int(4), t.columns.size());
        std::string type = info.Text(1);
        for (char& c : type) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
        integer_key = type == "INTEGER";
      }
      t.columns.push_back(std::move(column));
    }
    std::sort(key.begin(), key.end());
    std::vector<std::string> conditions;
    if (key.size() == 1 && integer_key) {
      t.rowid_column = key[0].second;
      conditions.push_back("rowid = ?1");
    } else {
      for (const auto& [position, column] : key) {
        t.key_columns.push_back(column);
        conditions.push_back(fmt::format("{} = ?{}", Quote(t.columns[column].name),
                                         conditions.size() + 1));
      }
    }
    if (!conditions.empty()) {
      t.present_sql = fmt::format("SELECT 1 FROM main.{} WHERE {}", Quote(t.name),
                                  fmt::join(conditions, " AND "));
    }
    ASSIGN_OR_RETURN(Stmt parents,
                     db.Prepare("SELECT DISTINCT \"table\" FROM pragma_foreign_key_list(?1)"));
    parents.Bind(1, t.name);
    while (true) {
      ASSIGN_OR_RETURN(const bool row, parents.Step());
      if (!row) break;
      if (parents.Text(0) != t.name) t.parents.push_back(parents.Text(0));
    }
  }
  // Parents first: repeatedly take, in schema order, the tables whose parents are all taken.
  std::vector<Target> ordered;
  std::vector<bool> taken(found.size(), false);
  while (ordered.size() < found.size()) {
    bool progress = false;
    for (size_t i = 0; i < found.size(); ++i) {
      if (taken[i]) continue;
      const bool ready = std::all_of(
          found[i].parents.begin(), found[i].parents.end(), [&](const std::string& parent) -> bool {
            for (size_t j = 0; j < found.size(); ++j) {
              if (found[j].name == parent) return taken[j];
            }
            return true;  // Not a target: nothing to wait for.
          });
      if (!ready) continue;
      taken[i] = true;
      progress = true;
      ordered.push_back(found[i]);
    }
    if (!progress) {  // A cycle: take the first remaining table as it is.
      const size_t i = static_cast<size_t>(std::find(taken.begin(), taken.end(), false) -
                                           taken.begin());
      taken[i] = true;
      ordered.push_back(found[i]);
    }
  }
  return ordered;
}

// Whether this store already has a row with the key the record holds; false when the table has
// no key or the record lacks it.
Result<bool> AlreadyPresent(Db& db, const Target& t, const ScannedRow& row) {
  if (t.present_sql.empty()) return false;
  ASSIGN_OR_RETURN(Stmt present, db.Prepare(t.present_sql));
  if (t.rowid_column) {
    present.Bind(1, row.rowid);
  } else {
    for (size_t i = 0; i < t.key_columns.size(); ++i) {
      const size_t column = t.key_columns[i];
      if (column >= row.values.size() || row.values[column].type == SqlValue::Type::kNull) {
        return false;
      }
      BindValue(present, static_cast<int>(i + 1), row.values[column]);
    }
  }
  return present.Step();
}

enum class Outcome { kInserted, kPresent, kMissingParent, kRejected };

// Inserts the record into `t`: its values into the leading columns (the rowid into the INTEGER
// PRIMARY KEY), the remaining columns left to their defaults. A constraint failure is an outcome;
// any other failure (this store cannot be written) is an error.
Result<Outcome> Insert(Db& db, const Target& t, int64_t rowid,
                       const std::vector<SqlValue>& values) {
  std::vector<std::string> names;
  std::vector<std::string> params;
  for (size_t i = 0; i < values.size(); ++i) {
    names.push_back(Quote(t.columns[i].name));
    params.push_back(fmt::format("?{}", i + 1));
  }
  ASSIGN_OR_RETURN(Stmt insert,
                   db.Prepare(fmt::format("INSERT INTO main.{}({}) VALUES ({})", Quote(t.name),
                                          fmt::join(names, ", "), fmt::join(params, ", "))));
  for (size_t i = 0; i < values.size(); ++i) {
    if (t.rowid_column == i) {
      insert.Bind(static_cast<int>(i + 1), rowid);
    } else {
      BindValue(insert, static_cast<int>(i + 1), values[i]);
    }
  }
  if (insert.Run().ok()) return Outcome::kInserted;
  const int code = sqlite3_extended_errcode(db.raw());
  switch (code) {
    case SQLITE_CONSTRAINT_PRIMARYKEY:
    case SQLITE_CONSTRAINT_ROWID:
    case SQLITE_CONSTRAINT_UNIQUE:
      return Outcome::kPresent;
    case SQLITE_CONSTRAINT_FOREIGNKEY:
      return Outcome::kMissingParent;
    default:
      break;
  }
  if ((code & 0xFF) == SQLITE_CONSTRAINT || code == SQLITE_MISMATCH || code == SQLITE_TOOBIG ||
      code == SQLITE_RANGE) {
    return Outcome::kRejected;
  }
  return db.Error(code, fmt::format("adding a scanned row to {}", t.name));
}

// A scanned row not yet in this store, and the tables it may belong to (parents first).
struct PendingRow {
  int64_t rowid = 0;
  std::vector<SqlValue> values;
  std::vector<size_t> candidates;  // Indices into the targets.
  bool orphan = false;
};

enum class Verdict { kInserted, kPresent, kWait, kRejected, kAmbiguous };

// Decides where `row` goes and puts it there. One candidate: the insert decides. Several (an
// orphan of uncertain shape): each is tried inside a savepoint that is rolled back; the row goes
// where it is already present, or where it alone fits. A row whose parent is missing waits for a
// later round (its parent may be a row still pending), unless this is the last round.
Result<std::pair<Verdict, size_t>> Place(Db& db, const std::vector<Target>& targets,
                                         const PendingRow& row, bool last_round) {
  if (row.candidates.size() == 1) {
    const size_t t = row.candidates[0];
    ASSIGN_OR_RETURN(const Outcome outcome, Insert(db, targets[t], row.rowid, row.values));
    switch (outcome) {
      case Outcome::kInserted:
        return std::make_pair(Verdict::kInserted, t);
      case Outcome::kPresent:
        return std::make_pair(Verdict::kPresent, t);
      case Outcome::kMissingParent:
        return std::make_pair(last_round ? Verdict::kRejected : Verdict::kWait, t);
      case Outcome::kRejected:
        return std::make_pair(Verdict::kRejected, t);
    }
  }
  std::vector<size_t> fits;
  bool waiting = false;
  for (const size_t t : row.candidates) {
    Transaction trial(&db);  // A savepoint: rolled back when it goes out of scope.
    RETURN_IF_ERROR(trial.status());
    ASSIGN_OR_RETURN(const Outcome outcome, Insert(db, targets[t], row.rowid, row.values));
    if (outcome == Outcome::kPresent) return std::make_pair(Verdict::kPresent, t);
    if (outcome == Outcome::kInserted) fits.push_back(t);
    if (outcome == Outcome::kMissingParent) waiting = true;
  }
  if (fits.size() > 1) return std::make_pair(Verdict::kAmbiguous, size_t{0});
  if (waiting && !last_round) return std::make_pair(Verdict::kWait, size_t{0});
  if (fits.empty()) return std::make_pair(Verdict::kRejected, size_t{0});
  ASSIGN_OR_RETURN(const Outcome outcome, Insert(db, targets[fits[0]], row.rowid, row.values));
  if (outcome != Outcome::kInserted) return std::make_pair(Verdict::kRejected, size_t{0});
  return std::make_pair(Verdict::kInserted, fits[0]);
}

}  // namespace

Result<CopyReport> MemoryStore::CopyScannedRowsFrom(const std::string& db_path,
                                                    const std::string& wal_path) {
  if (db_->InTransaction()) return FailedPreconditionError("CopyScannedRowsFrom inside a batch");
  ASSIGN_OR_RETURN(const std::vector<Target> targets, LoadTargets(*db_));
  std::map<std::string, size_t> by_name;
  for (size_t i = 0; i < targets.size(); ++i) by_name.emplace(targets[i].name, i);

  CopyReport report;
  std::vector<PendingRow> pending;
  Status sink_status;
  const auto sink = [&](const ScannedRow& row) {
    if (!sink_status.ok()) return;
    PendingRow p{row.rowid, row.values, {}, row.table.empty()};
    if (!p.orphan) {
      // A table this store does not have as a table (derived data, an older layout): not ours.
      const auto it = by_name.find(row.table);
      if (it == by_name.end()) return;
      const Target& t = targets[it->second];
      if (!ShapeFits(row.values, t)) {
        ++report.rows_rejected;
        return;
      }
      Result<bool> present = AlreadyPresent(*db_, t, row);
      if (!present.ok()) sink_status = present.status();
      if (!present.ok() || *present) return;
      p.candidates.push_back(it->second);
    } else {
      // The pointer map's owner when it names a target the row fits (a hint naming another
      // table, e.g. a full-text index's, marks derived data); else every target it fits.
      const auto hinted = by_name.find(row.table_hint);
      if (hinted != by_name.end() && ShapeFits(row.values, targets[hinted->second])) {
        p.candidates.push_back(hinted->second);
      } else if (!row.table_hint.empty() && hinted == by_name.end()) {
        return;
      } else {
        for (size_t i = 0; i < targets.size(); ++i) {
          if (ShapeFits(row.values, targets[i])) p.candidates.push_back(i);
        }
      }
      if (p.candidates.empty()) {
        ++report.rows_unclassified;
        return;
      }
    }
    pending.push_back(std::move(p));
  };
  RETURN_IF_ERROR(store_internal::ScanDatabaseFile(db_path, wal_path, sink).status());
  RETURN_IF_ERROR(sink_status);

  // Parents first: rows in the order of their first candidate table, scan order within it.
  std::stable_sort(pending.begin(), pending.end(),
                   [](const PendingRow& a, const PendingRow& b) {
                     return a.candidates.front() < b.candidates.front();
                   });
  Transaction tx(db_.get());
  RETURN_IF_ERROR(tx.status());
  std::map<std::string, int64_t> added;
  // Each round places every row whose parents are in; a parent found only among the pending rows
  // is in after its round, so at most one round per table is needed, plus a last one.
  for (size_t round = 0; !pending.empty(); ++round) {
    const bool last_round = round >= targets.size();
    std::vector<PendingRow> waiting;
    for (PendingRow& row : pending) {
      ASSIGN_OR_RETURN(const auto placed, Place(*db_, targets, row, last_round));
      switch (placed.first) {
        case Verdict::kInserted:
          ++added[targets[placed.second].name];
          break;
        case Verdict::kPresent:
          break;
        case Verdict::kWait:
          waiting.push_back(std::move(row));
          break;
        case Verdict::kRejected:
          ++(row.orphan && row.candidates.size() > 1 ? report.rows_unclassified
                                                     : report.rows_rejected);
          break;
        case Verdict::kAmbiguous:
          ++report.rows_unclassified;
          break;
      }
    }
    if (waiting.size() == pending.size() && !last_round) round = targets.size() - 1;
    pending = std::move(waiting);
  }
  RETURN_IF_ERROR(tx.Commit());
  report.copied = std::move(added);
  return report;
}

}  // namespace locrit

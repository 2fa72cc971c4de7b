// MemoryStore recovery support: copying readable rows out of a damaged memory file, rebuilding
// derived data, and the record of recovery events.
#include <fmt/format.h>

#include <array>
#include <limits>
#include <optional>

#include "store/internal/sqlite.h"
#include "store/memory_store.h"

namespace locrit {

using store_internal::Stmt;
using store_internal::Transaction;

namespace store_internal {
// How to copy one table from the attached source ("src") into this store ("main"). Tables are
// listed parents first, so the filters can require that an edge's ends already exist.
struct SalvageTable {
  const char* table;
  const char* key;      // The rowid column ranges are taken over.
  const char* columns;  // Column list, the same in both databases.
  const char* select;   // What to select from src for those columns.
  const char* filter;   // Extra condition on the source row ("1" for none).
  const char* before;   // Statement run for the same range first ("" for none), e.g. placeholders.
};
}  // namespace store_internal

namespace {

using store_internal::SalvageTable;

constexpr std::array<SalvageTable, 15> kTables = {{
    {"users", "rowid", "id, name, created_at", "id, name, created_at", "1", ""},
    {"sessions", "rowid", "id, user_id, name, topic, created_at, last_activity, message_count",
     "id, user_id, name, topic, created_at, last_activity, 0", "1", ""},
    {"topics", "rowid", "id, name, description, category, created_at",
     "id, name, description, category, created_at", "1", ""},
    {"concepts", "rid", "rid, id, name, type, description, confidence, created_at",
     "rid, id, name, type, description, confidence, created_at", "1", ""},
    {"memories", "rid", "rid, id, content, importance, created_at, last_accessed, metadata",
     "rid, id, content, importance, created_at, last_accessed, metadata", "1", ""},
    {"messages", "seq",
     "seq, id, session_id, user_id, role, content, created_at, metadata, status, position, "
     "sent_weight",
     "seq, id, session_id, user_id, role, content, created_at, metadata, status, position, "
     "sent_weight",
     "1",
     // A message outlives the loss of its session row: give it a placeholder session.
     "INSERT OR IGNORE INTO main.sessions(id, user_id, name, topic, created_at, last_activity) "
     "SELECT session_id, user_id, '', '', created_at, created_at FROM src.messages NOT INDEXED "
     "WHERE seq >= ?1 AND seq < ?2"},
    {"responds_to", "id", "id, from_id, to_id, delay_seconds", "id, from_id, to_id, delay_seconds",
     "from_id IN (SELECT id FROM main.messages) AND to_id IN (SELECT id FROM main.messages)", ""},
    {"mentions", "id", "id, message_id, concept_id, confidence",
     "id, message_id, concept_id, confidence",
     "message_id IN (SELECT id FROM main.messages) AND concept_id IN (SELECT id FROM main.concepts)",
     ""},
    {"relates_to", "id", "id, from_id, to_id, relationship_type, strength",
     "id, from_id, to_id, relationship_type, strength",
     "from_id IN (SELECT id FROM main.concepts) AND to_id IN (SELECT id FROM main.concepts)", ""},
    {"discusses", "id", "id, session_id, topic_id, relevance", "id, session_id, topic_id, relevance",
     "session_id IN (SELECT id FROM main.sessions) AND topic_id IN (SELECT id FROM main.topics)", ""},
    {"learns", "id", "id, session_id, memory_id, strength", "id, session_id, memory_id, strength",
     "session_id IN (SELECT id FROM main.sessions) AND memory_id IN (SELECT id FROM main.memories)",
     ""},
    {"message_vectors", "rowid", "node_id, model, dim, vector", "node_id, model, dim, vector",
     "node_id IN (SELECT id FROM main.messages)", ""},
    {"memory_vectors", "rowid", "node_id, model, dim, vector", "node_id, model, dim, vector",
     "node_id IN (SELECT id FROM main.memories)", ""},
    {"concept_vectors", "rowid", "node_id, model, dim, vector", "node_id, model, dim, vector",
     "node_id IN (SELECT id FROM main.concepts)", ""},
    {"recovery_events", "id",
     "id, at, reason, quarantine_path, rows_salvaged, rows_from_snapshot, rows_lost, snapshot_path",
     "id, at, reason, quarantine_path, rows_salvaged, rows_from_snapshot, rows_lost, snapshot_path",
     "1", ""},
}};

// A failure to read the damaged source, as opposed to a failure to write this store.
bool IsSourceReadError(int extended_code) {
  switch (extended_code & 0xFF) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_FORMAT:
      return true;
    case SQLITE_IOERR:
      return extended_code == SQLITE_IOERR_READ || extended_code == SQLITE_IOERR_SHORT_READ;
    default:
      return false;
  }
}

// A row that cannot be copied but can be skipped: unreadable, or failing a constraint because
// what it references was lost.
bool IsSkippableRowError(int extended_code) {
  return IsSourceReadError(extended_code) || (extended_code & 0xFF) == SQLITE_CONSTRAINT ||
         (extended_code & 0xFF) == SQLITE_MISMATCH;
}

// Keys read per step of the salvage walk.
constexpr int kWalkChunk = 256;
// Bounds the work spent on one table that is damaged everywhere.
constexpr int64_t kMaxDamagedRegionsPerTable = 10000;

std::string CountsToJson(const std::map<std::string, int64_t>& counts) {
  std::string out = "{";
  for (const auto& [table, n] : counts) {
    if (out.size() > 1) out += ",";
    out += fmt::format("\"{}\":{}", table, n);  // Table names are plain identifiers.
  }
  return out + "}";
}

}  // namespace

int MemoryStore::CopyRange(const SalvageTable& copy, const std::string& insert, int64_t from,
                           int64_t to, int64_t& copied) {
  if (copy.before[0] != '\0') {
    auto before = db_->Prepare(copy.before);
    if (!before.ok() || !before->BindAll(from, to).Run().ok()) {
      return sqlite3_extended_errcode(db_->raw());
    }
  }
  auto run = db_->Prepare(insert);
  if (!run.ok() || !run->BindAll(from, to).Run().ok()) return sqlite3_extended_errcode(db_->raw());
  copied += db_->Changes();
  return SQLITE_OK;
}

Result<CopyReport> MemoryStore::CopyRowsFrom(const std::string& source_path) {
  if (db_->InTransaction()) return FailedPreconditionError("CopyRowsFrom inside a batch");
  {
    ASSIGN_OR_RETURN(Stmt attach, db_->Prepare("ATTACH DATABASE ?1 AS src"));
    RETURN_IF_ERROR(attach.Bind(1, source_path).Run());
  }
  CopyReport report;
  Status status;
  for (const SalvageTable& copy : kTables) {
    if (!status.ok()) break;
    const std::string source_table = copy.table;
    const std::string key = copy.key;
    {
      // An older source may lack a newer table; that is not damage.
      auto exists = db_->Prepare("SELECT 1 FROM src.sqlite_schema WHERE type = 'table' AND name = ?1");
      if (exists.ok()) {
        auto row = exists->Bind(1, source_table).Step();
        if (row.ok() && !*row) continue;
      }
    }

    // NOT INDEXED: the source is read only through its tables' rowids, never through its
    // indexes, which may be the damaged part. A damaged index would answer "no such row" for
    // rows that are there (the filters' IN lists invite the planner to use one).
    const std::string insert = fmt::format(
        "INSERT OR IGNORE INTO main.{0}({1}) SELECT {2} FROM src.{3} NOT INDEXED "
        "WHERE {4} >= ?1 AND {4} < ?2 AND {5}",
        copy.table, copy.columns, copy.select, source_table, key, copy.filter);
    const std::string walk = fmt::format(
        "SELECT {0} FROM src.{1} NOT INDEXED WHERE {0} >= ?1 ORDER BY {0} LIMIT {2}", key,
        source_table, kWalkChunk);
    const std::string probe = fmt::format(
        "SELECT {0} FROM src.{1} NOT INDEXED WHERE {0} >= ?1 ORDER BY {0} LIMIT 1", key,
        source_table);
    // This store's schema is known good, so a copy that does not even compile means the
    // source's schema text is damaged (a renamed column, say). Its rows are then for the page
    // scan, which reads records without that text.
    if (!db_->Prepare(insert).ok() || !db_->Prepare(walk).ok() || !db_->Prepare(probe).ok()) {
      report.unreadable_tables.push_back(source_table);
      continue;
    }
    // Each copy statement commits on its own: one transaction across the attached source would
    // take locks on the damaged file too, and fail on its damage rather than on our own reads.
    // Walk the table in key order. Where a read fails, the rows before the failure are copied,
    // then probes leap ahead (1, 2, 4, … keys) until a seek lands past the damaged pages. Bounded:
    // at most ~64 probes per damaged region, never a bisection of the whole key space.
    int64_t copied = 0;
    // Start one above the minimum so that "cursor - 1" never overflows.
    int64_t cursor = std::numeric_limits<int64_t>::min() + 1;
    int64_t failures = 0;
    while (status.ok()) {
      int64_t last_good = cursor - 1;
      std::vector<int64_t> keys;
      bool walk_failed = false;
      int walk_code = SQLITE_OK;
      bool at_end = false;
      {
        auto w = db_->Prepare(walk);
        if (!w.ok()) {
          walk_failed = true;
          walk_code = sqlite3_extended_errcode(db_->raw());
        } else {
          w->Bind(1, cursor);
          int rows = 0;
          while (true) {
            auto row = w->Step();
            if (!row.ok()) {
              walk_failed = true;
              walk_code = sqlite3_extended_errcode(db_->raw());
              break;
            }
            if (!*row) break;
            const int64_t key_read = w->Int(0);
            if (key_read <= last_good) {
              // Keys out of order: the B-tree is damaged here. Treat as a failed read.
              walk_failed = true;
              walk_code = SQLITE_CORRUPT;
              break;
            }
            last_good = key_read;
            keys.push_back(key_read);
            ++rows;
          }
          at_end = !walk_failed && rows < kWalkChunk;
        }
      }
      if (walk_failed && !IsSourceReadError(walk_code)) {
        status = db_->Error(walk_code, fmt::format("reading {}", copy.table));
        break;
      }
      if (last_good >= cursor) {
        // Copy [cursor, last_good]: these keys were just read, so their pages are readable. If
        // the chunk fails (a row the walk could not judge: damaged inside, or pointing at a node
        // that was not salvaged), copy it key by key and skip only the rows that fail.
        int code = CopyRange(copy, insert, cursor, last_good + 1, copied);
        if (code != SQLITE_OK && IsSkippableRowError(code)) {
          for (const int64_t k : keys) {
            code = CopyRange(copy, insert, k, k + 1, copied);
            if (code != SQLITE_OK && !IsSkippableRowError(code)) break;
            if (code != SQLITE_OK) ++report.unreadable;
            code = SQLITE_OK;
          }
        }
        if (code != SQLITE_OK) {
          status = db_->Error(code, fmt::format("copying {}", copy.table));
          break;
        }
      }
      if (at_end) break;
      if (!walk_failed) {
        if (last_good < cursor) break;  // No progress: nothing more can be read.
        cursor = last_good + 1;
        continue;
      }
      // Leap past the damage.
      if (++failures > kMaxDamagedRegionsPerTable) {
        report.unreadable_tables.push_back(source_table);
        break;
      }
      const int64_t from = last_good + 1;
      std::optional<int64_t> next;
      bool end_of_table = false;
      for (int shift = 0; shift < 63; ++shift) {
        const int64_t step = int64_t{1} << shift;  // Doubling by shifting: no signed overflow.
        if (from > std::numeric_limits<int64_t>::max() - step) break;
        auto p = db_->Prepare(probe);
        if (!p.ok()) continue;
        auto row = p->Bind(1, from + step).Step();
        if (!row.ok()) continue;
        if (!*row) {
          end_of_table = true;
          break;
        }
        // A damaged tree can answer a seek with a key behind it: keep leaping.
        if (p->Int(0) > last_good) {
          next = p->Int(0);
          break;
        }
      }
      ++report.unreadable;
      if (!next || end_of_table || *next <= cursor) break;
      cursor = *next;
    }
    if (status.ok()) report.copied[copy.table] += copied;
  }
  (void)db_->Exec("DETACH DATABASE src");
  if (!status.ok()) return status;
  return report;
}

Status MemoryStore::RebuildDerivedData() {
  Transaction tx(db_.get());
  RETURN_IF_ERROR(tx.status());
  RETURN_IF_ERROR(db_->Exec(R"sql(
    INSERT OR IGNORE INTO users(id, name, created_at)
      SELECT user_id, '', min(created_at) FROM messages WHERE user_id <> '' GROUP BY user_id;
    INSERT INTO concepts_fts(concepts_fts) VALUES ('rebuild');
    UPDATE counters SET value = (SELECT count(*) FROM messages) WHERE name = 'messages';
    UPDATE sessions SET
      message_count = (SELECT count(*) FROM messages m WHERE m.session_id = sessions.id),
      last_activity = max(last_activity, coalesce(
          (SELECT max(created_at) FROM messages m WHERE m.session_id = sessions.id), 0));
  )sql"));
  return tx.Commit();
}

Status MemoryStore::RecordRecoveryEvent(const RecoveryEvent& event) {
  Transaction tx(db_.get());
  RETURN_IF_ERROR(tx.status());
  ASSIGN_OR_RETURN(Stmt insert, db_->Prepare(
      "INSERT INTO recovery_events(at, reason, quarantine_path, rows_salvaged, rows_from_snapshot,"
      " rows_lost, snapshot_path) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"));
  RETURN_IF_ERROR(insert
                      .BindAll(event.at, event.reason, event.quarantine_path,
                               CountsToJson(event.rows_salvaged),
                               CountsToJson(event.rows_from_snapshot), event.rows_lost,
                               event.snapshot_path)
                      .Run());
  return tx.Commit();
}

Result<std::optional<RecoveryEvent>> MemoryStore::LastRecoveryEvent() {
  ASSIGN_OR_RETURN(Stmt last, db_->Prepare(
      "SELECT id, at, reason, quarantine_path, rows_lost, snapshot_path FROM recovery_events "
      "ORDER BY id DESC LIMIT 1"));
  ASSIGN_OR_RETURN(const bool found, last.Step());
  if (!found) return std::optional<RecoveryEvent>();
  RecoveryEvent event;
  const int64_t id = last.Int(0);
  event.at = last.Int(1);
  event.reason = last.Text(2);
  event.quarantine_path = last.Text(3);
  event.rows_lost = last.Int(4);
  event.snapshot_path = last.Text(5);
  for (const char* column : {"rows_salvaged", "rows_from_snapshot"}) {
    ASSIGN_OR_RETURN(Stmt counts, db_->Prepare(fmt::format(
        "SELECT j.key, j.value FROM recovery_events r, json_each(r.{}) j WHERE r.id = ?1",
        column)));
    counts.Bind(1, id);
    auto& target = std::string_view(column) == "rows_salvaged" ? event.rows_salvaged
                                                               : event.rows_from_snapshot;
    while (true) {
      ASSIGN_OR_RETURN(const bool row, counts.Step());
      if (!row) break;
      target[counts.Text(0)] = counts.Int(1);
    }
  }
  return std::optional<RecoveryEvent>(std::move(event));
}

}  // namespace locrit

#include "store/internal/schema.h"

#include <array>
#include <cstdio>
#include <cstdlib>

#include "store/internal/sqlite.h"

namespace locrit::store_internal {
namespace {

// Version 1: the graph of DESIGN.md. Every table is a rowid table (no WITHOUT ROWID), so every
// row lives in a table B-tree leaf with a rowid: salvage after corruption can then read rows
// page by page without depending on any index. Nodes are tables keyed by a text id; every relation is its
// own table whose ends are foreign keys with ON DELETE CASCADE (deleting a node deletes its
// edges). Triggers keep the FTS indexes, per-session counts and the global message counter in
// step with every write path, cascades included, so no code path can forget them.
constexpr std::string_view kSchemaV1 = R"sql(
CREATE TABLE counters(
  name  TEXT PRIMARY KEY NOT NULL,
  value INTEGER NOT NULL
);
INSERT INTO counters(name, value) VALUES ('messages', 0), ('vectors', 0);

CREATE TABLE users(
  id         TEXT PRIMARY KEY NOT NULL,
  name       TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL
);

CREATE TABLE sessions(
  id            TEXT PRIMARY KEY NOT NULL,
  user_id       TEXT NOT NULL DEFAULT '',
  name          TEXT NOT NULL DEFAULT '',
  topic         TEXT NOT NULL DEFAULT '',
  created_at    INTEGER NOT NULL,
  last_activity INTEGER NOT NULL,
  message_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX sessions_by_activity ON sessions(last_activity);

CREATE TABLE messages(
  seq        INTEGER PRIMARY KEY AUTOINCREMENT,
  id         TEXT NOT NULL UNIQUE,
  session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  user_id    TEXT NOT NULL DEFAULT '',
  role       TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
  content    TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  metadata   TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
  status     TEXT NOT NULL DEFAULT 'ok' CHECK (status IN ('ok', 'unanswered', 'incomplete')),
  position    INTEGER NOT NULL DEFAULT 0 CHECK (position >= 0),  -- PART_OF's property
  sent_weight REAL NOT NULL DEFAULT 1.0                          -- SENT's property
);
CREATE INDEX messages_by_session ON messages(session_id, seq);

CREATE TABLE memories(
  rid           INTEGER PRIMARY KEY,
  id            TEXT NOT NULL UNIQUE,
  content       TEXT NOT NULL,
  importance    REAL NOT NULL CHECK (importance >= 0 AND importance <= 1),
  created_at    INTEGER NOT NULL,
  last_accessed INTEGER NOT NULL,
  metadata      TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata))
);

CREATE TABLE concepts(
  rid         INTEGER PRIMARY KEY,
  id          TEXT NOT NULL UNIQUE,
  name        TEXT NOT NULL CHECK (length(name) > 0),
  type        TEXT NOT NULL DEFAULT '',
  description TEXT NOT NULL DEFAULT '',
  confidence  REAL NOT NULL DEFAULT 1.0 CHECK (confidence >= 0 AND confidence <= 1),
  created_at  INTEGER NOT NULL,
  UNIQUE (name COLLATE NOCASE, type)
);

CREATE TABLE topics(
  id          TEXT PRIMARY KEY NOT NULL,
  name        TEXT NOT NULL UNIQUE COLLATE NOCASE CHECK (length(name) > 0),
  description TEXT NOT NULL DEFAULT '',
  category    TEXT NOT NULL DEFAULT '',
  created_at  INTEGER NOT NULL
);

-- SENT and PART_OF restate a message's own user_id and session_id: a message has exactly one of
-- each, created and deleted with it. They are views over messages rather than tables, which
-- spares every save six B-tree updates (a table, its key and its reverse index, twice).
CREATE VIEW sent(id, user_id, message_id, weight) AS
  SELECT m.seq, m.user_id, m.id, m.sent_weight FROM messages m JOIN users u ON u.id = m.user_id;
CREATE VIEW part_of(id, message_id, session_id, position) AS
  SELECT seq, id, session_id, position FROM messages;

-- Relations. UNIQUE(from, to) makes an edge's natural key its identity (import is idempotent);
-- the second index serves the cascade from the other end.
CREATE TABLE responds_to(
  id            INTEGER PRIMARY KEY,
  from_id       TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
  to_id         TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
  delay_seconds INTEGER NOT NULL DEFAULT 0,
  UNIQUE (from_id, to_id)
);
CREATE INDEX responds_to_by_to ON responds_to(to_id);

CREATE TABLE mentions(
  id         INTEGER PRIMARY KEY,
  message_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
  concept_id TEXT NOT NULL REFERENCES concepts(id) ON DELETE CASCADE,
  confidence REAL NOT NULL DEFAULT 1.0,
  UNIQUE (message_id, concept_id)
);
CREATE INDEX mentions_by_concept ON mentions(concept_id);

CREATE TABLE relates_to(
  id                INTEGER PRIMARY KEY,
  from_id           TEXT NOT NULL REFERENCES concepts(id) ON DELETE CASCADE,
  to_id             TEXT NOT NULL REFERENCES concepts(id) ON DELETE CASCADE,
  relationship_type TEXT NOT NULL DEFAULT 'related',
  strength          REAL NOT NULL DEFAULT 1.0,
  UNIQUE (from_id, to_id, relationship_type)
);
CREATE INDEX relates_to_by_to ON relates_to(to_id);

CREATE TABLE discusses(
  id         INTEGER PRIMARY KEY,
  session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  topic_id   TEXT NOT NULL REFERENCES topics(id) ON DELETE CASCADE,
  relevance  REAL NOT NULL DEFAULT 1.0,
  UNIQUE (session_id, topic_id)
);
CREATE INDEX discusses_by_topic ON discusses(topic_id);

CREATE TABLE learns(
  id         INTEGER PRIMARY KEY,
  session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  memory_id  TEXT NOT NULL REFERENCES memories(id) ON DELETE CASCADE,
  strength   REAL NOT NULL DEFAULT 1.0,
  UNIQUE (session_id, memory_id)
);
CREATE INDEX learns_by_memory ON learns(memory_id);

-- Embeddings: float32 little-endian vectors, one per node, with the model that made them.
CREATE TABLE message_vectors(
  node_id TEXT PRIMARY KEY NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
  model   TEXT NOT NULL,
  dim     INTEGER NOT NULL CHECK (dim > 0),
  vector  BLOB NOT NULL CHECK (length(vector) = 4 * dim)
);
CREATE TABLE memory_vectors(
  node_id TEXT PRIMARY KEY NOT NULL REFERENCES memories(id) ON DELETE CASCADE,
  model   TEXT NOT NULL,
  dim     INTEGER NOT NULL CHECK (dim > 0),
  vector  BLOB NOT NULL CHECK (length(vector) = 4 * dim)
);
CREATE TABLE concept_vectors(
  node_id TEXT PRIMARY KEY NOT NULL REFERENCES concepts(id) ON DELETE CASCADE,
  model   TEXT NOT NULL,
  dim     INTEGER NOT NULL CHECK (dim > 0),
  vector  BLOB NOT NULL CHECK (length(vector) = 4 * dim)
);

-- Keyword search: external-content FTS5 with accent folding ("éléphant" finds "elephant").
CREATE VIRTUAL TABLE messages_fts USING fts5(
  content, content='messages', content_rowid='seq', tokenize='unicode61 remove_diacritics 2');
CREATE VIRTUAL TABLE memories_fts USING fts5(
  content, content='memories', content_rowid='rid', tokenize='unicode61 remove_diacritics 2');
CREATE VIRTUAL TABLE concepts_fts USING fts5(
  name, description, content='concepts', content_rowid='rid',
  tokenize='unicode61 remove_diacritics 2');

CREATE TRIGGER messages_after_insert AFTER INSERT ON messages BEGIN
  INSERT INTO messages_fts(rowid, content) VALUES (new.seq, new.content);
  UPDATE sessions SET message_count = message_count + 1,
                      last_activity = max(last_activity, new.created_at)
   WHERE id = new.session_id;
  UPDATE counters SET value = value + 1 WHERE name = 'messages';
END;
CREATE TRIGGER messages_after_delete AFTER DELETE ON messages BEGIN
  INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.seq, old.content);
  UPDATE sessions SET message_count = message_count - 1 WHERE id = old.session_id;
  UPDATE counters SET value = value - 1 WHERE name = 'messages';
END;
CREATE TRIGGER messages_after_update AFTER UPDATE OF content ON messages BEGIN
  INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.seq, old.content);
  INSERT INTO messages_fts(rowid, content) VALUES (new.seq, new.content);
END;

CREATE TRIGGER memories_after_insert AFTER INSERT ON memories BEGIN
  INSERT INTO memories_fts(rowid, content) VALUES (new.rid, new.content);
END;
CREATE TRIGGER memories_after_delete AFTER DELETE ON memories BEGIN
  INSERT INTO memories_fts(memories_fts, rowid, content) VALUES ('delete', old.rid, old.content);
END;
CREATE TRIGGER memories_after_update AFTER UPDATE OF content ON memories BEGIN
  INSERT INTO memories_fts(memories_fts, rowid, content) VALUES ('delete', old.rid, old.content);
  INSERT INTO memories_fts(rowid, content) VALUES (new.rid, new.content);
END;

CREATE TRIGGER concepts_after_insert AFTER INSERT ON concepts BEGIN
  INSERT INTO concepts_fts(rowid, name, description) VALUES (new.rid, new.name, new.description);
END;
CREATE TRIGGER concepts_after_delete AFTER DELETE ON concepts BEGIN
  INSERT INTO concepts_fts(concepts_fts, rowid, name, description)
    VALUES ('delete', old.rid, old.name, old.description);
END;
CREATE TRIGGER concepts_after_update AFTER UPDATE OF name, description ON concepts BEGIN
  INSERT INTO concepts_fts(concepts_fts, rowid, name, description)
    VALUES ('delete', old.rid, old.name, old.description);
  INSERT INTO concepts_fts(rowid, name, description) VALUES (new.rid, new.name, new.description);
END;

-- Any change to a vector table bumps counters.vectors, so an in-memory vector cache (on any
-- connection) knows when to reload.
CREATE TRIGGER message_vectors_ai AFTER INSERT ON message_vectors BEGIN
  UPDATE counters SET value = value + 1 WHERE name = 'vectors'; END;
CREATE TRIGGER message_vectors_au AFTER UPDATE ON message_vectors BEGIN
  UPDATE counters SET value = value + 1 WHERE name = 'vectors'; END;
CREATE TRIGGER message_vectors_ad AFTER DELETE ON message_vectors BEGIN
  UPDATE counters SET value = value + 1 WHERE name = 'vectors'; END;
CREATE TRIGGER memory_vectors_ai AFTER INSERT ON memory_vectors BEGIN
  UPDATE counters SET value = value + 1 WHERE name = 'vectors'; END;
CREATE TRIGGER memory_vectors_au AFTER UPDATE ON memory_vectors BEGIN
  UPDATE counters SET value = value + 1 WHERE name = 'vectors'; END;
CREATE TRIGGER memory_vectors_ad AFTER DELETE ON memory_vectors BEGIN
  UPDATE counters SET value = value + 1 WHERE name = 'vectors'; END;
CREATE TRIGGER concept_vectors_ai AFTER INSERT ON concept_vectors BEGIN
  UPDATE counters SET value = value + 1 WHERE name = 'vectors'; END;
CREATE TRIGGER concept_vectors_au AFTER UPDATE ON concept_vectors BEGIN
  UPDATE counters SET value = value + 1 WHERE name = 'vectors'; END;
CREATE TRIGGER concept_vectors_ad AFTER DELETE ON concept_vectors BEGIN
  UPDATE counters SET value = value + 1 WHERE name = 'vectors'; END;
)sql";

// Version 2: the record of recoveries from corruption, kept with the memory it concerns (and
// never removed by ClearAll) so a Locrit's health report can say what happened to it.
constexpr std::string_view kSchemaV2 = R"sql(
CREATE TABLE recovery_events(
  id                 INTEGER PRIMARY KEY,
  at                 INTEGER NOT NULL,
  reason             TEXT NOT NULL,
  quarantine_path    TEXT NOT NULL DEFAULT '',
  rows_salvaged      TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(rows_salvaged)),
  rows_from_snapshot TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(rows_from_snapshot)),
  rows_lost          INTEGER NOT NULL DEFAULT 0,
  snapshot_path      TEXT NOT NULL DEFAULT ''
);
)sql";

// Version 3: change counters for the in-memory keyword index (store/internal/keyword_index.h),
// which follows new and deleted messages by seq and count but must hear of edited texts and of
// any change to the memories.
constexpr std::string_view kSchemaV3 = R"sql(
INSERT INTO counters(name, value) VALUES ('message_edits', 0), ('memory_changes', 0);
CREATE TRIGGER messages_count_edits AFTER UPDATE OF content ON messages BEGIN
  UPDATE counters SET value = value + 1 WHERE name = 'message_edits'; END;
CREATE TRIGGER memories_count_inserts AFTER INSERT ON memories BEGIN
  UPDATE counters SET value = value + 1 WHERE name = 'memory_changes'; END;
CREATE TRIGGER memories_count_edits AFTER UPDATE OF content ON memories BEGIN
  UPDATE counters SET value = value + 1 WHERE name = 'memory_changes'; END;
CREATE TRIGGER memories_count_deletes AFTER DELETE ON memories BEGIN
  UPDATE counters SET value = value + 1 WHERE name = 'memory_changes'; END;
)sql";

// Version 4: messages and memories leave FTS5. Since version 3 every keyword query over them is
// answered by the in-memory keyword index (store/internal/keyword_index.h), which reads the
// tables themselves with FTS5's tokenizer and FTS5's bm25; their FTS5 tables had become
// write-only, yet each save paid some six page writes to keep them (a new segment, its index
// entry, the document size, the structure record and the merges). Concepts stay in FTS5: their
// search still reads concepts_fts. The triggers lose their FTS statements and keep the rest.
constexpr std::string_view kSchemaV4 = R"sql(
DROP TRIGGER messages_after_insert;
DROP TRIGGER messages_after_delete;
DROP TRIGGER messages_after_update;
DROP TRIGGER memories_after_insert;
DROP TRIGGER memories_after_delete;
DROP TRIGGER memories_after_update;
DROP TABLE messages_fts;
DROP TABLE memories_fts;
CREATE TRIGGER messages_after_insert AFTER INSERT ON messages BEGIN
  UPDATE sessions SET message_count = message_count + 1,
                      last_activity = max(last_activity, new.created_at)
   WHERE id = new.session_id;
  UPDATE counters SET value = value + 1 WHERE name = 'messages';
END;
CREATE TRIGGER messages_after_delete AFTER DELETE ON messages BEGIN
  UPDATE sessions SET message_count = message_count - 1 WHERE id = old.session_id;
  UPDATE counters SET value = value - 1 WHERE name = 'messages';
END;
)sql";

constexpr std::array<std::string_view, 4> kMigrations = {kSchemaV1, kSchemaV2, kSchemaV3,
                                                         kSchemaV4};

}  // namespace

std::span<const std::string_view> Migrations() { return kMigrations; }

const std::vector<SchemaObject>& ExpectedSchema() {
  static const std::vector<SchemaObject> schema = [] {
    auto objects = []() -> Result<std::vector<SchemaObject>> {
      ASSIGN_OR_RETURN(auto db, Db::Open(":memory:", DbOpenOptions()));
      for (std::string_view migration : kMigrations) RETURN_IF_ERROR(db->Exec(migration));
      ASSIGN_OR_RETURN(Stmt stmt, db->Prepare(
          "SELECT type, name, coalesce(sql, '') FROM sqlite_schema ORDER BY name"));
      std::vector<SchemaObject> out;
      while (true) {
        ASSIGN_OR_RETURN(const bool row, stmt.Step());
        if (!row) break;
        out.push_back(SchemaObject{stmt.Text(0), stmt.Text(1), stmt.Text(2)});
      }
      return out;
    }();
    // Failing here means this build's own migrations do not run on an empty database: no store
    // could be opened, and tests/unit/store/open_test.cc says why.
    if (!objects.ok()) {
      std::fprintf(stderr, "locrit: the memory schema does not build: %s\n",
                   objects.status().ToString().c_str());
      std::abort();
    }
    return *std::move(objects);
  }();
  return schema;
}

}  // namespace locrit::store_internal

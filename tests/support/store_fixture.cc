#include "tests/support/store_fixture.h"

#include <sqlite3.h>

#include <stdexcept>

namespace locrit::testing {
namespace {

class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
      throw std::runtime_error("cannot open " + path);
    }
  }
  ~RawDb() { sqlite3_close_v2(db_); }

  std::vector<std::string> Column(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      throw std::runtime_error(std::string("prepare failed: ") + sqlite3_errmsg(db_) + " in " + sql);
    }
    std::vector<std::string> out;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      const auto* text = sqlite3_column_text(stmt, 0);
      out.emplace_back(text ? reinterpret_cast<const char*>(text) : "");
    }
    sqlite3_finalize(stmt);
    return out;
  }

 private:
  sqlite3* db_ = nullptr;
};

struct EdgeTable {
  const char* table;
  const char* from_col;
  const char* from_table;
  const char* to_col;
  const char* to_table;
};

constexpr EdgeTable kEdges[] = {
    {"sent", "user_id", "users", "message_id", "messages"},
    {"part_of", "message_id", "messages", "session_id", "sessions"},
    {"responds_to", "from_id", "messages", "to_id", "messages"},
    {"mentions", "message_id", "messages", "concept_id", "concepts"},
    {"relates_to", "from_id", "concepts", "to_id", "concepts"},
    {"discusses", "session_id", "sessions", "topic_id", "topics"},
    {"learns", "session_id", "sessions", "memory_id", "memories"},
    {"message_vectors", "node_id", "messages", "node_id", "messages"},
    {"memory_vectors", "node_id", "memories", "node_id", "memories"},
    {"concept_vectors", "node_id", "concepts", "node_id", "concepts"},
};

}  // namespace

StoreHarness::StoreHarness(int64_t max_messages) {
  options_.path = dir_.File("memory.db");
  options_.clock = &clock_;
  options_.ids = &ids_;
  options_.max_messages = max_messages;
}

NewMessage StoreHarness::UserMessage(const std::string& session, const std::string& content,
                                     const std::string& user) {
  NewMessage m;
  m.session_id = session;
  m.user_id = user;
  m.role = Role::kUser;
  m.content = content;
  return m;
}

std::vector<std::string> FindBrokenInvariants(const std::string& db_path) {
  RawDb db(db_path);
  std::vector<std::string> problems;
  for (const EdgeTable& e : kEdges) {
    const std::string key = std::string(e.table) == "message_vectors" ||
                                    std::string(e.table) == "memory_vectors" ||
                                    std::string(e.table) == "concept_vectors"
                                ? "node_id"
                                : "id";
    for (const auto& row : db.Column(std::string("SELECT ") + key + " FROM " + e.table + " t WHERE NOT EXISTS (SELECT 1 FROM " +
                                     e.from_table + " n WHERE n.id = t." + e.from_col +
                                     ") OR NOT EXISTS (SELECT 1 FROM " + e.to_table +
                                     " n WHERE n.id = t." + e.to_col + ")")) {
      problems.push_back(std::string(e.table) + ":" + row);
    }
  }
  for (const auto& id : db.Column(
           "SELECT id FROM messages m WHERE NOT EXISTS (SELECT 1 FROM part_of p WHERE "
           "p.message_id = m.id AND p.session_id = m.session_id)")) {
    problems.push_back("message without PART_OF:" + id);
  }
  for (const auto& id : db.Column(
           "SELECT id FROM messages m WHERE NOT EXISTS (SELECT 1 FROM sent s WHERE s.message_id = "
           "m.id)")) {
    problems.push_back("message without SENT:" + id);
  }
  for (const auto& id : db.Column(
           "SELECT id FROM messages m WHERE NOT EXISTS (SELECT 1 FROM sessions s WHERE s.id = "
           "m.session_id)")) {
    problems.push_back("message without session:" + id);
  }
  for (const auto& row : db.Column(
           "SELECT 'counter ' || c.value || ' vs ' || (SELECT count(*) FROM messages) FROM "
           "counters c WHERE c.name = 'messages' AND c.value <> (SELECT count(*) FROM messages)")) {
    problems.push_back(row);
  }
  for (const auto& id : db.Column(
           "SELECT s.id FROM sessions s WHERE s.message_count <> (SELECT count(*) FROM messages m "
           "WHERE m.session_id = s.id)")) {
    problems.push_back("session count drift:" + id);
  }
  for (const auto& row : db.Column("PRAGMA foreign_key_check")) {
    problems.push_back("foreign_key_check:" + row);
  }
  return problems;
}

int64_t CountRows(const std::string& db_path, const std::string& table) {
  RawDb db(db_path);
  return std::stoll(db.Column("SELECT count(*) FROM " + table).at(0));
}

}  // namespace locrit::testing

// RawSql: SQL on a store's file through a separate read-write SQLite connection, for tests that
// must set up or inspect rows without trusting the store's own code. Thread-compatible.
#pragma once

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <string>

namespace locrit::testing {

class RawSql {
 public:
  explicit RawSql(const std::string& path) {
    EXPECT_EQ(sqlite3_open(path.c_str(), &db_), SQLITE_OK);
    sqlite3_busy_timeout(db_, 5000);
    Exec("PRAGMA foreign_keys = ON");
  }
  ~RawSql() { sqlite3_close(db_); }
  RawSql(const RawSql&) = delete;
  RawSql& operator=(const RawSql&) = delete;

  // Runs `sql` (one or more statements); a failure is a test failure naming the SQL.
  void Exec(const std::string& sql) {
    char* error = nullptr;
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error);
    EXPECT_EQ(rc, SQLITE_OK) << (error != nullptr ? error : "") << " in " << sql;
    sqlite3_free(error);
  }

  // The first column of the first row as text ("" when there is none).
  std::string Text(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db_);
    std::string out;
    if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0) != nullptr) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    }
    sqlite3_finalize(stmt);
    return out;
  }

  sqlite3* db() const { return db_; }

 private:
  sqlite3* db_ = nullptr;
};

}  // namespace locrit::testing

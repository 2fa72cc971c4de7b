// Page scanner: rows read page by page out of real SQLite files, checked against what SQLite
// itself returns. Healthy files of several geometries, WAL files with un-checkpointed, torn and
// uncommitted commits, files damaged in known places (every row whose pages were not touched
// must come back), and seeded fuzzing (never a crash, hang or inconsistent report).
#include "store/internal/page_scanner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/matchers.h"
#include "tests/support/store_fixture.h"
#include "tests/support/temp_dir.h"

namespace locrit::store_internal {

void PrintTo(const SqlValue& v, std::ostream* os) {
  switch (v.type) {
    case SqlValue::Type::kNull:
      *os << "NULL";
      return;
    case SqlValue::Type::kInteger:
      *os << v.i;
      return;
    case SqlValue::Type::kReal:
      *os << v.r << "(real)";
      return;
    case SqlValue::Type::kText:
    case SqlValue::Type::kBlob:
      *os << (v.type == SqlValue::Type::kText ? "text" : "blob") << "[" << v.bytes.size()
          << "]:" << v.bytes.substr(0, 24);
      return;
  }
}

namespace {

using ::locrit::testing::StatusIs;
using ::locrit::testing::TempDir;

// Rows of one table by rowid, and of a database by table.
using TableRows = std::map<int64_t, std::vector<SqlValue>>;
using Contents = std::map<std::string, TableRows>;

// --- The SQLite side ---

// A connection for building and reading test files. Failures are test failures.
class Sql {
 public:
  explicit Sql(const std::string& path) { EXPECT_EQ(sqlite3_open(path.c_str(), &db_), SQLITE_OK); }
  ~Sql() { sqlite3_close(db_); }
  Sql(const Sql&) = delete;
  Sql& operator=(const Sql&) = delete;

  sqlite3* db() const { return db_; }

  void Exec(const std::string& sql) {
    char* error = nullptr;
    EXPECT_EQ(sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK)
        << (error != nullptr ? error : "") << " in " << sql;
    sqlite3_free(error);
  }

  // Runs one statement with `params` bound to ?1, ?2, ...
  void Run(const std::string& sql, const std::vector<SqlValue>& params) {
    sqlite3_stmt* stmt = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db_);
    static const char kEmpty = 0;
    for (size_t i = 0; i < params.size(); ++i) {
      const SqlValue& p = params[i];
      const int at = static_cast<int>(i) + 1;
      switch (p.type) {
        case SqlValue::Type::kNull:
          sqlite3_bind_null(stmt, at);
          break;
        case SqlValue::Type::kInteger:
          sqlite3_bind_int64(stmt, at, p.i);
          break;
        case SqlValue::Type::kReal:
          sqlite3_bind_double(stmt, at, p.r);
          break;
        case SqlValue::Type::kText:
          sqlite3_bind_text(stmt, at, p.bytes.data(), static_cast<int>(p.bytes.size()),
                            SQLITE_TRANSIENT);
          break;
        case SqlValue::Type::kBlob:
          // A null pointer would bind NULL, not an empty blob.
          sqlite3_bind_blob(stmt, at, p.bytes.empty() ? &kEmpty : p.bytes.data(),
                            static_cast<int>(p.bytes.size()), SQLITE_TRANSIENT);
          break;
      }
    }
    EXPECT_EQ(sqlite3_step(stmt), SQLITE_DONE) << sqlite3_errmsg(db_) << " in " << sql;
    sqlite3_finalize(stmt);
  }

  // All rows of `sql`, or nullopt-like empty with *ok = false when it does not prepare.
  std::vector<std::vector<SqlValue>> Query(const std::string& sql, bool* ok = nullptr) {
    std::vector<std::vector<SqlValue>> rows;
    sqlite3_stmt* stmt = nullptr;
    const bool prepared = sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK;
    if (ok != nullptr) {
      *ok = prepared;
    } else {
      EXPECT_TRUE(prepared) << sqlite3_errmsg(db_) << " in " << sql;
    }
    if (!prepared) return rows;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      std::vector<SqlValue>& row = rows.emplace_back();
      for (int c = 0; c < sqlite3_column_count(stmt); ++c) {
        switch (sqlite3_column_type(stmt, c)) {
          case SQLITE_INTEGER:
            row.push_back(SqlValue::Integer(sqlite3_column_int64(stmt, c)));
            break;
          case SQLITE_FLOAT:
            row.push_back(SqlValue::Real(sqlite3_column_double(stmt, c)));
            break;
          case SQLITE_TEXT:
            row.push_back(SqlValue::Text(
                std::string(reinterpret_cast<const char*>(sqlite3_column_text(stmt, c)),
                            static_cast<size_t>(sqlite3_column_bytes(stmt, c)))));
            break;
          case SQLITE_BLOB: {
            const void* blob = sqlite3_column_blob(stmt, c);
            const size_t n = static_cast<size_t>(sqlite3_column_bytes(stmt, c));
            row.push_back(SqlValue::Blob(n == 0 ? std::string()
                                                : std::string(static_cast<const char*>(blob), n)));
            break;
          }
          default:
            row.push_back(SqlValue::Null());
        }
      }
    }
    sqlite3_finalize(stmt);
    return rows;
  }

  int64_t Int(const std::string& sql) {
    const auto rows = Query(sql);
    return rows.empty() || rows[0].empty() ? -1 : rows[0][0].i;
  }

  // Every row of every rowid table (internal and WITHOUT ROWID tables left out), as SELECT
  // sees them.
  Contents SelectAll() {
    Contents contents;
    for (const auto& t : Query("SELECT name FROM sqlite_schema WHERE type = 'table' AND "
                               "rootpage > 0 AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")) {
      const std::string& name = t[0].bytes;
      bool ok = false;
      std::string quoted;
      for (const char c : name) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
      const auto rows = Query("SELECT rowid, * FROM \"" + quoted + "\"", &ok);
      if (!ok) continue;  // WITHOUT ROWID: has no rowid column.
      TableRows& table = contents[name];
      for (const auto& row : rows) {
        table[row[0].i] = std::vector<SqlValue>(row.begin() + 1, row.end());
      }
    }
    return contents;
  }

 private:
  sqlite3* db_ = nullptr;
};

// --- The scanner side ---

struct Scan {
  ScanReport report;
  std::vector<ScannedRow> rows;
};

Result<Scan> ScanFiles(const std::string& db, const std::string& wal = "",
                       const ScanLimits& limits = {}) {
  Scan scan;
  Result<ScanReport> report = ScanDatabaseFile(
      db, wal, [&scan](const ScannedRow& row) { scan.rows.push_back(row); }, limits);
  if (!report.ok()) return report.status();
  scan.report = std::move(report).value();
  return scan;
}

// The rows of tables the scanner could name.
Contents Named(const Scan& scan) {
  Contents contents;
  for (const ScannedRow& row : scan.rows) {
    if (row.table.empty()) continue;
    EXPECT_TRUE(contents[row.table].emplace(row.rowid, row.values).second)
        << "rowid " << row.rowid << " of " << row.table << " reported twice";
  }
  return contents;
}

std::string Describe(const std::vector<SqlValue>& values) {
  std::ostringstream os;
  os << "(";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) os << ", ";
    PrintTo(values[i], &os);
  }
  os << ")";
  return os.str();
}

// Whether a stored value is what SELECT returned: the same, or the NULL stored for an INTEGER
// PRIMARY KEY (SELECT shows the rowid), or the integer stored for an integral REAL.
bool SameValue(const SqlValue& stored, const SqlValue& selected, int64_t rowid) {
  if (stored == selected) return true;
  if (stored.type == SqlValue::Type::kNull && selected.type == SqlValue::Type::kInteger &&
      selected.i == rowid) {
    return true;
  }
  return stored.type == SqlValue::Type::kInteger && selected.type == SqlValue::Type::kReal &&
         static_cast<double>(stored.i) == selected.r;
}

bool SameRow(const std::vector<SqlValue>& stored, const std::vector<SqlValue>& selected,
             int64_t rowid) {
  if (stored.size() != selected.size()) return false;
  for (size_t i = 0; i < stored.size(); ++i) {
    if (!SameValue(stored[i], selected[i], rowid)) return false;
  }
  return true;
}

// `actual` (scanned) holds exactly the rows of `expected` (selected).
void ExpectSameContents(const Contents& expected, const Contents& actual) {
  int reported = 0;
  for (const auto& [table, rows] : expected) {
    const auto found = actual.find(table);
    const TableRows empty;
    const TableRows& got = found == actual.end() ? empty : found->second;
    EXPECT_EQ(got.size(), rows.size()) << "rows of " << table;
    for (const auto& [rowid, values] : rows) {
      const auto it = got.find(rowid);
      if (it == got.end()) {
        if (++reported <= 5) ADD_FAILURE() << table << " rowid " << rowid << " missing";
      } else if (!SameRow(it->second, values, rowid)) {
        if (++reported <= 5) {
          ADD_FAILURE() << table << " rowid " << rowid << ": scanned " << Describe(it->second)
                        << ", selected " << Describe(values);
        }
      }
    }
    for (const auto& [rowid, values] : got) {
      if (rows.count(rowid) == 0 && ++reported <= 5) {
        ADD_FAILURE() << table << " rowid " << rowid << " reported but not selected "
                      << Describe(values);
      }
    }
  }
  for (const auto& [table, rows] : actual) {
    EXPECT_TRUE(expected.count(table) != 0) << "unexpected table " << table;
  }
}

// The report is consistent with the rows it came with.
void ExpectConsistent(const Scan& scan) {
  const ScanReport& r = scan.report;
  int64_t sum = 0;
  for (const auto& [table, n] : r.rows_per_table) sum += n;
  EXPECT_EQ(sum, r.cells_decoded);
  EXPECT_EQ(static_cast<int64_t>(scan.rows.size()), r.cells_decoded);
  EXPECT_LE(r.orphan_leaf_pages, r.leaf_pages);
  EXPECT_LE(r.leaf_pages, r.pages_total);
  EXPECT_LE(r.pages_read_from_wal, r.pages_total);
  for (const ScannedRow& row : scan.rows) EXPECT_GE(row.page, 1u);
}

// --- Files ---

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void Copy(const std::string& from, const std::string& to) {
  std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing);
}

uint16_t Big16(const std::string& b, size_t at) {
  return static_cast<uint16_t>((static_cast<uint8_t>(b[at]) << 8) | static_cast<uint8_t>(b[at + 1]));
}

uint32_t Big32(const std::string& b, size_t at) {
  return (uint32_t{static_cast<uint8_t>(b[at])} << 24) |
         (uint32_t{static_cast<uint8_t>(b[at + 1])} << 16) |
         (uint32_t{static_cast<uint8_t>(b[at + 2])} << 8) |
         uint32_t{static_cast<uint8_t>(b[at + 3])};
}

void PutBig32(std::string* b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    (*b)[at + static_cast<size_t>(i)] = static_cast<char>(v >> (24 - 8 * i));
}

// Rewrites a WAL image's magic and every checksum (header, then each frame chained on the
// previous) for words of the given byte order: a valid WAL holding whatever its frames hold.
void ResealWal(std::string* wal, bool big_endian) {
  if (wal->size() < 32) return;
  PutBig32(wal, 0, big_endian ? 0x377f0683 : 0x377f0682);
  const uint32_t page_size = Big32(*wal, 8);
  uint32_t s0 = 0;
  uint32_t s1 = 0;
  auto add = [&](size_t from, size_t n) {
    for (size_t i = from; i + 8 <= from + n; i += 8) {
      uint32_t x0 = Big32(*wal, i);
      uint32_t x1 = Big32(*wal, i + 4);
      if (!big_endian) {
        x0 = __builtin_bswap32(x0);
        x1 = __builtin_bswap32(x1);
      }
      s0 += x0 + s1;
      s1 += x1 + s0;
    }
  };
  add(0, 24);
  PutBig32(wal, 24, s0);
  PutBig32(wal, 28, s1);
  for (size_t at = 32; at + 24 + page_size <= wal->size(); at += 24 + page_size) {
    add(at, 8);
    add(at + 24, page_size);
    PutBig32(wal, at + 16, s0);
    PutBig32(wal, at + 20, s1);
  }
}

// The b-tree flag byte of every page (index 0 unused).
std::vector<uint8_t> PageTypes(const std::string& bytes, uint32_t page_size) {
  std::vector<uint8_t> types(bytes.size() / page_size + 1, 0);
  for (size_t p = 1; p < types.size(); ++p) {
    types[p] = static_cast<uint8_t>(bytes[(p - 1) * page_size + (p == 1 ? 100 : 0)]);
  }
  return types;
}

std::string Repeat(const std::string& unit, size_t bytes) {
  std::string s;
  while (s.size() < bytes) s += unit;
  s.resize(bytes);
  return s;
}

std::string PatternBlob(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  std::mt19937 rng(seed);
  for (char& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

// --- Healthy files ---

TEST(PageScannerTest, HealthyFileYieldsEveryRowAsSelectSeesIt) {
  TempDir dir;
  const std::string path = dir.File("healthy.db");
  Contents expected;
  {
    Sql sql(path);
    // No auto-vacuum and no secure delete: deleted rows stay on freelist pages, which the
    // scanner must not bring back.
    sql.Exec(
        "PRAGMA auto_vacuum = NONE; PRAGMA secure_delete = OFF;"
        "CREATE TABLE notes(title TEXT, body BLOB, score REAL, n INTEGER, extra);"
        "CREATE INDEX notes_by_title ON notes(title);"
        "CREATE TABLE people(id INTEGER PRIMARY KEY, name TEXT NOT NULL, age INTEGER);"
        "CREATE TABLE counted(seq INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT);"
        "CREATE TABLE kv(k TEXT PRIMARY KEY, v) WITHOUT ROWID;"
        "CREATE VIRTUAL TABLE notes_fts USING fts5(title);"
        "CREATE TABLE doomed(x TEXT);"
        "CREATE TABLE gone(x TEXT);");
    sql.Exec("BEGIN");
    const std::string insert_note = "INSERT INTO notes VALUES (?1, ?2, ?3, ?4, ?5)";
    const std::vector<std::vector<SqlValue>> special = {
        {SqlValue::Text("héllo wörld ✓ 日本語 🎉"), SqlValue::Blob(std::string("\0\1\2\0", 4)),
         SqlValue::Real(3.14159), SqlValue::Integer(0), SqlValue::Null()},
        {SqlValue::Text(""), SqlValue::Blob(""), SqlValue::Real(-0.5), SqlValue::Integer(1),
         SqlValue::Integer(-1)},
        {SqlValue::Null(), SqlValue::Null(), SqlValue::Real(2.0), SqlValue::Integer(127),
         SqlValue::Real(1e300)},
        {SqlValue::Text("big text"), SqlValue::Blob(PatternBlob(1 << 20, 7)),
         SqlValue::Real(-1e-300), SqlValue::Integer(INT64_MAX), SqlValue::Integer(INT64_MIN)},
        {SqlValue::Text(Repeat("cent kilo-octets de texte é ", 100 * 1024)), SqlValue::Null(),
         SqlValue::Null(), SqlValue::Integer(-32768), SqlValue::Integer(8388607)},
        {SqlValue::Text("ints"), SqlValue::Null(), SqlValue::Integer(5),
         SqlValue::Integer(int64_t{1} << 31), SqlValue::Integer(-(int64_t{1} << 47))},
        {SqlValue::Text("more ints"), SqlValue::Null(), SqlValue::Null(),
         SqlValue::Integer((int64_t{1} << 47) - 1), SqlValue::Integer(-129)},
    };
    for (const auto& row : special) sql.Run(insert_note, row);
    for (int i = 0; i < 400; ++i) {
      sql.Run(
          insert_note,
          {SqlValue::Text("note " + std::to_string(i) + " ✓"),
           SqlValue::Blob(PatternBlob(static_cast<size_t>(i % 97), static_cast<uint32_t>(i))),
           SqlValue::Real(i * 0.25), SqlValue::Integer(int64_t{i} * i * i * 1000003),
           i % 3 == 0 ? SqlValue::Null() : SqlValue::Text(Repeat("x", static_cast<size_t>(i)))});
    }
    for (int i = 0; i < 300; ++i) {
      sql.Run("INSERT INTO people(id, name, age) VALUES (?1, ?2, ?3)",
              {SqlValue::Integer(i * 7 + 3), SqlValue::Text("person " + std::to_string(i)),
               i % 5 == 0 ? SqlValue::Null() : SqlValue::Integer(i % 90)});
    }
    for (int i = 0; i < 50; ++i) {
      sql.Run("INSERT INTO counted(v) VALUES (?1)", {SqlValue::Text(std::to_string(i))});
      sql.Run("INSERT INTO kv VALUES (?1, ?2)",
              {SqlValue::Text("k" + std::to_string(i)), SqlValue::Integer(i)});
    }
    sql.Exec("INSERT INTO notes_fts(title) SELECT title FROM notes WHERE title IS NOT NULL");
    for (int i = 0; i < 300; ++i) {
      sql.Run("INSERT INTO doomed VALUES (?1)",
              {SqlValue::Text("doomed-" + std::to_string(i) + Repeat("-", 300))});
      sql.Run("INSERT INTO gone VALUES (?1)",
              {SqlValue::Text("gone-" + std::to_string(i) + Repeat("-", 300))});
    }
    sql.Exec("COMMIT");
    sql.Exec(
        "DELETE FROM doomed WHERE rowid > 20; DELETE FROM doomed WHERE rowid % 3 = 0;"
        "DROP TABLE gone; DELETE FROM people WHERE id % 2 = 0;");
    ASSERT_GT(sql.Int("PRAGMA freelist_count"), 10) << "the test needs stale freelist pages";
    expected = sql.SelectAll();
  }
  ASSERT_OK_AND_ASSIGN(const Scan scan, ScanFiles(path));
  ExpectConsistent(scan);
  ExpectSameContents(expected, Named(scan));
  const ScanReport& r = scan.report;
  EXPECT_TRUE(r.header_valid);
  EXPECT_TRUE(r.schema_readable);
  EXPECT_EQ(r.page_size, 4096u);
  EXPECT_EQ(r.usable_size, 4096u);
  EXPECT_EQ(r.text_encoding, 1);
  EXPECT_EQ(r.orphan_leaf_pages, 0);  // Freelist pages with stale leaves are not orphans.
  EXPECT_EQ(r.cells_undecodable, 0);
  EXPECT_EQ(r.pages_unparseable, 0);  // The WITHOUT ROWID table's root is not damage.
  EXPECT_EQ(r.pages_read_from_wal, 0);
  EXPECT_EQ(r.rows_per_table.count(""), 0u);
  EXPECT_EQ(r.rows_per_table.count("sqlite_sequence"), 0u);  // Internal: not reported...
  std::set<std::string> names;
  for (const ScannedTable& t : r.tables) names.insert(t.name);
  EXPECT_TRUE(names.count("sqlite_sequence"));  // ... but listed.
  EXPECT_TRUE(names.count("kv"));
  EXPECT_FALSE(names.count("gone"));
  EXPECT_EQ(r.rows_per_table.at("notes"), 407);
  for (const ScannedRow& row : scan.rows) {
    EXPECT_TRUE(row.table_hint.empty());
    if (row.table == "notes" && row.rowid == 4) {
      EXPECT_GE(row.overflow_pages.size(), 256u);
    }
  }
}

// Page sizes from 512 to 65536, reserved bytes at the end of each page, auto-vacuum pointer maps.
struct Geometry {
  int page_size;
  int reserve;
  int auto_vacuum;
};

class PageScannerGeometryTest : public ::testing::TestWithParam<Geometry> {};

TEST_P(PageScannerGeometryTest, EveryRowComesBack) {
  const Geometry g = GetParam();
  TempDir dir;
  const std::string path = dir.File("g.db");
  Contents expected;
  {
    Sql sql(path);
    sql.Exec("PRAGMA page_size = " + std::to_string(g.page_size));
    // The reserve must be set before auto_vacuum, or SQLite silently keeps none.
    if (g.reserve > 0) {
      int reserve = g.reserve;
      ASSERT_EQ(sqlite3_file_control(sql.db(), "main", SQLITE_FCNTL_RESERVE_BYTES, &reserve),
                SQLITE_OK);
    }
    sql.Exec("PRAGMA auto_vacuum = " + std::to_string(g.auto_vacuum));
    sql.Exec(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, a TEXT, b BLOB, c REAL);"
        "CREATE INDEX t_by_a ON t(a); BEGIN;");
    for (int i = 0; i < 300; ++i) {
      const size_t big = i == 17 ? 20000 : i == 18 ? 200000 : static_cast<size_t>(i % 50);
      sql.Run(
          "INSERT INTO t(a, b, c) VALUES (?1, ?2, ?3)",
          {SqlValue::Text("ligne " + std::to_string(i) + " ✓"),
           SqlValue::Blob(PatternBlob(big, static_cast<uint32_t>(i))), SqlValue::Real(i / 3.0)});
    }
    sql.Exec("COMMIT; DELETE FROM t WHERE id % 4 = 0;");
    ASSERT_EQ(sql.Int("PRAGMA page_size"), g.page_size);
    ASSERT_EQ(sql.Int("PRAGMA auto_vacuum"), g.auto_vacuum);
    expected = sql.SelectAll();
  }
  ASSERT_OK_AND_ASSIGN(const Scan scan, ScanFiles(path));
  ExpectConsistent(scan);
  ExpectSameContents(expected, Named(scan));
  EXPECT_EQ(scan.report.page_size, static_cast<uint32_t>(g.page_size));
  EXPECT_EQ(scan.report.usable_size, static_cast<uint32_t>(g.page_size - g.reserve));
  EXPECT_TRUE(scan.report.header_valid);
  EXPECT_EQ(scan.report.orphan_leaf_pages, 0);
  EXPECT_EQ(scan.report.cells_undecodable, 0);
}

INSTANTIATE_TEST_SUITE_P(Sizes, PageScannerGeometryTest,
                         ::testing::Values(Geometry{512, 0, 0}, Geometry{512, 16, 2},
                                           Geometry{1024, 0, 1}, Geometry{4096, 32, 2},
                                           Geometry{8192, 0, 0}, Geometry{65536, 0, 2},
                                           Geometry{65536, 8, 0}));

TEST(PageScannerTest, DamagedHeaderPageSizeIsFoundFromThePages) {
  TempDir dir;
  const std::string path = dir.File("h.db");
  Contents expected;
  {
    Sql sql(path);
    sql.Exec("PRAGMA page_size = 1024; CREATE TABLE t(a TEXT, b INTEGER); BEGIN;");
    for (int i = 0; i < 500; ++i) {
      sql.Run("INSERT INTO t VALUES (?1, ?2)",
              {SqlValue::Text(Repeat("abc", static_cast<size_t>(i % 200))), SqlValue::Integer(i)});
    }
    sql.Exec("COMMIT");
    expected = sql.SelectAll();
  }
  std::string bytes = ReadBytes(path);
  bytes[0] = 'X';      // Magic.
  bytes[16] = '\x77';  // Page size 0x7700: not a power of two.
  bytes[20] = '\x30';  // A reserve that would cut into every page.
  WriteBytes(path, bytes);
  ASSERT_OK_AND_ASSIGN(const Scan scan, ScanFiles(path));
  ExpectConsistent(scan);
  EXPECT_FALSE(scan.report.header_valid);
  EXPECT_EQ(scan.report.page_size, 1024u);
  EXPECT_EQ(scan.report.usable_size, 1024u);
  // The schema's b-tree on page 1 is intact, so rows still get their table.
  EXPECT_TRUE(scan.report.schema_readable);
  ExpectSameContents(expected, Named(scan));
}

TEST(PageScannerTest, FlippedTableNameInTheSchemaIsOutvoted) {
  TempDir dir;
  const std::string path = dir.File("n.db");
  Contents expected;
  {
    Sql sql(path);
    sql.Exec(
        "CREATE TABLE widgets(a TEXT); CREATE TABLE \"odd \"\"name\"\"\"(b INTEGER);"
        "INSERT INTO widgets VALUES ('w1'), ('w2'); INSERT INTO \"odd \"\"name\"\"\" "
        "VALUES (1), (2), (3);");
    expected = sql.SelectAll();
  }
  ASSERT_EQ(expected.size(), 2u);
  // Damage the first copy of each name on page 1 (the `name` column) and, in a second file, the
  // second copy (`tbl_name`).
  const std::string healthy = ReadBytes(path);
  for (const int copy : {0, 1}) {
    std::string bytes = healthy;
    for (const std::string name : {"widgets", "odd \"name\""}) {
      size_t at = bytes.find(name);
      if (copy == 1) at = bytes.find(name, at + 1);
      ASSERT_LT(at, 4096u);
      bytes[at + 1] ^= 0x20;
    }
    WriteBytes(path, bytes);
    ASSERT_OK_AND_ASSIGN(const Scan scan, ScanFiles(path));
    ExpectSameContents(expected, Named(scan));
  }
}

TEST(PageScannerTest, LimitsBoundTheWork) {
  TempDir dir;
  const std::string path = dir.File("l.db");
  {
    Sql sql(path);
    sql.Exec("CREATE TABLE t(v BLOB); BEGIN;");
    for (int i = 0; i < 100; ++i) {
      sql.Run("INSERT INTO t VALUES (?1)",
              {SqlValue::Blob(PatternBlob(i == 50 ? 2 << 20 : 10, 1))});
    }
    sql.Exec("COMMIT");
  }
  ScanLimits small_records;
  small_records.max_record_bytes = 1 << 20;
  ASSERT_OK_AND_ASSIGN(const Scan a, ScanFiles(path, "", small_records));
  ExpectConsistent(a);
  EXPECT_EQ(a.report.cells_decoded, 99);
  EXPECT_EQ(a.report.cells_undecodable, 1);
  EXPECT_FALSE(a.report.stopped_at_limit);

  ScanLimits few_cells;
  few_cells.max_cells = 10;
  ASSERT_OK_AND_ASSIGN(const Scan b, ScanFiles(path, "", few_cells));
  ExpectConsistent(b);
  EXPECT_TRUE(b.report.stopped_at_limit);
  EXPECT_LE(b.report.cells_decoded, 10);
}

// --- Not a database ---

TEST(PageScannerTest, MissingFileIsNotFound) {
  TempDir dir;
  EXPECT_THAT(ScanFiles(dir.File("nope.db")), StatusIs(StatusCode::kNotFound));
}

TEST(PageScannerTest, GarbageIsAnEmptyReportNotAnError) {
  TempDir dir;
  const std::string path = dir.File("garbage");
  std::vector<std::string> inputs = {"",
                                     "hello, world\n",
                                     std::string(100, '\0'),
                                     std::string(8192, '\0'),
                                     PatternBlob(300 * 1024, 1234),
                                     PatternBlob(511, 99),
                                     std::string(65536, '\x0d')};
  // A valid-looking header over random pages.
  std::string fake = PatternBlob(64 * 1024, 77);
  std::memcpy(fake.data(), "SQLite format 3\0\x10\x00", 18);
  inputs.push_back(fake);
  for (const std::string& input : inputs) {
    WriteBytes(path, input);
    ASSERT_OK_AND_ASSIGN(const Scan scan, ScanFiles(path, path + "-wal"));
    ExpectConsistent(scan);
    EXPECT_EQ(scan.report.cells_decoded, 0) << "input of " << input.size() << " bytes";
    EXPECT_FALSE(scan.report.schema_readable);
  }
  // Garbage as the WAL of a healthy file changes nothing.
  const std::string db = dir.File("ok.db");
  {
    Sql sql(db);
    sql.Exec("CREATE TABLE t(a); INSERT INTO t VALUES (1), (2)");
  }
  WriteBytes(db + "-wal", PatternBlob(50000, 5));
  ASSERT_OK_AND_ASSIGN(const Scan scan, ScanFiles(db, db + "-wal"));
  EXPECT_EQ(scan.report.cells_decoded, 2);
  EXPECT_EQ(scan.report.wal_frames_applied, 0);
}

// --- WAL ---

class PageScannerWalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.File("live.db");
    sql_ = std::make_unique<Sql>(path_);
    const auto mode = sql_->Query("PRAGMA journal_mode = WAL");
    ASSERT_EQ(mode[0][0].bytes, "wal");
    sql_->Exec(
        "PRAGMA wal_autocheckpoint = 0;"
        "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, data BLOB); BEGIN;");
    for (int i = 0; i < 200; ++i) Insert(i, "checkpointed", i == 7 ? 10000 : 20);
    sql_->Exec("COMMIT; PRAGMA wal_checkpoint(TRUNCATE);");
    checkpointed_ = sql_->SelectAll();
    // Commits that stay in the WAL: new rows, updates, deletes and a schema change.
    sql_->Exec("BEGIN");
    for (int i = 200; i < 400; ++i) Insert(i, "in wal", i == 300 ? 50000 : 30);
    sql_->Exec(
        "COMMIT; UPDATE t SET name = 'updated' WHERE id < 20; DELETE FROM t WHERE id "
        "BETWEEN 30 AND 50; CREATE TABLE u(x TEXT); INSERT INTO u VALUES ('only in wal');");
    committed_ = sql_->SelectAll();
  }

  void Insert(int id, const std::string& name, size_t blob) {
    sql_->Run("INSERT INTO t VALUES (?1, ?2, ?3)",
              {SqlValue::Integer(id), SqlValue::Text(name + " " + std::to_string(id)),
               SqlValue::Blob(PatternBlob(blob, static_cast<uint32_t>(id)))});
  }

  // Copies the database and its WAL as they are now, while the connection is open.
  void Snapshot(const std::string& name) {
    Copy(path_, dir_.File(name));
    Copy(path_ + "-wal", dir_.File(name) + "-wal");
  }

  TempDir dir_;
  std::string path_;
  std::unique_ptr<Sql> sql_;
  Contents checkpointed_;
  Contents committed_;
};

TEST_F(PageScannerWalTest, RowsOnlyInTheWalAreRecovered) {
  Snapshot("copy.db");
  const std::string copy = dir_.File("copy.db");
  ASSERT_OK_AND_ASSIGN(const Scan with_wal, ScanFiles(copy, copy + "-wal"));
  ExpectConsistent(with_wal);
  ExpectSameContents(committed_, Named(with_wal));
  EXPECT_GT(with_wal.report.pages_read_from_wal, 0);
  EXPECT_GT(with_wal.report.wal_frames_applied, 0);
  EXPECT_EQ(with_wal.report.orphan_leaf_pages, 0);
  EXPECT_TRUE(with_wal.report.header_valid);

  // The database file alone, or with a WAL that does not exist, is the checkpointed state.
  ASSERT_OK_AND_ASSIGN(const Scan file_only, ScanFiles(copy, ""));
  ExpectSameContents(checkpointed_, Named(file_only));
  ASSERT_OK_AND_ASSIGN(const Scan missing_wal, ScanFiles(copy, dir_.File("no-such-wal")));
  ExpectSameContents(checkpointed_, Named(missing_wal));
  EXPECT_EQ(missing_wal.report.pages_read_from_wal, 0);
}

TEST_F(PageScannerWalTest, BigEndianChecksumsAreAccepted) {
  Snapshot("copy.db");
  const std::string wal_path = dir_.File("copy.db") + "-wal";
  std::string wal = ReadBytes(wal_path);
  for (const bool big_endian : {false, true}) {
    ResealWal(&wal, big_endian);
    WriteBytes(wal_path, wal);
    ASSERT_OK_AND_ASSIGN(const Scan scan, ScanFiles(dir_.File("copy.db"), wal_path));
    ExpectSameContents(committed_, Named(scan));
  }
}

TEST_F(PageScannerWalTest, DamagedTailFramesAreIgnoredEarlierCommitsCount) {
  const uintmax_t before = std::filesystem::file_size(path_ + "-wal");
  sql_->Exec("BEGIN");
  for (int i = 400; i < 450; ++i) Insert(i, "last commit", 100);
  sql_->Exec("COMMIT");
  const Contents last = sql_->SelectAll();
  Snapshot("copy.db");
  const std::string copy = dir_.File("copy.db");
  const std::string wal = ReadBytes(copy + "-wal");
  ASSERT_GT(wal.size(), before + 2 * (24 + 4096));

  ASSERT_OK_AND_ASSIGN(const Scan intact, ScanFiles(copy, copy + "-wal"));
  ExpectSameContents(last, Named(intact));

  // A flipped byte in the first frame of the last commit: that commit is gone, not the others.
  std::string flipped = wal;
  flipped[before + 24 + 100] ^= 0x40;
  WriteBytes(copy + "-wal", flipped);
  ASSERT_OK_AND_ASSIGN(const Scan torn, ScanFiles(copy, copy + "-wal"));
  ExpectSameContents(committed_, Named(torn));

  // A WAL cut inside the last commit's second frame.
  WriteBytes(copy + "-wal", wal.substr(0, before + (24 + 4096) + 1000));
  ASSERT_OK_AND_ASSIGN(const Scan cut, ScanFiles(copy, copy + "-wal"));
  ExpectSameContents(committed_, Named(cut));

  // A damaged WAL header: no frame can be trusted, the database file stands alone.
  std::string bad_header = wal;
  bad_header[17] ^= 0x01;  // Salt-1.
  WriteBytes(copy + "-wal", bad_header);
  ASSERT_OK_AND_ASSIGN(const Scan headless, ScanFiles(copy, copy + "-wal"));
  ExpectSameContents(checkpointed_, Named(headless));
  EXPECT_EQ(headless.report.wal_frames_applied, 0);
}

TEST_F(PageScannerWalTest, UncommittedFramesAreIgnored) {
  // A small cache makes SQLite spill the open transaction's pages into the WAL before commit.
  sql_->Exec("PRAGMA cache_size = 10; BEGIN;");
  const uintmax_t before = std::filesystem::file_size(path_ + "-wal");
  for (int i = 1000; i < 1300; ++i) Insert(i, "never committed", 4000);
  ASSERT_GT(std::filesystem::file_size(path_ + "-wal"), before + 100 * 1024)
      << "the open transaction did not spill into the WAL";
  Snapshot("copy.db");
  sql_->Exec("ROLLBACK");
  const std::string copy = dir_.File("copy.db");
  ASSERT_OK_AND_ASSIGN(const Scan scan, ScanFiles(copy, copy + "-wal"));
  ExpectConsistent(scan);
  ExpectSameContents(committed_, Named(scan));
  for (const ScannedRow& row : scan.rows) {
    for (const SqlValue& v : row.values)
      EXPECT_EQ(v.bytes.find("never committed"), std::string::npos);
  }
}

// --- Damage ---

// A Locrit-like file (512-byte pages so trees are three levels deep, incremental auto-vacuum so
// there are pointer maps, AUTOINCREMENT, an index, overflow rows), scanned once while healthy.
class PageScannerDamageTest : public ::testing::Test {
 protected:
  static constexpr uint32_t kPageSize = 512;

  static void SetUpTestSuite() {
    dir_ = new TempDir();
    healthy_path_ = new std::string(dir_->File("healthy.db"));
    Contents expected;
    {
      Sql sql(*healthy_path_);
      sql.Exec(
          "PRAGMA page_size = 512; PRAGMA auto_vacuum = INCREMENTAL;"
          "CREATE TABLE messages(seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL "
          "UNIQUE, session_id TEXT NOT NULL, content TEXT NOT NULL, created_at INTEGER);"
          "CREATE INDEX messages_by_session ON messages(session_id, seq);"
          "CREATE TABLE edges(id INTEGER PRIMARY KEY, from_id TEXT, to_id TEXT, weight REAL);"
          "CREATE TABLE notes(k TEXT, v BLOB); BEGIN;");
      std::mt19937 rng(42);
      for (int i = 1; i <= 1500; ++i) {
        const size_t length = i % 50 == 0 ? 3000 : 20 + rng() % 280;
        sql.Run("INSERT INTO messages(id, session_id, content, created_at) VALUES (?1,?2,?3,?4)",
                {SqlValue::Text("m-" + std::to_string(i)),
                 SqlValue::Text("s-" + std::to_string(i % 17)),
                 SqlValue::Text(Repeat("message " + std::to_string(i) + " é ", length)),
                 SqlValue::Integer(1700000000000 + i)});
      }
      for (int i = 1; i <= 1000; ++i) {
        sql.Run("INSERT INTO edges(from_id, to_id, weight) VALUES (?1, ?2, ?3)",
                {SqlValue::Text("m-" + std::to_string(i)),
                 SqlValue::Text("m-" + std::to_string(i + 1)), SqlValue::Real(i / 1000.0)});
      }
      for (int i = 0; i < 30; ++i) {
        sql.Run("INSERT INTO notes VALUES (?1, ?2)",
                {SqlValue::Text("note " + std::to_string(i)),
                 SqlValue::Blob(PatternBlob(static_cast<size_t>(i * 10), 3))});
      }
      sql.Exec("COMMIT; DELETE FROM messages WHERE seq % 7 = 0;");
      expected = sql.SelectAll();
    }
    healthy_ = new Scan();
    Result<Scan> scan = ScanFiles(*healthy_path_);
    ASSERT_TRUE(scan.ok()) << scan.status();
    *healthy_ = std::move(scan).value();
    ExpectSameContents(expected, Named(*healthy_));
    ASSERT_EQ(healthy_->report.orphan_leaf_pages, 0);
    ASSERT_EQ(healthy_->report.page_size, kPageSize);
    bytes_ = new std::string(ReadBytes(*healthy_path_));
    types_ = new std::vector<uint8_t>(PageTypes(*bytes_, kPageSize));
    roots_ = new std::map<std::string, uint32_t>();
    for (const ScannedTable& t : healthy_->report.tables) (*roots_)[t.name] = t.root_page;
  }

  static void TearDownTestSuite() {
    delete roots_;
    delete types_;
    delete bytes_;
    delete healthy_;
    delete healthy_path_;
    delete dir_;
  }

  // Writes `bytes` as a damaged copy and scans it.
  Scan ScanDamaged(const std::string& bytes) {
    const std::string path = dir_->File("damaged.db");
    WriteBytes(path, bytes);
    Result<Scan> scan = ScanFiles(path);
    EXPECT_TRUE(scan.ok()) << scan.status();
    if (!scan.ok()) return {};
    ExpectConsistent(*scan);
    return std::move(scan).value();
  }

  static std::string Zeroed(uint32_t page) {
    std::string bytes = *bytes_;
    std::memset(bytes.data() + size_t{page - 1} * kPageSize, 0, kPageSize);
    return bytes;
  }

  // Every healthy row none of whose pages (leaf or overflow) is in `touched` must come back from
  // the same leaf with the same rowid and values. Its table must be right, or "" when
  // `orphans_allowed` (then a pointer-map hint, if any, must be right). Returns how many came
  // back as orphans.
  static int ExpectSurvivors(const Scan& damaged, const std::set<uint32_t>& touched,
                             bool orphans_allowed) {
    std::map<std::pair<uint32_t, int64_t>, const ScannedRow*> found;
    for (const ScannedRow& row : damaged.rows) found[{row.page, row.rowid}] = &row;
    int orphans = 0;
    int failures = 0;
    for (const ScannedRow& row : healthy_->rows) {
      bool intact = touched.count(row.page) == 0;
      for (const uint32_t p : row.overflow_pages) intact = intact && touched.count(p) == 0;
      if (!intact) continue;
      const auto it = found.find({row.page, row.rowid});
      if (it == found.end()) {
        if (++failures <= 5) {
          ADD_FAILURE() << row.table << " rowid " << row.rowid << " on page " << row.page
                        << " lost";
        }
        continue;
      }
      const ScannedRow& got = *it->second;
      if (got.values != row.values && ++failures <= 5) {
        ADD_FAILURE() << row.table << " rowid " << row.rowid << " changed";
      }
      if (got.table.empty() && orphans_allowed) {
        ++orphans;
        if (!got.table_hint.empty() && got.table_hint != row.table && ++failures <= 5) {
          ADD_FAILURE() << "hint " << got.table_hint << " for a row of " << row.table;
        }
      } else if (got.table != row.table && ++failures <= 5) {
        ADD_FAILURE() << "row of " << row.table << " on page " << row.page << " reported as '"
                      << got.table << "'";
      }
    }
    return orphans;
  }

  static bool HasHealthyRows(uint32_t page) {
    for (const ScannedRow& row : healthy_->rows) {
      if (row.page == page) return true;
    }
    return false;
  }

  static std::set<uint32_t> RowPagesOf(const std::string& table) {
    std::set<uint32_t> pages;
    for (const ScannedRow& row : healthy_->rows) {
      if (row.table == table) pages.insert(row.page);
    }
    return pages;
  }

  static TempDir* dir_;
  static std::string* healthy_path_;
  static Scan* healthy_;
  static std::string* bytes_;
  static std::vector<uint8_t>* types_;
  static std::map<std::string, uint32_t>* roots_;
};

TempDir* PageScannerDamageTest::dir_ = nullptr;
std::string* PageScannerDamageTest::healthy_path_ = nullptr;
Scan* PageScannerDamageTest::healthy_ = nullptr;
std::string* PageScannerDamageTest::bytes_ = nullptr;
std::vector<uint8_t>* PageScannerDamageTest::types_ = nullptr;
std::map<std::string, uint32_t>* PageScannerDamageTest::roots_ = nullptr;

TEST_F(PageScannerDamageTest, ZeroedLeafLosesOnlyItsOwnRows) {
  const std::set<uint32_t> leaves = RowPagesOf("messages");
  const uint32_t leaf = *std::next(leaves.begin(), static_cast<std::ptrdiff_t>(leaves.size() / 2));
  const Scan scan = ScanDamaged(Zeroed(leaf));
  EXPECT_EQ(ExpectSurvivors(scan, {leaf}, /*orphans_allowed=*/false), 0);
  EXPECT_EQ(scan.report.pages_unparseable, 1);
  EXPECT_EQ(scan.report.orphan_leaf_pages, 0);
  for (const ScannedRow& row : scan.rows) EXPECT_NE(row.page, leaf);
}

TEST_F(PageScannerDamageTest, ZeroedInteriorPageOrphansItsLeavesWithPointerMapHints) {
  std::set<uint32_t> roots;
  for (const auto& [name, root] : *roots_) roots.insert(root);
  uint32_t interior = 0;
  for (uint32_t p = 2; p < types_->size() && interior == 0; ++p) {
    if ((*types_)[p] == 0x05 && roots.count(p) == 0) interior = p;
  }
  ASSERT_NE(interior, 0u) << "the fixture needs a three-level tree";
  const Scan scan = ScanDamaged(Zeroed(interior));
  const int orphans = ExpectSurvivors(scan, {interior}, /*orphans_allowed=*/true);
  EXPECT_GT(orphans, 0);
  EXPECT_GT(scan.report.orphan_leaf_pages, 0);
  EXPECT_TRUE(scan.report.schema_readable);
  for (const ScannedRow& row : scan.rows) {
    if (row.table.empty()) {
      EXPECT_FALSE(row.table_hint.empty()) << "page " << row.page;
    }
  }
}

TEST_F(PageScannerDamageTest, CrossLinkedChildPointerDoesNotMisnameAnotherTablesLeaf) {
  // Point the first child of a `messages` interior page (one well away from the lowest rowids)
  // at the `edges` leaf holding rowid 1. Walked first, `messages` must not adopt that leaf.
  uint32_t edges_leaf = 0;
  for (const ScannedRow& row : healthy_->rows) {
    if (row.table == "edges" && row.rowid == 1) edges_leaf = row.page;
  }
  const std::set<uint32_t> message_leaves = RowPagesOf("messages");
  std::map<uint32_t, int64_t> min_rowid;  // Per messages leaf.
  for (const ScannedRow& row : healthy_->rows) {
    if (row.table != "messages") continue;
    auto [it, added] = min_rowid.emplace(row.page, row.rowid);
    if (!added) it->second = std::min(it->second, row.rowid);
  }
  uint32_t interior = 0;
  uint32_t orphaned = 0;
  size_t pointer_at = 0;
  for (uint32_t p = 2; p < types_->size() && interior == 0; ++p) {
    if ((*types_)[p] != 0x05) continue;
    const size_t page_at = size_t{p - 1} * kPageSize;
    const size_t cell = (uint32_t{static_cast<uint8_t>((*bytes_)[page_at + 12])} << 8) |
                        static_cast<uint8_t>((*bytes_)[page_at + 13]);
    const uint32_t child = Big32(*bytes_, page_at + cell);
    if (message_leaves.count(child) != 0 && min_rowid.at(child) > 300) {
      interior = p;
      orphaned = child;
      pointer_at = page_at + cell;
    }
  }
  ASSERT_NE(edges_leaf, 0u);
  ASSERT_NE(interior, 0u);
  std::string bytes = *bytes_;
  PutBig32(&bytes, pointer_at, edges_leaf);
  const Scan scan = ScanDamaged(bytes);
  // Only the interior page was touched: the edges leaf keeps its name, and the messages leaf
  // that lost its pointer comes back as an orphan that the pointer map still attributes.
  ExpectSurvivors(scan, {interior}, /*orphans_allowed=*/true);
  EXPECT_EQ(scan.report.rows_per_table.at("edges"), healthy_->report.rows_per_table.at("edges"));
  int orphans = 0;
  for (const ScannedRow& row : scan.rows) {
    if (row.page != orphaned) continue;
    ++orphans;
    EXPECT_EQ(row.table, "");
    EXPECT_EQ(row.table_hint, "messages");
  }
  EXPECT_GT(orphans, 0);
}

TEST_F(PageScannerDamageTest, SchemaPointerIntoAUserLeafDoesNotSwallowItsRows) {
  // At 512-byte pages the schema is a tree; aim its right-most pointer (whose key range is
  // unbounded) at a messages leaf. Schema rows are never reported, so adopting the leaf would
  // lose its rows: they must still come back.
  ASSERT_EQ((*types_)[1], 0x05);
  const std::set<uint32_t> leaves = RowPagesOf("messages");
  const uint32_t leaf = *std::next(leaves.begin(), static_cast<std::ptrdiff_t>(leaves.size() / 3));
  std::string bytes = *bytes_;
  PutBig32(&bytes, 100 + 8, leaf);
  const Scan scan = ScanDamaged(bytes);
  ExpectSurvivors(scan, {1}, /*orphans_allowed=*/true);
  EXPECT_FALSE(scan.report.schema_readable);
  int from_leaf = 0;
  for (const ScannedRow& row : scan.rows) {
    if (row.page == leaf) {
      ++from_leaf;
      EXPECT_EQ(row.table, "messages");
    }
  }
  EXPECT_GT(from_leaf, 0);
}

TEST_F(PageScannerDamageTest, ZeroedRootOrphansTheWholeTable) {
  const uint32_t root = roots_->at("messages");
  ASSERT_EQ((*types_)[root], 0x05);
  const Scan scan = ScanDamaged(Zeroed(root));
  const int orphans = ExpectSurvivors(scan, {root}, /*orphans_allowed=*/true);
  EXPECT_EQ(orphans, healthy_->report.rows_per_table.at("messages"));
  EXPECT_EQ(scan.report.rows_per_table.count("messages"), 0u);
  EXPECT_EQ(scan.report.rows_per_table.at("edges"), healthy_->report.rows_per_table.at("edges"));
}

TEST_F(PageScannerDamageTest, ZeroedFirstPageLosesTheSchemaNotTheRows) {
  const Scan scan = ScanDamaged(Zeroed(1));
  EXPECT_FALSE(scan.report.schema_readable);
  EXPECT_FALSE(scan.report.header_valid);
  EXPECT_EQ(scan.report.page_size, kPageSize);  // Found from the pages.
  const int orphans = ExpectSurvivors(scan, {1}, /*orphans_allowed=*/true);
  EXPECT_EQ(orphans, static_cast<int>(healthy_->rows.size()));
  for (const ScannedRow& row : scan.rows) EXPECT_EQ(row.table, "");
}

TEST_F(PageScannerDamageTest, RandomByteFlipsInOnePageSpareEveryOtherPage) {
  std::mt19937 rng(20240601);
  const uint32_t pages = static_cast<uint32_t>(bytes_->size() / kPageSize);
  for (int round = 0; round < 60; ++round) {
    // Page 1 and the roots are hit more often than chance would: they matter most.
    uint32_t page = 1 + rng() % pages;
    if (round % 10 == 0) page = 1;
    if (round % 10 == 1) page = roots_->at("messages");
    std::string bytes = *bytes_;
    const int flips = 1 + static_cast<int>(rng() % 8);
    for (int f = 0; f < flips; ++f) {
      bytes[size_t{page - 1} * kPageSize + rng() % kPageSize] ^= static_cast<char>(1 + rng() % 255);
    }
    SCOPED_TRACE("round " + std::to_string(round) + ": page " + std::to_string(page) + " of type " +
                 std::to_string((*types_)[page]));
    const Scan scan = ScanDamaged(bytes);
    // Pages above the rows: page 1, interior pages, and leaves of the schema (which spans
    // several pages at this size) or of other internal tables.
    const bool structural =
        page == 1 || (*types_)[page] == 0x05 ||
        ((*types_)[page] == 0x0D && RowPagesOf("").count(page) == 0 && !HasHealthyRows(page));
    ExpectSurvivors(scan, {page}, /*orphans_allowed=*/structural);
  }
}

TEST_F(PageScannerDamageTest, TruncatedFileKeepsThePagesBeforeTheCut) {
  const size_t pages = bytes_->size() / kPageSize;
  for (const size_t cut : {bytes_->size() * 2 / 3 / kPageSize * kPageSize, bytes_->size() / 3 + 100,
                           size_t{kPageSize} * 3 + 7}) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    const Scan scan = ScanDamaged(bytes_->substr(0, cut));
    std::set<uint32_t> gone;
    for (size_t p = cut / kPageSize + 1; p <= pages; ++p) gone.insert(static_cast<uint32_t>(p));
    ExpectSurvivors(scan, gone, /*orphans_allowed=*/true);
    EXPECT_EQ(scan.report.page_size, kPageSize);
  }
}

// --- Hostile input ---

TEST_F(PageScannerDamageTest, CyclicTreeEndsAndKeepsEveryRow) {
  const uint32_t root = roots_->at("messages");
  ASSERT_EQ((*types_)[root], 0x05);
  std::string bytes = *bytes_;
  const size_t at = size_t{root - 1} * kPageSize;
  // The root's right child becomes the root itself, and its first child's first child points
  // back up to the root: two cycles.
  const uint32_t first_child = Big32(bytes, at + Big16(bytes, at + 12));
  PutBig32(&bytes, at + 8, root);
  ASSERT_EQ((*types_)[first_child], 0x05);
  const size_t child_at = size_t{first_child - 1} * kPageSize;
  PutBig32(&bytes, child_at + Big16(bytes, child_at + 12), root);
  const Scan scan = ScanDamaged(bytes);
  EXPECT_GT(ExpectSurvivors(scan, {}, /*orphans_allowed=*/true), 0);
  EXPECT_FALSE(scan.report.stopped_at_limit);
}

TEST_F(PageScannerDamageTest, PageCapStopsTheScanAtThatPage) {
  const std::string path = dir_->File("capped.db");
  WriteBytes(path, *bytes_);
  ScanLimits limits;
  limits.max_pages = 40;
  ASSERT_OK_AND_ASSIGN(const Scan scan, ScanFiles(path, "", limits));
  ExpectConsistent(scan);
  EXPECT_TRUE(scan.report.stopped_at_limit);
  EXPECT_EQ(scan.report.pages_total, 40);
  // What lies wholly on the pages examined still comes back.
  std::set<uint32_t> beyond;
  for (uint32_t p = 41; p <= bytes_->size() / kPageSize; ++p) beyond.insert(p);
  ExpectSurvivors(scan, beyond, /*orphans_allowed=*/true);
}

// Every page-size field value the header can hold, over the real pages: the pages win.
TEST_F(PageScannerDamageTest, LyingPageSizeInTheHeaderIsOutvotedByThePages) {
  for (const uint32_t lie : {0u, 1u, 256u, 1024u, 4096u, 32768u, 65535u, 1000u}) {
    for (const uint8_t reserved : {uint8_t{0}, uint8_t{32}, uint8_t{255}}) {
      SCOPED_TRACE("page size field " + std::to_string(lie) + ", reserve " +
                   std::to_string(reserved));
      std::string bytes = *bytes_;
      bytes[16] = static_cast<char>(lie >> 8);
      bytes[17] = static_cast<char>(lie & 0xff);
      bytes[20] = static_cast<char>(reserved);
      const Scan scan = ScanDamaged(bytes);
      EXPECT_EQ(scan.report.page_size, kPageSize);
      ExpectSurvivors(scan, {}, /*orphans_allowed=*/true);
    }
  }
}

TEST_F(PageScannerWalTest, WalClaimingHugePagesIsClampedToTheFiles) {
  Snapshot("copy.db");
  const std::string copy = dir_.File("copy.db");
  std::string wal = ReadBytes(copy + "-wal");
  const uint32_t page_size = Big32(wal, 8);
  const size_t frames = (wal.size() - 32) / (24 + page_size);
  ASSERT_GT(frames, 2u);
  // Checksummed frames that name page 2 000 000 000 and a database of as many pages.
  for (size_t f = 0; f < frames; ++f) {
    const size_t at = 32 + f * (24 + page_size);
    if (f == frames / 2) PutBig32(&wal, at, 2000000000);
    if (Big32(wal, at + 4) != 0) PutBig32(&wal, at + 4, 2000000000);
  }
  ResealWal(&wal, false);
  WriteBytes(copy + "-wal", wal);
  ASSERT_OK_AND_ASSIGN(const Scan scan, ScanFiles(copy, copy + "-wal"));
  ExpectConsistent(scan);
  // Only pages that have an image count: the file's and the WAL's.
  const int64_t file_pages =
      static_cast<int64_t>(std::filesystem::file_size(copy) / page_size);
  EXPECT_LE(scan.report.pages_total, file_pages + static_cast<int64_t>(frames));
  EXPECT_GT(scan.report.cells_decoded, 0);
}

TEST(PageScannerHostileTest, RandomFilesAndHeadersNeverCrash) {
  TempDir dir;
  const std::string path = dir.File("random.db");
  std::mt19937 rng(7);
  for (int round = 0; round < 300; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    std::string bytes = PatternBlob(rng() % (200 * 1024), static_cast<uint32_t>(rng()));
    if (round % 2 == 0 && bytes.size() >= 100) {
      // A header that passes the magic check and lies in every field: page size, reserve,
      // database size, freelist, auto-vacuum, encoding.
      std::memcpy(bytes.data(), "SQLite format 3\0", 16);
      const uint32_t sizes[] = {1, 512, 1024, 4096, 8192, 65535, 32768, 0};
      const uint32_t size = sizes[rng() % std::size(sizes)];
      bytes[16] = static_cast<char>(size >> 8);
      bytes[17] = static_cast<char>(size & 0xff);
      bytes[20] = static_cast<char>(rng() % 3 == 0 ? rng() & 0xff : 0);
      for (const size_t field : {28u, 32u, 36u, 52u, 56u}) {
        PutBig32(&bytes, field, rng() % 2 == 0 ? static_cast<uint32_t>(rng()) : rng() % 64);
      }
      // Some pages that claim to be table pages.
      for (size_t p = 512; p + 512 <= bytes.size(); p += 512 * (1 + rng() % 8)) {
        bytes[p] = rng() % 2 == 0 ? '\x0d' : '\x05';
      }
    }
    WriteBytes(path, bytes);
    std::string wal;
    if (round % 3 == 0) {
      // A well-formed WAL header and checksummed frames of random pages.
      const uint32_t page_size = 512u << (rng() % 4);
      wal = PatternBlob(32 + (rng() % 6) * (24 + page_size), static_cast<uint32_t>(rng()));
      PutBig32(&wal, 4, 3007000);
      PutBig32(&wal, 8, page_size);
      for (size_t at = 32; at + 24 <= wal.size(); at += 24 + page_size) {
        std::memcpy(wal.data() + at + 8, wal.data() + 16, 8);  // The header's salts.
      }
      ResealWal(&wal, rng() % 2 == 0);
    }
    if (wal.empty()) {
      std::filesystem::remove(path + "-wal");
    } else {
      WriteBytes(path + "-wal", wal);
    }
    Result<Scan> scan = ScanFiles(path, path + "-wal");
    ASSERT_TRUE(scan.ok()) << scan.status();
    ExpectConsistent(*scan);
    EXPECT_LE(scan->report.pages_total,
              static_cast<int64_t>(bytes.size() / 512 + 1 + wal.size() / (24 + 512)));
    if (::testing::Test::HasFailure()) FAIL();
  }
}

// A real memory store (schema, triggers, FTS, WAL) cut at many offsets, with and without its
// WAL: every row whose leaf and overflow pages lie wholly before the cut comes back.
TEST(PageScannerHostileTest, TruncatedCopiesOfARealStoreKeepThePagesBeforeTheCut) {
  ::locrit::testing::StoreHarness harness(0);
  const std::string live = harness.dir().File("memory.db");
  harness.options().path = live;
  std::string db_bytes;
  {
    ASSERT_OK_AND_ASSIGN(auto store, harness.Open());
    for (int i = 0; i < 300; ++i) {
      ASSERT_TRUE(store
                      ->SaveMessage(::locrit::testing::StoreHarness::UserMessage(
                          "s" + std::to_string(i % 7),
                          Repeat("message " + std::to_string(i) + " ", i % 40 == 0 ? 9000 : 80)))
                      .ok());
    }
    ASSERT_TRUE(store->Checkpoint().ok());
    db_bytes = ReadBytes(live);
  }
  TempDir dir;
  const std::string intact = dir.File("intact.db");
  WriteBytes(intact, db_bytes);
  ASSERT_OK_AND_ASSIGN(const Scan healthy, ScanFiles(intact));
  ASSERT_EQ(healthy.report.orphan_leaf_pages, 0);
  const uint32_t page_size = healthy.report.page_size;
  ASSERT_GT(healthy.report.cells_decoded, 300);
  std::mt19937 rng(3);
  std::vector<size_t> cuts = {0, 1, 99, 100, page_size, page_size + 1, db_bytes.size() - 1};
  for (size_t page = 2; page * page_size < db_bytes.size(); page += 1 + page / 8) {
    cuts.push_back(page * page_size);
  }
  for (int i = 0; i < 20; ++i) cuts.push_back(rng() % db_bytes.size());
  const std::string cut_path = dir.File("cut.db");
  for (const size_t cut : cuts) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    WriteBytes(cut_path, db_bytes.substr(0, cut));
    ASSERT_OK_AND_ASSIGN(const Scan scan, ScanFiles(cut_path, cut_path + "-wal"));
    ExpectConsistent(scan);
    const uint32_t whole_pages = static_cast<uint32_t>(cut / page_size);
    std::map<std::pair<uint32_t, int64_t>, const ScannedRow*> found;
    for (const ScannedRow& row : scan.rows) found[{row.page, row.rowid}] = &row;
    int lost = 0;
    for (const ScannedRow& row : healthy.rows) {
      bool before_cut = row.page <= whole_pages;
      for (const uint32_t p : row.overflow_pages) before_cut = before_cut && p <= whole_pages;
      // Page 1 holds the schema: without it, rows are orphans, which the lookup allows.
      if (!before_cut) continue;
      const auto it = found.find({row.page, row.rowid});
      if (it == found.end() || it->second->values != row.values ||
          (!it->second->table.empty() && it->second->table != row.table)) {
        ++lost;
      }
    }
    EXPECT_EQ(lost, 0);
  }
}

// --- Fuzz ---

// Seeded mutations of a small file (and of its WAL): whatever the bytes, the scan returns OK
// with a consistent report, in bounded time. Runs under ASan+UBSan in CI.
TEST(PageScannerFuzzTest, MutatedFilesNeverCrash) {
  TempDir dir;
  const std::string base = dir.File("base.db");
  {
    Sql sql(base);
    sql.Exec(
        "PRAGMA page_size = 512; PRAGMA auto_vacuum = INCREMENTAL;"
        "CREATE TABLE a(id INTEGER PRIMARY KEY AUTOINCREMENT, t TEXT, r REAL);"
        "CREATE INDEX a_by_t ON a(t); CREATE TABLE b(x, y BLOB);");
    const auto mode = sql.Query("PRAGMA journal_mode = WAL");
    sql.Exec("PRAGMA wal_autocheckpoint = 0; BEGIN");
    for (int i = 0; i < 40; ++i) {
      sql.Run("INSERT INTO a(t, r) VALUES (?1, ?2)",
              {SqlValue::Text(Repeat("t" + std::to_string(i), i == 20 ? 2000 : 30)),
               SqlValue::Real(i * 1.5)});
      sql.Run("INSERT INTO b VALUES (?1, ?2)",
              {SqlValue::Integer(i), SqlValue::Blob(PatternBlob(static_cast<size_t>(i), 1))});
    }
    sql.Exec(
        "COMMIT; PRAGMA wal_checkpoint(TRUNCATE); DELETE FROM a WHERE id % 5 = 0;"
        "INSERT INTO b VALUES ('late', x'00ff');");
    Copy(base, dir.File("base-copy.db"));
    Copy(base + "-wal", dir.File("base-copy.db") + "-wal");
  }
  const std::string db_bytes = ReadBytes(dir.File("base-copy.db"));
  const std::string wal_bytes = ReadBytes(dir.File("base-copy.db") + "-wal");
  ASSERT_GT(db_bytes.size(), 10u * 512);
  ASSERT_GT(wal_bytes.size(), 32u);
  const std::string db_path = dir.File("fuzz.db");
  const std::string wal_path = db_path + "-wal";

  std::mt19937 rng(1);
  auto random_byte = [&rng] { return static_cast<char>(rng() & 0xff); };
  for (int round = 0; round < 2000; ++round) {
    std::string db = db_bytes;
    std::string wal = round % 3 == 0 ? wal_bytes : std::string();
    const size_t pages = db.size() / 512;
    const uint32_t page = static_cast<uint32_t>(rng() % pages);
    char* page_bytes = db.data() + size_t{page} * 512;
    switch (rng() % 10) {
      case 0:  // Scattered flips.
        for (uint32_t n = 1 + rng() % 16; n > 0; --n) db[rng() % db.size()] ^= random_byte();
        break;
      case 1:  // A zeroed page.
        std::memset(page_bytes, 0, 512);
        break;
      case 2:  // Truncation anywhere.
        db.resize(rng() % db.size());
        break;
      case 3:  // Not a database at all.
        db = PatternBlob(rng() % 20000, static_cast<uint32_t>(rng()));
        break;
      case 4:  // One page copied over another: cycles and cross-linked trees.
        std::memcpy(page_bytes, db.data() + (rng() % pages) * 512, 512);
        break;
      case 5:  // The file header's fields.
        for (uint32_t n = 1 + rng() % 4; n > 0; --n) db[16 + rng() % 84] = random_byte();
        break;
      case 6:  // A page header and cell pointer array.
        for (size_t i = 0; i < 24; ++i) {
          if (rng() % 3 == 0) page_bytes[(page == 0 ? 100 : 0) + i] = random_byte();
        }
        break;
      case 7:  // A page of random bytes that still claims to be a table leaf or interior.
        for (size_t i = 0; i < 512; ++i) page_bytes[i] = random_byte();
        page_bytes[0] = rng() % 2 == 0 ? '\x0d' : '\x05';
        break;
      case 8:  // Damaged WAL frames.
        wal = wal_bytes;
        for (uint32_t n = 1 + rng() % 8; n > 0; --n) wal[rng() % wal.size()] ^= random_byte();
        break;
      case 9:  // Damaged WAL frames with valid checksums: the damage reaches the pages.
        wal = wal_bytes;
        for (uint32_t n = 1 + rng() % 8; n > 0; --n) {
          wal[32 + rng() % (wal.size() - 32)] ^= random_byte();
        }
        ResealWal(&wal, rng() % 2 == 0);
        break;
    }
    WriteBytes(db_path, db);
    if (wal.empty()) {
      std::filesystem::remove(wal_path);
    } else {
      WriteBytes(wal_path, wal);
    }
    Result<Scan> scan = ScanFiles(db_path, wal_path);
    ASSERT_TRUE(scan.ok()) << "round " << round << ": " << scan.status();
    ExpectConsistent(*scan);
    if (::testing::Test::HasFailure()) FAIL() << "round " << round;
  }
}

}  // namespace
}  // namespace locrit::store_internal

// Clear-all and JSON Lines export/import (docs/export-format.md): exact round trips, idempotency,
// all-or-nothing rejection of bad input naming the line, retention on import, hostile content,
// and stream failures in both directions.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <streambuf>
#include <string>
#include <vector>

#include "store/memory_store.h"
#include "tests/support/matchers.h"
#include "tests/support/store_fixture.h"

namespace locrit {
namespace {

using ::locrit::testing::CountRows;
using ::locrit::testing::FindBrokenInvariants;
using ::locrit::testing::IsOk;
using ::locrit::testing::StatusIs;
using ::locrit::testing::StoreHarness;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

// The header of the inputs below; "schema" is informational and not checked on import.
constexpr const char* kHeader =
    R"({"kind":"header","format":"locrit-memory","version":1,"schema":1})";

std::string HeaderOf(const MemoryStore& store) {
  return R"({"kind":"header","format":"locrit-memory","version":1,"schema":)" +
         std::to_string(store.SchemaVersion()) + "}";
}

// Every table that holds a node, an edge or a vector.
const std::vector<std::string> kTables = {
    "users",  "sessions",        "messages",       "memories",       "concepts",   "topics",
    "sent",   "part_of",         "responds_to",    "mentions",       "relates_to", "discusses",
    "learns", "message_vectors", "memory_vectors", "concept_vectors"};

// A second, raw connection. The rows the graph API would write (memories, concepts, topics,
// relations, vectors) are inserted as plain SQL: that API is not what is under test here.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << "cannot open " << path;
    }
    sqlite3_busy_timeout(db_, 5000);
    Exec("PRAGMA foreign_keys = ON");
  }
  ~RawDb() { sqlite3_close_v2(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  void Exec(const std::string& sql) {
    char* error = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
      ADD_FAILURE() << (error ? error : "?") << " in " << sql;
    }
    sqlite3_free(error);
  }

  // The first column of every row, as text.
  std::vector<std::string> Column(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    std::vector<std::string> out;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << sqlite3_errmsg(db_) << " in " << sql;
      return out;
    }
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      const auto* text = static_cast<const char*>(sqlite3_column_blob(stmt, 0));
      out.emplace_back(text ? text : "", static_cast<size_t>(sqlite3_column_bytes(stmt, 0)));
    }
    sqlite3_finalize(stmt);
    return out;
  }

  void InsertVector(const std::string& table, const std::string& id,
                    const std::vector<float>& values) {
    std::string blob(values.size() * 4, '\0');
    for (size_t i = 0; i < values.size(); ++i) {
      uint32_t bits = 0;
      std::memcpy(&bits, &values[i], 4);
      for (int b = 0; b < 4; ++b)
        blob[i * 4 + static_cast<size_t>(b)] = static_cast<char>(bits >> (8 * b));
    }
    sqlite3_stmt* stmt = nullptr;
    const std::string sql =
        "INSERT INTO " + table + "(node_id, model, dim, vector) VALUES (?1, 'embed-test', ?2, ?3)";
    ASSERT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK);
    sqlite3_bind_text(stmt, 1, id.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(stmt, 2, static_cast<sqlite3_int64>(values.size()));
    sqlite3_bind_blob(stmt, 3, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT);
    EXPECT_EQ(sqlite3_step(stmt), SQLITE_DONE) << sqlite3_errmsg(db_);
    sqlite3_finalize(stmt);
  }

 private:
  sqlite3* db_ = nullptr;
};

std::string ExportOf(MemoryStore& store) {
  std::ostringstream out;
  EXPECT_THAT(store.Export(out), IsOk());
  return out.str();
}

Result<ImportReport> ImportText(MemoryStore& store, const std::string& text) {
  std::istringstream in(text);
  return store.Import(in);
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

int64_t TotalRows(const std::string& path) {
  int64_t total = 0;
  for (const std::string& table : kTables) total += CountRows(path, table);
  return total;
}

// Row counts of every table plus the counters: what "unchanged" means besides the export.
std::map<std::string, std::string> Census(const std::string& path) {
  std::map<std::string, std::string> out;
  for (const std::string& table : kTables) out[table] = std::to_string(CountRows(path, table));
  RawDb raw(path);
  for (const std::string& row : raw.Column("SELECT name || '=' || value FROM counters")) {
    out["counter " + row] = row;
  }
  return out;
}

class TransferTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(store_, source_.Open());
    PopulateGraph();
  }

  SavedMessage Save(NewMessage message) {
    source_.clock().AdvanceMillis(1500);
    auto saved = store_->SaveMessage(message);
    EXPECT_THAT(saved, IsOk());
    return saved.ok() ? *saved : SavedMessage{};
  }

  // Two users and a Locrit, two sessions, five messages; then every other kind of node, edge
  // and vector, with values chosen to catch lossy number printing.
  void PopulateGraph() {
    NewMessage hello = StoreHarness::UserMessage("s1", "hello");
    hello.user_name = "Alice";
    hello.session_name = "First chat";
    hello.session_topic = "greetings";
    ids_.push_back(Save(hello).id);
    NewMessage reply = StoreHarness::UserMessage("s1", "hi Alice", "locrit");
    reply.role = Role::kAssistant;
    ids_.push_back(Save(reply).id);
    ids_.push_back(Save(StoreHarness::UserMessage("s1", "tell me about Paris")).id);
    NewMessage bonjour = StoreHarness::UserMessage("s2", "bonjour", "user-bob");
    bonjour.metadata = R"({"lang": "fr", "nested": {"n": [1, 2.5]}})";
    bonjour.status = MessageStatus::kUnanswered;
    ids_.push_back(Save(bonjour).id);
    NewMessage system = StoreHarness::UserMessage("s2", "be brief", "locrit");
    system.role = Role::kSystem;
    system.status = MessageStatus::kIncomplete;
    ids_.push_back(Save(system).id);

    RawDb raw(source_.path());
    raw.Exec(
        "INSERT INTO topics(id, name, description, category, created_at) VALUES"
        " ('topic-travel', 'Travel', 'trips', 'life', 1000),"
        " ('topic-food', 'Food', '', '', 1001);"
        "INSERT INTO concepts(id, name, type, description, confidence, created_at) VALUES"
        " ('concept-paris', 'Paris', 'city', 'capital of France', 0.9, 1002),"
        " ('concept-france', 'France', 'country', '', 1.0, 1003),"
        " ('concept-bread', 'bread', '', 'baked', 0.1 + 0.2, 1004);"
        "INSERT INTO memories(id, content, importance, created_at, last_accessed, metadata) VALUES"
        " ('memory-1', 'Alice likes Paris', 0.1 + 0.2, 1005, 1006, '{\"source\": \"chat\"}'),"
        " ('memory-2', 'Bob speaks French', 1.0, 1007, 1007, '{}');"
        "INSERT INTO relates_to(from_id, to_id, relationship_type, strength) VALUES"
        " ('concept-paris', 'concept-france', 'capital_of', 0.95),"
        " ('concept-france', 'concept-paris', 'related', 1.0 / 3);"
        "INSERT INTO discusses(session_id, topic_id, relevance) VALUES ('s1', 'topic-travel', 0.5);"
        "INSERT INTO learns(session_id, memory_id, strength) VALUES"
        " ('s1', 'memory-1', 0.8), ('s2', 'memory-2', 1e-300);");
    raw.Exec("INSERT INTO mentions(message_id, concept_id, confidence) VALUES ('" + ids_[2] +
             "', 'concept-paris', 0.75)");
    raw.InsertVector("message_vectors", ids_[0],
                     {0.1f, -0.0f, 1e-45f, 3.4028235e38f, 1.0f / 3, -2.5e-8f});
    raw.InsertVector("memory_vectors", "memory-1", {1, 2, 3, 4});
    raw.InsertVector("concept_vectors", "concept-paris", {0.5f, -0.25f});
  }

  StoreHarness source_;
  std::unique_ptr<MemoryStore> store_;
  std::vector<std::string> ids_;  // Message ids, in save order.
};

TEST_F(TransferTest, ExportIsHeaderThenNodesThenEdgesThenVectors) {
  const std::vector<std::string> lines = Lines(ExportOf(*store_));
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines[0], HeaderOf(*store_));
  EXPECT_EQ(static_cast<int64_t>(lines.size()), 1 + TotalRows(source_.path()));

  std::string kinds;
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    const char kind = line.rfind(R"({"kind":"node")", 0) == 0     ? 'n'
                      : line.rfind(R"({"kind":"edge")", 0) == 0   ? 'e'
                      : line.rfind(R"({"kind":"vector")", 0) == 0 ? 'v'
                                                                  : '?';
    if (kinds.empty() || kinds.back() != kind) kinds += kind;
    EXPECT_THAT(line, ::testing::Not(HasSubstr("\"seq\""))) << "seq is not part of the format";
  }
  EXPECT_EQ(kinds, "nev");

  // Spot checks of the documented member names and number forms.
  const std::string text = ExportOf(*store_);
  EXPECT_THAT(text, HasSubstr(R"("type":"concept","id":"concept-paris","name":"Paris",)"
                              R"("concept_type":"city")"));
  EXPECT_THAT(text, HasSubstr(R"("importance":0.30000000000000004)"));
  EXPECT_THAT(text, HasSubstr(R"("metadata":{"lang":"fr","nested":{"n":[1,2.5]}})"));
  EXPECT_THAT(text, HasSubstr(R"("vector":[0.1,-0,1e-45,3.4028235e+38,0.33333334,-2.5e-08]})"));
  EXPECT_THAT(text, HasSubstr(R"({"kind":"edge","type":"RELATES_TO","from":"concept-paris",)"
                              R"("to":"concept-france","relationship_type":"capital_of",)"
                              R"("strength":0.95})"));
}

TEST_F(TransferTest, RoundTripIntoFreshStoreIsExact) {
  const std::string exported = ExportOf(*store_);
  StoreHarness target_harness;
  ASSERT_OK_AND_ASSIGN(auto target, target_harness.Open());
  ASSERT_OK_AND_ASSIGN(ImportReport report, ImportText(*target, exported));
  const int64_t records = TotalRows(source_.path());
  EXPECT_EQ(report.lines, records + 1);
  EXPECT_EQ(report.inserted, records);
  EXPECT_EQ(report.skipped, 0);

  EXPECT_EQ(ExportOf(*target), exported);
  EXPECT_EQ(Census(target_harness.path()), Census(source_.path()));
  EXPECT_THAT(FindBrokenInvariants(target_harness.path()), IsEmpty());

  // Counts maintained by triggers, history order, and values json_object alone would round.
  for (const char* id : {"s1", "s2"}) {
    ASSERT_OK_AND_ASSIGN(Session original, store_->GetSession(id));
    ASSERT_OK_AND_ASSIGN(Session copy, target->GetSession(id));
    EXPECT_EQ(copy.message_count, original.message_count);
    EXPECT_EQ(copy.last_activity, original.last_activity);
    ASSERT_OK_AND_ASSIGN(auto original_history, store_->History({id, 100, {}}));
    ASSERT_OK_AND_ASSIGN(auto copy_history, target->History({id, 100, {}}));
    ASSERT_EQ(copy_history.size(), original_history.size());
    for (size_t i = 0; i < copy_history.size(); ++i) {
      EXPECT_EQ(copy_history[i].id, original_history[i].id);
      EXPECT_EQ(copy_history[i].content, original_history[i].content);
      EXPECT_EQ(copy_history[i].role, original_history[i].role);
      EXPECT_EQ(copy_history[i].status, original_history[i].status);
      EXPECT_EQ(copy_history[i].created_at, original_history[i].created_at);
    }
  }
  RawDb a(source_.path());
  RawDb b(target_harness.path());
  for (const std::string& sql :
       {std::string("SELECT id || printf(' %!.20g', importance) FROM memories ORDER BY id"),
        std::string("SELECT id || printf(' %!.20g', confidence) FROM concepts ORDER BY id"),
        std::string("SELECT printf('%!.20g', strength) FROM relates_to ORDER BY id"),
        std::string("SELECT printf('%!.20g', strength) FROM learns ORDER BY id"),
        std::string("SELECT node_id || hex(vector) FROM message_vectors"),
        std::string("SELECT node_id || hex(vector) FROM memory_vectors"),
        std::string("SELECT node_id || hex(vector) FROM concept_vectors"),
        std::string("SELECT value FROM counters WHERE name = 'messages'")}) {
    EXPECT_EQ(b.Column(sql), a.Column(sql)) << sql;
  }
  // The imported store keeps working: the next message follows the imported ones.
  ASSERT_OK_AND_ASSIGN(SavedMessage next,
                       target->SaveMessage(StoreHarness::UserMessage("s1", "after import")));
  EXPECT_EQ(next.responds_to, ids_[2]);
  EXPECT_THAT(FindBrokenInvariants(target_harness.path()), IsEmpty());
}

TEST_F(TransferTest, ImportIsIdempotent) {
  const std::string exported = ExportOf(*store_);
  const int64_t records = TotalRows(source_.path());
  StoreHarness target_harness;
  ASSERT_OK_AND_ASSIGN(auto target, target_harness.Open());
  ASSERT_OK_AND_ASSIGN(ImportReport first, ImportText(*target, exported));
  EXPECT_EQ(first.inserted, records);
  ASSERT_OK_AND_ASSIGN(ImportReport second, ImportText(*target, exported));
  EXPECT_EQ(second.inserted, 0);
  EXPECT_EQ(second.skipped, records);
  EXPECT_EQ(ExportOf(*target), exported);

  // Into the store it came from: nothing to add.
  ASSERT_OK_AND_ASSIGN(ImportReport self, ImportText(*store_, exported));
  EXPECT_EQ(self.inserted, 0);
  EXPECT_EQ(self.skipped, records);
  EXPECT_EQ(ExportOf(*store_), exported);
  EXPECT_THAT(FindBrokenInvariants(source_.path()), IsEmpty());
}

TEST_F(TransferTest, ImportAddsOnlyWhatIsMissing) {
  const std::string exported = ExportOf(*store_);
  // The third message carries SENT, PART_OF, RESPONDS_TO and MENTIONS edges, all cascaded away.
  ASSERT_THAT(store_->DeleteMessage(ids_[2]), IsOk());
  ASSERT_OK_AND_ASSIGN(ImportReport report, ImportText(*store_, exported));
  EXPECT_EQ(report.inserted, 5);  // The message and its four edges.
  EXPECT_EQ(report.skipped, TotalRows(source_.path()) - 5);
  EXPECT_THAT(FindBrokenInvariants(source_.path()), IsEmpty());
  ASSERT_OK_AND_ASSIGN(Message restored, store_->GetMessage(ids_[2]));
  EXPECT_EQ(restored.content, "tell me about Paris");
  ASSERT_OK_AND_ASSIGN(Session session, store_->GetSession("s1"));
  EXPECT_EQ(session.message_count, 3);
}

struct BadInput {
  std::string name;
  std::string input;
  int line;
  std::string reason;
};

std::string WithHeader(const std::string& bad) {
  return std::string(kHeader) + "\n" +
         R"({"kind":"node","type":"user","id":"new-user","name":"N","created_at":5})" + "\n" + bad +
         "\n" + R"({"kind":"node","type":"user","id":"later","name":"","created_at":6})";
}

std::vector<BadInput> BadInputs() {
  const std::string memory = R"({"kind":"node","type":"memory","id":"m9","content":"c",)";
  const std::string memory_tail = R"(,"created_at":1,"last_accessed":1,"metadata":{}})";
  const std::string message =
      R"({"kind":"node","type":"message","id":"x","session_id":"s1","user_id":"u",)";
  const std::string vector = R"({"kind":"vector","type":"memory","id":"memory-2","model":"m",)";
  return {
      {"NotJson", WithHeader(R"({"kind":"node",)"), 3, "not valid JSON"},
      {"TrailingGarbage", WithHeader(R"({"kind":"node"} x)"), 3, "not valid JSON"},
      {"RawControlCharacter",
       WithHeader("{\"kind\":\"node\",\"type\":\"user\",\"id\":\"a\tb\",\"name\":\"\","
                  "\"created_at\":1}"),
       3, "not valid JSON"},
      {"JsonArray", WithHeader(R"([{"kind":"node"}])"), 3, "expected a JSON object, got an array"},
      {"JsonString", WithHeader(R"("node")"), 3, "expected a JSON object, got a string"},
      {"MissingKind", WithHeader(R"({"type":"user","id":"x"})"), 3, R"(missing field "kind")"},
      {"KindNotString", WithHeader(R"({"kind":1})"), 3,
       R"(field "kind" must be a string, got a number)"},
      {"UnknownKind", WithHeader(R"({"kind":"blob","type":"user"})"), 3, R"(unknown kind "blob")"},
      {"UnknownNodeType", WithHeader(R"({"kind":"node","type":"widget","id":"w"})"), 3,
       R"(field "type": unknown node type "widget")"},
      {"UnknownEdgeType", WithHeader(R"({"kind":"edge","type":"LIKES","from":"a","to":"b"})"), 3,
       R"(field "type": unknown edge type "LIKES")"},
      {"MissingId", WithHeader(R"({"kind":"node","type":"user","name":"x","created_at":1})"), 3,
       R"(missing field "id")"},
      {"EmptyId", WithHeader(R"({"kind":"node","type":"user","id":"","name":"","created_at":1})"),
       3, R"(field "id" must not be empty)"},
      {"IdNotString",
       WithHeader(R"({"kind":"node","type":"user","id":7,"name":"","created_at":1})"), 3,
       R"(field "id" must be a string, got a number)"},
      {"DuplicateField",
       WithHeader(R"({"kind":"node","type":"user","id":"a","id":"b","name":"","created_at":1})"), 3,
       R"(field "id" appears twice)"},
      {"ImportanceString", WithHeader(memory + R"("importance":"high")" + memory_tail), 3,
       R"(field "importance" must be a number, got a string)"},
      {"ImportanceAboveOne", WithHeader(memory + R"("importance":2.0)" + memory_tail), 3,
       R"(field "importance" must be between 0 and 1, got 2)"},
      {"CreatedAtFraction",
       WithHeader(R"({"kind":"node","type":"user","id":"a","name":"","created_at":1.5})"), 3,
       R"(field "created_at" must be an integer, got 1.5)"},
      {"CreatedAtOverflow",
       WithHeader(
           R"({"kind":"node","type":"user","id":"a","name":"","created_at":100000000000000000000})"),
       3, R"(field "created_at" is outside the 64-bit integer range)"},
      {"MetadataNotObject",
       WithHeader(message +
                  R"("role":"user","content":"c","created_at":1,"metadata":"{}","status":"ok"})"),
       3, R"(field "metadata" must be an object, got a string)"},
      {"UnknownRole",
       WithHeader(message +
                  R"("role":"robot","content":"c","created_at":1,"metadata":{},"status":"ok"})"),
       3, R"(field "role" must be "user", "assistant" or "system", got "robot")"},
      {"UnknownStatus",
       WithHeader(message +
                  R"("role":"user","content":"c","created_at":1,"metadata":{},"status":"lost"})"),
       3, R"(field "status" must be "ok", "unanswered" or "incomplete", got "lost")"},
      {"MessageWithoutSession",
       WithHeader(R"({"kind":"node","type":"message","id":"x","session_id":"nope","user_id":"u",)"
                  R"("role":"user","content":"c","created_at":1,"metadata":{},"status":"ok"})"),
       3, R"(field "session_id": session "nope" does not exist)"},
      {"EdgeToMissingNode",
       WithHeader(R"({"kind":"edge","type":"SENT","from":"user-alice","to":"gone","weight":1})"), 3,
       R"(field "to": message "gone" does not exist)"},
      {"EdgeFromMissingNode",
       WithHeader(R"({"kind":"edge","type":"RELATES_TO","from":"ghost","to":"concept-paris",)"
                  R"("relationship_type":"x","strength":1})"),
       3, R"(field "from": concept "ghost" does not exist)"},
      {"EdgeWithoutProperty",
       WithHeader(R"({"kind":"edge","type":"RELATES_TO","from":"concept-paris",)"
                  R"("to":"concept-bread","relationship_type":"x"})"),
       3, R"(missing field "strength")"},
      {"VectorDimMismatch", WithHeader(vector + R"("dim":3,"vector":[1,2]})"), 3,
       R"(field "dim" is 3 but field "vector" has 2 elements)"},
      {"VectorDimTooLarge", WithHeader(vector + R"("dim":16385,"vector":[1]})"), 3,
       R"(field "dim" must be between 1 and 16384, got 16385)"},
      {"VectorElementNotNumber", WithHeader(vector + R"("dim":3,"vector":[1,"2",3]})"), 3,
       R"(field "vector": element 1 is a string, not a number)"},
      {"VectorElementOutOfRange", WithHeader(vector + R"("dim":2,"vector":[1,1e39]})"), 3,
       R"(field "vector": element 1 is not a finite float32)"},
      {"VectorNotArray", WithHeader(vector + R"("dim":1,"vector":"1"})"), 3,
       R"(field "vector" must be an array, got a string)"},
      {"VectorForUser",
       WithHeader(R"({"kind":"vector","type":"user","id":"user-alice","model":"m","dim":1,)"
                  R"("vector":[1]})"),
       3, R"(vectors belong to a message, memory or concept, not "user")"},
      {"VectorForMissingNode",
       WithHeader(R"({"kind":"vector","type":"memory","id":"ghost","model":"m","dim":1,)"
                  R"("vector":[1]})"),
       3, R"(field "id": memory "ghost" does not exist)"},
      {"VectorWithoutModel",
       WithHeader(R"({"kind":"vector","type":"memory","id":"memory-2","dim":1,"vector":[1]})"), 3,
       R"(missing field "model")"},
      {"InvalidUtf8",
       WithHeader("{\"kind\":\"node\",\"type\":\"user\",\"id\":\"a\xff\",\"name\":\"\","
                  "\"created_at\":1}"),
       3, "not valid UTF-8"},
      {"LoneSurrogate",
       WithHeader(R"({"kind":"node","type":"user","id":"a\ud800","name":"","created_at":1})"), 3,
       R"(field "id": lone UTF-16 surrogate in \u escape)"},
      {"SecondHeader", WithHeader(kHeader), 3, "a second header line"},
      {"BlankLinesAreCounted", std::string(kHeader) + "\n\n  \r\n" + R"({"kind":"blob"})", 4,
       R"(unknown kind "blob")"},
      {"NoHeader", R"({"kind":"node","type":"user","id":"a","name":"","created_at":1})", 1,
       R"(expected the header line (kind "header") first, got kind "node")"},
      {"WrongVersion", R"({"kind":"header","format":"locrit-memory","version":2,"schema":1})", 1,
       R"(field "version": unsupported format version 2 (this build reads version 1))"},
      {"WrongFormat", R"({"kind":"header","format":"kuzu","version":1})", 1,
       R"(field "format" must be "locrit-memory", got "kuzu")"},
      {"EmptyInput", "", 1, "no header line"},
      {"OnlyBlankLines", "\n\n", 3, "no header line"},
  };
}

TEST_F(TransferTest, RejectsInvalidLinesAndLeavesStoreUnchanged) {
  const std::string before = ExportOf(*store_);
  const auto census = Census(source_.path());
  for (const BadInput& bad : BadInputs()) {
    SCOPED_TRACE(bad.name);
    const Result<ImportReport> result = ImportText(*store_, bad.input);
    ASSERT_THAT(result, StatusIs(StatusCode::kInvalidArgument));
    EXPECT_THAT(result.status().message(), StartsWith("line " + std::to_string(bad.line) + ": "));
    EXPECT_THAT(result.status().message(), HasSubstr(bad.reason));
    EXPECT_EQ(ExportOf(*store_), before);
    EXPECT_EQ(Census(source_.path()), census);
  }
  EXPECT_THAT(FindBrokenInvariants(source_.path()), IsEmpty());
}

TEST_F(TransferTest, ConflictingNaturalKeyIsAlreadyExists) {
  const std::string before = ExportOf(*store_);
  const std::string concept_line =
      R"({"kind":"node","type":"concept","id":"other-paris","name":"PARIS","concept_type":"city",)"
      R"("description":"","confidence":1,"created_at":1})";
  Result<ImportReport> result = ImportText(*store_, std::string(kHeader) + "\n" + concept_line);
  EXPECT_THAT(result, StatusIs(StatusCode::kAlreadyExists));
  EXPECT_THAT(result.status().message(),
              StartsWith(R"(line 2: concept "PARIS" (type "city") already exists)"));
  EXPECT_THAT(result.status().message(), HasSubstr("concept-paris"));

  const std::string topic_line =
      R"({"kind":"node","type":"topic","id":"t2","name":"travel","description":"",)"
      R"("category":"","created_at":1})";
  result = ImportText(*store_, std::string(kHeader) + "\n" + topic_line);
  EXPECT_THAT(result, StatusIs(StatusCode::kAlreadyExists));
  EXPECT_THAT(result.status().message(), StartsWith(R"(line 2: topic "travel" already exists)"));
  EXPECT_EQ(ExportOf(*store_), before);
}

// Serves `prefix`, then `filler` bytes of 'x', then `suffix`, without holding them all in memory;
// or throws once `throw_after` bytes have been served.
class GeneratedInput : public std::streambuf {
 public:
  GeneratedInput(std::string prefix, size_t filler, std::string suffix,
                 size_t throw_after = SIZE_MAX)
      : prefix_(std::move(prefix)),
        suffix_(std::move(suffix)),
        filler_(filler),
        throw_after_(throw_after) {}

 protected:
  int_type underflow() override {
    const size_t total = prefix_.size() + filler_ + suffix_.size();
    if (position_ >= throw_after_) throw std::runtime_error("disk on fire");
    if (position_ >= total) return traits_type::eof();
    size_t n = 0;
    for (; n < buffer_.size() && position_ < total && position_ < throw_after_; ++n, ++position_) {
      buffer_[n] = position_ < prefix_.size() ? prefix_[position_]
                   : position_ < prefix_.size() + filler_
                       ? 'x'
                       : suffix_[position_ - prefix_.size() - filler_];
    }
    setg(buffer_.data(), buffer_.data(), buffer_.data() + n);
    return traits_type::to_int_type(buffer_[0]);
  }

 private:
  std::string prefix_;
  std::string suffix_;
  size_t filler_;
  size_t throw_after_;
  size_t position_ = 0;
  std::array<char, 4096> buffer_{};
};

TEST_F(TransferTest, RejectsOverlongLineWithoutReadingItAll) {
  const auto census = Census(source_.path());
  const size_t limit = size_t{64} << 20;  // docs/export-format.md: 64 MiB per line.
  GeneratedInput source(std::string(kHeader) + "\n", limit + 1, "\n");
  std::istream in(&source);
  const Result<ImportReport> result = store_->Import(in);
  EXPECT_THAT(result, StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(result.status().message(),
              StartsWith("line 2: longer than 67108864 bytes, the limit for one line"));
  EXPECT_EQ(Census(source_.path()), census);
}

TEST_F(TransferTest, ReadFailureIsIoErrorAndChangesNothing) {
  const std::string before = ExportOf(*store_);
  const std::string lines =
      std::string(kHeader) + "\n" +
      R"({"kind":"node","type":"user","id":"new-user","name":"N","created_at":5})" + "\n";
  GeneratedInput source(lines, 1000, "\n", lines.size() + 10);
  std::istream in(&source);
  const Result<ImportReport> result = store_->Import(in);
  EXPECT_THAT(result, StatusIs(StatusCode::kIoError));
  EXPECT_THAT(result.status().message(), StartsWith("line 3: "));
  EXPECT_EQ(ExportOf(*store_), before);

  // A stream that is already failed reads as an error too, not as an empty input.
  std::istringstream failed(lines);
  failed.setstate(std::ios_base::failbit);
  EXPECT_THAT(store_->Import(failed), StatusIs(StatusCode::kIoError));
}

// Accepts `limit` bytes, then refuses every write.
class FailingOutput : public std::streambuf {
 public:
  explicit FailingOutput(size_t limit) : limit_(limit) {}

 protected:
  int_type overflow(int_type c) override {
    if (written_ >= limit_) return traits_type::eof();
    ++written_;
    return traits_type::not_eof(c);
  }

 private:
  size_t limit_;
  size_t written_ = 0;
};

TEST_F(TransferTest, WriteFailureIsIoErrorAndEndsTheReadTransaction) {
  for (const size_t limit : {size_t{0}, size_t{100}, size_t{2000}}) {
    SCOPED_TRACE(limit);
    FailingOutput sink(limit);
    std::ostream out(&sink);
    EXPECT_THAT(store_->Export(out), StatusIs(StatusCode::kIoError));
    // Writing works, so the export's read transaction did not outlive the failure.
    EXPECT_THAT(store_->SaveMessage(StoreHarness::UserMessage("s3", "still writable")), IsOk());
  }
  // A stream set to throw on failure: the exception stays inside Export.
  FailingOutput sink(50);
  std::ostream throwing(&sink);
  throwing.exceptions(std::ios_base::badbit | std::ios_base::failbit);
  EXPECT_THAT(store_->Export(throwing), StatusIs(StatusCode::kIoError));
  EXPECT_THAT(store_->SaveMessage(StoreHarness::UserMessage("s3", "still writable")), IsOk());
}

TEST_F(TransferTest, ImportAppliesRetentionExactly) {
  StoreHarness unlimited(0);
  ASSERT_OK_AND_ASSIGN(auto source, unlimited.Open());
  std::vector<std::string> source_ids;
  for (int i = 0; i < 8; ++i) {
    unlimited.clock().AdvanceMillis(1000);
    ASSERT_OK_AND_ASSIGN(SavedMessage saved,
                         source->SaveMessage(StoreHarness::UserMessage(
                             i < 3 ? "old" : "new", "message " + std::to_string(i))));
    source_ids.push_back(saved.id);
  }
  const std::string exported = ExportOf(*source);

  StoreHarness capped(5);
  ASSERT_OK_AND_ASSIGN(auto target, capped.Open());
  ASSERT_THAT(target->SaveMessage(StoreHarness::UserMessage("local", "mine 1")), IsOk());
  ASSERT_THAT(target->SaveMessage(StoreHarness::UserMessage("local", "mine 2")), IsOk());
  ASSERT_OK_AND_ASSIGN(ImportReport report, ImportText(*target, exported));
  EXPECT_EQ(report.inserted, TotalRows(unlimited.path()) - 1);
  EXPECT_EQ(report.skipped, 1);  // user-alice was already there.

  // The store's own messages are the oldest, then the file's in file order.
  RawDb raw(capped.path());
  EXPECT_THAT(raw.Column("SELECT id FROM messages ORDER BY seq"),
              ElementsAreArray(source_ids.begin() + 3, source_ids.end()));
  EXPECT_THAT(raw.Column("SELECT id FROM sessions ORDER BY id"), ElementsAreArray({"new"}));
  EXPECT_THAT(raw.Column("SELECT value FROM counters WHERE name = 'messages'"),
              ElementsAreArray({"5"}));
  ASSERT_OK_AND_ASSIGN(Session session, target->GetSession("new"));
  EXPECT_EQ(session.message_count, 5);
  EXPECT_THAT(FindBrokenInvariants(capped.path()), IsEmpty());
}

TEST_F(TransferTest, HostileContentRoundTrips) {
  std::vector<std::string> contents = {
      R"(quotes " and \ backslashes \" \\u0000 and a fake "}\n{"kind":"node")",
      "new\nlines\r\nand\ttabs\x01\x1f and \x7f",
      std::string("NUL\0inside\0", 11),
      "emoji 🦊 👩‍👩‍👧 and U+2028\u2028 U+2029\u2029 and </script>",
      "",
  };
  std::string big;
  const std::string piece = std::string("ab\"\\\n\0🦊é", 12);
  while (big.size() < (size_t{1} << 20)) big += piece;
  contents.push_back(big);

  std::vector<std::string> ids;
  for (size_t i = 0; i < contents.size(); ++i) {
    NewMessage message = StoreHarness::UserMessage("s\"hostile\n🦊", contents[i], "user \"q\"\n");
    message.user_name = std::string("Zoë \"the\"\0name", 15);
    message.session_name = "line one\nline two";
    message.metadata = R"({"quote":"\"","nul":"a\u0000b","emoji":"🦊","esc":"\u00e9"})";
    ASSERT_OK_AND_ASSIGN(SavedMessage saved, store_->SaveMessage(message));
    ids.push_back(saved.id);
  }
  RawDb(source_.path())
      .Exec(
          "INSERT INTO concepts(id, name, type, description, confidence, created_at) VALUES "
          "('c-nul', 'nul' || char(0) || 'name', 'x', 'tab' || char(9) || 'desc', 0.5, 1)");

  const std::string exported = ExportOf(*store_);
  EXPECT_EQ(static_cast<int64_t>(Lines(exported).size()), 1 + TotalRows(source_.path()));

  StoreHarness target_harness;
  ASSERT_OK_AND_ASSIGN(auto target, target_harness.Open());
  ASSERT_THAT(ImportText(*target, exported), IsOk());
  for (size_t i = 0; i < ids.size(); ++i) {
    ASSERT_OK_AND_ASSIGN(Message copy, target->GetMessage(ids[i]));
    EXPECT_EQ(copy.content, contents[i]) << "message " << i;
  }
  ASSERT_OK_AND_ASSIGN(User user, target->GetUser("user \"q\"\n"));
  EXPECT_EQ(user.name, std::string("Zoë \"the\"\0name", 15));
  ASSERT_OK_AND_ASSIGN(Session session, target->GetSession("s\"hostile\n🦊"));
  EXPECT_EQ(session.name, "line one\nline two");
  EXPECT_EQ(RawDb(target_harness.path()).Column("SELECT name FROM concepts WHERE id = 'c-nul'"),
            std::vector<std::string>{std::string("nul\0name", 8)});
  EXPECT_EQ(ExportOf(*target), exported);
  EXPECT_THAT(FindBrokenInvariants(target_harness.path()), IsEmpty());
}

TEST_F(TransferTest, EveryJsonEscapeDecodesExactly) {
  const std::string line = R"({"kind":"node","type":"user","id":"fox-\ud83e\udd8A","created_at":1,)"
                           R"("name":"\u00e9\u0000\"\\\/\b\f\n\r\t\u20AC\u0041"})";
  ASSERT_OK_AND_ASSIGN(ImportReport report,
                       ImportText(*store_, std::string(kHeader) + "\n" + line + "\n"));
  EXPECT_EQ(report.inserted, 1);
  ASSERT_OK_AND_ASSIGN(User user, store_->GetUser("fox-🦊"));
  EXPECT_EQ(user.name, std::string("é\0\"\\/\b\f\n\r\t€A", 15));
}

TEST_F(TransferTest, EmptyStoreExportsOnlyTheHeader) {
  StoreHarness empty_harness;
  ASSERT_OK_AND_ASSIGN(auto empty, empty_harness.Open());
  const std::string exported = ExportOf(*empty);
  EXPECT_EQ(exported, HeaderOf(*empty) + "\n");
  ASSERT_OK_AND_ASSIGN(ImportReport report, ImportText(*store_, exported));
  EXPECT_EQ(report.lines, 1);
  EXPECT_EQ(report.inserted, 0);
  EXPECT_EQ(report.skipped, 0);
  // Windows line endings and a missing final newline are accepted.
  ASSERT_OK_AND_ASSIGN(report, ImportText(*empty, std::string(kHeader) + "\r\n\r\n"));
  EXPECT_EQ(report.lines, 2);
}

TEST_F(TransferTest, InsideABatchImportIsOneSavepointAndExportSeesTheBatch) {
  ASSERT_THAT(store_->BeginBatch(), IsOk());
  ASSERT_OK_AND_ASSIGN(SavedMessage pending,
                       store_->SaveMessage(StoreHarness::UserMessage("s1", "in the batch")));
  // A failed import undoes only itself; the batch and its earlier write stay.
  EXPECT_THAT(ImportText(*store_, WithHeader(R"({"kind":"blob"})")),
              StatusIs(StatusCode::kInvalidArgument));
  ASSERT_TRUE(store_->InBatch());
  const std::string exported = ExportOf(*store_);
  EXPECT_THAT(exported, HasSubstr(pending.id));
  EXPECT_TRUE(store_->InBatch());
  ASSERT_OK_AND_ASSIGN(
      ImportReport report,
      ImportText(*store_, WithHeader(R"({"kind":"node","type":"user",)"
                                     R"("id":"third","name":"","created_at":7})")));
  EXPECT_EQ(report.inserted, 3);
  ASSERT_THAT(store_->CommitBatch(), IsOk());
  EXPECT_THAT(store_->GetMessage(pending.id), IsOk());
  EXPECT_THAT(store_->GetUser("new-user"), IsOk());
  EXPECT_THAT(store_->GetUser("third"), IsOk());
  EXPECT_THAT(FindBrokenInvariants(source_.path()), IsEmpty());
}

// ---- ClearAll ----

class ClearAllTest : public TransferTest {};

TEST_F(ClearAllTest, EmptiesEveryTableAndKeepsTheStoreUsable) {
  RawDb raw(source_.path());
  const int64_t last_seq = std::stoll(raw.Column("SELECT max(seq) FROM messages").at(0));
  const int64_t vector_version =
      std::stoll(raw.Column("SELECT value FROM counters WHERE name = 'vectors'").at(0));

  ASSERT_THAT(store_->ClearAll(), IsOk());
  for (const std::string& table : kTables) {
    EXPECT_EQ(CountRows(source_.path(), table), 0) << table;
  }
  EXPECT_EQ(CountRows(source_.path(), "concepts_fts_docsize"), 0);
  EXPECT_THAT(raw.Column("SELECT value FROM counters WHERE name = 'messages'"),
              ElementsAreArray({"0"}));
  // The vector change counter only grows: caches on other connections rely on it.
  EXPECT_GT(std::stoll(raw.Column("SELECT value FROM counters WHERE name = 'vectors'").at(0)),
            vector_version);
  EXPECT_THAT(raw.Column("PRAGMA freelist_count"), ElementsAreArray({"0"}));
  EXPECT_THAT(FindBrokenInvariants(source_.path()), IsEmpty());
  ASSERT_OK_AND_ASSIGN(std::string check, store_->QuickCheck());
  EXPECT_EQ(check, "ok");

  ASSERT_OK_AND_ASSIGN(SavedMessage saved,
                       store_->SaveMessage(StoreHarness::UserMessage("s1", "fresh start")));
  EXPECT_GT(saved.seq, last_seq);
  EXPECT_FALSE(saved.responds_to.has_value());
  ASSERT_OK_AND_ASSIGN(Session session, store_->GetSession("s1"));
  EXPECT_EQ(session.message_count, 1);
  EXPECT_EQ(Lines(ExportOf(*store_)).size(), 6u);  // Header, user, session, message, SENT, PART_OF.
  EXPECT_THAT(FindBrokenInvariants(source_.path()), IsEmpty());
}

TEST_F(ClearAllTest, ClearingAnEmptyStoreIsOk) {
  ASSERT_THAT(store_->ClearAll(), IsOk());
  ASSERT_THAT(store_->ClearAll(), IsOk());
  EXPECT_EQ(TotalRows(source_.path()), 0);
}

TEST_F(ClearAllTest, ImportAfterClearRestoresTheExport) {
  const std::string exported = ExportOf(*store_);
  ASSERT_THAT(store_->ClearAll(), IsOk());
  ASSERT_OK_AND_ASSIGN(ImportReport report, ImportText(*store_, exported));
  EXPECT_EQ(report.skipped, 0);
  EXPECT_EQ(ExportOf(*store_), exported);
  EXPECT_THAT(FindBrokenInvariants(source_.path()), IsEmpty());
}

}  // namespace
}  // namespace locrit

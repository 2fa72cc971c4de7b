// MemoryStore whole-store operations: clear-all, JSON Lines export and import. The format is
// specified in docs/export-format.md.
//
// Both directions lean on SQLite's JSON1 functions, so the store needs no JSON library: export
// builds every line with json_object(); import checks every line with json_valid() and lists
// its members with json_each(). Two gaps of the JSON1 in SQLite 3.40 (Debian 12) are closed in
// C++, because an export must round-trip exactly:
//  - json_object() prints a REAL with 15 significant digits, which does not round-trip a double.
//    REAL columns and float32 vectors are therefore printed by two SQL functions registered here
//    (locrit_json_number, locrit_json_floats) in their shortest exact form.
//  - json_extract() cuts a string at an escaped NUL (\u0000) and reads numbers with
//    sqlite3AtoF, which is not always correctly rounded. Import therefore takes each member's
//    JSON token as written (the -> operator) and decodes strings and numbers itself;
//    std::from_chars is correctly rounded.
#include <fmt/format.h>

#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <istream>
#include <iterator>
#include <map>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <variant>
#include <vector>

#include "base/utf8.h"
#include "store/internal/sqlite.h"
#include "store/memory_store.h"

namespace locrit {

using store_internal::Db;
using store_internal::Stmt;
using store_internal::Transaction;

namespace {

constexpr std::string_view kFormatName = "locrit-memory";
constexpr int64_t kFormatVersion = 1;
// One line holds one node, so this bounds the largest message or vector an import accepts, and
// the memory one line may take while it is read.
constexpr size_t kMaxLineBytes = size_t{64} << 20;
// Lines are read in pieces of this size, so an over-long line is noticed after at most this much
// more than the limit.
constexpr size_t kReadChunkBytes = size_t{64} << 10;
// Same bound as SetEmbedding's.
constexpr size_t kMaxModelBytes = 256;

// ---- The format, as tables: each drives both the export query and the import checks ----

enum class FieldKind {
  kId,            // Non-empty string.
  kText,          // Any string.
  kNonEmptyText,  // Non-empty string.
  kInt,           // Integer (64-bit).
  kReal,          // Finite number.
  kUnitReal,      // Number in [0, 1].
  kRole,          // "user", "assistant" or "system".
  kStatus,        // "ok", "unanswered" or "incomplete".
  kJsonObject,    // A JSON object, stored as its text.
};

struct Field {
  std::string_view key;     // The member name in the export.
  std::string_view column;  // The column it comes from and goes to.
  FieldKind kind;
};

// The first field of every node is its id.
struct NodeSpec {
  NodeType type;
  std::string_view table;
  std::string_view order_by;  // Insertion order where the table keeps one, so that a re-export
                              // of an import lists rows in the same order.
  std::span<const Field> fields;
};

constexpr Field kUserFields[] = {
    {"id", "id", FieldKind::kId},
    {"name", "name", FieldKind::kText},
    {"created_at", "created_at", FieldKind::kInt},
};
// message_count is not exported: the message triggers recount it as messages are imported.
constexpr Field kSessionFields[] = {
    {"id", "id", FieldKind::kId},
    {"user_id", "user_id", FieldKind::kText},
    {"name", "name", FieldKind::kText},
    {"topic", "topic", FieldKind::kText},
    {"created_at", "created_at", FieldKind::kInt},
    {"last_activity", "last_activity", FieldKind::kInt},
};
constexpr Field kTopicFields[] = {
    {"id", "id", FieldKind::kId},
    {"name", "name", FieldKind::kNonEmptyText},
    {"description", "description", FieldKind::kText},
    {"category", "category", FieldKind::kText},
    {"created_at", "created_at", FieldKind::kInt},
};
// "type" already names the record's node type, hence "concept_type".
constexpr Field kConceptFields[] = {
    {"id", "id", FieldKind::kId},
    {"name", "name", FieldKind::kNonEmptyText},
    {"concept_type", "type", FieldKind::kText},
    {"description", "description", FieldKind::kText},
    {"confidence", "confidence", FieldKind::kUnitReal},
    {"created_at", "created_at", FieldKind::kInt},
};
constexpr Field kMemoryFields[] = {
    {"id", "id", FieldKind::kId},
    {"content", "content", FieldKind::kNonEmptyText},
    {"importance", "importance", FieldKind::kUnitReal},
    {"created_at", "created_at", FieldKind::kInt},
    {"last_accessed", "last_accessed", FieldKind::kInt},
    {"metadata", "metadata", FieldKind::kJsonObject},
};
// seq is not exported: an import gives messages new seqs in file order, after every existing one.
constexpr Field kMessageFields[] = {
    {"id", "id", FieldKind::kId},
    {"session_id", "session_id", FieldKind::kId},
    {"user_id", "user_id", FieldKind::kId},
    {"role", "role", FieldKind::kRole},
    {"content", "content", FieldKind::kText},
    {"created_at", "created_at", FieldKind::kInt},
    {"metadata", "metadata", FieldKind::kJsonObject},
    {"status", "status", FieldKind::kStatus},
};

// In export order: every node before the nodes and edges that refer to it.
constexpr NodeSpec kNodes[] = {
    {NodeType::kUser, "users", "id", kUserFields},
    {NodeType::kSession, "sessions", "id", kSessionFields},
    {NodeType::kTopic, "topics", "id", kTopicFields},
    {NodeType::kConcept, "concepts", "rid", kConceptFields},
    {NodeType::kMemory, "memories", "rid", kMemoryFields},
    {NodeType::kMessage, "messages", "seq", kMessageFields},
};

struct EdgeSpec {
  RelationType type;
  std::string_view table;
  std::string_view from_column;
  std::string_view to_column;
  std::span<const Field> properties;
};

constexpr Field kSentProperties[] = {{"weight", "weight", FieldKind::kReal}};
constexpr Field kPartOfProperties[] = {{"position", "position", FieldKind::kInt}};
constexpr Field kRespondsToProperties[] = {{"delay_seconds", "delay_seconds", FieldKind::kInt}};
constexpr Field kMentionsProperties[] = {{"confidence", "confidence", FieldKind::kReal}};
constexpr Field kRelatesToProperties[] = {
    {"relationship_type", "relationship_type", FieldKind::kText},
    {"strength", "strength", FieldKind::kReal},
};
constexpr Field kDiscussesProperties[] = {{"relevance", "relevance", FieldKind::kReal}};
constexpr Field kLearnsProperties[] = {{"strength", "strength", FieldKind::kReal}};

// The UNIQUE constraint of each table is the edge's identity: import skips an edge it matches.
constexpr EdgeSpec kEdges[] = {
    {RelationType::kSent, "sent", "user_id", "message_id", kSentProperties},
    {RelationType::kPartOf, "part_of", "message_id", "session_id", kPartOfProperties},
    {RelationType::kRespondsTo, "responds_to", "from_id", "to_id", kRespondsToProperties},
    {RelationType::kMentions, "mentions", "message_id", "concept_id", kMentionsProperties},
    {RelationType::kRelatesTo, "relates_to", "from_id", "to_id", kRelatesToProperties},
    {RelationType::kDiscusses, "discusses", "session_id", "topic_id", kDiscussesProperties},
    {RelationType::kLearns, "learns", "session_id", "memory_id", kLearnsProperties},
};

struct VectorSpec {
  NodeType type;
  std::string_view table;
};

constexpr VectorSpec kVectors[] = {
    {NodeType::kMessage, "message_vectors"},
    {NodeType::kMemory, "memory_vectors"},
    {NodeType::kConcept, "concept_vectors"},
};

const NodeSpec& NodeSpecFor(NodeType type) {
  for (const NodeSpec& spec : kNodes) {
    if (spec.type == type) return spec;
  }
  std::abort();  // kNodes lists every NodeType.
}

const EdgeSpec& EdgeSpecFor(RelationType type) {
  for (const EdgeSpec& spec : kEdges) {
    if (spec.type == type) return spec;
  }
  std::abort();  // kEdges lists every RelationType.
}

// ---- Export ----

// locrit_json_number(x): the shortest decimal text that reads back as exactly the double x.
void JsonNumberFunction(sqlite3_context* context, int, sqlite3_value** argv) {
  const double value = sqlite3_value_double(argv[0]);
  if (!std::isfinite(value)) {
    sqlite3_result_error(context, "a stored number is not finite, which JSON cannot express", -1);
    return;
  }
  std::array<char, 64> text;
  const auto written = fmt::format_to_n(text.data(), text.size(), "{}", value);
  sqlite3_result_text(context, text.data(), static_cast<int>(written.size), SQLITE_TRANSIENT);
}

// locrit_json_floats(blob): a stored vector (float32 little-endian) as a JSON array, each value
// in the shortest text that reads back as exactly that float.
void JsonFloatsFunction(sqlite3_context* context, int, sqlite3_value** argv) {
  const auto* bytes = static_cast<const unsigned char*>(sqlite3_value_blob(argv[0]));
  const auto size = static_cast<size_t>(sqlite3_value_bytes(argv[0]));
  if (size % 4 != 0) {
    sqlite3_result_error(context, "a stored vector is not a whole number of float32s", -1);
    return;
  }
  try {
    std::string out = "[";
    out.reserve(size * 3 + 2);
    for (size_t i = 0; i < size; i += 4) {
      const uint32_t bits = uint32_t{bytes[i]} | uint32_t{bytes[i + 1]} << 8 |
                            uint32_t{bytes[i + 2]} << 16 | uint32_t{bytes[i + 3]} << 24;
      const float value = std::bit_cast<float>(bits);
      if (!std::isfinite(value)) {
        sqlite3_result_error(context, "a stored vector has a non-finite value", -1);
        return;
      }
      if (i != 0) out += ',';
      fmt::format_to(std::back_inserter(out), "{}", value);
    }
    out += ']';
    sqlite3_result_text64(context, out.data(), out.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  } catch (const std::exception&) {  // Only allocation can fail; nothing may unwind into SQLite.
    sqlite3_result_error_nomem(context);
  }
}

// Registered by the first export on a connection rather than at open, to keep this file's
// concern in this file. Registering again would expire every cached statement (and fail while
// one is active), so an existing registration is detected first.
Status RegisterJsonFunctions(Db& db) {
  sqlite3_stmt* probe = nullptr;
  const int probe_rc =
      sqlite3_prepare_v2(db.raw(), "SELECT locrit_json_floats(x'')", -1, &probe, nullptr);
  sqlite3_finalize(probe);
  if (probe_rc == SQLITE_OK) return Status::Ok();  // The second of the two is registered last.
  constexpr int kFlags = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS;
  int rc = sqlite3_create_function_v2(db.raw(), "locrit_json_number", 1, kFlags, nullptr,
                                      JsonNumberFunction, nullptr, nullptr, nullptr);
  if (rc == SQLITE_OK) {
    rc = sqlite3_create_function_v2(db.raw(), "locrit_json_floats", 1, kFlags, nullptr,
                                    JsonFloatsFunction, nullptr, nullptr, nullptr);
  }
  if (rc != SQLITE_OK) return db.Error(rc, "export: registering JSON helpers");
  return Status::Ok();
}

// The SQL expression that renders `field` as a JSON value inside json_object().
std::string JsonValueSql(const Field& field) {
  switch (field.kind) {
    case FieldKind::kReal:
    case FieldKind::kUnitReal:
      return fmt::format("json(locrit_json_number({}))", field.column);
    case FieldKind::kJsonObject:
      return fmt::format("json({})", field.column);  // Embedded as an object, not a string.
    default:
      return std::string(field.column);
  }
}

std::string MembersSql(std::span<const Field> fields) {
  std::string out;
  for (const Field& field : fields) {
    out += fmt::format(", '{}', {}", field.key, JsonValueSql(field));
  }
  return out;
}

// Every export query, in export order; each returns one JSON line per row.
std::vector<std::string> BuildExportQueries() {
  std::vector<std::string> queries;
  for (const NodeSpec& spec : kNodes) {
    queries.push_back(
        fmt::format("SELECT json_object('kind', 'node', 'type', '{}'{}) FROM {} ORDER BY {}",
                    NodeTypeName(spec.type), MembersSql(spec.fields), spec.table, spec.order_by));
  }
  for (const EdgeSpec& spec : kEdges) {
    queries.push_back(fmt::format(
        "SELECT json_object('kind', 'edge', 'type', '{}', 'from', {}, 'to', {}{}) FROM {} "
        "ORDER BY id",
        RelationTypeName(spec.type), spec.from_column, spec.to_column, MembersSql(spec.properties),
        spec.table));
  }
  for (const VectorSpec& spec : kVectors) {
    queries.push_back(fmt::format(
        "SELECT json_object('kind', 'vector', 'type', '{}', 'id', node_id, 'model', model, "
        "'dim', dim, 'vector', json(locrit_json_floats(vector))) FROM {} ORDER BY node_id",
        NodeTypeName(spec.type), spec.table));
  }
  return queries;
}

// A DEFERRED transaction for reading: every query of an export sees the same snapshot, and
// writers on other connections are not blocked (WAL). Inside a transaction the caller already
// holds (a batch of the memory manager's writer) the reads are consistent as they are, so it
// neither begins nor ends one. Ends on destruction unless ended.
class ReadTransaction {
 public:
  explicit ReadTransaction(Db* db) : db_(db) {}
  ~ReadTransaction() {
    if (open_ && db_->InTransaction()) (void)db_->Exec("ROLLBACK");
  }
  ReadTransaction(const ReadTransaction&) = delete;
  ReadTransaction& operator=(const ReadTransaction&) = delete;

  Status Begin() {
    if (db_->InTransaction()) return Status::Ok();
    RETURN_IF_ERROR(db_->Exec("BEGIN DEFERRED"));
    open_ = true;
    return Status::Ok();
  }
  Status End() {
    if (!open_) return Status::Ok();
    RETURN_IF_ERROR(db_->Exec("COMMIT"));
    open_ = false;
    return Status::Ok();
  }

 private:
  Db* db_;
  bool open_ = false;
};

// Writes lines to the caller's stream, turning a failed or throwing stream into io_error.
class LineWriter {
 public:
  explicit LineWriter(std::ostream& out) : out_(out) {}

  Status Write(std::string_view line) {
    ++lines_;
    try {
      out_.write(line.data(), static_cast<std::streamsize>(line.size()));
      out_.put('\n');
    } catch (const std::exception& e) {
      return IoError(fmt::format("export: writing line {} failed: {}", lines_, e.what()));
    }
    if (!out_) return IoError(fmt::format("export: writing line {} failed", lines_));
    return Status::Ok();
  }

  Status Flush() {
    try {
      out_.flush();
    } catch (const std::exception& e) {
      return IoError(fmt::format("export: flushing the output failed: {}", e.what()));
    }
    if (!out_) return IoError("export: flushing the output failed");
    return Status::Ok();
  }

 private:
  std::ostream& out_;
  int64_t lines_ = 0;
};

// ---- Import: decoding JSON tokens ----

void AppendUtf8(uint32_t code_point, std::string& out) {
  if (code_point < 0x80) {
    out += static_cast<char>(code_point);
  } else if (code_point < 0x800) {
    out += static_cast<char>(0xC0 | (code_point >> 6));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  } else if (code_point < 0x10000) {
    out += static_cast<char>(0xE0 | (code_point >> 12));
    out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (code_point >> 18));
    out += static_cast<char>(0x80 | ((code_point >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  }
}

// The four hex digits of a \u escape starting at text[at], or -1.
int64_t ParseHex4(std::string_view text, size_t at) {
  if (at + 4 > text.size()) return -1;
  uint32_t value = 0;
  const auto [end, ec] = std::from_chars(text.data() + at, text.data() + at + 4, value, 16);
  if (ec != std::errc() || end != text.data() + at + 4) return -1;
  return value;
}

// The character a one-letter JSON escape (after the backslash) stands for, or '\0'.
char UnescapeSimple(char letter) {
  switch (letter) {
    case '"':
      return '"';
    case '\\':
      return '\\';
    case '/':
      return '/';
    case 'b':
      return '\b';
    case 'f':
      return '\f';
    case 'n':
      return '\n';
    case 'r':
      return '\r';
    case 't':
      return '\t';
    default:
      return '\0';
  }
}

// The string a JSON string token (quotes included) stands for. The line was valid UTF-8 and
// valid JSON, so only escapes need care: a \u escape must not leave a lone surrogate, which
// would make the stored text invalid UTF-8.
Result<std::string> DecodeJsonString(std::string_view token, std::string_view key) {
  const auto malformed = [&](std::string_view why) {
    return InvalidArgumentError(fmt::format("field \"{}\": {}", key, why));
  };
  if (token.size() < 2 || token.front() != '"' || token.back() != '"') {
    return malformed("not a JSON string");
  }
  const std::string_view body = token.substr(1, token.size() - 2);
  std::string out;
  out.reserve(body.size());
  for (size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (c != '\\') {
      out += c;
      continue;
    }
    if (++i >= body.size()) return malformed("dangling backslash");
    const char escaped = body[i];
    if (escaped != 'u') {
      const char plain = UnescapeSimple(escaped);
      if (plain == '\0') return malformed("bad escape");
      out += plain;
      continue;
    }
    // \uXXXX, or a surrogate pair \uD8XX\uDCXX for a code point past U+FFFF.
    int64_t unit = ParseHex4(body, i + 1);
    if (unit < 0) return malformed("bad \\u escape");
    i += 4;
    if (unit >= 0xDC00 && unit <= 0xDFFF) {
      return malformed("lone UTF-16 surrogate in \\u escape");
    }
    if (unit >= 0xD800 && unit <= 0xDBFF) {
      const int64_t low = i + 2 < body.size() && body[i + 1] == '\\' && body[i + 2] == 'u'
                              ? ParseHex4(body, i + 3)
                              : -1;
      if (low < 0xDC00 || low > 0xDFFF) {
        return malformed("lone UTF-16 surrogate in \\u escape");
      }
      i += 6;
      unit = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
    }
    AppendUtf8(static_cast<uint32_t>(unit), out);
  }
  return out;
}

// What json_each's type column calls a value, in JSON's words, for error messages.
std::string_view JsonTypeTerm(std::string_view type) {
  if (type == "text") return "a string";
  if (type == "integer" || type == "real") return "a number";
  if (type == "true" || type == "false") return "a boolean";
  if (type == "array") return "an array";
  if (type == "object") return "an object";
  return "null";
}

// A member of a line's object: json_each's type and the value's JSON token as written.
struct Token {
  std::string type;
  std::string text;
};

// The members of one line's top-level object.
class Members {
 public:
  static Result<Members> Read(Db& db, std::string_view line) {
    // `-> fullkey` yields each value's token as written (strings still escaped, numbers in
    // their original digits); see the file comment for why the decoded forms are not used.
    ASSIGN_OR_RETURN(Stmt stmt, db.Prepare("SELECT key, type, ?1 -> fullkey FROM json_each(?1)"));
    stmt.Bind(1, line);
    Members members;
    while (true) {
      ASSIGN_OR_RETURN(const bool row, stmt.Step());
      if (!row) break;
      std::string key = stmt.Text(0);
      if (members.tokens_.contains(key)) {
        return InvalidArgumentError(fmt::format("field \"{}\" appears twice", key));
      }
      members.tokens_.emplace(std::move(key), Token{stmt.Text(1), stmt.Text(2)});
    }
    return members;
  }

  Result<const Token*> Get(std::string_view key) const {
    const auto it = tokens_.find(key);
    if (it == tokens_.end()) return InvalidArgumentError(fmt::format("missing field \"{}\"", key));
    return &it->second;
  }

  Result<std::string> String(std::string_view key, bool non_empty = false) const {
    ASSIGN_OR_RETURN(const Token* token, Get(key));
    if (token->type != "text") return WrongType(key, "a string", *token);
    ASSIGN_OR_RETURN(std::string value, DecodeJsonString(token->text, key));
    if (non_empty && value.empty()) {
      return InvalidArgumentError(fmt::format("field \"{}\" must not be empty", key));
    }
    return value;
  }

  Result<int64_t> Int(std::string_view key) const {
    ASSIGN_OR_RETURN(const Token* token, Get(key));
    if (token->type == "real") {
      // Quoting the number helps unless it is absurdly long.
      return InvalidArgumentError(fmt::format(
          "field \"{}\" must be an integer, got {}", key,
          token->text.size() <= 32 ? token->text : "a number with a fraction or exponent"));
    }
    if (token->type != "integer") return WrongType(key, "an integer", *token);
    int64_t value = 0;
    const std::string& text = token->text;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size()) {
      return InvalidArgumentError(
          fmt::format("field \"{}\" is outside the 64-bit integer range", key));
    }
    return value;
  }

  Result<double> Real(std::string_view key) const {
    ASSIGN_OR_RETURN(const Token* token, Get(key));
    if (token->type != "integer" && token->type != "real") {
      return WrongType(key, "a number", *token);
    }
    double value = 0;
    const std::string& text = token->text;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(value)) {
      return InvalidArgumentError(
          fmt::format("field \"{}\" is outside the range of a double", key));
    }
    return value;
  }

  // An object member, as its (minified) JSON text.
  Result<std::string> Object(std::string_view key) const {
    ASSIGN_OR_RETURN(const Token* token, Get(key));
    if (token->type != "object") return WrongType(key, "an object", *token);
    return token->text;
  }

 private:
  static Status WrongType(std::string_view key, std::string_view wanted, const Token& token) {
    return InvalidArgumentError(
        fmt::format("field \"{}\" must be {}, got {}", key, wanted, JsonTypeTerm(token.type)));
  }

  std::map<std::string, Token, std::less<>> tokens_;
};

using Value = std::variant<int64_t, double, std::string>;

Result<Value> ReadValue(const Members& members, const Field& field) {
  switch (field.kind) {
    case FieldKind::kId:
    case FieldKind::kNonEmptyText: {
      ASSIGN_OR_RETURN(std::string text, members.String(field.key, /*non_empty=*/true));
      return Value(std::move(text));
    }
    case FieldKind::kText: {
      ASSIGN_OR_RETURN(std::string text, members.String(field.key));
      return Value(std::move(text));
    }
    case FieldKind::kInt: {
      ASSIGN_OR_RETURN(const int64_t number, members.Int(field.key));
      return Value(number);
    }
    case FieldKind::kReal: {
      ASSIGN_OR_RETURN(const double number, members.Real(field.key));
      return Value(number);
    }
    case FieldKind::kUnitReal: {
      ASSIGN_OR_RETURN(const double number, members.Real(field.key));
      if (!(number >= 0 && number <= 1)) {
        return InvalidArgumentError(
            fmt::format("field \"{}\" must be between 0 and 1, got {}", field.key, number));
      }
      return Value(number);
    }
    case FieldKind::kRole: {
      ASSIGN_OR_RETURN(std::string text, members.String(field.key));
      if (!ParseRole(text)) {
        return InvalidArgumentError(
            fmt::format("field \"{}\" must be \"user\", \"assistant\" or \"system\", got \"{}\"",
                        field.key, text));
      }
      return Value(std::move(text));
    }
    case FieldKind::kStatus: {
      ASSIGN_OR_RETURN(std::string text, members.String(field.key));
      if (!ParseMessageStatus(text)) {
        return InvalidArgumentError(
            fmt::format("field \"{}\" must be \"ok\", \"unanswered\" or \"incomplete\", got \"{}\"",
                        field.key, text));
      }
      return Value(std::move(text));
    }
    case FieldKind::kJsonObject: {
      ASSIGN_OR_RETURN(std::string text, members.Object(field.key));
      return Value(std::move(text));
    }
  }
  return InternalError("unknown field kind");
}

void BindValue(Stmt& stmt, int index, const Value& value) {
  std::visit([&](const auto& v) { stmt.Bind(index, v); }, value);
}

std::string Placeholders(size_t count) {
  std::string out;
  for (size_t i = 1; i <= count; ++i) out += fmt::format("{}?{}", i == 1 ? "" : ", ", i);
  return out;
}

// Reads one line of at most kMaxLineBytes (without its '\n') into `line`: true when a line was
// read, false at the end of the input. Reads in chunks so that an endless line costs bounded
// memory.
Result<bool> ReadLine(std::istream& in, std::string& line, std::vector<char>& chunk) {
  line.clear();
  const auto append = [&](size_t count) -> Status {
    line.append(chunk.data(), count);
    if (line.size() <= kMaxLineBytes) return Status::Ok();
    return InvalidArgumentError(
        fmt::format("longer than {} bytes, the limit for one line", kMaxLineBytes));
  };
  try {
    while (true) {
      in.getline(chunk.data(), static_cast<std::streamsize>(chunk.size()));
      const auto count = static_cast<size_t>(in.gcount());
      if (in.bad()) return IoError("import: reading the input failed");
      if (in.good()) {
        // The line ended with '\n', which gcount counts but getline did not store.
        RETURN_IF_ERROR(append(count - 1));
        return true;
      }
      if (in.eof()) {
        // The last line, without a '\n' (or nothing at all).
        RETURN_IF_ERROR(append(count));
        return !line.empty();
      }
      // failbit alone: the chunk filled before the line ended (or the stream was already
      // failed, and nothing could be read).
      if (count == 0) return IoError("import: the input stream is not readable");
      RETURN_IF_ERROR(append(count));
      in.clear(in.rdstate() & ~std::ios_base::failbit);
    }
  } catch (const std::exception& e) {
    return IoError(fmt::format("import: reading the input failed: {}", e.what()));
  }
}

bool IsBlank(std::string_view line) {
  return line.find_first_not_of(" \t\r") == std::string_view::npos;
}

// Applies an export's lines, in order, to a database inside the caller's transaction. Errors
// name the field; Run() adds the line number.
class Importer {
 public:
  explicit Importer(Db& db) : db_(db) {}

  Status Run(std::istream& in) {
    std::vector<char> chunk(kReadChunkBytes);
    std::string line;
    int64_t number = 0;
    while (true) {
      ++number;
      Result<bool> read = ReadLine(in, line, chunk);
      if (!read.ok()) return WithLine(number, read.status());
      if (!*read) break;
      ++report_.lines;
      if (IsBlank(line)) continue;
      if (Status status = ApplyLine(line); !status.ok()) return WithLine(number, status);
    }
    if (!header_seen_) {
      return InvalidArgumentError(
          fmt::format("line {}: no header line; an export starts with "
                      "{{\"kind\":\"header\",\"format\":\"{}\",\"version\":{},...}}",
                      number, kFormatName, kFormatVersion));
    }
    return Status::Ok();
  }

  const ImportReport& report() const { return report_; }

 private:
  static Status WithLine(int64_t number, const Status& status) {
    return Status(status.code(), fmt::format("line {}: {}", number, status.message()));
  }

  Status ApplyLine(std::string_view line) {
    if (!IsValidUtf8(line)) return InvalidArgumentError("not valid UTF-8");
    {
      ASSIGN_OR_RETURN(Stmt check,
                       db_.Prepare("SELECT CASE WHEN json_valid(?1) THEN json_type(?1) END"));
      ASSIGN_OR_RETURN(const bool row, check.Bind(1, line).Step());
      if (!row || check.IsNull(0)) return InvalidArgumentError("not valid JSON");
      if (check.TextView(0) != "object") {
        return InvalidArgumentError(
            fmt::format("expected a JSON object, got {}", JsonTypeTerm(check.TextView(0))));
      }
    }
    ASSIGN_OR_RETURN(const Members members, Members::Read(db_, line));
    ASSIGN_OR_RETURN(const std::string kind, members.String("kind"));
    if (!header_seen_) {
      if (kind != "header") {
        return InvalidArgumentError(
            fmt::format("expected the header line (kind \"header\") first, got kind \"{}\"", kind));
      }
      return ApplyHeader(members);
    }
    if (kind == "header") return InvalidArgumentError("a second header line");
    if (kind != "node" && kind != "edge" && kind != "vector") {
      return InvalidArgumentError(
          fmt::format("field \"kind\": unknown kind \"{}\" (expected node, edge or vector)", kind));
    }
    ASSIGN_OR_RETURN(const std::string type, members.String("type"));
    if (kind == "node") {
      const std::optional<NodeType> node_type = ParseNodeType(type);
      if (!node_type) {
        return InvalidArgumentError(fmt::format("field \"type\": unknown node type \"{}\"", type));
      }
      return ApplyNode(NodeSpecFor(*node_type), members);
    }
    if (kind == "edge") {
      const std::optional<RelationType> edge_type = ParseRelationType(type);
      if (!edge_type) {
        return InvalidArgumentError(fmt::format("field \"type\": unknown edge type \"{}\"", type));
      }
      return ApplyEdge(EdgeSpecFor(*edge_type), members);
    }
    return ApplyVector(type, members);
  }

  Status ApplyHeader(const Members& members) {
    ASSIGN_OR_RETURN(const std::string format, members.String("format"));
    if (format != kFormatName) {
      return InvalidArgumentError(
          fmt::format("field \"format\" must be \"{}\", got \"{}\"", kFormatName, format));
    }
    ASSIGN_OR_RETURN(const int64_t version, members.Int("version"));
    if (version != kFormatVersion) {
      return InvalidArgumentError(fmt::format(
          "field \"version\": unsupported format version {} (this build reads version {})", version,
          kFormatVersion));
    }
    header_seen_ = true;
    return Status::Ok();
  }

  // Whether a node of `type` with `id` exists.
  Result<bool> NodeExists(NodeType type, const std::string& id) {
    ASSIGN_OR_RETURN(Stmt stmt, db_.Prepare(fmt::format("SELECT 1 FROM {} WHERE id = ?1",
                                                        NodeSpecFor(type).table)));
    return stmt.Bind(1, id).Step();
  }

  Status RequireNode(std::string_view key, NodeType type, const std::string& id) {
    ASSIGN_OR_RETURN(const bool found, NodeExists(type, id));
    if (found) return Status::Ok();
    return InvalidArgumentError(
        fmt::format("field \"{}\": {} \"{}\" does not exist", key, NodeTypeName(type), id));
  }

  Status ApplyNode(const NodeSpec& spec, const Members& members) {
    std::vector<Value> values;
    values.reserve(spec.fields.size());
    for (const Field& field : spec.fields) {
      ASSIGN_OR_RETURN(Value value, ReadValue(members, field));
      values.push_back(std::move(value));
    }
    const auto text = [&](std::string_view key) -> const std::string& {
      for (size_t i = 0; i < spec.fields.size(); ++i) {
        if (spec.fields[i].key == key) return std::get<std::string>(values[i]);
      }
      std::abort();  // Only called with keys of text fields of `spec`.
    };
    const std::string& id = std::get<std::string>(values[0]);
    ASSIGN_OR_RETURN(const bool exists, NodeExists(spec.type, id));
    if (exists) {
      ++report_.skipped;
      return Status::Ok();
    }
    // Checked here rather than left to the constraints, for an error that names the field.
    if (spec.type == NodeType::kMessage) {
      RETURN_IF_ERROR(RequireNode("session_id", NodeType::kSession, text("session_id")));
    } else if (spec.type == NodeType::kConcept) {
      ASSIGN_OR_RETURN(
          Stmt same,
          db_.Prepare("SELECT id FROM concepts WHERE name = ?1 COLLATE NOCASE AND type = ?2"));
      ASSIGN_OR_RETURN(const bool found, same.BindAll(text("name"), text("concept_type")).Step());
      if (found) {
        return AlreadyExistsError(
            fmt::format("concept \"{}\" (type \"{}\") already exists with another id, \"{}\"",
                        text("name"), text("concept_type"), same.Text(0)));
      }
    } else if (spec.type == NodeType::kTopic) {
      ASSIGN_OR_RETURN(Stmt same, db_.Prepare("SELECT id FROM topics WHERE name = ?1"));
      ASSIGN_OR_RETURN(const bool found, same.Bind(1, text("name")).Step());
      if (found) {
        return AlreadyExistsError(fmt::format("topic \"{}\" already exists with another id, \"{}\"",
                                              text("name"), same.Text(0)));
      }
    }
    std::string columns;
    for (const Field& field : spec.fields) {
      if (!columns.empty()) columns += ", ";
      columns += field.column;
    }
    // Plain INSERTs, so that the triggers keep FTS, session counts and counters in step.
    ASSIGN_OR_RETURN(Stmt insert,
                     db_.Prepare(fmt::format("INSERT INTO {}({}) VALUES ({})", spec.table, columns,
                                             Placeholders(values.size()))));
    for (size_t i = 0; i < values.size(); ++i)
      BindValue(insert, static_cast<int>(i + 1), values[i]);
    RETURN_IF_ERROR(insert.Run());
    if (spec.type == NodeType::kMessage) messages_inserted_.insert(id);
    ++report_.inserted;
    return Status::Ok();
  }

  Status ApplyEdge(const EdgeSpec& spec, const Members& members) {
    ASSIGN_OR_RETURN(const std::string from, members.String("from", /*non_empty=*/true));
    ASSIGN_OR_RETURN(const std::string to, members.String("to", /*non_empty=*/true));
    std::vector<Value> properties;
    for (const Field& field : spec.properties) {
      ASSIGN_OR_RETURN(Value value, ReadValue(members, field));
      properties.push_back(std::move(value));
    }
    RETURN_IF_ERROR(RequireNode("from", RelationFromType(spec.type), from));
    RETURN_IF_ERROR(RequireNode("to", RelationToType(spec.type), to));
    if (spec.type == RelationType::kSent || spec.type == RelationType::kPartOf) {
      return ApplyMessageEdge(spec, from, to, properties.front());
    }
    std::string columns = fmt::format("{}, {}", spec.from_column, spec.to_column);
    for (const Field& field : spec.properties) columns += fmt::format(", {}", field.column);
    // DO NOTHING on the table's UNIQUE natural key: an edge already there is kept as it is.
    ASSIGN_OR_RETURN(Stmt insert, db_.Prepare(fmt::format(
                                      "INSERT INTO {}({}) VALUES ({}) ON CONFLICT DO NOTHING",
                                      spec.table, columns, Placeholders(properties.size() + 2))));
    insert.BindAll(from, to);
    for (size_t i = 0; i < properties.size(); ++i) {
      BindValue(insert, static_cast<int>(i + 3), properties[i]);
    }
    RETURN_IF_ERROR(insert.Run());
    if (db_.Changes() == 0) {
      ++report_.skipped;
    } else {
      ++report_.inserted;
    }
    return Status::Ok();
  }

  // SENT and PART_OF are views over their message's user_id/session_id (docs/memory-format.md):
  // the line must restate the message. Like any edge, it is new only if its message is new in
  // this import (its property is then set on the message); otherwise it is kept as it is.
  Status ApplyMessageEdge(const EdgeSpec& spec, const std::string& from, const std::string& to,
                          const Value& property) {
    const bool sent = spec.type == RelationType::kSent;
    const std::string& message_id = sent ? to : from;
    const std::string& owner = sent ? from : to;
    ASSIGN_OR_RETURN(Stmt message,
                     db_.Prepare("SELECT user_id, session_id FROM messages WHERE id = ?1"));
    ASSIGN_OR_RETURN(const bool found, message.Bind(1, message_id).Step());
    if (!found) return InternalError("message vanished during import");  // RequireNode passed.
    const bool is_new = messages_inserted_.contains(message_id);
    if (message.TextView(sent ? 0 : 1) != owner) {
      return InvalidArgumentError(fmt::format(
          "{}: message \"{}\" belongs to {} \"{}\", not \"{}\"", RelationTypeName(spec.type),
          message_id, sent ? "user" : "session", message.TextView(sent ? 0 : 1), owner));
    }
    if (!is_new) {
      ++report_.skipped;
      return Status::Ok();
    }
    ASSIGN_OR_RETURN(Stmt update,
                     db_.Prepare(sent ? "UPDATE messages SET sent_weight = ?2 WHERE id = ?1"
                                      : "UPDATE messages SET position = ?2 WHERE id = ?1"));
    update.Bind(1, message_id);
    BindValue(update, 2, property);
    RETURN_IF_ERROR(update.Run());
    ++report_.inserted;
    return Status::Ok();
  }

  Status ApplyVector(std::string_view type, const Members& members) {
    const std::optional<NodeType> node_type = ParseNodeType(type);
    const VectorSpec* spec = nullptr;
    for (const VectorSpec& candidate : kVectors) {
      if (node_type == candidate.type) spec = &candidate;
    }
    if (spec == nullptr) {
      return InvalidArgumentError(fmt::format(
          "field \"type\": vectors belong to a message, memory or concept, not \"{}\"", type));
    }
    ASSIGN_OR_RETURN(const std::string id, members.String("id", /*non_empty=*/true));
    ASSIGN_OR_RETURN(const std::string model, members.String("model", /*non_empty=*/true));
    if (model.size() > kMaxModelBytes) {
      return InvalidArgumentError(
          fmt::format("field \"model\" is longer than {} bytes", kMaxModelBytes));
    }
    ASSIGN_OR_RETURN(const int64_t dim, members.Int("dim"));
    if (dim < 1 || dim > MemoryStore::kMaxVectorDim) {
      return InvalidArgumentError(fmt::format("field \"dim\" must be between 1 and {}, got {}",
                                              MemoryStore::kMaxVectorDim, dim));
    }
    ASSIGN_OR_RETURN(const std::vector<std::byte> blob, ReadFloats(members));
    const auto count = static_cast<int64_t>(blob.size() / 4);
    if (count != dim) {
      return InvalidArgumentError(
          fmt::format("field \"dim\" is {} but field \"vector\" has {} elements", dim, count));
    }
    RETURN_IF_ERROR(RequireNode("id", spec->type, id));
    {
      ASSIGN_OR_RETURN(Stmt exists, db_.Prepare(fmt::format("SELECT 1 FROM {} WHERE node_id = ?1",
                                                            spec->table)));
      ASSIGN_OR_RETURN(const bool found, exists.Bind(1, id).Step());
      if (found) {
        ++report_.skipped;
        return Status::Ok();
      }
    }
    ASSIGN_OR_RETURN(
        Stmt insert,
        db_.Prepare(fmt::format(
            "INSERT INTO {}(node_id, model, dim, vector) VALUES (?1, ?2, ?3, ?4)", spec->table)));
    insert.BindAll(id, model, dim);
    RETURN_IF_ERROR(insert.BindBlob(4, blob).Run());
    ++report_.inserted;
    return Status::Ok();
  }

  // The "vector" member as the stored form: float32, little-endian.
  Result<std::vector<std::byte>> ReadFloats(const Members& members) {
    ASSIGN_OR_RETURN(const Token* token, members.Get("vector"));
    if (token->type != "array") {
      return InvalidArgumentError(
          fmt::format("field \"vector\" must be an array, got {}", JsonTypeTerm(token->type)));
    }
    {
      ASSIGN_OR_RETURN(
          Stmt odd,
          db_.Prepare(
              "SELECT key, type FROM json_each(?1) WHERE type NOT IN ('integer', 'real') LIMIT 1"));
      ASSIGN_OR_RETURN(const bool found, odd.Bind(1, token->text).Step());
      if (found) {
        return InvalidArgumentError(fmt::format("field \"vector\": element {} is {}, not a number",
                                                odd.Int(0), JsonTypeTerm(odd.TextView(1))));
      }
    }
    // Every element is a number token and `->` rendered the array without spaces: "[1,-2.5e3]".
    const std::string_view body = std::string_view(token->text).substr(1, token->text.size() - 2);
    std::vector<std::byte> blob;
    blob.reserve(body.size() / 2);
    size_t index = 0;
    for (size_t start = 0; start < body.size(); ++index) {
      size_t end = body.find(',', start);
      if (end == std::string_view::npos) end = body.size();
      float value = 0;
      const auto [stop, ec] = std::from_chars(body.data() + start, body.data() + end, value);
      if (ec != std::errc() || stop != body.data() + end || !std::isfinite(value)) {
        return InvalidArgumentError(
            fmt::format("field \"vector\": element {} is not a finite float32", index));
      }
      const auto bits = std::bit_cast<uint32_t>(value);
      for (int shift = 0; shift < 32; shift += 8) {
        blob.push_back(static_cast<std::byte>((bits >> shift) & 0xFF));
      }
      start = end + 1;
    }
    return blob;
  }

  Db& db_;
  ImportReport report_;
  bool header_seen_ = false;
  // Messages this import created: their SENT and PART_OF lines are new edges, not duplicates.
  std::unordered_set<std::string> messages_inserted_;
};

}  // namespace

Status MemoryStore::ClearAll() {
  {
    Transaction tx(db_.get());
    RETURN_IF_ERROR(tx.status());
    // Children before parents, so that no delete has cascades or foreign-key lookups left to do.
    // Row-by-row deletes fire the triggers, which empty the FTS indexes and the session counts.
    // counters('messages') ends at 0 through those triggers; it is set anyway so that a drifted
    // counter is repaired. counters('vectors') is a change counter, not a count: it only grows
    // (the vector caches of other connections rely on that) and the deletes have bumped it.
    RETURN_IF_ERROR(db_->Exec(
        "DELETE FROM message_vectors; DELETE FROM memory_vectors; DELETE FROM concept_vectors;"
        "DELETE FROM responds_to; DELETE FROM mentions;"
        "DELETE FROM relates_to; DELETE FROM discusses; DELETE FROM learns;"
        "DELETE FROM messages; DELETE FROM memories; DELETE FROM concepts; DELETE FROM topics;"
        "DELETE FROM sessions; DELETE FROM users;"
        "UPDATE counters SET value = 0 WHERE name = 'messages';"));
    // Freed pages go back to the file system in the same transaction, so that the answer is the
    // truth: an error here means nothing was cleared, OK means all of it was.
    RETURN_IF_ERROR(ReclaimSpace(0));
    RETURN_IF_ERROR(tx.Commit());
  }
  return Status::Ok();
}

Status MemoryStore::Export(std::ostream& out) {
  static const std::vector<std::string> kQueries = BuildExportQueries();
  RETURN_IF_ERROR(RegisterJsonFunctions(*db_));
  ReadTransaction read(db_.get());
  RETURN_IF_ERROR(read.Begin());
  LineWriter writer(out);
  RETURN_IF_ERROR(
      writer.Write(fmt::format(R"({{"kind":"header","format":"{}","version":{},"schema":{}}})",
                               kFormatName, kFormatVersion, schema_version_)));
  for (const std::string& sql : kQueries) {
    ASSIGN_OR_RETURN(Stmt stmt, db_->Prepare(sql));
    while (true) {
      ASSIGN_OR_RETURN(const bool row, stmt.Step());
      if (!row) break;
      RETURN_IF_ERROR(writer.Write(stmt.TextView(0)));
    }
  }
  RETURN_IF_ERROR(writer.Flush());
  return read.End();
}

Result<ImportReport> MemoryStore::Import(std::istream& in) {
  Transaction tx(db_.get());
  RETURN_IF_ERROR(tx.status());
  Importer importer(*db_);
  RETURN_IF_ERROR(importer.Run(in));
  // Imported messages took seqs after every existing one, so retention evicts the oldest of the
  // store first and then the oldest of the file, exactly as if they had been saved one by one.
  SavedMessage unused;
  RETURN_IF_ERROR(EnforceRetention(unused));
  RETURN_IF_ERROR(tx.Commit());
  return importer.report();
}

}  // namespace locrit

// /api/locrits/{name}/memory/...: reading and editing one Locrit's memory (API.md "Memory").
//
// Who may do what is decided here, not by the caller of RouteMemory: the operator reads and
// writes everything; a public caller only reads, and only from an active Locrit whose
// access_to.full_memory opens every GET route, or whose access_to.quick_memory opens stats and
// search (at most kQuickSearchResults results).
//
// Every store call runs on the memory manager's reader or writer, never on a network thread; the
// answer is sent from the completion.
#include <algorithm>
#include <filesystem>
#include <limits>
#include <sstream>
#include <utility>

#include "base/utf8.h"
#include "chat/memory_search.h"
#include "chat/query_embedding.h"
#include "llm/llm_runtime.h"
#include "memory/memory_manager.h"
#include "server/api.h"

namespace locrit {
namespace json = boost::json;
namespace {

constexpr int64_t kQuickSearchResults = 5;
constexpr int64_t kMaxSummaryRecent = 100;
constexpr size_t kMaxQueryChars = 1000;
constexpr size_t kMaxMetadataBytes = 16 * 1024;
constexpr size_t kMaxNameChars = 256;
constexpr size_t kMaxDescriptionChars = 4096;

enum class AccessLevel { kQuick, kFull, kOperator };

std::string_view SearchModeName(SearchMode mode) {
  switch (mode) {
    case SearchMode::kKeyword:
      return "keyword";
    case SearchMode::kSemantic:
      return "semantic";
    case SearchMode::kHybrid:
      return "hybrid";
  }
  return "keyword";
}

std::string_view AccessLevelName(AccessLevel level) {
  switch (level) {
    case AccessLevel::kQuick:
      return "quick";
    case AccessLevel::kFull:
      return "full";
    case AccessLevel::kOperator:
      return "operator";
  }
  return "operator";
}

HttpError BadRequest(std::string message) {
  return HttpError{400, "invalid_argument", std::move(message)};
}

// An id taken from the path: 1..kMaxIdChars characters of valid UTF-8 without control characters.
// Ids are only ever looked up in the database, never used as file names, so anything else that
// is well formed ("../../etc/passwd" included) is simply not found.
std::optional<HttpError> CheckId(std::string_view what, const std::string& id) {
  if (id.empty()) return BadRequest(std::string(what) + " must not be empty");
  if (!IsValidUtf8(id)) return BadRequest(std::string(what) + " is not valid UTF-8");
  if (CountCodePoints(id) > kMaxIdChars) {
    return BadRequest(std::string(what) + " is longer than " + std::to_string(kMaxIdChars) +
                      " characters");
  }
  for (const char c : id) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return BadRequest(std::string(what) + " contains a control character");
    }
  }
  return std::nullopt;
}

// `limit` from the query: absent gives `fallback`; above `max` it is clamped to `max` (API.md:
// list limits are clamped); anything that is not an integer of at least 1 is a 400.
std::variant<int64_t, HttpError> LimitParam(std::string_view target, int64_t fallback,
                                            int64_t max) {
  std::variant<int64_t, HttpError> parsed =
      IntParam(target, "limit", fallback, 1, std::numeric_limits<int64_t>::max());
  if (auto* error = std::get_if<HttpError>(&parsed)) {
    error->message = "limit must be an integer of at least 1 (larger values are clamped to " +
                     std::to_string(max) + ")";
    return *error;
  }
  return std::min(std::get<int64_t>(parsed), max);
}

json::value MetadataValue(const std::string& text) {
  boost::system::error_code ec;
  json::value metadata = json::parse(text, ec);
  if (ec || !metadata.is_object()) return json::object();
  return metadata;
}

json::object StatisticsObject(const StoreStatistics& s) {
  return json::object{{"total_messages", s.messages}, {"total_sessions", s.sessions},
                      {"total_concepts", s.concepts}, {"total_users", s.users},
                      {"total_memories", s.memories}, {"total_topics", s.topics},
                      {"total_relations", s.relations}, {"db_bytes", s.db_bytes}};
}

json::object SessionObject(const Session& s) {
  return json::object{{"id", s.id},
                      {"user_id", s.user_id},
                      {"name", s.name},
                      {"topic", s.topic},
                      {"created_at", FormatRfc3339Millis(s.created_at)},
                      {"last_activity", FormatRfc3339Millis(s.last_activity)},
                      {"message_count", s.message_count}};
}

json::object MemoryObject(const Memory& m) {
  return json::object{{"id", m.id},
                      {"content", m.content},
                      {"importance", m.importance},
                      {"created_at", FormatRfc3339Millis(m.created_at)},
                      {"last_accessed", FormatRfc3339Millis(m.last_accessed)},
                      {"metadata", MetadataValue(m.metadata)}};
}

json::object ConceptObject(const Concept& c) {
  return json::object{{"id", c.id},
                      {"name", c.name},
                      {"type", c.type},
                      {"description", c.description},
                      {"confidence", c.confidence},
                      {"created_at", FormatRfc3339Millis(c.created_at)}};
}

json::object RelationObject(const Relation& r) {
  return json::object{
      {"id", r.id},
      {"rel", RelationTypeName(r.type)},
      {"from", {{"type", NodeTypeName(RelationFromType(r.type))}, {"id", r.from_id}}},
      {"to", {{"type", NodeTypeName(RelationToType(r.type))}, {"id", r.to_id}}},
      {"strength", r.strength},
      {"position", r.position},
      {"relationship_type", r.relationship_type}};
}

json::object SearchHitObject(const SearchHit& h) {
  json::object o{{"type", NodeTypeName(h.type)},
                 {"id", h.id},
                 {"content", h.content},
                 {"timestamp", FormatRfc3339Millis(h.timestamp)},
                 {"score", h.score},
                 {"snippet", h.snippet}};
  if (h.role) o["role"] = RoleName(*h.role);
  if (h.session_id) o["session_id"] = *h.session_id;
  return o;
}

std::string FileName(const std::string& path) {
  return std::filesystem::path(path).filename().string();
}

// Paths are reported by file name only: callers have no business with the server's layout.
json::object HealthObject(const MemoryHealth& h) {
  json::array snapshots;
  for (const std::string& s : h.snapshots) snapshots.push_back(json::string(FileName(s)));
  json::value recovery = nullptr;
  if (h.last_recovery) {
    const RecoveryEvent& e = *h.last_recovery;
    json::object salvaged, from_snapshot;
    for (const auto& [table, rows] : e.rows_salvaged) salvaged[table] = rows;
    for (const auto& [table, rows] : e.rows_from_snapshot) from_snapshot[table] = rows;
    recovery = json::object{{"at", FormatRfc3339Millis(e.at)},
                            {"reason", e.reason},
                            {"quarantine", FileName(e.quarantine_path)},
                            {"snapshot", FileName(e.snapshot_path)},
                            {"rows_salvaged", std::move(salvaged)},
                            {"rows_from_snapshot", std::move(from_snapshot)},
                            {"rows_lost", e.rows_lost}};
  }
  return json::object{
      {"integrity", h.integrity},
      {"checked_at", h.checked_at > 0 ? json::value(FormatRfc3339Millis(h.checked_at))
                                      : json::value(nullptr)},
      {"recovered_on_open", h.recovered_on_open},
      {"last_recovery", std::move(recovery)},
      {"snapshots", std::move(snapshots)},
      {"retention", {{"max_messages", h.max_messages}}}};
}

// ---- Body fields ----

// A required non-empty string field of at most `max_chars` characters.
std::optional<HttpError> RequiredStringField(const json::object& body, std::string_view name,
                                             size_t max_chars, std::string* out) {
  if (!body.contains(name) || body.at(name).is_null()) {
    return BadRequest(std::string(name) + " is required");
  }
  if (auto e = OptionalStringField(body, name, max_chars, out)) return e;
  if (out->empty()) return BadRequest(std::string(name) + " must not be empty");
  return std::nullopt;
}

// Content may hold newlines and tabs (a message does), unlike the short fields
// OptionalStringField reads; longer than `max_chars`: 413, as for chat messages.
std::optional<HttpError> ContentField(const json::object& body, size_t max_chars, bool required,
                                      std::optional<std::string>* out) {
  const json::value* v = body.if_contains("content");
  if (v == nullptr || v->is_null()) {
    if (required) return BadRequest("content is required");
    return std::nullopt;
  }
  if (!v->is_string()) return BadRequest("content must be a string");
  std::string text(v->get_string());
  if (text.empty()) return BadRequest("content must not be empty");
  if (CountCodePoints(text) > max_chars) {
    return PayloadTooLargeError("content is longer than " + std::to_string(max_chars) +
                                " characters");
  }
  *out = std::move(text);
  return std::nullopt;
}

// An optional number in [0, 1].
std::optional<HttpError> UnitField(const json::object& body, std::string_view name,
                                   std::optional<double>* out) {
  const json::value* v = body.if_contains(name);
  if (v == nullptr || v->is_null()) return std::nullopt;
  if (!v->is_number()) return BadRequest(std::string(name) + " must be a number from 0 to 1");
  const double value = v->to_number<double>();
  if (!(value >= 0 && value <= 1)) {
    return BadRequest(std::string(name) + " must be a number from 0 to 1");
  }
  *out = value;
  return std::nullopt;
}

std::optional<HttpError> MetadataField(const json::object& body,
                                       std::optional<std::string>* out) {
  const json::value* v = body.if_contains("metadata");
  if (v == nullptr || v->is_null()) return std::nullopt;
  if (!v->is_object()) return BadRequest("metadata must be a JSON object");
  std::string text = json::serialize(*v);
  if (text.size() > kMaxMetadataBytes) {
    return PayloadTooLargeError("metadata is larger than " + std::to_string(kMaxMetadataBytes) +
                                " bytes");
  }
  *out = std::move(text);
  return std::nullopt;
}

// {type, id} of a relation's end; the type must be the one `rel` takes at that end.
std::optional<HttpError> RelationEnd(const json::object& body, std::string_view name,
                                     NodeType expected, std::string* id) {
  const json::value* v = body.if_contains(name);
  if (v == nullptr || !v->is_object()) {
    return BadRequest(std::string(name) + " must be an object {type, id}");
  }
  const json::object& end = v->get_object();
  std::string type;
  if (auto e = RequiredStringField(end, "type", 32, &type)) {
    e->message = std::string(name) + "." + e->message;
    return e;
  }
  const std::optional<NodeType> parsed = ParseNodeType(type);
  if (!parsed) return BadRequest(std::string(name) + ".type is not a node type: " + type);
  if (*parsed != expected) {
    return BadRequest(std::string(name) + ".type must be " + std::string(NodeTypeName(expected)) +
                      " for this rel");
  }
  if (auto e = RequiredStringField(end, "id", kMaxIdChars, id)) {
    e->message = std::string(name) + "." + e->message;
    return e;
  }
  return std::nullopt;
}

std::variant<Relation, HttpError> ParseRelation(const json::object& body) {
  Relation r;
  std::string rel;
  if (auto e = RequiredStringField(body, "rel", 32, &rel)) return *e;
  const std::optional<RelationType> type = ParseRelationType(rel);
  if (!type) return BadRequest("rel is not a relation type: " + rel);
  r.type = *type;
  if (auto e = RelationEnd(body, "from", RelationFromType(*type), &r.from_id)) return *e;
  if (auto e = RelationEnd(body, "to", RelationToType(*type), &r.to_id)) return *e;
  if (const json::value* p = body.if_contains("properties"); p != nullptr && !p->is_null()) {
    if (!p->is_object()) return BadRequest("properties must be an object");
    const json::object& props = p->get_object();
    if (const json::value* s = props.if_contains("strength"); s != nullptr && !s->is_null()) {
      if (!s->is_number()) return BadRequest("properties.strength must be a number");
      r.strength = s->to_number<double>();
    }
    if (const json::value* s = props.if_contains("position"); s != nullptr && !s->is_null()) {
      if (!s->is_int64()) return BadRequest("properties.position must be an integer");
      r.position = s->get_int64();
    }
    if (auto e = OptionalStringField(props, "relationship_type", 64, &r.relationship_type)) {
      e->message = "properties." + e->message;
      return *e;
    }
  }
  return r;
}

// ---- Asynchronous plumbing ----

// Opens the Locrit's memory, runs `op` on a reader (or the writer) and answers 200 with
// `render(value)` plus "success": true, or the mapped error.
template <typename T, typename Render>
void Run(MemoryManager& manager, const LocritConfig& locrit, Reply reply, bool write,
         LocritMemory::Op<T> op, Render render) {
  LocritMemoryOptions options;
  options.max_messages = locrit.memory.max_messages;
  manager.Get(locrit.slug, options,
              [reply, write, op = std::move(op),
               render = std::move(render)](Result<MemoryManager::Handle> memory) mutable {
                if (!memory.ok()) return reply.Fail(ErrorForStatus(memory.status()));
                auto done = [reply, render = std::move(render)](Result<T> value) mutable {
                  if (!value.ok()) return reply.Fail(ErrorForStatus(value.status()));
                  json::object body = render(*value);
                  body["success"] = true;
                  reply.Send(JsonResponse(200, body));
                };
                if (write) {
                  (*memory)->Write<T>(std::move(op), std::move(done));
                } else {
                  (*memory)->Read<T>(std::move(op), std::move(done));
                }
              });
}

// A store call that returns only a Status, as an Op.
LocritMemory::Op<bool> StatusOp(std::function<Status(MemoryStore&)> call) {
  return [call = std::move(call)](MemoryStore& store) -> Result<bool> {
    RETURN_IF_ERROR(call(store));
    return true;
  };
}

struct SessionPage {
  Session session;
  std::vector<Message> messages;
};

struct ExportText {
  std::string text;
};

}  // namespace

void Api::RouteMemory(const Route& route, const LocritConfig& locrit) {
  // seg: api, locrits, {name}, memory, r...
  const std::vector<std::string> r(route.seg.begin() + 4, route.seg.end());
  const std::string& method = route.request.method;
  const std::string& target = route.request.target;
  const bool get = method == "GET";
  MemoryManager& manager = *options_.memory;
  const Reply reply = route.reply();
  const std::string name = locrit.name;
  auto run_read = [&]<typename T, typename Render>(LocritMemory::Op<T> op, Render render) {
    Run<T>(manager, locrit, reply, /*write=*/false, std::move(op), std::move(render));
  };
  auto run_write = [&]<typename T, typename Render>(LocritMemory::Op<T> op, Render render) {
    Run<T>(manager, locrit, reply, /*write=*/true, std::move(op), std::move(render));
  };
  auto ok = [](bool) { return json::object(); };
  // Wraps the render of a write that added or changed text: once it has committed, the indexer
  // is asked to embed what lacks a vector (the changed text lost its own).
  auto and_embed = [indexer = options_.indexer, embedding = EmbeddingTargetFor(locrit)]<
                       typename Render>(Render render) {
    return [render = std::move(render), indexer, embedding](auto& value) {
      if (indexer != nullptr && embedding) indexer->RequestBackfill(*embedding);
      return render(value);
    };
  };

  // ---- Who is calling ----
  const bool is_stats = r.size() == 1 && r[0] == "stats";
  const bool is_search = r.size() == 1 && r[0] == "search";
  AccessLevel level = AccessLevel::kOperator;
  if (!route.caller.is_operator) {
    if (!get) return void(route.RefuseUnlessOperator());
    if (!locrit.active) return route.Fail(ForbiddenError("Locrit " + name + " is inactive"));
    if (locrit.access_to.full_memory) {
      level = AccessLevel::kFull;
    } else if (locrit.access_to.quick_memory && (is_stats || is_search)) {
      level = AccessLevel::kQuick;
    } else if (locrit.access_to.quick_memory) {
      return route.Fail(ForbiddenError("Locrit " + name +
                                       " shares only its memory's stats and search"));
    } else {
      return route.Fail(ForbiddenError("Locrit " + name + " does not share its memory"));
    }
  }
  const std::string access_level(AccessLevelName(level));

  if (r.empty()) return route.NotFound();
  const std::string& head = r[0];

  // ---- Summary, statistics, search ----
  if (head == "summary" && r.size() == 1) {
    if (!get) return route.WrongMethod("GET");
    auto limit = LimitParam(target, 10, kMaxSummaryRecent);
    if (auto* e = std::get_if<HttpError>(&limit)) return route.Fail(*e);
    const int recent = static_cast<int>(std::get<int64_t>(limit));
    return run_read(
        LocritMemory::Op<StoreSummary>(
            [recent](MemoryStore& store) { return store.Summary(recent); }),
        [name](StoreSummary& s) {
          json::array recent_messages, sessions, top;
          for (const Message& m : s.recent_messages) recent_messages.push_back(MessageObject(m));
          for (const Session& x : s.sessions) sessions.push_back(SessionObject(x));
          for (const ConceptMentions& c : s.top_concepts) {
            json::object o = ConceptObject(c.node);
            o["mentions"] = c.mentions;
            top.push_back(std::move(o));
          }
          return json::object{{"locrit_name", name},
                              {"statistics", StatisticsObject(s.statistics)},
                              {"recent_messages", std::move(recent_messages)},
                              {"sessions", std::move(sessions)},
                              {"top_concepts", std::move(top)}};
        });
  }
  if (is_stats) {
    if (!get) return route.WrongMethod("GET");
    return run_read(LocritMemory::Op<StoreStatistics>(
                        [](MemoryStore& store) { return store.Statistics(); }),
                    [name, access_level](StoreStatistics& s) {
                      return json::object{{"locrit_name", name},
                                          {"statistics", StatisticsObject(s)},
                                          {"access_level", access_level}};
                    });
  }
  if (is_search) {
    if (!get) return route.WrongMethod("GET");
    const std::optional<std::string> q = QueryParam(target, "q");
    if (!q || q->empty()) return route.Fail(BadRequest("q is required"));
    if (!IsValidUtf8(*q)) return route.Fail(BadRequest("q is not valid UTF-8"));
    if (CountCodePoints(*q) > kMaxQueryChars) {
      return route.Fail(
          BadRequest("q is longer than " + std::to_string(kMaxQueryChars) + " characters"));
    }
    const int64_t max = level == AccessLevel::kQuick ? kQuickSearchResults
                                                      : int64_t{MemoryStore::kMaxSearchResults};
    auto limit = LimitParam(target, std::min<int64_t>(10, max), max);
    if (auto* e = std::get_if<HttpError>(&limit)) return route.Fail(*e);
    const std::string mode = QueryParam(target, "mode").value_or("auto");
    if (mode != "auto" && mode != "keyword" && mode != "semantic" && mode != "hybrid") {
      return route.Fail(BadRequest("mode must be auto, keyword, semantic or hybrid"));
    }
    MemorySearch search;
    search.query.text = *q;
    search.query.limit = static_cast<int>(std::get<int64_t>(limit));
    if (std::optional<std::string> session = QueryParam(target, "session_id")) {
      if (auto e = CheckId("session_id", *session)) return route.Fail(*e);
      search.query.session_id = std::move(session);
    }
    const std::optional<EmbeddingTarget> embedding = EmbeddingTargetFor(locrit);
    if ((mode == "semantic" || mode == "hybrid") && !embedding) {
      return route.Fail(BadRequest("mode " + mode + " needs an embedding model: Locrit " + name +
                                   " has none (embedding_model), so only keyword search is "
                                   "possible"));
    }
    auto run_search = [memory = options_.memory, locrit, reply, q = *q, access_level](
                          MemorySearch what, std::string fallback) {
      const std::string_view mode_name = SearchModeName(what.mode);
      Run<std::vector<SearchHit>>(
          *memory, locrit, reply, /*write=*/false,
          [what = std::move(what)](MemoryStore& store) { return SearchMemory(store, what); },
          [q, mode_name, access_level, fallback](std::vector<SearchHit>& hits) {
            json::array results;
            for (const SearchHit& h : hits) results.push_back(SearchHitObject(h));
            const size_t total = results.size();
            json::object body{{"query", q},
                              {"results", std::move(results)},
                              {"total", total},
                              {"mode", mode_name},
                              {"access_level", access_level}};
            if (!fallback.empty()) body["fallback"] = fallback;
            return body;
          });
    };
    if (mode == "keyword" || !embedding) return run_search(std::move(search), "");
    // Semantic and hybrid need the question's vector first. A hybrid search (asked for, or auto
    // with an embedding model) whose vector cannot be had is a keyword search that says why; a
    // semantic one fails.
    search.mode = mode == "semantic" ? SearchMode::kSemantic : SearchMode::kHybrid;
    search.embedding_model = embedding->llm.embedding_model;
    const size_t max_input_chars = options_.indexer != nullptr
                                       ? options_.indexer->options().max_input_chars
                                       : EmbeddingIndexerOptions{}.max_input_chars;
    EmbedQuery(*options_.llm, *embedding, *q, max_input_chars, options_.search_vector_timeout,
               [run_search, reply, pending = std::move(search)](
                   Result<std::vector<float>> vector) mutable {
                 if (vector.ok()) {
                   pending.vector = std::move(*vector);
                   return run_search(std::move(pending), "");
                 }
                 const std::string why = "the question could not be embedded: " +
                                         vector.status().message();
                 if (pending.mode == SearchMode::kSemantic) {
                   return reply.Fail(ErrorForStatus(Status(vector.status().code(), why)));
                 }
                 pending.mode = SearchMode::kKeyword;
                 run_search(std::move(pending), why);
               })
        .Detach();
    return;
  }

  // ---- Sessions ----
  if (head == "sessions") {
    if (r.size() == 1) {
      if (!get) return route.WrongMethod("GET");
      auto limit = LimitParam(target, 100, MemoryStore::kMaxListResults);
      if (auto* e = std::get_if<HttpError>(&limit)) return route.Fail(*e);
      const int count = static_cast<int>(std::get<int64_t>(limit));
      return run_read(LocritMemory::Op<std::vector<Session>>(
                          [count](MemoryStore& store) { return store.ListSessions(count); }),
                      [](std::vector<Session>& sessions) {
                        json::array list;
                        for (const Session& s : sessions) list.push_back(SessionObject(s));
                        const size_t listed = list.size();
                        return json::object{{"sessions", std::move(list)}, {"count", listed}};
                      });
    }
    if (r.size() > 3 || (r.size() == 3 && r[2] != "messages")) return route.NotFound();
    const std::string sid = r[1];
    if (auto e = CheckId("session id", sid)) return route.Fail(*e);
    if (r.size() == 2) {
      if (get) {
        return run_read(LocritMemory::Op<Session>(
                            [sid](MemoryStore& store) { return store.GetSession(sid); }),
                        [](Session& s) { return json::object{{"session", SessionObject(s)}}; });
      }
      if (method != "DELETE") return route.WrongMethod("GET, DELETE");
      if (route.RefuseUnlessOperator()) return;
      return run_write(StatusOp([sid](MemoryStore& store) { return store.DeleteSession(sid); }),
                       ok);
    }
    // GET /sessions/{sid}/messages?limit=100&before=<seq or message id>
    if (!get) return route.WrongMethod("GET");
    auto limit = LimitParam(target, 100, MemoryStore::kMaxHistory);
    if (auto* e = std::get_if<HttpError>(&limit)) return route.Fail(*e);
    const int count = static_cast<int>(std::get<int64_t>(limit));
    std::optional<int64_t> before_seq;
    std::optional<std::string> before_id;
    if (std::optional<std::string> before = QueryParam(target, "before")) {
      const bool digits = !before->empty() && before->size() <= 18 &&
                          before->find_first_not_of("0123456789") == std::string::npos;
      if (digits) {
        before_seq = std::stoll(*before);
      } else {
        if (auto e = CheckId("before", *before)) return route.Fail(*e);
        before_id = std::move(before);
      }
    }
    return run_read(
        LocritMemory::Op<SessionPage>([sid, count, before_seq,
                                       before_id](MemoryStore& store) -> Result<SessionPage> {
          SessionPage page;
          ASSIGN_OR_RETURN(page.session, store.GetSession(sid));
          HistoryQuery query;
          query.session_id = sid;
          query.limit = count;
          query.before_seq = before_seq;
          if (before_id) {
            Result<Message> cursor = store.GetMessage(*before_id);
            if (!cursor.ok() && cursor.status().code() == StatusCode::kNotFound) {
              return InvalidArgumentError("before names no message: " + *before_id);
            }
            RETURN_IF_ERROR(cursor.status());
            if (cursor->session_id != sid) {
              return InvalidArgumentError("before names a message of another session");
            }
            query.before_seq = cursor->seq;
          }
          ASSIGN_OR_RETURN(page.messages, store.History(query));
          return page;
        }),
        [sid, count](SessionPage& page) {
          json::array list;
          for (const Message& m : page.messages) list.push_back(MessageObject(m));
          json::object body{{"session_id", sid},
                            {"messages", std::move(list)},
                            {"total", page.session.message_count}};
          // The cursor of the next (older) page, when this one is full.
          body["next_before"] = static_cast<int>(page.messages.size()) == count
                                    ? json::value(page.messages.front().seq)
                                    : json::value(nullptr);
          return body;
        });
  }

  // ---- Messages ----
  if (head == "messages") {
    if (r.size() != 2) return route.NotFound();
    const std::string id = r[1];
    if (auto e = CheckId("message id", id)) return route.Fail(*e);
    if (get) {
      return run_read(LocritMemory::Op<Message>(
                          [id](MemoryStore& store) { return store.GetMessage(id); }),
                      [](Message& m) { return json::object{{"message", MessageObject(m)}}; });
    }
    if (method != "PUT" && method != "DELETE") return route.WrongMethod("GET, PUT, DELETE");
    if (route.RefuseUnlessOperator()) return;
    if (method == "DELETE") {
      return run_write(StatusOp([id](MemoryStore& store) { return store.DeleteMessage(id); }),
                       ok);
    }
    auto parsed = ParseJsonObjectBody(route.request);
    if (auto* e = std::get_if<HttpError>(&parsed)) return route.Fail(*e);
    std::optional<std::string> content;
    if (auto e = ContentField(std::get<json::object>(parsed), options_.max_message_chars,
                              /*required=*/true, &content)) {
      return route.Fail(*e);
    }
    return run_write(
        LocritMemory::Op<Message>([id, content = *content](MemoryStore& store) -> Result<Message> {
          RETURN_IF_ERROR(store.EditMessage(id, content));
          return store.GetMessage(id);
        }),
        and_embed([](Message& m) { return json::object{{"message", MessageObject(m)}}; }));
  }

  // ---- Standalone memories ----
  if (head == "memories") {
    if (r.size() == 1) {
      if (get) {
        auto limit = LimitParam(target, 100, MemoryStore::kMaxListResults);
        if (auto* e = std::get_if<HttpError>(&limit)) return route.Fail(*e);
        const int count = static_cast<int>(std::get<int64_t>(limit));
        return run_read(LocritMemory::Op<std::vector<Memory>>(
                            [count](MemoryStore& store) { return store.ListMemories(count); }),
                        [](std::vector<Memory>& memories) {
                          json::array list;
                          for (const Memory& m : memories) list.push_back(MemoryObject(m));
                          const size_t listed = list.size();
                          return json::object{{"memories", std::move(list)}, {"count", listed}};
                        });
      }
      if (method != "POST") return route.WrongMethod("GET, POST");
      if (route.RefuseUnlessOperator()) return;
      auto parsed = ParseJsonObjectBody(route.request);
      if (auto* e = std::get_if<HttpError>(&parsed)) return route.Fail(*e);
      const json::object& body = std::get<json::object>(parsed);
      std::optional<std::string> content, metadata;
      std::optional<double> importance;
      if (auto e = ContentField(body, options_.max_message_chars, true, &content)) {
        return route.Fail(*e);
      }
      if (auto e = UnitField(body, "importance", &importance)) return route.Fail(*e);
      if (auto e = MetadataField(body, &metadata)) return route.Fail(*e);
      NewMemory memory;
      memory.content = *content;
      memory.importance = importance.value_or(0.5);
      memory.metadata = metadata.value_or("{}");
      return Run<Memory>(
          manager, locrit, reply, true,
          [memory](MemoryStore& store) { return store.AddMemory(memory); },
          and_embed([](Memory& m) { return json::object{{"memory", MemoryObject(m)}}; }));
    }
    if (r.size() != 2) return route.NotFound();
    const std::string id = r[1];
    if (auto e = CheckId("memory id", id)) return route.Fail(*e);
    if (get) {
      return run_read(LocritMemory::Op<Memory>(
                          [id](MemoryStore& store) { return store.GetMemory(id); }),
                      [](Memory& m) { return json::object{{"memory", MemoryObject(m)}}; });
    }
    if (method != "PUT" && method != "DELETE") return route.WrongMethod("GET, PUT, DELETE");
    if (route.RefuseUnlessOperator()) return;
    if (method == "DELETE") {
      return run_write(StatusOp([id](MemoryStore& store) { return store.DeleteMemory(id); }),
                       ok);
    }
    auto parsed = ParseJsonObjectBody(route.request);
    if (auto* e = std::get_if<HttpError>(&parsed)) return route.Fail(*e);
    const json::object& body = std::get<json::object>(parsed);
    MemoryEdit edit;
    if (auto e = ContentField(body, options_.max_message_chars, false, &edit.content)) {
      return route.Fail(*e);
    }
    if (auto e = UnitField(body, "importance", &edit.importance)) return route.Fail(*e);
    if (auto e = MetadataField(body, &edit.metadata)) return route.Fail(*e);
    if (!edit.content && !edit.importance && !edit.metadata) {
      return route.Fail(BadRequest("nothing to change: give content, importance or metadata"));
    }
    return Run<Memory>(
        manager, locrit, reply, true,
        [id, edit](MemoryStore& store) { return store.EditMemory(id, edit); },
        and_embed([](Memory& m) { return json::object{{"memory", MemoryObject(m)}}; }));
  }

  // ---- Concepts ----
  if (head == "concepts") {
    if (r.size() == 1) {
      if (get) {
        auto limit = LimitParam(target, 100, MemoryStore::kMaxListResults);
        if (auto* e = std::get_if<HttpError>(&limit)) return route.Fail(*e);
        const int count = static_cast<int>(std::get<int64_t>(limit));
        return run_read(LocritMemory::Op<std::vector<Concept>>(
                            [count](MemoryStore& store) { return store.ListConcepts(count); }),
                        [](std::vector<Concept>& concepts) {
                          json::array list;
                          for (const Concept& c : concepts) list.push_back(ConceptObject(c));
                          const size_t listed = list.size();
                          return json::object{{"concepts", std::move(list)}, {"count", listed}};
                        });
      }
      if (method != "POST") return route.WrongMethod("GET, POST");
      if (route.RefuseUnlessOperator()) return;
      auto parsed = ParseJsonObjectBody(route.request);
      if (auto* e = std::get_if<HttpError>(&parsed)) return route.Fail(*e);
      const json::object& body = std::get<json::object>(parsed);
      NewConcept input;
      std::string description;
      if (auto e = RequiredStringField(body, "name", kMaxNameChars, &input.name)) {
        return route.Fail(*e);
      }
      if (auto e = OptionalStringField(body, "type", 64, &input.type)) return route.Fail(*e);
      if (body.contains("description")) {
        if (auto e = OptionalStringField(body, "description", kMaxDescriptionChars, &description)) {
          return route.Fail(*e);
        }
        input.description = description;
      }
      if (auto e = UnitField(body, "confidence", &input.confidence)) return route.Fail(*e);
      return Run<Concept>(manager, locrit, reply, true,
                          [input](MemoryStore& store) { return store.UpsertConcept(input); },
                          [](Concept& c) { return json::object{{"concept", ConceptObject(c)}}; });
    }
    if (r.size() == 2 && r[1] == "details") {
      if (!get) return route.WrongMethod("GET");
      const std::optional<std::string> concept_name = QueryParam(target, "name");
      if (!concept_name || concept_name->empty()) return route.Fail(BadRequest("name is required"));
      if (auto e = CheckId("name", *concept_name)) return route.Fail(*e);
      std::optional<std::string> type = QueryParam(target, "type");
      if (type) {
        if (auto e = CheckId("type", *type)) return route.Fail(*e);
      }
      return run_read(
          LocritMemory::Op<ConceptDetails>([n = *concept_name, type](MemoryStore& store) {
            return store.GetConceptDetails(n, type);
          }),
          [](ConceptDetails& d) {
            json::array mentions, relations;
            for (const Message& m : d.recent_mentions) mentions.push_back(MessageObject(m));
            for (const Relation& x : d.relations) relations.push_back(RelationObject(x));
            auto when = [](const std::optional<int64_t>& t) {
              return t ? json::value(FormatRfc3339Millis(*t)) : json::value(nullptr);
            };
            return json::object{{"concept", ConceptObject(d.node)},
                                {"mention_count", d.mention_count},
                                {"first_mention", when(d.first_mention)},
                                {"last_mention", when(d.last_mention)},
                                {"recent_mentions", std::move(mentions)},
                                {"relations", std::move(relations)}};
          });
    }
    if (r.size() == 3 && r[2] == "related") {
      if (!get) return route.WrongMethod("GET");
      const std::string key = r[1];
      if (auto e = CheckId("concept", key)) return route.Fail(*e);
      auto depth = IntParam(target, "depth", 2, 1, MemoryStore::kMaxRelatedDepth);
      if (auto* e = std::get_if<HttpError>(&depth)) return route.Fail(*e);
      const int hops = static_cast<int>(std::get<int64_t>(depth));
      struct Related {
        Concept start;
        std::vector<RelatedConcept> related;
      };
      // {name} is the concept's name (case-insensitive), or its id.
      return run_read(
          LocritMemory::Op<Related>([key, hops](MemoryStore& store) -> Result<Related> {
            Related out;
            Result<ConceptDetails> by_name = store.GetConceptDetails(key);
            if (by_name.ok()) {
              out.start = by_name->node;
            } else if (by_name.status().code() == StatusCode::kNotFound) {
              Result<Concept> by_id = store.GetConcept(key);
              if (!by_id.ok() && by_id.status().code() == StatusCode::kNotFound) {
                return NotFoundError("no concept named " + key);
              }
              ASSIGN_OR_RETURN(out.start, std::move(by_id));
            } else {
              return by_name.status();
            }
            ASSIGN_OR_RETURN(out.related, store.RelatedConcepts(out.start.id, hops));
            return out;
          }),
          [hops](Related& found) {
            json::array list;
            for (const RelatedConcept& c : found.related) {
              json::object o = ConceptObject(c.node);
              o["depth"] = c.depth;
              list.push_back(std::move(o));
            }
            const size_t total = list.size();
            return json::object{{"concept", ConceptObject(found.start)},
                                {"depth", hops},
                                {"related", std::move(list)},
                                {"total", total}};
          });
    }
    if (r.size() != 2) return route.NotFound();
    const std::string id = r[1];
    if (auto e = CheckId("concept id", id)) return route.Fail(*e);
    if (get) {
      return run_read(LocritMemory::Op<Concept>(
                          [id](MemoryStore& store) { return store.GetConcept(id); }),
                      [](Concept& c) { return json::object{{"concept", ConceptObject(c)}}; });
    }
    if (method != "PUT" && method != "DELETE") return route.WrongMethod("GET, PUT, DELETE");
    if (route.RefuseUnlessOperator()) return;
    if (method == "DELETE") {
      return run_write(StatusOp([id](MemoryStore& store) { return store.DeleteConcept(id); }),
                       ok);
    }
    auto parsed = ParseJsonObjectBody(route.request);
    if (auto* e = std::get_if<HttpError>(&parsed)) return route.Fail(*e);
    const json::object& body = std::get<json::object>(parsed);
    ConceptEdit edit;
    std::string text;
    if (body.contains("name")) {
      if (auto e = RequiredStringField(body, "name", kMaxNameChars, &text)) return route.Fail(*e);
      edit.name = text;
    }
    if (body.contains("type")) {
      text.clear();
      if (auto e = OptionalStringField(body, "type", 64, &text)) return route.Fail(*e);
      edit.type = text;
    }
    if (body.contains("description")) {
      text.clear();
      if (auto e = OptionalStringField(body, "description", kMaxDescriptionChars, &text)) {
        return route.Fail(*e);
      }
      edit.description = text;
    }
    if (auto e = UnitField(body, "confidence", &edit.confidence)) return route.Fail(*e);
    if (!edit.name && !edit.type && !edit.description && !edit.confidence) {
      return route.Fail(
          BadRequest("nothing to change: give name, type, description or confidence"));
    }
    return Run<Concept>(manager, locrit, reply, true,
                        [id, edit](MemoryStore& store) { return store.EditConcept(id, edit); },
                        [](Concept& c) { return json::object{{"concept", ConceptObject(c)}}; });
  }

  // ---- Relations ----
  if (head == "relations") {
    if (r.size() == 1) {
      if (method != "POST") return route.WrongMethod("POST");
      if (route.RefuseUnlessOperator()) return;
      auto parsed = ParseJsonObjectBody(route.request);
      if (auto* e = std::get_if<HttpError>(&parsed)) return route.Fail(*e);
      auto relation = ParseRelation(std::get<json::object>(parsed));
      if (auto* e = std::get_if<HttpError>(&relation)) return route.Fail(*e);
      return Run<Relation>(manager, locrit, reply, true,
                           [rel = std::get<Relation>(relation)](MemoryStore& store) {
                             return store.AddRelation(rel);
                           },
                           [](Relation& x) { return json::object{{"relation", RelationObject(x)}}; });
    }
    if (r.size() != 2) return route.NotFound();
    const std::string id = r[1];
    if (auto e = CheckId("relation id", id)) return route.Fail(*e);
    if (get) {
      return run_read(LocritMemory::Op<Relation>(
                          [id](MemoryStore& store) { return store.GetRelation(id); }),
                      [](Relation& x) { return json::object{{"relation", RelationObject(x)}}; });
    }
    if (method != "DELETE") return route.WrongMethod("GET, DELETE");
    if (route.RefuseUnlessOperator()) return;
    return run_write(StatusOp([id](MemoryStore& store) { return store.DeleteRelation(id); }), ok);
  }

  if (r.size() != 1) return route.NotFound();

  // ---- Graph, health ----
  if (head == "graph") {
    if (!get) return route.WrongMethod("GET");
    auto limit = LimitParam(target, 200, MemoryStore::kMaxGraphNodes);
    if (auto* e = std::get_if<HttpError>(&limit)) return route.Fail(*e);
    const int count = static_cast<int>(std::get<int64_t>(limit));
    return run_read(LocritMemory::Op<GraphView>(
                        [count](MemoryStore& store) { return store.Graph(count); }),
                    [](GraphView& g) {
                      json::array nodes, edges;
                      for (const GraphNode& n : g.nodes) {
                        nodes.push_back(json::object{
                            {"id", n.id}, {"type", NodeTypeName(n.type)}, {"label", n.label}});
                      }
                      for (const GraphEdge& e : g.edges) {
                        edges.push_back(json::object{{"id", e.id},
                                                     {"from", e.from_id},
                                                     {"to", e.to_id},
                                                     {"rel", RelationTypeName(e.type)}});
                      }
                      return json::object{{"nodes", std::move(nodes)}, {"edges", std::move(edges)}};
                    });
  }
  if (head == "health") {
    if (!get) return route.WrongMethod("GET");
    LocritMemoryOptions options;
    options.max_messages = locrit.memory.max_messages;
    return manager.Get(locrit.slug, options, [reply](Result<MemoryManager::Handle> memory) {
      if (!memory.ok()) return reply.Fail(ErrorForStatus(memory.status()));
      (*memory)->Health([reply](Result<MemoryHealth> health) {
        if (!health.ok()) return reply.Fail(ErrorForStatus(health.status()));
        json::object body = HealthObject(*health);
        body["success"] = true;
        reply.Send(JsonResponse(200, body));
      });
    });
  }

  // ---- Whole memory: clear, export, import ----
  if (head == "clear") {
    if (method != "DELETE") return route.WrongMethod("DELETE");
    if (route.RefuseUnlessOperator()) return;
    // A DELETE without a body (and so without a Content-Type) is the commonest way to forget the
    // confirmation: it is told so (400), not that its absent body is not JSON (415).
    json::object body;
    if (route.request.body.find_first_not_of(" \t\r\n") != std::string::npos) {
      auto parsed = ParseJsonObjectBody(route.request);
      if (auto* e = std::get_if<HttpError>(&parsed)) return route.Fail(*e);
      body = std::move(std::get<json::object>(parsed));
    }
    const json::value* confirm = body.if_contains("confirm");
    if (confirm == nullptr || !confirm->is_bool() || !confirm->get_bool()) {
      return route.Fail(BadRequest("confirm must be true: clearing deletes this Locrit's memory"));
    }
    LocritMemoryOptions options;
    options.max_messages = locrit.memory.max_messages;
    // The snapshot first: a clear by mistake can be undone from it.
    return manager.Get(locrit.slug, options, [reply](Result<MemoryManager::Handle> memory) {
      if (!memory.ok()) return reply.Fail(ErrorForStatus(memory.status()));
      MemoryManager::Handle handle = *memory;
      handle->Snapshot([reply, handle](Result<std::string> snapshot) {
        if (!snapshot.ok()) return reply.Fail(ErrorForStatus(snapshot.status()));
        handle->Write<bool>(StatusOp([](MemoryStore& store) { return store.ClearAll(); }),
                            [reply, file = FileName(*snapshot)](Result<bool> cleared) {
                              if (!cleared.ok()) return reply.Fail(ErrorForStatus(cleared.status()));
                              reply.Send(JsonResponse(200, {{"success", true}, {"snapshot", file}}));
                            });
      });
    });
  }
  if (head == "export") {
    if (!get) return route.WrongMethod("GET");
    LocritMemoryOptions options;
    options.max_messages = locrit.memory.max_messages;
    const size_t max_bytes = options_.max_body_bytes;
    return manager.Get(locrit.slug, options, [reply, max_bytes](Result<MemoryManager::Handle> memory) {
      if (!memory.ok()) return reply.Fail(ErrorForStatus(memory.status()));
      (*memory)->Read<ExportText>(
          [](MemoryStore& store) -> Result<ExportText> {
            std::ostringstream out;
            RETURN_IF_ERROR(store.Export(out));
            return ExportText{std::move(out).str()};
          },
          [reply, max_bytes](Result<ExportText> text) {
            if (!text.ok()) return reply.Fail(ErrorForStatus(text.status()));
            // Bounded like an import body, so that every export can be imported back.
            if (text->text.size() > max_bytes) {
              return reply.Fail(PayloadTooLargeError(
                  "the export is " + std::to_string(text->text.size()) + " bytes, over the " +
                  std::to_string(max_bytes) + "-byte body limit"));
            }
            HttpResponse response;
            response.content_type = "application/x-ndjson";
            response.body = std::move(text->text);
            reply.Send(std::move(response));
          });
    });
  }
  if (head == "import") {
    if (method != "POST") return route.WrongMethod("POST");
    if (route.RefuseUnlessOperator()) return;
    const std::string& type = route.request.content_type;
    const std::string_view bare = std::string_view(type).substr(0, type.find(';'));
    if (!IsJsonContentType(type) && !EqualsIgnoringAsciiCase(bare, "application/x-ndjson") &&
        !EqualsIgnoringAsciiCase(bare, "application/jsonl")) {
      return route.Fail(UnsupportedMediaTypeError(
          "the body must be JSON Lines (Content-Type: application/x-ndjson)"));
    }
    if (route.request.body.find_first_not_of(" \t\r\n") == std::string::npos) {
      return route.Fail(BadRequest("the body is empty: send the lines of an export"));
    }
    if (!IsValidUtf8(route.request.body)) return route.Fail(BadRequest("the body is not valid UTF-8"));
    return Run<ImportReport>(manager, locrit, reply, true,
                             [body = route.request.body](MemoryStore& store) {
                               std::istringstream in(body);
                               return store.Import(in);
                             },
                             and_embed([](ImportReport& report) {
                               return json::object{{"lines", report.lines},
                                                   {"inserted", report.inserted},
                                                   {"skipped", report.skipped}};
                             }));
  }
  return route.NotFound();
}

}  // namespace locrit

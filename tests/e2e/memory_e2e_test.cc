// End to end: a Locrit's memory and the server-side conversations through the real
// `locrit serve` and real HTTP clients — every route of API.md "Memory" and "Conversations", its
// success shape and the errors it documents, hostile ids and parameters, and what public callers
// of a token-protected server may see.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/e2e_http.h"
#include "tests/support/locrit_process.h"
#include "tests/support/temp_dir.h"

namespace locrit {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using ::locrit::testing::HttpCall;
using ::locrit::testing::HttpReply;
using ::locrit::testing::JsonObject;
using ::locrit::testing::LocritServer;
using ::locrit::testing::TempDir;
using ::testing::EndsWith;
using ::testing::HasSubstr;

constexpr char kBob[] = "/api/locrits/Bob%20Technique";
constexpr char kAdminToken[] = "memory-e2e-admin-token-0123456789";

std::string S(const json::value& v) { return v.is_string() ? std::string(v.get_string()) : ""; }

class MemoryE2eTest : public ::testing::Test {
 protected:
  void SetUp() override { Start({}); }

  void Start(std::map<std::string, std::string> env) {
    server_ = std::make_unique<LocritServer>(LOCRIT_BINARY, data_, dir_.File("server.log"),
                                             std::vector<std::string>{}, std::move(env));
    base_ = server_->WaitReady();
    ASSERT_FALSE(base_.empty()) << server_->Log();
  }

  HttpReply Call(const std::string& method, const std::string& path, const std::string& body = "",
                 const std::string& content_type = "", std::vector<std::string> headers = {}) {
    HttpCall call;
    call.method = method;
    call.url = base_ + path;
    call.body = body;
    call.content_type = content_type;
    call.headers = std::move(headers);
    return locrit::testing::Send(call);
  }
  // A route under Bob Technique's memory.
  HttpReply Mem(const std::string& method, const std::string& path, const std::string& body = "",
                const std::string& content_type = "") {
    return Call(method, std::string(kBob) + "/memory" + path, body, content_type);
  }
  json::object MemJson(const std::string& path) {
    const HttpReply reply = Mem("GET", path);
    EXPECT_EQ(reply.status, 200) << path << ": " << reply.body;
    return JsonObject(reply);
  }
  std::string Code(const HttpReply& reply) { return S(JsonObject(reply)["code"]); }

  // One chat turn with Bob: the session it went to.
  std::string Chat(const std::string& message, const std::string& session = "") {
    json::object body{{"message", message}};
    if (!session.empty()) body["session_id"] = session;
    const HttpReply reply = Call("POST", std::string(kBob) + "/chat", json::serialize(body));
    EXPECT_EQ(reply.status, 200) << reply.body;
    return S(JsonObject(reply)["session_id"]);
  }

  json::object Statistics() { return MemJson("/stats")["statistics"].as_object(); }

  TempDir dir_;
  fs::path data_ = dir_.path() / "data";
  std::unique_ptr<LocritServer> server_;
  std::string base_;
};

TEST_F(MemoryE2eTest, ChatTurnsShowInSummaryStatsAndKeywordSearch) {
  const std::string session = Chat("Mon chat s'appelle Zéphyr.");
  Chat("Il aime les croquettes.", session);

  const json::object summary = MemJson("/summary");
  EXPECT_EQ(summary.at("locrit_name"), "Bob Technique");
  const json::object& statistics = summary.at("statistics").as_object();
  EXPECT_EQ(statistics.at("total_messages"), 4);
  EXPECT_EQ(statistics.at("total_sessions"), 1);
  for (const char* key : {"total_concepts", "total_users", "total_memories", "db_bytes"}) {
    EXPECT_TRUE(statistics.contains(key)) << key;
  }
  ASSERT_EQ(summary.at("recent_messages").as_array().size(), 4u);
  ASSERT_EQ(summary.at("sessions").as_array().size(), 1u);
  EXPECT_EQ(summary.at("sessions").as_array()[0].as_object().at("id"), json::value(session));
  EXPECT_TRUE(summary.at("top_concepts").is_array());
  EXPECT_EQ(MemJson("/summary?limit=1")["recent_messages"].as_array().size(), 1u);

  const json::object stats = MemJson("/stats");
  EXPECT_EQ(stats.at("locrit_name"), "Bob Technique");
  EXPECT_EQ(stats.at("access_level"), "operator");
  EXPECT_EQ(stats.at("statistics").as_object().at("total_messages"), 4);

  const json::object found = MemJson("/search?q=Z%C3%A9phyr&mode=keyword");
  EXPECT_EQ(found.at("query"), "Zéphyr");
  EXPECT_EQ(found.at("mode"), "keyword");
  ASSERT_GE(found.at("total").as_int64(), 1);
  const json::object& hit = found.at("results").as_array()[0].as_object();
  EXPECT_EQ(hit.at("type"), "message");
  EXPECT_THAT(S(hit.at("content")), HasSubstr("Zéphyr"));
  EXPECT_THAT(S(hit.at("snippet")), HasSubstr("[Zéphyr]"));
  EXPECT_EQ(hit.at("session_id"), json::value(session));
  for (const char* key : {"id", "role", "timestamp", "score"}) EXPECT_TRUE(hit.contains(key)) << key;
  EXPECT_EQ(MemJson("/search?q=croquettes&session_id=nowhere")["total"], 0);
  EXPECT_EQ(MemJson("/search?q=introuvablexyz")["total"], 0);
  EXPECT_EQ(MemJson("/search?q=Z%C3%A9phyr")["mode"], "keyword") << "auto, no embedding model";

  const HttpReply bad_mode = Mem("GET", "/search?q=chat&mode=psychic");
  EXPECT_EQ(bad_mode.status, 400);
  EXPECT_EQ(Code(bad_mode), "invalid_argument");
  const HttpReply semantic = Mem("GET", "/search?q=chat&mode=semantic");
  EXPECT_EQ(semantic.status, 400);
  EXPECT_THAT(S(JsonObject(semantic)["error"]), HasSubstr("embedding_model"));
  EXPECT_EQ(Mem("GET", "/search?q=chat&mode=hybrid").status, 400);
  EXPECT_EQ(Mem("GET", "/search").status, 400) << "q is required";
  EXPECT_EQ(Mem("GET", "/search?q=" + std::string(1001, 'a')).status, 400);
}

TEST_F(MemoryE2eTest, SessionsAreListedReadAndDeletedWithTheirMessages) {
  const std::string first = Chat("Première session.");
  Chat("Encore la première.", first);
  const std::string second = Chat("Deuxième session.");
  ASSERT_NE(first, second);

  const json::object list = MemJson("/sessions");
  EXPECT_EQ(list.at("count"), 2);
  std::map<std::string, int64_t> counts;
  for (const json::value& s : list.at("sessions").as_array()) {
    counts[S(s.as_object().at("id"))] = s.as_object().at("message_count").as_int64();
  }
  EXPECT_EQ(counts, (std::map<std::string, int64_t>{{first, 4}, {second, 2}}));
  EXPECT_EQ(MemJson("/sessions?limit=1")["count"], 1);

  const json::object one = MemJson("/sessions/" + first);
  EXPECT_EQ(one.at("session").as_object().at("id"), json::value(first));
  EXPECT_EQ(one.at("session").as_object().at("message_count"), 4);

  const HttpReply deleted = Mem("DELETE", "/sessions/" + first);
  ASSERT_EQ(deleted.status, 200) << deleted.body;
  EXPECT_EQ(JsonObject(deleted)["success"], true);
  EXPECT_EQ(Mem("GET", "/sessions/" + first).status, 404);
  EXPECT_EQ(Mem("GET", "/sessions/" + first + "/messages").status, 404);
  EXPECT_EQ(Mem("DELETE", "/sessions/" + first).status, 404);
  EXPECT_EQ(Statistics()["total_messages"], 2) << "its messages went with it";
  EXPECT_EQ(MemJson("/sessions")["count"], 1);
  EXPECT_EQ(Mem("POST", "/sessions/" + second).status, 405);
}

TEST_F(MemoryE2eTest, SessionMessagesPageNewestFirstAndChronologicalWithinAPage) {
  const std::string session = Chat("un");
  Chat("deux", session);
  Chat("trois", session);  // 6 messages: un, reply, deux, reply, trois, reply.
  const std::string other = Chat("ailleurs");

  const json::object all = MemJson("/sessions/" + session + "/messages");
  EXPECT_EQ(all.at("session_id"), json::value(session));
  EXPECT_EQ(all.at("total"), 6);
  const json::array& messages = all.at("messages").as_array();
  ASSERT_EQ(messages.size(), 6u);
  EXPECT_EQ(messages[0].as_object().at("content"), "un");
  EXPECT_EQ(messages[0].as_object().at("role"), "user");
  EXPECT_EQ(messages[1].as_object().at("role"), "assistant");
  EXPECT_EQ(messages[4].as_object().at("content"), "trois");
  EXPECT_TRUE(all.at("next_before").is_null()) << "one page holds them all";

  // The newest 4, oldest first, then the 2 before them.
  const json::object newest = MemJson("/sessions/" + session + "/messages?limit=4");
  ASSERT_EQ(newest.at("messages").as_array().size(), 4u);
  EXPECT_EQ(newest.at("total"), 6);
  EXPECT_EQ(newest.at("messages").as_array()[0].as_object().at("content"), "deux");
  EXPECT_EQ(newest.at("messages").as_array()[0].as_object().at("id"),
            messages[2].as_object().at("id"));
  EXPECT_EQ(newest.at("messages").as_array()[3].as_object().at("id"),
            messages[5].as_object().at("id"));
  ASSERT_TRUE(newest.at("next_before").is_int64()) << newest;
  EXPECT_EQ(newest.at("next_before"), messages[2].as_object().at("seq"));
  const json::object older = MemJson("/sessions/" + session + "/messages?limit=4&before=" +
                                     std::to_string(newest.at("next_before").as_int64()));
  ASSERT_EQ(older.at("messages").as_array().size(), 2u);
  EXPECT_EQ(older.at("messages").as_array()[0].as_object().at("content"), "un");
  EXPECT_EQ(older.at("messages").as_array()[1].as_object().at("id"),
            messages[1].as_object().at("id"));
  EXPECT_TRUE(older.at("next_before").is_null());

  // A message id is a cursor too, but only one of this session.
  const json::object by_id = MemJson("/sessions/" + session + "/messages?limit=2&before=" +
                                     S(messages[4].as_object().at("id")));
  ASSERT_EQ(by_id.at("messages").as_array().size(), 2u);
  EXPECT_EQ(by_id.at("messages").as_array()[0].as_object().at("content"), "deux");
  const std::string other_id =
      S(MemJson("/sessions/" + other + "/messages")["messages"].as_array()[0].as_object().at("id"));
  EXPECT_EQ(Mem("GET", "/sessions/" + session + "/messages?before=" + other_id).status, 400);
  EXPECT_EQ(Mem("GET", "/sessions/" + session + "/messages?before=nosuchmessage").status, 400);

  // Limits: clamped when huge, refused when not a positive integer.
  EXPECT_EQ(MemJson("/sessions/" + session + "/messages?limit=99999999999")["messages"]
                .as_array()
                .size(),
            6u);
  for (const char* limit : {"abc", "0", "-3", "2.5"}) {
    const HttpReply bad = Mem("GET", "/sessions/" + session + "/messages?limit=" + limit);
    EXPECT_EQ(bad.status, 400) << limit;
    EXPECT_THAT(S(JsonObject(bad)["error"]), HasSubstr("limit")) << limit;
  }
  EXPECT_EQ(Mem("GET", "/sessions?limit=abc").status, 400);
  EXPECT_EQ(Mem("GET", "/memories?limit=x").status, 400);
  EXPECT_EQ(Mem("GET", "/graph?limit=-1").status, 400);
  EXPECT_EQ(Mem("GET", "/search?q=un&limit=zero").status, 400);
  EXPECT_EQ(MemJson("/sessions?limit=1000000")["count"], 2);
}

TEST_F(MemoryE2eTest, AMessageIsReadEditedAndDeleted) {
  const std::string session = Chat("Texte original.");
  const json::array messages =
      MemJson("/sessions/" + session + "/messages")["messages"].as_array();
  ASSERT_EQ(messages.size(), 2u);
  const std::string id = S(messages[0].as_object().at("id"));

  const json::object one = MemJson("/messages/" + id);
  const json::object& message = one.at("message").as_object();
  EXPECT_EQ(message.at("content"), "Texte original.");
  EXPECT_EQ(message.at("session_id"), json::value(session));
  EXPECT_EQ(message.at("role"), "user");

  const HttpReply edited = Mem("PUT", "/messages/" + id, R"({"content":"Texte corrigé."})");
  ASSERT_EQ(edited.status, 200) << edited.body;
  EXPECT_EQ(JsonObject(edited)["message"].as_object()["content"], "Texte corrigé.");
  EXPECT_EQ(MemJson("/messages/" + id)["message"].as_object()["content"], "Texte corrigé.");
  EXPECT_EQ(MemJson("/search?q=corrig%C3%A9")["total"], 1) << "the index follows the edit";
  EXPECT_EQ(MemJson("/search?q=original")["total"], 0);
  EXPECT_EQ(Mem("PUT", "/messages/" + id, R"({"content":""})").status, 400);
  EXPECT_EQ(Mem("PUT", "/messages/" + id, R"({})").status, 400);
  EXPECT_EQ(Mem("PUT", "/messages/" + id, "content=x", "text/plain").status, 415);
  EXPECT_EQ(Mem("PUT", "/messages/nosuchid", R"({"content":"x"})").status, 404);

  ASSERT_EQ(Mem("DELETE", "/messages/" + id).status, 200);
  const HttpReply gone = Mem("GET", "/messages/" + id);
  EXPECT_EQ(gone.status, 404);
  EXPECT_EQ(Code(gone), "not_found");
  EXPECT_EQ(Mem("DELETE", "/messages/" + id).status, 404);
  EXPECT_EQ(MemJson("/sessions/" + session + "/messages")["messages"].as_array().size(), 1u);
}

TEST_F(MemoryE2eTest, MemoriesAreCreatedListedEditedAndDeleted) {
  const HttpReply created = Mem("POST", "/memories",
                                R"({"content":"Alice préfère le thé.","importance":0.8,)"
                                R"("metadata":{"source":"e2e"}})");
  ASSERT_EQ(created.status, 200) << created.body;
  const json::object memory = JsonObject(created)["memory"].as_object();
  const std::string id = S(memory.at("id"));
  EXPECT_EQ(memory.at("content"), "Alice préfère le thé.");
  EXPECT_EQ(memory.at("importance"), 0.8);
  EXPECT_EQ(memory.at("metadata").as_object().at("source"), "e2e");
  EXPECT_EQ(JsonObject(Mem("POST", "/memories", R"({"content":"Sans importance."})"))["memory"]
                .as_object()["importance"],
            0.5);

  EXPECT_EQ(MemJson("/memories")["count"], 2);
  EXPECT_EQ(MemJson("/memories/" + id)["memory"].as_object()["content"], "Alice préfère le thé.");
  EXPECT_EQ(Statistics()["total_memories"], 2);
  const json::object found = MemJson("/search?q=th%C3%A9");
  ASSERT_EQ(found.at("total"), 1);
  EXPECT_EQ(found.at("results").as_array()[0].as_object().at("type"), "memory");

  for (const char* body : {R"({"content":"x","importance":1.5})",
                           R"({"content":"x","importance":-0.1})",
                           R"({"content":"x","importance":"high"})", R"({"importance":0.3})",
                           R"({"content":"x","metadata":[1]})"}) {
    const HttpReply bad = Mem("POST", "/memories", body);
    EXPECT_EQ(bad.status, 400) << body;
    EXPECT_EQ(Code(bad), "invalid_argument") << body;
  }
  EXPECT_THAT(S(JsonObject(Mem("POST", "/memories", R"({"content":"x","importance":2})"))["error"]),
              HasSubstr("importance"));
  EXPECT_EQ(Mem("POST", "/memories", "x", "text/plain").status, 415);
  EXPECT_EQ(MemJson("/memories")["count"], 2) << "nothing refused was saved";

  const HttpReply edited = Mem("PUT", "/memories/" + id, R"({"importance":0.2})");
  ASSERT_EQ(edited.status, 200) << edited.body;
  EXPECT_EQ(JsonObject(edited)["memory"].as_object()["importance"], 0.2);
  EXPECT_EQ(JsonObject(edited)["memory"].as_object()["content"], "Alice préfère le thé.");
  EXPECT_EQ(Mem("PUT", "/memories/" + id, R"({"importance":7})").status, 400);
  EXPECT_EQ(Mem("PUT", "/memories/" + id, R"({})").status, 400) << "nothing to change";

  ASSERT_EQ(Mem("DELETE", "/memories/" + id).status, 200);
  EXPECT_EQ(Mem("GET", "/memories/" + id).status, 404);
  EXPECT_EQ(Mem("DELETE", "/memories/" + id).status, 404);
  EXPECT_EQ(Mem("PUT", "/memories/" + id, R"({"importance":0.1})").status, 404);
  EXPECT_EQ(MemJson("/memories")["count"], 1);
}

TEST_F(MemoryE2eTest, ConceptsRelationsAndTheGraph) {
  std::map<std::string, std::string> ids;
  for (const char* name : {"Rust", "Cargo", "Crates", "Python"}) {
    const HttpReply created =
        Mem("POST", "/concepts", std::string(R"({"name":")") + name + R"(","type":"tech"})");
    ASSERT_EQ(created.status, 200) << created.body;
    const json::object concept_obj = JsonObject(created)["concept"].as_object();
    EXPECT_EQ(concept_obj.at("name"), json::value(name));
    ids[name] = S(concept_obj.at("id"));
  }
  EXPECT_EQ(MemJson("/concepts")["count"], 4);
  EXPECT_EQ(Mem("POST", "/concepts", R"({"type":"tech"})").status, 400) << "name is required";
  EXPECT_EQ(Mem("POST", "/concepts", R"({"name":"X","confidence":2})").status, 400);

  auto relate = [&](const std::string& from_type, const std::string& from,
                    const std::string& to) {
    return Mem("POST", "/relations",
               R"({"from":{"type":")" + from_type + R"(","id":")" + from +
                   R"("},"rel":"RELATES_TO","to":{"type":"concept","id":")" + to +
                   R"("},"properties":{"strength":0.7}})");
  };
  const HttpReply rust_cargo = relate("concept", ids["Rust"], ids["Cargo"]);
  ASSERT_EQ(rust_cargo.status, 200) << rust_cargo.body;
  const json::object relation = JsonObject(rust_cargo)["relation"].as_object();
  EXPECT_EQ(relation.at("rel"), "RELATES_TO");
  EXPECT_EQ(relation.at("from").as_object().at("id"), json::value(ids["Rust"]));
  EXPECT_EQ(relation.at("to").as_object().at("id"), json::value(ids["Cargo"]));
  EXPECT_EQ(relation.at("strength"), 0.7);
  ASSERT_EQ(relate("concept", ids["Cargo"], ids["Crates"]).status, 200);

  const HttpReply mismatch = relate("message", ids["Rust"], ids["Cargo"]);
  EXPECT_EQ(mismatch.status, 400);
  EXPECT_EQ(S(JsonObject(mismatch)["error"]), "from.type must be concept for this rel");
  EXPECT_EQ(Mem("POST", "/relations", R"({"from":{"type":"concept","id":"a"},"rel":"LIKES",)"
                                      R"("to":{"type":"concept","id":"b"}})")
                .status,
            400);
  const HttpReply missing = relate("concept", ids["Rust"], "no-such-concept");
  EXPECT_EQ(missing.status, 404) << missing.body;
  EXPECT_EQ(Code(missing), "not_found");

  // Related: by name (any case) or id, depth 1..5.
  const json::object near = MemJson("/concepts/rust/related?depth=1");
  EXPECT_EQ(near.at("concept").as_object().at("id"), json::value(ids["Rust"]));
  ASSERT_EQ(near.at("total"), 1);
  EXPECT_EQ(near.at("related").as_array()[0].as_object().at("name"), "Cargo");
  const json::object far = MemJson("/concepts/" + ids["Rust"] + "/related?depth=5");
  ASSERT_EQ(far.at("total"), 2);
  EXPECT_EQ(far.at("related").as_array()[1].as_object().at("name"), "Crates");
  EXPECT_EQ(far.at("related").as_array()[1].as_object().at("depth"), 2);
  for (const char* depth : {"6", "0", "deep"}) {
    EXPECT_EQ(Mem("GET", std::string("/concepts/Rust/related?depth=") + depth).status, 400)
        << depth;
  }
  EXPECT_EQ(Mem("GET", "/concepts/Nothing/related").status, 404);

  const json::object details = MemJson("/concepts/details?name=cargo");
  EXPECT_EQ(details.at("concept").as_object().at("name"), "Cargo");
  EXPECT_EQ(details.at("relations").as_array().size(), 2u);
  EXPECT_TRUE(details.contains("mention_count"));
  EXPECT_EQ(Mem("GET", "/concepts/details").status, 400);
  EXPECT_EQ(Mem("GET", "/concepts/details?name=Nothing").status, 404);

  const json::object graph = MemJson("/graph");
  EXPECT_EQ(graph.at("nodes").as_array().size(), 4u);
  ASSERT_EQ(graph.at("edges").as_array().size(), 2u);
  const json::object& node = graph.at("nodes").as_array()[0].as_object();
  for (const char* key : {"id", "type", "label"}) EXPECT_TRUE(node.contains(key)) << key;
  const json::object& edge = graph.at("edges").as_array()[0].as_object();
  EXPECT_EQ(edge.at("rel"), "RELATES_TO");
  EXPECT_TRUE(edge.contains("from") && edge.contains("to") && edge.contains("id"));
  EXPECT_EQ(MemJson("/graph?limit=1")["nodes"].as_array().size(), 1u);

  const HttpReply edited = Mem("PUT", "/concepts/" + ids["Python"], R"({"confidence":0.25})");
  ASSERT_EQ(edited.status, 200) << edited.body;
  EXPECT_EQ(JsonObject(edited)["concept"].as_object()["confidence"], 0.25);
  EXPECT_EQ(MemJson("/concepts/" + ids["Python"])["concept"].as_object()["confidence"], 0.25);
  EXPECT_EQ(Mem("PUT", "/concepts/" + ids["Python"], R"({"confidence":3})").status, 400);
  EXPECT_EQ(Mem("PUT", "/concepts/" + ids["Python"], R"({})").status, 400);

  // Deleting a relation, then a concept.
  const std::string relation_id = S(relation.at("id"));
  ASSERT_EQ(Mem("DELETE", "/relations/" + relation_id).status, 200);
  EXPECT_EQ(Mem("GET", "/relations/" + relation_id).status, 404);
  EXPECT_EQ(Mem("DELETE", "/relations/" + relation_id).status, 404);
  EXPECT_EQ(MemJson("/concepts/Rust/related")["total"], 0);
  ASSERT_EQ(Mem("DELETE", "/concepts/" + ids["Python"]).status, 200);
  EXPECT_EQ(Mem("GET", "/concepts/" + ids["Python"]).status, 404);
  EXPECT_EQ(Mem("DELETE", "/concepts/" + ids["Python"]).status, 404);
  EXPECT_EQ(MemJson("/concepts")["count"], 3);
}

TEST_F(MemoryE2eTest, ClearNeedsConfirmationAndTakesASnapshotFirst) {
  Chat("À effacer.");
  ASSERT_EQ(Mem("POST", "/memories", R"({"content":"Un souvenir."})").status, 200);
  ASSERT_EQ(Mem("POST", "/concepts", R"({"name":"Effacement"})").status, 200);

  const json::object before = MemJson("/health");
  EXPECT_EQ(before.at("integrity"), "ok");
  EXPECT_TRUE(before.at("snapshots").as_array().empty()) << before;
  EXPECT_TRUE(before.at("retention").as_object().contains("max_messages"));
  EXPECT_TRUE(before.contains("last_recovery"));

  for (const char* body : {"", R"({})", R"({"confirm":false})", R"({"confirm":"yes"})"}) {
    const HttpReply refused = Mem("DELETE", "/clear", body);
    EXPECT_EQ(refused.status, 400) << body << ": " << refused.body;
    EXPECT_THAT(S(JsonObject(refused)["error"]), HasSubstr("confirm")) << body;
  }
  EXPECT_EQ(Statistics()["total_messages"], 2) << "nothing cleared without confirm";

  const HttpReply cleared = Mem("DELETE", "/clear", R"({"confirm":true})");
  ASSERT_EQ(cleared.status, 200) << cleared.body;
  const std::string snapshot = S(JsonObject(cleared)["snapshot"]);
  EXPECT_THAT(snapshot, EndsWith(".db"));
  EXPECT_EQ(snapshot.find('/'), std::string::npos) << "a file name, not a path";
  const json::object stats = Statistics();
  EXPECT_EQ(stats.at("total_messages"), 0);
  EXPECT_EQ(stats.at("total_sessions"), 0);
  EXPECT_EQ(stats.at("total_memories"), 0);
  EXPECT_EQ(stats.at("total_concepts"), 0);
  EXPECT_EQ(MemJson("/sessions")["count"], 0);
  const json::array snapshots = MemJson("/health")["snapshots"].as_array();
  ASSERT_EQ(snapshots.size(), 1u);
  EXPECT_EQ(snapshots[0], json::value(snapshot));
}

TEST_F(MemoryE2eTest, ExportClearImportRestoresEverythingAndImportIsIdempotent) {
  const std::string session = Chat("Le mot de passe est girafe.");
  Chat("Et le code est 42.", session);
  ASSERT_EQ(Mem("POST", "/memories", R"({"content":"Souvenir exporté.","importance":0.9})").status,
            200);
  const std::string a =
      S(JsonObject(Mem("POST", "/concepts", R"({"name":"Girafe"})"))["concept"].as_object()["id"]);
  const std::string b =
      S(JsonObject(Mem("POST", "/concepts", R"({"name":"Savane"})"))["concept"].as_object()["id"]);
  ASSERT_EQ(Mem("POST", "/relations", R"({"from":{"type":"concept","id":")" + a +
                                          R"("},"rel":"RELATES_TO","to":{"type":"concept","id":")" +
                                          b + R"("}})")
                .status,
            200);
  json::object before = Statistics();
  const json::value girafe_hits = MemJson("/search?q=girafe")["total"];
  ASSERT_GE(girafe_hits.as_int64(), 2) << "the message and the concept";

  const HttpReply exported = Mem("GET", "/export");
  ASSERT_EQ(exported.status, 200);
  EXPECT_EQ(exported.content_type, "application/x-ndjson");
  ASSERT_GE(std::count(exported.body.begin(), exported.body.end(), '\n'), 7) << exported.body;

  ASSERT_EQ(Mem("DELETE", "/clear", R"({"confirm":true})").status, 200);
  ASSERT_EQ(Statistics()["total_messages"], 0);

  EXPECT_EQ(Mem("POST", "/import", exported.body, "text/plain").status, 415);
  EXPECT_EQ(Mem("POST", "/import", "\n", "application/x-ndjson").status, 400);
  const HttpReply broken = Mem("POST", "/import", exported.body + "{oops\n", "application/x-ndjson");
  EXPECT_EQ(broken.status, 400);
  EXPECT_THAT(S(JsonObject(broken)["error"]), HasSubstr("line"));
  EXPECT_EQ(Statistics()["total_messages"], 0) << "all or nothing";

  const HttpReply imported = Mem("POST", "/import", exported.body, "application/x-ndjson");
  ASSERT_EQ(imported.status, 200) << imported.body;
  const json::object report = JsonObject(imported);
  EXPECT_GT(report.at("inserted").as_int64(), 0);
  EXPECT_EQ(report.at("skipped"), 0);
  json::object after = Statistics();
  before.erase("db_bytes");
  after.erase("db_bytes");
  EXPECT_EQ(after, before);
  EXPECT_EQ(MemJson("/search?q=girafe")["total"], girafe_hits) << "the index was rebuilt";
  EXPECT_EQ(MemJson("/sessions/" + session + "/messages")["messages"].as_array().size(), 4u);
  EXPECT_EQ(MemJson("/concepts/Girafe/related")["total"], 1);

  const HttpReply again = Mem("POST", "/import", exported.body, "application/jsonl");
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(JsonObject(again)["inserted"], 0);
  EXPECT_EQ(JsonObject(again)["skipped"], report.at("inserted")) << "every line seen again";
  json::object twice = Statistics();
  twice.erase("db_bytes");
  EXPECT_EQ(twice, before);
}

TEST_F(MemoryE2eTest, HostileIdsAndParametersAreRefusedOrNotFoundNeverFileAccess) {
  Chat("Bonjour.");
  // Ids are only looked up in the database: traversal is a plain 404 whatever the route.
  for (const char* path :
       {"/messages/..%2F..%2F..%2Fetc%2Fpasswd", "/memories/..%2Fmemory.db",
        "/sessions/..%2F..%2Flocrit.addr", "/concepts/%2Fetc%2Fpasswd",
        "/sessions/..%2F..%2Fetc%2Fpasswd/messages",
        "/concepts/..%2F..%2Fetc/related"}) {
    const HttpReply reply = Mem("GET", path);
    EXPECT_EQ(reply.status, 404) << path << ": " << reply.body;
    EXPECT_EQ(Code(reply), "not_found") << path;
    EXPECT_THAT(reply.body, ::testing::Not(HasSubstr("root:"))) << path;
  }
  EXPECT_EQ(Mem("DELETE", "/messages/..%2F..%2Fmemory.db").status, 404);
  // Relation ids have a form of their own (<type>:<number>): anything else is refused unread.
  const HttpReply relation = Mem("GET", "/relations/..%2F..%2F..");
  EXPECT_EQ(relation.status, 400) << relation.body;
  EXPECT_THAT(S(JsonObject(relation)["error"]), HasSubstr("relation id"));
  EXPECT_EQ(Mem("GET", "/concepts/details?name=..%2F..%2Fetc%2Fpasswd").status, 404);

  // Control characters and over-long ids: 400 naming the id.
  for (const char* path : {"/messages/a%00b", "/memories/a%0Ab", "/sessions/%1B%5B31m",
                           "/concepts/x%7F", "/search?q=x&session_id=a%01"}) {
    const HttpReply reply = Mem("GET", path);
    EXPECT_EQ(reply.status, 400) << path << ": " << reply.body;
    EXPECT_EQ(Code(reply), "invalid_argument") << path;
  }
  EXPECT_THAT(S(JsonObject(Mem("GET", "/messages/a%00b"))["error"]), HasSubstr("message id"));
  EXPECT_EQ(Mem("GET", "/messages/" + std::string(129, 'a')).status, 400);
  EXPECT_EQ(Mem("GET", "/messages/%FF%FE").status, 400) << "not UTF-8";

  // Limits: huge ones are clamped, not refused; non-numeric ones are refused.
  const json::object clamped = MemJson("/search?q=Bonjour&limit=1000000000000");
  EXPECT_EQ(clamped.at("total"), 1);
  EXPECT_EQ(MemJson("/summary?limit=999999")["recent_messages"].as_array().size(), 2u);
  EXPECT_EQ(Mem("GET", "/summary?limit=lots").status, 400);
  EXPECT_EQ(Mem("GET", "/concepts?limit=1e3").status, 400);

  // Unknown routes under memory and an unknown Locrit.
  EXPECT_EQ(Mem("GET", "/nothing").status, 404);
  EXPECT_EQ(Call("GET", "/api/locrits/Nobody/memory/stats").status, 404);
  EXPECT_EQ(Call("GET", "/api/locrits/..%2F..%2Fetc/memory/stats").status, 404);
  // The server is still well and the data directory holds nothing new at its top.
  EXPECT_EQ(Call("GET", "/healthz").status, 200);
  EXPECT_EQ(Statistics()["total_messages"], 2);
}

// A server with an admin token: callers without it are public.
class PublicMemoryE2eTest : public MemoryE2eTest {
 protected:
  void SetUp() override { Start({{"LOCRIT_ADMIN_TOKEN", kAdminToken}}); }

  HttpReply Operator(const std::string& method, const std::string& path,
                     const std::string& body = "") {
    return Call(method, path, body, "", {std::string("Authorization: Bearer ") + kAdminToken});
  }
  HttpReply Public(const std::string& method, const std::string& path,
                   const std::string& body = "") {
    return Call(method, path, body);
  }
  // A Locrit with these memory access flags and 7 memories about apples.
  void CreateLocrit(const std::string& name, bool quick, bool full) {
    json::object body{{"name", name},
                      {"description", "shares " + name},
                      {"access_to", {{"quick_memory", quick}, {"full_memory", full}}}};
    const HttpReply created = Operator("POST", "/api/locrits", json::serialize(body));
    ASSERT_EQ(created.status, 201) << created.body;
    for (int i = 0; i < 7; ++i) {
      ASSERT_EQ(Operator("POST", "/api/locrits/" + name + "/memory/memories",
                         R"({"content":"pomme numéro )" + std::to_string(i) + R"("})")
                    .status,
                200);
    }
  }
};

TEST_F(PublicMemoryE2eTest, QuickAccessSeesStatsAndAtMostFiveSearchResults) {
  CreateLocrit("Quick", /*quick=*/true, /*full=*/false);
  const HttpReply stats = Public("GET", "/api/locrits/Quick/memory/stats");
  ASSERT_EQ(stats.status, 200) << stats.body;
  EXPECT_EQ(JsonObject(stats)["access_level"], "quick");
  EXPECT_EQ(JsonObject(stats)["statistics"].as_object()["total_memories"], 7);

  const HttpReply search = Public("GET", "/api/locrits/Quick/memory/search?q=pomme&limit=50");
  ASSERT_EQ(search.status, 200) << search.body;
  EXPECT_EQ(JsonObject(search)["access_level"], "quick");
  EXPECT_EQ(JsonObject(search)["results"].as_array().size(), 5u);
  const HttpReply as_operator =
      Operator("GET", "/api/locrits/Quick/memory/search?q=pomme&limit=50");
  EXPECT_EQ(JsonObject(as_operator)["results"].as_array().size(), 7u) << "the cap is the caller's";

  for (const char* path : {"/summary", "/sessions", "/memories", "/graph", "/export", "/health"}) {
    const HttpReply refused = Public("GET", std::string("/api/locrits/Quick/memory") + path);
    EXPECT_EQ(refused.status, 403) << path;
    EXPECT_EQ(Code(refused), "forbidden") << path;
  }
  EXPECT_EQ(Public("POST", "/api/locrits/Quick/memory/memories", R"({"content":"x"})").status, 401);
}

TEST_F(PublicMemoryE2eTest, FullAccessReadsEverythingButCannotWrite) {
  CreateLocrit("Full", /*quick=*/false, /*full=*/true);
  const std::string base = "/api/locrits/Full/memory";
  const HttpReply stats = Public("GET", base + "/stats");
  ASSERT_EQ(stats.status, 200) << stats.body;
  EXPECT_EQ(JsonObject(stats)["access_level"], "full");
  const HttpReply memories = Public("GET", base + "/memories");
  ASSERT_EQ(memories.status, 200) << memories.body;
  EXPECT_EQ(JsonObject(memories)["count"], 7);
  const std::string id = S(JsonObject(memories)["memories"].as_array()[0].as_object()["id"]);
  for (const std::string& path : std::vector<std::string>{"/summary", "/sessions", "/concepts", "/graph",
                                 "/memories/" + id, "/search?q=pomme"}) {
    EXPECT_EQ(Public("GET", base + path).status, 200) << path;
  }
  EXPECT_EQ(JsonObject(Public("GET", base + "/search?q=pomme&limit=50"))["results"].as_array().size(),
            7u);

  struct Write {
    const char* method;
    std::string path;
    const char* body;
  };
  const Write writes[] = {{"POST", "/memories", R"({"content":"intrus"})"},
                          {"PUT", "/memories/" + id, R"({"importance":0.1})"},
                          {"DELETE", "/memories/" + id, ""},
                          {"POST", "/concepts", R"({"name":"Intrus"})"},
                          {"DELETE", "/clear", R"({"confirm":true})"},
                          {"POST", "/import", "{}"}};
  for (const Write& w : writes) {
    const HttpReply refused = Public(w.method, base + w.path, w.body);
    EXPECT_EQ(refused.status, 401) << w.method << " " << w.path << ": " << refused.body;
    EXPECT_THAT(refused.headers, HasSubstr("WWW-Authenticate: Bearer")) << w.path;
  }
  EXPECT_EQ(JsonObject(Operator("GET", base + "/stats"))["statistics"].as_object()["total_memories"],
            7)
      << "no write went through";
}

TEST_F(PublicMemoryE2eTest, NoAccessIsForbiddenAndSoIsAnInactiveLocrit) {
  CreateLocrit("Closed", /*quick=*/false, /*full=*/false);
  for (const char* path : {"/stats", "/search?q=pomme", "/summary"}) {
    const HttpReply refused = Public("GET", std::string("/api/locrits/Closed/memory") + path);
    EXPECT_EQ(refused.status, 403) << path;
    EXPECT_EQ(Code(refused), "forbidden") << path;
  }
  EXPECT_EQ(Operator("GET", "/api/locrits/Closed/memory/stats").status, 200);

  CreateLocrit("Sleepy", /*quick=*/true, /*full=*/true);
  ASSERT_EQ(Public("GET", "/api/locrits/Sleepy/memory/stats").status, 200);
  ASSERT_EQ(Operator("POST", "/api/locrits/Sleepy/toggle").status, 200);
  EXPECT_EQ(Public("GET", "/api/locrits/Sleepy/memory/stats").status, 403);
}

// ---- Conversations ----

TEST_F(MemoryE2eTest, AConversationLivesThroughEveryRoute) {
  const HttpReply created =
      Call("POST", "/api/conversations/create",
           R"({"locrit_name":"bob technique","user_id":"alice","metadata":{"app":"e2e"}})");
  ASSERT_EQ(created.status, 201) << created.body;
  const json::object conversation = JsonObject(created);
  EXPECT_EQ(conversation.at("success"), true);
  EXPECT_EQ(conversation.at("locrit_name"), "Bob Technique");
  const std::string id = S(conversation.at("conversation_id"));
  EXPECT_EQ(id.size(), 32u);
  EXPECT_EQ(conversation.at("session_id"), json::value(id));
  EXPECT_TRUE(conversation.contains("created_at"));

  for (int turn = 1; turn <= 3; ++turn) {
    const HttpReply answer = Call("POST", "/api/conversations/" + id + "/message",
                                  R"({"message":"Tour )" + std::to_string(turn) + R"("})");
    ASSERT_EQ(answer.status, 200) << answer.body;
    const json::object body = JsonObject(answer);
    EXPECT_EQ(body.at("conversation_id"), json::value(id));
    EXPECT_EQ(body.at("message_count"), 2 * turn);
    EXPECT_EQ(body.at("session_id"), json::value(id));
    EXPECT_TRUE(body.at("response").is_string());
  }

  const HttpReply read = Call("GET", "/api/conversations/" + id + "?limit=3");
  ASSERT_EQ(read.status, 200) << read.body;
  const json::object page = JsonObject(read);
  EXPECT_EQ(page.at("message_count"), 6);
  EXPECT_EQ(page.at("user_id"), "alice");
  EXPECT_EQ(page.at("locrit_name"), "Bob Technique");
  const json::array& messages = page.at("messages").as_array();
  ASSERT_EQ(messages.size(), 3u) << "the newest 3";
  EXPECT_EQ(messages[0].as_object().at("role"), "assistant");
  EXPECT_EQ(messages[1].as_object().at("content"), "Tour 3");
  EXPECT_EQ(JsonObject(Call("GET", "/api/conversations/" + id))["messages"].as_array().size(), 6u);
  EXPECT_EQ(Call("GET", "/api/conversations/" + id + "?limit=0").status, 400);
  EXPECT_EQ(Call("GET", "/api/conversations/" + id + "?limit=abc").status, 400);

  const HttpReply info = Call("GET", "/api/conversations/" + id + "/info");
  ASSERT_EQ(info.status, 200) << info.body;
  const json::object meta = JsonObject(info)["conversation"].as_object();
  EXPECT_EQ(meta.at("conversation_id"), json::value(id));
  EXPECT_EQ(meta.at("message_count"), 6);
  EXPECT_EQ(meta.at("metadata").as_object().at("app"), "e2e");
  EXPECT_FALSE(meta.contains("messages"));

  // Listing by user and by Locrit, newest activity first.
  const HttpReply other = Call("POST", "/api/conversations/create",
                               R"({"locrit_name":"Bob Technique","user_id":"bruno"})");
  ASSERT_EQ(other.status, 201) << other.body;
  const std::string other_id = S(JsonObject(other)["conversation_id"]);
  const json::object alice = JsonObject(Call("GET", "/api/conversations?user_id=alice"));
  EXPECT_EQ(alice.at("success"), true);
  ASSERT_EQ(alice.at("count"), 1);
  EXPECT_EQ(alice.at("conversations").as_array()[0].as_object().at("conversation_id"), json::value(id));
  const json::object bob =
      JsonObject(Call("GET", "/api/conversations?locrit_name=Bob%20Technique"));
  ASSERT_EQ(bob.at("count"), 2);
  EXPECT_EQ(bob.at("conversations").as_array()[0].as_object().at("conversation_id"), json::value(other_id));
  EXPECT_EQ(JsonObject(Call("GET", "/api/conversations?user_id=nobody"))["count"], 0);
  EXPECT_EQ(Call("GET", "/api/conversations?locrit_name=Nobody").status, 404);

  // Delete keeps the messages in memory; purge deletes the session too.
  ASSERT_EQ(Call("DELETE", "/api/conversations/" + id).status, 200);
  EXPECT_EQ(Call("GET", "/api/conversations/" + id).status, 404);
  EXPECT_EQ(Call("DELETE", "/api/conversations/" + id).status, 404);
  EXPECT_EQ(MemJson("/sessions/" + id + "/messages")["messages"].as_array().size(), 6u);

  ASSERT_EQ(Call("POST", "/api/conversations/" + other_id + "/message", R"({"message":"Salut"})")
                .status,
            200);
  EXPECT_EQ(Call("DELETE", "/api/conversations/" + other_id + "?purge=maybe").status, 400);
  ASSERT_EQ(Call("DELETE", "/api/conversations/" + other_id + "?purge=true").status, 200);
  EXPECT_EQ(Call("GET", "/api/conversations/" + other_id + "/info").status, 404);
  EXPECT_EQ(Mem("GET", "/sessions/" + other_id).status, 404);
  EXPECT_EQ(JsonObject(Call("GET", "/api/conversations"))["count"], 0);
}

TEST_F(MemoryE2eTest, ConversationsRefuseUnknownIdsAndBadBodies) {
  for (const std::string& path : std::vector<std::string>{"/api/conversations/0123456789abcdef0123456789abcdef",
                                 "/api/conversations/nope/info",
                                 "/api/conversations/..%2F..%2Fconversations.db"}) {
    const HttpReply reply = Call("GET", path);
    EXPECT_EQ(reply.status, 404) << path;
    EXPECT_EQ(Code(reply), "not_found") << path;
  }
  EXPECT_EQ(Call("POST", "/api/conversations/nope/message", R"({"message":"x"})").status, 404);
  EXPECT_EQ(Call("DELETE", "/api/conversations/nope").status, 404);

  struct Bad {
    std::string body;
    std::string content_type;
    long status;
  };
  const Bad creates[] = {{R"({})", "", 400},
                         {R"({"locrit_name":""})", "", 400},
                         {R"({"locrit_name":42})", "", 400},
                         {R"({"locrit_name":"Bob Technique","user_id":""})", "", 400},
                         {R"({"locrit_name":"Bob Technique","metadata":"x"})", "", 400},
                         {R"([1,2])", "", 400},
                         {R"({"locrit_name":)", "", 400},
                         {"locrit_name=Bob", "application/x-www-form-urlencoded", 415},
                         {R"({"locrit_name":"Nobody"})", "", 404}};
  for (const Bad& bad : creates) {
    const HttpReply reply =
        Call("POST", "/api/conversations/create", bad.body, bad.content_type);
    EXPECT_EQ(reply.status, bad.status) << bad.body << ": " << reply.body;
    EXPECT_FALSE(Code(reply).empty()) << bad.body;
  }
  EXPECT_EQ(JsonObject(Call("GET", "/api/conversations"))["count"], 0) << "none was created";

  const std::string id = S(JsonObject(Call("POST", "/api/conversations/create",
                                           R"({"locrit_name":"Bob Technique"})"))["conversation_id"]);
  ASSERT_FALSE(id.empty());
  const Bad messages[] = {{R"({})", "", 400},
                          {R"({"message":""})", "", 400},
                          {R"({"message":7})", "", 400},
                          {"message=hi", "text/plain", 415}};
  for (const Bad& bad : messages) {
    const HttpReply reply =
        Call("POST", "/api/conversations/" + id + "/message", bad.body, bad.content_type);
    EXPECT_EQ(reply.status, bad.status) << bad.body << ": " << reply.body;
  }
  EXPECT_EQ(JsonObject(Call("GET", "/api/conversations/" + id + "/info"))["conversation"]
                .as_object()["message_count"],
            0)
      << "no refused message was saved";
  EXPECT_EQ(Call("PUT", "/api/conversations/" + id).status, 405);
  EXPECT_EQ(Call("GET", "/api/conversations/" + id + "/message").status, 405);
}

}  // namespace
}  // namespace locrit

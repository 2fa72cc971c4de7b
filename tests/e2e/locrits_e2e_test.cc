// End to end: the operator's management of Locrits through the real `locrit serve` — create,
// read, update, rename, toggle, delete (with and without purging memory), the model listing —
// and what must hold on disk and across a restart: a rename never moves memory, a deleted
// Locrit's directory is never handed to a new one, hostile names touch nothing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <boost/json.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/support/e2e_http.h"
#include "tests/support/fake_llm_server.h"
#include "tests/support/locrit_process.h"
#include "tests/support/temp_dir.h"

namespace locrit {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using ::locrit::testing::FakeLlmServer;
using ::locrit::testing::HttpCall;
using ::locrit::testing::HttpReply;
using ::locrit::testing::JsonObject;
using ::locrit::testing::LocritServer;
using ::locrit::testing::TempDir;
using ::testing::HasSubstr;

std::string S(const json::value& v) { return v.is_string() ? std::string(v.get_string()) : ""; }

class LocritsE2eTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(); }

  void Start() {
    server_ = std::make_unique<LocritServer>(LOCRIT_BINARY, data_, dir_.File("server.log"),
                                             std::vector<std::string>{"--no-example"});
    base_ = server_->WaitReady();
    ASSERT_FALSE(base_.empty()) << server_->Log();
  }
  void Restart() {
    ASSERT_EQ(server_->Stop(SIGTERM), 0) << server_->Log();
    Start();
  }

  HttpReply Call(const std::string& method, const std::string& path, const std::string& body = "",
                 const std::string& content_type = "") {
    HttpCall call;
    call.method = method;
    call.url = base_ + path;
    call.body = body;
    call.content_type = content_type;
    return locrit::testing::Send(call);
  }
  // The error code of a JSON error reply ("" when it is not one).
  std::string Code(const HttpReply& reply) { return S(JsonObject(reply)["code"]); }

  // Every directory under <data>/locrits.
  std::vector<std::string> MemoryDirs() const {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(data_ / "locrits", ec)) {
      if (entry.is_directory()) out.push_back(entry.path().filename().string());
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  TempDir dir_;
  fs::path data_ = dir_.path() / "data";
  std::unique_ptr<LocritServer> server_;
  std::string base_;
};

TEST_F(LocritsE2eTest, ALocritLivesThroughEveryRouteAndItsMemoryFollowsItsName) {
  const HttpReply empty = Call("GET", "/api/locrits");
  ASSERT_EQ(empty.status, 200) << empty.body;
  EXPECT_EQ(JsonObject(empty)["count"], 0) << "--no-example";

  // Create: 201 with the defaults of API.md, through both paths.
  const HttpReply created =
      Call("POST", "/api/locrits", R"({"name":"Élodie","description":"Une guide."})");
  ASSERT_EQ(created.status, 201) << created.body;
  json::object elodie = JsonObject(created)["locrit"].as_object();
  EXPECT_EQ(elodie["name"], "Élodie");
  EXPECT_EQ(elodie["active"], true);
  EXPECT_EQ(elodie["llm"].as_object()["provider"], "recall") << "no LLM configured";
  EXPECT_EQ(elodie["open_to"].as_object()["internet"], false);
  EXPECT_EQ(elodie["access_to"].as_object()["full_memory"], false);
  EXPECT_EQ(elodie["memory"].as_object()["context_messages"], 20);
  EXPECT_EQ(Call("POST", "/api/create-locrit", R"({"name":"Zed","description":"z"})").status, 201);
  const HttpReply duplicate =
      Call("POST", "/api/locrits", R"({"name":"éLODIE","description":"again"})");
  EXPECT_EQ(duplicate.status, 409) << duplicate.body;
  EXPECT_EQ(Code(duplicate), "conflict");
  EXPECT_EQ(Call("POST", "/api/locrits", R"({"name":"NoDescription"})").status, 400);
  EXPECT_EQ(Call("POST", "/api/locrits", "name=x", "text/plain").status, 415);

  // The Locrit chats, and its memory lives in the directory named at creation.
  const HttpReply chat =
      Call("POST", "/api/locrits/%C3%89lodie/chat", R"({"message":"Je m'appelle Alice."})");
  ASSERT_EQ(chat.status, 200) << chat.body;
  const std::string session = S(JsonObject(chat)["session_id"]);
  ASSERT_EQ(MemoryDirs(), (std::vector<std::string>{"elodie"}));

  // Update: only the fields sent change; the config alias answers the same.
  const HttpReply patched = Call("PATCH", "/api/locrits/%C3%A9lodie",
                                 R"({"description":"La guide.","open_to":{"internet":true}})");
  ASSERT_EQ(patched.status, 200) << patched.body;
  const HttpReply config = Call("GET", "/api/locrits/%C3%89lodie/config");
  ASSERT_EQ(config.status, 200);
  json::object after = JsonObject(config)["locrit"].as_object();
  EXPECT_EQ(after["description"], "La guide.");
  EXPECT_EQ(after["open_to"].as_object()["internet"], true);
  EXPECT_EQ(after["open_to"].as_object()["humans"], true);
  const HttpReply wrong_type = Call("PUT", "/api/locrits/%C3%89lodie/config", R"({"active":"yes"})");
  EXPECT_EQ(wrong_type.status, 400);
  EXPECT_THAT(S(JsonObject(wrong_type)["error"]), HasSubstr("active"));

  // Rename: the memory follows the new name and stays where it was.
  const HttpReply renamed =
      Call("POST", "/api/locrits/%C3%89lodie/rename", R"({"new_name":"Elo"})");
  ASSERT_EQ(renamed.status, 200) << renamed.body;
  EXPECT_EQ(JsonObject(renamed)["old_name"], "Élodie");
  EXPECT_EQ(JsonObject(renamed)["new_name"], "Elo");
  EXPECT_EQ(Call("GET", "/api/locrits/%C3%89lodie").status, 404);
  EXPECT_EQ(Call("POST", "/api/locrits/Elo/rename", R"({"new_name":"zed"})").status, 409);
  const HttpReply history = Call("GET", "/api/locrits/Elo/memory/sessions/" + session + "/messages");
  ASSERT_EQ(history.status, 200) << history.body;
  ASSERT_EQ(JsonObject(history)["messages"].as_array().size(), 2u);
  EXPECT_EQ(JsonObject(history)["messages"].as_array()[0].as_object()["content"],
            "Je m'appelle Alice.");
  EXPECT_EQ(MemoryDirs(), (std::vector<std::string>{"elodie"}));

  // Toggle: an inactive Locrit refuses chat before saving anything; toggling again reopens it.
  const HttpReply off = Call("POST", "/api/locrits/Elo/toggle");
  ASSERT_EQ(off.status, 200) << off.body;
  EXPECT_EQ(JsonObject(off)["active"], false);
  EXPECT_EQ(Call("POST", "/api/locrits/Elo/chat", R"({"message":"là ?"})").status, 403);

  // All of it survives a restart.
  Restart();
  const HttpReply elo = Call("GET", "/api/locrits/elo");
  ASSERT_EQ(elo.status, 200) << elo.body;
  EXPECT_EQ(JsonObject(elo)["locrit"].as_object()["active"], false);
  EXPECT_EQ(JsonObject(elo)["locrit"].as_object()["description"], "La guide.");
  EXPECT_EQ(JsonObject(Call("POST", "/api/locrits/Elo/toggle"))["active"], true);
  EXPECT_EQ(Call("POST", "/api/locrits/Elo/chat",
                 R"({"message":"Comment je m'appelle ?","session_id":")" + session + "\"}")
                .status,
            200);

  // Delete without purge keeps the memory on disk; with purge it is gone. A new Locrit of the
  // same name never gets the old directory.
  const HttpReply zed_deleted = Call("DELETE", "/api/locrits/Zed");
  ASSERT_EQ(zed_deleted.status, 200) << zed_deleted.body;
  EXPECT_EQ(JsonObject(zed_deleted)["memory_purged"], false);
  EXPECT_EQ(Call("GET", "/api/locrits/Zed").status, 404);
  const HttpReply purged = Call("POST", "/api/locrits/Elo/delete?purge_memory=true");
  ASSERT_EQ(purged.status, 200) << purged.body;
  EXPECT_EQ(JsonObject(purged)["memory_purged"], true);
  EXPECT_EQ(MemoryDirs(), std::vector<std::string>{});
  EXPECT_EQ(Call("DELETE", "/api/locrits/Elo").status, 404);
  EXPECT_EQ(Call("DELETE", "/api/locrits/Zed?purge_memory=maybe").status, 404)
      << "the Locrit is looked up first";

  ASSERT_EQ(Call("POST", "/api/locrits", R"({"name":"Élodie","description":"Neuve."})").status,
            201);
  ASSERT_EQ(Call("POST", "/api/locrits/%C3%89lodie/chat", R"({"message":"Qui suis-je ?"})").status,
            200);
  const std::vector<std::string> dirs = MemoryDirs();
  ASSERT_EQ(dirs.size(), 1u);
  EXPECT_NE(dirs[0], "elodie") << "a deleted Locrit's directory is never assigned again";
  const HttpReply fresh = Call("GET", "/api/locrits/%C3%89lodie/memory/stats");
  ASSERT_EQ(fresh.status, 200) << fresh.body;
  EXPECT_EQ(JsonObject(fresh)["statistics"].as_object()["total_messages"], 2)
      << "nothing of the purged Locrit";
}

TEST_F(LocritsE2eTest, HostileNamesAreRefusedAndTouchNothingOutsideTheDataDirectory) {
  const fs::path outside = dir_.path() / "outside";
  fs::create_directories(outside);
  const std::vector<std::string> bodies = {
      R"({"name":"../outside","description":"d"})",
      R"({"name":"..\\outside","description":"d"})",
      R"({"name":"a\u0000b","description":"d"})",
      R"({"name":"tab\there","description":"d"})",
      R"({"name":" lead","description":"d"})",
      R"({"name":"","description":"d"})",
      R"({"name":")" + std::string(65, 'x') + R"(","description":"d"})",
      R"({"name":7,"description":"d"})",
      R"({"name":"ok","description":"d","memory":{"context_messages":-1}})",
      R"({"name":"ok","description":"d","llm":{"provider":"gpt"}})",
      R"({"name":"ok","description":"d","llm":{"provider":"openai"},"model":"m"})",
      "{\"name\":\"bad\xff\",\"description\":\"d\"}",
      R"([1,2])",
      R"({"name":"ok",)",
  };
  for (const std::string& body : bodies) {
    const HttpReply reply = Call("POST", "/api/locrits", body);
    EXPECT_EQ(reply.status, 400) << body << " → " << reply.body;
    EXPECT_EQ(Code(reply), "invalid_argument") << body;
  }
  // Only a name given to nobody: the paths in requests are names, never file paths.
  for (const char* path : {"/api/locrits/..%2Foutside", "/api/locrits/%2e%2e", "/api/locrits/a%00b"}) {
    const HttpReply reply = Call("DELETE", std::string(path) + "?purge_memory=true");
    EXPECT_TRUE(reply.status == 404 || reply.status == 400) << path << " → " << reply.status;
  }
  const HttpReply rename = Call("POST", "/api/locrits", R"({"name":"Ok","description":"d"})");
  ASSERT_EQ(rename.status, 201);
  EXPECT_EQ(Call("POST", "/api/locrits/Ok/rename", R"({"new_name":"../../x"})").status, 400);
  EXPECT_EQ(Call("POST", "/api/locrits/Ok/rename", R"({})").status, 400);

  EXPECT_TRUE(fs::exists(outside));
  EXPECT_TRUE(fs::is_empty(outside));
  EXPECT_EQ(JsonObject(Call("GET", "/api/locrits"))["count"], 1);
  EXPECT_EQ(Call("GET", "/healthz").status, 200) << "still healthy";
}

TEST_F(LocritsE2eTest, ModelsAreAskedOnlyOfTheLocritsOwnServer) {
  FakeLlmServer configured;
  FakeLlmServer elsewhere;
  const HttpReply created = Call(
      "POST", "/api/locrits",
      R"({"name":"Olla","description":"d","model":"fake-chat","llm":{"provider":"ollama","url":")" +
          configured.url() + "\"}}");
  ASSERT_EQ(created.status, 201) << created.body;

  const HttpReply models =
      Call("GET", "/api/llm/models?locrit=Olla&url=" + elsewhere.url() + "&base_url=" +
                      elsewhere.url());
  ASSERT_EQ(models.status, 200) << models.body;
  json::object body = JsonObject(models);
  EXPECT_EQ(body["provider"], "ollama");
  ASSERT_FALSE(body["models"].as_array().empty());
  EXPECT_EQ(body["models"].as_array()[0].as_object()["name"], "fake-chat:latest");
  ASSERT_EQ(configured.Requests().size(), 1u);
  EXPECT_EQ(configured.Requests()[0].target, "/api/tags");
  EXPECT_TRUE(elsewhere.Requests().empty()) << "a URL from the request is never contacted";

  EXPECT_EQ(Call("GET", "/api/llm/models").status, 400);
  EXPECT_EQ(Call("GET", "/api/llm/models?locrit=Nobody").status, 404);
  const HttpReply moved = Call(
      "PATCH", "/api/locrits/Olla",
      R"({"llm":{"url":"http://127.0.0.1:)" + std::to_string(FakeLlmServer::UnusedPort()) + "\"}}");
  ASSERT_EQ(moved.status, 200) << moved.body;
  const HttpReply down = Call("GET", "/api/llm/models?locrit=Olla");
  EXPECT_EQ(down.status, 503) << down.body;
  EXPECT_EQ(Code(down), "unavailable");
}

}  // namespace
}  // namespace locrit

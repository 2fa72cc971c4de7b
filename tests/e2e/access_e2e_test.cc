// End to end: settings and access over the real `locrit` binary. The config file, the environment
// and the flags as they show in behaviour; `locrit token create|list|revoke`; a server with an
// admin token (no local mode: operator routes need the token, from any Host); the public routes,
// their gates and what they hide.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "tests/support/e2e_http.h"
#include "tests/support/locrit_process.h"
#include "tests/support/temp_dir.h"

namespace locrit {
namespace {

namespace json = boost::json;
using ::locrit::testing::CommandResult;
using ::locrit::testing::HttpCall;
using ::locrit::testing::HttpReply;
using ::locrit::testing::JsonObject;
using ::locrit::testing::LocritCommand;
using ::locrit::testing::LocritServer;
using ::locrit::testing::ReadWholeFile;
using ::locrit::testing::RunToEnd;
using ::locrit::testing::Send;
using ::locrit::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kOperatorToken = "e2e-admin-token-0123456789";

// One request; `headers` are extra request headers ("Name: value"); a body is JSON.
HttpReply Request(const std::string& method, const std::string& url,
                  const std::vector<std::string>& headers = {}, const std::string& body = "") {
  HttpCall call;
  call.method = method;
  call.url = url;
  call.headers = headers;
  call.body = body;
  return Send(call);
}

// Runs `locrit args...` in `cwd` to completion; returns its exit code, fills stdout and stderr.
int RunLocrit(const std::vector<std::string>& args, const std::string& cwd, std::string* out,
              std::string* err, const std::map<std::string, std::string>& env = {}) {
  LocritCommand command;
  command.args = args;
  command.cwd = cwd;
  command.env = env;
  const CommandResult result = RunToEnd(LOCRIT_BINARY, command);
  if (out != nullptr) *out = result.out;
  if (err != nullptr) *err = result.err;
  return result.exit_code;
}

// `locrit serve args...` started in `cwd` with `env` (settings may come from ./locrit.toml, the
// environment or relative paths); `data` is where its locrit.addr appears.
class Server : public LocritServer {
 public:
  Server(const std::string& cwd, std::vector<std::string> args,
         std::map<std::string, std::string> env, std::filesystem::path data)
      : LocritServer(LOCRIT_BINARY, Command(cwd, std::move(args), std::move(env)),
                     std::move(data)) {}

 private:
  static LocritCommand Command(const std::string& cwd, std::vector<std::string> args,
                               std::map<std::string, std::string> env) {
    LocritCommand command;
    command.args = {"serve"};
    command.args.insert(command.args.end(), args.begin(), args.end());
    command.cwd = cwd;
    command.env = std::move(env);
    command.stderr_file = std::filesystem::path(cwd) / "server.log";
    return command;
  }
};

class AccessE2eTest : public ::testing::Test {
 protected:
  std::string Cwd() const { return dir_.path().string(); }
  TempDir dir_;
};

TEST_F(AccessE2eTest, FlagsWinOverTheEnvironmentWhichWinsOverTheFile) {
  // The file names data directory a and allows 5-character messages; the environment says
  // data directory b and 10 characters; the flag says data directory c.
  std::ofstream(dir_.File("locrit.toml")) << "[server]\nlisten = \"127.0.0.1:0\"\n"
                                          << "data = \"a\"\nno_example = false\n"
                                          << "[limits]\nmax_message_chars = 5\n";
  {
    Server server(Cwd(), {}, {}, dir_.path() / "a");  // ./locrit.toml alone.
    const std::string base = server.WaitReady();
    ASSERT_FALSE(base.empty()) << server.Log();
    EXPECT_EQ(Request("POST", base + "/api/locrits/Bob%20Technique/chat", {},
                      R"({"message":"123456"})")
                  .status,
              413);
    EXPECT_EQ(Request("POST", base + "/api/locrits/Bob%20Technique/chat", {},
                      R"({"message":"12345"})")
                  .status,
              200);
  }
  {
    Server server(Cwd(), {}, {{"LOCRIT_DATA", "b"}, {"LOCRIT_MAX_MESSAGE_CHARS", "10"}},
                  dir_.path() / "b");
    const std::string base = server.WaitReady();
    ASSERT_FALSE(base.empty()) << server.Log();
    EXPECT_EQ(Request("POST", base + "/api/locrits/Bob%20Technique/chat", {},
                      R"({"message":"1234567890"})")
                  .status,
              200);
    EXPECT_EQ(Request("POST", base + "/api/locrits/Bob%20Technique/chat", {},
                      R"({"message":"12345678901"})")
                  .status,
              413);
  }
  {
    Server server(Cwd(), {"--data", "c", "--no-example"}, {{"LOCRIT_DATA", "b"}},
                  dir_.path() / "c");
    const std::string base = server.WaitReady();
    ASSERT_FALSE(base.empty()) << server.Log();
    EXPECT_EQ(JsonObject(Request("GET", base + "/api/locrits"))["count"], 0);
  }
  // --config names another file and ./locrit.toml is then not read.
  std::ofstream(dir_.File("other.toml")) << "[server]\nlisten = \"127.0.0.1:0\"\ndata = \"d\"\n";
  Server server(Cwd(), {"--config", "other.toml"}, {}, dir_.path() / "d");
  ASSERT_FALSE(server.WaitReady().empty()) << server.Log();
}

TEST_F(AccessE2eTest, BadSettingsExitWith2NamingTheKeyAndLine) {
  std::ofstream(dir_.File("locrit.toml")) << "[server]\nlisten = \"127.0.0.1:0\"\n"
                                          << "[limits]\nmax_body = 10\n";
  std::string err;
  EXPECT_EQ(RunLocrit({"serve"}, Cwd(), nullptr, &err), 2);
  EXPECT_THAT(err, HasSubstr("locrit.toml:4: unknown setting \"limits.max_body\""));
  EXPECT_EQ(RunLocrit({"serve", "--config", "missing.toml"}, Cwd(), nullptr, &err), 2);
  EXPECT_THAT(err, HasSubstr("missing.toml"));
  std::filesystem::remove(dir_.File("locrit.toml"));
  EXPECT_EQ(RunLocrit({"serve", "--listen", "127.0.0.1:0"}, Cwd(), nullptr, &err,
                      {{"LOCRIT_SYNCHRONOUS", "sometimes"}}),
            2);
  EXPECT_THAT(err, HasSubstr("LOCRIT_SYNCHRONOUS"));
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "data")) << "nothing touched";
}

TEST_F(AccessE2eTest, ACreatedTokenEndsLocalModeAndRevokingItRestoresIt) {
  const std::string data = dir_.File("data");
  std::string token;
  std::string err;
  ASSERT_EQ(RunLocrit({"token", "create", "--data", data, "--name", "ci"}, Cwd(), &token, &err), 0)
      << err;
  while (!token.empty() && token.back() == '\n') token.pop_back();
  ASSERT_TRUE(token.starts_with("lct_")) << token;
  EXPECT_THAT(ReadWholeFile(data + "/admin_tokens"), Not(HasSubstr(token)));
  std::string listed;
  ASSERT_EQ(RunLocrit({"token", "list", "--data", data}, Cwd(), &listed, &err), 0) << err;
  EXPECT_THAT(listed, HasSubstr("ci\t"));
  EXPECT_THAT(listed, Not(HasSubstr(token)));

  {
    Server server(Cwd(), {"--listen", "127.0.0.1:0", "--data", data}, {}, data);
    const std::string base = server.WaitReady();
    ASSERT_FALSE(base.empty()) << server.Log();
    const HttpReply missing = Request("GET", base + "/api/locrits");
    EXPECT_EQ(missing.status, 401);
    EXPECT_EQ(JsonObject(missing)["code"], "unauthorized");
    EXPECT_THAT(missing.headers, HasSubstr("WWW-Authenticate: Bearer"));
    const HttpReply wrong = Request("GET", base + "/api/locrits", {"Authorization: Bearer nope"});
    EXPECT_EQ(wrong.status, 401);
    EXPECT_THAT(wrong.headers, HasSubstr("invalid_token"));
    EXPECT_EQ(Request("POST", base + "/api/locrits/Bob%20Technique/chat", {},
                      R"({"message":"x"})")
                  .status,
              401);
    const HttpReply ok = Request("GET", base + "/api/locrits", {"Authorization: Bearer " + token});
    EXPECT_EQ(ok.status, 200) << ok.body;
    EXPECT_EQ(JsonObject(ok)["count"], 1);
    EXPECT_EQ(Request("GET", base + "/api/locrits?token=" + token).status, 200);
    // No local mode: no Host check for the operator, and public routes answer everyone.
    EXPECT_EQ(Request("GET", base + "/api/locrits",
                      {"Authorization: Bearer " + token, "Host: locrit.example"})
                  .status,
              200);
    EXPECT_EQ(Request("GET", base + "/api/v1/ping").status, 200);
    EXPECT_EQ(Request("GET", base + "/healthz", {"Host: elsewhere.example"}).status, 200);
    // No CORS for foreign origins: browsers on other sites cannot read any answer.
    const HttpReply cors = Request("GET", base + "/api/v1/ping", {"Origin: http://evil.example"});
    EXPECT_EQ(cors.status, 200);
    EXPECT_THAT(cors.headers, Not(HasSubstr("Access-Control")));
    EXPECT_THAT(server.Log(), HasSubstr("1 admin token(s)"));
  }

  ASSERT_EQ(RunLocrit({"token", "revoke", "--data", data, "ci"}, Cwd(), nullptr, &err), 0) << err;
  Server server(Cwd(), {"--listen", "127.0.0.1:0", "--data", data}, {}, data);
  const std::string base = server.WaitReady();
  ASSERT_FALSE(base.empty()) << server.Log();
  EXPECT_EQ(Request("GET", base + "/api/locrits").status, 200) << "local mode again";
  EXPECT_EQ(Request("GET", base + "/api/locrits", {"Host: evil.example"}).status, 403);
  EXPECT_THAT(server.Log(), HasSubstr("local mode"));
}

TEST_F(AccessE2eTest, ANonLoopbackAddressIsServedOnlyWithAnAdminToken) {
  std::string err;
  EXPECT_EQ(RunLocrit({"serve", "--listen", "0.0.0.0:0", "--data", "data"}, Cwd(), nullptr, &err),
            2);
  EXPECT_THAT(err, HasSubstr("needs an admin token"));

  Server server(Cwd(), {"--listen", "0.0.0.0:0", "--data", "data"},
                {{"LOCRIT_ADMIN_TOKEN", std::string("other-token-0123456789,") + kOperatorToken}},
                dir_.path() / "data");
  const std::string base = server.WaitReady();
  ASSERT_FALSE(base.empty()) << server.Log();
  EXPECT_EQ(Request("GET", base + "/api/locrits").status, 401);
  EXPECT_EQ(
      Request("GET", base + "/api/locrits", {std::string("Authorization: Bearer ") + kOperatorToken})
          .status,
      200);
  EXPECT_THAT(server.Log(), HasSubstr("2 admin token(s)"));
}

TEST_F(AccessE2eTest, PublicRoutesFollowEachGateAndHideSecrets) {
  const std::string data = dir_.File("data");
  const std::map<std::string, std::string> env = {{"LOCRIT_ADMIN_TOKEN", kOperatorToken}};
  Server server(Cwd(), {"--listen", "127.0.0.1:0", "--data", data}, env, data);
  const std::string base = server.WaitReady();
  ASSERT_FALSE(base.empty()) << server.Log();
  const std::vector<std::string> operator_auth = {std::string("Authorization: Bearer ") +
                                                  kOperatorToken};
  // Bob gets secrets, and a second Locrit open to the internet but not to other Locrits.
  const std::string secrets =
      R"("system_prompt":"the secret prompt",)"
      R"("llm":{"provider":"recall","url":"http://10.9.8.7:11434"})";
  const HttpReply bob = Request("PATCH", base + "/api/locrits/Bob%20Technique", operator_auth,
                            "{" + secrets + "}");
  ASSERT_EQ(bob.status, 200) << bob.body;
  const HttpReply vitrine = Request(
      "POST", base + "/api/locrits", operator_auth,
      R"({"name":"Vitrine","description":"d","open_to":{"locrits":false,"internet":true},)" +
          secrets + "}");
  ASSERT_EQ(vitrine.status, 201) << vitrine.body;

  const HttpReply v1 = Request("GET", base + "/api/v1/locrits");
  ASSERT_EQ(v1.status, 200) << v1.body;
  EXPECT_EQ(JsonObject(v1)["count"], 1);
  EXPECT_THAT(v1.body, HasSubstr("Bob Technique"));
  for (const char* secret : {"the secret prompt", "10.9.8.7", "system_prompt", "Vitrine"}) {
    EXPECT_THAT(v1.body, Not(HasSubstr(secret)));
  }
  const HttpReply info = Request("GET", base + "/api/v1/locrits/Bob%20Technique/info");
  EXPECT_EQ(info.status, 200);
  EXPECT_THAT(info.body, Not(HasSubstr("the secret prompt")));
  EXPECT_EQ(Request("GET", base + "/api/v1/locrits/Vitrine/info").status, 403);

  const HttpReply chat = Request("POST", base + "/api/v1/locrits/Bob%20Technique/chat", {},
                             R"({"message":"bonjour","sender_name":"Autre Locrit"})");
  ASSERT_EQ(chat.status, 200) << chat.body;
  EXPECT_EQ(JsonObject(chat)["sender_acknowledged"], true);
  EXPECT_EQ(Request("POST", base + "/api/v1/locrits/Vitrine/chat", {}, R"({"message":"x"})")
                .status,
            403);
  EXPECT_EQ(Request("POST", base + "/api/v1/locrits/Vitrine/chat/stream", {},
                    R"({"message":"x"})")
                .status,
            403);

  const HttpReply pub = Request("GET", base + "/public/list");
  ASSERT_EQ(pub.status, 200);
  EXPECT_EQ(JsonObject(pub)["count"], 1);
  EXPECT_THAT(pub.body, HasSubstr("Vitrine"));
  EXPECT_THAT(pub.body, Not(HasSubstr("10.9.8.7")));
  EXPECT_EQ(Request("GET", base + "/public/Vitrine").status, 200);
  EXPECT_EQ(Request("GET", base + "/public/Bob%20Technique").status, 403);
  const HttpReply visit = Request("POST", base + "/public/Vitrine/chat", {},
                              R"({"message":"bonjour","visitor_name":"Zoé"})");
  EXPECT_EQ(visit.status, 200) << visit.body;
  EXPECT_EQ(Request("POST", base + "/public/Bob%20Technique/chat", {}, R"({"message":"x"})")
                .status,
            403);
  // The operator meets the same gates on these paths.
  EXPECT_EQ(Request("POST", base + "/public/Bob%20Technique/chat",
                    {std::string("Authorization: Bearer ") + kOperatorToken}, R"({"message":"x"})")
                .status,
            403);
  // Inactive: every channel refuses.
  const HttpReply off = Request("POST", base + "/api/locrits/Vitrine/toggle", operator_auth);
  ASSERT_EQ(off.status, 200) << off.body;
  EXPECT_EQ(Request("GET", base + "/public/Vitrine").status, 403);
  EXPECT_EQ(Request("POST", base + "/public/Vitrine/chat", {}, R"({"message":"x"})").status, 403);
  EXPECT_EQ(JsonObject(Request("GET", base + "/public/list"))["count"], 0);
}

}  // namespace
}  // namespace locrit

// End to end: settings and access over the real `locrit` binary. The config file, the environment
// and the flags as they show in behaviour; `locrit token create|list|revoke`; a server with an
// admin token (no local mode: operator routes need the token, from any Host); the public routes,
// their gates and what they hide.
#include <curl/curl.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/temp_dir.h"

extern char** environ;

namespace locrit {
namespace {

namespace json = boost::json;
using ::locrit::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kOperatorToken = "e2e-admin-token-0123456789";

struct Reply {
  long status = 0;
  std::string body;
  std::string headers;
  std::string error;
};

size_t Collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// One request; `headers` are extra request headers ("Name: value").
Reply Request(const std::string& method, const std::string& url,
              const std::vector<std::string>& headers = {}, const std::string& body = "") {
  Reply reply;
  CURL* curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, Collect);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &reply.headers);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
  curl_slist* list = nullptr;
  for (const std::string& h : headers) list = curl_slist_append(list, h.c_str());
  if (method == "POST" || !body.empty()) {
    list = curl_slist_append(list, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  const CURLcode rc = curl_easy_perform(curl);
  if (rc != CURLE_OK) reply.error = curl_easy_strerror(rc);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply.status);
  curl_slist_free_all(list);
  curl_easy_cleanup(curl);
  return reply;
}

json::object JsonObject(const Reply& reply) {
  boost::system::error_code ec;
  json::value v = json::parse(reply.body, ec);
  EXPECT_FALSE(ec) << "not JSON: " << reply.body;
  if (ec || !v.is_object()) return {};
  return v.get_object();
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The process environment without LOCRIT_* variables, plus `extra`.
std::vector<std::string> Environment(const std::map<std::string, std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::string_view(*e).rfind("LOCRIT_", 0) != 0) env.emplace_back(*e);
  }
  for (const auto& [k, v] : extra) env.push_back(k + "=" + v);
  return env;
}

// Starts `locrit args...` in `cwd` with `env` (over the environment without LOCRIT_*), its
// stdout to `out_file` (when not empty) and stderr to `err_file`.
pid_t SpawnLocrit(const std::vector<std::string>& args, const std::string& cwd,
                  const std::map<std::string, std::string>& env, const std::string& out_file,
                  const std::string& err_file) {
  std::vector<std::string> all = {LOCRIT_BINARY};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> environment = Environment(env);
  std::vector<char*> envp;
  for (auto& e : environment) envp.push_back(e.data());
  envp.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());
  if (!out_file.empty()) {
    posix_spawn_file_actions_addopen(&actions, 1, out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
  }
  posix_spawn_file_actions_addopen(&actions, 2, err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  pid_t pid = -1;
  EXPECT_EQ(posix_spawn(&pid, LOCRIT_BINARY, &actions, nullptr, argv.data(), envp.data()), 0);
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

// Runs `locrit args...` in `cwd` to completion; returns its exit code, fills stdout and stderr.
int RunLocrit(const std::vector<std::string>& args, const std::string& cwd, std::string* out,
              std::string* err, const std::map<std::string, std::string>& env = {}) {
  const std::string out_file = cwd + "/.out";
  const std::string err_file = cwd + "/.err";
  const pid_t pid = SpawnLocrit(args, cwd, env, out_file, err_file);
  int status = 0;
  waitpid(pid, &status, 0);
  if (out != nullptr) *out = ReadFile(out_file);
  if (err != nullptr) *err = ReadFile(err_file);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// One `locrit serve` process, started in `cwd` with `args` and `env`, stopped with SIGTERM.
class Server {
 public:
  Server(std::string cwd, std::vector<std::string> args, std::map<std::string, std::string> env,
         std::filesystem::path data)
      : cwd_(std::move(cwd)), data_(std::move(data)), log_(cwd_ + "/server.log") {
    args.insert(args.begin(), "serve");
    pid_ = SpawnLocrit(args, cwd_, env, "", log_);
  }
  ~Server() {
    if (pid_ > 0) {
      EXPECT_EQ(Stop(), 0) << Log();
    }
  }

  // Waits (bounded) for <data>/locrit.addr; the base URL over 127.0.0.1, or "" when the server
  // exited or never wrote it.
  std::string WaitReady() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    const std::filesystem::path addr = data_ / "locrit.addr";
    while (std::chrono::steady_clock::now() < deadline) {
      std::ifstream in(addr);
      std::string line;
      if (in && std::getline(in, line) && !line.empty()) {
        const std::string port = line.substr(line.rfind(':') + 1);
        return "http://127.0.0.1:" + port;
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        return "";
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return "";
  }

  int Stop() {
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  int exit_code() const { return exit_code_; }
  std::string Log() const { return ReadFile(log_); }

 private:
  std::string cwd_;
  std::filesystem::path data_;
  std::string log_;
  pid_t pid_ = -1;
  int exit_code_ = -1;
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
  EXPECT_THAT(ReadFile(data + "/admin_tokens"), Not(HasSubstr(token)));
  std::string listed;
  ASSERT_EQ(RunLocrit({"token", "list", "--data", data}, Cwd(), &listed, &err), 0) << err;
  EXPECT_THAT(listed, HasSubstr("ci\t"));
  EXPECT_THAT(listed, Not(HasSubstr(token)));

  {
    Server server(Cwd(), {"--listen", "127.0.0.1:0", "--data", data}, {}, data);
    const std::string base = server.WaitReady();
    ASSERT_FALSE(base.empty()) << server.Log();
    const Reply missing = Request("GET", base + "/api/locrits");
    EXPECT_EQ(missing.status, 401);
    EXPECT_EQ(JsonObject(missing)["code"], "unauthorized");
    EXPECT_THAT(missing.headers, HasSubstr("WWW-Authenticate: Bearer"));
    const Reply wrong = Request("GET", base + "/api/locrits", {"Authorization: Bearer nope"});
    EXPECT_EQ(wrong.status, 401);
    EXPECT_THAT(wrong.headers, HasSubstr("invalid_token"));
    EXPECT_EQ(Request("POST", base + "/api/locrits/Bob%20Technique/chat", {},
                      R"({"message":"x"})")
                  .status,
              401);
    const Reply ok = Request("GET", base + "/api/locrits", {"Authorization: Bearer " + token});
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
    const Reply cors = Request("GET", base + "/api/v1/ping", {"Origin: http://evil.example"});
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
  const Reply bob = Request("PATCH", base + "/api/locrits/Bob%20Technique", operator_auth,
                            "{" + secrets + "}");
  ASSERT_EQ(bob.status, 200) << bob.body;
  const Reply vitrine = Request(
      "POST", base + "/api/locrits", operator_auth,
      R"({"name":"Vitrine","description":"d","open_to":{"locrits":false,"internet":true},)" +
          secrets + "}");
  ASSERT_EQ(vitrine.status, 201) << vitrine.body;

  const Reply v1 = Request("GET", base + "/api/v1/locrits");
  ASSERT_EQ(v1.status, 200) << v1.body;
  EXPECT_EQ(JsonObject(v1)["count"], 1);
  EXPECT_THAT(v1.body, HasSubstr("Bob Technique"));
  for (const char* secret : {"the secret prompt", "10.9.8.7", "system_prompt", "Vitrine"}) {
    EXPECT_THAT(v1.body, Not(HasSubstr(secret)));
  }
  const Reply info = Request("GET", base + "/api/v1/locrits/Bob%20Technique/info");
  EXPECT_EQ(info.status, 200);
  EXPECT_THAT(info.body, Not(HasSubstr("the secret prompt")));
  EXPECT_EQ(Request("GET", base + "/api/v1/locrits/Vitrine/info").status, 403);

  const Reply chat = Request("POST", base + "/api/v1/locrits/Bob%20Technique/chat", {},
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

  const Reply pub = Request("GET", base + "/public/list");
  ASSERT_EQ(pub.status, 200);
  EXPECT_EQ(JsonObject(pub)["count"], 1);
  EXPECT_THAT(pub.body, HasSubstr("Vitrine"));
  EXPECT_THAT(pub.body, Not(HasSubstr("10.9.8.7")));
  EXPECT_EQ(Request("GET", base + "/public/Vitrine").status, 200);
  EXPECT_EQ(Request("GET", base + "/public/Bob%20Technique").status, 403);
  const Reply visit = Request("POST", base + "/public/Vitrine/chat", {},
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
  const Reply off = Request("POST", base + "/api/locrits/Vitrine/toggle", operator_auth);
  ASSERT_EQ(off.status, 200) << off.body;
  EXPECT_EQ(Request("GET", base + "/public/Vitrine").status, 403);
  EXPECT_EQ(Request("POST", base + "/public/Vitrine/chat", {}, R"({"message":"x"})").status, 403);
  EXPECT_EQ(JsonObject(Request("GET", base + "/public/list"))["count"], 0);
}

}  // namespace
}  // namespace locrit

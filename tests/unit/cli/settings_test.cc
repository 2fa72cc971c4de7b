// The settings of `locrit serve`: defaults, precedence (flags > environment > file > defaults),
// every key readable from each source, and precise errors for bad files and values.
#include "cli/settings.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "tests/support/matchers.h"
#include "tests/support/temp_dir.h"

namespace locrit {
namespace {

using ::locrit::testing::IsOk;
using ::locrit::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

SettingsSources FromFile(std::string text) {
  SettingsSources sources;
  sources.file_name = "locrit.toml";
  sources.file_text = std::move(text);
  return sources;
}

TEST(SettingsTest, DefaultsWithoutAnySource) {
  Result<ServeSettings> s = ResolveSettings({});
  ASSERT_THAT(s.status(), IsOk());
  EXPECT_EQ(s->listen, "127.0.0.1:8000");
  EXPECT_EQ(s->data, "./data");
  EXPECT_FALSE(s->no_example);
  EXPECT_EQ(s->shutdown_timeout_s, 30);
  EXPECT_TRUE(s->admin_tokens.empty());
  EXPECT_EQ(s->llm_provider, "ollama");
  EXPECT_EQ(s->max_body_bytes, 1u << 20);
  EXPECT_EQ(s->max_message_chars, 32768u);
  EXPECT_EQ(s->max_ws_queue_bytes, 1u << 20);
  EXPECT_EQ(s->durability, Durability::kFull);
}

TEST(SettingsTest, FlagsWinOverTheEnvironmentWhichWinsOverTheFile) {
  struct Case {
    const char* name;
    bool in_file, in_env, in_flag;
    const char* expected;
  };
  const Case cases[] = {
      {"none", false, false, false, "127.0.0.1:8000"},
      {"file", true, false, false, "127.0.0.1:1001"},
      {"env", false, true, false, "127.0.0.1:1002"},
      {"flag", false, false, true, "127.0.0.1:1003"},
      {"file+env", true, true, false, "127.0.0.1:1002"},
      {"file+flag", true, false, true, "127.0.0.1:1003"},
      {"env+flag", false, true, true, "127.0.0.1:1003"},
      {"all", true, true, true, "127.0.0.1:1003"},
  };
  for (const Case& c : cases) {
    SettingsSources sources;
    if (c.in_file) sources = FromFile("[server]\nlisten = \"127.0.0.1:1001\"\n");
    if (c.in_env) sources.env["LOCRIT_LISTEN"] = "127.0.0.1:1002";
    if (c.in_flag) sources.flags["server.listen"] = "127.0.0.1:1003";
    Result<ServeSettings> s = ResolveSettings(sources);
    ASSERT_THAT(s.status(), IsOk()) << c.name;
    EXPECT_EQ(s->listen, c.expected) << c.name;
  }
}

TEST(SettingsTest, EverySettingFromTheFile) {
  Result<ServeSettings> s = ResolveSettings(FromFile(R"(# a comment
[server]
listen = "0.0.0.0:9000"
data = "/srv/locrit"
no_example = true
shutdown_timeout_s = 5

[access]
admin_tokens = ["0123456789abcdef-one", "0123456789abcdef-two"]

[llm]
provider = "openai"
url = "https://llm.example/v1"
model = "gpt-x"
connect_timeout_ms = 1000
first_token_timeout_ms = 2000
idle_timeout_ms = 3000
total_timeout_ms = 4000
max_retries = 0

[limits]
max_body_bytes = 65536
max_message_chars = 100
max_ws_queue_bytes = 8192

[storage]
synchronous = "relaxed"
)"));
  ASSERT_THAT(s.status(), IsOk());
  EXPECT_EQ(s->listen, "0.0.0.0:9000");
  EXPECT_EQ(s->data, "/srv/locrit");
  EXPECT_TRUE(s->no_example);
  EXPECT_EQ(s->shutdown_timeout_s, 5);
  EXPECT_THAT(s->admin_tokens, ElementsAre("0123456789abcdef-one", "0123456789abcdef-two"));
  EXPECT_EQ(s->llm_provider, "openai");
  EXPECT_EQ(s->llm.provider, LlmProvider::kOpenAi);
  EXPECT_EQ(s->llm.base_url, "https://llm.example/v1");
  EXPECT_EQ(s->llm.model, "gpt-x");
  EXPECT_EQ(s->llm.timeouts.connect.count(), 1000);
  EXPECT_EQ(s->llm.timeouts.first_token.count(), 2000);
  EXPECT_EQ(s->llm.timeouts.idle.count(), 3000);
  EXPECT_EQ(s->llm.timeouts.total.count(), 4000);
  EXPECT_EQ(s->llm.retry.max_retries, 0);
  EXPECT_EQ(s->max_body_bytes, 65536u);
  EXPECT_EQ(s->max_message_chars, 100u);
  EXPECT_EQ(s->max_ws_queue_bytes, 8192u);
  EXPECT_EQ(s->durability, Durability::kRelaxed);
}

TEST(SettingsTest, EverySettingFromTheEnvironment) {
  SettingsSources sources;
  sources.env = {
      {"LOCRIT_LISTEN", "[::1]:1"},
      {"LOCRIT_DATA", "d"},
      {"LOCRIT_NO_EXAMPLE", "yes"},
      {"LOCRIT_SHUTDOWN_TIMEOUT", "7"},
      {"LOCRIT_ADMIN_TOKEN", " 0123456789abcdef-one ,,0123456789abcdef-two"},
      {"LOCRIT_LLM_PROVIDER", "recall"},
      {"LOCRIT_LLM_URL", "http://gpu:11434"},
      {"LOCRIT_LLM_MODEL", "m"},
      {"LOCRIT_LLM_CONNECT_TIMEOUT_MS", "11"},
      {"LOCRIT_LLM_FIRST_TOKEN_TIMEOUT_MS", "12"},
      {"LOCRIT_LLM_IDLE_TIMEOUT_MS", "13"},
      {"LOCRIT_LLM_TOTAL_TIMEOUT_MS", "14"},
      {"LOCRIT_LLM_MAX_RETRIES", "3"},
      {"LOCRIT_MAX_BODY_BYTES", "2048"},
      {"LOCRIT_MAX_MESSAGE_CHARS", "64"},
      {"LOCRIT_MAX_WS_QUEUE_BYTES", "65536"},
      {"LOCRIT_SYNCHRONOUS", "relaxed"},
      {"LOCRIT_SOMETHING_ELSE", "ignored"},
  };
  Result<ServeSettings> s = ResolveSettings(sources);
  ASSERT_THAT(s.status(), IsOk());
  EXPECT_EQ(s->listen, "[::1]:1");
  EXPECT_EQ(s->data, "d");
  EXPECT_TRUE(s->no_example);
  EXPECT_EQ(s->shutdown_timeout_s, 7);
  EXPECT_THAT(s->admin_tokens, ElementsAre("0123456789abcdef-one", "0123456789abcdef-two"));
  EXPECT_EQ(s->llm_provider, "recall");
  EXPECT_EQ(s->llm.base_url, "http://gpu:11434");
  EXPECT_EQ(s->llm.model, "m");
  EXPECT_EQ(s->llm.timeouts.connect.count(), 11);
  EXPECT_EQ(s->llm.timeouts.first_token.count(), 12);
  EXPECT_EQ(s->llm.timeouts.idle.count(), 13);
  EXPECT_EQ(s->llm.timeouts.total.count(), 14);
  EXPECT_EQ(s->llm.retry.max_retries, 3);
  EXPECT_EQ(s->max_body_bytes, 2048u);
  EXPECT_EQ(s->max_message_chars, 64u);
  EXPECT_EQ(s->max_ws_queue_bytes, 65536u);
  EXPECT_EQ(s->durability, Durability::kRelaxed);
}

TEST(SettingsTest, TheEnvironmentCanTurnOffWhatTheFileTurnedOn) {
  SettingsSources sources = FromFile("[server]\nno_example = true\n");
  sources.env["LOCRIT_NO_EXAMPLE"] = "0";
  Result<ServeSettings> s = ResolveSettings(sources);
  ASSERT_THAT(s.status(), IsOk());
  EXPECT_FALSE(s->no_example);
}

TEST(SettingsTest, BadFilesAndValuesNameTheLineAndKey) {
  struct Case {
    std::string file;
    std::map<std::string, std::string> env;
    std::map<std::string, std::string> flags;
    const char* message;
  };
  const Case cases[] = {
      {"[server]\nlisten = \"a:1\"\nlisen = \"b:2\"\n",
       {},
       {},
       "locrit.toml:3: unknown setting \"server.lisen\""},
      {"[srv]\nlisten = \"a:1\"\n", {}, {}, "locrit.toml:2: unknown setting \"srv.listen\""},
      {"listen = \"a:1\"\n", {}, {}, "locrit.toml:1: unknown setting \"listen\""},
      {"[server]\nlisten = 80\n", {}, {}, "locrit.toml:2: server.listen must be a string"},
      {"[server]\nshutdown_timeout_s = \"5\"\n",
       {},
       {},
       "locrit.toml:2: server.shutdown_timeout_s must be an integer"},
      {"[server]\nshutdown_timeout_s = 99999\n",
       {},
       {},
       "server.shutdown_timeout_s must be between 0 and 3600"},
      {"[server]\nno_example = 1\n", {}, {}, "server.no_example must be a boolean"},
      {"[access]\nadmin_tokens = [\"0123456789abcdef\", 3]\n",
       {},
       {},
       "access.admin_tokens must be an array of strings"},
      {"[access]\nadmin_tokens = [\"short\"]\n", {}, {}, "at least 16 characters"},
      {"[llm]\nprovider = \"gpt\"\n", {}, {}, "llm.provider must be \"ollama\", \"openai\""},
      {"[llm]\nprovider = \"openai\"\n", {}, {}, "llm.url is required"},
      {"[llm]\nurl = \"ftp://x\"\n", {}, {}, "llm.url must be an http:// or https:// URL"},
      {"[storage]\nsynchronous = \"off\"\n",
       {},
       {},
       "storage.synchronous must be \"full\" or \"relaxed\""},
      {"[server\nlisten = \"a:1\"\n", {}, {}, "locrit.toml:1:"},
      {"[server]\nlisten = \"a:1\"\nlisten = \"b:2\"\n", {}, {}, "locrit.toml:3:"},
      {"", {{"LOCRIT_MAX_BODY_BYTES", "1k"}}, {}, "LOCRIT_MAX_BODY_BYTES: must be an integer"},
      {"", {{"LOCRIT_NO_EXAMPLE", "maybe"}}, {}, "LOCRIT_NO_EXAMPLE: must be true or false"},
      {"", {{"LOCRIT_MAX_MESSAGE_CHARS", "0"}}, {}, "LOCRIT_MAX_MESSAGE_CHARS: must be between"},
      {"", {{"LOCRIT_MAX_WS_QUEUE_BYTES", "100"}}, {}, "LOCRIT_MAX_WS_QUEUE_BYTES: must be between"},
      {"", {}, {{"server.shutdown_timeout_s", "-1"}}, "server.shutdown_timeout_s (flag)"},
      {"", {}, {{"server.nothing", "1"}}, "unknown setting \"server.nothing\""},
  };
  for (const Case& c : cases) {
    SettingsSources sources = FromFile(c.file);
    sources.env = c.env;
    sources.flags = c.flags;
    Result<ServeSettings> s = ResolveSettings(sources);
    ASSERT_FALSE(s.ok()) << c.file;
    EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument) << c.file;
    EXPECT_THAT(s.status().message(), HasSubstr(c.message)) << c.file;
  }
}

TEST(SettingsTest, SplitCommaListDropsBlanks) {
  EXPECT_THAT(SplitCommaList(" a, b,,c ,"), ElementsAre("a", "b", "c"));
  EXPECT_TRUE(SplitCommaList("").empty());
}

TEST(SettingsTest, AnExplicitConfigFileMustExistAndIsRead) {
  TempDir dir;
  SettingsSources sources;
  Status missing = ReadConfigFile(dir.File("nope.toml"), &sources);
  EXPECT_EQ(missing.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(missing.message(), HasSubstr("nope.toml"));

  const std::string path = dir.File("custom.toml");
  std::ofstream(path) << "[server]\ndata = \"x\"\n";
  ASSERT_THAT(ReadConfigFile(path, &sources), IsOk());
  EXPECT_EQ(sources.file_name, path);
  Result<ServeSettings> s = ResolveSettings(sources);
  ASSERT_THAT(s.status(), IsOk());
  EXPECT_EQ(s->data, "x");
}

}  // namespace
}  // namespace locrit

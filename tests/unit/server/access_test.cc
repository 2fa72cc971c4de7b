// Who is calling: local mode, the Host check, admin bearer tokens (header and ?token=), and the
// hashing and storage of admin tokens.
#include "server/access.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "server/admin_tokens.h"
#include "tests/support/matchers.h"
#include "tests/support/temp_dir.h"

namespace locrit {
namespace {

using ::locrit::testing::IsOk;
using ::locrit::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kToken = "lct_the-right-admin-token";

TEST(AdminTokensTest, HashIsSha256Hex) {
  EXPECT_EQ(HashAdminToken("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(HashAdminToken(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(AdminTokensTest, MatchesOnlyTheTokenItself) {
  const std::vector<std::string> hashes = {HashAdminToken("other-token-000000"),
                                           HashAdminToken(kToken)};
  EXPECT_TRUE(AdminTokenMatches(kToken, hashes));
  EXPECT_FALSE(AdminTokenMatches("lct_the-right-admin-toke", hashes));
  EXPECT_FALSE(AdminTokenMatches("", hashes));
  EXPECT_FALSE(AdminTokenMatches(kToken, {}));
  // A stored hash is never accepted as the token.
  EXPECT_FALSE(AdminTokenMatches(HashAdminToken(kToken), hashes));
}

TEST(AdminTokensTest, NewTokensAreRandomAndPrefixed) {
  Result<std::string> a = NewAdminToken();
  Result<std::string> b = NewAdminToken();
  ASSERT_THAT(a.status(), IsOk());
  ASSERT_THAT(b.status(), IsOk());
  EXPECT_TRUE(a->starts_with("lct_"));
  EXPECT_EQ(a->size(), 4u + 64u);
  EXPECT_NE(*a, *b);
}

TEST(AdminTokensTest, StoredAsHashesOnlyAddListRevoke) {
  TempDir dir;
  const std::string data = dir.path().string();
  EXPECT_TRUE(LoadAdminTokens(data)->empty());
  ASSERT_THAT(AddAdminToken(data, {"ci", HashAdminToken(kToken), "2025-01-01T00:00:00.000Z"}),
              IsOk());
  ASSERT_THAT(AddAdminToken(data, {"laptop", HashAdminToken("x-token-00000000"), "t"}), IsOk());
  EXPECT_EQ(AddAdminToken(data, {"ci", HashAdminToken("y"), "t"}).code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(AddAdminToken(data, {"bad name", HashAdminToken("y"), "t"}).code(),
            StatusCode::kInvalidArgument);

  std::ifstream in(dir.File(std::string(kAdminTokensFile)));
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_THAT(text.str(), Not(HasSubstr(kToken)));
  EXPECT_THAT(text.str(), HasSubstr(HashAdminToken(kToken)));
  struct stat st {};
  ASSERT_EQ(::stat(dir.File(std::string(kAdminTokensFile)).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  auto tokens = LoadAdminTokens(data);
  ASSERT_THAT(tokens.status(), IsOk());
  ASSERT_EQ(tokens->size(), 2u);
  EXPECT_EQ((*tokens)[0].name, "ci");
  EXPECT_EQ((*tokens)[0].created_at, "2025-01-01T00:00:00.000Z");

  ASSERT_THAT(RevokeAdminToken(data, "ci"), IsOk());
  EXPECT_EQ(RevokeAdminToken(data, "ci").code(), StatusCode::kNotFound);
  tokens = LoadAdminTokens(data);
  ASSERT_EQ(tokens->size(), 1u);
  EXPECT_EQ((*tokens)[0].name, "laptop");
}

TEST(AdminTokensTest, AMalformedFileIsReportedWithItsLine) {
  TempDir dir;
  std::ofstream(dir.File(std::string(kAdminTokensFile)))
      << "ok\t" << HashAdminToken("a") << "\tt\nnot a token line\n";
  auto tokens = LoadAdminTokens(dir.path().string());
  EXPECT_EQ(tokens.status().code(), StatusCode::kCorruption);
  EXPECT_THAT(tokens.status().message(), HasSubstr(":2:"));
}

struct IdentifyCase {
  const char* name;
  bool local_mode;
  bool with_tokens;
  bool from_loopback;
  std::string host;
  std::string authorization;
  std::string target;
  int refused_status;  // 0: identified.
  bool is_operator;
  bool wrong_token;
};

TEST(AccessPolicyTest, IdentifyTable) {
  const std::string bearer = std::string("Bearer ") + kToken;
  const IdentifyCase cases[] = {
      {"local loopback", true, false, true, "127.0.0.1:8000", "", "/", 0, true, false},
      {"local localhost any case", true, false, true, "LocalHost", "", "/", 0, true, false},
      {"local [::1]", true, false, true, "[::1]:80", "", "/", 0, true, false},
      {"local no Host", true, false, true, "", "", "/", 0, true, false},
      {"local foreign Host", true, false, true, "evil.example:8000", "", "/", 403, false, false},
      {"local rebinding to 127.0.0.1.evil", true, false, true, "127.0.0.1.evil.example", "", "/",
       403, false, false},
      {"local, peer not loopback", true, false, false, "localhost", "", "/", 0, false, false},
      {"tokens: no token", false, true, true, "localhost", "", "/", 0, false, false},
      {"tokens: bearer ok", false, true, false, "anything.example", bearer, "/", 0, true, false},
      {"tokens: bearer scheme any case", false, true, false, "h", std::string("bEaReR ") + kToken,
       "/", 0, true, false},
      {"tokens: bearer wrong", false, true, true, "localhost", "Bearer nope", "/", 0, false, true},
      {"tokens: other scheme", false, true, true, "localhost", "Basic YTpi", "/", 0, false, true},
      {"tokens: query token ok", false, true, false, "h", "",
       std::string("/ws?x=1&token=") + kToken, 0, true, false},
      {"tokens: query token wrong", false, true, false, "h", "", "/ws?token=nope", 0, false, true},
      {"tokens: no Host check", false, true, false, "evil.example", "", "/", 0, false, false},
  };
  for (const IdentifyCase& c : cases) {
    AccessOptions options;
    options.local_mode = c.local_mode;
    options.allowed_hosts = {"localhost", "127.0.0.1", "[::1]"};
    if (c.with_tokens) options.admin_token_hashes = {HashAdminToken(kToken)};
    AccessPolicy policy(options);
    HttpRequest request;
    request.method = "GET";
    request.target = c.target;
    request.host = c.host;
    request.authorization = c.authorization;
    request.from_loopback = c.from_loopback;
    auto result = policy.Identify(request);
    if (c.refused_status != 0) {
      ASSERT_TRUE(std::holds_alternative<HttpError>(result)) << c.name;
      EXPECT_EQ(std::get<HttpError>(result).status, c.refused_status) << c.name;
      continue;
    }
    ASSERT_TRUE(std::holds_alternative<Caller>(result)) << c.name;
    EXPECT_EQ(std::get<Caller>(result).is_operator, c.is_operator) << c.name;
    EXPECT_EQ(std::get<Caller>(result).presented_wrong_token, c.wrong_token) << c.name;
  }
}

TEST(ChatGateTest, EachChannelHasItsGate) {
  LocritConfig locrit;
  locrit.name = "L";
  struct Case {
    bool active, locrits, internet;
    ChatChannel channel;
    bool allowed;
  };
  const Case cases[] = {
      {true, false, false, ChatChannel::kOperator, true},
      {false, true, true, ChatChannel::kOperator, false},
      {true, true, false, ChatChannel::kLocritToLocrit, true},
      {true, false, true, ChatChannel::kLocritToLocrit, false},
      {false, true, true, ChatChannel::kLocritToLocrit, false},
      {true, false, true, ChatChannel::kPublic, true},
      {true, true, false, ChatChannel::kPublic, false},
      {false, true, true, ChatChannel::kPublic, false},
  };
  for (const Case& c : cases) {
    locrit.active = c.active;
    locrit.open_to.locrits = c.locrits;
    locrit.open_to.internet = c.internet;
    std::optional<HttpError> refused = ChatGate(locrit, c.channel);
    EXPECT_EQ(!refused.has_value(), c.allowed);
    if (refused) {
      EXPECT_EQ(refused->status, 403);
    }
  }
}

}  // namespace
}  // namespace locrit

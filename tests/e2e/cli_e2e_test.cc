// End to end: the command line itself — what a user who mistypes gets, and the parts other
// programs rely on (API.md "Command line": exit codes, `version`).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "tests/support/locrit_process.h"
#include "tests/support/temp_dir.h"

namespace locrit {
namespace {

using ::locrit::testing::CommandResult;
using ::locrit::testing::LocritCommand;
using ::locrit::testing::RunToEnd;
using ::locrit::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;

class CliE2eTest : public ::testing::Test {
 protected:
  CommandResult Run(std::vector<std::string> args) {
    LocritCommand command;
    command.args = std::move(args);
    command.cwd = dir_.path();
    return RunToEnd(LOCRIT_BINARY, command);
  }
  TempDir dir_;
};

TEST_F(CliE2eTest, AnUnknownCommandIsNamedWithTheKnownOnes) {
  const CommandResult bogus = Run({"bogus"});
  EXPECT_EQ(bogus.exit_code, 2);
  EXPECT_THAT(bogus.err, HasSubstr("unknown command \"bogus\""));
  EXPECT_THAT(bogus.err, HasSubstr("serve"));
  EXPECT_THAT(bogus.err, Not(HasSubstr("A subcommand is required")));

  const CommandResult none = Run({});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_THAT(none.err, HasSubstr("subcommand is required"));

  const CommandResult flag = Run({"serve", "--bogus"});
  EXPECT_EQ(flag.exit_code, 2);
  EXPECT_THAT(flag.err, HasSubstr("--bogus"));
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "data")) << "nothing started";
}

TEST_F(CliE2eTest, VersionAndHelpAnswerOnStdout) {
  const CommandResult version = Run({"version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_THAT(version.out, ::testing::MatchesRegex("locrit [0-9]+\\.[0-9]+\\.[0-9]+\n"));
  const CommandResult help = Run({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  for (const char* command : {"serve", "token", "memory", "version"}) {
    EXPECT_THAT(help.out, HasSubstr(command));
  }
  const CommandResult serve_help = Run({"serve", "--help"});
  EXPECT_EQ(serve_help.exit_code, 0);
  for (const char* flag : {"--listen", "--data", "--config", "--no-example"}) {
    EXPECT_THAT(serve_help.out, HasSubstr(flag));
  }
}

}  // namespace
}  // namespace locrit

#include "base/status.h"

#include <gtest/gtest.h>

#include "tests/support/matchers.h"

namespace locrit {
namespace {

using ::locrit::testing::IsOk;
using ::locrit::testing::StatusIs;

Result<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgumentError("odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  ASSIGN_OR_RETURN(const int half, Half(x));
  ASSIGN_OR_RETURN(const int quarter, Half(half));
  return quarter;
}

Status CheckEven(int x) {
  RETURN_IF_ERROR(Half(x).status());
  return Status::Ok();
}

TEST(StatusTest, OkHasNoMessage) {
  Status s(StatusCode::kOk, "ignored");
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.message(), "");
  EXPECT_EQ(s.ToString(), "ok");
}

TEST(StatusTest, CodesHaveStableNames) {
  EXPECT_EQ(StatusCodeName(StatusCode::kInvalidArgument), "invalid_argument");
  EXPECT_EQ(StatusCodeName(StatusCode::kNotFound), "not_found");
  EXPECT_EQ(StatusCodeName(StatusCode::kFailedPrecondition), "failed_precondition");
  EXPECT_EQ(StatusCodeName(StatusCode::kIoError), "io_error");
  EXPECT_EQ(StatusCodeName(StatusCode::kCorruption), "corruption");
  EXPECT_EQ(StatusCodeName(StatusCode::kLlmError), "llm_error");
  EXPECT_EQ(NotFoundError("x").ToString(), "not_found: x");
}

TEST(StatusTest, WithContextPrefixesTheMessage) {
  EXPECT_EQ(IoError("disk full").WithContext("save").message(), "save: disk full");
  EXPECT_TRUE(Status::Ok().WithContext("save").ok());
}

TEST(ResultTest, CarriesValueOrError) {
  EXPECT_THAT(Half(4), IsOk());
  EXPECT_EQ(*Half(4), 2);
  EXPECT_THAT(Half(3), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_EQ(Half(3).status().message(), "odd");
}

TEST(ResultTest, MacrosPropagate) {
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_THAT(Quarter(6), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(CheckEven(2), IsOk());
  EXPECT_THAT(CheckEven(1), StatusIs(StatusCode::kInvalidArgument));
}

TEST(ResultDeathTest, OkStatusIsABug) {
  EXPECT_DEATH({ Result<int> r(Status::Ok()); }, "OK Status");
}

}  // namespace
}  // namespace locrit

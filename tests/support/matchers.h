// GoogleTest matchers for Status and Result<T>: EXPECT_THAT(s, IsOk()),
// EXPECT_THAT(r, StatusIs(StatusCode::kNotFound)).
#pragma once

#include <gmock/gmock.h>

#include "base/status.h"

namespace locrit {
// gtest printers: show the status, not the bytes.
inline void PrintTo(const Status& s, std::ostream* os) { *os << s; }
template <typename T>
void PrintTo(const Result<T>& r, std::ostream* os) {
  *os << (r.ok() ? std::string("ok") : r.status().ToString());
}
}  // namespace locrit

namespace locrit::testing {

inline const Status& GetStatus(const Status& s) { return s; }
template <typename T>
const Status& GetStatus(const Result<T>& r) {
  return r.status();
}

MATCHER(IsOk, "is OK") {
  const Status& s = GetStatus(arg);
  if (!s.ok()) *result_listener << "status is " << s;
  return s.ok();
}

MATCHER_P(StatusIs, code, "has status code " + std::string(StatusCodeName(code))) {
  const Status& s = GetStatus(arg);
  *result_listener << "status is " << s;
  return s.code() == code;
}

}  // namespace locrit::testing

// ASSERT_OK_AND_ASSIGN(auto x, MakeX());
#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  LOCRIT_ASSERT_OK_AND_ASSIGN_IMPL_(LOCRIT_CONCAT_(locrit_test_result_, __LINE__), lhs, expr)
#define LOCRIT_ASSERT_OK_AND_ASSIGN_IMPL_(result, lhs, expr) \
  auto result = (expr);                                      \
  ASSERT_TRUE(result.ok()) << result.status();               \
  lhs = std::move(result).value()

#define ASSERT_OK(expr) ASSERT_THAT((expr), ::locrit::testing::IsOk())
#define EXPECT_OK(expr) EXPECT_THAT((expr), ::locrit::testing::IsOk())

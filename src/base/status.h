// Status and Result<T>: the error vocabulary of every fallible Locrit function.
//
// A code is chosen by what the caller should do next (retry on kUnavailable, fix the input on
// kInvalidArgument, back off on kResourceExhausted). Status is a cheap value type: OK carries no
// allocation. Thread-compatible.
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace locrit {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,
  kNotFound,
  kAlreadyExists,
  kFailedPrecondition,
  kUnavailable,
  kDeadlineExceeded,
  kResourceExhausted,
  kCancelled,
  kUnimplemented,
  kIoError,
  kCorruption,
  kInternal,
  kLlmError,  // The language model server failed or answered something unusable.
};

// The stable snake_case name of a code ("not_found"), used on the wire and in logs.
std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message);

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "not_found: message 42 does not exist".
  std::string ToString() const;

  // Returns a copy whose message is "<context>: <message>".
  Status WithContext(std::string_view context) const;

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

std::ostream& operator<<(std::ostream& os, const Status& status);

inline Status InvalidArgumentError(std::string m) {
  return {StatusCode::kInvalidArgument, std::move(m)};
}
inline Status NotFoundError(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status AlreadyExistsError(std::string m) {
  return {StatusCode::kAlreadyExists, std::move(m)};
}
inline Status FailedPreconditionError(std::string m) {
  return {StatusCode::kFailedPrecondition, std::move(m)};
}
inline Status UnavailableError(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
inline Status DeadlineExceededError(std::string m) {
  return {StatusCode::kDeadlineExceeded, std::move(m)};
}
inline Status ResourceExhaustedError(std::string m) {
  return {StatusCode::kResourceExhausted, std::move(m)};
}
inline Status CancelledError(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }
inline Status UnimplementedError(std::string m) {
  return {StatusCode::kUnimplemented, std::move(m)};
}
inline Status IoError(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
inline Status CorruptionError(std::string m) { return {StatusCode::kCorruption, std::move(m)}; }
inline Status InternalError(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
inline Status LlmError(std::string m) { return {StatusCode::kLlmError, std::move(m)}; }

// Either a T or a non-OK Status. Constructing a Result from an OK Status is a bug (aborts).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}  // NOLINT: implicit by design, like StatusOr.
  Result(Status status);                         // NOLINT

  bool ok() const { return std::holds_alternative<T>(state_); }
  const Status& status() const;

  // REQUIRES: ok().
  T& value() & { return std::get<T>(state_); }
  const T& value() const& { return std::get<T>(state_); }
  T&& value() && { return std::get<T>(std::move(state_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<Status, T> state_;
};

namespace internal {
[[noreturn]] void DieOkStatusInResult();
const Status& OkStatus();
}  // namespace internal

template <typename T>
Result<T>::Result(Status status) : state_(std::move(status)) {
  if (std::get<Status>(state_).ok()) internal::DieOkStatusInResult();
}

template <typename T>
const Status& Result<T>::status() const {
  if (ok()) return internal::OkStatus();
  return std::get<Status>(state_);
}

}  // namespace locrit

#define LOCRIT_CONCAT_INNER_(a, b) a##b
#define LOCRIT_CONCAT_(a, b) LOCRIT_CONCAT_INNER_(a, b)

// Returns the Status of `expr` from the enclosing function when it is not OK.
#define RETURN_IF_ERROR(expr)                              \
  do {                                                     \
    ::locrit::Status locrit_status_ = (expr);              \
    if (!locrit_status_.ok()) return locrit_status_;       \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, MakeX());` declares x from the value, or returns the error.
#define ASSIGN_OR_RETURN(lhs, expr) \
  LOCRIT_ASSIGN_OR_RETURN_IMPL_(LOCRIT_CONCAT_(locrit_result_, __LINE__), lhs, expr)
#define LOCRIT_ASSIGN_OR_RETURN_IMPL_(result, lhs, expr) \
  auto result = (expr);                                  \
  if (!result.ok()) return result.status();              \
  lhs = std::move(result).value()

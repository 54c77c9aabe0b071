// Status and Result<T>: errors as values at API boundaries.
//
// Nothing below the poll loop throws across a thread or loop boundary; a
// function that can fail for reasons the caller must handle returns one of
// these instead. The code says what kind of failure it is, so callers (and
// plantd-mdp's exit status) can tell a timeout from an unknown service.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace plantd {

class [[nodiscard]] Status {
 public:
  enum class Code {
    kOk,
    kInvalidArgument,   // the caller asked for something impossible
    kTimeout,           // no answer in time
    kUnavailable,       // no broker could be reached
    kNotFound,          // the service has no worker (8/MMI 404)
    kProtocolError,     // the peer sent something that is not MDP
    kCancelled,         // stopped on request
    kPermissionDenied,  // the broker refused this peer's key or request
    kInternal,
  };

  Status() = default;
  static Status Ok() { return Status(); }
  static Status Error(std::string message) { return Status(Code::kInternal, std::move(message)); }
  static Status InvalidArgument(std::string m) {
    return Status(Code::kInvalidArgument, std::move(m));
  }
  static Status Timeout(std::string m) { return Status(Code::kTimeout, std::move(m)); }
  static Status Unavailable(std::string m) { return Status(Code::kUnavailable, std::move(m)); }
  static Status NotFound(std::string m) { return Status(Code::kNotFound, std::move(m)); }
  static Status ProtocolError(std::string m) { return Status(Code::kProtocolError, std::move(m)); }
  static Status Cancelled(std::string m) { return Status(Code::kCancelled, std::move(m)); }
  static Status PermissionDenied(std::string m) {
    return Status(Code::kPermissionDenied, std::move(m));
  }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  // Empty when ok().
  const std::string& message() const { return message_; }

 private:
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : value_(std::move(status)) {}  // NOLINT: implicit by design

  bool ok() const { return std::holds_alternative<T>(value_); }
  // REQUIRES: ok()
  T& value() { return std::get<T>(value_); }
  const T& value() const { return std::get<T>(value_); }
  T* operator->() { return &value(); }
  T& operator*() { return value(); }
  // Ok when ok().
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(value_); }

 private:
  std::variant<T, Status> value_;
};

}  // namespace plantd

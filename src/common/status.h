// Status and Result<T>: errors as values at API boundaries.
//
// Nothing below the poll loop throws across a thread or loop boundary; a
// function that can fail for reasons the caller must handle returns one of
// these instead.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace plantd {

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  static Status Ok() { return Status(); }
  static Status Error(std::string message) { return Status(std::move(message)); }

  bool ok() const { return !message_.has_value(); }
  // REQUIRES: !ok()
  const std::string& message() const { return *message_; }

 private:
  explicit Status(std::string message) : message_(std::move(message)) {}
  std::optional<std::string> message_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}             // NOLINT: implicit by design
  Result(Status status) : value_(std::move(status)) {}      // NOLINT: implicit by design

  bool ok() const { return std::holds_alternative<T>(value_); }
  // REQUIRES: ok()
  T& value() { return std::get<T>(value_); }
  const T& value() const { return std::get<T>(value_); }
  // REQUIRES: !ok()
  const Status& status() const { return std::get<Status>(value_); }

 private:
  std::variant<T, Status> value_;
};

}  // namespace plantd

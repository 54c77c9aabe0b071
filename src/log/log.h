// Structured logging on top of spdlog, in two formats: `text` for people and
// `json` (one object per line) for log aggregation.
//
//   PLANTD_LOG_INFO("worker expired", {{"service", name}, {"worker", id}});
//
// The macros test the level before evaluating their arguments, so a disabled
// level costs one relaxed atomic load on the hot path and formats nothing.
// Never log message bodies: they may hold passwords.
#pragma once

#include <spdlog/spdlog.h>

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "config/options.h"

namespace plantd::log {

// One structured field. Numbers are kept unquoted in JSON.
struct Field {
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const std::string& v) : key(k), value(v) {}
  Field(std::string_view k, const char* v) : key(k), value(v) {}
  template <typename N, typename = std::enable_if_t<std::is_arithmetic_v<N>>>
  Field(std::string_view k, N n) : key(k), value(std::to_string(n)), numeric(true) {}

  std::string_view key;
  std::string value;
  bool numeric = false;
};

// Installs the stderr logger. Safe to call again (SIGHUP) to change level and
// format while other threads log.
void Configure(const LogOptions& options);

inline bool Enabled(spdlog::level::level_enum level) {
  return spdlog::default_logger_raw()->should_log(level);
}

void Write(spdlog::level::level_enum level, std::string_view msg,
           std::initializer_list<Field> fields = {});
// The same with fields built at run time.
void WriteFields(spdlog::level::level_enum level, std::string_view msg,
                 std::span<const Field> fields);

// `s` as a quoted JSON string that is always valid UTF-8: control characters
// escaped, each byte that is not part of a well-formed UTF-8 sequence
// replaced by U+FFFD.
std::string JsonString(std::string_view s);

// Renders bytes that may be binary (routing ids) as lowercase hex.
std::string Hex(std::string_view bytes);

// A name off the wire (a service, a topic), fit for a log line: at most 64
// bytes, each outside printable ASCII shown as '?', "..." when cut.
std::string Printable(std::string_view s);

}  // namespace plantd::log

#define PLANTD_LOG_AT(level, ...)                                                \
  do {                                                                           \
    if (::plantd::log::Enabled(level)) ::plantd::log::Write(level, __VA_ARGS__); \
  } while (0)
#define PLANTD_LOG_TRACE(...) PLANTD_LOG_AT(spdlog::level::trace, __VA_ARGS__)
#define PLANTD_LOG_DEBUG(...) PLANTD_LOG_AT(spdlog::level::debug, __VA_ARGS__)
#define PLANTD_LOG_INFO(...) PLANTD_LOG_AT(spdlog::level::info, __VA_ARGS__)
#define PLANTD_LOG_WARN(...) PLANTD_LOG_AT(spdlog::level::warn, __VA_ARGS__)
#define PLANTD_LOG_ERROR(...) PLANTD_LOG_AT(spdlog::level::err, __VA_ARGS__)

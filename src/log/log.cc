#include "log/log.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <atomic>
#include <memory>
#include <mutex>

namespace plantd::log {
namespace {

std::atomic<bool> g_json{false};

spdlog::level::level_enum ToSpdlog(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace: return spdlog::level::trace;
    case LogLevel::kDebug: return spdlog::level::debug;
    case LogLevel::kInfo: return spdlog::level::info;
    case LogLevel::kWarn: return spdlog::level::warn;
    case LogLevel::kError: return spdlog::level::err;
  }
  return spdlog::level::info;
}

// Our level words, not spdlog's ("warning"), so they match the config values.
class LevelFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    static constexpr std::string_view kNames[] = {"trace", "debug", "info", "warn",
                                                  "error", "error", "off"};
    const std::string_view name = kNames[static_cast<int>(msg.level)];
    dest.append(name.data(), name.data() + name.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<LevelFlag>();
  }
};

// Length of the well-formed UTF-8 sequence (RFC 3629) at the start of `s`,
// or 0 when it is not one: a stray continuation byte, a truncated sequence,
// an overlong form, a surrogate or a code point past U+10FFFF.
size_t Utf8SequenceLength(std::string_view s) {
  const auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // bounds of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;  // overlong
    if (c == 0xED) hi = 0x9F;  // surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;  // overlong
    if (c == 0xF4) hi = 0x8F;  // past U+10FFFF
  } else {
    return 0;
  }
  if (s.size() < n || b(1) < lo || b(1) > hi) return 0;
  for (size_t i = 2; i < n; ++i) {
    if (b(i) < 0x80 || b(i) > 0xBF) return 0;
  }
  return n;
}

// A JSON string, always valid UTF-8: names copied from the wire (services,
// topics) may hold any bytes, and a log shipper drops a line that is not
// valid JSON. Each byte that does not start a well-formed sequence becomes
// U+FFFD, as Go's encoding/json does.
void AppendJsonString(std::string& out, std::string_view s) {
  out += '"';
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"':
        out += "\\\"";
        ++i;
        continue;
      case '\\':
        out += "\\\\";
        ++i;
        continue;
      case '\n':
        out += "\\n";
        ++i;
        continue;
      case '\r':
        out += "\\r";
        ++i;
        continue;
      case '\t':
        out += "\\t";
        ++i;
        continue;
      default: break;
    }
    if (c < 0x20) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 15];
      ++i;
      continue;
    }
    const size_t n = Utf8SequenceLength(s.substr(i));
    if (n == 0) {
      out += "\\ufffd";
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  out += '"';
}

// Text format: a value is quoted (and escaped as in JSON) when it would
// otherwise be ambiguous or hold bytes that are not printable UTF-8.
bool NeedsQuotes(std::string_view s) {
  if (s.empty()) return true;
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == ' ' || c == '"' || c == '=' || c < 0x20 || c == 0x7f) return true;
    const size_t n = Utf8SequenceLength(s.substr(i));
    if (n == 0) return true;
    i += n;
  }
  return false;
}

std::mutex g_configure_mutex;

}  // namespace

void Configure(const LogOptions& options) {
  std::lock_guard<std::mutex> lock(g_configure_mutex);
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    auto l = std::make_shared<spdlog::logger>("plantd", sink);
    spdlog::set_default_logger(l);
    return l;
  }();
  const bool json = options.format == LogFormat::kJson;
  // RFC 3339 in UTC with microseconds.
  const char* pattern = json ? R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%*",%v})"
                             : "%Y-%m-%dT%H:%M:%S.%fZ %-5* %v";
  auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc,
                                                               std::string("\n"));
  formatter->add_flag<LevelFlag>('*').set_pattern(pattern);
  logger->set_formatter(std::move(formatter));
  g_json.store(json, std::memory_order_relaxed);
  logger->set_level(ToSpdlog(options.level));
  logger->flush_on(spdlog::level::warn);
}

void Write(spdlog::level::level_enum level, std::string_view msg,
           std::initializer_list<Field> fields) {
  WriteFields(level, msg, std::span<const Field>(fields.begin(), fields.size()));
}

void WriteFields(spdlog::level::level_enum level, std::string_view msg,
                 std::span<const Field> fields) {
  std::string line;
  line.reserve(64 + msg.size());
  if (g_json.load(std::memory_order_relaxed)) {
    line += "\"msg\":";
    AppendJsonString(line, msg);
    for (const Field& f : fields) {
      line += ',';
      AppendJsonString(line, f.key);
      line += ':';
      if (f.numeric) {
        line += f.value;
      } else {
        AppendJsonString(line, f.value);
      }
    }
  } else {
    line.append(msg);
    for (const Field& f : fields) {
      line += ' ';
      line.append(f.key);
      line += '=';
      if (NeedsQuotes(f.value)) {
        AppendJsonString(line, f.value);
      } else {
        line += f.value;
      }
    }
  }
  spdlog::default_logger_raw()->log(level, "{}", line);
}

std::string JsonString(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  AppendJsonString(out, s);
  return out;
}

std::string Hex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

std::string Printable(std::string_view s) {
  constexpr size_t kMax = 64;
  std::string out(s.substr(0, kMax));
  for (char& c : out) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  if (s.size() > kMax) out += "...";
  return out;
}

}  // namespace plantd::log

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

void AppendJsonString(std::string& out, std::string_view s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          static constexpr char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

bool NeedsQuotes(std::string_view s) {
  if (s.empty()) return true;
  for (char c : s) {
    if (c == ' ' || c == '"' || c == '=' || static_cast<unsigned char>(c) < 0x20) return true;
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
  auto formatter = std::make_unique<spdlog::pattern_formatter>(
      spdlog::pattern_time_type::utc, std::string("\n"));
  formatter->add_flag<LevelFlag>('*').set_pattern(pattern);
  logger->set_formatter(std::move(formatter));
  g_json.store(json, std::memory_order_relaxed);
  logger->set_level(ToSpdlog(options.level));
  logger->flush_on(spdlog::level::warn);
}

void Write(spdlog::level::level_enum level, std::string_view msg,
           std::initializer_list<Field> fields) {
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

}  // namespace plantd::log

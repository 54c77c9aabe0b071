#include "common/units.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <utility>

namespace plantd {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Splits "2.5s" into "2.5" and "s".
void SplitNumber(std::string_view text, std::string_view* number, std::string_view* unit) {
  size_t i = 0;
  while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.')) ++i;
  *number = text.substr(0, i);
  *unit = Trim(text.substr(i));
}

}  // namespace

Result<uint64_t> ParseUnsigned(std::string_view text) {
  text = Trim(text);
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return Status::Error("expected a non-negative integer");
  }
  return value;
}

Result<std::chrono::nanoseconds> ParseDuration(std::string_view text,
                                               std::chrono::nanoseconds bare_unit) {
  const Status bad = Status::Error(
      "expected a positive duration such as 250ms, 2.5s or 1m (units ns, us, ms, s, m, h)");
  text = Trim(text);
  std::string_view number, unit;
  SplitNumber(text, &number, &unit);
  if (number.empty() || number == ".") return bad;
  char* end = nullptr;
  const std::string number_copy(number);
  const double value = std::strtod(number_copy.c_str(), &end);
  if (end != number_copy.c_str() + number_copy.size() || !std::isfinite(value)) return bad;

  double ns_per_unit;
  if (unit.empty()) {
    if (number.find('.') != std::string_view::npos) return bad;  // "2.5" alone is ambiguous
    ns_per_unit = static_cast<double>(bare_unit.count());
  } else if (unit == "ns") {
    ns_per_unit = 1;
  } else if (unit == "us" || unit == "µs") {
    ns_per_unit = 1e3;
  } else if (unit == "ms") {
    ns_per_unit = 1e6;
  } else if (unit == "s") {
    ns_per_unit = 1e9;
  } else if (unit == "m") {
    ns_per_unit = 60e9;
  } else if (unit == "h") {
    ns_per_unit = 3600e9;
  } else {
    return bad;
  }
  const double ns = value * ns_per_unit;
  if (ns < 1 || ns > 1e18) return bad;
  return std::chrono::nanoseconds(static_cast<int64_t>(std::llround(ns)));
}

Result<uint64_t> ParseByteSize(std::string_view text) {
  const Status bad = Status::Error(
      "expected a size in bytes such as 1048576, 512KiB or 16MiB (units B, KiB, MiB, GiB, TiB, "
      "KB, MB, GB)");
  text = Trim(text);
  std::string_view number, unit;
  SplitNumber(text, &number, &unit);
  auto n = ParseUnsigned(number);
  if (!n.ok()) return bad;
  uint64_t multiplier;
  if (unit.empty() || unit == "B") {
    multiplier = 1;
  } else if (unit == "KiB" || unit == "K") {
    multiplier = 1ull << 10;
  } else if (unit == "MiB" || unit == "M") {
    multiplier = 1ull << 20;
  } else if (unit == "GiB" || unit == "G") {
    multiplier = 1ull << 30;
  } else if (unit == "TiB" || unit == "T") {
    multiplier = 1ull << 40;
  } else if (unit == "KB") {
    multiplier = 1000;
  } else if (unit == "MB") {
    multiplier = uint64_t{1000} * 1000;
  } else if (unit == "GB") {
    multiplier = uint64_t{1000} * 1000 * 1000;
  } else {
    return bad;
  }
  if (n.value() > UINT64_MAX / multiplier) return bad;
  return n.value() * multiplier;
}

std::string FormatDuration(std::chrono::nanoseconds d) {
  const int64_t ns = d.count();
  struct Unit {
    int64_t ns;
    const char* name;
  };
  static constexpr Unit kUnits[] = {{3600'000'000'000, "h"},
                                    {60'000'000'000, "m"},
                                    {1'000'000'000, "s"},
                                    {1'000'000, "ms"},
                                    {1'000, "us"}};
  for (const Unit& u : kUnits) {
    if (ns != 0 && ns % u.ns == 0) return std::to_string(ns / u.ns) + u.name;
  }
  return std::to_string(ns) + "ns";
}

std::string FormatByteSize(uint64_t bytes) {
  static constexpr std::pair<uint64_t, const char*> kUnits[] = {
      {1ull << 40, "TiB"}, {1ull << 30, "GiB"}, {1ull << 20, "MiB"}, {1ull << 10, "KiB"}};
  for (const auto& [size, name] : kUnits) {
    if (bytes != 0 && bytes % size == 0) return std::to_string(bytes / size) + name;
  }
  return std::to_string(bytes);
}

}  // namespace plantd

// Parsing of the human-written quantities found in configuration: durations
// ("250ms", "2.5s", "1m") and byte sizes ("64KiB", "16MiB").
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace plantd {

// Accepts a number with a unit (ns, us, ms, s, m, h), e.g. "250ms" or "2.5s".
// A bare integer is taken in `bare_unit` (milliseconds for the broker's own
// keys, microseconds for plantd's older heartbeat-interval).
Result<std::chrono::nanoseconds> ParseDuration(std::string_view text,
                                               std::chrono::nanoseconds bare_unit);

// Accepts an integer with an optional unit (B, KiB, MiB, GiB, TiB, KB, MB, GB).
Result<uint64_t> ParseByteSize(std::string_view text);

// Accepts a non-negative decimal integer that fits in uint64_t.
Result<uint64_t> ParseUnsigned(std::string_view text);

// "250ms", "2.5s", "1m30s" is not produced: the largest unit that divides exactly.
std::string FormatDuration(std::chrono::nanoseconds d);

// "16MiB", "512KiB", "1000": the largest binary unit that divides exactly, so
// that ParseByteSize reads back the same number.
std::string FormatByteSize(uint64_t bytes);

}  // namespace plantd

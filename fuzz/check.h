// What every harness shares: invariant checks that libFuzzer sees as
// crashes, and silence from the broker's logging.
#pragma once

#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>

namespace plantd::fuzz {

// Aborts with `what` when `condition` is false: a broken invariant is a
// finding, reported and minimised like a crash.
inline void Check(bool condition, const char* what) {
  if (condition) return;
  std::fprintf(stderr, "fuzz invariant broken: %s\n", what);
  std::abort();
}

// The broker logs refusals at warn: off, or every input would print.
inline void QuietLogs() { spdlog::set_level(spdlog::level::off); }

}  // namespace plantd::fuzz

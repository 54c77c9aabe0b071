// The small statistics every benchmark prints: percentiles of latency
// samples and medians over rounds.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace plantd::bench {

// The p-quantile (0..1) of nanosecond samples, in microseconds; 0 when
// there are none. Reorders `ns`.
inline double PercentileUs(std::vector<uint64_t>& ns, double p) {
  if (ns.empty()) return 0;
  const size_t i = std::min(ns.size() - 1, static_cast<size_t>(p * static_cast<double>(ns.size())));
  std::nth_element(ns.begin(), ns.begin() + static_cast<std::ptrdiff_t>(i), ns.end());
  return static_cast<double>(ns[i]) / 1000.0;
}

inline double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace plantd::bench

// The Prometheus text exposition (version 0.0.4) of the broker's snapshot,
// its buses and the process.
#pragma once

#include <string>
#include <vector>

#include "broker/broker_stats.h"
#include "bus/bus.h"
#include "config/options.h"

namespace plantd::http {

struct ProcessStats {
  uint64_t resident_bytes = 0;
  uint64_t open_fds = 0;
  double cpu_seconds = 0;
};
ProcessStats ReadProcessStats();

// Per-service series are written for at most options.max_service_labels
// services, and only as many as keep the whole text under about
// options.max_bytes; the others are summed into service="_other" (counters
// and gauges added, histograms bucket by bucket). Every refusal reason has
// its plantd_refused_total sample, 0 included.
std::string RenderMetrics(const broker::BrokerSnapshot& snapshot,
                          const std::vector<const bus::Bus*>& buses, const ProcessStats& process,
                          const MetricsOptions& options);

// The label value of the folded services.
inline constexpr const char* kOtherService = "_other";

// Which of `services` get their own label (true) and which are folded: the
// ones with workers first, then by requests, queued requests and name, at
// most `max_labels` of them, and no more than fit in `max_bytes` of samples.
// Deterministic for a given snapshot.
std::vector<bool> ServicesWithOwnLabels(const std::vector<broker::ServiceSnapshot>& services,
                                        size_t max_labels, size_t max_bytes);

}  // namespace plantd::http

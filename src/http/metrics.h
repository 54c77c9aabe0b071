// The Prometheus text exposition (version 0.0.4) of the broker's snapshot,
// its buses and the process.
#pragma once

#include <string>
#include <vector>

#include "broker/broker_stats.h"
#include "bus/bus.h"

namespace plantd::http {

struct ProcessStats {
  uint64_t resident_bytes = 0;
  uint64_t open_fds = 0;
  double cpu_seconds = 0;
};
ProcessStats ReadProcessStats();

std::string RenderMetrics(const broker::BrokerSnapshot& snapshot,
                          const std::vector<const bus::Bus*>& buses, const ProcessStats& process);

}  // namespace plantd::http

// What /healthz, /livez and /readyz report, computed from the core's
// snapshot and the buses' counters (never from live broker state).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "broker/broker_stats.h"
#include "bus/bus.h"
#include "config/options.h"
#include "store/request_store.h"

namespace plantd::http {

enum class HealthStatus { kPass, kWarn, kFail };
const char* HealthStatusName(HealthStatus status);

struct HealthCheck {
  std::string name;  // "broker", "bus:control"
  HealthStatus status = HealthStatus::kPass;
  std::string output;  // why, when not pass
};

struct HealthReport {
  HealthStatus status = HealthStatus::kPass;  // the worst of the checks
  std::vector<HealthCheck> checks;
};

// How recently every loop must have turned to count as alive: three
// heartbeat intervals, at least 2 s. /livez and the systemd watchdog agree.
std::chrono::milliseconds LivenessWindow(const BrokerOptions& options);

// The core is alive when its snapshot is younger than `stale_after`; each bus
// when its thread ticked within `stale_after`. A service with requests
// waiting and no worker is a warning.
HealthReport EvaluateHealth(const broker::BrokerSnapshot* snapshot,
                            const std::vector<const bus::Bus*>& buses,
                            std::chrono::steady_clock::time_point now,
                            std::chrono::milliseconds stale_after);

// A `store` check: warn, with what failed and where, while the durable store
// cannot write (full disk, read-only file, I/O error). Non-durable routing
// carries on, so it is no reason to restart: never fail.
void AddStoreCheck(const store::StoreHealth& health, HealthReport* report);

// application/health+json in the shape of the seed README.
std::string RenderHealthJson(const HealthReport& report, std::chrono::system_clock::time_point now);

}  // namespace plantd::http

// What the process tells its supervisor (systemd): whether every loop turns,
// judged as /livez judges it, and a one-line summary for STATUS=.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "app/broker_app.h"

namespace plantd {

class ProcessStatus {
 public:
  // `app` must outlive this.
  ProcessStatus(const BrokerApp* app, const BrokerOptions& options);

  // True while /livez would answer 200: the core published a snapshot and
  // every bus ticked within the liveness window.
  bool Alive(std::chrono::steady_clock::time_point now) const;

  // "12 workers, 3 services, 4 queued, 1520 req/s": the rate is over the
  // time since the previous call.
  std::string Summary(std::chrono::steady_clock::time_point now);

 private:
  const BrokerApp* const app_;
  const std::chrono::milliseconds stale_after_;
  uint64_t last_requests_ = 0;
  std::chrono::steady_clock::time_point last_time_{};
};

}  // namespace plantd

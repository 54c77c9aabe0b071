#include "app/process_status.h"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "http/health_check.h"

namespace plantd {

ProcessStatus::ProcessStatus(const BrokerApp* app, const BrokerOptions& options)
    : app_(app), stale_after_(http::LivenessWindow(options)) {}

bool ProcessStatus::Alive(std::chrono::steady_clock::time_point now) const {
  std::vector<const bus::Bus*> buses;
  for (const auto& b : app_->buses()) buses.push_back(b.get());
  const auto snapshot = app_->snapshots().Latest();
  const http::HealthReport report = http::EvaluateHealth(snapshot.get(), buses, now, stale_after_);
  for (const http::HealthCheck& check : report.checks) {
    // Liveness: a stalled loop fails; a warning (requests waiting for a
    // service with no worker) is no reason to restart.
    if (check.status == http::HealthStatus::kFail) return false;
  }
  return snapshot != nullptr;
}

std::string ProcessStatus::Summary(std::chrono::steady_clock::time_point now) {
  const auto snapshot = app_->snapshots().Latest();
  if (!snapshot) return "starting";
  size_t workers = 0, queued = 0;
  for (const broker::ServiceSnapshot& s : snapshot->services) {
    workers += s.workers;
    queued += s.queued;
  }
  const uint64_t requests = snapshot->totals.requests;
  double rate = 0;
  if (last_time_ != std::chrono::steady_clock::time_point{} && now > last_time_) {
    const double seconds = std::chrono::duration<double>(now - last_time_).count();
    rate = static_cast<double>(requests - std::min(requests, last_requests_)) / seconds;
  }
  last_requests_ = requests;
  last_time_ = now;
  return fmt::format("{} workers, {} services, {} queued, {:.0f} req/s", workers,
                     snapshot->services.size(), queued, rate);
}

}  // namespace plantd

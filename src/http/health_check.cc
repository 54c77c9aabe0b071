#include "http/health_check.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "build_info.h"

namespace plantd::http {

std::chrono::milliseconds LivenessWindow(const BrokerOptions& options) {
  return std::max(std::chrono::milliseconds(2000), options.heartbeat_interval * 3);
}

using std::chrono::duration_cast;
using std::chrono::milliseconds;

const char* HealthStatusName(HealthStatus status) {
  switch (status) {
    case HealthStatus::kPass: return "pass";
    case HealthStatus::kWarn: return "warn";
    case HealthStatus::kFail: return "fail";
  }
  return "fail";
}

HealthReport EvaluateHealth(const broker::BrokerSnapshot* snapshot,
                            const std::vector<const bus::Bus*>& buses,
                            std::chrono::steady_clock::time_point now, milliseconds stale_after) {
  HealthReport report;
  HealthCheck core{"broker", HealthStatus::kPass, ""};
  if (snapshot == nullptr) {
    core = {"broker", HealthStatus::kFail, "the broker core has not started"};
  } else if (now - snapshot->taken_at_steady > stale_after) {
    const auto age = duration_cast<milliseconds>(now - snapshot->taken_at_steady).count();
    core = {"broker", HealthStatus::kFail,
            "the broker core loop has not ticked for " + std::to_string(age) + " ms"};
  } else {
    for (const auto& s : snapshot->services) {
      if (s.queued > 0 && s.workers == 0) {
        core = {"broker", HealthStatus::kWarn,
                "requests are waiting for service " + s.name + ", which has no worker"};
        break;
      }
    }
  }
  report.checks.push_back(core);

  const int64_t now_ns = duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  for (const bus::Bus* b : buses) {
    const int64_t age_ms = (now_ns - b->counters().last_tick_ns.load()) / 1'000'000;
    HealthCheck check{"bus:" + b->options().name, HealthStatus::kPass, ""};
    if (age_ms > stale_after.count()) {
      check.status = HealthStatus::kFail;
      check.output = "the bus thread has not ticked for " + std::to_string(age_ms) + " ms";
    }
    report.checks.push_back(check);
  }
  for (const HealthCheck& c : report.checks) {
    if (static_cast<int>(c.status) > static_cast<int>(report.status)) report.status = c.status;
  }
  return report;
}

std::string RenderHealthJson(const HealthReport& report,
                             std::chrono::system_clock::time_point now) {
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char time[32];
  std::strftime(time, sizeof(time), "%Y-%m-%dT%H:%M:%SZ", &tm);

  nlohmann::json checks = nlohmann::json::object();
  for (const HealthCheck& c : report.checks) {
    nlohmann::json entry = {{"status", HealthStatusName(c.status)}, {"time", time}};
    if (!c.output.empty()) entry["output"] = c.output;
    checks[c.name] = entry;
  }
  nlohmann::json doc = {{"status", HealthStatusName(report.status)},
                        {"version", "1"},
                        {"releaseId", kVersion},
                        {"checks", checks}};
  return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void AddStoreCheck(const store::StoreHealth& health, HealthReport* report) {
  HealthCheck check{.name = "store"};
  if (!health.ok) {
    check.status = HealthStatus::kWarn;
    check.output = health.message;
    if (report->status == HealthStatus::kPass) report->status = HealthStatus::kWarn;
  }
  report->checks.push_back(std::move(check));
}

}  // namespace plantd::http

// What the broker counts per service, declared once. The core increments
// the fields; /metrics, /status, mmi.broker and org.plantd.Broker show them
// by walking kServiceCounterSpecs, so a counter has one name and one meaning
// everywhere, and a test checks that docs/operations.md says the same.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace plantd::broker {

// Round-trip latency with fixed buckets (Prometheus-style cumulative on export).
class LatencyHistogram {
 public:
  static constexpr std::array<double, 14> kBoundsSeconds = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0};

  void Record(std::chrono::nanoseconds d) {
    const double s = std::chrono::duration<double>(d).count();
    size_t i = 0;
    while (i < kBoundsSeconds.size() && s > kBoundsSeconds[i]) ++i;
    ++buckets_[i];
    sum_seconds_ += s;
    ++count_;
  }
  // Per bucket, not cumulative; the last one is +Inf.
  const std::array<uint64_t, kBoundsSeconds.size() + 1>& buckets() const { return buckets_; }
  double sum_seconds() const { return sum_seconds_; }
  uint64_t count() const { return count_; }

 private:
  std::array<uint64_t, kBoundsSeconds.size() + 1> buckets_{};
  double sum_seconds_ = 0;
  uint64_t count_ = 0;
};

// The meaning of each field is in kServiceCounterSpecs below.
struct ServiceCounters {
  uint64_t requests = 0;
  uint64_t replies = 0;
  uint64_t partials = 0;
  uint64_t redispatched = 0;
  uint64_t expired = 0;
  uint64_t refused = 0;
  uint64_t failed = 0;
  LatencyHistogram latency;

  // Adds every counter of the table (not the latency histogram).
  void AddCounts(const ServiceCounters& other);
};

struct ServiceCounterSpec {
  std::string_view key;      // in /status, mmi.broker and org.plantd.Broker
  std::string_view metric;   // the Prometheus counter, labelled by service
  std::string_view meaning;  // its HELP text, and the meaning in the docs
  uint64_t ServiceCounters::*field;
};

// "failed" means one thing: a request given up after its workers were lost
// more than max_redispatch times. Requests that expired or were refused are
// counted apart, never as failed.
inline constexpr std::array<ServiceCounterSpec, 7> kServiceCounterSpecs = {{
    {"requests", "plantd_broker_requests_total",
     "requests accepted from clients (and stored requests dispatched)", &ServiceCounters::requests},
    {"replies", "plantd_broker_replies_total", "FINAL replies delivered",
     &ServiceCounters::replies},
    {"partials", "plantd_broker_partials_total", "PARTIAL replies delivered",
     &ServiceCounters::partials},
    {"redispatched", "plantd_broker_redispatched_total",
     "requests sent again after their worker was lost", &ServiceCounters::redispatched},
    {"expired", "plantd_broker_expired_total", "requests that waited longer than request_expiry",
     &ServiceCounters::expired},
    {"refused", "plantd_broker_refused_total",
     "requests refused because the service's queue was full (max_queue_per_service)",
     &ServiceCounters::refused},
    {"failed", "plantd_broker_failed_total",
     "requests given up after more than max_redispatch lost workers", &ServiceCounters::failed},
}};

inline void ServiceCounters::AddCounts(const ServiceCounters& other) {
  for (const ServiceCounterSpec& spec : kServiceCounterSpecs)
    this->*spec.field += other.*spec.field;
}

}  // namespace plantd::broker

// What the broker core counts, and the snapshot of it that other threads
// (HTTP, logs) may read. The core owns the live counters as plain integers;
// other threads only ever see a published, immutable snapshot.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace plantd::broker {

// Round-trip latency with fixed buckets (Prometheus-style cumulative on export).
class LatencyHistogram {
 public:
  static constexpr std::array<double, 14> kBoundsSeconds = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
      0.025,  0.05,    0.1,    0.25,  0.5,    1.0,   5.0};

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

struct ServiceCounters {
  uint64_t requests = 0;      // accepted from clients
  uint64_t replies = 0;       // FINALs delivered
  uint64_t partials = 0;      // PARTIALs delivered
  uint64_t redispatched = 0;  // sent again after their worker was lost
  uint64_t expired = 0;       // waited longer than request_expiry
  uint64_t refused = 0;       // queue full
  uint64_t failed = 0;        // lost their worker more than max_redispatch times
  LatencyHistogram latency;
};

// Why a message was dropped as invalid. Each is counted and logged at debug.
enum class InvalidReason : uint8_t {
  kTooFewFrames,
  kUnknownHeader,
  kUnknownCommand,
  kEmptyService,
  kTooLarge,
  kTooManyFrames,
  kNotReady,         // a command other than READY from an unknown worker
  kDuplicateReady,   // READY from a registered worker
  kReservedService,  // READY for mmi.* or org.plantd.Broker
  kStaleReply,       // a reply for a request the worker no longer holds
  kCount,
};
const char* InvalidReasonName(InvalidReason reason);

// Why a worker was removed. Each is counted and logged.
enum class WorkerRemoval : uint8_t {
  kHeartbeatExpired,
  kDisconnect,          // the worker said DISCONNECT
  kProtocolViolation,   // the broker sent DISCONNECT
  kUnreachable,         // its connection is gone
  kShutdown,
  kCount,
};
const char* WorkerRemovalName(WorkerRemoval reason);

struct BrokerCounters {
  std::array<uint64_t, static_cast<size_t>(InvalidReason::kCount)> invalid{};
  std::array<uint64_t, static_cast<size_t>(WorkerRemoval::kCount)> workers_removed{};
  uint64_t workers_registered = 0;
  uint64_t workers_refused = 0;     // max_workers reached
  uint64_t services_refused = 0;    // max_services reached
  uint64_t mmi_requests = 0;
  uint64_t client_unreachable = 0;  // a reply for a client that is gone
  uint64_t messages_in = 0;
  uint64_t messages_out = 0;
};

struct ServiceSnapshot {
  std::string name;
  size_t workers = 0;
  size_t idle_workers = 0;
  size_t queued = 0;
  ServiceCounters counters;
};

struct WorkerSnapshot {
  std::string identity;  // hex
  std::string service;
  std::string dialect;
  bool busy = false;
  int credit = 1;
  size_t in_flight = 0;
  double last_seen_seconds_ago = 0;
  uint64_t served = 0;
};

struct BrokerSnapshot {
  std::chrono::system_clock::time_point taken_at;
  std::chrono::steady_clock::time_point taken_at_steady;
  double uptime_seconds = 0;
  bool endpoints_bound = false;
  std::vector<std::string> endpoints;
  BrokerCounters counters;
  ServiceCounters totals;  // summed over services, including removed ones
  std::vector<ServiceSnapshot> services;
  std::vector<WorkerSnapshot> workers;
  size_t requests_in_memory = 0;
  int64_t connections = -1;        // Majordomo connections; -1: not known (transport zmq)
  uint64_t connections_refused = 0;
};

// The hand-over point between the core (writer) and readers on other threads.
// Thread-safe.
class SnapshotBoard {
 public:
  void Publish(std::shared_ptr<const BrokerSnapshot> snapshot) {
    std::lock_guard<std::mutex> lock(mutex_);
    latest_ = std::move(snapshot);
  }
  std::shared_ptr<const BrokerSnapshot> Latest() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return latest_;
  }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const BrokerSnapshot> latest_;  // GUARDED_BY(mutex_)
};

}  // namespace plantd::broker

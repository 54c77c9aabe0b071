// What the broker core counts, and the snapshot of it that other threads
// (HTTP, logs) may read. The core owns the live counters as plain integers;
// other threads only ever see a published, immutable snapshot.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "broker/service_counters.h"
#include "broker/titanic.h"

namespace plantd::broker {

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
  kDisconnect,         // the worker said DISCONNECT
  kProtocolViolation,  // the broker sent DISCONNECT
  kUnreachable,        // a message to it could not be queued (gone, or at its HWM)
  kConnectionClosed,   // the transport reported its connection closed
  kShutdown,
  kCount,
};
const char* WorkerRemovalName(WorkerRemoval reason);

// Why an accepted request was dropped before a worker answered it (expiry,
// queue-full refusals and repeated worker failure are counted per service).
enum class RequestDrop : uint8_t {
  kClientGone,  // its client's connection closed while it was queued
  kShutdown,    // the broker stopped before a worker answered it
  kCount,
};
const char* RequestDropName(RequestDrop reason);

struct BrokerCounters {
  std::array<uint64_t, static_cast<size_t>(InvalidReason::kCount)> invalid{};
  std::array<uint64_t, static_cast<size_t>(WorkerRemoval::kCount)> workers_removed{};
  std::array<uint64_t, static_cast<size_t>(RequestDrop::kCount)> dropped{};
  uint64_t workers_registered = 0;
  uint64_t workers_refused = 0;  // max_workers reached
  // A request that would have created a service past max_services,
  // limits.max_client_services or limits.max_unserved_services.
  uint64_t services_refused = 0;
  uint64_t shutdown_refused = 0;  // requests that arrived while stopping
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
  std::string identity;  // ShortId() of the routing id, never the id itself
  std::string key;       // its CURVE key's name; empty with NULL
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
  bool draining = false;  // stopping: new requests are refused (Broker::Stop)
  std::vector<std::string> endpoints;
  BrokerCounters counters;
  ServiceCounters totals;  // summed over services, including removed ones
  std::vector<ServiceSnapshot> services;
  std::vector<WorkerSnapshot> workers;
  size_t requests_in_memory = 0;
  size_t unserved_services = 0;  // services no worker has served yet
  size_t clients_tracked = 0;    // client connections with queued requests or unserved services
  int64_t connections = -1;      // Majordomo connections; -1: not known (transport zmq)
  uint64_t connections_refused = 0;
  // The process's native sockets together (transport::BufferBudget), as
  // RouterSocket::Stats has them; -1: not known (transport zmq).
  int64_t buffered_bytes = -1;
  int64_t shared_input_bytes = -1;
  uint64_t frames_copied_past_limit = 0;
  uint64_t announce_declined = 0;
  // Durable requests (9/TSP), as the core sees them; the store's own
  // numbers come from RequestStore::stats() (BrokerApp::store()).
  bool titanic_enabled = false;  // store.enabled and the store opened
  Titanic::Stats titanic;
  size_t titanic_inflight = 0;  // stored requests in the core (queued or with a worker)
  size_t titanic_waiting = 0;   // titanic.* answers waiting for the store
};

// The hand-over point between the core (writer) and readers on other threads.
// The core publishes a snapshot periodically (the health checks read its age
// to tell a live core from a stuck one) and, on a reader's request, at the
// end of its next loop turn: /status is then as fresh as the last message
// the core routed, and a stuck core costs the reader a bounded wait, never
// a hang. Thread-safe.
class SnapshotBoard {
 public:
  SnapshotBoard();
  ~SnapshotBoard();
  SnapshotBoard(const SnapshotBoard&) = delete;
  SnapshotBoard& operator=(const SnapshotBoard&) = delete;

  void Publish(std::shared_ptr<const BrokerSnapshot> snapshot);
  std::shared_ptr<const BrokerSnapshot> Latest() const;

  // Reader side. Asks the core for a snapshot taken after this call and
  // waits up to `timeout` for it. Returns it with *fresh set; when the core
  // does not answer in time (stuck, stopping, not started), the latest
  // snapshot (maybe null) with *fresh false.
  std::shared_ptr<const BrokerSnapshot> Fresh(std::chrono::milliseconds timeout, bool* fresh) const;

  // Core side. Readable (level-triggered) while a reader waits: the core
  // polls it with its sockets. -1 if the eventfd could not be made (readers
  // then always get the periodic snapshot, marked stale).
  int request_fd() const { return request_fd_; }
  // Core side: consumes the wake-up; true, with the request to answer in
  // *ticket, when some reader waits for a snapshot not yet given.
  bool TakeRequest(uint64_t* ticket);
  // Core side: publishes `snapshot`, built after TakeRequest() returned
  // `ticket`, as the answer to every request up to it.
  void Answer(std::shared_ptr<const BrokerSnapshot> snapshot, uint64_t ticket);

 private:
  int request_fd_ = -1;  // eventfd, written by readers, read by the core
  // Set, and the fd written, by the first reader to ask; both cleared by the
  // core under mutex_: the fd is readable only while this is set.
  mutable std::atomic<bool> wake_pending_{false};
  mutable std::mutex mutex_;
  mutable std::condition_variable answered_cv_;
  std::shared_ptr<const BrokerSnapshot> latest_;  // GUARDED_BY(mutex_)
  mutable uint64_t requested_ = 0;                // GUARDED_BY(mutex_): last ticket handed out
  uint64_t answered_ = 0;                         // GUARDED_BY(mutex_): last ticket answered
};

}  // namespace plantd::broker

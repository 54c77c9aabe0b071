// A Majordomo worker: registers for one service with one or more brokers,
// receives requests, answers with zero or more PARTIALs and one FINAL.
// Heartbeats both ways, reconnects with backoff when a broker goes away or
// says DISCONNECT, and says DISCONNECT itself when destroyed.
//
//   plantd::mdp::Worker worker("tcp://localhost:7201", "org.plantd.MyService");
//   while (auto request = worker.Receive()) {
//     worker.Reply(*request, {"done"});
//   }
//
// Receive, Partial and Reply belong to one thread; Stop may be called from
// any thread (or a signal handler's helper thread).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "plantd/mdp/client.h"
#include "plantd/status.h"

namespace plantd::mdp {

struct WorkerOptions {
  // A worker given several brokers registers with each.
  std::vector<std::string> endpoints{"tcp://127.0.0.1:7201"};
  std::string service;
  Protocol protocol = Protocol::kMdp02;
  // 18/MDP heartbeating; use the broker's values.
  std::chrono::milliseconds heartbeat_interval{2500};
  int heartbeat_liveness = 3;
  // After losing a broker: wait this long, doubling up to the maximum.
  std::chrono::milliseconds reconnect_delay{250};
  std::chrono::milliseconds reconnect_delay_max{8000};
  // Requests the brokers may hand this worker at once (docs/credit.md). 1 is
  // standard MDP; more needs plantd-broker (an RFC broker ignores it). With
  // several brokers the credit is split between them (7 over 3 brokers: 3,
  // 2 and 2), so that together they never hand it more; each gets at least
  // 1, so a worker with fewer credits than brokers may hold one per broker.
  // While a broker is away its share is unused.
  int credit = 1;
  // CURVE keys for a broker that requires them (plantd/curve.h).
  CurveOptions curve;
  Engine engine = Engine::kAuto;
};

struct WorkerRequest {
  Frames body;
  std::string address;    // opaque (18/MDP): hand it back unchanged
  size_t connection = 0;  // which broker it came from
};

class Worker {
 public:
  explicit Worker(WorkerOptions options);
  Worker(const std::string& endpoint, const std::string& service);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // The next request, or nullopt after `timeout` or Stop().
  std::optional<WorkerRequest> Receive(
      std::chrono::milliseconds timeout = std::chrono::milliseconds::max());

  // A PARTIAL reply (not in MDP/0.1).
  Status Partial(const WorkerRequest& request, const Frames& body);
  // The FINAL reply; the request is done.
  Status Reply(const WorkerRequest& request, const Frames& body);

  // Runs `handler` on options.credit threads until Stop(): requests are
  // handled concurrently and their replies sent as each finishes, in any
  // order. The handler's return value is the FINAL body. Returns at once
  // when no broker can be used (status() says why).
  using Handler = std::function<Frames(const WorkerRequest& request)>;
  void Serve(const Handler& handler);

  // Makes Receive return nullopt. Thread-safe.
  void Stop() { stop_.store(true); }
  bool stopped() const { return stop_.load(); }

  // How many times a broker connection was (re)established; for tests and logs.
  uint64_t registrations() const;

  // Ok, or the first endpoint that cannot be used (malformed, unknown
  // transport: kInvalidArgument). The worker serves the brokers it could
  // reach; with none, Receive returns nullopt at once.
  Status status() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::atomic<bool> stop_{false};
};

}  // namespace plantd::mdp

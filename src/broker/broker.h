// The Majordomo broker core: one thread, one ROUTER socket (native ZMTP or
// libzmq, see transport/router_socket.h) bound on every Majordomo endpoint,
// owning all routing state without locks.
//
// Clients and workers may connect to any endpoint; the header of each message
// says which it is (see mdp/codec.h). Requests wait in a per-service FairQueue
// and go to the least recently used idle worker. A worker that dies, leaves or
// breaks the protocol gives its request back to the head of the queue.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "broker/broker_stats.h"
#include "broker/request.h"
#include "broker/service.h"
#include "broker/worker_registry.h"
#include "common/clock.h"
#include "common/status.h"
#include "common/string_map.h"
#include "config/options.h"
#include "mdp/codec.h"
#include "transport/router_socket.h"

namespace plantd::broker {

class Broker {
 public:
  // `clock` and `board` must outlive the broker.
  Broker(zmq::context_t& context, const BrokerOptions& options, const Clock& clock,
         SnapshotBoard* board);
  ~Broker();
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  // Binds every Majordomo endpoint. The error names the endpoint and its
  // configuration key. Call before Run(), from the thread that will run it or
  // before that thread starts.
  Status Bind();

  // Routes until Stop(), then sends DISCONNECT to every worker. Core thread.
  void Run();

  // Asks Run() to return. Thread-safe.
  void Stop() { stop_.store(true, std::memory_order_relaxed); }

  // Test builds only: makes the core loop sleep `ms` once, to test health checks.
  void StallForTest(int ms) { stall_ms_.store(ms, std::memory_order_relaxed); }

 private:
  // Input.
  void ReceiveAndRoute();
  size_t ReceiveMessage(bool* too_large, bool* too_many);
  void RouteMessage(size_t count);
  void HandleClient(const mdp::Decoded& d, size_t count);
  void HandleWorker(const mdp::Decoded& d, size_t count);
  void HandleReady(const mdp::Decoded& d);
  void HandleReply(Worker* w, const mdp::Decoded& d, size_t count);
  void HandleManagement(const mdp::Decoded& d, size_t count);

  // Dispatch.
  Service* FindOrCreateService(std::string_view name);
  int ParseCredit(const mdp::Decoded& d) const;
  void DispatchPending(Service* s);
  // Sends r to w. On failure w is removed and r goes back to the queue head.
  bool Dispatch(Worker* w, Request* r);
  void WorkerBecameIdle(Worker* w);
  void RemoveWorker(Worker* w, WorkerRemoval reason, bool send_disconnect);
  void DropRequest(Request* r);

  // Output. Each returns false when the peer is unreachable or its queue is
  // full; the message is then dropped whole.
  bool SendWorkerCommand(std::string_view identity, mdp::Dialect dialect, mdp::Command command);
  bool SendIdentity(const void* data, size_t size);
  void SendConst(std::string_view frame, bool more);
  void SendCopyOf(const void* data, size_t size, bool more);
  void SendPrefix(const mdp::Prefix& prefix);
  // After the identity: the client's envelope (if any), then the reply prefix.
  void SendClientPrefix(const zmq::message_t* envelope, size_t envelope_count,
                        mdp::Dialect dialect, bool final);

  // Timers.
  void OnTick(SteadyTime now);
  void SendHeartbeats();
  void ExpireWorkers(SteadyTime now);
  void ExpireRequests(SteadyTime now);
  void ForgetIdleServices(SteadyTime now);
  void CountInvalid(InvalidReason reason, std::string_view identity);
  std::shared_ptr<BrokerSnapshot> BuildSnapshot(SteadyTime now, bool with_workers = true) const;

  const BrokerOptions options_;
  const Clock& clock_;
  SnapshotBoard* const board_;
  std::unique_ptr<transport::RouterSocket> router_;
  std::atomic<bool> stop_{false};
  std::atomic<int> stall_ms_{0};
  bool bound_ = false;
  std::vector<std::string> bound_endpoints_;

  WorkerRegistry workers_;
  StringMap<std::unique_ptr<Service>> services_;
  RequestPool requests_;
  uint64_t next_request_id_ = 1;

  // Reused for every received message: frames_[0] is the routing id.
  std::vector<zmq::message_t> frames_;
  zmq::message_t discard_;

  BrokerCounters counters_;
  ServiceCounters retired_;  // counters of services that were forgotten
  SteadyTime started_;
  SteadyTime next_heartbeat_;
  SteadyTime next_snapshot_;
  SteadyTime next_housekeeping_;
};

}  // namespace plantd::broker

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
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>
#include <zmq.hpp>

#include "broker/broker_stats.h"
#include "broker/client_registry.h"
#include "broker/request.h"
#include "broker/service.h"
#include "broker/titanic.h"
#include "broker/worker_registry.h"
#include "common/clock.h"
#include "common/refusal.h"
#include "common/status.h"
#include "common/string_map.h"
#include "config/options.h"
#include "mdp/codec.h"
#include "store/request_store.h"
#include "transport/router_socket.h"
#include "transport/server_security.h"

namespace plantd::broker {

class Broker final : public TitanicHost {
 public:
  // `clock` and `board` must outlive the broker.
  // `budget` is shared by every native socket of the process (null: its own).
  // `make_router` makes the socket (null: the one options.transport names);
  // unit tests pass an in-memory transport and drive `clock` by hand.
  // `security`: what peers connecting to the Majordomo endpoints must prove
  // (null: nothing; see transport/server_security.h).
  Broker(zmq::context_t& context, const BrokerOptions& options, const Clock& clock,
         SnapshotBoard* board, std::shared_ptr<transport::BufferBudget> budget = nullptr,
         const transport::RouterFactory& make_router = nullptr,
         std::shared_ptr<const transport::ServerSecurity> security = nullptr);
  ~Broker() override;
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  // Binds every Majordomo endpoint. The error names the endpoint and its
  // configuration key. Call before Run(), from the thread that will run it or
  // before that thread starts.
  Status Bind();

  // Durable requests (9/TSP): the broker answers titanic.request,
  // titanic.reply and titanic.close itself from `store`, which must outlive
  // the broker and be shut down after Run() returns. Call before Run().
  // Without it, those services answer ["500", "store disabled"].
  void EnableTitanic(store::RequestStore* store);

  // TitanicHost. Core thread (called by Titanic only).
  void ReplyToClient(uint64_t token, std::vector<std::string> frames) override;
  bool DispatchStored(const store::RequestId& id, const std::string& service,
                      const store::Frames& body) override;
  void CancelStored(const store::RequestId& id) override;

  // Routes until Stop(), then drains (below), sends DISCONNECT to every
  // worker and returns. Core thread.
  void Run();

  // Run() in steps, for tests that drive the core with an in-memory
  // transport and a manual clock: BeginRun() once, then Turn() until it
  // returns false (stopped and drained: the shutdown is finished). A turn
  // waits for input at most until the next timer is due.
  void BeginRun();
  bool Turn();

  // Asks Run() to return. Thread-safe. Run() first drains for at most
  // shutdown_grace: new requests are refused with an error reply, queued
  // ones are dropped with one, idle workers are sent DISCONNECT at once, and
  // replies to requests workers hold are still forwarded; it returns as soon
  // as none is held, or when the grace is over.
  void Stop() { stop_.store(true, std::memory_order_relaxed); }

  // What `plantd-mdp admin drain` (org.plantd.Admin, broker/admin.h) does
  // after the core has begun its drain, on the core thread: the
  // plantd-broker binary (BrokerApp) sends its own process SIGTERM, which
  // stops every part as for a signal. None by default: the core drains and
  // the embedder decides when to Stop(). Call before Run().
  void SetDrainHandler(std::function<void()> handler) { drain_handler_ = std::move(handler); }

  // Test builds only: makes the core loop sleep `ms` once, to test health checks.
  void StallForTest(int ms) { stall_ms_.store(ms, std::memory_order_relaxed); }

 private:
  // Input.
  void ReceiveAndRoute();
  size_t ReceiveMessage(bool* too_large, bool* too_many);
  void RouteMessage(size_t count);
  void HandleClient(const mdp::Decoded& d, size_t count);
  bool MayCall(const transport::AccessPolicy& policy, const mdp::Decoded& d, size_t count);
  void HandleWorker(const mdp::Decoded& d, size_t count);
  void HandleReady(const mdp::Decoded& d);
  void HandleReply(Worker* w, const mdp::Decoded& d, size_t count);
  void HandleManagement(const mdp::Decoded& d, size_t count);
  void HandleAdmin(const mdp::Decoded& d, size_t count);
  // A FINAL from the broker itself, for the service the request named.
  void SendManagementReply(const mdp::Decoded& d, const std::vector<std::string>& reply);
  void HandleTitanic(const mdp::Decoded& d, size_t count);
  // Takes the store's completions and dispatches what Titanic queued.
  void PollTitanic();
  // A stored request is done in the core (answered, failed, cancelled or
  // dropped at shutdown): forgets it. What Titanic must hear, it heard.
  void ReleaseStored(Request* r);
  // The FINAL reply to a stored request: to Titanic, not to a client.
  void FinishStored(Request* r, const mdp::Decoded& d, size_t count);
  // Connections the transport reports closed: their workers are removed and
  // their requests re-dispatched; their queued client requests are dropped.
  void HandleDisconnected();
  void WorkerConnectionClosed(std::string_view identity);
  void ClientConnectionClosed(std::string_view identity);

  // Services.
  Service* FindService(std::string_view name) const;
  // For a client's request: nullptr (and *refused set) past a table limit.
  Service* CreateServiceForClient(std::string_view name, std::string_view client,
                                  refusal::Reason* refused);
  // For a worker's READY: nullptr past max_services, after trying to make
  // room by forgetting a service with no worker and nothing queued.
  Service* FindOrCreateServiceForWorker(std::string_view name);
  Service* AddService(std::string_view name);
  void MarkServed(Service* s);
  void EraseService(StringMap<std::unique_ptr<Service>>::iterator it);

  // Refusals: counted, logged (rate-limited) and answered with an error
  // FINAL (docs/protocol.md, "Error replies").
  void RefuseRequest(refusal::Reason reason, const mdp::Decoded& d);
  void ReplyError(const zmq::message_t& client, const zmq::message_t* envelope,
                  size_t envelope_count, mdp::Dialect dialect, std::string_view service,
                  refusal::Reason reason);
  void DropForShutdown(Request* r);

  // Shutdown.
  void BeginDrain(SteadyTime now);
  bool Drained(SteadyTime now) const;
  void FinishShutdown();

  // Dispatch.
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
  // `more`: whether frames follow the prefix.
  void SendPrefix(const mdp::Prefix& prefix, bool more = true);
  // After the identity: the client's envelope (if any), then the reply prefix.
  void SendClientPrefix(const zmq::message_t* envelope, size_t envelope_count, mdp::Dialect dialect,
                        bool final, bool more);

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
  transport::AccessRulesView access_rules_;
  std::atomic<bool> stop_{false};
  std::atomic<int> stall_ms_{0};
  std::function<void()> drain_handler_;
  bool bound_ = false;
  int wake_fd_ = -1;  // epoll set of the store's and the snapshot board's fds
  std::vector<std::string> bound_endpoints_;

  WorkerRegistry workers_;
  ClientRegistry clients_;
  StringMap<std::unique_ptr<Service>> services_;
  size_t unserved_services_ = 0;           // services with ever_served false
  std::vector<std::string> disconnected_;  // reused by HandleDisconnected
  bool draining_ = false;
  SteadyTime drain_deadline_;
  RequestPool requests_;
  uint64_t next_request_id_ = 1;

  // Titanic (durable requests); null when the store is disabled.
  struct TitanicCaller {  // a client waiting for a titanic.* answer
    zmq::message_t client;
    std::vector<zmq::message_t> envelope;
    mdp::Dialect dialect = mdp::Dialect::kMdp02;
    std::string service;
  };
  std::unique_ptr<Titanic> titanic_;
  std::unordered_map<uint64_t, TitanicCaller> titanic_callers_;
  uint64_t next_titanic_token_ = 1;
  std::unordered_map<store::RequestId, Request*, store::RequestIdHash> stored_;
  std::vector<Service*> stored_queued_;  // services given stored requests this turn

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

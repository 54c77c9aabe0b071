// 9/TSP Titanic answered by the broker itself, on a RequestStore.
//
// The broker core routes client requests for `titanic.request`,
// `titanic.reply` and `titanic.close` here (like mmi.*), and answers each
// client when Titanic calls TitanicHost::ReplyToClient with the token it was
// given: the answer may come later, because it waits for the store (a
// titanic.request is acknowledged only once its request is durable).
//
// Titanic hands stored requests to the core for dispatch to their service
// (TitanicHost::DispatchStored); the core sends them to workers as ordinary
// MDP requests and reports back: OnStoredDispatched when a worker gets one,
// and exactly one of OnStoredReply (the FINAL reply) or OnStoredFailed.
// PARTIAL replies are not stored: the core does not forward them anywhere
// (nobody is waiting on the connection) and only the FINAL counts.
//
// Flow control: per service, at most `max_inflight_per_service` requests and
// `max_inflight_bytes_per_service` body bytes are in the core at a time; the
// rest stay on disk and are read (NextToDispatch) as the window frees. So a
// service with no worker holds a bounded number of requests in the core's
// queue, and a store of a million requests does not become a million queued
// messages in memory.
//
// Core thread only, like the rest of the broker core.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "store/request_store.h"

namespace plantd::broker {

// What the broker core does for Titanic. Called on the core thread.
class TitanicHost {
 public:
  virtual ~TitanicHost() = default;

  // Sends `frames` as the FINAL reply body to the client request `token`
  // (the token the core passed to Titanic::HandleRequest). If that client
  // has gone, the core drops it.
  virtual void ReplyToClient(uint64_t token, std::vector<std::string> frames) = 0;

  // Queues a stored request for `service` as an ordinary MDP request: it
  // waits for a worker with no expiry, credit and redispatch rules apply, and
  // the worker sees an ordinary REQUEST. Later the core calls
  // Titanic::OnStoredDispatched each time a worker gets it and exactly one
  // of OnStoredReply / OnStoredFailed (e.g. after max_redispatch). Returns
  // false if the core cannot take it now (a queue or service limit): Titanic
  // offers it again after retry_delay.
  virtual bool DispatchStored(const store::RequestId& id, const std::string& service,
                              const store::Frames& body) = 0;

  // titanic.close of a request the core holds: drop it from the queue if it
  // is still there, and call nothing more for it (a late reply is dropped).
  virtual void CancelStored(const store::RequestId& id) = 0;
};

class Titanic {
 public:
  struct Options {
    size_t max_inflight_per_service = 128;
    size_t max_inflight_bytes_per_service = size_t{16} << 20;
    // Dispatches of one request, counted across broker restarts, before it
    // is failed: 1 + BrokerOptions::max_redispatch. A request that crashes
    // the broker every time cannot crash it forever.
    uint32_t max_dispatches = 4;
    // Before offering again what the core or the store refused.
    std::chrono::milliseconds retry_delay{1000};
  };

  struct Stats {
    uint64_t requests = 0;        // titanic.request received
    uint64_t acknowledged = 0;    // answered 200 + UUID (durable)
    uint64_t refused_full = 0;    // answered 500: store.max_requests/max_bytes
    uint64_t store_errors = 0;    // answered 500: the store failed
    uint64_t invalid = 0;         // answered 400: malformed request or UUID
    uint64_t fetches = 0;         // titanic.reply received
    uint64_t closes = 0;          // titanic.close received
    uint64_t dispatched = 0;      // handed to the core
    uint64_t replies_stored = 0;  // FINAL replies made durable
    uint64_t failed = 0;          // requests given up on
    uint64_t recovered = 0;       // unfinished requests found at start
    uint64_t reply_retries = 0;   // FINAL replies written again after a store error
  };

  // `store` and `host` must outlive the Titanic.
  Titanic(store::RequestStore* store, TitanicHost* host, Options options);
  Titanic(const Titanic&) = delete;
  Titanic& operator=(const Titanic&) = delete;

  // titanic.request, titanic.reply or titanic.close.
  static bool IsTitanicService(std::string_view service);
  // The service that stores a request (its first body frame names where it goes).
  static constexpr std::string_view kRequestService = "titanic.request";

  // Crash recovery: hands every pending and dispatched request found in the
  // store to the core again (in store order, window by window).
  void Start(SteadyTime now);

  // A client request to a Titanic service; `body` is the MDP request body.
  // The answer goes to host->ReplyToClient(token, ...), now or later:
  //   titanic.request [service, body...] -> ["200", UUID] once durable;
  //     ["500", why] if the store is full or failing; ["400", why] if malformed.
  //   titanic.reply [UUID] -> ["200", reply...] | ["300"] pending |
  //     ["400"] unknown | ["500", why] failed request or store error.
  //   titanic.close [UUID] -> ["200"] (also for an unknown UUID) |
  //     ["400"] malformed UUID | ["500", why] store error.
  // Status frames are exactly three digits: zguide's ticlient compares them
  // whole. Any explanation is in the next frame.
  void HandleRequest(uint64_t token, std::string_view service,
                     const std::vector<std::string_view>& body);

  // Reports from the core about requests it got from DispatchStored.
  void OnStoredDispatched(const store::RequestId& id);
  void OnStoredReply(const store::RequestId& id, store::Frames reply);
  void OnStoredFailed(const store::RequestId& id, std::string reason);

  // Call when fd() is readable, and now and then (retries): takes the
  // store's completions and acts on them.
  void Poll(SteadyTime now);
  int fd() const { return store_->completion_fd(); }

  const Stats& stats() const { return stats_; }
  // Requests handed to the core and not yet reported back.
  size_t inflight() const { return inflight_.size(); }

 private:
  enum class PendingKind : uint8_t { kSubmit, kFetch, kClose, kLease, kBackground };
  struct Pending {
    PendingKind kind = PendingKind::kBackground;
    uint64_t token = 0;
    std::string service;  // kLease, kBackground
    uint64_t seq = 0;     // kBackground: to offer the request again
  };
  struct ServiceState {
    uint64_t cursor = 0;  // every unfinished request with seq <= cursor is in the core or done
    size_t inflight = 0;
    size_t inflight_bytes = 0;
    bool backlog = false;            // the store may hold requests past the cursor
    bool lease_outstanding = false;  // a NextToDispatch is in flight
    SteadyTime retry_at{};
  };
  struct InFlight {
    std::string service;
    uint64_t seq = 0;
    size_t bytes = 0;
  };
  // A FINAL reply the store failed to write (disk full, read-only, I/O):
  // written again after retry_delay, not dispatched again, so a worker's
  // work is not repeated every second while the disk is full. Lost only if
  // the broker stops first; the request is then dispatched again at start.
  // While any is waiting, no more stored requests are dispatched, so the
  // replies held here are at most the ones in flight when the disk failed.
  struct ReplyRetry {
    bool writing = false;  // handed to the store, not yet confirmed
    SteadyTime due{};
    std::string service;
    uint64_t seq = 0;
    store::Frames reply;
  };

  uint64_t Track(Pending p);
  // A background write (dispatched, reply, failure) about a request in the
  // core: its service and seq, so a failed write can offer it again.
  Pending BackgroundWrite(const store::RequestId& id) const;
  void Reply(uint64_t token, std::vector<std::string> frames);
  void OnCompletion(store::Completion& c);
  // Hands one stored request to the core; false if the core refused it.
  bool Dispatch(const std::string& service, const store::RequestId& id, uint64_t seq,
                uint32_t attempts, const store::Frames& body);
  void MaybeLease(const std::string& service);
  void Release(const store::RequestId& id);
  void OfferAgainLater(const std::string& service, uint64_t seq);
  void ForgetIfIdle(const std::string& service);
  bool HasRoom(const ServiceState& s) const {
    return s.inflight < options_.max_inflight_per_service &&
           s.inflight_bytes < options_.max_inflight_bytes_per_service;
  }

  store::RequestStore* const store_;
  TitanicHost* const host_;
  const Options options_;
  SteadyTime now_{};
  uint64_t next_tag_ = 1;
  std::unordered_map<uint64_t, Pending> pending_;
  std::unordered_map<std::string, ServiceState> services_;
  std::unordered_map<store::RequestId, InFlight, store::RequestIdHash> inflight_;
  std::unordered_map<store::RequestId, ReplyRetry, store::RequestIdHash> reply_retries_;
  std::vector<store::Completion> completions_;  // reused
  Stats stats_;
};

}  // namespace plantd::broker

// The waiting requests of one service. Each client has its own FIFO lane and
// lanes are served round robin, so a client that floods a service cannot
// starve another client of it. Re-dispatched requests (their worker died) go
// to a lane of their own that is served first.
#pragma once

#include <cstddef>
#include <string_view>

#include "broker/request.h"
#include "common/clock.h"
#include "common/ring_buffer.h"
#include "common/string_map.h"

namespace plantd::broker {

// Core thread only.
class FairQueue {
 public:
  // Appends r to its client's lane.
  void Push(Request* r, SteadyTime now);
  // Puts r before everything else (a request whose worker died).
  void PushFront(Request* r, SteadyTime now);
  // The next request by round robin over clients; nullptr when empty.
  Request* Pop();

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // Removes every request queued before `cutoff`, passing each to on_expired.
  template <typename F>
  void RemoveQueuedBefore(SteadyTime cutoff, F&& on_expired) {
    if (size_ == 0) return;
    while (!retry_.empty() && retry_.front()->queued_at < cutoff) {
      --size_;
      on_expired(retry_.pop_front());
    }
    for (auto& [client, lane] : lanes_) {
      while (!lane.items.empty() && lane.items.front()->queued_at < cutoff) {
        --size_;
        on_expired(lane.items.pop_front());
      }
    }
    UnscheduleIfEmpty();
  }

  // Forgets the lanes of clients that have had nothing queued since `cutoff`.
  void ForgetIdleClients(SteadyTime cutoff);
  size_t client_lanes() const { return lanes_.size(); }

 private:
  // Lanes emptied by expiry stay scheduled until Pop comes round to them;
  // once nothing is queued, unschedule them all so they can be forgotten.
  void UnscheduleIfEmpty() {
    if (size_ != 0) return;
    while (!schedule_.empty()) schedule_.pop_front()->scheduled = false;
  }

  struct Lane {
    RingBuffer<Request*> items;
    bool scheduled = false;  // present in schedule_
    SteadyTime last_push;
  };

  StringMap<Lane> lanes_;       // by client routing id
  RingBuffer<Lane*> schedule_;  // lanes with (possibly) waiting requests
  RingBuffer<Request*> retry_;
  size_t size_ = 0;
};

}  // namespace plantd::broker

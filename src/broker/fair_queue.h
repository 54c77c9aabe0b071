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
  // Appends r to its client's lane. True when the lane is new to the
  // client's registry entry (a new lane, or one left by a closed connection
  // with the same routing id): the caller records it (ClientRegistry).
  bool Push(Request* r, SteadyTime now);
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

  // Forgets the lanes of clients that have had nothing queued since `cutoff`,
  // calling on_forget(client routing id) for each lane the client's registry
  // entry still lists.
  template <typename F>
  void ForgetIdleClients(SteadyTime cutoff, F&& on_forget) {
    for (auto it = lanes_.begin(); it != lanes_.end();) {
      const Lane& lane = it->second;
      if (!lane.scheduled && lane.items.empty() && (lane.orphan || lane.last_push < cutoff)) {
        if (!lane.orphan) on_forget(std::string_view(it->first));
        it = lanes_.erase(it);
      } else {
        ++it;
      }
    }
  }

  // The client's connection closed: removes its queued requests (not those
  // re-queued after their worker died, which wait in their own lane), passing
  // each to on_dropped, and leaves the lane to be forgotten. The caller
  // forgets the client's registry entry. Returns how many were dropped.
  template <typename F>
  size_t DropClient(std::string_view client, F&& on_dropped) {
    auto it = lanes_.find(client);
    if (it == lanes_.end()) return 0;
    Lane& lane = it->second;
    size_t n = 0;
    while (!lane.items.empty()) {
      --size_;
      ++n;
      on_dropped(lane.items.pop_front());
    }
    if (lane.scheduled) {
      lane.orphan = true;  // Pop() unschedules it; then it is forgotten
    } else {
      lanes_.erase(it);
    }
    UnscheduleIfEmpty();
    return n;
  }
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
    bool orphan = false;     // its client's connection closed (DropClient)
    SteadyTime last_push;
  };

  StringMap<Lane> lanes_;       // by client routing id
  RingBuffer<Lane*> schedule_;  // lanes with (possibly) waiting requests
  RingBuffer<Request*> retry_;
  size_t size_ = 0;
};

}  // namespace plantd::broker

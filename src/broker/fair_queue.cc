#include "broker/fair_queue.h"

#include "mdp/codec.h"

namespace plantd::broker {

bool FairQueue::Push(Request* r, SteadyTime now) {
  const std::string_view client = mdp::View(r->client);
  auto it = lanes_.find(client);
  bool fresh = false;
  if (it == lanes_.end()) {
    it = lanes_.emplace(std::string(client), Lane{}).first;
    fresh = true;
  }
  Lane& lane = it->second;
  if (lane.orphan) {
    lane.orphan = false;  // the routing id is back on a new connection
    fresh = true;
  }
  r->queued_at = now;
  lane.items.push_back(r);
  lane.last_push = now;
  if (!lane.scheduled) {
    lane.scheduled = true;
    schedule_.push_back(&lane);
  }
  ++size_;
  return fresh;
}

void FairQueue::PushFront(Request* r, SteadyTime now) {
  r->queued_at = now;
  retry_.push_front(r);
  ++size_;
}

Request* FairQueue::Pop() {
  if (size_ == 0) return nullptr;
  if (!retry_.empty()) {
    --size_;
    Request* r = retry_.pop_front();
    UnscheduleIfEmpty();
    return r;
  }
  // Lanes emptied by expiry stay scheduled until they come round; skip them.
  while (!schedule_.empty()) {
    Lane* lane = schedule_.pop_front();
    if (lane->items.empty()) {
      lane->scheduled = false;
      continue;
    }
    Request* r = lane->items.pop_front();
    if (lane->items.empty()) {
      lane->scheduled = false;
    } else {
      schedule_.push_back(lane);
    }
    --size_;
    UnscheduleIfEmpty();
    return r;
  }
  return nullptr;
}

}  // namespace plantd::broker

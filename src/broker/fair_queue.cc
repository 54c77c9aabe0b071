#include "broker/fair_queue.h"

#include "mdp/codec.h"

namespace plantd::broker {

void FairQueue::Push(Request* r, SteadyTime now) {
  const std::string_view client = mdp::View(r->client);
  auto it = lanes_.find(client);
  if (it == lanes_.end()) it = lanes_.emplace(std::string(client), Lane{}).first;
  Lane& lane = it->second;
  r->queued_at = now;
  lane.items.push_back(r);
  lane.last_push = now;
  if (!lane.scheduled) {
    lane.scheduled = true;
    schedule_.push_back(&lane);
  }
  ++size_;
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

void FairQueue::ForgetIdleClients(SteadyTime cutoff) {
  for (auto it = lanes_.begin(); it != lanes_.end();) {
    const Lane& lane = it->second;
    if (!lane.scheduled && lane.items.empty() && lane.last_push < cutoff) {
      it = lanes_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace plantd::broker

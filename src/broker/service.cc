#include "broker/service.h"

namespace plantd::broker {

void Service::PushIdle(Worker* w) {
  w->idle = true;
  w->idle_next = nullptr;
  w->idle_prev = idle_tail_;
  if (idle_tail_ != nullptr) {
    idle_tail_->idle_next = w;
  } else {
    idle_head_ = w;
  }
  idle_tail_ = w;
  ++idle_count_;
}

Worker* Service::PopIdle() {
  Worker* w = idle_head_;
  if (w != nullptr) RemoveIdle(w);
  return w;
}

void Service::RemoveIdle(Worker* w) {
  if (!w->idle) return;
  if (w->idle_prev != nullptr) {
    w->idle_prev->idle_next = w->idle_next;
  } else {
    idle_head_ = w->idle_next;
  }
  if (w->idle_next != nullptr) {
    w->idle_next->idle_prev = w->idle_prev;
  } else {
    idle_tail_ = w->idle_prev;
  }
  w->idle = false;
  w->idle_prev = w->idle_next = nullptr;
  --idle_count_;
}

}  // namespace plantd::broker

#include "broker/service.h"

namespace plantd::broker {

void Service::MakeAvailable(Worker* w) {
  Withdraw(w);
  const int spare = w->spare();
  if (spare <= 0) return;
  const size_t index = static_cast<size_t>(spare);
  if (index >= by_spare_.size()) by_spare_.resize(index + 1);
  List& list = by_spare_[index];
  w->prev = list.tail;
  w->next = nullptr;
  if (list.tail != nullptr) {
    list.tail->next = w;
  } else {
    list.head = w;
  }
  list.tail = w;
  w->available = true;
  w->filed_spare = spare;
  if (index > top_) top_ = index;
  ++available_;
}

Worker* Service::TakeMostSpare() {
  if (available_ == 0) return nullptr;
  while (top_ > 0 && by_spare_[top_].head == nullptr) --top_;
  Worker* w = by_spare_[top_].head;
  Withdraw(w);
  return w;
}

void Service::Withdraw(Worker* w) {
  if (!w->available) return;
  List& list = by_spare_[static_cast<size_t>(w->filed_spare)];
  if (w->prev != nullptr) {
    w->prev->next = w->next;
  } else {
    list.head = w->next;
  }
  if (w->next != nullptr) {
    w->next->prev = w->prev;
  } else {
    list.tail = w->prev;
  }
  w->available = false;
  w->prev = w->next = nullptr;
  --available_;
}

}  // namespace plantd::broker

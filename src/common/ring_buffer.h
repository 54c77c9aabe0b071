// A growable FIFO ring. Unlike std::deque it keeps its storage when emptied,
// so a queue that has reached its working size never allocates again.
#pragma once

#include <cassert>
#include <cstddef>
#include <utility>
#include <vector>

namespace plantd {

template <typename T>
class RingBuffer {
 public:
  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }

  // REQUIRES: !empty()
  T& front() { return slots_[head_]; }
  const T& front() const { return slots_[head_]; }

  void push_back(T value) {
    if (size_ == slots_.size()) Grow();
    slots_[(head_ + size_) & (slots_.size() - 1)] = std::move(value);
    ++size_;
  }

  void push_front(T value) {
    if (size_ == slots_.size()) Grow();
    head_ = (head_ + slots_.size() - 1) & (slots_.size() - 1);
    slots_[head_] = std::move(value);
    ++size_;
  }

  // REQUIRES: !empty()
  T pop_front() {
    assert(size_ > 0);
    T value = std::move(slots_[head_]);
    head_ = (head_ + 1) & (slots_.size() - 1);
    --size_;
    return value;
  }

  // Empties the ring, keeping its storage.
  void clear() {
    head_ = 0;
    size_ = 0;
  }

  // Slots held, used or not.
  size_t capacity() const { return slots_.size(); }

  // The i-th element from the front. REQUIRES: i < size()
  T& operator[](size_t i) { return slots_[(head_ + i) & (slots_.size() - 1)]; }

 private:
  void Grow() {
    std::vector<T> bigger(slots_.empty() ? 8 : slots_.size() * 2);  // powers of two
    for (size_t i = 0; i < size_; ++i) bigger[i] = std::move((*this)[i]);
    slots_ = std::move(bigger);
    head_ = 0;
  }

  std::vector<T> slots_;
  size_t head_ = 0;
  size_t size_ = 0;
};

}  // namespace plantd

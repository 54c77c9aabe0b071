// Bytes received on a connection and not yet parsed, without zero-filling
// on growth. Every change of its size is added to a tally (the owning
// socket's buffered bytes, which the process-wide BufferBudget sees).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>

namespace plantd::transport {

class InputBuffer {
 public:
  // Above this capacity the storage is given back once drained: memory
  // follows bursts, not the number of connections. Below it a busy peer
  // keeps its buffer: glibc serves blocks of 128 KiB and more with mmap, and
  // giving those back on every turn costs a page fault per 4 KiB (16 KiB
  // bodies ran at 0.74 of the libzmq relay with 64 KiB here).
  static constexpr size_t kKeepBytes = size_t{1024} * 1024;

  void set_tally(int64_t* tally) { tally_ = tally; }
  const uint8_t* data() const { return storage_.get() + begin_; }
  size_t size() const { return end_ - begin_; }
  bool empty() const { return begin_ == end_; }

  void Consume(size_t n) {
    begin_ += n;
    *tally_ -= static_cast<int64_t>(n);
    if (begin_ != end_) return;
    begin_ = end_ = 0;
    if (capacity_ > kKeepBytes) {
      storage_.reset();
      capacity_ = 0;
    }
  }

  // Room for at least `n` more bytes at the end. Live bytes move to the
  // front only when at least as many have been consumed before them, so a
  // buffer that is read from and consumed in small steps costs a constant
  // per byte, not a move of everything it holds per step.
  uint8_t* Reserve(size_t n) {
    if (capacity_ - end_ >= n) return storage_.get() + end_;
    const size_t used = size();
    if (capacity_ - used >= n && begin_ >= used) {
      std::memmove(storage_.get(), data(), used);
    } else {
      const size_t capacity = std::max({capacity_ * 2, used + n, size_t{4096}});
      auto bigger = std::make_unique_for_overwrite<uint8_t[]>(capacity);
      if (used > 0) std::memcpy(bigger.get(), data(), used);
      storage_ = std::move(bigger);
      capacity_ = capacity;
    }
    begin_ = 0;
    end_ = used;
    return storage_.get() + end_;
  }
  size_t free_space() const { return capacity_ - end_; }
  void Commit(size_t n) {
    end_ += n;
    *tally_ += static_cast<int64_t>(n);
  }
  // Drops everything (the connection closed).
  void Release() {
    *tally_ -= static_cast<int64_t>(size());
    storage_.reset();
    capacity_ = begin_ = end_ = 0;
  }

 private:
  std::unique_ptr<uint8_t[]> storage_;
  size_t capacity_ = 0;
  size_t begin_ = 0;
  size_t end_ = 0;
  int64_t* tally_ = nullptr;
};

}  // namespace plantd::transport

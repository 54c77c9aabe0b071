// Bytes received on a connection and not yet parsed, without zero-filling
// on growth. Every change of its size is added to a tally (the owning
// socket's buffered bytes, which the process-wide BufferBudget sees).
//
// Frames may leave it without a copy: Share() hands out a reference to the
// block that holds them, and a frame taken that way keeps the block alive
// after the buffer has moved on to a new one (a block is never written where
// a shared frame lies). While any frame holds a block, its whole capacity
// counts in the budget's shared bytes, and past the budget's limit Share()
// says no and the caller copies: what a queued 2 KiB frame can keep alive is
// bounded, not the block around it times the number of such frames.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>

#include "transport/buffer_budget.h"

namespace plantd::transport {

// One allocation of received bytes, reference-counted: the InputBuffer that
// reads into it holds one reference, each frame handed out of it another.
// The last reference frees it, in whichever thread drops it.
class InputBlock {
 public:
  // A block of `capacity` uninitialised bytes, holding one reference.
  static InputBlock* New(size_t capacity);

  uint8_t* bytes() { return bytes_; }
  const uint8_t* bytes() const { return bytes_; }
  size_t capacity() const { return capacity_; }
  // Grows the block to `capacity`, keeping its bytes; realloc moves the
  // pages of a large block instead of copying them. REQUIRES: !shared()
  void Resize(size_t capacity);
  // Whether a frame handed out still holds it. Only the owning buffer's
  // thread adds references, so a false answer stays true for it.
  bool shared() const { return refs_.load(std::memory_order_acquire) > 1; }

  // Adds a reference for a frame, counting the block in `budget`'s shared
  // bytes from its first one on.
  void Ref(const std::shared_ptr<BufferBudget>& budget);
  // Drops a reference; the last frees the block and takes it out of the
  // shared bytes.
  void Unref();
  // For the owner, when no frame holds the block any more: it stops counting
  // as shared.
  void StopCountingIfSole();

  // For zmq_msg_init_data: `hint` is the block.
  static void FreeFrame(void* data, void* hint);

 private:
  InputBlock(uint8_t* bytes, size_t capacity) : bytes_(bytes), capacity_(capacity) {}
  void Destroy();

  std::atomic<uint32_t> refs_{1};
  uint8_t* bytes_;
  size_t capacity_;
  // Set (by the owner) while the block counts in a budget's shared bytes.
  std::shared_ptr<BufferBudget> counted_in_;
};

class InputBuffer {
 public:
  // Above this capacity the storage is given back once drained: memory
  // follows bursts, not the number of connections. Below it a busy peer
  // keeps its buffer: glibc serves blocks of 128 KiB and more with mmap, and
  // giving those back on every turn costs a page fault per 4 KiB (16 KiB
  // bodies ran at 0.74 of the libzmq relay with 64 KiB here).
  static constexpr size_t kKeepBytes = size_t{1024} * 1024;

  InputBuffer() = default;
  ~InputBuffer() { DropBlock(); }
  InputBuffer(const InputBuffer&) = delete;
  InputBuffer& operator=(const InputBuffer&) = delete;

  void set_tally(int64_t* tally) { tally_ = tally; }
  // The budget whose shared bytes and limit Share() uses; without one,
  // nothing is shared.
  void set_budget(std::shared_ptr<BufferBudget> budget) { budget_ = std::move(budget); }

  const uint8_t* data() const { return base() + begin_; }
  size_t size() const { return end_ - begin_; }
  bool empty() const { return begin_ == end_; }

  void Consume(size_t n) {
    begin_ += n;
    *tally_ -= static_cast<int64_t>(n);
    if (begin_ != end_ || block_ == nullptr) return;
    // Frames still hold the block: they keep it (rewinding would write over
    // them), and the next read starts a new one sized for what comes.
    if (capacity() > kKeepBytes || block_->shared()) {
      DropBlock();
      return;
    }
    block_->StopCountingIfSole();
    begin_ = end_ = 0;
  }

  // Room for at least `n` more bytes at the end. Live bytes move to the
  // front only when at least as many have been consumed before them, so a
  // buffer that is read from and consumed in small steps costs a constant
  // per byte, not a move of everything it holds per step. Bytes before the
  // live ones that a frame still holds are never written: the live bytes go
  // to a new block instead, just large enough.
  uint8_t* Reserve(size_t n) {
    if (block_ != nullptr && capacity() - end_ >= n) return block_->bytes() + end_;
    const size_t used = size();
    const bool shared = block_ != nullptr && block_->shared();
    if (block_ != nullptr && !shared && capacity() - used >= n && begin_ >= used) {
      block_->StopCountingIfSole();
      std::memmove(block_->bytes(), data(), used);
    } else {
      const size_t capacity = shared ? std::max(used + n, size_t{4096})
                                     : std::max({this->capacity() * 2, used + n, size_t{4096}});
      if (block_ != nullptr && !shared && begin_ == 0) {
        // A large message arriving in pieces: no copy of what came so far.
        block_->StopCountingIfSole();
        block_->Resize(capacity);
      } else {
        InputBlock* bigger = InputBlock::New(capacity);
        if (used > 0) std::memcpy(bigger->bytes(), data(), used);
        DropBlock();
        block_ = bigger;
      }
    }
    begin_ = 0;
    end_ = used;
    return block_->bytes() + end_;
  }
  size_t free_space() const { return capacity() - end_; }
  void Commit(size_t n) {
    end_ += n;
    *tally_ += static_cast<int64_t>(n);
    if (announced_ > 0) ReleaseAnnounced(std::min(n, announced_));
  }

  // A frame's header said `n` more bytes are coming: room for all of them
  // in one allocation, so that they are received in place rather than
  // moved each time the buffer grows, when the budget's room for announced
  // bytes allows (it is held until they arrive or the buffer is dropped).
  // Otherwise nothing changes and the buffer grows as bytes come. `slack`
  // more is reserved, not counted: the room a read asks for beyond the
  // frame, so that its last piece does not grow the block again.
  void ReserveAnnounced(size_t n, size_t slack) {
    if (free_space() >= n || budget_ == nullptr) return;
    ReleaseAnnounced(announced_);
    if (!budget_->TryAnnounce(n)) return;
    Reserve(n + slack);
    announced_ = n;
  }

  // A reference to the block holding data(), for a frame that leaves
  // without a copy; null when the budget's limit on shared bytes is reached
  // (or there is no budget): the caller copies.
  InputBlock* Share() {
    if (budget_ == nullptr || !budget_->MayShareInput()) return nullptr;
    block_->Ref(budget_);
    return block_;
  }

  // Drops everything (the connection closed). Frames handed out keep their
  // block.
  void Release() {
    *tally_ -= static_cast<int64_t>(size());
    DropBlock();
  }

 private:
  size_t capacity() const { return block_ == nullptr ? 0 : block_->capacity(); }
  const uint8_t* base() const { return block_ == nullptr ? nullptr : block_->bytes(); }
  void ReleaseAnnounced(size_t n) {
    announced_ -= n;
    if (n > 0) budget_->ReleaseAnnounced(n);
  }
  void DropBlock() {
    ReleaseAnnounced(announced_);
    if (block_ != nullptr) block_->Unref();
    block_ = nullptr;
    begin_ = end_ = 0;
  }

  InputBlock* block_ = nullptr;
  size_t begin_ = 0;
  size_t end_ = 0;
  int64_t* tally_ = nullptr;
  std::shared_ptr<BufferBudget> budget_;
  size_t announced_ = 0;  // of the room at the end, taken from the budget
};

}  // namespace plantd::transport

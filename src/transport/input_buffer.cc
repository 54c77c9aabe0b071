#include "transport/input_buffer.h"

#include <cstdlib>
#include <new>

namespace plantd::transport {

InputBlock* InputBlock::New(size_t capacity) {
  auto* bytes = static_cast<uint8_t*>(std::malloc(capacity));
  if (bytes == nullptr) throw std::bad_alloc();
  return new InputBlock(bytes, capacity);
}

void InputBlock::Resize(size_t capacity) {
  auto* bytes = static_cast<uint8_t*>(std::realloc(bytes_, capacity));
  if (bytes == nullptr) throw std::bad_alloc();
  bytes_ = bytes;
  capacity_ = capacity;
}

void InputBlock::Ref(const std::shared_ptr<BufferBudget>& budget) {
  if (counted_in_ == nullptr) {
    counted_in_ = budget;
    counted_in_->AdjustShared(static_cast<int64_t>(capacity_));
  }
  refs_.fetch_add(1, std::memory_order_relaxed);
}

void InputBlock::Unref() {
  // acq_rel: whoever drops the last reference sees every write made to the
  // block (and to counted_in_) under the others.
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) Destroy();
}

void InputBlock::StopCountingIfSole() {
  if (counted_in_ == nullptr || shared()) return;
  counted_in_->AdjustShared(-static_cast<int64_t>(capacity_));
  counted_in_.reset();
}

void InputBlock::FreeFrame(void* /*data*/, void* hint) { static_cast<InputBlock*>(hint)->Unref(); }

void InputBlock::Destroy() {
  if (counted_in_ != nullptr) counted_in_->AdjustShared(-static_cast<int64_t>(capacity_));
  std::free(bytes_);
  delete this;
}

}  // namespace plantd::transport

#include "transport/buffer_budget.h"

namespace plantd::transport {

bool BufferBudget::InputPaused(bool* began) {
  if (began != nullptr) *began = false;
  if (limits_.max_buffered_bytes == 0) return false;
  const int64_t bytes = bytes_.load(std::memory_order_relaxed);
  const auto limit = static_cast<int64_t>(limits_.max_buffered_bytes);
  bool paused = paused_.load(std::memory_order_relaxed);
  if (!paused && bytes >= limit) {
    bool expected = false;
    if (paused_.compare_exchange_strong(expected, true, std::memory_order_relaxed) &&
        began != nullptr) {
      *began = true;
    }
    return true;
  }
  if (paused && bytes < limit - limit / 8) {
    paused_.store(false, std::memory_order_relaxed);
    return false;
  }
  return paused;
}

BufferBudget::Admission BufferBudget::AdmitConnection(std::string_view address) {
  // The total first, without the lock: most refusals in a flood stop here.
  size_t total = connections_.load(std::memory_order_relaxed);
  do {
    if (limits_.max_connections > 0 && total >= limits_.max_connections) {
      return Admission::kTotal;
    }
  } while (!connections_.compare_exchange_weak(total, total + 1, std::memory_order_relaxed));
  if (address.empty()) return Admission::kAdmitted;
  std::lock_guard<std::mutex> lock(mutex_);
  auto [it, inserted] = per_address_.try_emplace(std::string(address), 0);
  if (limits_.max_connections_per_address > 0 &&
      it->second >= limits_.max_connections_per_address) {
    if (it->second == 0) per_address_.erase(it);
    connections_.fetch_sub(1, std::memory_order_relaxed);
    return Admission::kPerAddress;
  }
  ++it->second;
  return Admission::kAdmitted;
}

void BufferBudget::ReleaseConnection(std::string_view address) {
  connections_.fetch_sub(1, std::memory_order_relaxed);
  if (address.empty()) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = per_address_.find(std::string(address));
  if (it == per_address_.end()) return;
  if (--it->second == 0) per_address_.erase(it);
}

size_t BufferBudget::connections_from(std::string_view address) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = per_address_.find(std::string(address));
  return it == per_address_.end() ? 0 : it->second;
}

}  // namespace plantd::transport

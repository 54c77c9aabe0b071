#include "transport/handshake_rate.h"

#include <algorithm>

namespace plantd::transport {
namespace {

// A full sweep of the table (O(addresses)) at most this often; between
// sweeps a full table loses an arbitrary entry instead.
constexpr std::chrono::seconds kSweepInterval{1};

}  // namespace

void HandshakeRate::Refill(Bucket& bucket, Clock::time_point now) const {
  const double seconds = std::chrono::duration<double>(now - bucket.refilled).count();
  if (seconds <= 0) return;
  bucket.tokens = std::min(static_cast<double>(limits_.burst),
                           bucket.tokens + seconds * static_cast<double>(limits_.per_second));
  bucket.refilled = now;
}

void HandshakeRate::Trim(Clock::time_point now) {
  if (now - last_sweep_ >= kSweepInterval) {
    last_sweep_ = now;
    for (auto it = buckets_.begin(); it != buckets_.end();) {
      Refill(it->second, now);
      it = it->second.tokens >= static_cast<double>(limits_.burst) ? buckets_.erase(it)
                                                                   : std::next(it);
    }
  }
  if (buckets_.size() >= limits_.max_addresses && !buckets_.empty()) {
    buckets_.erase(buckets_.begin());
  }
}

bool HandshakeRate::Admit(std::string_view address, Clock::time_point now) {
  if (limits_.per_second == 0 || address.empty()) return true;
  std::lock_guard lock(mutex_);
  auto it = buckets_.find(std::string(address));
  if (it == buckets_.end()) {
    if (buckets_.size() >= limits_.max_addresses) Trim(now);
    it = buckets_
             .emplace(std::string(address),
                      Bucket{.tokens = static_cast<double>(limits_.burst), .refilled = now})
             .first;
  } else {
    Refill(it->second, now);
  }
  if (it->second.tokens < 1) return false;
  it->second.tokens -= 1;
  return true;
}

size_t HandshakeRate::addresses() const {
  std::lock_guard lock(mutex_);
  return buckets_.size();
}

}  // namespace plantd::transport

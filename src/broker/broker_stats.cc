#include "broker/broker_stats.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>

namespace plantd::broker {

const char* InvalidReasonName(InvalidReason reason) {
  switch (reason) {
    case InvalidReason::kTooFewFrames: return "too_few_frames";
    case InvalidReason::kUnknownHeader: return "unknown_header";
    case InvalidReason::kUnknownCommand: return "unknown_command";
    case InvalidReason::kEmptyService: return "empty_service";
    case InvalidReason::kTooLarge: return "too_large";
    case InvalidReason::kTooManyFrames: return "too_many_frames";
    case InvalidReason::kNotReady: return "not_ready";
    case InvalidReason::kDuplicateReady: return "duplicate_ready";
    case InvalidReason::kReservedService: return "reserved_service";
    case InvalidReason::kStaleReply: return "stale_reply";
    case InvalidReason::kCount: break;
  }
  return "unknown";
}

const char* WorkerRemovalName(WorkerRemoval reason) {
  switch (reason) {
    case WorkerRemoval::kHeartbeatExpired: return "heartbeat_expired";
    case WorkerRemoval::kDisconnect: return "disconnect";
    case WorkerRemoval::kProtocolViolation: return "protocol_violation";
    case WorkerRemoval::kUnreachable: return "unreachable";
    case WorkerRemoval::kConnectionClosed: return "connection_closed";
    case WorkerRemoval::kShutdown: return "shutdown";
    case WorkerRemoval::kCount: break;
  }
  return "unknown";
}

const char* RequestDropName(RequestDrop reason) {
  switch (reason) {
    case RequestDrop::kClientGone: return "client_gone";
    case RequestDrop::kShutdown: return "shutdown";
    case RequestDrop::kCount: break;
  }
  return "unknown";
}

SnapshotBoard::SnapshotBoard() : request_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}

SnapshotBoard::~SnapshotBoard() {
  if (request_fd_ >= 0) ::close(request_fd_);
}

void SnapshotBoard::Publish(std::shared_ptr<const BrokerSnapshot> snapshot) {
  std::lock_guard<std::mutex> lock(mutex_);
  latest_ = std::move(snapshot);
}

std::shared_ptr<const BrokerSnapshot> SnapshotBoard::Latest() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return latest_;
}

std::shared_ptr<const BrokerSnapshot> SnapshotBoard::Fresh(std::chrono::milliseconds timeout,
                                                           bool* fresh) const {
  std::unique_lock<std::mutex> lock(mutex_);
  const uint64_t ticket = ++requested_;
  if (request_fd_ >= 0 && !wake_pending_.load(std::memory_order_relaxed)) {
    // The flag before the write: a core woken by it must see the flag.
    wake_pending_.store(true, std::memory_order_release);
    const uint64_t one = 1;
    // Fails only when the counter is saturated, which still wakes the core.
    (void)!::write(request_fd_, &one, sizeof(one));
  }
  *fresh = answered_cv_.wait_for(lock, timeout, [&] { return answered_ >= ticket; });
  return latest_;
}

bool SnapshotBoard::TakeRequest(uint64_t* ticket) {
  // Called every loop turn: with no reader waiting, one atomic load and no
  // system call.
  if (request_fd_ < 0 || !wake_pending_.load(std::memory_order_acquire)) return false;
  std::lock_guard<std::mutex> lock(mutex_);
  uint64_t count = 0;
  (void)!::read(request_fd_, &count, sizeof(count));
  wake_pending_.store(false, std::memory_order_relaxed);
  *ticket = requested_;
  return requested_ > answered_;
}

void SnapshotBoard::Answer(std::shared_ptr<const BrokerSnapshot> snapshot, uint64_t ticket) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    latest_ = std::move(snapshot);
    answered_ = std::max(answered_, ticket);
  }
  answered_cv_.notify_all();
}

}  // namespace plantd::broker

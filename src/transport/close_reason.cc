#include "transport/close_reason.h"

#include <array>
#include <atomic>

namespace plantd::transport {
namespace {

std::array<std::atomic<uint64_t>, kCloseReasonCount> g_closed{};

}  // namespace

const char* CloseReasonName(CloseReason reason) {
  switch (reason) {
    case CloseReason::kPeerClosed: return "peer_closed";
    case CloseReason::kHandshakeTimeout: return "handshake_timeout";
    case CloseReason::kHandshakeFailed: return "handshake_failed";
    case CloseReason::kProtocolError: return "protocol_error";
    case CloseReason::kDuplicateIdentity: return "duplicate_identity";
    case CloseReason::kSlowConsumer: return "slow_consumer";
    case CloseReason::kWriteTimeout: return "write_timeout";
    case CloseReason::kWriteError: return "write_error";
    case CloseReason::kConnectionLimit: return "connection_limit";
    case CloseReason::kBufferBudget: return "buffer_budget";
    case CloseReason::kKeyRevoked: return "key_revoked";
    case CloseReason::kHandshakeRate: return "handshake_rate";
    case CloseReason::kShutdown: return "shutdown";
    case CloseReason::kCount: break;
  }
  return "unknown";
}

void CountClose(CloseReason reason) {
  if (reason >= CloseReason::kCount) return;
  g_closed[static_cast<size_t>(reason)].fetch_add(1, std::memory_order_relaxed);
}

uint64_t ClosedTotal(CloseReason reason) {
  if (reason >= CloseReason::kCount) return 0;
  return g_closed[static_cast<size_t>(reason)].load(std::memory_order_relaxed);
}

}  // namespace plantd::transport

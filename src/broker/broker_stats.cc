#include "broker/broker_stats.h"

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
    case WorkerRemoval::kShutdown: return "shutdown";
    case WorkerRemoval::kCount: break;
  }
  return "unknown";
}

}  // namespace plantd::broker

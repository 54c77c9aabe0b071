// Why a connection was closed: every close of an accepted connection on a
// native socket (transport/zmtp_router.h) records one reason, counted
// process-wide (plantd_connections_closed_total{reason} in /metrics) and
// logged at debug with the peer's address, so that "why did my peer drop?"
// has an answer without a packet capture. Like nats-server's closed
// connection reasons.
//
// Thread-safe: the core and the bus threads each own sockets.
#pragma once

#include <cstddef>
#include <cstdint>

namespace plantd::transport {

enum class CloseReason : uint8_t {
  kPeerClosed,         // end of stream or reset from the peer's side
  kHandshakeTimeout,   // no finished ZMTP handshake within handshake_timeout
  kHandshakeFailed,    // bad greeting, mechanism, socket type, READY or identity
  kProtocolError,      // a malformed frame, a second READY, an ERROR command
  kDuplicateIdentity,  // a routing id that a live connection holds
  kSlowConsumer,       // output past max_connection_out_bytes
  kWriteTimeout,       // queued output made no progress within write_timeout
  kWriteError,         // send() failed (other than "try again")
  kConnectionLimit,    // limits.max_connections[_per_address] or out of descriptors
  kBufferBudget,       // held the most unfinished input while the budget was spent
  kKeyRevoked,         // its CURVE key left security.authorized_keys_dir (SIGHUP)
  kHandshakeRate,      // refused on accept: its address's CURVE handshake rate
  kShutdown,           // the socket was closed (broker or bus stopping)
  kCount,              // not a reason: the number of reasons
};

inline constexpr size_t kCloseReasonCount = static_cast<size_t>(CloseReason::kCount);

// The label in plantd_connections_closed_total{reason="..."} and the log line.
const char* CloseReasonName(CloseReason reason);

// Counts one closed connection.
void CountClose(CloseReason reason);

// Connections closed for `reason` since the process started.
uint64_t ClosedTotal(CloseReason reason);

}  // namespace plantd::transport

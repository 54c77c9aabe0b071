// Every limit that bites is visible: one place that counts refusals by reason
// (plantd_refused_total{reason} in /metrics) and logs them at warn, at most
// once per peer and reason in a window, so that a flood of refusals cannot
// become a flood of log lines.
//
//   refusal::Record(refusal::Reason::kDuplicateIdentity, remote,
//                   {{"identity", log::Hex(id)}, {"holder", other_remote}});
//
// Thread-safe: the core, the bus threads and the HTTP threads all record.
// docs/operations.md says, for each reason, what an operator should do.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string_view>

#include "log/log.h"

namespace plantd::refusal {

enum class Reason : uint8_t {
  // Connections (transport).
  kHandshakeTimeout,       // no finished ZMTP handshake within handshake_timeout
  kHandshakeFailed,        // bad greeting, mechanism, socket type or READY
  kUnauthorizedKey,        // a CURVE client whose key is not in security.authorized_keys_dir
  kDuplicateIdentity,      // a routing id that a live connection holds
  kConnectionsTotal,       // limits.max_connections
  kConnectionsPerAddress,  // limits.max_connections_per_address
  kHandshakeRate,          // limits.curve_handshakes_per_second (and _burst) from one address
  kMessageTooLarge,        // max_message_size (or a bus's)
  kTooManyFrames,          // max_message_frames
  kSlowConsumer,           // output past max_connection_out_bytes or write_timeout
  kBufferBudget,           // limits.max_buffered_bytes reached: input paused
  // Tables (broker core).
  kServicesTotal,     // max_services
  kClientServices,    // limits.max_client_services
  kUnservedServices,  // limits.max_unserved_services
  kQueueFull,         // max_queue_per_service
  kWorkersTotal,      // max_workers
  kShuttingDown,      // a request or READY that arrived while the broker stops
  kAdminRemote,       // org.plantd.Admin from a non-local peer (admin.allow_remote)
  // Access rules (security.acl_file).
  kDeniedCall,       // a request for a service the peer's key may not call
  kDeniedServe,      // a READY for a service the peer's key may not serve
  kDeniedPublish,    // a bus message on a topic the publisher's key may not publish
  kDeniedSubscribe,  // a subscription the subscriber's key may not hold
  // Buses.
  kSubscriptionsPerSubscriber,
  kSubscriptionsTotal,
  kSubscriptionTooLong,
  // HTTP.
  kHttpConnections,      // health.max_connections
  kHttpTimeout,          // a request not read or written in time
  kHttpRequestTooLarge,  // request line and headers past their limit
  // Durable requests (Titanic).
  kStoreFull,  // store.max_requests or store.max_bytes reached
  kStoreBusy,  // too many operations waiting for the store's disk
  kCount,      // not a reason: the number of reasons
};

inline constexpr size_t kReasonCount = static_cast<size_t>(Reason::kCount);

// The label in plantd_refused_total{reason="..."} and in the log line.
const char* ReasonName(Reason reason);

// Counts one refusal and logs it at warn unless a line for the same peer and
// reason was written within the last kLogWindow; a later line says how many
// were suppressed meanwhile. `peer` is a remote address or a routing id in
// a printable form; it may be empty.
void Record(Reason reason, std::string_view peer, std::initializer_list<log::Field> fields = {});

// Counts `n` refusals without logging (for bulk drops already logged).
void Count(Reason reason, uint64_t n = 1);

// Refusals of `reason` since the process started.
uint64_t Total(Reason reason);

}  // namespace plantd::refusal

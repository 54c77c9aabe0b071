// org.plantd.Admin: what an operator asks of a running broker from a shell
// (`plantd-mdp admin drain|status`), answered by the core beside 8/MMI and
// org.plantd.Broker (mmi.h).
//
//   ["drain"]   start the same lame-duck drain as SIGTERM (Broker::Stop);
//               the answer is ["200", status JSON] with "draining": true
//   ["status"]  ["200", status JSON]
//   other       ["400", "unknown admin command; expected drain or status"]
//
// Draining a broker is a denial of service for everyone on it, so the
// command is taken only from peers on this host (loopback TCP or ipc://)
// unless admin.allow_remote; others get the error reply ["403",
// "admin_remote"], counted as plantd_refused_total{reason="admin_remote"}.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "broker/broker_stats.h"

namespace plantd::broker {

inline constexpr std::string_view kAdminService = "org.plantd.Admin";

// True when `remote`, a peer address as the native transport prints it
// ("127.0.0.1:5000", "[::1]:5000", "[::ffff:127.0.0.2]:5000", "ipc"), is on
// this host: IPv4 127.0.0.0/8, IPv6 ::1, either mapped, or an ipc:// peer.
// Anything else, the empty string included (the peer is not known, as with
// transport zmq), is not.
bool IsLocalPeer(std::string_view remote);

enum class AdminCommand : uint8_t { kDrain, kStatus, kUnknown };
AdminCommand ParseAdminCommand(const std::vector<std::string_view>& body);

// What the core adds to its snapshot for the status answer.
struct AdminState {
  bool draining = false;
  double drain_remaining_seconds = 0;  // of shutdown_grace, while draining
  double shutdown_grace_seconds = 0;
  size_t in_flight = 0;  // requests held by workers
};

// The JSON frame of a drain or status answer.
std::string AdminStatusJson(const BrokerSnapshot& snapshot, const AdminState& state);

}  // namespace plantd::broker

#include "broker/admin.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <nlohmann/json.hpp>

#include "build_info.h"

namespace plantd::broker {
namespace {

// "[host]:port" or "host:port" -> host; "" when it has neither shape.
std::string_view HostOf(std::string_view remote) {
  if (!remote.empty() && remote.front() == '[') {
    const size_t close = remote.find(']');
    if (close == std::string_view::npos) return {};
    return remote.substr(1, close - 1);
  }
  const size_t colon = remote.rfind(':');
  if (colon == std::string_view::npos) return {};
  return remote.substr(0, colon);
}

}  // namespace

bool IsLocalPeer(std::string_view remote) {
  if (remote == "ipc") return true;  // a Unix socket: only this host can connect
  const std::string host(HostOf(remote));
  if (host.empty()) return false;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    if (IN6_IS_ADDR_V4MAPPED(&v6)) return v6.s6_addr[12] == 127;
  }
  return false;
}

AdminCommand ParseAdminCommand(const std::vector<std::string_view>& body) {
  if (body.empty()) return AdminCommand::kUnknown;
  if (body[0] == "drain") return AdminCommand::kDrain;
  if (body[0] == "status") return AdminCommand::kStatus;
  return AdminCommand::kUnknown;
}

std::string AdminStatusJson(const BrokerSnapshot& snap, const AdminState& state) {
  using nlohmann::json;
  size_t workers = 0;
  size_t queued = 0;
  for (const ServiceSnapshot& s : snap.services) {
    workers += s.workers;
    queued += s.queued;
  }
  json doc{{"version", kVersion},
           {"uptime_seconds", snap.uptime_seconds},
           {"draining", state.draining},
           {"shutdown_grace_seconds", state.shutdown_grace_seconds},
           {"services", snap.services.size()},
           {"workers", workers},
           {"queued", queued},
           {"in_flight", state.in_flight},
           {"requests_in_memory", snap.requests_in_memory}};
  if (snap.connections >= 0) doc["connections"] = snap.connections;
  if (state.draining) doc["drain_remaining_seconds"] = state.drain_remaining_seconds;
  return doc.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace plantd::broker

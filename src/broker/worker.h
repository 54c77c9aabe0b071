// A registered worker, as the broker core sees it.
#pragma once

#include <cstdint>
#include <string>

#include "common/clock.h"
#include "mdp/protocol.h"

namespace plantd::broker {

class Service;
struct Request;

struct Worker {
  std::string identity;  // ROUTER routing id
  mdp::Dialect dialect = mdp::Dialect::kMdp02;
  Service* service = nullptr;
  SteadyTime expires_at;    // dead if nothing is heard from it by then
  SteadyTime last_seen;
  Request* in_flight = nullptr;  // 18/MDP: one request at a time
  uint64_t served = 0;

  // Membership of the service's idle list (least recently used first).
  bool idle = false;
  Worker* idle_prev = nullptr;
  Worker* idle_next = nullptr;
};

}  // namespace plantd::broker

// A registered worker, as the broker core sees it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/clock.h"
#include "mdp/protocol.h"

namespace plantd::broker {

class Service;
struct Request;

// The most requests a worker may ask to hold at once (docs/credit.md).
inline constexpr int kMaxWorkerCredit = 1024;

struct Worker {
  std::string identity;  // ROUTER routing id
  std::string key_name;  // its CURVE key's name (what access rules use); empty with NULL
  mdp::Dialect dialect = mdp::Dialect::kMdp02;
  Service* service = nullptr;
  SteadyTime expires_at;  // dead if nothing is heard from it by then
  SteadyTime last_seen;
  // 18/MDP: one request at a time, unless the worker announced a credit.
  int credit = 1;
  std::vector<Request*> in_flight;  // at most `credit`
  uint64_t served = 0;

  int spare() const { return credit - static_cast<int>(in_flight.size()); }

  // Membership of the service's available list (Service::MakeAvailable).
  bool available = false;
  int filed_spare = 0;  // the spare credit it is filed under
  Worker* prev = nullptr;
  Worker* next = nullptr;
};

}  // namespace plantd::broker

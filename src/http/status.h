// /status: a JSON document for people (and scripts) who look at a running
// broker: its build, services, workers and buses. Computed from a snapshot
// the core builds on request (broker::SnapshotBoard::Fresh) and the buses'
// counters, never from live broker state read across threads.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "broker/broker_stats.h"
#include "bus/bus.h"
#include "config/options.h"
#include "store/request_store.h"

namespace plantd::http {

// How the snapshot was obtained (broker::SnapshotBoard::Fresh).
struct SnapshotFreshness {
  bool fresh = true;  // the core built it for this request
  std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now();
};

// `snapshot` may be null (the core has not published yet). The document's
// "snapshot" member says how old the snapshot is and whether it is stale
// (the core did not answer in time, and this is its last periodic one).
std::string RenderStatusJson(const broker::BrokerSnapshot* snapshot,
                             const std::vector<const bus::Bus*>& buses,
                             const BrokerOptions& options,
                             const store::RequestStore* store = nullptr,
                             SnapshotFreshness freshness = {});

}  // namespace plantd::http

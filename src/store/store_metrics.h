// The store's figures for /metrics (Prometheus text, appended to the broker's)
// and /status (JSON), so that wiring them in is one call each.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "store/request_store.h"

namespace plantd::store {

// plantd_store_requests{state}, plantd_store_bytes, plantd_store_healthy,
// plantd_store_commits_total, plantd_store_failed_commits_total,
// plantd_store_commit_batch_size (histogram), plantd_store_commit_duration_seconds
// (histogram), plantd_store_errors_total{reason}, plantd_store_expired_total,
// plantd_store_queued_operations.
std::string RenderStoreMetrics(const StoreStats& stats, const StoreHealth& health);

// {"healthy", "error", "requests": {state: n}, "bytes", "commits", ...}
nlohmann::json StoreStatusJson(const StoreStats& stats, const StoreHealth& health);

}  // namespace plantd::store

#include "store/store_metrics.h"

#include <sstream>

namespace plantd::store {
namespace {

void Header(std::ostringstream& out, const char* name, const char* type, const char* help) {
  out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
}

template <typename Bounds, typename Counts>
void Histogram(std::ostringstream& out, const char* name, const Bounds& bounds,
               const Counts& counts, double sum) {
  uint64_t cumulative = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    cumulative += counts[i];
    out << name << "_bucket{le=\"";
    if (i < bounds.size()) {
      out << bounds[i];
    } else {
      out << "+Inf";
    }
    out << "\"} " << cumulative << '\n';
  }
  out << name << "_sum " << sum << '\n' << name << "_count " << cumulative << '\n';
}

// A histogram for /status: its count, mean, and the count in each bucket
// (not cumulative), keyed by the bucket's upper bound.
template <typename Bounds, typename Counts>
nlohmann::json HistogramJson(const Bounds& bounds, const Counts& counts, double sum) {
  nlohmann::json buckets = nlohmann::json::object();
  uint64_t total = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    std::ostringstream le;
    if (i < bounds.size()) {
      le << bounds[i];
    } else {
      le << "+Inf";
    }
    buckets[le.str()] = counts[i];
    total += counts[i];
  }
  return nlohmann::json{{"count", total},
                        {"mean", total > 0 ? sum / static_cast<double>(total) : 0.0},
                        {"buckets", buckets}};
}

}  // namespace

std::string RenderStoreMetrics(const StoreStats& stats, const StoreHealth& health) {
  std::ostringstream out;
  Header(out, "plantd_store_requests", "gauge", "Durable requests stored, by state.");
  for (size_t i = 0; i < kRequestStateCount; ++i) {
    out << "plantd_store_requests{state=\"" << RequestStateName(static_cast<RequestState>(i))
        << "\"} " << stats.counts.by_state[i] << '\n';
  }
  Header(out, "plantd_store_bytes", "gauge",
         "Bytes of stored requests and replies, as counted against store.max_bytes.");
  out << "plantd_store_bytes " << stats.counts.bytes << '\n';
  Header(out, "plantd_store_healthy", "gauge",
         "1 while the store commits, 0 while it fails (disk full, read-only, I/O error).");
  out << "plantd_store_healthy " << (health.ok ? 1 : 0) << '\n';
  Header(out, "plantd_store_commits_total", "counter",
         "Write transactions committed and synced to disk.");
  out << "plantd_store_commits_total " << stats.commits << '\n';
  Header(out, "plantd_store_syncs_total", "counter",
         "Syncs of the WAL file (each makes every commit before it durable).");
  out << "plantd_store_syncs_total " << stats.syncs << '\n';
  Header(out, "plantd_store_failed_commits_total", "counter",
         "Write transactions rolled back on a storage error.");
  out << "plantd_store_failed_commits_total " << stats.failed_commits << '\n';
  Header(out, "plantd_store_commit_batch_size", "histogram",
         "Operations per committed transaction (group commit).");
  double ops = static_cast<double>(stats.committed_ops);
  Histogram(out, "plantd_store_commit_batch_size", kBatchSizeBuckets, stats.batch_size, ops);
  Header(out, "plantd_store_commit_duration_seconds", "histogram",
         "From BEGIN to a durable COMMIT.");
  Histogram(out, "plantd_store_commit_duration_seconds", kCommitSecondsBuckets,
            stats.commit_seconds, stats.commit_seconds_sum);
  Header(out, "plantd_store_errors_total", "counter", "Store operations that failed, by reason.");
  for (size_t i = 0; i < kStoreErrorCount; ++i) {
    const auto e = static_cast<StoreError>(i);
    if (e == StoreError::kNone || e == StoreError::kNotFound) continue;
    out << "plantd_store_errors_total{reason=\"" << StoreErrorName(e) << "\"} " << stats.errors[i]
        << '\n';
  }
  Header(out, "plantd_store_expired_total", "counter",
         "Replies and failures deleted by store.reply_retention.");
  out << "plantd_store_expired_total " << stats.expired << '\n';
  Header(out, "plantd_store_queued_operations", "gauge",
         "Operations waiting for the store thread (the disk).");
  out << "plantd_store_queued_operations " << stats.queued_ops << '\n';
  return out.str();
}

nlohmann::json StoreStatusJson(const StoreStats& stats, const StoreHealth& health) {
  nlohmann::json requests = nlohmann::json::object();
  for (size_t i = 0; i < kRequestStateCount; ++i) {
    requests[RequestStateName(static_cast<RequestState>(i))] = stats.counts.by_state[i];
  }
  nlohmann::json errors = nlohmann::json::object();
  for (size_t i = 0; i < kStoreErrorCount; ++i) {
    const auto e = static_cast<StoreError>(i);
    if (e == StoreError::kNone || e == StoreError::kNotFound) continue;
    errors[StoreErrorName(e)] = stats.errors[i];
  }
  return nlohmann::json{
      {"healthy", health.ok},
      {"error", health.message},
      {"requests", requests},
      {"bytes", stats.counts.bytes},
      {"commits", stats.commits},
      {"syncs", stats.syncs},
      {"committed_operations", stats.committed_ops},
      {"failed_commits", stats.failed_commits},
      {"commit_batch_size", HistogramJson(kBatchSizeBuckets, stats.batch_size,
                                          static_cast<double>(stats.committed_ops))},
      {"commit_seconds",
       HistogramJson(kCommitSecondsBuckets, stats.commit_seconds, stats.commit_seconds_sum)},
      {"errors", errors},
      {"expired", stats.expired},
      {"queued_operations", stats.queued_ops}};
}

}  // namespace plantd::store

#include "common/refusal.h"

#include <array>
#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace plantd::refusal {
namespace {

using SteadyClock = std::chrono::steady_clock;

// One log line per peer and reason per window; at most kMaxTracked peers are
// remembered, so the limiter itself is bounded. Peers beyond that share one
// line per reason per window.
constexpr auto kLogWindow = std::chrono::seconds(10);
constexpr size_t kMaxTracked = 4096;

struct LogState {
  SteadyClock::time_point last{};
  uint64_t suppressed = 0;
};

std::array<std::atomic<uint64_t>, kReasonCount> g_totals{};

std::mutex g_mutex;
std::unordered_map<std::string, LogState> g_by_peer;  // GUARDED_BY(g_mutex)
std::array<LogState, kReasonCount> g_untracked{};     // GUARDED_BY(g_mutex)

// Decides under the lock whether to log now; returns the number of lines
// suppressed since the last one for this key, or -1 to stay quiet.
int64_t Admit(Reason reason, std::string_view peer, SteadyClock::time_point now) {
  std::lock_guard<std::mutex> lock(g_mutex);
  std::string key;
  key.reserve(peer.size() + 1);
  key.push_back(static_cast<char>(reason));
  key.append(peer);
  auto it = g_by_peer.find(key);
  if (it == g_by_peer.end()) {
    if (g_by_peer.size() >= kMaxTracked) {
      std::erase_if(g_by_peer, [now](const auto& e) { return now - e.second.last >= kLogWindow; });
    }
    if (g_by_peer.size() >= kMaxTracked) {
      LogState& shared = g_untracked[static_cast<size_t>(reason)];
      if (now - shared.last < kLogWindow) {
        ++shared.suppressed;
        return -1;
      }
      shared.last = now;
      return static_cast<int64_t>(std::exchange(shared.suppressed, 0));
    }
    g_by_peer.emplace(std::move(key), LogState{now, 0});
    return 0;
  }
  LogState& state = it->second;
  if (now - state.last < kLogWindow) {
    ++state.suppressed;
    return -1;
  }
  state.last = now;
  return static_cast<int64_t>(std::exchange(state.suppressed, 0));
}

}  // namespace

const char* ReasonName(Reason reason) {
  switch (reason) {
    case Reason::kHandshakeTimeout: return "handshake_timeout";
    case Reason::kHandshakeFailed: return "handshake_failed";
    case Reason::kUnauthorizedKey: return "unauthorized_key";
    case Reason::kDuplicateIdentity: return "duplicate_identity";
    case Reason::kConnectionsTotal: return "connections_total";
    case Reason::kConnectionsPerAddress: return "connections_per_address";
    case Reason::kHandshakeRate: return "handshake_rate";
    case Reason::kMessageTooLarge: return "message_too_large";
    case Reason::kTooManyFrames: return "too_many_frames";
    case Reason::kSlowConsumer: return "slow_consumer";
    case Reason::kBufferBudget: return "buffer_budget";
    case Reason::kServicesTotal: return "services_total";
    case Reason::kClientServices: return "client_services";
    case Reason::kUnservedServices: return "unserved_services";
    case Reason::kQueueFull: return "queue_full";
    case Reason::kWorkersTotal: return "workers_total";
    case Reason::kShuttingDown: return "shutting_down";
    case Reason::kAdminRemote: return "admin_remote";
    case Reason::kDeniedCall: return "denied_call";
    case Reason::kDeniedServe: return "denied_serve";
    case Reason::kDeniedPublish: return "denied_publish";
    case Reason::kDeniedSubscribe: return "denied_subscribe";
    case Reason::kSubscriptionsPerSubscriber: return "subscriptions_per_subscriber";
    case Reason::kSubscriptionsTotal: return "subscriptions_total";
    case Reason::kSubscriptionTooLong: return "subscription_too_long";
    case Reason::kHttpConnections: return "http_connections";
    case Reason::kHttpTimeout: return "http_timeout";
    case Reason::kHttpRequestTooLarge: return "http_request_too_large";
    case Reason::kStoreFull: return "store_full";
    case Reason::kStoreBusy: return "store_busy";
    case Reason::kCount: break;
  }
  return "unknown";
}

void Count(Reason reason, uint64_t n) {
  if (reason >= Reason::kCount) return;
  g_totals[static_cast<size_t>(reason)].fetch_add(n, std::memory_order_relaxed);
}

uint64_t Total(Reason reason) {
  if (reason >= Reason::kCount) return 0;
  return g_totals[static_cast<size_t>(reason)].load(std::memory_order_relaxed);
}

void Record(Reason reason, std::string_view peer, std::initializer_list<log::Field> fields) {
  Count(reason);
  if (!log::Enabled(spdlog::level::warn)) return;
  int64_t suppressed = Admit(reason, peer, SteadyClock::now());
  if (suppressed < 0) return;
  std::vector<log::Field> all;
  all.reserve(fields.size() + 3);
  all.emplace_back("reason", ReasonName(reason));
  if (!peer.empty()) all.emplace_back("peer", peer);
  all.insert(all.end(), fields.begin(), fields.end());
  if (suppressed > 0) all.emplace_back("suppressed", suppressed);
  log::WriteFields(spdlog::level::warn, "refused", all);
}

}  // namespace plantd::refusal

#include "http/metrics.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "build_info.h"

namespace plantd::http {
namespace {

// Label values must be valid UTF-8 with \, " and newline escaped. Service
// names come off the wire, so anything outside printable ASCII becomes '?'.
std::string Label(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (unsigned char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c >= 0x7f) {
      out += '?';
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

class Writer {
 public:
  void Header(const char* name, const char* type, const char* help) {
    out_ << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
  }
  template <typename V>
  void Sample(const std::string& name, const std::string& labels, V value) {
    out_ << name;
    if (!labels.empty()) out_ << '{' << labels << '}';
    out_ << ' ' << value << '\n';
  }
  std::string Take() { return out_.str(); }

 private:
  std::ostringstream out_;
};

std::string ServiceLabel(const std::string& name) { return "service=\"" + Label(name) + "\""; }

}  // namespace

ProcessStats ReadProcessStats() {
  ProcessStats stats;
  std::ifstream statm("/proc/self/statm");
  uint64_t size_pages = 0, resident_pages = 0;
  if (statm >> size_pages >> resident_pages) {
    stats.resident_bytes = resident_pages * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  }
  if (DIR* dir = opendir("/proc/self/fd")) {
    while (dirent* entry = readdir(dir)) {
      if (entry->d_name[0] != '.') ++stats.open_fds;
    }
    closedir(dir);
    if (stats.open_fds > 0) --stats.open_fds;  // the directory handle itself
  }
  std::ifstream stat("/proc/self/stat");
  std::string line;
  if (std::getline(stat, line)) {
    // Fields after the command name (which may hold spaces) start at ')'.
    std::istringstream rest(line.substr(line.rfind(')') + 2));
    std::string field;
    uint64_t utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
      if (i == 14) utime = std::stoull(field);
      if (i == 15) stime = std::stoull(field);
    }
    stats.cpu_seconds = static_cast<double>(utime + stime) / sysconf(_SC_CLK_TCK);
  }
  return stats;
}

std::string RenderMetrics(const broker::BrokerSnapshot& snap,
                          const std::vector<const bus::Bus*>& buses, const ProcessStats& process) {
  Writer w;
  w.Header("plantd_broker_build_info", "gauge", "Build information; always 1.");
  w.Sample("plantd_broker_build_info",
           std::string("version=\"") + kVersion + "\",revision=\"" + kGitRevision + "\"", 1);
  w.Header("plantd_broker_uptime_seconds", "gauge", "Seconds since the broker started.");
  w.Sample("plantd_broker_uptime_seconds", "", snap.uptime_seconds);

  w.Header("plantd_broker_workers", "gauge", "Registered workers per service and state.");
  for (const auto& s : snap.services) {
    w.Sample("plantd_broker_workers", ServiceLabel(s.name) + ",state=\"idle\"", s.idle_workers);
    w.Sample("plantd_broker_workers", ServiceLabel(s.name) + ",state=\"busy\"",
             s.workers - s.idle_workers);
  }
  w.Header("plantd_broker_queued_requests", "gauge", "Requests waiting for a worker.");
  for (const auto& s : snap.services) {
    w.Sample("plantd_broker_queued_requests", ServiceLabel(s.name), s.queued);
  }
  struct Counter {
    const char* name;
    const char* help;
    uint64_t broker::ServiceCounters::*field;
  };
  static constexpr Counter kCounters[] = {
      {"plantd_broker_requests_total", "Requests accepted from clients.",
       &broker::ServiceCounters::requests},
      {"plantd_broker_replies_total", "FINAL replies delivered to clients.",
       &broker::ServiceCounters::replies},
      {"plantd_broker_partials_total", "PARTIAL replies delivered to clients.",
       &broker::ServiceCounters::partials},
      {"plantd_broker_redispatched_total", "Requests sent again after their worker was lost.",
       &broker::ServiceCounters::redispatched},
      {"plantd_broker_expired_total", "Requests that waited longer than request_expiry.",
       &broker::ServiceCounters::expired},
      {"plantd_broker_refused_total", "Requests refused because the service queue was full.",
       &broker::ServiceCounters::refused},
      {"plantd_broker_failed_total", "Requests dropped after max_redispatch lost workers.",
       &broker::ServiceCounters::failed},
  };
  for (const Counter& c : kCounters) {
    w.Header(c.name, "counter", c.help);
    for (const auto& s : snap.services) w.Sample(c.name, ServiceLabel(s.name), s.counters.*(c.field));
  }

  w.Header("plantd_broker_request_duration_seconds", "histogram",
           "Round trip from a request's arrival to its FINAL reply.");
  for (const auto& s : snap.services) {
    const auto& h = s.counters.latency;
    uint64_t cumulative = 0;
    for (size_t i = 0; i < h.buckets().size(); ++i) {
      cumulative += h.buckets()[i];
      std::ostringstream le;
      if (i < broker::LatencyHistogram::kBoundsSeconds.size()) {
        le << broker::LatencyHistogram::kBoundsSeconds[i];
      } else {
        le << "+Inf";
      }
      w.Sample("plantd_broker_request_duration_seconds_bucket",
               ServiceLabel(s.name) + ",le=\"" + le.str() + "\"", cumulative);
    }
    w.Sample("plantd_broker_request_duration_seconds_sum", ServiceLabel(s.name), h.sum_seconds());
    w.Sample("plantd_broker_request_duration_seconds_count", ServiceLabel(s.name), h.count());
  }

  w.Header("plantd_broker_invalid_messages_total", "counter",
           "Messages dropped as invalid, by reason.");
  for (size_t i = 0; i < snap.counters.invalid.size(); ++i) {
    w.Sample("plantd_broker_invalid_messages_total",
             std::string("reason=\"") +
                 broker::InvalidReasonName(static_cast<broker::InvalidReason>(i)) + "\"",
             snap.counters.invalid[i]);
  }
  w.Header("plantd_broker_workers_removed_total", "counter",
           "Workers removed, by reason (heartbeat_expired counts worker expirations).");
  for (size_t i = 0; i < snap.counters.workers_removed.size(); ++i) {
    w.Sample("plantd_broker_workers_removed_total",
             std::string("reason=\"") +
                 broker::WorkerRemovalName(static_cast<broker::WorkerRemoval>(i)) + "\"",
             snap.counters.workers_removed[i]);
  }
  w.Header("plantd_broker_workers_registered_total", "counter", "READY commands accepted.");
  w.Sample("plantd_broker_workers_registered_total", "", snap.counters.workers_registered);
  w.Header("plantd_broker_limit_refusals_total", "counter",
           "Peers refused because a configured limit was reached.");
  w.Sample("plantd_broker_limit_refusals_total", "limit=\"max_workers\"",
           snap.counters.workers_refused);
  w.Sample("plantd_broker_limit_refusals_total", "limit=\"max_services\"",
           snap.counters.services_refused);
  w.Header("plantd_broker_unreachable_clients_total", "counter",
           "Replies dropped because the client had gone or was full.");
  w.Sample("plantd_broker_unreachable_clients_total", "", snap.counters.client_unreachable);
  w.Header("plantd_broker_management_requests_total", "counter",
           "Requests answered by the broker itself (mmi.*, org.plantd.Broker).");
  w.Sample("plantd_broker_management_requests_total", "", snap.counters.mmi_requests);
  if (snap.connections >= 0) {
    w.Header("plantd_broker_connections", "gauge",
             "Connections to the Majordomo endpoints past the ZMTP handshake.");
    w.Sample("plantd_broker_connections", "", snap.connections);
    w.Header("plantd_broker_connections_refused_total", "counter",
             "Connections closed for a bad ZMTP greeting or handshake.");
    w.Sample("plantd_broker_connections_refused_total", "", snap.connections_refused);
  }
  w.Header("plantd_broker_messages_total", "counter", "Majordomo messages in and out.");
  w.Sample("plantd_broker_messages_total", "direction=\"in\"", snap.counters.messages_in);
  w.Sample("plantd_broker_messages_total", "direction=\"out\"", snap.counters.messages_out);

  auto bus_label = [](const bus::Bus* b) { return "bus=\"" + Label(b->options().name) + "\""; };
  w.Header("plantd_broker_bus_messages_total", "counter", "Messages through each bus.");
  for (const bus::Bus* b : buses) {
    w.Sample("plantd_broker_bus_messages_total", bus_label(b) + ",direction=\"in\"",
             b->counters().messages_in.load(std::memory_order_relaxed));
    w.Sample("plantd_broker_bus_messages_total", bus_label(b) + ",direction=\"out\"",
             b->counters().messages_out.load(std::memory_order_relaxed));
  }
  w.Header("plantd_broker_bus_bytes_total", "counter", "Bytes through each bus.");
  for (const bus::Bus* b : buses) {
    w.Sample("plantd_broker_bus_bytes_total", bus_label(b) + ",direction=\"in\"",
             b->counters().bytes_in.load(std::memory_order_relaxed));
    w.Sample("plantd_broker_bus_bytes_total", bus_label(b) + ",direction=\"out\"",
             b->counters().bytes_out.load(std::memory_order_relaxed));
  }
  w.Header("plantd_broker_bus_subscribers", "gauge", "Connected subscriber sockets.");
  for (const bus::Bus* b : buses) {
    w.Sample("plantd_broker_bus_subscribers", bus_label(b),
             b->counters().subscribers.load(std::memory_order_relaxed));
  }
  w.Header("plantd_broker_bus_subscriptions", "gauge", "Active topic subscriptions.");
  for (const bus::Bus* b : buses) {
    w.Sample("plantd_broker_bus_subscriptions", bus_label(b),
             b->counters().subscriptions.load(std::memory_order_relaxed));
  }
  w.Header("plantd_broker_bus_dropped_total", "counter",
           "Messages that found a subscriber's queue full (drop mode), or the capture tap "
           "full.");
  for (const bus::Bus* b : buses) {
    w.Sample("plantd_broker_bus_dropped_total", bus_label(b) + ",at=\"subscriber\"",
             b->counters().dropped.load(std::memory_order_relaxed));
    w.Sample("plantd_broker_bus_dropped_total", bus_label(b) + ",at=\"capture\"",
             b->counters().capture_dropped.load(std::memory_order_relaxed));
  }
  w.Header("plantd_broker_bus_lvc_replayed_total", "counter",
           "Cached last values sent to new subscriptions.");
  for (const bus::Bus* b : buses) {
    w.Sample("plantd_broker_bus_lvc_replayed_total", bus_label(b),
             b->counters().lvc_replayed.load(std::memory_order_relaxed));
  }
  w.Header("plantd_broker_bus_blocked_seconds_total", "counter",
           "Time a block-mode bus waited for a slow subscriber.");
  for (const bus::Bus* b : buses) {
    w.Sample("plantd_broker_bus_blocked_seconds_total", bus_label(b),
             static_cast<double>(b->counters().blocked_ns.load(std::memory_order_relaxed)) / 1e9);
  }

  w.Header("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
  w.Sample("process_resident_memory_bytes", "", process.resident_bytes);
  w.Header("process_open_fds", "gauge", "Number of open file descriptors.");
  w.Sample("process_open_fds", "", process.open_fds);
  w.Header("process_cpu_seconds_total", "counter", "User and system CPU time spent.");
  w.Sample("process_cpu_seconds_total", "", process.cpu_seconds);
  return w.Take();
}

}  // namespace plantd::http

#include "http/metrics.h"

#include <dirent.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>

#include "build_info.h"
#include "common/refusal.h"
#include "transport/close_reason.h"

namespace plantd::http {
namespace {

// Label values are printable ASCII with \\ and " escaped. Service names come
// off the wire, so every other byte, and '%' itself, is written as %XX: the
// mapping stays one-to-one, and two names never become the same series.
std::string Label(std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(value.size());
  for (unsigned char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f || c == '%') {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// Samples in the text format. Values go through fmt's "{}": integers exactly,
// doubles in their shortest form that reads back to the same value.
class Writer {
 public:
  void Header(std::string_view name, std::string_view type, std::string_view help) {
    fmt::format_to(std::back_inserter(out_), "# HELP {} {}\n# TYPE {} {}\n", name, help, name,
                   type);
  }
  template <typename V>
  void Sample(std::string_view name, std::string_view labels, V value) {
    if (labels.empty()) {
      fmt::format_to(std::back_inserter(out_), "{} {}\n", name, value);
    } else {
      fmt::format_to(std::back_inserter(out_), "{}{{{}}} {}\n", name, labels, value);
    }
  }
  // A family of one unlabelled sample.
  template <typename V>
  void Single(std::string_view name, std::string_view type, std::string_view help, V value) {
    Header(name, type, help);
    Sample(name, "", value);
  }
  size_t size() const { return out_.size(); }
  std::string& text() { return out_; }

 private:
  std::string out_;
};

// One row of the per-service families: a service of the snapshot, or the
// sum of the services folded into service="_other".
struct ServiceRow {
  std::string label;  // service="..."
  uint64_t workers = 0;
  uint64_t idle_workers = 0;
  uint64_t queued = 0;
  broker::ServiceCounters counters;  // latency left empty: see buckets
  std::array<uint64_t, broker::LatencyHistogram::kBoundsSeconds.size() + 1> buckets{};
  double latency_sum = 0;
  uint64_t latency_count = 0;

  void Add(const broker::ServiceSnapshot& s) {
    workers += s.workers;
    idle_workers += s.idle_workers;
    queued += s.queued;
    counters.AddCounts(s.counters);
    const auto& h = s.counters.latency;
    for (size_t i = 0; i < buckets.size(); ++i) buckets[i] += h.buckets()[i];
    latency_sum += h.sum_seconds();
    latency_count += h.count();
  }
};

ServiceRow RowOf(const broker::ServiceSnapshot& s) {
  ServiceRow row;
  row.label = "service=\"" + Label(s.name) + "\"";
  row.Add(s);
  return row;
}

// The per-service families, in the order they are written; kFamilies - 1
// (the histogram) is last.
constexpr size_t kFamilies = 2 + broker::kServiceCounterSpecs.size() + 1;

const std::array<std::string, broker::LatencyHistogram::kBoundsSeconds.size() + 1>& LeLabels() {
  static const auto labels = [] {
    std::array<std::string, broker::LatencyHistogram::kBoundsSeconds.size() + 1> out;
    for (size_t i = 0; i < broker::LatencyHistogram::kBoundsSeconds.size(); ++i) {
      out[i] = fmt::format(",le=\"{}\"", broker::LatencyHistogram::kBoundsSeconds[i]);
    }
    out.back() = ",le=\"+Inf\"";
    return out;
  }();
  return labels;
}

void FamilyHeader(Writer& w, size_t family) {
  if (family == 0) {
    w.Header("plantd_broker_workers", "gauge", "Registered workers per service and state.");
  } else if (family == 1) {
    w.Header("plantd_broker_queued_requests", "gauge", "Requests waiting for a worker.");
  } else if (family < kFamilies - 1) {
    const broker::ServiceCounterSpec& c = broker::kServiceCounterSpecs[family - 2];
    w.Header(c.metric, "counter", c.meaning);
  } else {
    w.Header("plantd_broker_request_duration_seconds", "histogram",
             "Round trip from a request's arrival to its FINAL reply.");
  }
}

void FamilySamples(Writer& w, size_t family, const ServiceRow& row) {
  if (family == 0) {
    w.Sample("plantd_broker_workers", row.label + ",state=\"idle\"", row.idle_workers);
    w.Sample("plantd_broker_workers", row.label + ",state=\"busy\"",
             row.workers - row.idle_workers);
  } else if (family == 1) {
    w.Sample("plantd_broker_queued_requests", row.label, row.queued);
  } else if (family < kFamilies - 1) {
    const broker::ServiceCounterSpec& c = broker::kServiceCounterSpecs[family - 2];
    w.Sample(c.metric, row.label, row.counters.*(c.field));
  } else {
    const auto& le = LeLabels();
    uint64_t cumulative = 0;
    for (size_t i = 0; i < row.buckets.size(); ++i) {
      cumulative += row.buckets[i];
      w.Sample("plantd_broker_request_duration_seconds_bucket", row.label + le[i], cumulative);
    }
    w.Sample("plantd_broker_request_duration_seconds_sum", row.label, row.latency_sum);
    w.Sample("plantd_broker_request_duration_seconds_count", row.label, row.latency_count);
  }
}

size_t RowBytes(const ServiceRow& row) {
  Writer scratch;
  for (size_t f = 0; f < kFamilies; ++f) FamilySamples(scratch, f, row);
  return scratch.size();
}

// The bytes the folded row may take: its label is short, its values at most
// 20 digits (a double's shortest form is at most 24 characters).
constexpr size_t kOtherRowBytes = 4096;

void RenderTail(Writer& w, const broker::BrokerSnapshot& snap,
                const std::vector<const bus::Bus*>& buses, const ProcessStats& process);

}  // namespace

std::vector<bool> ServicesWithOwnLabels(const std::vector<broker::ServiceSnapshot>& services,
                                        size_t max_labels, size_t max_bytes) {
  const size_t n = services.size();
  std::vector<bool> keep(n, false);
  // A service that is itself called "_other" would collide with the folded
  // row, so it is always folded (alone there, the row shows just it).
  std::vector<uint32_t> order;
  order.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    if (services[i].name != kOtherService) order.push_back(i);
  }
  const size_t candidates = std::min(order.size(), max_labels);
  if (candidates == 0) return keep;
  // Services that workers serve first, then the busiest; the name settles ties.
  auto before = [&services](uint32_t a, uint32_t b) {
    const auto& x = services[a];
    const auto& y = services[b];
    if ((x.workers > 0) != (y.workers > 0)) return x.workers > 0;
    if (x.counters.requests != y.counters.requests) {
      return x.counters.requests > y.counters.requests;
    }
    if (x.queued != y.queued) return x.queued > y.queued;
    return x.name < y.name;
  };
  std::partial_sort(order.begin(), order.begin() + static_cast<ptrdiff_t>(candidates), order.end(),
                    before);
  size_t bytes = 0;
  for (size_t i = 0; i < candidates; ++i) {
    const size_t row = RowBytes(RowOf(services[order[i]]));
    if (bytes + row > max_bytes) break;
    bytes += row;
    keep[order[i]] = true;
  }
  return keep;
}

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
                          const std::vector<const bus::Bus*>& buses, const ProcessStats& process,
                          const MetricsOptions& options) {
  Writer w;
  w.Header("plantd_broker_build_info", "gauge", "Build information; always 1.");
  w.Sample("plantd_broker_build_info",
           std::string("version=\"") + kVersion + "\",revision=\"" + kGitRevision + "\"", 1);
  w.Header("plantd_broker_uptime_seconds", "gauge", "Seconds since the broker started.");
  w.Sample("plantd_broker_uptime_seconds", "", snap.uptime_seconds);

  // Everything after the per-service families first, so that the services
  // get what is left of max_bytes.
  Writer tail;
  RenderTail(tail, snap, buses, process);
  Writer families;
  for (size_t f = 0; f < kFamilies; ++f) FamilyHeader(families, f);
  const size_t fixed = w.size() + tail.size() + families.size() + kOtherRowBytes;
  const size_t budget = options.max_bytes > fixed ? options.max_bytes - fixed : 0;

  const std::vector<bool> keep =
      ServicesWithOwnLabels(snap.services, options.max_service_labels, budget);
  std::vector<ServiceRow> rows;
  ServiceRow other;
  other.label = std::string("service=\"") + kOtherService + "\"";
  bool folded = false;
  for (size_t i = 0; i < snap.services.size(); ++i) {
    if (keep[i]) {
      rows.push_back(RowOf(snap.services[i]));
    } else {
      other.Add(snap.services[i]);
      folded = true;
    }
  }
  if (folded) rows.push_back(std::move(other));
  for (size_t f = 0; f < kFamilies; ++f) {
    FamilyHeader(w, f);
    for (const ServiceRow& row : rows) FamilySamples(w, f, row);
  }
  w.text() += tail.text();
  return std::move(w.text());
}

namespace {

// The families after the per-service ones: broker-wide counters, refusals,
// buses and the process.
void RenderTail(Writer& w, const broker::BrokerSnapshot& snap,
                const std::vector<const bus::Bus*>& buses, const ProcessStats& process) {
  w.Header("plantd_refused_total", "counter",
           "Connections, messages, requests and subscriptions refused because a limit was "
           "reached, by reason (docs/operations.md).");
  for (size_t i = 0; i < refusal::kReasonCount; ++i) {
    const auto reason = static_cast<refusal::Reason>(i);
    w.Sample("plantd_refused_total", fmt::format("reason=\"{}\"", refusal::ReasonName(reason)),
             refusal::Total(reason));
  }
  w.Header("plantd_connections_closed_total", "counter",
           "Connections on the native Majordomo and bus endpoints closed, by reason "
           "(peer_closed: by the peer; the others by the broker; docs/operations.md).");
  for (size_t i = 0; i < transport::kCloseReasonCount; ++i) {
    const auto reason = static_cast<transport::CloseReason>(i);
    w.Sample("plantd_connections_closed_total",
             fmt::format("reason=\"{}\"", transport::CloseReasonName(reason)),
             transport::ClosedTotal(reason));
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
  w.Header("plantd_broker_requests_dropped_total", "counter",
           "Accepted requests dropped before a worker answered, by reason (client_gone: "
           "the client's connection closed while they were queued).");
  for (size_t i = 0; i < snap.counters.dropped.size(); ++i) {
    w.Sample("plantd_broker_requests_dropped_total",
             std::string("reason=\"") +
                 broker::RequestDropName(static_cast<broker::RequestDrop>(i)) + "\"",
             snap.counters.dropped[i]);
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
           "Requests answered by the broker itself (mmi.*, org.plantd.Broker, org.plantd.Admin, "
           "titanic.*).");
  w.Sample("plantd_broker_management_requests_total", "", snap.counters.mmi_requests);
  if (snap.titanic_enabled) {
    const broker::Titanic::Stats& t = snap.titanic;
    w.Header("plantd_titanic_events_total", "counter",
             "Durable requests (9/TSP) by event: received, acknowledged, refused_full, "
             "store_error, invalid, fetch, close, dispatched, reply_stored, failed, recovered, "
             "reply_retried.");
    const std::pair<const char*, uint64_t> events[] = {
        {"received", t.requests},
        {"acknowledged", t.acknowledged},
        {"refused_full", t.refused_full},
        {"store_error", t.store_errors},
        {"invalid", t.invalid},
        {"fetch", t.fetches},
        {"close", t.closes},
        {"dispatched", t.dispatched},
        {"reply_stored", t.replies_stored},
        {"failed", t.failed},
        {"recovered", t.recovered},
        {"reply_retried", t.reply_retries},
    };
    for (const auto& [event, count] : events) {
      w.Sample("plantd_titanic_events_total", std::string("event=\"") + event + "\"", count);
    }
  }
  if (snap.connections >= 0) {
    w.Single("plantd_broker_connections", "gauge",
             "Connections to the Majordomo endpoints past the ZMTP handshake.", snap.connections);
    w.Single("plantd_broker_connections_refused_total", "counter",
             "Connections closed for a bad ZMTP greeting or handshake.", snap.connections_refused);
  }
  if (snap.buffered_bytes >= 0) {
    w.Single("plantd_broker_buffered_bytes", "gauge",
             "Bytes held by all native sockets: input not yet taken, output not yet written.",
             snap.buffered_bytes);
    w.Single("plantd_broker_shared_input_bytes", "gauge",
             "Receive buffers kept alive by frames handed on without a copy.",
             snap.shared_input_bytes);
    w.Single("plantd_broker_frames_copied_past_limit_total", "counter",
             "Large frames copied because shared receive buffers reached their limit.",
             snap.frames_copied_past_limit);
    w.Single("plantd_broker_announced_frames_declined_total", "counter",
             "Large frames received in pieces because the room for announced frames was taken.",
             snap.announce_declined);
  }
  w.Header("plantd_broker_messages_total", "counter", "Majordomo messages in and out.");
  w.Sample("plantd_broker_messages_total", "direction=\"in\"", snap.counters.messages_in);
  w.Sample("plantd_broker_messages_total", "direction=\"out\"", snap.counters.messages_out);

  auto bus_label = [](const bus::Bus* b) { return "bus=\"" + Label(b->options().name) + "\""; };
  for (size_t i = 0; i < bus::kBusCounterSpecs.size(); ++i) {
    const bus::BusCounterSpec& spec = bus::kBusCounterSpecs[i];
    if (i == 0 || bus::kBusCounterSpecs[i - 1].metric != spec.metric) {
      w.Header(spec.metric, spec.type == bus::MetricType::kGauge ? "gauge" : "counter",
               spec.meaning);
    }
    for (const bus::Bus* b : buses) {
      std::string labels = bus_label(b);
      if (!spec.labels.empty()) labels.append(",").append(spec.labels);
      const uint64_t value = spec.read(b->counters());
      if (spec.seconds) {
        w.Sample(spec.metric, labels, static_cast<double>(value) / 1e9);
      } else {
        w.Sample(spec.metric, labels, value);
      }
    }
  }

  w.Header("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
  w.Sample("process_resident_memory_bytes", "", process.resident_bytes);
  w.Header("process_open_fds", "gauge", "Number of open file descriptors.");
  w.Sample("process_open_fds", "", process.open_fds);
  w.Header("process_cpu_seconds_total", "counter", "User and system CPU time spent.");
  w.Sample("process_cpu_seconds_total", "", process.cpu_seconds);
}

}  // namespace

}  // namespace plantd::http

// What each bus counts, declared once. The bus thread stores the values;
// /metrics and /status show them by walking kBusCounterSpecs, so a counter
// has one name and one meaning everywhere, and a test checks that
// docs/operations.md says the same.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

namespace plantd::bus {

// Written by the bus thread only (relaxed stores), read by anyone. The
// meaning of each field is in kBusCounterSpecs below.
struct BusCounters {
  std::atomic<uint64_t> messages_in{0};
  std::atomic<uint64_t> bytes_in{0};
  std::atomic<uint64_t> messages_out{0};
  std::atomic<uint64_t> bytes_out{0};
  // drop mode with the native frontend: one for each subscriber that missed
  // each message; with libzmq's XPUB, messages that found a full queue, a
  // lower bound (docs/buses.md). block mode: always 0.
  std::atomic<uint64_t> dropped{0};
  std::atomic<uint64_t> capture_dropped{0};
  std::atomic<uint64_t> blocked_ns{0};
  std::atomic<int64_t> subscribers{0};
  // Native backend only: libzmq's XSUB does not say who connects.
  std::atomic<int64_t> publishers{0};
  std::atomic<int64_t> subscriptions{0};
  std::atomic<uint64_t> lvc_replayed{0};
  // Messages over max_message_size in all (on libzmq's XSUB a single
  // frame over it disconnects its publisher instead, uncounted).
  std::atomic<uint64_t> too_large{0};
  std::atomic<uint64_t> subscriptions_refused{0};
  std::atomic<uint64_t> slow_consumers{0};
  std::atomic<int64_t> last_tick_ns{0};  // steady clock; the thread is alive (not shown)
};

enum class MetricType : uint8_t { kCounter, kGauge };

// One value of a bus. Several values may share a Prometheus family, told
// apart by `labels` (messages in and out); the first of a family carries its
// type and meaning.
struct BusCounterSpec {
  std::string_view key;     // in /status
  std::string_view metric;  // the Prometheus family, labelled by bus
  std::string_view labels;  // beside bus="...", or empty
  MetricType type;
  std::string_view meaning;  // its HELP text, and the meaning in the docs
  // Reads the value; `seconds` values are kept in nanoseconds and shown in
  // seconds.
  uint64_t (*read)(const BusCounters&);
  bool seconds = false;
};

namespace counters_detail {
template <auto Field>
uint64_t Read(const BusCounters& c) {
  const auto v = (c.*Field).load(std::memory_order_relaxed);
  return v < 0 ? 0 : static_cast<uint64_t>(v);
}
}  // namespace counters_detail

inline constexpr std::array<BusCounterSpec, 14> kBusCounterSpecs = {{
    {"messages_in", "plantd_broker_bus_messages_total", "direction=\"in\"", MetricType::kCounter,
     "messages published in, and delivered out to subscribers",
     counters_detail::Read<&BusCounters::messages_in>},
    {"messages_out", "plantd_broker_bus_messages_total", "direction=\"out\"", MetricType::kCounter,
     "", counters_detail::Read<&BusCounters::messages_out>},
    {"bytes_in", "plantd_broker_bus_bytes_total", "direction=\"in\"", MetricType::kCounter,
     "bytes published in, and delivered out to subscribers",
     counters_detail::Read<&BusCounters::bytes_in>},
    {"bytes_out", "plantd_broker_bus_bytes_total", "direction=\"out\"", MetricType::kCounter, "",
     counters_detail::Read<&BusCounters::bytes_out>},
    {"subscribers", "plantd_broker_bus_subscribers", "", MetricType::kGauge,
     "connected subscriber sockets", counters_detail::Read<&BusCounters::subscribers>},
    {"publishers", "plantd_broker_bus_publishers", "", MetricType::kGauge,
     "connected publisher sockets (a backend the broker binds on tcp or ipc)",
     counters_detail::Read<&BusCounters::publishers>},
    {"subscriptions", "plantd_broker_bus_subscriptions", "", MetricType::kGauge,
     "active topic subscriptions", counters_detail::Read<&BusCounters::subscriptions>},
    {"dropped", "plantd_broker_bus_dropped_total", "at=\"subscriber\"", MetricType::kCounter,
     "messages that found a subscriber's queue (drop mode) or the capture tap full",
     counters_detail::Read<&BusCounters::dropped>},
    {"capture_dropped", "plantd_broker_bus_dropped_total", "at=\"capture\"", MetricType::kCounter,
     "", counters_detail::Read<&BusCounters::capture_dropped>},
    {"lvc_replayed", "plantd_broker_bus_lvc_replayed_total", "", MetricType::kCounter,
     "cached last values sent to new subscriptions (last_value_cache)",
     counters_detail::Read<&BusCounters::lvc_replayed>},
    {"blocked_seconds", "plantd_broker_bus_blocked_seconds_total", "", MetricType::kCounter,
     "time a delivery: block bus waited for a slow subscriber",
     counters_detail::Read<&BusCounters::blocked_ns>, true},
    {"too_large", "plantd_broker_bus_too_large_total", "", MetricType::kCounter,
     "published messages over the bus's max_message_size, dropped whole",
     counters_detail::Read<&BusCounters::too_large>},
    {"subscriptions_refused", "plantd_broker_bus_subscriptions_refused_total", "",
     MetricType::kCounter, "subscriptions ignored: too long, or past a subscription cap",
     counters_detail::Read<&BusCounters::subscriptions_refused>},
    {"slow_consumers", "plantd_broker_bus_slow_consumers_total", "", MetricType::kCounter,
     "subscribers a block-mode bus stopped waiting for after limits.write_timeout",
     counters_detail::Read<&BusCounters::slow_consumers>},
}};

}  // namespace plantd::bus

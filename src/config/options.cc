#include "config/options.h"

namespace plantd {

std::vector<BusOptions> BrokerOptions::DefaultBuses() {
  std::vector<BusOptions> buses(2);
  buses[0].name = "control";
  buses[0].backend = "tcp://*:11000";
  buses[0].frontend = "tcp://*:11001";
  buses[0].capture = "tcp://*:11002";
  buses[1].name = "data";
  buses[1].backend = "tcp://*:12000";
  buses[1].frontend = "tcp://*:12001";
  buses[1].capture = "tcp://*:12002";
  return buses;
}

std::vector<std::string> BrokerOptions::MajordomoEndpoints() const {
  std::vector<std::string> all{endpoint, client_endpoint};
  all.insert(all.end(), extra_endpoints.begin(), extra_endpoints.end());
  return all;
}

const char* LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace: return "trace";
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
  }
  return "info";
}

const char* LogFormatName(LogFormat format) {
  return format == LogFormat::kJson ? "json" : "text";
}

const char* DeliveryName(BusOptions::Delivery delivery) {
  return delivery == BusOptions::Delivery::kBlock ? "block" : "drop";
}

}  // namespace plantd

#include <set>
#include <utility>

#include "config/endpoint.h"

namespace plantd {

std::string ConfigIssue::ToString() const {
  std::string s = key + ": ";
  if (!value.empty()) s += "\"" + value + "\" ";
  s += "(from " + (origin.empty() ? std::string("default") : origin) + "): " + message;
  return s;
}

namespace {

class Validator {
 public:
  explicit Validator(const OriginMap& origins) : origins_(origins) {}

  void Fail(const std::string& key, const std::string& value, const std::string& message) {
    auto it = origins_.find(key);
    issues_.push_back({key, it == origins_.end() ? "default" : it->second, value, message});
  }

  // Parses an endpoint the broker binds and remembers it for the conflict check.
  void CheckBound(const std::string& key, const std::string& text, bool must_bind) {
    auto ep = ParseEndpoint(text);
    if (!ep.ok()) {
      Fail(key, text, ep.status().message());
      return;
    }
    if (must_bind && !ep.value().bind) {
      Fail(key, text, "the broker must bind this endpoint; remove the > prefix");
      return;
    }
    for (const auto& [other_key, other] : bound_) {
      if (ep.value().ConflictsWith(other)) {
        Fail(key, text, "binds the same address as " + other_key + " (\"" + other.address +
                            "\"); give each socket its own address");
        return;
      }
    }
    bound_.emplace_back(key, ep.value());
  }

  std::vector<ConfigIssue> Take() { return std::move(issues_); }

 private:
  const OriginMap& origins_;
  std::vector<ConfigIssue> issues_;
  std::vector<std::pair<std::string, Endpoint>> bound_;
};

}  // namespace

std::vector<ConfigIssue> Validate(const BrokerOptions& o, const OriginMap& origins) {
  Validator v(origins);
  v.CheckBound("endpoint", o.endpoint, /*must_bind=*/true);
  v.CheckBound("client_endpoint", o.client_endpoint, true);
  for (size_t i = 0; i < o.extra_endpoints.size(); ++i) {
    v.CheckBound("extra_endpoints[" + std::to_string(i) + "]", o.extra_endpoints[i], true);
  }
  if (o.health.port < 0 || o.health.port > 65535) {
    v.Fail("health.port", std::to_string(o.health.port), "expected a port 1-65535, or 0 for off");
  } else if (o.health.port > 0) {
    v.CheckBound("health.port", "tcp://" + o.health.bind + ":" + std::to_string(o.health.port),
                 true);
  }
  if (o.heartbeat_liveness < 1 || o.heartbeat_liveness > 1000) {
    v.Fail("heartbeat_liveness", std::to_string(o.heartbeat_liveness),
           "expected an integer from 1 to 1000");
  }
  if (o.heartbeat_interval < std::chrono::milliseconds(1)) {
    v.Fail("heartbeat_interval", std::to_string(o.heartbeat_interval.count()) + "ms",
           "expected at least 1ms");
  }
  if (o.request_expiry < std::chrono::milliseconds(1)) {
    v.Fail("request_expiry", std::to_string(o.request_expiry.count()) + "ms",
           "expected at least 1ms");
  }
  if (o.max_redispatch < 0 || o.max_redispatch > 1000) {
    v.Fail("max_redispatch", std::to_string(o.max_redispatch), "expected 0 to 1000");
  }
  struct Bound {
    const char* key;
    size_t value;
    size_t min;
  };
  for (const Bound& b : {Bound{"max_queue_per_service", o.max_queue_per_service, 1},
                         Bound{"max_message_size", o.max_message_size, 64},
                         Bound{"max_message_frames", o.max_message_frames, 4},
                         Bound{"max_services", o.max_services, 1},
                         Bound{"max_workers", o.max_workers, 1},
                         Bound{"health.max_connections", o.health.max_connections, 1}}) {
    if (b.value < b.min) {
      v.Fail(b.key, std::to_string(b.value), "expected at least " + std::to_string(b.min));
    }
  }
  if (o.socket_hwm < 0) {
    v.Fail("socket_hwm", std::to_string(o.socket_hwm), "expected 0 (no limit) or more");
  }

  std::set<std::string> bus_names;
  for (size_t i = 0; i < o.buses.size(); ++i) {
    const BusOptions& bus = o.buses[i];
    const std::string prefix = "buses[" + std::to_string(i) + "].";
    if (bus.name.empty()) {
      v.Fail(prefix + "name", "", "every bus needs a name");
    } else if (!bus_names.insert(bus.name).second) {
      v.Fail(prefix + "name", bus.name, "another bus already has this name");
    }
    if (bus.backend.empty()) {
      v.Fail(prefix + "backend", "", "every bus needs a backend endpoint");
    } else {
      v.CheckBound(prefix + "backend", bus.backend, false);
    }
    if (bus.frontend.empty()) {
      v.Fail(prefix + "frontend", "", "every bus needs a frontend endpoint");
    } else {
      v.CheckBound(prefix + "frontend", bus.frontend, false);
    }
    if (!bus.capture.empty()) v.CheckBound(prefix + "capture", bus.capture, false);
    if (bus.send_hwm < 0) v.Fail(prefix + "send_hwm", std::to_string(bus.send_hwm), ">= 0");
    if (bus.recv_hwm < 0) v.Fail(prefix + "recv_hwm", std::to_string(bus.recv_hwm), ">= 0");
  }
  return v.Take();
}

}  // namespace plantd

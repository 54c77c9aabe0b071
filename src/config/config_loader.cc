#include "config/config_loader.h"

#include <yaml-cpp/yaml.h>

#include <functional>
#include <sstream>

#include "common/units.h"

extern char** environ;

namespace plantd {
namespace {

using std::chrono::duration_cast;
using std::chrono::microseconds;
using std::chrono::milliseconds;

using Setter = std::function<Status(BrokerOptions&, const std::string&)>;
using Getter = std::function<std::string(const BrokerOptions&)>;

// One row per scalar key: the table drives file, environment and flag
// parsing alike, and --print-config.
struct KeySpec {
  std::string key;        // as written in YAML, nested keys dotted
  std::string canonical;  // the key this one sets (differs for aliases)
  std::string env;        // environment variable, or empty
  std::string flag;       // long flag without "--", or empty
  Setter set;
  Getter get;  // canonical keys only
  std::string help;
};

Setter SetString(std::string BrokerOptions::*field) {
  return [field](BrokerOptions& o, const std::string& v) {
    o.*field = v;
    return Status::Ok();
  };
}

Setter SetDuration(milliseconds BrokerOptions::*field, std::chrono::nanoseconds bare_unit) {
  return [field, bare_unit](BrokerOptions& o, const std::string& v) -> Status {
    auto d = ParseDuration(v, bare_unit);
    if (!d.ok()) return d.status();
    if (d.value() < milliseconds(1)) return Status::Error("expected at least 1ms");
    o.*field = duration_cast<milliseconds>(d.value());
    return Status::Ok();
  };
}

template <typename T>
Setter SetCount(T BrokerOptions::*field, uint64_t min, uint64_t max) {
  return [field, min, max](BrokerOptions& o, const std::string& v) -> Status {
    auto n = ParseUnsigned(v);
    if (!n.ok() || n.value() < min || n.value() > max) {
      return Status::Error("expected an integer from " + std::to_string(min) + " to " +
                           std::to_string(max));
    }
    o.*field = static_cast<T>(n.value());
    return Status::Ok();
  };
}

template <typename T>
Getter GetNumber(T BrokerOptions::*field) {
  return [field](const BrokerOptions& o) { return std::to_string(o.*field); };
}

Status SetLogLevel(BrokerOptions& o, const std::string& v) {
  static const std::pair<const char*, LogLevel> kLevels[] = {
      {"trace", LogLevel::kTrace}, {"debug", LogLevel::kDebug}, {"info", LogLevel::kInfo},
      {"warn", LogLevel::kWarn},   {"warning", LogLevel::kWarn}, {"error", LogLevel::kError}};
  for (const auto& [name, level] : kLevels) {
    if (v == name) {
      o.log.level = level;
      return Status::Ok();
    }
  }
  return Status::Error("expected one of trace, debug, info, warn, error");
}

Status SetLogFormat(BrokerOptions& o, const std::string& v) {
  if (v == "text") {
    o.log.format = LogFormat::kText;
  } else if (v == "json") {
    o.log.format = LogFormat::kJson;
  } else {
    return Status::Error("expected text or json");
  }
  return Status::Ok();
}

Status SetTransport(BrokerOptions& o, const std::string& v) {
  if (v == "native") {
    o.transport = Transport::kNative;
  } else if (v == "zmq") {
    o.transport = Transport::kZmq;
  } else {
    return Status::Error("expected native or zmq");
  }
  return Status::Ok();
}

const std::vector<KeySpec>& KeyTable() {
  static const std::vector<KeySpec> table = [] {
    std::vector<KeySpec> t;
    auto add = [&t](KeySpec spec) {
      if (spec.canonical.empty()) spec.canonical = spec.key;
      t.push_back(std::move(spec));
    };
    add({"endpoint", "", "PLANTD_BROKER_ENDPOINT", "endpoint",
         SetString(&BrokerOptions::endpoint), [](auto& o) { return o.endpoint; },
         "Majordomo endpoint where clients connect"});
    add({"client_endpoint", "", "PLANTD_BROKER_CLIENT_ENDPOINT", "client-endpoint",
         SetString(&BrokerOptions::client_endpoint), [](auto& o) { return o.client_endpoint; },
         "Majordomo endpoint where workers connect"});
    add({"transport", "", "PLANTD_BROKER_TRANSPORT", "transport", SetTransport,
         [](auto& o) { return std::string(o.transport == Transport::kZmq ? "zmq" : "native"); },
         "how Majordomo endpoints reach the network: native (ZMTP in the core thread) or zmq"});
    add({"client-endpoint", "client_endpoint", "", "", SetString(&BrokerOptions::client_endpoint),
         nullptr, ""});
    add({"heartbeat_interval", "", "PLANTD_BROKER_HEARTBEAT_INTERVAL", "heartbeat-interval",
         SetDuration(&BrokerOptions::heartbeat_interval, milliseconds(1)),
         [](auto& o) { return FormatDuration(o.heartbeat_interval); },
         "heartbeat period (250ms, 2.5s; a bare integer is milliseconds)"});
    // plantd wrote this one as an integer number of microseconds (2500000).
    add({"heartbeat-interval", "heartbeat_interval", "", "",
         SetDuration(&BrokerOptions::heartbeat_interval, microseconds(1)), nullptr, ""});
    add({"heartbeat_liveness", "", "PLANTD_BROKER_HEARTBEAT_LIVENESS", "heartbeat-liveness",
         SetCount(&BrokerOptions::heartbeat_liveness, 1, 1000),
         GetNumber(&BrokerOptions::heartbeat_liveness),
         "missed heartbeats after which a peer is dead"});
    add({"heartbeat-liveness", "heartbeat_liveness", "", "",
         SetCount(&BrokerOptions::heartbeat_liveness, 1, 1000), nullptr, ""});
    add({"request_expiry", "", "PLANTD_BROKER_REQUEST_EXPIRY", "request-expiry",
         SetDuration(&BrokerOptions::request_expiry, milliseconds(1)),
         [](auto& o) { return FormatDuration(o.request_expiry); },
         "how long a request waits for a worker"});
    add({"max_redispatch", "", "", "", SetCount(&BrokerOptions::max_redispatch, 0, 1000),
         GetNumber(&BrokerOptions::max_redispatch), ""});
    add({"max_queue_per_service", "", "", "",
         SetCount(&BrokerOptions::max_queue_per_service, 1, 100'000'000),
         GetNumber(&BrokerOptions::max_queue_per_service), ""});
    add({"max_message_size", "", "", "",
         [](BrokerOptions& o, const std::string& v) -> Status {
           auto n = ParseByteSize(v);
           if (!n.ok()) return n.status();
           o.max_message_size = n.value();
           return Status::Ok();
         },
         GetNumber(&BrokerOptions::max_message_size), ""});
    add({"max_message_frames", "", "", "", SetCount(&BrokerOptions::max_message_frames, 4, 1 << 20),
         GetNumber(&BrokerOptions::max_message_frames), ""});
    add({"max_services", "", "", "", SetCount(&BrokerOptions::max_services, 1, 10'000'000),
         GetNumber(&BrokerOptions::max_services), ""});
    add({"max_workers", "", "", "", SetCount(&BrokerOptions::max_workers, 1, 10'000'000),
         GetNumber(&BrokerOptions::max_workers), ""});
    add({"socket_hwm", "", "", "", SetCount(&BrokerOptions::socket_hwm, 0, 100'000'000),
         GetNumber(&BrokerOptions::socket_hwm), ""});
    add({"env", "", "", "", SetString(&BrokerOptions::environment),
         [](auto& o) { return o.environment; }, ""});
    add({"service.id", "", "", "", SetString(&BrokerOptions::service_id),
         [](auto& o) { return o.service_id; }, ""});
    add({"health.bind", "", "PLANTD_BROKER_HEALTH_BIND", "health-bind",
         [](BrokerOptions& o, const std::string& v) {
           o.health.bind = v;
           return Status::Ok();
         },
         [](auto& o) { return o.health.bind; }, "address of the health/metrics HTTP server"});
    add({"health.port", "", "PLANTD_BROKER_HEALTH_PORT", "health-port",
         [](BrokerOptions& o, const std::string& v) -> Status {
           auto n = ParseUnsigned(v);
           if (!n.ok() || n.value() > 65535) {
             return Status::Error("expected a port 1-65535, or 0 for off");
           }
           o.health.port = static_cast<int>(n.value());
           return Status::Ok();
         },
         [](auto& o) { return std::to_string(o.health.port); },
         "port of the health/metrics HTTP server (0: off)"});
    add({"health.max_connections", "", "", "",
         [](BrokerOptions& o, const std::string& v) -> Status {
           auto n = ParseUnsigned(v);
           if (!n.ok() || n.value() > 4096) return Status::Error("expected 1 to 4096");
           o.health.max_connections = n.value();
           return Status::Ok();
         },
         [](auto& o) { return std::to_string(o.health.max_connections); }, ""});
    add({"log.level", "", "PLANTD_BROKER_LOG_LEVEL", "log-level", SetLogLevel,
         [](auto& o) { return std::string(LogLevelName(o.log.level)); },
         "trace, debug, info, warn or error"});
    add({"log.format", "", "PLANTD_BROKER_LOG_FORMAT", "log-format", SetLogFormat,
         [](auto& o) { return std::string(LogFormatName(o.log.format)); }, "text or json"});
    add({"log.formatter", "log.format", "", "", SetLogFormat, nullptr, ""});
    return t;
  }();
  return table;
}

const KeySpec* FindKey(const std::string& key) {
  for (const KeySpec& spec : KeyTable()) {
    if (spec.key == key) return &spec;
  }
  return nullptr;
}

std::string Where(const std::string& file, const YAML::Node& node) {
  return file + ":" + std::to_string(node.Mark().line + 1);
}

class FileReader {
 public:
  FileReader(const std::string& path, LoadedConfig* out) : path_(path), out_(out) {}

  void Read() {
    YAML::Node root;
    try {
      root = YAML::LoadFile(path_);
    } catch (const YAML::BadFile&) {
      out_->errors.push_back({"config", "PLANTD_BROKER_CONFIG / --config", path_,
                              "cannot open the configuration file"});
      return;
    } catch (const YAML::Exception& e) {
      out_->errors.push_back({"config", path_ + ":" + std::to_string(e.mark.line + 1), "",
                              "not valid YAML: " + e.msg});
      return;
    }
    if (root.IsNull()) return;  // an empty file configures nothing
    if (!root.IsMap()) {
      out_->errors.push_back(
          {"config", Where(path_, root), "", "expected a mapping of keys to values"});
      return;
    }
    try {
      ReadMap(root, "");
    } catch (const YAML::Exception& e) {
      out_->errors.push_back({"config", path_ + ":" + std::to_string(e.mark.line + 1), "",
                              "cannot read: " + e.msg});
    }
  }

 private:
  void ReadMap(const YAML::Node& map, const std::string& prefix) {
    for (const auto& item : map) {
      const std::string key = prefix + item.first.as<std::string>();
      const YAML::Node& value = item.second;
      if (key == "buses") {
        ReadBuses(value);
      } else if (key == "extra_endpoints") {
        ReadList(key, value, &out_->options.extra_endpoints);
      } else if (value.IsMap()) {
        ReadMap(value, key + ".");
      } else if (const KeySpec* spec = FindKey(key)) {
        ReadScalar(*spec, value);
      } else {
        out_->warnings.push_back({key, Where(path_, item.first), "",
                                  "unknown key, ignored (check its spelling)"});
      }
    }
  }

  void ReadScalar(const KeySpec& spec, const YAML::Node& value) {
    const std::string where = Where(path_, value);
    if (!value.IsScalar()) {
      out_->errors.push_back({spec.key, where, "", "expected a single value"});
      return;
    }
    const std::string& text = value.Scalar();
    Status s = spec.set(out_->options, text);
    if (!s.ok()) {
      out_->errors.push_back({spec.key, where, text, s.message()});
      return;
    }
    out_->origins[spec.canonical] = where;
  }

  void ReadList(const std::string& key, const YAML::Node& value, std::vector<std::string>* out) {
    if (!value.IsSequence()) {
      out_->errors.push_back({key, Where(path_, value), "", "expected a list"});
      return;
    }
    out->clear();
    for (size_t i = 0; i < value.size(); ++i) {
      out->push_back(value[i].as<std::string>());
      out_->origins[key + "[" + std::to_string(i) + "]"] = Where(path_, value[i]);
    }
  }

  void ReadBuses(const YAML::Node& value) {
    out_->options.buses.clear();
    out_->origins["buses"] = Where(path_, value);
    if (value.IsNull()) return;
    if (!value.IsSequence()) {
      out_->errors.push_back({"buses", Where(path_, value), "", "expected a list of buses"});
      return;
    }
    for (size_t i = 0; i < value.size(); ++i) {
      const YAML::Node& node = value[i];
      const std::string prefix = "buses[" + std::to_string(i) + "].";
      BusOptions bus;
      if (!node.IsMap()) {
        out_->errors.push_back({"buses[" + std::to_string(i) + "]", Where(path_, node), "",
                                "expected a mapping with name, backend and frontend"});
        continue;
      }
      for (const auto& item : node) {
        const std::string field = item.first.as<std::string>();
        const YAML::Node& v = item.second;
        const std::string key = prefix + field;
        const std::string where = Where(path_, v);
        if (!v.IsScalar()) {
          out_->errors.push_back({key, where, "", "expected a single value"});
          continue;
        }
        const std::string text = v.Scalar();
        out_->origins[key] = where;
        Status s = SetBusField(&bus, field, text);
        if (s.message() == kUnknownField) {
          out_->warnings.push_back(
              {key, Where(path_, item.first), "", "unknown bus key, ignored"});
        } else if (!s.ok()) {
          out_->errors.push_back({key, where, text, s.message()});
        }
      }
      out_->options.buses.push_back(std::move(bus));
    }
  }

  static constexpr const char* kUnknownField = "unknown field";

  static Status SetBusField(BusOptions* bus, const std::string& field, const std::string& v) {
    if (field == "name") {
      bus->name = v;
    } else if (field == "backend") {
      bus->backend = v;
    } else if (field == "frontend") {
      bus->frontend = v;
    } else if (field == "capture") {
      bus->capture = v;
    } else if (field == "send_hwm" || field == "recv_hwm") {
      auto n = ParseUnsigned(v);
      if (!n.ok() || n.value() > 100'000'000) {
        return Status::Error("expected a number of messages, 0 (no limit) to 100000000");
      }
      (field == "send_hwm" ? bus->send_hwm : bus->recv_hwm) = static_cast<int>(n.value());
    } else if (field == "delivery") {
      if (v == "drop") {
        bus->delivery = BusOptions::Delivery::kDrop;
      } else if (v == "block") {
        bus->delivery = BusOptions::Delivery::kBlock;
      } else {
        return Status::Error("expected drop or block");
      }
    } else if (field == "last_value_cache") {
      if (v == "true" || v == "yes" || v == "on") {
        bus->last_value_cache = true;
      } else if (v == "false" || v == "no" || v == "off") {
        bus->last_value_cache = false;
      } else {
        return Status::Error("expected true or false");
      }
    } else {
      return Status::Error(kUnknownField);
    }
    return Status::Ok();
  }

  const std::string path_;
  LoadedConfig* out_;
};

void ApplyOverride(const KeySpec& spec, const std::string& value, const std::string& origin,
                   LoadedConfig* out) {
  Status s = spec.set(out->options, value);
  if (!s.ok()) {
    out->errors.push_back({spec.key, origin, value, s.message()});
    return;
  }
  out->origins[spec.canonical] = origin;
}

std::string Quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("0123456789") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') q += '\\';
    q += c;
  }
  return q + "\"";
}

}  // namespace

LoadedConfig LoadConfig(const ConfigSources& sources) {
  LoadedConfig out;
  if (sources.file_path) {
    out.file_path = *sources.file_path;
  } else if (auto it = sources.environment.find("PLANTD_BROKER_CONFIG");
             it != sources.environment.end() && !it->second.empty()) {
    out.file_path = it->second;
  }
  if (!out.file_path.empty()) FileReader(out.file_path, &out).Read();

  for (const KeySpec& spec : KeyTable()) {
    if (spec.env.empty()) continue;
    if (auto it = sources.environment.find(spec.env); it != sources.environment.end()) {
      ApplyOverride(spec, it->second, "env " + spec.env, &out);
    }
  }
  for (const auto& [key, value] : sources.flags) {
    const KeySpec* spec = FindKey(key);
    if (spec != nullptr) ApplyOverride(*spec, value, "flag --" + spec->flag, &out);
  }
  if (out.errors.empty()) {
    for (ConfigIssue& issue : Validate(out.options, out.origins)) {
      out.errors.push_back(std::move(issue));
    }
  }
  return out;
}

std::string RenderConfigYaml(const LoadedConfig& config) {
  const BrokerOptions& o = config.options;
  auto origin = [&config](const std::string& key) {
    auto it = config.origins.find(key);
    return it == config.origins.end() ? std::string("default") : it->second;
  };
  std::ostringstream y;
  y << "# plantd-broker effective configuration; '#' gives where each value came from\n";
  std::string section;
  for (const KeySpec& spec : KeyTable()) {
    if (!spec.get) continue;  // aliases are shown under their canonical key
    std::string name = spec.key;
    const size_t dot = name.find('.');
    std::string indent;
    if (dot != std::string::npos) {
      const std::string parent = name.substr(0, dot);
      if (parent != section) y << parent << ":\n";
      section = parent;
      name = name.substr(dot + 1);
      indent = "  ";
    } else {
      section.clear();
    }
    y << indent << name << ": " << Quote(spec.get(o)) << "  # " << origin(spec.key) << "\n";
  }
  y << "extra_endpoints:" << (o.extra_endpoints.empty() ? " []" : "") << "\n";
  for (size_t i = 0; i < o.extra_endpoints.size(); ++i) {
    y << "  - " << Quote(o.extra_endpoints[i]) << "  # "
      << origin("extra_endpoints[" + std::to_string(i) + "]") << "\n";
  }
  y << "buses:" << (o.buses.empty() ? " []" : "") << "  # " << origin("buses") << "\n";
  for (const BusOptions& bus : o.buses) {
    y << "  - name: " << Quote(bus.name) << "\n"
      << "    backend: " << Quote(bus.backend) << "\n"
      << "    frontend: " << Quote(bus.frontend) << "\n"
      << "    capture: " << Quote(bus.capture) << "\n"
      << "    send_hwm: " << bus.send_hwm << "\n"
      << "    recv_hwm: " << bus.recv_hwm << "\n"
      << "    delivery: " << DeliveryName(bus.delivery) << "\n"
      << "    last_value_cache: " << (bus.last_value_cache ? "true" : "false") << "\n";
  }
  return y.str();
}

std::vector<ConfigFlag> ConfigFlags() {
  std::vector<ConfigFlag> flags;
  for (const KeySpec& spec : KeyTable()) {
    if (!spec.flag.empty()) flags.push_back({spec.flag, spec.key, spec.help});
  }
  return flags;
}

std::map<std::string, std::string> ProcessEnvironment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string entry(*e);
    const size_t eq = entry.find('=');
    if (eq != std::string::npos) env[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  return env;
}

}  // namespace plantd

namespace plantd {

std::vector<std::string> ChangedKeys(const BrokerOptions& before, const BrokerOptions& after) {
  std::vector<std::string> changed;
  for (const KeySpec& spec : KeyTable()) {
    if (spec.get && spec.get(before) != spec.get(after)) changed.push_back(spec.key);
  }
  if (before.extra_endpoints != after.extra_endpoints) changed.push_back("extra_endpoints");
  auto render_buses = [](const BrokerOptions& o) {
    LoadedConfig c;
    c.options = o;
    const std::string all = RenderConfigYaml(c);
    return all.substr(all.find("\nbuses:"));
  };
  if (render_buses(before) != render_buses(after)) changed.push_back("buses");
  return changed;
}

}  // namespace plantd

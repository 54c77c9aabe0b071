// Everything that configures a running broker, with the built-in defaults.
// The defaults alone give a working broker (see README, "Configuration").
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace plantd {

enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError };
enum class LogFormat { kText, kJson };

// How the Majordomo endpoints reach the network (docs/transport.md).
enum class Transport {
  kNative,  // ZMTP 3.1 spoken by the core thread itself: the fast path
  kZmq,     // libzmq's ROUTER and I/O thread
};

struct LogOptions {
  LogLevel level = LogLevel::kInfo;
  LogFormat format = LogFormat::kText;
};

struct HealthOptions {
  // All interfaces, as plantd's Go broker did: orchestrator probes and
  // Prometheus scrape from outside the host. Set 127.0.0.1 to keep it local.
  std::string bind = "0.0.0.0";
  int port = 8081;  // 0 turns the HTTP endpoint off
  size_t max_connections = 32;
};

// A publish/subscribe bus: an XSUB at `backend`, an XPUB at `frontend`.
struct BusOptions {
  enum class Delivery {
    kDrop,   // a slow subscriber loses messages (counted); nobody waits
    kBlock,  // ZMQ_XPUB_NODROP: publishers slow down; nobody loses messages
  };

  std::string name;
  std::string backend;   // publishers connect here
  std::string frontend;  // subscribers connect here
  std::string capture;   // optional: a copy of every message is published here
  int send_hwm = 100000;  // per subscriber, in messages
  int recv_hwm = 100000;  // per publisher, in messages
  Delivery delivery = Delivery::kDrop;
  bool last_value_cache = false;
};

struct BrokerOptions {
  // Majordomo endpoints. Each accepts clients and workers alike; the names
  // are those of plantd: `endpoint` is where clients connect, and
  // `client_endpoint` is where workers (the broker's clients) connect.
  std::string endpoint = "tcp://*:7200";
  std::string client_endpoint = "tcp://*:7201";
  std::vector<std::string> extra_endpoints;
  Transport transport = Transport::kNative;

  // 18/MDP heartbeating: a peer silent for interval x liveness is dead.
  std::chrono::milliseconds heartbeat_interval{2500};
  int heartbeat_liveness = 3;

  // How long a request may wait for a worker before it is dropped.
  std::chrono::milliseconds request_expiry{30000};
  // How many times a request whose worker died is sent to another worker.
  int max_redispatch = 3;

  // Bounds on what a peer can make the broker hold.
  size_t max_queue_per_service = 10000;
  size_t max_message_size = 16u << 20;  // bytes, all frames of one message
  size_t max_message_frames = 256;
  size_t max_services = 10000;
  size_t max_workers = 10000;
  int socket_hwm = 100000;  // per peer, in messages, both directions

  // Carried over from plantd's configuration; shown in health and logs.
  std::string environment = "development";
  std::string service_id = "org.plantd.Broker";

  LogOptions log;
  HealthOptions health;
  std::vector<BusOptions> buses = DefaultBuses();

  // Derived in one place: a worker silent this long is declared dead.
  std::chrono::milliseconds HeartbeatExpiry() const {
    return heartbeat_interval * heartbeat_liveness;
  }
  // All Majordomo endpoints, in bind order.
  std::vector<std::string> MajordomoEndpoints() const;

  static std::vector<BusOptions> DefaultBuses();
};

const char* LogLevelName(LogLevel level);
const char* LogFormatName(LogFormat format);
const char* DeliveryName(BusOptions::Delivery delivery);

}  // namespace plantd

#include <map>

namespace plantd {

// One problem found in the configuration: which key, where its value came
// from, the value, and what would be valid.
struct ConfigIssue {
  std::string key;
  std::string origin;  // "default", "env NAME", "flag --name", "FILE:LINE"
  std::string value;
  std::string message;

  std::string ToString() const;
};

// Canonical key ("heartbeat_interval", "buses[1].frontend") -> its origin.
using OriginMap = std::map<std::string, std::string>;

// The cross-field rules: ranges, endpoint syntax, duplicate bus names, two
// sockets on one address. Empty when the options can be run.
std::vector<ConfigIssue> Validate(const BrokerOptions& options, const OriginMap& origins);

}  // namespace plantd

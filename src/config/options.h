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
  // Open HTTP connections. When a new one arrives at the cap, the connection
  // that has waited longest for a request (idle keep-alive, or a request that
  // is still arriving) is closed; when none is waiting, the new one gets 503.
  size_t max_connections = 32;
  // A request's line and headers must arrive within this of the connection's
  // opening or of the request's first byte, else 408 and the connection is
  // closed (slowloris).
  std::chrono::milliseconds read_timeout{5000};
  // A kept-alive connection with no new request for this long is closed.
  std::chrono::milliseconds idle_timeout{30000};
  // A response not fully sent within this is abandoned and its connection
  // closed (a client that does not read).
  std::chrono::milliseconds write_timeout{10000};
  // Request line and headers, in bytes; a longer request gets 431. Requests
  // with a body get 413: every path is a GET.
  size_t max_request_bytes = 8192;
};

// A publish/subscribe bus: an XSUB at `backend`, an XPUB at `frontend`.
struct BusOptions {
  enum class Delivery {
    kDrop,   // a slow subscriber loses messages (counted); nobody waits
    kBlock,  // ZMQ_XPUB_NODROP: publishers slow down; nobody loses messages
  };

  std::string name;
  std::string backend;    // publishers connect here
  std::string frontend;   // subscribers connect here
  std::string capture;    // optional: a copy of every message is published here
  int send_hwm = 100000;  // per subscriber, in messages
  // Per publisher, in messages: what libzmq's XSUB may hold before the
  // publisher's TCP connection is pushed back. With max_message_size it
  // bounds what one publisher can make the broker hold (libzmq counts no
  // bytes), so it is libzmq's own default, not send_hwm's: the bus thread
  // drains it continuously, and 1,000 in flight is plenty for throughput.
  int recv_hwm = 1000;
  // The subscriber queue in bytes: whichever limit is reached first applies.
  // In drop mode a subscriber past it loses messages; in block mode
  // publishers wait. (Publishers have no byte limit: the backend is libzmq's
  // XSUB, which counts messages; see docs/buses.md, "Limits".)
  size_t send_hwm_bytes = 64u << 20;  // per subscriber
  // A larger message from a publisher is dropped whole and counted.
  size_t max_message_size = 1u << 20;
  // Subscriptions: per subscriber, on the whole bus, and bytes in one topic prefix.
  size_t max_subscriptions_per_subscriber = 10000;
  size_t max_subscriptions = 100000;
  size_t max_subscription_size = 1024;
  Delivery delivery = Delivery::kDrop;
  bool last_value_cache = false;
};

// What any peer on the network can make the broker hold, in bytes and
// entries. The defaults are safe on a public network with no tuning; each
// limit that bites is refused, logged (rate-limited) and counted in
// plantd_refused_total{reason} (docs/operations.md).
struct LimitsOptions {
  // All bytes buffered for all connections (input being assembled, messages
  // waiting for the core, output waiting for the network). Past it the
  // broker stops reading new input until buffers drain (back-pressure).
  size_t max_buffered_bytes = size_t{1} << 30;
  // Per connection: output queued for a peer that does not read. Past it,
  // or when its output has made no progress for `write_timeout`, the
  // connection is closed (a slow consumer).
  size_t max_connection_out_bytes = 64u << 20;
  std::chrono::milliseconds write_timeout{10000};
  // A connection that has not finished the ZMTP handshake by then is closed.
  std::chrono::milliseconds handshake_timeout{5000};
  // Open connections on all Majordomo and bus endpoints, and from one
  // remote address. Past either, the oldest connection still in its
  // handshake goes first; a new connection is refused when there is none.
  size_t max_connections = 20000;
  size_t max_connections_per_address = 2000;
  // CURVE handshakes one remote address may start, per second and at once
  // (transport/handshake_rate.h): a HELLO costs the broker a Curve25519
  // multiplication, so a flood of them from one host is refused on accept.
  size_t curve_handshakes_per_second = 100;
  size_t curve_handshake_burst = 2000;
  // Services that exist only because clients asked for them (no worker has
  // ever served them): per client connection and in total. Requests to such
  // a service wait for a worker; past the cap, a request naming a new
  // service is refused with an error reply, and services with workers are
  // never pushed out.
  size_t max_client_services = 100;
  size_t max_unserved_services = 1000;
};

struct MetricsOptions {
  // /metrics stays under about this many bytes whatever the number and names
  // of services: per-service series that would pass it are summed into
  // service="_other" as well (service names are chosen by clients).
  size_t max_bytes = 1u << 20;
  // Per-service series in /metrics; the rest are summed into service="_other".
  // Each service adds 27 series (about 2.5 KB with a 20-byte name, 8.5 KB
  // with a 255-byte one): 100 keeps a scrape near or under 1 MB.
  size_t max_service_labels = 100;
};

// Durable requests (9/TSP Titanic) on an embedded SQLite file.
struct StoreOptions {
  bool enabled = true;
  std::string path = "./data/plantd-broker.db";
  size_t max_requests = 100000;        // stored requests of any state
  size_t max_bytes = size_t{1} << 30;  // bytes of stored requests and replies
  std::chrono::milliseconds reply_retention{7LL * 24 * 3600 * 1000};
  // Syncs of the store's WAL that may run at once. A commit never waits for
  // the previous one's sync; on disks that complete overlapping syncs
  // together, more of them acknowledge more requests per second. 1 still
  // overlaps one sync with the next commit.
  size_t sync_threads = 4;
};

// Who may connect, and whether traffic is encrypted: ZMTP's NULL (anyone,
// in clear) or CURVE (RFC 26: encrypted, and only clients whose public key
// is authorized). It covers every Majordomo endpoint and every bus endpoint
// that the broker binds.
enum class SecurityMechanism { kNull, kCurve };
struct SecurityOptions {
  SecurityMechanism mechanism = SecurityMechanism::kNull;
  // The broker's certificate, in the format czmq's zcert_save writes (and
  // `plantd-mdp keygen` makes): readable by its owner only.
  std::string secret_key_file;
  // A directory of public certificates, one per client allowed in; read
  // again on SIGHUP. Empty: any client that completes the handshake (traffic
  // is encrypted, but not authenticated).
  std::string authorized_keys_dir;
  // Further clients allowed in, written in the configuration itself: each
  // "KEY NAME", the public key in Z85 (40 characters) and the name the
  // access rules, /status and logs use for it. Read again on SIGHUP.
  std::vector<std::string> authorized_keys;
  // Access rules by key name (transport/access_policy.h); read again on
  // SIGHUP. Empty: every peer let in may call, serve, publish and
  // subscribe to anything.
  std::string acl_file;
  // Endpoints among those the broker binds (endpoint, client_endpoint,
  // extra_endpoints, a bus frontend) where peers may connect with NULL while
  // the mechanism is curve: a local ipc:// socket that file permissions
  // already guard. Their peers are named "anonymous" in the access rules,
  // /status and logs. Native transport only: a libzmq socket has one
  // mechanism for all of its endpoints.
  std::vector<std::string> null_endpoints;
};

// org.plantd.Admin, the service behind `plantd-mdp admin drain|status`.
struct AdminOptions {
  // Off: admin commands are taken only from loopback and ipc:// peers, so
  // that whoever can reach a Majordomo port cannot drain the broker.
  bool allow_remote = false;
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

  // SIGTERM: requests in flight get this long to be answered before the
  // broker exits; an idle broker exits at once.
  std::chrono::milliseconds shutdown_grace{5000};

  LogOptions log;
  HealthOptions health;
  LimitsOptions limits;
  MetricsOptions metrics;
  StoreOptions store;
  SecurityOptions security;
  AdminOptions admin;
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
const char* SecurityMechanismName(SecurityMechanism mechanism);

}  // namespace plantd

#include <map>
#include <string_view>

namespace plantd {

// One problem found in the configuration: which key, where its value came
// from, the value, and what would be valid.
struct ConfigIssue {
  std::string key;
  std::string origin;  // "default", "env NAME", "flag --name", "FILE:LINE"
  std::string value;
  std::string message;

  // `key: "value" (from ORIGIN): message`. The key and value are shown
  // through EchoValue, so a huge or binary value cannot flood a log.
  std::string ToString() const;
};

// A configuration value as error messages show it: quoted, with quotes,
// backslashes and control characters escaped, at most kMaxEcho bytes
// between the quotes; a longer value is cut, ends in "…" and is followed by
// its full length: `"aaaa…" (104857600 bytes)`.
inline constexpr size_t kMaxEcho = 80;
std::string EchoValue(std::string_view value);
// The same for a key (unquoted): an unknown key can be as long as a value.
std::string EchoKey(std::string_view key);

// Canonical key ("heartbeat_interval", "buses[1].frontend") -> its origin.
using OriginMap = std::map<std::string, std::string>;

// Every key's range (from the key table, config_keys.h), endpoint syntax,
// duplicate bus names, two sockets on one address, and the cross-field
// rules between limits. Empty when the options can be run.
std::vector<ConfigIssue> Validate(const BrokerOptions& options, const OriginMap& origins);

}  // namespace plantd

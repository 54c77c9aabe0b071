#include "config/config_keys.h"

#include <algorithm>
#include <cctype>
#include <sstream>
#include <type_traits>
#include <utility>

#include "common/units.h"

namespace plantd {
namespace {

using std::chrono::duration_cast;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

constexpr uint64_t kKiB = uint64_t{1} << 10;
constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr uint64_t kTiB = uint64_t{1} << 40;
constexpr uint64_t kSecond = 1000;  // durations are in milliseconds here
constexpr uint64_t kMinute = 60 * kSecond;
constexpr uint64_t kHour = 60 * kMinute;

// 64B, 65535B, 16MiB: a size with its unit, as the docs show it.
std::string SizeText(uint64_t bytes) {
  std::string s = FormatByteSize(bytes);
  return s.back() >= '0' && s.back() <= '9' ? s + "B" : s;
}

std::string RangeText(KeyType type, uint64_t min, uint64_t max) {
  switch (type) {
    case KeyType::kInteger: return std::to_string(min) + " to " + std::to_string(max);
    case KeyType::kBytes: return SizeText(min) + " to " + SizeText(max);
    case KeyType::kDuration:
      return FormatDuration(milliseconds(min)) + " to " + FormatDuration(milliseconds(max));
    default: return "";
  }
}

template <typename Target>
Status Expected(const KeySpec<Target>& spec) {
  return Status::Error("expected " + Expectation(spec));
}

// An integer field (int or size_t) in [min, max].
template <typename Target, typename Field>
KeySpec<Target> Integer(Field field, uint64_t min, uint64_t max) {
  KeySpec<Target> s;
  s.type = KeyType::kInteger;
  s.min = min;
  s.max = max;
  const Status bad = Expected(s);
  s.set = [field, min, max, bad](Target& o, std::string_view text) -> Status {
    auto n = ParseUnsigned(text);
    if (!n.ok() || n.value() < min || n.value() > max) return bad;
    using T = std::remove_reference_t<decltype(field(o))>;
    field(o) = static_cast<T>(n.value());
    return Status::Ok();
  };
  s.get = [field](const Target& o) { return std::to_string(field(o)); };
  s.check = [field, min, max, bad](const Target& o) -> Status {
    const auto v = field(o);
    if constexpr (std::is_signed_v<decltype(v)>) {
      if (v < 0) return bad;
    }
    const auto u = static_cast<uint64_t>(v);
    return u < min || u > max ? bad : Status::Ok();
  };
  return s;
}

// A size_t field in bytes, written with or without a unit.
template <typename Target, typename Field>
KeySpec<Target> Bytes(Field field, uint64_t min, uint64_t max) {
  KeySpec<Target> s;
  s.type = KeyType::kBytes;
  s.min = min;
  s.max = max;
  const Status bad = Expected(s);
  s.set = [field, min, max, bad](Target& o, std::string_view text) -> Status {
    auto n = ParseByteSize(text);
    if (!n.ok() || n.value() < min || n.value() > max) return bad;
    field(o) = static_cast<size_t>(n.value());
    return Status::Ok();
  };
  s.get = [field](const Target& o) { return FormatByteSize(field(o)); };
  s.check = [field, min, max, bad](const Target& o) -> Status {
    const uint64_t v = field(o);
    return v < min || v > max ? bad : Status::Ok();
  };
  return s;
}

// A std::chrono::milliseconds field; a bare integer is taken in `bare_unit`.
template <typename Target, typename Field>
KeySpec<Target> Duration(Field field, uint64_t min_ms, uint64_t max_ms,
                         nanoseconds bare_unit = milliseconds(1)) {
  KeySpec<Target> s;
  s.type = KeyType::kDuration;
  s.min = min_ms;
  s.max = max_ms;
  Status bad = Expected(s);
  if (bare_unit != milliseconds(1)) {
    bad = Status::Error("expected a duration from " + RangeText(s.type, min_ms, max_ms) +
                        ", such as 250ms or 2.5s (a bare integer is microseconds)");
  }
  s.set = [field, min_ms, max_ms, bare_unit, bad](Target& o, std::string_view text) -> Status {
    auto d = ParseDuration(text, bare_unit);
    if (!d.ok()) return bad;
    const milliseconds ms = duration_cast<milliseconds>(d.value());
    if (ms.count() < 0 || static_cast<uint64_t>(ms.count()) < min_ms ||
        static_cast<uint64_t>(ms.count()) > max_ms) {
      return bad;
    }
    field(o) = ms;
    return Status::Ok();
  };
  s.get = [field](const Target& o) { return FormatDuration(field(o)); };
  s.check = [field, min_ms, max_ms, bad](const Target& o) -> Status {
    const int64_t ms = field(o).count();
    return ms < 0 || static_cast<uint64_t>(ms) < min_ms || static_cast<uint64_t>(ms) > max_ms
               ? bad
               : Status::Ok();
  };
  return s;
}

template <typename Target, typename Field>
KeySpec<Target> String(Field field, KeyType type = KeyType::kString) {
  KeySpec<Target> s;
  s.type = type;
  s.set = [field](Target& o, std::string_view text) {
    field(o) = std::string(text);
    return Status::Ok();
  };
  s.get = [field](const Target& o) { return field(o); };
  s.check = [](const Target&) { return Status::Ok(); };
  return s;
}

template <typename Target, typename Field>
KeySpec<Target> Bool(Field field) {
  KeySpec<Target> s;
  s.type = KeyType::kBool;
  const Status bad = Expected(s);
  s.set = [field, bad](Target& o, std::string_view text) -> Status {
    std::string v(text);
    std::transform(v.begin(), v.end(), v.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (v == "true" || v == "yes" || v == "on") {
      field(o) = true;
    } else if (v == "false" || v == "no" || v == "off") {
      field(o) = false;
    } else {
      return bad;
    }
    return Status::Ok();
  };
  s.get = [field](const Target& o) { return std::string(field(o) ? "true" : "false"); };
  s.check = [](const Target&) { return Status::Ok(); };
  return s;
}

// One of `names` (documented, in order); `synonyms` are accepted as well.
template <typename Target, typename Field, typename V>
KeySpec<Target> Choice(Field field, std::vector<std::pair<std::string, V>> names,
                       std::vector<std::pair<std::string, V>> synonyms = {}) {
  KeySpec<Target> s;
  s.type = KeyType::kChoice;
  for (const auto& [name, value] : names) s.choices.push_back(name);
  const Status bad = Expected(s);
  std::vector<std::pair<std::string, V>> all = names;
  all.insert(all.end(), synonyms.begin(), synonyms.end());
  s.set = [field, all, bad](Target& o, std::string_view text) -> Status {
    for (const auto& [name, value] : all) {
      if (text == name) {
        field(o) = value;
        return Status::Ok();
      }
    }
    return bad;
  };
  s.get = [field, names](const Target& o) {
    for (const auto& [name, value] : names) {
      if (field(o) == value) return name;
    }
    return std::string("?");
  };
  s.check = [](const Target&) { return Status::Ok(); };
  return s;
}

template <typename Target>
KeySpec<Target> List() {
  KeySpec<Target> s;
  s.type = KeyType::kList;
  return s;
}

// A std::vector<std::string> field written as a YAML list, each item an
// `item` ("endpoint"); Validate checks the items.
template <typename Target, typename Field>
KeySpec<Target> StringList(Field field, const std::string& item) {
  KeySpec<Target> s = List<Target>();
  s.items = [field](const Target& o) -> const std::vector<std::string>& { return field(o); };
  s.mutable_items = [field](Target& o) -> std::vector<std::string>& { return field(o); };
  s.item = item;
  return s;
}

// Fills in what every row has: its key and doc, and for a documented
// top-level row the environment variable and flag derived from the key
// ("limits.max_buffered_bytes" -> PLANTD_BROKER_LIMITS_MAX_BUFFERED_BYTES,
// --limits-max-buffered-bytes).
template <typename Target>
KeySpec<Target> Named(KeySpec<Target> s, const std::string& key, const std::string& doc,
                      bool overridable) {
  s.key = key;
  s.doc = doc;
  if (overridable && s.type != KeyType::kList) {
    s.env = "PLANTD_BROKER_";
    for (char c : s.key) {
      s.env += c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    s.flag = s.key;
    std::replace(s.flag.begin(), s.flag.end(), '.', '-');
    std::replace(s.flag.begin(), s.flag.end(), '_', '-');
  }
  return s;
}

using B = BrokerOptions;

KeySpec<B> Key(const std::string& key, KeySpec<B> kind, const std::string& doc) {
  return Named(std::move(kind), key, doc, true);
}

KeySpec<B> Alias(const std::string& key, std::string of, KeySpec<B> kind) {
  KeySpec<B> s = Named(std::move(kind), key, "", false);
  s.alias_of = std::move(of);
  s.get = nullptr;
  return s;
}

KeySpec<BusOptions> BusKey(const std::string& key, KeySpec<BusOptions> kind,
                           const std::string& doc) {
  return Named(std::move(kind), key, doc, false);
}

// Field accessors: a generic lambda serves the const and non-const target.
#define PLANTD_FIELD(expr) ([](auto& o) -> auto& { return o.expr; })

std::vector<KeySpec<B>> MakeBrokerKeys() {
  std::vector<KeySpec<B>> t;
  auto add = [&t](KeySpec<B> s) { t.push_back(std::move(s)); };

  add(Key("endpoint", String<B>(PLANTD_FIELD(endpoint), KeyType::kEndpoint),
          "Majordomo endpoint where clients connect"));
  add(Key("client_endpoint", String<B>(PLANTD_FIELD(client_endpoint), KeyType::kEndpoint),
          "Majordomo endpoint where workers connect"));
  add(Alias("client-endpoint", "client_endpoint",
            String<B>(PLANTD_FIELD(client_endpoint), KeyType::kEndpoint)));
  add(Key("extra_endpoints", StringList<B>(PLANTD_FIELD(extra_endpoints), "endpoint"),
          "further Majordomo endpoints (ipc://, another tcp://), each for clients and workers"));
  add(Key("transport",
          Choice<B>(PLANTD_FIELD(transport),
                    std::vector<std::pair<std::string, Transport>>{{"native", Transport::kNative},
                                                                   {"zmq", Transport::kZmq}}),
          "native: the core speaks ZMTP 3.1 itself; zmq: libzmq's ROUTER"));

  add(Key("heartbeat_interval", Duration<B>(PLANTD_FIELD(heartbeat_interval), 1, kHour),
          "heartbeat period; a bare integer is milliseconds"));
  // plantd wrote this one as an integer number of microseconds (2500000).
  add(Alias("heartbeat-interval", "heartbeat_interval",
            Duration<B>(PLANTD_FIELD(heartbeat_interval), 1, kHour, microseconds(1))));
  add(Key("heartbeat_liveness", Integer<B>(PLANTD_FIELD(heartbeat_liveness), 1, 1000),
          "missed heartbeats after which a peer is dead"));
  add(Alias("heartbeat-liveness", "heartbeat_liveness",
            Integer<B>(PLANTD_FIELD(heartbeat_liveness), 1, 1000)));
  add(Key("request_expiry", Duration<B>(PLANTD_FIELD(request_expiry), 1, 24 * kHour),
          "how long a request may wait for a worker before it is dropped"));
  add(Key("max_redispatch", Integer<B>(PLANTD_FIELD(max_redispatch), 0, 1000),
          "times a request is sent again after its worker died"));

  add(Key("max_queue_per_service", Integer<B>(PLANTD_FIELD(max_queue_per_service), 1, 100'000'000),
          "requests waiting per service; more are refused"));
  add(Key("max_message_size", Bytes<B>(PLANTD_FIELD(max_message_size), 64, 4 * kGiB),
          "bytes in one Majordomo message, all frames; a larger one is dropped"));
  add(Key("max_message_frames", Integer<B>(PLANTD_FIELD(max_message_frames), 4, 1 << 20),
          "frames in one Majordomo message; more and it is dropped"));
  add(Key("max_services", Integer<B>(PLANTD_FIELD(max_services), 1, 10'000'000),
          "services the broker holds, with or without workers"));
  add(Key("max_workers", Integer<B>(PLANTD_FIELD(max_workers), 1, 10'000'000),
          "workers the broker holds"));
  add(Key("socket_hwm", Integer<B>(PLANTD_FIELD(socket_hwm), 1, 100'000'000),
          "messages queued per peer, each direction (0, libzmq's no limit, is refused)"));
  add(Key("shutdown_grace", Duration<B>(PLANTD_FIELD(shutdown_grace), 1, kHour),
          "on SIGTERM, how long requests in flight get to be answered"));

  add(Key("env", String<B>(PLANTD_FIELD(environment)),
          "deployment environment shown in health and logs (plantd's env)"));
  add(Key("service.id", String<B>(PLANTD_FIELD(service_id)),
          "service id shown in health and logs (plantd's service.id)"));

  add(Key("log.level",
          Choice<B>(PLANTD_FIELD(log.level),
                    std::vector<std::pair<std::string, LogLevel>>{{"trace", LogLevel::kTrace},
                                                                  {"debug", LogLevel::kDebug},
                                                                  {"info", LogLevel::kInfo},
                                                                  {"warn", LogLevel::kWarn},
                                                                  {"error", LogLevel::kError}},
                    {{"warning", LogLevel::kWarn}}),
          "lowest level logged; applied again on SIGHUP"));
  auto log_format = [] {
    return Choice<B>(PLANTD_FIELD(log.format),
                     std::vector<std::pair<std::string, LogFormat>>{{"text", LogFormat::kText},
                                                                    {"json", LogFormat::kJson}});
  };
  add(Key("log.format", log_format(), "text for people, json for machines (one object a line)"));
  add(Alias("log.formatter", "log.format", log_format()));

  add(Key("health.bind", String<B>(PLANTD_FIELD(health.bind)),
          "address of the health and metrics HTTP server (127.0.0.1 keeps it local)"));
  add(Key("health.port", Integer<B>(PLANTD_FIELD(health.port), 0, 65535),
          "port of the health and metrics HTTP server; 0 turns it off"));
  add(Key("health.max_connections", Integer<B>(PLANTD_FIELD(health.max_connections), 1, 4096),
          "open HTTP connections; at the cap the longest-waiting one is closed"));
  add(Key("health.read_timeout", Duration<B>(PLANTD_FIELD(health.read_timeout), 100, 5 * kMinute),
          "an HTTP request not fully read by then gets 408 and is closed"));
  add(Key("health.idle_timeout", Duration<B>(PLANTD_FIELD(health.idle_timeout), 100, kHour),
          "a kept-alive HTTP connection with no new request this long is closed"));
  add(Key("health.write_timeout", Duration<B>(PLANTD_FIELD(health.write_timeout), 100, 5 * kMinute),
          "an HTTP answer not read by the client within this is abandoned"));
  add(Key("health.max_request_bytes", Bytes<B>(PLANTD_FIELD(health.max_request_bytes), kKiB, kMiB),
          "HTTP request line and headers; more gets 431"));

  add(Key("limits.max_buffered_bytes",
          Bytes<B>(PLANTD_FIELD(limits.max_buffered_bytes), kMiB, kTiB),
          "bytes buffered for all connections; past it input is paused (back-pressure)"));
  add(Key("limits.max_connection_out_bytes",
          Bytes<B>(PLANTD_FIELD(limits.max_connection_out_bytes), 64 * kKiB, kTiB),
          "bytes queued for one peer that does not read; past it the connection is closed"));
  add(Key("limits.write_timeout", Duration<B>(PLANTD_FIELD(limits.write_timeout), 1, kHour),
          "a connection whose queued output makes no progress this long is closed"));
  add(Key("limits.handshake_timeout",
          Duration<B>(PLANTD_FIELD(limits.handshake_timeout), 1, 10 * kMinute),
          "a connection that has not finished its ZMTP handshake by then is closed"));
  add(Key("limits.max_connections", Integer<B>(PLANTD_FIELD(limits.max_connections), 1, 1'000'000),
          "open connections on all Majordomo and bus endpoints"));
  add(Key("limits.max_connections_per_address",
          Integer<B>(PLANTD_FIELD(limits.max_connections_per_address), 1, 1'000'000),
          "open connections from one remote address"));
  add(Key("limits.curve_handshakes_per_second",
          Integer<B>(PLANTD_FIELD(limits.curve_handshakes_per_second), 1, 1'000'000),
          "CURVE handshakes one remote address may start per second, past its burst; more "
          "are closed on accept"));
  add(Key("limits.curve_handshake_burst",
          Integer<B>(PLANTD_FIELD(limits.curve_handshake_burst), 1, 1'000'000),
          "CURVE handshakes one remote address may start at once (a plant reconnecting)"));
  add(Key("limits.max_client_services",
          Integer<B>(PLANTD_FIELD(limits.max_client_services), 0, 10'000'000),
          "services without a worker that one client connection may create by asking"));
  add(Key("limits.max_unserved_services",
          Integer<B>(PLANTD_FIELD(limits.max_unserved_services), 0, 10'000'000),
          "services without a worker, in total; a request naming a new one is refused"));

  add(Key("metrics.max_bytes", Bytes<B>(PLANTD_FIELD(metrics.max_bytes), 64 * kKiB, kGiB),
          "/metrics stays under about this size; more services are summed in _other"));
  add(Key("metrics.max_service_labels",
          Integer<B>(PLANTD_FIELD(metrics.max_service_labels), 0, 100'000),
          "services with their own series in /metrics; the rest are summed in _other"));

  add(Key("store.enabled", Bool<B>(PLANTD_FIELD(store.enabled)),
          "keep durable requests (9/TSP Titanic) in an SQLite file"));
  add(Key("store.path", String<B>(PLANTD_FIELD(store.path)), "the SQLite file"));
  add(Key("store.max_requests", Integer<B>(PLANTD_FIELD(store.max_requests), 1, 100'000'000),
          "stored requests of any state; more are refused"));
  add(Key("store.max_bytes", Bytes<B>(PLANTD_FIELD(store.max_bytes), kMiB, kTiB),
          "bytes of stored requests and replies; more are refused"));
  add(Key("store.reply_retention",
          Duration<B>(PLANTD_FIELD(store.reply_retention), 1, uint64_t{365} * 24 * kHour),
          "how long a stored reply is kept for its client to fetch"));
  add(Key("store.sync_threads", Integer<B>(PLANTD_FIELD(store.sync_threads), 1, 64),
          "syncs of the store's WAL that may run at once"));

  add(Key("security.mechanism",
          Choice<B>(PLANTD_FIELD(security.mechanism),
                    std::vector<std::pair<std::string, SecurityMechanism>>{
                        {"null", SecurityMechanism::kNull}, {"curve", SecurityMechanism::kCurve}}),
          "null: anyone, in clear; curve: encrypted, clients authorized by public key"));
  add(Key("security.secret_key_file", String<B>(PLANTD_FIELD(security.secret_key_file)),
          "the broker's CURVE secret certificate (zcert format, mode 0600)"));
  add(Key("security.authorized_keys_dir", String<B>(PLANTD_FIELD(security.authorized_keys_dir)),
          "directory of client public certificates allowed in; reread on SIGHUP"));
  add(Key("security.authorized_keys", StringList<B>(PLANTD_FIELD(security.authorized_keys), "key"),
          "further clients allowed in, each \"KEY NAME\": a public key in Z85 and its name; "
          "with those of authorized_keys_dir; reread on SIGHUP"));
  add(Key("security.acl_file", String<B>(PLANTD_FIELD(security.acl_file)),
          "access rules by key name: services to call and serve, bus topics to publish and "
          "subscribe to; default deny; reread on SIGHUP"));
  add(Key("security.null_endpoints",
          StringList<B>(PLANTD_FIELD(security.null_endpoints), "endpoint"),
          "endpoints the broker binds that take NULL peers while the others require CURVE "
          "(a local ipc://); their peers are named anonymous"));

  add(Key("admin.allow_remote", Bool<B>(PLANTD_FIELD(admin.allow_remote)),
          "take org.plantd.Admin commands (plantd-mdp admin drain) from non-loopback peers"));

  add(Key("buses", List<B>(), "publish/subscribe buses, each with the buses[] keys below"));
  return t;
}

std::vector<KeySpec<BusOptions>> MakeBusKeys() {
  using O = BusOptions;
  std::vector<KeySpec<O>> t;
  auto add = [&t](KeySpec<O> s) { t.push_back(std::move(s)); };
  add(BusKey("name", String<O>(PLANTD_FIELD(name)), "the bus's name, unique; required"));
  add(BusKey("backend", String<O>(PLANTD_FIELD(backend), KeyType::kEndpoint),
             "where publishers connect (the broker binds an XSUB); required"));
  add(BusKey("frontend", String<O>(PLANTD_FIELD(frontend), KeyType::kEndpoint),
             "where subscribers connect (the broker binds an XPUB); required"));
  add(BusKey("capture", String<O>(PLANTD_FIELD(capture), KeyType::kEndpoint),
             "optional: a copy of every message is published here"));
  add(BusKey("send_hwm", Integer<O>(PLANTD_FIELD(send_hwm), 1, 100'000'000),
             "messages queued per subscriber (0, libzmq's no limit, is refused)"));
  add(BusKey("recv_hwm", Integer<O>(PLANTD_FIELD(recv_hwm), 1, 100'000'000),
             "messages queued per publisher on libzmq's XSUB (a backend that connects or is "
             "inproc://; 0, libzmq's no limit, is refused)"));
  add(BusKey("send_hwm_bytes", Bytes<O>(PLANTD_FIELD(send_hwm_bytes), kKiB, kTiB),
             "bytes queued per subscriber; whichever of the two limits comes first applies"));
  add(BusKey("max_message_size", Bytes<O>(PLANTD_FIELD(max_message_size), 64, 4 * kGiB),
             "bytes in one published message; a larger one is dropped and counted"));
  add(BusKey("max_subscriptions_per_subscriber",
             Integer<O>(PLANTD_FIELD(max_subscriptions_per_subscriber), 1, 10'000'000),
             "topic subscriptions one subscriber may hold"));
  add(BusKey("max_subscriptions", Integer<O>(PLANTD_FIELD(max_subscriptions), 1, 100'000'000),
             "topic subscriptions on the whole bus"));
  add(BusKey("max_subscription_size", Bytes<O>(PLANTD_FIELD(max_subscription_size), 1, 65535),
             "bytes in one subscribed topic prefix"));
  add(BusKey("delivery",
             Choice<O>(PLANTD_FIELD(delivery),
                       std::vector<std::pair<std::string, BusOptions::Delivery>>{
                           {"drop", BusOptions::Delivery::kDrop},
                           {"block", BusOptions::Delivery::kBlock}}),
             "drop: a slow subscriber loses messages; block: publishers wait"));
  add(BusKey("last_value_cache", Bool<O>(PLANTD_FIELD(last_value_cache)),
             "a new subscriber first gets the last message of each topic it subscribes to"));
  return t;
}

#undef PLANTD_FIELD

const char* TypeName(KeyType type) {
  switch (type) {
    case KeyType::kString: return "string";
    case KeyType::kEndpoint: return "endpoint";
    case KeyType::kInteger: return "integer";
    case KeyType::kBytes: return "size";
    case KeyType::kDuration: return "duration";
    case KeyType::kBool: return "bool";
    case KeyType::kChoice: return "choice";
    case KeyType::kList: return "list";
  }
  return "";
}

std::string Join(const std::vector<std::string>& items, const char* sep) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : sep) + s;
  return out;
}

template <typename Target>
KeyDoc MakeDoc(const KeySpec<Target>& spec, const std::string& key, const Target& defaults,
               const std::vector<std::string>& aliases) {
  KeyDoc d;
  d.key = key;
  d.type = TypeName(spec.type);
  d.range = spec.type == KeyType::kChoice ? Join(spec.choices, ", ")
            : spec.type == KeyType::kBool ? "true, false"
                                          : RangeText(spec.type, spec.min, spec.max);
  if (spec.get) d.default_value = spec.get(defaults);
  d.env = spec.env;
  d.flag = spec.flag;
  d.doc = spec.doc;
  d.aliases = aliases;
  return d;
}

// `|` would end a markdown table cell.
std::string Cell(const std::string& text) {
  std::string out;
  for (char c : text) out += c == '|' ? std::string("\\|") : std::string(1, c);
  return out;
}

std::string Code(const std::string& text) { return text.empty() ? "" : "`" + Cell(text) + "`"; }

// Text safe inside a man page: a backslash is printed, not an escape, and a
// line cannot start a request. `literal` text (keys, flags, values) gets
// \- for '-', so that it renders as the ASCII minus a shell needs and groff
// never breaks a line inside it.
std::string Roff(const std::string& text, bool literal) {
  std::string out;
  for (char c : text) {
    if (c == '\\') {
      out += "\\e";
    } else if (c == '-' && literal) {
      out += "\\-";
    } else {
      out += c;
    }
  }
  if (!out.empty() && (out[0] == '.' || out[0] == '\'')) out = "\\&" + out;
  return out;
}

// \% keeps groff from hyphenating a key or variable at a line end: the
// reader copies it whole.
std::string Bold(const std::string& text) { return "\\fB\\%" + Roff(text, true) + "\\fR"; }

// The section a key belongs to in the man page: "health" for
// "health.port", "buses[]" for a bus key, "" for the top-level ones.
std::string SectionOf(const std::string& key) {
  const size_t dot = key.find('.');
  return dot == std::string::npos ? "" : key.substr(0, dot);
}

// The KEYS section of plantd-broker.yaml(5): one tagged paragraph a key,
// under a subsection a key prefix.
std::string RenderManKeys() {
  std::ostringstream out;
  std::string section = "?";
  for (const KeyDoc& d : DocumentedKeys()) {
    if (SectionOf(d.key) != section) {
      section = SectionOf(d.key);
      out << ".SS "
          << (section.empty()        ? std::string("Top level")
              : section == "buses[]" ? std::string("Each entry of buses")
                                     : Roff(section, true))
          << "\n";
    }
    std::string head = Bold(d.key) + " (";
    if (d.type == "choice") {
      head += "one of " + Roff(d.range, true);
    } else {
      head += Roff(d.type, false);
      if (!d.range.empty() && d.type != "bool") head += ", " + Roff(d.range, false);
    }
    head += "; default " + Bold(d.default_value) + ")";
    out << ".TP\n" << head << "\n" << Roff(d.doc, false) << ".\n";
    if (!d.aliases.empty()) {
      std::vector<std::string> bold;
      for (const std::string& a : d.aliases) bold.push_back(Bold(a));
      out << "Also spelled " << Join(bold, ", ") << ".\n";
    }
    if (!d.env.empty()) {
      out << "Environment " << Bold(d.env) << ", flag " << Bold("--" + d.flag) << ".\n";
    }
  }
  return out.str();
}

// The configuration flags in OPTIONS of plantd-broker(8).
std::string RenderManOptions() {
  std::ostringstream out;
  for (const KeyDoc& d : DocumentedKeys()) {
    if (d.flag.empty()) continue;
    std::string type = d.type;
    for (char& c : type) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    out << ".TP\n"
        << Bold("--" + d.flag) << " \\fI" << Roff(type, true) << "\\fR\n"
        << Roff(d.doc, false) << "; the key " << Bold(d.key);
    if (d.type == "choice") out << ", one of " << Roff(d.range, true);
    if (d.type != "choice" && d.type != "bool" && !d.range.empty()) {
      out << ", " << Roff(d.range, false);
    }
    out << ", default " << Bold(d.default_value) << ".\n";
  }
  return out.str();
}

// ENVIRONMENT of plantd-broker(8): the variable of every key.
std::string RenderManEnvironment() {
  std::ostringstream out;
  for (const KeyDoc& d : DocumentedKeys()) {
    if (d.env.empty()) continue;
    out << ".TP\n"
        << Bold(d.env) << "\nSets " << Bold(d.key) << ": " << Roff(d.doc, false) << ".\n";
  }
  return out.str();
}

}  // namespace

const std::vector<KeySpec<BrokerOptions>>& BrokerKeys() {
  static const std::vector<KeySpec<BrokerOptions>> keys = MakeBrokerKeys();
  return keys;
}

const std::vector<KeySpec<BusOptions>>& BusKeys() {
  static const std::vector<KeySpec<BusOptions>> keys = MakeBusKeys();
  return keys;
}

const KeySpec<BrokerOptions>* FindBrokerKey(std::string_view key) {
  for (const auto& spec : BrokerKeys()) {
    if (spec.key == key) return &spec;
  }
  return nullptr;
}

const KeySpec<BusOptions>* FindBusKey(std::string_view field) {
  for (const auto& spec : BusKeys()) {
    if (spec.key == field) return &spec;
  }
  return nullptr;
}

bool IsKeySection(std::string_view section) {
  for (const auto& spec : BrokerKeys()) {
    if (spec.key.size() > section.size() && spec.key.compare(0, section.size(), section) == 0 &&
        spec.key[section.size()] == '.') {
      return true;
    }
  }
  return false;
}

template <typename Target>
std::string Expectation(const KeySpec<Target>& spec) {
  const std::string range = RangeText(spec.type, spec.min, spec.max);
  switch (spec.type) {
    case KeyType::kString: return "a string";
    case KeyType::kEndpoint: return "an endpoint such as tcp://*:7200";
    case KeyType::kInteger: return "an integer from " + range;
    case KeyType::kBytes: return "a size from " + range + ", such as 1048576, 512KiB or 16MiB";
    case KeyType::kDuration:
      return "a duration from " + range + ", such as 250ms, 2.5s or 1m" +
             " (a bare integer is milliseconds)";
    case KeyType::kBool: return "true or false";
    case KeyType::kChoice: return "one of " + Join(spec.choices, ", ");
    case KeyType::kList: return "a list";
  }
  return "";
}

template std::string Expectation(const KeySpec<BrokerOptions>& spec);
template std::string Expectation(const KeySpec<BusOptions>& spec);

std::vector<KeyDoc> DocumentedKeys() {
  const BrokerOptions defaults;
  std::vector<KeyDoc> docs;
  for (const auto& spec : BrokerKeys()) {
    if (!spec.alias_of.empty()) continue;
    std::vector<std::string> aliases;
    for (const auto& other : BrokerKeys()) {
      if (other.alias_of == spec.key) aliases.push_back(other.key);
    }
    KeyDoc d = MakeDoc(spec, spec.key, defaults, aliases);
    if (spec.items) {
      d.type = "list of " + spec.item + "s";
      d.default_value = "[]";
    } else if (spec.key == "buses") {
      d.type = "list of buses";
      std::vector<std::string> names;
      for (const BusOptions& bus : defaults.buses) names.push_back(bus.name);
      d.default_value = Join(names, ", ");
    }
    docs.push_back(std::move(d));
  }
  const BusOptions bus_defaults;
  for (const auto& spec : BusKeys()) {
    KeyDoc d = MakeDoc(spec, "buses[]." + spec.key, bus_defaults, {});
    if (spec.key == "name" || spec.key == "backend" || spec.key == "frontend") {
      d.default_value = "(required)";
    }
    docs.push_back(std::move(d));
  }
  for (KeyDoc& d : docs) {
    if (d.default_value.empty() && d.type != "list") d.default_value = "(none)";
  }
  return docs;
}

std::string RenderKeys(std::string_view format) {
  std::ostringstream out;
  if (format == "markdown") {
    out << "| key | type | range | default | environment / flag | meaning |\n"
        << "|---|---|---|---|---|---|\n";
    for (const KeyDoc& d : DocumentedKeys()) {
      std::string overrides = Code(d.env);
      if (!d.flag.empty()) overrides += (overrides.empty() ? "" : ", ") + Code("--" + d.flag);
      std::string meaning = Cell(d.doc);
      if (!d.aliases.empty()) {
        std::vector<std::string> quoted;
        for (const std::string& a : d.aliases) quoted.push_back(Code(a));
        meaning += " (also " + Join(quoted, ", ") + ")";
      }
      out << "| " << Code(d.key) << " | " << d.type << " | " << Cell(d.range) << " | "
          << Code(d.default_value) << " | " << overrides << " | " << meaning << " |\n";
    }
    return out.str();
  }
  if (format == "summary") {
    out << "| key | default | meaning |\n|---|---|---|\n";
    for (const KeyDoc& d : DocumentedKeys()) {
      out << "| " << Code(d.key) << " | " << Code(d.default_value) << " | " << Cell(d.doc)
          << " |\n";
    }
    return out.str();
  }
  if (format == "man") return RenderManKeys();
  if (format == "man-options") return RenderManOptions();
  if (format == "man-environment") return RenderManEnvironment();
  return "";
}

}  // namespace plantd

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

const char* LogFormatName(LogFormat format) { return format == LogFormat::kJson ? "json" : "text"; }

const char* DeliveryName(BusOptions::Delivery delivery) {
  return delivery == BusOptions::Delivery::kBlock ? "block" : "drop";
}

const char* SecurityMechanismName(SecurityMechanism mechanism) {
  return mechanism == SecurityMechanism::kCurve ? "curve" : "null";
}

}  // namespace plantd

#include <algorithm>
#include <set>
#include <string_view>
#include <utility>

#include "common/units.h"
#include "config/config_keys.h"
#include "config/endpoint.h"

namespace plantd {

namespace {

// One byte as an error message shows it.
std::string EscapeByte(unsigned char c) {
  if (c == '"' || c == '\\') return {'\\', static_cast<char>(c)};
  if (c == '\n') return "\\n";
  if (c == '\t') return "\\t";
  if (c < 0x20 || c == 0x7f) {
    static constexpr char kHex[] = "0123456789abcdef";
    return {'\\', 'x', kHex[c >> 4], kHex[c & 0xf]};
  }
  return std::string(1, static_cast<char>(c));
}

// Escapes `text`, cut to at most kMaxEcho bytes ending in "…" when it does
// not fit; `*cut` says whether it was cut. Reads at most kMaxEcho + 1 bytes.
std::string Escape(std::string_view text, bool* cut) {
  static constexpr std::string_view kEllipsis = "\u2026";  // "…", 3 bytes of UTF-8
  std::string out;
  size_t i = 0;
  size_t fits_with_ellipsis = 0;  // bytes of `out` that leave room for "…"
  for (; i < text.size(); ++i) {
    const std::string piece = EscapeByte(static_cast<unsigned char>(text[i]));
    if (out.size() + piece.size() > kMaxEcho) break;
    out += piece;
    if (out.size() + kEllipsis.size() <= kMaxEcho) fits_with_ellipsis = out.size();
  }
  *cut = i < text.size();
  if (!*cut) return out;
  out.resize(fits_with_ellipsis);
  // Never end inside a UTF-8 sequence: drop a lead byte whose sequence was cut.
  size_t lead = out.size();
  while (lead > 0 && (static_cast<unsigned char>(out[lead - 1]) & 0xc0) == 0x80) --lead;
  if (lead > 0 && static_cast<unsigned char>(out[lead - 1]) >= 0xc0) {
    const unsigned char c = static_cast<unsigned char>(out[lead - 1]);
    const size_t need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
    if (out.size() - (lead - 1) < need) out.resize(lead - 1);
  }
  return out + std::string(kEllipsis);
}

std::string Length(std::string_view text) { return " (" + std::to_string(text.size()) + " bytes)"; }

}  // namespace

std::string EchoValue(std::string_view value) {
  bool cut = false;
  std::string shown = "\"" + Escape(value, &cut) + "\"";
  return cut ? shown + Length(value) : shown;
}

std::string EchoKey(std::string_view key) {
  bool cut = false;
  std::string shown = Escape(key, &cut);
  return cut ? shown + Length(key) : shown;
}

std::string ConfigIssue::ToString() const {
  std::string s = EchoKey(key) + ": ";
  if (!value.empty()) s += EchoValue(value) + " ";
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
        Fail(key, text,
             "binds the same address as " + other_key + " (" + EchoValue(other.address) +
                 "); give each socket its own address");
        return;
      }
    }
    bound_.emplace_back(key, ep.value());
  }

  // Another key's value and where it came from, for a cross-field message:
  // "16MiB, from default".
  std::string Shown(const std::string& key, size_t value) const {
    auto it = origins_.find(key);
    const bool bytes =
        key.find("bytes") != std::string::npos || key.find("message_size") != std::string::npos;
    return (bytes ? FormatByteSize(value) : std::to_string(value)) + ", from " +
           (it == origins_.end() ? std::string("default") : it->second);
  }

  bool ok() const { return issues_.empty(); }
  std::vector<ConfigIssue> Take() { return std::move(issues_); }

 private:
  const OriginMap& origins_;
  std::vector<ConfigIssue> issues_;
  std::vector<std::pair<std::string, Endpoint>> bound_;
};

bool IsZ85Key(std::string_view text) {
  static constexpr std::string_view kZ85 =
      "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
  return text.size() == 40 && text.find_first_not_of(kZ85) == std::string_view::npos;
}

bool HasSpaceOrControl(std::string_view text) {
  return std::any_of(text.begin(), text.end(), [](char c) {
    const auto byte = static_cast<unsigned char>(c);
    return byte <= 0x20 || byte == 0x7f;
  });
}

// A security list that means something only under CURVE: true when it has
// entries and the mechanism is curve; a failure on its first entry when it
// has entries without it.
bool ListUnderCurve(const BrokerOptions& o, const std::string& key,
                    const std::vector<std::string>& entries, const std::string& what,
                    Validator* v) {
  if (entries.empty()) return false;
  if (o.security.mechanism == SecurityMechanism::kCurve) return true;
  v->Fail(key + "[0]", entries[0], what + ": it needs security.mechanism curve");
  return false;
}

// security.authorized_keys: each "KEY NAME", every key and name once.
void CheckAuthorizedKeys(const BrokerOptions& o, Validator* v) {
  const std::vector<std::string>& entries = o.security.authorized_keys;
  if (!ListUnderCurve(o, "security.authorized_keys", entries, "authorizes CURVE keys", v)) return;
  std::set<std::string, std::less<>> keys;
  std::set<std::string, std::less<>> names;
  for (size_t i = 0; i < entries.size(); ++i) {
    const std::string key = "security.authorized_keys[" + std::to_string(i) + "]";
    const std::string& entry = entries[i];
    const size_t space = entry.find(' ');
    const std::string_view public_key = std::string_view(entry).substr(0, space);
    const std::string_view name =
        space == std::string::npos ? std::string_view() : std::string_view(entry).substr(space + 1);
    if (!IsZ85Key(public_key) || name.empty() || HasSpaceOrControl(name)) {
      v->Fail(key, entry,
              "expected \"KEY NAME\": a public key in Z85 (40 characters, the public-key line "
              "of a certificate), one space, and a name without spaces");
    } else if (name == "anonymous") {
      v->Fail(key, entry, "the name anonymous is kept for peers of security.null_endpoints");
    } else if (!keys.emplace(public_key).second) {
      v->Fail(key, entry, "this key is listed twice");
    } else if (!names.emplace(name).second) {
      v->Fail(key, entry, "another key already has this name");
    }
  }
}

// security.null_endpoints: each must be an endpoint the broker binds on its
// own ZMTP engine, as the other keys write it, for the exception to mean
// what it says.
void CheckNullEndpoints(const BrokerOptions& o, Validator* v) {
  const std::vector<std::string>& null_endpoints = o.security.null_endpoints;
  if (!ListUnderCurve(o, "security.null_endpoints", null_endpoints, "exempts endpoints from CURVE",
                      v)) {
    return;
  }
  if (o.security.acl_file.empty()) {
    // Without rules every peer let in may do everything: on a NULL endpoint
    // that would be any local process, serving any service.
    v->Fail("security.null_endpoints[0]", null_endpoints[0],
            "lets peers in without a key: set security.acl_file and grant the name anonymous "
            "what they may do");
    return;
  }
  // An address as bound: "@" removed, as ParseEndpoint gives it.
  auto bound = [](const std::string& text) {
    auto ep = ParseEndpoint(text);
    return ep.ok() && ep.value().bind ? ep.value().address : std::string();
  };
  for (size_t i = 0; i < null_endpoints.size(); ++i) {
    const std::string key = "security.null_endpoints[" + std::to_string(i) + "]";
    const std::string address = bound(null_endpoints[i]);
    if (address.empty()) {
      v->Fail(key, null_endpoints[i], "expected an endpoint the broker binds");
      continue;
    }
    bool majordomo = false;
    for (const std::string& endpoint : o.MajordomoEndpoints()) {
      majordomo = majordomo || bound(endpoint) == address;
    }
    // A bus's frontend and backend bound on tcp:// or ipc:// are native
    // sockets; on inproc://, and a capture, they are libzmq's.
    bool bus_native = false;
    bool bus_libzmq = false;
    for (const BusOptions& bus : o.buses) {
      for (const std::string* endpoint : {&bus.frontend, &bus.backend}) {
        if (bound(*endpoint) != address) continue;
        const bool inproc =
            ParseEndpoint(*endpoint).value().transport == Endpoint::Transport::kInproc;
        (inproc ? bus_libzmq : bus_native) = true;
      }
      bus_libzmq = bus_libzmq || bound(bus.capture) == address;
    }
    if (majordomo && o.transport == Transport::kZmq) {
      v->Fail(key, null_endpoints[i],
              "with transport zmq one libzmq socket serves every Majordomo endpoint, with one "
              "mechanism; per-endpoint NULL needs transport native");
    } else if (bus_libzmq) {
      v->Fail(key, null_endpoints[i],
              "a bus capture or inproc:// endpoint is a libzmq socket, with one mechanism; only "
              "Majordomo endpoints and bus frontends and backends on tcp:// or ipc:// can take "
              "NULL peers");
    } else if (!majordomo && !bus_native) {
      v->Fail(key, null_endpoints[i],
              "not an endpoint the broker binds: write it as endpoint, client_endpoint, "
              "extra_endpoints or a bus frontend or backend writes it");
    }
  }
}

}  // namespace

std::vector<ConfigIssue> Validate(const BrokerOptions& o, const OriginMap& origins) {
  Validator v(origins);
  // Ranges, from the one key table: the loader refuses out-of-range text,
  // this catches options built in code.
  for (const auto& spec : BrokerKeys()) {
    if (!spec.alias_of.empty() || !spec.check) continue;
    if (Status s = spec.check(o); !s.ok()) v.Fail(spec.key, spec.get(o), s.message());
  }
  for (size_t i = 0; i < o.buses.size(); ++i) {
    for (const auto& spec : BusKeys()) {
      if (!spec.check) continue;
      if (Status s = spec.check(o.buses[i]); !s.ok()) {
        v.Fail("buses[" + std::to_string(i) + "]." + spec.key, spec.get(o.buses[i]), s.message());
      }
    }
  }
  if (!v.ok()) return v.Take();  // the rules below assume values in range

  v.CheckBound("endpoint", o.endpoint, /*must_bind=*/true);
  v.CheckBound("client_endpoint", o.client_endpoint, true);
  for (size_t i = 0; i < o.extra_endpoints.size(); ++i) {
    v.CheckBound("extra_endpoints[" + std::to_string(i) + "]", o.extra_endpoints[i], true);
  }
  if (o.health.port > 0) {
    v.CheckBound("health.port", "tcp://" + o.health.bind + ":" + std::to_string(o.health.port),
                 true);
  }

  // Cross-field rules: a limit that could never let a legal message through,
  // or a part larger than its whole.
  const std::string message_size =
      "max_message_size (" + v.Shown("max_message_size", o.max_message_size) + ")";
  if (o.limits.max_connection_out_bytes < o.max_message_size) {
    v.Fail("limits.max_connection_out_bytes", FormatByteSize(o.limits.max_connection_out_bytes),
           "must be at least " + message_size + ": one largest reply must fit");
  }
  if (o.limits.max_buffered_bytes < o.max_message_size) {
    v.Fail("limits.max_buffered_bytes", FormatByteSize(o.limits.max_buffered_bytes),
           "must be at least " + message_size + ": one largest message must fit");
  }
  if (o.limits.max_connections_per_address > o.limits.max_connections) {
    v.Fail("limits.max_connections_per_address",
           std::to_string(o.limits.max_connections_per_address),
           "must not exceed limits.max_connections (" +
               v.Shown("limits.max_connections", o.limits.max_connections) + ")");
  }
  if (o.limits.max_client_services > o.limits.max_unserved_services) {
    v.Fail("limits.max_client_services", std::to_string(o.limits.max_client_services),
           "must not exceed limits.max_unserved_services (" +
               v.Shown("limits.max_unserved_services", o.limits.max_unserved_services) + ")");
  }
  if (o.limits.max_unserved_services > o.max_services) {
    v.Fail("limits.max_unserved_services", std::to_string(o.limits.max_unserved_services),
           "must not exceed max_services (" + v.Shown("max_services", o.max_services) +
               "): services with workers must always have room");
  }
  if (o.security.mechanism == SecurityMechanism::kCurve && o.security.secret_key_file.empty()) {
    v.Fail("security.secret_key_file", "",
           "security.mechanism is curve: the broker needs its secret certificate "
           "(make one with `plantd-mdp keygen broker`)");
  }
  if (o.security.mechanism != SecurityMechanism::kCurve && !o.security.acl_file.empty()) {
    v.Fail("security.acl_file", o.security.acl_file,
           "access rules name CURVE keys: they need security.mechanism curve");
  }
  CheckNullEndpoints(o, &v);
  CheckAuthorizedKeys(o, &v);
  if (o.store.enabled) {
    if (o.store.path.empty()) {
      v.Fail("store.path", "", "the store is enabled (store.enabled) and needs a file");
    }
    if (o.store.max_bytes < o.max_message_size) {
      v.Fail("store.max_bytes", FormatByteSize(o.store.max_bytes),
             "must be at least " + message_size + ": one largest request must fit");
    }
  }

  std::set<std::string> bus_names;
  for (size_t i = 0; i < o.buses.size(); ++i) {
    const BusOptions& bus = o.buses[i];
    const std::string prefix = "buses[" + std::to_string(i) + "].";
    if (bus.name.empty()) {
      v.Fail(prefix + "name", "", "every bus needs a name");
    } else if (HasSpaceOrControl(bus.name)) {
      v.Fail(prefix + "name", bus.name,
             "a bus name is shown in logs and metric labels: no spaces, line breaks or "
             "control characters");
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
    const std::string bus_message_size =
        prefix + "max_message_size (" + v.Shown(prefix + "max_message_size", bus.max_message_size) +
        ")";
    if (bus.send_hwm_bytes < bus.max_message_size) {
      v.Fail(prefix + "send_hwm_bytes", FormatByteSize(bus.send_hwm_bytes),
             "must be at least " + bus_message_size + ": one largest message must fit");
    }
    // libzmq's XSUB (a backend that connects, or inproc://) counts
    // messages, not bytes: recv_hwm full-size messages are what one
    // publisher can make the broker hold, and that must fit the process's
    // byte budget. The native backend holds about 1 MiB per publisher.
    const auto backend = ParseEndpoint(bus.backend);
    const bool libzmq_backend =
        backend.ok() &&
        (!backend.value().bind || backend.value().transport == Endpoint::Transport::kInproc);
    const uint64_t publisher_bytes =
        static_cast<uint64_t>(bus.recv_hwm) * static_cast<uint64_t>(bus.max_message_size);
    if (libzmq_backend && publisher_bytes > o.limits.max_buffered_bytes) {
      v.Fail(prefix + "recv_hwm", std::to_string(bus.recv_hwm),
             "times " + bus_message_size + " must not exceed limits.max_buffered_bytes (" +
                 v.Shown("limits.max_buffered_bytes", o.limits.max_buffered_bytes) +
                 "): what one publisher can make the broker hold");
    }
    if (bus.max_subscriptions_per_subscriber > bus.max_subscriptions) {
      v.Fail(prefix + "max_subscriptions_per_subscriber",
             std::to_string(bus.max_subscriptions_per_subscriber),
             "must not exceed " + prefix + "max_subscriptions (" +
                 v.Shown(prefix + "max_subscriptions", bus.max_subscriptions) + ")");
    }
  }
  return v.Take();
}

}  // namespace plantd

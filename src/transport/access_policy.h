// Who may do what on the broker, by the name of the peer's CURVE key
// (docs/security.md, "Access control"): which services a peer may call,
// which it may serve as a worker, and which bus topics it may publish and
// subscribe to. Read from `security.acl_file`:
//
//   groups:
//     operators: [alice, bob]
//   rules:
//     - peers: ["@operators"]            # key names, @groups, or "*" (any key)
//       call: ["org.plantd.*", "mmi.*"]  # exact names, or a prefix ending in *
//     - peers: [driver-1]
//       serve: [org.plantd.Driver1]
//       publish: {telemetry: ["sensor.driver1."]}  # bus name (or "*") -> topic prefixes
//       subscribe: {events: [""]}
//
// Default deny: once the file exists, a peer may do only what some rule
// that names it (or "*") allows. The broker's own services are services
// like any other here: mmi.*, org.plantd.Broker, org.plantd.Admin and
// titanic.*; titanic.request also needs `call` on the service it names.
//
// A key's name is what /status shows for it: its certificate's file name in
// security.authorized_keys_dir or its name in security.authorized_keys, or
// the key in Z85 when the broker lets any key in. Peers of a NULL endpoint
// (security.null_endpoints) have no key and are named kAnonymousPeer; "*"
// does not include them, a rule must name them. Immutable once loaded;
// shared by the broker's threads.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/string_map.h"

namespace plantd::transport {

// The name of every peer that connected with NULL to one of the
// security.null_endpoints of a CURVE broker. No certificate may take it.
inline constexpr std::string_view kAnonymousPeer = "anonymous";

class AccessPolicy {
 public:
  // Reads and checks `path`. Errors name the file and line and say what is
  // wrong (an unknown field, a group that does not exist, a bad pattern).
  static Result<std::shared_ptr<const AccessPolicy>> Load(const std::string& path);
  // The same from text; `source` names it in errors.
  static Result<std::shared_ptr<const AccessPolicy>> Parse(std::string_view text,
                                                           const std::string& source);

  bool MayCall(std::string_view peer, std::string_view service) const;
  bool MayServe(std::string_view peer, std::string_view service) const;
  // `topic` is the message's first frame; a subscription's prefix for
  // MaySubscribe ("" subscribes to everything, so it needs the prefix "").
  bool MayPublish(std::string_view peer, std::string_view bus, std::string_view topic) const;
  bool MaySubscribe(std::string_view peer, std::string_view bus, std::string_view prefix) const;

  size_t rule_count() const { return rule_count_; }
  // Every key name some rule or group names (not "*"), to warn about names
  // that match no authorized key.
  const std::vector<std::string>& named_peers() const { return named_peers_; }

  // What one peer (or "*") is allowed, merged over every rule naming it.
  struct Grants {
    std::vector<std::string> call;   // service patterns: "name" or "prefix*"
    std::vector<std::string> serve;  // the same
    // Bus name (or "*") -> topic prefixes.
    StringMap<std::vector<std::string>> publish;
    StringMap<std::vector<std::string>> subscribe;
  };

 private:
  // The grants of `peer`, merged with those of "*" (but for kAnonymousPeer);
  // null when it has none.
  const Grants* Find(std::string_view peer) const;

  StringMap<Grants> by_peer_;  // each named peer's grants, including "*"'s
  Grants anyone_;              // "*"'s alone, for peers no rule names
  bool has_anyone_ = false;
  size_t rule_count_ = 0;
  std::vector<std::string> named_peers_;
};

}  // namespace plantd::transport

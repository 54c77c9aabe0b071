// What the broker asks of every peer that connects to an endpoint it binds:
// nothing (ZMTP's NULL), or CURVE (RFC 26) with the broker's certificate and
// the set of client keys let in.
//
// One object is shared by every socket of the process (the core's, each
// bus's) and their threads. The authorized keys are replaced whole on
// SIGHUP (Reload); sockets see the new set at their next handshake, and
// close connections whose key left it (generation() tells them when).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "common/string_map.h"
#include "transport/access_policy.h"
#include "transport/curve_keys.h"
#include "transport/zmtp_mechanism.h"

namespace plantd::transport {

// The ZAP domain (RFC 27) of every libzmq socket the broker binds with
// CURVE: its ZAP handler answers for this domain.
inline constexpr const char* kZapDomain = "plantd";

class ServerSecurity {
 public:
  // NULL: every peer is let in, traffic is in clear.
  ServerSecurity() = default;
  ~ServerSecurity();
  ServerSecurity(const ServerSecurity&) = delete;
  ServerSecurity& operator=(const ServerSecurity&) = delete;

  // What LoadCurve reads (SecurityOptions in config/options.h says more).
  struct CurveFiles {
    std::string secret_key_file;
    // Public certificates of the clients let in; with no `authorized_keys`
    // either, any client that completes the handshake is.
    std::string authorized_keys_dir;
    // Further clients, each "KEY NAME" (Z85 public key, one space, name).
    std::vector<std::string> authorized_keys;
    // Empty: every peer let in may do everything.
    std::string acl_file;
    // Addresses as bound (without "@") whose peers connect with NULL, named
    // kAnonymousPeer.
    std::vector<std::string> null_endpoints;
  };

  // CURVE: reads the broker's secret certificate (refused when group or
  // others may read it), the authorized keys and the access rules. Errors
  // name the file (or key) and what is wrong with it.
  static Result<std::shared_ptr<ServerSecurity>> LoadCurve(CurveFiles files);

  bool curve() const { return curve_; }
  // The broker's keys (32 raw bytes each), empty with NULL. The secret one
  // only for handing to libzmq (ZMQ_CURVE_SECRETKEY); never log it.
  const std::string& public_key() const { return keys_.public_key; }
  const std::string& secret_key() const { return keys_.secret_key; }
  const std::string& authorized_keys_dir() const { return authorized_keys_dir_; }

  // Whether the client with this long-term public key may connect. When the
  // broker started with no authorized keys at all, every key may (until a
  // reload brings some: the broker never opens up without a restart).
  bool Authorized(std::string_view client_key) const;
  bool any_key() const;
  // The key's name for logs and /status: its certificate's file name or
  // its name in security.authorized_keys, else the key in Z85.
  std::string KeyName(std::string_view client_key) const;
  // Keys currently authorized (0 when any key is).
  size_t authorized_count() const;
  // Whether an authorized key has this name.
  bool HasKeyNamed(std::string_view name) const;

  // The access rules (null: none, everything is allowed). Take it again
  // when generation() changes.
  std::shared_ptr<const AccessPolicy> policy() const;
  const std::string& acl_file() const { return acl_file_; }

  // Reads authorized_keys_dir and acl_file again and replaces both, with
  // `authorized_keys` (when given: from a configuration read again) as the
  // listed keys. On any error the old ones stay and the error says which
  // file or key is wrong.
  Status Reload(const std::vector<std::string>* authorized_keys = nullptr);
  // Grows by one with each successful Reload().
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

  // Whether peers of this bound address connect with NULL: always with the
  // NULL mechanism, and with CURVE for the null_endpoints.
  bool NullAcceptedOn(std::string_view address) const;

  // The mechanism for a new native connection, announcing `socket_type`:
  // CURVE's server side with CURVE, else NULL.
  std::unique_ptr<ZmtpMechanism> MakeMechanism(const std::string& socket_type) const;

 private:
  // Client key (32 raw bytes) -> its certificate's file name.
  using KeySet = StringMap<std::string>;
  static Result<std::shared_ptr<const KeySet>> ReadKeys(const std::string& directory,
                                                        const std::vector<std::string>& listed);
  std::shared_ptr<const KeySet> keys() const;

  bool curve_ = false;
  CurveKeyPair keys_;
  std::string authorized_keys_dir_;
  std::vector<std::string> listed_keys_;  // security.authorized_keys (guarded by mutex_)
  mutable std::mutex mutex_;
  std::shared_ptr<const KeySet> authorized_;  // (guarded by mutex_)
  bool any_key_ = true;                       // (guarded by mutex_)
  std::string acl_file_;
  std::vector<std::string> null_endpoints_;
  std::shared_ptr<const AccessPolicy> policy_;  // null: no rules (guarded by mutex_)
  std::atomic<uint64_t> generation_{0};
};

// One thread's view of the access rules in force: ServerSecurity::policy()
// takes a lock, so the rules are taken again only when generation() says
// they were reread (SIGHUP); otherwise a look costs one atomic load.
class AccessRulesView {
 public:
  explicit AccessRulesView(std::shared_ptr<const ServerSecurity> security)
      : security_(std::move(security)) {}

  // The rules, or null when there are none (or no security at all).
  const AccessPolicy* Get() {
    if (!security_) return nullptr;
    const uint64_t generation = security_->generation();
    if (!taken_ || generation != generation_) {
      policy_ = security_->policy();
      generation_ = generation;
      taken_ = true;
    }
    return policy_.get();
  }

 private:
  std::shared_ptr<const ServerSecurity> security_;
  std::shared_ptr<const AccessPolicy> policy_;
  uint64_t generation_ = 0;
  bool taken_ = false;
};

}  // namespace plantd::transport

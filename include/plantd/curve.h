// CurveZMQ (RFC 26) for a client, worker, publisher or subscriber that
// connects to a plantd-broker running with `security.mechanism: curve`
// (docs/security.md). Keys are Z85 text, 40 characters, as in the zcert
// files that `plantd-mdp keygen` and czmq write.
//
//   auto curve = plantd::LoadCurveOptions("/etc/plantd/broker.pub", "/home/me/.plantd/me_secret");
//   if (!curve.ok()) die(curve.status().message());
//   plantd::mdp::Client client({.endpoints = {"tcp://plant:7200"}, .curve = curve.value()});
#pragma once

#include <string>

#include "plantd/status.h"

namespace plantd {

struct CurveOptions {
  // The broker's public key. Empty: no CURVE (ZMTP's NULL mechanism).
  std::string server_key;
  // This peer's key pair, the one the broker's authorized_keys_dir lists.
  // Both empty with server_key set: a fresh pair is made for the
  // connection, which a broker with no authorized_keys_dir lets in
  // (encryption without client authentication).
  std::string public_key;
  std::string secret_key;

  bool enabled() const { return !server_key.empty(); }
  // Ok, or which key is malformed (length, alphabet) or why the pair does
  // not fit together. Never quotes a secret key.
  Status Validate() const;
};

// Reads the broker's public certificate and this peer's secret certificate
// (zcert files; the secret one is refused when group or others may read it,
// as ssh refuses a private key). An empty `secret_file` leaves this peer's
// keys empty (a fresh pair per connection). Errors name the file and what
// is wrong.
Result<CurveOptions> LoadCurveOptions(const std::string& server_public_file,
                                      const std::string& secret_file);

}  // namespace plantd

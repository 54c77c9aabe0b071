#include "plantd/curve.h"

#include <string.h>  // explicit_bzero

#include <string_view>

#include "client/curve_socket.h"
#include "transport/curve_keys.h"

namespace plantd {
namespace {

using transport::kCurveKeySize;
using transport::kCurveKeyZ85Size;

// Erases key material held only for a moment.
class ErasedOnExit {
 public:
  explicit ErasedOnExit(std::string& s) : s_(s) {}
  ~ErasedOnExit() {
    if (!s_.empty()) explicit_bzero(s_.data(), s_.size());
  }
  ErasedOnExit(const ErasedOnExit&) = delete;
  ErasedOnExit& operator=(const ErasedOnExit&) = delete;

 private:
  std::string& s_;
};

// The 32 raw bytes of a Z85 key, or an error naming `which` (never its text:
// it may be a secret).
Status DecodeKey(std::string_view z85, const char* which, std::string* raw) {
  if (z85.size() != kCurveKeyZ85Size) {
    return Status::InvalidArgument(std::string("curve ") + which + " must be " +
                                   std::to_string(kCurveKeyZ85Size) + " characters of Z85, not " +
                                   std::to_string(z85.size()));
  }
  if (!transport::Z85Decode(z85, raw) || raw->size() != kCurveKeySize) {
    return Status::InvalidArgument(std::string("curve ") + which + " is not valid Z85");
  }
  return Status::Ok();
}

}  // namespace

Status CurveOptions::Validate() const {
  if (!enabled()) {
    if (!public_key.empty() || !secret_key.empty()) {
      return Status::InvalidArgument("curve keys given without the broker's server_key");
    }
    return Status::Ok();
  }
  std::string server;
  Status status = DecodeKey(server_key, "server_key", &server);
  if (!status.ok()) return status;
  if (public_key.empty() != secret_key.empty()) {
    return Status::InvalidArgument(
        "curve public_key and secret_key go together: give both, or neither for a fresh pair");
  }
  if (public_key.empty()) return Status::Ok();
  std::string pub;
  std::string secret;
  ErasedOnExit erase_secret(secret);
  status = DecodeKey(public_key, "public_key", &pub);
  if (status.ok()) status = DecodeKey(secret_key, "secret_key", &secret);
  if (!status.ok()) return status;
  if (!transport::KeyPairMatches(pub, secret)) {
    return Status::InvalidArgument("curve secret_key is not the secret of public_key");
  }
  return Status::Ok();
}

Result<CurveOptions> LoadCurveOptions(const std::string& server_public_file,
                                      const std::string& secret_file) {
  std::string server;
  Status status = transport::LoadPublicKeyFile(server_public_file, &server);
  if (!status.ok()) return status;
  CurveOptions curve;
  if (!transport::Z85Encode(server, &curve.server_key)) {
    return Status::Error("cannot encode a CURVE key as Z85");
  }
  if (secret_file.empty()) return curve;
  transport::CurveKeyPair own;
  ErasedOnExit erase_secret(own.secret_key);
  status = transport::LoadSecretKeyFile(secret_file, &own);
  if (!status.ok()) return status;
  if (!transport::Z85Encode(own.public_key, &curve.public_key) ||
      !transport::Z85Encode(own.secret_key, &curve.secret_key)) {
    return Status::Error("cannot encode a CURVE key as Z85");
  }
  return curve;
}

namespace client {

Status ApplyCurve(zmq::socket_t& socket, const CurveOptions& curve) {
  if (!curve.enabled()) return Status::Ok();
  Status status = curve.Validate();
  if (!status.ok()) return status;
  std::string server;
  std::string pub;
  std::string secret;
  ErasedOnExit erase_secret(secret);
  if (curve.public_key.empty()) {
    // A fresh pair for this connection (Validate allowed it).
    char pub_z85[kCurveKeyZ85Size + 1] = {};
    char secret_z85[kCurveKeyZ85Size + 1] = {};
    const bool made = zmq_curve_keypair(pub_z85, secret_z85) == 0;
    status = made ? DecodeKey(pub_z85, "public_key", &pub)
                  : Status::InvalidArgument("this libzmq cannot make CURVE keys (no libsodium)");
    if (status.ok()) status = DecodeKey(secret_z85, "secret_key", &secret);
    explicit_bzero(secret_z85, sizeof(secret_z85));
    if (!status.ok()) return status;
  } else {
    (void)DecodeKey(curve.public_key, "public_key", &pub);
    (void)DecodeKey(curve.secret_key, "secret_key", &secret);
  }
  (void)DecodeKey(curve.server_key, "server_key", &server);
  void* handle = socket.handle();
  if (zmq_setsockopt(handle, ZMQ_CURVE_SERVERKEY, server.data(), server.size()) != 0 ||
      zmq_setsockopt(handle, ZMQ_CURVE_PUBLICKEY, pub.data(), pub.size()) != 0 ||
      zmq_setsockopt(handle, ZMQ_CURVE_SECRETKEY, secret.data(), secret.size()) != 0) {
    return Status::InvalidArgument(std::string("the socket refuses CURVE keys: ") +
                                   zmq_strerror(zmq_errno()));
  }
  return Status::Ok();
}

}  // namespace client
}  // namespace plantd

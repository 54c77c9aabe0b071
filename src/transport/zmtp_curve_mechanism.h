// ZMTP's CURVE mechanism, server side (RFC 26/CurveZMQ as ZMTP-CURVE frames
// it, RFC 25): the client proves its long-term key and both sides agree on
// short-term keys that box every frame afterwards.
//
//   client                                server
//   HELLO     C', Box[64 zeros](C'->S)    ->
//             <-  WELCOME  Box[S', cookie](S->C')
//   INITIATE  cookie, Box[C, vouch, metadata](C'->S')  ->
//             <-  READY    Box[metadata](S'->C')
//   MESSAGE   Box[flags, frame](C'->S')  <->  Box[flags, frame](S'->C')
//
// (C, S long-term public keys; C', S' short-term; a box under (X->Y) is
// sealed with x's secret for Y's public key.) The cookie is Box[C', s'] under
// a key only this connection knows, so the server could forget everything
// between WELCOME and INITIATE; we keep state anyway and compare.
//
// Wire compatibility with libzmq 4.3.x (curve_mechanism_base.cpp), which
// differs from what a reading of the RFCs suggests:
//   - A MESSAGE travels as an ordinary frame: neither COMMAND nor MORE is
//     set outside the box (libzmq keeps the outer flags on the frame it
//     decodes, so a COMMAND flag there would turn data into a command).
//   - The flags byte inside the box uses libzmq's message flags: 0x01 more,
//     0x02 command. PING and PONG travel boxed with 0x02.
//   - libzmq's client nonces: HELLO 1, INITIATE 2, MESSAGEs from 3. Ours:
//     READY 1, MESSAGEs from 2.
#pragma once

#include <sodium.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "transport/zmtp_mechanism.h"

namespace plantd::transport {

// Initialises libsodium once per process (thread-safe); false only when the
// library cannot run. The mechanism calls it; so does whatever loads keys
// for it first (ServerSecurity).
bool InitSodium();

struct CurveServerOptions {
  // Our long-term key pair (S, s): 32 raw bytes each (curve_keys.h reads
  // them from zcert files).
  std::string public_key;
  std::string secret_key;
  // What our READY announces.
  std::string socket_type = "ROUTER";
  // Whether the client whose long-term public key (32 raw bytes) this is may
  // connect. Null: any client that completes the handshake (encryption
  // without access control, the "Stonehouse" pattern).
  std::function<bool(std::string_view client_public_key)> authorize;

  // Key sizes, the secret matching the public key, a socket type.
  Status Validate() const;
};

class ZmtpCurveServerMechanism final : public ZmtpMechanism {
 public:
  // The commands' sizes (whole command frame bodies, RFC 26 / libzmq).
  static constexpr size_t kHelloSize = 200;
  static constexpr size_t kWelcomeSize = 168;
  static constexpr size_t kInitiateMinSize = 257;  // with no metadata
  static constexpr size_t kReadyMinSize = 30;      // with no metadata
  // "\x07MESSAGE", the short nonce, the MAC and the flags byte.
  static constexpr size_t kMessageOverhead = 8 + 8 + crypto_box_MACBYTES + 1;

  // REQUIRES: options.Validate().ok(). Takes the secret key and erases the
  // copy in `options`.
  explicit ZmtpCurveServerMechanism(CurveServerOptions options);
  ~ZmtpCurveServerMechanism() override;
  ZmtpCurveServerMechanism(const ZmtpCurveServerMechanism&) = delete;
  ZmtpCurveServerMechanism& operator=(const ZmtpCurveServerMechanism&) = delete;

  std::string_view name() const override { return "CURVE"; }
  bool as_server() const override { return true; }
  // RFC 26: the server's peer must be a client.
  bool AcceptsPeerRole(bool peer_as_server) const override { return !peer_as_server; }
  // The client speaks first (HELLO): nothing to send yet.
  void Start(std::string& /*out*/) override {}
  Step OnHandshakeCommand(std::string_view body, std::string& out) override;
  std::string_view refusal() const override { return refusal_; }
  const zmtp::PeerMetadata& peer() const override { return peer_; }
  // The client's long-term public key once its vouch has proven it (also
  // when the key is then denied).
  std::string_view user_id() const override;

  bool wraps_traffic() const override { return true; }
  size_t WrappedSize(size_t size) const override { return size + kMessageOverhead; }
  void WrapFrame(std::string_view body, bool more, bool command, std::string& out) override;
  bool UnwrapMessage(std::string_view command, uint8_t* out, size_t* size, uint8_t* flags) override;

 private:
  enum class State { kExpectHello, kExpectInitiate, kReady, kRefused };

  Step OnHello(std::string_view body, std::string& out);
  Step OnInitiate(std::string_view body, std::string& out);
  // `hello_key`: crypto_box_beforenm(C', s), which opened HELLO.
  bool AppendWelcome(const uint8_t* hello_key, std::string& out);
  void AppendReady(std::string& out);
  Step Refuse(const char* why);

  static constexpr size_t kKeySize = crypto_box_PUBLICKEYBYTES;

  const std::function<bool(std::string_view)> authorize_;
  const std::string socket_type_;
  State state_ = State::kExpectHello;
  const char* refusal_ = "";

  // Long-term keys: ours (S, s) and, once proven, the client's (C).
  uint8_t public_key_[kKeySize] = {};
  uint8_t secret_key_[crypto_box_SECRETKEYBYTES] = {};
  uint8_t client_public_key_[kKeySize] = {};
  bool client_proven_ = false;
  // Short-term keys: the client's (C') and ours (S', s'). s' and the cookie
  // key are erased once INITIATE is done (RFC 26).
  uint8_t client_short_public_[kKeySize] = {};
  uint8_t short_public_[kKeySize] = {};
  uint8_t short_secret_[crypto_box_SECRETKEYBYTES] = {};
  uint8_t cookie_key_[crypto_secretbox_KEYBYTES] = {};
  // The shared key of C' and s', precomputed for every box after WELCOME.
  uint8_t shared_key_[crypto_box_BEFORENMBYTES] = {};

  // Our next short nonce, and the client's last: RFC 26 requires each side's
  // to increase strictly, never repeat.
  uint64_t next_nonce_ = 1;
  uint64_t last_client_nonce_ = 0;

  // The client's metadata, copied out of the INITIATE box.
  std::string peer_socket_type_;
  std::string peer_identity_;
  zmtp::PeerMetadata peer_;
};

}  // namespace plantd::transport

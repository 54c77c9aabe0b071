// The client side of CurveZMQ (RFC 26) over ZMTP, built on libsodium as
// libzmq's curve_client is: what the CURVE harness needs to get past the
// handshake and reach the MESSAGE boxes, and to check what the server sends.
//
// Everything is deterministic: fixed key pairs, and libsodium's random bytes
// replaced by a seeded stream (UseDeterministicRandom) that each input
// restarts, so that the server's WELCOME and cookie, and so a whole valid
// transcript, are the same on every run. A crash input then replays.
#pragma once

#include <sodium.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "transport/zmtp_framing.h"
#include "transport/zmtp_mechanism.h"

namespace plantd::fuzz {

namespace zmtp = transport::zmtp;

// Replaces libsodium's random bytes with a seeded stream. REQUIRES: called
// before anything calls sodium_init (the harness's LLVMFuzzerInitialize).
void UseDeterministicRandom();
// Restarts the stream: the next input sees the same bytes as the last.
void RestartRandom();

struct CurveKeyPair {
  uint8_t public_key[crypto_box_PUBLICKEYBYTES];
  uint8_t secret_key[crypto_box_SECRETKEYBYTES];
};
// A key pair derived from `seed` (crypto_box_seed_keypair).
CurveKeyPair FixedKeyPair(uint8_t seed);

// The harness's fixed keys: the server's long-term pair, the client's
// long-term and short-term pairs.
inline constexpr uint8_t kServerKeySeed = 1;
inline constexpr uint8_t kClientKeySeed = 2;
inline constexpr uint8_t kClientShortKeySeed = 3;

// The CURVE server mechanism with the harness's server keys, announcing
// `socket_type`; it refuses every client key when `deny_clients`.
std::unique_ptr<transport::ZmtpMechanism> MakeCurveServer(const std::string& socket_type,
                                                          bool deny_clients);

// Splits the first whole frame off `in`; false when `in` holds no whole
// well-formed frame.
bool NextFrame(std::string_view* in, zmtp::FrameHeader* header, std::string_view* body);

class CurveClient {
 public:
  CurveClient();
  ~CurveClient();
  CurveClient(const CurveClient&) = delete;
  CurveClient& operator=(const CurveClient&) = delete;

  // Our greeting (CURVE, as client) and HELLO (short nonce 1).
  void AppendGreetingAndHello(std::string& out);
  // Takes the server's greeting and WELCOME off the front of `in`; false
  // when they are not there whole or the WELCOME box does not open.
  bool TakeWelcome(std::string_view* in);
  // INITIATE (short nonce 2) carrying our metadata. REQUIRES: TakeWelcome.
  void AppendInitiate(std::string_view socket_type, std::string_view identity, std::string& out);
  // Takes the server's READY off `in`; false when it is not there whole or
  // its box does not open.
  bool TakeReady(std::string_view* in);

  // One MESSAGE frame carrying a frame `body` with libzmq's boxed flags
  // (0x01 more, 0x02 command) under short nonce `nonce`; the outer header
  // long (9 bytes) even for a short frame when `long_header`.
  void AppendMessage(std::string_view body, uint8_t boxed_flags, uint64_t nonce, bool long_header,
                     std::string& out);
  // The next short nonce to use, counting it as used.
  uint64_t TakeNonce() { return next_nonce_++; }
  uint64_t last_nonce() const { return next_nonce_ - 1; }

  // Opens a MESSAGE from the server (its short nonce must increase); false
  // when the box does not open or the nonce is not greater than the last.
  bool OpenMessage(std::string_view message, std::string* body, uint8_t* boxed_flags);

 private:
  CurveKeyPair server_;
  CurveKeyPair long_term_;
  CurveKeyPair short_term_;
  uint8_t server_short_public_[crypto_box_PUBLICKEYBYTES] = {};
  uint8_t cookie_[96] = {};
  uint8_t shared_key_[crypto_box_BEFORENMBYTES] = {};
  uint64_t next_nonce_ = 1;
  uint64_t last_server_nonce_ = 0;
};

}  // namespace plantd::fuzz

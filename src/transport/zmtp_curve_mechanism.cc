#include "transport/zmtp_curve_mechanism.h"

#include <algorithm>
#include <cstring>

#include "transport/curve_keys.h"

namespace plantd::transport {
namespace {

// Command names with their length byte, as they open a command body.
constexpr std::string_view kHello("\x05HELLO", 6);
constexpr std::string_view kWelcome("\x07WELCOME", 8);
constexpr std::string_view kInitiate("\x08INITIATE", 9);
constexpr std::string_view kReady("\x05READY", 6);
constexpr std::string_view kMessage("\x07MESSAGE", 8);

// Full nonces are a 16-byte (long-term) or 8-byte (short-term boxes of the
// handshake) prefix and the sender's short nonce or random bytes.
constexpr std::string_view kHelloNoncePrefix = "CurveZMQHELLO---";
constexpr std::string_view kInitiateNoncePrefix = "CurveZMQINITIATE";
constexpr std::string_view kReadyNoncePrefix = "CurveZMQREADY---";
constexpr std::string_view kClientMessageNoncePrefix = "CurveZMQMESSAGEC";
constexpr std::string_view kServerMessageNoncePrefix = "CurveZMQMESSAGES";
constexpr std::string_view kWelcomeNoncePrefix = "WELCOME-";
constexpr std::string_view kCookieNoncePrefix = "COOKIE--";
constexpr std::string_view kVouchNoncePrefix = "VOUCH---";

constexpr size_t kKey = crypto_box_PUBLICKEYBYTES;
constexpr size_t kMac = crypto_box_MACBYTES;
constexpr size_t kShortNonce = 8;
constexpr size_t kLongNonce = 16;  // the random part of WELCOME, cookie, vouch nonces
// The cookie: its 16-byte nonce and Box[C' + s'] (64 bytes + MAC).
constexpr size_t kCookieSize = kLongNonce + 2 * kKey + kMac;

// Frame flags inside a MESSAGE box, as libzmq's msg_t defines them (not the
// ZMTP frame header's: there COMMAND is 0x04).
constexpr uint8_t kBoxedMore = 0x01;
constexpr uint8_t kBoxedCommand = 0x02;

const uint8_t* Bytes(std::string_view s) { return reinterpret_cast<const uint8_t*>(s.data()); }

void PutUint64(uint8_t* out, uint64_t value) {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<uint8_t>(value);
    value >>= 8;
  }
}

uint64_t GetUint64(const uint8_t* in) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value = (value << 8) | in[i];
  return value;
}

// A 24-byte nonce: a prefix, then the rest.
struct Nonce {
  uint8_t bytes[crypto_box_NONCEBYTES] = {};
  Nonce(std::string_view prefix, const uint8_t* rest) {
    std::memcpy(bytes, prefix.data(), prefix.size());
    std::memcpy(bytes + prefix.size(), rest, sizeof(bytes) - prefix.size());
  }
  Nonce(std::string_view prefix, uint64_t counter) {
    std::memcpy(bytes, prefix.data(), prefix.size());
    PutUint64(bytes + prefix.size(), counter);
  }
};

}  // namespace

bool InitSodium() {
  // sodium_init is itself idempotent; the static makes later calls free.
  static const bool ready = sodium_init() >= 0;
  return ready;
}

Status CurveServerOptions::Validate() const {
  if (public_key.size() != kCurveKeySize || secret_key.size() != kCurveKeySize) {
    return Status::InvalidArgument("CURVE server keys must be 32 bytes each (raw, not Z85)");
  }
  if (!KeyPairMatches(public_key, secret_key)) {
    return Status::InvalidArgument("the CURVE server secret key is not the public key's secret");
  }
  if (socket_type.empty()) return Status::InvalidArgument("the CURVE server needs a socket type");
  return Status::Ok();
}

ZmtpCurveServerMechanism::ZmtpCurveServerMechanism(CurveServerOptions options)
    : authorize_(std::move(options.authorize)), socket_type_(std::move(options.socket_type)) {
  InitSodium();
  std::memcpy(public_key_, options.public_key.data(),
              std::min(options.public_key.size(), sizeof(public_key_)));
  std::memcpy(secret_key_, options.secret_key.data(),
              std::min(options.secret_key.size(), sizeof(secret_key_)));
  sodium_memzero(options.secret_key.data(), options.secret_key.size());
}

ZmtpCurveServerMechanism::~ZmtpCurveServerMechanism() {
  sodium_memzero(secret_key_, sizeof(secret_key_));
  sodium_memzero(short_secret_, sizeof(short_secret_));
  sodium_memzero(cookie_key_, sizeof(cookie_key_));
  sodium_memzero(shared_key_, sizeof(shared_key_));
}

std::string_view ZmtpCurveServerMechanism::user_id() const {
  if (!client_proven_) return {};
  return {reinterpret_cast<const char*>(client_public_key_), sizeof(client_public_key_)};
}

ZmtpMechanism::Step ZmtpCurveServerMechanism::Refuse(const char* why) {
  refusal_ = why;
  state_ = State::kRefused;
  // Nothing more will be boxed: the short-term secrets can go now.
  sodium_memzero(short_secret_, sizeof(short_secret_));
  sodium_memzero(cookie_key_, sizeof(cookie_key_));
  sodium_memzero(shared_key_, sizeof(shared_key_));
  return Step::kRefused;
}

ZmtpMechanism::Step ZmtpCurveServerMechanism::OnHandshakeCommand(std::string_view body,
                                                                 std::string& out) {
  if (zmtp::CommandName(body) == "ERROR") return Refuse("the client sent ERROR");
  switch (state_) {
    case State::kExpectHello: return OnHello(body, out);
    case State::kExpectInitiate: return OnInitiate(body, out);
    case State::kReady:
    case State::kRefused: break;
  }
  return Refuse("a handshake command after the handshake");
}

ZmtpMechanism::Step ZmtpCurveServerMechanism::OnHello(std::string_view body, std::string& out) {
  // RFC 26 HELLO: name, version 1.0, 72 zero bytes of padding (so that the
  // client sends more than our WELCOME: no amplification), C', the short
  // nonce, Box[64 zeros](C'->S).
  if (!body.starts_with(kHello)) return Refuse("expected HELLO");
  if (body.size() != kHelloSize) return Refuse("HELLO is not 200 bytes");
  const uint8_t* hello = Bytes(body);
  if (hello[6] != 1 || hello[7] != 0) return Refuse("HELLO is not CurveZMQ version 1.0");
  if (sodium_is_zero(hello + 8, 72) != 1) return Refuse("HELLO's padding is not all zeros");
  std::memcpy(client_short_public_, hello + 80, kKey);
  last_client_nonce_ = GetUint64(hello + 112);
  const Nonce nonce(kHelloNoncePrefix, hello + 112);
  // HELLO's box and WELCOME's are both between C' and S: one key for the
  // two (crypto_box_beforenm), one Curve25519 multiplication fewer per
  // handshake than opening and sealing each from scratch.
  uint8_t hello_key[crypto_box_BEFORENMBYTES];
  uint8_t signature[64];
  if (crypto_box_beforenm(hello_key, client_short_public_, secret_key_) != 0 ||
      crypto_box_open_easy_afternm(signature, hello + 120, sizeof(signature) + kMac, nonce.bytes,
                                   hello_key) != 0) {
    sodium_memzero(hello_key, sizeof(hello_key));
    return Refuse("HELLO's box does not open (the client has the wrong server key?)");
  }
  if (sodium_is_zero(signature, sizeof(signature)) != 1) {
    sodium_memzero(hello_key, sizeof(hello_key));
    return Refuse("HELLO's box does not hold 64 zeros");
  }
  const bool welcomed = AppendWelcome(hello_key, out);
  sodium_memzero(hello_key, sizeof(hello_key));
  // Our long-term secret opened HELLO and sealed WELCOME; nothing after
  // needs it, so a connection does not carry it for its whole life.
  sodium_memzero(secret_key_, sizeof(secret_key_));
  if (!welcomed) return Refuse("HELLO's short-term key is unusable");
  state_ = State::kExpectInitiate;
  return Step::kContinue;
}

bool ZmtpCurveServerMechanism::AppendWelcome(const uint8_t* hello_key, std::string& out) {
  crypto_box_keypair(short_public_, short_secret_);
  randombytes_buf(cookie_key_, sizeof(cookie_key_));

  // cookie = the cookie nonce's random part, Box[C' + s'](cookie key).
  uint8_t cookie_plain[2 * kKey];
  std::memcpy(cookie_plain, client_short_public_, kKey);
  std::memcpy(cookie_plain + kKey, short_secret_, kKey);
  uint8_t cookie[kCookieSize];
  randombytes_buf(cookie, kLongNonce);
  const Nonce cookie_nonce(kCookieNoncePrefix, cookie);
  crypto_secretbox_easy(cookie + kLongNonce, cookie_plain, sizeof(cookie_plain), cookie_nonce.bytes,
                        cookie_key_);
  sodium_memzero(cookie_plain, sizeof(cookie_plain));

  // WELCOME: name, the nonce's random part, Box[S' + cookie](S->C').
  uint8_t welcome_plain[kKey + kCookieSize];
  std::memcpy(welcome_plain, short_public_, kKey);
  std::memcpy(welcome_plain + kKey, cookie, kCookieSize);
  uint8_t welcome[kWelcomeSize];
  std::memcpy(welcome, kWelcome.data(), kWelcome.size());
  uint8_t* const random = welcome + kWelcome.size();
  randombytes_buf(random, kLongNonce);
  const Nonce nonce(kWelcomeNoncePrefix, random);
  if (crypto_box_easy_afternm(random + kLongNonce, welcome_plain, sizeof(welcome_plain),
                              nonce.bytes, hello_key) != 0) {
    return false;
  }
  zmtp::AppendFrame(out, {reinterpret_cast<const char*>(welcome), sizeof(welcome)}, false, true);
  return true;
}

ZmtpMechanism::Step ZmtpCurveServerMechanism::OnInitiate(std::string_view body, std::string& out) {
  // RFC 26 INITIATE: name, the cookie, the short nonce,
  // Box[C + vouch nonce + vouch + metadata](C'->S').
  if (!body.starts_with(kInitiate)) return Refuse("expected INITIATE");
  if (body.size() < kInitiateMinSize) return Refuse("INITIATE is too short");
  const uint8_t* initiate = Bytes(body);

  // The cookie must be ours, for this C' and s'.
  const uint8_t* cookie = initiate + kInitiate.size();
  const Nonce cookie_nonce(kCookieNoncePrefix, cookie);
  uint8_t cookie_plain[2 * kKey];
  if (crypto_secretbox_open_easy(cookie_plain, cookie + kLongNonce, kCookieSize - kLongNonce,
                                 cookie_nonce.bytes, cookie_key_) != 0) {
    return Refuse("INITIATE's cookie does not open");
  }
  const bool cookie_matches = sodium_memcmp(cookie_plain, client_short_public_, kKey) == 0 &&
                              sodium_memcmp(cookie_plain + kKey, short_secret_, kKey) == 0;
  sodium_memzero(cookie_plain, sizeof(cookie_plain));
  if (!cookie_matches) return Refuse("INITIATE's cookie is not this connection's");

  const uint8_t* short_nonce = cookie + kCookieSize;
  const uint64_t nonce_value = GetUint64(short_nonce);
  if (nonce_value <= last_client_nonce_) return Refuse("INITIATE's nonce does not increase");
  if (crypto_box_beforenm(shared_key_, client_short_public_, short_secret_) != 0) {
    return Refuse("the client's short-term key is unusable");
  }
  const uint8_t* box = short_nonce + kShortNonce;
  const size_t box_size = body.size() - static_cast<size_t>(box - initiate);
  // The plaintext's size varies with the metadata; the handshake may
  // allocate. It holds no secret (the vouch is public-key proof).
  std::string plain(box_size - kMac, '\0');
  auto* plain_bytes = reinterpret_cast<uint8_t*>(plain.data());
  const Nonce nonce(kInitiateNoncePrefix, short_nonce);
  if (crypto_box_open_easy_afternm(plain_bytes, box, box_size, nonce.bytes, shared_key_) != 0) {
    return Refuse("INITIATE's box does not open");
  }
  last_client_nonce_ = nonce_value;

  // The vouch, Box[C' + S](C->S'), proves the client holds C's secret.
  std::memcpy(client_public_key_, plain_bytes, kKey);
  const Nonce vouch_nonce(kVouchNoncePrefix, plain_bytes + kKey);
  uint8_t vouch[2 * kKey];
  if (crypto_box_open_easy(vouch, plain_bytes + kKey + kLongNonce, sizeof(vouch) + kMac,
                           vouch_nonce.bytes, client_public_key_, short_secret_) != 0) {
    return Refuse("INITIATE's vouch does not open");
  }
  if (sodium_memcmp(vouch, client_short_public_, kKey) != 0 ||
      sodium_memcmp(vouch + kKey, public_key_, kKey) != 0) {
    return Refuse("INITIATE's vouch is not for this connection and server");
  }

  zmtp::PeerMetadata metadata;
  const size_t metadata_at = kKey + kLongNonce + sizeof(vouch) + kMac;
  if (!zmtp::ParseMetadata(std::string_view(plain).substr(metadata_at), &metadata)) {
    return Refuse("INITIATE's metadata is malformed or has no Socket-Type");
  }
  peer_socket_type_ = metadata.socket_type;
  peer_identity_ = metadata.identity;
  peer_ = {.socket_type = peer_socket_type_, .identity = peer_identity_};
  client_proven_ = true;  // the vouch opened: C is the client's key

  // RFC 26: the cookie key and s' are forgotten once INITIATE is accepted;
  // the precomputed shared key is all the traffic needs.
  sodium_memzero(cookie_key_, sizeof(cookie_key_));
  sodium_memzero(short_secret_, sizeof(short_secret_));

  if (authorize_ && !authorize_(std::string_view(reinterpret_cast<const char*>(client_public_key_),
                                                 sizeof(client_public_key_)))) {
    // "400" is what a ZAP handler's refusal looks like (RFC 27): libzmq
    // reports it to the client's monitor as an authentication failure.
    zmtp::AppendError(out, "400");
    Refuse("the client's key is not authorized");
    return Step::kDenied;
  }
  AppendReady(out);
  state_ = State::kReady;
  return Step::kReady;
}

void ZmtpCurveServerMechanism::AppendReady(std::string& out) {
  // READY: name, our short nonce, Box[metadata](S'->C').
  std::string metadata;
  zmtp::AppendProperty(metadata, "Socket-Type", socket_type_);
  std::string ready(kReady.size() + kShortNonce + kMac + metadata.size(), '\0');
  auto* bytes = reinterpret_cast<uint8_t*>(ready.data());
  std::memcpy(bytes, kReady.data(), kReady.size());
  const uint64_t counter = next_nonce_++;
  PutUint64(bytes + kReady.size(), counter);
  const Nonce nonce(kReadyNoncePrefix, counter);
  crypto_box_easy_afternm(bytes + kReady.size() + kShortNonce, Bytes(metadata), metadata.size(),
                          nonce.bytes, shared_key_);
  zmtp::AppendFrame(out, ready, false, true);
}

void ZmtpCurveServerMechanism::WrapFrame(std::string_view body, bool more, bool command,
                                         std::string& out) {
  // The outer frame carries no flags (see the header: libzmq would keep
  // them); the flags byte inside the box says MORE and COMMAND.
  const size_t message_size = WrappedSize(body.size());
  uint8_t header[zmtp::kMaxFrameHeaderSize];
  const size_t header_size = zmtp::EncodeFrameHeader(header, message_size, false, false);
  const size_t at = out.size();
  out.resize(at + header_size + message_size);
  auto* frame = reinterpret_cast<uint8_t*>(out.data() + at);
  std::memcpy(frame, header, header_size);
  uint8_t* const message = frame + header_size;
  std::memcpy(message, kMessage.data(), kMessage.size());
  // 2^64 messages will not be sent on one connection; the counter cannot
  // wrap in practice.
  const uint64_t counter = next_nonce_++;
  PutUint64(message + kMessage.size(), counter);
  uint8_t* const mac = message + kMessage.size() + kShortNonce;
  uint8_t* const text = mac + kMac;
  // Boxed in place: the plaintext is written where its ciphertext goes.
  text[0] = static_cast<uint8_t>((more ? kBoxedMore : 0) | (command ? kBoxedCommand : 0));
  if (!body.empty()) std::memcpy(text + 1, body.data(), body.size());
  const Nonce nonce(kServerMessageNoncePrefix, counter);
  crypto_box_detached_afternm(text, mac, text, body.size() + 1, nonce.bytes, shared_key_);
}

bool ZmtpCurveServerMechanism::UnwrapMessage(std::string_view command, uint8_t* out, size_t* size,
                                             uint8_t* flags) {
  if (state_ != State::kReady) {
    refusal_ = "MESSAGE before the handshake is done";
    return false;
  }
  if (!command.starts_with(kMessage)) {
    refusal_ = "expected MESSAGE";
    return false;
  }
  if (command.size() < kMessageOverhead) {
    refusal_ = "MESSAGE is too short";
    return false;
  }
  const uint8_t* message = Bytes(command);
  const uint8_t* short_nonce = message + kMessage.size();
  const uint64_t counter = GetUint64(short_nonce);
  // RFC 26: a nonce that does not increase is a replay or a reordering.
  if (counter <= last_client_nonce_) {
    refusal_ = "MESSAGE nonce is not greater than the last (replayed or reordered)";
    return false;
  }
  const uint8_t* mac = short_nonce + kShortNonce;
  const size_t text_size = command.size() - kMessage.size() - kShortNonce - kMac;
  const Nonce nonce(kClientMessageNoncePrefix, short_nonce);
  if (crypto_box_open_detached_afternm(out, mac + kMac, mac, text_size, nonce.bytes, shared_key_) !=
      0) {
    refusal_ = "MESSAGE box does not open (tampered, or not from this client)";
    return false;
  }
  last_client_nonce_ = counter;
  const uint8_t boxed = out[0];
  *flags = static_cast<uint8_t>(((boxed & kBoxedMore) != 0 ? zmtp::kFlagMore : 0) |
                                ((boxed & kBoxedCommand) != 0 ? zmtp::kFlagCommand : 0));
  *size = text_size - 1;
  std::memmove(out, out + 1, *size);
  return true;
}

}  // namespace plantd::transport

#include "curve_client.h"

#include <cstdlib>
#include <cstring>

#include "check.h"
#include "transport/zmtp_curve_mechanism.h"

namespace plantd::fuzz {
namespace {

constexpr size_t kKey = crypto_box_PUBLICKEYBYTES;
constexpr size_t kMac = crypto_box_MACBYTES;
constexpr size_t kShortNonce = 8;
constexpr size_t kLongNonce = 16;
constexpr size_t kCookieSize = kLongNonce + 2 * kKey + kMac;

// Command names with their length byte, as they open a command body.
constexpr std::string_view kHello("\x05HELLO", 6);
constexpr std::string_view kWelcome("\x07WELCOME", 8);
constexpr std::string_view kInitiate("\x08INITIATE", 9);
constexpr std::string_view kReady("\x05READY", 6);
constexpr std::string_view kMessage("\x07MESSAGE", 8);

// ---------------------------------------------------------------------------
// Deterministic random bytes: a ChaCha20 stream (randombytes_buf_deterministic)
// keyed by a fixed seed and the number of the request.

uint64_t g_random_calls = 0;

void DeterministicBuf(void* const buf, const size_t size) {
  uint8_t seed[randombytes_SEEDBYTES] = {'p', 'l', 'a', 'n', 't', 'd', '-', 'f', 'u', 'z', 'z'};
  const uint64_t call = g_random_calls++;
  std::memcpy(seed + randombytes_SEEDBYTES - sizeof(call), &call, sizeof(call));
  randombytes_buf_deterministic(buf, size, seed);
}

uint32_t DeterministicRandom() {
  uint32_t value = 0;
  DeterministicBuf(&value, sizeof(value));
  return value;
}

const char* DeterministicName() { return "plantd-fuzz-deterministic"; }

randombytes_implementation g_deterministic = {
    .implementation_name = DeterministicName,
    .random = DeterministicRandom,
    .stir = nullptr,
    .uniform = nullptr,
    .buf = DeterministicBuf,
    .close = nullptr,
};

// A 24-byte nonce: a prefix, then the rest (a short nonce or random bytes).
struct Nonce {
  uint8_t bytes[crypto_box_NONCEBYTES] = {};
  Nonce(std::string_view prefix, const uint8_t* rest) {
    std::memcpy(bytes, prefix.data(), prefix.size());
    std::memcpy(bytes + prefix.size(), rest, sizeof(bytes) - prefix.size());
  }
};

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

const uint8_t* Bytes(std::string_view s) { return reinterpret_cast<const uint8_t*>(s.data()); }

void AppendCommand(const uint8_t* body, size_t size, std::string& out) {
  zmtp::AppendFrame(out, {reinterpret_cast<const char*>(body), size}, false, true);
}

// Takes one command frame whose body starts with `name`.
bool TakeCommand(std::string_view* in, std::string_view name, std::string_view* body) {
  zmtp::FrameHeader header;
  return NextFrame(in, &header, body) && header.command && body->starts_with(name);
}

}  // namespace

void UseDeterministicRandom() { randombytes_set_implementation(&g_deterministic); }

void RestartRandom() { g_random_calls = 0; }

CurveKeyPair FixedKeyPair(uint8_t seed) {
  uint8_t seed_bytes[crypto_box_SEEDBYTES];
  std::memset(seed_bytes, seed, sizeof(seed_bytes));
  CurveKeyPair pair;
  crypto_box_seed_keypair(pair.public_key, pair.secret_key, seed_bytes);
  return pair;
}

std::unique_ptr<transport::ZmtpMechanism> MakeCurveServer(const std::string& socket_type,
                                                          bool deny_clients) {
  // Derived and checked once: each costs a scalar multiplication.
  static const CurveKeyPair server = FixedKeyPair(kServerKeySeed);
  transport::CurveServerOptions options;
  options.public_key.assign(reinterpret_cast<const char*>(server.public_key), kKey);
  options.secret_key.assign(reinterpret_cast<const char*>(server.secret_key), kKey);
  options.socket_type = socket_type;
  static const bool valid = options.Validate().ok();
  if (!valid) std::abort();
  if (deny_clients) options.authorize = [](std::string_view /*client_key*/) { return false; };
  return std::make_unique<transport::ZmtpCurveServerMechanism>(std::move(options));
}

bool NextFrame(std::string_view* in, zmtp::FrameHeader* header, std::string_view* body) {
  if (zmtp::ParseFrameHeader(Bytes(*in), in->size(), header) != zmtp::HeaderParse::kOk) {
    return false;
  }
  if (in->size() - header->header_size < header->size) return false;
  *body = in->substr(header->header_size, static_cast<size_t>(header->size));
  in->remove_prefix(header->header_size + body->size());
  return true;
}

CurveClient::CurveClient() {
  // Derived once: each costs a scalar multiplication.
  static const CurveKeyPair server = FixedKeyPair(kServerKeySeed);
  static const CurveKeyPair long_term = FixedKeyPair(kClientKeySeed);
  static const CurveKeyPair short_term = FixedKeyPair(kClientShortKeySeed);
  server_ = server;
  long_term_ = long_term;
  short_term_ = short_term;
}

CurveClient::~CurveClient() { sodium_memzero(shared_key_, sizeof(shared_key_)); }

void CurveClient::AppendGreetingAndHello(std::string& out) {
  zmtp::AppendGreeting(out, "CURVE", false);
  // RFC 26 HELLO: name, version 1.0, 72 zeros, C', short nonce,
  // Box[64 zeros](C'->S).
  uint8_t hello[200] = {};
  std::memcpy(hello, kHello.data(), kHello.size());
  hello[6] = 1;
  hello[7] = 0;
  std::memcpy(hello + 80, short_term_.public_key, kKey);
  PutUint64(hello + 112, TakeNonce());
  const Nonce nonce("CurveZMQHELLO---", hello + 112);
  const uint8_t zeros[64] = {};
  Check(crypto_box_easy(hello + 120, zeros, sizeof(zeros), nonce.bytes, server_.public_key,
                        short_term_.secret_key) == 0,
        "HELLO's box");
  AppendCommand(hello, sizeof(hello), out);
}

bool CurveClient::TakeWelcome(std::string_view* in) {
  if (in->size() < zmtp::kGreetingSize) return false;
  if (zmtp::CheckGreeting(Bytes(*in), "CURVE") != zmtp::GreetingError::kNone) return false;
  in->remove_prefix(zmtp::kGreetingSize);
  std::string_view body;
  if (!TakeCommand(in, kWelcome, &body) || body.size() != 168) return false;
  // Box[S' + cookie](S->C') under "WELCOME-" and 16 random bytes.
  const uint8_t* random = Bytes(body) + kWelcome.size();
  const Nonce nonce("WELCOME-", random);
  uint8_t plain[kKey + kCookieSize];
  if (crypto_box_open_easy(plain, random + kLongNonce, sizeof(plain) + kMac, nonce.bytes,
                           server_.public_key, short_term_.secret_key) != 0) {
    return false;
  }
  std::memcpy(server_short_public_, plain, kKey);
  std::memcpy(cookie_, plain + kKey, kCookieSize);
  return crypto_box_beforenm(shared_key_, server_short_public_, short_term_.secret_key) == 0;
}

void CurveClient::AppendInitiate(std::string_view socket_type, std::string_view identity,
                                 std::string& out) {
  // The vouch: Box[C' + S](C->S') under "VOUCH---" and 16 random bytes.
  uint8_t vouch_plain[2 * kKey];
  std::memcpy(vouch_plain, short_term_.public_key, kKey);
  std::memcpy(vouch_plain + kKey, server_.public_key, kKey);
  uint8_t vouch_random[kLongNonce];
  randombytes_buf(vouch_random, sizeof(vouch_random));
  const Nonce vouch_nonce("VOUCH---", vouch_random);
  uint8_t vouch[sizeof(vouch_plain) + kMac];
  Check(crypto_box_easy(vouch, vouch_plain, sizeof(vouch_plain), vouch_nonce.bytes,
                        server_short_public_, long_term_.secret_key) == 0,
        "the vouch's box");

  // Box[C + vouch nonce + vouch + metadata](C'->S').
  std::string plain(reinterpret_cast<const char*>(long_term_.public_key), kKey);
  plain.append(reinterpret_cast<const char*>(vouch_random), sizeof(vouch_random));
  plain.append(reinterpret_cast<const char*>(vouch), sizeof(vouch));
  zmtp::AppendProperty(plain, "Socket-Type", socket_type);
  if (!identity.empty()) zmtp::AppendProperty(plain, "Identity", identity);

  std::string initiate(kInitiate);
  initiate.append(reinterpret_cast<const char*>(cookie_), kCookieSize);
  uint8_t short_nonce[kShortNonce];
  PutUint64(short_nonce, TakeNonce());
  initiate.append(reinterpret_cast<const char*>(short_nonce), sizeof(short_nonce));
  const size_t box_at = initiate.size();
  initiate.resize(box_at + plain.size() + kMac);
  const Nonce nonce("CurveZMQINITIATE", short_nonce);
  crypto_box_easy_afternm(reinterpret_cast<uint8_t*>(initiate.data()) + box_at, Bytes(plain),
                          plain.size(), nonce.bytes, shared_key_);
  zmtp::AppendFrame(out, initiate, false, true);
}

bool CurveClient::TakeReady(std::string_view* in) {
  std::string_view body;
  if (!TakeCommand(in, kReady, &body) || body.size() < kReady.size() + kShortNonce + kMac) {
    return false;
  }
  const uint8_t* short_nonce = Bytes(body) + kReady.size();
  const uint64_t counter = GetUint64(short_nonce);
  if (counter <= last_server_nonce_) return false;
  last_server_nonce_ = counter;
  const Nonce nonce("CurveZMQREADY---", short_nonce);
  const size_t box_size = body.size() - kReady.size() - kShortNonce;
  std::string metadata(box_size - kMac, '\0');
  if (crypto_box_open_easy_afternm(reinterpret_cast<uint8_t*>(metadata.data()),
                                   short_nonce + kShortNonce, box_size, nonce.bytes,
                                   shared_key_) != 0) {
    return false;
  }
  zmtp::PeerMetadata peer;
  return zmtp::ParseMetadata(metadata, &peer);
}

void CurveClient::AppendMessage(std::string_view body, uint8_t boxed_flags, uint64_t nonce,
                                bool long_header, std::string& out) {
  const size_t size = kMessage.size() + kShortNonce + kMac + 1 + body.size();
  uint8_t header[zmtp::kMaxFrameHeaderSize];
  size_t header_size = zmtp::EncodeFrameHeader(header, size, false);
  if (long_header && header_size == 2) {
    header[0] |= zmtp::kFlagLong;
    std::memset(header + 1, 0, 7);
    header[8] = static_cast<uint8_t>(size);
    header_size = 9;
  }
  out.append(reinterpret_cast<const char*>(header), header_size);
  std::string message(kMessage);
  uint8_t short_nonce[kShortNonce];
  PutUint64(short_nonce, nonce);
  message.append(reinterpret_cast<const char*>(short_nonce), sizeof(short_nonce));
  std::string plain(1, static_cast<char>(boxed_flags));
  plain.append(body);
  const size_t box_at = message.size();
  message.resize(box_at + kMac + plain.size());
  const Nonce full("CurveZMQMESSAGEC", short_nonce);
  crypto_box_easy_afternm(reinterpret_cast<uint8_t*>(message.data()) + box_at, Bytes(plain),
                          plain.size(), full.bytes, shared_key_);
  out.append(message);
}

bool CurveClient::OpenMessage(std::string_view message, std::string* body, uint8_t* boxed_flags) {
  if (!message.starts_with(kMessage) || message.size() < kMessage.size() + kShortNonce + kMac + 1) {
    return false;
  }
  const uint8_t* short_nonce = Bytes(message) + kMessage.size();
  const uint64_t counter = GetUint64(short_nonce);
  if (counter <= last_server_nonce_) return false;
  last_server_nonce_ = counter;
  const Nonce nonce("CurveZMQMESSAGES", short_nonce);
  const size_t box_size = message.size() - kMessage.size() - kShortNonce;
  std::string plain(box_size - kMac, '\0');
  if (crypto_box_open_easy_afternm(reinterpret_cast<uint8_t*>(plain.data()),
                                   short_nonce + kShortNonce, box_size, nonce.bytes,
                                   shared_key_) != 0) {
    return false;
  }
  *boxed_flags = static_cast<uint8_t>(plain[0]);
  body->assign(plain, 1);
  return true;
}

}  // namespace plantd::fuzz

#include "transport/zmtp_framing.h"

#include <algorithm>
#include <cstring>

namespace plantd::transport::zmtp {
namespace {

constexpr std::string_view kReady = "READY";
constexpr std::string_view kError = "ERROR";
constexpr std::string_view kPing = "PING";
constexpr std::string_view kPong = "PONG";

void AppendCommandName(std::string& body, std::string_view name) {
  body.push_back(static_cast<char>(name.size()));
  body.append(name);
}

}  // namespace

void AppendProperty(std::string& body, std::string_view name, std::string_view value) {
  body.push_back(static_cast<char>(name.size()));
  body.append(name);
  const auto n = static_cast<uint32_t>(value.size());
  const char size[4] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                        static_cast<char>(n >> 8), static_cast<char>(n)};
  body.append(size, 4);
  body.append(value);
}

namespace {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

}  // namespace

void AppendGreeting(std::string& out, std::string_view mechanism, bool as_server) {
  uint8_t g[kGreetingSize] = {};
  g[0] = 0xFF;
  // Padding bytes 1-8: libzmq puts its identity length + 1 there for ZMTP 1.0
  // peers; 1 reads as "no identity".
  g[8] = 0x01;
  g[9] = 0x7F;
  g[10] = 3;  // major
  g[11] = 1;  // minor
  // The mechanism name, zero-padded to 20 bytes (g is zeroed).
  const std::string_view name = mechanism.substr(0, kMechanismNameSize);
  std::copy(name.begin(), name.end(), g + 12);
  g[32] = as_server ? 1 : 0;  // the filler after it stays zero
  out.append(reinterpret_cast<const char*>(g), sizeof(g));
}

const char* GreetingErrorText(GreetingError error) {
  switch (error) {
    case GreetingError::kNone: return "ok";
    case GreetingError::kNotZmtp: return "not a ZMTP 3 greeting";
    case GreetingError::kVersionTooOld:
      return "ZMTP 2.0 or older (libzmq before 4.0); ZMTP 3 is required";
    case GreetingError::kWrongMechanism:
      return "the peer's security mechanism is not the one this endpoint requires";
  }
  return "unknown";
}

bool SignatureLooksValid(const uint8_t* data, size_t size) {
  if (size >= 1 && data[0] != 0xFF) return false;
  if (size >= 10 && (data[9] & 0x01) == 0) return false;
  return true;
}

GreetingError CheckGreeting(const uint8_t* g, std::string_view mechanism) {
  if (!SignatureLooksValid(g, kGreetingSize)) return GreetingError::kNotZmtp;
  if (g[10] < 3) return GreetingError::kVersionTooOld;
  return GreetingMechanism(g) == mechanism ? GreetingError::kNone : GreetingError::kWrongMechanism;
}

std::string_view GreetingMechanism(const uint8_t* g) {
  const auto* name = reinterpret_cast<const char*>(g + 12);
  size_t size = 0;
  while (size < kMechanismNameSize && name[size] != 0) ++size;
  return {name, size};
}

bool GreetingAsServer(const uint8_t* g) { return g[32] == 1; }

HeaderParse ParseFrameHeader(const uint8_t* data, size_t available, FrameHeader* header) {
  if (available < 1) return HeaderParse::kIncomplete;
  const uint8_t flags = data[0];
  if ((flags & ~(kFlagMore | kFlagLong | kFlagCommand)) != 0) return HeaderParse::kMalformed;
  header->more = (flags & kFlagMore) != 0;
  header->command = (flags & kFlagCommand) != 0;
  if (header->command && header->more) return HeaderParse::kMalformed;
  if ((flags & kFlagLong) == 0) {
    if (available < 2) return HeaderParse::kIncomplete;
    header->size = data[1];
    header->header_size = 2;
    return HeaderParse::kOk;
  }
  if (available < 9) return HeaderParse::kIncomplete;
  uint64_t size = 0;
  for (size_t i = 1; i < 9; ++i) size = (size << 8) | data[i];
  if (size >> 63) return HeaderParse::kMalformed;
  header->size = size;
  header->header_size = 9;
  return HeaderParse::kOk;
}

size_t EncodeFrameHeader(uint8_t* out, uint64_t size, bool more, bool command) {
  uint8_t flags = (more ? kFlagMore : 0) | (command ? kFlagCommand : 0);
  if (size <= 255) {
    out[0] = flags;
    out[1] = static_cast<uint8_t>(size);
    return 2;
  }
  out[0] = flags | kFlagLong;
  for (int i = 8; i >= 1; --i) {
    out[i] = static_cast<uint8_t>(size);
    size >>= 8;
  }
  return 9;
}

void AppendFrame(std::string& out, std::string_view body, bool more, bool command) {
  uint8_t header[kMaxFrameHeaderSize];
  const size_t n = EncodeFrameHeader(header, body.size(), more, command);
  out.append(reinterpret_cast<const char*>(header), n);
  out.append(body);
}

std::string_view CommandName(std::string_view body) {
  if (body.empty()) return {};
  const auto n = static_cast<uint8_t>(body[0]);
  if (n == 0 || body.size() < 1u + n) return {};
  return body.substr(1, n);
}

void AppendReady(std::string& out, std::string_view socket_type, std::string_view identity) {
  std::string body;
  AppendCommandName(body, kReady);
  AppendProperty(body, "Socket-Type", socket_type);
  if (!identity.empty()) AppendProperty(body, "Identity", identity);
  AppendFrame(out, body, false, true);
}

bool ParseReady(std::string_view body, PeerMetadata* metadata) {
  if (CommandName(body) != kReady) return false;
  return ParseMetadata(body.substr(1 + kReady.size()), metadata);
}

bool ParseMetadata(std::string_view properties, PeerMetadata* metadata) {
  std::string_view rest = properties;
  *metadata = {};
  while (!rest.empty()) {
    const auto name_size = static_cast<uint8_t>(rest[0]);
    if (name_size == 0 || rest.size() < 1u + name_size + 4) return false;
    const std::string_view name = rest.substr(1, name_size);
    const auto* s = reinterpret_cast<const uint8_t*>(rest.data() + 1 + name_size);
    const uint32_t value_size =
        (uint32_t{s[0]} << 24) | (uint32_t{s[1]} << 16) | (uint32_t{s[2]} << 8) | uint32_t{s[3]};
    const size_t value_at = 1u + name_size + 4;
    if (rest.size() - value_at < value_size) return false;
    const std::string_view value = rest.substr(value_at, value_size);
    // Property names are case-insensitive (RFC 23).
    if (EqualsIgnoreCase(name, "Socket-Type")) metadata->socket_type = value;
    if (EqualsIgnoreCase(name, "Identity")) metadata->identity = value;
    rest.remove_prefix(value_at + value_size);
  }
  return !metadata->socket_type.empty();
}

std::string ErrorBody(std::string_view reason) {
  std::string body;
  AppendCommandName(body, kError);
  const std::string_view r = reason.substr(0, 255);
  body.push_back(static_cast<char>(r.size()));
  body.append(r);
  return body;
}

void AppendError(std::string& out, std::string_view reason) {
  AppendFrame(out, ErrorBody(reason), false, true);
}

bool ParsePing(std::string_view body, std::string_view* context) {
  if (CommandName(body) != kPing) return false;
  std::string_view rest = body.substr(1 + kPing.size());
  if (rest.size() < 2) return false;  // the TTL
  rest.remove_prefix(2);
  *context = rest.substr(0, 16);
  return true;
}

std::string_view PongBody(std::string_view context, PongStorage& storage) {
  const std::string_view kept = context.substr(0, 16);
  storage[0] = static_cast<char>(kPong.size());
  std::copy(kPong.begin(), kPong.end(), storage.begin() + 1);
  std::copy(kept.begin(), kept.end(), storage.begin() + 1 + kPong.size());
  return {storage.data(), 1 + kPong.size() + kept.size()};
}

void AppendPong(std::string& out, std::string_view context) {
  PongStorage storage;
  AppendFrame(out, PongBody(context, storage), false, true);
}

void AppendPing(std::string& out, uint16_t ttl_deciseconds, std::string_view context) {
  std::string body;
  AppendCommandName(body, kPing);
  body.push_back(static_cast<char>(ttl_deciseconds >> 8));
  body.push_back(static_cast<char>(ttl_deciseconds));
  body.append(context.substr(0, 16));
  AppendFrame(out, body, false, true);
}

}  // namespace plantd::transport::zmtp

// The ZMTP 3.x wire format (RFC 23/ZMTP and 37/ZMTP 3.1): the 64-byte
// greeting, metadata and the NULL mechanism's READY, frame headers, and the
// PING/PONG heartbeat commands. Pure functions over bytes, shared by the
// broker's native transport, its security mechanisms and the benchmark's
// client.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace plantd::transport::zmtp {

inline constexpr size_t kGreetingSize = 64;
// The longest frame header: flags and an 8-byte size.
inline constexpr size_t kMaxFrameHeaderSize = 9;

// Frame flag bits (RFC 23, "Framing").
inline constexpr uint8_t kFlagMore = 0x01;
inline constexpr uint8_t kFlagLong = 0x02;
inline constexpr uint8_t kFlagCommand = 0x04;

// The mechanism name field of the greeting, zero-padded.
inline constexpr size_t kMechanismNameSize = 20;

// Appends our greeting: ZMTP 3.1, the mechanism named (NULL, CURVE) and the
// as-server flag (0 for NULL, which has no roles).
void AppendGreeting(std::string& out, std::string_view mechanism = "NULL", bool as_server = false);

enum class GreetingError {
  kNone,
  kNotZmtp,         // no 0xFF ... 0x7F signature: ZMTP 1.0 or not ZeroMQ at all
  kVersionTooOld,   // ZMTP 2.0 or older (libzmq before 4.0)
  kWrongMechanism,  // not the mechanism this endpoint speaks (RFC 23: close)
};
const char* GreetingErrorText(GreetingError error);

// Checks a peer's complete 64-byte greeting against the mechanism we speak.
GreetingError CheckGreeting(const uint8_t* greeting, std::string_view mechanism = "NULL");
// The mechanism a complete greeting names, and its as-server flag.
std::string_view GreetingMechanism(const uint8_t* greeting);
bool GreetingAsServer(const uint8_t* greeting);
// The signature alone (first 10 bytes) tells a non-ZMTP-3 peer early.
bool SignatureLooksValid(const uint8_t* data, size_t size);

struct FrameHeader {
  bool more = false;
  bool command = false;
  uint64_t size = 0;       // body bytes
  size_t header_size = 0;  // 2 or 9
};

enum class HeaderParse { kIncomplete, kOk, kMalformed };
// Parses the header at `data`. Malformed: reserved flag bits set, a command
// with MORE, or a long size with the top bit set.
HeaderParse ParseFrameHeader(const uint8_t* data, size_t available, FrameHeader* header);

// Writes a header for a `size`-byte body; returns its length (2 or 9).
size_t EncodeFrameHeader(uint8_t* out, uint64_t size, bool more, bool command = false);
// Appends a header and a body.
void AppendFrame(std::string& out, std::string_view body, bool more, bool command = false);

// The name of a command frame's body ("READY", "PING"...), empty if malformed.
std::string_view CommandName(std::string_view body);

// Appends a READY command carrying Socket-Type (and Identity when not empty).
void AppendReady(std::string& out, std::string_view socket_type, std::string_view identity = {});

struct PeerMetadata {
  std::string_view socket_type;
  std::string_view identity;
};
// Parses the body of a READY command. False when its metadata is malformed.
bool ParseReady(std::string_view body, PeerMetadata* metadata);
// Parses a metadata property list alone (what CURVE's INITIATE and READY
// boxes carry). False when malformed or without Socket-Type.
bool ParseMetadata(std::string_view properties, PeerMetadata* metadata);
// Appends one metadata property (a 1-byte name length, the name, a 4-byte
// big-endian value length, the value).
void AppendProperty(std::string& body, std::string_view name, std::string_view value);

// An ERROR command's body with a reason (cut to 255 bytes), sent before
// closing a connection; AppendError appends it as a command frame.
std::string ErrorBody(std::string_view reason);
void AppendError(std::string& out, std::string_view reason);

// PING (ZMTP 3.1): the context to return in the PONG, up to 16 bytes.
bool ParsePing(std::string_view body, std::string_view* context);
void AppendPong(std::string& out, std::string_view context);
// The PONG command's body alone (for a mechanism that boxes it), built in
// `storage` without allocating.
using PongStorage = std::array<char, 1 + 4 + 16>;
std::string_view PongBody(std::string_view context, PongStorage& storage);
void AppendPing(std::string& out, uint16_t ttl_deciseconds, std::string_view context);

}  // namespace plantd::transport::zmtp

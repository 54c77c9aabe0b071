// The pure ZMTP 3.x wire functions (transport/zmtp_framing.h): the greeting
// checks, frame headers and the command bodies a peer controls (READY and
// its metadata, PING), walked over the input as a stream of frames after an
// optional greeting; each parse is checked against its encoder.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "check.h"
#include "transport/zmtp_framing.h"

namespace {

using plantd::fuzz::Check;
namespace zmtp = plantd::transport::zmtp;

const uint8_t* Bytes(std::string_view s) { return reinterpret_cast<const uint8_t*>(s.data()); }

void CheckGreeting(const uint8_t* greeting) {
  const zmtp::GreetingError error = zmtp::CheckGreeting(greeting, "NULL");
  Check(zmtp::GreetingErrorText(error) != nullptr, "a greeting error without text");
  const std::string_view mechanism = zmtp::GreetingMechanism(greeting);
  Check(mechanism.size() <= zmtp::kMechanismNameSize, "a mechanism name past its field");
  Check(mechanism.find('\0') == std::string_view::npos, "a mechanism name with a NUL");
  // Our own greeting with the peer's mechanism and role passes our check.
  std::string ours;
  zmtp::AppendGreeting(ours, mechanism, zmtp::GreetingAsServer(greeting));
  Check(ours.size() == zmtp::kGreetingSize, "our greeting is not 64 bytes");
  Check(zmtp::CheckGreeting(Bytes(ours), mechanism) == zmtp::GreetingError::kNone,
        "our own greeting fails our check");
  Check(zmtp::GreetingMechanism(Bytes(ours)) == mechanism, "the mechanism does not round-trip");
  Check(zmtp::GreetingAsServer(Bytes(ours)) == zmtp::GreetingAsServer(greeting),
        "the as-server flag does not round-trip");
  if (error == zmtp::GreetingError::kNone) {
    Check(zmtp::SignatureLooksValid(greeting, zmtp::kGreetingSize),
          "a good greeting, bad signature");
  }
}

void CheckHeader(const zmtp::FrameHeader& h) {
  Check(h.header_size == 2 || h.header_size == 9, "a header neither short nor long");
  Check(!(h.command && h.more), "a command with MORE parsed");
  Check((h.size >> 63) == 0, "a size with the top bit set parsed");
  // The encoder's header parses back to the same frame.
  uint8_t encoded[zmtp::kMaxFrameHeaderSize];
  const size_t n = zmtp::EncodeFrameHeader(encoded, h.size, h.more, h.command);
  zmtp::FrameHeader again;
  Check(zmtp::ParseFrameHeader(encoded, n, &again) == zmtp::HeaderParse::kOk,
        "an encoded header does not parse");
  Check(again.size == h.size && again.more == h.more && again.command == h.command,
        "a header does not round-trip");
  Check(n == (h.size <= 255 ? 2u : 9u), "a header not in its shortest form");
}

void CheckMetadata(std::string_view properties, const zmtp::PeerMetadata& m) {
  // The views point into the input.
  const auto inside = [properties](std::string_view v) {
    return v.empty() || (v.data() >= properties.data() &&
                         v.data() + v.size() <= properties.data() + properties.size());
  };
  Check(inside(m.socket_type) && inside(m.identity), "metadata views outside the body");
  // What we encode from it parses back.
  std::string body;
  zmtp::AppendProperty(body, "Socket-Type", m.socket_type);
  if (!m.identity.empty()) zmtp::AppendProperty(body, "Identity", m.identity);
  zmtp::PeerMetadata again;
  Check(zmtp::ParseMetadata(body, &again), "encoded metadata does not parse");
  Check(again.socket_type == m.socket_type && again.identity == m.identity,
        "metadata does not round-trip");
}

void CheckCommand(std::string_view body) {
  const std::string_view name = zmtp::CommandName(body);
  Check(name.size() <= 255 && (name.empty() || name.data() == body.data() + 1),
        "a command name outside the body");
  zmtp::PeerMetadata metadata;
  if (zmtp::ParseReady(body, &metadata)) {
    Check(name == "READY", "READY parsed from another command");
    CheckMetadata(body.substr(6), metadata);
    std::string ready;
    zmtp::AppendReady(ready, metadata.socket_type, metadata.identity);
    zmtp::FrameHeader h;
    Check(zmtp::ParseFrameHeader(Bytes(ready), ready.size(), &h) == zmtp::HeaderParse::kOk &&
              h.command && ready.size() == h.header_size + h.size,
          "our READY is not one command frame");
    zmtp::PeerMetadata again;
    Check(zmtp::ParseReady(std::string_view(ready).substr(h.header_size), &again) &&
              again.socket_type == metadata.socket_type && again.identity == metadata.identity,
          "READY does not round-trip");
  }
  if (zmtp::ParseMetadata(body, &metadata)) CheckMetadata(body, metadata);
  std::string_view context;
  if (zmtp::ParsePing(body, &context)) {
    Check(name == "PING", "PING parsed from another command");
    Check(context.size() <= 16, "a PING context over 16 bytes");
    zmtp::PongStorage storage;
    const std::string_view pong = zmtp::PongBody(context, storage);
    Check(zmtp::CommandName(pong) == "PONG" && pong.substr(5) == context,
          "PONG does not carry the PING's context");
    std::string ping;
    zmtp::AppendPing(ping, 100, context);
    std::string_view again;
    Check(zmtp::ParsePing(std::string_view(ping).substr(2), &again) && again == context,
          "PING does not round-trip");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  zmtp::SignatureLooksValid(data, size);
  // A stream that starts like a greeting is read as one.
  if (size >= zmtp::kGreetingSize && data[0] == 0xFF) {
    CheckGreeting(data);
    in.remove_prefix(zmtp::kGreetingSize);
  }
  while (!in.empty()) {
    zmtp::FrameHeader h;
    const zmtp::HeaderParse parsed = zmtp::ParseFrameHeader(Bytes(in), in.size(), &h);
    if (parsed == zmtp::HeaderParse::kMalformed) {
      // Skip the byte: a later frame may still be worth parsing.
      in.remove_prefix(1);
      continue;
    }
    if (parsed == zmtp::HeaderParse::kIncomplete) break;
    CheckHeader(h);
    Check(h.header_size <= in.size(), "a header longer than the input");
    const std::string_view body =
        in.substr(h.header_size, static_cast<size_t>(std::min<uint64_t>(h.size, in.size())));
    CheckCommand(body);
    in.remove_prefix(h.header_size + body.size());
  }
  return 0;
}

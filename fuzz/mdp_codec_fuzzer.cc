// The Majordomo codec (mdp/codec.h): classifying a message in any of the
// four dialects, with or without an envelope, and the indices it hands the
// broker, which must name frames that exist.
//
// Input: frames, each a length byte and that many bytes (the last one cut
// short by the end of the input); the harness puts a routing id in front,
// as the ROUTER does.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>
#include <zmq.hpp>

#include "check.h"
#include "mdp/codec.h"

namespace {

using plantd::fuzz::Check;
namespace mdp = plantd::mdp;

// A message has at most this many frames here: the codec looks at the
// first dozen, and max_message_frames bounds them in the broker anyway.
constexpr size_t kMaxFrames = 64;

void CheckPrefix(const mdp::Prefix& prefix) {
  Check(prefix.count >= 2 && prefix.count <= prefix.frames.size(), "a prefix of bad length");
  for (size_t i = 0; i < prefix.count; ++i) {
    // Static storage: reading it is enough for ASan to object if it is not.
    volatile char sink = 0;
    for (char c : prefix.frames[i]) sink = static_cast<char>(sink ^ c);
    (void)sink;
  }
}

void CheckDecoded(const std::vector<zmq::message_t>& frames, const mdp::Decoded& d) {
  const size_t count = frames.size();
  Check(d.envelope_begin == 1 && d.envelope_end >= 1 && d.envelope_end <= count,
        "an envelope outside the message");
  Check(d.envelope_end - d.envelope_begin <= mdp::kMaxEnvelopeFrames, "an envelope too long");
  for (size_t i = d.envelope_begin; i < d.envelope_end; ++i) {
    Check(frames[i].size() != 0, "an empty frame inside the envelope");
  }
  const bool request = d.role == mdp::Role::kClient;
  Check(!request || d.command == mdp::Command::kRequest, "a client command other than REQUEST");
  Check(request || d.envelope_end == 1, "a worker message with an envelope");
  switch (d.command) {
    case mdp::Command::kRequest:
      Check(request, "a REQUEST from a worker");
      Check(d.service > 1 && d.service < count, "a service index outside the message");
      Check(frames[d.service].size() != 0, "an empty service accepted");
      Check(d.body_begin == d.service + 1, "a body that does not follow the service");
      break;
    case mdp::Command::kReady:
      Check(d.service > 1 && d.service < count, "a READY service index outside the message");
      Check(frames[d.service].size() != 0, "an empty service accepted");
      Check(d.credit == 0 || (d.credit == d.service + 1 && d.credit < count),
            "a credit index outside the message");
      break;
    case mdp::Command::kPartial:
    case mdp::Command::kFinal:
      Check(d.address > 1 && d.address < count, "an address index outside the message");
      Check(d.body_begin > d.address && d.body_begin <= count, "a body outside the message");
      break;
    case mdp::Command::kHeartbeat:
    case mdp::Command::kDisconnect: break;
  }
  Check(mdp::DialectName(d.dialect) != nullptr, "a dialect without a name");
  if (request) {
    CheckPrefix(mdp::ClientReplyPrefix(d.dialect, true));
    if (mdp::ClientTakesPartials(d.dialect)) CheckPrefix(mdp::ClientReplyPrefix(d.dialect, false));
  } else {
    for (mdp::Command c :
         {mdp::Command::kRequest, mdp::Command::kHeartbeat, mdp::Command::kDisconnect}) {
      CheckPrefix(mdp::WorkerCommandPrefix(d.dialect, c));
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<zmq::message_t> frames;
  frames.emplace_back(std::string_view("\x00\x6b\x8b\x45\x67", 5));
  size_t at = 0;
  while (at < size && frames.size() < kMaxFrames) {
    const size_t length = std::min<size_t>(data[at], size - at - 1);
    frames.emplace_back(data + at + 1, length);
    at += 1 + length;
  }
  mdp::Decoded decoded;
  const mdp::DecodeError error = mdp::Decode(frames.data(), frames.size(), &decoded);
  Check(mdp::DecodeErrorName(error) != nullptr, "a decode error without a name");
  if (error == mdp::DecodeError::kNone) CheckDecoded(frames, decoded);
  return 0;
}

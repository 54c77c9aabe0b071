#include "mdp/codec.h"

namespace plantd::mdp {
namespace {

// Command words of the plantd dialect, as its Go core/mdp writes them.
constexpr std::string_view kWordRequest = "REQUEST";
constexpr std::string_view kWordPartial = "PARTIAL";
constexpr std::string_view kWordFinal = "FINAL";
constexpr std::string_view kWordReady = "READY";
constexpr std::string_view kWordHeartbeat = "HEARTBEAT";
constexpr std::string_view kWordDisconnect = "DISCONNECT";

// One-byte command frames, as static storage for outgoing prefixes.
constexpr char kByte[7] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06};
std::string_view ByteFrame(uint8_t b) { return {&kByte[b], 1}; }

bool IsByte(std::string_view frame, uint8_t* value) {
  if (frame.size() != 1) return false;
  *value = static_cast<uint8_t>(frame[0]);
  return true;
}

DecodeError DecodeWorker02(std::string_view cmd, Decoded* out) {
  uint8_t b;
  if (IsByte(cmd, &b)) {
    switch (b) {
      case v02::kReady: out->command = Command::kReady; return DecodeError::kNone;
      case v02::kPartial: out->command = Command::kPartial; return DecodeError::kNone;
      case v02::kFinal: out->command = Command::kFinal; return DecodeError::kNone;
      case v02::kHeartbeat: out->command = Command::kHeartbeat; return DecodeError::kNone;
      case v02::kDisconnect: out->command = Command::kDisconnect; return DecodeError::kNone;
      default: return DecodeError::kUnknownCommand;
    }
  }
  out->dialect = Dialect::kPlantd;
  if (cmd == kWordReady) {
    out->command = Command::kReady;
  } else if (cmd == kWordPartial) {
    out->command = Command::kPartial;
  } else if (cmd == kWordFinal) {
    out->command = Command::kFinal;
  } else if (cmd == kWordHeartbeat) {
    out->command = Command::kHeartbeat;
  } else if (cmd == kWordDisconnect) {
    out->command = Command::kDisconnect;
  } else {
    return DecodeError::kUnknownCommand;
  }
  return DecodeError::kNone;
}

DecodeError DecodeWorker01(std::string_view cmd, Decoded* out) {
  uint8_t b;
  if (!IsByte(cmd, &b)) return DecodeError::kUnknownCommand;
  switch (b) {
    case v01::kReady: out->command = Command::kReady; return DecodeError::kNone;
    case v01::kReply: out->command = Command::kFinal; return DecodeError::kNone;
    case v01::kHeartbeat: out->command = Command::kHeartbeat; return DecodeError::kNone;
    case v01::kDisconnect: out->command = Command::kDisconnect; return DecodeError::kNone;
    default: return DecodeError::kUnknownCommand;
  }
}

}  // namespace

const char* DecodeErrorName(DecodeError error) {
  switch (error) {
    case DecodeError::kNone: return "none";
    case DecodeError::kTooFewFrames: return "too_few_frames";
    case DecodeError::kUnknownHeader: return "unknown_header";
    case DecodeError::kUnknownCommand: return "unknown_command";
    case DecodeError::kEmptyService: return "empty_service";
  }
  return "unknown";
}

static bool IsHeader(std::string_view frame) {
  return frame == kClientHeader01 || frame == kClientHeader02 || frame == kWorkerHeader01 ||
         frame == kWorkerHeader02;
}

DecodeError Decode(const zmq::message_t* frames, size_t count, Decoded* out) {
  size_t i = 1;  // frames[0] is the routing id
  out->envelope_begin = out->envelope_end = 1;
  if (i < count && frames[i].size() != 0 && !IsHeader(View(frames[i]))) {
    // An envelope: address frames, an empty frame, then a client header.
    size_t j = i;
    while (j < count && j - i < kMaxEnvelopeFrames && frames[j].size() != 0) ++j;
    if (j + 1 >= count || frames[j].size() != 0) return DecodeError::kUnknownHeader;
    const std::string_view header = View(frames[j + 1]);
    if (header != kClientHeader01 && header != kClientHeader02) {
      return DecodeError::kUnknownHeader;
    }
    out->envelope_end = j;
    i = j;  // the empty frame, skipped below
  }
  // 7/MDP, the plantd dialect and majortomo start with an empty frame (REQ,
  // or a DEALER imitating one); 18/MDP does not. Tolerate it on input in
  // every dialect; a 0.2 worker that sends it is majortomo's and gets it back.
  bool leading_empty = false;
  if (i < count && frames[i].size() == 0) {
    leading_empty = true;
    ++i;
  }
  if (i >= count) return DecodeError::kTooFewFrames;
  const std::string_view header = View(frames[i++]);

  if (header == kClientHeader01) {
    // 7/MDP client: [service, body...]; no command frame.
    out->role = Role::kClient;
    out->dialect = Dialect::kMdp01;
    out->command = Command::kRequest;
    if (i >= count) return DecodeError::kTooFewFrames;
    out->service = i;
    out->body_begin = i + 1;
    return frames[i].size() == 0 ? DecodeError::kEmptyService : DecodeError::kNone;
  }

  if (header == kClientHeader02) {
    out->role = Role::kClient;
    if (i >= count) return DecodeError::kTooFewFrames;
    const std::string_view cmd = View(frames[i++]);
    uint8_t b;
    if (IsByte(cmd, &b) && b == v02::kClientRequest) {
      out->dialect = Dialect::kMdp02;
    } else if (IsByte(cmd, &b) && b == majortomo::kClientRequest) {
      // 0x02 is no 18/MDP client command, so this is unambiguous.
      out->dialect = Dialect::kMajortomo;
    } else if (cmd == kWordRequest) {
      out->dialect = Dialect::kPlantd;
    } else {
      return DecodeError::kUnknownCommand;
    }
    out->command = Command::kRequest;
    if (i >= count) return DecodeError::kTooFewFrames;
    out->service = i;
    out->body_begin = i + 1;
    return frames[i].size() == 0 ? DecodeError::kEmptyService : DecodeError::kNone;
  }

  DecodeError error;
  if (header == kWorkerHeader02) {
    out->dialect = Dialect::kMdp02;
    if (i >= count) return DecodeError::kTooFewFrames;
    error = DecodeWorker02(View(frames[i++]), out);
    if (leading_empty && out->dialect == Dialect::kMdp02) out->dialect = Dialect::kMajortomo;
  } else if (header == kWorkerHeader01) {
    out->dialect = Dialect::kMdp01;
    if (i >= count) return DecodeError::kTooFewFrames;
    error = DecodeWorker01(View(frames[i++]), out);
  } else {
    return DecodeError::kUnknownHeader;
  }
  if (error != DecodeError::kNone) return error;
  out->role = Role::kWorker;

  switch (out->command) {
    case Command::kReady:
      if (i >= count) return DecodeError::kTooFewFrames;
      out->service = i;
      out->credit = i + 1 < count ? i + 1 : 0;
      return frames[i].size() == 0 ? DecodeError::kEmptyService : DecodeError::kNone;
    case Command::kPartial:
    case Command::kFinal:
      // [address, "", body...]. plantd's workers may leave the empty frame
      // out; an empty frame right after the address is always the delimiter.
      if (i >= count) return DecodeError::kTooFewFrames;
      out->address = i++;
      if (i < count && frames[i].size() == 0) ++i;
      out->body_begin = i;
      return DecodeError::kNone;
    default: return DecodeError::kNone;
  }
}

Prefix ClientReplyPrefix(Dialect dialect, bool final) {
  switch (dialect) {
    case Dialect::kMdp01: return {{std::string_view(), kClientHeader01}, 2};
    case Dialect::kMdp02:
      return {{kClientHeader02, ByteFrame(final ? v02::kClientFinal : v02::kClientPartial)}, 2};
    case Dialect::kPlantd: return {{kClientHeader02, final ? kWordFinal : kWordPartial}, 2};
    case Dialect::kMajortomo:
      return {{std::string_view(), kClientHeader02,
               ByteFrame(final ? majortomo::kClientFinal : majortomo::kClientPartial)},
              3};
  }
  return {};
}

Prefix WorkerCommandPrefix(Dialect dialect, Command command) {
  if (dialect == Dialect::kMdp01) {
    uint8_t b = v01::kHeartbeat;
    if (command == Command::kRequest) b = v01::kRequest;
    if (command == Command::kDisconnect) b = v01::kDisconnect;
    return {{std::string_view(), kWorkerHeader01, ByteFrame(b)}, 3};
  }
  if (dialect == Dialect::kPlantd) {
    std::string_view word = kWordHeartbeat;
    if (command == Command::kRequest) word = kWordRequest;
    if (command == Command::kDisconnect) word = kWordDisconnect;
    return {{kWorkerHeader02, word}, 2};
  }
  uint8_t b = v02::kHeartbeat;
  if (command == Command::kRequest) b = v02::kRequest;
  if (command == Command::kDisconnect) b = v02::kDisconnect;
  if (dialect == Dialect::kMajortomo) {
    return {{std::string_view(), kWorkerHeader02, ByteFrame(b)}, 3};
  }
  return {{kWorkerHeader02, ByteFrame(b)}, 2};
}

}  // namespace plantd::mdp

// Majordomo codec: classifies a received message (frames after the ROUTER's
// routing id) into role, dialect and command without copying anything, and
// names the constant frames that start each outgoing command.
#pragma once

#include <array>
#include <cstddef>
#include <string_view>
#include <zmq.hpp>

#include "mdp/protocol.h"

namespace plantd::mdp {

inline std::string_view View(const zmq::message_t& frame) {
  return {static_cast<const char*>(frame.data()), frame.size()};
}

enum class DecodeError : uint8_t {
  kNone,
  kTooFewFrames,    // a command without the frames it needs
  kUnknownHeader,   // not MDPC01/MDPW01/MDPC02/MDPW02
  kUnknownCommand,  // a command byte or word this dialect does not have
  kEmptyService,    // REQUEST or READY naming the empty service
};
const char* DecodeErrorName(DecodeError error);

// Indices refer to the frames given to Decode: frames[0] is the routing id.
//
// A client request may start with an envelope: address frames ended by an
// empty frame, as ZeroMQ's REQ/ROUTER envelopes are. The broker returns it
// in front of the reply, which is how a client with many requests in flight
// on one socket (AsyncClient), or a ROUTER proxy in front of the broker,
// matches replies to requests. See docs/protocol.md, "Envelopes".
struct Decoded {
  Role role = Role::kClient;
  Dialect dialect = Dialect::kMdp02;
  Command command = Command::kRequest;
  size_t service = 0;         // REQUEST, READY: the service name frame
  size_t credit = 0;          // READY: the optional credit frame (docs/credit.md), 0 if none
  size_t address = 0;         // PARTIAL, FINAL: the client address frame
  size_t body_begin = 0;      // REQUEST, PARTIAL, FINAL: first body frame (may equal count)
  size_t envelope_begin = 1;  // client envelope frames: [envelope_begin, envelope_end)
  size_t envelope_end = 1;
};

// How many address frames an envelope may hold.
inline constexpr size_t kMaxEnvelopeFrames = 8;

DecodeError Decode(const zmq::message_t* frames, size_t count, Decoded* out);

// The constant frames that start a command sent to a peer of a dialect, before
// what is routed (service name or client address). Views of static storage.
struct Prefix {
  std::array<std::string_view, 3> frames;
  size_t count = 0;
};

// To a client: PARTIAL or FINAL. 0.1 clients take no PARTIAL: callers must
// not send one (ClientTakesPartials).
Prefix ClientReplyPrefix(Dialect dialect, bool final);
inline bool ClientTakesPartials(Dialect dialect) { return dialect != Dialect::kMdp01; }
// majortomo's client reads the body right after the command: no service frame.
inline bool ClientReplyNamesService(Dialect dialect) { return dialect != Dialect::kMajortomo; }
// The prefix starts with an empty frame (7/MDP, majortomo): a client's
// envelope then needs no delimiter of its own.
inline bool PrefixStartsEmpty(Dialect dialect) {
  return dialect == Dialect::kMdp01 || dialect == Dialect::kMajortomo;
}

// To a worker: REQUEST, HEARTBEAT or DISCONNECT.
Prefix WorkerCommandPrefix(Dialect dialect, Command command);

}  // namespace plantd::mdp

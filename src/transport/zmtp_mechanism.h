// The security mechanism of one ZMTP connection (RFC 23 and 37, "Security
// mechanisms"): the name it puts in the greeting, the commands it exchanges
// before traffic may flow, the metadata the peer announced, and how traffic
// frames travel afterwards.
//
// The connection (transport/zmtp_connection.h) owns one mechanism and knows
// nothing of any in particular: it hands over each whole handshake command
// and, when the mechanism wraps traffic, every traffic frame (a MESSAGE);
// it asks the mechanism to wrap each outgoing frame. NULL (zmtp_null_mechanism.h) sends
// frames as they are; CURVE (RFC 26) boxes each one.
//
// A mechanism plays the server side here: the broker binds, peers connect.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "transport/zmtp_framing.h"

namespace plantd::transport {

class ZmtpMechanism {
 public:
  virtual ~ZmtpMechanism() = default;

  // What the greeting says, and what the peer's greeting must say: the name
  // ("NULL", "CURVE"), and our as-server flag.
  virtual std::string_view name() const = 0;
  virtual bool as_server() const = 0;
  // Whether a peer's as-server flag is acceptable (RFC 26: a CURVE server's
  // peer must be a client). NULL has no roles and accepts either.
  virtual bool AcceptsPeerRole(bool peer_as_server) const = 0;

  // Appends the commands we send right after our greeting, without waiting
  // for the peer (NULL: our READY). Whole frames, ready for the wire.
  virtual void Start(std::string& out) = 0;

  enum class Step {
    kContinue,  // more handshake commands are expected
    kReady,     // the handshake is complete: peer() is valid, traffic may flow
    kRefused,   // the handshake failed: close the connection (refusal() says why)
    kDenied,    // the peer proved who it is (user_id()) and is not let in: close
  };
  // Handles one whole command frame body received before traffic. Replies
  // (whole frames, e.g. WELCOME, READY, or ERROR before a refusal) are
  // appended to `out`.
  virtual Step OnHandshakeCommand(std::string_view body, std::string& out) = 0;
  // Why the handshake or a MESSAGE was refused, for the log and the
  // refusal counter; valid after kRefused or a false from UnwrapMessage.
  // Points at a static, NUL-terminated string.
  virtual std::string_view refusal() const = 0;

  // The peer's metadata (Socket-Type, Identity) once the handshake is done;
  // the views stay valid for the life of the mechanism.
  virtual const zmtp::PeerMetadata& peer() const = 0;
  // Who the peer proved to be: the client's long-term public key (32 bytes)
  // for CURVE (from the moment it is proven, so also after kDenied), empty
  // for NULL. Access control decides on it.
  virtual std::string_view user_id() const { return {}; }

  // After the handshake: false when frames travel as they are (NULL). When
  // true, each traffic frame travels inside a MESSAGE, and the two calls
  // below are used instead of plain framing. A MESSAGE is a frame of its
  // own whose outer flags say nothing (libzmq sets neither MORE nor
  // COMMAND on it): MORE and COMMAND travel inside the box.
  virtual bool wraps_traffic() const { return false; }
  // The size of a MESSAGE's body for a frame body of `size` bytes (the
  // box's fixed overhead added).
  virtual size_t WrappedSize(size_t size) const { return size; }
  // Appends one frame (`body`, with MORE when `more`; a command frame when
  // `command`, as PING and PONG are) as a whole MESSAGE frame.
  virtual void WrapFrame(std::string_view body, bool more, bool command, std::string& out) {
    zmtp::AppendFrame(out, body, more, command);
  }
  // Opens one MESSAGE body: writes the frame body to `out` (room for
  // at least `command.size()` bytes), its length to `*size` and its frame
  // flags (zmtp::kFlagMore, zmtp::kFlagCommand) to `*flags`. False on any
  // bad box or nonce out of order: the connection is then closed.
  virtual bool UnwrapMessage(std::string_view command, uint8_t* out, size_t* size, uint8_t* flags) {
    (void)command;
    (void)out;
    (void)size;
    (void)flags;
    return false;
  }
};

}  // namespace plantd::transport

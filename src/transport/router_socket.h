// What the broker core sends and receives through: a ROUTER socket's
// semantics (every message starts with the peer's routing id), behind one
// interface with two implementations:
//
//   ZmqRouter   libzmq's ROUTER; its I/O thread moves the bytes.
//   ZmtpRouter  ZMTP 3.1 spoken by the core thread itself over epoll, with no
//               hand-off between threads (see docs/transport.md for why).
//
// Frames are zmq_msg_t in both, so the core's request bookkeeping is the same.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <zmq.hpp>

#include "common/status.h"

namespace plantd::transport {

struct RouterOptions {
  int send_hwm = 100000;  // per peer, in messages; 0 is no limit
  int recv_hwm = 100000;  // per peer, in messages (libzmq only)
  // A larger message is skipped as it streams in and reported through
  // `on_oversized` with its sender's routing id (native); libzmq disconnects
  // a peer whose single frame is larger.
  size_t max_message_size = 16u << 20;
  std::function<void(std::string_view routing_id)> on_oversized;
};

// What only the native socket offers: another ZMTP role, and events about
// its peers (see ZmtpRouter).
struct ZmtpOptions {
  std::string socket_type = "ROUTER";  // announced in READY
  std::vector<std::string> peer_types = {"DEALER", "REQ", "ROUTER"};  // RFC 28
  // A peer finished its handshake (true) or went away (false).
  std::function<void(std::string_view routing_id, bool connected, std::string_view remote)>
      on_peer;
  // ZMTP 3.1 SUBSCRIBE (true) and CANCEL (false) commands. ZMTP 3.0 peers
  // send them as messages whose first byte is 1 or 0; those arrive through
  // Receive() like any other message.
  std::function<void(std::string_view routing_id, bool subscribe, std::string_view topic)>
      on_subscription;
};

class RouterSocket {
 public:
  virtual ~RouterSocket() = default;

  // Binds one endpoint ("tcp://*:7200", "tcp://127.0.0.1:7200", "ipc:///path").
  virtual Status Bind(const std::string& address) = 0;

  // Writes pending output, then waits up to `timeout` for input.
  virtual void Wait(std::chrono::milliseconds timeout) = 0;

  // Like zmq_msg_recv without blocking: the next frame of the next message,
  // the routing id first; false when nothing is waiting. Messages arrive
  // whole: once the first frame came, the rest are there.
  virtual bool Receive(zmq_msg_t* msg, bool* more) = 0;

  // Like zmq_msg_send without blocking; takes `msg` when it returns true.
  // The first frame of a message is the routing id: it fails with errno
  // EHOSTUNREACH for an unknown peer, EAGAIN for a peer at its high-water
  // mark, and then nothing of the message is queued.
  virtual bool Send(zmq_msg_t* msg, bool more) = 0;

  // Gives queued output up to `linger` to leave, then closes everything.
  virtual void Close(std::chrono::milliseconds linger) = 0;

  // What an operator wants to see of the connections; the native socket
  // knows, libzmq's ROUTER does not say (connections is then -1).
  struct Stats {
    int64_t connections = -1;  // peers past the handshake
    uint64_t refused = 0;      // connections closed for a bad greeting or handshake
  };
  virtual Stats stats() const { return {}; }
};

enum class RouterKind { kNative, kZmq };

std::unique_ptr<RouterSocket> MakeRouterSocket(RouterKind kind, zmq::context_t& context,
                                               const RouterOptions& options);

}  // namespace plantd::transport

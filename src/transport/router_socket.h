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
#include "transport/buffer_budget.h"

namespace plantd::transport {

class ServerSecurity;

struct RouterOptions {
  int send_hwm = 100000;  // per peer, in messages; 0 is no limit
  // The same in bytes of output queued for one peer (native): Send() fails
  // with EAGAIN past it, as at send_hwm. 0 is no limit.
  size_t send_hwm_bytes = 0;
  int recv_hwm = 100000;  // per peer, in messages (libzmq only)
  // Per message (native): more body bytes than max_message_size, or more
  // frames than max_message_frames, and the message is skipped as it
  // streams in (never buffered whole), refused (message_too_large,
  // too_many_frames) and reported through `on_oversized` or
  // `on_too_many_frames` with its sender's routing id; the connection stays.
  // libzmq disconnects a peer whose single frame is larger than
  // max_message_size and has no frame limit (the core counts those).
  size_t max_message_size = 16u << 20;
  size_t max_message_frames = 256;  // 0: max_message_size / kFrameCost
  std::function<void(std::string_view routing_id)> on_oversized;
  // When not set, too many frames are reported through `on_oversized`.
  std::function<void(std::string_view routing_id)> on_too_many_frames;
  // Output queued for one peer (native). Past max_out_bytes, or when queued
  // output has made no progress for write_timeout, the connection is closed
  // (refusal slow_consumer). LimitsOptions::max_connection_out_bytes and
  // write_timeout in config/options.h.
  size_t max_out_bytes = 64u << 20;
  std::chrono::milliseconds write_timeout{10000};
  // A connection that has not finished the ZMTP handshake by then is closed
  // (native; refusal handshake_timeout).
  std::chrono::milliseconds handshake_timeout{5000};
  // What a connecting peer must prove (native): NULL when null or NULL'd;
  // with CURVE, each new connection gets a CURVE server mechanism, and
  // connections whose key leaves the authorized set (ServerSecurity::Reload)
  // are closed (key_revoked). Shared by every socket of the process.
  std::shared_ptr<const ServerSecurity> security;
  // Shared by every native socket of the process: bytes buffered by all of
  // them and open connections (transport/buffer_budget.h). When null, the
  // socket makes its own with the default limits.
  std::shared_ptr<BufferBudget> budget;
};

// What only the native socket offers: another ZMTP role, and events about
// its peers (see ZmtpRouter).
struct ZmtpOptions {
  std::string socket_type = "ROUTER";                                 // announced in READY
  std::vector<std::string> peer_types = {"DEALER", "REQ", "ROUTER"};  // RFC 28
  // A peer finished its handshake (true) or went away (false).
  std::function<void(std::string_view routing_id, bool connected, std::string_view remote)> on_peer;
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

  // Writes pending output, then waits up to `timeout` for input (or for the
  // wake fd, below).
  virtual void Wait(std::chrono::milliseconds timeout) = 0;

  // Wait() also returns when `fd` is readable (level-triggered; the caller
  // reads it). One fd at most; -1 removes it. The broker core wakes this way
  // for the request store's completions.
  virtual void SetWakeFd(int fd) = 0;

  // Like zmq_msg_recv without blocking: the next frame of the next message,
  // the routing id first; false when nothing is waiting. Messages arrive
  // whole: once the first frame came, the rest are there.
  virtual bool Receive(zmq_msg_t* msg, bool* more) = 0;

  // Like zmq_msg_send without blocking; takes `msg` when it returns true.
  // The first frame of a message is the routing id: it fails with errno
  // EHOSTUNREACH for an unknown peer, EAGAIN for a peer at its high-water
  // mark, and then nothing of the message is queued.
  virtual bool Send(zmq_msg_t* msg, bool more) = 0;

  // Appends the routing ids of peers whose connection closed since the last
  // call. The native socket knows at once; libzmq's ROUTER does not say, so
  // there heartbeats find dead peers and this appends nothing.
  virtual void TakeDisconnected(std::vector<std::string>* routing_ids) { (void)routing_ids; }

  // The address of the peer holding `routing_id`, as the native socket
  // prints it ("127.0.0.1:5000", "[::1]:5000", "ipc"); empty when the peer is
  // unknown, or not known to the socket (libzmq's ROUTER does not say). The
  // admin service takes commands only from local peers (broker/admin.h).
  virtual std::string RemoteAddress(std::string_view routing_id) const {
    (void)routing_id;
    return {};
  }

  // The name of the authenticated peer holding `routing_id`: its CURVE
  // key's name (ServerSecurity::KeyName), what access rules and /status
  // call it. Empty with NULL, or for an unknown peer. libzmq's ROUTER tells
  // it only for the sender of the message Receive() returned last (its ZAP
  // User-Id), which is when the core asks. Valid until the next Receive or
  // Wait.
  virtual std::string_view PeerName(std::string_view routing_id) const {
    (void)routing_id;
    return {};
  }

  // Gives queued output up to `linger` to leave, then closes everything.
  virtual void Close(std::chrono::milliseconds linger) = 0;

  // What an operator wants to see of the connections; the native socket
  // knows, libzmq's ROUTER does not say (connections is then -1).
  struct Stats {
    int64_t connections = -1;  // peers past the handshake
    uint64_t refused = 0;      // connections closed for a bad greeting or handshake
    // Of the process's buffer budget (transport/buffer_budget.h), which
    // every native socket shares; -1 where not known (libzmq).
    int64_t buffered_bytes = -1;
    int64_t shared_input_bytes = -1;
    uint64_t frames_copied_past_limit = 0;
    uint64_t announce_declined = 0;
  };
  virtual Stats stats() const { return {}; }
};

enum class RouterKind { kNative, kZmq };

std::unique_ptr<RouterSocket> MakeRouterSocket(RouterKind kind, zmq::context_t& context,
                                               const RouterOptions& options);

// Makes a socket from the options its owner chose. The broker core takes
// one so that unit tests can hand it an in-memory transport; null means
// MakeRouterSocket.
using RouterFactory = std::function<std::unique_ptr<RouterSocket>(const RouterOptions&)>;

}  // namespace plantd::transport

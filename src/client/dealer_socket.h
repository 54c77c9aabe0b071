// The DEALER socket under libplantd's Client, AsyncClient and Worker, on
// either engine (plantd::mdp::Engine): libplantd's own ZMTP engine
// (client/native_connection.h, one connection per endpoint, round-robin as
// a libzmq DEALER) or a libzmq socket.
//
// Either way the owner polls it with zmq_poll, which takes libzmq sockets
// and plain descriptors alike, so one wait can cover several DealerSockets
// and other libzmq sockets:
//
//   std::vector<zmq_pollitem_t> items;
//   size_t mine = socket.AddPollItems(&items);
//   zmq_poll(items.data(), items.size(), socket.BoundWait(timeout));
//   socket.HandlePollItems(&items[mine]);
//   while (socket.Recv(&frames)) ...
//
// Single-threaded.
#pragma once

#include <zmq.h>

#include <chrono>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>
#include <zmq.hpp>

#include "client/native_connection.h"
#include "plantd/curve.h"
#include "plantd/mdp/client.h"
#include "plantd/status.h"

namespace plantd::client {

struct DealerOptions {
  mdp::Engine engine = mdp::Engine::kAuto;
  CurveOptions curve;
  // No limit on queued messages (libzmq's high-water marks at 0): for a
  // client that keeps many requests in flight and bounds them itself.
  bool unbounded_queues = false;
  // Track whether a broker has completed the handshake (connected()) and
  // why one refused it (handshake_failure()). libzmq needs a monitor
  // socket for it; the native engine knows anyway.
  bool watch_handshake = false;
  // false: the native engine does not connect again by itself; closed()
  // tells the owner to start afresh (libzmq always reconnects).
  bool reconnect = true;
};

class DealerSocket {
 public:
  // Connects to every endpoint. kInvalidArgument names a malformed
  // endpoint or key; kUnavailable when out of sockets or descriptors. An
  // unreachable broker is no error: the socket keeps trying.
  static Result<std::unique_ptr<DealerSocket>> Open(zmq::context_t& context,
                                                    const std::vector<std::string>& endpoints,
                                                    const DealerOptions& options);
  ~DealerSocket();
  DealerSocket(const DealerSocket&) = delete;
  DealerSocket& operator=(const DealerSocket&) = delete;

  mdp::Engine engine() const {
    return native_.empty() ? mdp::Engine::kLibzmq : mdp::Engine::kNative;
  }

  // Sends `head` then `body` as one message, to the next endpoint in turn.
  // False when it cannot be queued (a full queue; with `dontwait`, libzmq's
  // EAGAIN as well).
  bool Send(std::initializer_list<std::string_view> head, const std::vector<std::string>& body,
            bool dontwait = false);
  // Moves the next whole message into `*out`, without waiting; false when
  // none is there.
  bool Recv(std::vector<std::string>* out);
  // A whole message has arrived and waits for Recv (native engine; libzmq
  // keeps its own count, and this says false).
  bool has_message() const;

  // Holds the native engine's writes until Uncork, so that a burst of
  // sends goes out in one write (libzmq batches by itself).
  void Cork();
  void Uncork();

  // Appends what to poll for this socket; returns where its items start.
  size_t AddPollItems(std::vector<zmq_pollitem_t>* items) const;
  // Does the I/O the poll found possible (and timers that are due), given
  // this socket's own items as filled in by zmq_poll.
  void HandlePollItems(const zmq_pollitem_t* items);
  // `wait` shortened so that a poll wakes for this socket's timers, and to
  // zero when a message is already waiting.
  std::chrono::milliseconds BoundWait(std::chrono::milliseconds wait) const;
  // Polls this socket alone until a message can be taken or `timeout`
  // passes; false on timeout (or an interrupting signal).
  bool WaitReadable(std::chrono::milliseconds timeout);

  // With watch_handshake: a broker has completed the handshake and its
  // connection is up.
  bool connected();
  // Why the last handshake was refused (a CURVE key, an ERROR), until one
  // succeeds.
  Status handshake_failure() const { return handshake_failure_; }
  // Without `reconnect`: every connection has failed or been lost.
  bool closed() const;
  // Connections the native engine has made (handshake done); 0 for libzmq.
  uint64_t connections() const;
  // Polls until connected() or `timeout` passes; false on timeout.
  bool WaitConnected(std::chrono::milliseconds timeout);

 private:
  DealerSocket() = default;
  Status OpenLibzmq(zmq::context_t& context, const std::vector<std::string>& endpoints,
                    const DealerOptions& options);
  void ReadMonitorEvents();

  // libzmq engine.
  std::unique_ptr<zmq::socket_t> socket_;
  std::unique_ptr<zmq::socket_t> monitor_;
  bool zmq_connected_ = false;
  // Native engine: one connection per endpoint; sends go round-robin over
  // those that are up (to the first when none is).
  std::vector<std::unique_ptr<NativeConnection>> native_;
  size_t next_ = 0;

  Status handshake_failure_;
};

}  // namespace plantd::client

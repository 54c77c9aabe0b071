// A ROUTER socket that speaks ZMTP 3.1 (NULL mechanism) itself, on the
// thread that calls it, over non-blocking sockets and epoll.
//
// With libzmq every message crosses from its I/O thread to the core thread
// and back, each crossing a queue and often a wake-up; on a small machine
// those crossings cost more than the broker's own work. Here the core reads
// a batch from each ready connection, routes it, and writes each peer's
// replies with one send() when it next waits.
//
// Peers are ordinary libzmq sockets (DEALER, REQ, ROUTER) on tcp:// or ipc://.
// With ZmtpOptions it plays another role: the buses use it as an XPUB, so
// that each subscriber's queue, and each message it loses, is visible.
// As with libzmq's ROUTER: peers get a 5-byte routing id unless they set one
// (ZMQ_ROUTING_ID); a peer reconnecting with an id in use takes it over;
// sending to an unknown peer fails with EHOSTUNREACH, to a peer with
// send_hwm messages not yet written with EAGAIN. Unlike libzmq, a message larger than
// max_message_size is skipped and reported, and its sender stays connected.
// Not provided: CURVE/PLAIN security,
// ZMTP 1.0/2.0 peers (libzmq older than 4.0), tcp:// on interface names.
#pragma once

#include <sys/epoll.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "common/string_map.h"
#include "transport/router_socket.h"

namespace plantd::transport {

class ZmtpRouter final : public RouterSocket {
 public:
  explicit ZmtpRouter(const RouterOptions& options, ZmtpOptions zmtp = {});
  ~ZmtpRouter() override;
  ZmtpRouter(const ZmtpRouter&) = delete;
  ZmtpRouter& operator=(const ZmtpRouter&) = delete;

  Status Bind(const std::string& address) override;
  void Wait(std::chrono::milliseconds timeout) override;
  bool Receive(zmq_msg_t* msg, bool* more) override;
  bool Send(zmq_msg_t* msg, bool more) override;
  void Close(std::chrono::milliseconds linger) override;

  // Connected peers that finished the handshake (for tests and status).
  size_t peer_count() const { return by_id_.size(); }
  Stats stats() const override {
    return {.connections = static_cast<int64_t>(by_id_.size()), .refused = refused_};
  }

  // True when a message to `routing_id` would be queued now (the peer is
  // known and below its high-water mark).
  bool CanSend(std::string_view routing_id) const;
  // Writes pending output now instead of at the next Wait().
  void Flush() { FlushAll(); }
  // Readable when Wait() has something to do: for an outer poll loop.
  int fd() const { return epoll_fd_; }

 private:
  struct Pollable;
  struct Listener;
  struct Peer;

  void Accept(Listener* listener);
  void ReadFrom(Peer* peer);
  bool WriteTo(Peer* peer);  // false when the peer was closed
  void FlushAll();
  // Consumes handshake and command frames at the head of the peer's input;
  // true when a whole message is next.
  bool NextMessageReady(Peer* peer);
  bool SkipOversized(Peer* peer);
  bool Handshake(Peer* peer);
  bool HandleCommand(Peer* peer, const uint8_t* body, size_t size);
  void AssignRoutingId(Peer* peer, std::string_view requested);
  void ClosePeer(Peer* peer, const char* why);
  void SetWantWrite(Peer* peer, bool want);

  const RouterOptions options_;
  const ZmtpOptions zmtp_;
  int epoll_fd_ = -1;
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::vector<std::unique_ptr<Peer>> peers_;    // every open connection
  std::vector<std::unique_ptr<Peer>> closed_;   // freed at the next Wait()
  StringMap<Peer*> by_id_;                       // routing id -> peer
  std::deque<Peer*> readable_;                   // may hold a whole message
  std::vector<Peer*> to_flush_;                  // output waiting for send()
  Peer* receiving_ = nullptr;  // the peer whose message Receive() is handing out
  bool receiving_started_ = false;  // its routing id went out already
  Peer* sending_ = nullptr;    // the peer of the message Send() is building
  bool sending_started_ = false;
  uint32_t next_id_;
  uint64_t refused_ = 0;  // handshakes that failed
  std::chrono::steady_clock::time_point accept_paused_until_{};
  std::vector<epoll_event> events_;
};

}  // namespace plantd::transport

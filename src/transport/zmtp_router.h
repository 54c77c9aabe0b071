// A ROUTER socket that speaks ZMTP 3.1 itself, on the
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
// (ZMQ_ROUTING_ID); sending to an unknown peer fails with EHOSTUNREACH, to a
// peer with send_hwm messages (or send_hwm_bytes) not yet written with EAGAIN.
//
// Unlike libzmq, nothing a peer does can make it grow without bound:
//  - a routing id belongs to one live connection: a second connection
//    announcing it is refused (no handover); generated ids are random, start
//    with a zero byte, and a peer may not choose one that does;
//  - a message over max_message_size or max_message_frames is skipped as it
//    arrives, and its sender stays connected (with CURVE, where a frame is
//    opened whole, one frame over max_message_size closes the connection);
//  - output to a peer past max_out_bytes, or stuck for write_timeout, closes
//    that connection; a PING is answered by at most one unsent PONG;
//  - a connection must finish its handshake within handshake_timeout;
//  - connections and buffered bytes are counted in a BufferBudget shared by
//    every native socket of the process: past its byte limit reading pauses
//    everywhere, past its connection limits the oldest connection still in
//    its handshake goes first, else the new one is refused.
// Every refusal goes through refusal::Record (counted and logged).
//
// Each connection is a ZmtpConnection (greeting, security mechanism,
// framing, buffers); this class holds what spans connections: listening,
// routing ids, the epoll loop, the shared budget, timeouts.
// Not provided: ZMTP 1.0/2.0 peers (libzmq older than 4.0), tcp:// on
// interface names.
#pragma once

#include <sys/epoll.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "common/string_map.h"
#include "transport/close_reason.h"
#include "transport/router_socket.h"
#include "transport/zmtp_connection.h"

namespace plantd::transport {

class ZmtpRouter final : public RouterSocket, private ZmtpConnection::Host {
 public:
  explicit ZmtpRouter(const RouterOptions& options, ZmtpOptions zmtp = {});
  ~ZmtpRouter() override;
  ZmtpRouter(const ZmtpRouter&) = delete;
  ZmtpRouter& operator=(const ZmtpRouter&) = delete;

  Status Bind(const std::string& address) override;
  void Wait(std::chrono::milliseconds timeout) override;
  void SetWakeFd(int fd) override;
  bool Receive(zmq_msg_t* msg, bool* more) override;
  bool Send(zmq_msg_t* msg, bool more) override;
  void TakeDisconnected(std::vector<std::string>* routing_ids) override;
  std::string RemoteAddress(std::string_view routing_id) const override;
  std::string_view PeerName(std::string_view routing_id) const override;
  void Close(std::chrono::milliseconds linger) override;

  // Connected peers that finished the handshake (for tests and status).
  size_t peer_count() const { return by_id_.size(); }
  // Bytes this socket holds in its buffers (input and output).
  int64_t buffered_bytes() const { return context_.buffered; }
  Stats stats() const override {
    return {.connections = static_cast<int64_t>(by_id_.size()),
            .refused = refused_,
            .buffered_bytes = budget_->bytes(),
            .shared_input_bytes = budget_->shared_bytes(),
            .frames_copied_past_limit = budget_->frames_copied_past_limit(),
            .announce_declined = budget_->announce_declined()};
  }

  // Queues one whole message of `count` frames (at least one) for
  // `routing_id`, copying their bytes once into the peer's output: for a
  // caller that sends one message to many peers (a bus) and holds its
  // frames itself. Fails as Send() does (EHOSTUNREACH, EAGAIN), and with
  // EINVAL in the middle of a Send() message.
  bool SendMessage(std::string_view routing_id, const std::string_view* frames, size_t count);
  // The same from messages the caller keeps: frames of
  // ZmtpConnection::kShareFrom bytes and more are queued as references
  // (zmq_msg_copy), not copied, so every peer's output shares one body.
  bool SendMessage(std::string_view routing_id, zmq::message_t* frames, size_t count);

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
  using Clock = std::chrono::steady_clock;

  void Accept(Listener* listener);
  // Counts a new connection in the budget, evicting the oldest connection
  // still in its handshake when a limit is reached; false when refused.
  bool Admit(const std::string& address, const std::string& remote);
  bool EvictOldestHandshake(std::string_view address, const char* why);
  void ReadFrom(Peer* peer, bool hangup = false);
  bool WriteTo(Peer* peer);  // false when the peer was closed
  void LogBudgetFallbacks();
  // The peer a new message to `routing_id` may be queued for, or null with
  // errno EHOSTUNREACH (unknown, or just closed as a slow consumer) or
  // EAGAIN (at its high-water mark).
  Peer* PeerToSendTo(std::string_view routing_id);
  void QueuedWholeMessage(Peer* peer);  // it goes out at the next flush
  void FlushAll();
  bool AssignRoutingId(Peer* peer, std::string_view requested);
  std::string GenerateRoutingId();
  // ZmtpConnection::Host.
  bool OnHandshakeDone(ZmtpConnection* connection, std::string_view identity) override;
  void OnOutputQueued(ZmtpConnection* connection) override;
  void CloseConnection(ZmtpConnection* connection, CloseReason reason, const char* why) override;
  // Every close of an accepted connection goes through here: counted and
  // logged at debug with its reason (transport/close_reason.h).
  void ClosePeer(Peer* peer, CloseReason reason, const char* why);
  void CloseSlowConsumer(Peer* peer, CloseReason reason, const char* why);
  void UpdateInterest(Peer* peer);
  void SetWantWrite(Peer* peer, bool want);
  // Back-pressure from the shared budget, and the periodic checks.
  void UpdateBudget();
  void Sweep();
  void ReclaimUnfinishedInput();
  void CloseRevokedKeys();
  void LinkHandshake(Peer* peer);
  void UnlinkHandshake(Peer* peer);

  const RouterOptions options_;
  const ZmtpOptions zmtp_;
  std::shared_ptr<BufferBudget> budget_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;  // in the epoll set with a null data.ptr
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::vector<std::unique_ptr<Peer>> peers_;   // every open connection
  std::vector<std::unique_ptr<Peer>> closed_;  // freed at the next Wait()
  StringMap<Peer*> by_id_;                     // routing id -> peer
  std::deque<Peer*> readable_;                 // may hold a whole message
  std::vector<Peer*> to_flush_;                // output waiting for send()
  std::vector<std::string> disconnected_;      // for TakeDisconnected()
  // Connections still in their handshake, oldest first (intrusive list).
  Peer* handshake_head_ = nullptr;
  Peer* handshake_tail_ = nullptr;
  Peer* receiving_ = nullptr;       // the peer whose message Receive() is handing out
  bool receiving_started_ = false;  // its routing id went out already
  Peer* sending_ = nullptr;         // the peer of the message Send() is building
  bool sending_started_ = false;
  uint64_t refused_ = 0;  // handshakes that failed
  // What the connections share: the options, the bytes held in all their
  // buffers, and the time as of the start of this turn of Wait().
  ZmtpConnection::Context context_;
  int64_t reported_ = 0;  // how much of context_.buffered the budget knows
  // The budget's fallback counts (LogBudgetFallbacks) when this socket last
  // logged them, and when.
  uint64_t copied_logged_ = 0;
  uint64_t declined_logged_ = 0;
  Clock::time_point fallbacks_logged_at_{};
  bool input_paused_ = false;         // the budget is exhausted: no peer is read
  Clock::time_point paused_since_{};  // or since the last eviction for it
  uint64_t security_generation_ = 0;  // of the authorized keys last checked
  Clock::time_point next_sweep_{};
  Clock::time_point next_write_sweep_{};
  Clock::time_point accept_paused_until_{};
  Clock::time_point accept_warned_{};
  uint8_t random_pool_[64];
  size_t random_left_ = 0;
  std::vector<epoll_event> events_;
};

}  // namespace plantd::transport

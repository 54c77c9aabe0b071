// One accepted ZMTP 3.1 connection on a native socket: the greeting, the
// security mechanism's handshake (transport/zmtp_mechanism.h), framing,
// commands (PING/PONG, SUBSCRIBE/CANCEL), the per-message limits, and the
// input and output buffers with their accounting.
//
// What concerns more than one connection stays with the socket that owns it
// (transport/zmtp_router.h): listening and accepting, routing ids and which
// connection holds one, the epoll set, the shared buffer budget, timeouts,
// and the bookkeeping of closing. The connection reaches its owner through
// Host; every close goes through Host::Close.
//
// Single-threaded: the owner's thread calls everything.
#pragma once

#include <zmq.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <zmq.hpp>

#include "common/ring_buffer.h"
#include "transport/buffer_budget.h"
#include "transport/close_reason.h"
#include "transport/input_buffer.h"
#include "transport/router_socket.h"
#include "transport/zmtp_mechanism.h"

namespace plantd::transport {

class ZmtpConnection {
 public:
  using Clock = std::chrono::steady_clock;

  // What every connection of one socket shares with it.
  struct Context {
    const RouterOptions* options = nullptr;
    const ZmtpOptions* zmtp = nullptr;
    int64_t buffered = 0;     // bytes held in all its connections' buffers
    Clock::time_point now{};  // as of the start of the socket's current turn
    // Where frames shared out of receive buffers are counted and limited
    // (transport/input_buffer.h); without one, every frame is copied.
    std::shared_ptr<BufferBudget> budget;
  };

  // What a connection asks of the socket that owns it.
  class Host {
   public:
    // The handshake is done and the peer asked for `identity` (empty when it
    // did not): the owner gives the connection its routing id. False when
    // the owner refused it and closed the connection.
    virtual bool OnHandshakeDone(ZmtpConnection* connection, std::string_view identity) = 0;
    // Output was queued by the connection itself (handshake replies, a
    // PONG): the owner writes it at its next flush.
    virtual void OnOutputQueued(ZmtpConnection* connection) = 0;
    // Closes the connection: the owner forgets it, then calls Shutdown().
    virtual void CloseConnection(ZmtpConnection* connection, CloseReason reason,
                                 const char* why) = 0;

   protected:
    ~Host() = default;
  };

  enum class Stage { kGreeting, kHandshake, kTraffic };

  // Takes ownership of `fd` (connected, non-blocking) and `mechanism`.
  ZmtpConnection(int fd, std::string remote, std::string address, Context* context, Host* host,
                 std::unique_ptr<ZmtpMechanism> mechanism);
  ~ZmtpConnection();
  ZmtpConnection(const ZmtpConnection&) = delete;
  ZmtpConnection& operator=(const ZmtpConnection&) = delete;

  // Queues our greeting and the mechanism's first commands.
  void Start();

  // Reads up to `budget` bytes; false when the stream ended or failed (the
  // owner stops polling it; what arrived whole is still handed out).
  bool ReadSome(size_t budget);
  // Back-pressure, as libzmq's receive high-water mark: true while a whole
  // message waits and too much input is buffered behind it.
  bool ShouldPauseReading();

  // Answers the handshake and commands at the head of the input; true when
  // a whole message is next. May close the connection (through the host).
  bool Advance();
  // Hands out the next frame of the message Advance() found, as a
  // zmq_msg_t; false in `*more` ends the message. A frame of kShareFrom
  // bytes or more refers to the receive buffer instead of being copied
  // (InputBuffer::Share), while the budget allows it.
  void TakeFrame(zmq_msg_t* msg, bool* more);

  // Queues one frame of an outgoing data message, copying it; a frame
  // without `more` ends the message.
  void QueueFrame(const void* data, size_t size, bool more);
  // The same from a message, which it takes (`msg` is left empty). Bodies
  // of kShareFrom bytes and more are not copied when traffic goes in clear:
  // the connection keeps the message and writes the body from where it is
  // (scatter-gather), so a frame received on one connection and sent on
  // another is never copied by the broker.
  void QueueFrame(zmq_msg_t* msg, bool more);

  // Frames from this size on travel by reference (both directions); smaller
  // ones are copied, which costs less than a reference and pins nothing.
  static constexpr size_t kShareFrom = 2048;
  // Queues an ERROR command and tries to write it at once: the last thing a
  // refused peer hears (RFC 37). Boxed once the mechanism has sent its
  // READY (CURVE), since the peer then opens every frame as a MESSAGE.
  void SendError(std::string_view reason);

  enum class WriteResult { kDone, kWouldBlock, kPeerReset, kFailed };
  // Writes queued output until done or the socket is full.
  WriteResult Write();

  // Closes the descriptor and frees the buffers (their bytes leave the
  // tally). Called by the owner once it has forgotten the connection.
  void Shutdown();

  int fd() const { return fd_; }
  Stage stage() const { return stage_; }
  bool ready() const { return stage_ == Stage::kTraffic; }
  const std::string& id() const { return id_; }
  void set_id(std::string id) { id_ = std::move(id); }
  const std::string& remote() const { return remote_; }
  // The per-address limit's key: an IPv4 address, an IPv6 /64, or empty.
  const std::string& address() const { return address_; }
  // The address for refusal counters: the limit key, or the remote address.
  const std::string& refusal_key() const { return address_.empty() ? remote_ : address_; }
  Clock::time_point accepted_at() const { return accepted_at_; }
  bool eof() const { return eof_; }
  bool closed() const { return closed_; }
  void mark_closed() { closed_ = true; }
  bool message_ready() const { return message_ready_; }
  bool has_input() const { return !in_.empty() || !wire_.empty(); }
  // Input that is not yet a whole message.
  size_t unfinished_input() const { return message_ready_ ? 0 : in_.size() + wire_.size(); }
  size_t pending_out() const { return static_cast<size_t>(out_queued_ - out_written_); }
  size_t queued_messages() const { return message_ends_.size(); }
  Clock::time_point out_progress() const { return out_progress_; }
  // Who the peer proved to be (CURVE: its public key; NULL: empty).
  std::string_view user_id() const { return mechanism_->user_id(); }

 private:
  bool Handshake();
  void RefuseHandshake(const char* why);
  bool HandleCommand(const uint8_t* data, size_t size);
  bool SkipOversized();
  // With a mechanism that wraps traffic: opens every whole MESSAGE
  // at the head of wire_ into plain frames at the end of in_.
  bool UnwrapArrived();
  // The buffer reads go to: in_ itself, or wire_ when traffic is wrapped.
  InputBuffer& wire() { return wraps_ ? wire_ : in_; }
  void AppendCommand(std::string_view body);
  void QueuedOutput(size_t bytes);
  uint64_t sent_position() const { return out_written_; }
  WriteResult WriteGathered();
  // Marks `n` more bytes of the stream written: out_ and the attached bodies
  // in stream order.
  void AdvanceWritten(size_t n);
  void CompactOutput();

  int fd_;
  const std::string remote_;
  const std::string address_;
  Context* const context_;
  Host* const host_;
  const std::unique_ptr<ZmtpMechanism> mechanism_;
  const bool wraps_;  // the mechanism boxes traffic (CURVE)
  const Clock::time_point accepted_at_;
  Stage stage_ = Stage::kGreeting;
  bool mechanism_ready_ = false;  // the mechanism's handshake is complete
  std::string id_;
  bool eof_ = false;
  bool closed_ = false;

  InputBuffer in_;    // plain frames: the handshake and traffic (NULL)
  InputBuffer wire_;  // bytes as received, when traffic is wrapped
  // Where the scan for a whole message stopped, so a large message arriving
  // in pieces is not rescanned from its start on every read; its body bytes
  // and frames so far, for the per-message limits.
  size_t scanned_ = 0;
  uint64_t scanned_body_bytes_ = 0;
  uint64_t scanned_frames_ = 0;
  bool message_ready_ = false;  // a whole message is at the head of in_
  // Room for the rest of the frame at scanned_ was asked for
  // (InputBuffer::ReserveAnnounced).
  bool announced_scan_ = false;
  bool read_paused_ = false;  // back-pressure: not read until in_ halves
  // Skipping a message over a limit: bytes left of the current frame,
  // whether more frames follow it, and which limit it broke.
  bool discarding_ = false;
  bool discard_more_ = false;
  bool discard_too_many_frames_ = false;
  uint64_t discard_left_ = 0;

  // Output: the stream of bytes queued for the peer is out_, with the
  // bodies in attached_ inserted where they were queued, each before
  // out_[at]; out_sent_ bytes of out_ and attached_sent_ bytes of the first
  // body have been written. Positions count every byte ever queued
  // (out_queued_) and written (out_written_).
  struct Attached {
    size_t at = 0;
    zmq::message_t body;
  };
  std::string out_;
  size_t out_sent_ = 0;
  RingBuffer<Attached> attached_;
  size_t attached_sent_ = 0;
  uint64_t out_queued_ = 0;
  uint64_t out_written_ = 0;
  // Where the last PONG ends: while it is unsent, a PING gets no other.
  uint64_t pong_end_ = 0;
  // When queued output last moved (or was queued onto an empty buffer).
  Clock::time_point out_progress_{};
  // Where each queued message ends (stream positions): their count is the
  // peer's queue length, checked against send_hwm.
  RingBuffer<uint64_t> message_ends_;
};

}  // namespace plantd::transport

// One connection from a libplantd DEALER, SUB or PUB to one broker endpoint
// on the project's own ZMTP engine: no I/O thread, the caller's thread does
// the socket calls. ZMTP 3.1 with the NULL mechanism over tcp:// or ipc://;
// CURVE and other transports stay with libzmq (ChooseEngine below picks).
//
// It behaves as one endpoint of a libzmq DEALER that connected without
// ZMQ_IMMEDIATE: messages sent before the connection is up wait in its
// queue and go once the handshake is done; a lost connection is made again
// every `reconnect_interval`, and the messages it had begun to write are
// lost with it (as libzmq loses what its I/O thread had taken), while those
// still waiting go on the next connection.
//
// Single-threaded. The owner polls fd() for events(), calls Process() with
// what poll() returned (or with 0 when next_timer() has passed), and takes
// whole messages with Recv().
//
// As a SUB it holds its subscriptions and sends them (SUBSCRIBE commands,
// RFC 37, or to a ZMTP 3.0 peer the message form) at the start of every
// connection. As a PUB it hands the
// subscriptions its peer sends, as commands or as ZMTP 3.0 messages, to
// Recv alike: one frame, 0x01 (subscribe) or 0x00 (cancel), then the prefix;
// and a lost connection takes every unwritten message with it (they were
// for that peer's subscriptions).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "plantd/curve.h"
#include "plantd/engine.h"
#include "plantd/status.h"

namespace plantd::client {

// The engine that serves `endpoints` for a peer that asked for `wanted`:
// kAuto is native for tcp:// and ipc:// without CURVE, libzmq otherwise;
// kNative where it cannot serve is kInvalidArgument saying why.
Result<Engine> ChooseEngine(const std::vector<std::string>& endpoints, Engine wanted,
                            const CurveOptions& curve);

class NativeConnection {
 public:
  using Clock = std::chrono::steady_clock;
  using Frames = std::vector<std::string>;

  // The ZMTP socket type this end announces, and so which peers it takes:
  // DEALER a ROUTER or DEALER, SUB a PUB or XPUB, PUB a SUB or XSUB.
  enum class SocketType { kDealer, kSub, kPub };

  struct Options {
    std::string endpoint;  // tcp://HOST:PORT or ipc://PATH
    SocketType socket_type = SocketType::kDealer;
    // Between connection attempts (libzmq's ZMQ_RECONNECT_IVL default).
    std::chrono::milliseconds reconnect_interval{100};
    // false: a lost or failed connection is final (closed()), for an owner
    // that must start afresh with a new peer, as a Majordomo worker
    // registering again does.
    bool reconnect = true;
    // How long a connection may take to connect and finish the handshake.
    std::chrono::milliseconds handshake_timeout{5000};
    // Output held while the broker is away or slow to read: past it Send
    // refuses (the caller reports it) instead of growing without end.
    size_t max_queued_bytes = size_t{64} << 20;
    // The largest message accepted from the broker (its bytes, and the
    // size of a std::string per frame); a larger one closes the connection
    // (a broken or hostile peer), as libzmq's ZMQ_MAXMSGSIZE.
    uint64_t max_message_bytes = uint64_t{256} << 20;
    // Received messages held for Recv before reading stops (libzmq's
    // ZMQ_RCVHWM default): a broker faster than the caller waits in TCP.
    size_t max_received_messages = 1000;
  };

  // True when this engine can serve `endpoint` (tcp:// with a host and a
  // port, or ipc://).
  static bool Supports(std::string_view endpoint);

  // Checks the options and starts connecting. kInvalidArgument names what
  // is wrong with the endpoint.
  static Result<std::unique_ptr<NativeConnection>> Open(Options options);
  ~NativeConnection();
  NativeConnection(const NativeConnection&) = delete;
  NativeConnection& operator=(const NativeConnection&) = delete;

  // Queues one message, `head` frames then `body` frames, and writes what
  // the socket takes at once unless corked. False when the queue is full.
  bool Send(std::initializer_list<std::string_view> head, const Frames& body);
  // Holds writes back until Uncork (then writes everything queued in one
  // go): for a burst of sends made while handling a burst of replies.
  void Cork() { corked_ = true; }
  void Uncork();
  // Writes what is queued now and stays corked: for an owner that decides
  // itself when to write (a publisher batching its messages).
  void Flush();

  // SUB only: adds a subscription (a prefix of the first frame; empty for
  // every message), sent now if the connection is up and again at the
  // start of every later connection. False when the queue is full.
  bool Subscribe(std::string_view prefix);

  // Swaps the next whole message into `*out`; false when none has arrived.
  // What `*out` held is reused for a later message (its strings keep their
  // capacity), so a caller that passes the same Frames each time receives
  // without allocating.
  bool Recv(Frames* out);
  bool has_message() const { return !messages_.empty(); }

  // The descriptor to poll (-1 while waiting to reconnect) and the events
  // to poll it for (POLLIN, with POLLOUT while connecting or output waits).
  int fd() const { return fd_; }
  short events() const;
  // Does the I/O that `revents` allows and whatever timers are due.
  void Process(short revents);
  // When Process must run even if the descriptor shows nothing.
  Clock::time_point next_timer() const;

  // The handshake with the broker is done and the connection is up.
  bool ready() const { return stage_ == Stage::kReady; }
  // Without `reconnect`: the connection failed or was lost, for good.
  bool closed() const { return stage_ == Stage::kClosed; }
  // Why the last connection attempt or connection ended, if it did.
  const Status& last_error() const { return last_error_; }
  // Connections made (handshake done) and lost, for tests and logs.
  uint64_t connections() const { return connections_; }
  // Output bytes held, written or not (what the buffer costs in memory).
  size_t held_bytes() const { return out_.size(); }
  // Output bytes not written yet, and the messages they belong to.
  size_t unwritten_bytes() const { return out_.size() - out_sent_; }
  size_t unwritten_messages() const { return message_ends_.size(); }
  // Messages that were queued when their connection was lost.
  uint64_t dropped_messages() const { return dropped_messages_; }

 private:
  enum class Stage { kWaiting, kConnecting, kGreeting, kHandshake, kReady, kClosed };

  explicit NativeConnection(Options options);
  void StartConnect();
  void Lose(Status why);
  bool FinishConnect();
  bool ReadSome();
  bool Parse();
  bool HandleCommand(std::string_view body);
  bool WriteSome();
  bool WantsWrite() const;
  void QueueSubscription(std::string_view prefix);
  bool AcceptsPeer(std::string_view socket_type) const;

  const Options options_;
  // Resolved once the endpoint is parsed.
  bool ipc_ = false;
  std::string host_;
  std::string port_;
  std::string path_;

  int fd_ = -1;
  Stage stage_ = Stage::kWaiting;
  Clock::time_point timer_{};  // reconnect time, or handshake deadline
  Status last_error_;
  uint64_t connections_ = 0;
  uint64_t dropped_messages_ = 0;
  bool corked_ = false;

  // The greeting and READY, written before any message.
  std::string handshake_out_;
  size_t handshake_sent_ = 0;
  // Messages: out_ from out_sent_ on is unwritten; message_ends_ holds the
  // end offset in out_ of each queued message, oldest first.
  std::string out_;
  size_t out_sent_ = 0;
  std::deque<size_t> message_ends_;
  // Where the last message written whole ends (a message past it that has
  // begun to go is lost if the connection is).
  size_t written_end_ = 0;

  // Received bytes: in_[in_begin_, in_end_) is not parsed yet; in_.size()
  // is the room. in_wanted_: bytes still to come of a frame that arrives
  // in pieces, so the next read makes room for all of it.
  std::vector<char> in_;
  size_t in_begin_ = 0;
  size_t in_end_ = 0;
  size_t in_wanted_ = 0;
  Frames partial_;               // frames of a message still arriving: the
  size_t partial_frames_ = 0;    // first partial_frames_ (the rest are spare)
  uint64_t partial_bytes_ = 0;   // their bytes, and what holding them costs
  std::vector<Frames> spare_;    // taken messages, for reuse,
  size_t spare_bytes_ = 0;       // and their strings' capacity
  std::deque<Frames> messages_;  // whole messages not yet taken

  std::vector<std::string> subscriptions_;  // SUB: sent on every connection
  uint8_t peer_minor_ = 1;                  // ZMTP 3.<minor> of the peer's greeting
};

}  // namespace plantd::client

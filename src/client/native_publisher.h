// A bus publisher (ZMTP PUB) on libplantd's own engine, behind
// plantd::bus::Publisher.
//
// Publish encodes the message into the connection's output buffer in the
// caller's thread; one background thread owns the rest of the I/O: it
// connects and reconnects, reads the subscriptions the bus sends, answers
// PINGs and writes what Publish left. The writes are batched: a message
// that follows the last write by less than `max_delay` waits (up to that
// long) for others to share its write, so a publisher at full speed makes
// one system call per ~64 KiB while a slow one still writes each message at
// once. This is the NATS clients' flusher, bounded in time.
//
// As libzmq's PUB, it sends only what the bus subscribed to (nothing before
// the connection is up and the subscriptions have arrived), and a lost
// connection takes its subscriptions and its unwritten messages with it
// (counted in dropped()); the bus sends the subscriptions again on the
// next. A full queue (`max_queued_messages`, or `max_queued_bytes`) makes
// Publish wait in block mode and refuse, counted, in drop mode. Messages
// held back for a batch count in the queue.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "client/native_connection.h"
#include "plantd/status.h"

namespace plantd::client {

class NativePublisher {
 public:
  using Clock = std::chrono::steady_clock;

  struct Options {
    std::string endpoint;  // the bus's backend: tcp://HOST:PORT or ipc://PATH
    // true: Publish waits for room when the queue is full; false: it
    // refuses the message (kUnavailable) and counts it in dropped().
    bool block = true;
    // Messages queued and not yet written (libzmq's ZMQ_SNDHWM).
    size_t max_queued_messages = 100000;
    // ... and their bytes; a larger message is kInvalidArgument.
    size_t max_queued_bytes = size_t{64} << 20;
    // How long a message may wait for others to share its write.
    std::chrono::microseconds max_delay{50};
    // Distinct prefixes kept for filtering. Past it the publisher sends
    // every message and lets the bus filter (it matches again anyway), so
    // that a bus cannot make each Publish scan without end.
    size_t max_subscriptions = 1000;
    // How long the destructor goes on writing what is queued.
    std::chrono::milliseconds linger{1000};
  };

  static Result<std::unique_ptr<NativePublisher>> Open(Options options);
  ~NativePublisher();
  NativePublisher(const NativePublisher&) = delete;
  NativePublisher& operator=(const NativePublisher&) = delete;

  // Thread-safe. Ok also when nobody subscribed to `topic` (nothing is
  // sent, as with libzmq).
  Status Publish(std::string_view topic, const std::vector<std::string>& frames);

  // Messages lost: refused because the queue was full (drop mode), and
  // queued for a connection that was lost before they were written.
  uint64_t dropped() const;
  // Subscriptions held now: distinct prefixes, the empty one included.
  size_t subscriptions() const;
  bool connected() const;

 private:
  explicit NativePublisher(Options options);
  void Run();  // the I/O thread
  // Everything below runs with mu_ held.
  bool Wanted(std::string_view topic) const;
  void TakeSubscriptions();
  void ForgetSubscriptions();
  void Flush(Clock::time_point now);
  bool HasRoom() const;
  void Wake();

  const Options options_;
  mutable std::mutex mu_;
  std::condition_variable room_;  // block mode: output drained
  std::unique_ptr<NativeConnection> connection_;
  // Distinct prefixes with the number of SUBSCRIBEs of each, as libzmq
  // counts them. Every message is wanted while an empty prefix is held or
  // after too many prefixes came.
  std::vector<std::pair<std::string, uint32_t>> prefixes_;
  size_t empty_prefix_ = 0;
  bool too_many_ = false;
  NativeConnection::Frames received_;  // reused
  // The batch: when its first unwritten message was queued, and when
  // output last went to the socket.
  Clock::time_point batch_start_{};
  Clock::time_point last_write_{};
  bool socket_full_ = false;  // the last write left output: wait for POLLOUT
  bool wake_pending_ = false;
  bool stopping_ = false;
  int wake_fd_ = -1;      // eventfd: Publish tells the I/O thread of a new batch
  uint64_t refused_ = 0;  // drop mode, queue full
  std::thread thread_;
};

}  // namespace plantd::client

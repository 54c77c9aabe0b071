// How fast one remote address may start CURVE handshakes: a token bucket per
// address. A CURVE HELLO costs the broker a Curve25519 multiplication before
// it knows anything about the peer, and replaying one HELLO costs the sender
// nothing, so without a rate one host could keep a core busy on handshakes
// alone. A burst lets a whole plant (or a NAT gateway in front of it)
// reconnect at once after a restart; past it, connections from that address
// are accepted and closed at once until its bucket refills.
//
// The table is bounded: an address whose bucket is full again carries no
// state and is dropped, and past `max_addresses` an arbitrary entry goes
// (which only forgives that address its debt). Thread-safe (a mutex, taken
// once per accepted connection on a CURVE endpoint).
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace plantd::transport {

class HandshakeRate {
 public:
  using Clock = std::chrono::steady_clock;

  struct Limits {
    // Sustained handshakes per address; 0: no limit (the configuration keeps
    // it at least 1).
    size_t per_second = 100;
    size_t burst = 2000;  // handshakes one address may start at once
    size_t max_addresses = 20000;
  };

  explicit HandshakeRate(const Limits& limits) : limits_(limits) {}
  HandshakeRate(const HandshakeRate&) = delete;
  HandshakeRate& operator=(const HandshakeRate&) = delete;

  // Takes one handshake from `address`'s bucket; false when it is empty.
  // An empty address (ipc://, where only local processes connect) is never
  // limited.
  bool Admit(std::string_view address, Clock::time_point now);

  const Limits& limits() const { return limits_; }
  size_t addresses() const;

 private:
  struct Bucket {
    double tokens = 0;
    Clock::time_point refilled;
  };
  // Adds what the bucket earned since it was last refilled, up to the burst.
  void Refill(Bucket& bucket, Clock::time_point now) const;
  // Makes room for one more address (lock held).
  void Trim(Clock::time_point now);

  const Limits limits_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Bucket> buckets_;  // GUARDED_BY(mutex_)
  Clock::time_point last_sweep_{};                   // GUARDED_BY(mutex_)
};

}  // namespace plantd::transport

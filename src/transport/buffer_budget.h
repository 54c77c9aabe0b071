// What all native sockets of the process may hold together: bytes buffered
// (input being assembled or waiting for its thread, output waiting for the
// network), open connections, in total and per remote address, and the rate
// of CURVE handshakes per remote address (transport/handshake_rate.h).
//
// The broker core and every bus thread own their own ZmtpRouter; they share
// one BufferBudget (RouterOptions::budget), so an attacker cannot multiply a
// limit by spreading over endpoints. Thread-safe: bytes and the connection
// total are atomics; the per-address table takes a mutex, but only on accept
// and close, never per message.
//
// Bytes are reported in batches (a router adds its change since the last
// report once per turn of its loop), so the hot path costs no atomic per
// message; the total may lag by what one turn reads (256 KiB per ready
// connection).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "transport/handshake_rate.h"

namespace plantd::transport {

class BufferBudget {
 public:
  struct Limits {
    // Past it, routers stop reading new input until buffers drain below
    // 7/8 of it (back-pressure; nothing read is dropped). 0 is no limit.
    size_t max_buffered_bytes = size_t{1} << 30;
    // Open connections, past and in their handshake. 0 is no limit.
    size_t max_connections = 20000;
    size_t max_connections_per_address = 2000;
    // CURVE handshakes one address may start: sustained per second (0 is no
    // limit; the configuration keeps it at least 1), and at once.
    size_t curve_handshakes_per_second = 100;
    size_t curve_handshake_burst = 2000;
  };

  BufferBudget() : BufferBudget(Limits{}) {}
  explicit BufferBudget(const Limits& limits)
      : limits_(limits),
        curve_handshakes_({.per_second = limits.curve_handshakes_per_second,
                           .burst = limits.curve_handshake_burst,
                           .max_addresses = std::max<size_t>(limits.max_connections, 1024)}) {}
  BufferBudget(const BufferBudget&) = delete;
  BufferBudget& operator=(const BufferBudget&) = delete;

  static std::shared_ptr<BufferBudget> Make(const Limits& limits) {
    return std::make_shared<BufferBudget>(limits);
  }

  const Limits& limits() const { return limits_; }

  // --- Bytes -------------------------------------------------------------
  // Adds a (possibly negative) change of one router's buffered bytes.
  void Adjust(int64_t delta) { bytes_.fetch_add(delta, std::memory_order_relaxed); }
  int64_t bytes() const { return bytes_.load(std::memory_order_relaxed); }

  // Whether input should pause now, with hysteresis: true from the moment
  // the total reaches the limit until it falls below 7/8 of it. `*began` is
  // set when this call is the one that started a pause (for one refusal
  // record per pause, not one per router or turn).
  bool InputPaused(bool* began = nullptr);

  // --- Connections -------------------------------------------------------
  enum class Admission { kAdmitted, kTotal, kPerAddress };
  // Counts a new connection from `address` (an IP address without port;
  // empty for ipc://, which has no per-address limit) unless a limit is
  // reached.
  Admission AdmitConnection(std::string_view address);
  void ReleaseConnection(std::string_view address);
  size_t connections() const { return connections_.load(std::memory_order_relaxed); }
  size_t connections_from(std::string_view address) const;

  // --- CURVE handshakes --------------------------------------------------
  // Takes one from `address`'s allowance; false: refuse the connection.
  bool AdmitCurveHandshake(std::string_view address, HandshakeRate::Clock::time_point now) {
    return curve_handshakes_.Admit(address, now);
  }

 private:
  const Limits limits_;
  std::atomic<int64_t> bytes_{0};
  std::atomic<bool> paused_{false};
  std::atomic<size_t> connections_{0};
  mutable std::mutex mutex_;
  // address -> open connections from it; entries at 0 are erased.
  std::unordered_map<std::string, size_t> per_address_;  // GUARDED_BY(mutex_)
  HandshakeRate curve_handshakes_;
};

}  // namespace plantd::transport

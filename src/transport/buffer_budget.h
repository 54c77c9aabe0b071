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
    // Receive buffers kept alive by frames handed out of them without a
    // copy (transport/input_buffer.h): past this, frames are copied again,
    // so a peer whose small share of a buffer sits in a queue cannot make
    // the process hold the whole buffer for every such frame. 0 is no limit.
    size_t max_shared_input_bytes = size_t{128} << 20;
    // Room set aside for the rest of large frames whose header has arrived
    // and body has not, so that each is received in one allocation, in
    // place: past this (headers cost a peer nothing), a frame's buffer
    // grows as its bytes come instead. 0 is no limit.
    size_t max_announced_input_bytes = size_t{256} << 20;
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

  // --- Shared receive buffers ---------------------------------------------
  // Capacity of the receive buffers that frames handed out still hold.
  void AdjustShared(int64_t delta) { shared_bytes_.fetch_add(delta, std::memory_order_relaxed); }
  int64_t shared_bytes() const { return shared_bytes_.load(std::memory_order_relaxed); }
  // Whether a frame may be handed out of its receive buffer without a copy.
  // When not, it is counted (frames_copied_past_limit).
  bool MayShareInput() {
    if (limits_.max_shared_input_bytes == 0 ||
        shared_bytes() < static_cast<int64_t>(limits_.max_shared_input_bytes)) {
      return true;
    }
    copied_past_limit_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  uint64_t frames_copied_past_limit() const {
    return copied_past_limit_.load(std::memory_order_relaxed);
  }

  // Takes `bytes` of the room for announced frames; false past the limit.
  bool TryAnnounce(size_t bytes) {
    const auto n = static_cast<int64_t>(bytes);
    const int64_t before = announced_bytes_.fetch_add(n, std::memory_order_relaxed);
    if (limits_.max_announced_input_bytes == 0 ||
        before + n <= static_cast<int64_t>(limits_.max_announced_input_bytes)) {
      return true;
    }
    announced_bytes_.fetch_sub(n, std::memory_order_relaxed);
    announce_declined_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  void ReleaseAnnounced(size_t bytes) {
    announced_bytes_.fetch_sub(static_cast<int64_t>(bytes), std::memory_order_relaxed);
  }
  int64_t announced_bytes() const { return announced_bytes_.load(std::memory_order_relaxed); }
  // Frames whose buffer grew as their bytes came, the room being taken.
  uint64_t announce_declined() const { return announce_declined_.load(std::memory_order_relaxed); }

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
  std::atomic<int64_t> shared_bytes_{0};
  std::atomic<uint64_t> copied_past_limit_{0};
  std::atomic<int64_t> announced_bytes_{0};
  std::atomic<uint64_t> announce_declined_{0};
  std::atomic<size_t> connections_{0};
  mutable std::mutex mutex_;
  // address -> open connections from it; entries at 0 are erased.
  std::unordered_map<std::string, size_t> per_address_;  // GUARDED_BY(mutex_)
  HandshakeRate curve_handshakes_;
};

}  // namespace plantd::transport

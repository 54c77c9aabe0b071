// The time source of the broker core. Heartbeat, expiry and latency logic
// read time only through a Clock, so tests can drive it without sleeping.
#pragma once

#include <chrono>

namespace plantd {

using SteadyTime = std::chrono::steady_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual SteadyTime Now() const = 0;
};

class SystemClock final : public Clock {
 public:
  SteadyTime Now() const override { return std::chrono::steady_clock::now(); }
};

// Time that moves only when told: unit tests drive heartbeats, expiry and
// redispatch with it in microseconds, with no sleeps. Not thread-safe: the
// test and the core it drives share one thread.
class ManualClock final : public Clock {
 public:
  SteadyTime Now() const override { return now_; }
  void Advance(std::chrono::nanoseconds by) { now_ += by; }

 private:
  SteadyTime now_ = SteadyTime(std::chrono::hours(1));
};

}  // namespace plantd

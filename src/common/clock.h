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

}  // namespace plantd

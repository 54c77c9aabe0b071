#include "transport/handshake_rate.h"

#include <gtest/gtest.h>

#include <string>

namespace plantd::transport {
namespace {

using namespace std::chrono_literals;
using Clock = HandshakeRate::Clock;

TEST(HandshakeRate, AnAddressGetsItsBurstThenItsRate) {
  HandshakeRate rate({.per_second = 10, .burst = 3, .max_addresses = 100});
  const Clock::time_point t0 = Clock::now();
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(rate.Admit("10.0.0.1", t0)) << i;
  EXPECT_FALSE(rate.Admit("10.0.0.1", t0)) << "past the burst";
  EXPECT_TRUE(rate.Admit("10.0.0.2", t0)) << "another address has its own bucket";
  EXPECT_FALSE(rate.Admit("10.0.0.1", t0 + 50ms)) << "half a token earned";
  EXPECT_TRUE(rate.Admit("10.0.0.1", t0 + 100ms)) << "one token earned at 10/s";
  EXPECT_FALSE(rate.Admit("10.0.0.1", t0 + 100ms));
  // Idle long enough, the bucket is full again, never fuller than the burst.
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(rate.Admit("10.0.0.1", t0 + 1h)) << i;
  EXPECT_FALSE(rate.Admit("10.0.0.1", t0 + 1h));
}

TEST(HandshakeRate, IpcPeersAreNeverLimited) {
  HandshakeRate rate({.per_second = 1, .burst = 1, .max_addresses = 10});
  const Clock::time_point t0 = Clock::now();
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(rate.Admit("", t0)) << i;
  EXPECT_EQ(rate.addresses(), 0u);
}

// Many addresses cannot grow the table past its bound: full (idle) buckets
// are dropped first, then arbitrary ones.
TEST(HandshakeRate, TheTableStaysWithinMaxAddresses) {
  HandshakeRate rate({.per_second = 1, .burst = 2, .max_addresses = 50});
  const Clock::time_point t0 = Clock::now();
  for (int i = 0; i < 1000; ++i) {
    EXPECT_TRUE(rate.Admit("10.1." + std::to_string(i / 250) + "." + std::to_string(i % 250),
                           t0 + std::chrono::milliseconds(i)));
    ASSERT_LE(rate.addresses(), 50u) << i;
  }
  // Indebted addresses stay limited while they fit in the table.
  HandshakeRate small({.per_second = 1, .burst = 1, .max_addresses = 50});
  EXPECT_TRUE(small.Admit("10.9.0.1", t0));
  for (int i = 0; i < 10; ++i) small.Admit("10.9.1." + std::to_string(i), t0);
  EXPECT_FALSE(small.Admit("10.9.0.1", t0 + 100ms));
}

}  // namespace
}  // namespace plantd::transport

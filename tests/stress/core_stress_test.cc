// Long variants of tests/integration/hardening_core_test.cc (label `stress`,
// `make stress`): the made-up service name flood at ten times the size, from
// many connections, and connections that come and go while they flood.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "hardening_core_support.h"
#include "support.h"

namespace plantd::test {
namespace {

using namespace std::chrono_literals;

class CoreStressTest : public ::testing::Test {
 protected:
  void StartBroker() {
    client_port_ = FreeTcpPort();
    worker_port_ = FreeTcpPort();
    const std::string yaml = "endpoint: " + TcpEndpoint(client_port_) +
                             "\nclient_endpoint: " + TcpEndpoint(worker_port_) +
                             "\nbuses: []\nhealth:\n  port: 0\n";
    ASSERT_TRUE(broker_.Start({.config_yaml = yaml})) << broker_.Output();
  }
  void TearDown() override {
    if (broker_.running()) {
      EXPECT_EQ(broker_.Stop(), 0);
    }
  }
  std::string clients() const { return TcpEndpoint(client_port_); }
  std::string workers() const { return TcpEndpoint(worker_port_); }

  zmq::context_t ctx_;
  BrokerProcess broker_;
  int client_port_ = 0;
  int worker_port_ = 0;
};

// 500,000 made-up names from 10 connections: every real request is still
// answered within a second, the attackers are refused, memory stays bounded.
TEST_F(CoreStressTest, HalfAMillionMadeUpServiceNamesFromTenConnections) {
  StartBroker();
  const FloodResult result =
      RunServiceNameFlood(ctx_, clients(), workers(), broker_.pid(),
                          {.attackers = 10, .requests_per_attacker = 50000});
  EXPECT_GE(result.real_answered, 50);
  EXPECT_EQ(result.real_unanswered, 0);
  EXPECT_LT(result.real_slowest, 1s);
  EXPECT_EQ(result.refusals, 10 * 50000 - 1000);
  EXPECT_LT(result.rss_growth_bytes, 128L << 20) << result.rss_growth_bytes;
}

// Twenty rounds of flooding connections that then close: each round's names
// go with its connection, so later rounds are refused no sooner than the first.
TEST_F(CoreStressTest, FloodingConnectionsThatComeAndGoLeaveNothingBehind) {
  StartBroker();
  long peak_growth = 0;
  for (int round = 0; round < 20; ++round) {
    const FloodResult result =
        RunServiceNameFlood(ctx_, clients(), workers(), broker_.pid(),
                            {.attackers = 4, .requests_per_attacker = 5000});
    ASSERT_EQ(result.real_unanswered, 0) << round;
    ASSERT_LT(result.real_slowest, 1s) << round;
    // 4 connections x 100 names each are accepted; the rest are refused.
    ASSERT_EQ(result.refusals, 4 * 5000 - 400) << round;
    peak_growth = std::max(peak_growth, result.rss_growth_bytes);
  }
  EXPECT_LT(peak_growth, 64L << 20);
}

}  // namespace
}  // namespace plantd::test

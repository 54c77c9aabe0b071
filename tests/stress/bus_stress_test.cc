// Long variants of tests/integration/hardening_bus_test.cc (label `stress`,
// `make stress`): 1 GB pushed at a subscriber that never reads, and the
// full throughput figure with 100,000 foreign subscriptions.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <string>
#include <thread>

#include "bus/bus.h"
#include "bus_peers.h"
#include "support.h"

namespace plantd::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// 1 GiB at three subscribers that never read (drop mode, defaults): the
// broker's memory stays within their byte high-water marks.
TEST(BusStress, OneGigabyteAtNonReadingSubscribersKeepsTheBrokerBounded) {
  const int backend = FreeTcpPort(), frontend = FreeTcpPort();
  BrokerProcess broker;
  ASSERT_TRUE(broker.Start(
      {.config_yaml = "endpoint: " + TcpEndpoint(FreeTcpPort()) + "\nclient_endpoint: " +
                      TcpEndpoint(FreeTcpPort()) + "\nhealth:\n  port: 0\nbuses:\n" +
                      "  - name: attack\n    backend: " + TcpEndpoint(backend) +
                      "\n    frontend: " + TcpEndpoint(frontend) + "\n"}))
      << broker.Output();
  zmq::context_t ctx;
  zmq::socket_t pub(ctx, zmq::socket_type::pub);
  pub.set(zmq::sockopt::linger, 0);
  pub.set(zmq::sockopt::xpub_nodrop, 1);
  pub.set(zmq::sockopt::sndtimeo, 5000);
  pub.connect(TcpEndpoint(backend));
  std::vector<zmq::socket_t> stalled;
  for (int i = 0; i < 3; ++i) {
    zmq::socket_t s(ctx, zmq::socket_type::sub);
    s.set(zmq::sockopt::linger, 0);
    s.set(zmq::sockopt::rcvhwm, 10);
    s.set(zmq::sockopt::rcvbuf, 4096);
    s.set(zmq::sockopt::subscribe, "");
    s.connect(TcpEndpoint(frontend));
    ASSERT_TRUE(Sync(pub, s, "mark.sync"));
    stalled.push_back(std::move(s));
  }
  zmq::socket_t watcher(ctx, zmq::socket_type::sub);
  watcher.set(zmq::sockopt::linger, 0);
  watcher.set(zmq::sockopt::subscribe, "mark");
  watcher.connect(TcpEndpoint(frontend));
  ASSERT_TRUE(Sync(pub, watcher, "mark.sync"));
  for (auto& s : stalled) {
    while (Receive(s, 20ms)) {
    }
  }
  const int64_t before = RssBytes(broker.pid());
  const std::string body(size_t{64} * 1024, 'x');
  constexpr int kMessages = 16384;  // 1 GiB
  int64_t peak = before;
  for (int n = 0; n < kMessages; ++n) {
    ASSERT_TRUE(Publish(pub, "data", body)) << n;
    if (n % 256 == 0) peak = std::max(peak, RssBytes(broker.pid()));
  }
  ASSERT_TRUE(Publish(pub, "mark.end", "end"));
  ASSERT_TRUE(Receive(watcher, 30s).has_value()) << broker.Output();
  peak = std::max(peak, RssBytes(broker.pid()));
  std::printf("broker RSS %.1f MiB before, peak growth %.1f MiB for 1 GiB pushed at 3 "
              "non-reading subscribers\n",
              before / 1048576.0, (peak - before) / 1048576.0);
  // 3 x send_hwm_bytes (64 MiB) + slack.
  // Three subscribers' send_hwm_bytes, the publisher's recv_hwm (1,000) of
  // 64 KiB messages in libzmq's receive queue, and slack.
  EXPECT_LT(peak - before, (int64_t{3 * 64 + 64} << 20) + 1000 * (int64_t{64} << 10))
      << broker.Output();
  EXPECT_EQ(broker.Stop(), 0);
}

// The full figure of the normal suite's short variant: 1,000,000 messages
// each way.
TEST(BusStress, HundredThousandForeignSubscriptionsFullFigure) {
  zmq::context_t ctx;
  const int backend = FreeTcpPort(), frontend = FreeTcpPort();
  bus::Bus bus(ctx, {.name = "stress",
                     .backend = TcpEndpoint(backend),
                     .frontend = TcpEndpoint(frontend),
                     .max_subscriptions_per_subscriber = 200000,
                     .max_subscriptions = 300000,
                     .delivery = BusOptions::Delivery::kBlock});
  ASSERT_TRUE(bus.Open().ok());
  bus.Start();
  zmq::socket_t pub(ctx, zmq::socket_type::pub);
  pub.set(zmq::sockopt::linger, 0);
  pub.set(zmq::sockopt::xpub_nodrop, 1);
  pub.set(zmq::sockopt::sndtimeo, 5000);
  pub.connect(TcpEndpoint(backend));
  zmq::socket_t sub(ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::linger, 0);
  sub.set(zmq::sockopt::rcvhwm, 100000);
  sub.set(zmq::sockopt::subscribe, "load.");
  sub.connect(TcpEndpoint(frontend));
  ASSERT_TRUE(Sync(pub, sub, "load.sync"));
  constexpr int kMessages = 1000000;
  auto rate = [&] { return DeliveryRate(pub, sub, "load.topic", kMessages); };
  const double without = rate();
  zmq::socket_t idle(ctx, zmq::socket_type::sub);
  idle.set(zmq::sockopt::linger, 0);
  idle.set(zmq::sockopt::sndhwm, 0);  // or the SUB loses subscriptions past 1,000
  for (int i = 0; i < 100000; ++i) idle.set(zmq::sockopt::subscribe, "zz." + std::to_string(i));
  idle.connect(TcpEndpoint(frontend));
  const auto deadline = Clock::now() + 60s;
  while (bus.counters().subscriptions.load() < 100001 && Clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_EQ(bus.counters().subscriptions.load(), 100001);
  const double with = rate();
  std::printf("1 -> 1, 48-byte bodies, 1M messages: %.0f msg/s alone, %.0f msg/s with 100,000 "
              "foreign subscriptions (%.2fx)\n",
              without, with, with / without);
  // Before the trie: 0.10x. Loaded CI machines vary by +-25% run to run.
  EXPECT_GE(with, 0.5 * without);
  bus.Stop();
}

}  // namespace
}  // namespace plantd::test

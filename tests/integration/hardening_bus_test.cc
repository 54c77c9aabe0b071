// Issue 12, buses: what a hostile or broken peer could do to a bus, tried
// against the real plantd-broker binary (default limits) and against the Bus
// class where a test needs other limits or its counters. Long variants are
// in tests/stress/bus_stress_test.cc.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <string>
#include <thread>

#include "bus/bus.h"
#include "common/refusal.h"
#include "transport/zmtp_framing.h"
#include "bus_peers.h"
#include "raw_zmtp.h"
#include "support.h"

namespace plantd::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A subscriber that never reads, while a publisher pushes 400 MiB at it:
// the broker holds at most send_hwm_bytes (64 MiB by default) for the
// subscriber plus what it reads ahead from the publisher (about 1 MiB on
// the native backend; recv_hwm messages on libzmq's XSUB, the bound below),
// not everything (before: +482 MB for 500 MB, as send_hwm counted messages
// and recv_hwm was 100,000).
TEST(HardeningBus, NonReadingSubscriberCannotGrowTheBrokerPastSendHwmBytes) {
  const int backend = FreeTcpPort(), frontend = FreeTcpPort();
  BrokerProcess broker;
  ASSERT_TRUE(broker.Start({.config_yaml = BrokerConfig(backend, frontend)})) << broker.Output();
  zmq::context_t ctx;
  auto pub = MakePublisher(ctx, backend);
  auto stalled = MakeSubscriber(ctx, frontend, "", 10);
  stalled.set(zmq::sockopt::rcvbuf, 4096);
  auto watcher = MakeSubscriber(ctx, frontend, "mark");
  ASSERT_TRUE(Sync(pub, stalled, "mark.sync"));
  ASSERT_TRUE(Sync(pub, watcher, "mark.sync"));
  while (Receive(stalled, 50ms)) {
  }
  const int64_t before = RssBytes(broker.pid());
  ASSERT_GT(before, 0);

  constexpr size_t kBody = 64 * 1024;
  constexpr int kMessages = 6400;  // 400 MiB
  const std::string body(kBody, 'x');
  int64_t peak = before;
  for (int n = 0; n < kMessages; ++n) {
    ASSERT_TRUE(Publish(pub, "data", body)) << "publisher blocked at " << n;
    if (n % 100 == 0) peak = std::max(peak, RssBytes(broker.pid()));
  }
  // Messages from one publisher stay in order: once the marker is through,
  // so is everything before it.
  ASSERT_TRUE(Publish(pub, "mark.end", "end"));
  auto mark = Receive(watcher, 10s);
  ASSERT_TRUE(mark.has_value()) << broker.Output();
  EXPECT_EQ((*mark)[0], "mark.end");
  peak = std::max(peak, RssBytes(broker.pid()));
  const int64_t growth = peak - before;
  std::printf("broker RSS %.1f MiB before, peak growth %.1f MiB for %.0f MiB pushed\n",
              before / 1048576.0, growth / 1048576.0, kMessages * kBody / 1048576.0);
  // send_hwm_bytes (64 MiB) + recv_hwm (1,000) x 64 KiB + allocator slack;
  // the kernel's socket buffers are not in RSS. The slack is 96 MiB: two
  // threads (libzmq's and the bus's) allocate and free the 64 KiB messages,
  // and glibc's arenas keep part of what is freed resident (17 runs peaked
  // at 137-172 MiB; a bound with 40 MiB of slack, 166.5 MiB, failed one CI
  // run). Without the byte limit the same push grew the broker by 482 MB. Under AddressSanitizer
  // freed memory stays resident in its quarantine (256 MiB), so resident
  // memory says nothing about what the broker holds: the bound is checked
  // in the normal build only.
#if !defined(__SANITIZE_ADDRESS__)
  EXPECT_LT(growth, (int64_t{64 + 96} << 20) + 1000 * int64_t{kBody}) << broker.Output();
#endif
  EXPECT_EQ(broker.Stop(), 0);
}

// A publisher that never reads the subscriptions the bus sends it is closed
// once they pass limits.max_connection_out_bytes (slow_consumer, counted
// and logged), rather than held without bound or dropped one by one, which
// would leave its filter wrong; it gets every prefix when it reconnects.
TEST(HardeningBus, PublisherThatNeverReadsItsSubscriptionsIsClosedPastItsOutputCap) {
  const int backend = FreeTcpPort(), frontend = FreeTcpPort();
  BrokerProcess broker;
  ASSERT_TRUE(broker.Start({.config_yaml = "max_message_size: 64KiB\nlimits:\n"
                                           "  max_connection_out_bytes: 64KiB\n" +
                                           BrokerConfig(backend, frontend)}))
      << broker.Output();
  const int publisher = RawConnect(backend, nullptr, /*rcvbuf=*/4096);
  ASSERT_GE(publisher, 0);
  std::string hello;
  transport::zmtp::AppendGreeting(hello);
  transport::zmtp::AppendReady(hello, "PUB");
  ASSERT_TRUE(SendAll(publisher, hello));
  // 9,000 prefixes of 1,000 bytes go upstream: 9 MB, past what the
  // kernel's buffers take, at a peer reading none of it.
  zmq::context_t ctx;
  auto sub = MakeSubscriber(ctx, frontend, "first");
  for (int i = 0; i < 9000; ++i) {
    std::string prefix = std::to_string(i);
    prefix.resize(1000, 'p');
    sub.set(zmq::sockopt::subscribe, prefix);
  }
  EXPECT_TRUE(broker.WaitForOutput("refused reason=slow_consumer", 10s)) << broker.Output();
  ::close(publisher);
  EXPECT_EQ(broker.Stop(), 0);
}

// A message over max_message_size (1 MiB by default, all frames) is dropped
// whole and counted; its publisher stays connected, and its next message is
// delivered. The native backend skips it as it streams in, never holding it
// whole, however large its frames (docs/buses.md).
TEST(HardeningBus, OversizedPublisherMessageIsDroppedAndTheNextOneDelivered) {
  const int backend = FreeTcpPort(), frontend = FreeTcpPort();
  BrokerProcess broker;
  ASSERT_TRUE(broker.Start({.config_yaml = BrokerConfig(backend, frontend)})) << broker.Output();
  zmq::context_t ctx;
  auto pub = MakePublisher(ctx, backend);
  auto sub = MakeSubscriber(ctx, frontend, "t");
  ASSERT_TRUE(Sync(pub, sub, "t.sync"));
  const std::string part(size_t{600} * 1024, 'h');  // two of them: over 1 MiB
  ASSERT_TRUE(pub.send(zmq::str_buffer("t.big"), zmq::send_flags::sndmore));
  ASSERT_TRUE(pub.send(zmq::buffer(part), zmq::send_flags::sndmore));
  ASSERT_TRUE(pub.send(zmq::buffer(part), zmq::send_flags::none));
  ASSERT_TRUE(Publish(pub, "t.good", "right behind it"));
  auto f = Receive(sub, 5s);
  ASSERT_TRUE(f.has_value()) << broker.Output();
  EXPECT_EQ(*f, (Frames{"t.good", "right behind it"}));
  EXPECT_TRUE(broker.WaitForOutput("refused reason=message_too_large peer=127.0.0.1", 5s))
      << broker.Output();

  // One huge frame: never buffered whole; the publisher's next message
  // arrives.
  const std::string huge(size_t{64} << 20, 'H');
  ASSERT_TRUE(Publish(pub, "t.huge", huge));
  const auto deadline = Clock::now() + 10s;
  std::optional<Frames> again;
  while (!again && Clock::now() < deadline) {
    (void)pub.send(zmq::str_buffer("t.again"), zmq::send_flags::dontwait);
    again = Receive(sub, 50ms);
  }
  ASSERT_TRUE(again.has_value()) << "the publisher never came back\n" << broker.Output();
  EXPECT_EQ((*again)[0], "t.again");
  EXPECT_EQ(broker.Stop(), 0);
}

// One subscriber subscribing to more topics than max_subscriptions_per_subscriber
// (10,000 by default): the extra ones are ignored and logged; the subscriber
// stays connected and keeps the ones it got. A prefix longer than
// max_subscription_size (1,024 bytes) is refused the same way.
TEST(HardeningBus, SubscriptionFloodIsCappedLoggedAndTheSubscriberKept) {
  const int backend = FreeTcpPort(), frontend = FreeTcpPort();
  BrokerProcess broker;
  ASSERT_TRUE(broker.Start({.config_yaml = BrokerConfig(backend, frontend)})) << broker.Output();
  zmq::context_t ctx;
  auto pub = MakePublisher(ctx, backend);
  auto sub = MakeSubscriber(ctx, frontend, "sync");
  ASSERT_TRUE(Sync(pub, sub, "sync"));
  // "f.N." so that no accepted prefix is a prefix of a refused one.
  for (int i = 0; i < 10050; ++i) {
    sub.set(zmq::sockopt::subscribe, "f." + std::to_string(i) + ".");
  }
  const std::string too_long = "L" + std::string(1024, 'l');
  sub.set(zmq::sockopt::subscribe, too_long);
  EXPECT_TRUE(broker.WaitForOutput("refused reason=subscriptions_per_subscriber", 10s))
      << broker.Output();
  EXPECT_TRUE(broker.WaitForOutput("refused reason=subscription_too_long", 10s))
      << broker.Output();
  // Refused: never sent to it (its own SUB would pass them, having asked).
  // Accepted: delivered. One publisher's messages keep their order, so the
  // first to arrive says the refused ones were not sent.
  const auto deadline = Clock::now() + 10s;
  std::optional<Frames> f;
  while (!f && Clock::now() < deadline) {
    ASSERT_TRUE(Publish(pub, "f.10040.x", "refused"));
    ASSERT_TRUE(Publish(pub, too_long + ".x", "refused"));
    ASSERT_TRUE(Publish(pub, "f.9998.x", "accepted"));
    f = Receive(sub, 100ms);
  }
  ASSERT_TRUE(f.has_value()) << "the subscriber lost its subscriptions\n" << broker.Output();
  EXPECT_EQ(*f, (Frames{"f.9998.x", "accepted"}));
  EXPECT_EQ(broker.Stop(), 0);
}

class HardeningBusClass : public ::testing::Test {
 protected:
  void Open(BusOptions options, LimitsOptions limits = {}) {
    backend_ = FreeTcpPort();
    frontend_ = FreeTcpPort();
    options.name = "test";
    options.backend = TcpEndpoint(backend_);
    options.frontend = TcpEndpoint(frontend_);
    bus_ = std::make_unique<bus::Bus>(ctx_, options, limits);
    ASSERT_TRUE(bus_->Open().ok());
    bus_->Start();
  }
  void TearDown() override {
    if (bus_) bus_->Stop();
  }
  bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout = 10s) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      if (done()) return true;
      std::this_thread::sleep_for(5ms);
    }
    return done();
  }

  zmq::context_t ctx_;
  std::unique_ptr<bus::Bus> bus_;
  int backend_ = 0, frontend_ = 0;
};

// drop mode drops by bytes as well as by messages, and still counts every
// loss exactly: what the stalled subscriber received plus what was dropped
// for it is what was published.
TEST_F(HardeningBusClass, DropModeDropsByBytesAndCountsExactly) {
  Open({.send_hwm = 100000, .send_hwm_bytes = 256u << 10});
  auto pub = MakePublisher(ctx_, backend_);
  auto stalled = MakeSubscriber(ctx_, frontend_, "d", 10);
  stalled.set(zmq::sockopt::rcvbuf, 4096);
  ASSERT_TRUE(Sync(pub, stalled, "d.sync"));
  const uint64_t dropped_before = bus_->counters().dropped.load();
  const uint64_t in_before = bus_->counters().messages_in.load();
  constexpr int kMessages = 20000;  // 80 MiB, far below 100,000 messages
  const std::string body(4096, 'p');
  for (int n = 0; n < kMessages; ++n) ASSERT_TRUE(Publish(pub, "d.x", body));
  // Everything has crossed the bus once messages_in has counted it.
  ASSERT_TRUE(WaitFor([&] {
    return bus_->counters().messages_in.load() - in_before >= static_cast<uint64_t>(kMessages);
  }));
  uint64_t received = 0;
  while (auto f = Receive(stalled, 500ms)) {
    if ((*f)[0] == "d.x") ++received;
  }
  const uint64_t dropped = bus_->counters().dropped.load() - dropped_before;
  EXPECT_LT(received, static_cast<uint64_t>(kMessages) / 2) << "the byte bound never bit";
  EXPECT_EQ(received + dropped, static_cast<uint64_t>(kMessages));
}

// The total cap holds across subscribers; each refusal is counted.
TEST_F(HardeningBusClass, TotalSubscriptionCapHoldsAcrossSubscribers) {
  Open({.max_subscriptions_per_subscriber = 1000, .max_subscriptions = 100});
  const uint64_t refused_before = refusal::Total(refusal::Reason::kSubscriptionsTotal);
  auto a = MakeSubscriber(ctx_, frontend_, "a.0");
  auto b = MakeSubscriber(ctx_, frontend_, "b.0");
  for (int i = 1; i < 60; ++i) {
    a.set(zmq::sockopt::subscribe, "a." + std::to_string(i));
    b.set(zmq::sockopt::subscribe, "b." + std::to_string(i));
  }
  ASSERT_TRUE(WaitFor([&] { return bus_->counters().subscriptions_refused.load() == 20; }))
      << bus_->counters().subscriptions_refused.load();
  EXPECT_EQ(bus_->counters().subscriptions.load(), 100);
  EXPECT_EQ(refusal::Total(refusal::Reason::kSubscriptionsTotal) - refused_before, 20u);
  // A subscriber leaving frees its share.
  a.close();
  ASSERT_TRUE(WaitFor([&] { return bus_->counters().subscriptions.load() < 100; }));
  auto c = MakeSubscriber(ctx_, frontend_, "c.0");
  ASSERT_TRUE(WaitFor([&] { return bus_->counters().subscriptions.load() > 40; }));
}

// 100,000 subscriptions held by one idle subscriber must not slow the bus
// for the others (before: 1.06 M -> 0.11 M msg/s). Both figures are
// measured here, in one run, one publisher to one subscriber.
TEST_F(HardeningBusClass, ForeignSubscriptionsDoNotSlowOtherSubscribers) {
  Open({.max_subscriptions_per_subscriber = 200000,
        .max_subscriptions = 300000,
        .delivery = BusOptions::Delivery::kBlock});
  auto pub = MakePublisher(ctx_, backend_);
  auto sub = MakeSubscriber(ctx_, frontend_, "load.");
  ASSERT_TRUE(Sync(pub, sub, "load.sync"));
  constexpr int kMessages = 100000;
  auto rate = [&] { return DeliveryRate(pub, sub, "load.topic", kMessages); };
  const double without = rate();
  auto idle = MakeSubscriber(ctx_, frontend_, "zz.0");
  for (int i = 1; i < 100000; ++i) idle.set(zmq::sockopt::subscribe, "zz." + std::to_string(i));
  ASSERT_TRUE(WaitFor([&] { return bus_->counters().subscriptions.load() == 100001; }, 30s))
      << bus_->counters().subscriptions.load();
  const double with = rate();
  std::printf("1 -> 1, 48-byte bodies: %.0f msg/s alone, %.0f msg/s with 100,000 foreign "
              "subscriptions (%.2fx)\n",
              without, with, with / without);
  EXPECT_GE(with, 0.5 * without);
}

// block mode: a subscriber that reads nothing holds the bus up for at most
// about write_timeout; then it is closed (transport) or given up on (bus),
// counted as a slow consumer, and the others lose nothing.
TEST_F(HardeningBusClass, BlockModeGivesUpOnADeadSubscriber) {
  Open({.send_hwm = 100, .send_hwm_bytes = 1u << 20, .delivery = BusOptions::Delivery::kBlock},
       {.write_timeout = 1000ms});
  const uint64_t slow_before = refusal::Total(refusal::Reason::kSlowConsumer);
  auto pub = MakePublisher(ctx_, backend_);
  auto dead = MakeSubscriber(ctx_, frontend_, "e", 10);
  dead.set(zmq::sockopt::rcvbuf, 4096);
  auto live = MakeSubscriber(ctx_, frontend_, "e");
  ASSERT_TRUE(Sync(pub, dead, "e.sync"));
  ASSERT_TRUE(Sync(pub, live, "e.sync"));
  constexpr int kMessages = 3000;
  const std::string body(4096, 'e');
  std::thread publisher([&] {
    for (int n = 0; n < kMessages; ++n) {
      if (!Publish(pub, "e.data", std::to_string(n) + body)) return;
    }
  });
  const auto start = Clock::now();
  int received = 0;
  while (received < kMessages) {
    auto f = Receive(live, 10s);
    if (!f) break;
    ASSERT_EQ((*f)[1].substr(0, std::to_string(received).size()), std::to_string(received));
    ++received;
  }
  publisher.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  EXPECT_EQ(received, kMessages) << "the live subscriber lost messages";
  EXPECT_LT(seconds, 8.0) << "the dead subscriber held the bus up too long";
  EXPECT_GE(bus_->counters().blocked_ns.load(), 500'000'000u) << "it never blocked";
  EXPECT_GE(refusal::Total(refusal::Reason::kSlowConsumer) - slow_before, 1u);
}

}  // namespace
}  // namespace plantd::test

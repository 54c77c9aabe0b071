// Pub/sub buses over real TCP sockets: the Bus class in-process where a test
// reads its counters, and the real binary for start-up behaviour.
#include "bus/bus.h"

#include <gtest/gtest.h>

#include <thread>

#include "bus_peers.h"
#include "support.h"

namespace plantd::test {
namespace {

using namespace std::chrono_literals;

class BusTest : public ::testing::Test {
 protected:
  void Open(BusOptions options) {
    backend_ = TcpEndpoint(FreeTcpPort());
    frontend_ = TcpEndpoint(FreeTcpPort());
    options.name = options.name.empty() ? "test" : options.name;
    options.backend = backend_;
    options.frontend = frontend_;
    if (options.capture == "yes") options.capture = capture_ = TcpEndpoint(FreeTcpPort());
    bus_ = std::make_unique<bus::Bus>(ctx_, options);
    ASSERT_TRUE(bus_->Open().ok());
    bus_->Start();
  }
  void TearDown() override {
    if (bus_) bus_->Stop();
  }

  zmq::socket_t Publisher(bool nodrop = true) {
    zmq::socket_t pub(ctx_, zmq::socket_type::pub);
    pub.set(zmq::sockopt::linger, 0);
    // A publisher that must not lose messages blocks instead (PUB drops at
    // its own high-water mark otherwise).
    if (nodrop) pub.set(zmq::sockopt::xpub_nodrop, 1);
    pub.connect(backend_);
    return pub;
  }

  zmq::socket_t Subscriber(const std::string& topic, const std::string& endpoint = "",
                           int rcvhwm = 1000) {
    zmq::socket_t sub(ctx_, zmq::socket_type::sub);
    sub.set(zmq::sockopt::linger, 0);
    sub.set(zmq::sockopt::rcvhwm, rcvhwm);
    sub.set(zmq::sockopt::subscribe, topic);
    sub.connect(endpoint.empty() ? frontend_ : endpoint);
    return sub;
  }

  static void Publish(zmq::socket_t& pub, const std::string& topic, const std::string& body) {
    pub.send(zmq::buffer(topic), zmq::send_flags::sndmore);
    pub.send(zmq::buffer(body), zmq::send_flags::none);
  }

  // Publishes a marker on `topic` until `sub` sees it: the subscription has
  // then reached the publisher (ZeroMQ's slow-joiner rule).
  static void Sync(zmq::socket_t& pub, zmq::socket_t& sub, const std::string& topic) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < deadline) {
      Publish(pub, topic, "sync");
      if (auto f = Receive(sub, 20ms)) {
        // Drain further markers.
        while (Receive(sub, 50ms)) {
        }
        return;
      }
    }
    FAIL() << "subscription never reached the publisher";
  }

  zmq::context_t ctx_;
  std::unique_ptr<bus::Bus> bus_;
  std::string backend_, frontend_, capture_;
};

TEST_F(BusTest, SubscribersGetOnlyTheirTopics) {
  Open({});
  auto pub = Publisher();
  auto temp = Subscriber("temp");
  auto pres = Subscriber("pres");
  Sync(pub, temp, "temp.sync");
  Sync(pub, pres, "pres.sync");
  Publish(pub, "temp.1", "20.5");
  Publish(pub, "pres.1", "1013");
  Publish(pub, "other", "x");
  EXPECT_EQ(Receive(temp, 1s), (Frames{"temp.1", "20.5"}));
  EXPECT_EQ(Receive(pres, 1s), (Frames{"pres.1", "1013"}));
  EXPECT_FALSE(Receive(temp, 100ms).has_value());
  EXPECT_FALSE(Receive(pres, 100ms).has_value());
}

TEST_F(BusTest, SeveralPublishersReachSeveralSubscribers) {
  Open({});
  std::vector<zmq::socket_t> pubs, subs;
  for (int i = 0; i < 3; ++i) pubs.push_back(Publisher());
  for (int i = 0; i < 3; ++i) subs.push_back(Subscriber("t"));
  for (auto& p : pubs) {
    for (auto& s : subs) Sync(p, s, "t.sync");
  }
  for (auto& s : subs) {
    while (Receive(s, 100ms)) {  // markers meant for the others
    }
  }
  for (int p = 0; p < 3; ++p) {
    for (int n = 0; n < 100; ++n) Publish(pubs[p], "t", std::to_string(p) + ":" + std::to_string(n));
  }
  for (auto& s : subs) {
    std::vector<int> next(3, 0);
    for (int k = 0; k < 300; ++k) {
      auto f = Receive(s, 2s);
      ASSERT_TRUE(f.has_value()) << k;
      const int p = (*f)[1][0] - '0';
      // Each publisher's messages arrive in its order.
      EXPECT_EQ((*f)[1], std::to_string(p) + ":" + std::to_string(next[p]));
      ++next[p];
    }
  }
  EXPECT_EQ(bus_->counters().subscribers.load(), 3);
}

// Large bodies are queued for every subscriber as references to one
// message, not copied per subscriber (docs/transport.md, "How bodies
// travel"): each of several libzmq subscribers, read one after the other
// (the last long after the first), gets every body intact and in order,
// small and large mixed.
TEST_F(BusTest, LargeBodiesSharedByEverySubscriberArriveIntact) {
  Open({});
  auto pub = Publisher();
  std::vector<zmq::socket_t> subs;
  for (int i = 0; i < 3; ++i) subs.push_back(Subscriber("big"));
  for (auto& s : subs) Sync(pub, s, "big.sync");
  for (auto& s : subs) {
    while (Receive(s, 100ms)) {  // markers meant for the others
    }
  }
  std::vector<std::string> bodies;
  for (int n = 0; n < 40; ++n) {
    std::string body(n % 3 == 0 ? 17 : 2048 + static_cast<size_t>(n) * 4099, '\0');
    for (size_t k = 0; k < body.size(); k += 61) body[k] = static_cast<char>('a' + n % 26);
    bodies.push_back(body);
    Publish(pub, "big", body);
  }
  for (size_t i = 0; i < subs.size(); ++i) {
    for (size_t n = 0; n < bodies.size(); ++n) {
      auto f = Receive(subs[i], 5s);
      ASSERT_TRUE(f.has_value()) << "subscriber " << i << " message " << n;
      ASSERT_EQ(f->size(), 2u);
      ASSERT_TRUE((*f)[1] == bodies[n]) << "subscriber " << i << " message " << n;
    }
  }
  EXPECT_EQ(bus_->counters().dropped.load(), 0u);
}

TEST_F(BusTest, CaptureReceivesEveryMessageInOrder) {
  Open({.capture = "yes"});
  auto pub = Publisher();
  auto sub = Subscriber("");
  auto tap = Subscriber("", capture_, 100000);
  Sync(pub, sub, "sync");
  while (Receive(tap, 100ms)) {
  }
  for (int n = 0; n < 1000; ++n) Publish(pub, "data", std::to_string(n));
  for (int n = 0; n < 1000; ++n) {
    auto f = Receive(tap, 2s);
    ASSERT_TRUE(f.has_value()) << n;
    EXPECT_EQ(*f, (Frames{"data", std::to_string(n)}));
  }
  EXPECT_EQ(bus_->counters().capture_dropped.load(), 0u);
}

TEST_F(BusTest, CountersMatchWhatWasSent) {
  Open({});
  auto pub = Publisher();
  auto sub = Subscriber("c");
  Sync(pub, sub, "c.sync");
  const uint64_t in_before = bus_->counters().messages_in.load();
  const uint64_t bytes_before = bus_->counters().bytes_in.load();
  for (int n = 0; n < 500; ++n) Publish(pub, "c.x", "0123456789");
  for (int n = 0; n < 500; ++n) ASSERT_TRUE(Receive(sub, 2s).has_value());
  EXPECT_EQ(bus_->counters().messages_in.load() - in_before, 500u);
  EXPECT_EQ(bus_->counters().bytes_in.load() - bytes_before, 500u * (3 + 10));
  EXPECT_EQ(bus_->counters().messages_out.load(), bus_->counters().messages_in.load());
  EXPECT_EQ(bus_->counters().dropped.load(), 0u);
  EXPECT_EQ(bus_->counters().subscriptions.load(), 1);
  EXPECT_EQ(bus_->counters().publishers.load(), 1) << "the native backend counts its publishers";
  pub.close();
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (bus_->counters().publishers.load() != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(bus_->counters().publishers.load(), 0) << "and sees it leave";
}

// A new subscriber receives the latest message of each topic it subscribes
// to at once, without waiting for the next change.
TEST_F(BusTest, LastValueCacheAnswersANewSubscription) {
  Open({.last_value_cache = true});
  auto pub = Publisher();
  auto first = Subscriber("state.");
  Sync(pub, first, "state.sync");
  Publish(pub, "state.a", "1");
  Publish(pub, "state.a", "2");
  Publish(pub, "state.b", "3");
  Publish(pub, "other.c", "4");
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Receive(first, 1s).has_value());

  auto late = Subscriber("state.");
  std::map<std::string, std::string> seen;
  while (auto f = Receive(late, 1s)) {
    seen[(*f)[0]] = (*f)[1];
    if (seen.count("state.a") && seen.count("state.b")) break;
  }
  EXPECT_EQ(seen["state.a"], "2");
  EXPECT_EQ(seen["state.b"], "3");
  EXPECT_EQ(seen.count("other.c"), 0u);
  EXPECT_GE(bus_->counters().lvc_replayed.load(), 2u);
  EXPECT_FALSE(Receive(first, 200ms).has_value())
      << "the replay is for the new subscriber only; the first has these values";
}

// drop mode: a stalled subscriber loses messages, the loss is counted, and
// the other subscribers lose nothing and wait for nobody.
//
// Every message the stalled subscriber does not receive is counted, once:
// what it received plus `dropped` is exactly what was published.
TEST_F(BusTest, DropModeCountsLossesExactlyAndDoesNotHoldUpOthers) {
  Open({.send_hwm = 5000, .delivery = BusOptions::Delivery::kDrop});
  auto pub = Publisher();
  auto stalled = Subscriber("d", "", 100);
  auto healthy = Subscriber("d", "", 100000);
  Sync(pub, stalled, "d.sync");
  Sync(pub, healthy, "d.sync");
  const uint64_t dropped_before = bus_->counters().dropped.load();
  constexpr int kMessages = 40000;
  const std::string payload(1024, 'p');  // enough to fill the stalled socket's buffers
  std::thread reader([&] {
    for (int n = 0; n < kMessages; ++n) {
      auto f = Receive(healthy, 5s);
      ASSERT_TRUE(f.has_value()) << "healthy subscriber lost message " << n;
      ASSERT_EQ((*f)[0], "d" + std::to_string(n));
    }
  });
  for (int n = 0; n < kMessages; ++n) {
    Publish(pub, "d" + std::to_string(n), payload);
    if (n % 50 == 49) std::this_thread::sleep_for(1ms);  // a pace the reader can hold
  }
  reader.join();
  uint64_t received = 0;
  while (auto f = Receive(stalled, 300ms)) {
    if ((*f)[0] != "d.sync") ++received;  // left over from syncing the healthy one
  }
  const uint64_t dropped = bus_->counters().dropped.load() - dropped_before;
  EXPECT_LT(received, static_cast<uint64_t>(kMessages))
      << "the subscriber never fell behind; the test proves nothing";
  EXPECT_EQ(received + dropped, static_cast<uint64_t>(kMessages));
}

// Two stalled subscribers each lose their own messages; each loss counts.
TEST_F(BusTest, DropModeCountsEachSubscribersLossesSeparately) {
  Open({.send_hwm = 2000, .delivery = BusOptions::Delivery::kDrop});
  auto pub = Publisher();
  auto slow_a = Subscriber("d", "", 100);
  auto slow_b = Subscriber("d", "", 100);
  Sync(pub, slow_a, "d.sync");
  Sync(pub, slow_b, "d.sync");
  auto drain = [&](zmq::socket_t& s) {
    while (Receive(s, 100ms)) {
    }
  };
  drain(slow_a);
  drain(slow_b);
  const uint64_t dropped_before = bus_->counters().dropped.load();
  constexpr int kMessages = 30000;
  const std::string payload(1024, 'p');
  for (int n = 0; n < kMessages; ++n) {
    Publish(pub, "d" + std::to_string(n), payload);
    if (n % 50 == 49) std::this_thread::sleep_for(1ms);
  }
  uint64_t received = 0;
  for (auto* s : {&slow_a, &slow_b}) {
    while (Receive(*s, 300ms)) ++received;
  }
  const uint64_t dropped = bus_->counters().dropped.load() - dropped_before;
  EXPECT_GT(dropped, static_cast<uint64_t>(kMessages)) << "both should have fallen behind";
  EXPECT_EQ(received + dropped, 2u * kMessages);
}

// block mode: publishers slow down to the slowest subscriber; nothing is lost.
TEST_F(BusTest, BlockModeLosesNothingAtHighRate) {
  Open({.send_hwm = 1000, .delivery = BusOptions::Delivery::kBlock});
  auto pub = Publisher();
  auto sub = Subscriber("b", "", 1000);
  Sync(pub, sub, "b.sync");
  constexpr int kMessages = 100000;
  std::thread reader([&] {
    for (int n = 0; n < kMessages; ++n) {
      auto f = Receive(sub, 5s);
      ASSERT_TRUE(f.has_value()) << "lost at " << n;
      ASSERT_EQ((*f)[1], std::to_string(n));
      if (n % 10000 == 0) std::this_thread::sleep_for(20ms);  // a slow moment
    }
  });
  for (int n = 0; n < kMessages; ++n) Publish(pub, "b", std::to_string(n));
  reader.join();
  EXPECT_EQ(bus_->counters().dropped.load(), 0u);
}

TEST_F(BusTest, BindFailureNamesBusAndEndpoint) {
  zmq::socket_t squatter(ctx_, zmq::socket_type::pub);
  const std::string taken = TcpEndpoint(FreeTcpPort());
  squatter.bind(taken);
  bus::Bus bus(ctx_, {.name = "telemetry", .backend = taken, .frontend = "tcp://127.0.0.1:1"});
  Status s = bus.Open();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("cannot bind " + taken + " (bus telemetry, backend)"),
            std::string::npos)
      << s.message();
}

// The real binary: a configured bus forwards, and a bus that cannot bind
// stops start-up with its name and endpoint.
TEST(BusProcess, ConfiguredBusForwardsAndBindFailureIsAStartupError) {
  const int backend = FreeTcpPort(), frontend = FreeTcpPort();
  auto common = [] {
    return "endpoint: " + TcpEndpoint(FreeTcpPort()) + "\nclient_endpoint: " +
           TcpEndpoint(FreeTcpPort()) + "\nhealth:\n  port: 0\n";
  };
  BrokerProcess broker;
  ASSERT_TRUE(broker.Start({.config_yaml = common() + "buses:\n  - name: data\n    backend: " +
                                           TcpEndpoint(backend) + "\n    frontend: " +
                                           TcpEndpoint(frontend) + "\n"}))
      << broker.Output();
  EXPECT_NE(broker.Output().find("bus started bus=data"), std::string::npos);

  BrokerProcess second;
  second.Start({.config_yaml = common() + "buses:\n  - name: clash\n    backend: " +
                               TcpEndpoint(backend) + "\n    frontend: " +
                               TcpEndpoint(FreeTcpPort()) + "\n",
                .wait_ready = false});
  EXPECT_EQ(second.WaitExit(10s), std::optional<int>(1));
  EXPECT_NE(second.Output().find("cannot bind " + TcpEndpoint(backend) + " (bus clash, backend)"),
            std::string::npos)
      << second.Output();
  EXPECT_EQ(broker.Stop(), 0);
}

// docs/buses.md: in block mode an operator finds the subscriber holding the
// bus up in the log, by its address.
TEST(BusProcess, BlockModeLogNamesTheSubscriberHoldingTheBusUp) {
  const int backend = FreeTcpPort(), frontend = FreeTcpPort();
  BrokerProcess broker;
  ASSERT_TRUE(broker.Start(
      {.config_yaml = "endpoint: " + TcpEndpoint(FreeTcpPort()) + "\nclient_endpoint: " +
                      TcpEndpoint(FreeTcpPort()) + "\nhealth:\n  port: 0\nbuses:\n" +
                      "  - name: events\n    backend: " + TcpEndpoint(backend) +
                      "\n    frontend: " + TcpEndpoint(frontend) +
                      "\n    delivery: block\n    send_hwm: 100\n"}))
      << broker.Output();
  zmq::context_t ctx;
  zmq::socket_t sub(ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::linger, 0);
  sub.set(zmq::sockopt::rcvhwm, 10);
  sub.set(zmq::sockopt::rcvbuf, 4096);  // fills quickly: the stalled reader
  sub.set(zmq::sockopt::subscribe, "");
  sub.connect(TcpEndpoint(frontend));
  zmq::socket_t pub(ctx, zmq::socket_type::pub);
  pub.set(zmq::sockopt::linger, 0);
  pub.set(zmq::sockopt::xpub_nodrop, 1);
  pub.connect(TcpEndpoint(backend));
  // The subscription must reach the publisher before anything counts.
  zmq::pollitem_t item{sub.handle(), 0, ZMQ_POLLIN, 0};
  bool synced = false;
  const auto sync_deadline = std::chrono::steady_clock::now() + 15s;
  while (!synced && std::chrono::steady_clock::now() < sync_deadline) {
    (void)pub.send(zmq::str_buffer("sync"), zmq::send_flags::dontwait);
    synced = zmq::poll(&item, 1, 10ms) > 0;
  }
  ASSERT_TRUE(synced) << "the subscription never reached the publisher\n" << broker.Output();
  const std::string body(4096, 'e');
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  bool named = false;
  while (!named && std::chrono::steady_clock::now() < deadline) {
    for (int i = 0; i < 200; ++i) (void)pub.send(zmq::buffer(body), zmq::send_flags::dontwait);
    std::this_thread::sleep_for(50ms);
    const std::string out = broker.Output();
    named = out.find("bus held up by a slow subscriber bus=events subscriber=127.0.0.1:") !=
            std::string::npos;
  }
  EXPECT_TRUE(named) << broker.Output();
  EXPECT_EQ(broker.Stop(), 0);
}

}  // namespace
}  // namespace plantd::test

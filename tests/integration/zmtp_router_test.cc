// The native ZMTP ROUTER against real libzmq peers: the handshake, routing
// ids and handover, heartbeats, limits, bad input, ipc, and bind errors.
#include "transport/zmtp_router.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "support.h"
#include "transport/zmtp_framing.h"

namespace plantd::transport {
namespace {

using namespace std::chrono_literals;
using test::Frames;
using test::FreeTcpPort;
using test::TcpEndpoint;

class ZmtpRouterTest : public ::testing::Test {
 protected:
  void Open(RouterOptions options = {}) {
    router_ = std::make_unique<ZmtpRouter>(options);
    port_ = FreeTcpPort();
    ASSERT_TRUE(router_->Bind(TcpEndpoint(port_)).ok());
  }

  zmq::socket_t Dealer(const std::string& routing_id = "") {
    zmq::socket_t s(ctx_, zmq::socket_type::dealer);
    s.set(zmq::sockopt::linger, 0);
    if (!routing_id.empty()) s.set(zmq::sockopt::routing_id, routing_id);
    s.connect(TcpEndpoint(port_));
    return s;
  }

  // Runs the router until `done` holds or `timeout` passes.
  bool PumpUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout = 3s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      router_->Wait(5ms);
      if (done()) return true;
    }
    return false;
  }

  // The next whole message from the router, routing id first.
  std::optional<Frames> RouterReceive(std::chrono::milliseconds timeout = 3s) {
    Frames frames;
    const bool got = PumpUntil(
        [&] {
          zmq::message_t m;
          bool more = true;
          while (more && router_->Receive(m.handle(), &more)) frames.push_back(m.to_string());
          return !frames.empty();
        },
        timeout);
    if (!got) return std::nullopt;
    return frames;
  }

  bool RouterSend(const Frames& frames) {
    for (size_t i = 0; i < frames.size(); ++i) {
      zmq::message_t m(frames[i].data(), frames[i].size());
      if (!router_->Send(m.handle(), i + 1 < frames.size())) return false;
    }
    return true;
  }

  // Receives on a libzmq socket while keeping the router turning.
  std::optional<Frames> PeerReceive(zmq::socket_t& s, std::chrono::milliseconds timeout = 3s) {
    Frames frames;
    const bool got = PumpUntil(
        [&] {
          zmq::message_t m;
          while (s.recv(m, zmq::recv_flags::dontwait)) {
            frames.push_back(m.to_string());
            if (!m.more()) return true;
          }
          return false;
        },
        timeout);
    if (!got) return std::nullopt;
    return frames;
  }

  // A plain TCP connection to the router, for bytes libzmq would not send.
  int RawConnect() const {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port_));
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
      ::close(fd);
      return -1;
    }
    return fd;
  }

  // Keeps the router turning until it closes `fd`; what it sent first is
  // appended to `received`. False if it was still open after 3 s.
  bool ReadUntilClosed(int fd, std::string* received) {
    return PumpUntil([&] {
      char buf[256];
      const ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (n > 0) received->append(buf, static_cast<size_t>(n));
      return n == 0;
    });
  }

  static void PeerSend(zmq::socket_t& s, const Frames& frames) {
    for (size_t i = 0; i < frames.size(); ++i) {
      s.send(zmq::buffer(frames[i]), i + 1 < frames.size() ? zmq::send_flags::sndmore
                                                            : zmq::send_flags::none);
    }
  }

  zmq::context_t ctx_;
  std::unique_ptr<ZmtpRouter> router_;
  int port_ = 0;
};

TEST_F(ZmtpRouterTest, DealerMessagesArriveWithARoutingIdAndRepliesFindTheDealer) {
  Open();
  auto dealer = Dealer();
  PeerSend(dealer, {"", "MDPC02", std::string("\0\xff", 2), std::string(300, 'L')});
  auto got = RouterReceive();
  ASSERT_TRUE(got.has_value());
  ASSERT_EQ(got->size(), 5u);
  EXPECT_EQ((*got)[0].size(), 5u) << "a generated id is 5 bytes, as libzmq's";
  EXPECT_EQ((*got)[0][0], '\0');
  EXPECT_EQ((Frames{got->begin() + 1, got->end()}),
            (Frames{"", "MDPC02", std::string("\0\xff", 2), std::string(300, 'L')}));
  ASSERT_TRUE(RouterSend({(*got)[0], "reply", std::string(70000, 'r')}));
  auto reply = PeerReceive(dealer);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(*reply, (Frames{"reply", std::string(70000, 'r')}));
}

TEST_F(ZmtpRouterTest, UnknownPeerFailsWithEhostunreachAndQueuesNothing) {
  Open();
  zmq::message_t id("nobody", 6);
  EXPECT_FALSE(router_->Send(id.handle(), true));
  EXPECT_EQ(errno, EHOSTUNREACH);
  EXPECT_EQ(id.to_string(), "nobody") << "a refused frame stays with the caller";
}

TEST_F(ZmtpRouterTest, PeerChosenIdIsUsedAndANewConnectionTakesItOver) {
  Open();
  auto first = Dealer("worker-1");
  PeerSend(first, {"hello"});
  auto got = RouterReceive();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ((*got)[0], "worker-1");

  auto second = Dealer("worker-1");  // the same worker, reconnected
  PeerSend(second, {"again"});
  got = RouterReceive();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, (Frames{"worker-1", "again"}));
  ASSERT_TRUE(RouterSend({"worker-1", "to-the-new-one"}));
  auto reply = PeerReceive(second);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(*reply, Frames{"to-the-new-one"});
  EXPECT_FALSE(PeerReceive(first, 200ms).has_value());
}

// RFC 37: a PING is answered with a PONG carrying its context. A libzmq peer
// with a heartbeat timeout disconnects when no PONG (or traffic) comes.
TEST_F(ZmtpRouterTest, ZmtpHeartbeatsAreAnswered) {
  Open();
  zmq::socket_t dealer(ctx_, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.set(zmq::sockopt::heartbeat_ivl, 50);
  dealer.set(zmq::sockopt::heartbeat_timeout, 200);
  zmq::socket_t monitor(ctx_, zmq::socket_type::pair);
  const std::string monitor_endpoint = "inproc://zmtp-heartbeat-monitor";
  ASSERT_EQ(zmq_socket_monitor(dealer.handle(), monitor_endpoint.c_str(),
                               ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED),
            0);
  monitor.connect(monitor_endpoint);
  dealer.connect(TcpEndpoint(port_));
  int handshakes = 0, disconnects = 0;
  PumpUntil(
      [&] {
        zmq::message_t event;
        while (monitor.recv(event, zmq::recv_flags::dontwait)) {
          uint16_t id = 0;
          std::memcpy(&id, event.data(), sizeof(id));
          if (id == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) ++handshakes;
          if (id == ZMQ_EVENT_DISCONNECTED) ++disconnects;
          zmq::message_t address;
          (void)monitor.recv(address);
        }
        return false;
      },
      1500ms);
  EXPECT_EQ(handshakes, 1);
  EXPECT_EQ(disconnects, 0) << "the peer's heartbeats went unanswered";
  zmq_socket_monitor(dealer.handle(), nullptr, 0);
}

// A message over max_message_size is skipped as it streams in (never
// buffered whole), reported with its sender's id, and what the same sender
// sends next still arrives.
TEST_F(ZmtpRouterTest, MessageOverTheLimitIsSkippedAndTheNextOneArrives) {
  std::vector<std::string> oversized;
  Open({.max_message_size = 1024,
        .on_oversized = [&](std::string_view id) { oversized.emplace_back(id); }});
  auto big = Dealer("big");
  PeerSend(big, {std::string(600, 'a'), std::string(600, 'b')});
  PeerSend(big, {std::string(200000, 'c')});
  PeerSend(big, {"after"});
  auto got = RouterReceive();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, (Frames{"big", "after"}));
  EXPECT_EQ(oversized, (std::vector<std::string>{"big", "big"}));
  EXPECT_EQ(router_->peer_count(), 1u);
}

TEST_F(ZmtpRouterTest, NonZmtpBytesCloseThatConnectionAndNothingElse) {
  Open();
  auto dealer = Dealer();
  const int fd = RawConnect();
  ASSERT_GE(fd, 0);
  const std::string http = "GET / HTTP/1.1\r\nHost: broker\r\n\r\n";
  ASSERT_EQ(::send(fd, http.data(), http.size(), 0), static_cast<ssize_t>(http.size()));
  // The router answers with its greeting, then closes: read to the end.
  std::string received;
  ASSERT_TRUE(ReadUntilClosed(fd, &received)) << "the connection stayed open";
  ::close(fd);
  PeerSend(dealer, {"still here"});
  auto got = RouterReceive();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ((*got)[1], "still here");
}

TEST_F(ZmtpRouterTest, SocketTypesThatCannotTalkToARouterGetAnError) {
  Open();
  const int fd = RawConnect();
  ASSERT_GE(fd, 0);
  std::string hello;
  zmtp::AppendGreeting(hello);
  zmtp::AppendReady(hello, "SUB");
  ASSERT_EQ(::send(fd, hello.data(), hello.size(), 0), static_cast<ssize_t>(hello.size()));
  std::string received;
  ASSERT_TRUE(ReadUntilClosed(fd, &received));
  ::close(fd);
  EXPECT_NE(received.find("ERROR"), std::string::npos);
  EXPECT_NE(received.find("invalid socket type"), std::string::npos);
  EXPECT_EQ(router_->peer_count(), 0u);
}

// No input may crash, stall or corrupt the router: 300 connections send a
// valid handshake and then random frames (random flags, short and long
// sizes, commands, truncated tails) and close, while a well-behaved
// peer's messages still arrive intact. Run under ASan, this is also the
// memory-safety check of the parser.
TEST_F(ZmtpRouterTest, RandomBytesAfterTheHandshakeNeverDisturbAGoodPeer) {
  Open({.max_message_size = 64 * 1024});
  auto good = Dealer("good");
  std::mt19937 rng(20261127);
  auto byte = [&] { return static_cast<char>(rng() & 0xFF); };
  int received = 0;
  for (int round = 0; round < 300; ++round) {
    const int fd = RawConnect();
    ASSERT_GE(fd, 0);
    std::string wire;
    zmtp::AppendGreeting(wire);
    zmtp::AppendReady(wire, "DEALER");
    const int frames = static_cast<int>(rng() % 20);
    for (int f = 0; f < frames; ++f) {
      switch (rng() % 4) {
        case 0: {  // a well-formed frame, MORE or not
          std::string body(rng() % 300, 'x');
          zmtp::AppendFrame(wire, body, rng() % 2 == 0);
          break;
        }
        case 1: {  // random flags and a short size
          wire.push_back(byte());
          wire.push_back(byte());
          break;
        }
        case 2: {  // a long header with a random, often absurd, size
          wire.push_back(static_cast<char>(zmtp::kFlagLong | (rng() % 2)));
          for (int i = 0; i < 8; ++i) wire.push_back(byte());
          break;
        }
        default: {  // random bytes
          for (int i = static_cast<int>(rng() % 64); i > 0; --i) wire.push_back(byte());
        }
      }
    }
    (void)::send(fd, wire.data(), wire.size(), MSG_NOSIGNAL);
    PeerSend(good, {"ping", std::to_string(round)});
    auto got = RouterReceive();
    // Random peers' well-formed messages may come first; skip to ours.
    while (got && (*got)[0] != "good") got = RouterReceive();
    ASSERT_TRUE(got.has_value()) << "round " << round;
    ASSERT_EQ(*got, (Frames{"good", "ping", std::to_string(round)}));
    ++received;
    ::close(fd);  // often before the router has read it all: a cut stream
  }
  EXPECT_EQ(received, 300);
  EXPECT_TRUE(PumpUntil([&] { return router_->peer_count() == 1; }))
      << "connections were left open: " << router_->peer_count();
}

TEST_F(ZmtpRouterTest, AMessageSentJustBeforeClosingIsStillDelivered) {
  Open();
  {
    zmq::socket_t dealer(ctx_, zmq::socket_type::dealer);
    dealer.set(zmq::sockopt::linger, 2000);
    dealer.connect(TcpEndpoint(port_));
    PeerSend(dealer, {"last words"});
    std::thread closer([&dealer] { dealer.close(); });  // close() lingers
    auto got = RouterReceive();
    closer.join();
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ((*got)[1], "last words");
  }
  EXPECT_TRUE(PumpUntil([&] { return router_->peer_count() == 0; }));
}

TEST_F(ZmtpRouterTest, PeerThatStopsReadingMakesSendsFailWithEagain) {
  Open({.send_hwm = 16});  // 16 x 128 bytes of unsent output
  auto dealer = Dealer("slow");
  PeerSend(dealer, {"hi"});
  ASSERT_TRUE(RouterReceive().has_value());
  const std::string chunk(64 * 1024, 'x');
  bool refused = false;
  // The kernel's socket buffers take a few MB first; 4,000 chunks is 256 MB.
  for (int i = 0; i < 4000 && !refused; ++i) {
    zmq::message_t id("slow", 4);
    if (!router_->Send(id.handle(), true)) {
      EXPECT_EQ(errno, EAGAIN);
      refused = true;
      break;
    }
    zmq::message_t body(chunk.data(), chunk.size());
    ASSERT_TRUE(router_->Send(body.handle(), false));
    router_->Wait(0ms);
  }
  EXPECT_TRUE(refused);
}

// A peer sending faster than the caller takes messages is not buffered
// without bound: the router stops reading it, and TCP pushes back.
TEST_F(ZmtpRouterTest, AFloodingPeerIsReadNoFasterThanItsMessagesAreTaken) {
  Open();
  constexpr int kMessages = 40000;  // 40 MB
  std::atomic<int> sent{0};
  std::thread sender([&] {
    zmq::socket_t dealer = Dealer("flood");
    dealer.set(zmq::sockopt::sndtimeo, 100);
    dealer.set(zmq::sockopt::linger, 5000);
    const std::string body(1000, 'f');
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (sent.load() < kMessages && std::chrono::steady_clock::now() < deadline) {
      if (dealer.send(zmq::buffer(body), zmq::send_flags::none)) sent.fetch_add(1);
    }
  });
  // A second of turning the router without taking a message.
  const auto until = std::chrono::steady_clock::now() + 1s;
  while (std::chrono::steady_clock::now() < until) router_->Wait(10ms);
  const int accepted = sent.load();
  // 1 MiB here, the kernel's socket buffers and the sender's own queue hold
  // a few thousand messages; without back-pressure all 40,000 go.
  EXPECT_LT(accepted, 25000) << "the router read everything it was sent";
  // Taking messages lets the rest through, every one of them, in order.
  int received = 0;
  while (received < kMessages) {
    auto got = RouterReceive(5s);
    ASSERT_TRUE(got.has_value()) << "lost after " << received;
    ASSERT_EQ(got->size(), 2u);
    ++received;
  }
  sender.join();
  EXPECT_EQ(received, kMessages);
}

TEST(ZmtpRouterBind, IpcEndpointsWorkAndTheirFileIsRemovedOnClose) {
  test::TempDir dir;
  const std::string path = dir.path() + "/broker.ipc";
  ZmtpRouter router({});
  ASSERT_TRUE(router.Bind("ipc://" + path).ok());
  zmq::context_t ctx;
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.connect("ipc://" + path);
  dealer.send(zmq::str_buffer("over ipc"));
  bool got = false;
  for (int i = 0; i < 300 && !got; ++i) {
    router.Wait(10ms);
    zmq::message_t m;
    bool more = false;
    if (router.Receive(m.handle(), &more)) {
      ASSERT_TRUE(router.Receive(m.handle(), &more));
      EXPECT_EQ(m.to_string(), "over ipc");
      got = true;
    }
  }
  EXPECT_TRUE(got);
  router.Close(0ms);
  EXPECT_NE(::access(path.c_str(), F_OK), 0);
}

TEST(ZmtpRouterBind, ErrorsSayWhatWasWrong) {
  ZmtpRouter router({});
  test::PortSquatter squatter;
  Status in_use = router.Bind(TcpEndpoint(squatter.port()));
  EXPECT_FALSE(in_use.ok());
  EXPECT_NE(in_use.message().find("Address already in use"), std::string::npos)
      << in_use.message();
  Status scheme = router.Bind("udp://127.0.0.1:5555");
  EXPECT_NE(scheme.message().find("tcp:// and ipc://"), std::string::npos) << scheme.message();
  Status no_port = router.Bind("tcp://127.0.0.1");
  EXPECT_NE(no_port.message().find("no port"), std::string::npos) << no_port.message();
  Status host = router.Bind("tcp://no-such-host.invalid:5555");
  EXPECT_NE(host.message().find("cannot resolve"), std::string::npos) << host.message();
}

}  // namespace
}  // namespace plantd::transport

// The native ZMTP ROUTER against real libzmq peers: the handshake, routing
// ids (no handover), heartbeats, limits and budgets, bad input, ipc, and
// bind errors.
#include "transport/zmtp_router.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/refusal.h"
#include "raw_zmtp.h"
#include "support.h"
#include "transport/server_security.h"
#include "transport/zmtp_framing.h"

namespace plantd::transport {
namespace {

using namespace std::chrono_literals;
using test::Frames;
using test::FreeTcpPort;
using test::RawHandshake;
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

  // A CURVE server key pair loaded as a router's security, and a client key
  // pair for libzmq peers. Null (with a failure) when keys cannot be made.
  struct CurveKeys {
    char server_public[41] = {}, server_secret[41] = {}, client_public[41] = {},
         client_secret[41] = {};
    test::TempDir dir;
    std::shared_ptr<ServerSecurity> security;
    void Secure(zmq::socket_t& socket) const {
      socket.set(zmq::sockopt::curve_serverkey, std::string(server_public));
      socket.set(zmq::sockopt::curve_publickey, std::string(client_public));
      socket.set(zmq::sockopt::curve_secretkey, std::string(client_secret));
    }
  };
  static std::unique_ptr<CurveKeys> MakeCurveKeys() {
    auto keys = std::make_unique<CurveKeys>();
    if (zmq_curve_keypair(keys->server_public, keys->server_secret) != 0 ||
        zmq_curve_keypair(keys->client_public, keys->client_secret) != 0) {
      ADD_FAILURE() << "zmq_curve_keypair failed";
      return nullptr;
    }
    const std::string secret_file = keys->dir.Write(
        "broker_secret", std::string("curve\n    public-key = \"") + keys->server_public +
                             "\"\n    secret-key = \"" + keys->server_secret + "\"\n");
    ::chmod(secret_file.c_str(), 0600);
    auto security = ServerSecurity::LoadCurve({.secret_key_file = secret_file});
    if (!security.ok()) {
      ADD_FAILURE() << security.status().message();
      return nullptr;
    }
    keys->security = std::move(security.value());
    return keys;
  }

  // A peer that sends 40,000 messages of 1,000 bytes while nothing is taken
  // gets only so far; then every message arrives, in order.
  void ExpectFloodIsReadNoFasterThanTaken(const std::function<void(zmq::socket_t&)>& secure);

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

  // A plain TCP connection to the router, for bytes libzmq would not send;
  // from `source` when given (all of 127.0.0.0/8 is loopback on Linux).
  int RawConnect(const char* source = nullptr) const { return test::RawConnect(port_, source); }

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

  // Sends all of `data`, turning the router while the socket is full; false
  // if the router closed the connection or 10 s passed.
  bool RawSendAll(int fd, const std::string& data) {
    size_t sent = 0;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (sent < data.size() && std::chrono::steady_clock::now() < deadline) {
      const ssize_t n =
          ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        sent += static_cast<size_t>(n);
      } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        return false;
      }
      router_->Wait(0ms);
    }
    return sent == data.size();
  }

  // True when the router has closed `fd` (EOF or reset), turning it meanwhile.
  bool WaitClosedByRouter(int fd, std::chrono::milliseconds timeout = 3s) {
    return PumpUntil(
        [&] {
          char buf[65536];
          while (true) {
            const ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
            if (n > 0) continue;
            if (n == 0) return true;
            return errno != EAGAIN && errno != EWOULDBLOCK;
          }
        },
        timeout);
  }

  static void PeerSend(zmq::socket_t& s, const Frames& frames) {
    for (size_t i = 0; i < frames.size(); ++i) {
      s.send(zmq::buffer(frames[i]),
             i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
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

// Issue 12: a routing id belongs to the live connection that holds it. A
// second connection announcing it in READY is refused (no handover): the
// first keeps receiving what is sent to the id, the second gets nothing.
TEST_F(ZmtpRouterTest, ASecondConnectionWithALiveIdentityIsRefused) {
  Open();
  const uint64_t refused_before = refusal::Total(refusal::Reason::kDuplicateIdentity);
  auto first = Dealer("worker-1");
  PeerSend(first, {"hello"});
  auto got = RouterReceive();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ((*got)[0], "worker-1");

  auto attacker = Dealer("worker-1");
  PeerSend(attacker, {"I am worker-1"});
  ASSERT_TRUE(PumpUntil([&] {
    return refusal::Total(refusal::Reason::kDuplicateIdentity) > refused_before;
  })) << "the duplicate was not refused";
  EXPECT_FALSE(RouterReceive(300ms).has_value()) << "the attacker's message was delivered";
  EXPECT_EQ(router_->peer_count(), 1u);
  ASSERT_TRUE(RouterSend({"worker-1", "to-the-real-one"}));
  auto reply = PeerReceive(first);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(*reply, Frames{"to-the-real-one"});
  EXPECT_FALSE(PeerReceive(attacker, 200ms).has_value());
  std::vector<std::string> gone;
  router_->TakeDisconnected(&gone);
  EXPECT_TRUE(gone.empty()) << "a refused newcomer is not a closed peer";

  // Once the holder's connection has closed, the id is free again: a worker
  // that reconnects gets it back.
  attacker.close();
  first.close();
  ASSERT_TRUE(PumpUntil([&] {
    router_->TakeDisconnected(&gone);
    return !gone.empty();
  }));
  EXPECT_EQ(gone, std::vector<std::string>{"worker-1"});
  auto again = Dealer("worker-1");
  PeerSend(again, {"back"});
  got = RouterReceive();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, (Frames{"worker-1", "back"}));
}

// Generated ids keep libzmq's form (5 bytes, a zero first byte) but are
// random: no counter to guess the next or an earlier one from.
TEST_F(ZmtpRouterTest, GeneratedIdsAreRandomAndStartWithAZeroByte) {
  Open();
  std::vector<zmq::socket_t> dealers;
  std::set<std::string> ids;
  std::vector<uint32_t> values;
  for (int i = 0; i < 16; ++i) {
    dealers.push_back(Dealer());
    PeerSend(dealers.back(), {"hi"});
    auto got = RouterReceive();
    ASSERT_TRUE(got.has_value());
    const std::string& id = (*got)[0];
    ASSERT_EQ(id.size(), 5u);
    EXPECT_EQ(id[0], '\0');
    ids.insert(id);
    uint32_t v = 0;
    for (int b = 1; b < 5; ++b) v = (v << 8) | static_cast<uint8_t>(id[b]);
    values.push_back(v);
  }
  EXPECT_EQ(ids.size(), 16u);
  int sequential = 0;
  for (size_t i = 1; i < values.size(); ++i) sequential += values[i] - values[i - 1] < 16;
  EXPECT_LT(sequential, 3) << "ids look like a counter";
}

// libzmq reserves ids starting with a zero byte for generated ones; a peer
// announcing one could be aiming at another peer's id.
TEST_F(ZmtpRouterTest, APeerChosenIdStartingWithZeroIsRefused) {
  Open();
  const uint64_t before = refusal::Total(refusal::Reason::kHandshakeFailed);
  const int fd = RawConnect();
  ASSERT_GE(fd, 0);
  std::string hello;
  zmtp::AppendGreeting(hello);
  zmtp::AppendReady(hello, "DEALER", std::string("\0\1\2\3\4", 5));
  ASSERT_EQ(::send(fd, hello.data(), hello.size(), 0), static_cast<ssize_t>(hello.size()));
  std::string received;
  EXPECT_TRUE(ReadUntilClosed(fd, &received));
  ::close(fd);
  EXPECT_EQ(router_->peer_count(), 0u);
  EXPECT_GT(refusal::Total(refusal::Reason::kHandshakeFailed), before);
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
  ExpectFloodIsReadNoFasterThanTaken(nullptr);
}

// The same with CURVE, where bytes arrive boxed: what waits to be opened
// counts as much as what was opened (issue 16 review: it did not, and one
// peer could fill the whole buffer budget).
TEST_F(ZmtpRouterTest, AFloodingCurvePeerIsReadNoFasterThanItsMessagesAreTaken) {
  auto keys = MakeCurveKeys();
  ASSERT_NE(keys, nullptr);
  Open({.security = keys->security});
  ExpectFloodIsReadNoFasterThanTaken([&](zmq::socket_t& dealer) { keys->Secure(dealer); });
}

// The same when the caller does take messages, a few per turn, as a bus
// thread does that forwards in batches: each turn must not read more than
// was taken. (Before the fix, a peer whose last message had just been
// taken was read as if it had nothing waiting: 256 KiB more per turn, and
// a fast publisher grew the broker by gigabytes.)
TEST_F(ZmtpRouterTest, AFloodingPeerTakenAFewAtATimeIsReadNoFasterThanTaken) {
  Open();
  constexpr int kMessages = 40000;  // 40 MB
  std::atomic<bool> stop{false};
  std::thread sender([&] {
    zmq::socket_t dealer(ctx_, zmq::socket_type::dealer);
    dealer.set(zmq::sockopt::routing_id, "flood");
    dealer.connect(TcpEndpoint(port_));
    dealer.set(zmq::sockopt::sndtimeo, 100);
    dealer.set(zmq::sockopt::linger, 0);
    const std::string body(1000, 'f');
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    for (int sent = 0; sent < kMessages && !stop && std::chrono::steady_clock::now() < deadline;) {
      if (dealer.send(zmq::buffer(body), zmq::send_flags::none)) ++sent;
    }
  });
  int64_t peak = 0;
  int taken = 0;
  const auto until = std::chrono::steady_clock::now() + 2s;
  while (std::chrono::steady_clock::now() < until && taken < kMessages) {
    router_->Wait(1ms);
    zmq::message_t m;
    bool more = true;
    // One message per turn: far slower than the sender.
    while (more && router_->Receive(m.handle(), &more)) {
    }
    if (!more) ++taken;
    peak = std::max(peak, router_->buffered_bytes());
  }
  stop = true;
  sender.join();
  EXPECT_GT(taken, 100) << "messages were taken";
  // 1 MiB of input held before reading pauses, plus one read's worth.
  EXPECT_LE(peak, int64_t{2} << 20) << "input grew while messages were being taken slowly";
}

// With CURVE a frame is opened whole, so one over max_message_size cannot be
// skipped piece by piece as a clear one is: it is refused
// (message_too_large), reported through on_oversized, and its connection
// closed.
TEST_F(ZmtpRouterTest, AnOversizedCurveFrameIsRefusedAndItsConnectionClosed) {
  auto keys = MakeCurveKeys();
  ASSERT_NE(keys, nullptr);
  std::vector<std::string> oversized;
  Open({.max_message_size = 1024,
        .on_oversized = [&](std::string_view id) { oversized.emplace_back(id); },
        .security = keys->security});
  const uint64_t before = refusal::Total(refusal::Reason::kMessageTooLarge);
  zmq::socket_t dealer(ctx_, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.set(zmq::sockopt::routing_id, "big");
  keys->Secure(dealer);
  dealer.connect(TcpEndpoint(port_));
  ASSERT_TRUE(dealer.send(zmq::buffer(std::string(2000, 'x')), zmq::send_flags::none));
  ASSERT_TRUE(PumpUntil([&] { return !oversized.empty(); }));
  EXPECT_EQ(oversized.front(), "big");
  EXPECT_EQ(refusal::Total(refusal::Reason::kMessageTooLarge), before + 1);
  EXPECT_TRUE(PumpUntil([&] { return router_->peer_count() == 0; }));
}

void ZmtpRouterTest::ExpectFloodIsReadNoFasterThanTaken(
    const std::function<void(zmq::socket_t&)>& secure) {
  constexpr int kMessages = 40000;  // 40 MB
  std::atomic<int> sent{0};
  std::thread sender([&] {
    zmq::socket_t dealer(ctx_, zmq::socket_type::dealer);
    dealer.set(zmq::sockopt::routing_id, "flood");
    if (secure) secure(dealer);
    dealer.connect(TcpEndpoint(port_));
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

// --- Issue 12: byte budgets and connection hygiene ---------------------------

// A stream of empty MORE frames costs 2 bytes each on the wire; without a
// frame limit the router would buffer it byte for byte. Past
// max_message_frames the message is skipped as it streams in: memory stays
// flat, the refusal is counted, and the peer's next message arrives.
TEST_F(ZmtpRouterTest, EmptyMoreFramesCannotGrowMemory) {
  std::vector<std::string> dropped;
  Open({.max_message_frames = 256,
        .on_too_many_frames = [&](std::string_view id) { dropped.emplace_back(id); }});
  const uint64_t before = refusal::Total(refusal::Reason::kTooManyFrames);
  const int fd = RawConnect();
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(RawHandshake(fd, "flood"));
  std::string chunk;
  for (int i = 0; i < 512 * 1024; ++i) zmtp::AppendFrame(chunk, "", true);  // 1 MiB
  int64_t peak = 0;
  for (int i = 0; i < 32; ++i) {  // 32 MiB of empty frames
    ASSERT_TRUE(RawSendAll(fd, chunk)) << "after " << i << " MiB";
    peak = std::max(peak, router_->buffered_bytes());
  }
  std::string tail;
  zmtp::AppendFrame(tail, "", false);  // the end of that endless message
  zmtp::AppendFrame(tail, "after", false);
  ASSERT_TRUE(RawSendAll(fd, tail));
  auto got = RouterReceive();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, (Frames{"flood", "after"}));
  EXPECT_EQ(dropped, std::vector<std::string>{"flood"});
  EXPECT_EQ(refusal::Total(refusal::Reason::kTooManyFrames), before + 1);
  // What one read takes in (256 KiB) and a little: not the 32 MiB sent.
  EXPECT_LT(peak, 2 << 20) << "bytes buffered at the peak";
  ::close(fd);
}

// With no frame limit, each frame still costs kFrameCost (a header and a
// zmq_msg_t) of max_message_size.
TEST_F(ZmtpRouterTest, WithoutAFrameLimitEmptyFramesStillCountAgainstTheSize) {
  std::vector<std::string> oversized;
  Open({.max_message_size = 64 * 1024,
        .max_message_frames = 0,
        .on_oversized = [&](std::string_view id) { oversized.emplace_back(id); }});
  const int fd = RawConnect();
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(RawHandshake(fd, "flood"));
  std::string wire;
  for (int i = 0; i < 100000; ++i) zmtp::AppendFrame(wire, "", true);
  zmtp::AppendFrame(wire, "", false);
  zmtp::AppendFrame(wire, "after", false);
  ASSERT_TRUE(RawSendAll(fd, wire));
  auto got = RouterReceive();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, (Frames{"flood", "after"}));
  EXPECT_EQ(oversized, std::vector<std::string>{"flood"});
  ::close(fd);
}

// A peer that sends PINGs and never reads gets at most one unsent PONG.
TEST_F(ZmtpRouterTest, APingFloodFromAPeerThatDoesNotReadQueuesOnePong) {
  Open();
  const int fd = RawConnect();
  ASSERT_GE(fd, 0);
  const int small = 4096;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  ASSERT_TRUE(RawHandshake(fd));
  std::string pings;
  for (int i = 0; i < 100000; ++i) zmtp::AppendPing(pings, 0, "0123456789abcdef");
  int64_t peak = 0;
  for (int i = 0; i < 16; ++i) {  // 1.6 M PINGs, about 40 MB
    ASSERT_TRUE(RawSendAll(fd, pings));
    peak = std::max(peak, router_->buffered_bytes());
  }
  EXPECT_LT(peak, 1 << 20) << "PONGs piled up";
  EXPECT_EQ(router_->peer_count(), 1u) << "PINGs alone are no reason to close";
  ::close(fd);
}

// A peer that does not read its replies: past max_out_bytes the connection
// is closed (slow consumer), reported as closed, and nothing more is queued.
TEST_F(ZmtpRouterTest, APeerThatDoesNotReadIsClosedPastMaxOutBytes) {
  Open({.send_hwm = 0, .max_out_bytes = 1 << 20});
  const uint64_t before = refusal::Total(refusal::Reason::kSlowConsumer);
  const int fd = RawConnect();
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(RawHandshake(fd, "sleepy"));
  ASSERT_TRUE(PumpUntil([&] { return router_->peer_count() == 1; }));
  const std::string chunk(64 * 1024, 'x');
  bool closed = false;
  for (int i = 0; i < 4000 && !closed; ++i) {  // up to 256 MB
    if (!RouterSend({"sleepy", chunk})) {
      EXPECT_EQ(errno, EHOSTUNREACH);
      closed = true;
    }
    router_->Wait(0ms);
    EXPECT_LE(router_->buffered_bytes(), (1 << 20) + 2 * 65536);
  }
  ASSERT_TRUE(closed);
  EXPECT_EQ(router_->peer_count(), 0u);
  EXPECT_GT(refusal::Total(refusal::Reason::kSlowConsumer), before);
  std::vector<std::string> gone;
  router_->TakeDisconnected(&gone);
  EXPECT_EQ(gone, std::vector<std::string>{"sleepy"});
  EXPECT_EQ(router_->buffered_bytes(), 0);
  ::close(fd);
}

// Output that makes no progress for write_timeout closes the connection,
// however little it is.
TEST_F(ZmtpRouterTest, OutputStuckForWriteTimeoutClosesTheConnection) {
  Open({.send_hwm = 0, .write_timeout = 300ms});
  const int fd = RawConnect();
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(RawHandshake(fd, "stuck"));
  ASSERT_TRUE(PumpUntil([&] { return router_->peer_count() == 1; }));
  const std::string chunk(64 * 1024, 'x');
  for (int i = 0; i < 200 && router_->peer_count() == 1; ++i) {  // fills the socket buffers
    RouterSend({"stuck", chunk});
    router_->Wait(0ms);
  }
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(PumpUntil([&] { return router_->peer_count() == 0; }, 3s));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  ::close(fd);
}

TEST_F(ZmtpRouterTest, SendFailsWithEagainPastSendHwmBytes) {
  Open({.send_hwm = 0, .send_hwm_bytes = 256 * 1024});
  const int fd = RawConnect();
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(RawHandshake(fd, "slow"));
  ASSERT_TRUE(PumpUntil([&] { return router_->peer_count() == 1; }));
  const std::string chunk(64 * 1024, 'x');
  bool refused = false;
  for (int i = 0; i < 4000 && !refused; ++i) {
    if (!RouterSend({"slow", chunk})) {
      EXPECT_EQ(errno, EAGAIN);
      refused = true;
    }
    router_->Wait(0ms);
  }
  EXPECT_TRUE(refused);
  EXPECT_FALSE(router_->CanSend("slow"));
  EXPECT_EQ(router_->peer_count(), 1u) << "a high-water mark drops, it does not close";
  ::close(fd);
}

// Half-open connections are closed after handshake_timeout, counted.
TEST_F(ZmtpRouterTest, AConnectionThatNeverFinishesItsHandshakeIsClosed) {
  Open({.handshake_timeout = 200ms});
  const uint64_t before = refusal::Total(refusal::Reason::kHandshakeTimeout);
  const int silent = RawConnect();
  const int greeting_only = RawConnect();
  ASSERT_GE(silent, 0);
  ASSERT_GE(greeting_only, 0);
  std::string greeting;
  zmtp::AppendGreeting(greeting);
  ASSERT_EQ(::send(greeting_only, greeting.data(), greeting.size(), 0),
            static_cast<ssize_t>(greeting.size()));
  auto dealer = Dealer();  // a real peer finishes in time and stays
  PeerSend(dealer, {"hi"});
  ASSERT_TRUE(RouterReceive().has_value());
  EXPECT_TRUE(WaitClosedByRouter(silent, 2s));
  EXPECT_TRUE(WaitClosedByRouter(greeting_only, 2s));
  EXPECT_EQ(refusal::Total(refusal::Reason::kHandshakeTimeout), before + 2);
  EXPECT_EQ(router_->peer_count(), 1u);
  ::close(silent);
  ::close(greeting_only);
}

// One address at its limit: its oldest half-open connection makes room for
// its next one; with none half-open, its new connection is refused. A real
// peer from another address is served throughout.
TEST_F(ZmtpRouterTest, PerAddressLimitLeavesOtherAddressesServed) {
  auto budget = BufferBudget::Make({.max_connections = 100, .max_connections_per_address = 4});
  Open({.budget = budget});
  // Half-open: the fifth evicts the first.
  std::vector<int> fds;
  for (int i = 0; i < 5; ++i) {
    fds.push_back(RawConnect("127.0.0.2"));
    ASSERT_GE(fds.back(), 0);
    ASSERT_TRUE(PumpUntil(
        [&] { return budget->connections_from("127.0.0.2") >= std::min<size_t>(i + 1, 4); }));
  }
  EXPECT_TRUE(WaitClosedByRouter(fds[0]));
  EXPECT_EQ(budget->connections_from("127.0.0.2"), 4u);
  for (int fd : fds) ::close(fd);
  fds.clear();
  ASSERT_TRUE(PumpUntil([&] { return budget->connections_from("127.0.0.2") == 0; }));
  // Finished handshakes: the fifth is refused.
  const uint64_t before = refusal::Total(refusal::Reason::kConnectionsPerAddress);
  for (int i = 0; i < 4; ++i) {
    fds.push_back(RawConnect("127.0.0.2"));
    ASSERT_TRUE(RawHandshake(fds.back(), "attacker-" + std::to_string(i)));
  }
  ASSERT_TRUE(PumpUntil([&] { return router_->peer_count() == 4; }));
  const int fifth = RawConnect("127.0.0.2");
  ASSERT_GE(fifth, 0);
  EXPECT_TRUE(WaitClosedByRouter(fifth));
  EXPECT_EQ(refusal::Total(refusal::Reason::kConnectionsPerAddress), before + 1);
  auto real = Dealer("real");  // from 127.0.0.1
  PeerSend(real, {"served"});
  auto got = RouterReceive();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, (Frames{"real", "served"}));
  ::close(fifth);
  for (int fd : fds) ::close(fd);
}

// A CURVE endpoint takes from one address its burst of handshakes, then
// closes its further connections on accept (a HELLO costs the broker a
// Curve25519 multiplication before it knows the peer), counted as
// handshake_rate. Another address is served meanwhile.
TEST_F(ZmtpRouterTest, CurveHandshakesPastTheirRateAreClosedOnAccept) {
  auto keys = MakeCurveKeys();
  ASSERT_NE(keys, nullptr);
  auto budget = BufferBudget::Make({.curve_handshakes_per_second = 1, .curve_handshake_burst = 3});
  Open({.security = keys->security, .budget = budget});
  const uint64_t before = refusal::Total(refusal::Reason::kHandshakeRate);
  std::vector<int> admitted;
  for (int i = 0; i < 3; ++i) {
    admitted.push_back(RawConnect("127.0.0.4"));
    ASSERT_GE(admitted.back(), 0);
    std::string greeting;
    ASSERT_TRUE(PumpUntil([&] {
      char buf[64];
      const ssize_t n = ::recv(admitted.back(), buf, sizeof(buf), MSG_DONTWAIT);
      if (n > 0) greeting.append(buf, static_cast<size_t>(n));
      return !greeting.empty();
    })) << "connection " << i << " within the burst gets the greeting";
  }
  const int flooding = RawConnect("127.0.0.4");
  ASSERT_GE(flooding, 0);
  std::string received;
  EXPECT_TRUE(ReadUntilClosed(flooding, &received));
  EXPECT_TRUE(received.empty()) << "closed before any byte of the handshake";
  EXPECT_EQ(refusal::Total(refusal::Reason::kHandshakeRate), before + 1);

  zmq::socket_t real(ctx_, zmq::socket_type::dealer);
  real.set(zmq::sockopt::linger, 0);
  real.set(zmq::sockopt::routing_id, "real");
  keys->Secure(real);
  real.connect(TcpEndpoint(port_));  // from 127.0.0.1
  PeerSend(real, {"served"});
  auto got = RouterReceive();
  ASSERT_TRUE(got.has_value()) << "another address is not limited";
  EXPECT_EQ(*got, (Frames{"real", "served"}));
  ::close(flooding);
  for (int fd : admitted) ::close(fd);
}

TEST_F(ZmtpRouterTest, TotalLimitClosesTheOldestHalfOpenConnectionFirst) {
  auto budget = BufferBudget::Make({.max_connections = 3, .max_connections_per_address = 0});
  Open({.budget = budget});
  const int half_open = RawConnect("127.0.0.3");
  ASSERT_GE(half_open, 0);
  auto a = Dealer("a");
  auto b = Dealer("b");
  PeerSend(a, {"1"});
  PeerSend(b, {"2"});
  ASSERT_TRUE(RouterReceive().has_value());
  ASSERT_TRUE(RouterReceive().has_value());
  auto c = Dealer("c");  // the fourth: the half-open one goes
  PeerSend(c, {"3"});
  auto got = RouterReceive();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, (Frames{"c", "3"}));
  EXPECT_TRUE(WaitClosedByRouter(half_open));
  EXPECT_EQ(budget->connections(), 3u);
  // Every slot is past its handshake now: a newcomer is refused and counted.
  const uint64_t before = refusal::Total(refusal::Reason::kConnectionsTotal);
  const int fifth = RawConnect("127.0.0.3");
  ASSERT_GE(fifth, 0);
  EXPECT_TRUE(WaitClosedByRouter(fifth));
  EXPECT_EQ(refusal::Total(refusal::Reason::kConnectionsTotal), before + 1);
  EXPECT_EQ(budget->connections(), 3u);
  ::close(fifth);
  ::close(half_open);
}

// Two sockets share one budget (as the core and the bus threads do): while
// one holds it all, the other reads nothing new; once it drains, both go on.
// Nothing that was sent is lost.
TEST_F(ZmtpRouterTest, AGlobalBudgetPausesInputOnEverySocketUntilItDrains) {
  auto budget = BufferBudget::Make({.max_buffered_bytes = 256 * 1024});
  Open({.budget = budget});
  ZmtpRouter other({.budget = budget});
  const int other_port = FreeTcpPort();
  ASSERT_TRUE(other.Bind(TcpEndpoint(other_port)).ok());
  const uint64_t before = refusal::Total(refusal::Reason::kBufferBudget);
  auto hog = Dealer("hog");
  for (int i = 0; i < 20; ++i) PeerSend(hog, {std::string(64 * 1024, 'h')});  // 1.3 MB
  // Turn this router without taking messages: its buffers fill the budget.
  ASSERT_TRUE(PumpUntil([&] { return budget->InputPaused(); }));
  EXPECT_GT(refusal::Total(refusal::Reason::kBufferBudget), before);
  zmq::socket_t late(ctx_, zmq::socket_type::dealer);
  late.set(zmq::sockopt::linger, 0);
  late.connect(TcpEndpoint(other_port));
  late.send(zmq::str_buffer("waiting"));
  auto take_other = [&]() -> std::optional<std::string> {
    other.Wait(5ms);
    zmq::message_t m;
    bool more = false;
    if (!other.Receive(m.handle(), &more)) return std::nullopt;
    EXPECT_TRUE(other.Receive(m.handle(), &more));
    return m.to_string();
  };
  for (int i = 0; i < 40; ++i) {
    router_->Wait(5ms);
    ASSERT_FALSE(take_other().has_value()) << "read while the budget was spent";
  }
  // Drain: every hog message arrives, then the other socket reads again.
  for (int i = 0; i < 20; ++i) {
    auto got = RouterReceive();
    ASSERT_TRUE(got.has_value()) << i;
    EXPECT_EQ((*got)[1].size(), 64u * 1024);
  }
  std::optional<std::string> got;
  for (int i = 0; i < 300 && !got; ++i) {
    router_->Wait(0ms);
    got = take_other();
  }
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, "waiting");
  other.Close(0ms);
}

// Unfinished messages complete only by reading more, so peers that start
// large messages and stall could hold a spent budget (and every socket's
// input) for ever. After write_timeout of pause, the connection holding the
// most unfinished input is closed, and other peers' messages flow again.
TEST_F(ZmtpRouterTest, StalledUnfinishedMessagesCannotHoldTheBudgetForEver) {
  auto budget = BufferBudget::Make({.max_buffered_bytes = 256 * 1024});
  Open({.write_timeout = 300ms, .budget = budget});
  const uint64_t before = refusal::Total(refusal::Reason::kBufferBudget);
  const int staller = RawConnect();
  ASSERT_GE(staller, 0);
  ASSERT_TRUE(RawHandshake(staller, "staller"));
  std::string partial;
  uint8_t header[zmtp::kMaxFrameHeaderSize];
  const size_t n = zmtp::EncodeFrameHeader(header, 1 << 20, false);  // 1 MiB promised
  partial.append(reinterpret_cast<const char*>(header), n);
  partial.append(400 * 1024, 's');  // 400 KiB sent, then nothing
  ASSERT_TRUE(RawSendAll(staller, partial));
  ASSERT_TRUE(PumpUntil([&] { return budget->InputPaused(); }));
  auto real = Dealer("real");
  PeerSend(real, {"let me in"});
  auto got = RouterReceive(5s);
  ASSERT_TRUE(got.has_value()) << "input stayed paused";
  EXPECT_EQ(*got, (Frames{"real", "let me in"}));
  EXPECT_TRUE(WaitClosedByRouter(staller));
  EXPECT_GE(refusal::Total(refusal::Reason::kBufferBudget), before + 2)
      << "the pause and the eviction are both recorded";
  ::close(staller);
}

// Bodies from ZmtpConnection::kShareFrom on travel by reference: out of
// the receive buffer, into the output as the same message, written with
// sendmsg() from where they are. Forwarded between two libzmq peers, a mix
// of small and large frames, to a reader that falls behind (partial writes
// in the middle of a body), arrives intact and in order; and the receive
// buffers the frames held are all given back once the peers have gone.
TEST_F(ZmtpRouterTest, LargeFramesForwardedByReferenceArriveIntactAtASlowReader) {
  auto budget = BufferBudget::Make({});
  Open({.budget = budget});
  auto from = Dealer("from");
  zmq::socket_t to(ctx_, zmq::socket_type::dealer);
  to.set(zmq::sockopt::linger, 0);
  to.set(zmq::sockopt::routing_id, "to");
  to.set(zmq::sockopt::rcvbuf, 4096);
  to.set(zmq::sockopt::rcvhwm, 4);
  to.connect(TcpEndpoint(port_));
  PeerSend(to, {"hello"});
  ASSERT_TRUE(RouterReceive().has_value());

  std::mt19937 random(7);
  std::uniform_int_distribution<size_t> size_of(0, 200 * 1024);
  std::vector<Frames> sent;
  size_t shared_seen = 0;
  for (int i = 0; i < 60; ++i) {
    Frames frames;
    const int count = 1 + i % 4;
    for (int f = 0; f < count; ++f) {
      std::string body(f % 2 == 0 ? size_of(random) : size_t{10}, '\0');
      for (size_t k = 0; k < body.size(); k += 97) body[k] = static_cast<char>('a' + (i + f) % 26);
      frames.push_back(std::move(body));
    }
    PeerSend(from, frames);
    sent.push_back(frames);
  }
  // Forward each message as it comes, as the broker does: the received
  // frames themselves go to the other peer.
  size_t forwarded = 0;
  ASSERT_TRUE(PumpUntil(
      [&] {
        while (forwarded < sent.size()) {
          std::vector<zmq::message_t> frames;
          zmq::message_t m;
          bool more = true;
          while (more && router_->Receive(m.handle(), &more)) frames.push_back(std::move(m));
          if (frames.empty()) return false;
          shared_seen = std::max<size_t>(shared_seen, static_cast<size_t>(budget->shared_bytes()));
          zmq::message_t id("to", 2);
          EXPECT_TRUE(router_->Send(id.handle(), true));
          for (size_t f = 1; f < frames.size(); ++f) {
            EXPECT_TRUE(router_->Send(frames[f].handle(), f + 1 < frames.size()));
          }
          ++forwarded;
        }
        return true;
      },
      10s));
  EXPECT_GT(shared_seen, 0u) << "no frame was handed out without a copy";
  for (size_t i = 0; i < sent.size(); ++i) {
    auto got = PeerReceive(to, 10s);
    ASSERT_TRUE(got.has_value()) << "message " << i;
    ASSERT_EQ(got->size(), sent[i].size()) << "message " << i;
    for (size_t f = 0; f < got->size(); ++f) {
      ASSERT_TRUE((*got)[f] == sent[i][f]) << "message " << i << " frame " << f;
    }
  }
  // A connection's own buffer counts until its owner next looks at it; once
  // the peers go, nothing is held.
  from.close();
  to.close();
  EXPECT_TRUE(PumpUntil([&] { return budget->shared_bytes() == 0; }))
      << budget->shared_bytes() << " bytes of receive buffers still held";
}

// Frames held past the budget's shared-input limit (a service with no
// worker keeps them): later ones arrive as copies, intact, and the socket's
// stats count them (plantd_broker_frames_copied_past_limit_total).
TEST_F(ZmtpRouterTest, PastTheSharedInputLimitLargeFramesArriveAsCopies) {
  constexpr int64_t kLimit = 2 << 20;
  auto budget = BufferBudget::Make({.max_shared_input_bytes = kLimit});
  Open({.budget = budget});
  auto peer = Dealer("p");
  std::vector<zmq::message_t> held;
  for (int i = 0; i < 40; ++i) {
    PeerSend(peer, {std::string(4096, static_cast<char>('a' + i % 26))});
    // Filler that is taken and dropped, so that each kept frame ends up in
    // a buffer of its own.
    PeerSend(peer, {std::string(100 * 1024, '-')});
  }
  ASSERT_TRUE(PumpUntil(
      [&] {
        zmq::message_t id, body;
        bool more = false;
        while (router_->Receive(id.handle(), &more) && router_->Receive(body.handle(), &more)) {
          if (body.size() == 4096) held.push_back(std::move(body));
        }
        return held.size() == 40;
      },
      10s));
  for (size_t i = 0; i < held.size(); ++i) {
    EXPECT_EQ(held[i].to_string(), std::string(4096, static_cast<char>('a' + i % 26))) << i;
  }
  const RouterSocket::Stats stats = router_->stats();
  EXPECT_GT(stats.frames_copied_past_limit, 0u);
  // The limit is checked before a buffer is first shared: one buffer (at
  // most a read's worth past 1 MiB here) may take it over.
  EXPECT_LE(stats.shared_input_bytes, kLimit + (1 << 20) + 256 * 1024);
  held.clear();
  peer.close();
  // A closed peer's messages are handed out before its connection goes:
  // take the filler still buffered.
  EXPECT_TRUE(PumpUntil([&] {
    zmq::message_t m;
    bool more = false;
    while (router_->Receive(m.handle(), &more)) {
    }
    return budget->shared_bytes() == 0;
  }));
}

// More bodies queued for one peer than one sendmsg() takes pieces (64):
// the output is written in order across several calls, each ending where
// its last body ends.
TEST_F(ZmtpRouterTest, ManyBodiesQueuedAtOnceAreWrittenInOrder) {
  Open();
  // A reader that takes little at a time: writes stop in the middle of a
  // body, and the next one starts with the rest of it.
  zmq::socket_t to(ctx_, zmq::socket_type::dealer);
  to.set(zmq::sockopt::linger, 0);
  to.set(zmq::sockopt::routing_id, "to");
  to.set(zmq::sockopt::rcvbuf, 4096);
  to.set(zmq::sockopt::rcvhwm, 1);
  to.connect(TcpEndpoint(port_));
  PeerSend(to, {"hello"});
  ASSERT_TRUE(RouterReceive().has_value());
  std::vector<Frames> sent;
  for (int i = 0; i < 200; ++i) {
    Frames frames = {"h" + std::to_string(i),
                     std::string(20000 + i, static_cast<char>('a' + i % 26)),
                     "t" + std::to_string(i)};
    Frames with_id = frames;
    with_id.insert(with_id.begin(), "to");
    ASSERT_TRUE(RouterSend(with_id)) << i;
    sent.push_back(frames);
  }
  for (size_t i = 0; i < sent.size(); ++i) {
    auto got = PeerReceive(to, 5s);
    ASSERT_TRUE(got.has_value()) << "message " << i;
    ASSERT_EQ(*got, sent[i]) << "message " << i;
  }
}

// The attack on "received in place": a header announcing a large frame
// costs a peer nothing, so the room set aside for announced frames is
// limited process-wide. Peers that announce and stall take it all; a real
// large message then still arrives, its buffer growing as it comes; and the
// room comes back when the stallers go.
TEST_F(ZmtpRouterTest, FramesAnnouncedAndNeverSentCannotSetAsideMoreThanTheLimit) {
  auto budget = BufferBudget::Make({.max_announced_input_bytes = 4 << 20});
  Open({.budget = budget});
  std::vector<int> stallers;
  for (int i = 0; i < 8; ++i) {
    const int fd = RawConnect();
    ASSERT_GE(fd, 0);
    stallers.push_back(fd);
    ASSERT_TRUE(test::RawHandshake(fd, "staller" + std::to_string(i)));
    uint8_t header[zmtp::kMaxFrameHeaderSize];
    const size_t n = zmtp::EncodeFrameHeader(header, 3 << 20, false);
    ASSERT_TRUE(test::SendAll(fd, std::string(reinterpret_cast<char*>(header), n) + "x"));
  }
  ASSERT_TRUE(PumpUntil([&] { return budget->announce_declined() >= 7; }));
  EXPECT_LE(budget->announced_bytes(), 4 << 20);
  auto big = Dealer("big");
  PeerSend(big, {std::string(2 << 20, 'b')});
  auto got = RouterReceive(10s);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, (Frames{"big", std::string(2 << 20, 'b')}));
  for (int fd : stallers) ::close(fd);
  EXPECT_TRUE(PumpUntil([&] { return budget->announced_bytes() == 0; }))
      << budget->announced_bytes() << " bytes still set aside";
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
  EXPECT_NE(in_use.message().find("Address already in use"), std::string::npos) << in_use.message();
  Status scheme = router.Bind("udp://127.0.0.1:5555");
  EXPECT_NE(scheme.message().find("tcp:// and ipc://"), std::string::npos) << scheme.message();
  Status no_port = router.Bind("tcp://127.0.0.1");
  EXPECT_NE(no_port.message().find("no port"), std::string::npos) << no_port.message();
  Status host = router.Bind("tcp://no-such-host.invalid:5555");
  EXPECT_NE(host.message().find("cannot resolve"), std::string::npos) << host.message();
}

}  // namespace
}  // namespace plantd::transport

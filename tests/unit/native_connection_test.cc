// libplantd's own ZMTP client engine (client/native_connection.h) against
// real peers: libzmq ROUTER sockets over tcp:// and ipc://, and raw TCP
// listeners that play a misbehaving broker byte by byte. Also the
// DealerSocket above it (client/dealer_socket.h): engine choice and
// round-robin. Every wait is bounded in count and time.
#include "client/native_connection.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>
#include <zmq.hpp>

#include "client/dealer_socket.h"
#include "native_connection_driver.h"
#include "plantd/curve.h"
#include "raw_socket_io.h"
#include "transport/zmtp_framing.h"

namespace plantd::client {
namespace {

namespace zmtp = transport::zmtp;
using std::chrono::milliseconds;
using test::LastEndpoint;
using test::TryRecv;
using Clock = std::chrono::steady_clock;
using Frames = NativeConnection::Frames;
using Code = Status::Code;

constexpr milliseconds kWait{5000};

std::string Endpoint(uint16_t port) { return "tcp://127.0.0.1:" + std::to_string(port); }

uint16_t LocalPort(int fd) {
  sockaddr_in address{};
  socklen_t length = sizeof(address);
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
  return ntohs(address.sin_port);
}

// A TCP listener on 127.0.0.1 and a port the kernel picked.
int Listen(int backlog = 4) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_GE(fd, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  EXPECT_EQ(::listen(fd, backlog), 0);
  return fd;
}

// A port nothing listens on (yet): bound once by the kernel's choice, then
// let go, so that a ROUTER can bind it later.
uint16_t FreePort() {
  const int fd = Listen();
  const uint16_t port = LocalPort(fd);
  ::close(fd);
  return port;
}

NativeConnection::Options OptionsFor(std::string endpoint) {
  NativeConnection::Options options;
  options.endpoint = std::move(endpoint);
  return options;
}

std::unique_ptr<NativeConnection> OpenConnection(NativeConnection::Options options) {
  auto opened = NativeConnection::Open(std::move(options));
  EXPECT_TRUE(opened.ok()) << opened.status().message();
  return opened.ok() ? std::move(opened.value()) : nullptr;
}

template <typename Done>
bool DriveUntil(NativeConnection& connection, Done done, milliseconds timeout = kWait) {
  return test::DriveUntil(connection, done, timeout);
}

// The connection's last error has `code` and says `says`.
void ExpectLastError(const NativeConnection& connection, Code code, std::string_view says) {
  const Status& error = connection.last_error();
  EXPECT_EQ(error.code(), code) << error.message();
  EXPECT_NE(error.message().find(says), std::string::npos) << error.message();
}

// Drives until the connection has lost (or failed to make) a connection.
bool DriveUntilError(NativeConnection& connection, milliseconds timeout = kWait) {
  return DriveUntil(
      connection, [&] { return !connection.last_error().ok(); }, timeout);
}

// --- libzmq side ----------------------------------------------------------

// `send_hwm` 0: no limit (a ROUTER drops what goes past it). Set before
// bind: libzmq's listener copies the options when it binds.
zmq::socket_t BindRouter(zmq::context_t& context, const std::string& endpoint,
                         int send_hwm = 1000) {
  zmq::socket_t router(context, zmq::socket_type::router);
  router.set(zmq::sockopt::linger, 0);
  router.set(zmq::sockopt::sndhwm, send_hwm);
  router.bind(endpoint);
  return router;
}

void SendAll(zmq::socket_t& socket, const Frames& frames) {
  for (size_t i = 0; i < frames.size(); ++i) {
    socket.send(zmq::buffer(frames[i]),
                i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }
}

// Takes every message waiting on `router` into `*received`; returns how
// many are there in all.
size_t Collect(zmq::socket_t& router, std::vector<Frames>* received) {
  Frames frames;
  for (int i = 0; i < 10'000 && TryRecv(router, &frames); ++i) received->push_back(frames);
  return received->size();
}

// The frames after the ROUTER's identity frame.
Frames Payload(const Frames& from_router) {
  return from_router.empty() ? Frames{} : Frames(from_router.begin() + 1, from_router.end());
}

std::string Pattern(size_t size) {
  std::string s(size, '\0');
  for (size_t i = 0; i < size; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  return s;
}

// --- raw TCP side (a fake broker) -----------------------------------------

bool IsReadableNow(int fd) {
  pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
  return ::poll(&p, 1, 0) == 1;
}

using Frame = test::RawFrame;
using test::ReadExactly;
using test::ReadFrame;
using test::WaitReadable;
using test::WriteAll;

// A listener that plays the broker's side of ZMTP by hand.
class FakeBroker {
 public:
  FakeBroker() : listener_(Listen()), endpoint_(Endpoint(LocalPort(listener_))) {}
  ~FakeBroker() {
    if (peer_ >= 0) ::close(peer_);
    ::close(listener_);
  }
  FakeBroker(const FakeBroker&) = delete;
  FakeBroker& operator=(const FakeBroker&) = delete;

  const std::string& endpoint() const { return endpoint_; }
  int listener() const { return listener_; }
  int peer() const { return peer_; }

  // Drives `connection` until its connect reaches the listener, then
  // accepts it.
  bool Accept(NativeConnection& connection) {
    if (!DriveUntil(connection, [&] { return IsReadableNow(listener_); })) return false;
    if (peer_ >= 0) ::close(peer_);
    peer_ = ::accept(listener_, nullptr, nullptr);
    return peer_ >= 0;
  }

  void ClosePeer() {
    if (peer_ >= 0) ::close(peer_);
    peer_ = -1;
  }

  bool Write(std::string_view bytes) { return WriteAll(peer_, bytes); }

  // Our greeting and a READY as `socket_type`.
  bool WriteGreetingAndReady(std::string_view socket_type = "ROUTER") {
    std::string out;
    zmtp::AppendGreeting(out);
    zmtp::AppendReady(out, socket_type);
    return Write(out);
  }

  // The client's greeting and READY; checks it says DEALER.
  bool ReadGreetingAndReady() {
    uint8_t greeting[zmtp::kGreetingSize];
    if (!ReadExactly(peer_, greeting, sizeof(greeting))) return false;
    EXPECT_EQ(zmtp::CheckGreeting(greeting), zmtp::GreetingError::kNone);
    Frame ready;
    if (!ReadFrame(peer_, &ready)) return false;
    EXPECT_TRUE(ready.header.command);
    zmtp::PeerMetadata metadata;
    EXPECT_TRUE(zmtp::ParseReady(ready.body, &metadata));
    EXPECT_EQ(metadata.socket_type, "DEALER");
    return true;
  }

  // Accept, both greetings and READYs: `connection` is ready on return.
  bool Handshake(NativeConnection& connection) {
    if (!Accept(connection) || !WriteGreetingAndReady()) return false;
    if (!DriveUntil(connection, [&] { return connection.ready(); })) return false;
    return ReadGreetingAndReady();
  }

 private:
  int listener_;
  std::string endpoint_;
  int peer_ = -1;
};

// --- NativeConnection with libzmq ROUTERs ----------------------------------

// A DEALER connected without ZMQ_IMMEDIATE keeps what was sent before the
// broker was up; so must the native engine, across failed attempts.
TEST(NativeConnection, MessageSentBeforeTheRouterExistsArrivesOnceItIsBound) {
  const uint16_t port = FreePort();
  const std::string endpoint = Endpoint(port);
  auto connection = OpenConnection(OptionsFor(endpoint));
  ASSERT_NE(connection, nullptr);
  const std::string big = Pattern(size_t{1} << 20);
  const Frames sent = {"", "first", "", big, ""};
  ASSERT_TRUE(connection->Send({}, sent));
  // Nothing listens yet: the first attempt fails, and says why.
  ASSERT_TRUE(DriveUntilError(*connection));
  ExpectLastError(*connection, Code::kUnavailable, endpoint);
  EXPECT_FALSE(connection->ready());

  zmq::context_t context;
  zmq::socket_t router = BindRouter(context, endpoint);
  std::vector<Frames> received;
  ASSERT_TRUE(DriveUntil(*connection, [&] { return Collect(router, &received) >= 1; }))
      << "last error: " << connection->last_error().message();
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(Payload(received[0]), sent) << "frames, empty ones and the 1 MiB one, exactly";
  EXPECT_TRUE(connection->ready());
  EXPECT_EQ(connection->connections(), 1u);
  EXPECT_TRUE(connection->last_error().ok()) << "a finished handshake clears the old error";
  EXPECT_EQ(connection->dropped_messages(), 0u);
}

TEST(NativeConnection, RoundTripsAThousandMultiFrameMessagesInOrderWithARouter) {
  zmq::context_t context;
  zmq::socket_t router = BindRouter(context, "tcp://127.0.0.1:0");
  auto connection = OpenConnection(OptionsFor(LastEndpoint(router)));
  ASSERT_NE(connection, nullptr);
  constexpr int kMessages = 1000;
  // Head and body frames both count; all sent at once, before the
  // connection is even up, so that the queue and the pipelining are used.
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_TRUE(connection->Send({"", "MDPC01"}, {"echo", std::to_string(i), ""}));
  }
  std::vector<Frames> replies;
  int echoed = 0;
  const bool all = DriveUntil(*connection, [&] {
    Frames request;
    for (int k = 0; k < 10'000 && TryRecv(router, &request); ++k) {
      // [identity, "", "MDPC01", "echo", i, ""] -> [identity, "", "reply", i, ""].
      EXPECT_EQ(request.size(), 6u);
      if (request.size() != 6) continue;
      EXPECT_EQ(request[4], std::to_string(echoed));
      SendAll(router, {request[0], "", "reply", request[4], ""});
      ++echoed;
    }
    Frames reply;
    while (connection->Recv(&reply)) replies.push_back(reply);
    return replies.size() >= static_cast<size_t>(kMessages);
  });
  ASSERT_TRUE(all) << "got " << replies.size() << " replies, the ROUTER saw " << echoed
                   << " requests; last error: " << connection->last_error().message();
  ASSERT_EQ(replies.size(), static_cast<size_t>(kMessages));
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_EQ(replies[i], (Frames{"", "reply", std::to_string(i), ""})) << "reply " << i;
  }
  Frames extra;
  EXPECT_FALSE(connection->Recv(&extra)) << "no message beyond those sent";
  EXPECT_FALSE(connection->has_message());
  EXPECT_TRUE(connection->ready());
  EXPECT_EQ(connection->connections(), 1u);
  EXPECT_EQ(connection->dropped_messages(), 0u);
}

// Frames larger than one read (and than one Process's read budget) arrive
// whole, next to empty frames.
TEST(NativeConnection, ReceivesMultiMegabyteAndEmptyFramesFromARouter) {
  zmq::context_t context;
  zmq::socket_t router = BindRouter(context, "tcp://127.0.0.1:0");
  auto connection = OpenConnection(OptionsFor(LastEndpoint(router)));
  ASSERT_NE(connection, nullptr);
  ASSERT_TRUE(connection->Send({}, {"hello"}));
  std::vector<Frames> received;
  ASSERT_TRUE(DriveUntil(*connection, [&] { return Collect(router, &received) >= 1; }));
  const Frames reply = {"", Pattern(size_t{1} << 20), "", Pattern(3 * (size_t{1} << 20) + 17), ""};
  Frames routed = {received[0][0]};
  routed.insert(routed.end(), reply.begin(), reply.end());
  SendAll(router, routed);
  Frames got;
  ASSERT_TRUE(DriveUntil(*connection, [&] { return connection->Recv(&got); }))
      << connection->last_error().message();
  EXPECT_EQ(got, reply);
}

TEST(NativeConnection, ReconnectsByItselfWhenTheRouterGoesAndComesBack) {
  zmq::context_t context;
  auto first = std::make_unique<zmq::socket_t>(BindRouter(context, "tcp://127.0.0.1:0"));
  const std::string endpoint = LastEndpoint(*first);
  auto connection = OpenConnection(OptionsFor(endpoint));
  ASSERT_NE(connection, nullptr);
  ASSERT_TRUE(connection->Send({}, {"before"}));
  std::vector<Frames> received;
  ASSERT_TRUE(DriveUntil(*connection, [&] { return Collect(*first, &received) >= 1; }));
  EXPECT_EQ(Payload(received[0]), Frames{"before"});
  ASSERT_EQ(connection->connections(), 1u);

  first.reset();  // the broker goes away
  ASSERT_TRUE(DriveUntil(*connection, [&] { return !connection->ready(); }))
      << "the loss of the peer went unnoticed";
  // Why it was lost, as soon as it was (later attempts say "refused").
  ExpectLastError(*connection, Code::kUnavailable, endpoint);
  EXPECT_EQ(connection->connections(), 1u);

  zmq::socket_t second = BindRouter(context, endpoint);
  ASSERT_TRUE(DriveUntil(*connection, [&] { return connection->connections() == 2; }))
      << "no new connection; last error: " << connection->last_error().message();
  EXPECT_TRUE(connection->ready());
  EXPECT_TRUE(connection->last_error().ok());
  received.clear();
  ASSERT_TRUE(connection->Send({}, {"after"}));
  ASSERT_TRUE(DriveUntil(*connection, [&] { return Collect(second, &received) >= 1; }));
  EXPECT_EQ(Payload(received[0]), Frames{"after"});
}

// Without `reconnect` (a Majordomo worker's choice: a new connection must
// begin with READY), a lost connection stays lost, even with a broker back
// on the same port, and so does one that never got through.
TEST(NativeConnection, WithoutReconnectALostConnectionIsFinal) {
  zmq::context_t context;
  auto router = std::make_unique<zmq::socket_t>(BindRouter(context, "tcp://127.0.0.1:0"));
  const std::string endpoint = LastEndpoint(*router);
  NativeConnection::Options options = OptionsFor(endpoint);
  options.reconnect = false;
  options.reconnect_interval = milliseconds(10);
  auto connection = OpenConnection(options);
  ASSERT_NE(connection, nullptr);
  ASSERT_TRUE(DriveUntil(*connection, [&] { return connection->ready(); }));
  EXPECT_FALSE(connection->closed());

  router.reset();
  ASSERT_TRUE(DriveUntil(*connection, [&] { return connection->closed(); }));
  EXPECT_EQ(connection->fd(), -1);
  EXPECT_EQ(connection->next_timer(), Clock::time_point::max());
  zmq::socket_t back = BindRouter(context, endpoint);
  EXPECT_FALSE(DriveUntil(
      *connection, [&] { return connection->connections() > 1; }, milliseconds(200)));
  EXPECT_TRUE(connection->closed());

  options.endpoint = Endpoint(FreePort());  // nothing listens there
  auto unreachable = OpenConnection(options);
  ASSERT_NE(unreachable, nullptr);
  ASSERT_TRUE(DriveUntil(*unreachable, [&] { return unreachable->closed(); }));
  EXPECT_EQ(unreachable->connections(), 0u);
  EXPECT_EQ(unreachable->last_error().code(), Code::kUnavailable);
}

TEST(NativeConnection, CorkedSendsWaitAndUncorkWritesThemAllInOrder) {
  zmq::context_t context;
  zmq::socket_t router = BindRouter(context, "tcp://127.0.0.1:0");
  auto connection = OpenConnection(OptionsFor(LastEndpoint(router)));
  ASSERT_NE(connection, nullptr);
  ASSERT_TRUE(DriveUntil(*connection, [&] { return connection->ready(); }));

  connection->Cork();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(connection->Send({""}, {"corked", std::to_string(i)}));
  std::vector<Frames> received;
  // Nothing may come out while corked: a bounded look, which passes only
  // by waiting it out (the uncorked sends below arrive well within it).
  EXPECT_FALSE(DriveUntil(
      *connection, [&] { return Collect(router, &received) > 0; }, milliseconds(300)))
      << "a corked send was written";

  connection->Uncork();
  ASSERT_TRUE(DriveUntil(*connection, [&] { return Collect(router, &received) >= 5; }));
  ASSERT_EQ(received.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(Payload(received[i]), (Frames{"", "corked", std::to_string(i)})) << "message " << i;
  }
}

// As libzmq's receive high-water mark: a caller that does not Recv leaves
// the broker's messages in TCP once max_received_messages are held (give
// or take one read's worth), and gets every one, in order, when it does.
TEST(NativeConnection, StopsReadingWhileMaxReceivedMessagesWaitForRecv) {
  zmq::context_t context;
  zmq::socket_t router = BindRouter(context, "tcp://127.0.0.1:0", /*send_hwm=*/0);
  auto options = OptionsFor(LastEndpoint(router));
  options.max_received_messages = 100;
  auto connection = OpenConnection(options);
  ASSERT_NE(connection, nullptr);
  ASSERT_TRUE(connection->Send({}, {"hello"}));
  std::vector<Frames> received;
  ASSERT_TRUE(DriveUntil(*connection, [&] { return Collect(router, &received) >= 1; }));
  constexpr int kMessages = 2000;
  const std::string payload = Pattern(4096);
  for (int i = 0; i < kMessages; ++i) SendAll(router, {received[0][0], std::to_string(i), payload});

  // A bounded look without Recv: only waiting it out shows reading stopped.
  EXPECT_FALSE(DriveUntil(
      *connection, [] { return false; }, milliseconds(300)));
  std::vector<Frames> replies;
  Frames reply;
  while (replies.size() < kMessages && connection->Recv(&reply)) replies.push_back(reply);
  EXPECT_GE(replies.size(), 100u);
  // One Process reads at most 1 MiB past the limit: 256 messages of 4 KiB.
  EXPECT_LE(replies.size(), 100u + 300u) << "reading went on past max_received_messages";

  ASSERT_TRUE(DriveUntil(*connection,
                         [&] {
                           while (replies.size() < kMessages && connection->Recv(&reply))
                             replies.push_back(reply);
                           return replies.size() >= kMessages;
                         }))
      << "got " << replies.size() << "; last error: " << connection->last_error().message();
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_EQ(replies[i], (Frames{std::to_string(i), payload})) << "message " << i;
  }
}

TEST(NativeConnection, RoundTripsOverIpcWithARouter) {
  static std::atomic<int> made{0};
  const std::string path = "/tmp/plantd-native-connection-test-" + std::to_string(::getpid()) +
                           "-" + std::to_string(++made) + ".sock";
  const std::string endpoint = "ipc://" + path;
  {
    zmq::context_t context;
    zmq::socket_t router = BindRouter(context, endpoint);
    auto connection = OpenConnection(OptionsFor(endpoint));
    ASSERT_NE(connection, nullptr);
    ASSERT_TRUE(connection->Send({""}, {"over", "ipc", ""}));
    std::vector<Frames> received;
    ASSERT_TRUE(DriveUntil(*connection, [&] { return Collect(router, &received) >= 1; }))
        << connection->last_error().message();
    EXPECT_EQ(Payload(received[0]), (Frames{"", "over", "ipc", ""}));
    SendAll(router, {received[0][0], "", "back", ""});
    Frames reply;
    ASSERT_TRUE(DriveUntil(*connection, [&] { return connection->Recv(&reply); }));
    EXPECT_EQ(reply, (Frames{"", "back", ""}));
    EXPECT_EQ(connection->connections(), 1u);
  }
  ::unlink(path.c_str());  // libzmq removes it on close; this covers a failed test
}

// --- NativeConnection with a fake broker -----------------------------------

TEST(NativeConnection, AnswersAPingWithAPongCarryingTheSameContext) {
  FakeBroker broker;
  auto connection = OpenConnection(OptionsFor(broker.endpoint()));
  ASSERT_NE(connection, nullptr);
  ASSERT_TRUE(broker.Handshake(*connection));

  const std::string context = "ctx-0123456789AB";  // the longest: 16 bytes
  std::string ping;
  zmtp::AppendPing(ping, /*ttl_deciseconds=*/30, context);
  ASSERT_TRUE(broker.Write(ping));
  ASSERT_TRUE(DriveUntil(*connection, [&] { return IsReadableNow(broker.peer()); }))
      << "no answer to the PING";
  Frame pong;
  ASSERT_TRUE(ReadFrame(broker.peer(), &pong));
  EXPECT_TRUE(pong.header.command);
  EXPECT_EQ(zmtp::CommandName(pong.body), "PONG");
  std::string expected;
  zmtp::AppendPong(expected, context);
  Frame expected_frame;
  ASSERT_EQ(zmtp::ParseFrameHeader(reinterpret_cast<const uint8_t*>(expected.data()),
                                   expected.size(), &expected_frame.header),
            zmtp::HeaderParse::kOk);
  EXPECT_EQ(pong.body, expected.substr(expected_frame.header.header_size)) << "the same context";
  EXPECT_TRUE(connection->ready()) << "a PING is no reason to close";
  Frames none;
  EXPECT_FALSE(connection->Recv(&none)) << "a PING is not a message";
}

TEST(NativeConnection, MessageLargerThanMaxMessageBytesClosesWithProtocolError) {
  FakeBroker broker;
  auto options = OptionsFor(broker.endpoint());
  // Two frames of 24 and 1000 bytes, with what holding each costs (the
  // limit counts a std::string per frame, native_connection.h).
  options.max_message_bytes = 24 + 1000 + 2 * sizeof(std::string);
  auto connection = OpenConnection(options);
  ASSERT_NE(connection, nullptr);
  ASSERT_TRUE(broker.Handshake(*connection));

  // At the limit: delivered. One byte more: the connection closes, and
  // nothing of that message is delivered.
  std::string at_limit;
  zmtp::AppendFrame(at_limit, std::string(24, 'a'), /*more=*/true);
  zmtp::AppendFrame(at_limit, std::string(1000, 'b'), /*more=*/false);
  ASSERT_TRUE(broker.Write(at_limit));
  Frames message;
  ASSERT_TRUE(DriveUntil(*connection, [&] { return connection->Recv(&message); }))
      << "the message at the limit was refused: " << connection->last_error().message();
  EXPECT_EQ(message, (Frames{std::string(24, 'a'), std::string(1000, 'b')}));
  EXPECT_TRUE(connection->ready());

  std::string over;
  zmtp::AppendFrame(over, std::string(25, 'c'), /*more=*/true);
  zmtp::AppendFrame(over, std::string(1000, 'd'), /*more=*/false);
  ASSERT_TRUE(broker.Write(over));
  ASSERT_TRUE(DriveUntilError(*connection));
  ExpectLastError(*connection, Code::kProtocolError, "larger than");
  EXPECT_FALSE(connection->ready());
  EXPECT_FALSE(connection->Recv(&message)) << "nothing of the oversized message";
}

// The size is checked from the header alone: a peer cannot make the client
// wait for (or buffer) a huge body.
TEST(NativeConnection, OversizedFrameHeaderAloneClosesTheConnection) {
  FakeBroker broker;
  auto options = OptionsFor(broker.endpoint());
  options.max_message_bytes = 1024;
  auto connection = OpenConnection(options);
  ASSERT_NE(connection, nullptr);
  ASSERT_TRUE(broker.Handshake(*connection));
  uint8_t header[zmtp::kMaxFrameHeaderSize];
  const size_t size = zmtp::EncodeFrameHeader(header, uint64_t{1} << 40, /*more=*/false);
  ASSERT_TRUE(broker.Write(std::string_view(reinterpret_cast<const char*>(header), size)));
  ASSERT_TRUE(DriveUntilError(*connection, milliseconds(2000)));
  EXPECT_EQ(connection->last_error().code(), Code::kProtocolError);
  Frames message;
  EXPECT_FALSE(connection->Recv(&message));
}

TEST(NativeConnection, ErrorCommandDuringTheHandshakeIsPermissionDeniedWithTheReason) {
  FakeBroker broker;
  auto connection = OpenConnection(OptionsFor(broker.endpoint()));
  ASSERT_NE(connection, nullptr);
  ASSERT_TRUE(broker.Accept(*connection));
  std::string out;
  zmtp::AppendGreeting(out);
  zmtp::AppendError(out, "not on the guest list");
  ASSERT_TRUE(broker.Write(out));
  ASSERT_TRUE(DriveUntilError(*connection));
  ExpectLastError(*connection, Code::kPermissionDenied, "not on the guest list");
  EXPECT_FALSE(connection->ready());
  EXPECT_EQ(connection->connections(), 0u);
}

TEST(NativeConnection, PeerThatDoesNotSpeakZmtpIsAProtocolError) {
  FakeBroker broker;
  auto connection = OpenConnection(OptionsFor(broker.endpoint()));
  ASSERT_NE(connection, nullptr);
  ASSERT_TRUE(broker.Accept(*connection));
  ASSERT_TRUE(broker.Write("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
  ASSERT_TRUE(DriveUntilError(*connection));
  ExpectLastError(*connection, Code::kProtocolError, "ZMTP");
  EXPECT_EQ(connection->connections(), 0u);
}

TEST(NativeConnection, PeerThatIsNotARouterOrDealerIsAProtocolError) {
  FakeBroker broker;
  auto connection = OpenConnection(OptionsFor(broker.endpoint()));
  ASSERT_NE(connection, nullptr);
  ASSERT_TRUE(broker.Accept(*connection));
  ASSERT_TRUE(broker.WriteGreetingAndReady("PUB"));
  ASSERT_TRUE(DriveUntilError(*connection));
  ExpectLastError(*connection, Code::kProtocolError, "PUB");
  EXPECT_EQ(connection->connections(), 0u);
}

TEST(NativeConnection, SilentPeerMakesTheHandshakeTimeOut) {
  FakeBroker broker;
  auto options = OptionsFor(broker.endpoint());
  options.handshake_timeout = milliseconds(200);
  const auto start = Clock::now();
  auto connection = OpenConnection(options);
  ASSERT_NE(connection, nullptr);
  ASSERT_TRUE(broker.Accept(*connection));  // accepted, and never a byte back
  ASSERT_TRUE(DriveUntilError(*connection));
  const auto elapsed = Clock::now() - start;
  EXPECT_GE(elapsed, milliseconds(200)) << "gave up before the handshake timeout";
  EXPECT_LT(elapsed, milliseconds(2000)) << "the handshake timeout was not applied";
  EXPECT_NE(connection->last_error().message().find("handshake"), std::string::npos)
      << connection->last_error().message();
  EXPECT_NE(connection->last_error().message().find("200 ms"), std::string::npos)
      << connection->last_error().message();
  EXPECT_FALSE(connection->ready());
  EXPECT_EQ(connection->connections(), 0u);
}

// Reads a DEALER's messages [index, payload...] off a raw connection as
// they come, keeping the index of each whole message.
struct MessageIndexReader {
  std::vector<int> indices;
  std::string pending;  // bytes not parsed yet
  std::string index;    // the first frame of the message arriving
  bool in_message = false;

  // Reads once what is there without waiting; false when nothing was.
  bool ReadAvailable(int fd) {
    char chunk[1 << 16];
    const ssize_t n = ::recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT);
    if (n <= 0) return false;
    pending.append(chunk, static_cast<size_t>(n));
    size_t at = 0;
    while (true) {
      zmtp::FrameHeader h;
      const auto* data = reinterpret_cast<const uint8_t*>(pending.data()) + at;
      if (zmtp::ParseFrameHeader(data, pending.size() - at, &h) != zmtp::HeaderParse::kOk) break;
      if (pending.size() - at - h.header_size < h.size) break;
      if (!in_message) index = pending.substr(at + h.header_size, h.size);
      at += h.header_size + h.size;
      in_message = h.more;
      if (!h.more) indices.push_back(std::stoi(index));
    }
    pending.erase(0, at);
    return true;
  }
};

// A message that had begun to go when its connection was lost may be lost
// with it, but one written whole into the old connection must not be sent
// again on the next (a broker would run the request twice). The fake
// broker stops reading so that the client's writes hit EAGAIN, reads what
// did arrive, resets the connection and reads what the next one carries.
TEST(NativeConnection, MessagesWrittenWholeBeforeALossAreNotSentAgain) {
  FakeBroker broker;
  auto options = OptionsFor(broker.endpoint());
  options.max_queued_bytes = size_t{128} << 20;
  auto connection = OpenConnection(options);
  ASSERT_NE(connection, nullptr);
  ASSERT_TRUE(broker.Handshake(*connection));

  // Well past what the loopback socket buffers hold, so that the writes
  // block part-way.
  constexpr int kMessages = 600;
  const std::string payload = Pattern(64 * 1024);
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_TRUE(connection->Send({std::to_string(i)}, {payload}));
  }

  // The broker takes what is there and the client writes more, twice: so
  // that a write resumes part-way through a message and blocks again
  // further on. Then what is there at the end; the client is not driven
  // meanwhile (only Process and Send write).
  MessageIndexReader first;
  for (int cycle = 0; cycle < 2; ++cycle) {
    for (int i = 0; i < 10'000 && first.ReadAvailable(broker.peer()); ++i) {
    }
    int rounds = 0;
    DriveUntil(
        *connection, [&] { return ++rounds > 3; }, milliseconds(500));
  }
  for (int i = 0; i < 10'000 && first.ReadAvailable(broker.peer()); ++i) {
  }
  ASSERT_GE(first.indices.size(), 2u) << "the test needs messages through before the loss";
  ASSERT_LT(first.indices.size(), static_cast<size_t>(kMessages)) << "the writes never blocked";

  // Reset: close with unread data sends an RST.
  linger reset{.l_onoff = 1, .l_linger = 0};
  ::setsockopt(broker.peer(), SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
  broker.ClosePeer();
  ASSERT_TRUE(DriveUntil(*connection, [&] { return !connection->ready(); }));
  ASSERT_TRUE(broker.Handshake(*connection));
  ASSERT_EQ(connection->connections(), 2u);

  // The second connection: collect until the last message or a bound.
  MessageIndexReader reader;
  const std::vector<int>& second = reader.indices;
  const bool got_last = DriveUntil(*connection, [&] {
    for (int i = 0; i < 1000 && reader.ReadAvailable(broker.peer()); ++i) {
    }
    return !second.empty() && second.back() == kMessages - 1;
  });
  ASSERT_TRUE(got_last) << "the rest never came; last error: "
                        << connection->last_error().message();
  ASSERT_FALSE(second.empty());
  EXPECT_GT(second.front(), first.indices.back())
      << "message " << second.front() << " went again though message " << first.indices.back()
      << " and those before it had arrived whole on the lost connection ("
      << connection->dropped_messages() << " counted as dropped)";
  for (size_t i = 1; i < second.size(); ++i) {
    ASSERT_EQ(second[i], second[i - 1] + 1) << "in order, none missing, on the new connection";
  }
}

// A peer that reads steadily but never catches up: what went is dropped
// from the buffer, which holds about what waits, not all that ever went.
TEST(NativeConnection, OutputThatWentIsFreedWhileThePeerNeverCatchesUp) {
  FakeBroker broker;
  // A small receive buffer (inherited from the listener), so that the
  // backlog below never fits in the kernel's buffers.
  const int small = 64 * 1024;
  ASSERT_EQ(::setsockopt(broker.listener(), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
  auto options = OptionsFor(broker.endpoint());
  options.max_queued_bytes = size_t{128} << 20;
  auto connection = OpenConnection(options);
  ASSERT_NE(connection, nullptr);
  ASSERT_TRUE(broker.Handshake(*connection));
  const std::string payload = Pattern(16 * 1024);
  // A backlog of ~8 MiB, then one more message per message read.
  int sent = 0;
  for (; sent < 512; ++sent) ASSERT_TRUE(connection->Send({std::to_string(sent)}, {payload}));
  MessageIndexReader reader;
  size_t read = 0;
  for (int round = 0; round < 20'000 && sent < 3000; ++round) {
    for (int i = 0; i < 4 && reader.ReadAvailable(broker.peer()); ++i) {
    }
    for (; read < reader.indices.size() && sent < 3000; ++read, ++sent) {
      ASSERT_TRUE(connection->Send({std::to_string(sent)}, {payload}));
    }
    int rounds = 0;
    DriveUntil(
        *connection, [&] { return ++rounds > 1; }, milliseconds(20));
  }
  ASSERT_EQ(sent, 3000) << "the peer did not keep reading";
  // ~48 MiB went through; the buffer holds the backlog and what is in
  // flight, far less.
  EXPECT_LT(connection->held_bytes(), size_t{16} << 20);
  for (size_t i = 1; i < reader.indices.size(); ++i) {
    ASSERT_EQ(reader.indices[i], reader.indices[i - 1] + 1) << "in order, none missing";
  }
}

// --- Queue bound and endpoints ---------------------------------------------

TEST(NativeConnection, SendRefusesPastMaxQueuedBytesWhileNothingIsConnected) {
  const uint16_t port = FreePort();
  auto options = OptionsFor(Endpoint(port));
  options.max_queued_bytes = 10'000;
  auto connection = OpenConnection(options);
  ASSERT_NE(connection, nullptr);
  const std::string kilobyte(1000, 'q');
  int accepted = 0;
  for (int i = 0; i < 100; ++i) {
    if (!connection->Send({std::to_string(i)}, {kilobyte})) break;
    ++accepted;
  }
  // Each message takes a little more than 1000 bytes.
  EXPECT_GE(accepted, 8);
  EXPECT_LE(accepted, 9);
  EXPECT_FALSE(connection->Send({"refused"}, {kilobyte})) << "still full";

  // What was accepted goes, whole and in order, once a broker is there;
  // what was refused does not.
  zmq::context_t context;
  zmq::socket_t router = BindRouter(context, Endpoint(port));
  std::vector<Frames> received;
  ASSERT_TRUE(DriveUntil(*connection, [&] {
    return Collect(router, &received) >= static_cast<size_t>(accepted);
  })) << connection->last_error().message();
  ASSERT_TRUE(connection->Send({"after"}, {})) << "room again once the queue went out";
  ASSERT_TRUE(DriveUntil(*connection, [&] {
    return Collect(router, &received) >= static_cast<size_t>(accepted) + 1;
  }));
  ASSERT_EQ(received.size(), static_cast<size_t>(accepted) + 1);
  for (int i = 0; i < accepted; ++i) {
    EXPECT_EQ(Payload(received[i]), (Frames{std::to_string(i), kilobyte}));
  }
  EXPECT_EQ(Payload(received.back()), Frames{"after"});
}

TEST(NativeConnection, OpenRejectsMalformedEndpointsAsInvalidArgument) {
  for (const char* endpoint : {"tcp://nohost", "tcp://*:5", "udp://x:1", "ipc://", "tcp://:5",
                               "tcp://host:", "tcp://host:0", "tcp://host:65536", "tcp://host:5x",
                               "inproc://x", "tcp://a;b:1", ""}) {
    auto opened = NativeConnection::Open(OptionsFor(endpoint));
    ASSERT_FALSE(opened.ok()) << endpoint;
    EXPECT_EQ(opened.status().code(), Code::kInvalidArgument) << endpoint;
    EXPECT_NE(opened.status().message().find(endpoint), std::string::npos)
        << "the message names the endpoint: " << opened.status().message();
  }
}

TEST(NativeConnection, OpenRejectsNonPositiveOptions) {
  auto zero_interval = OptionsFor("tcp://127.0.0.1:5");
  zero_interval.reconnect_interval = milliseconds(0);
  auto zero_timeout = OptionsFor("tcp://127.0.0.1:5");
  zero_timeout.handshake_timeout = milliseconds(0);
  auto zero_queue = OptionsFor("tcp://127.0.0.1:5");
  zero_queue.max_queued_bytes = 0;
  auto zero_message = OptionsFor("tcp://127.0.0.1:5");
  zero_message.max_message_bytes = 0;
  for (const auto& options : {zero_interval, zero_timeout, zero_queue, zero_message}) {
    auto opened = NativeConnection::Open(options);
    ASSERT_FALSE(opened.ok());
    EXPECT_EQ(opened.status().code(), Code::kInvalidArgument);
  }
}

TEST(NativeConnection, SupportsTcpWithHostAndPortAndIpcOnly) {
  for (const char* endpoint : {"tcp://127.0.0.1:5555", "tcp://localhost:1", "tcp://[::1]:65535",
                               "ipc:///tmp/broker.sock", "ipc://@abstract"}) {
    EXPECT_TRUE(NativeConnection::Supports(endpoint)) << endpoint;
  }
  for (const char* endpoint : {"tcp://nohost", "tcp://*:5", "udp://x:1", "ipc://", "inproc://x",
                               "tcp://a;b:1", "tcp://host:0", "pgm://eth0;239.1.1.1:5555"}) {
    EXPECT_FALSE(NativeConnection::Supports(endpoint)) << endpoint;
  }
}

// --- DealerSocket ----------------------------------------------------------

TEST(ChooseEngine, TakesNativeForTcpAndIpcWithoutCurveUnderAuto) {
  DealerOptions options;  // kAuto
  auto engine =
      ChooseEngine({"tcp://127.0.0.1:5", "ipc:///tmp/x.sock"}, options.engine, options.curve);
  ASSERT_TRUE(engine.ok());
  EXPECT_EQ(engine.value(), mdp::Engine::kNative);
}

TEST(ChooseEngine, FallsBackToLibzmqForCurveOrOtherTransports) {
  DealerOptions curve;
  curve.curve.server_key = "any-key-turns-curve-on";
  ASSERT_TRUE(curve.curve.enabled());
  auto with_curve = ChooseEngine({"tcp://127.0.0.1:5"}, curve.engine, curve.curve);
  ASSERT_TRUE(with_curve.ok());
  EXPECT_EQ(with_curve.value(), mdp::Engine::kLibzmq);

  DealerOptions plain;
  auto inproc = ChooseEngine({"tcp://127.0.0.1:5", "inproc://x"}, plain.engine, plain.curve);
  ASSERT_TRUE(inproc.ok());
  EXPECT_EQ(inproc.value(), mdp::Engine::kLibzmq) << "one endpoint the native engine cannot serve";

  DealerOptions asked_libzmq;
  asked_libzmq.engine = mdp::Engine::kLibzmq;
  auto libzmq = ChooseEngine({"tcp://127.0.0.1:5"}, asked_libzmq.engine, asked_libzmq.curve);
  ASSERT_TRUE(libzmq.ok());
  EXPECT_EQ(libzmq.value(), mdp::Engine::kLibzmq);
}

TEST(ChooseEngine, RefusesNativeWithCurveOrAnUnservableEndpoint) {
  DealerOptions native_curve;
  native_curve.engine = mdp::Engine::kNative;
  native_curve.curve.server_key = "any-key-turns-curve-on";
  auto with_curve = ChooseEngine({"tcp://127.0.0.1:5"}, native_curve.engine, native_curve.curve);
  ASSERT_FALSE(with_curve.ok());
  EXPECT_EQ(with_curve.status().code(), Code::kInvalidArgument);

  DealerOptions native;
  native.engine = mdp::Engine::kNative;
  auto inproc = ChooseEngine({"inproc://x"}, native.engine, native.curve);
  ASSERT_FALSE(inproc.ok());
  EXPECT_EQ(inproc.status().code(), Code::kInvalidArgument);
  EXPECT_NE(inproc.status().message().find("inproc://x"), std::string::npos);

  auto native_ok = ChooseEngine({"tcp://127.0.0.1:5"}, native.engine, native.curve);
  ASSERT_TRUE(native_ok.ok());
  EXPECT_EQ(native_ok.value(), mdp::Engine::kNative);
}

TEST(DealerSocket, RoundRobinsSendsOverTwoConnectedRouters) {
  zmq::context_t context;
  zmq::socket_t a = BindRouter(context, "tcp://127.0.0.1:0");
  zmq::socket_t b = BindRouter(context, "tcp://127.0.0.1:0");
  auto opened = DealerSocket::Open(context, {LastEndpoint(a), LastEndpoint(b)}, DealerOptions{});
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  DealerSocket& dealer = *opened.value();
  ASSERT_EQ(dealer.engine(), mdp::Engine::kNative);
  ASSERT_TRUE(dealer.WaitConnected(kWait));

  // WaitConnected means one is up: probe until both have had a message,
  // so that both connections are up for what follows.
  std::vector<Frames> at_a, at_b;
  bool both = false;
  for (int i = 0; i < 500 && !both; ++i) {
    ASSERT_TRUE(dealer.Send({"probe"}, {}));
    dealer.WaitReadable(milliseconds(10));  // drives the I/O; no reply is due
    both = Collect(a, &at_a) > 0 && Collect(b, &at_b) > 0;
  }
  ASSERT_TRUE(both) << "a got " << at_a.size() << ", b got " << at_b.size();
  // Probes still on their way are left out of the count below.
  auto counted = [](std::vector<Frames>* received) {
    received->erase(std::remove_if(received->begin(), received->end(),
                                   [](const Frames& f) { return Payload(f) == Frames{"probe"}; }),
                    received->end());
    return received->size();
  };
  counted(&at_a);
  counted(&at_b);

  constexpr int kMessages = 100;
  for (int i = 0; i < kMessages; ++i) ASSERT_TRUE(dealer.Send({""}, {std::to_string(i)}));
  const auto deadline = Clock::now() + kWait;
  while (Clock::now() < deadline) {
    Collect(a, &at_a);
    Collect(b, &at_b);
    if (counted(&at_a) + counted(&at_b) >= kMessages) break;
    dealer.WaitReadable(milliseconds(10));
  }
  EXPECT_EQ(at_a.size(), static_cast<size_t>(kMessages / 2));
  EXPECT_EQ(at_b.size(), static_cast<size_t>(kMessages / 2));
  // Strictly in turn: one ROUTER has the even ones, the other the odd.
  ASSERT_FALSE(at_a.empty());
  ASSERT_FALSE(at_b.empty());
  const int a_first = std::stoi(at_a[0].back());
  for (size_t i = 0; i < at_a.size(); ++i) {
    EXPECT_EQ(at_a[i].back(), std::to_string(a_first + 2 * static_cast<int>(i)));
  }
  const int b_first = std::stoi(at_b[0].back());
  EXPECT_EQ(a_first + b_first, 1) << "one starts at 0, the other at 1";
  for (size_t i = 0; i < at_b.size(); ++i) {
    EXPECT_EQ(at_b[i].back(), std::to_string(b_first + 2 * static_cast<int>(i)));
  }
}

}  // namespace
}  // namespace plantd::client

// The CURVE server mechanism against a real libzmq client: the test plays a
// minimal ZMTP server on a plain TCP socket (blocking reads, every wait
// bounded by poll) and feeds what a libzmq DEALER sends to the mechanism.
#include "transport/zmtp_curve_mechanism.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "raw_socket_io.h"
#include "transport/curve_keys.h"
#include "transport/zmtp_framing.h"

namespace plantd::transport {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
using Step = ZmtpMechanism::Step;

constexpr milliseconds kWait{5000};

struct Keys {
  std::string public_z85;
  std::string secret_z85;
  std::string public_raw;
  std::string secret_raw;
};

Keys MakeKeys() {
  char public_key[41];
  char secret_key[41];
  EXPECT_EQ(zmq_curve_keypair(public_key, secret_key), 0);
  Keys keys{public_key, secret_key, {}, {}};
  EXPECT_TRUE(Z85Decode(keys.public_z85, &keys.public_raw));
  EXPECT_TRUE(Z85Decode(keys.secret_z85, &keys.secret_raw));
  return keys;
}

using Frame = test::RawFrame;
using test::ReadExactly;
using test::ReadFrame;
using test::WaitReadable;
using test::WriteAll;

// The first frame of `wire` (whole frames, as the mechanism appends them).
Frame FirstFrame(const std::string& wire) {
  Frame frame;
  const auto* data = reinterpret_cast<const uint8_t*>(wire.data());
  EXPECT_EQ(zmtp::ParseFrameHeader(data, wire.size(), &frame.header), zmtp::HeaderParse::kOk);
  frame.body = wire.substr(frame.header.header_size, frame.header.size);
  return frame;
}

class CurveMechanismTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = MakeKeys();
    client_ = MakeKeys();
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(listener_, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    ASSERT_EQ(::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    ASSERT_EQ(::listen(listener_, 4), 0);
    socklen_t length = sizeof(address);
    ASSERT_EQ(::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length), 0);
    endpoint_ = "tcp://127.0.0.1:" + std::to_string(ntohs(address.sin_port));
  }

  void TearDown() override {
    if (connection_ >= 0) ::close(connection_);
    ::close(listener_);
  }

  CurveServerOptions Options() const {
    CurveServerOptions options;
    options.public_key = server_.public_raw;
    options.secret_key = server_.secret_raw;
    options.socket_type = "ROUTER";
    return options;
  }

  // A DEALER that speaks CURVE as a client of `server_public_z85`.
  zmq::socket_t Dealer(const std::string& server_public_z85, int heartbeat_ms = 0) {
    zmq::socket_t dealer(context_, zmq::socket_type::dealer);
    dealer.set(zmq::sockopt::linger, 0);
    dealer.set(zmq::sockopt::routing_id, "dealer-7");
    dealer.set(zmq::sockopt::curve_serverkey, server_public_z85);
    dealer.set(zmq::sockopt::curve_publickey, client_.public_z85);
    dealer.set(zmq::sockopt::curve_secretkey, client_.secret_z85);
    dealer.set(zmq::sockopt::rcvtimeo, static_cast<int>(kWait.count()));
    if (heartbeat_ms > 0) {
      dealer.set(zmq::sockopt::heartbeat_ivl, heartbeat_ms);
      // We never answer its PINGs: do not let libzmq close on that.
      dealer.set(zmq::sockopt::heartbeat_timeout, static_cast<int>(kWait.count()));
    }
    return dealer;
  }

  void Accept() {
    ASSERT_TRUE(WaitReadable(listener_, Clock::now() + kWait)) << "libzmq did not connect";
    connection_ = ::accept(listener_, nullptr, nullptr);
    ASSERT_GE(connection_, 0);
  }

  // Greetings, then every handshake command through the mechanism until it
  // is ready or refuses. Records the commands' body sizes; what the last
  // step appended (ERROR on refusal) is left in `last_out_` and sent.
  Step Handshake(ZmtpCurveServerMechanism& mechanism) {
    std::string out;
    zmtp::AppendGreeting(out, mechanism.name(), mechanism.as_server());
    EXPECT_TRUE(WriteAll(connection_, out));
    uint8_t greeting[zmtp::kGreetingSize];
    if (!ReadExactly(connection_, greeting, sizeof(greeting))) return Step::kRefused;
    EXPECT_EQ(zmtp::CheckGreeting(greeting, "CURVE"), zmtp::GreetingError::kNone);
    EXPECT_TRUE(mechanism.AcceptsPeerRole(zmtp::GreetingAsServer(greeting)));
    out.clear();
    mechanism.Start(out);
    EXPECT_TRUE(out.empty());  // the client speaks first
    for (int i = 0; i < 4; ++i) {
      Frame frame;
      if (!ReadFrame(connection_, &frame)) return Step::kRefused;
      EXPECT_TRUE(frame.header.command);
      received_sizes_.push_back(frame.body.size());
      out.clear();
      const Step step = mechanism.OnHandshakeCommand(frame.body, out);
      if (!out.empty()) sent_sizes_.push_back(FirstFrame(out).body.size());
      last_out_ = out;
      EXPECT_TRUE(WriteAll(connection_, out));
      if (step != Step::kContinue) return step;
    }
    ADD_FAILURE() << "the handshake did not end after 4 commands";
    return Step::kRefused;
  }

  // Reads MESSAGE frames until one opens to a frame whose body starts with
  // `prefix`; bounded in count and time.
  bool UnwrapUntil(ZmtpCurveServerMechanism& mechanism, std::string_view prefix, uint8_t* flags,
                   std::string* body) {
    const auto deadline = Clock::now() + kWait;
    for (int i = 0; i < 50 && Clock::now() < deadline; ++i) {
      Frame frame;
      if (!ReadFrame(connection_, &frame)) return false;
      std::vector<uint8_t> buffer(frame.body.size());
      size_t size = 0;
      if (!mechanism.UnwrapMessage(frame.body, buffer.data(), &size, flags)) return false;
      body->assign(reinterpret_cast<const char*>(buffer.data()), size);
      if (body->starts_with(prefix)) return true;
    }
    return false;
  }

  zmq::context_t context_;
  Keys server_;
  Keys client_;
  int listener_ = -1;
  int connection_ = -1;
  std::string endpoint_;
  std::vector<size_t> received_sizes_;
  std::vector<size_t> sent_sizes_;
  std::string last_out_;
};

// RFC 26 handshake sizes as libzmq 4.3.4 sends them (HELLO 200, INITIATE
// 257 plus metadata), ours (WELCOME 168, READY 30 plus metadata), the
// client's metadata and long-term key, and frames both ways: a 2-frame
// message with a long (> 255 byte) frame, its MORE flag carried in the box.
TEST_F(CurveMechanismTest, HandshakeAndTrafficWithLibzmqDealer) {
  ASSERT_TRUE(Options().Validate().ok());
  ZmtpCurveServerMechanism mechanism(Options());
  zmq::socket_t dealer = Dealer(server_.public_z85);
  dealer.connect(endpoint_);
  Accept();
  ASSERT_EQ(Handshake(mechanism), Step::kReady) << mechanism.refusal();
  ASSERT_EQ(received_sizes_.size(), 2u);
  EXPECT_EQ(received_sizes_[0], ZmtpCurveServerMechanism::kHelloSize);
  EXPECT_GE(received_sizes_[1], ZmtpCurveServerMechanism::kInitiateMinSize);
  ASSERT_EQ(sent_sizes_.size(), 2u);
  EXPECT_EQ(sent_sizes_[0], ZmtpCurveServerMechanism::kWelcomeSize);
  // READY's box holds Socket-Type = ROUTER: 1 + 11 + 4 + 6 bytes.
  EXPECT_EQ(sent_sizes_[1], ZmtpCurveServerMechanism::kReadyMinSize + 22);
  EXPECT_EQ(mechanism.peer().socket_type, "DEALER");
  EXPECT_EQ(mechanism.peer().identity, "dealer-7");
  EXPECT_EQ(mechanism.user_id(), client_.public_raw);

  const std::string long_frame(300, 'L');
  dealer.send(zmq::buffer(std::string_view("first")), zmq::send_flags::sndmore);
  dealer.send(zmq::buffer(long_frame), zmq::send_flags::none);
  for (const auto& [expected, more] :
       {std::pair{std::string("first"), true}, std::pair{long_frame, false}}) {
    Frame frame;
    ASSERT_TRUE(ReadFrame(connection_, &frame));
    // libzmq 4.3.4 sends MESSAGE as a plain frame: no COMMAND, no MORE
    // outside the box (curve_encoding_t::encode builds a fresh msg_t).
    EXPECT_FALSE(frame.header.command);
    EXPECT_FALSE(frame.header.more);
    EXPECT_EQ(frame.body.size(), mechanism.WrappedSize(expected.size()));
    std::vector<uint8_t> buffer(frame.body.size());
    size_t size = 0;
    uint8_t flags = 0xFF;
    ASSERT_TRUE(mechanism.UnwrapMessage(frame.body, buffer.data(), &size, &flags))
        << mechanism.refusal();
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(buffer.data()), size), expected);
    EXPECT_EQ(flags, more ? zmtp::kFlagMore : 0);
  }

  std::string out;
  const std::string long_reply(400, 'R');
  mechanism.WrapFrame("reply", true, false, out);
  mechanism.WrapFrame(long_reply, false, false, out);
  ASSERT_TRUE(WriteAll(connection_, out));
  zmq::message_t part;
  ASSERT_TRUE(dealer.recv(part));
  EXPECT_EQ(part.to_string(), "reply");
  EXPECT_TRUE(part.more());
  ASSERT_TRUE(dealer.recv(part));
  EXPECT_EQ(part.to_string(), long_reply);
  EXPECT_FALSE(part.more());
}

// RFC 26: the server MAY refuse a client after checking its vouch (ZAP's
// job in libzmq); it then sends ERROR and closes. libzmq reads the ERROR's
// "400" as an authentication failure and passes no traffic.
TEST_F(CurveMechanismTest, RefusedClientGetsErrorAndNoTraffic) {
  std::string asked;
  CurveServerOptions options = Options();
  options.authorize = [&asked](std::string_view key) {
    asked = key;
    return false;
  };
  ZmtpCurveServerMechanism mechanism(std::move(options));
  zmq::socket_t dealer = Dealer(server_.public_z85);
  ASSERT_EQ(zmq_socket_monitor(dealer.handle(), "inproc://curve-monitor",
                               ZMQ_EVENT_HANDSHAKE_FAILED_AUTH),
            0);
  zmq::socket_t monitor(context_, zmq::socket_type::pair);
  monitor.set(zmq::sockopt::rcvtimeo, static_cast<int>(kWait.count()));
  monitor.connect("inproc://curve-monitor");
  dealer.connect(endpoint_);
  Accept();
  ASSERT_EQ(Handshake(mechanism), Step::kDenied);
  EXPECT_EQ(asked, client_.public_raw);
  EXPECT_EQ(mechanism.user_id(), client_.public_raw) << "a denied key is still named";
  EXPECT_NE(mechanism.refusal().find("not authorized"), std::string_view::npos);
  const Frame error = FirstFrame(last_out_);
  EXPECT_TRUE(error.header.command);
  EXPECT_EQ(zmtp::CommandName(error.body), "ERROR");

  zmq::message_t event;
  ASSERT_TRUE(monitor.recv(event)) << "libzmq reported no authentication failure";
  ASSERT_GE(event.size(), 6u);
  const auto* bytes = static_cast<const uint8_t*>(event.data());
  EXPECT_EQ(bytes[0] | (bytes[1] << 8), ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
  uint32_t status_code = 0;
  std::memcpy(&status_code, bytes + 2, 4);
  EXPECT_EQ(status_code, 400u);
  EXPECT_TRUE(monitor.recv(event));  // the endpoint frame

  dealer.set(zmq::sockopt::rcvtimeo, 200);
  zmq::message_t nothing;
  EXPECT_FALSE(dealer.recv(nothing));
  // libzmq 4.3.4 treats the ERROR as a protocol error: the session ends and
  // does not reconnect (reconnect_ivl is 100 ms by default).
  ::close(connection_);
  connection_ = -1;
  EXPECT_FALSE(WaitReadable(listener_, Clock::now() + milliseconds(600)));
}

// RFC 26: the server MUST check HELLO's box; a client that has the wrong
// server key cannot make one that opens.
TEST_F(CurveMechanismTest, ClientWithWrongServerKeyIsRefusedAtHello) {
  ZmtpCurveServerMechanism mechanism(Options());
  zmq::socket_t dealer = Dealer(MakeKeys().public_z85);
  dealer.connect(endpoint_);
  Accept();
  EXPECT_EQ(Handshake(mechanism), Step::kRefused);
  EXPECT_EQ(received_sizes_.size(), 1u);
  EXPECT_NE(mechanism.refusal().find("HELLO's box does not open"), std::string_view::npos)
      << mechanism.refusal();
  // Closed without ERROR, libzmq sees a lost connection and tries again.
  ::close(connection_);
  connection_ = -1;
  EXPECT_TRUE(WaitReadable(listener_, Clock::now() + kWait));
}

// RFC 26: a MESSAGE whose box does not open is refused, and the server MUST
// reject a nonce that is not strictly greater than the last one it accepted
// (a replay, or a reordering).
TEST_F(CurveMechanismTest, TamperedReplayedAndReorderedMessagesAreRefused) {
  ZmtpCurveServerMechanism mechanism(Options());
  zmq::socket_t dealer = Dealer(server_.public_z85);
  dealer.connect(endpoint_);
  Accept();
  ASSERT_EQ(Handshake(mechanism), Step::kReady) << mechanism.refusal();
  for (const char* text : {"one", "two", "three"}) {
    dealer.send(zmq::buffer(std::string_view(text)), zmq::send_flags::none);
  }
  Frame one;
  Frame two;
  Frame three;
  ASSERT_TRUE(ReadFrame(connection_, &one));
  ASSERT_TRUE(ReadFrame(connection_, &two));
  ASSERT_TRUE(ReadFrame(connection_, &three));
  std::vector<uint8_t> buffer(64);
  size_t size = 0;
  uint8_t flags = 0;

  std::string tampered = one.body;
  tampered.back() = static_cast<char>(tampered.back() ^ 0x01);
  EXPECT_FALSE(mechanism.UnwrapMessage(tampered, buffer.data(), &size, &flags));
  EXPECT_NE(mechanism.refusal().find("does not open"), std::string_view::npos);

  // The failed attempt did not advance the nonce: the genuine one opens.
  ASSERT_TRUE(mechanism.UnwrapMessage(one.body, buffer.data(), &size, &flags))
      << mechanism.refusal();
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(buffer.data()), size), "one");
  EXPECT_FALSE(mechanism.UnwrapMessage(one.body, buffer.data(), &size, &flags));
  EXPECT_NE(mechanism.refusal().find("not greater"), std::string_view::npos);

  ASSERT_TRUE(mechanism.UnwrapMessage(three.body, buffer.data(), &size, &flags));
  EXPECT_FALSE(mechanism.UnwrapMessage(two.body, buffer.data(), &size, &flags));
  EXPECT_NE(mechanism.refusal().find("not greater"), std::string_view::npos);

  std::string short_message = three.body.substr(0, ZmtpCurveServerMechanism::kMessageOverhead - 1);
  EXPECT_FALSE(mechanism.UnwrapMessage(short_message, buffer.data(), &size, &flags));
}

// ZMTP 3.1 heartbeats under CURVE travel boxed in MESSAGE, the command flag
// inside the box (libzmq: 0x02). libzmq's PING reaches us as a command frame,
// and our boxed PING gets a boxed PONG with its context back (and is not
// delivered to the application as data).
TEST_F(CurveMechanismTest, HeartbeatsTravelBoxedWithTheCommandFlag) {
  ZmtpCurveServerMechanism mechanism(Options());
  zmq::socket_t dealer = Dealer(server_.public_z85, /*heartbeat_ms=*/100);
  dealer.connect(endpoint_);
  Accept();
  ASSERT_EQ(Handshake(mechanism), Step::kReady) << mechanism.refusal();

  uint8_t flags = 0;
  std::string body;
  ASSERT_TRUE(UnwrapUntil(mechanism, "\x04PING", &flags, &body)) << mechanism.refusal();
  EXPECT_EQ(flags, zmtp::kFlagCommand);

  std::string out;
  // PING, a TTL of 0, a context to be echoed.
  const std::string ping = std::string("\x04PING", 5) + std::string(2, '\0') + "ctx-42";
  mechanism.WrapFrame(ping, false, true, out);
  ASSERT_TRUE(WriteAll(connection_, out));
  ASSERT_TRUE(UnwrapUntil(mechanism, "\x04PONG", &flags, &body)) << mechanism.refusal();
  EXPECT_EQ(flags, zmtp::kFlagCommand);
  EXPECT_EQ(body, "\x04PONGctx-42");

  dealer.set(zmq::sockopt::rcvtimeo, 100);
  zmq::message_t nothing;
  EXPECT_FALSE(dealer.recv(nothing));
}

// RFC 26: HELLO is exactly 200 bytes, version 1.0, with zero padding (what
// keeps a forged HELLO from drawing a larger WELCOME: no amplification).
TEST_F(CurveMechanismTest, MalformedHelloIsRefusedBeforeAnyReply) {
  std::string hello = std::string("\x05HELLO\x01\x00", 8) + std::string(192, '\0');
  const auto refusal = [this](const std::string& body) {
    ZmtpCurveServerMechanism mechanism(Options());
    std::string out;
    EXPECT_EQ(mechanism.OnHandshakeCommand(body, out), Step::kRefused);
    EXPECT_TRUE(out.empty());
    return std::string(mechanism.refusal());
  };
  EXPECT_NE(refusal(hello.substr(0, 199)).find("not 200 bytes"), std::string::npos);
  std::string version = hello;
  version[6] = 2;
  EXPECT_NE(refusal(version).find("version"), std::string::npos);
  std::string padding = hello;
  padding[40] = 1;
  EXPECT_NE(refusal(padding).find("padding"), std::string::npos);
  EXPECT_NE(refusal(hello).find("does not open"), std::string::npos);
  EXPECT_NE(refusal(std::string("\x08INITIATE", 9)).find("expected HELLO"), std::string::npos);
}

TEST(CurveServerOptionsTest, ValidateRefusesBadKeys) {
  const Keys keys = MakeKeys();
  CurveServerOptions options;
  options.public_key = keys.public_raw;
  options.secret_key = keys.secret_raw;
  EXPECT_TRUE(options.Validate().ok());
  options.secret_key = MakeKeys().secret_raw;
  EXPECT_FALSE(options.Validate().ok());
  options.public_key = keys.public_z85;  // Z85, not raw
  EXPECT_FALSE(options.Validate().ok());
}

}  // namespace
}  // namespace plantd::transport

// The ZMTP 3.x wire format (RFC 23/ZMTP, 37/ZMTP 3.1), byte by byte.
#include "transport/zmtp_framing.h"

#include <gtest/gtest.h>

#include <cstring>

namespace plantd::transport::zmtp {
namespace {

const uint8_t* Bytes(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

TEST(ZmtpFraming, OurGreetingIsZmtp31NullAndPassesOurOwnCheck) {
  std::string g;
  AppendGreeting(g);
  ASSERT_EQ(g.size(), kGreetingSize);
  EXPECT_EQ(static_cast<uint8_t>(g[0]), 0xFF);
  EXPECT_EQ(static_cast<uint8_t>(g[9]), 0x7F);
  EXPECT_EQ(g[10], 3);
  EXPECT_EQ(g[11], 1);
  EXPECT_EQ(g.substr(12, 4), "NULL");
  EXPECT_EQ(g[32], 0) << "as-server is 0 with NULL";
  EXPECT_EQ(CheckGreeting(Bytes(g)), GreetingError::kNone);
}

TEST(ZmtpFraming, GreetingsWeCannotSpeakAreNamed) {
  std::string g;
  AppendGreeting(g);
  std::string old = g;
  old[10] = 2;
  EXPECT_EQ(CheckGreeting(Bytes(old)), GreetingError::kVersionTooOld);
  std::string curve = g;
  std::memcpy(curve.data() + 12, "CURVE", 5);
  EXPECT_EQ(CheckGreeting(Bytes(curve)), GreetingError::kWrongMechanism);
  std::string http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  http.resize(kGreetingSize, ' ');
  EXPECT_EQ(CheckGreeting(Bytes(http)), GreetingError::kNotZmtp);
  EXPECT_FALSE(SignatureLooksValid(Bytes(http), 1)) << "one byte is enough to tell";
  std::string zmtp10 = g;
  zmtp10[9] = 0x00;  // ZMTP 1.0: no 0x7F
  EXPECT_FALSE(SignatureLooksValid(Bytes(zmtp10), 10));
}

// RFC 23: the greeting names the mechanism (zero-padded to 20 bytes) and
// the as-server role; a peer whose mechanism is not ours is refused.
TEST(ZmtpFraming, GreetingCarriesTheMechanismAndRole) {
  std::string g;
  AppendGreeting(g, "CURVE", /*as_server=*/true);
  ASSERT_EQ(g.size(), kGreetingSize);
  EXPECT_EQ(GreetingMechanism(Bytes(g)), "CURVE");
  EXPECT_TRUE(GreetingAsServer(Bytes(g)));
  EXPECT_EQ(CheckGreeting(Bytes(g), "CURVE"), GreetingError::kNone);
  EXPECT_EQ(CheckGreeting(Bytes(g), "NULL"), GreetingError::kWrongMechanism);
  std::string prefix = g;
  std::memcpy(prefix.data() + 12, "CURVEX", 6);  // CURVE as a prefix only
  EXPECT_EQ(CheckGreeting(Bytes(prefix), "CURVE"), GreetingError::kWrongMechanism);
  std::string null;
  AppendGreeting(null);
  EXPECT_FALSE(GreetingAsServer(Bytes(null)));
}

// RFC 23 metadata: a property list alone (CURVE's INITIATE and READY carry
// one inside a box) parses as READY's does; names are case-insensitive.
TEST(ZmtpFraming, MetadataPropertyListsParseAlone) {
  std::string properties;
  AppendProperty(properties, "socket-type", "DEALER");
  AppendProperty(properties, "Identity", "w1");
  AppendProperty(properties, "X-Other", "ignored");
  PeerMetadata metadata;
  ASSERT_TRUE(ParseMetadata(properties, &metadata));
  EXPECT_EQ(metadata.socket_type, "DEALER");
  EXPECT_EQ(metadata.identity, "w1");
  EXPECT_FALSE(ParseMetadata(properties.substr(0, properties.size() - 1), &metadata))
      << "a value shorter than its length is malformed";
  EXPECT_FALSE(ParseMetadata({}, &metadata)) << "Socket-Type is required";
}

TEST(ZmtpFraming, ShortAndLongFramesRoundTrip) {
  for (size_t size : {size_t{0}, size_t{1}, size_t{255}, size_t{256}, size_t{70000}}) {
    std::string wire;
    AppendFrame(wire, std::string(size, 'b'), /*more=*/true);
    FrameHeader h;
    ASSERT_EQ(ParseFrameHeader(Bytes(wire), wire.size(), &h), HeaderParse::kOk);
    EXPECT_EQ(h.size, size);
    EXPECT_TRUE(h.more);
    EXPECT_FALSE(h.command);
    EXPECT_EQ(h.header_size, size <= 255 ? 2u : 9u) << "long form only above 255 bytes";
    EXPECT_EQ(wire.size(), h.header_size + size);
  }
}

TEST(ZmtpFraming, PartialHeadersAskForMoreBytes) {
  std::string wire;
  AppendFrame(wire, std::string(300, 'x'), false);
  FrameHeader h;
  for (size_t n = 0; n < 9; ++n) {
    EXPECT_EQ(ParseFrameHeader(Bytes(wire), n, &h), HeaderParse::kIncomplete) << n;
  }
}

TEST(ZmtpFraming, ReservedBitsAndCommandsWithMoreAreMalformed) {
  FrameHeader h;
  const uint8_t reserved[] = {0x08, 0x00};
  EXPECT_EQ(ParseFrameHeader(reserved, 2, &h), HeaderParse::kMalformed);
  const uint8_t command_more[] = {kFlagCommand | kFlagMore, 0x00};
  EXPECT_EQ(ParseFrameHeader(command_more, 2, &h), HeaderParse::kMalformed);
  const uint8_t huge[] = {kFlagLong, 0x80, 0, 0, 0, 0, 0, 0, 1};
  EXPECT_EQ(ParseFrameHeader(huge, 9, &h), HeaderParse::kMalformed);
}

TEST(ZmtpFraming, ReadyCarriesSocketTypeAndIdentity) {
  std::string wire;
  AppendReady(wire, "DEALER", "worker-7");
  FrameHeader h;
  ASSERT_EQ(ParseFrameHeader(Bytes(wire), wire.size(), &h), HeaderParse::kOk);
  EXPECT_TRUE(h.command);
  const std::string body = wire.substr(h.header_size);
  EXPECT_EQ(CommandName(body), "READY");
  PeerMetadata md;
  ASSERT_TRUE(ParseReady(body, &md));
  EXPECT_EQ(md.socket_type, "DEALER");
  EXPECT_EQ(md.identity, "worker-7");
}

TEST(ZmtpFraming, ReadyPropertyNamesAreCaseInsensitiveAndTruncationIsRefused) {
  std::string body = "\x05READY";
  body += "\x0bsocket-type";
  body += std::string("\0\0\0\x03", 4) + "REQ";
  PeerMetadata md;
  ASSERT_TRUE(ParseReady(body, &md));
  EXPECT_EQ(md.socket_type, "REQ");
  for (size_t cut = 6; cut < body.size(); ++cut) {
    EXPECT_FALSE(ParseReady(body.substr(0, cut), &md)) << "cut at " << cut;
  }
  EXPECT_FALSE(ParseReady("\x05READX", &md));
}

TEST(ZmtpFraming, PingContextComesBackInThePong) {
  std::string wire;
  AppendPing(wire, 30, "ctx");
  FrameHeader h;
  ASSERT_EQ(ParseFrameHeader(Bytes(wire), wire.size(), &h), HeaderParse::kOk);
  const std::string body = wire.substr(h.header_size);  // the context points into it
  std::string_view context;
  ASSERT_TRUE(ParsePing(body, &context));
  EXPECT_EQ(context, "ctx");
  std::string pong;
  AppendPong(pong, context);
  ASSERT_EQ(ParseFrameHeader(Bytes(pong), pong.size(), &h), HeaderParse::kOk);
  EXPECT_EQ(pong.substr(h.header_size), "\x04PONGctx");
}

}  // namespace
}  // namespace plantd::transport::zmtp

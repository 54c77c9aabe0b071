#include "mdp/codec.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace plantd::mdp {
namespace {

// frames[0] is the routing id, as the ROUTER delivers it.
std::vector<zmq::message_t> Message(const std::vector<std::string>& parts) {
  std::vector<zmq::message_t> frames;
  frames.emplace_back(std::string("\x00\x01\x02\x03\x04", 5));
  for (const std::string& p : parts) frames.emplace_back(p.data(), p.size());
  return frames;
}

DecodeError DecodeParts(const std::vector<std::string>& parts, Decoded* d) {
  auto frames = Message(parts);
  return Decode(frames.data(), frames.size(), d);
}

std::string B(int b) { return std::string(1, static_cast<char>(b)); }

TEST(Codec, Mdp02ClientRequest) {
  Decoded d;
  ASSERT_EQ(DecodeParts({"MDPC02", B(0x01), "echo", "a", "b"}, &d), DecodeError::kNone);
  EXPECT_EQ(d.role, Role::kClient);
  EXPECT_EQ(d.dialect, Dialect::kMdp02);
  EXPECT_EQ(d.service, 3u);
  EXPECT_EQ(d.body_begin, 4u);
}

TEST(Codec, PlantdClientRequestWithLeadingEmptyFrame) {
  Decoded d;
  ASSERT_EQ(DecodeParts({"", "MDPC02", "REQUEST", "svc", "x"}, &d), DecodeError::kNone);
  EXPECT_EQ(d.dialect, Dialect::kPlantd);
  EXPECT_EQ(d.service, 4u);
}

TEST(Codec, Mdp01ClientHasNoCommandFrame) {
  Decoded d;
  ASSERT_EQ(DecodeParts({"", "MDPC01", "svc", "x"}, &d), DecodeError::kNone);
  EXPECT_EQ(d.dialect, Dialect::kMdp01);
  EXPECT_EQ(d.service, 3u);
  EXPECT_EQ(d.body_begin, 4u);
}

TEST(Codec, WorkerCommandsInEachDialect) {
  Decoded d;
  ASSERT_EQ(DecodeParts({"MDPW02", B(0x01), "svc"}, &d), DecodeError::kNone);
  EXPECT_EQ(d.command, Command::kReady);
  EXPECT_EQ(d.credit, 0u);
  ASSERT_EQ(DecodeParts({"MDPW02", B(0x01), "svc", "16"}, &d), DecodeError::kNone);
  EXPECT_EQ(d.credit, 4u);
  ASSERT_EQ(DecodeParts({"", "MDPW02", "HEARTBEAT"}, &d), DecodeError::kNone);
  EXPECT_EQ(d.command, Command::kHeartbeat);
  EXPECT_EQ(d.dialect, Dialect::kPlantd);
  ASSERT_EQ(DecodeParts({"", "MDPW01", B(0x03), "addr", "", "body"}, &d), DecodeError::kNone);
  EXPECT_EQ(d.command, Command::kFinal);  // 0.1 REPLY is a FINAL
  EXPECT_EQ(d.address, 4u);
  EXPECT_EQ(d.body_begin, 6u);
}

TEST(Codec, ReplyWithoutEmptyDelimiterIsAccepted) {
  Decoded d;
  ASSERT_EQ(DecodeParts({"", "MDPW02", "FINAL", "addr", "body"}, &d), DecodeError::kNone);
  EXPECT_EQ(d.address, 4u);
  EXPECT_EQ(d.body_begin, 5u);
}

TEST(Codec, EnvelopeBeforeAClientHeader) {
  Decoded d;
  ASSERT_EQ(DecodeParts({"tag", "hop", "", "MDPC02", B(0x01), "svc"}, &d), DecodeError::kNone);
  EXPECT_EQ(d.envelope_begin, 1u);
  EXPECT_EQ(d.envelope_end, 3u);
  EXPECT_EQ(d.service, 6u);
  EXPECT_EQ(DecodeParts({"tag", "", "MDPW02", B(0x05)}, &d), DecodeError::kUnknownHeader)
      << "workers take no envelope";
}

TEST(Codec, MalformedMessagesSayWhy) {
  Decoded d;
  EXPECT_EQ(DecodeParts({}, &d), DecodeError::kTooFewFrames);
  EXPECT_EQ(DecodeParts({"MDPC02"}, &d), DecodeError::kTooFewFrames);
  EXPECT_EQ(DecodeParts({"MDPC02", B(0x01)}, &d), DecodeError::kTooFewFrames);
  EXPECT_EQ(DecodeParts({"MDPC02", B(0x01), ""}, &d), DecodeError::kEmptyService);
  EXPECT_EQ(DecodeParts({"MDPC02", B(0x07), "svc"}, &d), DecodeError::kUnknownCommand);
  EXPECT_EQ(DecodeParts({"MDPW02", B(0x02)}, &d), DecodeError::kUnknownCommand)
      << "REQUEST is broker-to-worker only";
  EXPECT_EQ(DecodeParts({"MDPW02", "WAT"}, &d), DecodeError::kUnknownCommand);
  EXPECT_EQ(DecodeParts({"MDPX99", B(0x01)}, &d), DecodeError::kUnknownHeader);
  EXPECT_EQ(DecodeParts({"MDPW02", B(0x01), ""}, &d), DecodeError::kEmptyService);
  EXPECT_EQ(DecodeParts({"MDPW02", B(0x04)}, &d), DecodeError::kTooFewFrames);
}

// majortomo's client.py sends ["", MDPC02, 0x02, service, body...]; 0x02 is
// no 18/MDP client command, so the dialect is certain.
TEST(Codec, MajortomoClientRequestIsCommand0x02) {
  Decoded d;
  ASSERT_EQ(DecodeParts({"", "MDPC02", B(0x02), "svc", "x"}, &d), DecodeError::kNone);
  EXPECT_EQ(d.role, Role::kClient);
  EXPECT_EQ(d.dialect, Dialect::kMajortomo);
  EXPECT_EQ(d.service, 4u);
  EXPECT_EQ(d.body_begin, 5u);
  // An 18/MDP client request is still 18/MDP with or without the empty frame.
  ASSERT_EQ(DecodeParts({"", "MDPC02", B(0x01), "svc"}, &d), DecodeError::kNone);
  EXPECT_EQ(d.dialect, Dialect::kMdp02);
  EXPECT_EQ(DecodeParts({"MDPC02", B(0x03), "svc"}, &d), DecodeError::kUnknownCommand);
}

// worker.py leads every command with an empty frame; an 18/MDP worker does not.
TEST(Codec, MajortomoWorkerIsA02WorkerWithLeadingEmptyFrame) {
  Decoded d;
  ASSERT_EQ(DecodeParts({"", "MDPW02", B(0x01), "svc"}, &d), DecodeError::kNone);
  EXPECT_EQ(d.role, Role::kWorker);
  EXPECT_EQ(d.command, Command::kReady);
  EXPECT_EQ(d.dialect, Dialect::kMajortomo);
  ASSERT_EQ(DecodeParts({"", "MDPW02", B(0x04), "addr", "", "body"}, &d), DecodeError::kNone);
  EXPECT_EQ(d.command, Command::kFinal);
  EXPECT_EQ(d.dialect, Dialect::kMajortomo);
  EXPECT_EQ(d.address, 4u);
  EXPECT_EQ(d.body_begin, 6u);
  ASSERT_EQ(DecodeParts({"MDPW02", B(0x01), "svc"}, &d), DecodeError::kNone);
  EXPECT_EQ(d.dialect, Dialect::kMdp02);
}

TEST(Codec, MajortomoPrefixesLeadWithEmptyFrame) {
  Prefix p = ClientReplyPrefix(Dialect::kMajortomo, /*final=*/true);
  ASSERT_EQ(p.count, 3u);
  EXPECT_EQ(p.frames[0], "");
  EXPECT_EQ(p.frames[1], "MDPC02");
  EXPECT_EQ(p.frames[2], B(0x04));
  EXPECT_EQ(ClientReplyPrefix(Dialect::kMajortomo, false).frames[2], B(0x03));
  EXPECT_FALSE(ClientReplyNamesService(Dialect::kMajortomo));
  EXPECT_TRUE(ClientReplyNamesService(Dialect::kMdp02));
  p = WorkerCommandPrefix(Dialect::kMajortomo, Command::kRequest);
  ASSERT_EQ(p.count, 3u);
  EXPECT_EQ(p.frames[0], "");
  EXPECT_EQ(p.frames[1], "MDPW02");
  EXPECT_EQ(p.frames[2], B(0x02));
}

TEST(Codec, PrefixesForEachDialect) {
  Prefix p = ClientReplyPrefix(Dialect::kMdp01, true);
  ASSERT_EQ(p.count, 2u);
  EXPECT_EQ(p.frames[0], "");
  EXPECT_EQ(p.frames[1], "MDPC01");
  p = ClientReplyPrefix(Dialect::kPlantd, false);
  EXPECT_EQ(p.frames[1], "PARTIAL");
  p = WorkerCommandPrefix(Dialect::kMdp02, Command::kDisconnect);
  ASSERT_EQ(p.count, 2u);
  EXPECT_EQ(p.frames[1], B(0x06));
  p = WorkerCommandPrefix(Dialect::kMdp01, Command::kRequest);
  ASSERT_EQ(p.count, 3u);
  EXPECT_EQ(p.frames[2], B(0x02));
}

}  // namespace
}  // namespace plantd::mdp

namespace plantd::mdp {
namespace {

// Random frames, biased towards real headers and commands: Decode never
// reads past the message and every index it returns is inside it. Run under
// ASan by `make test-asan`. Deterministic (fixed seed), bounded (20,000).
TEST(Codec, RandomFramesNeverIndexOutsideTheMessage) {
  std::mt19937 rng(20261127);
  const std::vector<std::string> vocabulary = {
      "", "MDPC01", "MDPC02", "MDPW01", "MDPW02", "REQUEST", "READY", "FINAL", "PARTIAL",
      "HEARTBEAT", "DISCONNECT", B(0x01), B(0x02), B(0x03), B(0x04), B(0x05), B(0x06)};
  for (int round = 0; round < 20000; ++round) {
    std::vector<std::string> parts;
    const int n = static_cast<int>(rng() % 9);
    for (int i = 0; i < n; ++i) {
      if (rng() % 4 != 0) {
        parts.push_back(vocabulary[rng() % vocabulary.size()]);
      } else {
        std::string junk(rng() % 12, '\0');
        for (char& c : junk) c = static_cast<char>(rng());
        parts.push_back(junk);
      }
    }
    auto frames = Message(parts);
    Decoded d;
    if (Decode(frames.data(), frames.size(), &d) != DecodeError::kNone) continue;
    const size_t count = frames.size();
    ASSERT_LE(d.envelope_end, count);
    ASSERT_LE(d.envelope_begin, d.envelope_end);
    if (d.command == Command::kRequest || d.command == Command::kReady) {
      ASSERT_LT(d.service, count);
      ASSERT_GT(frames[d.service].size(), 0u);
    }
    if (d.command == Command::kRequest) {
      ASSERT_LE(d.body_begin, count);
    }
    if (d.command == Command::kPartial || d.command == Command::kFinal) {
      ASSERT_LT(d.address, count);
      ASSERT_LE(d.body_begin, count);
    }
    if (d.credit != 0) {
      ASSERT_LT(d.credit, count);
    }
  }
}

}  // namespace
}  // namespace plantd::mdp

// The short form of routing ids shown on /status and in info/warn logs.
#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <string>

#include "broker/short_id.h"

namespace plantd::broker {
namespace {

// The reference vectors of the SipHash paper (key 00..0f, message 00..n-1).
TEST(ShortId, SipHashMatchesTheReferenceVectors) {
  const uint64_t k0 = 0x0706050403020100ULL;
  const uint64_t k1 = 0x0f0e0d0c0b0a0908ULL;
  std::string message;
  EXPECT_EQ(SipHash24(k0, k1, message), 0x726fdb47dd0e0e31ULL);
  for (int i = 0; i < 15; ++i) message.push_back(static_cast<char>(i));
  EXPECT_EQ(SipHash24(k0, k1, message), 0xa129ca6149be45e5ULL);
  message.push_back(15);
  EXPECT_EQ(SipHash24(k0, k1, message), 0x3f2acc7f57c29bdbULL);
}

TEST(ShortId, IsEightHexCharactersStableWithinTheProcessAndDoesNotShowTheId) {
  const std::string id("\x00\x80\x00\x00\x2a", 5);
  const std::string shown = ShortId(id);
  EXPECT_TRUE(std::regex_match(shown, std::regex("[0-9a-f]{8}"))) << shown;
  EXPECT_EQ(ShortId(id), shown);
  EXPECT_EQ(shown.find("8000002a"), std::string::npos);
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(ShortId("worker-" + std::to_string(i)));
  EXPECT_GE(seen.size(), 999u);  // 32 bits: a collision among 1000 is very rare
}

}  // namespace
}  // namespace plantd::broker

#include "log/log.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <string>

namespace plantd::log {
namespace {

// nlohmann::json::parse rejects invalid UTF-8, as log shippers do.
std::string RoundTrip(const std::string& s) {
  return nlohmann::json::parse(JsonString(s)).get<std::string>();
}

TEST(LogJson, ValidUtf8PassesThroughUnchanged) {
  const std::string s = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8c\xb1 plain";
  EXPECT_EQ(RoundTrip(s), s);
}

TEST(LogJson, ControlCharactersAreEscaped) {
  EXPECT_EQ(JsonString(std::string("a\nb\x01\"\\", 6)), R"("a\nb\u0001\"\\")");
}

TEST(LogJson, InvalidBytesBecomeReplacementCharacters) {
  // A stray continuation byte, a truncated sequence, an overlong '/', a
  // surrogate, a code point past U+10FFFF, and 0xff.
  const std::string bad = "\x80|\xe2\x82|\xc0\xaf|\xed\xa0\x80|\xf4\x90\x80\x80|\xff";
  const std::string out = RoundTrip(bad);
  EXPECT_EQ(out.find('\x80' + std::string()), std::string::npos);
  EXPECT_NE(out.find("\xef\xbf\xbd"), std::string::npos);
  EXPECT_EQ(JsonString("\xff"), "\"\\ufffd\"");
  EXPECT_EQ(JsonString("\xc0\xaf"), "\"\\ufffd\\ufffd\"");
}

// Any bytes at all make a parseable JSON string.
TEST(LogJson, RandomBytesAlwaysMakeValidJson) {
  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> byte(0, 255), len(0, 64);
  for (int i = 0; i < 20000; ++i) {
    std::string s(static_cast<size_t>(len(rng)), '\0');
    for (char& c : s) c = static_cast<char>(byte(rng));
    ASSERT_NO_THROW(RoundTrip(s)) << Hex(s);
  }
}

}  // namespace
}  // namespace plantd::log

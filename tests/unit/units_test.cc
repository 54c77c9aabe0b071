#include "common/units.h"

#include <gtest/gtest.h>

namespace plantd {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

TEST(ParseDuration, AcceptsEveryUnit) {
  EXPECT_EQ(ParseDuration("250ms", milliseconds(1)).value(), milliseconds(250));
  EXPECT_EQ(ParseDuration("2.5s", milliseconds(1)).value(), milliseconds(2500));
  EXPECT_EQ(ParseDuration("1m", milliseconds(1)).value(), std::chrono::minutes(1));
  EXPECT_EQ(ParseDuration("1h", milliseconds(1)).value(), std::chrono::hours(1));
  EXPECT_EQ(ParseDuration("100us", milliseconds(1)).value(), microseconds(100));
  EXPECT_EQ(ParseDuration("7ns", milliseconds(1)).value(), nanoseconds(7));
}

TEST(ParseDuration, BareIntegerTakesTheCallersUnit) {
  EXPECT_EQ(ParseDuration("2500", milliseconds(1)).value(), milliseconds(2500));
  EXPECT_EQ(ParseDuration("2500000", microseconds(1)).value(), milliseconds(2500));
}

TEST(ParseDuration, RejectsZeroNegativeAndGarbage) {
  for (const char* bad : {"0", "0ms", "-1s", "abc", "", "2.5", "10 parsecs", "1e3s", ".s"}) {
    EXPECT_FALSE(ParseDuration(bad, milliseconds(1)).ok()) << bad;
  }
}

TEST(ParseByteSize, AcceptsUnits) {
  EXPECT_EQ(ParseByteSize("1024").value(), 1024u);
  EXPECT_EQ(ParseByteSize("16MiB").value(), 16u << 20);
  EXPECT_EQ(ParseByteSize("512KiB").value(), 512u << 10);
  EXPECT_EQ(ParseByteSize("2MB").value(), 2000000u);
  EXPECT_FALSE(ParseByteSize("12XB").ok());
  EXPECT_FALSE(ParseByteSize("-1").ok());
}

TEST(ParseByteSize, RefusesWhatDoesNotFitIn64Bits) {
  EXPECT_EQ(ParseByteSize("1TiB").value(), uint64_t{1} << 40);
  EXPECT_EQ(ParseByteSize("18446744073709551615").value(), UINT64_MAX);
  EXPECT_FALSE(ParseByteSize("18446744073709551616").ok());
  EXPECT_FALSE(ParseByteSize("17179869184GiB").ok());
  EXPECT_FALSE(ParseByteSize("").ok());
  EXPECT_FALSE(ParseByteSize("MiB").ok());
  EXPECT_FALSE(ParseByteSize("1.5MiB").ok());
}

TEST(FormatByteSize, UsesTheLargestExactBinaryUnitAndReadsBack) {
  EXPECT_EQ(FormatByteSize(16u << 20), "16MiB");
  EXPECT_EQ(FormatByteSize(uint64_t{1} << 30), "1GiB");
  EXPECT_EQ(FormatByteSize(uint64_t{3} << 40), "3TiB");
  EXPECT_EQ(FormatByteSize(1536), "1536");
  EXPECT_EQ(FormatByteSize(65535), "65535");
  EXPECT_EQ(FormatByteSize(0), "0");
  for (uint64_t n : {uint64_t{0}, uint64_t{64}, uint64_t{1} << 20, uint64_t{1000}, UINT64_MAX}) {
    EXPECT_EQ(ParseByteSize(FormatByteSize(n)).value(), n) << n;
  }
}

TEST(FormatDuration, UsesTheLargestExactUnit) {
  EXPECT_EQ(FormatDuration(milliseconds(2500)), "2500ms");
  EXPECT_EQ(FormatDuration(milliseconds(30000)), "30s");
  EXPECT_EQ(FormatDuration(microseconds(1500)), "1500us");
}

}  // namespace
}  // namespace plantd

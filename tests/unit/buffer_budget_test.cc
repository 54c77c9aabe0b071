#include "transport/buffer_budget.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace plantd::transport {
namespace {

using Admission = BufferBudget::Admission;

TEST(BufferBudget, InputPausesAtTheLimitAndResumesBelowSevenEighths) {
  BufferBudget budget({.max_buffered_bytes = 800});
  bool began = true;
  EXPECT_FALSE(budget.InputPaused(&began));
  EXPECT_FALSE(began);
  budget.Adjust(799);
  EXPECT_FALSE(budget.InputPaused(&began));
  budget.Adjust(1);
  EXPECT_TRUE(budget.InputPaused(&began));
  EXPECT_TRUE(began) << "the call that starts a pause says so";
  EXPECT_TRUE(budget.InputPaused(&began));
  EXPECT_FALSE(began) << "only once per pause";
  budget.Adjust(-100);  // 700 = 7/8 of 800: still paused
  EXPECT_TRUE(budget.InputPaused(&began));
  budget.Adjust(-1);
  EXPECT_FALSE(budget.InputPaused(&began));
  budget.Adjust(101);
  EXPECT_TRUE(budget.InputPaused(&began));
  EXPECT_TRUE(began) << "a new pause is reported again";
}

TEST(BufferBudget, ZeroMeansNoByteLimit) {
  BufferBudget budget({.max_buffered_bytes = 0});
  budget.Adjust(int64_t{1} << 40);
  EXPECT_FALSE(budget.InputPaused());
}

TEST(BufferBudget, ConnectionsAreLimitedInTotalAndPerAddress) {
  BufferBudget budget({.max_connections = 5, .max_connections_per_address = 2});
  EXPECT_EQ(budget.AdmitConnection("10.0.0.1"), Admission::kAdmitted);
  EXPECT_EQ(budget.AdmitConnection("10.0.0.1"), Admission::kAdmitted);
  EXPECT_EQ(budget.AdmitConnection("10.0.0.1"), Admission::kPerAddress);
  EXPECT_EQ(budget.connections_from("10.0.0.1"), 2u);
  EXPECT_EQ(budget.connections(), 2u) << "a refused connection is not counted";
  EXPECT_EQ(budget.AdmitConnection("10.0.0.2"), Admission::kAdmitted);
  EXPECT_EQ(budget.AdmitConnection(""), Admission::kAdmitted) << "ipc: no per-address limit";
  EXPECT_EQ(budget.AdmitConnection(""), Admission::kAdmitted);
  EXPECT_EQ(budget.AdmitConnection("10.0.0.3"), Admission::kTotal);
  budget.ReleaseConnection("10.0.0.1");
  EXPECT_EQ(budget.connections_from("10.0.0.1"), 1u);
  EXPECT_EQ(budget.AdmitConnection("10.0.0.3"), Admission::kAdmitted);
  for (const char* a : {"10.0.0.1", "10.0.0.2", "10.0.0.3", "", ""}) budget.ReleaseConnection(a);
  EXPECT_EQ(budget.connections(), 0u);
  EXPECT_EQ(budget.connections_from("10.0.0.1"), 0u);
}

// The broker core and the bus threads share one budget: counts stay exact
// under concurrent use, and the limits hold.
TEST(BufferBudget, ThreadsSharingItNeverExceedTheLimits) {
  BufferBudget budget(
      {.max_buffered_bytes = 1 << 20, .max_connections = 64, .max_connections_per_address = 16});
  std::atomic<int> over{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      const std::string address = "10.0.0." + std::to_string(t % 2);
      for (int i = 0; i < 20000; ++i) {
        budget.Adjust(100);
        if (budget.AdmitConnection(address) == Admission::kAdmitted) {
          if (budget.connections() > 64 || budget.connections_from(address) > 16) ++over;
          budget.ReleaseConnection(address);
        }
        budget.Adjust(-100);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(over.load(), 0);
  EXPECT_EQ(budget.bytes(), 0);
  EXPECT_EQ(budget.connections(), 0u);
}

}  // namespace
}  // namespace plantd::transport

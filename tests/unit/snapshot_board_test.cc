// SnapshotBoard: the hand-over of the core's snapshot to readers on other
// threads (/status), driven here by a reader thread and a loop that stands in
// for the core's.
#include <gtest/gtest.h>
#include <poll.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "broker/broker_stats.h"
#include "one_cpu.h"

namespace plantd::broker {
namespace {

using namespace std::chrono_literals;

TEST(SnapshotBoardTest, NoRequestMeansNothingToTakeAndTheFdStaysQuiet) {
  SnapshotBoard board;
  ASSERT_GE(board.request_fd(), 0);
  uint64_t ticket = 0;
  EXPECT_FALSE(board.TakeRequest(&ticket));
  pollfd p{board.request_fd(), POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 0), 0);
}

// A reader asking for a fresh snapshot wakes the core's fd; the core answers
// it; the reader gets a snapshot taken after it asked. The fd is readable
// only while a request waits: the core, which polls it every turn, must
// never find it readable with nothing to take (it would spin). Both threads
// on one CPU, where a wake-up runs the woken thread at once.
TEST(SnapshotBoardTest, EveryWakeOfTheCoreHasARequestToAnswer) {
  const test::OneCpu one_cpu;  // the reader thread inherits it
  ASSERT_TRUE(one_cpu.pinned());

  SnapshotBoard board;
  constexpr int kReads = 200;
  std::atomic<int> fresh_answers{0};
  std::atomic<bool> reader_done{false};
  std::thread reader([&] {
    for (int i = 0; i < kReads; ++i) {
      bool fresh = false;
      auto snap = board.Fresh(2s, &fresh);
      if (fresh && snap != nullptr) ++fresh_answers;
    }
    reader_done = true;
  });
  int empty_wakes = 0;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!reader_done && std::chrono::steady_clock::now() < deadline) {
    pollfd p{board.request_fd(), POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    uint64_t ticket = 0;
    if (board.TakeRequest(&ticket)) {
      board.Answer(std::make_shared<BrokerSnapshot>(), ticket);
    } else {
      ++empty_wakes;
    }
  }
  reader.join();
  EXPECT_EQ(fresh_answers.load(), kReads);
  EXPECT_EQ(empty_wakes, 0) << "the fd was readable with no request to take";
}

}  // namespace
}  // namespace plantd::broker

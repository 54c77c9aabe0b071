// The admin service's local-peer check, and the snapshot board's
// request-and-answer hand-over between /status and the core.
#include <poll.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <set>
#include <string>
#include <thread>

#include "broker/admin.h"
#include "broker/broker_stats.h"
#include "transport/close_reason.h"

namespace plantd::broker {
namespace {

using namespace std::chrono_literals;

// A remote attempt cannot be made from a loopback-only test, so the
// address check is proven here on the text the transport gives.
TEST(AdminTest, LoopbackAndIpcPeersAreLocal) {
  EXPECT_TRUE(IsLocalPeer("127.0.0.1:40000"));
  EXPECT_TRUE(IsLocalPeer("127.1.2.3:1"));
  EXPECT_TRUE(IsLocalPeer("[::1]:40000"));
  EXPECT_TRUE(IsLocalPeer("[::ffff:127.0.0.1]:40000"));
  EXPECT_TRUE(IsLocalPeer("ipc"));
}

TEST(AdminTest, OtherPeersAreNotLocal) {
  EXPECT_FALSE(IsLocalPeer("10.0.0.5:40000"));
  EXPECT_FALSE(IsLocalPeer("192.168.1.20:7200"));
  EXPECT_FALSE(IsLocalPeer("128.0.0.1:1"));
  EXPECT_FALSE(IsLocalPeer("0.0.0.0:1"));
  EXPECT_FALSE(IsLocalPeer("[2001:db8::1]:40000"));
  EXPECT_FALSE(IsLocalPeer("[::ffff:10.0.0.1]:40000"));
  EXPECT_FALSE(IsLocalPeer("[fe80::1]:1"));
  // Unknown (transport zmq does not say) or malformed: not local.
  EXPECT_FALSE(IsLocalPeer(""));
  EXPECT_FALSE(IsLocalPeer("?:0"));
  EXPECT_FALSE(IsLocalPeer("127.0.0.1"));  // no port: not the transport's form
  EXPECT_FALSE(IsLocalPeer("[::1"));
  EXPECT_FALSE(IsLocalPeer("localhost:80"));
  EXPECT_FALSE(IsLocalPeer("ipc2"));
}

TEST(AdminTest, CommandsAreParsed) {
  EXPECT_EQ(ParseAdminCommand({"drain"}), AdminCommand::kDrain);
  EXPECT_EQ(ParseAdminCommand({"status"}), AdminCommand::kStatus);
  EXPECT_EQ(ParseAdminCommand({}), AdminCommand::kUnknown);
  EXPECT_EQ(ParseAdminCommand({"DRAIN"}), AdminCommand::kUnknown);
}

// Nobody answers (no core runs): Fresh() returns the last snapshot within
// about its timeout, marked not fresh.
TEST(SnapshotBoardTest, FreshFallsBackToTheLastSnapshotWhenNobodyAnswers) {
  SnapshotBoard board;
  auto old = std::make_shared<BrokerSnapshot>();
  old->uptime_seconds = 1;
  board.Publish(old);
  bool fresh = true;
  const auto start = std::chrono::steady_clock::now();
  auto got = board.Fresh(50ms, &fresh);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_FALSE(fresh);
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->uptime_seconds, 1);
  EXPECT_GE(took, 40ms);
  EXPECT_LT(took, 2s);
}

// A "core" thread that polls the board's fd as the broker's loop does, and
// answers each request with a snapshot built after it.
TEST(SnapshotBoardTest, FreshGetsASnapshotBuiltAfterTheRequest) {
  SnapshotBoard board;
  ASSERT_GE(board.request_fd(), 0);
  board.Publish(std::make_shared<BrokerSnapshot>());  // the periodic one: uptime 0
  std::atomic<bool> stop{false};
  std::atomic<int> builds{0};
  std::thread core([&] {
    while (!stop.load()) {
      pollfd p{.fd = board.request_fd(), .events = POLLIN, .revents = 0};
      if (poll(&p, 1, 10) <= 0) continue;
      uint64_t ticket = 0;
      if (!board.TakeRequest(&ticket)) continue;
      auto snap = std::make_shared<BrokerSnapshot>();
      snap->uptime_seconds = ++builds;
      board.Answer(snap, ticket);
    }
  });
  for (int i = 1; i <= 3; ++i) {
    bool fresh = false;
    auto got = board.Fresh(2s, &fresh);
    EXPECT_TRUE(fresh);
    ASSERT_NE(got, nullptr);
    EXPECT_EQ(got->uptime_seconds, i);  // one build per request, none reused
  }
  stop = true;
  core.join();
}

// No request waiting: the core's TakeRequest says so and builds nothing.
TEST(SnapshotBoardTest, NoRequestNoAnswer) {
  SnapshotBoard board;
  uint64_t ticket = 0;
  EXPECT_FALSE(board.TakeRequest(&ticket));
}

TEST(CloseReasonTest, EveryReasonHasItsOwnLabel) {
  std::set<std::string> names;
  for (size_t i = 0; i < transport::kCloseReasonCount; ++i) {
    const std::string name = transport::CloseReasonName(static_cast<transport::CloseReason>(i));
    EXPECT_NE(name, "unknown");
    EXPECT_TRUE(names.insert(name).second) << name;
  }
}

}  // namespace
}  // namespace plantd::broker

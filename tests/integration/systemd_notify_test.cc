// The broker under systemd's notify protocol (sd_notify(3)), without
// systemd: the test binds the datagram socket named by $NOTIFY_SOCKET, as
// systemd would, and reads what the real binary says there.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <vector>

#include "support.h"

namespace plantd::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  }
  ~NotifySocket() {
    close(fd_);
    unlink(path_.c_str());
  }

  // The next datagram, or nullopt after `timeout`.
  std::optional<std::string> Next(std::chrono::milliseconds timeout) {
    timeval tv{static_cast<time_t>(timeout.count() / 1000),
               static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char buf[4096];
    const ssize_t n = recv(fd_, buf, sizeof(buf), 0);
    if (n < 0) return std::nullopt;
    return std::string(buf, static_cast<size_t>(n));
  }

  // Reads until a datagram containing `what` arrives; false after `timeout`.
  bool WaitFor(const std::string& what, std::chrono::milliseconds timeout,
               std::string* seen = nullptr) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      auto msg = Next(std::max(left, 1ms));
      if (!msg) return false;
      if (seen) *seen += *msg + "|";
      if (msg->find(what) != std::string::npos) return true;
    }
    return false;
  }

 private:
  std::string path_;
  int fd_ = -1;
};

class SystemdNotifyTest : public ::testing::Test {
 protected:
  bool Start(const std::string& watchdog_usec) {
    const std::string yaml = "endpoint: " + TcpEndpoint(FreeTcpPort()) +
                             "\nclient_endpoint: " + TcpEndpoint(FreeTcpPort()) +
                             "\nbuses: []\nhealth:\n  port: 0\nheartbeat_interval: 200ms\n";
    std::map<std::string, std::string> env{{"NOTIFY_SOCKET", path_}};
    if (!watchdog_usec.empty()) env["WATCHDOG_USEC"] = watchdog_usec;
    env["PLANTD_BROKER_TEST_STALL_MS"] = "4000";
    return broker_.Start({.env = env, .config_yaml = yaml});
  }

  TempDir dir_;
  std::string path_ = dir_.path() + "/notify";
  NotifySocket notify_{path_};
  BrokerProcess broker_;
};

// Type=notify: READY=1 with a STATUS= summary once the endpoints are bound;
// RELOADING=1 then READY=1 around SIGHUP; STOPPING=1 on SIGTERM.
TEST_F(SystemdNotifyTest, ReadyReloadingAndStoppingAreSent) {
  ASSERT_TRUE(Start(""));
  std::string seen;
  ASSERT_TRUE(notify_.WaitFor("READY=1", 5s, &seen)) << seen;
  EXPECT_NE(seen.find("STATUS="), std::string::npos) << seen;
  EXPECT_NE(seen.find("workers"), std::string::npos) << seen;

  broker_.Signal(SIGHUP);
  seen.clear();
  ASSERT_TRUE(notify_.WaitFor("RELOADING=1", 5s, &seen)) << seen;
  EXPECT_NE(seen.find("MONOTONIC_USEC="), std::string::npos) << seen;
  ASSERT_TRUE(notify_.WaitFor("READY=1", 5s, &seen)) << seen;

  broker_.Signal(SIGTERM);
  seen.clear();
  EXPECT_TRUE(notify_.WaitFor("STOPPING=1", 5s, &seen)) << seen;
  EXPECT_EQ(broker_.WaitExit(10s), 0);
}

// WatchdogSec=: WATCHDOG=1 at half the period while the loops turn, and none
// while the core is stalled past the liveness window (2 s here), so systemd
// would restart a hung broker.
TEST_F(SystemdNotifyTest, WatchdogPingsStopWhileTheCoreIsStalled) {
  ASSERT_TRUE(Start("400000"));  // 400 ms: a ping every 200 ms
  ASSERT_TRUE(notify_.WaitFor("READY=1", 5s));
  // Pings arrive while healthy.
  int pings = 0;
  const auto healthy_until = Clock::now() + 1s;
  while (Clock::now() < healthy_until) {
    auto msg = notify_.Next(500ms);
    if (msg && *msg == "WATCHDOG=1") ++pings;
  }
  EXPECT_GE(pings, 3);

  // Stall the core for 4 s (test hook); the liveness window is 2 s.
  broker_.Signal(SIGUSR1);
  Clock::time_point last_ping = Clock::now();
  std::chrono::milliseconds longest_gap{0};
  const auto observe_until = Clock::now() + 5s;
  while (Clock::now() < observe_until) {
    auto msg = notify_.Next(200ms);
    if (msg && *msg == "WATCHDOG=1") {
      longest_gap = std::max(longest_gap, std::chrono::duration_cast<std::chrono::milliseconds>(
                                              Clock::now() - last_ping));
      last_ping = Clock::now();
    }
  }
  // Without pings for more than one watchdog period systemd acts; the gap
  // spans most of the stall beyond the liveness window.
  EXPECT_GE(longest_gap, 1000ms);
  // And they come back once the core turns again.
  EXPECT_TRUE(notify_.WaitFor("WATCHDOG=1", 3s));
}

}  // namespace
}  // namespace plantd::test

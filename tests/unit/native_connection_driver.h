// Driving a libplantd NativeConnection by hand in unit tests (poll its
// descriptor and run Process until a condition holds, bounded in time and
// in rounds), and reading what its libzmq peer got.
#pragma once

#include <gtest/gtest.h>
#include <poll.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "client/native_connection.h"

namespace plantd::test {

// Polls the connection's descriptor (at most 10 ms at a time, so that a
// condition another socket or thread makes true is seen soon) and runs
// Process with what poll gave, or with 0 once its timer is due, until
// `done()` holds or `timeout` passes. Returns done().
template <typename Done>
bool DriveUntil(client::NativeConnection& connection, Done done,
                std::chrono::milliseconds timeout) {
  using Clock = std::chrono::steady_clock;
  constexpr std::chrono::milliseconds kPollSlice{10};
  constexpr int kMaxRounds = 1'000'000;  // the deadline normally ends first
  const auto deadline = Clock::now() + timeout;
  for (int round = 0; round < kMaxRounds; ++round) {
    if (done()) return true;
    const auto now = Clock::now();
    if (now >= deadline) return false;
    const auto wake = std::min({deadline, connection.next_timer(), now + kPollSlice});
    const int wait_ms = static_cast<int>(
        std::chrono::ceil<std::chrono::milliseconds>(std::max(wake - now, Clock::duration(0)))
            .count());
    pollfd item{.fd = connection.fd(), .events = connection.events(), .revents = 0};
    // poll() ignores a negative descriptor (waiting to reconnect).
    const int ready = ::poll(&item, 1, wait_ms);
    if (ready > 0 && item.revents != 0) {
      connection.Process(item.revents);
    } else if (Clock::now() >= connection.next_timer()) {
      connection.Process(0);
    }
  }
  return done();
}

// The endpoint a libzmq socket bound last (port 0 read back).
inline std::string LastEndpoint(zmq::socket_t& socket) {
  return socket.get(zmq::sockopt::last_endpoint);
}

// One whole message from `socket` without waiting; false when none.
inline bool TryRecv(zmq::socket_t& socket, std::vector<std::string>* frames) {
  frames->clear();
  zmq::message_t part;
  if (!socket.recv(part, zmq::recv_flags::dontwait)) return false;
  frames->emplace_back(part.to_string());
  while (part.more()) {
    // The rest of a message is there once its first frame is.
    EXPECT_TRUE(socket.recv(part, zmq::recv_flags::none));
    frames->emplace_back(part.to_string());
  }
  return true;
}

}  // namespace plantd::test

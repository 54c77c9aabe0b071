// Publishers and subscribers for the bus tests (libzmq PUB and SUB, as a
// plant's services use them), shared by the normal and the stress suite.
#pragma once

#include <chrono>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include <gtest/gtest.h>
#include <zmq.hpp>

#include "support.h"

namespace plantd::test {

// Resident memory of a process, from /proc/PID/status (VmRSS), in bytes.
inline int64_t RssBytes(int pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  return -1;
}

inline std::string BrokerConfig(int backend, int frontend,
                                const std::string& bus_extra = "") {
  return "endpoint: " + TcpEndpoint(FreeTcpPort()) + "\nclient_endpoint: " +
         TcpEndpoint(FreeTcpPort()) + "\nhealth:\n  port: 0\nbuses:\n  - name: attack\n" +
         "    backend: " + TcpEndpoint(backend) + "\n    frontend: " + TcpEndpoint(frontend) +
         "\n" + bus_extra;
}

inline zmq::socket_t MakePublisher(zmq::context_t& ctx, int port) {
  zmq::socket_t pub(ctx, zmq::socket_type::pub);
  pub.set(zmq::sockopt::linger, 0);
  pub.set(zmq::sockopt::xpub_nodrop, 1);  // block rather than drop at its own HWM
  pub.set(zmq::sockopt::sndtimeo, 5000);  // bounded
  pub.set(zmq::sockopt::rcvhwm, 0);       // takes in subscription floods at once
  pub.connect(TcpEndpoint(port));
  return pub;
}

inline zmq::socket_t MakeSubscriber(zmq::context_t& ctx, int port, const std::string& topic,
                             int rcvhwm = 100000) {
  zmq::socket_t sub(ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::linger, 0);
  sub.set(zmq::sockopt::rcvhwm, rcvhwm);
  // Subscriptions queue towards the broker like messages: at libzmq's
  // default of 1,000 a flood of them would be lost in the SUB itself.
  sub.set(zmq::sockopt::sndhwm, 0);
  sub.set(zmq::sockopt::subscribe, topic);
  sub.connect(TcpEndpoint(port));
  return sub;
}

inline bool Publish(zmq::socket_t& pub, std::string_view topic, std::string_view body) {
  return pub.send(zmq::buffer(topic), zmq::send_flags::sndmore).has_value() &&
         pub.send(zmq::buffer(body), zmq::send_flags::none).has_value();
}

inline std::optional<Frames> Receive(zmq::socket_t& sub, std::chrono::milliseconds timeout) {
  zmq::pollitem_t item{sub.handle(), 0, ZMQ_POLLIN, 0};
  if (zmq::poll(&item, 1, timeout) == 0) return std::nullopt;
  Frames f;
  zmq::message_t m;
  do {
    (void)sub.recv(m);
    f.push_back(m.to_string());
  } while (m.more());
  return f;
}

// Publishes `topic` until `sub` sees it (the subscription has reached the
// publisher), then drains the extra markers.
inline bool Sync(zmq::socket_t& pub, zmq::socket_t& sub, const std::string& topic) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    (void)pub.send(zmq::buffer(topic), zmq::send_flags::dontwait);
    if (Receive(sub, std::chrono::milliseconds(20))) {
      while (Receive(sub, std::chrono::milliseconds(50))) {
      }
      return true;
    }
  }
  return false;
}

// Publishes `count` 48-byte messages on `topic` from another thread while
// `sub` receives them; the delivered rate in messages per second. Every
// message must arrive (the bus runs in block mode for this).
inline double DeliveryRate(zmq::socket_t& pub, zmq::socket_t& sub, const std::string& topic,
                           int count) {
  const std::string body(48, 'b');
  std::thread publisher([&] {
    for (int n = 0; n < count; ++n) {
      if (!Publish(pub, topic, body)) return;
    }
  });
  const auto start = std::chrono::steady_clock::now();
  int received = 0;
  while (received < count && Receive(sub, std::chrono::seconds(5))) ++received;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  publisher.join();
  EXPECT_EQ(received, count);
  return received / seconds;
}

}  // namespace plantd::test

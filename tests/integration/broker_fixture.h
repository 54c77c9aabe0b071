// A fixture for tests of the real broker binary over TCP: two fresh ports
// (clients, workers), the broker started with the settings a test gives,
// stopped (and its exit checked) at the end, and 8/MMI questions asked as a
// 0.2 client.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <zmq.hpp>

#include "mdp_peers.h"
#include "support.h"

namespace plantd::test {

class BrokerFixture : public ::testing::Test {
 protected:
  // `settings`: YAML lines after the two endpoints.
  void StartBrokerWith(const std::string& settings) {
    client_port_ = FreeTcpPort();
    worker_port_ = FreeTcpPort();
    const std::string yaml = "endpoint: " + TcpEndpoint(client_port_) +
                             "\nclient_endpoint: " + TcpEndpoint(worker_port_) + "\n" + settings;
    ASSERT_TRUE(broker_.Start({.config_yaml = yaml})) << broker_.Output();
  }
  void TearDown() override {
    if (broker_.running()) {
      EXPECT_EQ(broker_.Stop(), 0) << broker_.Output();
    }
  }

  std::string clients() const { return TcpEndpoint(client_port_); }
  std::string workers() const { return TcpEndpoint(worker_port_); }

  // Asks the broker through 8/MMI, as a 0.2 client.
  Frames Mmi(const std::string& service, const Frames& body = {}) {
    TestClient c(ctx_, clients(), Dialect::kMdp02);
    c.Request(service, body);
    auto r = c.Receive();
    EXPECT_TRUE(r.has_value()) << service;
    if (!r) return {};
    EXPECT_TRUE(r->final);
    EXPECT_EQ(r->service, service);
    return r->body;
  }

  size_t CountWorkers(const std::string& service) {
    return std::stoul(Mmi("mmi.workers", {service}).at(0));
  }

  void WaitForWorkers(const std::string& service, size_t n) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (CountWorkers(service) != n) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "workers never reached " << n;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  zmq::context_t ctx_;
  BrokerProcess broker_;
  int client_port_ = 0;
  int worker_port_ = 0;
};

}  // namespace plantd::test

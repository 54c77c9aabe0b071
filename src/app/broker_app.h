// The whole broker process: the Majordomo core, the buses and the HTTP
// endpoint, each on its own thread, started and stopped together.
#pragma once

#include <memory>
#include <thread>

#include <zmq.hpp>

#include "broker/broker.h"
#include "broker/broker_stats.h"
#include "bus/bus.h"
#include "http/http_server.h"
#include "common/clock.h"
#include "common/status.h"
#include "config/options.h"

namespace plantd {

class BrokerApp {
 public:
  explicit BrokerApp(const BrokerOptions& options);
  ~BrokerApp();
  BrokerApp(const BrokerApp&) = delete;
  BrokerApp& operator=(const BrokerApp&) = delete;

  // Binds every endpoint, then starts the threads. Nothing is started when
  // any endpoint fails; the error names the endpoint and its key.
  Status Start();

  // Disconnects workers, stops every thread and returns when they have.
  void Stop();

  broker::SnapshotBoard& snapshots() { return snapshots_; }
  // Test builds: makes the core loop sleep once (health checks must notice).
  void StallCoreForTest(int ms) {
    if (broker_) broker_->StallForTest(ms);
  }
  const std::vector<std::unique_ptr<bus::Bus>>& buses() const { return buses_; }

 private:
  const BrokerOptions options_;
  zmq::context_t context_;
  SystemClock clock_;
  broker::SnapshotBoard snapshots_;
  std::unique_ptr<broker::Broker> broker_;
  std::thread broker_thread_;
  std::vector<std::unique_ptr<bus::Bus>> buses_;
  std::unique_ptr<http::HttpServer> http_;
};

}  // namespace plantd

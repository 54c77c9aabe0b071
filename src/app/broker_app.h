// The whole broker process: the Majordomo core, the buses and the HTTP
// endpoint, each on its own thread, started and stopped together.
#pragma once

#include <chrono>
#include <memory>
#include <thread>
#include <zmq.hpp>

#include "broker/broker.h"
#include "broker/broker_stats.h"
#include "bus/bus.h"
#include "common/clock.h"
#include "common/status.h"
#include "config/options.h"
#include "http/http_server.h"
#include "store/request_store.h"
#include "transport/server_security.h"
#include "transport/zap_handler.h"

namespace plantd {

class BrokerApp {
 public:
  explicit BrokerApp(const BrokerOptions& options);
  ~BrokerApp();
  BrokerApp(const BrokerApp&) = delete;
  BrokerApp& operator=(const BrokerApp&) = delete;

  // Opens the request store (store.enabled), binds every endpoint, then
  // starts the threads. Nothing is started when the store cannot be opened
  // (newer schema, failed integrity check, unwritable directory...) or any
  // endpoint fails; the error names the file or the endpoint and its key.
  Status Start();

  // Stops every part at once: the buses at once, the Majordomo core after
  // it has drained (Broker::Stop, at most shutdown_grace), then the HTTP
  // endpoint. Returns true when every thread has ended. The HTTP server gets
  // `http_wait`: an idle keep-alive connection holds one of httplib's
  // threads until its keep-alive timeout, and a process that is exiting need
  // not wait for it. When that wait runs out, the server is left to finish
  // on its own and Stop() returns false: the caller must then end the
  // process without destroying this object (std::_Exit), as the server still
  // reads its snapshots.
  bool Stop(std::chrono::milliseconds http_wait = std::chrono::milliseconds::max());

  broker::SnapshotBoard& snapshots() { return snapshots_; }
  const broker::SnapshotBoard& snapshots() const { return snapshots_; }
  // Test builds: makes the core loop sleep once (health checks must notice).
  void StallCoreForTest(int ms) {
    if (broker_) broker_->StallForTest(ms);
  }
  const std::vector<std::unique_ptr<bus::Bus>>& buses() const { return buses_; }
  // SIGHUP: reads security.authorized_keys_dir and security.acl_file again,
  // with `authorized_keys` (security.authorized_keys of a configuration
  // read again; null: the listed keys in use). Connections whose key is no
  // longer authorized are closed (key_revoked); on an error the keys and
  // rules in use stay and the error names the file or key.
  Status ReloadSecurity(const std::vector<std::string>* authorized_keys = nullptr);
  // The durable request store, or null when store.enabled is false. Its
  // health(), stats() and recovery() are thread-safe (for /healthz, /metrics
  // and /status: store/store_metrics.h renders them). Valid from Start()
  // until this object is destroyed.
  const store::RequestStore* store() const { return store_.get(); }

 private:
  void LogAccessRules() const;
  const BrokerOptions options_;
  zmq::context_t context_;
  SystemClock clock_;
  broker::SnapshotBoard snapshots_;
  // What peers must prove (security.*); loaded by Start(), shared by every
  // socket that binds.
  std::shared_ptr<transport::ServerSecurity> security_;
  // Answers libzmq's CURVE sockets (the bus backends): started before any
  // of them binds, since libzmq 4.3 lets every client in while none runs.
  std::unique_ptr<transport::ZapHandler> zap_;
  // Declared before broker_: the core refers to it until destroyed.
  std::unique_ptr<store::RequestStore> store_;
  std::unique_ptr<broker::Broker> broker_;
  std::thread broker_thread_;
  std::vector<std::unique_ptr<bus::Bus>> buses_;
  std::unique_ptr<http::HttpServer> http_;
};

}  // namespace plantd

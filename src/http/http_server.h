// The HTTP endpoint for people and machines that watch the broker:
// /healthz, /livez, /readyz, /metrics (Prometheus) and /status (JSON).
//
// It runs on its own threads and reads only published snapshots and atomic
// counters, so a slow or hostile HTTP client cannot stall message routing.
// Threads and queued connections are bounded; requests are small GETs.
#pragma once

#include <memory>
#include <thread>
#include <vector>

#include "broker/broker_stats.h"
#include "bus/bus.h"
#include "common/status.h"
#include "config/options.h"

namespace httplib {
class Server;
}

namespace plantd::http {

class HttpServer {
 public:
  HttpServer(const BrokerOptions& options, const broker::SnapshotBoard& snapshots,
             std::vector<const bus::Bus*> buses);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds health.bind:health.port; the error names the address and the key.
  Status Bind();
  void Start();
  void Stop();

 private:
  void Routes();

  const BrokerOptions options_;
  const broker::SnapshotBoard& snapshots_;
  const std::vector<const bus::Bus*> buses_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

}  // namespace plantd::http

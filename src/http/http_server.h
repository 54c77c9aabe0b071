// The HTTP endpoint for people and machines that watch the broker:
// /healthz, /livez, /readyz, /metrics (Prometheus) and /status (JSON).
//
// One event-loop thread owns every HTTP connection (non-blocking sockets,
// epoll), so no number of idle, slow or hostile connections can keep it from
// answering the next probe: each connection holds only a bounded request
// buffer and one response, each phase has a deadline (health.read_timeout,
// idle_timeout, write_timeout), and at health.max_connections the connection
// that has waited longest for a request is closed to make room. The health
// probes are answered on the loop itself; /metrics and /status, which grow
// with the broker's tables, are rendered on a second thread, one render at a
// time, shared by every request waiting for it.
//
// Both threads read only published snapshots and atomic counters, so HTTP
// traffic cannot stall message routing. /status asks the core for a fresh
// snapshot (broker::SnapshotBoard::Fresh): one snapshot per render, at most
// one render at a time, and a bounded wait, so neither side can hold up
// the other.
#pragma once

#include <memory>
#include <vector>

#include "broker/broker_stats.h"
#include "bus/bus.h"
#include "common/status.h"
#include "config/options.h"
#include "store/request_store.h"

namespace plantd::http {

class HttpServer {
 public:
  // `store` (null when store.enabled is off) must outlive the server; its
  // health and stats are read from the server's threads.
  HttpServer(const BrokerOptions& options, const broker::SnapshotBoard& snapshots,
             std::vector<const bus::Bus*> buses, const store::RequestStore* store = nullptr);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds health.bind:health.port; the error names the address and the key.
  Status Bind();
  // Starts the loop and render threads. REQUIRES: Bind() succeeded.
  void Start();
  // Closes every connection and joins the threads; idempotent.
  void Stop();

 private:
  class Loop;
  std::unique_ptr<Loop> loop_;
};

}  // namespace plantd::http

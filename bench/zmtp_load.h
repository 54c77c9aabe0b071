// MDP load spoken directly over ZMTP: one thread and one blocking TCP socket
// per client and per worker, writes buffered and sent once per batch of
// input. It is the same design as ../shared/tools/natsbench for NATS, so the
// broker and nats-server are measured with load generators of one kind;
// the libzmq load generator in plantd_bench.cc measures what libzmq
// applications see.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "load_result.h"

namespace plantd::bench {

struct ZmtpLoadOptions {
  std::string host = "127.0.0.1";
  int port = 0;
  int workers = 4;
  int clients = 4;
  int inflight = 16;
  size_t size = 64;
  int credit = 1;
  // Empty: clients call the echo workers. Otherwise each request is a 9/TSP
  // titanic.request [durable_service, body] to the broker itself, and it
  // completes when acknowledged ["200", UUID] (stored and synced); workers
  // may then be 0 and the stored requests wait for a worker.
  std::string durable_service;
  double warmup_s = 1;
  double duration_s = 5;
  std::function<double()> server_cpu_seconds;  // sampled at the window's ends
};

LoadResult RunZmtpLoad(const ZmtpLoadOptions& options);

}  // namespace plantd::bench

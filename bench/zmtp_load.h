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

namespace plantd::bench {

struct ZmtpLoadOptions {
  std::string host = "127.0.0.1";
  int port = 0;
  int workers = 4;
  int clients = 4;
  int inflight = 16;
  size_t size = 64;
  int credit = 1;
  double warmup_s = 1;
  double duration_s = 5;
  std::function<double()> server_cpu_seconds;  // sampled at the window's ends
};

struct LoadResult {
  uint64_t completed_in_window = 0;
  uint64_t lost = 0;
  uint64_t duplicated = 0;
  uint64_t mismatched = 0;
  std::vector<uint64_t> latencies_ns;  // of the requests completed in the window
  double server_cpu_seconds = 0;       // over the window
  std::string error;                   // a connection that failed
};

LoadResult RunZmtpLoad(const ZmtpLoadOptions& options);

}  // namespace plantd::bench

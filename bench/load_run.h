// What the load generators share: the clock, a TCP connection to the server
// under test, and the measured window that every client thread reports into.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "load_result.h"

namespace plantd::bench {

// Monotonic nanoseconds.
uint64_t NowNs();

// A blocking TCP connection to host:port with Nagle off; -1 with `error` set
// when it cannot be made.
int ConnectTcpNoDelay(const std::string& host, int port, std::string* error);

// A blocking socket with an input and an output buffer, which each load
// generator's connection builds its protocol on. Closes the socket when
// destroyed.
class BufferedSocket {
 public:
  BufferedSocket() = default;
  ~BufferedSocket();
  BufferedSocket(const BufferedSocket&) = delete;
  BufferedSocket& operator=(const BufferedSocket&) = delete;

 protected:
  // Connects (ConnectTcpNoDelay); empty on success, else why not.
  std::string Connect(const std::string& host, int port);
  // Sends all of out_ and clears it; false when the connection failed.
  bool Flush();
  // Waits up to `timeout_ms` for input and appends what came to in_; true
  // also when nothing came in time; false when the peer closed or failed.
  bool Fill(int timeout_ms);

  int fd_ = -1;
  std::string in_;
  std::string out_;
};

// Runs `run_client(id, window_start_ns, window_end_ns, &result)` on
// `clients` threads, measures the server's CPU (when `server_cpu_seconds`
// is set) over the window that follows `warmup_s`, joins the threads, and
// returns their results added up.
using ClientRun =
    std::function<void(int id, uint64_t window_start, uint64_t window_end, LoadResult* result)>;
LoadResult RunClientsOverWindow(int clients, double warmup_s, double duration_s,
                                const std::function<double()>& server_cpu_seconds,
                                const ClientRun& run_client);

}  // namespace plantd::bench

// Helpers for tests that run the real plantd-broker binary and talk to it
// over real sockets on 127.0.0.1.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

namespace plantd::test {

using Frames = std::vector<std::string>;

// A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it),
// never the same one twice in a process.
int FreeTcpPort();

std::string TcpEndpoint(int port);

// A plain listening TCP socket on 127.0.0.1 that holds a port, as another
// program would; closed on destruction.
class PortSquatter {
 public:
  PortSquatter();
  ~PortSquatter();
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// A directory that is removed with everything in it when this goes away.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string Write(const std::string& name, const std::string& content) const;

 private:
  std::string path_;
};

// The plantd-broker binary in a child process. The destructor stops it, and
// it is killed if the thread that started it ends first (PR_SET_PDEATHSIG):
// start it from the test's own thread.
class BrokerProcess {
 public:
  struct Options {
    std::vector<std::string> args;
    std::map<std::string, std::string> env;  // added to a clean environment
    std::string config_yaml;                  // written to a file and passed as --config
    bool wait_ready = true;                   // wait for "broker started" in the log
    std::string binary;                       // another program (plantd-mdp, an example)
    // Non-zero: the child's soft RLIMIT_FSIZE, in bytes (the hard limit is
    // left unlimited, so a test can raise it again with prlimit(2)). Every
    // file the process writes, its output file included, is bounded by it.
    uint64_t max_file_bytes = 0;
  };

  BrokerProcess() = default;
  ~BrokerProcess();
  BrokerProcess(const BrokerProcess&) = delete;
  BrokerProcess& operator=(const BrokerProcess&) = delete;

  // Starts the binary; with wait_ready, returns once it logged that it started
  // (false if it exited or took more than 10 s).
  bool Start(const Options& options);

  // SIGTERM, then waits up to `timeout`; SIGKILL after that. Returns the exit
  // status (or -signal).
  int Stop(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  void Signal(int sig) const;
  // Waits for the process to exit by itself; nullopt if it did not in time.
  std::optional<int> WaitExit(std::chrono::milliseconds timeout);
  bool running() const { return pid_ > 0; }
  int pid() const { return pid_; }

  // Everything it wrote to stdout and stderr so far.
  std::string Output() const;
  // Waits until Output() contains `text`.
  bool WaitForOutput(const std::string& text, std::chrono::milliseconds timeout) const;

 private:
  int pid_ = -1;
  TempDir dir_;
  std::string output_path_;
};

// Runs the binary to completion (for --check-config and the like).
struct RunResult {
  int status = -1;
  std::string output;
};
RunResult RunBroker(const std::vector<std::string>& args,
                    const std::map<std::string, std::string>& env = {},
                    std::chrono::milliseconds timeout = std::chrono::seconds(20));
// The same for another program of the build (path relative to the build dir).
RunResult RunProgram(const std::string& program, const std::vector<std::string>& args,
                     std::chrono::milliseconds timeout = std::chrono::seconds(20));
std::string BuildPath(const std::string& relative);

// A DEALER socket that speaks raw frames, for protocol tests.
class RawPeer {
 public:
  // `before_connect` sets further options (CURVE keys) on the socket.
  RawPeer(zmq::context_t& context, const std::string& endpoint, const std::string& routing_id = "",
          const std::function<void(zmq::socket_t&)>& before_connect = nullptr);
  void Send(const Frames& frames);
  // nullopt when nothing arrives in time.
  std::optional<Frames> Recv(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Receives, skipping heartbeats, until a message that is not a heartbeat.
  std::optional<Frames> RecvSkippingHeartbeats(
      std::chrono::milliseconds timeout = std::chrono::seconds(5));
  zmq::socket_t& socket() { return socket_; }
  void Close() { socket_.close(); }

 private:
  zmq::socket_t socket_;
};

// Frame helpers.
inline std::string Byte(int b) { return std::string(1, static_cast<char>(b)); }

// Returns true when `frames` is a Majordomo worker HEARTBEAT in any dialect.
bool IsHeartbeat(const Frames& frames);

// Asks mmi.service through `client` (MDP/0.2) until it answers 200 for
// `service`, for up to 5 s. A worker's READY travels on its own connection,
// so a client that asks at once may be answered before the broker read it.
bool WaitUntilRegistered(RawPeer& client, const std::string& service);

// Polls `condition` every 5 ms until it holds, for up to `timeout`; returns
// whether it held. What a test waits on instead of a fixed sleep.
inline bool PollUntil(const std::function<bool()>& condition,
                      std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace plantd::test

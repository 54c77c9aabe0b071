// A server started for one benchmark run (the broker, a baseline, or
// nats-server), pinned to one CPU, stopped by its PID when the run ends;
// and the /proc readings the benchmarks take of it.
#pragma once

#include <string>
#include <vector>

namespace plantd::bench {

// Pins the calling thread (and what it starts afterwards) to `cpu`; a
// negative cpu leaves the affinity alone.
void PinToCpu(int cpu);

// utime + stime of process `pid`, in seconds (0 if it has gone).
double ProcessCpuSeconds(int pid);

// Bytes process `pid` has caused to be sent to the storage layer
// (write_bytes of /proc/PID/io); -1 if unreadable.
long long ProcessWriteBytes(int pid);

// A TCP port on 127.0.0.1 that nothing listens on now (the kernel's pick,
// then released); 0 if none could be had.
int FreeTcpPort();

// A program named without a path, looked up as a shell would (and in
// /usr/sbin, where Debian puts nats-server); ChildProcess wants a path.
std::string FindProgram(const std::string& name);

// True once something accepts TCP connections on 127.0.0.1:port, polling
// for at most `timeout_ms`.
bool WaitForTcpPort(int port, int timeout_ms);

// GET http://127.0.0.1:port/path (the broker's health port); the body, or
// empty.
std::string HttpGet(int port, const std::string& path);

// The value of a metric line "name value" in a /metrics body (`name` with
// its labels, as printed); NAN if absent.
double MetricValue(const std::string& metrics, const std::string& name);

// Runs argv[0] (a path) with `argv` in a child pinned to `cpu`, its stdout
// and stderr appended to `output_path` if given. Destruction stops it:
// SIGTERM, up to 2 s for it to exit, then SIGKILL.
class ChildProcess {
 public:
  ChildProcess(const std::vector<std::string>& argv, int cpu, const std::string& output_path = "");
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  int pid() const { return pid_; }
  // SIGTERM and wait up to `timeout_ms`, then SIGKILL. Returns the exit
  // status as waitpid gives it, or -1 if it had to be killed.
  int Stop(int timeout_ms = 2000);

 private:
  int pid_ = -1;
  bool reaped_ = false;
};

}  // namespace plantd::bench

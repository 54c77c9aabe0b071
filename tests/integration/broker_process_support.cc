#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "support.h"

namespace plantd::test {

using namespace std::chrono_literals;

// The kernel picks the port (bind to port 0, read it back). It may pick the
// same port again for the next call once this socket is closed, and two keys
// of one config on one port make the broker refuse to start: a port is handed
// out once per process, and a repeat is asked for again.
int FreeTcpPort() {
  static std::set<int> handed_out;
  for (int attempt = 0; attempt < 100; ++attempt) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof(addr);
    const bool bound = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
                       getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
    close(fd);
    if (!bound) continue;
    const int port = ntohs(addr.sin_port);
    if (handed_out.insert(port).second) return port;
  }
  return 0;  // the broker then fails to start, and the test shows why
}

std::string TcpEndpoint(int port) { return "tcp://127.0.0.1:" + std::to_string(port); }

PortSquatter::PortSquatter() {
  fd_ = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  listen(fd_, 1);
  socklen_t len = sizeof(addr);
  getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
}

PortSquatter::~PortSquatter() { close(fd_); }

TempDir::TempDir() {
  char tmpl[] = "/tmp/plantd-test-XXXXXX";
  path_ = mkdtemp(tmpl);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::Write(const std::string& name, const std::string& content) const {
  const std::string p = path_ + "/" + name;
  std::ofstream(p) << content;
  return p;
}

namespace {

int Spawn(const std::string& program, const std::vector<std::string>& args,
          const std::map<std::string, std::string>& env, const std::string& output_path,
          uint64_t max_file_bytes = 0) {
  std::vector<std::string> env_strings = {"PATH=/usr/bin:/bin"};
  // Sanitizer settings reach the broker too, so its reports fail the test.
  for (const char* name : {"ASAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS", "LSAN_OPTIONS"}) {
    if (const char* value = std::getenv(name)) env_strings.push_back(std::string(name) + "=" + value);
  }
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  const pid_t pid = fork();
  if (pid != 0) return pid;
  // Child: dies with the test process (a test killed by a timeout or a
  // sanitizer abort leaves no broker behind), output to the file, default
  // signal handling, a clean environment.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  const int fd = open(output_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  dup2(fd, 1);
  dup2(fd, 2);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  if (max_file_bytes > 0) {
    const rlimit limit{.rlim_cur = max_file_bytes, .rlim_max = RLIM_INFINITY};
    if (setrlimit(RLIMIT_FSIZE, &limit) != 0) _exit(126);
  }
  std::vector<char*> argv;
  std::string binary = program.empty() ? std::string(PLANTD_BROKER_BINARY) : program;
  argv.push_back(binary.data());
  std::vector<std::string> copy = args;
  for (std::string& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  execve(binary.c_str(), argv.data(), envp.data());
  _exit(127);
}

std::optional<int> WaitPid(int pid, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int status = 0;
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(5ms);
  }
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

BrokerProcess::~BrokerProcess() {
  if (running()) Stop();
}

bool BrokerProcess::Start(const Options& options) {
  output_path_ = dir_.path() + "/output.log";
  std::vector<std::string> args = options.args;
  if (!options.config_yaml.empty()) {
    args.push_back("--config");
    args.push_back(dir_.Write("broker.yaml", options.config_yaml));
  }
  std::map<std::string, std::string> env = options.env;
  // The durable request store: one file per broker (not ./data in the
  // test's directory, shared by every test) unless the test chose one.
  if (options.binary.empty() && !env.contains("PLANTD_BROKER_STORE_PATH") &&
      options.config_yaml.find("store:") == std::string::npos) {
    env["PLANTD_BROKER_STORE_PATH"] = dir_.path() + "/store.db";
  }
  pid_ = Spawn(options.binary, args, env, output_path_, options.max_file_bytes);
  if (!options.wait_ready) return true;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (Output().find("broker started") != std::string::npos) return true;
    if (auto status = WaitPid(pid_, 0ms)) {
      pid_ = -1;
      return false;
    }
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

void BrokerProcess::Signal(int sig) const {
  if (pid_ > 0) kill(pid_, sig);
}

std::optional<int> BrokerProcess::WaitExit(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return std::nullopt;
  auto status = WaitPid(pid_, timeout);
  if (status) pid_ = -1;
  return status;
}

int BrokerProcess::Stop(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  if (auto status = WaitExit(timeout)) return *status;
  kill(pid_, SIGKILL);
  auto status = WaitExit(5s);
  return status ? *status : -SIGKILL;
}

std::string BrokerProcess::Output() const { return ReadFile(output_path_); }

bool BrokerProcess::WaitForOutput(const std::string& text,
                                  std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  do {
    if (Output().find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(10ms);
  } while (std::chrono::steady_clock::now() < deadline);
  return false;
}

std::string BuildPath(const std::string& relative) {
  return std::string(PLANTD_BUILD_DIR) + "/" + relative;
}

namespace {

RunResult SpawnAndWait(const std::string& binary, const std::vector<std::string>& args,
                       const std::map<std::string, std::string>& env,
                       std::chrono::milliseconds timeout) {
  TempDir dir;
  const std::string out = dir.path() + "/output.log";
  const int pid = Spawn(binary, args, env, out);
  RunResult result;
  auto status = WaitPid(pid, timeout);
  if (!status) {
    kill(pid, SIGKILL);
    status = WaitPid(pid, 5s);
  }
  result.status = status.value_or(-1);
  result.output = ReadFile(out);
  return result;
}

}  // namespace

RunResult RunProgram(const std::string& program, const std::vector<std::string>& args,
                     std::chrono::milliseconds timeout) {
  return SpawnAndWait(BuildPath(program), args, {}, timeout);
}

RunResult RunBroker(const std::vector<std::string>& args,
                    const std::map<std::string, std::string>& env,
                    std::chrono::milliseconds timeout) {
  return SpawnAndWait("", args, env, timeout);
}

RawPeer::RawPeer(zmq::context_t& context, const std::string& endpoint,
                 const std::string& routing_id,
                 const std::function<void(zmq::socket_t&)>& before_connect)
    : socket_(context, zmq::socket_type::dealer) {
  socket_.set(zmq::sockopt::linger, 0);
  if (!routing_id.empty()) socket_.set(zmq::sockopt::routing_id, routing_id);
  if (before_connect) before_connect(socket_);
  socket_.connect(endpoint);
}

void RawPeer::Send(const Frames& frames) {
  for (size_t i = 0; i < frames.size(); ++i) {
    socket_.send(zmq::buffer(frames[i]),
                 i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }
}

std::optional<Frames> RawPeer::Recv(std::chrono::milliseconds timeout) {
  zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
  if (zmq::poll(&item, 1, timeout) == 0) return std::nullopt;
  Frames frames;
  while (true) {
    zmq::message_t m;
    (void)socket_.recv(m);
    frames.push_back(m.to_string());
    if (!m.more()) break;
  }
  return frames;
}

bool WaitUntilRegistered(RawPeer& client, const std::string& service) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    client.Send({"MDPC02", Byte(0x01), "mmi.service", service});
    auto answer = client.Recv(std::chrono::seconds(1));
    if (answer && answer->back() == "200") return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

bool IsHeartbeat(const Frames& f) {
  if (f.size() == 2 && f[0] == "MDPW02") return f[1] == Byte(0x05) || f[1] == "HEARTBEAT";
  if (f.size() == 3 && f[0].empty() && f[1] == "MDPW02") return f[2] == Byte(0x05);  // majortomo
  return f.size() == 3 && f[0].empty() && f[1] == "MDPW01" && f[2] == Byte(0x04);
}

std::optional<Frames> RawPeer::RecvSkippingHeartbeats(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left <= 0ms) return std::nullopt;
    auto frames = Recv(left);
    if (!frames || !IsHeartbeat(*frames)) return frames;
  }
}

}  // namespace plantd::test

#include "load_run.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

namespace plantd::bench {

uint64_t NowNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

int ConnectTcpNoDelay(const std::string& host, int port, std::string* error) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = std::string("socket: ") + std::strerror(errno);
    return -1;
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, host.c_str(), &address.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    *error = std::string("connect: ") + std::strerror(errno);
    ::close(fd);
    return -1;
  }
  return fd;
}

LoadResult RunClientsOverWindow(int clients, double warmup_s, double duration_s,
                                const std::function<double()>& server_cpu_seconds,
                                const ClientRun& run_client) {
  const uint64_t window_start = NowNs() + static_cast<uint64_t>(warmup_s * 1e9);
  const uint64_t window_end = window_start + static_cast<uint64_t>(duration_s * 1e9);
  std::vector<LoadResult> results(static_cast<size_t>(clients));
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back(run_client, c, window_start, window_end, &results[c]);
  }
  auto sleep_until_ns = [](uint64_t t) {
    const uint64_t now = NowNs();
    if (t > now) std::this_thread::sleep_for(std::chrono::nanoseconds(t - now));
  };
  LoadResult total;
  sleep_until_ns(window_start);
  const double cpu_start = server_cpu_seconds ? server_cpu_seconds() : 0;
  sleep_until_ns(window_end);
  total.server_cpu_seconds = server_cpu_seconds ? server_cpu_seconds() - cpu_start : 0;
  for (auto& t : threads) t.join();
  for (const LoadResult& r : results) {
    total.completed_in_window += r.completed_in_window;
    total.completed_total += r.completed_total;
    total.lost += r.lost;
    total.duplicated += r.duplicated;
    total.mismatched += r.mismatched;
    total.latencies_ns.insert(total.latencies_ns.end(), r.latencies_ns.begin(),
                              r.latencies_ns.end());
    if (!r.error.empty()) total.error = r.error;
    if (total.first_mismatch.empty()) total.first_mismatch = r.first_mismatch;
  }
  return total;
}

BufferedSocket::~BufferedSocket() {
  if (fd_ >= 0) ::close(fd_);
}

std::string BufferedSocket::Connect(const std::string& host, int port) {
  std::string error;
  fd_ = ConnectTcpNoDelay(host, port, &error);
  return fd_ < 0 ? error : std::string();
}

bool BufferedSocket::Flush() {
  size_t sent = 0;
  while (sent < out_.size()) {
    const ssize_t n = ::send(fd_, out_.data() + sent, out_.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  out_.clear();
  return true;
}

bool BufferedSocket::Fill(int timeout_ms) {
  pollfd p{fd_, POLLIN, 0};
  const int ready = ::poll(&p, 1, timeout_ms);
  if (ready < 0) return errno == EINTR;
  if (ready == 0) return true;
  char chunk[64 * 1024];
  const ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
  if (n <= 0) return n < 0 && errno == EINTR;
  in_.append(chunk, static_cast<size_t>(n));
  return true;
}

}  // namespace plantd::bench

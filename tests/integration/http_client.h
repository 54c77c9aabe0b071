// A raw-socket HTTP/1.1 client for the attack tests: it can hold idle and
// half-sent connections, time a probe, and read exactly what the server
// wrote. Talks only to 127.0.0.1.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace plantd::test {

// A TCP connection to 127.0.0.1:port; -1 when it could not be made.
// Non-blocking connects return at once, even when the server does not accept.
inline int TcpConnect(int port, bool non_blocking = false) {
  const int fd =
      socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (non_blocking ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 && errno != EINPROGRESS) {
    close(fd);
    return -1;
  }
  return fd;
}

inline bool SendAll(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

// True when the server closed `fd` (EOF or reset) within `timeout`; data it
// sends first is read and dropped.
inline bool ClosedByServer(int fd, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(std::max<int64_t>(0, left.count()))) <= 0) return false;
    char buffer[4096];
    const ssize_t n = recv(fd, buffer, sizeof(buffer), MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) return true;
  }
}

struct HttpReply {
  int status = 0;
  std::string head;
  std::string body;
  bool closed = false;  // the server closed the connection after it
};

// Reads one response from `fd`: the head, then Content-Length bytes (a HEAD
// request's response has none). nullopt on timeout or a malformed answer.
inline std::optional<HttpReply> ReadReply(int fd, std::string& pending,
                                          std::chrono::milliseconds timeout,
                                          bool head_request = false) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  HttpReply reply;
  size_t head_end = std::string::npos;
  size_t length = 0;
  while (true) {
    if (head_end == std::string::npos) {
      head_end = pending.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        reply.head = pending.substr(0, head_end + 4);
        if (reply.head.rfind("HTTP/1.1 ", 0) != 0) return std::nullopt;
        reply.status = std::atoi(reply.head.c_str() + 9);
        const size_t cl = reply.head.find("Content-Length: ");
        if (cl == std::string::npos) return std::nullopt;
        length = head_request ? 0 : std::strtoull(reply.head.c_str() + cl + 16, nullptr, 10);
      }
    }
    if (head_end != std::string::npos && pending.size() >= head_end + 4 + length) {
      reply.body = pending.substr(head_end + 4, length);
      pending.erase(0, head_end + 4 + length);
      return reply;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
    char buffer[65536];
    const ssize_t n = recv(fd, buffer, sizeof(buffer), MSG_DONTWAIT);
    if (n > 0) {
      pending.append(buffer, static_cast<size_t>(n));
    } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      return std::nullopt;
    }
  }
}

// One request on a new connection; the reply, or nullopt.
inline std::optional<HttpReply> HttpExchange(
    int port, const std::string& request,
    std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  const int fd = TcpConnect(port);
  if (fd < 0) return std::nullopt;
  std::optional<HttpReply> reply;
  std::string pending;
  if (SendAll(fd, request)) reply = ReadReply(fd, pending, timeout);
  if (reply) {
    // A server that announced the close sends its FIN after the response;
    // on a loaded machine it may arrive a moment after the last byte.
    const bool announced = reply->head.find("Connection: close\r\n") != std::string::npos;
    reply->closed = ClosedByServer(fd, std::chrono::milliseconds(announced ? 2000 : 0));
  }
  close(fd);
  return reply;
}

inline std::optional<HttpReply> HttpGet(
    int port, const std::string& path,
    std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  return HttpExchange(port, "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", timeout);
}

// The value of one sample ("name{labels}") in /metrics, or -1.
inline double MetricValue(int port, const std::string& sample) {
  auto reply = HttpGet(port, "/metrics");
  if (!reply || reply->status != 200) return -1;
  std::istringstream lines(reply->body);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(sample + " ", 0) == 0) return std::stod(line.substr(sample.size() + 1));
  }
  return -1;
}

// Milliseconds for a fresh connection to get a whole 200 answer to GET
// `path`; a negative number when it did not.
inline double TimedGetMs(int port, const std::string& path,
                         std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  const auto start = std::chrono::steady_clock::now();
  auto reply = HttpGet(port, path, timeout);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return reply && reply->status == 200 ? ms : -1;
}

inline double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return -1;
  std::sort(values.begin(), values.end());
  const size_t i = std::min(values.size() - 1, static_cast<size_t>(p * values.size()));
  return values[i];
}

}  // namespace plantd::test

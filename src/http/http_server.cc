#include "http/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "common/refusal.h"
#include "http/health_check.h"
#include "http/metrics.h"
#include "http/status.h"
#include "log/log.h"
#include "store/store_metrics.h"

namespace plantd::http {
namespace {

using SteadyClock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr uint64_t kListenerId = 0;
constexpr uint64_t kWakeId = 1;
constexpr int kMaxEvents = 256;
// Deadlines are checked this often; a timeout fires at most this late.
constexpr auto kTick = 100ms;
// Accepts per readiness event, so that reading and writing keep their turn.
constexpr int kAcceptBatch = 32;
// After an answer that closes the connection, the rest of what the client
// sends is read and dropped for this long (at most kLingerBytes), so that the
// kernel does not reset the connection before the client has read the answer.
constexpr auto kLinger = 1s;
constexpr size_t kLingerBytes = size_t{64} * 1024;

// How long /status waits for the core's answer before it falls back to the
// last published snapshot: a loop turn takes well under a millisecond, so
// only a stuck or overloaded core misses it.
constexpr std::chrono::milliseconds kStatusWait{100};

// The documents that grow with the broker's tables, rendered off the loop.
enum class Document : uint8_t { kMetrics, kStatus, kCount };
constexpr size_t kDocumentCount = static_cast<size_t>(Document::kCount);

const char* kTextPlain = "text/plain";
const char* kMetricsType = "text/plain; version=0.0.4; charset=utf-8";

const char* StatusText(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
  }
  return "Error";
}

std::shared_ptr<const std::string> Body(std::string text) {
  return std::make_shared<const std::string>(std::move(text));
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (c <= 0x20 || c >= 0x7f || std::strchr("\"(),/:;<=>?@[\\]{}", c) != nullptr) return false;
  }
  return true;
}

// The offset just past the blank line that ends a request's head, or npos.
// Lines end in CRLF, or LF alone (RFC 9112 section 2.2 lets a server accept it).
size_t HeadEnd(std::string_view in) {
  size_t pos = 0;
  while (true) {
    const size_t nl = in.find('\n', pos);
    if (nl == std::string_view::npos) return std::string_view::npos;
    const size_t len = nl - pos;
    if (pos > 0 && (len == 0 || (len == 1 && in[pos] == '\r'))) return nl + 1;
    pos = nl + 1;
  }
}

// A request line and the headers that matter to a server of GETs.
struct Request {
  std::string_view method;
  std::string_view path;  // without the query
  bool http11 = true;
  bool keep_alive = true;
  bool has_body = false;
  bool malformed = false;
};

Request ParseHead(std::string_view head) {
  Request r;
  const size_t line_end = head.find('\n');
  std::string_view line = Trim(head.substr(0, line_end));
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    r.malformed = true;
    return r;
  }
  r.method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!IsToken(r.method) || target.empty() || target.front() != '/') r.malformed = true;
  if (version == "HTTP/1.1") {
    r.http11 = true;
  } else if (version == "HTTP/1.0") {
    r.http11 = false;
  } else {
    r.malformed = true;
  }
  r.path = target.substr(0, target.find('?'));
  r.keep_alive = r.http11;

  std::optional<uint64_t> content_length;
  size_t pos = line_end + 1;
  while (pos < head.size()) {
    const size_t nl = head.find('\n', pos);
    std::string_view field = head.substr(pos, nl == std::string_view::npos ? nl : nl - pos);
    pos = nl == std::string_view::npos ? head.size() : nl + 1;
    if (!field.empty() && field.back() == '\r') field.remove_suffix(1);
    if (field.empty()) break;  // the blank line
    const size_t colon = field.find(':');
    // RFC 9112 5.1: no whitespace before the colon; 5.2: no line folding.
    if (colon == std::string_view::npos || !IsToken(field.substr(0, colon))) {
      r.malformed = true;
      return r;
    }
    const std::string_view name = field.substr(0, colon);
    const std::string_view value = Trim(field.substr(colon + 1));
    if (EqualsIgnoreCase(name, "connection")) {
      size_t start = 0;
      while (start <= value.size()) {
        size_t comma = value.find(',', start);
        if (comma == std::string_view::npos) comma = value.size();
        const std::string_view option = Trim(value.substr(start, comma - start));
        if (EqualsIgnoreCase(option, "close")) r.keep_alive = false;
        if (EqualsIgnoreCase(option, "keep-alive") && !r.http11) r.keep_alive = true;
        start = comma + 1;
      }
    } else if (EqualsIgnoreCase(name, "content-length")) {
      uint64_t n = 0;
      if (value.empty() || value.size() > 18 ||
          !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        r.malformed = true;
        return r;
      }
      for (char c : value) n = n * 10 + static_cast<uint64_t>(c - '0');
      if (content_length && *content_length != n) {
        r.malformed = true;  // RFC 9112 6.3: differing lengths
        return r;
      }
      content_length = n;
      if (n > 0) r.has_body = true;
    } else if (EqualsIgnoreCase(name, "transfer-encoding")) {
      r.has_body = true;
    }
  }
  return r;
}

std::string RemoteAddress(const sockaddr_storage& addr, uint16_t* port) {
  char text[INET6_ADDRSTRLEN] = "?";
  if (addr.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
    *port = ntohs(in->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text));
    *port = ntohs(in6->sin6_port);
  }
  return text;
}

}  // namespace

class HttpServer::Loop {
 public:
  Loop(const BrokerOptions& options, const broker::SnapshotBoard& snapshots,
       std::vector<const bus::Bus*> buses, const store::RequestStore* store)
      : options_(options),
        snapshots_(snapshots),
        buses_(std::move(buses)),
        store_(store),
        stale_after_(LivenessWindow(options)) {}

  ~Loop() {
    Stop();
    for (int fd : {listen_fd_, epoll_fd_, wake_fd_, spare_fd_}) {
      if (fd >= 0) close(fd);
    }
  }

  Status Bind();
  void Start();
  void Stop();

 private:
  enum class State : uint8_t {
    kReading,    // waiting for (the rest of) a request
    kRendering,  // a document is being rendered for it
    kWriting,    // an answer is being sent
    kLingering,  // answered and shut down for writing; dropping its input
  };

  struct Connection {
    uint64_t id = 0;
    int fd = -1;
    std::string address;  // remote IP: the key of refusal log lines
    uint16_t port = 0;
    State state = State::kReading;
    uint32_t events = 0;  // registered with epoll
    bool closed = false;
    bool peer_closed = false;   // read EOF: answer what is buffered, then close
    bool answered_one = false;  // waiting for a second request (keep-alive)
    bool request_started = false;
    SteadyClock::time_point accepted_at;
    uint64_t wait_order = 0;           // order of entering kReading
    SteadyClock::time_point deadline;  // of the current state
    std::string in;
    // The answer being written: head, then body.
    std::string head;
    std::shared_ptr<const std::string> body;
    size_t sent = 0;
    bool close_after = false;
    // A request waiting for a render.
    bool keep_alive = true;
    bool head_only = false;
    size_t lingered = 0;
  };

  struct Rendered {
    int status = 200;
    std::shared_ptr<const std::string> body;
  };

  void Run();
  void RenderThread();
  Rendered RenderNow(Document document) const;

  void Accept(SteadyClock::time_point now);
  // At max_connections: closes the connection that has waited longest for a
  // request. False when every connection is busy answering.
  bool EvictOldestWaiting();
  void OnReadable(Connection& c);
  // Moves a connection forward as far as it can go without blocking.
  void Drive(Connection& c);
  // Takes one complete request from c.in and answers it (or starts its
  // render). False when there is none yet, or c was closed.
  bool NextRequest(Connection& c);
  void Answer(Connection& c, const Request& r);
  void Respond(Connection& c, int status, const char* content_type,
               std::shared_ptr<const std::string> body, bool keep_alive, bool head_only,
               std::string_view extra_headers = "");
  // True when the whole answer is written; false when blocked or closed.
  bool Flush(Connection& c);
  void StartWaiting(Connection& c, SteadyClock::time_point now);
  void StartLingering(Connection& c);
  void Linger(Connection& c);
  void Sweep(SteadyClock::time_point now);
  void Deliver();
  void SetEvents(Connection& c, uint32_t events);
  void Close(Connection& c);

  const BrokerOptions options_;
  const broker::SnapshotBoard& snapshots_;
  const std::vector<const bus::Bus*> buses_;
  const store::RequestStore* const store_;  // null: durable requests are off
  const std::chrono::milliseconds stale_after_;

  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  // Held so that at the process's descriptor limit one can be freed to
  // accept and close a connection, instead of spinning on a listener that
  // stays readable.
  int spare_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread loop_thread_;
  std::thread render_thread_;

  // Loop thread only.
  std::unordered_map<uint64_t, std::unique_ptr<Connection>> connections_;
  std::vector<uint64_t> closed_;  // freed at the end of the loop iteration
  size_t open_ = 0;
  uint64_t next_id_ = 2;
  uint64_t next_wait_ = 1;  // orders connections by when they began waiting
  std::array<std::vector<uint64_t>, kDocumentCount> waiting_for_;
  std::array<bool, kDocumentCount> rendering_{};
  SteadyClock::time_point last_sweep_{};

  // The hand-over to the render thread.
  std::mutex render_mutex_;
  std::condition_variable render_cv_;
  std::array<bool, kDocumentCount> render_wanted_{};                // GUARDED_BY(render_mutex_)
  std::array<std::optional<Rendered>, kDocumentCount> rendered_{};  // GUARDED_BY(render_mutex_)
  bool render_stop_ = false;                                        // GUARDED_BY(render_mutex_)
};

Status HttpServer::Loop::Bind() {
  const std::string where = options_.health.bind + ":" + std::to_string(options_.health.port);
  auto fail = [&where](const std::string& why) {
    return Status::Error("cannot bind " + where + " (health.bind, health.port): " + why);
  };
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(options_.health.port);
  if (int rc = getaddrinfo(options_.health.bind.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return fail(gai_strerror(rc));
  }
  listen_fd_ = socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) {
    freeaddrinfo(found);
    return fail(std::strerror(errno));
  }
  // SO_REUSEADDR for quick restarts, but not SO_REUSEPORT, which would let a
  // second process share the port instead of failing.
  int yes = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  const int bound = ::bind(listen_fd_, found->ai_addr, found->ai_addrlen);
  const int bind_errno = errno;
  freeaddrinfo(found);
  if (bound != 0) return fail(std::strerror(bind_errno));
  if (listen(listen_fd_, SOMAXCONN) != 0) return fail(std::strerror(errno));

  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  spare_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (epoll_fd_ < 0 || wake_fd_ < 0)
    return Status::Error(std::string("health: ") + std::strerror(errno));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenerId;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
  ev.data.u64 = kWakeId;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
  return Status::Ok();
}

void HttpServer::Loop::Start() {
  if (listen_fd_ < 0 || loop_thread_.joinable()) return;
  render_thread_ = std::thread([this] { RenderThread(); });
  loop_thread_ = std::thread([this] { Run(); });
}

void HttpServer::Loop::Stop() {
  stop_.store(true);
  if (wake_fd_ >= 0) {
    const uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
  }
  if (loop_thread_.joinable()) loop_thread_.join();
  {
    std::lock_guard<std::mutex> lock(render_mutex_);
    render_stop_ = true;
  }
  render_cv_.notify_all();
  if (render_thread_.joinable()) render_thread_.join();
  for (auto& [id, c] : connections_) {
    if (!c->closed) close(c->fd);
  }
  connections_.clear();
}

void HttpServer::Loop::Run() {
  std::array<epoll_event, kMaxEvents> events;
  while (!stop_.load(std::memory_order_relaxed)) {
    const int n = epoll_wait(epoll_fd_, events.data(), kMaxEvents,
                             static_cast<int>(std::chrono::milliseconds(kTick).count()));
    if (n < 0 && errno != EINTR) {
      PLANTD_LOG_ERROR("health: epoll_wait failed", {{"error", std::strerror(errno)}});
      return;
    }
    const auto now = SteadyClock::now();
    for (int i = 0; i < n; ++i) {
      const uint64_t id = events[i].data.u64;
      const uint32_t ev = events[i].events;
      if (id == kListenerId) {
        Accept(now);
        continue;
      }
      if (id == kWakeId) {
        uint64_t count = 0;
        (void)!read(wake_fd_, &count, sizeof(count));
        Deliver();
        continue;
      }
      auto it = connections_.find(id);
      if (it == connections_.end() || it->second->closed) continue;
      Connection& c = *it->second;
      // An error closes at once; a hang-up only after its state had its say.
      if (ev & EPOLLERR) {  // NOLINT(bugprone-branch-clone)
        Close(c);
      } else if (c.state == State::kReading && (ev & (EPOLLIN | EPOLLHUP))) {
        OnReadable(c);
      } else if (c.state == State::kWriting && (ev & (EPOLLOUT | EPOLLHUP))) {
        Drive(c);
      } else if (c.state == State::kLingering && (ev & (EPOLLIN | EPOLLHUP))) {
        Linger(c);
      } else if (ev & EPOLLHUP) {  // a hang-up in a state that does not read it
        Close(c);
      }
    }
    if (now - last_sweep_ >= kTick) {
      Sweep(now);
      last_sweep_ = now;
    }
    for (uint64_t id : closed_) connections_.erase(id);
    closed_.clear();
  }
}

void HttpServer::Loop::Accept(SteadyClock::time_point now) {
  for (int i = 0; i < kAcceptBatch; ++i) {
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    int fd =
        accept4(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE) {
        // Out of descriptors: make room by closing the longest waiting
        // connection, or take the connection with the spare and close it.
        if (EvictOldestWaiting()) {
          for (uint64_t id : closed_) connections_.erase(id);
          closed_.clear();
          continue;
        }
        if (spare_fd_ >= 0) {
          close(spare_fd_);
          fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len, SOCK_CLOEXEC);
          if (fd >= 0) {
            uint16_t port = 0;
            refusal::Record(refusal::Reason::kHttpConnections, RemoteAddress(addr, &port),
                            {{"port", port}, {"limit", "open files"}});
            close(fd);
          }
          spare_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
        }
      }
      return;  // EAGAIN: all accepted
    }
    uint16_t port = 0;
    std::string address = RemoteAddress(addr, &port);
    if (open_ >= options_.health.max_connections && !EvictOldestWaiting()) {
      // Every connection is being answered: this one waits for nothing.
      refusal::Record(refusal::Reason::kHttpConnections, address,
                      {{"port", port},
                       {"limit", options_.health.max_connections},
                       {"closed", "new connection"}});
      static constexpr std::string_view kBusy =
          "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
          "Content-Length: 5\r\nConnection: close\r\n\r\nbusy\n";
      (void)!send(fd, kBusy.data(), kBusy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      close(fd);
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    auto conn = std::make_unique<Connection>();
    Connection& c = *conn;
    c.id = next_id_++;
    c.fd = fd;
    c.address = std::move(address);
    c.port = port;
    c.accepted_at = now;
    c.wait_order = next_wait_++;
    c.deadline = now + options_.health.read_timeout;
    connections_.emplace(c.id, std::move(conn));
    ++open_;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = c.id;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
    c.events = EPOLLIN;
    // The request often arrives with the connection: answer it before the
    // next accept can push this connection out.
    OnReadable(c);
  }
}

bool HttpServer::Loop::EvictOldestWaiting() {
  Connection* victim = nullptr;
  for (auto& [id, ptr] : connections_) {
    Connection& c = *ptr;
    if (c.closed) continue;
    if (c.state == State::kLingering) {  // already answered: goes first
      victim = &c;
      break;
    }
    if (c.state == State::kReading && (victim == nullptr || c.wait_order < victim->wait_order)) {
      victim = &c;
    }
  }
  if (victim == nullptr) return false;
  if (victim->state == State::kReading) {
    refusal::Record(refusal::Reason::kHttpConnections, victim->address,
                    {{"port", victim->port},
                     {"limit", options_.health.max_connections},
                     {"closed", "oldest waiting connection"}});
  }
  Close(*victim);
  return true;
}

void HttpServer::Loop::OnReadable(Connection& c) {
  const size_t limit = options_.health.max_request_bytes + 1;
  char buffer[16384];
  while (!c.peer_closed && c.in.size() < limit) {
    const size_t room = std::min(limit - c.in.size(), sizeof(buffer));
    const ssize_t n = recv(c.fd, buffer, room, 0);
    if (n > 0) {
      c.in.append(buffer, static_cast<size_t>(n));
    } else if (n == 0) {
      c.peer_closed = true;
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      break;
    } else {
      Close(c);
      return;
    }
  }
  Drive(c);
}

void HttpServer::Loop::Drive(Connection& c) {
  while (!c.closed) {
    switch (c.state) {
      case State::kRendering:
      case State::kLingering: return;
      case State::kWriting:
        if (!Flush(c)) return;
        if (c.close_after) {
          StartLingering(c);
          return;
        }
        StartWaiting(c, SteadyClock::now());
        break;
      case State::kReading:
        if (!NextRequest(c)) return;
        break;
    }
  }
}

bool HttpServer::Loop::NextRequest(Connection& c) {
  // RFC 9112 2.2: empty lines before a request line are ignored.
  const size_t first = c.in.find_first_not_of("\r\n");
  c.in.erase(0, first == std::string::npos ? c.in.size() : first);
  if (c.in.empty()) {
    if (c.peer_closed) Close(c);
    return false;
  }
  const auto now = SteadyClock::now();
  if (!c.request_started) {
    c.request_started = true;
    // A new connection's first request must be complete read_timeout after
    // the connection opened; a kept-alive one's after its first byte.
    c.deadline = (c.answered_one ? now : c.accepted_at) + options_.health.read_timeout;
  }
  const size_t end = HeadEnd(c.in);
  if (end == std::string::npos || end > options_.health.max_request_bytes) {
    if (c.in.size() > options_.health.max_request_bytes) {
      refusal::Record(refusal::Reason::kHttpRequestTooLarge, c.address,
                      {{"port", c.port}, {"limit", options_.health.max_request_bytes}});
      Respond(c, 431, kTextPlain, Body("request line and headers too large\n"), false, false);
      c.in.clear();
      return true;
    }
    if (c.peer_closed) Close(c);  // a request that will never be complete
    return false;
  }
  const Request request = ParseHead(std::string_view(c.in).substr(0, end));
  Answer(c, request);
  c.in.erase(0, end);
  return true;
}

void HttpServer::Loop::Answer(Connection& c, const Request& r) {
  if (r.malformed) {
    Respond(c, 400, kTextPlain, Body("bad request\n"), false, false);
    return;
  }
  const bool head_only = r.method == "HEAD";
  if (r.method != "GET" && !head_only) {
    // A body we do not read would be taken for the next request: close.
    Respond(c, 405, kTextPlain, Body("only GET and HEAD\n"), r.keep_alive && !r.has_body, false,
            "Allow: GET, HEAD\r\n");
    return;
  }
  if (r.has_body) {
    refusal::Record(refusal::Reason::kHttpRequestTooLarge, c.address,
                    {{"port", c.port}, {"limit", "no request body"}});
    Respond(c, 413, kTextPlain, Body("a request body is not accepted\n"), false, false);
    return;
  }
  const bool keep = r.keep_alive;
  if (r.path == "/healthz") {
    HealthReport report =
        EvaluateHealth(snapshots_.Latest().get(), buses_, SteadyClock::now(), stale_after_);
    if (store_ != nullptr) AddStoreCheck(store_->health(), &report);
    Respond(c, report.status == HealthStatus::kFail ? 503 : 200, "application/health+json",
            Body(RenderHealthJson(report, std::chrono::system_clock::now())), keep, head_only);
  } else if (r.path == "/livez") {
    // Liveness: the loops are turning. A failed liveness probe restarts us,
    // so a broker still starting (no snapshot yet) counts as alive; /readyz
    // is the probe that waits for it.
    auto snap = snapshots_.Latest();
    const bool alive =
        snap == nullptr ||
        EvaluateHealth(snap.get(), buses_, SteadyClock::now(), stale_after_).status !=
            HealthStatus::kFail;
    static const auto kOk = Body("ok\n");
    static const auto kStalled = Body("stalled\n");
    Respond(c, alive ? 200 : 503, kTextPlain, alive ? kOk : kStalled, keep, head_only);
  } else if (r.path == "/readyz") {
    // Readiness: every endpoint is bound and the core has started, and it
    // is not draining for a stop (a load balancer moves traffic away).
    auto snap = snapshots_.Latest();
    const bool draining = snap && snap->draining;
    const bool ready = snap && snap->endpoints_bound && !draining;
    static const auto kReady = Body("ready\n");
    static const auto kStarting = Body("starting\n");
    static const auto kDraining = Body("draining\n");
    Respond(c, ready ? 200 : 503, kTextPlain,
            ready      ? kReady
            : draining ? kDraining
                       : kStarting,
            keep, head_only);
  } else if (r.path == "/metrics" || r.path == "/status") {
    const Document doc = r.path == "/metrics" ? Document::kMetrics : Document::kStatus;
    const size_t d = static_cast<size_t>(doc);
    c.state = State::kRendering;
    c.keep_alive = keep;
    c.head_only = head_only;
    SetEvents(c, 0);
    waiting_for_[d].push_back(c.id);
    if (!rendering_[d]) {
      rendering_[d] = true;
      {
        std::lock_guard<std::mutex> lock(render_mutex_);
        render_wanted_[d] = true;
      }
      render_cv_.notify_one();
    }
  } else {
    Respond(c, 404, kTextPlain, Body("not found\n"), keep, head_only);
  }
}

void HttpServer::Loop::Respond(Connection& c, int status, const char* content_type,
                               std::shared_ptr<const std::string> body, bool keep_alive,
                               bool head_only, std::string_view extra_headers) {
  const size_t length = body ? body->size() : 0;
  c.close_after = !keep_alive || c.peer_closed;
  c.head = fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}Connection: {}\r\n\r\n",
      status, StatusText(status), content_type, length, extra_headers,
      c.close_after ? "close" : "keep-alive");
  c.body = head_only ? nullptr : std::move(body);
  c.sent = 0;
  c.state = State::kWriting;
  c.deadline = SteadyClock::now() + options_.health.write_timeout;
}

bool HttpServer::Loop::Flush(Connection& c) {
  while (true) {
    iovec iov[2];
    int parts = 0;
    const size_t head_size = c.head.size();
    if (c.sent < head_size) iov[parts++] = {c.head.data() + c.sent, head_size - c.sent};
    if (c.body) {
      const size_t offset = c.sent > head_size ? c.sent - head_size : 0;
      if (offset < c.body->size()) {
        iov[parts++] = {const_cast<char*>(c.body->data()) + offset, c.body->size() - offset};
      }
    }
    if (parts == 0) {
      c.head.clear();
      c.body.reset();
      return true;
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(parts);
    const ssize_t n = sendmsg(c.fd, &msg, MSG_NOSIGNAL);
    if (n > 0) {
      c.sent += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      SetEvents(c, EPOLLOUT);
      return false;
    } else {
      Close(c);
      return false;
    }
  }
}

void HttpServer::Loop::StartWaiting(Connection& c, SteadyClock::time_point now) {
  c.state = State::kReading;
  c.answered_one = true;
  c.request_started = false;
  c.wait_order = next_wait_++;
  c.deadline = now + options_.health.idle_timeout;
  SetEvents(c, c.peer_closed ? 0u : static_cast<uint32_t>(EPOLLIN));
}

void HttpServer::Loop::StartLingering(Connection& c) {
  if (c.peer_closed) {
    Close(c);
    return;
  }
  shutdown(c.fd, SHUT_WR);
  c.state = State::kLingering;
  c.deadline = SteadyClock::now() + kLinger;
  c.in.clear();
  c.in.shrink_to_fit();
  SetEvents(c, EPOLLIN);
  Linger(c);
}

void HttpServer::Loop::Linger(Connection& c) {
  char buffer[4096];
  while (true) {
    const ssize_t n = recv(c.fd, buffer, sizeof(buffer), 0);
    if (n > 0) {
      c.lingered += static_cast<size_t>(n);
      if (c.lingered > kLingerBytes) break;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    break;  // EOF or error
  }
  Close(c);
}

void HttpServer::Loop::Sweep(SteadyClock::time_point now) {
  for (auto& [id, ptr] : connections_) {
    Connection& c = *ptr;
    if (c.closed || c.state == State::kRendering || now < c.deadline) continue;
    switch (c.state) {
      case State::kReading:
        if (c.request_started || !c.answered_one) {
          // Slowloris, or a connection that never sent a request.
          refusal::Record(refusal::Reason::kHttpTimeout, c.address,
                          {{"port", c.port},
                           {"phase", "request"},
                           {"received_bytes", c.in.size()},
                           {"timeout_ms", options_.health.read_timeout.count()}});
          if (c.request_started) {
            Respond(c, 408, kTextPlain, Body("request timeout\n"), false, false);
            c.in.clear();
            Drive(c);
          } else {
            Close(c);
          }
        } else {
          Close(c);  // keep-alive idle: the ordinary end of a connection
        }
        break;
      case State::kWriting:
        refusal::Record(refusal::Reason::kHttpTimeout, c.address,
                        {{"port", c.port},
                         {"phase", "response"},
                         {"unsent_bytes", c.head.size() + (c.body ? c.body->size() : 0) - c.sent},
                         {"timeout_ms", options_.health.write_timeout.count()}});
        Close(c);
        break;
      case State::kLingering: Close(c); break;
      case State::kRendering: break;
    }
  }
}

void HttpServer::Loop::Deliver() {
  std::array<std::optional<Rendered>, kDocumentCount> done;
  {
    std::lock_guard<std::mutex> lock(render_mutex_);
    for (size_t d = 0; d < kDocumentCount; ++d) done[d] = std::exchange(rendered_[d], std::nullopt);
  }
  for (size_t d = 0; d < kDocumentCount; ++d) {
    if (!done[d]) continue;
    rendering_[d] = false;
    const char* type =
        static_cast<Document>(d) == Document::kMetrics ? kMetricsType : "application/json";
    std::vector<uint64_t> waiting = std::exchange(waiting_for_[d], {});
    for (uint64_t id : waiting) {
      auto it = connections_.find(id);
      if (it == connections_.end() || it->second->closed) continue;
      Connection& c = *it->second;
      if (c.state != State::kRendering) continue;
      Respond(c, done[d]->status, type, done[d]->body, c.keep_alive, c.head_only);
      Drive(c);
    }
  }
}

void HttpServer::Loop::RenderThread() {
  std::unique_lock<std::mutex> lock(render_mutex_);
  while (true) {
    render_cv_.wait(lock, [this] {
      return render_stop_ ||
             std::find(render_wanted_.begin(), render_wanted_.end(), true) != render_wanted_.end();
    });
    if (render_stop_) return;
    for (size_t d = 0; d < kDocumentCount; ++d) {
      if (!render_wanted_[d]) continue;
      render_wanted_[d] = false;
      lock.unlock();
      Rendered result = RenderNow(static_cast<Document>(d));
      lock.lock();
      rendered_[d] = std::move(result);
      const uint64_t one = 1;
      (void)!write(wake_fd_, &one, sizeof(one));
    }
  }
}

HttpServer::Loop::Rendered HttpServer::Loop::RenderNow(Document document) const {
  if (document == Document::kStatus) {
    // Computed by the core on request; a core that does not answer in time
    // gets its last published snapshot, marked stale, instead of a hang.
    bool fresh = false;
    auto snap = snapshots_.Fresh(kStatusWait, &fresh);
    return {200, Body(RenderStatusJson(snap.get(), buses_, options_, store_,
                                       {.fresh = fresh, .now = SteadyClock::now()}))};
  }
  auto snap = snapshots_.Latest();
  if (!snap) return {503, Body("")};
  std::string text = RenderMetrics(*snap, buses_, ReadProcessStats(), options_.metrics);
  if (store_ != nullptr) text += store::RenderStoreMetrics(store_->stats(), store_->health());
  return {200, Body(std::move(text))};
}

void HttpServer::Loop::SetEvents(Connection& c, uint32_t events) {
  if (c.closed || c.events == events) return;
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = c.id;
  epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev);
  c.events = events;
}

void HttpServer::Loop::Close(Connection& c) {
  if (c.closed) return;
  close(c.fd);  // also leaves the epoll set
  c.closed = true;
  c.fd = -1;
  c.head.clear();
  c.body.reset();
  c.in.clear();
  --open_;
  closed_.push_back(c.id);
}

HttpServer::HttpServer(const BrokerOptions& options, const broker::SnapshotBoard& snapshots,
                       std::vector<const bus::Bus*> buses, const store::RequestStore* store)
    : loop_(std::make_unique<Loop>(options, snapshots, std::move(buses), store)) {}

HttpServer::~HttpServer() { Stop(); }

Status HttpServer::Bind() { return loop_->Bind(); }

void HttpServer::Start() { loop_->Start(); }

void HttpServer::Stop() { loop_->Stop(); }

}  // namespace plantd::http

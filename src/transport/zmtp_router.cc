#include "transport/zmtp_router.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

#include "common/ring_buffer.h"
#include "log/log.h"
#include "transport/zmtp_framing.h"

namespace plantd::transport {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Reads grow a connection's buffer to at most this per call, so that one
// busy peer cannot keep the others waiting.
constexpr size_t kReadChunk = size_t{64} * 1024;
constexpr size_t kReadBudget = size_t{256} * 1024;
// Buffers above these sizes are given back once drained: memory follows
// bursts, not the number of connections. Below them a busy peer keeps its
// buffers: glibc serves blocks of 128 KiB and more with mmap, and giving
// those back on every turn costs a page fault per 4 KiB (16 KiB bodies ran at
// 0.74 of the libzmq relay with 64 KiB here).
constexpr size_t kKeepInputBytes = size_t{1024} * 1024;
constexpr size_t kKeepOutputBytes = size_t{1024} * 1024;
// A handshake command is a few dozen bytes; anything this big is hostile.
constexpr uint64_t kMaxCommandSize = size_t{64} * 1024;
constexpr milliseconds kAcceptPause{100};
constexpr size_t kMaxBufferedInput = size_t{1024} * 1024;

// Bytes received and not yet parsed, without zero-filling on growth.
class InputBuffer {
 public:
  const uint8_t* data() const { return storage_.get() + begin_; }
  size_t size() const { return end_ - begin_; }
  bool empty() const { return begin_ == end_; }

  void Consume(size_t n) {
    begin_ += n;
    if (begin_ != end_) return;
    begin_ = end_ = 0;
    if (capacity_ > kKeepInputBytes) {
      storage_.reset();
      capacity_ = 0;
    }
  }

  // Room for at least `n` more bytes at the end. Live bytes move to the
  // front only when at least as many have been consumed before them, so a
  // buffer that is read from and consumed in small steps costs a constant
  // per byte, not a move of everything it holds per step.
  uint8_t* Reserve(size_t n) {
    if (capacity_ - end_ >= n) return storage_.get() + end_;
    const size_t used = size();
    if (capacity_ - used >= n && begin_ >= used) {
      std::memmove(storage_.get(), data(), used);
    } else {
      const size_t capacity = std::max({capacity_ * 2, used + n, size_t{4096}});
      auto bigger = std::make_unique_for_overwrite<uint8_t[]>(capacity);
      if (used > 0) std::memcpy(bigger.get(), data(), used);
      storage_ = std::move(bigger);
      capacity_ = capacity;
    }
    begin_ = 0;
    end_ = used;
    return storage_.get() + end_;
  }
  size_t free_space() const { return capacity_ - end_; }
  void Commit(size_t n) { end_ += n; }

 private:
  std::unique_ptr<uint8_t[]> storage_;
  size_t capacity_ = 0;
  size_t begin_ = 0;
  size_t end_ = 0;
};

std::string SocketAddressText(const sockaddr_storage& address) {
  char host[INET6_ADDRSTRLEN] = "?";
  if (address.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&address);
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
    return std::string(host) + ":" + std::to_string(ntohs(a->sin_port));
  }
  if (address.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&address);
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
    return "[" + std::string(host) + "]:" + std::to_string(ntohs(a->sin6_port));
  }
  return "ipc";
}

Status ErrnoStatus(const std::string& what) {
  return Status::Error(what + ": " + std::strerror(errno));
}

}  // namespace

struct ZmtpRouter::Pollable {
  bool is_listener = false;
};

struct ZmtpRouter::Listener : Pollable {
  int fd = -1;
  std::string ipc_path;  // removed on close, as libzmq does
};

struct ZmtpRouter::Peer : Pollable {
  enum class Stage { kGreeting, kReady, kTraffic };

  int fd = -1;
  size_t index = 0;  // in peers_
  Stage stage = Stage::kGreeting;
  std::string id;
  std::string remote;
  InputBuffer in;
  // Where the scan for a whole message stopped, so a large message arriving
  // in pieces is not rescanned from its start on every read.
  size_t scanned = 0;
  uint64_t scanned_body_bytes = 0;
  bool message_ready = false;  // a whole message is at the head of `in`
  bool read_paused = false;    // back-pressure: not read until `in` halves
  // Skipping a message over max_message_size: bytes left of the current
  // frame, and whether more frames follow it.
  bool discarding = false;
  bool discard_more = false;
  uint64_t discard_left = 0;
  std::string out;
  size_t out_sent = 0;
  // Where each queued message ends in `out`: their count is the peer's
  // queue length, checked against send_hwm.
  RingBuffer<size_t> message_ends;
  bool queued_readable = false;
  bool queued_flush = false;
  bool want_write = false;
  bool eof = false;
  bool closed = false;
};

ZmtpRouter::ZmtpRouter(const RouterOptions& options, ZmtpOptions zmtp)
    : options_(options),
      zmtp_(std::move(zmtp)),
      next_id_(std::random_device{}()),
      events_(256) {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
}

ZmtpRouter::~ZmtpRouter() { Close(milliseconds(0)); }

Status ZmtpRouter::Bind(const std::string& address) {
  if (epoll_fd_ < 0) return ErrnoStatus("epoll_create1");
  auto listener = std::make_unique<Listener>();
  listener->is_listener = true;
  int fd = -1;
  if (address.rfind("ipc://", 0) == 0) {
    const std::string path = address.substr(6);
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof(sun.sun_path)) {
      return Status::InvalidArgument("ipc path is empty or longer than " +
                                     std::to_string(sizeof(sun.sun_path) - 1) + " bytes");
    }
    std::memcpy(sun.sun_path, path.data(), path.size());
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return ErrnoStatus("socket");
    ::unlink(path.c_str());  // a file left by an earlier run
    if (::bind(fd, reinterpret_cast<sockaddr*>(&sun), sizeof(sun)) != 0) {
      Status s = ErrnoStatus("bind");
      ::close(fd);
      return s;
    }
    listener->ipc_path = path;
  } else if (address.rfind("tcp://", 0) == 0) {
    const std::string rest = address.substr(6);
    const size_t colon = rest.rfind(':');
    if (colon == std::string::npos) return Status::InvalidArgument("no port in " + address);
    std::string host = rest.substr(0, colon);
    std::string port = rest.substr(colon + 1);
    if (port == "*") port = "0";
    if (host == "*") host = "0.0.0.0";  // IPv4 wildcard, as libzmq without ZMQ_IPV6
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
      return Status::InvalidArgument("cannot resolve '" + host + ":" + port +
                                     "': " + gai_strerror(rc));
    }
    fd = socket(found->ai_family, found->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      freeaddrinfo(found);
      return ErrnoStatus("socket");
    }
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    const int rc = ::bind(fd, found->ai_addr, found->ai_addrlen);
    freeaddrinfo(found);
    if (rc != 0) {
      Status s = ErrnoStatus("bind");
      ::close(fd);
      return s;
    }
  } else {
    return Status::InvalidArgument("the native transport supports tcp:// and ipc:// only");
  }
  if (::listen(fd, SOMAXCONN) != 0) {
    Status s = ErrnoStatus("listen");
    ::close(fd);
    return s;
  }
  listener->fd = fd;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = static_cast<Pollable*>(listener.get());
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    Status s = ErrnoStatus("epoll_ctl");
    ::close(fd);
    return s;
  }
  listeners_.push_back(std::move(listener));
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// Waiting and reading.

void ZmtpRouter::Wait(milliseconds timeout) {
  closed_.clear();  // nothing refers to them any more
  FlushAll();
  if (accept_paused_until_ != Clock::time_point{} && Clock::now() >= accept_paused_until_) {
    accept_paused_until_ = {};
    for (auto& l : listeners_) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.ptr = static_cast<Pollable*>(l.get());
      epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, l->fd, &ev);
    }
  }
  // Input already read and not yet handed out: look, but do not sleep.
  const int wait_ms = readable_.empty() ? static_cast<int>(timeout.count()) : 0;
  const int n = epoll_wait(epoll_fd_, events_.data(), static_cast<int>(events_.size()), wait_ms);
  for (int i = 0; i < n; ++i) {
    auto* p = static_cast<Pollable*>(events_[i].data.ptr);
    if (p->is_listener) {
      Accept(static_cast<Listener*>(p));
      continue;
    }
    auto* peer = static_cast<Peer*>(p);
    if (peer->closed) continue;
    if ((events_[i].events & EPOLLOUT) && !WriteTo(peer)) continue;
    if (events_[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) ReadFrom(peer);
  }
}

void ZmtpRouter::Accept(Listener* listener) {
  while (true) {
    sockaddr_storage address{};
    socklen_t length = sizeof(address);
    const int fd = accept4(listener->fd, reinterpret_cast<sockaddr*>(&address), &length,
                           SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors: stop accepting for a moment rather than spin.
        PLANTD_LOG_WARN("cannot accept a connection", {{"error", std::strerror(errno)}});
        accept_paused_until_ = Clock::now() + kAcceptPause;
        for (auto& l : listeners_) {
          epoll_event ev{};
          ev.data.ptr = static_cast<Pollable*>(l.get());
          epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, l->fd, &ev);
        }
      }
      return;
    }
    if (address.ss_family == AF_INET || address.ss_family == AF_INET6) {
      const int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    auto peer = std::make_unique<Peer>();
    peer->fd = fd;
    peer->remote = SocketAddressText(address);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = static_cast<Pollable*>(peer.get());
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      ::close(fd);
      continue;
    }
    // Our whole greeting and READY at once: libzmq reads them as it needs them.
    zmtp::AppendGreeting(peer->out);
    zmtp::AppendReady(peer->out, zmtp_.socket_type);
    peer->index = peers_.size();
    peer->queued_flush = true;
    to_flush_.push_back(peer.get());
    PLANTD_LOG_TRACE("connection accepted", {{"remote", peer->remote}});
    peers_.push_back(std::move(peer));
  }
}

void ZmtpRouter::ReadFrom(Peer* peer) {
  // Back-pressure, as libzmq's receive high-water mark: a peer with a whole
  // message and this much waiting is not read until the caller has taken
  // half of it, and TCP slows the sender down meanwhile.
  if (peer->message_ready) {
    if (peer->in.size() >= kMaxBufferedInput) peer->read_paused = true;
    if (peer->read_paused && peer->in.size() >= kMaxBufferedInput / 2) return;
  }
  peer->read_paused = false;
  size_t budget = kReadBudget;
  while (budget > 0) {
    uint8_t* at = peer->in.Reserve(std::min(kReadChunk, budget));
    const size_t room = std::min(peer->in.free_space(), budget);
    const ssize_t n = ::recv(peer->fd, at, room, 0);
    if (n > 0) {
      peer->in.Commit(static_cast<size_t>(n));
      budget -= static_cast<size_t>(n);
      if (static_cast<size_t>(n) < room) break;  // drained
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    // End of stream or an error: hand out what arrived whole, then close.
    peer->eof = true;
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, peer->fd, nullptr);
    break;
  }
  if (peer == receiving_) return;  // Receive() requeues it after this message
  // The handshake and heartbeats are answered here, whether or not the
  // caller is taking messages.
  const bool ready = NextMessageReady(peer);
  if (peer->closed) return;
  if (!ready && peer->eof) {
    ClosePeer(peer, "the peer closed the connection");
    return;
  }
  if (ready && !peer->queued_readable) {
    peer->queued_readable = true;
    readable_.push_back(peer);
  }
}

bool ZmtpRouter::Receive(zmq_msg_t* msg, bool* more) {
  while (true) {
    if (Peer* p = receiving_) {
      if (!receiving_started_) {
        receiving_started_ = true;
        zmq_msg_close(msg);
        zmq_msg_init_size(msg, p->id.size());
        std::memcpy(zmq_msg_data(msg), p->id.data(), p->id.size());
        *more = true;
        return true;
      }
      // NextMessageReady() checked that the whole message is buffered.
      zmtp::FrameHeader h;
      zmtp::ParseFrameHeader(p->in.data(), p->in.size(), &h);
      const auto size = static_cast<size_t>(h.size);
      zmq_msg_close(msg);
      zmq_msg_init_size(msg, size);
      if (size > 0) std::memcpy(zmq_msg_data(msg), p->in.data() + h.header_size, size);
      p->in.Consume(h.header_size + size);
      *more = h.more;
      if (!h.more) {
        receiving_ = nullptr;
        p->message_ready = false;
        p->scanned = 0;
        p->scanned_body_bytes = 0;
        // One message per peer in turn: fair between connections.
        if ((!p->in.empty() || p->eof) && !p->queued_readable) {
          p->queued_readable = true;
          readable_.push_back(p);
        }
      }
      return true;
    }
    if (readable_.empty()) return false;
    Peer* p = readable_.front();
    readable_.pop_front();
    p->queued_readable = false;
    if (p->closed) continue;
    if (NextMessageReady(p)) {
      receiving_ = p;
      receiving_started_ = false;
      continue;
    }
    if (!p->closed && p->eof) ClosePeer(p, "the peer closed the connection");
  }
}

bool ZmtpRouter::NextMessageReady(Peer* peer) {
  if (peer->message_ready) return true;
  while (!peer->closed) {
    if (peer->stage != Peer::Stage::kTraffic) {
      if (!Handshake(peer)) return false;
      continue;
    }
    if (peer->discarding && !SkipOversized(peer)) return false;
    InputBuffer& in = peer->in;
    zmtp::FrameHeader h;
    // Commands come between messages, never inside one.
    if (peer->scanned == 0) {
      const auto parsed = zmtp::ParseFrameHeader(in.data(), in.size(), &h);
      if (parsed == zmtp::HeaderParse::kIncomplete) return false;
      if (parsed == zmtp::HeaderParse::kMalformed) {
        ClosePeer(peer, "malformed frame header");
        return false;
      }
      if (h.command) {
        if (h.size > kMaxCommandSize) {
          ClosePeer(peer, "command frame too large");
          return false;
        }
        if (in.size() < h.header_size + h.size) return false;
        const size_t total = h.header_size + static_cast<size_t>(h.size);
        if (!HandleCommand(peer, in.data() + h.header_size, static_cast<size_t>(h.size))) {
          return false;
        }
        in.Consume(total);
        continue;
      }
    }
    // A data message: whole once a frame without MORE is buffered.
    while (true) {
      const uint8_t* at = in.data() + peer->scanned;
      const size_t left = in.size() - peer->scanned;
      const auto parsed = zmtp::ParseFrameHeader(at, left, &h);
      if (parsed == zmtp::HeaderParse::kIncomplete) return false;
      if (parsed == zmtp::HeaderParse::kMalformed || h.command) {
        ClosePeer(peer, "malformed frame inside a message");
        return false;
      }
      if (peer->scanned_body_bytes + h.size > options_.max_message_size) {
        // Skip it as it streams in; the connection and whatever follows on
        // it are unaffected.
        peer->discarding = true;
        peer->discard_more = h.more;
        peer->discard_left = h.size;
        in.Consume(peer->scanned + h.header_size);
        peer->scanned = 0;
        peer->scanned_body_bytes = 0;
        if (!SkipOversized(peer)) return false;
        break;  // the next message starts at the head
      }
      if (left - h.header_size < h.size) return false;
      peer->scanned += h.header_size + static_cast<size_t>(h.size);
      peer->scanned_body_bytes += h.size;
      if (!h.more) {
        peer->message_ready = true;
        return true;
      }
    }
  }
  return false;
}

// Consumes what has arrived of an oversized message; true once it has all
// gone and been reported.
bool ZmtpRouter::SkipOversized(Peer* peer) {
  InputBuffer& in = peer->in;
  while (true) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(peer->discard_left, in.size()));
    in.Consume(n);
    peer->discard_left -= n;
    if (peer->discard_left > 0) return false;
    if (!peer->discard_more) break;
    zmtp::FrameHeader h;
    const auto parsed = zmtp::ParseFrameHeader(in.data(), in.size(), &h);
    if (parsed == zmtp::HeaderParse::kIncomplete) return false;
    if (parsed == zmtp::HeaderParse::kMalformed || h.command) {
      ClosePeer(peer, "malformed frame inside a message");
      return false;
    }
    in.Consume(h.header_size);
    peer->discard_left = h.size;
    peer->discard_more = h.more;
  }
  peer->discarding = false;
  PLANTD_LOG_DEBUG("message larger than max_message_size skipped",
                   {{"remote", peer->remote}, {"max_message_size", options_.max_message_size}});
  if (options_.on_oversized) options_.on_oversized(peer->id);
  return true;
}

bool ZmtpRouter::Handshake(Peer* peer) {
  InputBuffer& in = peer->in;
  if (peer->stage == Peer::Stage::kGreeting) {
    if (!zmtp::SignatureLooksValid(in.data(), in.size())) {
      PLANTD_LOG_INFO("connection refused: not a ZMTP peer", {{"remote", peer->remote}});
      ClosePeer(peer, "bad signature");
      return false;
    }
    if (in.size() < zmtp::kGreetingSize) return false;
    const zmtp::GreetingError error = zmtp::CheckGreeting(in.data());
    if (error != zmtp::GreetingError::kNone) {
      PLANTD_LOG_INFO("connection refused", {{"remote", peer->remote},
                                             {"reason", zmtp::GreetingErrorText(error)}});
      ClosePeer(peer, "bad greeting");
      return false;
    }
    in.Consume(zmtp::kGreetingSize);
    peer->stage = Peer::Stage::kReady;
    return true;
  }
  zmtp::FrameHeader h;
  const auto parsed = zmtp::ParseFrameHeader(in.data(), in.size(), &h);
  if (parsed == zmtp::HeaderParse::kIncomplete) return false;
  if (parsed == zmtp::HeaderParse::kMalformed || !h.command || h.size > kMaxCommandSize) {
    PLANTD_LOG_INFO("connection refused: no READY after the greeting", {{"remote", peer->remote}});
    ClosePeer(peer, "no READY");
    return false;
  }
  if (in.size() < h.header_size + h.size) return false;
  const std::string_view body(reinterpret_cast<const char*>(in.data() + h.header_size),
                              static_cast<size_t>(h.size));
  zmtp::PeerMetadata metadata;
  if (zmtp::CommandName(body) == "ERROR") {
    PLANTD_LOG_INFO("connection refused by the peer", {{"remote", peer->remote}});
    ClosePeer(peer, "peer sent ERROR");
    return false;
  }
  const bool compatible =
      zmtp::ParseReady(body, &metadata) &&
      std::find(zmtp_.peer_types.begin(), zmtp_.peer_types.end(), metadata.socket_type) !=
          zmtp_.peer_types.end();
  if (!compatible) {
    PLANTD_LOG_INFO("connection refused: incompatible socket type",
                    {{"remote", peer->remote},
                     {"socket_type", metadata.socket_type},
                     {"ours", zmtp_.socket_type}});
    zmtp::AppendError(peer->out, "invalid socket type");
    WriteTo(peer);
    ClosePeer(peer, "bad READY");
    return false;
  }
  AssignRoutingId(peer, metadata.identity);
  in.Consume(h.header_size + static_cast<size_t>(h.size));
  peer->stage = Peer::Stage::kTraffic;
  PLANTD_LOG_TRACE("peer ready", {{"remote", peer->remote},
                                  {"socket_type", metadata.socket_type},
                                  {"id", log::Hex(peer->id)}});
  if (zmtp_.on_peer) zmtp_.on_peer(peer->id, true, peer->remote);
  return !peer->closed;
}

bool ZmtpRouter::HandleCommand(Peer* peer, const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const std::string_view name = zmtp::CommandName(body);
  std::string_view context;
  if (zmtp::ParsePing(body, &context)) {
    zmtp::AppendPong(peer->out, context);
    if (!peer->queued_flush) {
      peer->queued_flush = true;
      to_flush_.push_back(peer);
    }
    return true;
  }
  if (name == "PONG") return true;
  if ((name == "SUBSCRIBE" || name == "CANCEL") && zmtp_.on_subscription) {
    zmtp_.on_subscription(peer->id, name == "SUBSCRIBE", body.substr(1 + name.size()));
    return !peer->closed;
  }
  if (name == "ERROR" || name == "READY") {
    ClosePeer(peer, name == "ERROR" ? "peer sent ERROR" : "second READY");
    return false;
  }
  return true;  // RFC 37: unknown commands are ignored
}

void ZmtpRouter::AssignRoutingId(Peer* peer, std::string_view requested) {
  auto generate = [this] {
    std::string id(5, '\0');  // a zero first byte, as libzmq's generated ids
    while (true) {
      const uint32_t n = next_id_++;
      id[1] = static_cast<char>(n >> 24);
      id[2] = static_cast<char>(n >> 16);
      id[3] = static_cast<char>(n >> 8);
      id[4] = static_cast<char>(n);
      if (!by_id_.contains(id)) return id;
    }
  };
  if (requested.empty()) {
    peer->id = generate();
  } else {
    if (auto it = by_id_.find(requested); it != by_id_.end()) {
      // Handover: the newest connection with an id gets it; the old one is
      // left with a generated id nobody sends to.
      Peer* old = it->second;
      by_id_.erase(it);
      old->id = generate();
      by_id_.emplace(old->id, old);
    }
    peer->id = std::string(requested);
  }
  by_id_.emplace(peer->id, peer);
}

// ---------------------------------------------------------------------------
// Sending.

bool ZmtpRouter::Send(zmq_msg_t* msg, bool more) {
  const size_t size = zmq_msg_size(msg);
  const auto* data = static_cast<const char*>(zmq_msg_data(msg));
  if (!sending_started_) {
    auto it = by_id_.find(std::string_view(data, size));
    if (it == by_id_.end()) {
      errno = EHOSTUNREACH;
      return false;
    }
    Peer* peer = it->second;
    if (options_.send_hwm > 0 &&
        peer->message_ends.size() >= static_cast<size_t>(options_.send_hwm)) {
      errno = EAGAIN;
      return false;
    }
    sending_ = peer;
    sending_started_ = more;
  } else if (Peer* peer = sending_) {
    uint8_t header[zmtp::kMaxFrameHeaderSize];
    const size_t n = zmtp::EncodeFrameHeader(header, size, more);
    peer->out.append(reinterpret_cast<const char*>(header), n);
    peer->out.append(data, size);
    if (!more) {
      peer->message_ends.push_back(peer->out.size());
      if (!peer->queued_flush) {
        peer->queued_flush = true;
        to_flush_.push_back(peer);
      }
    }
  }
  if (!more) {
    sending_ = nullptr;
    sending_started_ = false;
  }
  zmq_msg_close(msg);
  zmq_msg_init(msg);
  return true;
}

bool ZmtpRouter::CanSend(std::string_view routing_id) const {
  auto it = by_id_.find(routing_id);
  if (it == by_id_.end()) return false;
  return options_.send_hwm <= 0 ||
         it->second->message_ends.size() < static_cast<size_t>(options_.send_hwm);
}

void ZmtpRouter::FlushAll() {
  std::vector<Peer*> flushing;
  flushing.swap(to_flush_);
  for (Peer* p : flushing) {
    if (p->closed) continue;
    p->queued_flush = false;
    WriteTo(p);
  }
  // Keep the vector's storage for the next round.
  flushing.clear();
  if (to_flush_.empty()) to_flush_.swap(flushing);
}

bool ZmtpRouter::WriteTo(Peer* peer) {
  while (peer->out_sent < peer->out.size()) {
    const ssize_t n = ::send(peer->fd, peer->out.data() + peer->out_sent,
                             peer->out.size() - peer->out_sent, MSG_NOSIGNAL);
    if (n > 0) {
      peer->out_sent += static_cast<size_t>(n);
      while (!peer->message_ends.empty() && peer->message_ends.front() <= peer->out_sent) {
        peer->message_ends.pop_front();
      }
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      SetWantWrite(peer, true);
      return true;
    }
    ClosePeer(peer, "send failed");
    return false;
  }
  peer->out.clear();
  peer->out_sent = 0;
  peer->message_ends.clear();
  if (peer->out.capacity() > kKeepOutputBytes) std::string().swap(peer->out);
  SetWantWrite(peer, false);
  return true;
}

void ZmtpRouter::SetWantWrite(Peer* peer, bool want) {
  if (peer->want_write == want || peer->eof) return;
  peer->want_write = want;
  epoll_event ev{};
  ev.events = want ? (EPOLLIN | EPOLLOUT) : EPOLLIN;
  ev.data.ptr = static_cast<Pollable*>(peer);
  epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, peer->fd, &ev);
}

void ZmtpRouter::ClosePeer(Peer* peer, const char* why) {
  if (peer->closed) return;
  // Closed before the handshake finished, and not by its own end: refused.
  if (peer->stage != Peer::Stage::kTraffic && !peer->eof) ++refused_;
  PLANTD_LOG_TRACE("connection closed", {{"remote", peer->remote}, {"reason", why}});
  peer->closed = true;
  if (peer->stage == Peer::Stage::kTraffic && zmtp_.on_peer) {
    zmtp_.on_peer(peer->id, false, peer->remote);
  }
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, peer->fd, nullptr);
  ::close(peer->fd);
  if (auto it = by_id_.find(peer->id); it != by_id_.end() && it->second == peer) by_id_.erase(it);
  if (receiving_ == peer) receiving_ = nullptr;
  if (sending_ == peer) sending_ = nullptr;  // the rest of that message is dropped
  std::erase(readable_, peer);
  std::erase(to_flush_, peer);
  // Swap-remove from peers_; the object lives on in closed_ until the next
  // Wait(), because this round's epoll events may still name it.
  const size_t i = peer->index;
  std::swap(peers_[i], peers_.back());
  peers_[i]->index = i;
  closed_.push_back(std::move(peers_.back()));
  peers_.pop_back();
}

void ZmtpRouter::Close(milliseconds linger) {
  if (epoll_fd_ < 0) return;
  const auto deadline = Clock::now() + linger;
  FlushAll();
  while (Clock::now() < deadline) {
    std::vector<pollfd> pending;
    std::vector<Peer*> owners;
    for (auto& p : peers_) {
      if (p->out_sent < p->out.size()) {
        pending.push_back({p->fd, POLLOUT, 0});
        owners.push_back(p.get());
      }
    }
    if (pending.empty()) break;
    const auto left =
        std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count() + 1;
    if (::poll(pending.data(), pending.size(), static_cast<int>(left)) <= 0) break;
    for (size_t i = 0; i < pending.size(); ++i) {
      if (pending[i].revents != 0 && !owners[i]->closed) WriteTo(owners[i]);
    }
  }
  while (!peers_.empty()) ClosePeer(peers_.back().get(), "closing");
  closed_.clear();
  for (auto& l : listeners_) {
    ::close(l->fd);
    if (!l->ipc_path.empty()) ::unlink(l->ipc_path.c_str());
  }
  listeners_.clear();
  ::close(epoll_fd_);
  epoll_fd_ = -1;
}

}  // namespace plantd::transport

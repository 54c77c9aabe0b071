#include "transport/zmtp_router.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

#include "common/refusal.h"
#include "log/log.h"
#include "transport/close_reason.h"
#include "transport/server_security.h"
#include "transport/zmtp_null_mechanism.h"

namespace plantd::transport {
namespace {

using Clock = std::chrono::steady_clock;
using refusal::Reason;
using std::chrono::milliseconds;

// Reads take at most this from one connection per turn, so that one busy
// peer cannot keep the others waiting.
constexpr size_t kReadBudget = size_t{256} * 1024;
constexpr milliseconds kAcceptPause{100};
// How often connections are checked for handshake and write timeouts.
constexpr milliseconds kHandshakeSweep{100};
constexpr milliseconds kWriteSweep{500};
// While input is paused for the budget, Wait() sleeps no longer than this,
// so it notices soon when other sockets' buffers have drained.
constexpr milliseconds kPausedWait{10};
constexpr auto kAcceptWarnWindow = std::chrono::seconds(10);

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

// The key of the per-address connection limit: the IPv4 address, or the
// IPv6 /64 (one host usually holds a whole /64, so counting single IPv6
// addresses would limit nothing), or empty for ipc:// (local peers only).
std::string AddressKey(const sockaddr_storage& address) {
  char host[INET6_ADDRSTRLEN] = "?";
  if (address.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&address);
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
    return host;
  }
  if (address.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&address);
    if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
      inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], host, sizeof(host));
      return host;
    }
    in6_addr prefix = a->sin6_addr;
    std::memset(&prefix.s6_addr[8], 0, 8);
    inet_ntop(AF_INET6, &prefix, host, sizeof(host));
    return std::string(host) + "/64";
  }
  return {};
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
  // Its peers connect with NULL although the socket's security is CURVE
  // (ServerSecurity::NullAcceptedOn).
  bool null_under_curve = false;
};

// A connection and what the router keeps about it.
struct ZmtpRouter::Peer : Pollable, ZmtpConnection {
  using ZmtpConnection::ZmtpConnection;

  size_t index = 0;       // in peers_
  bool admitted = false;  // counted in the budget's connections
  // In the router's list of connections still in their handshake.
  Peer* handshake_prev = nullptr;
  Peer* handshake_next = nullptr;
  bool in_handshake_list = false;
  bool queued_readable = false;
  bool queued_flush = false;
  bool want_write = false;
  bool reading = true;  // EPOLLIN is registered
  // Its key's name (ServerSecurity::KeyName) once the handshake is done;
  // kAnonymousPeer on a NULL endpoint of a CURVE socket; empty with NULL
  // everywhere. Named again when the keys are reread.
  std::string name;
  bool anonymous = false;  // connected with NULL to a CURVE socket
};

ZmtpRouter::ZmtpRouter(const RouterOptions& options, ZmtpOptions zmtp)
    : options_(options),
      zmtp_(std::move(zmtp)),
      budget_(options.budget ? options.budget : std::make_shared<BufferBudget>()),
      events_(256) {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  context_.options = &options_;
  context_.zmtp = &zmtp_;
  context_.now = Clock::now();
  context_.budget = budget_;
  if (options_.security) security_generation_ = options_.security->generation();
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
  listener->null_under_curve =
      options_.security && options_.security->curve() && options_.security->NullAcceptedOn(address);
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
  context_.now = Clock::now();
  FlushAll();
  if (context_.now >= next_sweep_) Sweep();
  UpdateBudget();
  if (accept_paused_until_ != Clock::time_point{} && context_.now >= accept_paused_until_) {
    accept_paused_until_ = {};
    for (auto& l : listeners_) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.ptr = static_cast<Pollable*>(l.get());
      epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, l->fd, &ev);
    }
  }
  // Input already read and not yet handed out: look, but do not sleep.
  // Timeouts are checked at least every kHandshakeSweep while connections
  // wait for their handshake or output is stuck.
  milliseconds wait = readable_.empty() ? timeout : milliseconds(0);
  if (input_paused_) wait = std::min(wait, kPausedWait);
  if (handshake_head_ != nullptr || !to_flush_.empty()) wait = std::min(wait, kHandshakeSweep);
  const int n = epoll_wait(epoll_fd_, events_.data(), static_cast<int>(events_.size()),
                           static_cast<int>(std::max<int64_t>(wait.count(), 0)));
  if (n > 0) context_.now = Clock::now();
  for (int i = 0; i < n; ++i) {
    auto* p = static_cast<Pollable*>(events_[i].data.ptr);
    if (p == nullptr) continue;  // the wake fd: the caller reads it
    if (p->is_listener) {
      Accept(static_cast<Listener*>(p));
      continue;
    }
    auto* peer = static_cast<Peer*>(p);
    if (peer->closed()) continue;
    if ((events_[i].events & EPOLLOUT) && !WriteTo(peer)) continue;
    if (events_[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
      // A hang-up is read even while input is paused: epoll reports it
      // whatever we ask for, and closing the connection frees its buffers.
      ReadFrom(peer, (events_[i].events & (EPOLLHUP | EPOLLERR)) != 0);
    }
  }
}

// Tells the shared budget what this socket's buffers hold now (one atomic
// add per turn, not per message), and pauses or resumes reading.
void ZmtpRouter::UpdateBudget() {
  if (context_.buffered != reported_) {
    budget_->Adjust(context_.buffered - reported_);
    reported_ = context_.buffered;
  }
  bool began = false;
  const bool pause = budget_->InputPaused(&began);
  if (began) {
    refusal::Record(Reason::kBufferBudget, "",
                    {{"buffered_bytes", budget_->bytes()},
                     {"max_buffered_bytes", budget_->limits().max_buffered_bytes},
                     {"action", "reading paused until buffers drain"}});
  }
  LogBudgetFallbacks();
  if (pause == input_paused_) return;
  input_paused_ = pause;
  paused_since_ = context_.now;
  PLANTD_LOG_DEBUG(pause ? "input paused: buffer budget reached" : "input resumed",
                   {{"buffered_bytes", budget_->bytes()}});
  for (auto& p : peers_) UpdateInterest(p.get());
}

// The budget's two fallbacks: frames copied because the receive buffers
// that frames hold reached their limit, and large frames received in pieces
// because the room for announced frames was taken. Nothing is refused, but
// an operator should know why large bodies cost more now. One line per
// socket every 10 s at most, with the counts since the last.
void ZmtpRouter::LogBudgetFallbacks() {
  const uint64_t copied = budget_->frames_copied_past_limit();
  const uint64_t declined = budget_->announce_declined();
  if ((copied == copied_logged_ && declined == declined_logged_) ||
      context_.now - fallbacks_logged_at_ < std::chrono::seconds(10)) {
    return;
  }
  PLANTD_LOG_WARN("large frames copied: a buffer budget for large frames reached its limit",
                  {{"frames_copied", copied - copied_logged_},
                   {"shared_input_bytes", budget_->shared_bytes()},
                   {"max_shared_input_bytes", budget_->limits().max_shared_input_bytes},
                   {"announced_frames_declined", declined - declined_logged_},
                   {"max_announced_input_bytes", budget_->limits().max_announced_input_bytes}});
  copied_logged_ = copied;
  declined_logged_ = declined;
  fallbacks_logged_at_ = context_.now;
}

void ZmtpRouter::Sweep() {
  next_sweep_ = context_.now + kHandshakeSweep;
  // Handshake timeouts: the list is in accept order, so the expired ones
  // are at its head.
  while (handshake_head_ != nullptr &&
         context_.now - handshake_head_->accepted_at() >= options_.handshake_timeout) {
    Peer* p = handshake_head_;
    refusal::Record(Reason::kHandshakeTimeout, p->refusal_key(),
                    {{"remote", p->remote()},
                     {"handshake_timeout_ms", options_.handshake_timeout.count()},
                     {"stage", p->stage() == Peer::Stage::kGreeting ? "greeting" : "handshake"}});
    ClosePeer(p, CloseReason::kHandshakeTimeout, "handshake timeout");
  }
  if (options_.security && options_.security->generation() != security_generation_) {
    CloseRevokedKeys();
  }
  if (context_.now < next_write_sweep_) return;
  next_write_sweep_ = context_.now + kWriteSweep;
  if (input_paused_) ReclaimUnfinishedInput();
  // Write timeouts. Walk backwards: ClosePeer swap-removes from peers_.
  if (options_.write_timeout.count() <= 0) return;
  for (size_t i = peers_.size(); i-- > 0;) {
    Peer* p = peers_[i].get();
    if (p->pending_out() > 0 && context_.now - p->out_progress() >= options_.write_timeout) {
      CloseSlowConsumer(p, CloseReason::kWriteTimeout,
                        "output made no progress within write_timeout");
    }
  }
}

// Pausing input frees buffers as the core takes whole messages and peers
// read their output. Unfinished messages are the exception: they complete
// only by reading more, so peers that start large messages and stall could
// hold the budget, and with it every socket's input, for ever. Once input
// has been paused for write_timeout, the connection holding the most input
// that is not yet a whole message is closed, one per sweep, until input
// resumes.
void ZmtpRouter::ReclaimUnfinishedInput() {
  if (context_.now - paused_since_ < options_.write_timeout) return;
  Peer* largest = nullptr;
  for (auto& p : peers_) {
    if (p->unfinished_input() == 0) continue;
    if (largest == nullptr || p->unfinished_input() > largest->unfinished_input()) {
      largest = p.get();
    }
  }
  if (largest == nullptr) return;
  refusal::Record(Reason::kBufferBudget, largest->refusal_key(),
                  {{"remote", largest->remote()},
                   {"id", log::Hex(largest->id())},
                   {"unfinished_bytes", largest->unfinished_input()},
                   {"action", "connection holding the largest unfinished message closed"}});
  ClosePeer(largest, CloseReason::kBufferBudget, "unfinished message held the buffer budget");
  paused_since_ = context_.now;
}

// The authorized keys were read again (SIGHUP): a connection whose key is
// no longer among them is closed, the others stay.
void ZmtpRouter::CloseRevokedKeys() {
  security_generation_ = options_.security->generation();
  for (size_t i = peers_.size(); i-- > 0;) {
    Peer* p = peers_[i].get();
    if (!p->ready() || p->anonymous) continue;
    if (options_.security->Authorized(p->user_id())) {
      // Its certificate file may have been renamed.
      if (!p->user_id().empty()) p->name = options_.security->KeyName(p->user_id());
      continue;
    }
    PLANTD_LOG_INFO("connection closed: its key is no longer authorized",
                    {{"remote", p->remote()},
                     {"key", p->name},  // its name while it was authorized
                     {"id", log::Hex(p->id())}});
    ClosePeer(p, CloseReason::kKeyRevoked, "key no longer authorized");
  }
}

std::string_view ZmtpRouter::PeerName(std::string_view routing_id) const {
  auto it = by_id_.find(routing_id);
  return it == by_id_.end() ? std::string_view() : std::string_view(it->second->name);
}

std::string ZmtpRouter::RemoteAddress(std::string_view routing_id) const {
  auto it = by_id_.find(routing_id);
  return it == by_id_.end() ? std::string() : it->second->remote();
}

void ZmtpRouter::SetWakeFd(int fd) {
  if (epoll_fd_ < 0) return;
  if (wake_fd_ >= 0) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, wake_fd_, nullptr);
  wake_fd_ = -1;
  if (fd < 0) return;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) == 0) wake_fd_ = fd;
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
        const int error = errno;
        // Out of descriptors: a connection still in its handshake gives its
        // descriptor to the new one (idle half-open connections must not
        // lock real peers out); with none, stop accepting for a moment
        // rather than spin.
        if (EvictOldestHandshake({}, "out of file descriptors")) continue;
        if (context_.now - accept_warned_ >= kAcceptWarnWindow) {
          accept_warned_ = context_.now;
          PLANTD_LOG_WARN("cannot accept a connection, pausing accept for 100 ms",
                          {{"error", std::strerror(error)}, {"connections", peers_.size()}});
        }
        accept_paused_until_ = Clock::now() + kAcceptPause;
        for (auto& l : listeners_) {
          epoll_event ev{};
          ev.data.ptr = static_cast<Pollable*>(l.get());
          epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, l->fd, &ev);
        }
      }
      return;
    }
    const std::string remote = SocketAddressText(address);
    std::string key = AddressKey(address);
    if (!Admit(key, remote)) {
      // Refused: accept and close at once, so the peer learns now and the
      // listen backlog keeps moving for everyone else.
      ::close(fd);
      CountClose(CloseReason::kConnectionLimit);
      PLANTD_LOG_DEBUG("connection closed",
                       {{"remote", remote},
                        {"reason", CloseReasonName(CloseReason::kConnectionLimit)},
                        {"detail", "refused on accept"}});
      continue;
    }
    const bool curve =
        options_.security && options_.security->curve() && !listener->null_under_curve;
    if (curve && !budget_->AdmitCurveHandshake(key, context_.now)) {
      // Before any byte of the handshake: the cost of a refusal is the
      // accept and the close.
      budget_->ReleaseConnection(key);
      ::close(fd);
      CountClose(CloseReason::kHandshakeRate);
      refusal::Record(
          Reason::kHandshakeRate, key,
          {{"remote", remote},
           {"curve_handshakes_per_second", budget_->limits().curve_handshakes_per_second},
           {"curve_handshake_burst", budget_->limits().curve_handshake_burst},
           {"action", "new connection closed"}});
      continue;
    }
    if (address.ss_family == AF_INET || address.ss_family == AF_INET6) {
      const int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    std::unique_ptr<ZmtpMechanism> mechanism =
        options_.security && !listener->null_under_curve
            ? options_.security->MakeMechanism(zmtp_.socket_type)
            : std::make_unique<ZmtpNullMechanism>(zmtp_.socket_type);
    auto peer =
        std::make_unique<Peer>(fd, remote, std::move(key), &context_,
                               static_cast<ZmtpConnection::Host*>(this), std::move(mechanism));
    peer->anonymous = listener->null_under_curve;
    peer->admitted = true;
    peer->reading = !input_paused_;
    epoll_event ev{};
    ev.events = peer->reading ? uint32_t{EPOLLIN} : 0u;
    ev.data.ptr = static_cast<Pollable*>(peer.get());
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      budget_->ReleaseConnection(peer->address());
      peer->admitted = false;
      continue;  // the connection's destructor closes the descriptor
    }
    peer->Start();
    peer->index = peers_.size();
    peer->queued_flush = true;
    to_flush_.push_back(peer.get());
    LinkHandshake(peer.get());
    PLANTD_LOG_DEBUG("connection opened", {{"remote", peer->remote()}});
    peers_.push_back(std::move(peer));
  }
}

bool ZmtpRouter::Admit(const std::string& address, const std::string& remote) {
  BufferBudget::Admission admission = budget_->AdmitConnection(address);
  if (admission == BufferBudget::Admission::kAdmitted) return true;
  const bool per_address = admission == BufferBudget::Admission::kPerAddress;
  // The oldest connection still in its handshake (from the same address,
  // for the per-address limit) makes room: a real peer finishes its
  // handshake in a round trip, so those are idle or hostile.
  if (EvictOldestHandshake(per_address ? std::string_view(address) : std::string_view(),
                           per_address ? "connections per address" : "connections")) {
    admission = budget_->AdmitConnection(address);
    if (admission == BufferBudget::Admission::kAdmitted) return true;
  }
  const auto& limits = budget_->limits();
  if (admission == BufferBudget::Admission::kPerAddress) {
    refusal::Record(Reason::kConnectionsPerAddress, address,
                    {{"remote", remote},
                     {"max_connections_per_address", limits.max_connections_per_address},
                     {"action", "new connection closed"}});
  } else {
    refusal::Record(Reason::kConnectionsTotal, address.empty() ? remote : address,
                    {{"remote", remote},
                     {"max_connections", limits.max_connections},
                     {"action", "new connection closed"}});
  }
  return false;
}

bool ZmtpRouter::EvictOldestHandshake(std::string_view address, const char* why) {
  for (Peer* p = handshake_head_; p != nullptr; p = p->handshake_next) {
    if (!address.empty() && p->address() != address) continue;
    refusal::Record(address.empty() ? Reason::kConnectionsTotal : Reason::kConnectionsPerAddress,
                    p->refusal_key(),
                    {{"remote", p->remote()},
                     {"limit", why},
                     {"action", "oldest connection in its handshake closed to make room"}});
    ClosePeer(p, CloseReason::kConnectionLimit, "evicted: oldest connection in its handshake");
    return true;
  }
  return false;
}

void ZmtpRouter::LinkHandshake(Peer* peer) {
  peer->in_handshake_list = true;
  peer->handshake_prev = handshake_tail_;
  peer->handshake_next = nullptr;
  if (handshake_tail_ != nullptr) {
    handshake_tail_->handshake_next = peer;
  } else {
    handshake_head_ = peer;
  }
  handshake_tail_ = peer;
}

void ZmtpRouter::UnlinkHandshake(Peer* peer) {
  if (!peer->in_handshake_list) return;
  peer->in_handshake_list = false;
  if (peer->handshake_prev != nullptr) {
    peer->handshake_prev->handshake_next = peer->handshake_next;
  } else {
    handshake_head_ = peer->handshake_next;
  }
  if (peer->handshake_next != nullptr) {
    peer->handshake_next->handshake_prev = peer->handshake_prev;
  } else {
    handshake_tail_ = peer->handshake_prev;
  }
  peer->handshake_prev = peer->handshake_next = nullptr;
}

void ZmtpRouter::ReadFrom(Peer* peer, bool hangup) {
  // A peer with a whole message and much input behind it is not read until
  // the caller has taken half of it, and TCP slows the sender down meanwhile.
  // Whether the next message is whole is known only once Advance() has
  // looked: after the caller took the last one, nothing has yet, and a
  // caller taking a few messages per turn would otherwise have each turn
  // read more than it took, without end.
  if (peer != receiving_ && !peer->closed()) {
    peer->Advance();
    if (peer->closed()) return;
  }
  if (peer->ShouldPauseReading()) return;
  // The process-wide budget is spent: nothing more is read (an EPOLLHUP
  // still lands here, and is seen once reading resumes).
  if (input_paused_ && !hangup) return;
  if (!peer->ReadSome(kReadBudget)) {
    // End of stream or an error: hand out what arrived whole, then close.
    peer->reading = false;
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, peer->fd(), nullptr);
  }
  if (peer == receiving_) return;  // Receive() requeues it after this message
  // The handshake and heartbeats are answered here, whether or not the
  // caller is taking messages.
  const bool ready = peer->Advance();
  if (peer->closed()) return;
  if (!ready && peer->eof()) {
    ClosePeer(peer, CloseReason::kPeerClosed, "the peer closed the connection");
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
        zmq_msg_init_size(msg, p->id().size());
        std::memcpy(zmq_msg_data(msg), p->id().data(), p->id().size());
        *more = true;
        return true;
      }
      p->TakeFrame(msg, more);
      if (!*more) {
        receiving_ = nullptr;
        // One message per peer in turn: fair between connections.
        if ((p->has_input() || p->eof()) && !p->queued_readable) {
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
    if (p->closed()) continue;
    if (p->Advance()) {
      receiving_ = p;
      receiving_started_ = false;
      continue;
    }
    if (!p->closed() && p->eof()) {
      ClosePeer(p, CloseReason::kPeerClosed, "the peer closed the connection");
    }
  }
}

std::string ZmtpRouter::GenerateRoutingId() {
  // 5 bytes, a zero first byte, as libzmq generates them; the other four
  // are random (getrandom(2)), so ids seen in one run say nothing about
  // others. A peer may not choose an id starting with a zero byte, so these
  // can never be claimed by a peer.
  std::string id(5, '\0');
  while (true) {
    if (random_left_ < 4) {
      size_t filled = 0;
      while (filled < sizeof(random_pool_)) {
        const ssize_t n = getrandom(random_pool_ + filled, sizeof(random_pool_) - filled, 0);
        if (n > 0) {
          filled += static_cast<size_t>(n);
        } else if (errno != EINTR) {
          // No getrandom(2) (a kernel older than 3.17): the C++ library's
          // source, which reads /dev/urandom on Linux.
          std::random_device device;
          for (auto& b : random_pool_) b = static_cast<uint8_t>(device());
          filled = sizeof(random_pool_);
        }
      }
      random_left_ = sizeof(random_pool_);
    }
    std::memcpy(id.data() + 1, random_pool_ + sizeof(random_pool_) - random_left_, 4);
    random_left_ -= 4;
    if (!by_id_.contains(id)) return id;
  }
}

bool ZmtpRouter::AssignRoutingId(Peer* peer, std::string_view requested) {
  // A keyless peer of a NULL endpoint does not choose its id: it could take
  // the id of an authenticated peer that just left and get the replies
  // still on their way to it.
  if (requested.empty() || peer->anonymous) {
    peer->set_id(GenerateRoutingId());
    by_id_.emplace(peer->id(), peer);
    return true;
  }
  if (requested.front() == '\0') {
    // libzmq reserves ids starting with a zero byte for the ones it
    // generates; a peer choosing one could only be aiming at another
    // peer's generated id.
    refusal::Record(Reason::kHandshakeFailed, peer->refusal_key(),
                    {{"remote", peer->remote()},
                     {"why", "Identity starts with a zero byte"},
                     {"identity", log::Hex(requested)}});
    ClosePeer(peer, CloseReason::kHandshakeFailed, "identity starts with a zero byte");
    return false;
  }
  if (auto it = by_id_.find(requested); it != by_id_.end()) {
    // No handover: the id belongs to the live connection that holds it, or
    // anyone who learnt a worker's id could take its requests. The new
    // connection is refused; a worker that really reconnected gets its id
    // once its old connection has closed (TCP tells, or heartbeats do).
    refusal::Record(Reason::kDuplicateIdentity, peer->refusal_key(),
                    {{"remote", peer->remote()},
                     {"identity", log::Hex(requested)},
                     {"holder", it->second->remote()},
                     {"action", "new connection closed"}});
    peer->SendError("duplicate identity");
    if (!peer->closed()) ClosePeer(peer, CloseReason::kDuplicateIdentity, "duplicate identity");
    return false;
  }
  peer->set_id(std::string(requested));
  by_id_.emplace(peer->id(), peer);
  return true;
}

bool ZmtpRouter::OnHandshakeDone(ZmtpConnection* connection, std::string_view identity) {
  auto* peer = static_cast<Peer*>(connection);
  if (!AssignRoutingId(peer, identity)) return false;
  UnlinkHandshake(peer);
  if (peer->anonymous) {
    peer->name = kAnonymousPeer;
  } else if (options_.security && !peer->user_id().empty()) {
    peer->name = options_.security->KeyName(peer->user_id());
  }
  return true;
}

void ZmtpRouter::OnOutputQueued(ZmtpConnection* connection) {
  auto* peer = static_cast<Peer*>(connection);
  if (peer->queued_flush) return;
  peer->queued_flush = true;
  to_flush_.push_back(peer);
}

void ZmtpRouter::CloseConnection(ZmtpConnection* connection, CloseReason reason, const char* why) {
  ClosePeer(static_cast<Peer*>(connection), reason, why);
}

// ---------------------------------------------------------------------------
// Sending.

ZmtpRouter::Peer* ZmtpRouter::PeerToSendTo(std::string_view routing_id) {
  auto it = by_id_.find(routing_id);
  if (it == by_id_.end()) {
    errno = EHOSTUNREACH;
    return nullptr;
  }
  Peer* peer = it->second;
  // The high-water marks first: a caller that handles EAGAIN (the bus in
  // drop mode) keeps a peer that is only slow.
  const size_t pending = peer->pending_out();
  if ((options_.send_hwm > 0 &&
       peer->queued_messages() >= static_cast<size_t>(options_.send_hwm)) ||
      (options_.send_hwm_bytes > 0 && pending >= options_.send_hwm_bytes)) {
    errno = EAGAIN;
    return nullptr;
  }
  if (options_.max_out_bytes > 0 && pending >= options_.max_out_bytes) {
    // A peer that does not read what it is sent: nothing more is queued
    // for it, ever (nats-server's slow consumer).
    CloseSlowConsumer(peer, CloseReason::kSlowConsumer, "output past max_out_bytes");
    errno = EHOSTUNREACH;
    return nullptr;
  }
  return peer;
}

void ZmtpRouter::QueuedWholeMessage(Peer* peer) {
  if (!peer->queued_flush) {
    peer->queued_flush = true;
    to_flush_.push_back(peer);
  }
}

bool ZmtpRouter::SendMessage(std::string_view routing_id, const std::string_view* frames,
                             size_t count) {
  if (count == 0 || sending_started_) {
    errno = EINVAL;
    return false;
  }
  Peer* peer = PeerToSendTo(routing_id);
  if (peer == nullptr) return false;
  for (size_t i = 0; i < count; ++i)
    peer->QueueFrame(frames[i].data(), frames[i].size(), i + 1 < count);
  QueuedWholeMessage(peer);
  return true;
}

bool ZmtpRouter::SendMessage(std::string_view routing_id, zmq::message_t* frames, size_t count) {
  if (count == 0 || sending_started_) {
    errno = EINVAL;
    return false;
  }
  Peer* peer = PeerToSendTo(routing_id);
  if (peer == nullptr) return false;
  for (size_t i = 0; i < count; ++i) {
    const bool more = i + 1 < count;
    if (frames[i].size() < ZmtpConnection::kShareFrom) {
      peer->QueueFrame(frames[i].data(), frames[i].size(), more);
      continue;
    }
    zmq_msg_t reference;
    zmq_msg_init(&reference);
    zmq_msg_copy(&reference, frames[i].handle());
    peer->QueueFrame(&reference, more);  // takes it
  }
  QueuedWholeMessage(peer);
  return true;
}

bool ZmtpRouter::Send(zmq_msg_t* msg, bool more) {
  const size_t size = zmq_msg_size(msg);
  const auto* data = static_cast<const char*>(zmq_msg_data(msg));
  if (!sending_started_) {
    Peer* peer = PeerToSendTo(std::string_view(data, size));
    if (peer == nullptr) return false;
    sending_ = peer;
    sending_started_ = more;
  } else if (Peer* peer = sending_) {
    peer->QueueFrame(msg, more);  // takes it
    if (!more) QueuedWholeMessage(peer);
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
  const Peer* peer = it->second;
  const size_t pending = peer->pending_out();
  if (options_.max_out_bytes > 0 && pending >= options_.max_out_bytes) return false;
  if (options_.send_hwm_bytes > 0 && pending >= options_.send_hwm_bytes) return false;
  return options_.send_hwm <= 0 || peer->queued_messages() < static_cast<size_t>(options_.send_hwm);
}

void ZmtpRouter::FlushAll() {
  std::vector<Peer*> flushing;
  flushing.swap(to_flush_);
  for (Peer* p : flushing) {
    if (p->closed()) continue;
    p->queued_flush = false;
    WriteTo(p);
  }
  // Keep the vector's storage for the next round.
  flushing.clear();
  if (to_flush_.empty()) to_flush_.swap(flushing);
}

bool ZmtpRouter::WriteTo(Peer* peer) {
  switch (peer->Write()) {
    case ZmtpConnection::WriteResult::kDone: SetWantWrite(peer, false); return true;
    case ZmtpConnection::WriteResult::kWouldBlock: SetWantWrite(peer, true); return true;
    case ZmtpConnection::WriteResult::kPeerReset:
      // A reset from the peer's side is its close, not our write failing.
      ClosePeer(peer, CloseReason::kPeerClosed, "send failed");
      return false;
    case ZmtpConnection::WriteResult::kFailed: break;
  }
  ClosePeer(peer, CloseReason::kWriteError, "send failed");
  return false;
}

void ZmtpRouter::SetWantWrite(Peer* peer, bool want) {
  if (peer->want_write == want) return;
  peer->want_write = want;
  UpdateInterest(peer);
}

// Registers what the peer waits for: input unless it ended or the budget
// is spent, output while some is pending.
void ZmtpRouter::UpdateInterest(Peer* peer) {
  if (peer->eof() || peer->closed()) return;  // no longer in the epoll set
  const bool reading = !input_paused_;
  epoll_event ev{};
  ev.events = (reading ? uint32_t{EPOLLIN} : 0u) | (peer->want_write ? uint32_t{EPOLLOUT} : 0u);
  ev.data.ptr = static_cast<Pollable*>(peer);
  peer->reading = reading;
  epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, peer->fd(), &ev);
  // Input that arrived while paused is announced again by level-triggered
  // epoll once EPOLLIN is back.
}

void ZmtpRouter::CloseSlowConsumer(Peer* peer, CloseReason reason, const char* why) {
  refusal::Record(Reason::kSlowConsumer, peer->refusal_key(),
                  {{"remote", peer->remote()},
                   {"id", log::Hex(peer->id())},
                   {"pending_bytes", peer->pending_out()},
                   {"why", why},
                   {"action", "connection closed"}});
  // An abortive close (RST): what the kernel still holds for a peer that
  // does not read is dropped now, not trickled out to it at its pace.
  const linger abort{.l_onoff = 1, .l_linger = 0};
  setsockopt(peer->fd(), SOL_SOCKET, SO_LINGER, &abort, sizeof(abort));
  ClosePeer(peer, reason, why);
}

void ZmtpRouter::ClosePeer(Peer* peer, CloseReason reason, const char* why) {
  if (peer->closed()) return;
  // Closed before the handshake finished, and not by its own end: refused.
  if (!peer->ready() && !peer->eof()) ++refused_;
  CountClose(reason);
  PLANTD_LOG_DEBUG(
      "connection closed",
      {{"remote", peer->remote()}, {"reason", CloseReasonName(reason)}, {"detail", why}});
  peer->mark_closed();
  const auto held = by_id_.find(peer->id());
  const bool holds_id = held != by_id_.end() && held->second == peer;
  if (peer->ready()) {
    if (zmtp_.on_peer) zmtp_.on_peer(peer->id(), false, peer->remote());
    if (holds_id) disconnected_.push_back(peer->id());
  }
  UnlinkHandshake(peer);
  if (!peer->eof()) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, peer->fd(), nullptr);
  if (peer->admitted) {
    budget_->ReleaseConnection(peer->address());
    peer->admitted = false;
  }
  peer->Shutdown();
  if (holds_id) by_id_.erase(peer->id());
  if (receiving_ == peer) receiving_ = nullptr;
  if (sending_ == peer) sending_ = nullptr;  // the rest of that message is dropped
  if (peer->queued_readable) std::erase(readable_, peer);
  if (peer->queued_flush) std::erase(to_flush_, peer);
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
      if (p->pending_out() > 0) {
        pending.push_back({p->fd(), POLLOUT, 0});
        owners.push_back(p.get());
      }
    }
    if (pending.empty()) break;
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count() + 1;
    if (::poll(pending.data(), pending.size(), static_cast<int>(left)) <= 0) break;
    for (size_t i = 0; i < pending.size(); ++i) {
      if (pending[i].revents != 0 && !owners[i]->closed()) WriteTo(owners[i]);
    }
  }
  while (!peers_.empty()) ClosePeer(peers_.back().get(), CloseReason::kShutdown, "closing");
  closed_.clear();
  // Everything is given back to the shared budget.
  budget_->Adjust(-reported_);
  reported_ = 0;
  context_.buffered = 0;
  for (auto& l : listeners_) {
    ::close(l->fd);
    if (!l->ipc_path.empty()) ::unlink(l->ipc_path.c_str());
  }
  listeners_.clear();
  ::close(epoll_fd_);
  epoll_fd_ = -1;
}

void ZmtpRouter::TakeDisconnected(std::vector<std::string>* routing_ids) {
  if (disconnected_.empty()) return;
  for (std::string& id : disconnected_) routing_ids->push_back(std::move(id));
  disconnected_.clear();
}

}  // namespace plantd::transport

#include "client/native_connection.h"

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
#include <cstddef>
#include <cstring>

#include "transport/zmtp_framing.h"

namespace plantd::client {

namespace zmtp = transport::zmtp;

namespace {

// Bytes read per call, and how much one Process may read before it lets
// the caller handle what arrived (a fast broker must not starve the rest).
constexpr size_t kReadChunk = size_t{64} << 10;
constexpr size_t kReadBudget = size_t{256} << 10;
// Written output is cut from the front of the buffer once this much has gone.
constexpr size_t kCompactAfter = size_t{1} << 20;
// Taken messages kept for reuse, so that a batch of small messages is read
// without allocating: their frames and their strings' capacity are bounded.
constexpr size_t kSpareFrames = 16;
constexpr size_t kSpareBytes = size_t{1} << 20;

size_t Capacity(const NativeConnection::Frames& frames) {
  size_t bytes = 0;
  for (const std::string& f : frames) bytes += f.capacity();
  return bytes;
}

struct ParsedEndpoint {
  bool ipc = false;
  std::string host, port, path;
};

// tcp://HOST:PORT (HOST a name, an IPv4 address or [IPv6]) or ipc://PATH.
// Empty error on success.
std::string ParseConnectEndpoint(std::string_view text, ParsedEndpoint* out) {
  constexpr std::string_view kTcp = "tcp://", kIpc = "ipc://";
  const std::string expected =
      "expected tcp://HOST:PORT or ipc://PATH, got '" + std::string(text) + "'";
  if (text.substr(0, kIpc.size()) == kIpc) {
    out->ipc = true;
    out->path = std::string(text.substr(kIpc.size()));
    if (out->path.empty()) return expected;
    if (out->path.size() >= sizeof(sockaddr_un{}.sun_path)) {
      return "the ipc path is longer than " + std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) +
             " bytes: '" + out->path + "'";
    }
    return {};
  }
  if (text.substr(0, kTcp.size()) != kTcp) return expected;
  const std::string_view rest = text.substr(kTcp.size());
  const size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == rest.size()) return expected;
  std::string_view host = rest.substr(0, colon);
  const std::string_view port = rest.substr(colon + 1);
  // A source address ("tcp://src;host:port") and other libzmq extensions
  // are libzmq's to serve.
  if (host.find(';') != std::string_view::npos) return expected;
  for (char c : port) {
    if (c < '0' || c > '9') return expected;
  }
  if (port.size() > 5 || std::stoi(std::string(port)) < 1 || std::stoi(std::string(port)) > 65535) {
    return expected;
  }
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host == "*")
    return "a connecting endpoint needs a real host, not *: '" + std::string(text) + "'";
  out->host = std::string(host);
  out->port = std::string(port);
  return {};
}

bool WouldBlock(int err) { return err == EAGAIN || err == EWOULDBLOCK; }

std::string_view SocketTypeName(NativeConnection::SocketType type) {
  switch (type) {
    case NativeConnection::SocketType::kSub: return "SUB";
    case NativeConnection::SocketType::kPub: return "PUB";
    case NativeConnection::SocketType::kDealer: break;
  }
  return "DEALER";
}

}  // namespace

Result<Engine> ChooseEngine(const std::vector<std::string>& endpoints, Engine wanted,
                            const CurveOptions& curve) {
  if (wanted == Engine::kLibzmq) return Engine::kLibzmq;
  std::string unsupported;
  for (const std::string& e : endpoints) {
    if (!NativeConnection::Supports(e)) {
      unsupported = e;
      break;
    }
  }
  if (wanted == Engine::kAuto) {
    return curve.enabled() || !unsupported.empty() ? Engine::kLibzmq : Engine::kNative;
  }
  if (curve.enabled()) {
    return Status::InvalidArgument(
        "the native engine does not do CURVE yet: use Engine::kAuto or Engine::kLibzmq");
  }
  if (!unsupported.empty()) {
    return Status::InvalidArgument(
        "the native engine serves tcp://HOST:PORT and ipc://PATH, not '" + unsupported +
        "': use Engine::kAuto or Engine::kLibzmq");
  }
  return Engine::kNative;
}

bool NativeConnection::Supports(std::string_view endpoint) {
  ParsedEndpoint parsed;
  return ParseConnectEndpoint(endpoint, &parsed).empty();
}

Result<std::unique_ptr<NativeConnection>> NativeConnection::Open(Options options) {
  ParsedEndpoint parsed;
  if (std::string error = ParseConnectEndpoint(options.endpoint, &parsed); !error.empty()) {
    return Status::InvalidArgument("cannot connect to '" + options.endpoint + "': " + error);
  }
  if (options.reconnect_interval <= std::chrono::milliseconds(0) ||
      options.handshake_timeout <= std::chrono::milliseconds(0) || options.max_queued_bytes == 0 ||
      options.max_message_bytes == 0 || options.max_received_messages == 0) {
    return Status::InvalidArgument("native connection options must be positive");
  }
  std::unique_ptr<NativeConnection> connection(new NativeConnection(std::move(options)));
  connection->ipc_ = parsed.ipc;
  connection->host_ = std::move(parsed.host);
  connection->port_ = std::move(parsed.port);
  connection->path_ = std::move(parsed.path);
  connection->StartConnect();
  return connection;
}

NativeConnection::NativeConnection(Options options) : options_(std::move(options)) {}

NativeConnection::~NativeConnection() {
  if (fd_ >= 0) ::close(fd_);
}

void NativeConnection::StartConnect() {
  const auto now = Clock::now();
  sockaddr_storage address{};
  socklen_t length = 0;
  if (ipc_) {
    auto* un = reinterpret_cast<sockaddr_un*>(&address);
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, path_.data(), path_.size());
    // libzmq's abstract namespace: ipc://@name.
    if (path_[0] == '@') un->sun_path[0] = '\0';
    length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path_.size() +
                                    (path_[0] == '@' ? 0 : 1));
  } else {
    // IPv4 first, as libzmq resolves without ZMQ_IPV6 ("localhost" is
    // often ::1 first, where a broker bound on tcp://*: does not listen);
    // IPv6 only for a name or literal that has no IPv4 address.
    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    int rc = ::getaddrinfo(host_.c_str(), port_.c_str(), &hints, &found);
    if (rc != 0 || found == nullptr) {
      hints.ai_family = AF_INET6;
      rc = ::getaddrinfo(host_.c_str(), port_.c_str(), &hints, &found);
    }
    if (rc != 0 || found == nullptr) {
      Lose(Status::Unavailable("cannot resolve '" + host_ + "': " + ::gai_strerror(rc)));
      return;
    }
    std::memcpy(&address, found->ai_addr, found->ai_addrlen);
    length = found->ai_addrlen;
    ::freeaddrinfo(found);
  }
  fd_ = ::socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    Lose(Status::Unavailable(std::string("cannot open a socket: ") + std::strerror(errno)));
    return;
  }
  if (!ipc_) {
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  stage_ = Stage::kConnecting;
  timer_ = now + options_.handshake_timeout;
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&address), length) != 0 &&
      errno != EINPROGRESS) {
    Lose(Status::Unavailable("cannot connect to " + options_.endpoint + ": " +
                             std::strerror(errno)));
    return;
  }
  // Connected or in progress: the greeting and READY wait for writability.
  handshake_out_.clear();
  handshake_sent_ = 0;
  zmtp::AppendGreeting(handshake_out_);
  zmtp::AppendReady(handshake_out_, SocketTypeName(options_.socket_type));
}

void NativeConnection::Lose(Status why) {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  // A PUB's messages were for the subscriptions of this connection: all
  // go with it, as libzmq drops a PUB's pipe (the next bus has not asked).
  if (options_.socket_type == SocketType::kPub && out_sent_ < out_.size()) {
    dropped_messages_ += message_ends_.size();
    out_.clear();
    out_sent_ = 0;
    written_end_ = 0;
    message_ends_.clear();
  }
  // Messages that had begun to go are lost with the connection; the rest
  // wait for the next one. (Whole messages already written are gone too,
  // into a dead socket, as with libzmq; nothing can tell whether they
  // arrived.)
  if (out_sent_ > 0) {
    size_t cut = out_sent_;
    if (out_sent_ > written_end_ && !message_ends_.empty()) {
      cut = message_ends_.front();
      message_ends_.pop_front();
      ++dropped_messages_;
    }
    out_.erase(0, cut);
    for (size_t& end : message_ends_) end -= cut;
    out_sent_ = 0;
    written_end_ = 0;
  }
  in_begin_ = 0;
  in_end_ = 0;
  partial_.clear();
  partial_frames_ = 0;
  partial_bytes_ = 0;
  if (!options_.reconnect) {
    stage_ = Stage::kClosed;
    timer_ = Clock::time_point::max();
    last_error_ = std::move(why);
    return;
  }
  stage_ = Stage::kWaiting;
  timer_ = Clock::now() + options_.reconnect_interval;
  last_error_ = std::move(why);
}

short NativeConnection::events() const {
  if (fd_ < 0) return 0;
  if (stage_ == Stage::kConnecting) return POLLOUT;
  // Back-pressure, as libzmq's receive high-water mark: with enough
  // messages waiting for Recv, the broker's are left in the socket.
  const short in =
      stage_ != Stage::kReady || messages_.size() < options_.max_received_messages ? POLLIN : 0;
  return WantsWrite() ? static_cast<short>(in | POLLOUT) : in;
}

bool NativeConnection::WantsWrite() const {
  if (handshake_sent_ < handshake_out_.size()) return true;
  return !corked_ && stage_ == Stage::kReady && out_sent_ < out_.size();
}

NativeConnection::Clock::time_point NativeConnection::next_timer() const {
  return stage_ == Stage::kReady || stage_ == Stage::kClosed ? Clock::time_point::max() : timer_;
}

void NativeConnection::Process(short revents) {
  if (stage_ == Stage::kClosed) return;
  if (stage_ == Stage::kWaiting) {
    if (Clock::now() >= timer_) StartConnect();
    return;
  }
  if (stage_ != Stage::kReady && Clock::now() >= timer_) {
    Lose(Status::Unavailable("no ZMTP handshake with " + options_.endpoint + " within " +
                             std::to_string(options_.handshake_timeout.count()) + " ms"));
    return;
  }
  if (stage_ == Stage::kConnecting) {
    if ((revents & (POLLOUT | POLLERR | POLLHUP)) == 0 || !FinishConnect()) return;
  }
  const bool may_read =
      stage_ != Stage::kReady || messages_.size() < options_.max_received_messages;
  if ((revents & (POLLERR | POLLHUP)) != 0 || (may_read && (revents & POLLIN) != 0)) {
    if (!ReadSome()) return;
  }
  if (WantsWrite()) WriteSome();
}

bool NativeConnection::FinishConnect() {
  int error = 0;
  socklen_t size = sizeof(error);
  if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &size) != 0) error = errno;
  if (error != 0) {
    Lose(Status::Unavailable("cannot connect to " + options_.endpoint + ": " +
                             std::strerror(error)));
    return false;
  }
  stage_ = Stage::kGreeting;
  return true;
}

bool NativeConnection::Send(std::initializer_list<std::string_view> head, const Frames& body) {
  size_t bytes = 0;
  for (std::string_view f : head) bytes += f.size() + zmtp::kMaxFrameHeaderSize;
  for (const std::string& f : body) bytes += f.size() + zmtp::kMaxFrameHeaderSize;
  if (out_.size() - out_sent_ + bytes > options_.max_queued_bytes) return false;
  // Reclaim what was written before growing.
  if (out_sent_ > 0 && out_sent_ == out_.size()) {
    out_.clear();
    out_sent_ = 0;
    written_end_ = 0;
    message_ends_.clear();
  }
  const size_t total = head.size() + body.size();
  size_t i = 0;
  for (std::string_view f : head) zmtp::AppendFrame(out_, f, ++i < total);
  for (const std::string& f : body) zmtp::AppendFrame(out_, f, ++i < total);
  message_ends_.push_back(out_.size());
  if (!corked_ && stage_ == Stage::kReady) WriteSome();
  return true;
}

void NativeConnection::Uncork() {
  corked_ = false;
  if (fd_ >= 0 && WantsWrite()) WriteSome();
}

void NativeConnection::Flush() {
  const bool corked = corked_;
  Uncork();
  corked_ = corked;
}

bool NativeConnection::Subscribe(std::string_view prefix) {
  if (options_.socket_type != SocketType::kSub) return false;
  if (out_.size() - out_sent_ + prefix.size() + 16 > options_.max_queued_bytes) return false;
  subscriptions_.emplace_back(prefix);
  if (stage_ == Stage::kReady) {
    QueueSubscription(prefix);
    if (!corked_) WriteSome();
  }
  return true;
}

void NativeConnection::QueueSubscription(std::string_view prefix) {
  if (out_sent_ > 0 && out_sent_ == out_.size()) {
    out_.clear();
    out_sent_ = 0;
    written_end_ = 0;
    message_ends_.clear();
  }
  if (peer_minor_ == 0) {
    // A ZMTP 3.0 peer (libzmq before 4.3) knows no SUBSCRIBE command: the
    // message form, byte 1 then the prefix.
    std::string message(1, '\x01');
    message.append(prefix);
    zmtp::AppendFrame(out_, message, false);
  } else {
    std::string command("\x09SUBSCRIBE", 10);
    command.append(prefix);
    zmtp::AppendFrame(out_, command, false, /*command=*/true);
  }
  message_ends_.push_back(out_.size());
}

bool NativeConnection::AcceptsPeer(std::string_view socket_type) const {
  switch (options_.socket_type) {
    case SocketType::kSub: return socket_type == "PUB" || socket_type == "XPUB";
    case SocketType::kPub: return socket_type == "SUB" || socket_type == "XSUB";
    case SocketType::kDealer: break;
  }
  return socket_type == "ROUTER" || socket_type == "DEALER";
}

bool NativeConnection::WriteSome() {
  while (true) {
    const char* data;
    size_t size;
    bool handshake = handshake_sent_ < handshake_out_.size();
    if (handshake) {
      data = handshake_out_.data() + handshake_sent_;
      size = handshake_out_.size() - handshake_sent_;
    } else if (!corked_ && stage_ == Stage::kReady && out_sent_ < out_.size()) {
      data = out_.data() + out_sent_;
      size = out_.size() - out_sent_;
    } else {
      break;
    }
    const ssize_t n = ::send(fd_, data, size, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (WouldBlock(errno)) break;
      Lose(Status::Unavailable("connection to " + options_.endpoint +
                               " lost: " + std::strerror(errno)));
      return false;
    }
    if (handshake) {
      handshake_sent_ += static_cast<size_t>(n);
      continue;
    }
    out_sent_ += static_cast<size_t>(n);
    // Forget the ends of messages that went whole: Lose() must know which
    // message, if any, a lost connection cut in the middle.
    while (!message_ends_.empty() && message_ends_.front() <= out_sent_) {
      written_end_ = message_ends_.front();
      message_ends_.pop_front();
    }
  }
  // Everything went: the buffer is reused from its start.
  if (out_sent_ == out_.size() && out_sent_ > 0) {
    out_.clear();
    out_sent_ = 0;
    written_end_ = 0;
    message_ends_.clear();
  } else if (written_end_ >= kCompactAfter && written_end_ * 2 >= out_.size()) {
    // A peer that never quite catches up: drop the messages that went
    // whole, so the buffer holds only what waits. A message half written
    // stays, with its offset, for Lose() to recognise.
    const size_t cut = written_end_;
    out_.erase(0, cut);
    for (size_t& end : message_ends_) end -= cut;
    out_sent_ -= cut;
    written_end_ = 0;
  }
  return true;
}

bool NativeConnection::ReadSome() {
  size_t read_total = 0;
  while (read_total < kReadBudget) {
    // Keep the unparsed tail at the front, and room for a chunk (or for
    // the whole frame that is arriving) behind it.
    if (in_begin_ > 0 && (in_begin_ == in_end_ || in_begin_ >= kReadChunk)) {
      std::memmove(in_.data(), in_.data() + in_begin_, in_end_ - in_begin_);
      in_end_ -= in_begin_;
      in_begin_ = 0;
    }
    const size_t room = std::max(kReadChunk, in_wanted_);
    if (in_.size() < in_end_ + room) in_.resize(in_end_ + room);
    const ssize_t n = ::recv(fd_, in_.data() + in_end_, in_.size() - in_end_, 0);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && WouldBlock(errno)) break;
      const int err = errno;
      // Whole messages that arrived before the end are still handed out.
      if (!Parse()) return false;
      Lose(Status::Unavailable(
          n == 0 ? "the broker at " + options_.endpoint + " closed the connection"
                 : "connection to " + options_.endpoint + " lost: " + std::strerror(err)));
      return false;
    }
    const bool filled = in_end_ + static_cast<size_t>(n) == in_.size();
    in_end_ += static_cast<size_t>(n);
    read_total += static_cast<size_t>(n);
    if (!filled) break;
  }
  return Parse();
}

// Takes the greeting, handshake commands and whole frames at the head of
// the input. False when the connection was lost over what it read.
bool NativeConnection::Parse() {
  const auto* data = reinterpret_cast<const uint8_t*>(in_.data());
  in_wanted_ = 0;
  if (stage_ == Stage::kGreeting) {
    const size_t available = in_end_ - in_begin_;
    if (available >= 10 && !zmtp::SignatureLooksValid(data + in_begin_, available)) {
      Lose(Status::ProtocolError(options_.endpoint + " does not speak ZMTP 3"));
      return false;
    }
    if (available < zmtp::kGreetingSize) return true;
    const zmtp::GreetingError error = zmtp::CheckGreeting(data + in_begin_);
    if (error != zmtp::GreetingError::kNone) {
      Lose(Status::ProtocolError(options_.endpoint + ": " + zmtp::GreetingErrorText(error)));
      return false;
    }
    peer_minor_ = data[in_begin_ + 11];  // the greeting's minor version
    in_begin_ += zmtp::kGreetingSize;
    stage_ = Stage::kHandshake;
  }
  while (stage_ == Stage::kHandshake || stage_ == Stage::kReady) {
    zmtp::FrameHeader h;
    const size_t available = in_end_ - in_begin_;
    const auto parsed = zmtp::ParseFrameHeader(data + in_begin_, available, &h);
    if (parsed == zmtp::HeaderParse::kMalformed) {
      Lose(Status::ProtocolError("malformed frame from " + options_.endpoint));
      return false;
    }
    if (parsed == zmtp::HeaderParse::kIncomplete) return true;
    // Each frame counts what it costs to hold, so that a flood of empty
    // frames is bounded too.
    const uint64_t message_bytes = partial_bytes_ + h.size + sizeof(std::string);
    if (message_bytes > options_.max_message_bytes) {
      Lose(Status::ProtocolError("a message from " + options_.endpoint + " is larger than " +
                                 std::to_string(options_.max_message_bytes) + " bytes"));
      return false;
    }
    if (available - h.header_size < h.size) {
      // Read the rest of a large frame in one go.
      in_wanted_ = h.header_size + h.size - available;
      return true;
    }
    const std::string_view body(in_.data() + in_begin_ + h.header_size, h.size);
    in_begin_ += h.header_size + h.size;
    if (h.command) {
      if (partial_frames_ > 0 || !HandleCommand(body)) {
        if (fd_ >= 0) Lose(Status::ProtocolError("unexpected command from " + options_.endpoint));
        return false;
      }
      continue;
    }
    if (stage_ != Stage::kReady) {
      Lose(Status::ProtocolError(options_.endpoint + " sent a message before its READY"));
      return false;
    }
    // Into a recycled message where there is one: its strings keep their
    // capacity, so a steady stream allocates nothing per message.
    if (partial_frames_ == 0 && partial_.empty() && !spare_.empty()) {
      partial_ = std::move(spare_.back());
      spare_.pop_back();
      spare_bytes_ -= Capacity(partial_);
    }
    if (partial_frames_ < partial_.size()) {
      partial_[partial_frames_].assign(body);
    } else {
      partial_.emplace_back(body);
    }
    ++partial_frames_;
    partial_bytes_ = message_bytes;
    if (!h.more) {
      partial_.resize(partial_frames_);
      messages_.push_back(std::move(partial_));
      partial_.clear();
      partial_frames_ = 0;
      partial_bytes_ = 0;
    }
  }
  return true;
}

bool NativeConnection::HandleCommand(std::string_view body) {
  const std::string_view name = zmtp::CommandName(body);
  if (name == "READY" && stage_ == Stage::kHandshake) {
    zmtp::PeerMetadata peer;
    if (!zmtp::ParseReady(body, &peer)) {
      Lose(Status::ProtocolError("malformed READY from " + options_.endpoint));
      return false;
    }
    if (!AcceptsPeer(peer.socket_type)) {
      Lose(Status::ProtocolError(
          options_.endpoint + " is a " + std::string(peer.socket_type) + " socket, which a " +
          std::string(SocketTypeName(options_.socket_type)) + " cannot talk to"));
      return false;
    }
    stage_ = Stage::kReady;
    ++connections_;
    last_error_ = Status::Ok();
    if (options_.socket_type == SocketType::kSub) {
      // A new peer knows none of them: all go first. Whatever the last
      // connection left unwritten was subscriptions and PONGs for it.
      out_.clear();
      out_sent_ = 0;
      written_end_ = 0;
      message_ends_.clear();
      for (const std::string& prefix : subscriptions_) QueueSubscription(prefix);
    }
    return true;
  }
  if (name == "ERROR") {
    // RFC 37: a reason of up to 255 bytes after the name.
    std::string reason;
    if (body.size() > 7) reason = std::string(body.substr(7, static_cast<uint8_t>(body[6])));
    Lose(Status::PermissionDenied(options_.endpoint + " refused the connection" +
                                  (reason.empty() ? "" : ": " + reason)));
    return false;
  }
  if (stage_ != Stage::kReady) {
    Lose(Status::ProtocolError("unexpected " + std::string(name) + " during the handshake with " +
                               options_.endpoint));
    return false;
  }
  if (name == "PING") {
    std::string_view context;
    if (!zmtp::ParsePing(body, &context)) return true;
    // The PONG goes ahead of queued messages only between them: it is
    // queued after whatever is already there.
    // A peer that pings and never reads gets no more than the queue holds.
    if (out_.size() - out_sent_ >= options_.max_queued_bytes) return true;
    zmtp::AppendPong(out_, context);
    message_ends_.push_back(out_.size());
    if (!corked_) WriteSome();
    return fd_ >= 0;
  }
  if (options_.socket_type == SocketType::kPub && (name == "SUBSCRIBE" || name == "CANCEL")) {
    // As the ZMTP 3.0 message would have it, so the owner reads one form.
    std::string message(1, name == "SUBSCRIBE" ? '\x01' : '\x00');
    message.append(body.substr(1 + name.size()));
    messages_.push_back(Frames{std::move(message)});
    return true;
  }
  return true;  // PONG, and what this socket type has no use for
}

bool NativeConnection::Recv(Frames* out) {
  if (messages_.empty()) return false;
  // The caller's old message is kept for the next one to arrive.
  out->swap(messages_.front());
  Frames& old = messages_.front();
  if (!old.empty() && old.size() <= kSpareFrames &&
      spare_.size() < options_.max_received_messages) {
    const size_t held = Capacity(old);
    if (spare_bytes_ + held <= kSpareBytes) {
      spare_bytes_ += held;
      spare_.push_back(std::move(old));
    }
  }
  messages_.pop_front();
  return true;
}

}  // namespace plantd::client

#include "transport/zmtp_connection.h"

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/refusal.h"
#include "log/log.h"
#include "transport/curve_keys.h"
#include "transport/zmtp_framing.h"

namespace plantd::transport {
namespace {

using refusal::Reason;

// Reads grow a connection's buffer by at most this per recv(), so that one
// busy peer cannot keep the others waiting.
constexpr size_t kReadChunk = size_t{64} * 1024;
// Output buffers above this are given back once drained (see InputBuffer).
constexpr size_t kKeepOutputBytes = size_t{1024} * 1024;
// Output already sent is cut from the front of a peer's buffer once it is
// this large and at least as large as what is left, so that a peer that
// always has something pending cannot make its buffer grow with everything
// ever sent to it (a memmove of at most the bytes sent, amortised).
constexpr size_t kCompactOutputBytes = size_t{1024} * 1024;
// A handshake command is a few dozen bytes; anything this big is hostile.
constexpr uint64_t kMaxCommandSize = size_t{64} * 1024;
constexpr size_t kMaxBufferedInput = size_t{1024} * 1024;
// A frame up to this size is queued with its header in one copy.
constexpr size_t kSmallFrame = 256;
// Pieces of output written in one sendmsg() when bodies are attached.
constexpr size_t kMaxWriteIov = 64;
// Ring slots kept once a peer's output has drained (see Write()).
constexpr size_t kKeepRingSlots = 1024;
// What a frame costs the broker beyond its body: the longest header, and the
// zmq_msg_t the core holds it in. An empty frame is not free: with no frame
// limit (max_message_frames 0), a message may have at most
// max_message_size / kFrameCost frames, so a stream of empty MORE frames
// cannot grow memory byte for byte.
constexpr uint64_t kFrameCost = zmtp::kMaxFrameHeaderSize + sizeof(zmq_msg_t);

}  // namespace

ZmtpConnection::ZmtpConnection(int fd, std::string remote, std::string address, Context* context,
                               Host* host, std::unique_ptr<ZmtpMechanism> mechanism)
    : fd_(fd),
      remote_(std::move(remote)),
      address_(std::move(address)),
      context_(context),
      host_(host),
      mechanism_(std::move(mechanism)),
      wraps_(mechanism_->wraps_traffic()),
      accepted_at_(context->now) {
  in_.set_tally(&context_->buffered);
  in_.set_budget(context_->budget);
  wire_.set_tally(&context_->buffered);
}

ZmtpConnection::~ZmtpConnection() {
  if (fd_ >= 0) Shutdown();
}

void ZmtpConnection::Start() {
  // Our whole greeting and first commands at once: libzmq reads them as it
  // needs them.
  const size_t before = out_.size();
  zmtp::AppendGreeting(out_, mechanism_->name(), mechanism_->as_server());
  mechanism_->Start(out_);
  QueuedOutput(out_.size() - before);
}

// ---------------------------------------------------------------------------
// Input.

bool ZmtpConnection::ShouldPauseReading() {
  if (message_ready_) {
    // Wrapped bytes not yet opened count too: they wait behind the message.
    const size_t held = in_.size() + wire_.size();
    if (held >= kMaxBufferedInput) read_paused_ = true;
    if (read_paused_ && held >= kMaxBufferedInput / 2) return true;
  }
  read_paused_ = false;
  return false;
}

bool ZmtpConnection::ReadSome(size_t budget) {
  InputBuffer& buffer = wire();
  while (budget > 0) {
    uint8_t* at = buffer.Reserve(std::min(kReadChunk, budget));
    const size_t room = std::min(buffer.free_space(), budget);
    const ssize_t n = ::recv(fd_, at, room, 0);
    if (n > 0) {
      buffer.Commit(static_cast<size_t>(n));
      budget -= static_cast<size_t>(n);
      if (static_cast<size_t>(n) < room) return true;  // drained
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    eof_ = true;  // end of stream or an error
    return false;
  }
  return true;
}

bool ZmtpConnection::Advance() {
  if (message_ready_) return true;
  const RouterOptions& options = *context_->options;
  // With no frame limit configured, each frame still costs kFrameCost of
  // the message's size limit.
  const uint64_t max_frames = options.max_message_frames > 0
                                  ? options.max_message_frames
                                  : std::max<uint64_t>(1, options.max_message_size / kFrameCost);
  while (!closed_) {
    if (stage_ != Stage::kTraffic) {
      if (!Handshake()) return false;
      continue;
    }
    if (wraps_ && !UnwrapArrived()) return false;
    if (discarding_ && !SkipOversized()) return false;
    zmtp::FrameHeader h;
    // Commands come between messages, never inside one.
    if (scanned_ == 0) {
      const auto parsed = zmtp::ParseFrameHeader(in_.data(), in_.size(), &h);
      if (parsed == zmtp::HeaderParse::kIncomplete) return false;
      if (parsed == zmtp::HeaderParse::kMalformed) {
        host_->CloseConnection(this, CloseReason::kProtocolError, "malformed frame header");
        return false;
      }
      if (h.command) {
        if (h.size > kMaxCommandSize) {
          host_->CloseConnection(this, CloseReason::kProtocolError, "command frame too large");
          return false;
        }
        if (in_.size() < h.header_size + h.size) return false;
        const size_t total = h.header_size + static_cast<size_t>(h.size);
        if (!HandleCommand(in_.data() + h.header_size, static_cast<size_t>(h.size))) return false;
        in_.Consume(total);
        continue;
      }
    }
    // A data message: whole once a frame without MORE is buffered.
    while (true) {
      const uint8_t* at = in_.data() + scanned_;
      const size_t left = in_.size() - scanned_;
      const auto parsed = zmtp::ParseFrameHeader(at, left, &h);
      if (parsed == zmtp::HeaderParse::kIncomplete) return false;
      if (parsed == zmtp::HeaderParse::kMalformed || h.command) {
        host_->CloseConnection(this, CloseReason::kProtocolError,
                               "malformed frame inside a message");
        return false;
      }
      const bool too_large = scanned_body_bytes_ + h.size > options.max_message_size;
      const bool too_many = scanned_frames_ + 1 > max_frames;
      if (too_large || too_many) {
        // Skip the message as it streams in, keeping only the current
        // frame's remaining length: memory stays flat however long it
        // goes on. The connection stays up: closing it would only make the
        // peer reconnect (more work for us, not less), and a peer that sent
        // one bad message keeps what it sends next, as with too large ones.
        refusal::Record(too_many ? Reason::kTooManyFrames : Reason::kMessageTooLarge, refusal_key(),
                        {{"remote", remote_},
                         {"id", log::Hex(id_)},
                         {too_many ? "max_message_frames" : "max_message_size",
                          too_many ? max_frames : options.max_message_size},
                         {"action", "message skipped"}});
        discarding_ = true;
        discard_too_many_frames_ = too_many;
        discard_more_ = h.more;
        discard_left_ = h.size;
        in_.Consume(scanned_ + h.header_size);
        scanned_ = 0;
        scanned_body_bytes_ = 0;
        scanned_frames_ = 0;
        announced_scan_ = false;
        if (!SkipOversized()) return false;
        break;  // the next message starts at the head
      }
      if (left - h.header_size < h.size) {
        // A large frame: the rest of it is received in place (asked once
        // per frame: the budget's answer stands).
        if (!wraps_ && h.size >= kReadChunk && !announced_scan_) {
          announced_scan_ = true;
          in_.ReserveAnnounced(h.header_size + static_cast<size_t>(h.size) - left, kReadChunk);
        }
        return false;
      }
      scanned_ += h.header_size + static_cast<size_t>(h.size);
      announced_scan_ = false;
      scanned_body_bytes_ += h.size;
      ++scanned_frames_;
      if (!h.more) {
        message_ready_ = true;
        return true;
      }
    }
  }
  return false;
}

bool ZmtpConnection::UnwrapArrived() {
  const size_t overhead = mechanism_->WrappedSize(0);
  // A wrapped frame is opened whole, so its size is checked before it is
  // buffered: one over the message size limit closes the connection (it
  // cannot be skipped in pieces as a plain one is).
  const uint64_t max_wrapped = mechanism_->WrappedSize(context_->options->max_message_size);
  // Frames are opened as the scanner needs them, not all that arrived: a
  // peer that sends faster than its messages are taken keeps its backlog
  // in wire_, where ShouldPauseReading() sees it.
  while (!wire_.empty() && in_.size() < kMaxBufferedInput) {
    zmtp::FrameHeader h;
    const auto parsed = zmtp::ParseFrameHeader(wire_.data(), wire_.size(), &h);
    if (parsed == zmtp::HeaderParse::kIncomplete) return true;
    if (parsed == zmtp::HeaderParse::kMalformed || h.size > max_wrapped) {
      if (parsed != zmtp::HeaderParse::kMalformed) {
        refusal::Record(Reason::kMessageTooLarge, refusal_key(),
                        {{"remote", remote_},
                         {"id", log::Hex(id_)},
                         {"max_message_size", context_->options->max_message_size},
                         {"action", "connection closed (an encrypted frame is not skipped)"}});
        if (context_->options->on_oversized) context_->options->on_oversized(id_);
      }
      host_->CloseConnection(this, CloseReason::kProtocolError,
                             "malformed or oversized wrapped frame");
      return false;
    }
    const size_t total = h.header_size + static_cast<size_t>(h.size);
    if (wire_.size() < total) return true;
    const std::string_view command(reinterpret_cast<const char*>(wire_.data() + h.header_size),
                                   static_cast<size_t>(h.size));
    if (command.size() < overhead) {
      host_->CloseConnection(this, CloseReason::kProtocolError,
                             "wrapped frame shorter than its box");
      return false;
    }
    const size_t plain = command.size() - overhead;
    uint8_t header[zmtp::kMaxFrameHeaderSize];
    const size_t header_size = zmtp::EncodeFrameHeader(header, plain, false);
    uint8_t* at = in_.Reserve(header_size + command.size());
    size_t size = 0;
    uint8_t flags = 0;
    if (!mechanism_->UnwrapMessage(command, at + header_size, &size, &flags) || size != plain) {
      // RFC 26: any box that does not open closes the connection.
      PLANTD_LOG_DEBUG("a wrapped frame did not open",
                       {{"remote", remote_}, {"why", mechanism_->refusal()}});
      host_->CloseConnection(this, CloseReason::kProtocolError, "a wrapped frame did not open");
      return false;
    }
    zmtp::EncodeFrameHeader(at, plain, (flags & zmtp::kFlagMore) != 0,
                            (flags & zmtp::kFlagCommand) != 0);
    in_.Commit(header_size + plain);
    wire_.Consume(total);
  }
  return true;
}

void ZmtpConnection::TakeFrame(zmq_msg_t* msg, bool* more) {
  // Advance() checked that the whole message is buffered.
  zmtp::FrameHeader h;
  zmtp::ParseFrameHeader(in_.data(), in_.size(), &h);
  const auto size = static_cast<size_t>(h.size);
  const uint8_t* body = in_.data() + h.header_size;
  zmq_msg_close(msg);
  InputBlock* block = size >= kShareFrom ? in_.Share() : nullptr;
  if (block == nullptr || zmq_msg_init_data(msg, const_cast<uint8_t*>(body), size,
                                            &InputBlock::FreeFrame, block) != 0) {
    if (block != nullptr) block->Unref();
    zmq_msg_init_size(msg, size);
    if (size > 0) std::memcpy(zmq_msg_data(msg), body, size);
  }
  in_.Consume(h.header_size + size);
  *more = h.more;
  if (!h.more) {
    message_ready_ = false;
    scanned_ = 0;
    scanned_body_bytes_ = 0;
    scanned_frames_ = 0;
  }
}

// Consumes what has arrived of an oversized message; true once it has all
// gone and been reported.
bool ZmtpConnection::SkipOversized() {
  while (true) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(discard_left_, in_.size()));
    in_.Consume(n);
    discard_left_ -= n;
    if (discard_left_ > 0) return false;
    if (!discard_more_) break;
    zmtp::FrameHeader h;
    const auto parsed = zmtp::ParseFrameHeader(in_.data(), in_.size(), &h);
    if (parsed == zmtp::HeaderParse::kIncomplete) return false;
    if (parsed == zmtp::HeaderParse::kMalformed || h.command) {
      host_->CloseConnection(this, CloseReason::kProtocolError, "malformed frame inside a message");
      return false;
    }
    in_.Consume(h.header_size);
    discard_left_ = h.size;
    discard_more_ = h.more;
  }
  discarding_ = false;
  const RouterOptions& options = *context_->options;
  if (discard_too_many_frames_ && options.on_too_many_frames) {
    options.on_too_many_frames(id_);
  } else if (options.on_oversized) {
    options.on_oversized(id_);
  }
  return true;
}

// ---------------------------------------------------------------------------
// The handshake and commands.

void ZmtpConnection::RefuseHandshake(const char* why) {
  refusal::Record(Reason::kHandshakeFailed, refusal_key(), {{"remote", remote_}, {"why", why}});
  host_->CloseConnection(this, CloseReason::kHandshakeFailed, why);
}

bool ZmtpConnection::Handshake() {
  InputBuffer& in = wire();
  if (stage_ == Stage::kGreeting) {
    if (!zmtp::SignatureLooksValid(in.data(), in.size())) {
      RefuseHandshake("not a ZMTP peer");
      return false;
    }
    if (in.size() < zmtp::kGreetingSize) return false;
    const zmtp::GreetingError error = zmtp::CheckGreeting(in.data(), mechanism_->name());
    if (error != zmtp::GreetingError::kNone) {
      RefuseHandshake(zmtp::GreetingErrorText(error));
      return false;
    }
    if (!mechanism_->AcceptsPeerRole(zmtp::GreetingAsServer(in.data()))) {
      RefuseHandshake("the peer's greeting claims the server role");
      return false;
    }
    in.Consume(zmtp::kGreetingSize);
    stage_ = Stage::kHandshake;
    return true;
  }
  zmtp::FrameHeader h;
  const auto parsed = zmtp::ParseFrameHeader(in.data(), in.size(), &h);
  if (parsed == zmtp::HeaderParse::kIncomplete) return false;
  if (parsed == zmtp::HeaderParse::kMalformed || !h.command || h.size > kMaxCommandSize) {
    RefuseHandshake("a handshake frame that is not a command");
    return false;
  }
  if (in.size() < h.header_size + h.size) return false;
  const std::string_view body(reinterpret_cast<const char*>(in.data() + h.header_size),
                              static_cast<size_t>(h.size));
  const size_t before = out_.size();
  const ZmtpMechanism::Step step = mechanism_->OnHandshakeCommand(body, out_);
  if (out_.size() > before) {
    QueuedOutput(out_.size() - before);
    host_->OnOutputQueued(this);
  }
  if (step == ZmtpMechanism::Step::kRefused || step == ZmtpMechanism::Step::kDenied) {
    // Its last words (an ERROR) go out before the close, if they can.
    Write();
    const std::string why(mechanism_->refusal());
    if (step == ZmtpMechanism::Step::kDenied) {
      std::string key;
      Z85Encode(mechanism_->user_id(), &key);
      refusal::Record(Reason::kUnauthorizedKey, refusal_key(),
                      {{"remote", remote_}, {"key", key}, {"action", "connection closed"}});
      host_->CloseConnection(this, CloseReason::kHandshakeFailed, why.c_str());
      return false;
    }
    RefuseHandshake(why.c_str());
    return false;
  }
  in.Consume(h.header_size + static_cast<size_t>(h.size));
  if (step == ZmtpMechanism::Step::kContinue) return true;
  mechanism_ready_ = true;

  const zmtp::PeerMetadata& peer = mechanism_->peer();
  const ZmtpOptions& zmtp_options = *context_->zmtp;
  if (std::find(zmtp_options.peer_types.begin(), zmtp_options.peer_types.end(), peer.socket_type) ==
      zmtp_options.peer_types.end()) {
    PLANTD_LOG_DEBUG("incompatible socket type", {{"remote", remote_},
                                                  {"socket_type", peer.socket_type},
                                                  {"ours", zmtp_options.socket_type}});
    SendError("invalid socket type");
    if (!closed_) RefuseHandshake("incompatible socket type");
    return false;
  }
  if (!host_->OnHandshakeDone(this, peer.identity)) return false;
  stage_ = Stage::kTraffic;
  PLANTD_LOG_DEBUG("peer ready", {{"remote", remote_},
                                  {"socket_type", peer.socket_type},
                                  {"mechanism", mechanism_->name()},
                                  {"id", log::Hex(id_)}});
  if (zmtp_options.on_peer) zmtp_options.on_peer(id_, true, remote_);
  return !closed_;
}

bool ZmtpConnection::HandleCommand(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const std::string_view name = zmtp::CommandName(body);
  std::string_view context;
  if (zmtp::ParsePing(body, &context)) {
    // RFC 37: a PONG says the connection is alive; one not yet sent says it
    // as well as many, so a PING flood from a peer that does not read
    // cannot grow a queue of PONGs.
    if (sent_position() < pong_end_) return true;
    zmtp::PongStorage pong;
    AppendCommand(zmtp::PongBody(context, pong));
    pong_end_ = out_queued_;
    host_->OnOutputQueued(this);
    return true;
  }
  if (name == "PONG") return true;
  const ZmtpOptions& zmtp_options = *context_->zmtp;
  if ((name == "SUBSCRIBE" || name == "CANCEL") && zmtp_options.on_subscription) {
    zmtp_options.on_subscription(id_, name == "SUBSCRIBE", body.substr(1 + name.size()));
    return !closed_;
  }
  if (name == "ERROR" || name == "READY") {
    host_->CloseConnection(this, CloseReason::kProtocolError,
                           name == "ERROR" ? "peer sent ERROR" : "second READY");
    return false;
  }
  return true;  // RFC 37: unknown commands are ignored
}

// ---------------------------------------------------------------------------
// Output.

void ZmtpConnection::QueuedOutput(size_t bytes) {
  // Output queued onto an empty buffer starts the write_timeout clock.
  out_queued_ += bytes;
  if (pending_out() == bytes) out_progress_ = context_->now;
  context_->buffered += static_cast<int64_t>(bytes);
}

void ZmtpConnection::AppendCommand(std::string_view body) {
  const size_t before = out_.size();
  if (wraps_ && stage_ == Stage::kTraffic) {
    mechanism_->WrapFrame(body, false, true, out_);
  } else {
    zmtp::AppendFrame(out_, body, false, true);
  }
  QueuedOutput(out_.size() - before);
}

void ZmtpConnection::QueueFrame(const void* data, size_t size, bool more) {
  const size_t before = out_.size();
  if (wraps_) {
    mechanism_->WrapFrame(std::string_view(static_cast<const char*>(data), size), more, false,
                          out_);
  } else {
    // Header and body in one append: for the small frames of a busy bus,
    // the second append's checks cost as much as its copy.
    char header[zmtp::kMaxFrameHeaderSize + kSmallFrame];
    const size_t n = zmtp::EncodeFrameHeader(reinterpret_cast<uint8_t*>(header), size, more);
    if (size <= kSmallFrame) {
      if (size > 0) std::memcpy(header + n, data, size);
      out_.append(header, n + size);
    } else {
      out_.append(header, n);
      out_.append(static_cast<const char*>(data), size);
    }
  }
  QueuedOutput(out_.size() - before);
  if (!more) message_ends_.push_back(out_queued_);
}

void ZmtpConnection::QueueFrame(zmq_msg_t* msg, bool more) {
  const size_t size = zmq_msg_size(msg);
  if (wraps_ || size < kShareFrom) {
    QueueFrame(zmq_msg_data(msg), size, more);
    zmq_msg_close(msg);
    zmq_msg_init(msg);
    return;
  }
  uint8_t header[zmtp::kMaxFrameHeaderSize];
  const size_t n = zmtp::EncodeFrameHeader(header, size, more);
  out_.append(reinterpret_cast<const char*>(header), n);
  Attached attached;
  attached.at = out_.size();
  zmq_msg_move(attached.body.handle(), msg);
  attached_.push_back(std::move(attached));
  QueuedOutput(n + size);
  if (!more) message_ends_.push_back(out_queued_);
}

void ZmtpConnection::SendError(std::string_view reason) {
  // In clear while the handshake runs (RFC 37; a peer whose handshake is
  // refused has no keys for a box anyway). After a CURVE READY the peer
  // opens every frame as a MESSAGE: a clear ERROR would reach it as a
  // broken box, so it travels boxed like PING and PONG.
  const size_t before = out_.size();
  if (wraps_ && mechanism_ready_) {
    mechanism_->WrapFrame(zmtp::ErrorBody(reason), false, true, out_);
  } else {
    zmtp::AppendError(out_, reason);
  }
  QueuedOutput(out_.size() - before);
  Write();
}

ZmtpConnection::WriteResult ZmtpConnection::Write() {
  while (pending_out() > 0) {
    ssize_t n;
    if (attached_.empty()) {
      n = ::send(fd_, out_.data() + out_sent_, out_.size() - out_sent_, MSG_NOSIGNAL);
    } else {
      // The pieces in stream order: out_ up to each body, the body.
      iovec iov[kMaxWriteIov];
      size_t count = 0;
      size_t from = out_sent_;
      size_t i = 0;
      for (; i < attached_.size() && count + 2 <= kMaxWriteIov; ++i) {
        Attached& a = attached_[i];
        if (a.at > from) iov[count++] = {out_.data() + from, a.at - from};
        const size_t skip = i == 0 ? attached_sent_ : 0;
        iov[count++] = {static_cast<char*>(a.body.data()) + skip, a.body.size() - skip};
        from = a.at;
      }
      // What follows the last body taken, up to the next body left out.
      const size_t until = i < attached_.size() ? attached_[i].at : out_.size();
      if (count < kMaxWriteIov && from < until) iov[count++] = {out_.data() + from, until - from};
      msghdr header{};
      header.msg_iov = iov;
      header.msg_iovlen = count;
      n = ::sendmsg(fd_, &header, MSG_NOSIGNAL);
    }
    if (n > 0) {
      AdvanceWritten(static_cast<size_t>(n));
      context_->buffered -= n;
      out_progress_ = context_->now;
      const uint64_t sent = sent_position();
      while (!message_ends_.empty() && message_ends_.front() <= sent) message_ends_.pop_front();
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      CompactOutput();
      return WriteResult::kWouldBlock;
    }
    // A reset from the peer's side is its close, not our write failing.
    const bool reset = n < 0 && (errno == EPIPE || errno == ECONNRESET);
    return reset ? WriteResult::kPeerReset : WriteResult::kFailed;
  }
  out_.clear();
  out_sent_ = 0;
  message_ends_.clear();
  if (out_.capacity() > kKeepOutputBytes) std::string().swap(out_);
  // The rings hold a slot per message or body queued at the peak: a peer
  // that once fell far behind does not keep them.
  if (message_ends_.capacity() > kKeepRingSlots) message_ends_ = RingBuffer<uint64_t>();
  if (attached_.capacity() > kKeepRingSlots) attached_ = RingBuffer<Attached>();
  return WriteResult::kDone;
}

void ZmtpConnection::AdvanceWritten(size_t n) {
  out_written_ += n;
  while (n > 0) {
    const size_t inline_end = attached_.empty() ? out_.size() : attached_.front().at;
    const size_t inline_left = inline_end - out_sent_;
    if (inline_left > 0) {
      const size_t step = std::min(n, inline_left);
      out_sent_ += step;
      n -= step;
      continue;
    }
    // At the first body: out_ before it has gone.
    Attached& a = attached_.front();
    const size_t step = std::min(n, a.body.size() - attached_sent_);
    attached_sent_ += step;
    n -= step;
    if (attached_sent_ == a.body.size()) {
      attached_.pop_front();  // its reference to the body goes
      attached_sent_ = 0;
    }
  }
}

// Cuts what has been written from the front of out_ once it is large and at
// least as large as what is left, so that a peer that always has something
// pending cannot make the buffer grow with everything ever sent to it.
void ZmtpConnection::CompactOutput() {
  if (out_sent_ < kCompactOutputBytes || out_sent_ < out_.size() - out_sent_) return;
  out_.erase(0, out_sent_);
  for (size_t i = 0; i < attached_.size(); ++i) attached_[i].at -= out_sent_;
  out_sent_ = 0;
}

void ZmtpConnection::Shutdown() {
  if (fd_ < 0) return;
  ::close(fd_);
  fd_ = -1;
  closed_ = true;
  // Its buffers are freed now, not when the object goes.
  in_.Release();
  wire_.Release();
  context_->buffered -= static_cast<int64_t>(pending_out());
  out_written_ = out_queued_;
  std::string().swap(out_);
  out_sent_ = 0;
  attached_ = RingBuffer<Attached>();  // its bodies' references go
  attached_sent_ = 0;
  message_ends_ = RingBuffer<uint64_t>();
}

}  // namespace plantd::transport

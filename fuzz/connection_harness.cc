#include "connection_harness.h"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <mutex>

#include "config/options.h"
#include "log/log.h"

namespace plantd::fuzz {
namespace {

using transport::CloseReason;
using transport::ZmtpConnection;

// Output kept for the caller beyond this is dropped: only the CURVE
// harness reads it, and its echoes are bounded by its input.
constexpr size_t kMaxKeptOutput = size_t{4} << 20;

// Whether `s` is well-formed UTF-8 (RFC 3629) without the C0 controls that
// JSON (RFC 8259) requires escaped.
bool JsonSafeUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<uint8_t>(s[i]);
    if (c < 0x20) return false;
    if (c < 0x80) {
      ++i;
      continue;
    }
    uint32_t code = 0;
    size_t n = 0;
    if ((c & 0xE0) == 0xC0) {
      code = c & 0x1F;
      n = 2;
    } else if ((c & 0xF0) == 0xE0) {
      code = c & 0x0F;
      n = 3;
    } else if ((c & 0xF8) == 0xF0) {
      code = c & 0x07;
      n = 4;
    } else {
      return false;
    }
    if (s.size() - i < n) return false;
    for (size_t k = 1; k < n; ++k) {
      const auto next = static_cast<uint8_t>(s[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      code = (code << 6) | (next & 0x3F);
    }
    static constexpr uint32_t kSmallest[] = {0, 0, 0x80, 0x800, 0x10000};
    if (code < kSmallest[n] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) {
      return false;
    }
    i += n;
  }
  return true;
}

class CheckingSink final : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    const std::string_view line(msg.payload.data(), msg.payload.size());
    if (JsonSafeUtf8(line)) return;
    std::fprintf(stderr, "log line (hex):");
    for (char c : line) std::fprintf(stderr, " %02x", static_cast<uint8_t>(c));
    std::fprintf(stderr, "\n");
    Check(false, "a JSON log line with invalid UTF-8 or a raw control character");
  }
  void flush_() override {}
};

}  // namespace

void CheckedLogs() {
  log::Configure({.level = LogLevel::kTrace, .format = LogFormat::kJson});
  auto& sinks = spdlog::default_logger()->sinks();
  sinks.clear();
  sinks.push_back(std::make_shared<CheckingSink>());
}

ConnectionSetup SetupFromByte(uint8_t byte) {
  // Bits 0-2: the read size; bit 3: a small message size limit (the skip
  // path); bit 4: no frame limit (max_message_size / frame cost instead);
  // bit 5: the owner refuses the peer's identity; bit 6: a bus's XPUB
  // frontend rather than the broker's ROUTER.
  static constexpr std::array<size_t, 8> kChunks = {1, 2, 3, 7, 16, 64, 511, 65536};
  ConnectionSetup setup;
  setup.read_chunk = kChunks[byte & 7];
  setup.options.max_message_size = (byte & 0x08) != 0 ? 100 : size_t{1} << 20;
  setup.options.max_message_frames = (byte & 0x10) != 0 ? 0 : 4;
  setup.refuse_identity = (byte & 0x20) != 0;
  if ((byte & 0x40) != 0) {
    setup.zmtp.socket_type = "XPUB";
    setup.zmtp.peer_types = {"SUB", "XSUB"};
  }
  return setup;
}

ConnectionHarness::ConnectionHarness(const ConnectionSetup& setup,
                                     std::unique_ptr<transport::ZmtpMechanism> mechanism)
    : setup_(setup) {
  setup_.zmtp.on_subscription = [this](std::string_view /*id*/, bool subscribe,
                                       std::string_view topic) {
    OnSubscription(subscribe, topic);
  };
  context_.options = &setup_.options;
  context_.zmtp = &setup_.zmtp;
  context_.now = ZmtpConnection::Clock::now();
  // Large frames leave the receive buffer and enter the output by
  // reference, as in the broker.
  context_.budget = transport::BufferBudget::Make({});
  int fds[2];
  Check(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0,
        "socketpair");
  peer_fd_ = fds[1];
  zmq_msg_init(&frame_);
  connection_ = std::make_unique<ZmtpConnection>(fds[0], "fuzz-peer", "", &context_, this,
                                                 std::move(mechanism));
  connection_->Start();
  Flush();
}

ConnectionHarness::~ConnectionHarness() {
  connection_.reset();
  zmq_msg_close(&frame_);
  if (peer_fd_ >= 0) ::close(peer_fd_);
}

void ConnectionHarness::Send(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(peer_fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    // The connection closed its end: what is left has nobody to read it.
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) return;
    Check(n > 0, "the fuzz input does not fit in the socket buffer (lower -max_len)");
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

void ConnectionHarness::EndInput() { ::shutdown(peer_fd_, SHUT_WR); }

void ConnectionHarness::Pump() {
  if (connection_->closed()) return;
  // Everything sent is already in the socket: each ReadSome() takes a whole
  // chunk, and one more read sees the end of the stream if it came.
  int pending = 0;
  Check(::ioctl(connection_->fd(), FIONREAD, &pending) == 0, "FIONREAD");
  const size_t reads = static_cast<size_t>(pending) / setup_.read_chunk + 1;
  for (size_t i = 0; i < reads && !connection_->closed(); ++i) {
    const bool open = connection_->ReadSome(setup_.read_chunk);
    TakeMessages();
    if (!connection_->closed() && connection_->pending_out() > 0) Flush();
    if (!open) break;
  }
  // What the connection wrote by itself (an ERROR before a close).
  DrainPeer();
}

void ConnectionHarness::TakeMessages() {
  // As ZmtpRouter::Receive: a whole message, frame by frame, then the next.
  while (!connection_->closed() && connection_->Advance()) {
    bool more = true;
    while (more) {
      connection_->TakeFrame(&frame_, &more);
      connection_->QueueFrame(&frame_, more);  // takes it
    }
  }
}

void ConnectionHarness::Flush() {
  connection_->Write();
  DrainPeer();
}

void ConnectionHarness::DrainPeer() {
  char buffer[16384];
  while (true) {
    const ssize_t n = ::recv(peer_fd_, buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    if (output_.size() < kMaxKeptOutput) output_.append(buffer, static_cast<size_t>(n));
  }
}

void ConnectionHarness::Finish() {
  if (!connection_->closed()) {
    CloseConnection(connection_.get(), CloseReason::kShutdown, "the fuzz input ended");
  }
  Check(context_.buffered == 0, "bytes left in the socket's tally after Shutdown");
  Check(context_.budget->shared_bytes() == 0, "receive buffers still held after Shutdown");
  Check(context_.budget->announced_bytes() == 0, "announced room still held after Shutdown");
}

bool ConnectionHarness::OnHandshakeDone(ZmtpConnection* connection, std::string_view identity) {
  // As ZmtpRouter::AssignRoutingId: ids starting with a zero byte are
  // libzmq's own; a taken one is refused with ERROR.
  if (!identity.empty() && identity.front() == '\0') {
    CloseConnection(connection, CloseReason::kHandshakeFailed, "identity starts with a zero byte");
    return false;
  }
  if (setup_.refuse_identity) {
    connection->SendError("duplicate identity");
    if (!connection->closed()) {
      CloseConnection(connection, CloseReason::kDuplicateIdentity, "duplicate identity");
    }
    return false;
  }
  connection->set_id(identity.empty() ? std::string("\0fuzz", 5) : std::string(identity));
  return true;
}

void ConnectionHarness::OnOutputQueued(ZmtpConnection* /*connection*/) {}

void ConnectionHarness::CloseConnection(ZmtpConnection* connection, CloseReason /*reason*/,
                                        const char* why) {
  Check(why != nullptr, "a close without a reason");
  if (connection->closed()) return;
  connection->mark_closed();
  connection->Shutdown();
}

void ConnectionHarness::OnSubscription(bool subscribe, std::string_view topic) {
  // As Bus::OnSubscription for one subscriber (slot 0).
  bool inactive = false;
  if (!subscribe) {
    auto it = topics_.find(topic);
    if (it == topics_.end()) return;
    Check(trie_.Remove(topic, 0, &inactive), "CANCEL of a held topic not found in the trie");
    Check(inactive == (it->second == 1), "CANCEL: inactive disagrees with the count");
    if (--it->second == 0) topics_.erase(it);
    return;
  }
  auto [it, added] = topics_.try_emplace(std::string(topic), 0);
  Check(trie_.Add(topic, 0) == added, "SUBSCRIBE: new-prefix disagrees with the count");
  ++it->second;
  Check(trie_.Count(topic, 0) == it->second, "SUBSCRIBE: count disagrees");
}

}  // namespace plantd::fuzz

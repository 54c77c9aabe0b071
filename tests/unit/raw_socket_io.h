// Blocking helpers for unit tests that play one end of a ZMTP connection by
// hand over a plain TCP socket: wait, read and write exactly, one frame.
// Every wait is bounded by a deadline.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "transport/zmtp_framing.h"

namespace plantd::test {

// How long a read waits unless told otherwise.
inline constexpr std::chrono::milliseconds kRawReadWait{5000};

// Waits for `fd` to be readable until `deadline`.
inline bool WaitReadable(int fd, std::chrono::steady_clock::time_point deadline) {
  const auto left =
      std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return false;
  pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
  return ::poll(&p, 1, static_cast<int>(left.count())) == 1;
}

inline bool ReadExactly(int fd, void* data, size_t size,
                        std::chrono::milliseconds timeout = kRawReadWait) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto* bytes = static_cast<char*>(data);
  while (size > 0) {
    if (!WaitReadable(fd, deadline)) return false;
    const ssize_t n = ::read(fd, bytes, size);
    if (n <= 0) return false;
    bytes += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// MSG_NOSIGNAL: the peer may close on us mid-write (that is the point of
// some tests), which must not kill the test binary with SIGPIPE.
inline bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

struct RawFrame {
  transport::zmtp::FrameHeader header;
  std::string body;
};

// Reads one whole frame (up to 16 MiB of body); false on a timeout, a
// malformed header or a closed socket.
inline bool ReadFrame(int fd, RawFrame* frame, std::chrono::milliseconds timeout = kRawReadWait) {
  namespace zmtp = transport::zmtp;
  uint8_t header[zmtp::kMaxFrameHeaderSize];
  if (!ReadExactly(fd, header, 2, timeout)) return false;
  zmtp::HeaderParse parse = zmtp::ParseFrameHeader(header, 2, &frame->header);
  if (parse == zmtp::HeaderParse::kIncomplete) {
    if (!ReadExactly(fd, header + 2, 7, timeout)) return false;
    parse = zmtp::ParseFrameHeader(header, 9, &frame->header);
  }
  if (parse != zmtp::HeaderParse::kOk || frame->header.size > (1u << 24)) return false;
  frame->body.resize(frame->header.size);
  return frame->body.empty() || ReadExactly(fd, frame->body.data(), frame->body.size(), timeout);
}

}  // namespace plantd::test

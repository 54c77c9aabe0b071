#include "client/frames.h"

#include <poll.h>

#include <algorithm>
#include <cstdint>

namespace plantd::client {

using std::chrono::milliseconds;

int Poll(zmq::pollitem_t* items, size_t count, milliseconds timeout) {
  constexpr size_t kDirect = 16;
  bool direct = count <= kDirect;
  for (size_t i = 0; direct && i < count; ++i) direct = items[i].socket == nullptr;
  if (!direct) {
    const int rc = zmq_poll(items, static_cast<int>(count), static_cast<long>(timeout.count()));
    return rc < 0 ? 0 : rc;
  }
  pollfd fds[kDirect];
  for (size_t i = 0; i < count; ++i) {
    fds[i] = {items[i].fd,
              static_cast<short>((items[i].events & ZMQ_POLLIN ? POLLIN : 0) |
                                 (items[i].events & ZMQ_POLLOUT ? POLLOUT : 0)),
              0};
  }
  const int rc =
      ::poll(fds, count, static_cast<int>(std::min<int64_t>(timeout.count(), INT32_MAX)));
  for (size_t i = 0; i < count; ++i) {
    const short r = rc > 0 ? fds[i].revents : 0;
    items[i].revents =
        static_cast<short>((r & POLLIN ? ZMQ_POLLIN : 0) | (r & POLLOUT ? ZMQ_POLLOUT : 0) |
                           (r & (POLLERR | POLLHUP | POLLNVAL) ? ZMQ_POLLERR : 0));
  }
  return rc < 0 ? 0 : rc;
}

}  // namespace plantd::client

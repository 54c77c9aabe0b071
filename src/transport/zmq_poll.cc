#include "transport/zmq_poll.h"

#include <poll.h>

#include <algorithm>
#include <cstdint>

namespace plantd::transport {

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
    fds[i] = {items[i].fd, PollEventsFromZmq(items[i].events), 0};
  }
  const int rc =
      ::poll(fds, count, static_cast<int>(std::min<int64_t>(timeout.count(), INT32_MAX)));
  for (size_t i = 0; i < count; ++i) {
    items[i].revents = rc > 0 ? ZmqEventsFromPoll(fds[i].revents) : 0;
  }
  return rc < 0 ? 0 : rc;
}

short ZmqEventsFromPoll(short events) {
  short out = 0;
  if (events & POLLIN) out |= ZMQ_POLLIN;
  if (events & POLLOUT) out |= ZMQ_POLLOUT;
  if (events & (POLLERR | POLLHUP | POLLNVAL)) out |= ZMQ_POLLERR;
  return out;
}

short PollEventsFromZmq(short events) {
  short out = 0;
  if (events & ZMQ_POLLIN) out |= POLLIN;
  if (events & ZMQ_POLLOUT) out |= POLLOUT;
  if (events & ZMQ_POLLERR) out |= POLLERR;
  return out;
}

}  // namespace plantd::transport

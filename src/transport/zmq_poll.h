// Waiting on a mix of libzmq sockets and plain descriptors, for libplantd
// and for the broker's buses alike.
#pragma once

#include <chrono>
#include <cstddef>
#include <zmq.hpp>

namespace plantd::transport {

// zmq_poll that treats an interrupting signal (EINTR) as a wake-up with
// nothing ready, instead of the exception cppzmq's poll would throw: a
// program's own signal handlers must not terminate it inside the library.
//
// Items that are all plain descriptors (the native engine's) go straight to
// poll(): zmq_poll makes a zero-timeout pass before every wait, one more
// system call per message on a request-reply path or a quiet bus.
int Poll(zmq::pollitem_t* items, size_t count, std::chrono::milliseconds timeout);

// zmq_poll has its own event bits for plain descriptors: poll()'s POLLIN
// and POLLOUT to ZMQ_POLLIN and ZMQ_POLLOUT (POLLERR, POLLHUP and POLLNVAL
// all to ZMQ_POLLERR), and back.
short ZmqEventsFromPoll(short events);
short PollEventsFromZmq(short events);

}  // namespace plantd::transport

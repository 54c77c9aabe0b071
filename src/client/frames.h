// Frame helpers shared by libplantd's clients and worker.
#pragma once

#include <chrono>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>
#include <zmq.hpp>

#include "client/curve_socket.h"
#include "plantd/curve.h"
#include "plantd/status.h"
#include "transport/zmq_poll.h"

namespace plantd::client {

using Frames = std::vector<std::string>;

// Sends `head` then `body` as one message. Returns false if the socket
// refused it (EAGAIN with dontwait) or failed; libplantd's public API
// returns errors as values, so cppzmq's exceptions stop here.
inline bool SendFrames(zmq::socket_t& socket, std::initializer_list<std::string_view> head,
                       const Frames& body, bool dontwait = false) {
  const size_t total = head.size() + body.size();
  size_t i = 0;
  auto send = [&](std::string_view frame) {
    ++i;
    auto flags = i < total ? zmq::send_flags::sndmore : zmq::send_flags::none;
    if (dontwait && i == 1) flags = flags | zmq::send_flags::dontwait;
    return socket.send(zmq::buffer(frame.data(), frame.size()), flags).has_value();
  };
  try {
    for (std::string_view f : head) {
      if (!send(f)) return false;
    }
    for (const std::string& f : body) {
      if (!send(f)) return false;
    }
  } catch (const zmq::error_t&) {
    return false;
  }
  return true;
}

// Receives one whole message (the socket must be readable); empty when
// there is none or the socket failed.
inline Frames RecvFrames(zmq::socket_t& socket) {
  Frames frames;
  zmq::message_t m;
  try {
    do {
      if (!socket.recv(m, zmq::recv_flags::dontwait)) break;
      frames.push_back(m.to_string());
    } while (m.more());
  } catch (const zmq::error_t&) {
    frames.clear();
  }
  return frames;
}

// Connects `socket` to `endpoint`, with CURVE when `curve` is enabled. A
// malformed endpoint, an unknown transport or a malformed key is the
// caller's mistake and comes back as kInvalidArgument naming it; an
// unreachable host is not an error here (libzmq connects in the
// background), nor a broker that refuses the key (libzmq retries).
inline Status Connect(zmq::socket_t& socket, const std::string& endpoint,
                      const CurveOptions& curve) {
  Status keys = ApplyCurve(socket, curve);
  if (!keys.ok()) return keys;
  try {
    socket.connect(endpoint);
  } catch (const zmq::error_t& e) {
    return Status::InvalidArgument("cannot connect to '" + endpoint + "': " + e.what());
  }
  return Status::Ok();
}

// Waiting on libzmq sockets and the native engine's descriptors together.
using transport::Poll;
using transport::PollEventsFromZmq;
using transport::ZmqEventsFromPoll;

inline std::string Byte(int b) { return std::string(1, static_cast<char>(b)); }

}  // namespace plantd::client

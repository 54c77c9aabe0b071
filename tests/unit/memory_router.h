// An in-memory ROUTER socket for unit tests of the broker core: the test
// connects peers by routing id, delivers their messages, and reads what the
// core sent each peer, with no sockets and no threads. It keeps the
// RouterSocket contract the core relies on: messages arrive whole, a send to
// an unknown peer fails with EHOSTUNREACH and queues nothing, and closed
// connections are reported through TakeDisconnected.
#pragma once

#include <zmq.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "transport/router_socket.h"

namespace plantd::test {

using Frames = std::vector<std::string>;

class MemoryRouter final : public transport::RouterSocket {
 public:
  // The test side.
  void Connect(const std::string& id) { peers_.insert(id); }
  // The connection closes: the core hears of it on its next turn.
  void Disconnect(const std::string& id) {
    if (peers_.erase(id) > 0) closed_.push_back(id);
  }
  // A message from `id` (which must be connected), as the core will read it.
  void Deliver(const std::string& id, const Frames& frames) {
    Frames message{id};
    message.insert(message.end(), frames.begin(), frames.end());
    inbound_.push_back(std::move(message));
  }
  // What the core sent to `id` since the last call, oldest first.
  std::vector<Frames> TakeSent(const std::string& id) {
    std::vector<Frames> out;
    auto it = sent_.find(id);
    if (it != sent_.end()) out.swap(it->second);
    return out;
  }
  size_t waiting() const { return inbound_.size(); }

  // RouterSocket.
  Status Bind(const std::string& address) override {
    bound_.push_back(address);
    return Status::Ok();
  }
  void Wait(std::chrono::milliseconds) override {}  // time moves with the test's clock
  void SetWakeFd(int) override {}
  bool Receive(zmq_msg_t* msg, bool* more) override {
    if (inbound_.empty()) return false;
    Frames& message = inbound_.front();
    const std::string& frame = message[next_frame_];
    // As zmq_msg_recv: whatever `msg` held is released first.
    zmq_msg_close(msg);
    zmq_msg_init_size(msg, frame.size());
    if (!frame.empty()) std::memcpy(zmq_msg_data(msg), frame.data(), frame.size());
    ++next_frame_;
    *more = next_frame_ < message.size();
    if (!*more) {
      inbound_.pop_front();
      next_frame_ = 0;
    }
    return true;
  }
  bool Send(zmq_msg_t* msg, bool more) override {
    std::string frame(static_cast<const char*>(zmq_msg_data(msg)), zmq_msg_size(msg));
    if (outbound_.empty()) {  // the routing id
      if (peers_.count(frame) == 0) {
        errno = EHOSTUNREACH;
        return false;
      }
    }
    outbound_.push_back(std::move(frame));
    // As zmq_msg_send: the message is taken and `msg` left empty and valid.
    zmq_msg_close(msg);
    zmq_msg_init(msg);
    if (!more) {
      const std::string to = outbound_.front();
      sent_[to].emplace_back(outbound_.begin() + 1, outbound_.end());
      outbound_.clear();
    }
    return true;
  }
  void TakeDisconnected(std::vector<std::string>* routing_ids) override {
    for (std::string& id : closed_) routing_ids->push_back(std::move(id));
    closed_.clear();
  }
  void Close(std::chrono::milliseconds) override {}
  Stats stats() const override {
    return {.connections = static_cast<int64_t>(peers_.size()), .refused = 0};
  }

 private:
  std::set<std::string> peers_;
  std::vector<std::string> closed_;
  std::deque<Frames> inbound_;
  size_t next_frame_ = 0;
  Frames outbound_;  // the message being sent, routing id first
  std::map<std::string, std::vector<Frames>> sent_;
  std::vector<std::string> bound_;
};

}  // namespace plantd::test

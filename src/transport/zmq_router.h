// RouterSocket over libzmq's ROUTER (ROUTER_MANDATORY; ROUTER_HANDOVER off).
#pragma once

#include "transport/router_socket.h"

namespace plantd::transport {

class ZmqRouter final : public RouterSocket {
 public:
  ZmqRouter(zmq::context_t& context, const RouterOptions& options);

  Status Bind(const std::string& address) override;
  void Wait(std::chrono::milliseconds timeout) override;
  void SetWakeFd(int fd) override { wake_fd_ = fd; }
  bool Receive(zmq_msg_t* msg, bool* more) override;
  bool Send(zmq_msg_t* msg, bool more) override;
  void Close(std::chrono::milliseconds linger) override;
  std::string_view PeerName(std::string_view routing_id) const override;

 private:
  zmq::socket_t socket_;
  int wake_fd_ = -1;
  // With CURVE: who sent the message being received (its routing id and
  // the User-Id our ZAP handler gave its key), and which frame comes next.
  bool curve_ = false;
  size_t next_frame_ = 0;
  std::string sender_id_;
  std::string sender_name_;
};

}  // namespace plantd::transport

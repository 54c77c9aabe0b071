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

 private:
  zmq::socket_t socket_;
  int wake_fd_ = -1;
};

}  // namespace plantd::transport

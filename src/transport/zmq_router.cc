#include "transport/zmq_router.h"

#include "transport/server_security.h"
#include "transport/zmtp_router.h"

namespace plantd::transport {

ZmqRouter::ZmqRouter(zmq::context_t& context, const RouterOptions& options)
    : socket_(context, zmq::socket_type::router) {
  // Sending to an unknown peer is an error the core acts on, not a silent drop.
  socket_.set(zmq::sockopt::router_mandatory, 1);
  // No handover: a second connection announcing a routing id in use does not
  // take it (libzmq then ignores the newcomer's messages); otherwise anyone
  // who learnt a worker's id could receive its requests. Off is libzmq's
  // default; set it anyway so that nobody turns it on by accident.
  socket_.set(zmq::sockopt::router_handover, 0);
  socket_.set(zmq::sockopt::sndhwm, options.send_hwm);
  socket_.set(zmq::sockopt::rcvhwm, options.recv_hwm);
  socket_.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(options.max_message_size));
  if (options.security && options.security->curve()) {
    // libzmq does the CURVE handshake and asks the process's ZAP handler
    // (transport/zap_handler.h, started by BrokerApp before this binds)
    // whether the client's key may connect.
    socket_.set(zmq::sockopt::curve_server, 1);
    socket_.set(zmq::sockopt::curve_secretkey, options.security->secret_key());
    socket_.set(zmq::sockopt::zap_domain, kZapDomain);
    curve_ = true;
  }
}

Status ZmqRouter::Bind(const std::string& address) {
  try {
    socket_.bind(address);
  } catch (const zmq::error_t& e) {
    return Status::Error(e.what());
  }
  return Status::Ok();
}

void ZmqRouter::Wait(std::chrono::milliseconds timeout) {
  zmq::pollitem_t items[2] = {{socket_.handle(), 0, ZMQ_POLLIN, 0},
                              {nullptr, wake_fd_, ZMQ_POLLIN, 0}};
  zmq::poll(items, wake_fd_ >= 0 ? 2 : 1, timeout);
}

bool ZmqRouter::Receive(zmq_msg_t* msg, bool* more) {
  if (zmq_msg_recv(msg, socket_.handle(), ZMQ_DONTWAIT) < 0) return false;
  *more = zmq_msg_more(msg) != 0;
  if (curve_) {
    // The routing id frame is made by the ROUTER; the frames after it came
    // off the wire and carry the connection's metadata.
    if (next_frame_ == 0) {
      sender_id_.assign(static_cast<const char*>(zmq_msg_data(msg)), zmq_msg_size(msg));
      sender_name_.clear();
    } else if (next_frame_ == 1) {
      const char* user = zmq_msg_gets(msg, "User-Id");
      if (user != nullptr) sender_name_.assign(user);
    }
    next_frame_ = *more ? next_frame_ + 1 : 0;
  }
  return true;
}

std::string_view ZmqRouter::PeerName(std::string_view routing_id) const {
  return routing_id == sender_id_ ? std::string_view(sender_name_) : std::string_view();
}

bool ZmqRouter::Send(zmq_msg_t* msg, bool more) {
  return zmq_msg_send(msg, socket_.handle(), ZMQ_DONTWAIT | (more ? ZMQ_SNDMORE : 0)) >= 0;
}

void ZmqRouter::Close(std::chrono::milliseconds linger) {
  socket_.set(zmq::sockopt::linger, static_cast<int>(linger.count()));
  socket_.close();
}

std::unique_ptr<RouterSocket> MakeRouterSocket(RouterKind kind, zmq::context_t& context,
                                               const RouterOptions& options) {
  if (kind == RouterKind::kZmq) return std::make_unique<ZmqRouter>(context, options);
  return std::make_unique<ZmtpRouter>(options);
}

}  // namespace plantd::transport

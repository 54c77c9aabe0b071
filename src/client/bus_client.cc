#include <zmq.hpp>

#include "client/frames.h"
#include "plantd/bus/bus.h"

namespace plantd::bus {

struct Publisher::Impl {
  zmq::context_t context{1};
  zmq::socket_t socket{context, zmq::socket_type::pub};
  Status status;  // not ok: every Publish returns it
};

Publisher::Publisher(const std::string& endpoint, const PublisherOptions& options)
    : impl_(new Impl) {
  if (options.send_hwm < 0) {
    impl_->status = Status::InvalidArgument("send_hwm must not be negative");
    return;
  }
  impl_->socket.set(zmq::sockopt::linger, 1000);
  impl_->socket.set(zmq::sockopt::sndhwm, options.send_hwm);
  if (options.block) impl_->socket.set(zmq::sockopt::xpub_nodrop, 1);
  impl_->status = client::Connect(impl_->socket, endpoint, options.curve);
}

Publisher::~Publisher() = default;

Status Publisher::status() const { return impl_->status; }

Status Publisher::Publish(const std::string& topic, const std::vector<std::string>& frames) {
  if (!impl_->status.ok()) return impl_->status;
  if (!client::SendFrames(impl_->socket, {topic}, frames)) {
    return Status::Unavailable("the bus did not take the message");
  }
  return Status::Ok();
}

struct Subscriber::Impl {
  zmq::context_t context{1};
  zmq::socket_t socket{context, zmq::socket_type::sub};
  Status status;  // not ok: Receive returns nothing
};

Subscriber::Subscriber(const std::string& endpoint, const std::vector<std::string>& topics,
                       const SubscriberOptions& options)
    : impl_(new Impl) {
  if (options.receive_hwm < 0) {
    impl_->status = Status::InvalidArgument("receive_hwm must not be negative");
    return;
  }
  impl_->socket.set(zmq::sockopt::linger, 0);
  impl_->socket.set(zmq::sockopt::rcvhwm, options.receive_hwm);
  for (const std::string& t : topics) impl_->socket.set(zmq::sockopt::subscribe, t);
  impl_->status = client::Connect(impl_->socket, endpoint, options.curve);
}

Subscriber::~Subscriber() = default;

Status Subscriber::status() const { return impl_->status; }

Status Subscriber::Subscribe(const std::string& topic_prefix) {
  if (!impl_->status.ok()) return impl_->status;
  impl_->socket.set(zmq::sockopt::subscribe, topic_prefix);
  return Status::Ok();
}

std::optional<Message> Subscriber::Receive(std::chrono::milliseconds timeout) {
  if (!impl_->status.ok()) return std::nullopt;
  zmq::pollitem_t item{impl_->socket.handle(), 0, ZMQ_POLLIN, 0};
  if (client::Poll(&item, 1, timeout) == 0) return std::nullopt;
  client::Frames f = client::RecvFrames(impl_->socket);
  if (f.empty()) return std::nullopt;
  Message m;
  m.topic = std::move(f[0]);
  m.frames.assign(std::make_move_iterator(f.begin() + 1), std::make_move_iterator(f.end()));
  return m;
}

}  // namespace plantd::bus

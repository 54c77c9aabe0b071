#include <zmq.hpp>

#include "client/frames.h"
#include "plantd/bus/bus.h"

namespace plantd::bus {

struct Publisher::Impl {
  zmq::context_t context{1};
  zmq::socket_t socket{context, zmq::socket_type::pub};
};

Publisher::Publisher(const std::string& endpoint, PublisherOptions options) : impl_(new Impl) {
  impl_->socket.set(zmq::sockopt::linger, 1000);
  impl_->socket.set(zmq::sockopt::sndhwm, options.send_hwm);
  if (options.block) impl_->socket.set(zmq::sockopt::xpub_nodrop, 1);
  impl_->socket.connect(endpoint);
}

Publisher::~Publisher() = default;

Status Publisher::Publish(const std::string& topic, const std::vector<std::string>& frames) {
  if (!client::SendFrames(impl_->socket, {topic}, frames)) {
    return Status::Unavailable("the bus did not take the message");
  }
  return Status::Ok();
}

struct Subscriber::Impl {
  zmq::context_t context{1};
  zmq::socket_t socket{context, zmq::socket_type::sub};
};

Subscriber::Subscriber(const std::string& endpoint, const std::vector<std::string>& topics)
    : impl_(new Impl) {
  impl_->socket.set(zmq::sockopt::linger, 0);
  impl_->socket.set(zmq::sockopt::rcvhwm, 100000);
  for (const std::string& t : topics) impl_->socket.set(zmq::sockopt::subscribe, t);
  impl_->socket.connect(endpoint);
}

Subscriber::~Subscriber() = default;

void Subscriber::Subscribe(const std::string& topic_prefix) {
  impl_->socket.set(zmq::sockopt::subscribe, topic_prefix);
}

std::optional<Message> Subscriber::Receive(std::chrono::milliseconds timeout) {
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

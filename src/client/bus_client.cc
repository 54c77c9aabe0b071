#include <poll.h>

#include <algorithm>
#include <zmq.hpp>

#include "client/frames.h"
#include "client/native_connection.h"
#include "client/native_publisher.h"
#include "plantd/bus/bus.h"

namespace plantd::bus {
namespace {

// A libzmq high-water mark (checked not negative) as the native engine's
// limit: libzmq's 0 is "no limit".
size_t NativeLimit(int hwm) { return hwm == 0 ? size_t{1} << 40 : static_cast<size_t>(hwm); }

}  // namespace

struct Publisher::Impl {
  Status status;  // not ok: every Publish returns it
  // One of the two engines.
  std::unique_ptr<client::NativePublisher> native;
  std::unique_ptr<zmq::context_t> context;
  std::unique_ptr<zmq::socket_t> socket;
};

Publisher::Publisher(const std::string& endpoint, const PublisherOptions& options)
    : impl_(new Impl) {
  if (options.send_hwm < 0) {
    impl_->status = Status::InvalidArgument("send_hwm must not be negative");
    return;
  }
  auto engine = client::ChooseEngine({endpoint}, options.engine, options.curve);
  if (!engine.ok()) {
    impl_->status = engine.status();
    return;
  }
  if (engine.value() == Engine::kNative) {
    client::NativePublisher::Options o;
    o.endpoint = endpoint;
    o.block = options.block;
    o.max_queued_messages = NativeLimit(options.send_hwm);
    o.max_delay = options.max_batch_delay;
    auto native = client::NativePublisher::Open(std::move(o));
    if (!native.ok()) {
      impl_->status = native.status();
      return;
    }
    impl_->native = std::move(native.value());
    return;
  }
  impl_->context = std::make_unique<zmq::context_t>(1);
  impl_->socket = std::make_unique<zmq::socket_t>(*impl_->context, zmq::socket_type::pub);
  impl_->socket->set(zmq::sockopt::linger, 1000);
  impl_->socket->set(zmq::sockopt::sndhwm, options.send_hwm);
  if (options.block) impl_->socket->set(zmq::sockopt::xpub_nodrop, 1);
  impl_->status = client::Connect(*impl_->socket, endpoint, options.curve);
}

Publisher::~Publisher() = default;

Status Publisher::status() const { return impl_->status; }

uint64_t Publisher::dropped() const { return impl_->native ? impl_->native->dropped() : 0; }

Status Publisher::Publish(const std::string& topic, const std::vector<std::string>& frames) {
  if (!impl_->status.ok()) return impl_->status;
  if (impl_->native) return impl_->native->Publish(topic, frames);
  if (!client::SendFrames(*impl_->socket, {topic}, frames)) {
    return Status::Unavailable("the bus did not take the message");
  }
  return Status::Ok();
}

struct Subscriber::Impl {
  Status status;  // not ok: Receive returns nothing
  // One of the two engines.
  std::unique_ptr<client::NativeConnection> native;
  client::NativeConnection::Frames received;  // reused
  std::unique_ptr<zmq::context_t> context;
  std::unique_ptr<zmq::socket_t> socket;

  bool ReceiveNative(Message* out, std::chrono::milliseconds timeout);
};

Subscriber::Subscriber(const std::string& endpoint, const std::vector<std::string>& topics,
                       const SubscriberOptions& options)
    : impl_(new Impl) {
  if (options.receive_hwm < 0) {
    impl_->status = Status::InvalidArgument("receive_hwm must not be negative");
    return;
  }
  auto engine = client::ChooseEngine({endpoint}, options.engine, options.curve);
  if (!engine.ok()) {
    impl_->status = engine.status();
    return;
  }
  if (engine.value() == Engine::kNative) {
    client::NativeConnection::Options o;
    o.endpoint = endpoint;
    o.socket_type = client::NativeConnection::SocketType::kSub;
    o.max_received_messages = NativeLimit(options.receive_hwm);
    auto native = client::NativeConnection::Open(std::move(o));
    if (!native.ok()) {
      impl_->status = native.status();
      return;
    }
    impl_->native = std::move(native.value());
    for (const std::string& t : topics) impl_->native->Subscribe(t);
    return;
  }
  impl_->context = std::make_unique<zmq::context_t>(1);
  impl_->socket = std::make_unique<zmq::socket_t>(*impl_->context, zmq::socket_type::sub);
  impl_->socket->set(zmq::sockopt::linger, 0);
  impl_->socket->set(zmq::sockopt::rcvhwm, options.receive_hwm);
  for (const std::string& t : topics) impl_->socket->set(zmq::sockopt::subscribe, t);
  impl_->status = client::Connect(*impl_->socket, endpoint, options.curve);
}

Subscriber::~Subscriber() = default;

Status Subscriber::status() const { return impl_->status; }

Status Subscriber::Subscribe(const std::string& topic_prefix) {
  if (!impl_->status.ok()) return impl_->status;
  if (impl_->native) {
    if (!impl_->native->Subscribe(topic_prefix)) {
      return Status::Unavailable("the subscriber's output queue is full");
    }
    return Status::Ok();
  }
  impl_->socket->set(zmq::sockopt::subscribe, topic_prefix);
  return Status::Ok();
}

bool Subscriber::Impl::ReceiveNative(Message* out, std::chrono::milliseconds timeout) {
  using Clock = client::NativeConnection::Clock;
  Clock::time_point deadline = Clock::time_point::min();  // read only if it must wait
  while (!native->Recv(&received)) {
    // The first pass always does the I/O that is ready (a zero timeout
    // still connects and reads); later ones wait until the deadline.
    const bool first = deadline == Clock::time_point::min();
    if (first) deadline = Clock::now() + timeout;
    const auto now = Clock::now();
    if (!first && now >= deadline) return false;
    const auto until = std::min(deadline, native->next_timer());
    const auto wait = std::chrono::ceil<std::chrono::milliseconds>(
        std::max<Clock::duration>(until - now, Clock::duration::zero()));
    pollfd item{native->fd(), native->events(), 0};
    const int ready = ::poll(&item, item.fd >= 0 ? 1 : 0, static_cast<int>(wait.count()));
    native->Process(ready > 0 ? item.revents : 0);
  }
  // A message has at least one frame; the first is the topic. Copied into
  // the caller's strings, whose capacity stays for the next message (and
  // `received` goes back to the connection for reuse the same way).
  out->topic.assign(received[0]);
  out->frames.resize(received.size() - 1);
  for (size_t i = 1; i < received.size(); ++i) out->frames[i - 1].assign(received[i]);
  return true;
}

std::optional<Message> Subscriber::Receive(std::chrono::milliseconds timeout) {
  Message m;
  if (!Receive(&m, timeout)) return std::nullopt;
  return m;
}

bool Subscriber::Receive(Message* out, std::chrono::milliseconds timeout) {
  if (!impl_->status.ok()) return false;
  if (impl_->native) return impl_->ReceiveNative(out, timeout);
  zmq::pollitem_t item{impl_->socket->handle(), 0, ZMQ_POLLIN, 0};
  if (client::Poll(&item, 1, timeout) == 0) return false;
  client::Frames f = client::RecvFrames(*impl_->socket);
  if (f.empty()) return false;
  out->topic = std::move(f[0]);
  out->frames.assign(std::make_move_iterator(f.begin() + 1), std::make_move_iterator(f.end()));
  return true;
}

}  // namespace plantd::bus

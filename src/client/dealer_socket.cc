#include "client/dealer_socket.h"

#include <poll.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "client/frames.h"

namespace plantd::client {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

std::atomic<uint64_t> monitors_made{0};

}  // namespace

Result<std::unique_ptr<DealerSocket>> DealerSocket::Open(zmq::context_t& context,
                                                         const std::vector<std::string>& endpoints,
                                                         const DealerOptions& options) {
  if (endpoints.empty()) return Status::InvalidArgument("no broker endpoint given");
  auto engine = ChooseEngine(endpoints, options.engine, options.curve);
  if (!engine.ok()) return engine.status();
  std::unique_ptr<DealerSocket> socket(new DealerSocket);
  if (engine.value() == mdp::Engine::kLibzmq) {
    Status opened = socket->OpenLibzmq(context, endpoints, options);
    if (!opened.ok()) return opened;
    return socket;
  }
  for (const std::string& e : endpoints) {
    NativeConnection::Options o;
    o.endpoint = e;
    o.reconnect = options.reconnect;
    if (options.unbounded_queues) {
      o.max_queued_bytes = size_t{1} << 40;
      o.max_received_messages = size_t{1} << 40;
    }
    auto connection = NativeConnection::Open(std::move(o));
    if (!connection.ok()) return connection.status();
    socket->native_.push_back(std::move(connection.value()));
  }
  return socket;
}

Status DealerSocket::OpenLibzmq(zmq::context_t& context, const std::vector<std::string>& endpoints,
                                const DealerOptions& options) {
  try {
    socket_ = std::make_unique<zmq::socket_t>(context, zmq::socket_type::dealer);
    socket_->set(zmq::sockopt::linger, 0);
    if (options.unbounded_queues) {
      socket_->set(zmq::sockopt::sndhwm, 0);
      socket_->set(zmq::sockopt::rcvhwm, 0);
    }
    if (options.watch_handshake) {
      const std::string events = "inproc://plantd-dealer-events-" + std::to_string(++monitors_made);
      if (zmq_socket_monitor(socket_->handle(), events.c_str(),
                             ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED |
                                 ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                                 ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) != 0) {
        return Status::Error(std::string("cannot watch the broker connection: ") +
                             zmq_strerror(zmq_errno()));
      }
      // Connected before the socket connects, so that no event is missed.
      monitor_ = std::make_unique<zmq::socket_t>(context, zmq::socket_type::pair);
      monitor_->set(zmq::sockopt::linger, 0);
      monitor_->connect(events);
    }
  } catch (const zmq::error_t& e) {  // out of sockets or descriptors
    return Status::Unavailable(std::string("cannot open a socket: ") + e.what());
  }
  for (const std::string& e : endpoints) {
    Status connected = Connect(*socket_, e, options.curve);
    if (!connected.ok()) return connected;
  }
  return Status::Ok();
}

DealerSocket::~DealerSocket() = default;

bool DealerSocket::Send(std::initializer_list<std::string_view> head,
                        const std::vector<std::string>& body, bool dontwait) {
  if (socket_) return SendFrames(*socket_, head, body, dontwait);
  // Round-robin over the connections that are up; when none is, queue on
  // the next in turn (it sends once it connects).
  const size_t n = native_.size();
  size_t pick = next_ % n;
  for (size_t i = 0; i < n; ++i) {
    const size_t k = (next_ + i) % n;
    if (native_[k]->ready()) {
      pick = k;
      break;
    }
  }
  next_ = pick + 1;
  return native_[pick]->Send(head, body);
}

bool DealerSocket::Recv(std::vector<std::string>* out) {
  if (socket_) {
    *out = RecvFrames(*socket_);
    return !out->empty();
  }
  for (auto& c : native_) {
    if (c->Recv(out)) return true;
  }
  return false;
}

bool DealerSocket::closed() const {
  return !native_.empty() &&
         std::all_of(native_.begin(), native_.end(), [](const auto& c) { return c->closed(); });
}

uint64_t DealerSocket::connections() const {
  uint64_t n = 0;
  for (const auto& c : native_) n += c->connections();
  return n;
}

bool DealerSocket::has_message() const {
  return std::any_of(native_.begin(), native_.end(),
                     [](const auto& c) { return c->has_message(); });
}

void DealerSocket::Cork() {
  for (auto& c : native_) c->Cork();
}

void DealerSocket::Uncork() {
  for (auto& c : native_) c->Uncork();
}

size_t DealerSocket::AddPollItems(std::vector<zmq_pollitem_t>* items) const {
  const size_t first = items->size();
  if (socket_) {
    items->push_back({socket_->handle(), 0, ZMQ_POLLIN, 0});
    return first;
  }
  for (const auto& c : native_) {
    // A connection waiting to reconnect has no descriptor: -1 is ignored
    // by poll(), and its timer bounds the wait (BoundWait).
    items->push_back({nullptr, c->fd(), ZmqEventsFromPoll(c->events()), 0});
  }
  return first;
}

void DealerSocket::HandlePollItems(const zmq_pollitem_t* items) {
  if (socket_) return;
  const auto now = Clock::now();
  for (size_t i = 0; i < native_.size(); ++i) {
    NativeConnection& c = *native_[i];
    // The item may be stale (the connection moved on since it was added):
    // only act on a descriptor that is still the connection's.
    const short revents = items[i].fd == c.fd() ? PollEventsFromZmq(items[i].revents) : 0;
    if (revents != 0 || now >= c.next_timer()) c.Process(revents);
  }
}

milliseconds DealerSocket::BoundWait(milliseconds wait) const {
  if (socket_) return wait;
  const auto now = Clock::now();
  for (const auto& c : native_) {
    if (c->has_message()) return milliseconds(0);
    const auto timer = c->next_timer();
    if (timer == Clock::time_point::max()) continue;
    wait =
        std::min(wait, std::chrono::ceil<milliseconds>(std::max(timer - now, Clock::duration(0))));
  }
  return wait;
}

bool DealerSocket::WaitReadable(milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::vector<zmq_pollitem_t> items;
  while (true) {
    for (const auto& c : native_) {
      if (c->has_message()) return true;
    }
    const auto left = std::chrono::ceil<milliseconds>(deadline - Clock::now());
    if (left < milliseconds(0)) return false;
    items.clear();
    AddPollItems(&items);
    const int ready = Poll(items.data(), items.size(), BoundWait(left));
    if (socket_) return ready > 0;
    HandlePollItems(items.data());
  }
}

bool DealerSocket::connected() {
  if (!socket_) {
    return std::any_of(native_.begin(), native_.end(), [&](const auto& c) {
      if (!c->last_error().ok() && c->last_error().code() == Status::Code::kPermissionDenied) {
        handshake_failure_ = c->last_error();
      }
      return c->ready();
    });
  }
  ReadMonitorEvents();
  return zmq_connected_;
}

bool DealerSocket::WaitConnected(milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::vector<zmq_pollitem_t> items;
  while (!connected()) {
    // Rounded up: a timeout never ends before its deadline.
    const auto left = std::chrono::ceil<milliseconds>(deadline - Clock::now());
    if (left <= milliseconds(0)) return false;
    items.clear();
    if (socket_) {
      if (!monitor_) return true;  // nothing to watch with: assume so
      items.push_back({monitor_->handle(), 0, ZMQ_POLLIN, 0});
      Poll(items.data(), items.size(), left);
      continue;
    }
    AddPollItems(&items);
    Poll(items.data(), items.size(), BoundWait(left));
    HandlePollItems(items.data());
  }
  return true;
}

// Applies the connection events that have arrived, without waiting.
void DealerSocket::ReadMonitorEvents() {
  if (!monitor_) return;
  while (true) {
    // An event is [uint16 event, uint32 value][endpoint].
    const std::vector<std::string> event = RecvFrames(*monitor_);
    if (event.empty()) return;
    if (event[0].size() < sizeof(uint16_t)) continue;
    uint16_t id;
    std::memcpy(&id, event[0].data(), sizeof(id));
    uint32_t value = 0;
    if (event[0].size() >= sizeof(id) + sizeof(value)) {
      std::memcpy(&value, event[0].data() + sizeof(id), sizeof(value));
    }
    const std::string where = event.size() > 1 ? event[1] : std::string("the broker");
    if (id == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
      zmq_connected_ = true;
      handshake_failure_ = Status::Ok();
    }
    if (id == ZMQ_EVENT_DISCONNECTED) zmq_connected_ = false;
    // libzmq retries a refused handshake by itself; remembered so that a
    // request that never got through says why instead of "unreachable".
    if (id == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
      handshake_failure_ = Status::PermissionDenied(
          where + " refused this client's CURVE key (ZAP status " + std::to_string(value) +
          "): is its public key in the broker's security.authorized_keys_dir?");
    }
    if (id == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
      handshake_failure_ =
          Status::PermissionDenied("the security handshake with " + where +
                                   " failed (a wrong server key, or CURVE on one side only?)");
    }
  }
}

}  // namespace plantd::client

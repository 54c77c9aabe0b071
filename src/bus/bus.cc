#include "bus/bus.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "config/endpoint.h"
#include "log/log.h"

namespace plantd::bus {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kPollMs = 100;        // bounds how late Stop() is seen
constexpr int kForwardBatch = 512;  // messages per wake-up before polling again
constexpr int kFlushEvery = 64;     // native frontend: messages between writes

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

void Add(std::atomic<uint64_t>& counter, uint64_t n) {
  // One writer: a plain load and store, no locked instruction.
  counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

void Add(std::atomic<int64_t>& counter, int64_t n) {
  counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

// One block-mode wait: the time goes into `blocked_ns` as it passes (so the
// metric grows during a long stall), the log says who holds the bus up once
// it has waited a second, and says so again when the bus moves.
class HoldUp {
 public:
  HoldUp(const std::string& bus, std::atomic<uint64_t>& blocked_ns)
      : bus_(bus), blocked_ns_(blocked_ns), start_(Clock::now()), last_(start_) {}
  HoldUp(const HoldUp&) = delete;
  HoldUp& operator=(const HoldUp&) = delete;

  // Each turn of the wait. `subscriber` is its address, or empty if unknown.
  void Still(std::string_view subscriber) {
    Account();
    if (logged_ || last_ - start_ < std::chrono::seconds(1)) return;
    logged_ = true;
    if (subscriber.empty()) {
      PLANTD_LOG_WARN("bus held up by a slow subscriber", {{"bus", bus_}});
    } else {
      PLANTD_LOG_WARN("bus held up by a slow subscriber",
                      {{"bus", bus_}, {"subscriber", subscriber}});
    }
  }

  ~HoldUp() {
    Account();
    if (logged_) {
      PLANTD_LOG_INFO("bus moving again",
                      {{"bus", bus_},
                       {"waited_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                                         last_ - start_)
                                         .count()}});
    }
  }

 private:
  void Account() {
    const auto now = Clock::now();
    Add(blocked_ns_, static_cast<uint64_t>(
                         std::chrono::duration_cast<std::chrono::nanoseconds>(now - last_).count()));
    last_ = now;
  }

  const std::string& bus_;
  std::atomic<uint64_t>& blocked_ns_;
  const Clock::time_point start_;
  Clock::time_point last_;
  bool logged_ = false;
};

// Binds or connects `socket` per the endpoint's prefix.
Status Attach(zmq::socket_t& socket, const std::string& text, const std::string& bus,
              const char* key) {
  auto ep = ParseEndpoint(text);
  if (!ep.ok()) {
    return Status::Error("bus " + bus + ": " + key + " \"" + text + "\": " +
                         ep.status().message());
  }
  try {
    if (ep.value().bind) {
      socket.bind(ep.value().address);
    } else {
      socket.connect(ep.value().address);
    }
  } catch (const zmq::error_t& e) {
    return Status::Error("cannot " + std::string(ep.value().bind ? "bind " : "connect ") +
                         ep.value().address + " (bus " + bus + ", " + key + "): " + e.what());
  }
  return Status::Ok();
}

}  // namespace

Bus::Bus(zmq::context_t& context, const BusOptions& options)
    : options_(options),
      context_(context),
      backend_(context, zmq::socket_type::xsub),
      frontend_(context, zmq::socket_type::xpub),
      monitor_(context, zmq::socket_type::pair) {
  backend_.set(zmq::sockopt::rcvhwm, options_.recv_hwm);
  backend_.set(zmq::sockopt::linger, 0);
  frontend_.set(zmq::sockopt::sndhwm, options_.send_hwm);
  frontend_.set(zmq::sockopt::linger, 0);
  // Every subscribe and unsubscribe comes through, so subscriptions can be
  // counted and the cache replayed for each new one. Upstream stays exact:
  // the XSUB reference-counts topics and unsubscribes only the last one.
  frontend_.set(zmq::sockopt::xpub_verboser, 1);
  // Refuse (EAGAIN) instead of silently dropping when a subscriber is full:
  // in drop mode that is how losses are counted, in block mode how
  // back-pressure starts.
  frontend_.set(zmq::sockopt::xpub_nodrop, 1);
  frames_.resize(4);
}

Bus::~Bus() { Stop(); }

Status Bus::Open() {
  if (Status s = Attach(backend_, options_.backend, options_.name, "backend"); !s.ok()) return s;
  auto frontend = ParseEndpoint(options_.frontend);
  if (frontend.ok() && frontend.value().bind &&
      frontend.value().transport != Endpoint::Transport::kInproc) {
    if (Status s = OpenNativeFrontend(frontend.value().address); !s.ok()) return s;
  } else if (Status s = Attach(frontend_, options_.frontend, options_.name, "frontend");
             !s.ok()) {
    return s;
  }
  if (!options_.capture.empty()) {
    capture_ = zmq::socket_t(context_, zmq::socket_type::pub);
    capture_.set(zmq::sockopt::linger, 0);
    capture_.set(zmq::sockopt::sndhwm, options_.send_hwm);
    if (Status s = Attach(capture_, options_.capture, options_.name, "capture"); !s.ok()) {
      return s;
    }
  }
  if (!native_) {
    const std::string monitor_address = "inproc://plantd-bus-monitor-" + options_.name;
    zmq_socket_monitor(frontend_.handle(), monitor_address.c_str(),
                       ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED);
    monitor_.connect(monitor_address);
  }
  return Status::Ok();
}

Status Bus::OpenNativeFrontend(const std::string& address) {
  transport::RouterOptions router;
  router.send_hwm = options_.send_hwm;
  router.max_message_size = size_t{64} * 1024;  // subscribers only send subscriptions
  transport::ZmtpOptions zmtp;
  zmtp.socket_type = "XPUB";
  zmtp.peer_types = {"SUB", "XSUB"};
  zmtp.on_peer = [this](std::string_view id, bool connected, std::string_view remote) {
    OnSubscriber(id, connected, remote);
  };
  zmtp.on_subscription = [this](std::string_view id, bool subscribe, std::string_view topic) {
    OnSubscription(id, subscribe, topic);
  };
  native_ = std::make_unique<transport::ZmtpRouter>(router, std::move(zmtp));
  if (Status s = native_->Bind(address); !s.ok()) {
    return Status::Error("cannot bind " + address + " (bus " + options_.name +
                         ", frontend): " + s.message());
  }
  return Status::Ok();
}

void Bus::Start() {
  counters_.last_tick_ns.store(NowNs(), std::memory_order_relaxed);
  thread_ = std::thread([this] { Run(); });
}

void Bus::Stop() {
  stop_.store(true, std::memory_order_relaxed);
  if (thread_.joinable()) thread_.join();
  native_.reset();  // the thread has ended: closing from here is safe
}

void Bus::Run() {
  zmq::pollitem_t items[] = {{backend_.handle(), 0, ZMQ_POLLIN, 0},
                             {native_ ? nullptr : frontend_.handle(),
                              native_ ? native_->fd() : 0, ZMQ_POLLIN, 0},
                             {native_ ? nullptr : monitor_.handle(), native_ ? -1 : 0,
                              ZMQ_POLLIN, 0}};
  const int item_count = native_ ? 2 : 3;
  while (!stop_.load(std::memory_order_relaxed)) {
    zmq::poll(items, item_count, std::chrono::milliseconds(kPollMs));
    // Subscriptions first: a new subscriber's cache replay goes out before
    // newer messages.
    if (native_) {
      native_->Wait(std::chrono::milliseconds(0));
      ReceiveFromSubscribers();
    } else {
      if (items[1].revents & ZMQ_POLLIN) HandleSubscription();
      if (items[2].revents & ZMQ_POLLIN) HandleMonitorEvent();
    }
    if (items[0].revents & ZMQ_POLLIN) {
      for (int n = 0; n < kForwardBatch && !stop_.load(std::memory_order_relaxed); ++n) {
        if (!ForwardMessage()) break;
        // Subscribers start on a batch while the rest is still being read.
        if (native_ && n % kFlushEvery == kFlushEvery - 1) native_->Flush();
      }
    }
    if (native_) native_->Flush();
    counters_.last_tick_ns.store(NowNs(), std::memory_order_relaxed);
  }
  if (!native_) zmq_socket_monitor(frontend_.handle(), nullptr, 0);
}

bool Bus::ForwardMessage() {
  frame_count_ = 0;
  size_t bytes = 0;
  while (true) {
    if (frame_count_ == frames_.size()) frames_.emplace_back();
    zmq::message_t& frame = frames_[frame_count_];
    // Parts of one message arrive together: only the first can be missing.
    if (zmq_msg_recv(frame.handle(), backend_.handle(), ZMQ_DONTWAIT) < 0) return false;
    ++frame_count_;
    bytes += frame.size();
    if (!frame.more()) break;
  }
  Add(counters_.messages_in, 1);
  Add(counters_.bytes_in, bytes);

  if (capture_) CopyToCapture();
  if (options_.last_value_cache) cache_.Store(frames_.data(), frame_count_);

  if (SendToSubscribers()) {
    Add(counters_.messages_out, 1);
    Add(counters_.bytes_out, bytes);
  }
  return true;
}

void Bus::CopyToCapture() {
  // A tap never holds the bus up: a full tap loses the message (counted).
  // Copies share the frames' buffers.
  for (size_t i = 0; i < frame_count_; ++i) {
    zmq_msg_t copy;
    zmq_msg_init(&copy);
    zmq_msg_copy(&copy, frames_[i].handle());
    const int flags = (i == 0 ? ZMQ_DONTWAIT : 0) | (i + 1 < frame_count_ ? ZMQ_SNDMORE : 0);
    if (zmq_msg_send(&copy, capture_.handle(), flags) < 0) {
      zmq_msg_close(&copy);
      Add(counters_.capture_dropped, 1);
      return;
    }
  }
}

bool Bus::SendToSubscribers() {
  if (native_) return SendToNativeSubscribers();
  void* xpub = frontend_.handle();
  auto send_all = [&](int first_flags) -> bool {
    for (size_t i = 0; i < frame_count_; ++i) {
      const int flags = (i == 0 ? first_flags : 0) | (i + 1 < frame_count_ ? ZMQ_SNDMORE : 0);
      if (zmq_msg_send(frames_[i].handle(), xpub, flags) < 0) return false;
    }
    return true;
  };
  if (send_all(ZMQ_DONTWAIT)) return true;
  // Only the first frame can be refused: a subscriber's queue is full.
  if (options_.delivery == BusOptions::Delivery::kDrop) {
    // Deliver to everyone with room; the full subscribers lose this one.
    Add(counters_.dropped, 1);
    frontend_.set(zmq::sockopt::xpub_nodrop, 0);
    const bool sent = send_all(0);
    frontend_.set(zmq::sockopt::xpub_nodrop, 1);
    return sent;
  }
  // Block mode: wait for the slow subscriber, still serving subscriptions.
  // libzmq's XPUB does not say which subscriber is full.
  HoldUp hold_up(options_.name, counters_.blocked_ns);
  zmq::pollitem_t item{frontend_.handle(), 0, ZMQ_POLLIN, 0};
  while (!stop_.load(std::memory_order_relaxed)) {
    if (zmq::poll(&item, 1, std::chrono::milliseconds(1)) > 0) HandleSubscription();
    if (send_all(ZMQ_DONTWAIT)) return true;
    hold_up.Still({});
    counters_.last_tick_ns.store(NowNs(), std::memory_order_relaxed);
  }
  return false;
}

void Bus::HandleSubscription() {
  while (frontend_.get(zmq::sockopt::events) & ZMQ_POLLIN) {
    zmq::message_t msg;
    if (!frontend_.recv(msg, zmq::recv_flags::dontwait)) return;
    const bool more = msg.more();
    const auto* data = static_cast<const unsigned char*>(msg.data());
    const bool is_subscription = !more && msg.size() >= 1 && (data[0] == 0 || data[0] == 1);
    if (is_subscription) {
      const bool subscribe = data[0] == 1;
      Add(counters_.subscriptions, subscribe ? 1 : -1);
      if (subscribe && options_.last_value_cache) {
        // Everyone subscribed to these topics gets the current value again;
        // for state that is harmless, and the new subscriber is served now.
        const std::string_view prefix(reinterpret_cast<const char*>(data) + 1, msg.size() - 1);
        cache_.ForEachMatching(prefix, [&](const std::vector<zmq::message_t>& frames) {
          for (size_t i = 0; i < frames.size(); ++i) {
            zmq::message_t copy;
            zmq_msg_copy(copy.handle(), const_cast<zmq_msg_t*>(frames[i].handle()));
            zmq_msg_send(copy.handle(), frontend_.handle(),
                         i + 1 < frames.size() ? ZMQ_SNDMORE : ZMQ_DONTWAIT);
          }
          Add(counters_.lvc_replayed, 1);
        });
      }
    }
    // Upstream, so publishers filter at the source.
    backend_.send(msg, more ? zmq::send_flags::sndmore : zmq::send_flags::dontwait);
  }
}

void Bus::HandleMonitorEvent() {
  while (true) {
    zmq::message_t event;
    if (!monitor_.recv(event, zmq::recv_flags::dontwait)) return;
    uint16_t id = 0;
    if (event.size() >= sizeof(id)) std::memcpy(&id, event.data(), sizeof(id));
    if (event.more()) {
      zmq::message_t address;
      (void)monitor_.recv(address);
    }
    if (id == ZMQ_EVENT_ACCEPTED || id == ZMQ_EVENT_CONNECTED) {
      Add(counters_.subscribers, 1);
    } else if (id == ZMQ_EVENT_DISCONNECTED) {
      Add(counters_.subscribers, -1);
    }
  }
}

// ---------------------------------------------------------------------------
// The native frontend: one entry per subscriber.

namespace {

bool Matches(const std::vector<std::string>& prefixes, std::string_view topic) {
  for (const std::string& p : prefixes) {
    if (topic.compare(0, p.size(), p) == 0) return true;
  }
  return false;
}

}  // namespace

void Bus::OnSubscriber(std::string_view id, bool connected, std::string_view remote) {
  if (connected) {
    Subscriber& s = subscribers_[std::string(id)];
    s.remote = std::string(remote);
    Add(counters_.subscribers, 1);
    PLANTD_LOG_DEBUG("subscriber connected", {{"bus", options_.name}, {"remote", remote}});
    return;
  }
  auto it = subscribers_.find(id);
  if (it == subscribers_.end()) return;
  // Its subscriptions end with it, upstream too.
  for (const std::string& prefix : it->second.prefixes) SendUpstream(false, prefix);
  Add(counters_.subscriptions, -static_cast<int64_t>(it->second.prefixes.size()));
  Add(counters_.subscribers, -1);
  PLANTD_LOG_DEBUG("subscriber left", {{"bus", options_.name},
                                       {"remote", it->second.remote},
                                       {"dropped", it->second.dropped}});
  subscribers_.erase(it);
}

void Bus::OnSubscription(std::string_view id, bool subscribe, std::string_view topic) {
  auto it = subscribers_.find(id);
  if (it == subscribers_.end()) return;
  std::vector<std::string>& prefixes = it->second.prefixes;
  if (subscribe) {
    prefixes.emplace_back(topic);
    Add(counters_.subscriptions, 1);
  } else {
    auto p = std::find(prefixes.begin(), prefixes.end(), topic);
    if (p == prefixes.end()) return;  // never subscribed: nothing to cancel
    prefixes.erase(p);
    Add(counters_.subscriptions, -1);
  }
  SendUpstream(subscribe, topic);
  if (subscribe && options_.last_value_cache) {
    // Only the new subscriber: the others have these values already.
    cache_.ForEachMatching(topic, [&](const std::vector<zmq::message_t>& frames) {
      if (SendFramesTo(id, frames.data(), frames.size())) Add(counters_.lvc_replayed, 1);
    });
  }
}

void Bus::SendUpstream(bool subscribe, std::string_view topic) {
  zmq::message_t msg(topic.size() + 1);
  auto* data = static_cast<char*>(msg.data());
  data[0] = subscribe ? 1 : 0;
  if (!topic.empty()) std::memcpy(data + 1, topic.data(), topic.size());
  (void)backend_.send(msg, zmq::send_flags::dontwait);
}

void Bus::ReceiveFromSubscribers() {
  zmq::message_t id;
  zmq::message_t body;
  bool more = false;
  while (native_->Receive(id.handle(), &more)) {
    size_t frames = 0;
    bool single = false;
    while (more && native_->Receive(body.handle(), &more)) {
      single = ++frames == 1 && !more;
    }
    // [1|0, topic...]: a subscription from a ZMTP 3.0 peer (libzmq 4.0-4.2).
    // Anything else a subscriber sends has no meaning here.
    const auto* data = static_cast<const unsigned char*>(body.data());
    if (single && body.size() >= 1 && (data[0] == 0 || data[0] == 1)) {
      OnSubscription(id.to_string_view(), data[0] == 1,
                     std::string_view(reinterpret_cast<const char*>(data) + 1, body.size() - 1));
    }
  }
}

bool Bus::SendFramesTo(std::string_view id, const zmq::message_t* frames, size_t count) {
  zmq_msg_t address;
  zmq_msg_init_size(&address, id.size());
  std::memcpy(zmq_msg_data(&address), id.data(), id.size());
  if (!native_->Send(&address, count > 0)) {
    zmq_msg_close(&address);
    return false;
  }
  for (size_t i = 0; i < count; ++i) {
    // Copies share the frame's buffer.
    zmq_msg_t copy;
    zmq_msg_init(&copy);
    zmq_msg_copy(&copy, const_cast<zmq_msg_t*>(frames[i].handle()));
    if (!native_->Send(&copy, i + 1 < count)) zmq_msg_close(&copy);
  }
  return true;
}

bool Bus::SendToNativeSubscribers() {
  const std::string_view topic =
      frame_count_ > 0 ? frames_[0].to_string_view() : std::string_view();
  if (options_.delivery == BusOptions::Delivery::kBlock) {
    // Wait until every subscriber to this topic has room, still serving
    // subscriptions and writing queued output meanwhile.
    auto full_subscriber = [&]() -> const Subscriber* {
      for (const auto& [id, s] : subscribers_) {
        if (Matches(s.prefixes, topic) && !native_->CanSend(id)) return &s;
      }
      return nullptr;
    };
    if (full_subscriber() != nullptr) {
      HoldUp hold_up(options_.name, counters_.blocked_ns);
      while (!stop_.load(std::memory_order_relaxed)) {
        const Subscriber* full = full_subscriber();
        if (full == nullptr) break;
        hold_up.Still(full->remote);
        native_->Wait(std::chrono::milliseconds(1));
        ReceiveFromSubscribers();
        counters_.last_tick_ns.store(NowNs(), std::memory_order_relaxed);
      }
    }
  }
  for (auto& [id, s] : subscribers_) {
    if (!Matches(s.prefixes, topic)) continue;
    if (SendFramesTo(id, frames_.data(), frame_count_)) {
      if (s.behind) {
        s.behind = false;
        PLANTD_LOG_INFO("subscriber caught up",
                        {{"bus", options_.name}, {"subscriber", s.remote}, {"dropped", s.dropped}});
      }
      continue;
    }
    // Its queue is full (drop mode): this subscriber loses this message.
    ++s.dropped;
    Add(counters_.dropped, 1);
    if (!s.behind) {
      s.behind = true;
      PLANTD_LOG_WARN("subscriber too slow: dropping its messages",
                      {{"bus", options_.name},
                       {"subscriber", s.remote},
                       {"send_hwm", options_.send_hwm}});
    }
  }
  return true;
}

}  // namespace plantd::bus

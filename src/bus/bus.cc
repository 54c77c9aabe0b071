#include "bus/bus.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "common/refusal.h"
#include "config/endpoint.h"
#include "log/log.h"
#include "transport/zmq_poll.h"
#include "transport/zmtp_connection.h"

namespace plantd::bus {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kPollMs = 100;        // bounds how late Stop() is seen
constexpr int kForwardBatch = 512;  // messages per wake-up before polling again
constexpr int kFlushEvery = 256;    // native frontend: messages between writes
// Frames of a message sent to subscribers from views (more: one by one).
constexpr size_t kMaxViews = 16;

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
      PLANTD_LOG_INFO(
          "bus moving again",
          {{"bus", bus_},
           {"waited_ms",
            std::chrono::duration_cast<std::chrono::milliseconds>(last_ - start_).count()}});
    }
  }

 private:
  void Account() {
    const auto now = Clock::now();
    Add(blocked_ns_,
        static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(now - last_).count()));
    last_ = now;
  }

  const std::string& bus_;
  std::atomic<uint64_t>& blocked_ns_;
  const Clock::time_point start_;
  Clock::time_point last_;
  bool logged_ = false;
};

// Binds or connects `socket` per the endpoint's prefix. A socket that
// binds asks its peers what `security` says: with CURVE, libzmq does the
// handshake with the broker's keys and asks the process's ZAP handler
// (transport/zap_handler.h) whether the client's key may connect.
Status Attach(zmq::socket_t& socket, const std::string& text, const std::string& bus,
              const char* key, const transport::ServerSecurity* security) {
  auto ep = ParseEndpoint(text);
  if (!ep.ok()) {
    return Status::Error("bus " + bus + ": " + key + " \"" + text + "\": " + ep.status().message());
  }
  try {
    if (ep.value().bind && security != nullptr && security->curve()) {
      socket.set(zmq::sockopt::curve_server, 1);
      socket.set(zmq::sockopt::curve_secretkey, security->secret_key());
      // libzmq 4.3 lets every client in when no ZAP handler answers (its
      // ZMQ_ZAP_ENFORCE_DOMAIN is a draft option): BrokerApp starts the
      // handler before any bus binds.
      socket.set(zmq::sockopt::zap_domain, transport::kZapDomain);
    }
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

Bus::Bus(zmq::context_t& context, const BusOptions& options, const LimitsOptions& limits,
         std::shared_ptr<transport::BufferBudget> budget,
         std::shared_ptr<const transport::ServerSecurity> security)
    : options_(options),
      limits_(limits),
      security_(std::move(security)),
      context_(context),
      backend_(context, zmq::socket_type::xsub),
      frontend_(context, zmq::socket_type::xpub),
      monitor_(context, zmq::socket_type::pair),
      budget_(std::move(budget)) {
  backend_.set(zmq::sockopt::rcvhwm, options_.recv_hwm);
  // Subscriptions to publishers: libzmq drops those past the high-water
  // mark, also when it replays every active prefix to a publisher that
  // (re)connects; at libzmq's 1,000 a publisher would miss most of a busy
  // bus's topics. The caps bound how many prefixes can be active.
  backend_.set(zmq::sockopt::sndhwm,
               static_cast<int>(std::min<size_t>(options_.max_subscriptions, 1u << 30) + 1000));
  backend_.set(zmq::sockopt::linger, 0);
  // libzmq checks each frame against it and disconnects the publisher of a
  // larger one (docs/buses.md); the whole message is checked after receipt.
  backend_.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(options_.max_message_size));
  frontend_.set(zmq::sockopt::sndhwm, options_.send_hwm);
  frontend_.set(zmq::sockopt::linger, 0);
  // Every subscribe and unsubscribe comes through, so subscriptions can be
  // counted, capped and the cache replayed for each new one.
  frontend_.set(zmq::sockopt::xpub_verboser, 1);
  // Refuse (EAGAIN) instead of silently dropping when a subscriber is full:
  // in drop mode that is how losses are counted, in block mode how
  // back-pressure starts.
  frontend_.set(zmq::sockopt::xpub_nodrop, 1);
  frames_.resize(4);
}

Bus::~Bus() { Stop(); }

namespace {

// True when the endpoint binds on tcp:// or ipc://: the native socket serves it.
bool ServedNatively(const std::string& text) {
  auto ep = ParseEndpoint(text);
  return ep.ok() && ep.value().bind && ep.value().transport != Endpoint::Transport::kInproc;
}

}  // namespace

Status Bus::Open() {
  if (ServedNatively(options_.backend)) {
    if (Status s = OpenNativeBackend(ParseEndpoint(options_.backend).value().address); !s.ok()) {
      return s;
    }
  } else if (Status s =
                 Attach(backend_, options_.backend, options_.name, "backend", security_.get());
             !s.ok()) {
    return s;
  }
  // Publishers are known by key only where the backend binds with CURVE
  // (libzmq does no CURVE over inproc): there the access rules apply.
  publishers_have_keys_ = security_ && security_->curve() && ServedNatively(options_.backend);
  if (ServedNatively(options_.frontend)) {
    if (Status s = OpenNativeFrontend(ParseEndpoint(options_.frontend).value().address); !s.ok()) {
      return s;
    }
  } else if (Status s =
                 Attach(frontend_, options_.frontend, options_.name, "frontend", security_.get());
             !s.ok()) {
    return s;
  }
  if (!options_.capture.empty()) {
    capture_ = zmq::socket_t(context_, zmq::socket_type::pub);
    capture_.set(zmq::sockopt::linger, 0);
    capture_.set(zmq::sockopt::sndhwm, options_.send_hwm);
    if (Status s = Attach(capture_, options_.capture, options_.name, "capture", security_.get());
        !s.ok()) {
      return s;
    }
  }
  if (!native_) {
    // libzmq's XPUB: its subscribers are anonymous, one entry holds them all.
    AddSubscriber("", "");
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
  // The byte bound of each subscriber's queue: past it Send() refuses
  // (EAGAIN), which drops (drop mode) or waits (block mode). The connection
  // cap is set above it so that the high-water mark bites first.
  router.send_hwm_bytes = options_.send_hwm_bytes;
  router.max_out_bytes =
      std::max(limits_.max_connection_out_bytes,
               options_.send_hwm_bytes + options_.max_message_size + size_t{64} * 1024);
  // Subscribers only send subscriptions.
  router.max_message_size = std::max(size_t{64} * 1024, options_.max_subscription_size + 1);
  transport::ZmtpOptions zmtp;
  zmtp.socket_type = "XPUB";
  zmtp.peer_types = {"SUB", "XSUB"};
  zmtp.on_peer = [this](std::string_view id, bool connected, std::string_view remote) {
    OnSubscriber(id, connected, remote);
  };
  zmtp.on_subscription = [this](std::string_view id, bool subscribe, std::string_view topic) {
    OnSubscription(id, subscribe, topic);
  };
  return BindNative(std::move(router), std::move(zmtp), address, "frontend", &native_);
}

Status Bus::BindNative(transport::RouterOptions router, transport::ZmtpOptions zmtp,
                       const std::string& address, const char* key,
                       std::unique_ptr<transport::ZmtpRouter>* out) {
  // What both ends share: a peer that reads nothing for write_timeout is
  // closed as a slow consumer, the handshake is bounded, and the buffers
  // and keys are the process's.
  router.write_timeout = limits_.write_timeout;
  router.handshake_timeout = limits_.handshake_timeout;
  router.budget = budget_;
  router.security = security_;
  *out = std::make_unique<transport::ZmtpRouter>(router, std::move(zmtp));
  if (Status s = (*out)->Bind(address); !s.ok()) {
    return Status::Error("cannot bind " + address + " (bus " + options_.name + ", " + key +
                         "): " + s.message());
  }
  return Status::Ok();
}

Status Bus::OpenNativeBackend(const std::string& address) {
  transport::RouterOptions router;
  // Subscriptions to each publisher, every active prefix replayed to one
  // that connects (as libzmq's XSUB does): no message count, which would
  // drop one silently and leave the publisher filtering wrong for good;
  // the connection's byte cap instead, past which a publisher that does
  // not read is closed (counted and logged), reconnects and gets them all
  // again.
  router.send_hwm = 0;
  router.max_out_bytes = limits_.max_connection_out_bytes;
  // A larger message is skipped as it streams in, never held whole, and
  // its publisher keeps its connection (the router records the refusal).
  router.max_message_size = options_.max_message_size;
  // No frame count of its own (libzmq's XSUB had none): frames are bounded
  // by max_message_size, each costing its bookkeeping.
  router.max_message_frames = 0;
  router.on_oversized = [this](std::string_view) { Add(counters_.too_large, 1); };
  transport::ZmtpOptions zmtp;
  zmtp.socket_type = "XSUB";
  zmtp.peer_types = {"PUB", "XPUB"};
  zmtp.on_peer = [this](std::string_view id, bool connected, std::string_view remote) {
    OnPublisher(id, connected, remote);
  };
  return BindNative(std::move(router), std::move(zmtp), address, "backend", &publishers_);
}

void Bus::OnPublisher(std::string_view id, bool connected, std::string_view remote) {
  if (!connected) {
    if (std::erase(publisher_ids_, id) > 0) Add(counters_.publishers, -1);
    PLANTD_LOG_DEBUG("publisher left", {{"bus", options_.name}, {"remote", remote}});
    return;
  }
  publisher_ids_.emplace_back(id);
  Add(counters_.publishers, 1);
  PLANTD_LOG_DEBUG("publisher connected", {{"bus", options_.name}, {"remote", remote}});
  // It filters at the source: it learns every prefix someone holds now.
  trie_.ForEachActive([&](std::string_view prefix) { SendSubscription(id, true, prefix); });
}

void Bus::SendSubscription(std::string_view publisher, bool subscribe, std::string_view prefix) {
  // [1|0, prefix]: the ZMTP 3.0 form, which PUBs of every version take.
  // Refused only when the publisher is past its output cap: it has just
  // been closed (a slow consumer) and gets every prefix when it is back.
  std::string body(1, subscribe ? '\x01' : '\x00');
  body.append(prefix);
  const std::string_view message[] = {body};
  (void)publishers_->SendMessage(publisher, message, 1);
}

std::string Bus::PublisherAddress() const {
  if (publishers_) return publishers_->RemoteAddress(publisher_.to_string_view());
  const char* from = zmq_msg_gets(frames_[0].handle(), "Peer-Address");  // TCP only
  return from != nullptr ? from : "";
}

std::string_view Bus::PublisherName() const {
  if (publishers_) return publishers_->PeerName(publisher_.to_string_view());
  const char* user = zmq_msg_gets(frames_[0].handle(), "User-Id");
  return user != nullptr ? user : "";
}

void Bus::Start() {
  counters_.last_tick_ns.store(NowNs(), std::memory_order_relaxed);
  thread_ = std::thread([this] { Run(); });
}

void Bus::Stop() {
  stop_.store(true, std::memory_order_relaxed);
  if (thread_.joinable()) thread_.join();
  // The thread has ended: closing from here is safe.
  native_.reset();
  publishers_.reset();
}

void Bus::Run() {
  zmq::pollitem_t items[] = {
      {publishers_ ? nullptr : backend_.handle(), publishers_ ? publishers_->fd() : 0, ZMQ_POLLIN,
       0},
      {native_ ? nullptr : frontend_.handle(), native_ ? native_->fd() : 0, ZMQ_POLLIN, 0},
      {native_ ? nullptr : monitor_.handle(), native_ ? -1 : 0, ZMQ_POLLIN, 0}};
  const size_t item_count = native_ ? 2 : 3;
  bool backlog = false;  // messages left from the last turn: do not sleep
  while (!stop_.load(std::memory_order_relaxed)) {
    // poll() itself when both ends are native (transport/zmq_poll.h).
    transport::Poll(items, item_count, std::chrono::milliseconds(backlog ? 0 : kPollMs));
    // Subscriptions first: a new subscriber's cache replay goes out before
    // newer messages.
    if (native_) {
      native_->Wait(std::chrono::milliseconds(0));
      ReceiveFromSubscribers();
    } else {
      if (items[1].revents & ZMQ_POLLIN) HandleSubscription();
      if (items[2].revents & ZMQ_POLLIN) HandleMonitorEvent();
    }
    // The native backend's I/O (handshakes, reads, subscriptions going
    // upstream) happens here, in this thread.
    if (publishers_) publishers_->Wait(std::chrono::milliseconds(0));
    backlog = false;
    if (publishers_ || (items[0].revents & ZMQ_POLLIN) != 0) {
      int n = 0;
      for (; n < kForwardBatch && !stop_.load(std::memory_order_relaxed); ++n) {
        if (!ForwardMessage()) break;
        // Subscribers start on a batch while the rest is still being read.
        if (native_ && n % kFlushEvery == kFlushEvery - 1) native_->Flush();
      }
      backlog = n == kForwardBatch;
    }
    if (native_) native_->Flush();
    counters_.last_tick_ns.store(NowNs(), std::memory_order_relaxed);
  }
  if (!native_) zmq_socket_monitor(frontend_.handle(), nullptr, 0);
}

bool Bus::ReceiveFromPublishers() {
  bool more = false;
  // The routing id first, then the message's frames, all there at once.
  if (!publishers_->Receive(publisher_.handle(), &more)) return false;
  while (more) {
    if (frame_count_ == frames_.size()) frames_.emplace_back();
    if (!publishers_->Receive(frames_[frame_count_].handle(), &more)) break;
    ++frame_count_;
  }
  return true;
}

bool Bus::ReceiveFromXsub() {
  while (true) {
    if (frame_count_ == frames_.size()) frames_.emplace_back();
    zmq::message_t& frame = frames_[frame_count_];
    // Parts of one message arrive together: only the first can be missing.
    if (zmq_msg_recv(frame.handle(), backend_.handle(), ZMQ_DONTWAIT) < 0) return false;
    ++frame_count_;
    if (!frame.more()) return true;
  }
}

bool Bus::ForwardMessage() {
  frame_count_ = 0;
  if (!(publishers_ ? ReceiveFromPublishers() : ReceiveFromXsub())) return false;
  size_t bytes = 0;
  large_frames_ = false;
  for (size_t i = 0; i < frame_count_; ++i) {
    bytes += frames_[i].size();
    large_frames_ = large_frames_ || frames_[i].size() >= transport::ZmtpConnection::kShareFrom;
  }
  if (frame_count_ == 0) return true;  // an empty message has no topic: nothing to match
  if (bytes > options_.max_message_size) {
    // libzmq's XSUB checks single frames only (and disconnects the
    // publisher of a larger one): the whole message is checked here, and
    // the publisher stays connected.
    Add(counters_.too_large, 1);
    refusal::Record(
        refusal::Reason::kMessageTooLarge, PublisherAddress(),
        {{"bus", options_.name}, {"size", bytes}, {"max_message_size", options_.max_message_size}});
    return true;
  }
  if (publishers_have_keys_ && !MayPublish()) return true;
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

// Whether the publisher of frames_ may publish on its topic: our ZAP
// handler gave its connection the key's name as User-Id. A denied message
// is dropped, counted and logged (a PUB has no way to hear an error).
bool Bus::MayPublish() {
  const transport::AccessPolicy* policy = access_rules_.Get();
  if (policy == nullptr) return true;
  const std::string_view peer = PublisherName();
  const std::string_view topic(static_cast<const char*>(frames_[0].data()), frames_[0].size());
  if (policy->MayPublish(peer, options_.name, topic)) return true;
  refusal::Record(refusal::Reason::kDeniedPublish, peer.empty() ? "(no key)" : peer,
                  {{"bus", options_.name}, {"topic", log::Printable(topic)}});
  return false;
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
    if (msg.more()) {
      // Not a subscription (an XSUB peer's message): it has no meaning here.
      while (msg.more() && frontend_.recv(msg, zmq::recv_flags::dontwait)) {
      }
      continue;
    }
    const auto* data = static_cast<const unsigned char*>(msg.data());
    if (msg.size() >= 1 && (data[0] == 0 || data[0] == 1)) {
      OnSubscription("", data[0] == 1,
                     std::string_view(reinterpret_cast<const char*>(data) + 1, msg.size() - 1));
    }
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
// Subscribers and their subscriptions.

Bus::Subscriber& Bus::AddSubscriber(std::string_view id, std::string_view remote) {
  Subscriber& s = subscribers_[std::string(id)];
  s.id = std::string(id);
  s.remote = std::string(remote);
  s.serial = ++next_serial_;
  if (free_slots_.empty()) {
    s.slot = static_cast<PrefixTrie::SubscriberId>(slots_.size());
    slots_.push_back(&s);
  } else {
    s.slot = free_slots_.back();
    free_slots_.pop_back();
    slots_[s.slot] = &s;
  }
  return s;
}

void Bus::OnSubscriber(std::string_view id, bool connected, std::string_view remote) {
  if (connected) {
    if (subscribers_.contains(id)) return;  // the transport never reuses a live id
    AddSubscriber(id, remote);
    Add(counters_.subscribers, 1);
    PLANTD_LOG_DEBUG("subscriber connected", {{"bus", options_.name}, {"remote", remote}});
    return;
  }
  auto it = subscribers_.find(id);
  if (it == subscribers_.end()) return;
  Subscriber& s = it->second;
  DropSubscriptions(s);  // upstream too
  Add(counters_.subscribers, -1);
  PLANTD_LOG_DEBUG("subscriber left",
                   {{"bus", options_.name}, {"remote", s.remote}, {"dropped", s.dropped}});
  slots_[s.slot] = nullptr;
  free_slots_.push_back(s.slot);
  subscribers_.erase(it);
}

void Bus::DropSubscriptions(Subscriber& s) {
  for (const auto& [prefix, count] : s.prefixes) {
    for (uint32_t i = 0; i < count; ++i) {
      bool inactive = false;
      trie_.Remove(prefix, s.slot, &inactive);
      if (inactive) SendUpstream(false, prefix);
    }
  }
  s.prefixes.clear();
  s.subscriptions = 0;
  counters_.subscriptions.store(static_cast<int64_t>(trie_.subscriptions()),
                                std::memory_order_relaxed);
}

void Bus::OnSubscription(std::string_view id, bool subscribe, std::string_view topic) {
  auto it = subscribers_.find(id);
  if (it == subscribers_.end()) return;
  Subscriber& s = it->second;
  if (s.evicted) return;
  if (!subscribe) {
    auto p = s.prefixes.find(topic);
    if (p == s.prefixes.end()) return;  // never subscribed (or refused): nothing to cancel
    bool inactive = false;
    trie_.Remove(topic, s.slot, &inactive);
    if (--p->second == 0) s.prefixes.erase(p);
    --s.subscriptions;
    counters_.subscriptions.store(static_cast<int64_t>(trie_.subscriptions()),
                                  std::memory_order_relaxed);
    if (inactive) SendUpstream(false, topic);
    return;
  }
  // The caps: the subscription is ignored, the subscriber stays connected
  // and keeps what it has. libzmq's XPUB (connecting frontend) keeps its own
  // table: there only what goes upstream is capped, and per-subscriber caps
  // cannot apply (its subscribers are anonymous).
  auto refuse = [&](refusal::Reason reason, const char* limit, size_t value) {
    Add(counters_.subscriptions_refused, 1);
    refusal::Record(reason, s.remote,
                    {{"bus", options_.name}, {"size", topic.size()}, {limit, value}});
  };
  if (topic.size() > options_.max_subscription_size) {
    refuse(refusal::Reason::kSubscriptionTooLong, "max_subscription_size",
           options_.max_subscription_size);
    return;
  }
  if (native_ && s.subscriptions >= options_.max_subscriptions_per_subscriber) {
    refuse(refusal::Reason::kSubscriptionsPerSubscriber, "max_subscriptions_per_subscriber",
           options_.max_subscriptions_per_subscriber);
    return;
  }
  if (trie_.subscriptions() >= options_.max_subscriptions) {
    refuse(refusal::Reason::kSubscriptionsTotal, "max_subscriptions", options_.max_subscriptions);
    return;
  }
  if (native_) {
    if (const transport::AccessPolicy* policy = access_rules_.Get()) {
      const std::string_view peer = native_->PeerName(id);
      if (!policy->MaySubscribe(peer, options_.name, topic)) {
        // Ignored like a capped one: the subscriber stays, without it.
        Add(counters_.subscriptions_refused, 1);
        refusal::Record(refusal::Reason::kDeniedSubscribe, peer.empty() ? "(no key)" : peer,
                        {{"bus", options_.name}, {"prefix", log::Printable(topic)}});
        return;
      }
    }
  }
  const bool new_for_it = ++s.prefixes[std::string(topic)] == 1;
  ++s.subscriptions;
  const bool active = trie_.Add(topic, s.slot);
  counters_.subscriptions.store(static_cast<int64_t>(trie_.subscriptions()),
                                std::memory_order_relaxed);
  if (active) SendUpstream(true, topic);
  if (!options_.last_value_cache || !new_for_it) return;
  cache_.ForEachMatching(topic, [&](const std::vector<zmq::message_t>& frames) {
    if (native_) {
      // Only the new subscriber: the others have these values already. A
      // full queue ends the replay: however many prefixes a subscriber
      // sends, replaying costs no more than what it takes.
      if (SendFramesTo(id, frames.data(), frames.size()) != SendResult::kSent) return false;
      Add(counters_.lvc_replayed, 1);
      return true;
    }
    // libzmq's XPUB cannot address one subscriber: everyone subscribed to
    // these topics gets the current value again, harmless for state.
    for (size_t i = 0; i < frames.size(); ++i) {
      zmq::message_t copy;
      zmq_msg_copy(copy.handle(), const_cast<zmq_msg_t*>(frames[i].handle()));
      // Only the first part can be refused (a full subscriber, NODROP);
      // never wait for it here.
      const int flags = (i == 0 ? ZMQ_DONTWAIT : 0) | (i + 1 < frames.size() ? ZMQ_SNDMORE : 0);
      if (zmq_msg_send(copy.handle(), frontend_.handle(), flags) < 0) return false;
    }
    Add(counters_.lvc_replayed, 1);
    return true;
  });
}

void Bus::SendUpstream(bool subscribe, std::string_view topic) {
  if (publishers_) {
    // A copy: sending may close a publisher, whose departure edits the list.
    const std::vector<std::string> ids = publisher_ids_;
    for (const std::string& id : ids) SendSubscription(id, subscribe, topic);
    return;
  }
  // The XSUB sends it to every publisher, and each publisher that connects
  // later learns every active prefix from it.
  zmq::message_t msg(topic.size() + 1);
  auto* data = static_cast<char*>(msg.data());
  data[0] = subscribe ? 1 : 0;
  if (!topic.empty()) std::memcpy(data + 1, topic.data(), topic.size());
  (void)backend_.send(msg, zmq::send_flags::dontwait);
}

// ---------------------------------------------------------------------------
// Delivery through the native frontend.

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

Bus::SendResult Bus::SendViewsTo(std::string_view id, const std::string_view* views, size_t count) {
  if (native_->SendMessage(id, views, count)) return SendResult::kSent;
  return errno == EAGAIN ? SendResult::kFull : SendResult::kGone;
}

Bus::SendResult Bus::SendFramesTo(std::string_view id, const zmq::message_t* frames, size_t count) {
  if (count > 0 && count <= kMaxViews) {
    std::string_view views[kMaxViews];
    for (size_t i = 0; i < count; ++i) views[i] = frames[i].to_string_view();
    return SendViewsTo(id, views, count);
  }
  zmq_msg_t address;
  zmq_msg_init_size(&address, id.size());
  std::memcpy(zmq_msg_data(&address), id.data(), id.size());
  if (!native_->Send(&address, count > 0)) {
    const int error = errno;
    zmq_msg_close(&address);
    return error == EAGAIN ? SendResult::kFull : SendResult::kGone;
  }
  for (size_t i = 0; i < count; ++i) {
    // Copies share the frame's buffer.
    zmq_msg_t copy;
    zmq_msg_init(&copy);
    zmq_msg_copy(&copy, const_cast<zmq_msg_t*>(frames[i].handle()));
    if (!native_->Send(&copy, i + 1 < count)) zmq_msg_close(&copy);
  }
  return SendResult::kSent;
}

bool Bus::SendToNativeSubscribers() {
  if (frame_count_ > kMaxViews) {
    // Rare: sent frame by frame.
    return SendToNativeSubscribers(
        [&](const Subscriber& s) { return SendFramesTo(s.id, frames_.data(), frame_count_); });
  }
  if (large_frames_) {
    // Bodies are shared by every subscriber's output, not copied per
    // subscriber (transport/zmtp_connection.h, kShareFrom).
    return SendToNativeSubscribers([&](const Subscriber& s) {
      if (native_->SendMessage(s.id, frames_.data(), frame_count_)) return SendResult::kSent;
      return errno == EAGAIN ? SendResult::kFull : SendResult::kGone;
    });
  }
  // The frames' bytes go straight into each subscriber's output: no
  // zmq_msg_t to copy (an atomic increment each) and close per frame.
  std::string_view views[kMaxViews];
  for (size_t i = 0; i < frame_count_; ++i) views[i] = frames_[i].to_string_view();
  return SendToNativeSubscribers(
      [&](const Subscriber& s) { return SendViewsTo(s.id, views, frame_count_); });
}

template <typename SendTo>
bool Bus::SendToNativeSubscribers(SendTo send_to) {
  const std::string_view topic = frames_[0].to_string_view();
  const bool block = options_.delivery == BusOptions::Delivery::kBlock;
  trie_.Match(topic, &matched_);
  waiting_.clear();
  for (PrefixTrie::SubscriberId slot : matched_) {
    Subscriber& s = *slots_[slot];
    if (s.evicted) continue;
    const SendResult result = send_to(s);
    if (result == SendResult::kSent) {
      if (s.behind) {
        s.behind = false;
        PLANTD_LOG_INFO("subscriber caught up",
                        {{"bus", options_.name}, {"subscriber", s.remote}, {"dropped", s.dropped}});
      }
      continue;
    }
    if (result == SendResult::kGone) continue;  // its departure is on its way
    if (block) {
      waiting_.push_back({slot, s.serial});
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
                       {"send_hwm", options_.send_hwm},
                       {"send_hwm_bytes", options_.send_hwm_bytes}});
    }
  }
  if (!waiting_.empty()) WaitForSubscribers(send_to);
  return true;
}

template <typename SendTo>
void Bus::WaitForSubscribers(SendTo send_to) {
  // Block mode: the others have this message; wait until each full
  // subscriber has room for it too, still serving subscriptions and writing
  // queued output. One that takes nothing for write_timeout is closed by the
  // transport as a slow consumer; should it still be here a second later,
  // the bus stops waiting for it and sends it nothing more (Evict), so that
  // one dead subscriber cannot stop the bus for good.
  HoldUp hold_up(options_.name, counters_.blocked_ns);
  const auto start = Clock::now();
  const auto give_up = start + limits_.write_timeout + std::chrono::seconds(1);
  while (!stop_.load(std::memory_order_relaxed)) {
    std::erase_if(waiting_, [&](const Waiting& w) {
      const Subscriber* s = slots_[w.slot];
      if (s == nullptr || s->serial != w.serial || s->evicted) return true;  // it left
      return send_to(*s) != SendResult::kFull;
    });
    if (waiting_.empty()) return;
    hold_up.Still(slots_[waiting_.front().slot]->remote);
    if (Clock::now() >= give_up) {
      const auto waited =
          std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
      for (const Waiting& w : waiting_) Evict(*slots_[w.slot], waited);
      waiting_.clear();
      return;
    }
    native_->Wait(std::chrono::milliseconds(1));
    ReceiveFromSubscribers();
    counters_.last_tick_ns.store(NowNs(), std::memory_order_relaxed);
  }
}

void Bus::Evict(Subscriber& s, std::chrono::milliseconds waited) {
  s.evicted = true;
  DropSubscriptions(s);
  Add(counters_.slow_consumers, 1);
  refusal::Record(refusal::Reason::kSlowConsumer, s.remote,
                  {{"bus", options_.name}, {"waited_ms", waited.count()}});
}

}  // namespace plantd::bus

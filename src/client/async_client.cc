#include "plantd/mdp/async_client.h"

#include <cstring>
#include <map>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>
#include <zmq.hpp>

#include "client/dealer_socket.h"
#include "client/frames.h"
#include "mdp/protocol.h"

namespace plantd::mdp {

using client::Byte;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

namespace {

// With several brokers, how often Poll looks whether one has gone away.
constexpr milliseconds kConnectionCheck{100};

}  // namespace

struct AsyncClient::Impl {
  struct Pending {
    Callback done;
    Client::PartialHandler on_partial;
    steady_clock::time_point deadline;
    size_t broker = 0;  // where it was sent last
    int attempts = 1;   // sends so far
    // Kept only when it may be sent again (several brokers, attempts > 1).
    std::string service;
    Frames body;
  };

  // One broker. With several, each has a socket of its own, so that the
  // client knows where each request went and can move it when that broker
  // goes away; with one, brokers[0] is the only socket, as it always was.
  struct Broker {
    std::unique_ptr<client::DealerSocket> socket;
    bool was_connected = false;
  };

  explicit Impl(ClientOptions o) : options(std::move(o)) {
    client::DealerOptions d;
    d.engine = options.engine;
    d.curve = options.curve;
    // Many requests in flight: let the socket queue as many as we hold.
    d.unbounded_queues = true;
    if (options.endpoints.size() <= 1) {
      auto opened = client::DealerSocket::Open(context, options.endpoints, d);
      if (!opened.ok()) {
        status = opened.status();
        return;
      }
      brokers.push_back({std::move(opened.value()), false});
      return;
    }
    d.watch_handshake = true;  // to see a broker go away
    for (const std::string& endpoint : options.endpoints) {
      auto opened = client::DealerSocket::Open(context, {endpoint}, d);
      if (!opened.ok()) {
        status = opened.status();
        brokers.clear();
        return;
      }
      brokers.push_back({std::move(opened.value()), false});
    }
  }

  bool several() const { return brokers.size() > 1; }
  bool may_resend() const { return several() && options.attempts > 1; }

  // The next broker in turn whose connection is up (after `after`); the
  // one after `after` when none is.
  size_t PickBroker(size_t after) const {
    for (size_t k = 1; k <= brokers.size(); ++k) {
      const size_t i = (after + k) % brokers.size();
      if (brokers[i].was_connected) return i;
    }
    return (after + 1) % brokers.size();
  }

  bool SendTo(size_t broker, uint64_t tag, const std::string& service, const Frames& body) {
    // The envelope (our tag and an empty frame) comes back with every reply.
    const std::string_view tag_frame(reinterpret_cast<const char*>(&tag), sizeof(tag));
    return brokers[broker].socket->Send(
        {tag_frame, "", kClientHeader02, Byte(v02::kClientRequest), service}, body);
  }

  // Sends a pending request again, to another broker, with a new deadline;
  // false when it has no attempts left.
  bool Resend(uint64_t tag) {
    auto it = pending.find(tag);
    if (it == pending.end() || !may_resend() || it->second.attempts >= options.attempts) {
      return false;
    }
    Pending& p = it->second;
    deadlines.erase({p.deadline, tag});
    p.deadline = steady_clock::now() + options.timeout;
    deadlines.emplace(std::make_pair(p.deadline, tag), true);
    ++p.attempts;
    p.broker = PickBroker(p.broker);
    if (!SendTo(p.broker, tag, p.service, p.body)) {
      failed.emplace_back(tag, Status::Unavailable("the request could not be queued"));
    }
    return true;
  }

  // Several brokers: a broker whose connection dropped took the requests
  // sent to it along; each goes to another broker at once, or fails.
  size_t MoveRequestsOfLostBrokers() {
    size_t completed = 0;
    for (size_t b = 0; b < brokers.size(); ++b) {
      const bool up = brokers[b].socket->connected();
      const bool lost = brokers[b].was_connected && !up;
      brokers[b].was_connected = up;
      if (!lost) continue;
      std::vector<uint64_t> tags;
      for (const auto& [tag, p] : pending) {
        if (p.broker == b) tags.push_back(tag);
      }
      for (uint64_t tag : tags) {
        if (Resend(tag)) continue;
        Complete(tag, Status::Unavailable("the connection to " + options.endpoints[b] +
                                          " dropped before a reply came"));
        ++completed;
      }
    }
    return completed;
  }

  void Complete(uint64_t tag, Result<Frames> result) {
    auto it = pending.find(tag);
    if (it == pending.end()) return;
    Callback done = std::move(it->second.done);
    deadlines.erase({it->second.deadline, tag});
    pending.erase(it);
    done(std::move(result));
  }

  ClientOptions options;
  zmq::context_t context{1};
  std::vector<Broker> brokers;  // empty when status is not ok
  size_t next_broker = 0;       // several brokers: where the last request went
  // Not ok when the client cannot work (a malformed endpoint): every
  // request then completes with it.
  Status status;
  uint64_t next_tag = 1;
  // Requests that failed before reaching the socket, completed by the next
  // Poll so that a callback never runs inside Send.
  std::vector<std::pair<uint64_t, Status>> failed;
  std::unordered_map<uint64_t, Pending> pending;
  std::map<std::pair<steady_clock::time_point, uint64_t>, bool> deadlines;  // ordered timeouts
  // Reused by every Poll, so that polling allocates nothing of its own.
  std::vector<zmq_pollitem_t> poll_items;
  std::vector<size_t> item_starts;
  Frames reply;
};

AsyncClient::AsyncClient(ClientOptions options) : impl_(new Impl(std::move(options))) {}
AsyncClient::~AsyncClient() = default;

void AsyncClient::Send(const std::string& service, const Frames& body, Callback done,
                       Client::PartialHandler on_partial) {
  Impl& impl = *impl_;
  const uint64_t tag = impl.next_tag++;
  const auto deadline = steady_clock::now() + impl.options.timeout;
  Impl::Pending p{std::move(done), std::move(on_partial), deadline};
  if (!impl.status.ok()) {
    impl.pending.emplace(tag, std::move(p));
    impl.deadlines.emplace(std::make_pair(deadline, tag), true);
    impl.failed.emplace_back(tag, impl.status);
    return;
  }
  if (impl.several()) {
    impl.next_broker = impl.PickBroker(impl.next_broker);
    p.broker = impl.next_broker;
    if (impl.may_resend()) {
      p.service = service;
      p.body = body;
    }
  }
  const size_t broker = p.broker;
  impl.pending.emplace(tag, std::move(p));
  impl.deadlines.emplace(std::make_pair(deadline, tag), true);
  if (!impl.SendTo(broker, tag, service, body)) {
    impl.failed.emplace_back(tag, Status::Unavailable("the request could not be queued"));
  }
}

Status AsyncClient::status() const { return impl_->status; }

std::future<Result<Frames>> AsyncClient::Send(const std::string& service, const Frames& body) {
  auto promise = std::make_shared<std::promise<Result<Frames>>>();
  auto future = promise->get_future();
  Send(service, body, [promise](Result<Frames> r) { promise->set_value(std::move(r)); });
  return future;
}

size_t AsyncClient::Poll(milliseconds wait) {
  Impl& impl = *impl_;
  size_t completed = 0;
  const auto until = steady_clock::now() + wait;
  while (true) {
    // Requests that never left first: they need no waiting.
    if (!impl.failed.empty()) {
      std::vector<std::pair<uint64_t, Status>> failed;
      failed.swap(impl.failed);
      for (auto& [tag, status] : failed) {
        impl.Complete(tag, std::move(status));
        ++completed;
      }
      return completed;
    }
    if (impl.brokers.empty()) {  // nothing can arrive: status() says why
      std::this_thread::sleep_until(until);
      return completed;
    }
    // Replies next.
    std::vector<zmq_pollitem_t>& items = impl.poll_items;
    items.clear();
    impl.item_starts.clear();
    for (Impl::Broker& b : impl.brokers) impl.item_starts.push_back(b.socket->AddPollItems(&items));
    auto now = steady_clock::now();
    auto left = std::chrono::duration_cast<milliseconds>(until - now);
    if (!impl.deadlines.empty()) {
      left = std::min(left, std::chrono::duration_cast<milliseconds>(
                                impl.deadlines.begin()->first.first - now));
    }
    // With several brokers, wake now and then to see one go away.
    if (impl.several()) left = std::min(left, kConnectionCheck);
    left = std::max(left, milliseconds(0));
    for (Impl::Broker& b : impl.brokers) left = b.socket->BoundWait(left);
    client::Poll(items.data(), items.size(), left);
    for (size_t b = 0; b < impl.brokers.size(); ++b) {
      impl.brokers[b].socket->HandlePollItems(&items[impl.item_starts[b]]);
    }
    for (Impl::Broker& broker : impl.brokers) {
      client::DealerSocket& socket = *broker.socket;
      // Drain everything that is waiting without sleeping again; the
      // requests that callbacks send meanwhile go out in one write.
      socket.Cork();
      // Uncorked however the loop ends, a callback that throws included.
      struct Uncorker {
        client::DealerSocket& socket;
        ~Uncorker() { socket.Uncork(); }
      } uncork{socket};
      Frames& reply = impl.reply;
      while (socket.Recv(&reply)) {
        // [tag, "", MDPC02, PARTIAL|FINAL, service, body...]
        if (reply.size() < 5 || reply[0].size() != sizeof(uint64_t) ||
            reply[2] != kClientHeader02) {
          continue;  // not ours
        }
        uint64_t tag;
        std::memcpy(&tag, reply[0].data(), sizeof(tag));
        auto it = impl.pending.find(tag);
        if (it == impl.pending.end()) continue;  // already timed out, or answered elsewhere
        Frames body(std::make_move_iterator(reply.begin() + 5),
                    std::make_move_iterator(reply.end()));
        if (reply[3] == Byte(v02::kClientFinal)) {
          impl.Complete(tag, std::move(body));
          ++completed;
        } else if (it->second.on_partial) {
          it->second.on_partial(body);
        }
      }
    }
    if (impl.several()) completed += impl.MoveRequestsOfLostBrokers();
    // Then timeouts: sent again elsewhere while attempts are left.
    now = steady_clock::now();
    while (!impl.deadlines.empty() && impl.deadlines.begin()->first.first <= now) {
      const uint64_t tag = impl.deadlines.begin()->first.second;
      if (impl.Resend(tag)) continue;
      impl.Complete(tag, Status::Timeout("no reply within " +
                                         std::to_string(impl.options.timeout.count()) + " ms"));
      ++completed;
    }
    if (completed > 0 || steady_clock::now() >= until) return completed;
  }
}

size_t AsyncClient::Drain(milliseconds limit) {
  const auto until = steady_clock::now() + limit;
  while (!impl_->pending.empty()) {
    const auto left = std::chrono::ceil<milliseconds>(until - steady_clock::now());
    if (left <= milliseconds(0)) break;
    Poll(left);
  }
  return impl_->pending.size();
}

size_t AsyncClient::pending() const { return impl_->pending.size(); }

}  // namespace plantd::mdp

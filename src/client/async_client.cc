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

struct AsyncClient::Impl {
  struct Pending {
    Callback done;
    Client::PartialHandler on_partial;
    steady_clock::time_point deadline;
  };

  explicit Impl(ClientOptions o) : options(std::move(o)) {
    client::DealerOptions d;
    d.engine = options.engine;
    d.curve = options.curve;
    // Many requests in flight: let the socket queue as many as we hold.
    d.unbounded_queues = true;
    auto opened = client::DealerSocket::Open(context, options.endpoints, d);
    if (opened.ok()) {
      socket = std::move(opened.value());
    } else {
      status = opened.status();
    }
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
  std::unique_ptr<client::DealerSocket> socket;  // null when status is not ok
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
  Frames reply;
};

AsyncClient::AsyncClient(ClientOptions options) : impl_(new Impl(std::move(options))) {}
AsyncClient::~AsyncClient() = default;

void AsyncClient::Send(const std::string& service, const Frames& body, Callback done,
                       Client::PartialHandler on_partial) {
  const uint64_t tag = impl_->next_tag++;
  const auto deadline = steady_clock::now() + impl_->options.timeout;
  impl_->pending.emplace(tag, Impl::Pending{std::move(done), std::move(on_partial), deadline});
  impl_->deadlines.emplace(std::make_pair(deadline, tag), true);
  // The envelope (our tag and an empty frame) comes back with every reply.
  if (!impl_->status.ok()) {
    impl_->failed.emplace_back(tag, impl_->status);
    return;
  }
  const std::string_view tag_frame(reinterpret_cast<const char*>(&tag), sizeof(tag));
  if (!impl_->socket->Send({tag_frame, "", kClientHeader02, Byte(v02::kClientRequest), service},
                           body)) {
    impl_->failed.emplace_back(tag, Status::Unavailable("the request could not be queued"));
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
  size_t completed = 0;
  const auto until = steady_clock::now() + wait;
  while (true) {
    // Requests that never left first: they need no waiting.
    if (!impl_->failed.empty()) {
      std::vector<std::pair<uint64_t, Status>> failed;
      failed.swap(impl_->failed);
      for (auto& [tag, status] : failed) {
        impl_->Complete(tag, std::move(status));
        ++completed;
      }
      return completed;
    }
    if (!impl_->socket) {  // nothing can arrive: status() says why
      std::this_thread::sleep_until(until);
      return completed;
    }
    // Replies next.
    client::DealerSocket& socket = *impl_->socket;
    std::vector<zmq_pollitem_t>& items = impl_->poll_items;
    items.clear();
    socket.AddPollItems(&items);
    auto now = steady_clock::now();
    auto left = std::chrono::duration_cast<milliseconds>(until - now);
    if (!impl_->deadlines.empty()) {
      left = std::min(left, std::chrono::duration_cast<milliseconds>(
                                impl_->deadlines.begin()->first.first - now));
    }
    client::Poll(items.data(), items.size(), socket.BoundWait(std::max(left, milliseconds(0))));
    socket.HandlePollItems(items.data());
    // Drain everything that is waiting without sleeping again; the
    // requests that callbacks send meanwhile go out in one write.
    socket.Cork();
    // Uncorked however the loop ends, a callback that throws included.
    struct Uncorker {
      client::DealerSocket& socket;
      ~Uncorker() { socket.Uncork(); }
    } uncork{socket};
    Frames& reply = impl_->reply;
    while (socket.Recv(&reply)) {
      // [tag, "", MDPC02, PARTIAL|FINAL, service, body...]
      if (reply.size() < 5 || reply[0].size() != sizeof(uint64_t) || reply[2] != kClientHeader02) {
        continue;  // not ours
      }
      uint64_t tag;
      std::memcpy(&tag, reply[0].data(), sizeof(tag));
      auto it = impl_->pending.find(tag);
      if (it == impl_->pending.end()) continue;  // already timed out
      Frames body(std::make_move_iterator(reply.begin() + 5), std::make_move_iterator(reply.end()));
      if (reply[3] == Byte(v02::kClientFinal)) {
        impl_->Complete(tag, std::move(body));
        ++completed;
      } else if (it->second.on_partial) {
        it->second.on_partial(body);
      }
    }
    // Then timeouts.
    now = steady_clock::now();
    while (!impl_->deadlines.empty() && impl_->deadlines.begin()->first.first <= now) {
      const uint64_t tag = impl_->deadlines.begin()->first.second;
      impl_->Complete(tag, Status::Timeout("no reply within " +
                                           std::to_string(impl_->options.timeout.count()) + " ms"));
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

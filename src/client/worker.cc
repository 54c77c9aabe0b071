#include "plantd/mdp/worker.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <zmq.hpp>

#include "client/dealer_socket.h"
#include "client/frames.h"
#include "mdp/protocol.h"

namespace plantd::mdp {

using client::Byte;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

namespace {

// Bounds how long Receive sleeps, so Stop() is seen promptly.
constexpr milliseconds kMaxWait{100};

// A worker's credit split between its brokers, so that all of them
// together never hand it more requests at once than it asked for: each
// broker dispatches on its own and credit is fixed at READY, so a shared
// pool would need a protocol change. The first `credit % brokers` brokers
// get one more. Every broker gets at least 1 (MDP has no READY without
// credit): a worker with fewer credits than brokers may hold one request
// per broker.
std::vector<int> CreditShares(int credit, size_t brokers) {
  std::vector<int> shares(brokers, 1);
  if (brokers == 0) return shares;
  const int n = static_cast<int>(brokers);
  const int total = std::max(1, credit);
  for (int i = 0; i < n; ++i)
    shares[static_cast<size_t>(i)] = std::max(1, total / n + (i < total % n ? 1 : 0));
  return shares;
}

}  // namespace

// One broker: its socket and the state of the 18/MDP heartbeat dialogue.
struct Connection {
  std::string endpoint;
  int credit = 1;  // this broker's share of options.credit (CreditShares)
  std::unique_ptr<client::DealerSocket> socket;
  int liveness = 0;
  steady_clock::time_point next_heartbeat;
  steady_clock::time_point reconnect_at;  // when socket is null
  milliseconds backoff{0};
  bool unusable = false;  // a malformed endpoint: never connected again
};

struct Worker::Impl {
  WorkerOptions options;
  zmq::context_t context{1};
  std::vector<Connection> connections;
  uint64_t registrations = 0;
  Status status;  // the first endpoint that could not be used
  // Serve(): handler threads ring this to wake Receive (inproc PUSH/PULL).
  std::unique_ptr<zmq::socket_t> wake;
  bool woken = false;
  // Receive's poll set and message, reused so that a turn allocates
  // nothing of its own.
  std::vector<zmq_pollitem_t> poll_items;
  std::vector<size_t> polled;
  std::vector<size_t> first;
  Frames message;

  // One message from connection `i`: a request to hand out, or nothing
  // (a heartbeat, a DISCONNECT, something malformed).
  std::optional<WorkerRequest> Handle(Connection& c, size_t i, Frames& f) {
    // Any message from the broker shows it alive.
    c.liveness = options.heartbeat_liveness;
    c.backoff = milliseconds(0);
    // 0.2: [MDPW02, cmd, ...]; 0.1: ["", MDPW01, cmd, ...]
    const size_t h = v01() ? 1 : 0;
    if (f.size() < h + 2 || f[h] != (v01() ? kWorkerHeader01 : kWorkerHeader02)) {
      return std::nullopt;
    }
    const std::string& cmd = f[h + 1];
    const bool request = cmd == Byte(v01() ? v01::kRequest : v02::kRequest);
    const bool disconnect = cmd == Byte(v01() ? v01::kDisconnect : v02::kDisconnect);
    if (disconnect) {
      Lose(c);
      return std::nullopt;
    }
    if (!request || f.size() < h + 4) return std::nullopt;  // heartbeat, or malformed
    WorkerRequest r;
    r.address = std::move(f[h + 2]);
    // f[h + 3] is the empty delimiter.
    r.body.assign(std::make_move_iterator(f.begin() + static_cast<long>(h) + 4),
                  std::make_move_iterator(f.end()));
    r.connection = i;
    return r;
  }

  bool v01() const { return options.protocol == Protocol::kMdp01; }

  // False when no broker can ever be reached (every endpoint malformed, or
  // none given): Receive and Serve return at once instead of spinning.
  bool AnyUsable() const {
    return std::any_of(connections.begin(), connections.end(),
                       [](const Connection& c) { return !c.unusable; });
  }

  void Send(Connection& c, int command_v02, int command_v01, const Frames& args = {}) {
    if (!c.socket) return;
    if (v01()) {
      c.socket->Send({"", kWorkerHeader01, Byte(command_v01)}, args, true);
    } else {
      c.socket->Send({kWorkerHeader02, Byte(command_v02)}, args, true);
    }
  }

  // A FINAL reply, written at once unless more requests from the same
  // broker are already here: then Receive hands those out without waiting,
  // and the replies go together when it next has to wait (or with the
  // reply to the last of them). A burst of requests gets its answers in one
  // write; a reply waits at most for the handling of the requests that
  // arrived with it (docs/transport.md).
  void SendReply(Connection& c, int command_v02, int command_v01, const Frames& args) {
    if (!c.socket) return;
    if (c.socket->has_message()) {
      c.socket->Cork();
    } else {
      c.socket->Uncork();
    }
    Send(c, command_v02, command_v01, args);
  }

  void Connect(Connection& c) {
    client::DealerOptions o;
    o.engine = options.engine;
    o.curve = options.curve;
    // A new connection is a new worker to the broker (a new routing id, or
    // a restarted broker that never heard of us): it must begin with READY.
    // So a lost connection is lost for good, and the worker starts afresh
    // after its backoff instead of sending heartbeats or replies that the
    // broker would answer with DISCONNECT.
    o.reconnect = false;
    auto opened = client::DealerSocket::Open(context, {c.endpoint}, o);
    if (!opened.ok()) {
      c.unusable = true;
      if (status.ok()) status = opened.status();
      return;
    }
    c.socket = std::move(opened.value());
    // READY goes out when the connection completes (DEALER queues it).
    if (c.credit > 1) {
      Send(c, v02::kReady, v01::kReady, {options.service, std::to_string(c.credit)});
    } else {
      Send(c, v02::kReady, v01::kReady, {options.service});
    }
    c.liveness = options.heartbeat_liveness;
    c.next_heartbeat = steady_clock::now() + options.heartbeat_interval;
    ++registrations;
  }

  // The broker went silent or said DISCONNECT: drop the socket and come
  // back after the backoff, doubling it each time up to the maximum.
  void Lose(Connection& c) {
    c.socket.reset();
    c.backoff = c.backoff == milliseconds(0) ? options.reconnect_delay
                                             : std::min(c.backoff * 2, options.reconnect_delay_max);
    c.reconnect_at = steady_clock::now() + c.backoff;
  }
};

Worker::Worker(WorkerOptions options) : impl_(new Impl) {
  impl_->options = std::move(options);
  for (const std::string& e : impl_->options.endpoints) {
    Connection c;
    c.endpoint = e;
    impl_->connections.push_back(std::move(c));
  }
  if (impl_->connections.empty())
    impl_->status = Status::InvalidArgument("no broker endpoint given");
  const std::vector<int> shares = CreditShares(impl_->options.credit, impl_->connections.size());
  for (size_t i = 0; i < impl_->connections.size(); ++i) {
    impl_->connections[i].credit = shares[i];
  }
  for (Connection& c : impl_->connections) impl_->Connect(c);
}

Worker::Worker(const std::string& endpoint, const std::string& service)
    : Worker(WorkerOptions{.endpoints = {endpoint}, .service = service}) {}

Worker::~Worker() {
  // A clean shutdown says DISCONNECT, so the broker re-sends nothing to us.
  for (Connection& c : impl_->connections) {
    if (c.socket) c.socket->Uncork();
    impl_->Send(c, v02::kDisconnect, v01::kDisconnect);
  }
}

uint64_t Worker::registrations() const { return impl_->registrations; }

Status Worker::status() const { return impl_->status; }

std::optional<WorkerRequest> Worker::Receive(milliseconds timeout) {
  const auto start = steady_clock::now();
  const auto until =
      timeout == milliseconds::max() ? steady_clock::time_point::max() : start + timeout;
  if (!impl_->AnyUsable()) return std::nullopt;  // status() says why
  while (!stopped()) {
    auto now = steady_clock::now();
    if (now >= until) return std::nullopt;
    // Reconnect what is due, heartbeat what is due.
    for (Connection& c : impl_->connections) {
      if (!c.socket) {
        if (!c.unusable && now >= c.reconnect_at) impl_->Connect(c);
        continue;
      }
      if (now >= c.next_heartbeat) {
        impl_->Send(c, v02::kHeartbeat, v01::kHeartbeat);
        c.next_heartbeat = now + impl_->options.heartbeat_interval;
        // 18/MDP: a broker silent for `liveness` intervals is gone.
        if (--c.liveness <= 0) impl_->Lose(c);
      }
    }
    // What has arrived already first: a burst read in one go is handed
    // out without polling again.
    for (size_t i = 0; i < impl_->connections.size(); ++i) {
      Connection& c = impl_->connections[i];
      while (c.socket && c.socket->Recv(&impl_->message)) {
        if (auto request = impl_->Handle(c, i, impl_->message)) return request;
      }
    }
    // About to wait: what replies were held back go now.
    for (Connection& c : impl_->connections) {
      if (c.socket) c.socket->Uncork();
    }
    std::vector<zmq_pollitem_t>& items = impl_->poll_items;
    std::vector<size_t>& polled = impl_->polled;  // connections polled, and
    std::vector<size_t>& first = impl_->first;    // where their items start
    items.clear();
    polled.clear();
    first.clear();
    if (impl_->wake) items.push_back({impl_->wake->handle(), 0, ZMQ_POLLIN, 0});
    auto wait = std::min(kMaxWait, std::chrono::duration_cast<milliseconds>(until - now));
    for (size_t i = 0; i < impl_->connections.size(); ++i) {
      if (impl_->connections[i].socket) {
        polled.push_back(i);
        first.push_back(impl_->connections[i].socket->AddPollItems(&items));
        wait = impl_->connections[i].socket->BoundWait(wait);
      }
    }
    if (polled.empty()) {
      std::this_thread::sleep_for(std::max(wait, milliseconds(1)));
      continue;
    }
    client::Poll(items.data(), items.size(), std::max(wait, milliseconds(0)));
    if (impl_->wake && (items[0].revents & ZMQ_POLLIN)) {
      while (!client::RecvFrames(*impl_->wake).empty()) {
      }
      impl_->woken = true;
      return std::nullopt;
    }
    for (size_t k = 0; k < polled.size(); ++k) {
      Connection& c = impl_->connections[polled[k]];
      c.socket->HandlePollItems(&items[first[k]]);
      // What it received before the end is still handed out (above, on the
      // next turn); then the worker starts afresh.
      if (c.socket->closed() && !c.socket->has_message()) {
        // A broker that was never reached is tried again at the first
        // delay, as libzmq retries a connection; backing off is for
        // brokers that were there and went, or said DISCONNECT.
        if (c.socket->connections() == 0) c.backoff = milliseconds(0);
        impl_->Lose(c);
      }
    }
  }
  return std::nullopt;
}

void Worker::Serve(const Handler& handler) {
  if (!impl_->AnyUsable()) return;  // status() says why
  const std::string address =
      "inproc://plantd-worker-" + std::to_string(reinterpret_cast<uintptr_t>(this));
  impl_->wake = std::make_unique<zmq::socket_t>(impl_->context, zmq::socket_type::pull);
  impl_->wake->bind(address);

  std::mutex mutex;
  std::condition_variable ready;
  std::deque<WorkerRequest> jobs;                         // GUARDED_BY(mutex)
  std::deque<std::pair<WorkerRequest, Frames>> finished;  // GUARDED_BY(mutex)
  bool done = false;                                      // GUARDED_BY(mutex)
  std::vector<std::thread> threads;
  for (int i = 0; i < std::max(1, impl_->options.credit); ++i) {
    threads.emplace_back([&] {
      zmq::socket_t bell(impl_->context, zmq::socket_type::push);
      bell.set(zmq::sockopt::linger, 0);
      bell.connect(address);
      while (true) {
        WorkerRequest job;
        {
          std::unique_lock<std::mutex> lock(mutex);
          ready.wait(lock, [&] { return done || !jobs.empty(); });
          if (jobs.empty()) return;
          job = std::move(jobs.front());
          jobs.pop_front();
        }
        Frames reply = handler(job);
        {
          std::lock_guard<std::mutex> lock(mutex);
          finished.emplace_back(std::move(job), std::move(reply));
        }
        bell.send(zmq::str_buffer(""), zmq::send_flags::dontwait);
      }
    });
  }
  while (!stopped()) {
    auto request = Receive(milliseconds(100));
    if (request) {
      std::lock_guard<std::mutex> lock(mutex);
      jobs.push_back(std::move(*request));
      ready.notify_one();
    }
    std::deque<std::pair<WorkerRequest, Frames>> replies;
    {
      std::lock_guard<std::mutex> lock(mutex);
      replies.swap(finished);
    }
    for (auto& [job, reply] : replies) (void)Reply(job, reply);
  }
  {
    std::lock_guard<std::mutex> lock(mutex);
    done = true;
  }
  ready.notify_all();
  for (std::thread& t : threads) t.join();
  impl_->wake.reset();
}

Status Worker::Partial(const WorkerRequest& request, const Frames& body) {
  if (impl_->v01()) return Status::InvalidArgument("MDP/0.1 has no PARTIAL reply");
  if (request.connection >= impl_->connections.size())
    return Status::InvalidArgument("bad request");
  Connection& c = impl_->connections[request.connection];
  if (!c.socket) return Status::Unavailable("the broker connection was lost");
  Frames args{request.address, ""};
  args.insert(args.end(), body.begin(), body.end());
  // A PARTIAL goes at once: the handler is still at work, and the client
  // takes each one as a sign of life.
  c.socket->Uncork();
  impl_->Send(c, v02::kPartial, 0, args);
  return Status::Ok();
}

Status Worker::Reply(const WorkerRequest& request, const Frames& body) {
  if (request.connection >= impl_->connections.size())
    return Status::InvalidArgument("bad request");
  Connection& c = impl_->connections[request.connection];
  if (!c.socket) return Status::Unavailable("the broker connection was lost");
  Frames args{request.address, ""};
  args.insert(args.end(), body.begin(), body.end());
  impl_->SendReply(c, v02::kFinal, v01::kReply, args);
  return Status::Ok();
}

}  // namespace plantd::mdp

#include "broker/broker.h"

#include <cstring>
#include <thread>

#include "broker/mmi.h"
#include "log/log.h"

namespace plantd::broker {
namespace {

using std::chrono::milliseconds;

// Bound on how long one poll may sleep, so Stop() is seen promptly.
constexpr milliseconds kMaxPollWait{100};
// How many messages to route before looking at the timers again.
constexpr int kReceiveBatch = 256;
// Services and client lanes with nothing to do are forgotten after this.
constexpr std::chrono::seconds kIdleForget{60};
constexpr milliseconds kSnapshotInterval{500};

InvalidReason InvalidReasonFor(mdp::DecodeError error) {
  switch (error) {
    case mdp::DecodeError::kUnknownHeader: return InvalidReason::kUnknownHeader;
    case mdp::DecodeError::kUnknownCommand: return InvalidReason::kUnknownCommand;
    case mdp::DecodeError::kEmptyService: return InvalidReason::kEmptyService;
    case mdp::DecodeError::kTooFewFrames:
    case mdp::DecodeError::kNone: break;
  }
  return InvalidReason::kTooFewFrames;
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

Broker::Broker(zmq::context_t& context, const BrokerOptions& options, const Clock& clock,
               SnapshotBoard* board)
    : options_(options),
      clock_(clock),
      board_(board),
      // Either transport: replies to a peer that has gone fail loudly
      // (EHOSTUNREACH) so the core can count them and drop a dead worker at
      // once; a worker reconnecting with its routing id takes its entry over;
      // a message over the size limit is dropped and counted (libzmq instead
      // disconnects a peer whose single frame is over it).
      router_(transport::MakeRouterSocket(options.transport == Transport::kZmq
                                              ? transport::RouterKind::kZmq
                                              : transport::RouterKind::kNative,
                                          context,
                                          {.send_hwm = options.socket_hwm,
                                           .recv_hwm = options.socket_hwm,
                                           .max_message_size = options.max_message_size,
                                           .on_oversized =
                                               [this](std::string_view id) {
                                                 ++counters_.messages_in;
                                                 CountInvalid(InvalidReason::kTooLarge, id);
                                               }})) {
  frames_.resize(8);
  started_ = clock_.Now();
}

Broker::~Broker() = default;

Status Broker::Bind() {
  const std::vector<std::string> endpoints = options_.MajordomoEndpoints();
  for (size_t i = 0; i < endpoints.size(); ++i) {
    const char* key = i == 0   ? "endpoint"
                      : i == 1 ? "client_endpoint"
                               : "extra_endpoints";
    std::string address = endpoints[i];
    if (!address.empty() && address[0] == '@') address.erase(0, 1);
    if (Status s = router_->Bind(address); !s.ok()) {
      return Status::Error("cannot bind " + address + " (" + key + "): " + s.message());
    }
    bound_endpoints_.push_back(address);
  }
  bound_ = true;
  // Published here, on the caller's thread, so that /readyz and /livez have
  // a snapshot as soon as the app reports itself started, before the core
  // thread has been scheduled.
  board_->Publish(BuildSnapshot(clock_.Now()));
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// The loop.

void Broker::Run() {
  SteadyTime now = clock_.Now();
  next_heartbeat_ = now + options_.heartbeat_interval;
  next_snapshot_ = now;
  next_housekeeping_ = now;  // the first turn also publishes a snapshot (Bind did already)

  while (!stop_.load(std::memory_order_relaxed)) {
    now = clock_.Now();
    SteadyTime next = std::min({next_heartbeat_, next_snapshot_, next_housekeeping_});
    auto wait = std::chrono::duration_cast<milliseconds>(next - now);
    wait = std::clamp(wait, milliseconds(0), kMaxPollWait);
    router_->Wait(wait);
    ReceiveAndRoute();
    OnTick(clock_.Now());
    if (int ms = stall_ms_.exchange(0, std::memory_order_relaxed); ms > 0) {
      std::this_thread::sleep_for(milliseconds(ms));
    }
  }

  // Shutdown: tell every worker, so it reconnects to whoever replaces us.
  std::vector<Worker*> all;
  workers_.ForEach([&all](Worker* w) { all.push_back(w); });
  for (Worker* w : all) RemoveWorker(w, WorkerRemoval::kShutdown, /*send_disconnect=*/true);
  size_t dropped = 0;
  for (auto& [name, service] : services_) {
    while (Request* r = service->queue().Pop()) {
      requests_.Release(r);
      ++dropped;
    }
  }
  if (dropped > 0) PLANTD_LOG_WARN("shutdown dropped queued requests", {{"count", dropped}});
  board_->Publish(BuildSnapshot(clock_.Now()));
  // The DISCONNECTs above get half a second to leave.
  router_->Close(milliseconds(500));
}

void Broker::ReceiveAndRoute() {
  for (int n = 0; n < kReceiveBatch; ++n) {
    bool too_large = false;
    bool too_many = false;
    const size_t count = ReceiveMessage(&too_large, &too_many);
    if (count == 0) return;  // nothing more to read
    ++counters_.messages_in;
    const std::string_view identity = mdp::View(frames_[0]);
    if (too_many) {
      CountInvalid(InvalidReason::kTooManyFrames, identity);
    } else if (too_large) {
      CountInvalid(InvalidReason::kTooLarge, identity);
    } else {
      RouteMessage(count);
    }
  }
}

// Reads one whole message into frames_, reusing their storage. Frames past
// max_message_frames are read and discarded so the next message starts clean.
size_t Broker::ReceiveMessage(bool* too_large, bool* too_many) {
  size_t count = 0;
  size_t bytes = 0;
  const size_t limit = options_.max_message_frames + 1;  // + routing id
  while (true) {
    zmq::message_t* target;
    if (count < limit) {
      if (count == frames_.size()) frames_.emplace_back();
      target = &frames_[count];
    } else {
      target = &discard_;
      *too_many = true;
    }
    bool more = false;
    if (!router_->Receive(target->handle(), &more)) return count;  // nothing waiting
    bytes += target->size();
    if (count < limit) ++count;
    if (!more) break;
  }
  *too_large = bytes > options_.max_message_size;
  return count;
}

void Broker::RouteMessage(size_t count) {
  mdp::Decoded d;
  const mdp::DecodeError error = mdp::Decode(frames_.data(), count, &d);
  if (error != mdp::DecodeError::kNone) {
    const std::string_view identity = mdp::View(frames_[0]);
    CountInvalid(InvalidReasonFor(error), identity);
    // 18/MDP: a peer that sends an invalid message is treated as invalid; a
    // registered worker is disconnected (its request moves on).
    if (Worker* w = workers_.Find(identity)) {
      Service* s = w->service;
      RemoveWorker(w, WorkerRemoval::kProtocolViolation, true);
      DispatchPending(s);
    }
    return;
  }
  if (d.role == mdp::Role::kClient) {
    HandleClient(d, count);
  } else {
    HandleWorker(d, count);
  }
}

// ---------------------------------------------------------------------------
// Clients.

void Broker::HandleClient(const mdp::Decoded& d, size_t count) {
  const std::string_view name = mdp::View(frames_[d.service]);
  if (StartsWith(name, mdp::kMmiPrefix) || name == mdp::kBrokerService) {
    HandleManagement(d, count);
    return;
  }
  Service* s = FindOrCreateService(name);
  if (s == nullptr) {
    ++counters_.services_refused;
    PLANTD_LOG_DEBUG("request refused: too many services",
                     {{"service", name}, {"max_services", options_.max_services}});
    return;
  }
  const SteadyTime now = clock_.Now();
  s->last_active = now;
  if (s->queue().size() >= options_.max_queue_per_service) {
    ++s->counters().refused;
    PLANTD_LOG_DEBUG("request refused: queue full",
                     {{"service", name}, {"queued", s->queue().size()}});
    return;
  }
  Request* r = requests_.Acquire();
  r->id = next_request_id_++;
  r->client.swap(frames_[0]);
  for (size_t i = d.envelope_begin; i < d.envelope_end; ++i) {
    r->envelope.emplace_back(std::move(frames_[i]));
  }
  r->client_dialect = d.dialect;
  r->service = s;
  r->received = now;
  r->dispatches = 0;
  for (size_t i = d.body_begin; i < count; ++i) {
    r->body.emplace_back(std::move(frames_[i]));
  }
  ++s->counters().requests;

  if (s->queue().empty()) {
    if (Worker* w = s->TakeMostSpare()) {
      if (Dispatch(w, r)) {
        if (w->spare() > 0) s->MakeAvailable(w);
        return;
      }
      // w was unreachable and is gone; r is back in the queue.
      DispatchPending(s);
      return;
    }
  }
  s->queue().Push(r, now);
  DispatchPending(s);
}

void Broker::HandleManagement(const mdp::Decoded& d, size_t count) {
  ++counters_.mmi_requests;
  const std::string_view service = mdp::View(frames_[d.service]);
  std::vector<std::string_view> body;
  for (size_t i = d.body_begin; i < count; ++i) body.push_back(mdp::View(frames_[i]));

  std::shared_ptr<BrokerSnapshot> snap;
  SnapshotSource source = [&]() -> const BrokerSnapshot& {
    // MMI answers need no per-worker detail: skip building it.
    if (!snap) snap = BuildSnapshot(clock_.Now(), /*with_workers=*/false);
    return *snap;
  };
  const std::vector<std::string> reply = service == mdp::kBrokerService
                                             ? AnswerBrokerService(body, source)
                                             : AnswerMmi(service, body, source);
  if (!SendIdentity(frames_[0].data(), frames_[0].size())) {
    ++counters_.client_unreachable;
    return;
  }
  SendClientPrefix(&frames_[d.envelope_begin], d.envelope_end - d.envelope_begin, d.dialect,
                   /*final=*/true);
  SendCopyOf(service.data(), service.size(), !reply.empty());
  for (size_t i = 0; i < reply.size(); ++i) {
    SendCopyOf(reply[i].data(), reply[i].size(), i + 1 < reply.size());
  }
  ++counters_.messages_out;
}

// ---------------------------------------------------------------------------
// Workers.

void Broker::HandleWorker(const mdp::Decoded& d, size_t count) {
  const std::string_view identity = mdp::View(frames_[0]);
  if (d.command == mdp::Command::kReady) {
    HandleReady(d);
    return;
  }
  Worker* w = workers_.Find(identity);
  if (w == nullptr) {
    if (d.command == mdp::Command::kDisconnect) return;  // already forgotten
    // 18/MDP: any command but READY from a worker that has not sent READY
    // is a protocol error: DISCONNECT it.
    CountInvalid(InvalidReason::kNotReady, identity);
    SendWorkerCommand(identity, d.dialect, mdp::Command::kDisconnect);
    return;
  }
  // 18/MDP: any command from a worker counts as a heartbeat.
  const SteadyTime now = clock_.Now();
  w->last_seen = now;
  w->expires_at = now + options_.HeartbeatExpiry();
  switch (d.command) {
    case mdp::Command::kHeartbeat:
      return;
    case mdp::Command::kDisconnect: {
      Service* s = w->service;
      RemoveWorker(w, WorkerRemoval::kDisconnect, /*send_disconnect=*/false);
      DispatchPending(s);
      return;
    }
    case mdp::Command::kPartial:
    case mdp::Command::kFinal:
      HandleReply(w, d, count);
      return;
    default:
      return;  // the decoder gives workers no other command
  }
}

void Broker::HandleReady(const mdp::Decoded& d) {
  const std::string_view identity = mdp::View(frames_[0]);
  const std::string_view name = mdp::View(frames_[d.service]);
  if (Worker* existing = workers_.Find(identity)) {
    // 18/MDP: a second READY is a protocol error. The old registration goes
    // (and its request moves on); the worker may register again.
    CountInvalid(InvalidReason::kDuplicateReady, identity);
    Service* s = existing->service;
    RemoveWorker(existing, WorkerRemoval::kProtocolViolation, /*send_disconnect=*/true);
    DispatchPending(s);
    return;
  }
  if (StartsWith(name, mdp::kMmiPrefix) || name == mdp::kBrokerService) {
    // 18/MDP: a worker may not offer a service the broker answers itself.
    CountInvalid(InvalidReason::kReservedService, identity);
    SendWorkerCommand(identity, d.dialect, mdp::Command::kDisconnect);
    return;
  }
  Service* s = workers_.size() < options_.max_workers ? FindOrCreateService(name) : nullptr;
  if (s == nullptr) {
    ++counters_.workers_refused;
    PLANTD_LOG_WARN("worker refused: limit reached",
                    {{"service", name},
                     {"workers", workers_.size()},
                     {"services", services_.size()}});
    SendWorkerCommand(identity, d.dialect, mdp::Command::kDisconnect);
    return;
  }
  Worker* w = workers_.Add(identity);
  w->dialect = d.dialect;
  w->service = s;
  w->credit = ParseCredit(d);
  w->in_flight.reserve(static_cast<size_t>(w->credit));
  const SteadyTime now = clock_.Now();
  w->last_seen = now;
  w->expires_at = now + options_.HeartbeatExpiry();
  s->AddWorker();
  s->last_active = now;
  ++counters_.workers_registered;
  PLANTD_LOG_DEBUG("worker ready", {{"service", name},
                                    {"worker", log::Hex(identity)},
                                    {"dialect", mdp::DialectName(d.dialect)},
                                    {"credit", w->credit}});
  WorkerBecameIdle(w);
}

void Broker::HandleReply(Worker* w, const mdp::Decoded& d, size_t count) {
  const zmq::message_t& address = frames_[d.address];
  uint64_t id = 0;
  size_t slot = w->in_flight.size();
  if (address.size() == sizeof(id)) {
    std::memcpy(&id, address.data(), sizeof(id));
    // A credit worker holds a handful of requests: a scan beats a map.
    for (size_t i = 0; i < w->in_flight.size(); ++i) {
      if (w->in_flight[i]->id == id) {
        slot = i;
        break;
      }
    }
  }
  if (slot == w->in_flight.size()) {
    // A reply to a request this worker no longer holds (it was re-sent
    // elsewhere, or never existed): dropping it keeps one FINAL per request.
    CountInvalid(InvalidReason::kStaleReply, mdp::View(frames_[0]));
    return;
  }
  Request* r = w->in_flight[slot];
  const bool final = d.command == mdp::Command::kFinal;
  Service* s = r->service;
  if (final) {
    // The worker is free again: give it its next request before forwarding
    // this reply. Where workers' turn-round bounds throughput (more requests
    // than workers), this keeps them busy a little longer.
    w->in_flight[slot] = w->in_flight.back();  // replies come in any order
    w->in_flight.pop_back();
    if (w->in_flight.empty()) s->WorkerIdle();
    ++w->served;
    WorkerBecameIdle(w);  // may remove w if it became unreachable: w is not used below
  }
  if (final || mdp::ClientTakesPartials(r->client_dialect)) {
    if (SendIdentity(r->client.data(), r->client.size())) {
      SendClientPrefix(r->envelope.data(), r->envelope.size(), r->client_dialect, final);
      const std::string& name = s->name();
      SendCopyOf(name.data(), name.size(), d.body_begin < count);
      for (size_t i = d.body_begin; i < count; ++i) {
        router_->Send(frames_[i].handle(), i + 1 < count);
      }
      ++counters_.messages_out;
      ++(final ? s->counters().replies : s->counters().partials);
    } else {
      ++counters_.client_unreachable;
    }
  }
  if (!final) return;
  const SteadyTime now = clock_.Now();
  s->counters().latency.Record(now - r->received);
  s->last_active = now;
  requests_.Release(r);
}

// ---------------------------------------------------------------------------
// Dispatch.

int Broker::ParseCredit(const mdp::Decoded& d) const {
  if (d.credit == 0) return 1;  // a standard worker: one request at a time
  const std::string_view text = mdp::View(frames_[d.credit]);
  int credit = 0;
  for (char c : text) {
    if (c < '0' || c > '9' || credit > kMaxWorkerCredit) return 1;
    credit = credit * 10 + (c - '0');
  }
  // Anything unreadable or out of range: the standard credit of one.
  return credit >= 1 && credit <= kMaxWorkerCredit ? credit : 1;
}

Service* Broker::FindOrCreateService(std::string_view name) {
  auto it = services_.find(name);
  if (it != services_.end()) return it->second.get();
  if (services_.size() >= options_.max_services) return nullptr;
  auto s = std::make_unique<Service>(std::string(name));
  s->last_active = clock_.Now();
  Service* raw = s.get();
  services_.emplace(raw->name(), std::move(s));
  return raw;
}

// w has a free slot (it registered, or a request of its own finished): file
// it by its spare credit, then serve the queue from whoever has the most.
void Broker::WorkerBecameIdle(Worker* w) {
  Service* s = w->service;
  s->MakeAvailable(w);
  DispatchPending(s);
}

void Broker::DispatchPending(Service* s) {
  while (!s->queue().empty() && s->has_available()) {
    Worker* w = s->TakeMostSpare();
    Request* r = s->queue().Pop();
    // On failure r is queued again and w removed: the loop goes on.
    if (Dispatch(w, r) && w->spare() > 0) s->MakeAvailable(w);
  }
}

bool Broker::Dispatch(Worker* w, Request* r) {
  w->in_flight.push_back(r);
  if (w->in_flight.size() == 1) w->service->WorkerBusy();
  ++r->dispatches;
  if (!SendIdentity(w->identity.data(), w->identity.size())) {
    // Not a worker failure the request should pay for.
    --r->dispatches;
    RemoveWorker(w, WorkerRemoval::kUnreachable, /*send_disconnect=*/false);
    return false;
  }
  SendPrefix(mdp::WorkerCommandPrefix(w->dialect, mdp::Command::kRequest));
  // 18/MDP lets the broker choose the client address: it is our request id,
  // which is how a late or duplicate reply is recognised.
  SendCopyOf(&r->id, sizeof(r->id), true);
  SendConst(std::string_view(), !r->body.empty());
  for (size_t i = 0; i < r->body.size(); ++i) {
    // A copy shares the frame's buffer (reference count); the original stays
    // with the request in case it must be sent again.
    zmq_msg_t copy;
    zmq_msg_init(&copy);
    zmq_msg_copy(&copy, r->body[i].handle());
    if (!router_->Send(&copy, i + 1 < r->body.size())) zmq_msg_close(&copy);
  }
  ++counters_.messages_out;
  return true;
}

void Broker::RemoveWorker(Worker* w, WorkerRemoval reason, bool send_disconnect) {
  if (send_disconnect) SendWorkerCommand(w->identity, w->dialect, mdp::Command::kDisconnect);
  Service* s = w->service;
  s->Withdraw(w);
  s->RemoveWorker();
  if (!w->in_flight.empty()) s->WorkerIdle();
  ++counters_.workers_removed[static_cast<size_t>(reason)];
  if (reason == WorkerRemoval::kShutdown) {
    PLANTD_LOG_DEBUG("worker removed", {{"service", s->name()},
                                        {"worker", log::Hex(w->identity)},
                                        {"reason", WorkerRemovalName(reason)}});
  } else {
    PLANTD_LOG_INFO("worker removed", {{"service", s->name()},
                                       {"worker", log::Hex(w->identity)},
                                       {"reason", WorkerRemovalName(reason)},
                                       {"requests_held", w->in_flight.size()}});
  }
  // Newest first, so that PushFront leaves the oldest at the head.
  for (auto it = w->in_flight.rbegin(); it != w->in_flight.rend(); ++it) {
    Request* r = *it;
    if (reason == WorkerRemoval::kShutdown) {
      requests_.Release(r);
    } else if (r->dispatches > options_.max_redispatch) {
      ++s->counters().failed;
      PLANTD_LOG_WARN("request dropped: its workers kept failing",
                      {{"service", s->name()}, {"dispatches", r->dispatches}});
      requests_.Release(r);
    } else {
      // Workers are assumed idempotent (18/MDP): send it again, first in line.
      ++s->counters().redispatched;
      s->queue().PushFront(r, clock_.Now());
    }
  }
  w->in_flight.clear();
  workers_.Remove(w);
}

// ---------------------------------------------------------------------------
// Output.

bool Broker::SendIdentity(const void* data, size_t size) {
  zmq_msg_t msg;
  zmq_msg_init_size(&msg, size);
  std::memcpy(zmq_msg_data(&msg), data, size);
  // An unknown peer fails here (EHOSTUNREACH) and a peer at its high-water
  // mark with EAGAIN; nothing has been queued.
  if (!router_->Send(&msg, true)) {
    zmq_msg_close(&msg);
    return false;
  }
  return true;
}

void Broker::SendConst(std::string_view frame, bool more) {
  // Constant data: libzmq references it without copying or allocating.
  zmq_msg_t msg;
  zmq_msg_init_data(&msg, const_cast<char*>(frame.data()), frame.size(), nullptr, nullptr);
  if (!router_->Send(&msg, more)) zmq_msg_close(&msg);
}

void Broker::SendCopyOf(const void* data, size_t size, bool more) {
  zmq_msg_t msg;
  zmq_msg_init_size(&msg, size);  // inline, no allocation, up to 33 bytes
  if (size > 0) std::memcpy(zmq_msg_data(&msg), data, size);
  if (!router_->Send(&msg, more)) zmq_msg_close(&msg);
}

void Broker::SendPrefix(const mdp::Prefix& prefix) {
  for (size_t i = 0; i < prefix.count; ++i) SendConst(prefix.frames[i], true);
}

void Broker::SendClientPrefix(const zmq::message_t* envelope, size_t envelope_count,
                              mdp::Dialect dialect, bool final) {
  for (size_t i = 0; i < envelope_count; ++i) {
    SendCopyOf(envelope[i].data(), envelope[i].size(), true);
  }
  // The envelope ends with an empty frame; 7/MDP's reply starts with one.
  if (envelope_count > 0 && dialect != mdp::Dialect::kMdp01) SendConst(std::string_view(), true);
  SendPrefix(mdp::ClientReplyPrefix(dialect, final));
}

bool Broker::SendWorkerCommand(std::string_view identity, mdp::Dialect dialect,
                               mdp::Command command) {
  if (!SendIdentity(identity.data(), identity.size())) return false;
  const mdp::Prefix prefix = mdp::WorkerCommandPrefix(dialect, command);
  for (size_t i = 0; i < prefix.count; ++i) SendConst(prefix.frames[i], i + 1 < prefix.count);
  ++counters_.messages_out;
  return true;
}

// ---------------------------------------------------------------------------
// Timers.

void Broker::OnTick(SteadyTime now) {
  if (now >= next_heartbeat_) {
    SendHeartbeats();
    next_heartbeat_ = now + options_.heartbeat_interval;
  }
  if (now >= next_housekeeping_) {
    ExpireWorkers(now);
    ExpireRequests(now);
    ForgetIdleServices(now);
    // Often enough that expiry is late by a small fraction of the limits.
    auto period = std::min(options_.heartbeat_interval, options_.request_expiry) / 4;
    period = std::clamp(period, milliseconds(5), milliseconds(250));
    next_housekeeping_ = now + period;
  }
  if (now >= next_snapshot_) {
    board_->Publish(BuildSnapshot(now));
    next_snapshot_ = now + kSnapshotInterval;
  }
}

void Broker::SendHeartbeats() {
  // 18/MDP: the broker heartbeats every worker, busy or idle. A worker that
  // cannot be reached is caught by ExpireWorkers.
  workers_.ForEach([this](Worker* w) {
    SendWorkerCommand(w->identity, w->dialect, mdp::Command::kHeartbeat);
  });
}

void Broker::ExpireWorkers(SteadyTime now) {
  std::vector<Worker*> expired;
  workers_.ForEach([&](Worker* w) {
    if (w->expires_at <= now) expired.push_back(w);
  });
  for (Worker* w : expired) {
    Service* s = w->service;
    RemoveWorker(w, WorkerRemoval::kHeartbeatExpired, /*send_disconnect=*/true);
    DispatchPending(s);
  }
}

void Broker::ExpireRequests(SteadyTime now) {
  const SteadyTime cutoff = now - options_.request_expiry;
  for (auto& [name, s] : services_) {
    Service* service = s.get();
    service->queue().RemoveQueuedBefore(cutoff, [&](Request* r) {
      ++service->counters().expired;
      PLANTD_LOG_DEBUG("request expired", {{"service", service->name()}});
      requests_.Release(r);
    });
  }
}

void Broker::ForgetIdleServices(SteadyTime now) {
  const SteadyTime cutoff = now - std::max<std::chrono::nanoseconds>(
                                      kIdleForget, options_.request_expiry);
  for (auto it = services_.begin(); it != services_.end();) {
    Service* s = it->second.get();
    s->queue().ForgetIdleClients(cutoff);
    if (s->worker_count() == 0 && s->queue().empty() && s->last_active < cutoff) {
      const ServiceCounters& c = s->counters();
      retired_.requests += c.requests;
      retired_.replies += c.replies;
      retired_.partials += c.partials;
      retired_.redispatched += c.redispatched;
      retired_.expired += c.expired;
      retired_.refused += c.refused;
      retired_.failed += c.failed;
      it = services_.erase(it);
    } else {
      ++it;
    }
  }
}

void Broker::CountInvalid(InvalidReason reason, std::string_view identity) {
  ++counters_.invalid[static_cast<size_t>(reason)];
  PLANTD_LOG_DEBUG("invalid message dropped",
                   {{"reason", InvalidReasonName(reason)}, {"peer", log::Hex(identity)}});
}

std::shared_ptr<BrokerSnapshot> Broker::BuildSnapshot(SteadyTime now, bool with_workers) const {
  auto snap = std::make_shared<BrokerSnapshot>();
  snap->taken_at = std::chrono::system_clock::now();
  snap->taken_at_steady = std::chrono::steady_clock::now();
  snap->uptime_seconds = std::chrono::duration<double>(now - started_).count();
  snap->endpoints_bound = bound_;
  snap->endpoints = bound_endpoints_;
  const transport::RouterSocket::Stats router = router_->stats();
  snap->connections = router.connections;
  snap->connections_refused = router.refused;
  snap->counters = counters_;
  snap->totals = retired_;
  snap->requests_in_memory = requests_.in_use();
  snap->services.reserve(services_.size());
  for (const auto& [name, s] : services_) {
    ServiceSnapshot ss;
    ss.name = name;
    ss.workers = s->worker_count();
    ss.idle_workers = s->worker_count() - s->busy_count();
    ss.queued = s->queue().size();
    ss.counters = s->counters();
    snap->totals.requests += ss.counters.requests;
    snap->totals.replies += ss.counters.replies;
    snap->totals.partials += ss.counters.partials;
    snap->totals.redispatched += ss.counters.redispatched;
    snap->totals.expired += ss.counters.expired;
    snap->totals.refused += ss.counters.refused;
    snap->totals.failed += ss.counters.failed;
    snap->services.push_back(std::move(ss));
  }
  std::sort(snap->services.begin(), snap->services.end(),
            [](const ServiceSnapshot& a, const ServiceSnapshot& b) { return a.name < b.name; });
  if (!with_workers) return snap;
  snap->workers.reserve(workers_.size());
  workers_.ForEach([&](const Worker* w) {
    WorkerSnapshot ws;
    ws.identity = log::Hex(w->identity);
    ws.service = w->service->name();
    ws.dialect = mdp::DialectName(w->dialect);
    ws.busy = !w->in_flight.empty();
    ws.credit = w->credit;
    ws.in_flight = w->in_flight.size();
    ws.last_seen_seconds_ago = std::chrono::duration<double>(now - w->last_seen).count();
    ws.served = w->served;
    snap->workers.push_back(std::move(ws));
  });
  return snap;
}

}  // namespace plantd::broker

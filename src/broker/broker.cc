#include "broker/broker.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "broker/admin.h"
#include "broker/mmi.h"
#include "broker/short_id.h"
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

using log::Printable;

// The status frame of an error reply (docs/protocol.md, "Error replies"):
// 429 when the client itself asked for too much, 403 when it may not ask
// (from there, or with its key), 503 when the broker cannot take the
// request now.
const char* ErrorStatus(refusal::Reason reason) {
  switch (reason) {
    case refusal::Reason::kClientServices: return "429";
    case refusal::Reason::kAdminRemote:  // not allowed from there, ever
    case refusal::Reason::kDeniedCall:   // not for this key
      return "403";
    default: return "503";
  }
}

constexpr std::string_view kStoreDisabled = "store disabled";

std::unique_ptr<transport::RouterSocket> MakeRouter(const transport::RouterFactory& make_router,
                                                    Transport kind, zmq::context_t& context,
                                                    const transport::RouterOptions& options) {
  if (make_router) return make_router(options);
  return transport::MakeRouterSocket(
      kind == Transport::kZmq ? transport::RouterKind::kZmq : transport::RouterKind::kNative,
      context, options);
}

}  // namespace

Broker::Broker(zmq::context_t& context, const BrokerOptions& options, const Clock& clock,
               SnapshotBoard* board, std::shared_ptr<transport::BufferBudget> budget,
               const transport::RouterFactory& make_router,
               std::shared_ptr<const transport::ServerSecurity> security)
    : options_(options),
      clock_(clock),
      board_(board),
      // Either transport: replies to a peer that has gone fail loudly
      // (EHOSTUNREACH) so the core can count them and drop a dead worker at
      // once; a routing id held by a live connection cannot be taken (no handover);
      // a message over the size limit is dropped and counted (libzmq instead
      // disconnects a peer whose single frame is over it).
      router_(MakeRouter(make_router, options.transport, context,
                         {.send_hwm = options.socket_hwm,
                          .recv_hwm = options.socket_hwm,
                          .max_message_size = options.max_message_size,
                          .max_message_frames = options.max_message_frames,
                          .on_oversized =
                              [this](std::string_view id) {
                                ++counters_.messages_in;
                                CountInvalid(InvalidReason::kTooLarge, id);
                              },
                          .on_too_many_frames =
                              [this](std::string_view id) {
                                ++counters_.messages_in;
                                CountInvalid(InvalidReason::kTooManyFrames, id);
                              },
                          .max_out_bytes = options.limits.max_connection_out_bytes,
                          .write_timeout = options.limits.write_timeout,
                          .handshake_timeout = options.limits.handshake_timeout,
                          .security = security,
                          .budget = std::move(budget)})),
      access_rules_(std::move(security)) {
  frames_.resize(8);
  started_ = clock_.Now();
}

Broker::~Broker() {
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

Status Broker::Bind() {
  const std::vector<std::string> endpoints = options_.MajordomoEndpoints();
  for (size_t i = 0; i < endpoints.size(); ++i) {
    const char* key = i == 0 ? "endpoint" : i == 1 ? "client_endpoint" : "extra_endpoints";
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

void Broker::EnableTitanic(store::RequestStore* store) {
  Titanic::Options o;
  // Counted across restarts by the store: the first dispatch and as many
  // again as an ordinary request gets.
  o.max_dispatches = 1 + static_cast<uint32_t>(std::max(0, options_.max_redispatch));
  titanic_ = std::make_unique<Titanic>(store, this, o);
}

// ---------------------------------------------------------------------------
// The loop.

void Broker::Run() {
  BeginRun();
  while (Turn()) {
  }
}

void Broker::BeginRun() {
  const SteadyTime now = clock_.Now();
  next_heartbeat_ = now + options_.heartbeat_interval;
  next_snapshot_ = now;
  next_housekeeping_ = now;  // the first turn also publishes a snapshot (Bind did already)
  // Besides its sockets the loop wakes for the store's completions (a
  // durable request is acknowledged as soon as its commit is done) and for a
  // reader asking for a snapshot (/status). The transport polls one fd: an
  // epoll set of both, readable while either is.
  wake_fd_ = epoll_create1(EPOLL_CLOEXEC);
  auto add_wake = [this](int fd) {
    if (fd < 0 || wake_fd_ < 0) return;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    epoll_ctl(wake_fd_, EPOLL_CTL_ADD, fd, &ev);
  };
  add_wake(board_->request_fd());
  if (titanic_) add_wake(titanic_->fd());
  router_->SetWakeFd(wake_fd_);
  if (titanic_) {
    titanic_->Start(now);
    PollTitanic();
  }
}

bool Broker::Turn() {
  const SteadyTime now = clock_.Now();
  if (!draining_ && stop_.load(std::memory_order_relaxed)) BeginDrain(now);
  if (draining_ && Drained(now)) {
    FinishShutdown();
    return false;
  }
  SteadyTime next = std::min({next_heartbeat_, next_snapshot_, next_housekeeping_});
  if (draining_) next = std::min(next, drain_deadline_);
  // Rounded up: a turn that wakes before its timer is due would find
  // nothing to do and wait again for 0 ms, spinning until it is.
  auto wait = std::chrono::ceil<milliseconds>(next - now);
  wait = std::clamp(wait, milliseconds(0), kMaxPollWait);
  router_->Wait(wait);
  if (titanic_) PollTitanic();
  // Closed connections first: a routing id freed by one may already be
  // taken by a new connection whose messages are about to be read.
  HandleDisconnected();
  ReceiveAndRoute();
  HandleDisconnected();  // peers that closed after their last message
  OnTick(clock_.Now());
  // Last, so that the answer shows everything routed this turn.
  if (uint64_t ticket = 0; board_->TakeRequest(&ticket)) {
    board_->Answer(BuildSnapshot(clock_.Now()), ticket);
  }
  if (int ms = stall_ms_.exchange(0, std::memory_order_relaxed); ms > 0) {
    std::this_thread::sleep_for(milliseconds(ms));
  }
  return true;
}

// ---------------------------------------------------------------------------
// Shutdown.

void Broker::BeginDrain(SteadyTime now) {
  draining_ = true;
  drain_deadline_ = now + options_.shutdown_grace;
  // Queued requests: no worker will take them now. Their clients hear so at
  // once and can go elsewhere.
  size_t dropped = 0;
  for (auto& [name, service] : services_) {
    while (Request* r = service->queue().Pop()) {
      DropForShutdown(r);
      ++dropped;
    }
  }
  if (dropped > 0) PLANTD_LOG_WARN("shutdown dropped queued requests", {{"count", dropped}});
  // Idle workers can go now, so they reconnect to whoever replaces us.
  std::vector<Worker*> idle;
  size_t held = 0;
  workers_.ForEach([&](Worker* w) {
    if (w->in_flight.empty()) {
      idle.push_back(w);
    } else {
      held += w->in_flight.size();
    }
  });
  for (Worker* w : idle) RemoveWorker(w, WorkerRemoval::kShutdown, /*send_disconnect=*/true);
  board_->Publish(BuildSnapshot(now));
  if (held > 0) {
    PLANTD_LOG_INFO(
        "stopping: waiting for replies",
        {{"in_flight", held}, {"grace_ms", static_cast<int64_t>(options_.shutdown_grace.count())}});
  }
}

bool Broker::Drained(SteadyTime now) const {
  // Every request left is held by a worker (the queues were emptied); and
  // titanic.* answers waiting for the store are given out.
  return (requests_.in_use() == 0 && titanic_callers_.empty()) || now >= drain_deadline_;
}

void Broker::FinishShutdown() {
  // Workers still holding requests: their clients are told, and the workers
  // are sent DISCONNECT like the others.
  std::vector<Worker*> all;
  workers_.ForEach([&all](Worker* w) { all.push_back(w); });
  size_t unanswered = 0;
  for (Worker* w : all) unanswered += w->in_flight.size();
  if (unanswered > 0) {
    PLANTD_LOG_WARN("shutdown grace over: requests left unanswered", {{"count", unanswered}});
  }
  for (Worker* w : all) RemoveWorker(w, WorkerRemoval::kShutdown, /*send_disconnect=*/true);
  board_->Publish(BuildSnapshot(clock_.Now()));
  // The DISCONNECTs and error replies above get a moment to leave; a peer
  // that reads them promptly does not make us wait.
  router_->Close(milliseconds(500));
}

void Broker::DropForShutdown(Request* r) {
  if (r->stored) {
    // It stays unfinished in the store: the next start dispatches it again.
    ReleaseStored(r);
    return;
  }
  ReplyError(r->client, r->envelope.data(), r->envelope.size(), r->client_dialect,
             r->service->name(), refusal::Reason::kShuttingDown);
  ++counters_.dropped[static_cast<size_t>(RequestDrop::kShutdown)];
  requests_.Release(r);
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
  if (const transport::AccessPolicy* policy = access_rules_.Get()) {
    if (!MayCall(*policy, d, count)) return;
  }
  if (StartsWith(name, mdp::kMmiPrefix) || name == mdp::kBrokerService) {
    HandleManagement(d, count);
    return;
  }
  if (name == kAdminService) {  // also while draining: `admin status` shows the drain
    HandleAdmin(d, count);
    return;
  }
  if (draining_) {
    ++counters_.shutdown_refused;
    RefuseRequest(refusal::Reason::kShuttingDown, d);
    return;
  }
  if (StartsWith(name, "titanic.") && Titanic::IsTitanicService(name)) {
    HandleTitanic(d, count);
    return;
  }
  Service* s = FindService(name);
  if (s == nullptr) {
    refusal::Reason refused = refusal::Reason::kServicesTotal;
    s = CreateServiceForClient(name, mdp::View(frames_[0]), &refused);
    if (s == nullptr) {
      ++counters_.services_refused;
      RefuseRequest(refused, d);
      return;
    }
  }
  const SteadyTime now = clock_.Now();
  s->last_active = now;
  if (s->queue().size() >= options_.max_queue_per_service) {
    ++s->counters().refused;
    RefuseRequest(refusal::Reason::kQueueFull, d);
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
  if (s->queue().Push(r, now)) clients_.AddLane(mdp::View(r->client), s);
  DispatchPending(s);
}

// Whether the sender's key may call the service, including, for
// titanic.request, the service the stored request will go to. A denial is
// answered with an error reply (403 denied_call), counted and logged.
bool Broker::MayCall(const transport::AccessPolicy& policy, const mdp::Decoded& d, size_t count) {
  const std::string_view peer = router_->PeerName(mdp::View(frames_[0]));
  const std::string_view service = mdp::View(frames_[d.service]);
  std::string_view denied;
  if (!policy.MayCall(peer, service)) {
    denied = service;
  } else if (service == Titanic::kRequestService && count > d.body_begin) {
    const std::string_view target = mdp::View(frames_[d.body_begin]);
    if (!policy.MayCall(peer, target)) denied = target;
  }
  if (denied.empty()) return true;
  refusal::Record(refusal::Reason::kDeniedCall, peer.empty() ? "(no key)" : peer,
                  {{"service", Printable(denied)}, {"routing_id", ShortId(mdp::View(frames_[0]))}});
  ReplyError(frames_[0], &frames_[d.envelope_begin], d.envelope_end - d.envelope_begin, d.dialect,
             service, refusal::Reason::kDeniedCall);
  return false;
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
  SendManagementReply(d, reply);
}

void Broker::SendManagementReply(const mdp::Decoded& d, const std::vector<std::string>& reply) {
  const std::string_view service = mdp::View(frames_[d.service]);
  if (!SendIdentity(frames_[0].data(), frames_[0].size())) {
    ++counters_.client_unreachable;
    return;
  }
  const bool names_service = mdp::ClientReplyNamesService(d.dialect);
  SendClientPrefix(&frames_[d.envelope_begin], d.envelope_end - d.envelope_begin, d.dialect,
                   /*final=*/true, /*more=*/names_service || !reply.empty());
  if (names_service) SendCopyOf(service.data(), service.size(), !reply.empty());
  for (size_t i = 0; i < reply.size(); ++i) {
    SendCopyOf(reply[i].data(), reply[i].size(), i + 1 < reply.size());
  }
  ++counters_.messages_out;
}

void Broker::HandleAdmin(const mdp::Decoded& d, size_t count) {
  ++counters_.mmi_requests;
  const std::string_view identity = mdp::View(frames_[0]);
  const std::string remote = router_->RemoteAddress(identity);
  if (!options_.admin.allow_remote && !IsLocalPeer(remote)) {
    refusal::Record(refusal::Reason::kAdminRemote, remote.empty() ? ShortId(identity) : remote,
                    {{"service", kAdminService}});
    ReplyError(frames_[0], &frames_[d.envelope_begin], d.envelope_end - d.envelope_begin, d.dialect,
               kAdminService, refusal::Reason::kAdminRemote);
    return;
  }
  std::vector<std::string_view> body;
  for (size_t i = d.body_begin; i < count; ++i) body.push_back(mdp::View(frames_[i]));
  const AdminCommand command = ParseAdminCommand(body);
  if (command == AdminCommand::kUnknown) {
    SendManagementReply(d, {"400", "unknown admin command; expected drain or status"});
    return;
  }
  const SteadyTime now = clock_.Now();
  const bool start_drain = command == AdminCommand::kDrain && !draining_;
  if (start_drain) {
    PLANTD_LOG_WARN(
        "admin: drain requested",
        {{"peer", remote}, {"grace_ms", static_cast<int64_t>(options_.shutdown_grace.count())}});
    // Now, not when the process notices: from this turn on new requests are
    // refused, and /readyz and MMI say so.
    BeginDrain(now);
  }
  AdminState state;
  state.draining = draining_;
  state.shutdown_grace_seconds = std::chrono::duration<double>(options_.shutdown_grace).count();
  if (draining_) {
    state.drain_remaining_seconds =
        std::max(0.0, std::chrono::duration<double>(drain_deadline_ - now).count());
  }
  workers_.ForEach([&state](const Worker* w) { state.in_flight += w->in_flight.size(); });
  SendManagementReply(d, {"200", AdminStatusJson(*BuildSnapshot(now, false), state)});
  // After the answer is queued: the process then stops as on SIGTERM (the
  // core goes on draining; Stop() finds it draining already).
  if (start_drain && drain_handler_) drain_handler_();
}

// ---------------------------------------------------------------------------
// Titanic (9/TSP durable requests).

void Broker::HandleTitanic(const mdp::Decoded& d, size_t count) {
  ++counters_.mmi_requests;
  const std::string_view service = mdp::View(frames_[d.service]);
  const uint64_t token = next_titanic_token_++;
  TitanicCaller& caller = titanic_callers_[token];
  caller.client.swap(frames_[0]);
  for (size_t i = d.envelope_begin; i < d.envelope_end; ++i) {
    caller.envelope.emplace_back(std::move(frames_[i]));
  }
  caller.dialect = d.dialect;
  caller.service = std::string(service);
  if (!titanic_) {
    ReplyToClient(token, {"500", std::string(kStoreDisabled)});
    return;
  }
  std::vector<std::string_view> body;
  body.reserve(count - d.body_begin);
  for (size_t i = d.body_begin; i < count; ++i) body.push_back(mdp::View(frames_[i]));
  // Titanic copies what it keeps; it may answer at once (a malformed request).
  titanic_->HandleRequest(token, service, body);
}

void Broker::ReplyToClient(uint64_t token, std::vector<std::string> frames) {
  auto it = titanic_callers_.find(token);
  if (it == titanic_callers_.end()) return;
  const TitanicCaller& c = it->second;
  if (SendIdentity(c.client.data(), c.client.size())) {
    const bool names_service = mdp::ClientReplyNamesService(c.dialect);
    SendClientPrefix(c.envelope.data(), c.envelope.size(), c.dialect, /*final=*/true,
                     /*more=*/names_service || !frames.empty());
    if (names_service) SendCopyOf(c.service.data(), c.service.size(), !frames.empty());
    for (size_t i = 0; i < frames.size(); ++i) {
      SendCopyOf(frames[i].data(), frames[i].size(), i + 1 < frames.size());
    }
    ++counters_.messages_out;
  } else {
    ++counters_.client_unreachable;  // the client has gone: the answer is dropped
  }
  titanic_callers_.erase(it);
}

bool Broker::DispatchStored(const store::RequestId& id, const std::string& service,
                            const store::Frames& body) {
  if (draining_) return false;  // the next start dispatches it
  if (stored_.contains(id)) return true;
  Service* s = FindService(service);
  if (s == nullptr) {
    // Not under limits.max_unserved_services: a stored request may wait for
    // a worker that is not there yet (Titanic bounds how many per service).
    if (services_.size() >= options_.max_services) return false;
    s = AddService(service);
    ++unserved_services_;
  }
  if (s->queue().size() >= options_.max_queue_per_service) return false;
  const SteadyTime now = clock_.Now();
  Request* r = requests_.Acquire();
  r->id = next_request_id_++;
  r->client.rebuild();  // no client: the lane of stored requests has the empty id
  r->client_dialect = mdp::Dialect::kMdp02;
  r->service = s;
  r->received = now;
  r->dispatches = 0;
  r->stored = true;
  r->cancelled = false;
  r->stored_id = id;
  for (const std::string& f : body) r->body.emplace_back(f.data(), f.size());
  s->queue().Push(r, now);           // no ClientRegistry lane: nobody's connection owns it
  r->queued_at = SteadyTime::max();  // never expires (request_expiry)
  s->last_active = now;
  ++s->counters().requests;
  stored_.emplace(id, r);
  // Dispatched after Titanic returns (PollTitanic), not from inside it.
  stored_queued_.push_back(s);
  return true;
}

void Broker::CancelStored(const store::RequestId& id) {
  auto it = stored_.find(id);
  if (it == stored_.end()) return;
  // Queued: dropped when it comes out. With a worker: its reply is dropped.
  it->second->cancelled = true;
}

void Broker::PollTitanic() {
  titanic_->Poll(clock_.Now());
  if (stored_queued_.empty()) return;
  // Services are not erased while Titanic runs: each pointer is live.
  for (Service* s : stored_queued_) DispatchPending(s);
  stored_queued_.clear();
}

void Broker::ReleaseStored(Request* r) {
  stored_.erase(r->stored_id);
  requests_.Release(r);
}

void Broker::FinishStored(Request* r, const mdp::Decoded& d, size_t count) {
  Service* s = r->service;
  if (!r->cancelled) {
    store::Frames reply;
    reply.reserve(count - d.body_begin);
    for (size_t i = d.body_begin; i < count; ++i) {
      reply.emplace_back(static_cast<const char*>(frames_[i].data()), frames_[i].size());
    }
    titanic_->OnStoredReply(r->stored_id, std::move(reply));
    ++s->counters().replies;
  }
  const SteadyTime now = clock_.Now();
  s->counters().latency.Record(now - r->received);
  s->last_active = now;
  ReleaseStored(r);
}

// ---------------------------------------------------------------------------
// Closed connections.

void Broker::HandleDisconnected() {
  router_->TakeDisconnected(&disconnected_);
  if (disconnected_.empty()) return;
  for (const std::string& id : disconnected_) {
    // One connection may have been a worker and a client both.
    WorkerConnectionClosed(id);
    ClientConnectionClosed(id);
  }
  disconnected_.clear();
}

void Broker::WorkerConnectionClosed(std::string_view identity) {
  Worker* w = workers_.Find(identity);
  if (w == nullptr) return;
  // Dead now, not at heartbeat expiry: what it held goes to another worker
  // at once (under the same max_redispatch rule).
  Service* s = w->service;
  RemoveWorker(w, WorkerRemoval::kConnectionClosed, /*send_disconnect=*/false);
  DispatchPending(s);
}

void Broker::ClientConnectionClosed(std::string_view identity) {
  Client* c = clients_.Find(identity);
  if (c == nullptr) return;
  // Nobody can read the replies to its queued requests: drop them before a
  // worker spends time on them. Those already with a worker finish, and
  // their replies are discarded as for any client that is gone.
  size_t dropped = 0;
  for (Service* s : c->lanes) {
    dropped += s->queue().DropClient(identity, [this](Request* r) { requests_.Release(r); });
  }
  counters_.dropped[static_cast<size_t>(RequestDrop::kClientGone)] += dropped;
  // The services it asked for that nobody serves and nobody else waits for
  // existed only for it: forget them now, not after kIdleForget.
  std::vector<Service*> created;
  created.swap(c->created);
  for (Service* s : created) s->creator = nullptr;
  clients_.Remove(c);
  for (Service* s : created) {
    if (s->worker_count() == 0 && s->queue().empty()) EraseService(services_.find(s->name()));
  }
  if (dropped > 0) {
    PLANTD_LOG_DEBUG("client gone: queued requests dropped",
                     {{"client", ShortId(identity)}, {"dropped", dropped}});
  }
}

// ---------------------------------------------------------------------------
// Refusals.

void Broker::RefuseRequest(refusal::Reason reason, const mdp::Decoded& d) {
  const std::string_view service = mdp::View(frames_[d.service]);
  // A client is named by its key where it has one (CURVE), else by its id.
  const std::string_view key = router_->PeerName(mdp::View(frames_[0]));
  refusal::Record(reason, key.empty() ? ShortId(mdp::View(frames_[0])) : std::string(key),
                  {{"service", Printable(service)}});
  ReplyError(frames_[0], &frames_[d.envelope_begin], d.envelope_end - d.envelope_begin, d.dialect,
             service, reason);
}

void Broker::ReplyError(const zmq::message_t& client, const zmq::message_t* envelope,
                        size_t envelope_count, mdp::Dialect dialect, std::string_view service,
                        refusal::Reason reason) {
  // A client that does not read its replies loses this one (its queue is
  // full): the refusal is counted all the same.
  if (!SendIdentity(client.data(), client.size())) {
    ++counters_.client_unreachable;
    return;
  }
  SendClientPrefix(envelope, envelope_count, dialect, /*final=*/true, /*more=*/true);
  if (mdp::ClientReplyNamesService(dialect)) SendCopyOf(service.data(), service.size(), true);
  SendConst(ErrorStatus(reason), true);
  SendConst(refusal::ReasonName(reason), false);
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
    case mdp::Command::kHeartbeat: return;
    case mdp::Command::kDisconnect: {
      Service* s = w->service;
      RemoveWorker(w, WorkerRemoval::kDisconnect, /*send_disconnect=*/false);
      DispatchPending(s);
      return;
    }
    case mdp::Command::kPartial:
    case mdp::Command::kFinal: HandleReply(w, d, count); return;
    default: return;  // the decoder gives workers no other command
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
  if (StartsWith(name, mdp::kMmiPrefix) || name == mdp::kBrokerService || name == kAdminService ||
      Titanic::IsTitanicService(name)) {
    // 18/MDP: a worker may not offer a service the broker answers itself.
    CountInvalid(InvalidReason::kReservedService, identity);
    SendWorkerCommand(identity, d.dialect, mdp::Command::kDisconnect);
    return;
  }
  if (draining_) {
    refusal::Record(refusal::Reason::kShuttingDown, ShortId(identity),
                    {{"service", Printable(name)}, {"role", "worker"}});
    SendWorkerCommand(identity, d.dialect, mdp::Command::kDisconnect);
    return;
  }
  const std::string_view peer = router_->PeerName(identity);
  if (const transport::AccessPolicy* policy = access_rules_.Get();
      policy != nullptr && !policy->MayServe(peer, name)) {
    refusal::Record(refusal::Reason::kDeniedServe, peer.empty() ? "(no key)" : peer,
                    {{"service", Printable(name)}, {"routing_id", ShortId(identity)}});
    SendWorkerCommand(identity, d.dialect, mdp::Command::kDisconnect);
    return;
  }
  if (workers_.size() >= options_.max_workers) {
    ++counters_.workers_refused;
    refusal::Record(refusal::Reason::kWorkersTotal, ShortId(identity),
                    {{"service", Printable(name)}, {"max_workers", options_.max_workers}});
    SendWorkerCommand(identity, d.dialect, mdp::Command::kDisconnect);
    return;
  }
  Service* s = FindOrCreateServiceForWorker(name);
  if (s == nullptr) {
    ++counters_.workers_refused;
    refusal::Record(refusal::Reason::kServicesTotal, ShortId(identity),
                    {{"service", Printable(name)}, {"max_services", options_.max_services}});
    SendWorkerCommand(identity, d.dialect, mdp::Command::kDisconnect);
    return;
  }
  MarkServed(s);
  Worker* w = workers_.Add(identity);
  w->key_name = peer;
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
  // At debug the routing id too: it ties /status (short form) to a peer.
  PLANTD_LOG_DEBUG("worker ready", {{"service", name},
                                    {"worker", ShortId(identity)},
                                    {"key", w->key_name},
                                    {"routing_id", log::Hex(identity)},
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
    if (!draining_) {
      WorkerBecameIdle(w);  // may remove w if it became unreachable: w is not used below
    } else if (w->in_flight.empty()) {
      // Stopping: its work is done, so it may go (w is not used below).
      RemoveWorker(w, WorkerRemoval::kShutdown, /*send_disconnect=*/true);
    }
  }
  if (r->stored) {
    if (final) FinishStored(r, d, count);  // a PARTIAL of a durable request is dropped
    return;
  }
  if (final || mdp::ClientTakesPartials(r->client_dialect)) {
    if (SendIdentity(r->client.data(), r->client.size())) {
      const bool names_service = mdp::ClientReplyNamesService(r->client_dialect);
      SendClientPrefix(r->envelope.data(), r->envelope.size(), r->client_dialect, final,
                       /*more=*/names_service || d.body_begin < count);
      if (names_service) {
        const std::string& name = s->name();
        SendCopyOf(name.data(), name.size(), d.body_begin < count);
      }
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

Service* Broker::FindService(std::string_view name) const {
  auto it = services_.find(name);
  return it == services_.end() ? nullptr : it->second.get();
}

Service* Broker::AddService(std::string_view name) {
  auto s = std::make_unique<Service>(std::string(name));
  s->last_active = clock_.Now();
  Service* raw = s.get();
  services_.emplace(raw->name(), std::move(s));
  return raw;
}

// A request may wait for a worker that starts a little later, so a client
// may bring a service into being; but only so many per connection and in
// all, so that a flood of made-up names is refused instead of filling the
// table (and it never pushes out a service that has workers).
Service* Broker::CreateServiceForClient(std::string_view name, std::string_view client,
                                        refusal::Reason* refused) {
  Client* c = clients_.Find(client);
  if ((c == nullptr ? 0 : c->created.size()) >= options_.limits.max_client_services) {
    *refused = refusal::Reason::kClientServices;
    return nullptr;
  }
  if (unserved_services_ >= options_.limits.max_unserved_services) {
    *refused = refusal::Reason::kUnservedServices;
    return nullptr;
  }
  if (services_.size() >= options_.max_services) {
    *refused = refusal::Reason::kServicesTotal;
    return nullptr;
  }
  Service* s = AddService(name);
  ++unserved_services_;
  c = clients_.FindOrAdd(client);
  c->created.push_back(s);
  s->creator = c;
  return s;
}

Service* Broker::FindOrCreateServiceForWorker(std::string_view name) {
  if (Service* s = FindService(name)) return s;
  if (services_.size() >= options_.max_services) {
    // A worker outranks a name: forget one service that has no worker and
    // nothing queued (its counters stay in the totals).
    for (auto it = services_.begin(); it != services_.end(); ++it) {
      if (it->second->worker_count() == 0 && it->second->queue().empty()) {
        EraseService(it);
        break;
      }
    }
    if (services_.size() >= options_.max_services) return nullptr;
  }
  Service* s = AddService(name);
  s->ever_served = true;
  return s;
}

void Broker::MarkServed(Service* s) {
  if (s->ever_served) return;
  s->ever_served = true;
  --unserved_services_;
  if (s->creator != nullptr) {
    clients_.RemoveCreated(s->creator, s);
    s->creator = nullptr;
  }
}

// REQUIRES: the service has no worker and nothing queued.
void Broker::EraseService(StringMap<std::unique_ptr<Service>>::iterator it) {
  Service* s = it->second.get();
  const ServiceCounters& c = s->counters();
  retired_.AddCounts(c);
  s->queue().ForgetIdleClients(SteadyTime::max(),
                               [&](std::string_view client) { clients_.RemoveLane(client, s); });
  if (!s->ever_served) {
    --unserved_services_;
    if (s->creator != nullptr) clients_.RemoveCreated(s->creator, s);
  }
  services_.erase(it);
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
    Request* r = s->queue().Pop();
    if (r->cancelled) {  // titanic.close while it waited
      ReleaseStored(r);
      continue;
    }
    Worker* w = s->TakeMostSpare();
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
  if (r->stored) titanic_->OnStoredDispatched(r->stored_id);
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
                                        {"worker", ShortId(w->identity)},
                                        {"reason", WorkerRemovalName(reason)}});
  } else {
    PLANTD_LOG_INFO("worker removed", {{"service", Printable(s->name())},
                                       {"worker", ShortId(w->identity)},
                                       {"reason", WorkerRemovalName(reason)},
                                       {"requests_held", w->in_flight.size()}});
  }
  // Newest first, so that PushFront leaves the oldest at the head.
  for (auto it = w->in_flight.rbegin(); it != w->in_flight.rend(); ++it) {
    Request* r = *it;
    if (reason == WorkerRemoval::kShutdown || draining_) {
      DropForShutdown(r);  // no other worker will take it now
    } else if (r->cancelled) {
      ReleaseStored(r);
    } else if (r->dispatches > options_.max_redispatch) {
      ++s->counters().failed;
      PLANTD_LOG_WARN("request dropped: its workers kept failing",
                      {{"service", Printable(s->name())}, {"dispatches", r->dispatches}});
      if (r->stored) {
        titanic_->OnStoredFailed(
            r->stored_id, "its worker failed " + std::to_string(r->dispatches) +
                              " times (last: " + WorkerRemovalName(reason) + "); not sent again");
        ReleaseStored(r);
      } else {
        requests_.Release(r);
      }
    } else {
      // Workers are assumed idempotent (18/MDP): send it again, first in line.
      ++s->counters().redispatched;
      s->queue().PushFront(r, clock_.Now());
      if (r->stored) r->queued_at = SteadyTime::max();  // never expires
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

void Broker::SendPrefix(const mdp::Prefix& prefix, bool more) {
  for (size_t i = 0; i < prefix.count; ++i) {
    SendConst(prefix.frames[i], more || i + 1 < prefix.count);
  }
}

void Broker::SendClientPrefix(const zmq::message_t* envelope, size_t envelope_count,
                              mdp::Dialect dialect, bool final, bool more) {
  for (size_t i = 0; i < envelope_count; ++i) {
    SendCopyOf(envelope[i].data(), envelope[i].size(), true);
  }
  // The envelope ends with an empty frame; 7/MDP's and majortomo's replies
  // start with one.
  if (envelope_count > 0 && !mdp::PrefixStartsEmpty(dialect)) SendConst(std::string_view(), true);
  SendPrefix(mdp::ClientReplyPrefix(dialect, final), more);
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
  workers_.ForEach(
      [this](Worker* w) { SendWorkerCommand(w->identity, w->dialect, mdp::Command::kHeartbeat); });
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
  const SteadyTime cutoff =
      now - std::max<std::chrono::nanoseconds>(kIdleForget, options_.request_expiry);
  for (auto it = services_.begin(); it != services_.end();) {
    Service* s = it->second.get();
    s->queue().ForgetIdleClients(cutoff,
                                 [&](std::string_view client) { clients_.RemoveLane(client, s); });
    if (s->worker_count() == 0 && s->queue().empty() && s->last_active < cutoff) {
      EraseService(it++);
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
  snap->draining = draining_;
  snap->endpoints = bound_endpoints_;
  const transport::RouterSocket::Stats router = router_->stats();
  snap->connections = router.connections;
  snap->connections_refused = router.refused;
  snap->buffered_bytes = router.buffered_bytes;
  snap->shared_input_bytes = router.shared_input_bytes;
  snap->frames_copied_past_limit = router.frames_copied_past_limit;
  snap->announce_declined = router.announce_declined;
  snap->counters = counters_;
  snap->totals = retired_;
  snap->requests_in_memory = requests_.in_use();
  snap->unserved_services = unserved_services_;
  snap->clients_tracked = clients_.size();
  if (titanic_) {
    snap->titanic_enabled = true;
    snap->titanic = titanic_->stats();
    snap->titanic_inflight = titanic_->inflight();
    snap->titanic_waiting = titanic_callers_.size();
  }
  snap->services.reserve(services_.size());
  for (const auto& [name, s] : services_) {
    ServiceSnapshot ss;
    ss.name = name;
    ss.workers = s->worker_count();
    ss.idle_workers = s->worker_count() - s->busy_count();
    ss.queued = s->queue().size();
    ss.counters = s->counters();
    snap->totals.AddCounts(ss.counters);
    snap->services.push_back(std::move(ss));
  }
  std::sort(snap->services.begin(), snap->services.end(),
            [](const ServiceSnapshot& a, const ServiceSnapshot& b) { return a.name < b.name; });
  if (!with_workers) return snap;
  snap->workers.reserve(workers_.size());
  workers_.ForEach([&](const Worker* w) {
    WorkerSnapshot ws;
    ws.identity = ShortId(w->identity);
    ws.key = w->key_name;
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

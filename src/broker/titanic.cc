#include "broker/titanic.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "common/refusal.h"
#include "log/log.h"

namespace plantd::broker {
namespace {

using store::Completion;
using store::Frames;
using store::RequestId;
using store::StoreError;

constexpr std::string_view kRequest = Titanic::kRequestService;
constexpr std::string_view kReply = "titanic.reply";
constexpr std::string_view kClose = "titanic.close";
constexpr size_t kMaxServiceName = 255;

// 9/TSP: "Frame 0: Service name (printable string)". Requests to Titanic
// itself would store requests that store requests: refused.
const char* InvalidServiceName(std::string_view service) {
  if (service.empty()) return "the service name is empty";
  if (service.size() > kMaxServiceName) return "the service name is longer than 255 bytes";
  for (const char ch : service) {
    const auto u = static_cast<unsigned char>(ch);
    if (u < 0x20 || u == 0x7f) return "the service name is not printable";
  }
  if (service.starts_with("titanic.")) return "a titanic.* service cannot be called durably";
  return nullptr;
}

}  // namespace

Titanic::Titanic(store::RequestStore* store, TitanicHost* host, Options options)
    : store_(store), host_(host), options_(options) {}

bool Titanic::IsTitanicService(std::string_view service) {
  return service == kRequest || service == kReply || service == kClose;
}

uint64_t Titanic::Track(Pending p) {
  const uint64_t tag = next_tag_++;
  pending_.emplace(tag, std::move(p));
  return tag;
}

void Titanic::Reply(uint64_t token, std::vector<std::string> frames) {
  host_->ReplyToClient(token, std::move(frames));
}

void Titanic::Start(SteadyTime now) {
  now_ = now;
  const store::RecoveryInfo& r = store_->recovery();
  stats_.recovered = r.counts.by_state[static_cast<size_t>(store::RequestState::kPending)] +
                     r.counts.by_state[static_cast<size_t>(store::RequestState::kDispatched)];
  if (stats_.recovered > 0 && !r.writable) {
    PLANTD_LOG_WARN(
        "titanic: the store is read-only: stored requests are not dispatched until "
        "a broker can write it",
        {{"requests", stats_.recovered}, {"services", r.services.size()}});
    return;
  }
  if (stats_.recovered > 0) {
    PLANTD_LOG_INFO("titanic: dispatching stored requests again",
                    {{"requests", stats_.recovered}, {"services", r.services.size()}});
  }
  for (const std::string& service : r.services) {
    services_[service].backlog = true;
    MaybeLease(service);
  }
}

void Titanic::HandleRequest(uint64_t token, std::string_view service,
                            const std::vector<std::string_view>& body) {
  if (service == kRequest) {
    ++stats_.requests;
    // 9/TSP: "a multipart request message with 2 or more frames".
    if (body.size() < 2) {
      ++stats_.invalid;
      Reply(token, {"400", "titanic.request: expected [service, body...] (2 or more frames)"});
      return;
    }
    if (const char* why = InvalidServiceName(body[0])) {
      ++stats_.invalid;
      Reply(token, {"400", fmt::format("titanic.request: {}", why)});
      return;
    }
    Frames frames(body.begin() + 1, body.end());
    Pending p;
    p.kind = PendingKind::kSubmit;
    p.token = token;
    p.service = std::string(body[0]);
    const uint64_t tag = Track(std::move(p));
    store_->Submit(tag, RequestId::TimeOrdered(), std::string(body[0]), std::move(frames));
    return;
  }
  const bool fetch = service == kReply;
  if (!fetch && service != kClose) return;  // not ours: IsTitanicService() first
  if (fetch) {
    ++stats_.fetches;
  } else {
    ++stats_.closes;
  }
  const std::optional<RequestId> id = body.empty() ? std::nullopt : RequestId::Parse(body.front());
  if (!id) {
    // 400 UNKNOWN: "an invalid or unknown UUID", and the client should not retry.
    ++stats_.invalid;
    Reply(token, {"400", fmt::format("{}: expected [UUID] (32 hex digits)", service)});
    return;
  }
  Pending p;
  p.kind = fetch ? PendingKind::kFetch : PendingKind::kClose;
  p.token = token;
  const uint64_t tag = Track(std::move(p));
  if (fetch) {
    store_->Fetch(tag, *id);
    return;
  }
  // The store deletes it in order after any write already queued for it;
  // the core stops offering it now, and its window slot is free.
  store_->Close(tag, *id);
  reply_retries_.erase(*id);
  if (inflight_.contains(*id)) {
    host_->CancelStored(*id);
    Release(*id);
  }
}

Titanic::Pending Titanic::BackgroundWrite(const RequestId& id) const {
  Pending p;
  auto it = inflight_.find(id);
  if (it != inflight_.end()) {
    p.service = it->second.service;
    p.seq = it->second.seq;
  }
  return p;
}

void Titanic::OnStoredDispatched(const RequestId& id) {
  store_->MarkDispatched(Track(BackgroundWrite(id)), id);
}

void Titanic::OnStoredReply(const RequestId& id, Frames reply) {
  const uint64_t tag = Track(BackgroundWrite(id));
  store_->StoreReply(tag, id, std::move(reply));
  Release(id);
}

void Titanic::OnStoredFailed(const RequestId& id, std::string reason) {
  const uint64_t tag = Track(BackgroundWrite(id));
  store_->Fail(tag, id, std::move(reason));
  Release(id);
}

void Titanic::Poll(SteadyTime now) {
  now_ = now;
  completions_.clear();
  store_->TakeCompletions(&completions_);
  for (Completion& c : completions_) OnCompletion(c);
  completions_.clear();
  // Retries of what the core or the store refused earlier.
  std::vector<std::string> due;
  for (const auto& [service, s] : services_) {
    if (s.backlog && !s.lease_outstanding && now_ >= s.retry_at && HasRoom(s)) {
      due.push_back(service);
    }
  }
  for (const std::string& service : due) MaybeLease(service);
  for (auto& [id, retry] : reply_retries_) {
    if (retry.writing || now_ < retry.due) continue;
    Pending p;
    p.service = retry.service;
    p.seq = retry.seq;
    ++stats_.reply_retries;
    retry.writing = true;  // the entry stays until the store says it is written
    store_->StoreReply(Track(std::move(p)), id, std::move(retry.reply));
  }
}

void Titanic::OnCompletion(Completion& c) {
  auto it = pending_.find(c.tag);
  if (it == pending_.end()) return;
  Pending p = std::move(it->second);
  pending_.erase(it);

  switch (p.kind) {
    case PendingKind::kSubmit: {
      if (!c.ok()) {
        if (c.error == StoreError::kFull || c.error == StoreError::kBusy) {
          ++stats_.refused_full;
          refusal::Record(c.error == StoreError::kFull ? refusal::Reason::kStoreFull
                                                       : refusal::Reason::kStoreBusy,
                          "", {{"service", p.service}});
        } else {
          ++stats_.store_errors;
        }
        // 9/TSP 500: the client should retry later. Nothing was stored.
        Reply(p.token, {"500", c.message});
        return;
      }
      ++stats_.acknowledged;
      Reply(p.token, {"200", c.id.ToHex()});
      ServiceState& s = services_[c.service];
      if (!s.backlog && !s.lease_outstanding && HasRoom(s) && reply_retries_.empty()) {
        // Everything older of this service is already in the core: send it
        // from memory, no read back from disk. Not while replies wait for
        // the disk (see MaybeLease): it is read back once they are written.
        Dispatch(c.service, c.id, c.seq, 0, c.frames);
      } else {
        s.backlog = true;
        MaybeLease(c.service);
      }
      return;
    }
    case PendingKind::kFetch: {
      if (c.error == StoreError::kNotFound) return Reply(p.token, {"400"});
      if (!c.ok()) {
        ++stats_.store_errors;
        return Reply(p.token, {"500", c.message});
      }
      switch (c.state) {
        case store::RequestState::kPending:
        case store::RequestState::kDispatched: return Reply(p.token, {"300"});
        case store::RequestState::kReplied: {
          std::vector<std::string> frames;
          frames.reserve(c.frames.size() + 1);
          frames.emplace_back("200");
          for (std::string& f : c.frames) frames.push_back(std::move(f));
          return Reply(p.token, std::move(frames));
        }
        case store::RequestState::kFailed: return Reply(p.token, {"500", c.reason});
      }
      return;
    }
    case PendingKind::kClose: {
      if (!c.ok()) {
        ++stats_.store_errors;
        return Reply(p.token, {"500", c.message});
      }
      return Reply(p.token, {"200"});
    }
    case PendingKind::kLease: {
      ServiceState& s = services_[p.service];
      s.lease_outstanding = false;
      if (!c.ok()) {
        s.retry_at = now_ + options_.retry_delay;
        return;
      }
      // Keep reading until a read comes back empty: a byte limit may have
      // cut this one short, and new requests may have arrived meanwhile.
      s.backlog = !c.requests.empty();
      for (store::StoredRequest& r : c.requests) {
        if (!Dispatch(p.service, r.id, r.seq, r.attempts, r.body)) break;
      }
      MaybeLease(p.service);
      ForgetIfIdle(p.service);
      return;
    }
    case PendingKind::kBackground: {
      if (c.ok()) {
        if (c.op == store::OpKind::kStoreReply) {
          reply_retries_.erase(c.id);
          c.reply_dropped ? ++stats_.failed : ++stats_.replies_stored;
        } else if (c.op == store::OpKind::kFail) {
          ++stats_.failed;
        }
        return;
      }
      if (c.error == StoreError::kNotFound) {  // closed meanwhile, or a duplicate
        reply_retries_.erase(c.id);
        return;
      }
      if (c.op == store::OpKind::kStoreReply && !c.frames.empty()) {
        // The work is done; only its reply is not on disk yet. Write it
        // again later rather than run the request again.
        ReplyRetry& r = reply_retries_[c.id];
        r.writing = false;
        r.due = now_ + options_.retry_delay;
        r.service = p.service;
        r.seq = p.seq;
        r.reply = std::move(c.frames);
        return;
      }
      // The failure is not durable: the request is still unfinished on
      // disk, so it runs again (at least once). A reply retry that failed
      // without handing its reply back is over: its entry would otherwise
      // hold dispatching paused for good.
      if (c.op == store::OpKind::kStoreReply) reply_retries_.erase(c.id);
      if ((c.op == store::OpKind::kStoreReply || c.op == store::OpKind::kFail) &&
          !p.service.empty()) {
        OfferAgainLater(p.service, p.seq);
      }
      return;
    }
  }
}

bool Titanic::Dispatch(const std::string& service, const RequestId& id, uint64_t seq,
                       uint32_t attempts, const Frames& body) {
  ServiceState& s = services_[service];
  s.cursor = std::max(s.cursor, seq);
  if (inflight_.contains(id)) return true;       // already in the core
  if (reply_retries_.contains(id)) return true;  // done; its reply waits for the disk
  if (attempts >= options_.max_dispatches) {
    Pending p;
    p.service = service;
    p.seq = seq;
    store_->Fail(Track(std::move(p)), id,
                 fmt::format("dispatched {} times without a reply (the broker or the worker "
                             "stopped each time); not sent again",
                             attempts));
    return true;
  }
  size_t bytes = 0;
  for (const std::string& f : body) bytes += f.size();
  if (!host_->DispatchStored(id, service, body)) {
    OfferAgainLater(service, seq);
    return false;
  }
  inflight_.emplace(id, InFlight{service, seq, bytes});
  ++s.inflight;
  s.inflight_bytes += bytes;
  ++stats_.dispatched;
  return true;
}

void Titanic::OfferAgainLater(const std::string& service, uint64_t seq) {
  ServiceState& s = services_[service];
  s.backlog = true;
  s.cursor = std::min(s.cursor, seq > 0 ? seq - 1 : 0);
  s.retry_at = now_ + options_.retry_delay;
}

void Titanic::MaybeLease(const std::string& service) {
  auto it = services_.find(service);
  if (it == services_.end()) return;
  ServiceState& s = it->second;
  if (!s.backlog || s.lease_outstanding || !HasRoom(s) || now_ < s.retry_at) return;
  // While the disk refuses replies, no more work leaves the store: each
  // request finished meanwhile would hold its reply in memory, and the
  // window's slots are free again once a request is answered.
  if (!reply_retries_.empty()) return;
  Pending p;
  p.kind = PendingKind::kLease;
  p.service = service;
  const uint64_t tag = Track(std::move(p));
  s.lease_outstanding = true;
  store_->NextToDispatch(tag, service, s.cursor, options_.max_inflight_per_service - s.inflight,
                         options_.max_inflight_bytes_per_service - s.inflight_bytes);
}

void Titanic::Release(const RequestId& id) {
  auto it = inflight_.find(id);
  if (it == inflight_.end()) return;
  const std::string service = std::move(it->second.service);
  const size_t bytes = it->second.bytes;
  inflight_.erase(it);
  auto s = services_.find(service);
  if (s == services_.end()) return;
  --s->second.inflight;
  s->second.inflight_bytes -= std::min(bytes, s->second.inflight_bytes);
  MaybeLease(service);
  ForgetIfIdle(service);
}

void Titanic::ForgetIfIdle(const std::string& service) {
  auto it = services_.find(service);
  if (it == services_.end()) return;
  const ServiceState& s = it->second;
  if (s.inflight == 0 && !s.backlog && !s.lease_outstanding) services_.erase(it);
}

}  // namespace plantd::broker

#include "plantd/mdp/titanic_client.h"

#include <algorithm>
#include <thread>

namespace plantd::mdp {
namespace {

// The status frame and what follows it; the broker's own refusals (503
// shutting down, 429 too many services) come back the same way.
Status Refused(const std::string& what, const Frames& reply) {
  std::string message = what + ": ";
  if (reply.empty()) return Status::ProtocolError(message + "empty reply");
  message += reply[0];
  if (reply.size() > 1) message += " " + reply[1];
  return Status::Unavailable(message);
}

}  // namespace

const char* TitanicStateName(TitanicReply::State state) {
  switch (state) {
    case TitanicReply::State::kPending: return "pending";
    case TitanicReply::State::kReady: return "ready";
    case TitanicReply::State::kUnknown: return "unknown";
    case TitanicReply::State::kFailed: return "failed";
  }
  return "?";
}

TitanicClient::TitanicClient(ClientOptions options) : client_(std::move(options)) {}
TitanicClient::TitanicClient(const std::string& endpoint) : client_(endpoint) {}

Result<std::string> TitanicClient::Submit(const std::string& service, const Frames& body) {
  if (service.empty()) return Status::InvalidArgument("titanic: the service name is empty");
  Frames request;
  request.reserve(body.size() + 1);
  request.push_back(service);
  request.insert(request.end(), body.begin(), body.end());
  // 9/TSP: a request has [service, body...] with at least one body frame.
  if (request.size() < 2) request.emplace_back();
  auto reply = client_.Request("titanic.request", request);
  if (!reply.ok()) return reply.status();
  const Frames& r = reply.value();
  if (r.size() >= 2 && r[0] == "200") return r[1];
  if (!r.empty() && r[0] == "400") {
    return Status::InvalidArgument("titanic.request: " + (r.size() > 1 ? r[1] : r[0]));
  }
  return Refused("titanic.request", r);
}

Result<TitanicReply> TitanicClient::Reply(const std::string& id) {
  auto reply = client_.Request("titanic.reply", {id});
  if (!reply.ok()) return reply.status();
  Frames& r = reply.value();
  if (r.empty()) return Status::ProtocolError("titanic.reply: empty reply");
  TitanicReply out;
  if (r[0] == "200") {
    out.state = TitanicReply::State::kReady;
    out.body.assign(std::make_move_iterator(r.begin() + 1), std::make_move_iterator(r.end()));
  } else if (r[0] == "300") {
    out.state = TitanicReply::State::kPending;
  } else if (r[0] == "400") {
    out.state = TitanicReply::State::kUnknown;
  } else if (r[0] == "500") {
    out.state = TitanicReply::State::kFailed;
    if (r.size() > 1) out.reason = r[1];
  } else {
    return Refused("titanic.reply", r);
  }
  return out;
}

Result<TitanicReply> TitanicClient::Wait(const std::string& id, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::milliseconds(5);
  while (true) {
    auto reply = Reply(id);
    if (!reply.ok() || reply->state != TitanicReply::State::kPending) return reply;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      return Status::Timeout("titanic: request " + id + " still pending after " +
                             std::to_string(timeout.count()) + " ms");
    }
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(pause, deadline - now));
    pause = std::min(pause * 2, std::chrono::milliseconds(250));
  }
}

Status TitanicClient::Close(const std::string& id) {
  auto reply = client_.Request("titanic.close", {id});
  if (!reply.ok()) return reply.status();
  const Frames& r = reply.value();
  if (!r.empty() && r[0] == "200") return Status::Ok();
  if (!r.empty() && r[0] == "400") {
    return Status::InvalidArgument("titanic.close: " + (r.size() > 1 ? r[1] : r[0]));
  }
  return Refused("titanic.close", r);
}

}  // namespace plantd::mdp

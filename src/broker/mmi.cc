#include "broker/mmi.h"

#include <nlohmann/json.hpp>

#include "build_info.h"
#include "common/refusal.h"

namespace plantd::broker {
namespace {

using nlohmann::json;

json ServiceJson(const ServiceSnapshot& s) {
  json j = {{"name", s.name},
            {"workers", s.workers},
            {"idle_workers", s.idle_workers},
            {"busy_workers", s.workers - s.idle_workers},
            {"queued", s.queued},
            // "served" is what the plantd Go services read: FINAL replies.
            {"served", s.counters.replies}};
  for (const ServiceCounterSpec& spec : kServiceCounterSpecs) {
    j[std::string(spec.key)] = s.counters.*spec.field;
  }
  return j;
}

const ServiceSnapshot* FindService(const BrokerSnapshot& snap, std::string_view name) {
  for (const ServiceSnapshot& s : snap.services) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

json BrokerJson(const BrokerSnapshot& snap) {
  size_t workers = 0;
  for (const ServiceSnapshot& s : snap.services) workers += s.workers;
  json invalid = json::object();
  for (size_t i = 0; i < snap.counters.invalid.size(); ++i) {
    invalid[InvalidReasonName(static_cast<InvalidReason>(i))] = snap.counters.invalid[i];
  }
  // What the broker refused, by plantd_refused_total's reasons (process-wide),
  // and the accepted requests it dropped unanswered.
  json refused = json::object();
  for (size_t i = 0; i < refusal::kReasonCount; ++i) {
    const auto reason = static_cast<refusal::Reason>(i);
    refused[refusal::ReasonName(reason)] = refusal::Total(reason);
  }
  json dropped = json::object();
  for (size_t i = 0; i < snap.counters.dropped.size(); ++i) {
    dropped[RequestDropName(static_cast<RequestDrop>(i))] = snap.counters.dropped[i];
  }
  // Every per-service counter, summed over services (removed ones too).
  json totals = json::object();
  for (const ServiceCounterSpec& spec : kServiceCounterSpecs) {
    totals[std::string(spec.key)] = snap.totals.*spec.field;
  }
  return json{{"version", kVersion},
              {"revision", kGitRevision},
              {"uptime_seconds", snap.uptime_seconds},
              {"draining", snap.draining},
              {"services", snap.services.size()},
              {"workers", workers},
              {"requests", snap.totals.requests},
              {"replies", snap.totals.replies},
              {"queued",
               [&] {
                 size_t q = 0;
                 for (const ServiceSnapshot& s : snap.services) q += s.queued;
                 return q;
               }()},
              {"invalid", invalid},
              {"refused", refused},
              {"dropped", dropped},
              {"unserved_services", snap.unserved_services},
              {"totals", totals}};
}

// Service names come off the wire and may not be UTF-8: never throw on them.
std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace

std::vector<std::string> AnswerMmi(std::string_view service,
                                   const std::vector<std::string_view>& body,
                                   const SnapshotSource& snapshot) {
  if (service == "mmi.service") {
    // 8/MMI: 200 if the service has a worker, 404 if not.
    if (body.empty()) return {"404"};
    const ServiceSnapshot* s = FindService(snapshot(), body[0]);
    return {s != nullptr && s->workers > 0 ? "200" : "404"};
  }
  if (service == "mmi.workers") {
    const BrokerSnapshot& snap = snapshot();
    size_t count = 0;
    if (body.empty() || body[0].empty()) {
      for (const ServiceSnapshot& s : snap.services) count += s.workers;
    } else if (const ServiceSnapshot* s = FindService(snap, body[0])) {
      count = s->workers;
    }
    return {std::to_string(count)};
  }
  if (service == "mmi.services") {
    json list = json::array();
    for (const ServiceSnapshot& s : snapshot().services) list.push_back(ServiceJson(s));
    return {Dump(list)};
  }
  if (service == "mmi.heartbeat") {
    return std::vector<std::string>(body.begin(), body.end());
  }
  if (service == "mmi.broker") return {Dump(BrokerJson(snapshot()))};
  return {"501"};  // 8/MMI: not implemented
}

std::vector<std::string> AnswerBrokerService(const std::vector<std::string_view>& body,
                                             const SnapshotSource& snapshot) {
  const std::string_view command = body.empty() ? std::string_view() : body[0];
  if (command == "services") {
    json list = json::array();
    for (const ServiceSnapshot& s : snapshot().services) list.push_back(ServiceJson(s));
    return {Dump(json{{"services", list}, {"broker", BrokerJson(snapshot())}})};
  }
  if (command == "service") {
    if (body.size() < 2) {
      return {Dump(json{{"error", "service: expected a JSON body {\"service\": NAME}"}})};
    }
    const json request = json::parse(body[1], nullptr, /*allow_exceptions=*/false);
    if (!request.is_object() || !request.contains("service") || !request["service"].is_string()) {
      return {Dump(json{{"error", "service: expected a JSON body {\"service\": NAME}"}})};
    }
    const std::string name = request["service"].get<std::string>();
    const ServiceSnapshot* s = FindService(snapshot(), name);
    if (s == nullptr) return {Dump(json{{"error", "unknown service"}, {"service", name}})};
    return {Dump(json{{"service", ServiceJson(*s)}})};
  }
  return {Dump(json{{"error", "unknown request; expected services or service"},
                    {"request", std::string(command)}})};
}

}  // namespace plantd::broker

#include "http/status.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "build_info.h"
#include "store/store_metrics.h"

namespace plantd::http {

std::string RenderStatusJson(const broker::BrokerSnapshot* snap,
                             const std::vector<const bus::Bus*>& buses,
                             const BrokerOptions& options, const store::RequestStore* store,
                             SnapshotFreshness freshness) {
  using nlohmann::json;
  json doc;
  doc["broker"] = {{"version", kVersion},
                   {"revision", kGitRevision},
                   {"environment", options.environment},
                   {"service_id", options.service_id}};
  json services = json::array();
  json workers = json::array();
  if (snap != nullptr) {
    const auto age = std::chrono::duration_cast<std::chrono::milliseconds>(freshness.now -
                                                                           snap->taken_at_steady);
    doc["snapshot"] = {{"age_ms", std::max<int64_t>(0, age.count())}, {"stale", !freshness.fresh}};
    doc["broker"]["draining"] = snap->draining;
    doc["broker"]["uptime_seconds"] = snap->uptime_seconds;
    doc["broker"]["endpoints"] = snap->endpoints;
    doc["broker"]["requests_in_memory"] = snap->requests_in_memory;
    doc["broker"]["transport"] = options.transport == Transport::kZmq ? "zmq" : "native";
    if (snap->connections >= 0) {
      doc["broker"]["connections"] = snap->connections;
      doc["broker"]["connections_refused"] = snap->connections_refused;
    }
    for (const auto& s : snap->services) {
      json service = {{"name", s.name},
                      {"workers", s.workers},
                      {"idle_workers", s.idle_workers},
                      {"busy_workers", s.workers - s.idle_workers},
                      {"queued", s.queued}};
      for (const broker::ServiceCounterSpec& spec : broker::kServiceCounterSpecs) {
        service[std::string(spec.key)] = s.counters.*spec.field;
      }
      services.push_back(std::move(service));
    }
    for (const auto& w : snap->workers) {
      workers.push_back({{"identity", w.identity},
                         {"key", w.key.empty() ? json(nullptr) : json(w.key)},
                         {"service", w.service},
                         {"dialect", w.dialect},
                         {"busy", w.busy},
                         {"credit", w.credit},
                         {"in_flight", w.in_flight},
                         {"last_seen_seconds_ago", w.last_seen_seconds_ago},
                         {"served", w.served}});
    }
  }
  if (snap == nullptr) doc["snapshot"] = {{"age_ms", nullptr}, {"stale", true}};
  doc["services"] = services;
  doc["workers"] = workers;
  json bus_list = json::array();
  for (const bus::Bus* b : buses) {
    const auto& c = b->counters();
    json entry = {{"name", b->options().name},
                  {"backend", b->options().backend},
                  {"frontend", b->options().frontend},
                  {"capture", b->options().capture},
                  {"delivery", DeliveryName(b->options().delivery)},
                  {"last_value_cache", b->options().last_value_cache}};
    for (const bus::BusCounterSpec& spec : bus::kBusCounterSpecs) {
      const uint64_t value = spec.read(c);
      if (spec.seconds) {
        entry[std::string(spec.key)] = static_cast<double>(value) / 1e9;
      } else {
        entry[std::string(spec.key)] = value;
      }
    }
    bus_list.push_back(std::move(entry));
  }
  doc["buses"] = bus_list;
  if (store != nullptr) {
    doc["store"] = store::StoreStatusJson(store->stats(), store->health());
    doc["store"]["path"] = options.store.path;
  }
  return doc.dump(2, ' ', false, json::error_handler_t::replace);
}

}  // namespace plantd::http

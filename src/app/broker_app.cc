#include "app/broker_app.h"

#include <signal.h>
#include <unistd.h>

#include <future>
#include <vector>

#include "config/endpoint.h"
#include "log/log.h"
#include "store/sqlite_store.h"

namespace plantd {

BrokerApp::BrokerApp(const BrokerOptions& options) : options_(options), context_(1) {
  // Bounded so that a process with unreachable peers still exits promptly.
  context_.set(zmq::ctxopt::blocky, 0);
}

BrokerApp::~BrokerApp() { Stop(); }

Status BrokerApp::Start() {
  if (options_.store.enabled) {
    auto opened = store::SqliteStore::Open(options_.store);
    if (!opened.ok()) {
      return Status::Error("cannot open the request store " + options_.store.path +
                           " (store.path): " + opened.status().message());
    }
    store_ = std::move(opened.value());
    const store::RecoveryInfo& r = store_->recovery();
    using store::RequestState;
    PLANTD_LOG_INFO(
        "request store opened",
        {{"path", options_.store.path},
         {"pending", r.counts.by_state[static_cast<size_t>(RequestState::kPending)]},
         {"dispatched", r.counts.by_state[static_cast<size_t>(RequestState::kDispatched)]},
         {"replied", r.counts.by_state[static_cast<size_t>(RequestState::kReplied)]},
         {"failed", r.counts.by_state[static_cast<size_t>(RequestState::kFailed)]}});
  }
  if (options_.security.mechanism == SecurityMechanism::kCurve) {
    // As the sockets bind them: without the "@" (Validate has parsed each).
    std::vector<std::string> null_endpoints;
    for (const std::string& text : options_.security.null_endpoints) {
      auto ep = ParseEndpoint(text);
      if (!ep.ok()) continue;
      null_endpoints.push_back(ep.value().address);
      if (!ep.value().IsLocal()) {
        PLANTD_LOG_WARN(
            "security.null_endpoints names an endpoint other machines can reach: its traffic "
            "crosses the network in clear and anyone who reaches it is let in as anonymous",
            {{"endpoint", ep.value().address}});
      }
    }
    auto loaded = transport::ServerSecurity::LoadCurve(
        {.secret_key_file = options_.security.secret_key_file,
         .authorized_keys_dir = options_.security.authorized_keys_dir,
         .authorized_keys = options_.security.authorized_keys,
         .acl_file = options_.security.acl_file,
         .null_endpoints = null_endpoints});
    if (!loaded.ok()) return loaded.status();
    security_ = std::move(loaded.value());
    auto zap = transport::ZapHandler::Start(
        context_, [security = security_](std::string_view mechanism, std::string_view client_key,
                                         std::string* user_id) {
          // Only CURVE sockets ask (the broker sets no ZAP domain on NULL
          // ones); anything else is not a client this broker knows.
          if (mechanism != "CURVE" || !security->Authorized(client_key)) return false;
          *user_id = security->KeyName(client_key);
          return true;
        });
    if (!zap.ok()) return zap.status();
    zap_ = std::move(zap.value());
    std::string public_key;
    transport::Z85Encode(security_->public_key(), &public_key);
    if (security_->any_key()) {
      PLANTD_LOG_WARN(
          "security.mechanism is curve without security.authorized_keys_dir or "
          "security.authorized_keys: traffic is encrypted, but any client key is let in",
          {{"public_key", public_key}});
    } else {
      PLANTD_LOG_INFO(null_endpoints.empty() ? "CURVE security on every bound endpoint"
                                             : "CURVE security on every bound endpoint but "
                                               "security.null_endpoints",
                      {{"public_key", public_key},
                       {"authorized_keys", security_->authorized_count()},
                       {"authorized_keys_dir", options_.security.authorized_keys_dir}});
    }
    for (const std::string& address : null_endpoints) {
      PLANTD_LOG_INFO(
          "NULL security (no key, in clear) on a security.null_endpoints endpoint; "
          "its peers are named anonymous",
          {{"endpoint", address}});
    }
    LogAccessRules();
  }
  // One budget for every native socket: the limits hold for the process.
  auto budget = transport::BufferBudget::Make(
      {.max_buffered_bytes = options_.limits.max_buffered_bytes,
       .max_connections = options_.limits.max_connections,
       .max_connections_per_address = options_.limits.max_connections_per_address,
       .curve_handshakes_per_second = options_.limits.curve_handshakes_per_second,
       .curve_handshake_burst = options_.limits.curve_handshake_burst});
  broker_ = std::make_unique<broker::Broker>(context_, options_, clock_, &snapshots_, budget,
                                             nullptr, security_);
  if (store_) broker_->EnableTitanic(store_.get());
  // The process takes SIGTERM with sigwait() (apps/plantd-broker/main.cc)
  // and stops every part in order (buses, the core's drain, HTTP last): an
  // admin drain asks for exactly that. A process-directed kill(), not
  // raise(): the signal is blocked in the core thread.
  broker_->SetDrainHandler([] { ::kill(::getpid(), SIGTERM); });
  if (Status s = broker_->Bind(); !s.ok()) return s;
  for (const BusOptions& bus_options : options_.buses) {
    buses_.push_back(
        std::make_unique<bus::Bus>(context_, bus_options, options_.limits, budget, security_));
    if (Status s = buses_.back()->Open(); !s.ok()) return s;
  }

  if (options_.health.port != 0) {
    std::vector<const bus::Bus*> bus_views;
    for (const auto& bus : buses_) bus_views.push_back(bus.get());
    http_ = std::make_unique<http::HttpServer>(options_, snapshots_, std::move(bus_views),
                                               store_.get());
    if (Status s = http_->Bind(); !s.ok()) return s;
  }

  // Everything is bound: start the threads.
  for (auto& bus : buses_) {
    bus->Start();
    PLANTD_LOG_INFO("bus started", {{"bus", bus->options().name},
                                    {"backend", bus->options().backend},
                                    {"frontend", bus->options().frontend},
                                    {"capture", bus->options().capture},
                                    {"delivery", DeliveryName(bus->options().delivery)}});
  }
  broker_thread_ = std::thread([this] { broker_->Run(); });
  if (http_) http_->Start();
  PLANTD_LOG_INFO("broker started", {{"endpoint", options_.endpoint},
                                     {"client_endpoint", options_.client_endpoint},
                                     {"health_port", options_.health.port},
                                     {"environment", options_.environment}});
  return Status::Ok();
}

Status BrokerApp::ReloadSecurity(const std::vector<std::string>* authorized_keys) {
  if (!security_) return Status::Ok();
  const size_t before = security_->authorized_count();
  if (Status s = security_->Reload(authorized_keys); !s.ok()) return s;
  PLANTD_LOG_INFO("authorized keys reread",
                  {{"authorized_keys_dir", security_->authorized_keys_dir()},
                   {"before", before},
                   {"now", security_->authorized_count()}});
  LogAccessRules();
  return Status::Ok();
}

// Says how many access rules are in force, and warns about each name they
// give that no authorized key has: most likely a typo, which would deny
// that peer everything.
void BrokerApp::LogAccessRules() const {
  const auto policy = security_->policy();
  if (!policy) return;
  PLANTD_LOG_INFO("access rules in force (default deny)",
                  {{"acl_file", security_->acl_file()}, {"rules", policy->rule_count()}});
  if (security_->any_key()) return;  // names are then Z85 keys
  for (const std::string& name : policy->named_peers()) {
    if (name == transport::kAnonymousPeer) continue;  // no key has it, by design
    if (!security_->HasKeyNamed(name)) {
      PLANTD_LOG_WARN("access rules name a key that is not authorized",
                      {{"name", name},
                       {"acl_file", security_->acl_file()},
                       {"authorized_keys_dir", security_->authorized_keys_dir()}});
    }
  }
}

bool BrokerApp::Stop(std::chrono::milliseconds http_wait) {
  // Everything is told at once, so the waits overlap: each bus loop and the
  // core notice within their poll interval, and the core then drains.
  if (broker_) broker_->Stop();
  std::vector<std::thread> bus_stoppers;
  for (auto& bus : buses_) bus_stoppers.emplace_back([b = bus.get()] { b->Stop(); });
  if (broker_thread_.joinable()) broker_thread_.join();
  // After the core: what it queued (replies stored while draining) is
  // committed before the store thread ends.
  if (store_) store_->Shutdown();
  for (std::thread& t : bus_stoppers) t.join();
  if (!http_) return true;
  // The HTTP endpoint last: /livez and /status answer while the core drains.
  if (http_wait == std::chrono::milliseconds::max()) {
    http_->Stop();
    return true;
  }
  auto stopped = std::make_shared<std::promise<void>>();
  std::future<void> done = stopped->get_future();
  std::thread stopper([h = http_.get(), stopped] {
    h->Stop();
    stopped->set_value();
  });
  if (done.wait_for(http_wait) == std::future_status::ready) {
    stopper.join();
    return true;
  }
  PLANTD_LOG_DEBUG("HTTP connections still open at exit; not waiting for them",
                   {{"waited_ms", static_cast<int64_t>(http_wait.count())}});
  stopper.detach();
  (void)http_.release();  // still in use by `stopper`: see Stop() in the header
  return false;
}

}  // namespace plantd

#include "http/http_server.h"

#include <httplib.h>

#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>

#include "build_info.h"
#include "http/health_check.h"
#include "http/metrics.h"
#include "log/log.h"

namespace plantd::http {
namespace {

constexpr size_t kThreads = 2;
constexpr size_t kMaxRequestBytes = 8192;

// httplib's own pool queues without bound. This one holds at most
// `max_queued` accepted connections; past that the accept thread waits, and
// further clients wait in the kernel's listen backlog.
class BoundedTaskQueue final : public httplib::TaskQueue {
 public:
  BoundedTaskQueue(size_t threads, size_t max_queued) : max_queued_(max_queued) {
    for (size_t i = 0; i < threads; ++i) workers_.emplace_back([this] { Work(); });
  }

  void enqueue(std::function<void()> fn) override {
    std::unique_lock<std::mutex> lock(mutex_);
    room_.wait(lock, [this] { return tasks_.size() < max_queued_ || shutdown_; });
    if (shutdown_) return;
    tasks_.push_back(std::move(fn));
    ready_.notify_one();
  }

  void shutdown() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      shutdown_ = true;
    }
    ready_.notify_all();
    room_.notify_all();
    for (std::thread& t : workers_) t.join();
  }

 private:
  void Work() {
    while (true) {
      std::function<void()> fn;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ready_.wait(lock, [this] { return !tasks_.empty() || shutdown_; });
        if (tasks_.empty()) return;  // shut down and drained
        fn = std::move(tasks_.front());
        tasks_.pop_front();
        room_.notify_one();
      }
      fn();
    }
  }

  const size_t max_queued_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::condition_variable room_;
  std::deque<std::function<void()>> tasks_;  // GUARDED_BY(mutex_)
  bool shutdown_ = false;                    // GUARDED_BY(mutex_)
  std::vector<std::thread> workers_;
};

std::string StatusJson(const broker::BrokerSnapshot* snap, const std::vector<const bus::Bus*>& buses,
                       const BrokerOptions& options) {
  using nlohmann::json;
  json doc;
  doc["broker"] = {{"version", kVersion},
                   {"revision", kGitRevision},
                   {"environment", options.environment},
                   {"service_id", options.service_id}};
  json services = json::array();
  json workers = json::array();
  if (snap != nullptr) {
    doc["broker"]["uptime_seconds"] = snap->uptime_seconds;
    doc["broker"]["endpoints"] = snap->endpoints;
    doc["broker"]["requests_in_memory"] = snap->requests_in_memory;
    doc["broker"]["transport"] = options.transport == Transport::kZmq ? "zmq" : "native";
    if (snap->connections >= 0) {
      doc["broker"]["connections"] = snap->connections;
      doc["broker"]["connections_refused"] = snap->connections_refused;
    }
    for (const auto& s : snap->services) {
      services.push_back({{"name", s.name},
                          {"workers", s.workers},
                          {"idle_workers", s.idle_workers},
                          {"busy_workers", s.workers - s.idle_workers},
                          {"queued", s.queued},
                          {"requests", s.counters.requests},
                          {"replies", s.counters.replies},
                          {"partials", s.counters.partials},
                          {"redispatched", s.counters.redispatched},
                          {"expired", s.counters.expired},
                          {"refused", s.counters.refused},
                          {"failed", s.counters.failed}});
    }
    for (const auto& w : snap->workers) {
      workers.push_back({{"identity", w.identity},
                         {"service", w.service},
                         {"dialect", w.dialect},
                         {"busy", w.busy},
                         {"credit", w.credit},
                         {"in_flight", w.in_flight},
                         {"last_seen_seconds_ago", w.last_seen_seconds_ago},
                         {"served", w.served}});
    }
  }
  doc["services"] = services;
  doc["workers"] = workers;
  json bus_list = json::array();
  for (const bus::Bus* b : buses) {
    const auto& c = b->counters();
    bus_list.push_back({{"name", b->options().name},
                        {"backend", b->options().backend},
                        {"frontend", b->options().frontend},
                        {"capture", b->options().capture},
                        {"delivery", DeliveryName(b->options().delivery)},
                        {"last_value_cache", b->options().last_value_cache},
                        {"messages_in", c.messages_in.load()},
                        {"messages_out", c.messages_out.load()},
                        {"bytes_in", c.bytes_in.load()},
                        {"bytes_out", c.bytes_out.load()},
                        {"dropped", c.dropped.load()},
                        {"capture_dropped", c.capture_dropped.load()},
                        {"subscribers", c.subscribers.load()},
                        {"subscriptions", c.subscriptions.load()},
                        {"blocked_seconds", static_cast<double>(c.blocked_ns.load()) / 1e9},
                        {"lvc_replayed", c.lvc_replayed.load()}});
  }
  doc["buses"] = bus_list;
  return doc.dump(2, ' ', false, json::error_handler_t::replace);
}

}  // namespace

HttpServer::HttpServer(const BrokerOptions& options, const broker::SnapshotBoard& snapshots,
                       std::vector<const bus::Bus*> buses)
    : options_(options), snapshots_(snapshots), buses_(std::move(buses)) {}

HttpServer::~HttpServer() { Stop(); }

Status HttpServer::Bind() {
  server_ = std::make_unique<httplib::Server>();
  const size_t max_queued = options_.health.max_connections;
  server_->new_task_queue = [max_queued] { return new BoundedTaskQueue(kThreads, max_queued); };
  server_->set_read_timeout(5, 0);
  server_->set_write_timeout(5, 0);
  server_->set_keep_alive_timeout(5);
  server_->set_keep_alive_max_count(100);
  server_->set_payload_max_length(kMaxRequestBytes);
  // SO_REUSEADDR for quick restarts, but not httplib's default SO_REUSEPORT,
  // which would let a second process share the port instead of failing.
  server_->set_socket_options([](int sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  Routes();
  if (!server_->bind_to_port(options_.health.bind.c_str(), options_.health.port)) {
    return Status::Error("cannot bind " + options_.health.bind + ":" +
                         std::to_string(options_.health.port) +
                         " (health.bind, health.port): " + std::strerror(errno));
  }
  return Status::Ok();
}

void HttpServer::Start() {
  thread_ = std::thread([this] { server_->listen_after_bind(); });
}

void HttpServer::Stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

void HttpServer::Routes() {
  const auto stale_after =
      std::max(std::chrono::milliseconds(2000), options_.heartbeat_interval * 3);

  auto health = [this, stale_after]() {
    auto snap = snapshots_.Latest();
    return EvaluateHealth(snap.get(), buses_, std::chrono::steady_clock::now(), stale_after);
  };

  server_->Get("/healthz", [health](const httplib::Request&, httplib::Response& res) {
    const HealthReport report = health();
    res.status = report.status == HealthStatus::kFail ? 503 : 200;
    res.set_content(RenderHealthJson(report, std::chrono::system_clock::now()),
                    "application/health+json");
  });
  // Liveness: the loops are turning. A failed liveness probe restarts us, so
  // a broker still starting (no snapshot yet) counts as alive; /readyz is
  // the probe that waits for it.
  server_->Get("/livez", [this, health](const httplib::Request&, httplib::Response& res) {
    const bool starting = snapshots_.Latest() == nullptr;
    const bool alive = starting || health().status != HealthStatus::kFail;
    res.status = alive ? 200 : 503;
    res.set_content(alive ? "ok\n" : "stalled\n", "text/plain");
  });
  // Readiness: every endpoint is bound and the core has started.
  server_->Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
    auto snap = snapshots_.Latest();
    const bool ready = snap && snap->endpoints_bound;
    res.status = ready ? 200 : 503;
    res.set_content(ready ? "ready\n" : "starting\n", "text/plain");
  });
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    auto snap = snapshots_.Latest();
    if (!snap) {
      res.status = 503;
      return;
    }
    res.set_content(RenderMetrics(*snap, buses_, ReadProcessStats()),
                    "text/plain; version=0.0.4; charset=utf-8");
  });
  server_->Get("/status", [this](const httplib::Request&, httplib::Response& res) {
    auto snap = snapshots_.Latest();
    res.set_content(StatusJson(snap.get(), buses_, options_), "application/json");
  });
}

}  // namespace plantd::http

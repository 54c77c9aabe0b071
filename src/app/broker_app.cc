#include "app/broker_app.h"

#include "log/log.h"

namespace plantd {

BrokerApp::BrokerApp(const BrokerOptions& options) : options_(options), context_(1) {
  // Bounded so that a process with unreachable peers still exits promptly.
  context_.set(zmq::ctxopt::blocky, 0);
}

BrokerApp::~BrokerApp() { Stop(); }

Status BrokerApp::Start() {
  broker_ = std::make_unique<broker::Broker>(context_, options_, clock_, &snapshots_);
  if (Status s = broker_->Bind(); !s.ok()) return s;
  for (const BusOptions& bus_options : options_.buses) {
    buses_.push_back(std::make_unique<bus::Bus>(context_, bus_options));
    if (Status s = buses_.back()->Open(); !s.ok()) return s;
  }

  if (options_.health.port != 0) {
    std::vector<const bus::Bus*> bus_views;
    for (const auto& bus : buses_) bus_views.push_back(bus.get());
    http_ = std::make_unique<http::HttpServer>(options_, snapshots_, std::move(bus_views));
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

void BrokerApp::Stop() {
  if (broker_ && broker_thread_.joinable()) {
    broker_->Stop();
    broker_thread_.join();
  }
  if (http_) http_->Stop();
  for (auto& bus : buses_) bus->Stop();
}

}  // namespace plantd

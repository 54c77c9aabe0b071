// A named service: its waiting requests and its available workers.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "broker/broker_stats.h"
#include "broker/client_registry.h"
#include "broker/fair_queue.h"
#include "broker/worker.h"

namespace plantd::broker {

// Core thread only.
class Service {
 public:
  explicit Service(std::string name) : name_(std::move(name)) {}
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  const std::string& name() const { return name_; }
  FairQueue& queue() { return queue_; }
  const FairQueue& queue() const { return queue_; }
  ServiceCounters& counters() { return counters_; }
  const ServiceCounters& counters() const { return counters_; }

  // Workers with spare credit, filed by how much: the next request goes to
  // the one with the most spare credit, and among equals to the least
  // recently used (a worker re-filed goes to the back). With credit 1 for
  // all, this is 18/MDP's LRU list of idle workers.
  //
  // Files (or re-files) w under its current spare credit; none: withdrawn.
  void MakeAvailable(Worker* w);
  // Removes and returns the worker with the most spare credit, or nullptr.
  Worker* TakeMostSpare();
  void Withdraw(Worker* w);
  bool has_available() const { return available_ > 0; }

  size_t worker_count() const { return worker_count_; }
  size_t busy_count() const { return busy_count_; }
  void AddWorker() { ++worker_count_; }
  void RemoveWorker() { --worker_count_; }
  // A worker went from no request to one (or back).
  void WorkerBusy() { ++busy_count_; }
  void WorkerIdle() { --busy_count_; }

  SteadyTime last_active;  // for forgetting services nobody uses
  // False until a worker first registers: until then the service exists
  // only because clients asked for it, and counts against
  // limits.max_unserved_services (and `creator`'s max_client_services).
  bool ever_served = false;
  Client* creator = nullptr;  // the client connection that asked first, while unserved

 private:
  struct List {
    Worker* head = nullptr;
    Worker* tail = nullptr;
  };

  std::string name_;
  FairQueue queue_;
  ServiceCounters counters_;
  std::vector<List> by_spare_;  // index: spare credit (0 unused)
  size_t top_ = 0;              // no list above this index is non-empty
  size_t available_ = 0;
  size_t worker_count_ = 0;
  size_t busy_count_ = 0;
};

}  // namespace plantd::broker

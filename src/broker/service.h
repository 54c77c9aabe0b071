// A named service: its waiting requests and its idle workers.
#pragma once

#include <cstddef>
#include <string>

#include "broker/broker_stats.h"
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

  // Idle workers, least recently used at the front: dispatch takes from the
  // front and a worker that finishes joins the back.
  void PushIdle(Worker* w);
  Worker* PopIdle();  // nullptr when none
  void RemoveIdle(Worker* w);
  bool has_idle() const { return idle_head_ != nullptr; }
  size_t idle_count() const { return idle_count_; }

  size_t worker_count() const { return worker_count_; }
  void AddWorker() { ++worker_count_; }
  void RemoveWorker() { --worker_count_; }

  SteadyTime last_active;  // for forgetting services nobody uses

 private:
  std::string name_;
  FairQueue queue_;
  ServiceCounters counters_;
  Worker* idle_head_ = nullptr;
  Worker* idle_tail_ = nullptr;
  size_t idle_count_ = 0;
  size_t worker_count_ = 0;
};

}  // namespace plantd::broker

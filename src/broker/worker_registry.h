// Every registered worker, by routing id.
#pragma once

#include <memory>
#include <string_view>

#include "broker/worker.h"
#include "common/string_map.h"

namespace plantd::broker {

// Core thread only.
class WorkerRegistry {
 public:
  Worker* Find(std::string_view identity) const {
    auto it = workers_.find(identity);
    return it == workers_.end() ? nullptr : it->second.get();
  }

  // REQUIRES: Find(identity) == nullptr
  Worker* Add(std::string_view identity) {
    auto w = std::make_unique<Worker>();
    w->identity = std::string(identity);
    Worker* raw = w.get();
    workers_.emplace(raw->identity, std::move(w));
    return raw;
  }

  // Destroys w. REQUIRES: w is registered here.
  void Remove(Worker* w) {
    const std::string identity = w->identity;
    workers_.erase(identity);
  }

  size_t size() const { return workers_.size(); }

  // Calls f(Worker*) for every worker. f must not add or remove workers.
  template <typename F>
  void ForEach(F&& f) const {
    for (const auto& [identity, w] : workers_) f(w.get());
  }

 private:
  StringMap<std::unique_ptr<Worker>> workers_;
};

}  // namespace plantd::broker

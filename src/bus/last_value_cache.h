// The latest message of each topic on a bus, so that a new subscriber can be
// sent the current value at once instead of waiting for the next change.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

#include <zmq.hpp>

#include "common/string_map.h"

namespace plantd::bus {

// Bus thread only.
class LastValueCache {
 public:
  explicit LastValueCache(size_t max_topics = 100000) : max_topics_(max_topics) {}

  // Keeps a copy (shared buffers, no data copy) of frames[0..count), keyed by
  // the first frame. Returns false when the topic is new and the cache full.
  bool Store(const zmq::message_t* frames, size_t count);

  // Calls f(const std::vector<zmq::message_t>&) for every cached topic that
  // starts with `prefix` (the subscription's matching rule).
  template <typename F>
  void ForEachMatching(std::string_view prefix, F&& f) const {
    for (const auto& [topic, frames] : entries_) {
      if (topic.compare(0, prefix.size(), prefix) == 0) f(frames);
    }
  }

  size_t size() const { return entries_.size(); }

 private:
  size_t max_topics_;
  StringMap<std::vector<zmq::message_t>> entries_;
};

}  // namespace plantd::bus

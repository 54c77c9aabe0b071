// The latest message of each topic on a bus, so that a new subscriber can be
// sent the current value at once instead of waiting for the next change.
#pragma once

#include <cstddef>
#include <set>
#include <string_view>
#include <vector>
#include <zmq.hpp>

#include "common/string_map.h"

namespace plantd::bus {

// Bus thread only. Bounded in topics and in bytes: publishers choose both
// the topics and the sizes.
class LastValueCache {
 public:
  explicit LastValueCache(size_t max_topics = 100000, size_t max_bytes = size_t{64} << 20)
      : max_topics_(max_topics), max_bytes_(max_bytes) {}

  // Keeps a copy (shared buffers, no data copy) of frames[0..count), keyed by
  // the first frame. Returns false when it was not kept: the topic is new
  // and the cache full, or the value does not fit in max_bytes (then an
  // older value of the topic is forgotten too, rather than served stale).
  bool Store(const zmq::message_t* frames, size_t count);

  // Calls f(const std::vector<zmq::message_t>&) for every cached topic that
  // starts with `prefix` (the subscription's matching rule), in byte order,
  // until f returns false. Visits only the matching topics.
  template <typename F>
  void ForEachMatching(std::string_view prefix, F&& f) const {
    for (auto it = order_.lower_bound(prefix); it != order_.end(); ++it) {
      if (it->compare(0, prefix.size(), prefix) != 0) break;
      if (!f(entries_.find(*it)->second)) break;
    }
  }

  size_t size() const { return entries_.size(); }
  size_t bytes() const { return bytes_; }

 private:
  size_t max_topics_;
  size_t max_bytes_;
  size_t bytes_ = 0;  // of all cached frames
  StringMap<std::vector<zmq::message_t>> entries_;
  // The same topics in byte order, for prefix lookups; views of the keys of
  // entries_, whose nodes do not move.
  std::set<std::string_view, std::less<>> order_;
};

}  // namespace plantd::bus

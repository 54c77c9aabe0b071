#include "bus/last_value_cache.h"

namespace plantd::bus {

bool LastValueCache::Store(const zmq::message_t* frames, size_t count) {
  if (count == 0) return true;
  const std::string_view topic(static_cast<const char*>(frames[0].data()), frames[0].size());
  size_t size = 0;
  for (size_t i = 0; i < count; ++i) size += frames[i].size();
  auto it = entries_.find(topic);
  if (it != entries_.end()) {
    for (const zmq::message_t& f : it->second) bytes_ -= f.size();
    if (bytes_ + size > max_bytes_) {
      order_.erase(std::string_view(it->first));
      entries_.erase(it);
      return false;
    }
  } else {
    if (entries_.size() >= max_topics_ || bytes_ + size > max_bytes_) return false;
    it = entries_.emplace(std::string(topic), std::vector<zmq::message_t>()).first;
    order_.emplace(it->first);
  }
  bytes_ += size;
  std::vector<zmq::message_t>& stored = it->second;
  stored.resize(count);
  for (size_t i = 0; i < count; ++i) {
    // Reference-counted: the cache shares the frame buffers, copies no data.
    zmq_msg_copy(stored[i].handle(), const_cast<zmq_msg_t*>(frames[i].handle()));
  }
  return true;
}

}  // namespace plantd::bus

// What the broker remembers about a client connection, and only while there
// is something to remember: the services whose queue holds a lane for it
// (so that its queued requests can be dropped when its connection closes)
// and the services it brought into being that no worker has served yet (so
// that one connection cannot fill the service table with made-up names).
//
// An entry exists while either list is non-empty, so the registry is bounded
// by the lanes and unserved services, which are bounded themselves.
#pragma once

#include <algorithm>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/string_map.h"

namespace plantd::broker {

class Service;

struct Client {
  std::string id;                 // its routing id
  std::vector<Service*> lanes;    // services with a queue lane for it
  std::vector<Service*> created;  // unserved services it asked for first
};

// Core thread only.
class ClientRegistry {
 public:
  Client* Find(std::string_view id) const {
    auto it = clients_.find(id);
    return it == clients_.end() ? nullptr : it->second.get();
  }

  Client* FindOrAdd(std::string_view id) {
    auto it = clients_.find(id);
    if (it != clients_.end()) return it->second.get();
    auto c = std::make_unique<Client>();
    c->id = std::string(id);
    Client* raw = c.get();
    clients_.emplace(raw->id, std::move(c));
    return raw;
  }

  void AddLane(std::string_view id, Service* s) { FindOrAdd(id)->lanes.push_back(s); }

  void RemoveLane(std::string_view id, Service* s) {
    Client* c = Find(id);
    if (c == nullptr) return;
    Erase(&c->lanes, s);
    ForgetIfEmpty(c);
  }

  void RemoveCreated(Client* c, Service* s) {
    Erase(&c->created, s);
    ForgetIfEmpty(c);
  }

  // Destroys c. REQUIRES: c is registered here.
  void Remove(Client* c) {
    const std::string id = c->id;
    clients_.erase(id);
  }

  size_t size() const { return clients_.size(); }

 private:
  static void Erase(std::vector<Service*>* list, Service* s) {
    auto it = std::find(list->begin(), list->end(), s);
    if (it == list->end()) return;
    *it = list->back();
    list->pop_back();
  }

  void ForgetIfEmpty(Client* c) {
    if (c->lanes.empty() && c->created.empty()) Remove(c);
  }

  StringMap<std::unique_ptr<Client>> clients_;
};

}  // namespace plantd::broker

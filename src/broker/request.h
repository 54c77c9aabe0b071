// A client request inside the broker, and the pool that recycles them so the
// core allocates nothing per message once warm.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>
#include <zmq.hpp>

#include "common/clock.h"
#include "mdp/protocol.h"
#include "store/request_store.h"

namespace plantd::broker {

class Service;

struct Request {
  uint64_t id = 0;                       // carried to the worker as the client address
  zmq::message_t client;                 // the client's routing id
  std::vector<zmq::message_t> envelope;  // returned in front of each reply
  mdp::Dialect client_dialect = mdp::Dialect::kMdp02;
  Service* service = nullptr;
  std::vector<zmq::message_t> body;  // kept until FINAL, for re-dispatch
  SteadyTime received;               // round-trip latency starts here
  SteadyTime queued_at;              // expiry counts from the last enqueue
  int dispatches = 0;                // times handed to a worker
  // A durable request (9/TSP) handed over by Titanic: no client (`client` is
  // empty and nobody is sent its replies), no expiry; its FINAL reply goes
  // to Titanic, its PARTIALs are dropped.
  bool stored = false;
  bool cancelled = false;  // titanic.close while the core held it: drop it
  store::RequestId stored_id;
};

// Core thread only.
class RequestPool {
 public:
  Request* Acquire() {
    if (free_.empty()) {
      all_.push_back(std::make_unique<Request>());
      return all_.back().get();
    }
    Request* r = free_.back();
    free_.pop_back();
    return r;
  }

  // Frames are closed here; the vector keeps its capacity for the next use.
  void Release(Request* r) {
    r->body.clear();
    r->envelope.clear();
    r->client.rebuild();
    r->service = nullptr;
    r->dispatches = 0;
    r->stored = false;
    r->cancelled = false;
    free_.push_back(r);
  }

  size_t in_use() const { return all_.size() - free_.size(); }

 private:
  std::vector<std::unique_ptr<Request>> all_;
  std::vector<Request*> free_;
};

}  // namespace plantd::broker

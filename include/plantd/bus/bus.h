// Thin helpers for plantd's pub/sub buses: a message is a topic frame
// followed by payload frames. Publishers connect to a bus's backend,
// subscribers to its frontend.
//
//   plantd::bus::Publisher pub("tcp://localhost:12000");
//   pub.Publish("sensor.temp", {"21.5"});
//
//   plantd::bus::Subscriber sub("tcp://localhost:12001", {"sensor."});
//   while (auto m = sub.Receive(std::chrono::seconds(1))) use(m->topic, m->frames);
//
// Both run on libplantd's own ZMTP engine by default (plantd/engine.h): a
// Subscriber then does its socket calls in the thread that calls Receive,
// and a Publisher encodes in the thread that calls Publish and writes in
// batches from one background thread of its own. With Engine::kLibzmq
// (and for CURVE) each has a libzmq context and its I/O thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "plantd/curve.h"
#include "plantd/engine.h"
#include "plantd/status.h"

namespace plantd::bus {

struct Message {
  std::string topic;
  std::vector<std::string> frames;
};

struct PublisherOptions {
  // true: Publish waits when the bus is full instead of dropping
  // (ZMQ_XPUB_NODROP), as a `block` bus expects. false: drop; on the
  // native engine Publish then says so and dropped() counts it (libzmq
  // drops silently).
  bool block = true;
  // Messages queued towards the bus and not yet written.
  int send_hwm = 100000;
  // CURVE keys for a bus that requires them (plantd/curve.h).
  CurveOptions curve;
  Engine engine = Engine::kAuto;
  // Native engine: how long a message may wait for others to share its
  // write. A message published longer than this after the last write goes
  // at once; a burst goes in writes of up to 64 KiB.
  std::chrono::microseconds max_batch_delay{50};
};

struct SubscriberOptions {
  // Messages received and not yet taken by Receive (native engine: past
  // it the bus's messages wait in TCP, and then the bus applies its own
  // drop or block rule).
  int receive_hwm = 100000;
  // CURVE keys for a bus that requires them (plantd/curve.h).
  CurveOptions curve;
  Engine engine = Engine::kAuto;
};

// Not thread-safe (one thread publishes).
class Publisher {
 public:
  // Never throws: a malformed endpoint makes status() and every Publish
  // return kInvalidArgument naming it.
  explicit Publisher(const std::string& endpoint, const PublisherOptions& options = {});
  ~Publisher();
  // Ok also when no subscriber wants `topic` (nothing is sent).
  Status Publish(const std::string& topic, const std::vector<std::string>& frames);
  Status status() const;
  // Messages lost (native engine): refused because the queue was full, in
  // drop mode, and queued for a connection that was lost before they were
  // written. libzmq does not tell; with it this stays 0.
  uint64_t dropped() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Not thread-safe.
class Subscriber {
 public:
  // Never throws: with a malformed endpoint, status() says so and Receive
  // returns nothing.
  Subscriber(const std::string& endpoint, const std::vector<std::string>& topics,
             const SubscriberOptions& options = {});
  ~Subscriber();
  Status Subscribe(const std::string& topic_prefix);
  std::optional<Message> Receive(std::chrono::milliseconds timeout);
  // The same into `*out`, reusing its storage: a loop that passes the same
  // Message each time receives without allocating (native engine). False
  // when nothing arrived in time.
  bool Receive(Message* out, std::chrono::milliseconds timeout);
  Status status() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace plantd::bus

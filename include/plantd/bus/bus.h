// Thin helpers for plantd's pub/sub buses: a message is a topic frame
// followed by payload frames. Publishers connect to a bus's backend,
// subscribers to its frontend.
//
//   plantd::bus::Publisher pub("tcp://localhost:12000");
//   pub.Publish("sensor.temp", {"21.5"});
//
//   plantd::bus::Subscriber sub("tcp://localhost:12001", {"sensor."});
//   while (auto m = sub.Receive(std::chrono::seconds(1))) use(m->topic, m->frames);
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "plantd/curve.h"
#include "plantd/status.h"

namespace plantd::bus {

struct Message {
  std::string topic;
  std::vector<std::string> frames;
};

struct PublisherOptions {
  // true: Publish waits when the bus is full instead of dropping
  // (ZMQ_XPUB_NODROP), as a `block` bus expects. false: drop, counted by
  // ZeroMQ only.
  bool block = true;
  int send_hwm = 100000;
  // CURVE keys for a bus that requires them (plantd/curve.h).
  CurveOptions curve;
};

struct SubscriberOptions {
  int receive_hwm = 100000;
  // CURVE keys for a bus that requires them (plantd/curve.h).
  CurveOptions curve;
};

// Not thread-safe.
class Publisher {
 public:
  // Never throws: a malformed endpoint makes status() and every Publish
  // return kInvalidArgument naming it.
  explicit Publisher(const std::string& endpoint, const PublisherOptions& options = {});
  ~Publisher();
  Status Publish(const std::string& topic, const std::vector<std::string>& frames);
  Status status() const;

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
  Status status() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace plantd::bus

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
};

// Not thread-safe.
class Publisher {
 public:
  explicit Publisher(const std::string& endpoint, PublisherOptions options = {});
  ~Publisher();
  Status Publish(const std::string& topic, const std::vector<std::string>& frames);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Not thread-safe.
class Subscriber {
 public:
  Subscriber(const std::string& endpoint, const std::vector<std::string>& topics);
  ~Subscriber();
  void Subscribe(const std::string& topic_prefix);
  std::optional<Message> Receive(std::chrono::milliseconds timeout);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace plantd::bus

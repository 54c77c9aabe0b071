// A Majordomo client with many requests in flight on one socket: the path to
// high throughput. Each request is tagged with an envelope that the broker
// returns with its replies (docs/protocol.md, "Envelopes"), so replies that
// come back out of order still reach the right callback.
//
//   plantd::mdp::AsyncClient client({.endpoints = {"tcp://localhost:7200"}});
//   client.Send("echo", {"hi"}, [](plantd::Result<plantd::mdp::Frames> r) { ... });
//   client.Drain(std::chrono::seconds(5));   // runs callbacks until none is pending
//
// Single-threaded: Send, Poll and Drain run on the thread that owns the
// client, and callbacks run inside Poll/Drain. Needs plantd-broker (MDP/0.2).
#pragma once

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <string>

#include "plantd/mdp/client.h"

namespace plantd::mdp {

class AsyncClient {
 public:
  using Callback = std::function<void(Result<Frames> reply)>;

  explicit AsyncClient(ClientOptions options = {});
  ~AsyncClient();
  AsyncClient(const AsyncClient&) = delete;
  AsyncClient& operator=(const AsyncClient&) = delete;

  // Queues a request. `done` runs exactly once, inside Poll/Drain: with the
  // FINAL body, with kTimeout when no FINAL came within options.timeout, or
  // with status() when the client cannot send. With one broker AsyncClient
  // does not retry: the caller decides what a lost request means. With
  // several (options.endpoints), requests go to them in turn, and one that
  // times out, or whose broker's connection drops, is sent to the next
  // broker, up to options.attempts sends in all (kUnavailable when the
  // connection dropped on the last); the first FINAL wins. Each request's
  // body is then kept until it completes. docs/brokers.md says which
  // requests may run twice.
  void Send(const std::string& service, const Frames& body, Callback done,
            Client::PartialHandler on_partial = {});

  // The same, completed through a future (made ready inside Poll/Drain).
  std::future<Result<Frames>> Send(const std::string& service, const Frames& body);

  // Handles replies and timeouts for at most `wait`; returns how many
  // requests completed.
  size_t Poll(std::chrono::milliseconds wait);

  // Polls until nothing is pending or `limit` passes; returns pending().
  size_t Drain(std::chrono::milliseconds limit);

  size_t pending() const;

  // Ok, or why this client cannot send at all (no endpoint, a malformed
  // one: kInvalidArgument). Its requests then complete with this status.
  Status status() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace plantd::mdp

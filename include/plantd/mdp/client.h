// A synchronous Majordomo client: one request at a time, with a timeout,
// retries and broker fail-over.
//
//   plantd::mdp::Client client("tcp://localhost:7200");
//   auto reply = client.Request("org.plantd.MyService", {"operation", data});
//   if (!reply.ok()) std::cerr << reply.status().message() << "\n";
//
// Not thread-safe: use one Client per thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "plantd/curve.h"
#include "plantd/engine.h"
#include "plantd/status.h"

namespace plantd::mdp {

// The Majordomo version a client or worker speaks.
enum class Protocol {
  kMdp02,  // ZeroMQ RFC 18 (default)
  kMdp01,  // ZeroMQ RFC 7, for older brokers
};

using Frames = std::vector<std::string>;

// What carries the traffic of a client or worker to its brokers. With
// kNative the calling thread does the socket calls and no I/O thread is
// started.
using Engine = plantd::Engine;

struct ClientOptions {
  // Brokers to use, in order: on a timeout, or when the broker's
  // connection drops while a request waits, the client moves to the next.
  // (AsyncClient sends to them in turn, and moves a request likewise.)
  std::vector<std::string> endpoints{"tcp://127.0.0.1:7200"};
  // How long to wait for each reply (a PARTIAL restarts the wait).
  std::chrono::milliseconds timeout{2500};
  // Attempts per request. 18/MDP: after a timeout the client closes its
  // socket, reconnects and sends again (workers are assumed idempotent);
  // a dropped connection counts as an attempt and is retried at once.
  // docs/brokers.md says which requests may then run twice.
  int attempts = 3;
  Protocol protocol = Protocol::kMdp02;
  // CURVE keys for a broker that requires them (plantd/curve.h).
  CurveOptions curve;
  Engine engine = Engine::kAuto;
};

class Client {
 public:
  explicit Client(ClientOptions options = {});
  explicit Client(const std::string& endpoint);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  using PartialHandler = std::function<void(const Frames& body)>;

  // Sends `body` to `service` and returns the FINAL reply's body. PARTIAL
  // replies go to `on_partial` as they arrive. Errors: kTimeout (no reply
  // after every attempt), kUnavailable (no broker accepted a connection),
  // kInvalidArgument.
  Result<Frames> Request(const std::string& service, const Frames& body,
                         const PartialHandler& on_partial = {});

  // 8/MMI mmi.service: true when at least one worker serves `service`.
  Result<bool> ServiceExists(const std::string& service);

  const ClientOptions& options() const { return options_; }

 private:
  struct Impl;
  ClientOptions options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace plantd::mdp

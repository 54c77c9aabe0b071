// A ZAP handler (ZeroMQ RFC 27) for the sockets whose handshake libzmq does
// itself: the bus backends and `transport: zmq`. The native transport checks
// CURVE keys in zmtp_curve_mechanism; a libzmq socket with ZMQ_CURVE_SERVER
// (or a ZMQ_ZAP_DOMAIN) instead asks whoever is bound at
// inproc://zeromq.zap.01 in its context, and this class is that answer.
//
//   auto zap = ZapHandler::Start(context, [&](std::string_view mechanism,
//                                             std::string_view key,
//                                             std::string* user_id) { ... });
//   if (!zap.ok()) return zap.status();
//
// How libzmq 4.3 asks (so the handler must be running before such a socket
// binds, or clients get in unchecked):
//   - CURVE server: asks for every client whenever a handler is bound, domain
//     or not; with no handler bound it lets everyone in (the "Stonehouse"
//     legacy), unless ZMQ_ZAP_ENFORCE_DOMAIN is on, which then refuses all
//     and also requires a non-empty ZMQ_ZAP_DOMAIN before asking at all.
//   - NULL: asks only when ZMQ_ZAP_DOMAIN is set; with no handler bound the
//     client is let in unless ZMQ_ZAP_ENFORCE_DOMAIN is on.
//   ZMQ_ZAP_DOMAIN itself is only passed along in the request's domain frame;
//   this handler does not distinguish domains.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <zmq.hpp>

#include "common/status.h"

namespace plantd::transport {

class ZapHandler {
 public:
  // Decides one client. `mechanism` is "NULL" or "CURVE"; for CURVE
  // `client_key` is the client's 32-byte long-term public key (raw bytes),
  // for NULL it is empty. Return true to let the client in, after setting
  // *user_id to a name for it (libzmq shows it as the "User-Id" property of
  // the client's messages; it may be left empty).
  //
  // Called on the handler's own thread, one request at a time: whatever it
  // reads must be safe to read from there. It must not block for long, since
  // every handshake in the context waits behind it, and must not throw
  // (a throw is answered 500 and counted as a denial).
  using Authorize = std::function<bool(std::string_view mechanism, std::string_view client_key,
                                       std::string* user_id)>;

  // RFC 27: the one address libzmq looks for, per context.
  static constexpr const char* kEndpoint = "inproc://zeromq.zap.01";

  // Binds kEndpoint in `context` and starts answering. Fails (without
  // starting a thread) if the bind fails, e.g. because another handler
  // already holds the endpoint in this context. `context` must outlive the
  // handler, or be shut down, which stops the handler's thread.
  static Result<std::unique_ptr<ZapHandler>> Start(zmq::context_t& context, Authorize authorize);

  // Stops and joins the thread (within about one poll interval, 50 ms) and
  // frees the endpoint, so a new handler can Start in the same context at once.
  ~ZapHandler();
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;

  // Requests by outcome, since Start. Thread-safe.
  // accepted: answered 200. denied: answered 400 (refused by Authorize, or
  // a mechanism it is not asked about). malformed: answered 500, or dropped
  // when there was no request id to answer to.
  uint64_t accepted() const { return accepted_.load(std::memory_order_relaxed); }
  uint64_t denied() const { return denied_.load(std::memory_order_relaxed); }
  uint64_t malformed() const { return malformed_.load(std::memory_order_relaxed); }

 private:
  class DenialLog;

  ZapHandler(zmq::socket_t socket, Authorize authorize);

  // The handler thread: polls, answers, exits when stop_ is set or the
  // context is shut down.
  void Run();
  void HandleOne();

  zmq::socket_t socket_;  // handler thread only, once started
  const Authorize authorize_;
  std::unique_ptr<DenialLog> denial_log_;  // handler thread only
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> accepted_{0};
  std::atomic<uint64_t> denied_{0};
  std::atomic<uint64_t> malformed_{0};
  std::thread thread_;  // last: started after everything it reads
};

}  // namespace plantd::transport

#include "plantd/mdp/client.h"

#include <cstring>
#include <zmq.hpp>

#include "client/dealer_socket.h"
#include "client/frames.h"
#include "mdp/protocol.h"

namespace plantd::mdp {

using client::Byte;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

namespace {

// How often a client waiting for a reply looks whether its broker's
// connection is still there.
constexpr milliseconds kConnectionCheck{100};

}  // namespace

struct Client::Impl {
  zmq::context_t context{1};
  std::unique_ptr<client::DealerSocket> socket;
  // Why the last handshake failed (a refused CURVE key), until one succeeds.
  Status handshake_failure;
  size_t endpoint = 0;  // index into options.endpoints

  // libzmq: not ZMQ_IMMEDIATE, although it would show "no broker" as a
  // socket that never turns writable: with it, libzmq terminates a
  // connection's pipe when the connection closes, dropping a reply that has
  // arrived but has not been read yet, as when a draining broker answers
  // and closes. The handshake is watched instead (watch_handshake).
  Status Connect(const ClientOptions& options) {
    client::DealerOptions o;
    o.engine = options.engine;
    o.curve = options.curve;
    o.watch_handshake = true;
    auto opened = client::DealerSocket::Open(context, {options.endpoints[endpoint]}, o);
    if (!opened.ok()) return opened.status();
    socket = std::move(opened.value());
    return Status::Ok();
  }

  void Close() {
    if (socket && !socket->handshake_failure().ok())
      handshake_failure = socket->handshake_failure();
    socket.reset();
  }

  bool WaitConnected(milliseconds timeout) {
    const bool connected = socket->WaitConnected(timeout);
    if (connected) handshake_failure = Status::Ok();
    return connected;
  }
};

Client::Client(ClientOptions options) : options_(std::move(options)), impl_(new Impl) {}
Client::Client(const std::string& endpoint) : Client(ClientOptions{.endpoints = {endpoint}}) {}
Client::~Client() = default;

Result<Frames> Client::Request(const std::string& service, const Frames& body,
                               const PartialHandler& on_partial) {
  if (options_.endpoints.empty()) return Status::InvalidArgument("no broker endpoint given");
  if (service.empty()) return Status::InvalidArgument("empty service name");
  const bool v01 = options_.protocol == Protocol::kMdp01;
  bool ever_connected = false;
  for (int attempt = 0; attempt < std::max(1, options_.attempts); ++attempt) {
    if (!impl_->socket) {
      Status connected = impl_->Connect(options_);
      if (!connected.ok()) return connected;
    }
    client::DealerSocket& socket = *impl_->socket;
    if (impl_->WaitConnected(options_.timeout)) {
      ever_connected = true;
      const bool sent =
          v01 ? socket.Send({"", kClientHeader01, service}, body)
              : socket.Send({kClientHeader02, Byte(v02::kClientRequest), service}, body);
      if (!sent) return Status::Unavailable("the request could not be sent to the broker");
      auto deadline = steady_clock::now() + options_.timeout;
      while (true) {
        // Rounded up: a request never times out before its deadline.
        const auto left = std::chrono::ceil<milliseconds>(deadline - steady_clock::now());
        if (left <= milliseconds(0)) break;  // timed out
        // In slices, to notice a broker that goes away: its connection
        // closing makes nothing readable.
        if (!socket.WaitReadable(std::min(left, kConnectionCheck))) {
          // The request died with the connection (a broker that comes back
          // knows nothing of it): send it again at once, to the next broker.
          if (!socket.connected()) break;
          continue;
        }
        Frames reply;
        if (!socket.Recv(&reply)) continue;
        // 0.2: [MDPC02, PARTIAL|FINAL, service, body...]; 0.1: ["", MDPC01, service, body...]
        constexpr size_t head = 3;
        if (reply.size() < head) return Status::ProtocolError("short reply from the broker");
        bool final = true;
        if (v01) {
          if (reply[1] != kClientHeader01) return Status::ProtocolError("not an MDP/0.1 reply");
        } else {
          if (reply[0] != kClientHeader02) return Status::ProtocolError("not an MDP/0.2 reply");
          final = reply[1] == Byte(v02::kClientFinal);
          if (!final && reply[1] != Byte(v02::kClientPartial)) {
            return Status::ProtocolError("unknown reply command");
          }
        }
        Frames reply_body(std::make_move_iterator(reply.begin() + head),
                          std::make_move_iterator(reply.end()));
        if (final) return reply_body;
        if (on_partial) on_partial(reply_body);
        deadline = steady_clock::now() + options_.timeout;  // the worker is alive
      }
    }
    // 18/MDP: close, reconnect (to the next broker, if several), resend.
    impl_->Close();
    impl_->endpoint = (impl_->endpoint + 1) % options_.endpoints.size();
  }
  if (!ever_connected) {
    if (!impl_->handshake_failure.ok()) return impl_->handshake_failure;
    return Status::Unavailable("no broker reachable at " + options_.endpoints[0] +
                               (options_.endpoints.size() > 1 ? " or the others" : ""));
  }
  return Status::Timeout("no reply from " + service + " after " +
                         std::to_string(options_.attempts) + " attempts of " +
                         std::to_string(options_.timeout.count()) + " ms");
}

Result<bool> Client::ServiceExists(const std::string& service) {
  auto reply = Request("mmi.service", {service});
  if (!reply.ok()) return reply.status();
  if (reply->empty()) return Status::ProtocolError("empty mmi.service reply");
  return (*reply)[0] == "200";
}

}  // namespace plantd::mdp

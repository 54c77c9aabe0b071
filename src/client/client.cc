#include "plantd/mdp/client.h"

#include <zmq.hpp>

#include "client/frames.h"
#include "mdp/protocol.h"

namespace plantd::mdp {

using client::Byte;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

struct Client::Impl {
  zmq::context_t context{1};
  std::unique_ptr<zmq::socket_t> socket;
  size_t endpoint = 0;  // index into options.endpoints

  void Connect(const ClientOptions& options) {
    socket = std::make_unique<zmq::socket_t>(context, zmq::socket_type::dealer);
    socket->set(zmq::sockopt::linger, 0);
    // Queue only on a completed connection, so "no broker" shows as a
    // socket that never becomes writable.
    socket->set(zmq::sockopt::immediate, 1);
    socket->connect(options.endpoints[endpoint]);
  }

  // Waits for the socket to be writable (connected). False on timeout.
  bool WaitWritable(milliseconds timeout) {
    zmq::pollitem_t item{socket->handle(), 0, ZMQ_POLLOUT, 0};
    return client::Poll(&item, 1, timeout) > 0;
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
    if (!impl_->socket) impl_->Connect(options_);
    zmq::socket_t& socket = *impl_->socket;
    if (impl_->WaitWritable(options_.timeout)) {
      ever_connected = true;
      if (v01) {
        client::SendFrames(socket, {"", kClientHeader01, service}, body);
      } else {
        client::SendFrames(socket, {kClientHeader02, Byte(v02::kClientRequest), service}, body);
      }
      auto deadline = steady_clock::now() + options_.timeout;
      while (true) {
        const auto left = std::chrono::duration_cast<milliseconds>(deadline - steady_clock::now());
        zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
        if (left <= milliseconds(0)) break;  // timed out
        if (client::Poll(&item, 1, left) == 0) continue;  // a signal, or time is up
        Frames reply = client::RecvFrames(socket);
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
    impl_->socket.reset();
    impl_->endpoint = (impl_->endpoint + 1) % options_.endpoints.size();
  }
  if (!ever_connected) {
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

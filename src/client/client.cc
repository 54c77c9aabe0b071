#include "plantd/mdp/client.h"

#include <cstring>
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
  // Events of `socket`: whether a broker has completed the ZMTP handshake.
  std::unique_ptr<zmq::socket_t> monitor;
  bool connected = false;
  // Why the last handshake failed (a refused CURVE key), until one succeeds.
  Status handshake_failure;
  uint64_t sockets_made = 0;
  size_t endpoint = 0;  // index into options.endpoints

  // Not ZMQ_IMMEDIATE, although it would show "no broker" as a socket that
  // never turns writable: with it, libzmq terminates a connection's pipe
  // when the connection closes, dropping a reply that has arrived but has
  // not been read yet, as when a draining broker answers and closes. The
  // handshake is watched through a socket monitor instead.
  Status Connect(const ClientOptions& options) {
    try {
      return ConnectOrThrow(options);
    } catch (const zmq::error_t& e) {  // out of sockets or descriptors
      Close();
      return Status::Unavailable(std::string("cannot open a socket: ") + e.what());
    }
  }

  Status ConnectOrThrow(const ClientOptions& options) {
    monitor.reset();
    socket = std::make_unique<zmq::socket_t>(context, zmq::socket_type::dealer);
    socket->set(zmq::sockopt::linger, 0);
    connected = false;
    const std::string events = "inproc://plantd-client-events-" + std::to_string(++sockets_made);
    if (zmq_socket_monitor(socket->handle(), events.c_str(),
                           ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED |
                               ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                               ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) != 0) {
      socket.reset();
      return Status::Error(std::string("cannot watch the broker connection: ") +
                           zmq_strerror(zmq_errno()));
    }
    // Connected before the socket connects, so that no event is missed.
    monitor = std::make_unique<zmq::socket_t>(context, zmq::socket_type::pair);
    monitor->set(zmq::sockopt::linger, 0);
    monitor->connect(events);
    Status status = client::Connect(*socket, options.endpoints[endpoint], options.curve);
    if (!status.ok()) Close();
    return status;
  }

  void Close() {
    monitor.reset();
    socket.reset();
    connected = false;
  }

  // Applies the connection events that have arrived, without waiting.
  void ReadEvents() {
    while (true) {
      // An event is [uint16 event, uint32 value][endpoint].
      const Frames event = client::RecvFrames(*monitor);
      if (event.empty()) return;
      if (event[0].size() < sizeof(uint16_t)) continue;
      uint16_t id;
      std::memcpy(&id, event[0].data(), sizeof(id));
      uint32_t value = 0;
      if (event[0].size() >= sizeof(id) + sizeof(value)) {
        std::memcpy(&value, event[0].data() + sizeof(id), sizeof(value));
      }
      const std::string where = event.size() > 1 ? event[1] : std::string("the broker");
      if (id == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
        connected = true;
        handshake_failure = Status::Ok();
      }
      if (id == ZMQ_EVENT_DISCONNECTED) connected = false;
      // libzmq retries a refused handshake by itself; remembered so that a
      // request that never got through says why instead of "unreachable".
      if (id == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
        handshake_failure = Status::PermissionDenied(
            where + " refused this client's CURVE key (ZAP status " + std::to_string(value) +
            "): is its public key in the broker's security.authorized_keys_dir?");
      }
      if (id == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
        handshake_failure =
            Status::PermissionDenied("the security handshake with " + where +
                                     " failed (a wrong server key, or CURVE on one side only?)");
      }
    }
  }

  // Waits until a broker has completed the handshake (libzmq reconnects by
  // itself after a disconnect). False on timeout.
  bool WaitConnected(milliseconds timeout) {
    const auto deadline = steady_clock::now() + timeout;
    ReadEvents();
    while (!connected) {
      // Rounded up: a timeout never ends before its deadline.
      const auto left = std::chrono::ceil<milliseconds>(deadline - steady_clock::now());
      if (left <= milliseconds(0)) return false;
      zmq::pollitem_t item{monitor->handle(), 0, ZMQ_POLLIN, 0};
      if (client::Poll(&item, 1, left) > 0) ReadEvents();
    }
    return true;
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
    zmq::socket_t& socket = *impl_->socket;
    if (impl_->WaitConnected(options_.timeout)) {
      ever_connected = true;
      const bool sent =
          v01 ? client::SendFrames(socket, {"", kClientHeader01, service}, body)
              : client::SendFrames(socket, {kClientHeader02, Byte(v02::kClientRequest), service},
                                   body);
      if (!sent) return Status::Unavailable("the request could not be sent to the broker");
      auto deadline = steady_clock::now() + options_.timeout;
      while (true) {
        // Rounded up: a request never times out before its deadline.
        const auto left = std::chrono::ceil<milliseconds>(deadline - steady_clock::now());
        zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
        if (left <= milliseconds(0)) break;               // timed out
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

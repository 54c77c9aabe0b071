// ZMTP's NULL mechanism (RFC 37): no security. Each side sends READY with
// its metadata; traffic frames travel as they are.
#pragma once

#include <string>
#include <string_view>

#include "transport/zmtp_mechanism.h"

namespace plantd::transport {

class ZmtpNullMechanism final : public ZmtpMechanism {
 public:
  // `socket_type` is what our READY announces ("ROUTER", "XPUB").
  explicit ZmtpNullMechanism(std::string socket_type) : socket_type_(std::move(socket_type)) {}

  std::string_view name() const override { return "NULL"; }
  bool as_server() const override { return false; }
  bool AcceptsPeerRole(bool /*peer_as_server*/) const override { return true; }
  void Start(std::string& out) override;
  Step OnHandshakeCommand(std::string_view body, std::string& out) override;
  std::string_view refusal() const override { return refusal_; }
  const zmtp::PeerMetadata& peer() const override { return peer_; }

 private:
  const std::string socket_type_;
  // The peer's metadata, copied out of the input buffer it arrived in.
  std::string peer_socket_type_;
  std::string peer_identity_;
  zmtp::PeerMetadata peer_;
  const char* refusal_ = "";
};

}  // namespace plantd::transport

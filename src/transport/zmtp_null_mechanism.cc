#include "transport/zmtp_null_mechanism.h"

namespace plantd::transport {

void ZmtpNullMechanism::Start(std::string& out) {
  // Our READY goes with our greeting: NULL has nothing to wait for, and
  // libzmq reads it as soon as it has checked our greeting.
  zmtp::AppendReady(out, socket_type_);
}

ZmtpMechanism::Step ZmtpNullMechanism::OnHandshakeCommand(std::string_view body,
                                                          std::string& /*out*/) {
  if (zmtp::CommandName(body) == "ERROR") {
    refusal_ = "the peer sent ERROR";
    return Step::kRefused;
  }
  zmtp::PeerMetadata metadata;
  if (!zmtp::ParseReady(body, &metadata)) {
    refusal_ = "no READY after the greeting";
    return Step::kRefused;
  }
  peer_socket_type_ = metadata.socket_type;
  peer_identity_ = metadata.identity;
  peer_ = {.socket_type = peer_socket_type_, .identity = peer_identity_};
  return Step::kReady;
}

}  // namespace plantd::transport

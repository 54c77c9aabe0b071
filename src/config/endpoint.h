// ZeroMQ endpoint strings as written in configuration.
//
// Syntax follows ZeroMQ, with CZMQ's prefixes: "@tcp://..." binds,
// ">tcp://..." connects, and an endpoint without a prefix binds (every
// endpoint the broker itself owns is bound).
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace plantd {

struct Endpoint {
  enum class Transport { kTcp, kIpc, kInproc };

  std::string address;  // without the @ / > prefix, e.g. "tcp://*:7200"
  bool bind = true;
  Transport transport = Transport::kTcp;
  std::string host;  // tcp only; "*" for every interface
  int port = 0;      // tcp only
  std::string path;  // ipc and inproc: what follows "://"

  // True when binding both would fight over the same address.
  bool ConflictsWith(const Endpoint& other) const;
  // True when only this machine can reach it: ipc://, inproc://, or tcp://
  // on a loopback address (127.0.0.0/8, ::1, localhost).
  bool IsLocal() const;
};

// Parses and checks one endpoint. The error says what a valid one looks like.
Result<Endpoint> ParseEndpoint(std::string_view text);

}  // namespace plantd

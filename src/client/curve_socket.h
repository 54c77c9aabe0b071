// How libplantd's sockets take CurveOptions (plantd/curve.h).
#pragma once

#include <zmq.hpp>

#include "plantd/curve.h"
#include "plantd/status.h"

namespace plantd::client {

// Makes `socket` a CURVE client of the broker in `curve` (nothing when
// !curve.enabled()). Call before connect. kInvalidArgument when a key is
// malformed or the socket refuses it (a libzmq built without CURVE).
Status ApplyCurve(zmq::socket_t& socket, const CurveOptions& curve);

}  // namespace plantd::client

// Which ZMTP implementation carries a libplantd peer's traffic: clients and
// workers (plantd/mdp/) and the bus helpers (plantd/bus/) all choose alike.
#pragma once

namespace plantd {

enum class Engine {
  // libplantd's own ZMTP engine wherever it can serve the connection
  // (tcp:// and ipc:// without CURVE), libzmq otherwise.
  kAuto,
  // libplantd's own engine. CURVE and transports other than tcp:// and
  // ipc:// are kInvalidArgument.
  kNative,
  // libzmq sockets, whose I/O thread carries every message.
  kLibzmq,
};

}  // namespace plantd

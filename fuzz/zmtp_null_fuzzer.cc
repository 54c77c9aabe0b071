// A native ZMTP connection with the NULL mechanism (RFC 23, 37), fed what a
// peer sends from its greeting on: the greeting checks, READY and its
// metadata, the socket type rules, framing, the message limits and the skip
// of oversized messages, PING/PONG, SUBSCRIBE/CANCEL, ERROR.
//
// Input: one setup byte (SetupFromByte in connection_harness.h; bit 7 keeps
// the stream open instead of ending it), then the bytes of the stream.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "connection_harness.h"
#include "transport/zmtp_null_mechanism.h"

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  plantd::fuzz::CheckedLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using plantd::fuzz::ConnectionHarness;
  if (size < 1) return 0;
  const plantd::fuzz::ConnectionSetup setup = plantd::fuzz::SetupFromByte(data[0]);
  ConnectionHarness harness(
      setup, std::make_unique<plantd::transport::ZmtpNullMechanism>(setup.zmtp.socket_type));
  harness.Send(std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));
  if ((data[0] & 0x80) == 0) harness.EndInput();
  harness.Pump();
  harness.Finish();
  return 0;
}

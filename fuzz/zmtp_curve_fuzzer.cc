// A native ZMTP connection with the CURVE server mechanism (RFC 26), in two
// modes chosen by bit 7 of the first byte (bits 0-6: SetupFromByte in
// connection_harness.h):
//
//   0  raw: the rest is the stream from the greeting on. The keys and
//      libsodium's random bytes are fixed, so the valid handshakes in the
//      seeds (written by fuzz_zmtp_curve_seeds) stay valid: mutations start
//      from HELLO, INITIATE and MESSAGE boxes that open.
//   1  boxed: the harness completes a valid handshake as libzmq's client
//      would (its first byte chooses the client: see Handshake below), then
//      the rest is a list of records, each one frame on the wire:
//
//        op (1 byte), length (2 bytes, big-endian), payload
//        op bits 0-1  0: a MESSAGE boxing the payload under the next nonce
//                     1: the same under a nonce already used (a replay)
//                     2: a MESSAGE under the next nonce with one byte
//                        flipped (at payload[0] mod its size)
//                     3: the payload as it is (any frames)
//        op bits 2-3  the flags inside the box (0x01 more, 0x02 command);
//                     for 2, bits 2-4 choose the bit flipped
//        op bit 6     a 9-byte outer header even for a short frame
//        op bit 7     MORE set on the outer header (libzmq never does)
//
//      Everything the server sends after READY (echoes, PONGs) must be a
//      MESSAGE that opens, its nonce increasing.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "connection_harness.h"
#include "curve_client.h"

namespace {

using plantd::fuzz::Check;
using plantd::fuzz::ConnectionHarness;
using plantd::fuzz::ConnectionSetup;
using plantd::fuzz::CurveClient;
namespace zmtp = plantd::transport::zmtp;

void FuzzRaw(const ConnectionSetup& setup, std::string_view stream) {
  ConnectionHarness harness(setup, plantd::fuzz::MakeCurveServer(setup.zmtp.socket_type, false));
  harness.Send(stream);
  harness.EndInput();
  harness.Pump();
  harness.Finish();
}

// The client's handshake; false when the server refused it as expected.
// `choice` bit 0: the server denies every client key; bit 1: no Identity;
// bit 2: a socket type the server does not accept (PAIR); bit 3: an
// Identity starting with a zero byte (refused by the owner).
bool Handshake(ConnectionHarness& harness, CurveClient& client, const ConnectionSetup& setup,
               uint8_t choice) {
  std::string out;
  client.AppendGreetingAndHello(out);
  harness.Send(out);
  harness.Pump();
  std::string_view welcome = harness.output();
  Check(client.TakeWelcome(&welcome), "no WELCOME that opens in answer to a valid HELLO");
  Check(welcome.empty(), "more than WELCOME in answer to HELLO");
  harness.output().clear();

  const bool deny = (choice & 0x01) != 0;
  const bool incompatible = (choice & 0x04) != 0;
  const bool zero_identity = (choice & 0x08) != 0;
  std::string_view socket_type = setup.zmtp.socket_type == "XPUB" ? "SUB" : "DEALER";
  if (incompatible) socket_type = "PAIR";
  std::string identity;
  if ((choice & 0x02) == 0) identity = "fuzz-client";
  if (zero_identity) identity.insert(0, 1, '\0');
  out.clear();
  client.AppendInitiate(socket_type, identity, out);
  harness.Send(out);
  harness.Pump();
  if (deny || incompatible || setup.refuse_identity || zero_identity) {
    Check(harness.closed(), "a client that must be refused was let in");
    return false;
  }
  Check(harness.ready(), "a valid INITIATE did not complete the handshake");
  std::string_view ready = harness.output();
  Check(client.TakeReady(&ready), "no READY that opens in answer to a valid INITIATE");
  Check(ready.empty(), "more than READY in answer to INITIATE");
  harness.output().clear();
  return true;
}

void AppendRecords(CurveClient& client, std::string_view records, std::string& stream) {
  while (records.size() >= 3) {
    const auto op = static_cast<uint8_t>(records[0]);
    const size_t length =
        (size_t{static_cast<uint8_t>(records[1])} << 8) | static_cast<uint8_t>(records[2]);
    records.remove_prefix(3);
    const std::string_view payload = records.substr(0, length);
    records.remove_prefix(payload.size());
    const auto flags = static_cast<uint8_t>((op >> 2) & 0x03);
    const bool long_header = (op & 0x40) != 0;
    const size_t at = stream.size();
    switch (op & 0x03) {
      case 0: client.AppendMessage(payload, flags, client.TakeNonce(), long_header, stream); break;
      case 1: client.AppendMessage(payload, flags, client.last_nonce(), long_header, stream); break;
      case 2: {
        client.AppendMessage(payload, 0, client.TakeNonce(), long_header, stream);
        const size_t size = stream.size() - at;
        const size_t where = payload.empty() ? 0 : static_cast<uint8_t>(payload[0]) % size;
        stream[at + where] = static_cast<char>(stream[at + where] ^ (1 << ((op >> 2) & 0x07)));
        break;
      }
      default: stream.append(payload); break;
    }
    if ((op & 0x80) != 0 && (op & 0x03) != 3) stream[at] = static_cast<char>(stream[at] | 0x01);
  }
}

// Everything after READY: MESSAGE frames that open, nonces increasing. The
// last frame may be cut short (the connection closed with output queued).
void CheckServerMessages(CurveClient& client, std::string_view out) {
  while (!out.empty()) {
    zmtp::FrameHeader header;
    const auto parsed =
        zmtp::ParseFrameHeader(reinterpret_cast<const uint8_t*>(out.data()), out.size(), &header);
    Check(parsed != zmtp::HeaderParse::kMalformed, "the server sent a malformed frame header");
    if (parsed == zmtp::HeaderParse::kIncomplete) return;
    if (out.size() - header.header_size < header.size) return;
    const std::string_view body = out.substr(header.header_size, header.size);
    out.remove_prefix(header.header_size + body.size());
    Check(!header.command && !header.more, "a MESSAGE with flags outside its box");
    std::string plain;
    uint8_t flags = 0;
    Check(client.OpenMessage(body, &plain, &flags), "a MESSAGE from the server does not open");
    Check((flags & ~0x03) == 0, "a MESSAGE from the server with unknown boxed flags");
  }
}

void FuzzBoxed(const ConnectionSetup& setup, std::string_view input) {
  if (input.empty()) return;
  const auto choice = static_cast<uint8_t>(input[0]);
  ConnectionHarness harness(setup,
                            plantd::fuzz::MakeCurveServer(setup.zmtp.socket_type, choice & 0x01));
  CurveClient client;
  if (Handshake(harness, client, setup, choice)) {
    std::string stream;
    AppendRecords(client, input.substr(1), stream);
    harness.Send(stream);
    harness.EndInput();
    harness.Pump();
    CheckServerMessages(client, harness.output());
  }
  harness.Finish();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  plantd::fuzz::CheckedLogs();
  plantd::fuzz::UseDeterministicRandom();
  if (sodium_init() < 0) return 1;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  plantd::fuzz::RestartRandom();
  const ConnectionSetup setup = plantd::fuzz::SetupFromByte(data[0]);
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if ((data[0] & 0x80) == 0) {
    FuzzRaw(setup, rest);
  } else {
    FuzzBoxed(setup, rest);
  }
  return 0;
}

// Writes the seeds of fuzz_zmtp_curve into a directory (fuzz/corpus/
// zmtp_curve): whole valid client streams made with the harness's fixed keys
// and random bytes, so that they stay valid when the fuzzer replays them,
// and inputs of the boxed mode. Run by hand when the keys, the random
// stream or the handshake change:
//
//   build-fuzz/fuzz/fuzz_zmtp_curve_seeds fuzz/corpus/zmtp_curve
#include <sodium.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "connection_harness.h"
#include "curve_client.h"

namespace {

using plantd::fuzz::Check;
using plantd::fuzz::ConnectionHarness;
using plantd::fuzz::ConnectionSetup;
using plantd::fuzz::CurveClient;

struct Frame {
  std::string body;
  uint8_t boxed_flags;  // 0x01 more, 0x02 command
};

std::string Command(std::string_view name, std::string_view rest) {
  std::string body(1, static_cast<char>(name.size()));
  body.append(name);
  body.append(rest);
  return body;
}

// The setup byte, then what a client sends: greeting, HELLO, INITIATE (when
// `initiate`) and `frames` boxed. The server is run alongside, as the fuzzer
// runs it, for its WELCOME.
std::string RawStream(uint8_t setup_byte, bool initiate, const std::vector<Frame>& frames) {
  plantd::fuzz::RestartRandom();
  const ConnectionSetup setup = plantd::fuzz::SetupFromByte(setup_byte);
  ConnectionHarness harness(setup, plantd::fuzz::MakeCurveServer(setup.zmtp.socket_type, false));
  CurveClient client;
  std::string stream(1, static_cast<char>(setup_byte));
  std::string out;
  client.AppendGreetingAndHello(out);
  stream += out;
  harness.Send(out);
  harness.Pump();
  if (initiate) {
    std::string_view welcome = harness.output();
    Check(client.TakeWelcome(&welcome), "no WELCOME");
    out.clear();
    const bool xpub = setup.zmtp.socket_type == "XPUB";
    client.AppendInitiate(xpub ? "SUB" : "DEALER", "fuzz-client", out);
    stream += out;
    harness.Send(out);
    harness.Pump();
    Check(harness.ready(), "the seed's handshake did not complete");
  }
  for (const Frame& frame : frames) {
    client.AppendMessage(frame.body, frame.boxed_flags, client.TakeNonce(), false, stream);
  }
  harness.Finish();
  return stream;
}

// A record of the boxed mode: a MESSAGE under the next nonce.
std::string Record(uint8_t op, std::string_view payload) {
  std::string record(1, static_cast<char>(op));
  record.push_back(static_cast<char>(payload.size() >> 8));
  record.push_back(static_cast<char>(payload.size()));
  record.append(payload);
  return record;
}

bool Write(const std::string& dir, const std::string& name, const std::string& bytes) {
  std::ofstream file(dir + "/" + name, std::ios::binary | std::ios::trunc);
  file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(file);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIRECTORY\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  plantd::fuzz::QuietLogs();
  plantd::fuzz::UseDeterministicRandom();
  if (sodium_init() < 0) return 1;

  const std::vector<Frame> mdp_request = {
      {"MDPC02", 0x01}, {"\x01", 0x01}, {"echo", 0x01}, {"hello", 0x00}};
  const std::string ping = Command("PING", std::string("\x00\x0a", 2) + "ctx");
  const std::vector<std::pair<std::string, std::string>> seeds = {
      {"raw-hello", RawStream(0x07, false, {})},
      {"raw-handshake", RawStream(0x07, true, {})},
      {"raw-request", RawStream(0x07, true, mdp_request)},
      {"raw-request-split-7", RawStream(0x03, true, mdp_request)},
      {"raw-ping", RawStream(0x05, true, {{ping, 0x02}})},
      {"raw-too-large", RawStream(0x0f, true, {{std::string(300, 'x'), 0x00}})},
      {"raw-xpub-subscribe",
       RawStream(0x47, true,
                 {{Command("SUBSCRIBE", "topic"), 0x02}, {Command("CANCEL", "topic"), 0x02}})},
      {"boxed-request", "\x87" + std::string(1, '\0') + Record(0x04, "MDPC02") +
                            Record(0x04, "\x01") + Record(0x04, "echo") + Record(0x00, "hello")},
      {"boxed-ping", "\x85" + std::string(1, '\0') + Record(0x08, ping)},
      {"boxed-replay", "\x87" + std::string(1, '\0') + Record(0x00, "a") + Record(0x01, "b")},
      {"boxed-flipped", "\x87" + std::string(1, '\0') +
                            Record(0x02,
                                   "\x20"
                                   "abc")},
      {"boxed-denied", "\x87\x01"},
      {"boxed-xpub", "\xc7" + std::string(1, '\x02') + Record(0x08, Command("SUBSCRIBE", "t"))},
  };
  for (const auto& [name, bytes] : seeds) {
    if (!Write(dir, name, bytes)) {
      std::fprintf(stderr, "cannot write %s/%s\n", dir.c_str(), name.c_str());
      return 1;
    }
  }
  std::printf("wrote %zu seeds to %s\n", seeds.size(), dir.c_str());
  return 0;
}

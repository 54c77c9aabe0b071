// NATS JetStream acknowledged publishes, spoken directly in the NATS text
// protocol (no NATS library is installed): the baseline of the broker's
// durable requests (issue 14). Same design as zmtp_load: one thread and one
// blocking TCP socket per client, writes buffered and sent once per batch
// of input; each client keeps `inflight` publishes waiting for their PubAck.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "load_result.h"

namespace plantd::bench {

struct JetStreamLoadOptions {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string stream = "PLANTDBENCH";
  std::string subject = "plantd.bench";  // the stream's only subject
  int clients = 4;
  int inflight = 16;
  size_t size = 64;
  double warmup_s = 1;
  double duration_s = 5;
  std::function<double()> server_cpu_seconds;  // sampled at the window's ends
};

// Creates a file-backed stream (storage "file", one replica) on `subject`
// through $JS.API.STREAM.CREATE. Empty on success, else what the server said.
std::string CreateFileStream(const JetStreamLoadOptions& options);

// Messages the stream holds, from $JS.API.STREAM.INFO; -1 and `error` set if
// it cannot be read.
int64_t StreamMessageCount(const JetStreamLoadOptions& options, std::string* error);

// Publishes `size`-byte messages to `subject`, each with a reply inbox, and
// counts a publish complete when its PubAck {"stream":..,"seq":N} arrives
// (an {"error":..} answer counts as mismatched).
LoadResult RunJetStreamLoad(const JetStreamLoadOptions& options);

}  // namespace plantd::bench

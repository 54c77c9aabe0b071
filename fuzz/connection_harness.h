// One ZmtpConnection driven as ZmtpRouter drives it, with the harness in the
// two roles around it: the owning socket (ZmtpConnection::Host) and the peer
// at the other end of a socketpair, which sends the fuzzer's bytes and reads
// what the connection writes.
//
// Each whole message is taken and echoed back (so that output, and with
// CURVE the MESSAGE boxes we send, are exercised too); SUBSCRIBE and CANCEL
// go into a PrefixTrie as the bus counts them. Finish() checks that every
// buffered byte left the socket's tally.
#pragma once

#include <zmq.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "bus/prefix_trie.h"
#include "check.h"
#include "transport/router_socket.h"
#include "transport/zmtp_connection.h"

namespace plantd::fuzz {

// Logs everything the connection logs (trace, JSON) into a sink that checks
// each line is valid UTF-8 with every C0 control escaped, as log.h promises
// for bytes copied from the wire (socket types, identities), then drops it.
// Once per process, instead of QuietLogs().
void CheckedLogs();

// How the connection is set up and fed, from bits 0-6 of an input's first
// byte (bit 7 is the harness's own).
struct ConnectionSetup {
  size_t read_chunk = 1;  // bytes per ReadSome(), so that every split is tried
  transport::RouterOptions options;
  transport::ZmtpOptions zmtp;   // the broker's ROUTER, or a bus's XPUB frontend
  bool refuse_identity = false;  // OnHandshakeDone refuses the peer
};
ConnectionSetup SetupFromByte(uint8_t byte);

class ConnectionHarness final : public transport::ZmtpConnection::Host {
 public:
  ConnectionHarness(const ConnectionSetup& setup,
                    std::unique_ptr<transport::ZmtpMechanism> mechanism);
  ~ConnectionHarness();
  ConnectionHarness(const ConnectionHarness&) = delete;
  ConnectionHarness& operator=(const ConnectionHarness&) = delete;

  // Sends `bytes` as the peer. All of them fit in the socket's buffer: the
  // fuzzers' inputs are small.
  void Send(std::string_view bytes);
  // The peer stops sending (end of stream once what was sent is read).
  void EndInput();
  // Lets the connection read everything sent so far, `read_chunk` bytes at
  // a time, handling what is whole after each read; writes its output.
  void Pump();
  // What the connection wrote that the caller has not consumed.
  std::string& output() { return output_; }
  bool closed() const { return connection_->closed(); }
  bool ready() const { return connection_->ready(); }
  // Closes the connection and checks the socket's byte tally.
  void Finish();

  // ZmtpConnection::Host.
  bool OnHandshakeDone(transport::ZmtpConnection* connection, std::string_view identity) override;
  void OnOutputQueued(transport::ZmtpConnection* connection) override;
  void CloseConnection(transport::ZmtpConnection* connection, transport::CloseReason reason,
                       const char* why) override;

 private:
  void TakeMessages();
  void Flush();
  void DrainPeer();
  void OnSubscription(bool subscribe, std::string_view topic);

  ConnectionSetup setup_;
  transport::ZmtpConnection::Context context_;
  int peer_fd_ = -1;
  std::unique_ptr<transport::ZmtpConnection> connection_;
  zmq_msg_t frame_;
  std::string output_;
  // The bus's bookkeeping of one subscriber: its count per topic.
  bus::PrefixTrie trie_;
  std::map<std::string, uint32_t, std::less<>> topics_;
};

}  // namespace plantd::fuzz

// Issue 12, long variants of the transport attacks (label `stress`, run by
// `make stress`): 1 GB pushed at the real broker binary as empty MORE frames
// and as PINGs that are never read, with resident memory sampled all along.
// The short variants are in tests/integration/hardening_transport_test.cc.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "mdp_peers.h"
#include "raw_zmtp.h"
#include "support.h"
#include "transport/zmtp_framing.h"

namespace plantd::test {
namespace {

using namespace std::chrono_literals;
namespace zmtp = transport::zmtp;

constexpr int kMiBPushed = 1024;  // 1 GiB
constexpr long kRssBoundKiB = 64 * 1024;

class TransportStressTest : public ::testing::Test {
 protected:
  void SetUp() override {
    client_port_ = FreeTcpPort();
    worker_port_ = FreeTcpPort();
    const std::string yaml = "endpoint: " + TcpEndpoint(client_port_) +
                             "\nclient_endpoint: " + TcpEndpoint(worker_port_) +
                             "\nbuses: []\nhealth:\n  port: 0\n";
    ASSERT_TRUE(broker_.Start({.config_yaml = yaml})) << broker_.Output();
  }

  // Pushes kMiBPushed MiB of `chunk` (1 MiB) on raw connections and
  // returns the largest growth of the broker's RSS meanwhile, in KiB. A
  // connection the broker closes (a PING flooder that never reads is a slow
  // consumer after write_timeout) is opened again, as an attacker would.
  long Push(const std::string& chunk, int rcvbuf = 0) {
    const long before = RssKiB(broker_.pid());
    int fd = -1;
    long peak = before;
    for (int i = 0; i < kMiBPushed; ++i) {
      if (fd < 0) {
        fd = RawConnect(client_port_, nullptr, rcvbuf);
        EXPECT_GE(fd, 0);
        if (fd < 0 || !RawHandshake(fd)) break;
        ++connections_;
      }
      if (!SendAll(fd, chunk)) {
        ::close(fd);
        fd = -1;
        if (connections_ > 200) {
          ADD_FAILURE() << "the broker stopped taking bytes after " << i << " MiB";
          break;
        }
      }
      if (i % 16 == 0) peak = std::max(peak, RssKiB(broker_.pid()));
    }
    peak = std::max(peak, RssKiB(broker_.pid()));
    if (fd >= 0) ::close(fd);
    return peak - before;
  }

  // The broker still answers a real client and worker.
  void ExpectServed() {
    TestWorker worker(ctx_, TcpEndpoint(worker_port_), Dialect::kMdp02);
    worker.Ready("after.stress");
    TestClient client(ctx_, TcpEndpoint(client_port_), Dialect::kMdp02);
    client.Request("after.stress", {"ping"});
    auto request = worker.Receive(5s);
    ASSERT_TRUE(request.has_value());
    worker.Final(request->address, {"pong"});
    auto reply = client.Receive(5s);
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->body, Frames{"pong"});
  }

  zmq::context_t ctx_;
  BrokerProcess broker_;
  int client_port_ = 0;
  int worker_port_ = 0;
  int connections_ = 0;
};

TEST_F(TransportStressTest, OneGigabyteOfEmptyMoreFramesKeepsRssBounded) {
  std::string chunk;
  for (int i = 0; i < 512 * 1024; ++i) zmtp::AppendFrame(chunk, "", true);
  const long grown = Push(chunk);
  EXPECT_LT(grown, kRssBoundKiB) << "RSS grew by " << grown / 1024 << " MiB";
  EXPECT_EQ(connections_, 1) << "skipping the endless message needs no reconnect";
  ExpectServed();
}

TEST_F(TransportStressTest, OneGigabyteOfPingsNeverReadKeepsRssBounded) {
  std::string chunk;
  while (chunk.size() < (1u << 20)) zmtp::AppendPing(chunk, 0, "0123456789abcdef");
  // The attacker's receive buffer keeps its default size: with a tiny one,
  // its own full buffer drops the broker's segments that carry the ACKs for
  // its data, and TCP stalls the attacker itself (seen at about 72 MiB).
  const long grown = Push(chunk);
  EXPECT_LT(grown, kRssBoundKiB) << "RSS grew by " << grown / 1024 << " MiB";
  EXPECT_EQ(connections_, 1);
  ExpectServed();
}

}  // namespace
}  // namespace plantd::test

// Issue 12, the transport's part: attacks on the real plantd-broker binary
// over real sockets (raw TCP speaking ZMTP for attackers, libzmq DEALERs for
// real peers), each asserting what a user cares about: the real worker still
// gets its requests, memory stays bounded, real peers are still served, and
// the refusal is logged.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "mdp_peers.h"
#include "raw_zmtp.h"
#include "support.h"
#include "transport/zmtp_framing.h"

namespace plantd::test {
namespace {

using namespace std::chrono_literals;
namespace zmtp = transport::zmtp;

class HardeningTransportTest : public ::testing::Test {
 protected:
  void StartBroker(const std::string& extra = "") {
    client_port_ = FreeTcpPort();
    worker_port_ = FreeTcpPort();
    const std::string yaml = "endpoint: " + TcpEndpoint(client_port_) +
                             "\nclient_endpoint: " + TcpEndpoint(worker_port_) +
                             "\nbuses: []\nhealth:\n  port: 0\n"
                             // Workers live 5 s without a word: floods on a
                             // loaded machine must not expire them.
                             "heartbeat_interval: 500ms\nheartbeat_liveness: 10\n" +
                             extra;
    ASSERT_TRUE(broker_.Start({.config_yaml = yaml})) << broker_.Output();
  }
  void TearDown() override {
    if (broker_.running()) broker_.Stop();
  }

  std::string clients() const { return TcpEndpoint(client_port_); }
  std::string workers() const { return TcpEndpoint(worker_port_); }

  // A worker for `service` that answers every request with its body, and
  // is registered when this returns.
  std::unique_ptr<TestWorker> ReadyWorker(const std::string& service, const std::string& id = "") {
    auto w = std::make_unique<TestWorker>(ctx_, workers(), Dialect::kMdp02, id);
    w->Ready(service);
    EXPECT_TRUE(ServiceAvailable(service)) << "the worker did not register";
    return w;
  }

  bool ServiceAvailable(const std::string& service) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < deadline) {
      TestClient mmi(ctx_, clients(), Dialect::kMdp02);
      mmi.Request("mmi.service", {service});
      auto r = mmi.Receive(2s);
      if (r && r->body == Frames{"200"}) return true;
    }
    return false;
  }

  // One request from a fresh client to a fresh worker, end to end, within
  // `timeout`: the broker still serves real peers.
  void ExpectServed(const std::string& service, std::chrono::milliseconds timeout = 3s) {
    const auto start = std::chrono::steady_clock::now();
    TestWorker worker(ctx_, workers(), Dialect::kMdp02);
    worker.Ready(service);
    TestClient client(ctx_, clients(), Dialect::kMdp02);
    client.Request(service, {"still served"});
    auto request = worker.Receive(timeout);
    ASSERT_TRUE(request.has_value()) << "the worker got no request";
    worker.Final(request->address, {"yes"});
    auto reply = client.Receive(timeout);
    ASSERT_TRUE(reply.has_value()) << "the client got no reply";
    EXPECT_EQ(reply->body, Frames{"yes"});
    EXPECT_LT(std::chrono::steady_clock::now() - start, timeout);
  }

  zmq::context_t ctx_;
  BrokerProcess broker_;
  int client_port_ = 0;
  int worker_port_ = 0;
};

// Attack: a second connection announces a live worker's routing id (it is
// visible in /status and logs), as libzmq's ROUTER handover would allow.
// Outcome: the real worker gets every request, the attacker none, and the
// refusal is logged with both addresses.
TEST_F(HardeningTransportTest, ARoutingIdOfALiveWorkerCannotBeTakenOver) {
  StartBroker();
  auto worker = ReadyWorker("payroll", "worker-1");
  TestWorker attacker(ctx_, workers(), Dialect::kMdp02, "worker-1");
  attacker.Ready("payroll");
  ASSERT_TRUE(broker_.WaitForOutput("duplicate_identity", 5s)) << broker_.Output();
  TestClient client(ctx_, clients(), Dialect::kMdp02);
  for (int i = 0; i < 10; ++i) {
    client.Request("payroll", {"job " + std::to_string(i)});
    auto r = worker->Receive();
    ASSERT_TRUE(r.has_value()) << "request " << i << " did not reach the real worker";
    EXPECT_EQ(r->body, Frames{"job " + std::to_string(i)});
    worker->Final(r->address, {"done " + std::to_string(i)});
    auto reply = client.Receive();
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->body, Frames{"done " + std::to_string(i)});
  }
  EXPECT_FALSE(attacker.Receive(300ms).has_value()) << "the attacker received a request";
  const std::string out = broker_.Output();
  const size_t line = out.find("duplicate_identity");
  ASSERT_NE(line, std::string::npos);
  const std::string text = out.substr(line, out.find('\n', line) - line);
  EXPECT_NE(text.find("identity=776f726b65722d31"), std::string::npos) << text;  // hex
  EXPECT_NE(text.find("holder=127.0.0.1:"), std::string::npos) << text;
  EXPECT_NE(text.find("remote=127.0.0.1:"), std::string::npos) << text;
}

// Attack: one connection streams empty frames with MORE set (2 bytes each),
// a message that never ends. Before issue 12 the broker buffered it byte
// for byte. Outcome: resident memory stays within 48 MiB of where it was
// while 100 MB go in, and real peers are served afterwards.
TEST_F(HardeningTransportTest, EmptyMoreFrameFloodKeepsMemoryBounded) {
  StartBroker();
  const long before = RssKiB(broker_.pid());
  ASSERT_GT(before, 0);
  const int fd = RawConnect(client_port_);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(RawHandshake(fd));
  std::string chunk;
  for (int i = 0; i < 512 * 1024; ++i) zmtp::AppendFrame(chunk, "", true);  // 1 MiB
  long peak = before;
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(SendAll(fd, chunk)) << "after " << i << " MiB";
    peak = std::max(peak, RssKiB(broker_.pid()));
  }
  EXPECT_LT(peak - before, 48 * 1024) << "RSS grew by " << (peak - before) / 1024 << " MiB";
  ASSERT_TRUE(broker_.WaitForOutput("too_many_frames", 5s)) << broker_.Output();
  ExpectServed("after.flood");
  ::close(fd);
}

// Attack: PINGs as fast as TCP takes them, never reading the PONGs.
// Outcome: no queue of PONGs; memory stays within 48 MiB while 50 MB of
// PINGs go in.
TEST_F(HardeningTransportTest, PingFloodWithoutReadingKeepsMemoryBounded) {
  StartBroker();
  const long before = RssKiB(broker_.pid());
  // The default receive buffer: a tiny one makes TCP stall the attacker
  // itself (its full buffer drops the segments carrying its ACKs).
  const int fd = RawConnect(client_port_);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(RawHandshake(fd));
  std::string pings;
  while (pings.size() < (1u << 20)) zmtp::AppendPing(pings, 0, "0123456789abcdef");
  long peak = before;
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(SendAll(fd, pings)) << "after " << i << " MiB";
    peak = std::max(peak, RssKiB(broker_.pid()));
  }
  EXPECT_LT(peak - before, 48 * 1024) << "RSS grew by " << (peak - before) / 1024 << " MiB";
  ExpectServed("after.pings");
  ::close(fd);
}

// Attack: a client sends requests and never reads the replies, which pile
// up in the broker. Outcome: past max_connection_out_bytes (64 MiB) the
// connection is closed as a slow consumer and logged.
TEST_F(HardeningTransportTest, AClientThatDoesNotReadItsRepliesIsClosedAsASlowConsumer) {
  StartBroker();
  std::atomic<bool> stop{false};
  auto worker = ReadyWorker("download");
  std::thread server([&] {
    const Frames big{std::string(4 << 20, 'd')};  // 4 MiB per reply
    while (!stop) {
      auto r = worker->Receive(100ms);
      if (r) worker->Final(r->address, big);
    }
  });
  const int fd = RawConnect(client_port_, nullptr, /*rcvbuf=*/4096);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(RawHandshake(fd));
  std::string request;
  zmtp::AppendFrame(request, "MDPC02", true);
  zmtp::AppendFrame(request, std::string(1, '\x01'), true);
  zmtp::AppendFrame(request, "download", true);
  zmtp::AppendFrame(request, "please", false);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(SendAll(fd, request));  // 400 MiB of replies
  EXPECT_TRUE(broker_.WaitForOutput("slow_consumer", 10s)) << broker_.Output();
  EXPECT_NE(broker_.Output().find("output past max_out_bytes"), std::string::npos)
      << "closed, but not for its output: " << broker_.Output();
  EXPECT_TRUE(ReadUntilClosed(fd, 10s)) << "the connection stayed open";
  stop = true;
  server.join();
  ::close(fd);
  ExpectServed("after.slow");
}

// Attack: connections that never finish the ZMTP handshake, to hold
// descriptors. Outcome: closed after handshake_timeout (5 s), logged.
TEST_F(HardeningTransportTest, HalfOpenConnectionsAreClosedAfterTheHandshakeTimeout) {
  StartBroker();
  std::vector<int> fds;
  for (int i = 0; i < 50; ++i) {
    fds.push_back(RawConnect(i % 2 ? client_port_ : worker_port_));
    ASSERT_GE(fds.back(), 0);
  }
  const auto start = std::chrono::steady_clock::now();
  for (int fd : fds) {
    EXPECT_TRUE(ReadUntilClosed(fd, 8s)) << "a half-open connection stayed open";
    ::close(fd);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 7s);
  EXPECT_NE(broker_.Output().find("handshake_timeout"), std::string::npos) << broker_.Output();
}

// Attack: one address opens as many connections as it may
// (max_connections_per_address, 2000), each past the handshake so none can
// be evicted. Outcome: its next one is refused and logged, and a real
// worker and client from another address are served.
TEST_F(HardeningTransportTest, OneAddressAtItsConnectionLimitDoesNotLockOthersOut) {
  StartBroker();
  std::vector<int> fds;
  for (int i = 0; i < 2000; ++i) {
    const int fd = RawConnect(client_port_, "127.0.0.2");
    ASSERT_GE(fd, 0) << i;
    ASSERT_TRUE(RawHandshake(fd));
    fds.push_back(fd);
  }
  // A round trip makes sure the broker has read those handshakes.
  ExpectServed("from.elsewhere");
  const int extra = RawConnect(client_port_, "127.0.0.2");
  ASSERT_GE(extra, 0);  // accepted by the kernel, then closed by the broker
  // At once, not at the handshake timeout (5 s).
  EXPECT_TRUE(ReadUntilClosed(extra, 3s)) << "the connection over the limit stayed open";
  EXPECT_TRUE(broker_.WaitForOutput("connections_per_address", 5s)) << broker_.Output();
  ExpectServed("still.from.elsewhere");
  ::close(extra);
  for (int fd : fds) ::close(fd);
}

// Attack: half-open connections until the broker runs out of file
// descriptors. Outcome: a real worker and client still connect and are
// served well before the handshake timeout would free anything, because
// the oldest half-open connection gives up its descriptor.
TEST_F(HardeningTransportTest, FdExhaustionDoesNotLockRealPeersOut) {
  // The broker inherits a low descriptor limit; ours is restored at once.
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit low = saved;
  low.rlim_cur = 128;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  StartBroker();
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
  std::vector<int> fds;
  for (int i = 0; i < 300; ++i) {
    const int fd = RawConnect(i % 2 ? client_port_ : worker_port_, "127.0.0.2");
    ASSERT_GE(fd, 0) << i;
    fds.push_back(fd);
  }
  ExpectServed("despite.exhaustion", 3s);
  EXPECT_TRUE(broker_.running());
  for (int fd : fds) ::close(fd);
}

}  // namespace
}  // namespace plantd::test

// Issue 12, "hold connections" and "flood a table" for the HTTP endpoint:
// idle, slow and oversized HTTP connections against the real binary, and
// /metrics with thousands of client-made services.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "http_client.h"
#include "mdp_peers.h"
#include "support.h"

namespace plantd::test {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

// Connections that the test opens and closes, whatever happens.
class Fds {
 public:
  ~Fds() {
    for (int fd : fds_) close(fd);
  }
  int Add(int fd) {
    if (fd >= 0) fds_.push_back(fd);
    return fd;
  }
  const std::vector<int>& all() const { return fds_; }

 private:
  std::vector<int> fds_;
};

class HardeningHttpTest : public ::testing::Test {
 protected:
  void StartBroker(const std::string& health_extra = "", const std::string& extra = "") {
    client_port_ = FreeTcpPort();
    worker_port_ = FreeTcpPort();
    http_port_ = FreeTcpPort();
    const std::string yaml =
        "endpoint: " + TcpEndpoint(client_port_) +
        "\nclient_endpoint: " + TcpEndpoint(worker_port_) +
        "\nbuses: []\nhealth:\n  bind: 127.0.0.1\n  port: " + std::to_string(http_port_) + "\n" +
        health_extra + extra;
    ASSERT_TRUE(broker_.Start({.config_yaml = yaml})) << broker_.Output();
  }
  void TearDown() override {
    if (broker_.running()) {
      EXPECT_EQ(broker_.Stop(), 0) << broker_.Output();
    }
  }
  double Refused(const std::string& reason) {
    return MetricValue(http_port_, "plantd_refused_total{reason=\"" + reason + "\"}");
  }

  BrokerProcess broker_;
  int client_port_ = 0, worker_port_ = 0, http_port_ = 0;
};

// Before: two connections that never finished their request held both
// cpp-httplib threads, and /livez timed out (an orchestrator would restart
// a healthy broker).
TEST_F(HardeningHttpTest, LivezAnswersFastWhile500IdleAnd50SlowlorisConnectionsAreOpen) {
  // Room for all of them, so that they really stay open on the server.
  StartBroker("  max_connections: 1024\n");
  Fds fds;
  for (int i = 0; i < 500; ++i) ASSERT_GE(fds.Add(TcpConnect(http_port_, true)), 0);
  std::vector<int> slow;
  for (int i = 0; i < 50; ++i) {
    const int fd = fds.Add(TcpConnect(http_port_));
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(SendAll(fd, "GET /livez HTTP/1.1\r\nX-Slow: "));
    slow.push_back(fd);
  }
  auto drip = [&slow] {  // one more header byte on every slow connection
    for (int fd : slow) (void)!send(fd, "a", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
  };
  // The broker holds all of them (plus its own descriptors).
  const auto held_by = SteadyClock::now() + 3s;
  while (MetricValue(http_port_, "process_open_fds") < 550) {
    ASSERT_LT(SteadyClock::now(), held_by) << "the broker does not hold 550 connections";
    std::this_thread::sleep_for(20ms);
  }

  std::vector<double> livez, healthz;
  auto last_drip = SteadyClock::now();
  for (int i = 0; i < 40; ++i) {
    if (SteadyClock::now() - last_drip >= 1s) {
      drip();
      last_drip = SteadyClock::now();
    }
    livez.push_back(TimedGetMs(http_port_, "/livez"));
    if (i % 4 == 0) healthz.push_back(TimedGetMs(http_port_, "/healthz"));
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_GE(MetricValue(http_port_, "process_open_fds"), 550) << "connections closed meanwhile";
  for (double ms : livez) {
    EXPECT_GE(ms, 0) << "a /livez probe failed";
    EXPECT_LT(ms, 500) << "a /livez probe was slow";
  }
  for (double ms : healthz) {
    EXPECT_GE(ms, 0) << "a /healthz probe failed";
    EXPECT_LT(ms, 500) << "a /healthz probe was slow";
  }
  std::printf(
      "/livez with 500 idle + 50 slowloris connections open: median %.2f ms, "
      "p90 %.2f ms, max %.2f ms over %zu probes; /healthz max %.2f ms\n",
      Percentile(livez, 0.5), Percentile(livez, 0.9), Percentile(livez, 1.0), livez.size(),
      Percentile(healthz, 1.0));
}

TEST_F(HardeningHttpTest, OversizeOrMalformedRequestsAreRefusedAndCounted) {
  StartBroker();
  const double before = Refused("http_request_too_large");
  ASSERT_GE(before, 0);

  const std::string big(16 * 1024, 'a');
  auto reply =
      HttpExchange(http_port_, "GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: " + big + "\r\n\r\n");
  ASSERT_TRUE(reply) << "no answer to 16 KiB of headers";
  EXPECT_EQ(reply->status, 431);
  EXPECT_TRUE(reply->closed);

  // Headers that never end are cut off at the limit as well.
  const int endless = TcpConnect(http_port_);
  ASSERT_GE(endless, 0);
  std::string pending;
  ASSERT_TRUE(SendAll(endless, "GET /livez HTTP/1.1\r\n"));
  for (int i = 0; i < 10 && SendAll(endless, "X-More: " + std::string(1000, 'b') + "\r\n"); ++i) {
  }
  auto cut = ReadReply(endless, pending, 3s);
  close(endless);
  ASSERT_TRUE(cut);
  EXPECT_EQ(cut->status, 431);

  // Every path is a GET: a body is refused, other methods are not allowed.
  reply = HttpExchange(http_port_, "GET /livez HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 413);
  reply = HttpExchange(http_port_, "POST /livez HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 405);
  EXPECT_NE(reply->head.find("Allow: GET, HEAD"), std::string::npos);
  reply = HttpExchange(http_port_, "NONSENSE\r\n\r\n");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 400);

  EXPECT_EQ(Refused("http_request_too_large"), before + 3);
  EXPECT_TRUE(broker_.WaitForOutput("refused reason=http_request_too_large", 2s))
      << broker_.Output();
  EXPECT_EQ(TimedGetMs(http_port_, "/livez") >= 0, true);
}

// Slowloris: a header byte every half second is not enough. The request
// must be complete within health.read_timeout (default 5 s) of the
// connection's opening; then 408, and the connection is closed. A connection
// that sends nothing is closed at the same time.
TEST_F(HardeningHttpTest, ASlowRequestIsClosedAfterTheReadTimeout) {
  StartBroker();
  const double before = Refused("http_timeout");
  const auto start = SteadyClock::now();
  const int slow = TcpConnect(http_port_);
  const int idle = TcpConnect(http_port_);
  ASSERT_GE(slow, 0);
  ASSERT_GE(idle, 0);
  ASSERT_TRUE(SendAll(slow, "GET /livez HTTP/1.1\r\nX-Slow: "));
  std::string received;
  bool closed = false;
  while (!closed && SteadyClock::now() - start < 9s) {
    (void)!send(slow, "a", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    pollfd p{slow, POLLIN, 0};
    if (poll(&p, 1, 500) > 0) {
      char buffer[1024];
      const ssize_t n = recv(slow, buffer, sizeof(buffer), 0);
      if (n > 0) received.append(buffer, static_cast<size_t>(n));
      if (n <= 0) closed = true;
    }
  }
  const double seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
  close(slow);
  EXPECT_TRUE(closed) << "the slow connection was not closed";
  EXPECT_GT(seconds, 4.5);
  EXPECT_LT(seconds, 7.0);
  EXPECT_EQ(received.rfind("HTTP/1.1 408 ", 0), 0u) << received;
  EXPECT_TRUE(ClosedByServer(idle, 1s)) << "the idle connection was not closed";
  close(idle);
  EXPECT_GE(Refused("http_timeout"), before + 2);
  EXPECT_TRUE(broker_.WaitForOutput("refused reason=http_timeout", 2s)) << broker_.Output();
}

// At health.max_connections, a new connection closes the one that has
// waited longest for a request, and is answered.
TEST_F(HardeningHttpTest, AtTheConnectionCapTheLongestWaitingConnectionGoesFirst) {
  StartBroker("  max_connections: 8\n");
  // Every probe is a connection too: this one, before the server is full.
  const double before = Refused("http_connections");
  Fds fds;
  std::vector<int> kept;
  for (int i = 0; i < 8; ++i) {
    // One answered request each: the server holds them, kept alive, in order.
    const int fd = fds.Add(TcpConnect(http_port_));
    ASSERT_GE(fd, 0);
    std::string pending;
    ASSERT_TRUE(SendAll(fd, "GET /livez HTTP/1.1\r\n\r\n"));
    auto reply = ReadReply(fd, pending, 2s);
    ASSERT_TRUE(reply);
    ASSERT_EQ(reply->status, 200);
    kept.push_back(fd);
  }

  // A ninth: answered, and the first one is closed.
  const int ninth = fds.Add(TcpConnect(http_port_));
  std::string pending;
  ASSERT_TRUE(SendAll(ninth, "GET /livez HTTP/1.1\r\n\r\n"));
  auto reply = ReadReply(ninth, pending, 2s);
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 200);
  EXPECT_TRUE(ClosedByServer(kept[0], 2s)) << "the oldest waiting connection is still open";
  for (size_t i = 1; i < kept.size(); ++i) {
    EXPECT_FALSE(ClosedByServer(kept[i], 50ms)) << "connection " << i << " was closed";
  }
  // A tenth (the /metrics probe below) closes the second, and so on.
  EXPECT_GE(Refused("http_connections"), before + 2);
  EXPECT_TRUE(ClosedByServer(kept[1], 2s));
  EXPECT_FALSE(ClosedByServer(kept[2], 50ms));
  EXPECT_TRUE(broker_.WaitForOutput("refused reason=http_connections", 2s)) << broker_.Output();
}

TEST_F(HardeningHttpTest, KeepAliveAnswersPipelinedRequestsInOrder) {
  StartBroker();
  const int fd = TcpConnect(http_port_);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(fd,
                      "GET /livez HTTP/1.1\r\nHost: a\r\n\r\n"
                      "HEAD /readyz HTTP/1.1\r\n\r\n"
                      "GET /nope?x=1 HTTP/1.1\r\n\r\n"
                      "GET /livez?probe=1 HTTP/1.0\r\n\r\n"));
  std::string pending;
  auto a = ReadReply(fd, pending, 2s);
  auto b = ReadReply(fd, pending, 2s, /*head_request=*/true);
  auto c = ReadReply(fd, pending, 2s);
  auto d = ReadReply(fd, pending, 2s);
  ASSERT_TRUE(a && b && c && d);
  EXPECT_EQ(a->status, 200);
  EXPECT_EQ(a->body, "ok\n");
  EXPECT_NE(a->head.find("Connection: keep-alive"), std::string::npos);
  EXPECT_EQ(b->status, 200);
  EXPECT_NE(b->head.find("Content-Length: 6\r\n"), std::string::npos) << b->head;
  EXPECT_EQ(c->status, 404);
  EXPECT_EQ(d->status, 200);
  EXPECT_NE(d->head.find("Connection: close"), std::string::npos) << "HTTP/1.0 closes";
  EXPECT_TRUE(ClosedByServer(fd, 2s));
  close(fd);
}

// Issue 12: 10,000 client-made service names grew /metrics to 18.8 MB. Past
// metrics.max_service_labels the services are summed into service="_other";
// the one with a worker keeps its own label; nothing is lost in the sums.
TEST_F(HardeningHttpTest, MetricsFoldClientMadeServicesIntoOther) {
  constexpr int kServices = 5000;
  StartBroker("",
              "metrics:\n  max_service_labels: 50\nmax_services: 20000\n"
              "limits:\n  max_client_services: 10000\n  max_unserved_services: 10000\n");
  // Until the config loader knows metrics.max_service_labels, the default
  // (1000) applies.
  const bool key_known = broker_.Output().find("metrics.max_service_labels") == std::string::npos;
  const size_t label_cap = key_known ? 50 : 1000;

  zmq::context_t ctx;
  TestWorker worker(ctx, TcpEndpoint(worker_port_), Dialect::kMdp02);
  worker.Ready("org.plantd.Real");
  TestClient client(ctx, TcpEndpoint(client_port_), Dialect::kMdp02);
  client.Request("org.plantd.Real", {"x"});
  auto request = worker.Receive();
  ASSERT_TRUE(request);
  worker.Final(request->address, request->body);
  ASSERT_TRUE(client.Receive());
  for (int i = 0; i < kServices; ++i) {
    client.Request("org.test.made." + std::to_string(i), {"x"});
  }

  const std::regex requests(R"re(^plantd_broker_requests_total\{service="([^"]*)"\} (\d+)$)re");
  std::map<std::string, double> by_service;
  double total = 0;
  std::string body;
  const auto deadline = SteadyClock::now() + 10s;
  do {
    std::this_thread::sleep_for(200ms);
    auto reply = HttpGet(http_port_, "/metrics");
    ASSERT_TRUE(reply);
    body = reply->body;
    by_service.clear();
    total = 0;
    std::istringstream lines(body);
    std::string line;
    std::smatch m;
    while (std::getline(lines, line)) {
      if (std::regex_match(line, m, requests)) {
        by_service[m[1]] = std::stod(m[2]);
        total += std::stod(m[2]);
      }
    }
  } while (total < kServices + 1 && SteadyClock::now() < deadline);
  EXPECT_EQ(total, kServices + 1) << "requests lost in the folding";
  ASSERT_TRUE(by_service.count("_other"));
  EXPECT_GT(by_service["_other"], 0);
  EXPECT_TRUE(by_service.count("org.plantd.Real")) << "a served service lost its label";
  EXPECT_LE(by_service.size(), label_cap + 1);
  EXPECT_LT(body.size(), 1100u * 1024);
  EXPECT_NE(body.find("plantd_broker_request_duration_seconds_count{service=\"_other\"}"),
            std::string::npos);
  std::printf("/metrics with %d client-made services: %zu bytes, %zu service labels\n",
              kServices + 1, body.size(), by_service.size());
}

}  // namespace
}  // namespace plantd::test

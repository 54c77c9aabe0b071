// Health and metrics over HTTP, with a real HTTP client against the binary.
#include <httplib.h>
#include <fcntl.h>
#include <signal.h>

#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "mdp_peers.h"
#include "support.h"

namespace plantd::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class HttpTest : public ::testing::Test {
 protected:
  void StartBroker(const std::string& extra = "") {
    client_port_ = FreeTcpPort();
    worker_port_ = FreeTcpPort();
    http_port_ = FreeTcpPort();
    bus_backend_ = FreeTcpPort();
    bus_frontend_ = FreeTcpPort();
    const std::string yaml =
        "endpoint: " + TcpEndpoint(client_port_) + "\nclient_endpoint: " +
        TcpEndpoint(worker_port_) + "\nhealth:\n  bind: 127.0.0.1\n  port: " +
        std::to_string(http_port_) + "\nheartbeat_interval: 100ms\nbuses:\n  - name: data\n" +
        "    backend: " + TcpEndpoint(bus_backend_) + "\n    frontend: " +
        TcpEndpoint(bus_frontend_) + "\n" + extra;
    ASSERT_TRUE(broker_.Start({.config_yaml = yaml})) << broker_.Output();
  }
  void TearDown() override {
    if (broker_.running()) {
      EXPECT_EQ(broker_.Stop(), 0) << broker_.Output();
    }
  }

  httplib::Result Get(const std::string& path) {
    httplib::Client http("127.0.0.1", http_port_);
    http.set_connection_timeout(5);
    http.set_read_timeout(5);
    return http.Get(path.c_str());
  }

  // One request-reply through an echo worker, as a 0.2 client.
  void RoundTrip(const std::string& service, int count) {
    zmq::context_t ctx;
    TestWorker worker(ctx, TcpEndpoint(worker_port_), Dialect::kMdp02);
    worker.Ready(service);
    TestClient client(ctx, TcpEndpoint(client_port_), Dialect::kMdp02);
    for (int i = 0; i < count; ++i) {
      client.Request(service, {"x"});
      auto r = worker.Receive();
      ASSERT_TRUE(r.has_value());
      worker.Final(r->address, r->body);
      ASSERT_TRUE(client.Receive().has_value());
    }
  }

  // The value of one sample in /metrics ("name{labels}"), or -1.
  double Metric(const std::string& sample) {
    auto res = Get("/metrics");
    if (!res || res->status != 200) return -1;
    std::istringstream lines(res->body);
    std::string line;
    while (std::getline(lines, line)) {
      if (line.rfind(sample + " ", 0) == 0) return std::stod(line.substr(sample.size() + 1));
    }
    return -1;
  }

  // Waits until a sample reads `value` (the core publishes /metrics' snapshot
  // every 500 ms), up to 5 s; returns the last value read.
  double WaitForMetric(const std::string& sample, double value) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    double now = Metric(sample);
    while (now != value && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(20ms);
      now = Metric(sample);
    }
    return now;
  }

  BrokerProcess broker_;
  int client_port_ = 0, worker_port_ = 0, http_port_ = 0, bus_backend_ = 0, bus_frontend_ = 0;
};

TEST_F(HttpTest, HealthzHasTheSeedShapeAndHealthJsonType) {
  StartBroker();
  auto res = Get("/healthz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/health+json");
  json j = json::parse(res->body);
  EXPECT_EQ(j["status"], "pass");
  EXPECT_EQ(j["version"], "1");
  EXPECT_TRUE(j["releaseId"].is_string());
  EXPECT_EQ(j["checks"]["broker"]["status"], "pass");
  EXPECT_TRUE(std::regex_match(j["checks"]["broker"]["time"].get<std::string>(),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")));
  EXPECT_EQ(j["checks"]["bus:data"]["status"], "pass");
}

TEST_F(HttpTest, HealthzIs503WhileTheCoreLoopIsStalled) {
  StartBroker();
  ASSERT_EQ(Get("/healthz")->status, 200);
  broker_.Signal(SIGUSR1);  // test hook: the core sleeps 4 s
  bool saw_fail = false;
  const auto deadline = std::chrono::steady_clock::now() + 4s;
  while (!saw_fail && std::chrono::steady_clock::now() < deadline) {
    auto res = Get("/healthz");
    if (res && res->status == 503) {
      saw_fail = true;
      json j = json::parse(res->body);
      EXPECT_EQ(j["status"], "fail");
      EXPECT_NE(j["checks"]["broker"]["output"].get<std::string>().find("has not ticked"),
                std::string::npos);
      EXPECT_EQ(Get("/livez")->status, 503);
    }
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(saw_fail);
  // And it recovers.
  const auto recover = std::chrono::steady_clock::now() + 5s;
  while (Get("/healthz")->status != 200) {
    ASSERT_LT(std::chrono::steady_clock::now(), recover);
    std::this_thread::sleep_for(100ms);
  }
}

TEST_F(HttpTest, HealthzWarnsWhenRequestsWaitForAMissingService) {
  StartBroker();
  zmq::context_t ctx;
  TestClient client(ctx, TcpEndpoint(client_port_), Dialect::kMdp02);
  client.Request("org.plantd.Absent", {"x"});
  const auto deadline = std::chrono::steady_clock::now() + 3s;
  json j;
  do {
    std::this_thread::sleep_for(100ms);
    auto res = Get("/healthz");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);  // warn is still 200
    j = json::parse(res->body);
  } while (j["status"] != "warn" && std::chrono::steady_clock::now() < deadline);
  EXPECT_EQ(j["status"], "warn");
  EXPECT_NE(j["checks"]["broker"]["output"].get<std::string>().find("org.plantd.Absent"),
            std::string::npos);
}

TEST_F(HttpTest, LivezAndReadyz) {
  StartBroker();
  auto live = Get("/livez");
  ASSERT_TRUE(live);
  EXPECT_EQ(live->status, 200);
  auto ready = Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
  EXPECT_EQ(Get("/nonexistent")->status, 404);
}

// Every line is a comment or a sample; every sample's family is typed; every
// histogram is cumulative and ends with +Inf = _count.
TEST_F(HttpTest, MetricsAreValidExpositionFormat) {
  StartBroker();
  RoundTrip("org.plantd.Echo", 3);
  auto res = Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_NE(res->get_header_value("Content-Type").find("text/plain; version=0.0.4"),
            std::string::npos);
  const std::regex sample(
      R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? (-?[0-9.e+-]+|\+Inf|NaN))");
  const std::regex type_line(R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram))");
  std::set<std::string> typed;
  std::istringstream lines(res->body);
  std::string line;
  int samples = 0;
  while (std::getline(lines, line)) {
    std::smatch m;
    if (line.rfind("# HELP ", 0) == 0) continue;
    if (std::regex_match(line, m, type_line)) {
      EXPECT_TRUE(typed.insert(m[1]).second) << "family typed twice: " << line;
      continue;
    }
    ASSERT_TRUE(std::regex_match(line, m, sample)) << "not a sample: " << line;
    std::string family = m[1];
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      const std::string s = suffix;
      if (family.size() > s.size() && family.ends_with(s) &&
          typed.count(family.substr(0, family.size() - s.size()))) {
        family = family.substr(0, family.size() - s.size());
      }
    }
    EXPECT_TRUE(typed.count(family)) << "sample before its TYPE: " << line;
    ++samples;
  }
  EXPECT_GT(samples, 30);
  const std::string svc = "service=\"org.plantd.Echo\"";
  EXPECT_EQ(Metric("plantd_broker_request_duration_seconds_bucket{" + svc + ",le=\"+Inf\"}"),
            Metric("plantd_broker_request_duration_seconds_count{" + svc + "}"));
  EXPECT_GT(Metric("process_resident_memory_bytes"), 1e6);
  EXPECT_GT(Metric("process_open_fds"), 3);
}

TEST_F(HttpTest, MetricsMoveAsTrafficFlows) {
  StartBroker();
  const std::string svc = "service=\"org.plantd.Counter\"";
  RoundTrip("org.plantd.Counter", 5);
  EXPECT_EQ(WaitForMetric("plantd_broker_requests_total{" + svc + "}", 5), 5);
  EXPECT_EQ(Metric("plantd_broker_replies_total{" + svc + "}"), 5);
  EXPECT_EQ(Metric("plantd_broker_request_duration_seconds_count{" + svc + "}"), 5);
  RoundTrip("org.plantd.Counter", 2);
  EXPECT_EQ(WaitForMetric("plantd_broker_requests_total{" + svc + "}", 7), 7);

  // An invalid message is counted by reason.
  zmq::context_t ctx;
  RawPeer junk(ctx, TcpEndpoint(client_port_));
  junk.Send({"NOT-MDP", "x"});
  EXPECT_EQ(WaitForMetric("plantd_broker_invalid_messages_total{reason=\"unknown_header\"}", 1),
            1);
  EXPECT_EQ(Metric("plantd_broker_connections"), 1) << "the junk peer is still connected";

  // A connection that is not ZMTP is refused, and counted.
  {
    httplib::Client wrong_port("127.0.0.1", client_port_);
    wrong_port.set_connection_timeout(2);
    wrong_port.set_read_timeout(2);
    (void)wrong_port.Get("/");
  }
  EXPECT_EQ(WaitForMetric("plantd_broker_connections_refused_total", 1), 1);

  // A large body waiting for a service with no worker is held by reference
  // to the buffer it was received in (docs/transport.md, "How bodies
  // travel"), and that buffer counts as shared input.
  EXPECT_EQ(Metric("plantd_broker_shared_input_bytes"), 0);
  RawPeer big(ctx, TcpEndpoint(client_port_));
  big.Send({"MDPC02", "\x01", "nobody.home", std::string(100000, 'b')});
  EXPECT_TRUE(PollUntil([&] { return Metric("plantd_broker_shared_input_bytes") >= 100000; }))
      << Metric("plantd_broker_shared_input_bytes");
  EXPECT_GE(Metric("plantd_broker_buffered_bytes"), 0);
  EXPECT_EQ(Metric("plantd_broker_frames_copied_past_limit_total"), 0);
  EXPECT_EQ(Metric("plantd_broker_announced_frames_declined_total"), 0);

  // A bus message is counted: once the subscriber's subscription has reached
  // the bus, messages published after it are delivered.
  zmq::socket_t pub(ctx, zmq::socket_type::pub);
  pub.set(zmq::sockopt::linger, 0);
  pub.connect(TcpEndpoint(bus_backend_));
  zmq::socket_t sub(ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::subscribe, "");
  sub.connect(TcpEndpoint(bus_frontend_));
  ASSERT_EQ(WaitForMetric("plantd_broker_bus_subscriptions{bus=\"data\"}", 1), 1);
  EXPECT_EQ(Metric("plantd_broker_bus_subscribers{bus=\"data\"}"), 1);
  // The publisher learns of the subscription from the bus, and filters
  // everything out at the source until then: publish until messages get
  // through, then ten more. Every message that reached the bus reached the
  // one subscriber, so the count in is what the subscriber received.
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  int received = 0;
  int readings = 0;
  bool through = false;
  while (readings < 10) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "messages did not get through";
    if (!through) pub.send(zmq::str_buffer("warm-up"), zmq::send_flags::none);
    zmq::message_t m;
    if (!sub.recv(m, zmq::recv_flags::dontwait)) {
      std::this_thread::sleep_for(10ms);
      continue;
    }
    ++received;
    if (m.to_string() == "reading") ++readings;
    if (!through) {
      through = true;
      for (int i = 0; i < 10; ++i) pub.send(zmq::str_buffer("reading"), zmq::send_flags::none);
    }
  }
  // Warm-ups sent just before the first got through may still come.
  while (true) {
    zmq::pollitem_t item{sub.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, std::chrono::milliseconds(200)) == 0) break;
    zmq::message_t m;
    if (sub.recv(m, zmq::recv_flags::dontwait)) ++received;
  }
  EXPECT_EQ(WaitForMetric("plantd_broker_bus_messages_total{bus=\"data\",direction=\"in\"}",
                          received),
            received);
}

// Every series the Grafana dashboard in deploy/ queries is one the broker
// exports: a renamed metric must not leave an empty panel behind.
TEST_F(HttpTest, GrafanaDashboardQueriesOnlyExportedMetrics) {
  StartBroker();
  // A service and a connected peer, so that every family has samples.
  RoundTrip("org.plantd.Dashboard", 1);
  zmq::context_t ctx;
  RawPeer peer(ctx, TcpEndpoint(client_port_));
  peer.Send({"NOT-MDP"});
  ASSERT_EQ(WaitForMetric("plantd_broker_invalid_messages_total{reason=\"unknown_header\"}", 1),
            1);
  auto res = Get("/metrics");
  ASSERT_TRUE(res);
  std::ifstream file(std::string(PLANTD_SOURCE_DIR) + "/deploy/grafana-dashboard.json");
  ASSERT_TRUE(file.good());
  const json dashboard = json::parse(file);
  const std::regex name(R"((plantd_[a-z_]+|process_[a-z_]+))");
  int checked = 0;
  for (const json& panel : dashboard["panels"]) {
    for (const json& target : panel["targets"]) {
      const std::string expr = target["expr"];
      for (std::sregex_iterator it(expr.begin(), expr.end(), name), end; it != end; ++it) {
        std::string metric = (*it)[1];
        // Histograms are exported as _bucket, _sum and _count.
        EXPECT_NE(res->body.find("\n" + metric), std::string::npos)
            << "panel \"" << panel["title"].get<std::string>() << "\" queries " << metric;
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 10);
}

TEST_F(HttpTest, StatusListsServicesWorkersAndBuses) {
  StartBroker();
  zmq::context_t ctx;
  TestWorker worker(ctx, TcpEndpoint(worker_port_), Dialect::kPlantd);
  worker.Ready("org.plantd.Status");
  for (int i = 0; i < 7; ++i) {  // past the next snapshot, heartbeating
    std::this_thread::sleep_for(100ms);
    worker.Heartbeat();
  }
  auto res = Get("/status");
  ASSERT_TRUE(res);
  json j = json::parse(res->body);
  ASSERT_EQ(j["services"].size(), 1u);
  EXPECT_EQ(j["services"][0]["name"], "org.plantd.Status");
  ASSERT_EQ(j["workers"].size(), 1u);
  EXPECT_EQ(j["workers"][0]["dialect"], "plantd");
  EXPECT_TRUE(j["workers"][0]["last_seen_seconds_ago"].is_number());
  ASSERT_EQ(j["buses"].size(), 1u);
  EXPECT_EQ(j["buses"][0]["name"], "data");
}

// The HTTP threads never touch routing: connections that send nothing do
// not slow request-reply.
TEST_F(HttpTest, HostileHttpClientsDoNotStallRouting) {
  StartBroker();
  std::vector<int> idle;
  for (int i = 0; i < 64; ++i) {
    // Non-blocking: past the server's bound on connections, the kernel
    // holds further clients back, and a blocking connect would wait too.
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(http_port_));
    connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    idle.push_back(fd);
  }
  const auto start = std::chrono::steady_clock::now();
  RoundTrip("org.plantd.Busy", 200);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  for (int fd : idle) close(fd);
}

TEST(HttpProcess, HealthPortInUseNamesTheKey) {
  PortSquatter squatter;
  const int port = squatter.port();
  BrokerProcess broker;
  broker.Start({.config_yaml = "endpoint: " + TcpEndpoint(FreeTcpPort()) +
                               "\nclient_endpoint: " + TcpEndpoint(FreeTcpPort()) +
                               "\nbuses: []\nhealth:\n  bind: 127.0.0.1\n  port: " +
                               std::to_string(port) + "\n",
                .wait_ready = false});
  EXPECT_EQ(broker.WaitExit(10s), std::optional<int>(1));
  EXPECT_NE(broker.Output().find("cannot bind 127.0.0.1:" + std::to_string(port) +
                                 " (health.bind, health.port)"),
            std::string::npos)
      << broker.Output();
}

}  // namespace
}  // namespace plantd::test

// What an operator sees of a running broker, through the real binary: /status
// computed on request, connection close reasons in /metrics, the admin drain
// from plantd-mdp, and the metric reference in docs/operations.md.
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "mdp_peers.h"
#include "support.h"

namespace plantd::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

bool WaitUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return condition();
}

class OperationsTest : public ::testing::Test {
 protected:
  // The store is off unless `extra` configures it.
  void StartBroker(const std::string& extra = "",
                   const std::map<std::string, std::string>& env = {}) {
    client_port_ = FreeTcpPort();
    worker_port_ = FreeTcpPort();
    http_port_ = FreeTcpPort();
    const std::string yaml = "endpoint: " + TcpEndpoint(client_port_) +
                             "\nclient_endpoint: " + TcpEndpoint(worker_port_) +
                             "\nhealth:\n  bind: 127.0.0.1\n  port: " +
                             std::to_string(http_port_) + "\n" +
                             (extra.find("store:") == std::string::npos ? "store:\n  enabled: false\n"
                                                                        : "") +
                             extra;
    ASSERT_TRUE(broker_.Start({.env = env, .config_yaml = yaml})) << broker_.Output();
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

  json Status() {
    auto res = Get("/status");
    if (!res || res->status != 200) return json();
    return json::parse(res->body, nullptr, false);
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

  BrokerProcess broker_;
  int client_port_ = 0, worker_port_ = 0, http_port_ = 0;
};

const json* FindByName(const json& list, const std::string& key, const std::string& value) {
  for (const json& item : list) {
    if (item.contains(key) && item[key] == value) return &item;
  }
  return nullptr;
}

// The core builds /status on request: what it has just routed is there at
// once. The worker holding the request proves that the core processed its
// READY and the request; /status, asked right after, must show both, and
// after the reply reached the client, the reply too. With the old 500 ms
// periodic snapshot both checks failed most of the time.
TEST_F(OperationsTest, StatusShowsWhatTheCoreJustRouted) {
  StartBroker();
  zmq::context_t ctx;
  TestWorker worker(ctx, TcpEndpoint(worker_port_), Dialect::kMdp02);
  worker.Ready("ops.fresh");
  TestClient client(ctx, TcpEndpoint(client_port_), Dialect::kMdp02);
  client.Request("ops.fresh", {"x"});
  auto request = worker.Receive();
  ASSERT_TRUE(request.has_value());

  json busy = Status();
  ASSERT_TRUE(busy.is_object());
  EXPECT_EQ(busy["snapshot"]["stale"], false);
  const json* service = FindByName(busy["services"], "name", "ops.fresh");
  ASSERT_NE(service, nullptr) << busy.dump(2);
  EXPECT_EQ((*service)["workers"], 1);
  EXPECT_EQ((*service)["busy_workers"], 1);
  EXPECT_EQ((*service)["requests"], 1);
  const json* w = FindByName(busy["workers"], "service", "ops.fresh");
  ASSERT_NE(w, nullptr) << busy.dump(2);
  EXPECT_EQ((*w)["in_flight"], 1);

  worker.Final(request->address, request->body);
  ASSERT_TRUE(client.Receive().has_value());
  json done = Status();
  service = FindByName(done["services"], "name", "ops.fresh");
  ASSERT_NE(service, nullptr) << done.dump(2);
  EXPECT_EQ((*service)["replies"], 1);
  EXPECT_EQ((*service)["busy_workers"], 0);
  EXPECT_LT(done["snapshot"]["age_ms"].get<int64_t>(), 50);
}

// A core that does not answer (the test hook makes it sleep) must not hang
// /status: within about 100 ms it answers from the last periodic snapshot,
// marked stale, and the probes keep answering.
TEST_F(OperationsTest, StatusAnswersStaleWhileTheCoreIsStalled) {
  StartBroker("", {{"PLANTD_BROKER_TEST_STALL_MS", "3000"}});
  ASSERT_EQ(Status()["snapshot"]["stale"], false);
  broker_.Signal(SIGUSR1);
  ASSERT_TRUE(broker_.WaitForOutput("test hook: stalling the core loop", 2s));
  bool saw_stale = false;
  for (int i = 0; i < 20 && !saw_stale; ++i) {
    const auto start = Clock::now();
    json doc = Status();
    const auto took = Clock::now() - start;
    ASSERT_TRUE(doc.is_object());
    EXPECT_LT(took, 1s);
    if (doc["snapshot"]["stale"] == true) {
      saw_stale = true;
      EXPECT_GE(doc["snapshot"]["age_ms"].get<int64_t>(), 0);
      auto live = Get("/livez");
      ASSERT_TRUE(live);  // answered, whatever it says about the stalled core
    }
  }
  EXPECT_TRUE(saw_stale);
  // And fresh again once the core runs.
  EXPECT_TRUE(WaitUntil([&] { return Status()["snapshot"]["stale"] == false; }, 6s));
}

// Each close records its reason: a peer that leaves (peer_closed) and a
// connection that is not ZMTP (handshake_failed), counted apart.
TEST_F(OperationsTest, ConnectionCloseReasonsAreCountedInMetrics) {
  StartBroker();
  const std::string peer_closed = "plantd_connections_closed_total{reason=\"peer_closed\"}";
  const std::string bad = "plantd_connections_closed_total{reason=\"handshake_failed\"}";
  ASSERT_EQ(Metric(bad), 0);
  const double peer_closed_before = Metric(peer_closed);
  ASSERT_GE(peer_closed_before, 0);

  {
    zmq::context_t ctx;
    TestClient client(ctx, TcpEndpoint(client_port_), Dialect::kMdp02);
    client.Request("mmi.service", {"nothing"});
    ASSERT_TRUE(client.Receive().has_value());  // past the handshake
  }  // closed here
  for (int i = 0; i < 2; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(client_port_));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    const std::string not_zmtp = "GET / HTTP/1.0\r\n\r\n";
    ASSERT_EQ(send(fd, not_zmtp.data(), not_zmtp.size(), 0),
              static_cast<ssize_t>(not_zmtp.size()));
    char buffer[256];
    // The broker closes it: read until end of stream (bounded by a timeout).
    timeval tv{.tv_sec = 5, .tv_usec = 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    while (recv(fd, buffer, sizeof(buffer), 0) > 0) {
    }
    close(fd);
  }
  EXPECT_TRUE(WaitUntil([&] { return Metric(bad) == 2; }, 5s)) << Metric(bad);
  EXPECT_TRUE(WaitUntil([&] { return Metric(peer_closed) >= peer_closed_before + 1; }, 5s));
  EXPECT_EQ(Metric(bad), 2);  // and no more
  auto res = Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_NE(res->body.find("# TYPE plantd_connections_closed_total counter"), std::string::npos);
  EXPECT_NE(res->body.find("plantd_connections_closed_total{reason=\"write_timeout\"} 0"),
            std::string::npos);
}

// `plantd-mdp admin drain` starts the same drain as SIGTERM: /readyz turns
// 503 at once, MMI and admin status say draining, a request in flight is
// still answered, a new one is refused, the worker gets DISCONNECT once it
// has answered, and the broker exits 0 by itself.
TEST_F(OperationsTest, AdminDrainFromTheCliFinishesInFlightRequestsThenExits) {
  StartBroker("shutdown_grace: 10s\nheartbeat_interval: 200ms\n");
  ASSERT_EQ(Get("/readyz")->status, 200);
  zmq::context_t ctx;
  TestWorker worker(ctx, TcpEndpoint(worker_port_), Dialect::kMdp02);
  worker.Ready("ops.slow");
  TestClient client(ctx, TcpEndpoint(client_port_), Dialect::kMdp02);
  client.Request("ops.slow", {"job"});
  auto request = worker.Receive();
  ASSERT_TRUE(request.has_value());

  const std::string e = TcpEndpoint(client_port_);
  RunResult drain = RunProgram("plantd-mdp", {"admin", "drain", "-e", e});
  ASSERT_EQ(drain.status, 0) << drain.output << broker_.Output();
  json answer = json::parse(drain.output, nullptr, false);
  ASSERT_TRUE(answer.is_object()) << drain.output;
  EXPECT_EQ(answer["draining"], true);
  EXPECT_EQ(answer["in_flight"], 1);

  EXPECT_EQ(Get("/readyz")->status, 503);
  RunResult status = RunProgram("plantd-mdp", {"admin", "status", "-e", e});
  ASSERT_EQ(status.status, 0) << status.output;
  EXPECT_EQ(json::parse(status.output, nullptr, false)["draining"], true);
  RawPeer mmi(ctx, e);
  mmi.Send({"MDPC02", Byte(0x01), "mmi.broker"});
  auto broker_json = mmi.Recv(2s);
  ASSERT_TRUE(broker_json.has_value());
  EXPECT_EQ(json::parse(broker_json->back(), nullptr, false)["draining"], true);

  RawPeer late(ctx, e);
  late.Send({"MDPC02", Byte(0x01), "ops.slow", "too late"});
  auto refused = late.Recv(2s);
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(*refused, (Frames{"MDPC02", Byte(0x03), "ops.slow", "503", "shutting_down"}));
  EXPECT_TRUE(broker_.running());

  worker.Final(request->address, {"answered"});
  auto reply = client.Receive();
  ASSERT_TRUE(reply.has_value()) << broker_.Output();
  EXPECT_EQ(reply->body, Frames{"answered"});
  EXPECT_TRUE(worker.ExpectDisconnect(2s));
  auto exit_status = broker_.WaitExit(5s);
  ASSERT_TRUE(exit_status.has_value()) << broker_.Output();
  EXPECT_EQ(*exit_status, 0) << broker_.Output();
  EXPECT_NE(broker_.Output().find("admin: drain requested"), std::string::npos);
}

// The admin service is the broker's own: an unknown command is a 400, and
// no worker may register under its name.
TEST_F(OperationsTest, AdminServiceRejectsUnknownCommandsAndWorkers) {
  StartBroker();
  zmq::context_t ctx;
  RawPeer client(ctx, TcpEndpoint(client_port_));
  client.Send({"MDPC02", Byte(0x01), "org.plantd.Admin", "reboot"});
  auto reply = client.Recv(2s);
  ASSERT_TRUE(reply.has_value());
  ASSERT_EQ(reply->size(), 5u);
  EXPECT_EQ((*reply)[3], "400");
  TestWorker impostor(ctx, TcpEndpoint(worker_port_), Dialect::kMdp02);
  impostor.Ready("org.plantd.Admin");
  EXPECT_TRUE(impostor.ExpectDisconnect(2s));
  // The broker still runs and is not draining.
  EXPECT_EQ(Get("/readyz")->status, 200);
}

// An ipc:// endpoint is a local-only door: admin commands are taken there.
TEST_F(OperationsTest, AdminStatusAnswersOverIpc) {
  TempDir dir;
  const std::string ipc = "ipc://" + dir.path() + "/broker.sock";
  ASSERT_NO_FATAL_FAILURE(StartBroker("extra_endpoints:\n  - " + ipc + "\n"));
  RunResult status = RunProgram("plantd-mdp", {"admin", "status", "-e", ipc});
  ASSERT_EQ(status.status, 0) << status.output << broker_.Output();
  json doc = json::parse(status.output, nullptr, false);
  ASSERT_TRUE(doc.is_object()) << status.output;
  EXPECT_EQ(doc["draining"], false);
  EXPECT_EQ(Get("/readyz")->status, 200);
}

// Every metric family in a real scrape (store and a bus on, a request
// served so the per-service families are there) is in the reference.
TEST_F(OperationsTest, EveryExportedMetricIsDocumentedInOperationsMd) {
  TempDir dir;
  const int backend = FreeTcpPort();
  const int frontend = FreeTcpPort();
  ASSERT_NO_FATAL_FAILURE(
      StartBroker("store:\n  enabled: true\n  path: " + dir.path() + "/store.db\n" +
                  "buses:\n  - name: data\n    backend: " + TcpEndpoint(backend) +
                  "\n    frontend: " + TcpEndpoint(frontend) + "\n"));
  zmq::context_t ctx;
  TestWorker worker(ctx, TcpEndpoint(worker_port_), Dialect::kMdp02);
  worker.Ready("ops.doc");
  TestClient client(ctx, TcpEndpoint(client_port_), Dialect::kMdp02);
  client.Request("ops.doc", {"x"});
  auto request = worker.Receive();
  ASSERT_TRUE(request.has_value());
  worker.Final(request->address, request->body);
  ASSERT_TRUE(client.Receive().has_value());
  // The per-service families come from the periodic snapshot.
  ASSERT_TRUE(WaitUntil(
      [&] { return Metric("plantd_broker_requests_total{service=\"ops.doc\"}") == 1; }, 3s));

  auto res = Get("/metrics");
  ASSERT_TRUE(res && res->status == 200);
  std::set<std::string> names;
  std::istringstream lines(res->body);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("# TYPE ", 0) != 0) continue;
    std::istringstream words(line.substr(7));
    std::string name;
    words >> name;
    names.insert(name);
  }
  ASSERT_GT(names.size(), 30u);
  std::ifstream file(std::string(PLANTD_SOURCE_DIR) + "/docs/operations.md");
  std::stringstream doc;
  doc << file.rdbuf();
  for (const std::string& name : names) {
    EXPECT_NE(doc.str().find("`" + name + "`"), std::string::npos)
        << name << " is exported but not in docs/operations.md (Metric reference)";
  }
}

}  // namespace
}  // namespace plantd::test

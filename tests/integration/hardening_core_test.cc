// The broker core under attack and under peers that vanish: closed
// connections are acted on at once, tables are capped with error replies,
// and routing ids are not shown where anyone can read them. Each test runs
// the real binary and talks to it with real sockets.
#include <httplib.h>

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "broker_fixture.h"
#include "hardening_core_support.h"
#include "mdp_peers.h"
#include "support.h"

namespace plantd::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

class HardeningCoreTest : public BrokerFixture {
 protected:
  // Heartbeats so slow (expiry after 30 s) that anything faster than that
  // was not found by heartbeat.
  void StartBroker(const std::string& extra = "", bool with_http = false) {
    http_port_ = with_http ? FreeTcpPort() : 0;
    StartBrokerWith("buses: []\nhealth:\n  bind: 127.0.0.1\n  port: " +
                    std::to_string(http_port_) +
                    "\nheartbeat_interval: 10s\nheartbeat_liveness: 3\n" + extra);
  }

  json BrokerStatus() { return json::parse(Mmi("mmi.broker").at(0)); }
  std::unique_ptr<TestWorker> ReadyWorker(const std::string& service,
                                          const std::string& id = "") {
    const size_t before = CountWorkers(service);
    auto w = std::make_unique<TestWorker>(ctx_, workers(), Dialect::kMdp02, id);
    w->Ready(service);
    WaitForWorkers(service, before + 1);
    return w;
  }

  int http_port_ = 0;
};

// --- A closed connection is a dead peer at once -------------------------------

// A worker whose socket closes while it holds a request: the request reaches
// another worker well before heartbeat expiry (30 s here), and the client
// gets exactly one reply.
TEST_F(HardeningCoreTest, WorkerWhoseConnectionClosesHasItsRequestRedispatchedAtOnce) {
  StartBroker();
  auto first = ReadyWorker("fragile");
  TestClient client(ctx_, clients(), Dialect::kMdp02);
  client.Request("fragile", {"job"});
  ASSERT_TRUE(first->Receive().has_value());
  auto second = ReadyWorker("fragile");

  const auto closed_at = Clock::now();
  first->peer().Close();  // no DISCONNECT: the connection just goes
  auto r = second->Receive(5s);
  const auto took = Clock::now() - closed_at;
  ASSERT_TRUE(r.has_value()) << "the request never moved to the second worker";
  EXPECT_LT(took, 1s) << "redispatch took "
                      << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                      << " ms";
  EXPECT_EQ(r->body, Frames{"job"});
  second->Final(r->address, {"done"});
  auto reply = client.Receive();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->body, Frames{"done"});
  EXPECT_FALSE(client.peer().Recv(300ms).has_value()) << "a second reply arrived";
  EXPECT_EQ(CountWorkers("fragile"), 1u);
  EXPECT_TRUE(broker_.WaitForOutput("reason=connection_closed", 2s)) << broker_.Output();
}

// A worker that closes while idle is forgotten at once: mmi.workers drops.
TEST_F(HardeningCoreTest, IdleWorkerWhoseConnectionClosesIsForgottenAtOnce) {
  StartBroker();
  auto w = ReadyWorker("short-lived");
  w->peer().Close();
  const auto start = Clock::now();
  WaitForWorkers("short-lived", 0);
  EXPECT_LT(Clock::now() - start, 2s);
}

// A client whose connection closes while its requests wait for a worker:
// they are dropped and counted, and a worker that starts later never spends
// time on them; another client's queued request is still served.
TEST_F(HardeningCoreTest, ClientWhoseConnectionClosesHasItsQueuedRequestsDropped) {
  StartBroker("log:\n  level: debug\n");
  {
    TestClient gone(ctx_, clients(), Dialect::kMdp02);
    for (int i = 0; i < 3; ++i) gone.Request("later", {"from-gone"});
    TestClient stays(ctx_, clients(), Dialect::kMdp02);
    stays.Request("later", {"from-stays"});
    // Both are queued before the first one goes.
    const auto deadline = Clock::now() + 5s;
    while (BrokerStatus()["queued"] != 4) {
      ASSERT_LT(Clock::now(), deadline);
      std::this_thread::sleep_for(5ms);
    }
    gone.peer().Close();
    ASSERT_TRUE(broker_.WaitForOutput("client gone: queued requests dropped", 3s))
        << broker_.Output();
    EXPECT_EQ(BrokerStatus()["dropped"]["client_gone"], 3);
    EXPECT_EQ(BrokerStatus()["queued"], 1);

    auto w = ReadyWorker("later");
    auto r = w->Receive(2s);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->body, Frames{"from-stays"});
    w->Final(r->address, {"ok"});
    auto reply = stays.Receive();
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->body, Frames{"ok"});
    EXPECT_FALSE(w->Receive(300ms).has_value()) << "a gone client's request was dispatched";
  }
}

// A service that only the gone client asked for is forgotten with it, so
// made-up names do not outlive the connection that made them up.
TEST_F(HardeningCoreTest, ServicesOnlyAGoneClientAskedForAreForgotten) {
  StartBroker();
  TestClient gone(ctx_, clients(), Dialect::kMdp02);
  for (int i = 0; i < 10; ++i) gone.Request("made-up." + std::to_string(i), {"x"});
  auto deadline = Clock::now() + 5s;
  while (BrokerStatus()["unserved_services"] != 10) {
    ASSERT_LT(Clock::now(), deadline) << BrokerStatus().dump();
    std::this_thread::sleep_for(5ms);
  }
  gone.peer().Close();
  deadline = Clock::now() + 3s;
  while (BrokerStatus()["unserved_services"] != 0) {
    ASSERT_LT(Clock::now(), deadline) << BrokerStatus().dump();
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(BrokerStatus()["services"], 0);
}

// --- Tables --------------------------------------------------------------------

// Error replies, in each client dialect: a FINAL for the service asked for,
// with a status frame and the refusal reason.
TEST_F(HardeningCoreTest, RefusalIsAnErrorFinalInTheClientsDialect) {
  StartBroker("max_queue_per_service: 1\n");
  TestClient filler(ctx_, clients(), Dialect::kMdp02);
  filler.Request("full", {"first"});
  // The filler's request must be the one in the queue: each client has its
  // own connection, so wait for it rather than trust the order of sends.
  const auto deadline = Clock::now() + 3s;
  while (BrokerStatus()["queued"] != 1) {
    ASSERT_LT(Clock::now(), deadline) << BrokerStatus().dump();
    std::this_thread::sleep_for(5ms);
  }
  for (Dialect d : {Dialect::kMdp01, Dialect::kMdp02, Dialect::kPlantd}) {
    TestClient c(ctx_, clients(), d);
    c.Request("full", {"more"});
    auto r = c.Receive(3s);
    ASSERT_TRUE(r.has_value()) << Name(d);
    EXPECT_TRUE(r->final) << Name(d);
    EXPECT_EQ(r->service, "full") << Name(d);
    EXPECT_EQ(r->body, (Frames{"503", "queue_full"})) << Name(d);
  }
  // With an envelope, it comes back in front, as for any reply.
  RawPeer raw(ctx_, clients());
  raw.Send({"tag-7", "", "MDPC02", Byte(0x01), "full", "x"});
  auto f = raw.Recv(3s);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(*f, (Frames{"tag-7", "", "MDPC02", Byte(0x03), "full", "503", "queue_full"}));
  EXPECT_GE(BrokerStatus()["refused"]["queue_full"], 4);
  EXPECT_TRUE(broker_.WaitForOutput("reason=queue_full", 2s)) << broker_.Output();
}

// The attack of issue 12: 50,000 requests to distinct made-up service names.
// The attacker gets error replies once its connection has made up
// limits.max_client_services names; a real client and worker are served all
// along, each request within a second; the broker's memory stays bounded.
TEST_F(HardeningCoreTest, FloodOfMadeUpServiceNamesIsRefusedWhileRealTrafficIsServed) {
  StartBroker();
  json status;
  const FloodResult result = RunServiceNameFlood(
      ctx_, clients(), workers(), broker_.pid(),
      {.attackers = 1,
       .requests_per_attacker = 50000,
       .while_connected = [&] { status = BrokerStatus(); }});
  EXPECT_GE(result.real_answered, 20) << "the real pair was hardly served at all";
  EXPECT_EQ(result.real_unanswered, 0);
  EXPECT_TRUE(result.real_recovered) << "the real pair was not served after the flood";
  EXPECT_LT(result.real_slowest, 1s)
      << "slowest real request: "
      << std::chrono::duration_cast<std::chrono::milliseconds>(result.real_slowest).count()
      << " ms";
  // The first max_client_services (100) names are accepted and wait; the
  // rest are refused, each with an error reply the attacker can read.
  EXPECT_EQ(result.refusals, 50000 - 100);
  EXPECT_EQ(result.accepted_replies, 0);
  EXPECT_EQ(result.refusal_status, "429");
  EXPECT_EQ(result.refusal_reason, "client_services");
  EXPECT_LT(result.rss_growth_bytes, 64L << 20) << "RSS grew by " << result.rss_growth_bytes;
  EXPECT_EQ(status["refused"]["client_services"], 50000 - 100) << status.dump();
  EXPECT_EQ(status["unserved_services"], 100);
  EXPECT_TRUE(broker_.WaitForOutput("reason=client_services", 2s));
  // The attacker's connection is gone: so are the names it made up.
  const auto deadline = Clock::now() + 3s;
  while (BrokerStatus()["unserved_services"] != 0) {
    ASSERT_LT(Clock::now(), deadline);
    std::this_thread::sleep_for(10ms);
  }
}

// Many attacker connections: past limits.max_unserved_services in all, a new
// made-up name is refused (503 unserved_services) for everyone, but a worker
// that starts now still registers, and its service is served.
TEST_F(HardeningCoreTest, UnservedServicesAreCappedInTotalButWorkersStillRegister) {
  StartBroker();
  // 12 connections x 150 names: the total cap (1000) bites.
  json status;
  bool late_worker_served = false;
  const FloodResult result = RunServiceNameFlood(
      ctx_, clients(), workers(), broker_.pid(),
      {.attackers = 12,
       .requests_per_attacker = 150,
       .while_connected = [&] {
         status = BrokerStatus();
         // A new worker for a new service: the table is not full
         // (max_services is 10000), so it registers and is served at once.
         auto w = ReadyWorker("arrives.late");
         TestClient c(ctx_, clients(), Dialect::kMdp02);
         c.Request("arrives.late", {"x"});
         auto r = w->Receive(2s);
         if (!r) return;
         w->Final(r->address, {"ok"});
         late_worker_served = c.Receive(2s).has_value();
       }});
  EXPECT_EQ(result.real_unanswered, 0);
  EXPECT_TRUE(result.real_recovered) << "the real pair was not served after the flood";
  EXPECT_EQ(status["unserved_services"], 1000) << status.dump();
  EXPECT_GE(status["refused"]["unserved_services"], 200) << status.dump();
  EXPECT_EQ(result.refusals, 12 * 150 - 1000);
  EXPECT_GE(result.refusals_by_reason.at("unserved_services"), 200);
  EXPECT_TRUE(late_worker_served);
}

// max_services: when the table is full, a request naming a new service is
// refused (503 services_total), and a worker for a new service takes the
// place of a service that has neither worker nor queued request.
TEST_F(HardeningCoreTest, FullServiceTableRefusesNamesButMakesRoomForAWorker) {
  StartBroker(
      "max_services: 3\nrequest_expiry: 300ms\n"
      "limits:\n  max_unserved_services: 3\n  max_client_services: 3\n");
  auto a = ReadyWorker("a");
  auto b = ReadyWorker("b");
  TestClient c(ctx_, clients(), Dialect::kMdp02);
  c.Request("wanted", {"x"});  // the third service; waits, then expires
  c.Request("one-too-many", {"x"});
  auto r = c.Receive(3s);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->service, "one-too-many");
  EXPECT_EQ(r->body, (Frames{"503", "services_total"}));
  // "wanted" expires; a worker for a fourth service then takes its place.
  auto deadline = Clock::now() + 5s;
  while (BrokerStatus()["queued"] != 0) {
    ASSERT_LT(Clock::now(), deadline);
    std::this_thread::sleep_for(20ms);
  }
  auto d = ReadyWorker("d");
  c.Request("d", {"y"});
  auto job = d->Receive(2s);
  ASSERT_TRUE(job.has_value());
  d->Final(job->address, {"ok"});
  auto reply = c.Receive(2s);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->body, Frames{"ok"});
  // Services with workers were never pushed out.
  EXPECT_EQ(CountWorkers("a"), 1u);
  EXPECT_EQ(CountWorkers("b"), 1u);
}

// max_workers: a READY past it gets DISCONNECT, counted as workers_total.
TEST_F(HardeningCoreTest, WorkersPastMaxWorkersAreRefusedAndCounted) {
  StartBroker("max_workers: 1\n");
  auto first = ReadyWorker("svc");
  TestWorker second(ctx_, workers(), Dialect::kMdp02);
  second.Ready("svc");
  EXPECT_TRUE(second.ExpectDisconnect(3s));
  EXPECT_EQ(BrokerStatus()["refused"]["workers_total"], 1);
  EXPECT_TRUE(broker_.WaitForOutput("reason=workers_total", 2s)) << broker_.Output();
}

// --- Routing ids are not shown where anyone can read them ----------------------

TEST_F(HardeningCoreTest, StatusShowsAShortHashNotTheRoutingId) {
  StartBroker("", /*with_http=*/true);
  const std::string id = "secret-worker-id";
  auto w = ReadyWorker("hidden", id);
  httplib::Client http("127.0.0.1", http_port_);
  http.set_read_timeout(5);
  json workers;
  const auto deadline = Clock::now() + 5s;
  std::string body;
  while (workers.empty() || workers.size() != 1) {
    ASSERT_LT(Clock::now(), deadline);
    std::this_thread::sleep_for(100ms);
    auto res = http.Get("/status");
    ASSERT_TRUE(res);
    body = res->body;
    workers = json::parse(body)["workers"];
  }
  const std::string shown = workers[0]["identity"];
  EXPECT_TRUE(std::regex_match(shown, std::regex("[0-9a-f]{8}"))) << shown;
  // Neither the id nor its hex form appears anywhere in /status.
  EXPECT_EQ(body.find(id), std::string::npos);
  std::string hex;
  for (unsigned char ch : id) {
    static constexpr char kHex[] = "0123456789abcdef";
    hex += kHex[ch >> 4];
    hex += kHex[ch & 15];
  }
  EXPECT_EQ(body.find(hex), std::string::npos);
  EXPECT_EQ(body.find(hex.substr(0, 8)), std::string::npos);
}

}  // namespace
}  // namespace plantd::test

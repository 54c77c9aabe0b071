// Long variants of tests/integration/titanic_test.cc (label `stress`,
// `make stress`): kill -9 with 1,000 acknowledged requests in every state,
// then the worker killed mid-request after the restart; and the acknowledged
// durable rate through the broker against its non-durable rate.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "mdp_peers.h"
#include "support.h"

namespace plantd::test {
namespace {

using namespace std::chrono_literals;

class TitanicStressTest : public ::testing::Test {
 protected:
  void StartBroker() {
    if (client_port_ == 0) {
      client_port_ = FreeTcpPort();
      worker_port_ = FreeTcpPort();
    }
    const std::string yaml = "endpoint: " + TcpEndpoint(client_port_) +
                             "\nclient_endpoint: " + TcpEndpoint(worker_port_) +
                             "\nbuses: []\nhealth:\n  port: 0\n"
                             "heartbeat_interval: 200ms\nheartbeat_liveness: 5\n";
    broker_ = std::make_unique<BrokerProcess>();
    ASSERT_TRUE(broker_->Start(
        {.env = {{"PLANTD_BROKER_STORE_PATH", dir_.path() + "/s.db"}}, .config_yaml = yaml}))
        << broker_->Output();
  }
  void TearDown() override {
    if (broker_ && broker_->running()) {
      EXPECT_EQ(broker_->Stop(), 0);
    }
  }
  std::string clients() const { return TcpEndpoint(client_port_); }
  std::string workers() const { return TcpEndpoint(worker_port_); }

  Frames Call(const std::string& service, const Frames& body) {
    TestClient c(ctx_, clients(), Dialect::kMdp02);
    c.Request(service, body);
    auto r = c.Receive();
    return r ? r->body : Frames{};
  }

  // Sends every body to titanic.request on one connection; id -> body.
  void SubmitAll(const std::vector<std::string>& bodies, std::map<std::string, std::string>* out) {
    TestClient c(ctx_, clients(), Dialect::kMdp02);
    for (const std::string& b : bodies) c.Request("titanic.request", {"svc", b});
    for (const std::string& b : bodies) {
      auto r = c.Receive(10s);
      ASSERT_TRUE(r.has_value());
      ASSERT_EQ(r->body.size(), 2u);
      ASSERT_EQ(r->body[0], "200");
      (*out)[r->body[1]] = b;
    }
  }

  void WaitForService(const std::string& service) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < deadline) {
      Frames r = Call("mmi.service", {service});
      if (!r.empty() && r[0] == "200") return;
      std::this_thread::sleep_for(5ms);
    }
  }

  zmq::context_t ctx_{1};
  TempDir dir_;
  int client_port_ = 0;
  int worker_port_ = 0;
  std::unique_ptr<BrokerProcess> broker_;
};

TEST_F(TitanicStressTest, KillNineWithAThousandRequestsThenAWorkerKilled) {
  constexpr int kReplied = 300, kHeld = 20, kPending = 680;
  StartBroker();
  std::map<std::string, std::string> body_of;
  std::set<std::string> replied;
  {
    TestWorker w0(ctx_, workers(), Dialect::kMdp02);
    w0.Ready("svc");
    WaitForService("svc");
    std::vector<std::string> bodies;
    for (int i = 0; i < kReplied; ++i) bodies.push_back("r" + std::to_string(i));
    std::map<std::string, std::string> ids;
    SubmitAll(bodies, &ids);
    for (int i = 0; i < kReplied; ++i) {
      auto req = w0.Receive();
      ASSERT_TRUE(req.has_value());
      w0.Final(req->address, {"w0", req->body.at(0)});
    }
    for (const auto& [id, b] : ids) {
      for (int tries = 0; tries < 1000; ++tries) {
        Frames r = Call("titanic.reply", {id});
        if (!r.empty() && r[0] == "200") break;
        std::this_thread::sleep_for(5ms);
      }
      replied.insert(id);
      body_of[id] = b;
    }
    w0.Disconnect();
  }
  std::vector<std::unique_ptr<TestWorker>> holders;
  for (int i = 0; i < kHeld; ++i) {
    holders.push_back(std::make_unique<TestWorker>(ctx_, workers(), Dialect::kMdp02));
    holders.back()->Ready("svc");
  }
  WaitForService("svc");
  std::vector<std::string> bodies;
  for (int i = 0; i < kHeld + kPending; ++i) bodies.push_back("p" + std::to_string(i));
  SubmitAll(bodies, &body_of);
  for (auto& h : holders) ASSERT_TRUE(h->Receive().has_value());
  ASSERT_EQ(body_of.size(), 1000u);

  broker_->Signal(SIGKILL);
  ASSERT_TRUE(broker_->WaitExit(5s).has_value());
  holders.clear();
  StartBroker();

  // The first worker after the restart dies holding a request.
  {
    TestWorker dying(ctx_, workers(), Dialect::kMdp02);
    dying.Ready("svc");
    ASSERT_TRUE(dying.Receive().has_value());
    dying.peer().Close();
  }
  BackgroundWorker worker(ctx_, workers(), "svc", [](const Frames& body) {
    return Frames{"w1", body.empty() ? "" : body[0]};
  });
  int answered = 0;
  for (const auto& [id, body] : body_of) {
    Frames r;
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    do {
      r = Call("titanic.reply", {id});
      if (r.empty() || r[0] != "300") break;
      std::this_thread::sleep_for(5ms);
    } while (std::chrono::steady_clock::now() < deadline);
    ASSERT_EQ(r.size(), 3u) << id;
    EXPECT_EQ(r[0], "200");
    EXPECT_EQ(r[1], replied.contains(id) ? "w0" : "w1");
    EXPECT_EQ(r[2], body);
    EXPECT_EQ(Call("titanic.close", {id}), Frames{"200"});
    ++answered;
  }
  worker.Stop();
  EXPECT_EQ(answered, 1000);
  // Each unreplied request ran once more after the restart; the one the
  // dying worker held, once more again (at least once, never lost).
  EXPECT_EQ(worker.served(), kHeld + kPending);
}

// Acknowledged durable requests per second through the broker (each
// acknowledged only after its commit is synced), against the same broker's
// non-durable rate, with C concurrent clients each one request outstanding.
TEST_F(TitanicStressTest, AcknowledgedDurableRate) {
  StartBroker();
  BackgroundWorker worker(ctx_, workers(), "echo", [](const Frames& body) { return body; });
  WaitForService("echo");
  const std::string payload(64, 'x');
  for (int concurrency : {1, 16, 64}) {
    for (bool durable : {false, true}) {
      std::atomic<long> done{0};
      std::atomic<bool> go{true};
      std::vector<std::thread> threads;
      for (int t = 0; t < concurrency; ++t) {
        threads.emplace_back([&] {
          TestClient c(ctx_, clients(), Dialect::kMdp02);
          while (go.load()) {
            if (durable) {
              c.Request("titanic.request", {"sink", payload});
            } else {
              c.Request("echo", {payload});
            }
            auto r = c.Receive(5s);
            if (!r) return;
            ++done;
          }
        });
      }
      std::this_thread::sleep_for(2s);
      go = false;
      for (auto& t : threads) t.join();
      std::printf("concurrency %2d %-11s %8.0f acknowledged requests/s\n", concurrency,
                  durable ? "durable" : "non-durable", done.load() / 2.0);
      EXPECT_GT(done.load(), 0);
    }
  }
}

}  // namespace
}  // namespace plantd::test

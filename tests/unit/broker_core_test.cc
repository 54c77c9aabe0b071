// The broker core driven without sockets or real time (issue #13): an
// in-memory transport (memory_router.h) and a manual clock. Each test runs in
// microseconds; the integration tests prove the same rules over TCP with the
// real binary.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "broker/broker.h"
#include "common/clock.h"
#include "memory_router.h"
#include "mdp/protocol.h"

namespace plantd::test {
namespace {

using namespace std::chrono_literals;
namespace v02 = mdp::v02;

std::string Byte(uint8_t b) { return std::string(1, static_cast<char>(b)); }

const std::string kClientHeader(mdp::kClientHeader02);
const std::string kWorkerHeader(mdp::kWorkerHeader02);

class BrokerCoreTest : public ::testing::Test {
 protected:
  BrokerCoreTest() {
    options_.heartbeat_interval = 100ms;
    options_.heartbeat_liveness = 3;
    options_.request_expiry = 1s;
    options_.max_redispatch = 1;
    options_.buses.clear();
  }

  void Start() {
    broker_ = std::make_unique<broker::Broker>(
        context_, options_, clock_, &board_, nullptr,
        [this](const transport::RouterOptions&) {
          auto router = std::make_unique<MemoryRouter>();
          router_ = router.get();
          return router;
        });
    ASSERT_TRUE(broker_->Bind().ok());
    broker_->BeginRun();
  }

  void TearDown() override {
    if (!broker_) return;
    broker_->Stop();
    for (int i = 0; i < 100 && broker_->Turn(); ++i) clock_.Advance(100ms);
  }

  // One turn of the core's loop, after `elapsed` of manual time.
  void Turn(std::chrono::milliseconds elapsed = 0ms) {
    clock_.Advance(elapsed);
    ASSERT_TRUE(broker_->Turn());
  }

  void Ready(const std::string& worker, const std::string& service) {
    router_->Connect(worker);
    router_->Deliver(worker, {kWorkerHeader, Byte(v02::kReady), service});
    Turn();
  }
  void Request(const std::string& client, const std::string& service, const std::string& body) {
    router_->Connect(client);
    router_->Deliver(client, {kClientHeader, Byte(v02::kClientRequest), service, body});
    Turn();
  }
  // The REQUESTs the core sent `worker` (heartbeats skipped): [return
  // address, body].
  std::vector<Frames> RequestsTo(const std::string& worker) {
    std::vector<Frames> out;
    for (Frames& m : router_->TakeSent(worker)) {
      if (m.size() >= 5 && m[0] == kWorkerHeader && m[1] == Byte(v02::kRequest)) {
        out.push_back({m[2], m[4]});
      }
    }
    return out;
  }
  // The commands (second frame) the core sent `worker`.
  std::vector<uint8_t> CommandsTo(const std::string& worker) {
    std::vector<uint8_t> out;
    for (Frames& m : router_->TakeSent(worker)) {
      if (m.size() >= 2 && m[0] == kWorkerHeader) out.push_back(static_cast<uint8_t>(m[1][0]));
    }
    return out;
  }
  void Final(const std::string& worker, const std::string& address, const std::string& body) {
    router_->Deliver(worker, {kWorkerHeader, Byte(v02::kFinal), address, "", body});
    Turn();
  }

  // The service as a /status reader sees it: a snapshot the core takes on
  // request, at the end of a turn (the reader waits on another thread, as
  // the HTTP server's do).
  const broker::ServiceSnapshot* Service(const std::string& name) {
    std::atomic<bool> answered{false};
    std::thread reader([&] {
      bool fresh = false;
      snapshot_ = board_.Fresh(5s, &fresh);
      answered = fresh;
    });
    // Turns until the reader has asked and been answered; bounded in real
    // time, as the reader thread may be slow to start on a loaded machine.
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!answered && std::chrono::steady_clock::now() < deadline) {
      if (!broker_->Turn()) break;
      std::this_thread::yield();
    }
    reader.join();
    EXPECT_TRUE(answered) << "the core did not answer the snapshot request";
    if (!snapshot_) return nullptr;
    for (const auto& s : snapshot_->services) {
      if (s.name == name) return &s;
    }
    return nullptr;
  }

  zmq::context_t context_;
  BrokerOptions options_;
  ManualClock clock_;
  broker::SnapshotBoard board_;
  std::unique_ptr<broker::Broker> broker_;
  MemoryRouter* router_ = nullptr;
  std::shared_ptr<const broker::BrokerSnapshot> snapshot_;
};

// 7/MDP and 18/MDP: a request goes to a worker of its service with a
// return address (opaque to the worker: the broker's handle on the request),
// and the FINAL reply that names it goes back to the client.
TEST_F(BrokerCoreTest, RequestReachesTheWorkerAndTheFinalReplyTheClient) {
  Start();
  Ready("w1", "echo");
  Request("c1", "echo", "ping");
  const auto got = RequestsTo("w1");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0][1], "ping");
  Final("w1", got[0][0], "pong");
  const auto replies = router_->TakeSent("c1");
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0], (Frames{kClientHeader, Byte(v02::kClientFinal), "echo", "pong"}));
}

// A request for a service with no worker waits; a worker that registers
// later gets it.
TEST_F(BrokerCoreTest, ARequestWaitsForTheFirstWorkerOfItsService) {
  Start();
  Request("c1", "later", "job");
  Turn(500ms);
  Ready("w1", "later");
  const auto got = RequestsTo("w1");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0][1], "job");
}

// 18/MDP: the broker heartbeats every worker each heartbeat_interval, and a
// worker silent for heartbeat_liveness intervals is dead: it is sent
// DISCONNECT and forgotten, and the request it held goes to another worker.
TEST_F(BrokerCoreTest, ASilentWorkerExpiresAndItsRequestMovesToAnother) {
  Start();
  Ready("w1", "svc");
  Request("c1", "svc", "job");
  ASSERT_EQ(RequestsTo("w1").size(), 1u);
  Ready("w2", "svc");

  std::vector<uint8_t> to_w1;
  // w2 keeps heartbeating; w1 says nothing.
  for (int i = 0; i < 5; ++i) {
    router_->Deliver("w2", {kWorkerHeader, Byte(v02::kHeartbeat)});
    Turn(100ms);
    for (uint8_t c : CommandsTo("w1")) to_w1.push_back(c);
  }
  EXPECT_NE(std::find(to_w1.begin(), to_w1.end(), v02::kHeartbeat), to_w1.end());
  EXPECT_NE(std::find(to_w1.begin(), to_w1.end(), v02::kDisconnect), to_w1.end())
      << "the expired worker was not told";
  const auto moved = RequestsTo("w2");
  ASSERT_EQ(moved.size(), 1u);
  EXPECT_EQ(moved[0][1], "job");
  const auto* s = Service("svc");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->workers, 1u);
  EXPECT_EQ(s->counters.redispatched, 1u);
}

// A worker whose connection the transport reports closed is removed on the
// next turn, not at heartbeat expiry; its request moves on at once.
TEST_F(BrokerCoreTest, AClosedWorkerConnectionMovesItsRequestAtOnce) {
  Start();
  Ready("w1", "svc");
  Ready("w2", "svc");
  Request("c1", "svc", "job");
  std::string holder = RequestsTo("w1").empty() ? "w2" : "w1";
  const std::string other = holder == "w1" ? "w2" : "w1";
  router_->Disconnect(holder);
  Turn();  // no time passes
  const auto moved = RequestsTo(other);
  ASSERT_EQ(moved.size(), 1u);
  EXPECT_EQ(moved[0][1], "job");
}

// A request that waits longer than request_expiry for a worker is dropped
// and counted as expired, not as failed (the counter table's meanings).
TEST_F(BrokerCoreTest, AnUnservedRequestExpiresAfterRequestExpiry) {
  Start();
  Request("c1", "nobody", "job");
  Turn(900ms);
  const auto* s = Service("nobody");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->queued, 1u);
  Turn(200ms);
  Turn(300ms);  // housekeeping runs at least every 250 ms
  s = Service("nobody");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->queued, 0u);
  EXPECT_EQ(s->counters.expired, 1u);
  EXPECT_EQ(s->counters.failed, 0u);
  Ready("w1", "nobody");
  EXPECT_TRUE(RequestsTo("w1").empty()) << "an expired request was dispatched";
}

// A request whose workers keep dying is given up after max_redispatch
// re-dispatches: counted as failed.
TEST_F(BrokerCoreTest, ARequestIsGivenUpAfterMaxRedispatchLostWorkers) {
  Start();
  Request("c1", "fragile", "job");
  for (int attempt = 0; attempt <= options_.max_redispatch; ++attempt) {
    const std::string w = "w" + std::to_string(attempt);
    Ready(w, "fragile");
    ASSERT_EQ(RequestsTo(w).size(), 1u) << "attempt " << attempt;
    router_->Disconnect(w);
    Turn();
  }
  Ready("last", "fragile");
  EXPECT_TRUE(RequestsTo("last").empty());
  const auto* s = Service("fragile");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->counters.failed, 1u);
  EXPECT_EQ(s->counters.redispatched, static_cast<uint64_t>(options_.max_redispatch));
}

// 8/MMI: mmi.service answers 200 for a service with a worker, 404 without.
TEST_F(BrokerCoreTest, MmiServiceAnswers200Or404) {
  Start();
  Ready("w1", "present");
  router_->Connect("c1");
  router_->Deliver("c1", {kClientHeader, Byte(v02::kClientRequest), "mmi.service", "present"});
  router_->Deliver("c1", {kClientHeader, Byte(v02::kClientRequest), "mmi.service", "absent"});
  Turn();
  Turn();
  const auto replies = router_->TakeSent("c1");
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[0].back(), "200");
  EXPECT_EQ(replies[1].back(), "404");
}

}  // namespace
}  // namespace plantd::test

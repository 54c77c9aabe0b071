// The Majordomo broker, rule by rule, against the real binary over TCP.
// Test names say which rule of 7/MDP, 18/MDP, 8/MMI or PROTOCOLS.md they prove.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "broker_fixture.h"

namespace plantd::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class MdpBrokerTest : public BrokerFixture {
 protected:
  // Heartbeats every 200 ms, dead after 5 silent intervals: a dead worker
  // shows within a second, and test pauses do not kill live ones.
  void StartBroker(const std::string& extra = "") {
    StartBrokerWith(
        "buses: []\nhealth:\n  port: 0\nheartbeat_interval: 200ms\nheartbeat_liveness: 5\n" +
        extra);
  }

  // A worker whose READY the broker has certainly processed: it answers an
  // mmi.service query for its service with 200.
  std::unique_ptr<TestWorker> ReadyWorker(const std::string& service,
                                          Dialect d = Dialect::kMdp02,
                                          const std::string& id = "") {
    const size_t before = CountWorkers(service);
    auto w = std::make_unique<TestWorker>(ctx_, workers(), d, id);
    w->Ready(service);
    WaitForWorkers(service, before + 1);
    return w;
  }

  // mmi.broker: the broker's totals, with invalid messages by reason.
  json BrokerStatus() { return json::parse(Mmi("mmi.broker").at(0)); }

  // The service's row of mmi.services; an empty object until it exists.
  json ServiceStats(const std::string& service) {
    json list = json::parse(Mmi("mmi.services").at(0));
    for (const json& s : list) {
      if (s["name"] == service) return s;
    }
    return json::object();
  }
};

// --- Dialects ---------------------------------------------------------------

class DialectPairTest : public MdpBrokerTest,
                        public ::testing::WithParamInterface<std::tuple<Dialect, Dialect>> {};

// PROTOCOLS.md: requests and replies cross dialects freely; each peer is
// answered in the dialect it speaks.
TEST_P(DialectPairTest, RequestAndFinalReplyCrossDialects) {
  const auto [client_dialect, worker_dialect] = GetParam();
  StartBroker();
  auto worker = ReadyWorker("echo", worker_dialect);
  TestClient client(ctx_, clients(), client_dialect);
  client.Request("echo", {"hello", std::string("\0bin\xff", 5)});

  auto request = worker->Receive();
  ASSERT_TRUE(request.has_value());
  EXPECT_EQ(request->body, (Frames{"hello", std::string("\0bin\xff", 5)}));
  worker->Final(request->address, {"HELLO", "2"});

  auto reply = client.Receive();
  ASSERT_TRUE(reply.has_value());
  EXPECT_TRUE(reply->final);
  EXPECT_EQ(reply->service, "echo");
  EXPECT_EQ(reply->body, (Frames{"HELLO", "2"}));
}

INSTANTIATE_TEST_SUITE_P(
    AllPairs, DialectPairTest,
    ::testing::Combine(::testing::Values(Dialect::kMdp01, Dialect::kMdp02, Dialect::kPlantd),
                       ::testing::Values(Dialect::kMdp01, Dialect::kMdp02, Dialect::kPlantd)),
    [](const auto& info) {
      return std::string(Name(std::get<0>(info.param))) + "ClientTo" +
             Name(std::get<1>(info.param)) + "Worker";
    });

// PROTOCOLS.md: a plantd worker may leave out the empty frame after the
// client address.
TEST_F(MdpBrokerTest, PlantdWorkerReplyWithoutEmptyFrameIsAccepted) {
  StartBroker();
  auto worker = ReadyWorker("svc", Dialect::kPlantd);
  TestClient client(ctx_, clients(), Dialect::kPlantd);
  client.Request("svc", {"ping"});
  auto request = worker->Receive();
  ASSERT_TRUE(request.has_value());
  worker->peer().Send({"", "MDPW02", "FINAL", request->address, "pong"});
  auto reply = client.Receive();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->body, Frames{"pong"});
}

// 18/MDP: PARTIAL replies reach the client in order, then the FINAL.
TEST_F(MdpBrokerTest, PartialsArriveInOrderBeforeFinal) {
  StartBroker();
  auto worker = ReadyWorker("stream");
  for (Dialect d : {Dialect::kMdp02, Dialect::kPlantd}) {
    TestClient client(ctx_, clients(), d);
    client.Request("stream", {"go"});
    auto request = worker->Receive();
    ASSERT_TRUE(request.has_value());
    for (int i = 0; i < 5; ++i) worker->Partial(request->address, {"part" + std::to_string(i)});
    worker->Final(request->address, {"done"});
    for (int i = 0; i < 5; ++i) {
      auto r = client.Receive();
      ASSERT_TRUE(r.has_value());
      EXPECT_FALSE(r->final);
      EXPECT_EQ(r->body, Frames{"part" + std::to_string(i)});
    }
    auto last = client.Receive();
    ASSERT_TRUE(last.has_value());
    EXPECT_TRUE(last->final);
    EXPECT_EQ(last->body, Frames{"done"});
  }
}

// PROTOCOLS.md: 0.1 has no PARTIAL; a 0.1 client gets only the FINAL.
TEST_F(MdpBrokerTest, Mdp01ClientReceivesOnlyTheFinalOfAStream) {
  StartBroker();
  auto worker = ReadyWorker("stream");
  TestClient client(ctx_, clients(), Dialect::kMdp01);
  client.Request("stream", {"go"});
  auto request = worker->Receive();
  ASSERT_TRUE(request.has_value());
  worker->Partial(request->address, {"p1"});
  worker->Partial(request->address, {"p2"});
  worker->Final(request->address, {"done"});
  auto reply = client.Receive();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->body, Frames{"done"});
  EXPECT_FALSE(client.peer().Recv(200ms).has_value()) << "a partial leaked to a 0.1 client";
}

// Either endpoint takes clients and workers alike.
TEST_F(MdpBrokerTest, EitherEndpointAcceptsClientsAndWorkers) {
  StartBroker();
  TestWorker worker(ctx_, clients(), Dialect::kMdp02);  // a worker on the client port
  worker.Ready("swap");
  WaitForWorkers("swap", 1);
  TestClient client(ctx_, workers(), Dialect::kMdp02);  // a client on the worker port
  client.Request("swap", {"x"});
  auto request = worker.Receive();
  ASSERT_TRUE(request.has_value());
  worker.Final(request->address, {"y"});
  auto reply = client.Receive();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->body, Frames{"y"});
}

// --- Dispatch ---------------------------------------------------------------

// Requests go to the least recently used idle worker.
TEST_F(MdpBrokerTest, LruRotationAcrossThreeWorkers) {
  StartBroker();
  std::vector<std::unique_ptr<TestWorker>> pool;
  for (int i = 0; i < 3; ++i) pool.push_back(ReadyWorker("lru"));
  TestClient client(ctx_, clients(), Dialect::kMdp02);
  std::vector<int> order;
  for (int n = 0; n < 6; ++n) {
    client.Request("lru", {std::to_string(n)});
    // Exactly one worker gets it: find which.
    int got = -1;
    for (int i = 0; i < 3 && got < 0; ++i) {
      if (auto r = pool[i]->Receive(i == 2 ? 2000ms : 300ms)) {
        got = i;
        pool[i]->Final(r->address, {"ok"});
      }
    }
    ASSERT_GE(got, 0);
    ASSERT_TRUE(client.Receive().has_value());
    order.push_back(got);
  }
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 0, 1, 2}));
}

// One client flooding a service cannot starve another client of it.
TEST_F(MdpBrokerTest, FloodingClientDoesNotStarveALightOne) {
  StartBroker();
  TestClient flood(ctx_, clients(), Dialect::kMdp02);
  for (int i = 0; i < 50; ++i) flood.Request("fair", {"flood" + std::to_string(i)});
  // Make sure the flood is queued before the light client asks.
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (ServiceStats("fair").value("queued", 0) < 50) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline);
    std::this_thread::sleep_for(5ms);
  }
  TestClient light(ctx_, clients(), Dialect::kMdp02);
  light.Request("fair", {"light"});
  while (ServiceStats("fair").value("queued", 0) < 51) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline);
    std::this_thread::sleep_for(5ms);
  }

  auto worker = std::make_unique<TestWorker>(ctx_, workers(), Dialect::kMdp02);
  worker->Ready("fair");
  int position = -1;
  for (int n = 0; n < 51; ++n) {
    auto r = worker->Receive();
    ASSERT_TRUE(r.has_value());
    if (r->body == Frames{"light"}) position = n;
    worker->Final(r->address, r->body);
  }
  // Round robin over the two clients: the light request is first or second.
  EXPECT_GE(position, 0);
  EXPECT_LE(position, 1);
}

// 18/MDP: the broker should queue requests for a service with no worker yet.
TEST_F(MdpBrokerTest, RequestQueuedBeforeAnyWorkerIsServedWhenOneArrives) {
  StartBroker();
  TestClient client(ctx_, clients(), Dialect::kMdp02);
  client.Request("later", {"early"});
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (ServiceStats("later").value("queued", 0) < 1) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the request was never queued";
    std::this_thread::sleep_for(5ms);
  }
  TestWorker worker(ctx_, workers(), Dialect::kMdp02);
  worker.Ready("later");
  auto r = worker.Receive();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->body, Frames{"early"});
  worker.Final(r->address, {"served"});
  auto reply = client.Receive();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->body, Frames{"served"});
}

// 18/MDP: queued requests expire after a configurable time.
TEST_F(MdpBrokerTest, QueuedRequestExpiresAfterTheLimit) {
  StartBroker("request_expiry: 300ms\n");
  TestClient client(ctx_, clients(), Dialect::kMdp02);
  client.Request("nobody", {"too early"});
  const auto queued_at = std::chrono::steady_clock::now();
  while (ServiceStats("nobody").value("expired", 0) < 1) {
    ASSERT_LT(std::chrono::steady_clock::now(), queued_at + 5s) << "the request never expired";
    std::this_thread::sleep_for(20ms);
  }
  // Housekeeping runs every 75 ms here; 250 ms leaves room for clock steps.
  EXPECT_GE(std::chrono::steady_clock::now() - queued_at, 250ms) << "expired before the limit";
  EXPECT_EQ(ServiceStats("nobody").value("expired", 0), 1);
  EXPECT_EQ(ServiceStats("nobody").value("queued", -1), 0);
  TestWorker worker(ctx_, workers(), Dialect::kMdp02);
  worker.Ready("nobody");
  EXPECT_FALSE(worker.Receive(300ms).has_value()) << "an expired request was dispatched";
}

// Beyond max_queue_per_service new requests are refused, counted, and
// answered with an error reply (docs/protocol.md, "Error replies").
TEST_F(MdpBrokerTest, QueueCapRefusesAndCounts) {
  StartBroker("max_queue_per_service: 5\n");
  TestClient client(ctx_, clients(), Dialect::kMdp02);
  for (int i = 0; i < 8; ++i) client.Request("capped", {std::to_string(i)});
  for (int i = 0; i < 3; ++i) {
    auto refused = client.Receive();
    ASSERT_TRUE(refused.has_value()) << "refusal " << i << " was not answered";
    EXPECT_TRUE(refused->final);
    EXPECT_EQ(refused->service, "capped");
    EXPECT_EQ(refused->body, (Frames{"503", "queue_full"}));
  }
  EXPECT_EQ(ServiceStats("capped")["refused"], 3);
  EXPECT_EQ(ServiceStats("capped")["queued"], 5);
  EXPECT_EQ(BrokerStatus()["refused"]["queue_full"], 3);
  TestWorker worker(ctx_, workers(), Dialect::kMdp02);
  worker.Ready("capped");
  std::set<std::string> served;
  while (auto r = worker.Receive(300ms)) {
    served.insert(r->body.at(0));
    worker.Final(r->address, {"ok"});
  }
  EXPECT_EQ(served, (std::set<std::string>{"0", "1", "2", "3", "4"}));
}

// --- Reliability ------------------------------------------------------------

// 18/MDP: a worker that dies holding a request (socket gone, no DISCONNECT)
// is detected by heartbeat; the request goes to another worker and the
// client receives exactly one reply.
TEST_F(MdpBrokerTest, WorkerKilledMidRequestIsReplacedAndClientGetsOneReply) {
  StartBroker();
  auto first = ReadyWorker("fragile");
  TestClient client(ctx_, clients(), Dialect::kMdp02);
  client.Request("fragile", {"job"});
  ASSERT_TRUE(first->Receive().has_value());
  first->peer().Close();  // killed: no DISCONNECT, no reply
  // Its connection closed: the broker forgets it at once (native transport).
  WaitForWorkers("fragile", 0);

  auto second = ReadyWorker("fragile");
  auto r = second->Receive(3s);
  ASSERT_TRUE(r.has_value()) << "the request never moved to the second worker";
  EXPECT_EQ(r->body, Frames{"job"});
  second->Final(r->address, {"done"});
  auto reply = client.Receive();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->body, Frames{"done"});
  EXPECT_FALSE(client.peer().Recv(300ms).has_value()) << "a second reply arrived";
  EXPECT_EQ(ServiceStats("fragile")["redispatched"], 1);
}

// 18/MDP: a worker silent for liveness intervals is dead; its request moves
// on, and a late reply from it is dropped (the client never sees two FINALs).
TEST_F(MdpBrokerTest, SilentWorkerExpiresAndItsLateReplyIsDropped) {
  StartBroker();
  auto slow = ReadyWorker("slow");
  TestClient client(ctx_, clients(), Dialect::kMdp02);
  client.Request("slow", {"job"});
  slow->set_auto_heartbeat(false);
  auto held = slow->Receive();
  ASSERT_TRUE(held.has_value());
  auto backup = ReadyWorker("slow");
  // `slow` sends nothing: after 5 x 200 ms it is dead and the job moves.
  auto r = backup->Receive(3s);
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(slow->ExpectDisconnect(2s)) << "an expired worker is told to go";
  backup->Final(r->address, {"from backup"});
  slow->Final(held->address, {"late"});
  auto reply = client.Receive();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->body, Frames{"from backup"});
  EXPECT_FALSE(client.peer().Recv(300ms).has_value()) << "the late reply reached the client";
}

// 18/MDP: a worker that heartbeats stays registered while idle.
TEST_F(MdpBrokerTest, HeartbeatingWorkerStaysAlive) {
  StartBroker();
  auto w = ReadyWorker("steady");
  // Twice the expiry time, heartbeating all along: the time itself must
  // pass for an expiry to have had its chance.
  for (int i = 0; i < 20; ++i) {
    std::this_thread::sleep_for(100ms);
    w->Heartbeat();
  }
  EXPECT_EQ(CountWorkers("steady"), 1u);
}

// 18/MDP: the broker heartbeats workers, busy ones too.
TEST_F(MdpBrokerTest, BrokerHeartbeatsABusyWorker) {
  StartBroker();
  auto w = ReadyWorker("busy");
  TestClient client(ctx_, clients(), Dialect::kMdp02);
  client.Request("busy", {"job"});
  ASSERT_TRUE(w->Receive().has_value());
  int heartbeats = 0;
  const auto end = std::chrono::steady_clock::now() + 1000ms;
  while (std::chrono::steady_clock::now() < end) {
    if (auto f = w->peer().Recv(100ms); f && IsHeartbeat(*f)) ++heartbeats;
    w->Heartbeat();
  }
  EXPECT_GE(heartbeats, 3);
}

// A request that keeps losing its worker is dropped after max_redispatch.
TEST_F(MdpBrokerTest, RequestIsDroppedAfterMaxRedispatch) {
  StartBroker("max_redispatch: 1\n");
  TestClient client(ctx_, clients(), Dialect::kMdp02);
  client.Request("doomed", {"job"});
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto w = ReadyWorker("doomed");
    ASSERT_TRUE(w->Receive().has_value()) << attempt;
    w->Disconnect();
    WaitForWorkers("doomed", 0);
  }
  auto last = ReadyWorker("doomed");
  EXPECT_FALSE(last->Receive(300ms).has_value());
  EXPECT_EQ(ServiceStats("doomed")["redispatched"], 1);
  EXPECT_GE(ServiceStats("doomed")["failed"], 1);
}

// A worker on a new socket registers cleanly; the old identity is purged when
// it expires, and its request moves on.
TEST_F(MdpBrokerTest, WorkerReconnectingOnANewSocketRegistersCleanly) {
  StartBroker();
  auto old_socket = ReadyWorker("phoenix");
  TestClient client(ctx_, clients(), Dialect::kMdp02);
  client.Request("phoenix", {"job"});
  ASSERT_TRUE(old_socket->Receive().has_value());
  old_socket->peer().Close();
  TestWorker fresh(ctx_, workers(), Dialect::kMdp02);
  fresh.Ready("phoenix");
  auto r = fresh.Receive(3s);
  ASSERT_TRUE(r.has_value());
  fresh.Final(r->address, {"again"});
  ASSERT_TRUE(client.Receive().has_value());
  WaitForWorkers("phoenix", 1);
}

// A worker back on a new connection with the same routing id gets its job
// again. The new connection announces the id only after the broker has seen
// the old one close: while the old connection lives, the id is its own and a
// second connection claiming it is refused (issue #12, no handover).
TEST_F(MdpBrokerTest, WorkerReconnectingWithTheSameIdentityGetsItsJobAgain) {
  StartBroker();
  auto old_socket = ReadyWorker("fixed", Dialect::kMdp02, "worker-1");
  TestClient client(ctx_, clients(), Dialect::kMdp02);
  client.Request("fixed", {"job"});
  ASSERT_TRUE(old_socket->Receive().has_value());
  old_socket->peer().Close();
  WaitForWorkers("fixed", 0);
  TestWorker again(ctx_, workers(), Dialect::kMdp02, "worker-1");
  again.Ready("fixed");
  auto r = again.Receive(3s);
  ASSERT_TRUE(r.has_value()) << "the job never came back";
  EXPECT_EQ(r->body, Frames{"job"});
  again.Final(r->address, {"ok"});
  ASSERT_TRUE(client.Receive().has_value());
  EXPECT_FALSE(client.peer().Recv(200ms).has_value());
}

// --- Protocol violations ----------------------------------------------------

// 18/MDP: a second READY is answered with DISCONNECT and the worker forgotten.
TEST_F(MdpBrokerTest, SecondReadyGetsDisconnect) {
  StartBroker();
  for (Dialect d : {Dialect::kMdp01, Dialect::kMdp02, Dialect::kPlantd}) {
    auto w = ReadyWorker("twice", d);
    w->Ready("twice");
    EXPECT_TRUE(w->ExpectDisconnect()) << Name(d);
    WaitForWorkers("twice", 0);
  }
}

// 18/MDP: a READY for an mmi. service gets DISCONNECT.
TEST_F(MdpBrokerTest, ReadyForMmiServiceGetsDisconnect) {
  StartBroker();
  TestWorker w(ctx_, workers(), Dialect::kMdp02);
  w.Ready("mmi.service");
  EXPECT_TRUE(w.ExpectDisconnect());
  TestWorker p(ctx_, workers(), Dialect::kPlantd);
  p.Ready("org.plantd.Broker");
  EXPECT_TRUE(p.ExpectDisconnect());
}

// 18/MDP: any command but READY from a worker that never sent READY gets
// DISCONNECT.
TEST_F(MdpBrokerTest, CommandFromUnregisteredWorkerGetsDisconnect) {
  StartBroker();
  for (Dialect d : {Dialect::kMdp01, Dialect::kMdp02, Dialect::kPlantd}) {
    TestWorker hb(ctx_, workers(), d);
    hb.Heartbeat();
    EXPECT_TRUE(hb.ExpectDisconnect()) << Name(d);
    TestWorker reply(ctx_, workers(), d);
    reply.Final("nobody", {"x"});
    EXPECT_TRUE(reply.ExpectDisconnect()) << Name(d);
  }
}

// 18/MDP: an invalid message from a worker (unknown command) gets it
// disconnected; its request goes to another worker.
TEST_F(MdpBrokerTest, UnknownCommandFromWorkerGetsDisconnect) {
  StartBroker();
  auto w = ReadyWorker("odd");
  w->peer().Send({"MDPW02", Byte(0x7f)});
  EXPECT_TRUE(w->ExpectDisconnect());
  WaitForWorkers("odd", 0);
}

// Malformed messages are dropped, counted, and do not disturb the broker.
TEST_F(MdpBrokerTest, MalformedMessagesAreDroppedSilently) {
  StartBroker();
  RawPeer junk(ctx_, clients());
  junk.Send({"MDPC02"});                        // too few frames
  junk.Send({"HTTP/1.1", "GET /"});             // unknown header
  junk.Send({"MDPC02", Byte(0x01), ""});       // empty service name
  junk.Send({"MDPC02", Byte(0x09), "svc"});    // unknown client command
  junk.Send({"", "MDPC01"});                   // 0.1 without a service
  EXPECT_FALSE(junk.Recv(300ms).has_value());
  json broker = json::parse(Mmi("mmi.broker").at(0));
  EXPECT_EQ(broker["services"], 0) << "malformed requests created services";
}

// Oversized messages and too many frames are dropped.
TEST_F(MdpBrokerTest, OversizedAndOverlongMessagesAreDropped) {
  StartBroker("max_message_size: 4096\nmax_message_frames: 8\n");
  auto w = ReadyWorker("bounded");
  TestClient client(ctx_, clients(), Dialect::kMdp02);
  client.Request("bounded", {std::string(3000, 'a'), std::string(3000, 'b')});  // 6000 > 4096
  client.Request("bounded", Frames(10, "f"));                                     // 13 frames
  client.Request("bounded", {"small"});  // on the same connection, right behind them
  auto r = w->Receive();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->body, Frames{"small"});
  EXPECT_FALSE(w->Receive(300ms).has_value());
  const json stats = BrokerStatus();
  EXPECT_EQ(stats["invalid"]["too_large"], 1) << stats.dump();
  EXPECT_EQ(stats["invalid"]["too_many_frames"], 1) << stats.dump();
}

// Garbage from many sockets does not disturb other traffic.
TEST_F(MdpBrokerTest, GarbageFromManySocketsDoesNotDisturbTraffic) {
  StartBroker();
  auto w = ReadyWorker("calm");
  std::atomic<bool> stop{false};
  std::thread vandal([&] {
    zmq::context_t ctx;
    std::mt19937 rng(42);
    std::vector<std::unique_ptr<RawPeer>> peers;
    for (int i = 0; i < 50; ++i) {
      peers.push_back(std::make_unique<RawPeer>(ctx, i % 2 ? clients() : workers()));
    }
    const Frames headers = {"MDPC01", "MDPC02", "MDPW01", "MDPW02", "", "junk"};
    for (int round = 0; round < 200 && !stop; ++round) {
      for (auto& p : peers) {
        Frames f;
        const int n = 1 + static_cast<int>(rng() % 6);
        for (int k = 0; k < n; ++k) {
          if (k < 2 && rng() % 2) {
            f.push_back(headers[rng() % headers.size()]);
          } else {
            std::string s(rng() % 16, '\0');
            for (char& c : s) c = static_cast<char>(rng());
            f.push_back(s);
          }
        }
        p->Send(f);
      }
      std::this_thread::sleep_for(2ms);
    }
  });
  TestClient client(ctx_, clients(), Dialect::kMdp02);
  for (int i = 0; i < 50; ++i) {
    client.Request("calm", {std::to_string(i)});
    auto r = w->Receive();
    ASSERT_TRUE(r.has_value()) << i;
    w->Final(r->address, r->body);
    auto reply = client.Receive();
    ASSERT_TRUE(reply.has_value()) << i;
    EXPECT_EQ(reply->body, Frames{std::to_string(i)});
  }
  stop = true;
  vandal.join();
  EXPECT_TRUE(broker_.running());
}

// --- Management -------------------------------------------------------------

// 8/MMI: mmi.service is 200 when the service has a worker, 404 when not.
TEST_F(MdpBrokerTest, MmiServiceAnswers200Or404) {
  StartBroker();
  EXPECT_EQ(Mmi("mmi.service", {"echo"}), Frames{"404"});
  auto w = ReadyWorker("echo");
  EXPECT_EQ(Mmi("mmi.service", {"echo"}), Frames{"200"});
}

// 8/MMI: a service the broker does not implement answers 501.
TEST_F(MdpBrokerTest, UnknownMmiServiceAnswers501) {
  StartBroker();
  EXPECT_EQ(Mmi("mmi.nonesuch"), Frames{"501"});
}

TEST_F(MdpBrokerTest, MmiWorkersServicesHeartbeatAndBroker) {
  StartBroker();
  auto a = ReadyWorker("alpha");
  auto b = ReadyWorker("alpha");
  auto c = ReadyWorker("beta", Dialect::kPlantd);
  EXPECT_EQ(Mmi("mmi.workers"), Frames{"3"});
  EXPECT_EQ(Mmi("mmi.workers", {"alpha"}), Frames{"2"});
  EXPECT_EQ(Mmi("mmi.heartbeat", {"ping", "1"}), (Frames{"ping", "1"}));

  json services = json::parse(Mmi("mmi.services").at(0));
  ASSERT_EQ(services.size(), 2u);
  EXPECT_EQ(services[0]["name"], "alpha");
  EXPECT_EQ(services[0]["workers"], 2);
  EXPECT_EQ(services[0]["idle_workers"], 2);
  EXPECT_EQ(services[1]["name"], "beta");

  json broker = json::parse(Mmi("mmi.broker").at(0));
  EXPECT_TRUE(broker["version"].is_string());
  EXPECT_GE(broker["uptime_seconds"].get<double>(), 0.0);
  EXPECT_EQ(broker["workers"], 3);
  EXPECT_EQ(broker["services"], 2);
}

// MMI answers reach clients of every dialect, in their dialect.
TEST_F(MdpBrokerTest, MmiAnswersEachDialect) {
  StartBroker();
  for (Dialect d : {Dialect::kMdp01, Dialect::kMdp02, Dialect::kPlantd}) {
    TestClient c(ctx_, clients(), d);
    c.Request("mmi.service", {"none"});
    auto r = c.Receive();
    ASSERT_TRUE(r.has_value()) << Name(d);
    EXPECT_EQ(r->service, "mmi.service");
    EXPECT_EQ(r->body, Frames{"404"});
  }
}

// PROTOCOLS.md: org.plantd.Broker answers "services" and "service" with JSON.
TEST_F(MdpBrokerTest, PlantdBrokerServiceDescribesServices) {
  StartBroker();
  auto w = ReadyWorker("org.plantd.Foo", Dialect::kPlantd);
  TestClient client(ctx_, clients(), Dialect::kPlantd);
  client.Request("org.plantd.Foo", {"x"});
  auto req = w->Receive();
  ASSERT_TRUE(req.has_value());
  w->Final(req->address, {"y"});
  ASSERT_TRUE(client.Receive().has_value());

  client.Request("org.plantd.Broker", {"services", "{}"});
  auto all = client.Receive();
  ASSERT_TRUE(all.has_value());
  json j = json::parse(all->body.at(0));
  ASSERT_EQ(j["services"].size(), 1u);
  EXPECT_EQ(j["services"][0]["name"], "org.plantd.Foo");
  EXPECT_EQ(j["services"][0]["workers"], 1);
  EXPECT_EQ(j["services"][0]["idle_workers"], 1);
  EXPECT_EQ(j["services"][0]["busy_workers"], 0);
  EXPECT_EQ(j["services"][0]["queued"], 0);
  EXPECT_EQ(j["services"][0]["served"], 1);
  EXPECT_EQ(j["services"][0]["failed"], 0);

  client.Request("org.plantd.Broker", {"service", R"({"service": "org.plantd.Foo"})"});
  auto one = client.Receive();
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ(json::parse(one->body.at(0))["service"]["served"], 1);

  client.Request("org.plantd.Broker", {"service", R"({"service": "org.plantd.Nope"})"});
  auto missing = client.Receive();
  ASSERT_TRUE(missing.has_value());
  EXPECT_EQ(json::parse(missing->body.at(0))["error"], "unknown service");

  client.Request("org.plantd.Broker", {"service", "not json"});
  auto bad = client.Receive();
  ASSERT_TRUE(bad.has_value());
  EXPECT_TRUE(json::parse(bad->body.at(0)).contains("error"));
}

}  // namespace
}  // namespace plantd::test

namespace plantd::test {
namespace {

// Extension (docs/protocol.md, "Envelopes"): address frames and an empty
// frame before the header come back in front of every reply, so one socket
// can match replies to many requests in flight.
TEST_F(MdpBrokerTest, EnvelopeComesBackInFrontOfEachReply) {
  StartBroker();
  auto worker = ReadyWorker("env");
  RawPeer client(ctx_, clients());
  client.Send({"tag-1", "", "MDPC02", Byte(0x01), "env", "a"});
  client.Send({"tag-2", "hop", "", "MDPC02", Byte(0x01), "env", "b"});
  for (int i = 0; i < 2; ++i) {
    auto r = worker->Receive();
    ASSERT_TRUE(r.has_value());
    worker->Partial(r->address, {"p" + r->body[0]});
    worker->Final(r->address, {"f" + r->body[0]});
  }
  EXPECT_EQ(client.Recv(), (Frames{"tag-1", "", "MDPC02", Byte(0x02), "env", "pa"}));
  EXPECT_EQ(client.Recv(), (Frames{"tag-1", "", "MDPC02", Byte(0x03), "env", "fa"}));
  EXPECT_EQ(client.Recv(), (Frames{"tag-2", "hop", "", "MDPC02", Byte(0x02), "env", "pb"}));
  EXPECT_EQ(client.Recv(), (Frames{"tag-2", "hop", "", "MDPC02", Byte(0x03), "env", "fb"}));

  client.Send({"tag-3", "", "MDPC02", Byte(0x01), "mmi.service", "env"});
  EXPECT_EQ(client.Recv(), (Frames{"tag-3", "", "MDPC02", Byte(0x03), "mmi.service", "200"}));
  // An envelope without a client header after it is not MDP.
  client.Send({"tag-4", "", "garbage"});
  EXPECT_FALSE(client.Recv(200ms).has_value());
}

}  // namespace
}  // namespace plantd::test

// --- Credit (docs/credit.md) -------------------------------------------------

namespace plantd::test {
namespace {

class CreditTest : public MdpBrokerTest {
 protected:
  std::unique_ptr<TestWorker> CreditWorker(const std::string& service, int credit) {
    const size_t before = CountWorkers(service);
    auto w = std::make_unique<TestWorker>(ctx_, workers(), Dialect::kMdp02);
    w->peer().Send({"MDPW02", Byte(0x01), service, std::to_string(credit)});
    WaitForWorkers(service, before + 1);
    return w;
  }
  // `n` requests, however slowly they come (up to 5 s each): for tests that
  // count on all of them, where a quiet spell must not end the wait.
  std::vector<TestWorker::Request> ReceiveCount(TestWorker& w, size_t n) {
    std::vector<TestWorker::Request> all;
    while (all.size() < n) {
      auto r = w.Receive(5s);
      if (!r) break;
      all.push_back(*r);
    }
    return all;
  }
};

// The broker never holds more than the announced credit at a worker.
TEST_F(CreditTest, CreditIsHonoured) {
  StartBroker();
  auto w = CreditWorker("credit", 4);
  TestClient client(ctx_, clients(), Dialect::kMdp02);
  for (int i = 0; i < 10; ++i) client.Request("credit", {std::to_string(i)});
  auto first = ReceiveCount(*w, 4);
  ASSERT_EQ(first.size(), 4u);
  EXPECT_FALSE(w->Receive(300ms).has_value()) << "more than the credit of 4";
  w->Final(first[0].address, {"done"});
  auto more = ReceiveCount(*w, 1);
  EXPECT_EQ(more.size(), 1u) << "one FINAL frees one slot";
  EXPECT_FALSE(w->Receive(300ms).has_value()) << "one FINAL frees one slot only";
  EXPECT_EQ(ServiceStats("credit")["queued"], 5);
}

// A credit frame that is not a number in 1..1024 is ignored: credit 1.
TEST_F(CreditTest, UnreadableCreditMeansOne) {
  StartBroker();
  auto w = CreditWorker("odd-credit", 0);
  TestClient client(ctx_, clients(), Dialect::kMdp02);
  for (int i = 0; i < 3; ++i) client.Request("odd-credit", {std::to_string(i)});
  EXPECT_EQ(ReceiveCount(*w, 1).size(), 1u);
  EXPECT_FALSE(w->Receive(300ms).has_value()) << "an unreadable credit is 1";
}

// Dispatch goes to the worker with the most spare credit; ties: least
// recently used.
TEST_F(CreditTest, MostSpareCreditFirst) {
  StartBroker();
  auto big = CreditWorker("spread", 4);
  auto small = CreditWorker("spread", 2);
  TestClient client(ctx_, clients(), Dialect::kMdp02);
  for (int i = 0; i < 3; ++i) client.Request("spread", {std::to_string(i)});
  // big (4 spare) takes one, then big (3) again, then the tie at 2 goes to
  // small, which has waited longer.
  EXPECT_EQ(ReceiveCount(*big, 2).size(), 2u);
  EXPECT_EQ(ReceiveCount(*small, 1).size(), 1u);
  EXPECT_FALSE(big->Receive(200ms).has_value());
  EXPECT_FALSE(small->Receive(50ms).has_value());
}

// The death of a credit-16 worker re-dispatches every request it held,
// exactly once, and each client gets exactly one reply.
TEST_F(CreditTest, DeathOfACredit16WorkerRedispatchesEveryRequestOnce) {
  StartBroker();
  auto doomed = CreditWorker("c16", 16);
  TestClient client(ctx_, clients(), Dialect::kMdp02);
  for (int i = 0; i < 16; ++i) client.Request("c16", {std::to_string(i)});
  ASSERT_EQ(ReceiveCount(*doomed, 16).size(), 16u);
  doomed->peer().Close();
  WaitForWorkers("c16", 0);  // its connection closed: forgotten at once

  auto heir = CreditWorker("c16", 16);
  std::multiset<std::string> seen;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (seen.size() < 16 && std::chrono::steady_clock::now() < deadline) {
    if (auto r = heir->Receive(500ms)) {
      seen.insert(r->body.at(0));
      heir->Final(r->address, r->body);
    }
  }
  ASSERT_EQ(seen.size(), 16u);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(seen.count(std::to_string(i)), 1u) << i;
  std::multiset<std::string> replies;
  while (auto r = client.Receive(500ms)) replies.insert(r->body.at(0));
  EXPECT_EQ(replies, seen);
  EXPECT_EQ(ServiceStats("c16")["redispatched"], 16);
}

// Replies may come back in any order; each reaches its own client, and a
// client with several requests at one worker gets each once.
TEST_F(CreditTest, OutOfOrderRepliesReachTheRightClients) {
  StartBroker();
  auto w = CreditWorker("ooo", 8);
  std::vector<std::unique_ptr<TestClient>> cs;
  for (int c = 0; c < 4; ++c) {
    cs.push_back(std::make_unique<TestClient>(ctx_, clients(), Dialect::kMdp02));
    cs.back()->Request("ooo", {"c" + std::to_string(c) + "a"});
    cs.back()->Request("ooo", {"c" + std::to_string(c) + "b"});
  }
  auto held = ReceiveCount(*w, 8);
  ASSERT_EQ(held.size(), 8u);
  for (auto it = held.rbegin(); it != held.rend(); ++it) w->Final(it->address, it->body);
  for (int c = 0; c < 4; ++c) {
    std::set<std::string> got;
    for (int k = 0; k < 2; ++k) {
      auto r = cs[c]->Receive();
      ASSERT_TRUE(r.has_value());
      got.insert(r->body.at(0));
    }
    EXPECT_EQ(got, (std::set<std::string>{"c" + std::to_string(c) + "a",
                                          "c" + std::to_string(c) + "b"}));
    EXPECT_FALSE(cs[c]->peer().Recv(50ms).has_value());
  }
  // A duplicate FINAL for a request already answered is dropped.
  w->Final(held[0].address, {"again"});
  for (auto& c : cs) EXPECT_FALSE(c->peer().Recv(100ms).has_value());
}

// Both transports (docs/transport.md) carry the same protocol: a 0.1 client
// served by a 0.2 worker with a credit of 2, and a worker that dies holding
// requests, which go to the next worker.
class TransportTest : public CreditTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(TransportTest, RequestsCreditAndRedispatchBehaveTheSame) {
  StartBroker("transport: " + GetParam() + "\n");
  auto doomed = CreditWorker("either", 2);
  TestClient client(ctx_, clients(), Dialect::kMdp01);
  for (int i = 0; i < 3; ++i) client.Request("either", {std::to_string(i), std::string(300, 'p')});
  auto held = ReceiveCount(*doomed, 2);
  ASSERT_EQ(held.size(), 2u);
  EXPECT_FALSE(doomed->Receive(300ms).has_value()) << "more than the credit of 2";
  doomed->peer().Close();
  // The native transport reports the close at once; libzmq's ROUTER does
  // not, and heartbeat expiry finds the dead worker later.
  if (GetParam() == "native") WaitForWorkers("either", 0);

  auto heir = ReadyWorker("either", Dialect::kMdp02, "heir");
  std::multiset<std::string> served;
  for (int i = 0; i < 3; ++i) {
    auto r = heir->Receive();
    ASSERT_TRUE(r.has_value()) << "request " << i << " never reached the second worker";
    EXPECT_EQ(r->body.at(1), std::string(300, 'p'));
    served.insert(r->body.at(0));
    heir->Final(r->address, {r->body.at(0)});
  }
  EXPECT_EQ(served, (std::multiset<std::string>{"0", "1", "2"}));
  std::multiset<std::string> replies;
  while (auto r = client.Receive(500ms)) replies.insert(r->body.at(0));
  EXPECT_EQ(replies, served);

}

INSTANTIATE_TEST_SUITE_P(Transports, TransportTest, ::testing::Values("native", "zmq"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace plantd::test

// The majortomo dialect (the Python MDP/0.2 library), from the frames its
// client.py and worker.py build, against the real broker: a majortomo client
// reaches a worker of every dialect, and a client of every dialect reaches a
// majortomo worker. See docs/protocol.md, "majortomo".
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <tuple>

#include "broker_fixture.h"

namespace plantd::test {
namespace {

using namespace std::chrono_literals;

class MajortomoTest : public BrokerFixture {
 protected:
  void SetUp() override {
    StartBrokerWith(
        "buses: []\nhealth:\n  port: 0\nheartbeat_interval: 200ms\nheartbeat_liveness: 5\n");
  }

  // A worker whose READY the broker has processed (mmi.service says 200).
  std::unique_ptr<TestWorker> ReadyWorker(const std::string& service, Dialect d) {
    auto w = std::make_unique<TestWorker>(ctx_, workers(), d);
    w->Ready(service);
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < deadline) {
      TestClient c(ctx_, clients(), Dialect::kMdp02);
      c.Request("mmi.service", {service});
      auto r = c.Receive();
      if (r && r->body == Frames{"200"}) return w;
      std::this_thread::sleep_for(20ms);
    }
    ADD_FAILURE() << "worker for " << service << " never registered";
    return w;
  }

};

class MajortomoPairTest : public MajortomoTest,
                          public ::testing::WithParamInterface<std::tuple<Dialect, Dialect>> {};

// Requests and replies cross dialects; each side is answered in its own.
TEST_P(MajortomoPairTest, RequestAndFinalReplyCrossDialects) {
  const auto [client_dialect, worker_dialect] = GetParam();
  auto worker = ReadyWorker("echo", worker_dialect);
  TestClient client(ctx_, clients(), client_dialect);
  client.Request("echo", {"hello", std::string("\0bin\xff", 5)});

  auto request = worker->Receive();
  ASSERT_TRUE(request.has_value());
  EXPECT_EQ(request->body, (Frames{"hello", std::string("\0bin\xff", 5)}));
  worker->Final(request->address, {"HELLO"});

  auto reply = client.Receive();
  ASSERT_TRUE(reply.has_value());
  EXPECT_TRUE(reply->final);
  if (client_dialect != Dialect::kMajortomo) {
    EXPECT_EQ(reply->service, "echo");
  }
  EXPECT_EQ(reply->body, (Frames{"HELLO"}));
}

std::string PairName(const ::testing::TestParamInfo<std::tuple<Dialect, Dialect>>& info) {
  return std::string(Name(std::get<0>(info.param))) + "ClientTo" + Name(std::get<1>(info.param)) +
         "Worker";
}

INSTANTIATE_TEST_SUITE_P(MajortomoClient, MajortomoPairTest,
                         ::testing::Combine(::testing::Values(Dialect::kMajortomo),
                                            ::testing::Values(Dialect::kMdp01, Dialect::kMdp02,
                                                              Dialect::kPlantd,
                                                              Dialect::kMajortomo)),
                         PairName);
INSTANTIATE_TEST_SUITE_P(MajortomoWorker, MajortomoPairTest,
                         ::testing::Combine(::testing::Values(Dialect::kMdp01, Dialect::kMdp02,
                                                              Dialect::kPlantd),
                                            ::testing::Values(Dialect::kMajortomo)),
                         PairName);

// client.py reads PARTIAL (0x03) parts until FINAL (0x04).
TEST_F(MajortomoTest, ClientGetsPartialsThenFinal) {
  auto worker = ReadyWorker("stream", Dialect::kMdp02);
  TestClient client(ctx_, clients(), Dialect::kMajortomo);
  client.Request("stream", {"go"});
  auto request = worker->Receive();
  ASSERT_TRUE(request.has_value());
  worker->Partial(request->address, {"1"});
  worker->Partial(request->address, {"2"});
  worker->Final(request->address, {"3"});
  for (const char* part : {"1", "2", "3"}) {
    auto reply = client.Receive();
    ASSERT_TRUE(reply.has_value()) << part;
    EXPECT_EQ(reply->body, Frames{part});
    EXPECT_EQ(reply->final, std::string(part) == "3");
  }
}

// A FINAL with no body is still three frames: "", MDPC02, 0x04.
TEST_F(MajortomoTest, EmptyFinalReplyIsHeaderOnly) {
  auto worker = ReadyWorker("empty", Dialect::kMdp02);
  TestClient client(ctx_, clients(), Dialect::kMajortomo);
  client.Request("empty", {"x"});
  auto request = worker->Receive();
  ASSERT_TRUE(request.has_value());
  worker->Final(request->address, {});
  auto frames = client.peer().Recv(5s);
  ASSERT_TRUE(frames.has_value());
  EXPECT_EQ(*frames, (Frames{"", "MDPC02", Byte(0x04)}));
}

// 8/MMI answers a majortomo client in its framing too.
TEST_F(MajortomoTest, MmiAnswersWithoutServiceFrame) {
  auto worker = ReadyWorker("known", Dialect::kMajortomo);
  TestClient client(ctx_, clients(), Dialect::kMajortomo);
  client.Request("mmi.service", {"known"});
  auto frames = client.peer().Recv(5s);
  ASSERT_TRUE(frames.has_value());
  EXPECT_EQ(*frames, (Frames{"", "MDPC02", Byte(0x04), "200"}));
}

// worker.py heartbeats as ["", MDPW02, 0x05] and expects heartbeats and
// DISCONNECT led by an empty frame; the broker's DISCONNECT on shutdown
// reaches it in that framing.
TEST_F(MajortomoTest, WorkerGetsHeartbeatsAndDisconnectInItsFraming) {
  auto worker = ReadyWorker("hb", Dialect::kMajortomo);
  auto beat = worker->peer().Recv(2s);
  ASSERT_TRUE(beat.has_value());
  EXPECT_EQ(*beat, (Frames{"", "MDPW02", Byte(0x05)}));
  ASSERT_EQ(broker_.Stop(), 0) << broker_.Output();
  EXPECT_TRUE(worker->ExpectDisconnect(3s));
}

}  // namespace
}  // namespace plantd::test

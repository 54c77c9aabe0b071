// libplantd (Client, AsyncClient, Worker, bus helpers), the plantd-mdp tool
// and the examples, against the real broker.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "mdp/protocol.h"
#include "plantd/bus/bus.h"
#include "plantd/mdp/async_client.h"
#include "plantd/mdp/client.h"
#include "plantd/mdp/worker.h"
#include "raw_zmtp.h"
#include "support.h"

namespace plantd::test {
namespace {

using namespace std::chrono_literals;
using mdp::Frames;

class LibTest : public ::testing::Test {
 protected:
  void SetUp() override {
    client_port_ = FreeTcpPort();
    worker_port_ = FreeTcpPort();
  }
  void TearDown() override {
    StopWorkers();  // also when an assertion ended the test early
    if (broker_.running()) {
      EXPECT_EQ(broker_.Stop(), 0) << broker_.Output();
    }
  }
  // A broker for clients on `client_port` and workers on `worker_port`,
  // heartbeating every 100 ms.
  static std::string YamlFor(int client_port, int worker_port) {
    return "endpoint: " + TcpEndpoint(client_port) +
           "\nclient_endpoint: " + TcpEndpoint(worker_port) +
           "\nbuses: []\nhealth:\n  port: 0\nheartbeat_interval: 100ms\n"
           "heartbeat_liveness: 5\n";
  }
  std::string Yaml() const { return YamlFor(client_port_, worker_port_); }
  void StartBroker() { ASSERT_TRUE(broker_.Start({.config_yaml = Yaml()})) << broker_.Output(); }
  // The broker with one bus, "t", on the given ports (and HTTP on
  // `http_port`, when not 0).
  void StartBrokerWithBus(int backend, int frontend, int http_port = 0) {
    ASSERT_TRUE(broker_.Start(
        {.config_yaml = "endpoint: " + TcpEndpoint(client_port_) +
                        "\nclient_endpoint: " + TcpEndpoint(worker_port_) +
                        "\nhealth:\n  bind: 127.0.0.1\n  port: " + std::to_string(http_port) +
                        "\nbuses:\n  - name: t\n"
                        "    backend: " +
                        TcpEndpoint(backend) + "\n    frontend: " + TcpEndpoint(frontend) + "\n"}))
        << broker_.Output();
  }

  mdp::WorkerOptions WorkerFor(const std::string& service) const {
    return {.endpoints = {TcpEndpoint(worker_port_)},
            .service = service,
            .heartbeat_interval = 100ms,
            .heartbeat_liveness = 5,
            .reconnect_delay = 50ms,
            .reconnect_delay_max = 200ms,
            .engine = engine_};
  }
  mdp::ClientOptions ClientFor(std::chrono::milliseconds timeout = 2000ms, int attempts = 1) {
    return {.endpoints = {TcpEndpoint(client_port_)},
            .timeout = timeout,
            .attempts = attempts,
            .engine = engine_};
  }

  // Echo workers on threads until the fixture's flag drops.
  void RunEchoWorkers(const std::string& service, int n) {
    for (int i = 0; i < n; ++i) {
      threads_.emplace_back([this, service] {
        mdp::Worker w(WorkerFor(service));
        while (!stop_) {
          auto r = w.Receive(50ms);
          if (r) (void)w.Reply(*r, r->body);
        }
      });
    }
  }
  // For the failover tests, until the fixture's flag drops: on the first
  // broker a worker that takes requests and never answers (counting them in
  // `*held`), on the broker for workers at `second_worker` one that answers
  // each with {"second"}.
  void RunHoldingAndAnsweringWorkers(const std::string& service, int second_worker, int credit,
                                     std::atomic<int>* held) {
    threads_.emplace_back([this, service, credit, held] {
      mdp::WorkerOptions o = WorkerFor(service);
      o.credit = credit;
      mdp::Worker w(o);
      while (!stop_) {
        if (w.Receive(20ms)) ++*held;
      }
    });
    threads_.emplace_back([this, service, credit, second_worker] {
      mdp::WorkerOptions o = WorkerFor(service);
      o.endpoints = {TcpEndpoint(second_worker)};
      o.credit = credit;
      mdp::Worker w(o);
      while (!stop_) {
        if (auto r = w.Receive(20ms)) (void)w.Reply(*r, {"second"});
      }
    });
  }
  void StopWorkers() {
    stop_ = true;
    for (auto& t : threads_) t.join();
    threads_.clear();
  }
  // Waits until mmi.service says the service has a worker.
  void WaitForService(const std::string& service) {
    mdp::Client c(ClientFor(500ms));
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < deadline) {
      auto r = c.ServiceExists(service);
      if (r.ok() && r.value()) return;
      std::this_thread::sleep_for(20ms);
    }
    FAIL() << service << " never got a worker";
  }

  BrokerProcess broker_;
  // What carries libplantd's traffic in the tests that run on both engines.
  mdp::Engine engine_ = mdp::Engine::kAuto;
  int client_port_ = 0, worker_port_ = 0;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

// The library's own behaviour, on each engine: libplantd's native ZMTP
// engine and libzmq's sockets must behave the same to a user.
class LibEngineTest : public LibTest, public ::testing::WithParamInterface<mdp::Engine> {
 protected:
  void SetUp() override {
    LibTest::SetUp();
    engine_ = GetParam();
  }
};

INSTANTIATE_TEST_SUITE_P(Engines, LibEngineTest,
                         ::testing::Values(mdp::Engine::kNative, mdp::Engine::kLibzmq),
                         [](const ::testing::TestParamInfo<mdp::Engine>& info) {
                           return info.param == mdp::Engine::kNative ? "Native" : "Libzmq";
                         });

TEST_P(LibEngineTest, ClientGetsTheReply) {
  StartBroker();
  RunEchoWorkers("lib.echo", 1);
  WaitForService("lib.echo");
  mdp::Client client(ClientFor());
  auto reply = client.Request("lib.echo", {"a", "b"});
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_EQ(reply.value(), (Frames{"a", "b"}));
  StopWorkers();
}

TEST_P(LibEngineTest, ClientTimesOut) {
  StartBroker();
  mdp::Client client(ClientFor(200ms, 2));
  const auto start = std::chrono::steady_clock::now();
  auto reply = client.Request("lib.nobody", {"x"});
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), Status::Code::kTimeout);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 400ms);
  auto exists = client.ServiceExists("lib.nobody");
  ASSERT_TRUE(exists.ok());
  EXPECT_FALSE(exists.value());
}

TEST_P(LibEngineTest, ClientSaysWhenNoBrokerIsReachable) {
  mdp::Client client(ClientFor(200ms, 1));
  auto reply = client.Request("lib.echo", {"x"});
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), Status::Code::kUnavailable) << reply.status().message();
}

// libplantd's public API returns errors as values: a malformed endpoint
// (cppzmq throws zmq::error_t for it) comes back as kInvalidArgument naming
// the endpoint, from every class, and nothing throws.
TEST_P(LibEngineTest, MalformedEndpointsAreErrorValuesNeverExceptions) {
  const std::string bad = "tcp://127.0.0.1:not-a-port";
  const std::string unknown_transport = "carrier-pigeon://coop";
  auto expect_invalid = [&](const Status& s, const std::string& endpoint) {
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.message();
    EXPECT_NE(s.message().find(endpoint), std::string::npos) << s.message();
  };

  EXPECT_NO_THROW({
    mdp::Client client(mdp::ClientOptions{.endpoints = {bad}, .timeout = 100ms, .engine = engine_});
    auto reply = client.Request("lib.echo", {"x"});
    ASSERT_FALSE(reply.ok());
    expect_invalid(reply.status(), bad);
  });

  EXPECT_NO_THROW({
    mdp::AsyncClient client(
        mdp::ClientOptions{.endpoints = {unknown_transport}, .engine = engine_});
    expect_invalid(client.status(), unknown_transport);
    std::optional<Status> got;
    client.Send("lib.echo", {"x"}, [&](Result<Frames> r) { got = r.status(); });
    EXPECT_FALSE(got.has_value()) << "a callback ran inside Send";
    EXPECT_EQ(client.Drain(1s), 0u);
    ASSERT_TRUE(got.has_value());
    expect_invalid(*got, unknown_transport);
  });

  EXPECT_NO_THROW({
    mdp::Worker worker(
        mdp::WorkerOptions{.endpoints = {bad}, .service = "lib.echo", .engine = engine_});
    expect_invalid(worker.status(), bad);
    const auto start = std::chrono::steady_clock::now();
    EXPECT_FALSE(worker.Receive(5s).has_value());
    worker.Serve([](const mdp::WorkerRequest& r) { return r.body; });  // returns, no spinning
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1s) << "waited on no broker at all";
    mdp::Worker nowhere(mdp::WorkerOptions{.endpoints = {}, .service = "lib.echo"});
    EXPECT_EQ(nowhere.status().code(), Status::Code::kInvalidArgument);
  });

  EXPECT_NO_THROW({
    bus::Publisher publisher(bad);
    expect_invalid(publisher.status(), bad);
    expect_invalid(publisher.Publish("t", {"x"}), bad);
    bus::Subscriber subscriber(unknown_transport, {"t"});
    expect_invalid(subscriber.status(), unknown_transport);
    expect_invalid(subscriber.Subscribe("u"), unknown_transport);
    EXPECT_FALSE(subscriber.Receive(10ms).has_value());
  });
}

// A worker given a good and a bad endpoint serves through the good one and
// says what was wrong with the other.
TEST_P(LibEngineTest, AWorkerServesTheBrokersItCanReachAndNamesTheBadEndpoint) {
  StartBroker();
  const std::string bad = "tcp://127.0.0.1:not-a-port";
  std::atomic<bool> status_named_bad{false};
  threads_.emplace_back([&] {
    mdp::WorkerOptions o = WorkerFor("lib.half");
    o.endpoints.push_back(bad);
    mdp::Worker w(o);
    status_named_bad = w.status().code() == Status::Code::kInvalidArgument &&
                       w.status().message().find(bad) != std::string::npos;
    while (!stop_) {
      if (auto r = w.Receive(50ms)) (void)w.Reply(*r, r->body);
    }
  });
  WaitForService("lib.half");
  mdp::Client client(ClientFor());
  auto reply = client.Request("lib.half", {"ok"});
  StopWorkers();
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_EQ(reply.value(), Frames{"ok"});
  EXPECT_TRUE(status_named_bad);
}

// A broker that answers and closes the connection at once, as a draining
// one does, must not lose the answer. With ZMQ_IMMEDIATE on the client's
// socket, libzmq terminated the connection's pipe on the close and with it a
// reply that had arrived but was not yet read.
TEST_P(LibEngineTest, AReplyFollowedAtOnceByACloseIsNotLost) {
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(listen(listener, 8), 0);
  socklen_t length = sizeof(address);
  getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length);
  const int port = ntohs(address.sin_port);

  constexpr int kRounds = 30;
  // A one-shot ROUTER in raw ZMTP: handshake, read the request, send the
  // FINAL reply and close in the same breath.
  std::thread broker([listener] {
    for (int round = 0; round < kRounds; ++round) {
      pollfd p{listener, POLLIN, 0};
      if (poll(&p, 1, 5000) <= 0) return;
      const int fd = accept(listener, nullptr, nullptr);
      if (fd < 0) return;
      std::string hello;
      transport::zmtp::AppendGreeting(hello);
      transport::zmtp::AppendReady(hello, "ROUTER");
      std::string in;
      char buffer[4096];
      const std::string service = "lib.drain";
      const auto deadline = std::chrono::steady_clock::now() + 5s;
      bool asked = SendAll(fd, hello);
      while (asked && in.find(service) == std::string::npos &&
             std::chrono::steady_clock::now() < deadline) {
        pollfd q{fd, POLLIN, 0};
        if (poll(&q, 1, 100) <= 0) continue;
        const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
        if (n <= 0) asked = false;
        if (n > 0) in.append(buffer, static_cast<size_t>(n));
      }
      if (asked) {
        std::string reply;
        transport::zmtp::AppendFrame(reply, mdp::kClientHeader02, true);
        transport::zmtp::AppendFrame(
            reply, std::string(1, static_cast<char>(mdp::v02::kClientFinal)), true);
        transport::zmtp::AppendFrame(reply, service, true);
        transport::zmtp::AppendFrame(reply, "answer " + std::to_string(round), false);
        (void)SendAll(fd, reply);
      }
      close(fd);
    }
  });

  int answered = 0;
  std::string first_error;
  for (int round = 0; round < kRounds; ++round) {
    mdp::Client client(mdp::ClientOptions{
        .endpoints = {TcpEndpoint(port)}, .timeout = 2000ms, .attempts = 1, .engine = engine_});
    auto reply = client.Request("lib.drain", {"x"});
    if (reply.ok() && reply.value() == Frames{"answer " + std::to_string(round)}) {
      ++answered;
    } else if (first_error.empty()) {
      first_error = reply.ok() ? "a wrong reply" : reply.status().message();
    }
  }
  broker.join();
  close(listener);
  EXPECT_EQ(answered, kRounds) << "first loss: " << first_error;
}

TEST_P(LibEngineTest, PartialRepliesStreamToTheCallback) {
  StartBroker();
  std::thread worker([this] {
    mdp::Worker w(WorkerFor("lib.stream"));
    auto r = w.Receive(5s);
    ASSERT_TRUE(r.has_value());
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(w.Partial(*r, {"p" + std::to_string(i)}).ok());
    ASSERT_TRUE(w.Reply(*r, {"end"}).ok());
  });
  WaitForService("lib.stream");
  mdp::Client client(ClientFor());
  std::vector<Frames> partials;
  auto reply =
      client.Request("lib.stream", {"go"}, [&](const Frames& p) { partials.push_back(p); });
  worker.join();
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply.value(), Frames{"end"});
  EXPECT_EQ(partials, (std::vector<Frames>{{"p0"}, {"p1"}, {"p2"}}));
}

// 18/MDP client reliability: the request completes across a broker restart
// on the same port, and the worker registers again by itself.
TEST_P(LibEngineTest, RequestAndWorkerSurviveABrokerRestart) {
  StartBroker();
  std::atomic<uint64_t> registrations{0};
  std::thread worker([&] {
    mdp::Worker w(WorkerFor("lib.restart"));
    while (!stop_) {
      if (auto r = w.Receive(50ms)) (void)w.Reply(*r, {"after restart"});
      registrations = w.registrations();
    }
  });
  WaitForService("lib.restart");
  broker_.Signal(SIGKILL);
  ASSERT_TRUE(broker_.WaitExit(5s).has_value());

  // The request goes out while no broker is there; the broker comes back
  // (started from this thread: a broker dies with the thread that started it).
  std::optional<Result<Frames>> reply;
  std::thread requester([&] {
    mdp::Client client(ClientFor(400ms, 20));
    reply = client.Request("lib.restart", {"x"});
  });
  // Time must pass with no broker: the client's first attempt (400 ms) times
  // out and it retries, which is what this test is about.
  std::this_thread::sleep_for(500ms);
  ASSERT_TRUE(broker_.Start({.config_yaml = Yaml()})) << broker_.Output();
  requester.join();
  ASSERT_TRUE(reply.has_value());
  stop_ = true;
  worker.join();
  ASSERT_TRUE(reply->ok()) << reply->status().message();
  EXPECT_EQ(reply->value(), Frames{"after restart"});
  EXPECT_GE(registrations.load(), 2u) << "the worker never registered again";
}

TEST_P(LibEngineTest, AsyncClientCompletesTenThousandRequestsExactlyOnce) {
  StartBroker();
  RunEchoWorkers("lib.async", 4);
  WaitForService("lib.async");
  mdp::AsyncClient client(ClientFor(20s));
  constexpr int kRequests = 10000;
  std::vector<int> completions(kRequests, 0);
  int wrong = 0, failed = 0;
  for (int i = 0; i < kRequests; ++i) {
    client.Send("lib.async", {std::to_string(i)}, [&, i](Result<Frames> r) {
      ++completions[i];
      if (!r.ok()) {
        ++failed;
      } else if (r.value() != Frames{std::to_string(i)}) {
        ++wrong;
      }
    });
  }
  EXPECT_EQ(client.pending(), static_cast<size_t>(kRequests));
  EXPECT_EQ(client.Drain(30s), 0u);
  StopWorkers();
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(wrong, 0);
  for (int i = 0; i < kRequests; ++i) ASSERT_EQ(completions[i], 1) << i;
}

TEST_P(LibEngineTest, AsyncClientFutureAndTimeout) {
  StartBroker();
  RunEchoWorkers("lib.future", 1);
  WaitForService("lib.future");
  mdp::AsyncClient client(ClientFor(300ms));
  auto ok = client.Send("lib.future", {"f"});
  auto lost = client.Send("lib.nobody", {"f"});
  client.Drain(2s);
  StopWorkers();
  auto r1 = ok.get();
  ASSERT_TRUE(r1.ok());
  EXPECT_EQ(r1.value(), Frames{"f"});
  EXPECT_EQ(lost.get().status().code(), Status::Code::kTimeout);
}

TEST_P(LibEngineTest, Mdp01ClientAndWorker) {
  StartBroker();
  std::thread worker([this] {
    mdp::WorkerOptions o = WorkerFor("lib.old");
    o.protocol = mdp::Protocol::kMdp01;
    mdp::Worker w(o);
    auto r = w.Receive(5s);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(w.Partial(*r, {"x"}).code(), Status::Code::kInvalidArgument);
    ASSERT_TRUE(w.Reply(*r, {"old", "school"}).ok());
  });
  WaitForService("lib.old");
  mdp::ClientOptions o = ClientFor();
  o.protocol = mdp::Protocol::kMdp01;
  mdp::Client client(o);
  auto reply = client.Request("lib.old", {"hi"});
  worker.join();
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_EQ(reply.value(), (Frames{"old", "school"}));
}

// Several brokers: a worker registers with each; a client fails over.
TEST_P(LibEngineTest, WorkerRegistersWithEveryBrokerAndClientFailsOver) {
  StartBroker();
  BrokerProcess second;
  const int second_client = FreeTcpPort(), second_worker = FreeTcpPort();
  ASSERT_TRUE(second.Start({.config_yaml = YamlFor(second_client, second_worker)}))
      << second.Output();
  std::thread worker([&] {
    mdp::WorkerOptions o = WorkerFor("lib.ha");
    o.endpoints.push_back(TcpEndpoint(second_worker));
    mdp::Worker w(o);
    while (!stop_) {
      if (auto r = w.Receive(50ms)) (void)w.Reply(*r, {"from " + std::to_string(r->connection)});
    }
  });
  WaitForService("lib.ha");
  // Ask the second broker directly: the worker is there too.
  mdp::Client direct(
      mdp::ClientOptions{.endpoints = {TcpEndpoint(second_client)}, .engine = engine_});
  auto there = direct.Request("lib.ha", {"x"});
  ASSERT_TRUE(there.ok()) << there.status().message();
  EXPECT_EQ(there.value(), Frames{"from 1"});

  // The first broker dies; a client listing both gets its answer.
  broker_.Signal(SIGKILL);
  ASSERT_TRUE(broker_.WaitExit(5s).has_value());
  mdp::Client failover(
      mdp::ClientOptions{.endpoints = {TcpEndpoint(client_port_), TcpEndpoint(second_client)},
                         .timeout = 300ms,
                         .attempts = 3,
                         .engine = engine_});
  auto reply = failover.Request("lib.ha", {"y"});
  stop_ = true;
  worker.join();
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_EQ(reply.value(), Frames{"from 1"});
  EXPECT_EQ(second.Stop(), 0);
}

// A broker that dies while a request waits there (issue 17): the client
// does not sit out its timeout but sends the request to the next broker at
// once. The first broker's worker holds the request and never answers.
TEST_P(LibEngineTest, AClientWhoseBrokerDiesIsAnsweredByTheNextBeforeItsTimeout) {
  StartBroker();
  BrokerProcess second;
  const int second_client = FreeTcpPort(), second_worker = FreeTcpPort();
  ASSERT_TRUE(second.Start({.config_yaml = YamlFor(second_client, second_worker)}))
      << second.Output();
  std::atomic<int> held{0};
  RunHoldingAndAnsweringWorkers("lib.move", second_worker, 1, &held);
  WaitForService("lib.move");

  constexpr auto kTimeout = 10s;
  std::optional<Result<Frames>> reply;
  std::chrono::steady_clock::time_point answered;
  std::thread caller([&] {
    mdp::Client client(
        mdp::ClientOptions{.endpoints = {TcpEndpoint(client_port_), TcpEndpoint(second_client)},
                           .timeout = kTimeout,
                           .attempts = 2,
                           .engine = engine_});
    reply = client.Request("lib.move", {"x"});
    answered = std::chrono::steady_clock::now();
  });
  ASSERT_TRUE(PollUntil([&] { return held.load() > 0; }, 5s))
      << "the first broker never dispatched";
  broker_.Signal(SIGKILL);
  const auto killed = std::chrono::steady_clock::now();
  ASSERT_TRUE(broker_.WaitExit(5s).has_value());
  caller.join();
  StopWorkers();
  ASSERT_TRUE(reply.has_value());
  ASSERT_TRUE(reply->ok()) << reply->status().message();
  EXPECT_EQ(reply->value(), Frames{"second"});
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(answered - killed);
  EXPECT_LT(took, 2s) << "the client waited for its timeout instead of failing over";
  RecordProperty("failover_ms", static_cast<int>(took.count()));
  EXPECT_EQ(second.Stop(), 0);
}

// AsyncClient on two brokers (issue 17): requests go to both in turn; those
// held at the first broker move to the second when they time out, and at
// once when the first broker dies.
TEST_P(LibEngineTest, AnAsyncClientMovesRequestsToTheNextBrokerOnTimeoutAndOnLoss) {
  StartBroker();
  BrokerProcess second;
  const int second_client = FreeTcpPort(), second_worker = FreeTcpPort();
  ASSERT_TRUE(second.Start({.config_yaml = YamlFor(second_client, second_worker)}))
      << second.Output();
  std::atomic<int> held{0};
  RunHoldingAndAnsweringWorkers("lib.amove", second_worker, 64, &held);
  WaitForService("lib.amove");
  const std::vector<std::string> both = {TcpEndpoint(client_port_), TcpEndpoint(second_client)};
  const auto run = [&](mdp::AsyncClient& client, int n, std::vector<Result<Frames>>* results) {
    for (int i = 0; i < n; ++i) {
      client.Send("lib.amove", {std::to_string(i)},
                  [results](Result<Frames> r) { results->push_back(std::move(r)); });
    }
  };

  // Timeouts: 300 ms, two sends each. What the first broker holds times out
  // and is answered by the second.
  {
    mdp::AsyncClient client(
        mdp::ClientOptions{.endpoints = both, .timeout = 300ms, .attempts = 2, .engine = engine_});
    std::vector<Result<Frames>> results;
    run(client, 8, &results);
    EXPECT_EQ(client.Drain(5s), 0u);
    ASSERT_EQ(results.size(), 8u);
    for (const auto& r : results) {
      ASSERT_TRUE(r.ok()) << r.status().message();
      EXPECT_EQ(r.value(), Frames{"second"});
    }
    EXPECT_GT(held.load(), 0) << "no request went to the first broker";
  }

  // Loss: a 10 s timeout; the first broker is killed while it holds some.
  mdp::AsyncClient client(
      mdp::ClientOptions{.endpoints = both, .timeout = 10s, .attempts = 2, .engine = engine_});
  const int held_before = held.load();
  std::vector<Result<Frames>> results;
  run(client, 8, &results);
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (held.load() == held_before && std::chrono::steady_clock::now() < deadline) {
    client.Poll(20ms);
  }
  ASSERT_GT(held.load(), held_before) << "no request went to the first broker";
  const size_t answered_before_kill = results.size();
  EXPECT_LT(answered_before_kill, 8u);
  broker_.Signal(SIGKILL);
  const auto killed = std::chrono::steady_clock::now();
  ASSERT_TRUE(broker_.WaitExit(5s).has_value());
  EXPECT_EQ(client.Drain(5s), 0u);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - killed);
  StopWorkers();
  ASSERT_EQ(results.size(), 8u);
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(r.value(), Frames{"second"});
  }
  EXPECT_LT(took, 2s) << "the held requests waited for their timeout";
  RecordProperty("failover_ms", static_cast<int>(took.count()));
  EXPECT_EQ(second.Stop(), 0);
}

// A worker's credit is for all its brokers together (issue 17): with credit
// 4 on two brokers, each gets 2, and eight waiting requests (four at each)
// reach the worker four at a time, two from each broker.
TEST_P(LibEngineTest, AWorkerOnTwoBrokersIsNeverHandedMoreThanItsCreditInTotal) {
  StartBroker();
  BrokerProcess second;
  const int second_client = FreeTcpPort(), second_worker = FreeTcpPort();
  ASSERT_TRUE(second.Start({.config_yaml = YamlFor(second_client, second_worker)}))
      << second.Output();
  mdp::WorkerOptions o = WorkerFor("lib.split");
  o.endpoints.push_back(TcpEndpoint(second_worker));
  o.credit = 4;
  mdp::Worker worker(o);
  // On the native engine the worker's connections progress only while it
  // is called: keep calling it until both brokers list it.
  const auto served_at = [&](int port) {
    mdp::Client c(mdp::ClientOptions{
        .endpoints = {TcpEndpoint(port)}, .timeout = 500ms, .attempts = 1, .engine = engine_});
    auto r = c.ServiceExists("lib.split");
    return r.ok() && r.value();
  };
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  bool registered = false;
  while (!registered && std::chrono::steady_clock::now() < deadline) {
    ASSERT_FALSE(worker.Receive(20ms).has_value());
    registered = served_at(client_port_) && served_at(second_client);
  }
  ASSERT_TRUE(registered) << "the worker never registered with both brokers";

  std::vector<std::thread> clients;
  std::atomic<int> answered{0};
  for (int i = 0; i < 8; ++i) {
    const int port = i % 2 == 0 ? client_port_ : second_client;
    clients.emplace_back([&, port, i] {
      mdp::Client c(mdp::ClientOptions{
          .endpoints = {TcpEndpoint(port)}, .timeout = 10s, .attempts = 1, .engine = engine_});
      auto r = c.Request("lib.split", {std::to_string(i)});
      if (r.ok() && r.value() == Frames{std::to_string(i)}) ++answered;
    });
  }
  // Takes what the brokers hand over until nothing more comes for 500 ms
  // (what must not happen is more arriving: wait a while for it).
  const auto take = [&](std::vector<mdp::WorkerRequest>* held) {
    while (auto r = worker.Receive(500ms)) held->push_back(std::move(*r));
  };
  std::vector<mdp::WorkerRequest> held;
  for (int round = 0; round < 2; ++round) {
    held.clear();
    take(&held);
    ASSERT_EQ(held.size(), 4u) << "round " << round << ": more than the credit at once";
    size_t from_first = 0;
    for (const auto& r : held) from_first += r.connection == 0 ? 1 : 0;
    EXPECT_EQ(from_first, 2u) << "round " << round;
    for (const auto& r : held) ASSERT_TRUE(worker.Reply(r, r.body).ok());
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(answered.load(), 8);
  EXPECT_EQ(second.Stop(), 0);
}

// The native engine is libplantd's own: a client and a worker on it start
// no thread (libzmq would start its I/O thread and reaper), and the whole
// exchange runs on the threads that call the library.
TEST_F(LibTest, TheNativeEngineStartsNoThread) {
  StartBroker();
  auto threads = [] {
    size_t n = 0;
    for ([[maybe_unused]] const auto& task :
         std::filesystem::directory_iterator("/proc/self/task")) {
      ++n;
    }
    return n;
  };
  const size_t before = threads();
  engine_ = mdp::Engine::kNative;
  mdp::Worker worker(WorkerFor("lib.nothread"));
  mdp::AsyncClient client(ClientFor(2000ms));
  std::optional<Result<Frames>> reply;
  client.Send("lib.nothread", {"x"}, [&](Result<Frames> r) { reply = std::move(r); });
  // One thread plays both parts, in turns, until the reply is in.
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!reply && std::chrono::steady_clock::now() < deadline) {
    if (auto request = worker.Receive(10ms)) {
      ASSERT_TRUE(worker.Reply(*request, {"y"}).ok());
    }
    client.Poll(10ms);
  }
  ASSERT_TRUE(reply.has_value());
  ASSERT_TRUE(reply->ok()) << reply->status().message();
  EXPECT_EQ(reply->value(), Frames{"y"});
  EXPECT_EQ(threads(), before);
}

// On the native engine a worker learns at once that its broker connection
// is gone and registers again as soon as the broker is back, instead of
// sending heartbeats into the new broker and waiting for its DISCONNECT:
// with 5 s heartbeats, libzmq's worker would need up to 5 s.
TEST_F(LibTest, TheNativeWorkerRegistersAgainAsSoonAsTheBrokerIsBack) {
  std::string yaml = Yaml();
  yaml.replace(yaml.find("heartbeat_interval: 100ms"), 25, "heartbeat_interval: 5s");
  ASSERT_TRUE(broker_.Start({.config_yaml = yaml})) << broker_.Output();
  engine_ = mdp::Engine::kNative;
  std::atomic<uint64_t> registrations{0};
  std::thread worker([&] {
    mdp::WorkerOptions o = WorkerFor("lib.back");
    o.heartbeat_interval = 5s;
    mdp::Worker w(o);
    while (!stop_) {
      if (auto r = w.Receive(50ms)) (void)w.Reply(*r, {"back"});
      registrations = w.registrations();
    }
  });
  WaitForService("lib.back");
  broker_.Signal(SIGKILL);
  ASSERT_TRUE(broker_.WaitExit(5s).has_value());
  ASSERT_TRUE(broker_.Start({.config_yaml = yaml})) << broker_.Output();
  const auto restarted = std::chrono::steady_clock::now();
  mdp::Client client(ClientFor(4000ms, 1));
  auto reply = client.Request("lib.back", {"x"});
  const auto took = std::chrono::steady_clock::now() - restarted;
  stop_ = true;
  worker.join();
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_EQ(reply.value(), Frames{"back"});
  EXPECT_LT(took, 2s) << "the worker waited for a heartbeat to find the broker gone";
  EXPECT_GE(registrations.load(), 2u);
}

// The native engine against libzmq's own ROUTER: the broker with
// `transport: zmq` binds its Majordomo endpoints with libzmq.
TEST_F(LibTest, TheNativeEngineTalksToALibzmqRouter) {
  ASSERT_TRUE(broker_.Start({.config_yaml = Yaml() + "transport: zmq\n"})) << broker_.Output();
  engine_ = mdp::Engine::kNative;
  RunEchoWorkers("lib.zmqrouter", 1);
  WaitForService("lib.zmqrouter");
  mdp::Client client(ClientFor());
  for (int i = 0; i < 100; ++i) {
    auto reply = client.Request("lib.zmqrouter", {"n", std::to_string(i), std::string(70000, 'z')});
    ASSERT_TRUE(reply.ok()) << reply.status().message();
    ASSERT_EQ(reply->size(), 3u);
    EXPECT_EQ((*reply)[1], std::to_string(i));
    EXPECT_EQ((*reply)[2].size(), 70000u);
  }
  StopWorkers();
}

// Publishes `topic` until `sub` receives it, within a bound: the
// subscription has reached the publisher (it filters at the source). Other
// messages that arrive meanwhile are skipped.
bool SyncBus(bus::Publisher& pub, bus::Subscriber& sub, const std::string& topic) {
  for (int i = 0; i < 200; ++i) {
    if (!pub.Publish(topic, {"sync"}).ok()) return false;
    while (auto m = sub.Receive(50ms)) {
      if (m->topic == topic) return true;
    }
  }
  return false;
}

// The next message that is not a sync marker (those SyncBus published after
// the one that arrived may still be on their way).
std::optional<bus::Message> ReceiveSkippingSync(bus::Subscriber& sub,
                                                std::chrono::milliseconds timeout = 5000ms) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto m = sub.Receive(100ms);
    if (m && m->frames != Frames{"sync"}) return m;
  }
  return std::nullopt;
}

Engine OtherEngine(Engine engine) {
  return engine == Engine::kNative ? Engine::kLibzmq : Engine::kNative;
}

TEST_P(LibEngineTest, BusPublisherAndSubscriber) {
  const int backend = FreeTcpPort(), frontend = FreeTcpPort();
  ASSERT_NO_FATAL_FAILURE(StartBrokerWithBus(backend, frontend));
  bus::Subscriber sub(TcpEndpoint(frontend), {"sensor."}, {.engine = engine_});
  bus::Publisher pub(TcpEndpoint(backend), {.engine = engine_});
  ASSERT_TRUE(sub.status().ok()) << sub.status().message();
  ASSERT_TRUE(pub.status().ok()) << pub.status().message();
  std::optional<bus::Message> m;
  for (int i = 0; i < 100 && !m; ++i) {  // until the subscription has propagated
    ASSERT_TRUE(pub.Publish("sensor.t", {"21.5", "C"}).ok());
    m = sub.Receive(50ms);
  }
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->topic, "sensor.t");
  EXPECT_EQ(m->frames, (Frames{"21.5", "C"}));
}

TEST_P(LibEngineTest, BusSubscribersWithDifferentPrefixesEachGetOnlyTheirTopics) {
  const int backend = FreeTcpPort(), frontend = FreeTcpPort();
  ASSERT_NO_FATAL_FAILURE(StartBrokerWithBus(backend, frontend));
  bus::Publisher pub(TcpEndpoint(backend), {.engine = engine_});
  const std::vector<std::string> prefixes = {"a.", "b.", "c."};
  std::vector<std::unique_ptr<bus::Subscriber>> subs;
  for (const std::string& prefix : prefixes) {
    subs.push_back(std::make_unique<bus::Subscriber>(TcpEndpoint(frontend),
                                                     std::vector<std::string>{prefix},
                                                     bus::SubscriberOptions{.engine = engine_}));
    ASSERT_TRUE(SyncBus(pub, *subs.back(), prefix + "sync")) << prefix << " never synced";
  }

  constexpr int kMessages = 100;
  for (int i = 0; i < kMessages; ++i) {
    for (const std::string& prefix : prefixes) {
      ASSERT_TRUE(pub.Publish(prefix + "data", {std::to_string(i)}).ok());
    }
    ASSERT_TRUE(pub.Publish("other.data", {std::to_string(i)}).ok());  // nobody's
  }
  for (const std::string& prefix : prefixes) ASSERT_TRUE(pub.Publish(prefix + "end", {}).ok());

  for (size_t s = 0; s < subs.size(); ++s) {
    const std::string& prefix = prefixes[s];
    int data = 0;
    bool ended = false;
    while (!ended) {
      auto m = ReceiveSkippingSync(*subs[s]);
      ASSERT_TRUE(m.has_value()) << prefix << " got " << data << " messages and no end";
      ASSERT_EQ(m->topic.rfind(prefix, 0), 0u)
          << "the " << prefix << " subscriber got " << m->topic;
      if (m->topic == prefix + "end") {
        ended = true;
      } else {
        ASSERT_EQ(m->topic, prefix + "data");
        EXPECT_EQ(m->frames, Frames{std::to_string(data)}) << "in order, none missing";
        ++data;
      }
    }
    EXPECT_EQ(data, kMessages) << prefix;
  }
}

// A publisher on one engine and a subscriber on the other: the broker
// speaks to both alike.
TEST_P(LibEngineTest, BusPublisherAndSubscriberOnDifferentEnginesWorkTogether) {
  const int backend = FreeTcpPort(), frontend = FreeTcpPort();
  ASSERT_NO_FATAL_FAILURE(StartBrokerWithBus(backend, frontend));
  bus::Publisher pub(TcpEndpoint(backend), {.engine = engine_});
  bus::Subscriber sub(TcpEndpoint(frontend), {"mixed."}, {.engine = OtherEngine(engine_)});
  ASSERT_TRUE(pub.status().ok()) << pub.status().message();
  ASSERT_TRUE(sub.status().ok()) << sub.status().message();
  ASSERT_TRUE(SyncBus(pub, sub, "mixed.sync"));
  constexpr int kMessages = 1000;
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_TRUE(pub.Publish("mixed.data", {std::to_string(i), "x"}).ok());
  }
  for (int i = 0; i < kMessages; ++i) {
    auto m = ReceiveSkippingSync(sub);
    ASSERT_TRUE(m.has_value()) << "only " << i << " messages arrived";
    ASSERT_EQ(m->topic, "mixed.data");
    ASSERT_EQ(m->frames, (Frames{std::to_string(i), "x"})) << "message " << i;
  }
}

// The broker goes away and comes back on the same ports: both peers
// reconnect by themselves, the subscriber subscribes again, and what is
// published once that has reached the publisher arrives.
TEST_P(LibEngineTest, BusPublisherKeepsWorkingAfterTheBrokerRestartsOnTheSamePorts) {
  const int backend = FreeTcpPort(), frontend = FreeTcpPort();
  ASSERT_NO_FATAL_FAILURE(StartBrokerWithBus(backend, frontend));
  bus::Publisher pub(TcpEndpoint(backend), {.engine = engine_});
  bus::Subscriber sub(TcpEndpoint(frontend), {"sensor."}, {.engine = engine_});
  ASSERT_TRUE(SyncBus(pub, sub, "sensor.before"));

  broker_.Signal(SIGKILL);
  ASSERT_TRUE(broker_.WaitExit(5s).has_value());
  ASSERT_NO_FATAL_FAILURE(StartBrokerWithBus(backend, frontend));

  std::optional<bus::Message> after;
  for (int i = 0; i < 300 && !after; ++i) {  // at most ~30 s
    ASSERT_TRUE(pub.Publish("sensor.after", {"back"}).ok());
    while (auto m = sub.Receive(100ms)) {
      if (m->topic == "sensor.after") {
        after = std::move(m);
        break;
      }
    }
  }
  ASSERT_TRUE(after.has_value()) << "nothing published after the restart arrived";
  EXPECT_EQ(after->frames, Frames{"back"});
}

// A worker with credit 4 runs its handler on 4 threads: four slow requests
// finish together, and replies go out as each finishes (out of order).
TEST_P(LibEngineTest, ConcurrentWorkerHandlesCreditRequestsAtOnce) {
  StartBroker();
  std::thread worker([this] {
    mdp::WorkerOptions o = WorkerFor("lib.parallel");
    o.credit = 4;
    mdp::Worker w(o);
    std::thread stopper([&] {
      while (!stop_) std::this_thread::sleep_for(10ms);
      w.Stop();
    });
    w.Serve([](const mdp::WorkerRequest& r) {
      // Later requests finish first.
      std::this_thread::sleep_for(std::chrono::milliseconds(400 - 100 * std::stoi(r.body[0])));
      return r.body;
    });
    stopper.join();
  });
  WaitForService("lib.parallel");
  mdp::AsyncClient client(ClientFor(5s));
  std::vector<std::string> order;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 4; ++i) {
    client.Send("lib.parallel", {std::to_string(i)}, [&](Result<Frames> r) {
      ASSERT_TRUE(r.ok());
      order.push_back(r.value()[0]);
    });
  }
  EXPECT_EQ(client.Drain(5s), 0u);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  stop_ = true;
  worker.join();
  EXPECT_LT(elapsed, 800ms) << "requests were not handled concurrently";
  EXPECT_EQ(order, (std::vector<std::string>{"3", "2", "1", "0"}));
}

// --- plantd-mdp --------------------------------------------------------------

TEST_F(LibTest, CliCallServicesServiceBrokerAndExitCodes) {
  StartBroker();
  const std::string e = TcpEndpoint(client_port_);
  BrokerProcess echo;
  ASSERT_TRUE(echo.Start(
      {.args = {"echo-worker", "cli.echo", "-e", TcpEndpoint(worker_port_), "--heartbeat", "100"},
       .wait_ready = false,
       .binary = BuildPath("plantd-mdp")}));
  WaitForService("cli.echo");

  RunResult call = RunProgram("plantd-mdp", {"call", "cli.echo", "one", "two", "-e", e});
  EXPECT_EQ(call.status, 0) << call.output;
  EXPECT_EQ(call.output, "one\ntwo\n");

  RunResult json = RunProgram("plantd-mdp", {"call", "cli.echo", "x", "-e", e, "--json"});
  EXPECT_EQ(json.output, "[\"x\"]\n");

  RunResult missing = RunProgram("plantd-mdp", {"call", "cli.none", "-e", e, "-t", "200"});
  EXPECT_EQ(missing.status, 3) << missing.output;
  EXPECT_NE(missing.output.find("has no worker"), std::string::npos);

  RunResult service = RunProgram("plantd-mdp", {"service", "cli.echo", "-e", e});
  EXPECT_EQ(service.status, 0);
  EXPECT_EQ(RunProgram("plantd-mdp", {"service", "cli.none", "-e", e}).status, 3);

  RunResult services = RunProgram("plantd-mdp", {"services", "-e", e});
  EXPECT_EQ(services.status, 0);
  auto list = nlohmann::json::parse(services.output);
  EXPECT_EQ(list[0]["name"], "cli.echo");

  RunResult broker = RunProgram("plantd-mdp", {"broker", "-e", e});
  EXPECT_EQ(broker.status, 0);
  EXPECT_TRUE(nlohmann::json::parse(broker.output).contains("uptime_seconds"));

  RunResult usage = RunProgram("plantd-mdp", {"call"});
  EXPECT_EQ(usage.status, 2);
  EXPECT_EQ(RunProgram("plantd-mdp", {"frobnicate"}).status, 2);

  echo.Signal(SIGTERM);
  EXPECT_EQ(echo.WaitExit(5s), std::optional<int>(0));
}

// Several brokers (issue 17): an echo worker serves two at once, and
// --each asks every broker given and shows them side by side; a broker that
// is gone shows why and makes the exit status 1.
TEST_F(LibTest, CliEachAsksEveryBrokerAndAWorkerServesTwo) {
  StartBroker();
  BrokerProcess second;
  const int second_client = FreeTcpPort(), second_worker = FreeTcpPort();
  ASSERT_TRUE(second.Start({.config_yaml = YamlFor(second_client, second_worker)}))
      << second.Output();
  BrokerProcess echo;
  ASSERT_TRUE(
      echo.Start({.args = {"echo-worker", "cli.both", "-e", TcpEndpoint(worker_port_), "-e",
                           TcpEndpoint(second_worker), "--heartbeat", "100", "--credit", "4"},
                  .wait_ready = false,
                  .binary = BuildPath("plantd-mdp")}));
  WaitForService("cli.both");
  const std::string first_e = TcpEndpoint(client_port_), second_e = TcpEndpoint(second_client);

  // The worker serves both brokers: each lists it, and calls through each
  // are answered.
  RunResult services = RunProgram(
      "plantd-mdp", {"services", "--each", "-e", first_e, "--failover", second_e, "--json"});
  ASSERT_EQ(services.status, 0) << services.output;
  auto by_broker = nlohmann::json::parse(services.output, nullptr, false);
  ASSERT_FALSE(by_broker.is_discarded()) << services.output;
  EXPECT_EQ(by_broker[first_e]["cli.both"]["workers"], 1) << services.output;
  EXPECT_EQ(by_broker[second_e]["cli.both"]["workers"], 1) << services.output;
  for (const std::string& e : {first_e, second_e}) {
    RunResult call = RunProgram("plantd-mdp", {"call", "cli.both", "hi", "-e", e});
    EXPECT_EQ(call.status, 0) << call.output;
    EXPECT_EQ(call.output, "hi\n");
  }

  RunResult broker = RunProgram(
      "plantd-mdp", {"broker", "--each", "-e", first_e, "--failover", second_e, "--json"});
  ASSERT_EQ(broker.status, 0) << broker.output;
  auto brokers = nlohmann::json::parse(broker.output, nullptr, false);
  ASSERT_FALSE(brokers.is_discarded()) << broker.output;
  EXPECT_TRUE(brokers[first_e].contains("uptime_seconds")) << broker.output;
  EXPECT_TRUE(brokers[second_e].contains("uptime_seconds")) << broker.output;
  EXPECT_EQ(brokers[first_e]["requests"], 1);
  EXPECT_EQ(brokers[second_e]["requests"], 1);

  // The second broker dies: its column says so, the first still answers.
  second.Signal(SIGKILL);
  ASSERT_TRUE(second.WaitExit(5s).has_value());
  RunResult one_gone = RunProgram(
      "plantd-mdp", {"broker", "--each", "-e", first_e, "--failover", second_e, "-t", "300"});
  EXPECT_EQ(one_gone.status, 1) << one_gone.output;
  EXPECT_NE(one_gone.output.find(second_e), std::string::npos) << one_gone.output;
  EXPECT_NE(one_gone.output.find("error"), std::string::npos) << one_gone.output;
  EXPECT_NE(one_gone.output.find("uptime_seconds"), std::string::npos) << one_gone.output;

  echo.Signal(SIGTERM);
  EXPECT_EQ(echo.WaitExit(5s), std::optional<int>(0));
}

TEST_F(LibTest, CliTimeoutIsExitOne) {
  StartBroker();
  // A worker that takes requests and never answers.
  std::thread silent([this] {
    mdp::Worker w(WorkerFor("cli.silent"));
    while (!stop_) (void)w.Receive(50ms);
  });
  WaitForService("cli.silent");
  RunResult r = RunProgram("plantd-mdp",
                           {"call", "cli.silent", "-e", TcpEndpoint(client_port_), "-t", "300"});
  stop_ = true;
  silent.join();
  EXPECT_EQ(r.status, 1) << r.output;
  RunResult nobroker =
      RunProgram("plantd-mdp", {"call", "x", "-e", TcpEndpoint(FreeTcpPort()), "-t", "200"});
  EXPECT_EQ(nobroker.status, 1) << nobroker.output;
}

TEST_F(LibTest, CliPubSub) {
  const int backend = FreeTcpPort(), frontend = FreeTcpPort();
  StartBrokerWithBus(backend, frontend);
  BrokerProcess sub;
  ASSERT_TRUE(sub.Start({.args = {"sub", TcpEndpoint(frontend), "alarm", "-n", "1"},
                         .wait_ready = false,
                         .binary = BuildPath("plantd-mdp")}));
  std::optional<int> status;
  for (int i = 0; i < 50 && !status; ++i) {
    RunResult pub = RunProgram("plantd-mdp", {"pub", TcpEndpoint(backend), "alarm.high", "boiler"});
    EXPECT_EQ(pub.status, 0) << pub.output;
    status = sub.WaitExit(100ms);
  }
  EXPECT_EQ(status, std::optional<int>(0));
  EXPECT_NE(sub.Output().find("alarm.high boiler"), std::string::npos) << sub.Output();
}

// --- examples ----------------------------------------------------------------

TEST_F(LibTest, ExamplesWorkAsDocumented) {
  const int backend = FreeTcpPort(), frontend = FreeTcpPort(), http = FreeTcpPort();
  StartBrokerWithBus(backend, frontend, http);
  const std::string clients = TcpEndpoint(client_port_), workers = TcpEndpoint(worker_port_);

  BrokerProcess echo;
  ASSERT_TRUE(echo.Start({.args = {workers, "ex.echo", "1"},
                          .wait_ready = false,
                          .binary = BuildPath("examples/echo_worker")}));
  WaitForService("ex.echo");
  RunResult client = RunProgram("examples/client", {clients, "ex.echo", "hello", "plant"});
  EXPECT_EQ(client.status, 0) << client.output;
  EXPECT_EQ(client.output, "hello\nplant\n");
  EXPECT_EQ(echo.WaitExit(5s), std::optional<int>(0));

  BrokerProcess streaming;
  ASSERT_TRUE(streaming.Start({.args = {workers, "ex.count", "1"},
                               .wait_ready = false,
                               .binary = BuildPath("examples/streaming_worker")}));
  WaitForService("ex.count");
  RunResult stream =
      RunProgram("plantd-mdp", {"call", "ex.count", "count", "3", "-e", clients, "--stream"});
  EXPECT_EQ(stream.status, 0);
  EXPECT_EQ(stream.output, "1\n2\n3\ndone\n");
  EXPECT_EQ(streaming.WaitExit(5s), std::optional<int>(0));

  BrokerProcess subscriber;
  ASSERT_TRUE(subscriber.Start({.args = {TcpEndpoint(frontend), "sensor.", "3"},
                                .wait_ready = false,
                                .binary = BuildPath("examples/subscriber")}));
  // The publisher runs once: its readings reach the subscriber only once the
  // broker holds the subscription.
  httplib::Client metrics("127.0.0.1", http);
  metrics.set_read_timeout(5);
  ASSERT_TRUE(PollUntil([&] {
    auto res = metrics.Get("/metrics");
    return res &&
           res->body.find("\nplantd_broker_bus_subscriptions{bus=\"t\"} 1\n") != std::string::npos;
  })) << "the subscriber never subscribed\n"
      << subscriber.Output() << broker_.Output();
  RunResult publisher =
      RunProgram("examples/publisher", {TcpEndpoint(backend), "sensor.temp", "30", "20"});
  EXPECT_EQ(publisher.status, 0) << publisher.output;
  EXPECT_EQ(subscriber.WaitExit(5s), std::optional<int>(0)) << subscriber.Output();
  EXPECT_NE(subscriber.Output().find("sensor.temp 2"), std::string::npos) << subscriber.Output();
}

}  // namespace
}  // namespace plantd::test

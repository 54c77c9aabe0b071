// The plantd-broker process as an operator meets it: flags, exit codes,
// signals, start-up errors.
#include <httplib.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <atomic>
#include <functional>
#include <sstream>
#include <thread>

#include "support.h"

namespace plantd::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Loopback endpoints on free ports, no buses, no HTTP: what most tests want.
std::string LocalConfig(int client_port, int worker_port, const std::string& extra = "") {
  return "endpoint: " + TcpEndpoint(client_port) + "\nclient_endpoint: " +
         TcpEndpoint(worker_port) + "\nbuses: []\nhealth:\n  port: 0\n" + extra;
}

bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!condition()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

TEST(Lifecycle, SigtermExitsZeroInBoundedTime) {
  BrokerProcess broker;
  ASSERT_TRUE(broker.Start({.config_yaml = LocalConfig(FreeTcpPort(), FreeTcpPort())}))
      << broker.Output();
  const auto start = std::chrono::steady_clock::now();
  broker.Signal(SIGTERM);
  auto status = broker.WaitExit(5s);
  ASSERT_TRUE(status.has_value()) << "did not exit within 5 s of SIGTERM";
  EXPECT_EQ(*status, 0) << broker.Output();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_NE(broker.Output().find("stopped"), std::string::npos);
}

TEST(Lifecycle, SigintExitsZero) {
  BrokerProcess broker;
  ASSERT_TRUE(broker.Start({.config_yaml = LocalConfig(FreeTcpPort(), FreeTcpPort())}));
  broker.Signal(SIGINT);
  EXPECT_EQ(broker.WaitExit(5s), std::optional<int>(0)) << broker.Output();
}

TEST(Lifecycle, PortInUseNamesTheEndpointAndItsKey) {
  PortSquatter squatter;
  const int busy = squatter.port();

  BrokerProcess broker;
  broker.Start({.config_yaml = LocalConfig(FreeTcpPort(), busy), .wait_ready = false});
  auto status = broker.WaitExit(10s);
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(*status, 1);
  const std::string out = broker.Output();
  EXPECT_NE(out.find("cannot bind " + TcpEndpoint(busy) + " (client_endpoint)"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("Address already in use"), std::string::npos) << out;
}

TEST(Lifecycle, InvalidConfigExitsTwoBeforeBindingAnything) {
  const int port = FreeTcpPort();
  TempDir dir;
  const std::string path =
      dir.Write("bad.yaml", LocalConfig(port, FreeTcpPort(), "heartbeat_liveness: lots\n"));
  RunResult r = RunBroker({"--config", path});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("heartbeat_liveness: \"lots\" (from " + path + ":6)"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("broker started"), std::string::npos);
}

TEST(Lifecycle, UnknownKeyWarnsButStarts) {
  BrokerProcess broker;
  ASSERT_TRUE(broker.Start(
      {.config_yaml = LocalConfig(FreeTcpPort(), FreeTcpPort(), "heartbeat_intervall: 1s\n")}));
  EXPECT_NE(broker.Output().find("warning: heartbeat_intervall"), std::string::npos)
      << broker.Output();
  EXPECT_EQ(broker.Stop(), 0);
}

TEST(Lifecycle, UnknownFlagIsAUsageError) {
  RunResult r = RunBroker({"--no-such-flag"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("no-such-flag"), std::string::npos) << r.output;
}

TEST(Lifecycle, CheckConfigValidatesAndExits) {
  TempDir dir;
  const std::string good = dir.Write("good.yaml", LocalConfig(FreeTcpPort(), FreeTcpPort()));
  RunResult ok = RunBroker({"--check-config", "--config", good});
  EXPECT_EQ(ok.status, 0) << ok.output;
  EXPECT_NE(ok.output.find("configuration is valid"), std::string::npos);

  RunResult bad = RunBroker({"--check-config", "--log-level", "chatty"});
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.output.find("log.level: \"chatty\" (from flag --log-level)"), std::string::npos)
      << bad.output;
}

TEST(Lifecycle, PrintConfigShowsValuesAndOrigins) {
  RunResult r = RunBroker({"--print-config", "--heartbeat-interval", "300ms"},
                          {{"PLANTD_BROKER_LOG_LEVEL", "debug"}});
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.output.find("heartbeat_interval: \"300ms\"  # flag --heartbeat-interval"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("level: \"debug\"  # env PLANTD_BROKER_LOG_LEVEL"), std::string::npos);
  EXPECT_NE(r.output.find("client_endpoint: \"tcp://*:7201\"  # default"), std::string::npos);
}

TEST(Lifecycle, VersionAndHelp) {
  RunResult v = RunBroker({"--version"});
  EXPECT_EQ(v.status, 0);
  EXPECT_NE(v.output.find("plantd-broker 0."), std::string::npos) << v.output;
  EXPECT_NE(v.output.find("libzmq 4."), std::string::npos) << v.output;
  RunResult shortv = RunBroker({"-V"});
  EXPECT_EQ(shortv.output, v.output);

  RunResult h = RunBroker({"--help"});
  EXPECT_EQ(h.status, 0);
  for (const char* flag : {"--config", "--print-config", "--check-config", "--endpoint",
                           "--client-endpoint", "--health-port", "--log-level", "--log-format",
                           "--heartbeat-interval", "--version"}) {
    EXPECT_NE(h.output.find(flag), std::string::npos) << flag;
  }
}

TEST(Lifecycle, ShippedConfigsAreValid) {
  for (const char* file : {"configs/broker.yaml", "configs/production.yaml"}) {
    RunResult r = RunBroker({"--check-config", "-c", std::string(PLANTD_SOURCE_DIR) + "/" + file});
    EXPECT_EQ(r.status, 0) << file << ": " << r.output;
    EXPECT_EQ(r.output.find("warning"), std::string::npos) << r.output;
  }
}

TEST(Lifecycle, SighupAppliesTheNewLogLevel) {
  const int client = FreeTcpPort();
  const int worker = FreeTcpPort();
  TempDir dir;
  const std::string path = dir.Write("broker.yaml", LocalConfig(client, worker));
  BrokerProcess broker;
  ASSERT_TRUE(broker.Start({.args = {"--config", path}}));

  zmq::context_t ctx;
  {
    // At info level a worker's READY is not logged: once the broker has
    // registered the worker, the log still does not mention it.
    RawPeer w(ctx, TcpEndpoint(worker));
    w.Send({"MDPW02", Byte(0x01), "echo.before"});
    RawPeer c(ctx, TcpEndpoint(client));
    ASSERT_TRUE(WaitUntilRegistered(c, "echo.before")) << broker.Output();
    EXPECT_EQ(broker.Output().find("worker ready"), std::string::npos);
  }

  dir.Write("broker.yaml", LocalConfig(client, worker, "log:\n  level: debug\n"));
  broker.Signal(SIGHUP);
  ASSERT_TRUE(broker.WaitForOutput("configuration reloaded", 5s)) << broker.Output();
  EXPECT_NE(broker.Output().find("applied=log.level"), std::string::npos) << broker.Output();

  RawPeer w(ctx, TcpEndpoint(worker));
  w.Send({"MDPW02", Byte(0x01), "echo.after"});
  EXPECT_TRUE(broker.WaitForOutput("worker ready service=echo.after", 5s)) << broker.Output();
  EXPECT_EQ(broker.Stop(), 0);
}

TEST(Lifecycle, SighupWithABadFileKeepsRunning) {
  TempDir dir;
  const std::string path =
      dir.Write("broker.yaml", LocalConfig(FreeTcpPort(), FreeTcpPort()));
  BrokerProcess broker;
  ASSERT_TRUE(broker.Start({.args = {"--config", path}}));
  dir.Write("broker.yaml", "log:\n  level: shouty\n");
  broker.Signal(SIGHUP);
  ASSERT_TRUE(broker.WaitForOutput("config reload rejected", 5s)) << broker.Output();
  EXPECT_TRUE(broker.running());
  EXPECT_EQ(broker.Stop(), 0);
}

TEST(Lifecycle, JsonLogLinesAreObjectsWithTimeLevelAndMessage) {
  BrokerProcess broker;
  ASSERT_TRUE(broker.Start({.env = {{"PLANTD_BROKER_LOG_FORMAT", "json"}},
                            .config_yaml = LocalConfig(FreeTcpPort(), FreeTcpPort())}));
  EXPECT_EQ(broker.Stop(), 0);
  std::istringstream lines(broker.Output());
  std::string line;
  int parsed = 0;
  while (std::getline(lines, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << line;
    EXPECT_TRUE(j["time"].is_string());
    // RFC 3339 with microseconds, UTC: 2026-11-27T15:54:59.123456Z
    EXPECT_EQ(j["time"].get<std::string>().size(), 27u) << line;
    EXPECT_TRUE(j["level"].is_string());
    EXPECT_TRUE(j["msg"].is_string());
    ++parsed;
  }
  EXPECT_GE(parsed, 2);  // started, stopping, stopped
}

// SIGTERM tells every worker DISCONNECT, so it reconnects to whoever
// replaces this broker, then exits 0.
TEST(Lifecycle, SigtermSendsDisconnectToWorkers) {
  const int client_port = FreeTcpPort();
  const int worker_port = FreeTcpPort();
  BrokerProcess broker;
  ASSERT_TRUE(broker.Start({.config_yaml = LocalConfig(client_port, worker_port)}));
  zmq::context_t ctx;
  RawPeer worker(ctx, TcpEndpoint(worker_port));
  worker.Send({"MDPW02", Byte(0x01), "leaving"});
  {
    // Registered before the signal: mmi.service answers 200 for it.
    RawPeer client(ctx, TcpEndpoint(client_port));
    ASSERT_TRUE(WaitUntilRegistered(client, "leaving")) << broker.Output();
  }
  broker.Signal(SIGTERM);
  bool disconnected = false;
  while (auto f = worker.Recv(3s)) {
    if (*f == Frames{"MDPW02", Byte(0x06)}) {
      disconnected = true;
      break;
    }
  }
  EXPECT_TRUE(disconnected);
  EXPECT_EQ(broker.WaitExit(5s), std::optional<int>(0));
}


long Millis(Clock::duration d) {
  return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

// An echo worker on its own thread that answers after `delay` (or never,
// when `answer` is false), heartbeating all along, and records whether the
// broker sent it DISCONNECT.
class SlowWorker {
 public:
  SlowWorker(zmq::context_t& ctx, const std::string& endpoint, std::chrono::milliseconds delay,
             bool answer = true)
      : peer_(ctx, endpoint) {
    peer_.Send({"MDPW02", Byte(0x01), "slow"});
    thread_ = std::thread([this, delay, answer] {
      while (!stop_.load()) {
        auto f = peer_.Recv(20ms);
        if (!f) continue;
        if (*f == Frames{"MDPW02", Byte(0x06)}) {
          disconnected_.store(true);
          continue;
        }
        if (IsHeartbeat(*f)) {
          peer_.Send({"MDPW02", Byte(0x05)});
          continue;
        }
        if (f->size() >= 4 && (*f)[1] == Byte(0x02)) {
          received_.store(true);
          if (!answer) continue;
          std::this_thread::sleep_for(delay);
          peer_.Send({"MDPW02", Byte(0x04), (*f)[2], "", "answered"});
        }
      }
    });
  }
  ~SlowWorker() {
    stop_.store(true);
    thread_.join();
  }
  bool received() const { return received_.load(); }
  bool disconnected() const { return disconnected_.load(); }

 private:
  RawPeer peer_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> received_{false};
  std::atomic<bool> disconnected_{false};
  std::thread thread_;
};

// With idle peers of every kind connected (a worker, a client, a bus
// publisher and subscriber, an HTTP keep-alive connection), SIGTERM exits
// within a second.
TEST(Lifecycle, SigtermWithIdlePeersConnectedExitsWithinOneSecond) {
  const int client_port = FreeTcpPort();
  const int worker_port = FreeTcpPort();
  const int http_port = FreeTcpPort();
  const int backend = FreeTcpPort();
  const int frontend = FreeTcpPort();
  BrokerProcess broker;
  ASSERT_TRUE(broker.Start(
      {.config_yaml = "endpoint: " + TcpEndpoint(client_port) + "\nclient_endpoint: " +
                      TcpEndpoint(worker_port) + "\nhealth:\n  bind: 127.0.0.1\n  port: " +
                      std::to_string(http_port) + "\nbuses:\n  - name: data\n    backend: " +
                      TcpEndpoint(backend) + "\n    frontend: " + TcpEndpoint(frontend) + "\n"}))
      << broker.Output();
  zmq::context_t ctx;
  RawPeer worker(ctx, TcpEndpoint(worker_port));
  worker.Send({"MDPW02", Byte(0x01), "idle"});
  RawPeer client(ctx, TcpEndpoint(client_port));
  ASSERT_TRUE(WaitUntilRegistered(client, "idle")) << broker.Output();
  zmq::socket_t pub(ctx, zmq::socket_type::pub);
  pub.set(zmq::sockopt::linger, 0);
  pub.connect(TcpEndpoint(backend));
  zmq::socket_t sub(ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::linger, 0);
  sub.set(zmq::sockopt::subscribe, "");
  sub.connect(TcpEndpoint(frontend));
  httplib::Client http("127.0.0.1", http_port);
  http.set_keep_alive(true);
  auto live = http.Get("/livez");
  ASSERT_TRUE(live);
  ASSERT_EQ(live->status, 200);
  // Every connection settled: the bus counts its publisher and subscriber
  // (asked on the keep-alive connection, which stays open and idle).
  auto bus_peers_counted = [&] {
    auto res = http.Get("/metrics");
    if (!res || res->status != 200) return false;
    for (const char* kind : {"publishers", "subscribers"}) {
      const std::string sample = std::string("\nplantd_broker_bus_") + kind + "{bus=\"data\"} 1\n";
      if (res->body.find(sample) == std::string::npos) return false;
    }
    return true;
  };
  ASSERT_TRUE(WaitFor(bus_peers_counted, 5s))
      << "the bus never counted its publisher and subscriber\n"
      << broker.Output();

  const auto start = Clock::now();
  broker.Signal(SIGTERM);
  auto status = broker.WaitExit(10s);
  const auto took = Clock::now() - start;
  ASSERT_TRUE(status.has_value()) << broker.Output();
  EXPECT_EQ(*status, 0) << broker.Output();
  EXPECT_LT(took, 1s) << "SIGTERM to exit: " << Millis(took) << " ms\n" << broker.Output();
  std::printf("SIGTERM to exit with idle peers: %ld ms\n", Millis(took));
}

// SIGTERM while a worker holds a request: the reply still reaches the
// client; a new request and a queued one are refused with 503
// shutting_down; the worker gets DISCONNECT; the broker exits as soon as
// nothing is in flight.
TEST(Lifecycle, SigtermFinishesRequestsInFlightWithinTheGrace) {
  const int client_port = FreeTcpPort();
  const int worker_port = FreeTcpPort();
  BrokerProcess broker;
  ASSERT_TRUE(broker.Start({.config_yaml = LocalConfig(client_port, worker_port)}));
  zmq::context_t ctx;
  SlowWorker worker(ctx, TcpEndpoint(worker_port), 600ms);
  RawPeer client(ctx, TcpEndpoint(client_port));
  ASSERT_TRUE(WaitUntilRegistered(client, "slow")) << broker.Output();
  client.Send({"MDPC02", Byte(0x01), "slow", "job"});
  ASSERT_TRUE(WaitFor([&] { return worker.received(); }, 5s));
  RawPeer queued(ctx, TcpEndpoint(client_port));
  queued.Send({"MDPC02", Byte(0x01), "nobody.serves.this", "job"});
  // Queued before the signal: mmi.broker counts it. (Asked on a socket of
  // its own: `client` waits for the slow job's reply.)
  RawPeer observer(ctx, TcpEndpoint(client_port));
  ASSERT_TRUE(WaitFor(
      [&] {
        observer.Send({"MDPC02", Byte(0x01), "mmi.broker"});
        auto f = observer.Recv(2s);
        if (!f) return false;
        auto j = nlohmann::json::parse(f->back(), nullptr, false);
        return j.is_object() && j.value("queued", 0) >= 1;
      },
      5s));

  const auto start = Clock::now();
  broker.Signal(SIGTERM);
  auto dropped = queued.Recv(2s);
  ASSERT_TRUE(dropped.has_value()) << broker.Output();
  EXPECT_EQ(*dropped, (Frames{"MDPC02", Byte(0x03), "nobody.serves.this", "503",
                              "shutting_down"}));
  RawPeer late(ctx, TcpEndpoint(client_port));
  late.Send({"MDPC02", Byte(0x01), "slow", "too late"});
  auto refused = late.Recv(2s);
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(*refused, (Frames{"MDPC02", Byte(0x03), "slow", "503", "shutting_down"}));

  auto reply = client.Recv(5s);
  ASSERT_TRUE(reply.has_value()) << broker.Output();
  EXPECT_EQ(*reply, (Frames{"MDPC02", Byte(0x03), "slow", "answered"}));
  auto status = broker.WaitExit(5s);
  const auto took = Clock::now() - start;
  ASSERT_TRUE(status.has_value()) << broker.Output();
  EXPECT_EQ(*status, 0);
  EXPECT_TRUE(WaitFor([&] { return worker.disconnected(); }, 1s));
  // The worker answered 600 ms after it got the job, before the signal:
  // the broker left soon after the reply, not at the end of the grace.
  EXPECT_LT(took, 1500ms) << Millis(took) << " ms\n" << broker.Output();
  std::printf("SIGTERM to exit with a reply in flight: %ld ms\n", Millis(took));
}

// A worker that never answers: the broker waits out shutdown_grace (5 s by
// default), then tells the client and exits.
TEST(Lifecycle, SigtermGivesUpOnUnansweredRequestsAfterTheGrace) {
  const int client_port = FreeTcpPort();
  const int worker_port = FreeTcpPort();
  BrokerProcess broker;
  ASSERT_TRUE(broker.Start({.config_yaml = LocalConfig(client_port, worker_port)}));
  zmq::context_t ctx;
  SlowWorker worker(ctx, TcpEndpoint(worker_port), 0ms, /*answer=*/false);
  RawPeer client(ctx, TcpEndpoint(client_port));
  ASSERT_TRUE(WaitUntilRegistered(client, "slow")) << broker.Output();
  client.Send({"MDPC02", Byte(0x01), "slow", "job"});
  ASSERT_TRUE(WaitFor([&] { return worker.received(); }, 5s));

  const auto start = Clock::now();
  broker.Signal(SIGTERM);
  auto reply = client.Recv(8s);
  ASSERT_TRUE(reply.has_value()) << broker.Output();
  EXPECT_EQ(*reply, (Frames{"MDPC02", Byte(0x03), "slow", "503", "shutting_down"}));
  auto status = broker.WaitExit(3s);
  const auto took = Clock::now() - start;
  ASSERT_TRUE(status.has_value()) << broker.Output();
  EXPECT_EQ(*status, 0);
  EXPECT_GE(took, 4500ms);
  EXPECT_LT(took, 6500ms) << Millis(took) << " ms";
  EXPECT_TRUE(WaitFor([&] { return worker.disconnected(); }, 1s));
  EXPECT_NE(broker.Output().find("shutdown grace over"), std::string::npos) << broker.Output();
}

}  // namespace
}  // namespace plantd::test

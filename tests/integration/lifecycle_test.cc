// The plantd-broker process as an operator meets it: flags, exit codes,
// signals, start-up errors.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "support.h"

namespace plantd::test {
namespace {

using namespace std::chrono_literals;

// Loopback endpoints on free ports, no buses, no HTTP: what most tests want.
std::string LocalConfig(int client_port, int worker_port, const std::string& extra = "") {
  return "endpoint: " + TcpEndpoint(client_port) + "\nclient_endpoint: " +
         TcpEndpoint(worker_port) + "\nbuses: []\nhealth:\n  port: 0\n" + extra;
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
    // At info level a worker's READY is not logged.
    RawPeer w(ctx, TcpEndpoint(worker));
    w.Send({"MDPW02", Byte(0x01), "echo.before"});
    std::this_thread::sleep_for(200ms);
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

}  // namespace
}  // namespace plantd::test

namespace plantd::test {
namespace {

// SIGTERM tells every worker DISCONNECT, so it reconnects to whoever
// replaces this broker, then exits 0.
TEST(Lifecycle, SigtermSendsDisconnectToWorkers) {
  const int worker_port = FreeTcpPort();
  BrokerProcess broker;
  ASSERT_TRUE(broker.Start({.config_yaml = LocalConfig(FreeTcpPort(), worker_port)}));
  zmq::context_t ctx;
  RawPeer worker(ctx, TcpEndpoint(worker_port));
  worker.Send({"MDPW02", Byte(0x01), "leaving"});
  std::this_thread::sleep_for(200ms);
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

}  // namespace
}  // namespace plantd::test

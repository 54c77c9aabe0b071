// The JSON log stays valid JSON whatever peers send: service names are
// copied from the wire, and a log shipper drops a line that is not valid
// UTF-8 JSON.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>

#include "mdp_peers.h"
#include "support.h"

namespace plantd::test {
namespace {

using namespace std::chrono_literals;

TEST(LogFormatTest, JsonLinesStayValidWithRandomByteServiceNames) {
  const int client_port = FreeTcpPort();
  const int worker_port = FreeTcpPort();
  const std::string yaml = "endpoint: " + TcpEndpoint(client_port) +
                           "\nclient_endpoint: " + TcpEndpoint(worker_port) +
                           "\nbuses: []\nhealth:\n  port: 0\n"
                           "log:\n  level: trace\n  format: json\n"
                           "request_expiry: 200ms\n";
  BrokerProcess broker;
  ASSERT_TRUE(broker.Start({.config_yaml = yaml})) << broker.Output();

  zmq::context_t ctx;
  std::mt19937 rng(20261201);
  std::uniform_int_distribution<int> byte(1, 255);
  std::vector<std::unique_ptr<TestWorker>> workers;
  TestClient client(ctx, TcpEndpoint(client_port), Dialect::kMdp02);
  for (int i = 0; i < 20; ++i) {
    std::string name(12, '\0');
    for (char& c : name) c = static_cast<char>(byte(rng));
    // A worker registers the name (logged), a client asks for it and for a
    // name nobody serves (expires: logged).
    workers.push_back(std::make_unique<TestWorker>(ctx, TcpEndpoint(worker_port), Dialect::kMdp02));
    workers.back()->Ready(name);
    std::string other = name;
    other[0] = static_cast<char>(other[0] ^ 0x55);
    client.Request(other, {"x"});
  }
  // Let the unserved requests expire and the worker READYs be logged.
  ASSERT_TRUE(broker.WaitForOutput("expired", 5s)) << broker.Output();
  workers.clear();  // disconnects are logged too
  ASSERT_EQ(broker.Stop(), 0);

  std::istringstream lines(broker.Output());
  std::string line;
  int parsed = 0;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    nlohmann::json j;
    ASSERT_NO_THROW(j = nlohmann::json::parse(line)) << line;
    EXPECT_TRUE(j.contains("msg")) << line;
    ++parsed;
  }
  EXPECT_GT(parsed, 20);
}

}  // namespace
}  // namespace plantd::test

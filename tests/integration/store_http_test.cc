// The durable store as an operator sees it over HTTP: its check in
// /healthz, its series in /metrics and its object in /status.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "http/health_check.h"
#include "http_client.h"
#include "mdp_peers.h"
#include "support.h"

namespace plantd::test {
namespace {

using namespace std::chrono_literals;

TEST(StoreHttpTest, HealthMetricsAndStatusShowTheStore) {
  TempDir dir;
  const int client_port = FreeTcpPort();
  const int http_port = FreeTcpPort();
  const std::string yaml = "endpoint: " + TcpEndpoint(client_port) +
                           "\nclient_endpoint: " + TcpEndpoint(FreeTcpPort()) +
                           "\nbuses: []\nhealth:\n  bind: 127.0.0.1\n  port: " +
                           std::to_string(http_port) + "\nstore:\n  path: " + dir.path() +
                           "/store.db\n";
  BrokerProcess broker;
  ASSERT_TRUE(broker.Start({.config_yaml = yaml})) << broker.Output();

  // One durable request, acknowledged, so the counts move.
  zmq::context_t ctx;
  TestClient client(ctx, TcpEndpoint(client_port), Dialect::kMdp02);
  client.Request("titanic.request", {"later", "body"});
  auto ack = client.Receive(5s);
  ASSERT_TRUE(ack.has_value());
  ASSERT_EQ(ack->body.at(0), "200");

  auto health = HttpGet(http_port, "/healthz");
  ASSERT_TRUE(health.has_value());
  auto h = nlohmann::json::parse(health->body);
  ASSERT_TRUE(h["checks"].contains("store")) << health->body;

  EXPECT_GE(MetricValue(http_port, "plantd_store_healthy"), 1.0);
  auto metrics = HttpGet(http_port, "/metrics");
  ASSERT_TRUE(metrics.has_value());
  EXPECT_NE(metrics->body.find("plantd_store_requests{"), std::string::npos);

  auto status = HttpGet(http_port, "/status");
  ASSERT_TRUE(status.has_value());
  auto s = nlohmann::json::parse(status->body);
  ASSERT_TRUE(s.contains("store")) << status->body;
  // The figures issue #14 lists: stored requests by state, bytes, commit
  // batch size and latency histograms, errors by reason; and where it is.
  const auto& st = s["store"];
  EXPECT_EQ(st["path"], dir.path() + "/store.db");
  EXPECT_EQ(st["healthy"], true);
  EXPECT_EQ(st["requests"]["pending"], 1) << st.dump();
  for (const char* state : {"dispatched", "replied", "failed"}) {
    EXPECT_EQ(st["requests"][state], 0) << state;
  }
  EXPECT_GT(st["bytes"].get<uint64_t>(), 4u);
  EXPECT_GE(st["commits"].get<uint64_t>(), 1u);
  EXPECT_GE(st["commit_batch_size"]["count"].get<uint64_t>(), 1u) << st.dump();
  EXPECT_GE(st["commit_batch_size"]["mean"].get<double>(), 1.0);
  EXPECT_TRUE(st["commit_batch_size"]["buckets"].contains("+Inf"));
  EXPECT_GE(st["commit_seconds"]["count"].get<uint64_t>(), 1u);
  EXPECT_GT(st["commit_seconds"]["mean"].get<double>(), 0.0);
  EXPECT_EQ(st["errors"]["disk_full"], 0);
  EXPECT_EQ(st["errors"]["busy"], 0);
  EXPECT_EQ(broker.Stop(), 0);
}

// A store that cannot write turns /healthz to warn (never fail: routing that
// is not durable carries on), naming what failed.
TEST(StoreHttpTest, AStoreThatCannotWriteIsAWarningWithItsMessage) {
  http::HealthReport report;
  http::AddStoreCheck({.ok = true}, &report);
  EXPECT_EQ(report.status, http::HealthStatus::kPass);
  http::AddStoreCheck({.ok = false, .message = "disk full: /var/lib/x.db"}, &report);
  EXPECT_EQ(report.status, http::HealthStatus::kWarn);
  ASSERT_EQ(report.checks.size(), 2u);
  EXPECT_EQ(report.checks[1].name, "store");
  EXPECT_EQ(report.checks[1].output, "disk full: /var/lib/x.db");
}

}  // namespace
}  // namespace plantd::test

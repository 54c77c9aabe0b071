// /metrics from hand-made snapshots: the size bound with 100k services, the
// folding into service="_other", and exact numbers.
#include "http/metrics.h"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <regex>
#include <sstream>
#include <string>

#include "common/refusal.h"

namespace plantd::http {
namespace {

using namespace std::chrono_literals;

broker::ServiceSnapshot Service(const std::string& name, size_t workers, uint64_t requests) {
  broker::ServiceSnapshot s;
  s.name = name;
  s.workers = workers;
  s.idle_workers = workers;
  s.queued = requests % 3;
  s.counters.requests = requests;
  s.counters.replies = requests;
  for (uint64_t i = 0; i < requests % 5; ++i)
    s.counters.latency.Record(std::chrono::microseconds(300 * (i + 1)));
  return s;
}

// A snapshot like the one issue 12 measured: a few real services and a flood
// of names that clients made up.
broker::BrokerSnapshot Flooded(size_t made_up, const std::string& prefix = "org.flood.") {
  broker::BrokerSnapshot snap;
  snap.uptime_seconds = 12.5;
  for (int i = 0; i < 20; ++i)
    snap.services.push_back(Service("org.plantd.Real" + std::to_string(i), 2, 1));
  for (size_t i = 0; i < made_up; ++i) {
    snap.services.push_back(Service(prefix + std::to_string(i), 0, 1 + i % 7));
  }
  return snap;
}

// sample name and labels -> value, for one family.
std::map<std::string, std::string> Samples(const std::string& text, const std::string& family) {
  std::map<std::string, std::string> out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(family + "{", 0) != 0 && line.rfind(family + " ", 0) != 0) continue;
    const size_t space = line.rfind(' ');
    out[line.substr(0, space)] = line.substr(space + 1);
  }
  return out;
}

uint64_t Sum(const std::map<std::string, std::string>& samples) {
  uint64_t total = 0;
  for (const auto& [name, value] : samples) total += std::stoull(value);
  return total;
}

TEST(Metrics, HundredThousandServicesStayUnderAMegabyte) {
  const broker::BrokerSnapshot snap = Flooded(100'000);
  const MetricsOptions options;  // the defaults
  const auto start = std::chrono::steady_clock::now();
  const std::string text = RenderMetrics(snap, {}, {}, options);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LE(text.size(), options.max_bytes);
  const auto requests = Samples(text, "plantd_broker_requests_total");
  EXPECT_LE(requests.size(), options.max_service_labels + 1);
  EXPECT_TRUE(requests.count("plantd_broker_requests_total{service=\"_other\"}"));
  // Nothing is lost: the sum over labels is the sum over services.
  uint64_t expected = 0;
  for (const auto& s : snap.services) expected += s.counters.requests;
  EXPECT_EQ(Sum(requests), expected);
  // Services with workers keep their label, whatever their traffic.
  for (int i = 0; i < 20; ++i) {
    EXPECT_TRUE(requests.count("plantd_broker_requests_total{service=\"org.plantd.Real" +
                               std::to_string(i) + "\"}"));
  }
  std::printf("100,000 services: %zu bytes, %zu service labels, rendered in %.1f ms\n", text.size(),
              requests.size(), std::chrono::duration<double, std::milli>(took).count());
}

// Service names are the client's choice: long ones must not blow the bound.
TEST(Metrics, LongServiceNamesStayUnderTheByteBound) {
  const broker::BrokerSnapshot snap = Flooded(100'000, std::string(200, 'x'));
  const MetricsOptions options;
  const std::string text = RenderMetrics(snap, {}, {}, options);
  EXPECT_LE(text.size(), options.max_bytes);
  EXPECT_NE(text.find("service=\"_other\""), std::string::npos);
}

TEST(Metrics, FoldedHistogramsAreSummedBucketByBucket) {
  broker::BrokerSnapshot snap;
  auto a = Service("a", 1, 0);
  auto b = Service("b", 0, 0);
  auto c = Service("c", 0, 0);
  b.counters.latency.Record(200us);  // le 0.00025
  b.counters.latency.Record(2ms);    // le 0.0025
  c.counters.latency.Record(200us);
  c.counters.latency.Record(10s);  // +Inf
  b.counters.requests = 2;
  c.counters.requests = 1;
  snap.services = {a, b, c};
  MetricsOptions options;
  options.max_service_labels = 1;
  const std::string text = RenderMetrics(snap, {}, {}, options);
  const auto buckets = Samples(text, "plantd_broker_request_duration_seconds_bucket");
  const std::string other = "plantd_broker_request_duration_seconds_bucket{service=\"_other\",le=";
  EXPECT_EQ(buckets.at(other + "\"0.0001\"}"), "0");
  EXPECT_EQ(buckets.at(other + "\"0.00025\"}"), "2");
  EXPECT_EQ(buckets.at(other + "\"0.0025\"}"), "3");
  EXPECT_EQ(buckets.at(other + "\"5\"}"), "3");
  EXPECT_EQ(buckets.at(other + "\"+Inf\"}"), "4");
  EXPECT_EQ(Samples(text, "plantd_broker_request_duration_seconds_count")
                .at("plantd_broker_request_duration_seconds_count{service=\"_other\"}"),
            "4");
  // The one with a worker keeps its label although it had no traffic.
  EXPECT_NE(text.find("plantd_broker_requests_total{service=\"a\"} 0"), std::string::npos);
  EXPECT_EQ(text.find("service=\"b\""), std::string::npos);
}

TEST(Metrics, ChoiceOfLabelsIsDeterministic) {
  std::vector<broker::ServiceSnapshot> services = {
      Service("idle.with.worker", 1, 0), Service("busy", 0, 90), Service("quiet", 0, 1),
      Service("also.busy", 0, 90), Service("_other", 0, 1000)};
  EXPECT_EQ(ServicesWithOwnLabels(services, 3, 1 << 20),
            (std::vector<bool>{true, true, false, true, false}))
      << "workers first, then traffic, then name; a service called _other joins the fold";
  EXPECT_EQ(ServicesWithOwnLabels(services, 10, 1 << 20),
            (std::vector<bool>{true, true, true, true, false}));
  EXPECT_EQ(ServicesWithOwnLabels(services, 0, 1 << 20), std::vector<bool>(5, false));
}

TEST(Metrics, NoFoldingBelowTheCap) {
  const broker::BrokerSnapshot snap = Flooded(10);
  const std::string text = RenderMetrics(snap, {}, {}, MetricsOptions{});
  EXPECT_EQ(text.find("_other"), std::string::npos);
  EXPECT_EQ(Samples(text, "plantd_broker_requests_total").size(), 30u);
}

TEST(Metrics, NumbersAreExact) {
  broker::BrokerSnapshot snap;
  snap.uptime_seconds = 0.1 + 0.2;
  auto s = Service("exact", 1, 0);
  s.counters.requests = 1234567;
  s.counters.replies = 18446744073709551615u;
  snap.services = {s};
  snap.counters.messages_in = 9007199254740993u;  // not a double
  ProcessStats process;
  process.resident_bytes = 123456789012;
  process.cpu_seconds = 1.0 / 3;
  const std::string text = RenderMetrics(snap, {}, process, MetricsOptions{});
  EXPECT_NE(text.find("plantd_broker_requests_total{service=\"exact\"} 1234567\n"),
            std::string::npos);
  EXPECT_NE(text.find("plantd_broker_replies_total{service=\"exact\"} 18446744073709551615\n"),
            std::string::npos);
  EXPECT_NE(text.find("plantd_broker_messages_total{direction=\"in\"} 9007199254740993\n"),
            std::string::npos);
  EXPECT_NE(text.find("process_resident_memory_bytes 123456789012\n"), std::string::npos);
  EXPECT_NE(text.find("plantd_broker_uptime_seconds 0.30000000000000004\n"), std::string::npos);
  EXPECT_NE(text.find("process_cpu_seconds_total 0.3333333333333333\n"), std::string::npos);
  EXPECT_EQ(text.find("e+"), std::string::npos) << "no exponent for these values";
}

TEST(Metrics, EveryRefusalReasonIsExportedAndMoves) {
  const broker::BrokerSnapshot snap;
  const uint64_t before = refusal::Total(refusal::Reason::kHttpTimeout);
  refusal::Count(refusal::Reason::kHttpTimeout, 3);
  const std::string text = RenderMetrics(snap, {}, {}, MetricsOptions{});
  const auto refused = Samples(text, "plantd_refused_total");
  EXPECT_EQ(refused.size(), refusal::kReasonCount);
  for (size_t i = 0; i < refusal::kReasonCount; ++i) {
    const auto reason = static_cast<refusal::Reason>(i);
    EXPECT_TRUE(refused.count(std::string("plantd_refused_total{reason=\"") +
                              refusal::ReasonName(reason) + "\"}"))
        << refusal::ReasonName(reason);
  }
  EXPECT_EQ(refused.at("plantd_refused_total{reason=\"http_timeout\"}"),
            std::to_string(before + 3));
}

// Two names that differ only in bytes a label cannot show stay two series.
TEST(Metrics, LabelEscapingKeepsNamesApart) {
  broker::BrokerSnapshot snap;
  snap.services = {Service(std::string("a\x01", 2), 1, 0), Service(std::string("a\x02", 2), 1, 0),
                   Service("a%01", 1, 0), Service("q\"uote\\", 1, 0)};
  const std::string text = RenderMetrics(snap, {}, {}, MetricsOptions{});
  const auto queued = Samples(text, "plantd_broker_queued_requests");
  EXPECT_EQ(queued.size(), 4u);
  EXPECT_TRUE(queued.count("plantd_broker_queued_requests{service=\"a%01\"}"));
  EXPECT_TRUE(queued.count("plantd_broker_queued_requests{service=\"a%02\"}"));
  EXPECT_TRUE(queued.count("plantd_broker_queued_requests{service=\"a%2501\"}"));
  EXPECT_TRUE(queued.count("plantd_broker_queued_requests{service=\"q\\\"uote\\\\\"}"));
}

}  // namespace
}  // namespace plantd::http

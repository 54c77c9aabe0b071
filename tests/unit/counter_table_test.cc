// The per-service and per-bus counter tables are the one declaration of each
// counter's name and meaning (issue #13): they must be consistent in
// themselves, and the metric reference in docs/operations.md must say what
// they say.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "broker/service_counters.h"
#include "bus/bus_counters.h"

namespace plantd {
namespace {

// The docs' metric reference, one table row per line, with the Markdown
// code quotes taken out.
std::vector<std::string> DocRows() {
  std::ifstream in(std::string(PLANTD_SOURCE_DIR) + "/docs/operations.md");
  std::vector<std::string> rows;
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("| `plantd_", 0) != 0) continue;
    line.erase(std::remove(line.begin(), line.end(), '`'), line.end());
    rows.push_back(line);
  }
  return rows;
}

const std::string* RowFor(const std::vector<std::string>& rows, std::string_view metric) {
  const std::string start = "| " + std::string(metric) + " |";
  for (const std::string& row : rows) {
    if (row.rfind(start, 0) == 0) return &row;
  }
  return nullptr;
}

bool EndsWith(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

TEST(CounterTableTest, ServiceCountersHaveUniqueNamesAndTheDocsSayWhatTheTableSays) {
  const auto rows = DocRows();
  ASSERT_FALSE(rows.empty()) << "no metric rows found in docs/operations.md";
  std::set<std::string_view> keys, metrics;
  for (const broker::ServiceCounterSpec& spec : broker::kServiceCounterSpecs) {
    EXPECT_TRUE(keys.insert(spec.key).second) << spec.key;
    EXPECT_TRUE(metrics.insert(spec.metric).second) << spec.metric;
    // /status says "requests" for plantd_broker_requests_total.
    EXPECT_EQ("plantd_broker_" + std::string(spec.key) + "_total", spec.metric);
    EXPECT_FALSE(spec.meaning.empty()) << spec.key;
    const std::string* row = RowFor(rows, spec.metric);
    ASSERT_NE(row, nullptr) << spec.metric << " is not in docs/operations.md";
    EXPECT_EQ(*row, "| " + std::string(spec.metric) + " | counter | service | " +
                        std::string(spec.meaning) + " |");
  }
}

TEST(CounterTableTest, AddCountsAddsEveryCounterOfTheTable) {
  broker::ServiceCounters a, b;
  uint64_t v = 1;
  for (const broker::ServiceCounterSpec& spec : broker::kServiceCounterSpecs) {
    a.*spec.field = v;
    b.*spec.field = 100 * v;
    ++v;
  }
  a.AddCounts(b);
  v = 1;
  for (const broker::ServiceCounterSpec& spec : broker::kServiceCounterSpecs) {
    EXPECT_EQ(a.*spec.field, 101 * v) << spec.key;
    ++v;
  }
}

TEST(CounterTableTest, BusCountersHaveUniqueKeysFamiliesTogetherAndTheDocsAgree) {
  const auto rows = DocRows();
  std::set<std::string_view> keys, families;
  for (size_t i = 0; i < bus::kBusCounterSpecs.size(); ++i) {
    const bus::BusCounterSpec& spec = bus::kBusCounterSpecs[i];
    EXPECT_TRUE(keys.insert(spec.key).second) << spec.key;
    const bool first_of_family = i == 0 || bus::kBusCounterSpecs[i - 1].metric != spec.metric;
    if (!first_of_family) {
      EXPECT_EQ(spec.type, bus::kBusCounterSpecs[i - 1].type) << spec.key;
      continue;
    }
    // A family's values are listed together: /metrics writes one header each.
    EXPECT_TRUE(families.insert(spec.metric).second) << spec.metric << " is split";
    EXPECT_FALSE(spec.meaning.empty()) << spec.key;
    const std::string* row = RowFor(rows, spec.metric);
    ASSERT_NE(row, nullptr) << spec.metric << " is not in docs/operations.md";
    const std::string type = spec.type == bus::MetricType::kGauge ? "gauge" : "counter";
    EXPECT_EQ(row->rfind("| " + std::string(spec.metric) + " | " + type + " | bus", 0), 0u)
        << *row;
    EXPECT_TRUE(EndsWith(*row, "| " + std::string(spec.meaning) + " |")) << *row;
  }
}

TEST(CounterTableTest, BusCountersReadTheirOwnField) {
  bus::BusCounters c;
  c.messages_in = 1;
  c.messages_out = 2;
  c.subscribers = -3;  // a gauge below zero reads as 0, never as a huge number
  c.blocked_ns = 4;
  for (const bus::BusCounterSpec& spec : bus::kBusCounterSpecs) {
    const uint64_t v = spec.read(c);
    if (spec.key == "messages_in") EXPECT_EQ(v, 1u);
    else if (spec.key == "messages_out") EXPECT_EQ(v, 2u);
    else if (spec.key == "blocked_seconds") EXPECT_EQ(v, 4u);
    else EXPECT_EQ(v, 0u) << spec.key;
  }
}

}  // namespace
}  // namespace plantd

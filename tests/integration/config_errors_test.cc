// The plantd-broker binary refuses a bad configuration before it binds
// anything (exit 2, the key, FILE:LINE and what is valid), and its key
// documentation cannot drift from the key table: docs/configuration.md and
// README.md carry the tables --print-keys generates.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "support.h"

namespace plantd::test {
namespace {

std::string LocalConfig(const std::string& extra) {
  return "endpoint: " + TcpEndpoint(FreeTcpPort()) +
         "\nclient_endpoint: " + TcpEndpoint(FreeTcpPort()) + "\nbuses: []\nhealth:\n  port: 0\n" +
         extra;
}

// Runs the broker on `yaml` (extra keys from line 6 on) and expects exit 2
// with `message` in its output and nothing started.
void ExpectRefused(const std::string& extra, const std::string& message) {
  TempDir dir;
  const std::string path = dir.Write("broker.yaml", LocalConfig(extra));
  RunResult r = RunBroker({"--config", path});
  EXPECT_EQ(r.status, 2) << r.output;
  std::string expected = message;
  for (size_t at = expected.find("FILE"); at != std::string::npos;
       at = expected.find("FILE", at + path.size())) {
    expected.replace(at, 4, path);
  }
  EXPECT_NE(r.output.find(expected), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("broker started"), std::string::npos) << r.output;
}

TEST(ConfigErrors, MapWhereNumberExpectedExitsTwoWithFileLine) {
  ExpectRefused("max_message_size: {}\n",
                "config error: max_message_size: (from FILE:6): expected a size from 64B to "
                "4GiB, such as 1048576, 512KiB or 16MiB, got a mapping");
}

TEST(ConfigErrors, DuplicateKeyExitsTwo) {
  ExpectRefused("socket_hwm: 10\nsocket_hwm: 20\n",
                "config error: socket_hwm: (from FILE:7): duplicate key; first given at line 6");
}

TEST(ConfigErrors, SocketHwmZeroExitsTwo) {
  ExpectRefused("socket_hwm: 0\n",
                "config error: socket_hwm: \"0\" (from FILE:6): expected an integer from 1 to "
                "100000000");
}

TEST(ConfigErrors, CrossFieldRuleExitsTwo) {
  ExpectRefused("limits:\n  max_connections: 10\n  max_connections_per_address: 11\n",
                "config error: limits.max_connections_per_address: \"11\" (from FILE:8): must "
                "not exceed limits.max_connections (10, from FILE:7)");
}

TEST(ConfigErrors, LongValueIsNotEchoedInFull) {
  const std::string big(512u << 10, 'x');
  TempDir dir;
  const std::string path = dir.Write("broker.yaml", LocalConfig("log:\n  level: " + big + "\n"));
  RunResult r = RunBroker({"--config", path});
  EXPECT_EQ(r.status, 2);
  EXPECT_LT(r.output.size(), 1000u) << r.output.substr(0, 1000);
  EXPECT_NE(r.output.find("log.level: \"" + std::string(77, 'x') +
                          "\u2026\" (524288 bytes) "
                          "(from " +
                          path + ":7)"),
            std::string::npos)
      << r.output.substr(0, 1000);
}

TEST(ConfigErrors, HugeFileRefusedUnread) {
  TempDir dir;
  const std::string path =
      dir.Write("broker.yaml", LocalConfig("log:\n  level: " + std::string(20u << 20, 'x')));
  const auto start = std::chrono::steady_clock::now();
  RunResult r = RunBroker({"--config", path});
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(r.status, 2);
  EXPECT_LT(r.output.size(), 1000u) << r.output.substr(0, 1000);
  EXPECT_NE(r.output.find("larger than 1MiB"), std::string::npos) << r.output.substr(0, 1000);
}

TEST(ConfigErrors, OutOfRangeVariableExitsTwo) {
  RunResult r =
      RunBroker({"--check-config"}, {{"PLANTD_BROKER_MAX_MESSAGE_SIZE", "9223372036854775808"}});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("max_message_size: \"9223372036854775808\" (from env "
                          "PLANTD_BROKER_MAX_MESSAGE_SIZE): expected a size from 64B to 4GiB"),
            std::string::npos)
      << r.output;
}

// --- The docs are generated from the key table.

std::string ReadSource(const std::string& relative) {
  std::ifstream in(std::string(PLANTD_SOURCE_DIR) + "/" + relative);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The text between "<!-- BEGIN name -->\n" and "<!-- END name -->".
std::string Between(const std::string& text, const std::string& name) {
  const std::string begin = "<!-- BEGIN " + name + " -->\n";
  const size_t from = text.find(begin);
  const size_t to = text.find("<!-- END " + name + " -->");
  if (from == std::string::npos || to == std::string::npos || to < from) return "(markers missing)";
  return text.substr(from + begin.size(), to - from - begin.size());
}

TEST(ConfigErrors, EveryKeyDocumented) {
  RunResult markdown = RunBroker({"--print-keys", "markdown"});
  ASSERT_EQ(markdown.status, 0) << markdown.output;
  RunResult summary = RunBroker({"--print-keys", "summary"});
  ASSERT_EQ(summary.status, 0) << summary.output;
  EXPECT_NE(markdown.output.find("| `limits.max_buffered_bytes` |"), std::string::npos);
  EXPECT_NE(summary.output.find("| `buses[].max_subscriptions` |"), std::string::npos);

  const std::string hint =
      "\nregenerate: build/plantd-broker --print-keys markdown (docs/configuration.md) and "
      "--print-keys summary (README.md), between the generated-keys markers";
  EXPECT_EQ(Between(ReadSource("docs/configuration.md"), "generated-keys"), markdown.output)
      << hint;
  EXPECT_EQ(Between(ReadSource("README.md"), "generated-keys"), summary.output) << hint;

  EXPECT_EQ(RunBroker({"--print-keys", "html"}).status, 2);
}

TEST(ConfigErrors, HelpListsAFlagForEveryScalarKey) {
  RunResult help = RunBroker({"--help"});
  ASSERT_EQ(help.status, 0);
  RunResult summary = RunBroker({"--print-keys", "summary"});
  std::istringstream rows(summary.output);
  std::string row;
  int flags = 0;
  while (std::getline(rows, row)) {
    // | `limits.max_connections` | `20000` | ... -> --limits-max-connections
    if (row.rfind("| `", 0) != 0) continue;
    const std::string key = row.substr(3, row.find('`', 3) - 3);
    // Lists (the buses, endpoint lists shown with default []) have no flag.
    if (key.rfind("buses", 0) == 0 || row.find("| `[]` |") != std::string::npos) continue;
    std::string flag = "--";
    for (char c : key) flag += c == '.' || c == '_' ? '-' : c;
    EXPECT_NE(help.output.find(flag + " "), std::string::npos) << flag;
    ++flags;
  }
  EXPECT_GE(flags, 35);
  EXPECT_NE(help.output.find("Configuration keys"), std::string::npos);
  EXPECT_EQ(help.output.find("--print-keys"), std::string::npos);  // hidden
}

}  // namespace
}  // namespace plantd::test

#include "config/config_loader.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace plantd {
namespace {

using std::chrono::milliseconds;

class ConfigLoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/plantd-config-test-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string WriteYaml(const std::string& text) {
    const std::string path = dir_ + "/broker.yaml";
    std::ofstream(path) << text;
    return path;
  }

  LoadedConfig LoadYaml(const std::string& text) {
    ConfigSources sources;
    sources.file_path = WriteYaml(text);
    return LoadConfig(sources);
  }

  // The one error, as a user would read it.
  static std::string OnlyError(const LoadedConfig& c) {
    EXPECT_EQ(c.errors.size(), 1u);
    return c.errors.empty() ? "" : c.errors[0].ToString();
  }

  std::string dir_;
};

TEST_F(ConfigLoaderTest, DefaultsAloneGiveTheSeedReadmeLayout) {
  LoadedConfig c = LoadConfig({});
  ASSERT_TRUE(c.ok()) << c.errors[0].ToString();
  EXPECT_EQ(c.options.endpoint, "tcp://*:7200");
  EXPECT_EQ(c.options.client_endpoint, "tcp://*:7201");
  EXPECT_EQ(c.options.health.port, 8081);
  EXPECT_EQ(c.options.heartbeat_interval, milliseconds(2500));
  EXPECT_EQ(c.options.heartbeat_liveness, 3);
  EXPECT_EQ(c.options.request_expiry, milliseconds(30000));
  ASSERT_EQ(c.options.buses.size(), 2u);
  EXPECT_EQ(c.options.buses[0].name, "control");
  EXPECT_EQ(c.options.buses[0].backend, "tcp://*:11000");
  EXPECT_EQ(c.options.buses[0].frontend, "tcp://*:11001");
  EXPECT_EQ(c.options.buses[0].capture, "tcp://*:11002");
  EXPECT_EQ(c.options.buses[1].name, "data");
  EXPECT_EQ(c.options.buses[1].backend, "tcp://*:12000");
  EXPECT_EQ(c.options.buses[1].frontend, "tcp://*:12001");
  EXPECT_EQ(c.options.buses[1].capture, "tcp://*:12002");
  EXPECT_EQ(c.options.HeartbeatExpiry(), milliseconds(7500));
}

TEST_F(ConfigLoaderTest, ReadsTheSeedReadmeKeys) {
  LoadedConfig c = LoadYaml(R"(
endpoint: "tcp://*:7300"
client_endpoint: "tcp://*:7301"
buses:
  - name: "control"
    backend: "tcp://*:13000"
    frontend: "tcp://*:13001"
    capture: "tcp://*:13002"
log:
  level: "debug"
  format: "json"
)");
  ASSERT_TRUE(c.ok()) << c.errors[0].ToString();
  EXPECT_EQ(c.options.endpoint, "tcp://*:7300");
  EXPECT_EQ(c.options.client_endpoint, "tcp://*:7301");
  ASSERT_EQ(c.options.buses.size(), 1u);
  EXPECT_EQ(c.options.buses[0].backend, "tcp://*:13000");
  EXPECT_EQ(c.options.log.level, LogLevel::kDebug);
  EXPECT_EQ(c.options.log.format, LogFormat::kJson);
  EXPECT_EQ(c.origins.at("endpoint"), c.file_path + ":2");
  EXPECT_TRUE(c.warnings.empty());
}

TEST_F(ConfigLoaderTest, ReadsTheKeysLaterFeaturesUse) {
  LoadedConfig c = LoadYaml(R"(
heartbeat_interval: 250ms
heartbeat_liveness: 5
request_expiry: 2.5s
max_queue_per_service: 50
max_message_size: 1MiB
health:
  bind: 127.0.0.1
  port: 9090
buses: []
)");
  ASSERT_TRUE(c.ok()) << c.errors[0].ToString();
  EXPECT_EQ(c.options.heartbeat_interval, milliseconds(250));
  EXPECT_EQ(c.options.heartbeat_liveness, 5);
  EXPECT_EQ(c.options.request_expiry, milliseconds(2500));
  EXPECT_EQ(c.options.max_queue_per_service, 50u);
  EXPECT_EQ(c.options.max_message_size, 1u << 20);
  EXPECT_EQ(c.options.health.bind, "127.0.0.1");
  EXPECT_EQ(c.options.health.port, 9090);
  EXPECT_TRUE(c.options.buses.empty());
}

TEST_F(ConfigLoaderTest, BareIntegerDurationIsMilliseconds) {
  LoadedConfig c = LoadYaml("heartbeat_interval: 100\n");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c.options.heartbeat_interval, milliseconds(100));
}

TEST_F(ConfigLoaderTest, AcceptsThePlantdAliases) {
  LoadedConfig c = LoadYaml(R"(
client-endpoint: "tcp://*:7401"
heartbeat-liveness: 4
heartbeat-interval: 2500000
env: production
service:
  id: org.plantd.Broker.east
log:
  formatter: json
)");
  ASSERT_TRUE(c.ok()) << c.errors[0].ToString();
  EXPECT_TRUE(c.warnings.empty());
  EXPECT_EQ(c.options.client_endpoint, "tcp://*:7401");
  EXPECT_EQ(c.options.heartbeat_liveness, 4);
  // plantd wrote heartbeat-interval in microseconds.
  EXPECT_EQ(c.options.heartbeat_interval, milliseconds(2500));
  EXPECT_EQ(c.options.environment, "production");
  EXPECT_EQ(c.options.service_id, "org.plantd.Broker.east");
  EXPECT_EQ(c.options.log.format, LogFormat::kJson);
  // The alias is recorded under the canonical key.
  EXPECT_EQ(c.origins.at("client_endpoint"), c.file_path + ":2");
}

TEST_F(ConfigLoaderTest, EnvironmentOverridesFileAndFlagsOverrideEnvironment) {
  ConfigSources s;
  s.file_path = WriteYaml("endpoint: tcp://*:7300\nlog:\n  level: warn\nhealth:\n  port: 9000\n");
  s.environment = {{"PLANTD_BROKER_ENDPOINT", "tcp://*:7400"},
                   {"PLANTD_BROKER_LOG_LEVEL", "debug"}};
  s.flags = {{"endpoint", "tcp://*:7500"}};
  LoadedConfig c = LoadConfig(s);
  ASSERT_TRUE(c.ok()) << c.errors[0].ToString();
  EXPECT_EQ(c.options.endpoint, "tcp://*:7500");
  EXPECT_EQ(c.origins.at("endpoint"), "flag --endpoint");
  EXPECT_EQ(c.options.log.level, LogLevel::kDebug);
  EXPECT_EQ(c.origins.at("log.level"), "env PLANTD_BROKER_LOG_LEVEL");
  EXPECT_EQ(c.options.health.port, 9000);
  EXPECT_EQ(c.origins.at("health.port"), c.file_path + ":5");
}

TEST_F(ConfigLoaderTest, ReadsEveryDocumentedEnvironmentVariable) {
  ConfigSources s;
  s.environment = {{"PLANTD_BROKER_CONFIG", WriteYaml("heartbeat_liveness: 7\n")},
                   {"PLANTD_BROKER_ENDPOINT", "tcp://127.0.0.1:7600"},
                   {"PLANTD_BROKER_CLIENT_ENDPOINT", "tcp://127.0.0.1:7601"},
                   {"PLANTD_BROKER_HEALTH_PORT", "8181"},
                   {"PLANTD_BROKER_LOG_LEVEL", "trace"},
                   {"PLANTD_BROKER_LOG_FORMAT", "json"}};
  LoadedConfig c = LoadConfig(s);
  ASSERT_TRUE(c.ok()) << c.errors[0].ToString();
  EXPECT_EQ(c.options.heartbeat_liveness, 7);  // from the file PLANTD_BROKER_CONFIG names
  EXPECT_EQ(c.options.endpoint, "tcp://127.0.0.1:7600");
  EXPECT_EQ(c.options.client_endpoint, "tcp://127.0.0.1:7601");
  EXPECT_EQ(c.options.health.port, 8181);
  EXPECT_EQ(c.options.log.level, LogLevel::kTrace);
  EXPECT_EQ(c.options.log.format, LogFormat::kJson);
}

TEST_F(ConfigLoaderTest, ConfigFlagBeatsTheEnvironmentFile) {
  ConfigSources s;
  s.environment = {{"PLANTD_BROKER_CONFIG", "/nonexistent/broker.yaml"}};
  s.file_path = WriteYaml("heartbeat_liveness: 9\n");
  LoadedConfig c = LoadConfig(s);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c.options.heartbeat_liveness, 9);
}

TEST_F(ConfigLoaderTest, BadEndpointNamesKeyLineValueAndSyntax) {
  LoadedConfig c = LoadYaml("buses: []\nendpoint: \"tcp//nowhere\"\n");
  const std::string e = OnlyError(c);
  EXPECT_NE(e.find("endpoint"), std::string::npos) << e;
  EXPECT_NE(e.find("broker.yaml:2"), std::string::npos) << e;
  EXPECT_NE(e.find("tcp//nowhere"), std::string::npos) << e;
  EXPECT_NE(e.find("expected tcp://HOST:PORT"), std::string::npos) << e;
}

TEST_F(ConfigLoaderTest, PortOutOfRangeIsAnError) {
  EXPECT_NE(OnlyError(LoadYaml("health:\n  port: 70000\n")).find("health.port"),
            std::string::npos);
  EXPECT_NE(OnlyError(LoadYaml("endpoint: tcp://*:0\n")).find("PORT 1-65535"),
            std::string::npos);
  EXPECT_NE(OnlyError(LoadYaml("endpoint: tcp://*:99999\n")).find("endpoint"),
            std::string::npos);
}

TEST_F(ConfigLoaderTest, UnknownLogLevelListsTheValidOnes) {
  const std::string e = OnlyError(LoadYaml("log:\n  level: loud\n"));
  EXPECT_NE(e.find("log.level"), std::string::npos) << e;
  EXPECT_NE(e.find("\"loud\""), std::string::npos) << e;
  EXPECT_NE(e.find("trace, debug, info, warn, error"), std::string::npos) << e;
}

TEST_F(ConfigLoaderTest, ZeroOrNegativeDurationIsAnError) {
  for (const char* bad : {"0", "0ms", "-5s", "soon"}) {
    const std::string e = OnlyError(LoadYaml(std::string("heartbeat_interval: ") + bad + "\n"));
    EXPECT_NE(e.find("heartbeat_interval"), std::string::npos) << e;
    EXPECT_NE(e.find("duration"), std::string::npos) << e;
  }
  EXPECT_FALSE(LoadYaml("request_expiry: 0s\n").ok());
  EXPECT_FALSE(LoadYaml("heartbeat_liveness: 0\n").ok());
}

TEST_F(ConfigLoaderTest, DuplicateBusNameIsAnError) {
  const std::string e = OnlyError(LoadYaml(R"(
buses:
  - name: data
    backend: tcp://*:12000
    frontend: tcp://*:12001
  - name: data
    backend: tcp://*:13000
    frontend: tcp://*:13001
)"));
  EXPECT_NE(e.find("buses[1].name"), std::string::npos) << e;
  EXPECT_NE(e.find("another bus already has this name"), std::string::npos) << e;
  EXPECT_NE(e.find("broker.yaml:6"), std::string::npos) << e;
}

TEST_F(ConfigLoaderTest, TwoSocketsOnOneAddressIsAnError) {
  const std::string e =
      OnlyError(LoadYaml("endpoint: tcp://*:7200\nclient_endpoint: tcp://127.0.0.1:7200\n"));
  EXPECT_NE(e.find("client_endpoint"), std::string::npos) << e;
  EXPECT_NE(e.find("same address as endpoint"), std::string::npos) << e;

  const std::string bus = OnlyError(LoadYaml(R"(
buses:
  - name: data
    backend: tcp://*:7201
    frontend: tcp://*:12001
)"));
  EXPECT_NE(bus.find("buses[0].backend"), std::string::npos) << bus;
  EXPECT_NE(bus.find("client_endpoint"), std::string::npos) << bus;
}

TEST_F(ConfigLoaderTest, UnknownKeyIsAWarningThatNamesIt) {
  LoadedConfig c = LoadYaml("buses: []\nheartbeat_intervall: 100ms\n");
  EXPECT_TRUE(c.ok());
  ASSERT_EQ(c.warnings.size(), 1u);
  EXPECT_EQ(c.warnings[0].key, "heartbeat_intervall");
  EXPECT_NE(c.warnings[0].ToString().find("broker.yaml:2"), std::string::npos);
  EXPECT_EQ(c.options.heartbeat_interval, milliseconds(2500));
}

TEST_F(ConfigLoaderTest, BadEnvironmentValueNamesTheVariable) {
  ConfigSources s;
  s.environment = {{"PLANTD_BROKER_HEALTH_PORT", "eighty"}};
  const std::string e = OnlyError(LoadConfig(s));
  EXPECT_NE(e.find("env PLANTD_BROKER_HEALTH_PORT"), std::string::npos) << e;
  EXPECT_NE(e.find("\"eighty\""), std::string::npos) << e;
}

TEST_F(ConfigLoaderTest, InvalidYamlGivesTheLine) {
  const std::string e = OnlyError(LoadYaml("endpoint: [unclosed\n"));
  EXPECT_NE(e.find("not valid YAML"), std::string::npos) << e;
}

TEST_F(ConfigLoaderTest, MissingFileIsAnError) {
  ConfigSources s;
  s.file_path = dir_ + "/missing.yaml";
  const std::string e = OnlyError(LoadConfig(s));
  EXPECT_NE(e.find("missing.yaml"), std::string::npos) << e;
  EXPECT_NE(e.find("cannot open"), std::string::npos) << e;
}

TEST_F(ConfigLoaderTest, PrintedConfigSaysWhereEachValueCameFrom) {
  ConfigSources s;
  s.file_path = WriteYaml("buses: []\nheartbeat_liveness: 4\n");
  s.environment = {{"PLANTD_BROKER_LOG_LEVEL", "debug"}};
  const std::string yaml = RenderConfigYaml(LoadConfig(s));
  EXPECT_NE(yaml.find("heartbeat_liveness: 4  # " + *s.file_path + ":2"), std::string::npos)
      << yaml;
  EXPECT_NE(yaml.find("level: \"debug\"  # env PLANTD_BROKER_LOG_LEVEL"), std::string::npos)
      << yaml;
  EXPECT_NE(yaml.find("endpoint: \"tcp://*:7200\"  # default"), std::string::npos) << yaml;
}

TEST_F(ConfigLoaderTest, PrintedConfigLoadsBackToTheSameOptions) {
  LoadedConfig first = LoadYaml("heartbeat_interval: 300ms\nbuses:\n  - name: x\n"
                                "    backend: tcp://*:15000\n    frontend: tcp://*:15001\n");
  ASSERT_TRUE(first.ok());
  LoadedConfig second = LoadYaml(RenderConfigYaml(first));
  ASSERT_TRUE(second.ok()) << second.errors[0].ToString();
  EXPECT_TRUE(second.warnings.empty());
  EXPECT_TRUE(ChangedKeys(first.options, second.options).empty());
}

TEST_F(ConfigLoaderTest, ChangedKeysNamesWhatDiffers) {
  BrokerOptions a, b;
  b.log.level = LogLevel::kDebug;
  b.endpoint = "tcp://*:7300";
  b.buses.pop_back();
  EXPECT_EQ(ChangedKeys(a, b), (std::vector<std::string>{"endpoint", "log.level", "buses"}));
}

}  // namespace
}  // namespace plantd

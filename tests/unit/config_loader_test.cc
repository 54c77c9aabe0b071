#include "config/config_loader.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "common/units.h"
#include "config/config_keys.h"
#include "config/endpoint.h"

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
    if (c.errors.size() > 1) {
      for (const ConfigIssue& e : c.errors) ADD_FAILURE() << "  error: " << e.ToString();
    }
    return c.errors.empty() ? "" : c.errors[0].ToString();
  }

  static std::string AllErrors(const LoadedConfig& c) {
    std::string all;
    for (const ConfigIssue& e : c.errors) all += "\n  " + e.ToString();
    return all;
  }

  // Expects exactly one error that names `key`, where its value came from
  // (FILE:LINE, or the default when `line` is 0) and contains `text`.
  void ExpectErrorAt(const std::string& yaml, const std::string& key, int line,
                     const std::string& text) {
    LoadedConfig c = LoadYaml(yaml);
    ASSERT_EQ(c.errors.size(), 1u) << yaml << AllErrors(c);
    const std::string e = c.errors[0].ToString();
    EXPECT_EQ(c.errors[0].key, key) << e;
    const std::string origin =
        line == 0 ? "(from default)" : "(from " + c.file_path + ":" + std::to_string(line) + ")";
    EXPECT_NE(e.find(origin), std::string::npos) << e;
    EXPECT_NE(e.find(text), std::string::npos) << e;
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

// Endpoint::IsLocal decides the warning for a security.null_endpoints entry
// that other machines can reach.
TEST_F(ConfigLoaderTest, LocalEndpointsAreIpcInprocAndLoopback) {
  for (const char* local : {"ipc:///run/plantd/broker.ipc", "inproc://bus", "tcp://127.0.0.1:7200",
                            "tcp://127.0.1.1:7200", "tcp://localhost:7200", "tcp://[::1]:7200"}) {
    auto ep = ParseEndpoint(local);
    ASSERT_TRUE(ep.ok()) << local;
    EXPECT_TRUE(ep.value().IsLocal()) << local;
  }
  for (const char* remote : {"tcp://*:7200", "tcp://0.0.0.0:7200", "tcp://10.0.0.5:7200",
                             "tcp://plant-host:7200", "tcp://[::]:7200",
                             "tcp://127.example.com:7200"}) {
    auto ep = ParseEndpoint(remote);
    ASSERT_TRUE(ep.ok()) << remote;
    EXPECT_FALSE(ep.value().IsLocal()) << remote;
  }
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

// --- Strict typing: the YAML kind of a value is checked before its text.

TEST_F(ConfigLoaderTest, MapWhereNumberExpectedIsAnErrorAtFileLine) {
  // Before: `{}` was read as an empty section and the default stayed.
  ExpectErrorAt("buses: []\nmax_message_size: {}\n", "max_message_size", 2,
                "expected a size from 64B to 4GiB, such as 1048576, 512KiB or 16MiB, got a "
                "mapping");
  ExpectErrorAt("buses: []\nlimits:\n  max_connections: {a: 1}\n", "limits.max_connections", 3,
                "got a mapping");
  ExpectErrorAt("buses: []\nheartbeat_interval: {}\n", "heartbeat_interval", 2,
                "expected a duration");
}

TEST_F(ConfigLoaderTest, ListWhereNumberExpectedIsAnError) {
  ExpectErrorAt("buses: []\nheartbeat_liveness: [1, 2]\n", "heartbeat_liveness", 2,
                "expected an integer from 1 to 1000, got a list");
  ExpectErrorAt("buses: []\nhealth:\n  port:\n    - 80\n", "health.port", 3, "got a list");
}

TEST_F(ConfigLoaderTest, StringWhereNumberExpectedIsAnError) {
  ExpectErrorAt("buses: []\nmax_services: many\n", "max_services", 2,
                "expected an integer from 1 to 10000000");
  ExpectErrorAt("buses: []\nmax_services: \"12 services\"\n", "max_services", 2,
                "expected an integer");
  ExpectErrorAt("buses: []\nmax_redispatch: 1.5\n", "max_redispatch", 2, "expected an integer");
  ExpectErrorAt("buses: []\nmax_redispatch: -1\n", "max_redispatch", 2, "expected an integer");
  ExpectErrorAt("buses: []\nstore:\n  enabled: maybe\n", "store.enabled", 3,
                "expected true or false");
  // A quoted number is still the number: units make most values strings anyway.
  LoadedConfig c = LoadYaml("buses: []\nmax_services: \"5000\"\nmax_message_size: \"1MiB\"\n");
  ASSERT_TRUE(c.ok()) << c.errors[0].ToString();
  EXPECT_EQ(c.options.max_services, 5000u);
}

TEST_F(ConfigLoaderTest, MapOrListWhereStringExpectedIsAnError) {
  ExpectErrorAt("buses: []\nendpoint: {a: 1}\n", "endpoint", 2, "got a mapping");
  ExpectErrorAt("buses: []\nlog:\n  level: [debug]\n", "log.level", 3,
                "expected one of trace, debug, info, warn, error, got a list");
  ExpectErrorAt("buses: []\nclient-endpoint: {}\n", "client-endpoint", 2, "got a mapping");
}

TEST_F(ConfigLoaderTest, NoValueIsAnError) {
  ExpectErrorAt("buses: []\nmax_services:\nmax_workers: 5\n", "max_services", 2, "got no value");
}

TEST_F(ConfigLoaderTest, WrongKindWhereSectionExpectedIsAnError) {
  // Before: `health: 8081` was an unknown key, a warning, and the defaults stayed.
  ExpectErrorAt("buses: []\nhealth: 8081\n", "health", 2,
                "expected a mapping with bind, port, max_connections, read_timeout, idle_timeout, "
                "write_timeout, max_request_bytes, got a single value");
  ExpectErrorAt("buses: []\nlimits: [1, 2]\n", "limits", 2, "got a list");
  // An empty section sets nothing and is no error.
  EXPECT_TRUE(LoadYaml("buses: []\nlimits:\n").ok());
}

TEST_F(ConfigLoaderTest, WrongKindsInListsAreErrors) {
  ExpectErrorAt("buses: {name: x}\n", "buses", 1, "expected a list of buses, got a mapping");
  ExpectErrorAt("buses:\n  - [tcp://*:1]\n", "buses[0]", 2,
                "expected a mapping with name, backend and frontend, got a list");
  ExpectErrorAt("buses:\n  - name: x\n    backend: tcp://*:15000\n    frontend: tcp://*:15001\n"
                "    send_hwm: {}\n",
                "buses[0].send_hwm", 5, "expected an integer from 1 to 100000000, got a mapping");
  ExpectErrorAt("buses: []\nextra_endpoints: tcp://*:7300\n", "extra_endpoints", 2,
                "expected a list of endpoints, got a single value");
  ExpectErrorAt("buses: []\nextra_endpoints:\n  - {a: 1}\n", "extra_endpoints[0]", 3,
                "expected an endpoint, got a mapping");
}

TEST_F(ConfigLoaderTest, KeyThatIsNotANameIsAnError) {
  ExpectErrorAt("buses: []\n? [a, b]\n: 1\n", "config", 2, "expected a key name, got a list");
}

TEST_F(ConfigLoaderTest, SecondYamlDocumentIsAnError) {
  ExpectErrorAt("buses: []\n---\nmax_services: 5\n", "config", 2, "more than one YAML document");
}

// Found by fuzz/config_loader_fuzzer.cc (fuzz/regressions/config_loader/):
// yaml-cpp 0.7 returns the same empty document forever on this input, and
// YAML::LoadAll collected them until memory ran out.
TEST_F(ConfigLoaderTest, LoneCommaIsInvalidYamlNotAnEndlessLoad) {
  ExpectErrorAt(",\n", "config", 1, "not valid YAML");
}

TEST_F(ConfigLoaderTest, ControlCharacterInBusNameOrEndpointIsAnError) {
  const std::string name = OnlyError(LoadYaml(
      "buses:\n  - name: \"a\\nb\"\n    backend: tcp://*:15000\n    frontend: tcp://*:15001\n"));
  EXPECT_NE(name.find("buses[0].name"), std::string::npos) << name;
  EXPECT_NE(name.find("no spaces, line breaks or control characters"), std::string::npos) << name;
  const std::string endpoint = OnlyError(LoadYaml("endpoint: \"tcp://*:7200\\t\"\n"));
  EXPECT_NE(endpoint.find("endpoint"), std::string::npos) << endpoint;
  EXPECT_NE(endpoint.find("no spaces, line breaks or control characters"), std::string::npos)
      << endpoint;
}

// Any string value, even one the validation would refuse, prints as one
// line that YAML reads back to the same bytes.
TEST_F(ConfigLoaderTest, PrintedConfigEscapesControlCharacters) {
  LoadedConfig first = LoadYaml("store:\n  path: \"./da\\nta/\\x01\\\"q\\\\.db\"\n");
  ASSERT_TRUE(first.ok()) << AllErrors(first);
  EXPECT_EQ(first.options.store.path, "./da\nta/\x01\"q\\.db");
  const std::string printed = RenderConfigYaml(first);
  EXPECT_NE(printed.find("path: \"./da\\x0ata/\\x01\\\"q\\\\.db\""), std::string::npos) << printed;
  LoadedConfig second = LoadYaml(printed);
  ASSERT_TRUE(second.ok()) << AllErrors(second);
  EXPECT_EQ(second.options.store.path, first.options.store.path);
}

// security.null_endpoints names endpoints the broker binds natively, under
// CURVE; anything else is refused with the entry's line and the reason.
TEST_F(ConfigLoaderTest, NullEndpointsMustBeNativeEndpointsOfACurveBroker) {
  const std::string curve =
      "security:\n  mechanism: curve\n  secret_key_file: /etc/plantd/broker_secret\n"
      "  acl_file: /etc/plantd/acl.yaml\n";
  const std::string bus =
      "buses:\n  - name: data\n    backend: tcp://*:15000\n    frontend: ipc:///tmp/data\n";
  LoadedConfig ok = LoadYaml(curve +
                             "  null_endpoints:\n    - ipc:///tmp/b\n    - "
                             "ipc:///tmp/data\nextra_endpoints: [\"@ipc:///tmp/b\"]\n" +
                             bus);
  ASSERT_TRUE(ok.ok()) << AllErrors(ok);
  EXPECT_EQ(ok.options.security.null_endpoints,
            (std::vector<std::string>{"ipc:///tmp/b", "ipc:///tmp/data"}));

  ExpectErrorAt("security:\n  null_endpoints: [ipc:///tmp/b]\nextra_endpoints: [ipc:///tmp/b]\n",
                "security.null_endpoints[0]", 2, "needs security.mechanism curve");
  ExpectErrorAt(curve + "  null_endpoints:\n    - ipc:///tmp/elsewhere\n",
                "security.null_endpoints[0]", 6, "not an endpoint the broker binds");
  // A bus backend bound on tcp:// is native and may take NULL peers; a
  // capture is libzmq's.
  LoadedConfig backend = LoadYaml(curve + "  null_endpoints:\n    - tcp://*:15000\n" + bus);
  EXPECT_TRUE(backend.ok()) << AllErrors(backend);
  ExpectErrorAt(curve + "  null_endpoints:\n    - tcp://*:15002\n" + bus +
                    "    capture: tcp://*:15002\n",
                "security.null_endpoints[0]", 6, "a bus capture or inproc:// endpoint");
  ExpectErrorAt(curve +
                    "  null_endpoints:\n    - ipc:///tmp/b\nextra_endpoints: [ipc:///tmp/b]\n"
                    "transport: zmq\n",
                "security.null_endpoints[0]", 6, "needs transport native");
  ExpectErrorAt(curve + "  null_endpoints: ipc:///tmp/b\n", "security.null_endpoints", 5,
                "expected a list of endpoints");
  ExpectErrorAt("security:\n  mechanism: curve\n  secret_key_file: /k\n  null_endpoints: "
                "[ipc:///tmp/b]\nextra_endpoints: [ipc:///tmp/b]\n",
                "security.null_endpoints[0]", 4, "set security.acl_file");
}

// security.authorized_keys: each "KEY NAME", a Z85 public key and a name,
// every key and every name once, under CURVE.
TEST_F(ConfigLoaderTest, AuthorizedKeysAreKeyAndNamePairs) {
  const std::string key_a = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
  const std::string key_b = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID";
  const std::string curve =
      "security:\n  mechanism: curve\n  secret_key_file: /etc/plantd/broker_secret\n"
      "  authorized_keys:\n";
  LoadedConfig ok = LoadYaml(curve + "    - \"" + key_a + " alice\"\n    - \"" + key_b + " bob\"\n");
  ASSERT_TRUE(ok.ok()) << AllErrors(ok);
  EXPECT_EQ(ok.options.security.authorized_keys.size(), 2u);

  ExpectErrorAt(curve + "    - \"" + key_a + "\"\n", "security.authorized_keys[0]", 5,
                "expected \"KEY NAME\"");
  ExpectErrorAt(curve + "    - \"" + key_a.substr(1) + " alice\"\n", "security.authorized_keys[0]",
                5, "a public key in Z85 (40 characters");
  ExpectErrorAt(curve + "    - \"" + key_a + " anonymous\"\n", "security.authorized_keys[0]", 5,
                "kept for peers of security.null_endpoints");
  ExpectErrorAt(curve + "    - \"" + key_a + " alice\"\n    - \"" + key_a + " bob\"\n",
                "security.authorized_keys[1]", 6, "listed twice");
  ExpectErrorAt(curve + "    - \"" + key_a + " alice\"\n    - \"" + key_b + " alice\"\n",
                "security.authorized_keys[1]", 6, "another key already has this name");
  ExpectErrorAt("security:\n  authorized_keys: [\"" + key_a + " alice\"]\n",
                "security.authorized_keys[0]", 2, "needs security.mechanism curve");
  ExpectErrorAt(curve + "    - {alice: 1}\n", "security.authorized_keys[0]", 5,
                "expected a key, got a mapping");
}

TEST_F(ConfigLoaderTest, PrintedConfigListsNullEndpointsInTheSecuritySection) {
  LoadedConfig first = LoadYaml(
      "security:\n  mechanism: curve\n  secret_key_file: /k\n  acl_file: /a\n"
      "  null_endpoints: [ipc:///tmp/b]\nextra_endpoints: [ipc:///tmp/b]\n");
  ASSERT_TRUE(first.ok()) << AllErrors(first);
  const std::string printed = RenderConfigYaml(first);
  EXPECT_NE(printed.find("  null_endpoints:\n    - \"ipc:///tmp/b\""), std::string::npos)
      << printed;
  LoadedConfig second = LoadYaml(printed);
  ASSERT_TRUE(second.ok()) << AllErrors(second);
  EXPECT_TRUE(ChangedKeys(first.options, second.options).empty());
  second.options.security.null_endpoints.clear();
  EXPECT_EQ(ChangedKeys(first.options, second.options),
            (std::vector<std::string>{"security.null_endpoints"}));
}

// --- Duplicate keys: yaml-cpp keeps both entries and node[key] finds the first.

TEST_F(ConfigLoaderTest, DuplicateKeyRejected) {
  ExpectErrorAt("buses: []\nsocket_hwm: 10\nmax_services: 5\nsocket_hwm: 20\n", "socket_hwm", 4,
                "duplicate key; first given at line 2");
}

TEST_F(ConfigLoaderTest, DuplicateKeyInASectionRejected) {
  ExpectErrorAt("buses: []\nhealth:\n  port: 0\n  bind: 127.0.0.1\n  port: 9000\n",
                "health.port", 5, "duplicate key; first given at line 3");
  ExpectErrorAt("buses: []\nlimits: {max_connections: 5, max_connections: 6}\n",
                "limits.max_connections", 2, "duplicate key");
}

TEST_F(ConfigLoaderTest, DuplicateSectionRejected) {
  ExpectErrorAt("buses: []\nlog:\n  level: debug\nlog:\n  format: json\n", "log", 4,
                "duplicate key; first given at line 2");
}

TEST_F(ConfigLoaderTest, DuplicateKeyInABusRejected) {
  ExpectErrorAt("buses:\n  - name: x\n    backend: tcp://*:15000\n    frontend: tcp://*:15001\n"
                "    backend: tcp://*:16000\n",
                "buses[0].backend", 5, "duplicate key; first given at line 3");
}

// --- Ranges: every numeric key has one, and out-of-range values are refused.

TEST_F(ConfigLoaderTest, SocketHwmZeroRefused) {
  // Before: 0 was accepted, which is libzmq's "no limit".
  ExpectErrorAt("buses: []\nsocket_hwm: 0\n", "socket_hwm", 2,
                "expected an integer from 1 to 100000000");
  ExpectErrorAt("buses:\n  - name: x\n    backend: tcp://*:15000\n    frontend: tcp://*:15001\n"
                "    send_hwm: 0\n",
                "buses[0].send_hwm", 5, "expected an integer from 1 to 100000000");
  ExpectErrorAt("buses:\n  - name: x\n    backend: tcp://*:15000\n    frontend: tcp://*:15001\n"
                "    recv_hwm: 0\n",
                "buses[0].recv_hwm", 5, "expected an integer from 1 to 100000000");
}

TEST_F(ConfigLoaderTest, OutOfRangeBigIntegerRefused) {
  // Before: accepted, and libzmq took it as a negative int64 (no limit).
  ExpectErrorAt("buses: []\nmax_message_size: 9223372036854775808\n", "max_message_size", 2,
                "expected a size from 64B to 4GiB");
  ExpectErrorAt("buses: []\nmax_message_size: 18446744073709551616\n", "max_message_size", 2,
                "expected a size");
  ExpectErrorAt("buses: []\nmax_message_size: 5GiB\n", "max_message_size", 2, "to 4GiB");
  // Would wrap to a negative int.
  ExpectErrorAt("buses: []\nsocket_hwm: 4294967297\n", "socket_hwm", 2, "expected an integer");
  ExpectErrorAt("buses: []\nhealth:\n  port: 65536\n", "health.port", 3,
                "expected an integer from 0 to 65535");
}

TEST_F(ConfigLoaderTest, EveryNumericKeyRefusesValuesOutsideItsRange) {
  auto outside = [](KeyType type, uint64_t v) {
    return type == KeyType::kDuration ? std::to_string(v) + "ms" : std::to_string(v);
  };
  int checked = 0;
  for (const auto& spec : BrokerKeys()) {
    if (!spec.alias_of.empty()) continue;
    if (spec.type != KeyType::kInteger && spec.type != KeyType::kBytes &&
        spec.type != KeyType::kDuration) {
      continue;
    }
    ASSERT_LT(spec.min, spec.max) << spec.key;
    std::vector<uint64_t> bad = {spec.max + 1};
    if (spec.min > 0) bad.push_back(spec.min - 1);
    for (uint64_t v : bad) {
      ConfigSources s;
      s.flags[spec.canonical()] = outside(spec.type, v);
      LoadedConfig c = LoadConfig(s);
      ASSERT_EQ(c.errors.size(), 1u) << spec.key << " = " << v;
      EXPECT_EQ(c.errors[0].key, spec.key);
      EXPECT_NE(c.errors[0].message.find(Expectation(spec)), std::string::npos)
          << c.errors[0].ToString();
      ++checked;
    }
  }
  for (const auto& spec : BusKeys()) {
    if (spec.type != KeyType::kInteger && spec.type != KeyType::kBytes) continue;
    std::vector<uint64_t> bad = {spec.max + 1};
    if (spec.min > 0) bad.push_back(spec.min - 1);
    for (uint64_t v : bad) {
      LoadedConfig c = LoadYaml("buses:\n  - name: x\n    backend: tcp://*:15000\n"
                                "    frontend: tcp://*:15001\n    " +
                                spec.key + ": " + std::to_string(v) + "\n");
      ASSERT_EQ(c.errors.size(), 1u) << spec.key << " = " << v;
      EXPECT_EQ(c.errors[0].key, "buses[0]." + spec.key);
      ++checked;
    }
  }
  EXPECT_GE(checked, 40);
}

TEST_F(ConfigLoaderTest, OutOfRangeEnvironmentValueNamesTheVariable) {
  ConfigSources s;
  s.environment = {{"PLANTD_BROKER_SOCKET_HWM", "0"}};
  const std::string e = OnlyError(LoadConfig(s));
  EXPECT_NE(e.find("socket_hwm: \"0\" (from env PLANTD_BROKER_SOCKET_HWM)"), std::string::npos)
      << e;
}

TEST_F(ConfigLoaderTest, ValidateChecksRangesOfOptionsBuiltInCode) {
  BrokerOptions o;
  o.socket_hwm = 0;
  o.buses[1].send_hwm = -5;
  o.limits.max_buffered_bytes = 0;
  std::vector<ConfigIssue> issues = Validate(o, {});
  ASSERT_EQ(issues.size(), 3u);
  EXPECT_EQ(issues[0].key, "socket_hwm");
  EXPECT_EQ(issues[1].key, "limits.max_buffered_bytes");
  EXPECT_EQ(issues[2].key, "buses[1].send_hwm");
  EXPECT_TRUE(Validate(BrokerOptions{}, {}).empty());
}

// --- The new keys.

TEST_F(ConfigLoaderTest, ReadsTheLimitsMetricsStoreAndShutdownKeys) {
  LoadedConfig c = LoadYaml(R"(
buses: []
shutdown_grace: 2s
limits:
  max_buffered_bytes: 256MiB
  max_connection_out_bytes: 32MiB
  write_timeout: 3s
  handshake_timeout: 1500ms
  max_connections: 5000
  max_connections_per_address: 50
  max_client_services: 10
  max_unserved_services: 200
metrics:
  max_service_labels: 20
store:
  enabled: false
  path: /var/lib/plantd/broker.db
  max_requests: 5000
  max_bytes: 2GiB
  reply_retention: 24h
)");
  ASSERT_TRUE(c.ok()) << c.errors[0].ToString();
  EXPECT_TRUE(c.warnings.empty());
  const BrokerOptions& o = c.options;
  EXPECT_EQ(o.shutdown_grace, milliseconds(2000));
  EXPECT_EQ(o.limits.max_buffered_bytes, size_t{256} << 20);
  EXPECT_EQ(o.limits.max_connection_out_bytes, size_t{32} << 20);
  EXPECT_EQ(o.limits.write_timeout, milliseconds(3000));
  EXPECT_EQ(o.limits.handshake_timeout, milliseconds(1500));
  EXPECT_EQ(o.limits.max_connections, 5000u);
  EXPECT_EQ(o.limits.max_connections_per_address, 50u);
  EXPECT_EQ(o.limits.max_client_services, 10u);
  EXPECT_EQ(o.limits.max_unserved_services, 200u);
  EXPECT_EQ(o.metrics.max_service_labels, 20u);
  EXPECT_FALSE(o.store.enabled);
  EXPECT_EQ(o.store.path, "/var/lib/plantd/broker.db");
  EXPECT_EQ(o.store.max_requests, 5000u);
  EXPECT_EQ(o.store.max_bytes, size_t{2} << 30);
  EXPECT_EQ(o.store.reply_retention, std::chrono::hours(24));
  EXPECT_EQ(c.origins.at("limits.max_connections"), c.file_path + ":9");
}

TEST_F(ConfigLoaderTest, NewKeysHaveEnvironmentVariablesAndFlags) {
  ConfigSources s;
  s.environment = {{"PLANTD_BROKER_LIMITS_MAX_CONNECTIONS", "300"},
                   {"PLANTD_BROKER_LIMITS_HANDSHAKE_TIMEOUT", "2s"},
                   {"PLANTD_BROKER_METRICS_MAX_SERVICE_LABELS", "7"},
                   {"PLANTD_BROKER_STORE_ENABLED", "no"},
                   {"PLANTD_BROKER_SHUTDOWN_GRACE", "1s"}};
  s.flags = {{"limits.max_connections_per_address", "30"}};
  LoadedConfig c = LoadConfig(s);
  ASSERT_TRUE(c.ok()) << c.errors[0].ToString();
  EXPECT_EQ(c.options.limits.max_connections, 300u);
  EXPECT_EQ(c.origins.at("limits.max_connections"), "env PLANTD_BROKER_LIMITS_MAX_CONNECTIONS");
  EXPECT_EQ(c.options.limits.handshake_timeout, milliseconds(2000));
  EXPECT_EQ(c.options.metrics.max_service_labels, 7u);
  EXPECT_FALSE(c.options.store.enabled);
  EXPECT_EQ(c.options.shutdown_grace, milliseconds(1000));
  EXPECT_EQ(c.options.limits.max_connections_per_address, 30u);
  EXPECT_EQ(c.origins.at("limits.max_connections_per_address"),
            "flag --limits-max-connections-per-address");
}

TEST_F(ConfigLoaderTest, ReadsTheBusByteBudgetsAndSubscriptionLimits) {
  LoadedConfig c = LoadYaml(R"(
buses:
  - name: data
    backend: tcp://*:12000
    frontend: tcp://*:12001
    send_hwm_bytes: 8MiB
    max_message_size: 256KiB
    max_subscriptions_per_subscriber: 100
    max_subscriptions: 5000
    max_subscription_size: 256
    delivery: block
    last_value_cache: yes
)");
  ASSERT_TRUE(c.ok()) << c.errors[0].ToString();
  EXPECT_TRUE(c.warnings.empty());
  const BusOptions& bus = c.options.buses.at(0);
  EXPECT_EQ(bus.send_hwm_bytes, size_t{8} << 20);
  EXPECT_EQ(bus.max_message_size, size_t{256} << 10);
  EXPECT_EQ(bus.max_subscriptions_per_subscriber, 100u);
  EXPECT_EQ(bus.max_subscriptions, 5000u);
  EXPECT_EQ(bus.max_subscription_size, 256u);
  EXPECT_EQ(bus.delivery, BusOptions::Delivery::kBlock);
  EXPECT_TRUE(bus.last_value_cache);
  EXPECT_EQ(c.origins.at("buses[0].max_subscriptions"), c.file_path + ":9");
}

// --- Cross-field rules.

TEST_F(ConfigLoaderTest, ConnectionOutBytesBelowMessageSizeRefused) {
  ExpectErrorAt("buses: []\nmax_message_size: 16MiB\nlimits:\n  max_connection_out_bytes: 1MiB\n",
                "limits.max_connection_out_bytes", 4,
                "must be at least max_message_size (16MiB, from " + dir_ +
                    "/broker.yaml:2): one largest reply must fit");
}

TEST_F(ConfigLoaderTest, BufferedBytesBelowMessageSizeRefused) {
  ExpectErrorAt("buses: []\nmax_message_size: 2GiB\nlimits:\n  max_connection_out_bytes: 2GiB\n"
                "store:\n  max_bytes: 2GiB\n",
                "limits.max_buffered_bytes", 0, "must be at least max_message_size (2GiB");
}

TEST_F(ConfigLoaderTest, PerAddressConnectionsAboveTotalRefused) {
  ExpectErrorAt("buses: []\nlimits:\n  max_connections: 100\n  max_connections_per_address: 200\n",
                "limits.max_connections_per_address", 4,
                "must not exceed limits.max_connections (100");
}

TEST_F(ConfigLoaderTest, ServiceCapsMustNest) {
  ExpectErrorAt("buses: []\nlimits:\n  max_client_services: 2000\n", "limits.max_client_services",
                3, "must not exceed limits.max_unserved_services (1000, from default)");
  ExpectErrorAt("buses: []\nmax_services: 500\n", "limits.max_unserved_services", 0,
                "must not exceed max_services (500");
}

TEST_F(ConfigLoaderTest, StoreRules) {
  ExpectErrorAt("buses: []\nstore:\n  path: \"\"\n", "store.path", 3, "needs a file");
  EXPECT_TRUE(LoadYaml("buses: []\nstore:\n  enabled: false\n  path: \"\"\n").ok());
  ExpectErrorAt("buses: []\nmax_message_size: 2GiB\nlimits:\n  max_buffered_bytes: 4GiB\n"
                "  max_connection_out_bytes: 2GiB\nstore:\n  max_bytes: 1GiB\n",
                "store.max_bytes", 7, "must be at least max_message_size (2GiB");
}

// libzmq's XSUB (a backend that connects, or inproc://) counts messages:
// recv_hwm full-size messages from one publisher must fit the process's
// byte budget. A bound tcp:// backend is native and does not use recv_hwm.
TEST_F(ConfigLoaderTest, PublisherQueueMustFitTheBufferBudget) {
  ExpectErrorAt("limits:\n  max_buffered_bytes: 64MiB\nbuses:\n  - name: x\n"
                "    backend: inproc://x-in\n    frontend: tcp://*:15001\n"
                "    recv_hwm: 100\n",
                "buses[0].recv_hwm", 7, "must not exceed limits.max_buffered_bytes (64MiB");
  EXPECT_TRUE(LoadYaml("limits:\n  max_buffered_bytes: 64MiB\nbuses:\n  - name: x\n"
                       "    backend: inproc://x-in\n    frontend: tcp://*:15001\n"
                       "    recv_hwm: 64\n")
                  .ok());
  LoadedConfig native = LoadYaml(
      "limits:\n  max_buffered_bytes: 64MiB\nbuses:\n  - name: x\n"
      "    backend: tcp://*:15000\n    frontend: tcp://*:15001\n    recv_hwm: 100\n");
  EXPECT_TRUE(native.ok()) << AllErrors(native);
}

TEST_F(ConfigLoaderTest, BusBudgetsMustHoldOneMessage) {
  ExpectErrorAt("buses:\n  - name: x\n    backend: tcp://*:15000\n    frontend: tcp://*:15001\n"
                "    max_message_size: 8MiB\n    recv_hwm: 10\n    send_hwm_bytes: 4MiB\n",
                "buses[0].send_hwm_bytes", 7,
                "must be at least buses[0].max_message_size (8MiB");
  ExpectErrorAt("buses:\n  - name: x\n    backend: tcp://*:15000\n    frontend: tcp://*:15001\n"
                "    max_subscriptions: 10\n",
                "buses[0].max_subscriptions_per_subscriber", 0,
                "must not exceed buses[0].max_subscriptions (10");
}

// --- Echoed values are bounded.

TEST_F(ConfigLoaderTest, ValueEchoedAtMost80Bytes) {
  const std::string huge(100u << 20, '7');  // 100 MB of digits: a number out of range
  ConfigSources s;
  s.environment = {{"PLANTD_BROKER_MAX_SERVICES", huge}};
  const std::string e = OnlyError(LoadConfig(s));
  EXPECT_LT(e.size(), 300u) << e.substr(0, 300);
  EXPECT_NE(e.find("max_services: \"" + std::string(77, '7') +
                   "\u2026\" (104857600 bytes) (from env PLANTD_BROKER_MAX_SERVICES)"),
            std::string::npos)
      << e;

  // In a file, a value is cut the same way.
  const std::string big(512u << 10, 'x');
  const std::string f = OnlyError(LoadYaml("buses: []\nlog:\n  level: " + big + "\n"));
  EXPECT_LT(f.size(), 300u) << f.substr(0, 300);
  EXPECT_NE(f.find("log.level: \"" + std::string(77, 'x') + "\u2026\" (524288 bytes) (from " +
                   dir_ + "/broker.yaml:3)"),
            std::string::npos)
      << f;
}

TEST_F(ConfigLoaderTest, ConfigFileOverOneMebibyteRefusedUnread) {
  // yaml-cpp would take about a minute over a 100 MB value.
  ConfigSources s;
  s.file_path = WriteYaml("max_services: " + std::string(100u << 20, '7') + "\n");
  const auto start = std::chrono::steady_clock::now();
  const std::string e = OnlyError(LoadConfig(s));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
  EXPECT_LT(e.size(), 300u) << e.substr(0, 300);
  EXPECT_NE(e.find("larger than 1MiB; is this the configuration file?"), std::string::npos) << e;
  // Just under the limit is read.
  const std::string padding = "# " + std::string(kMaxConfigFileBytes - 20, '#') + "\n";
  LoadedConfig c = LoadYaml(padding + "buses: []\n");
  EXPECT_TRUE(c.ok()) << AllErrors(c);
}

TEST_F(ConfigLoaderTest, UnknownLongKeyIsCutInTheWarning) {
  const std::string key(1000, 'k');  // YAML allows at most 1024 characters in a plain key
  LoadedConfig c = LoadYaml("buses: []\n" + key + ": 1\n");
  ASSERT_TRUE(c.ok()) << AllErrors(c);
  ASSERT_EQ(c.warnings.size(), 1u);
  const std::string w = c.warnings[0].ToString();
  EXPECT_LT(w.size(), 250u);
  EXPECT_NE(w.find("\u2026 (1000 bytes)"), std::string::npos) << w;
}

TEST(EchoValue, EscapesAndCutsAtACharacterBoundary) {
  EXPECT_EQ(EchoValue("ok"), "\"ok\"");
  EXPECT_EQ(EchoValue("a\"b\\c\nd\x01"), "\"a\\\"b\\\\c\\nd\\x01\"");
  EXPECT_EQ(EchoValue(std::string(80, 'x')), "\"" + std::string(80, 'x') + "\"");
  const std::string cut = EchoValue(std::string(81, 'x'));
  EXPECT_EQ(cut, "\"" + std::string(77, 'x') + "\u2026\" (81 bytes)");
  // "é" is two bytes: a cut never splits it.
  std::string accents;
  for (int i = 0; i < 60; ++i) accents += "\u00e9";
  const std::string shown = EchoValue(accents);
  const std::string inner = shown.substr(1, shown.find("\u2026") - 1);
  EXPECT_EQ(inner.size() % 2, 0u) << shown;
  EXPECT_LE(inner.size() + 3, kMaxEcho);
  // Escapes count against the 80 bytes too.
  const std::string newlines = EchoValue(std::string(100, '\n'));
  EXPECT_LE(newlines.find("\u2026") - 1 + 3, kMaxEcho) << newlines;
  EXPECT_NE(newlines.find("(100 bytes)"), std::string::npos);
}

TEST_F(ConfigLoaderTest, UnknownEnvironmentVariableIsAWarning) {
  ConfigSources s;
  s.environment = {{"PLANTD_BROKER_LOG_LEVL", "debug"}, {"PLANTD_BROKER_TEST_STALL_MS", "5"}};
  LoadedConfig c = LoadConfig(s);
  EXPECT_TRUE(c.ok());
  ASSERT_EQ(c.warnings.size(), 1u);
  EXPECT_EQ(c.warnings[0].key, "PLANTD_BROKER_LOG_LEVL");
}

// --- The key table is the single source.

TEST(ConfigKeys, EveryKeyIsDocumentedWithTypeDefaultAndRange) {
  const std::vector<KeyDoc> docs = DocumentedKeys();
  std::set<std::string> seen;
  for (const KeyDoc& d : docs) {
    EXPECT_TRUE(seen.insert(d.key).second) << "twice: " << d.key;
    EXPECT_FALSE(d.doc.empty()) << d.key;
    EXPECT_FALSE(d.type.empty()) << d.key;
    EXPECT_FALSE(d.default_value.empty()) << d.key;
    if (d.type == "integer" || d.type == "size" || d.type == "duration" || d.type == "choice") {
      EXPECT_FALSE(d.range.empty()) << d.key;
    }
  }
  for (const char* key :
       {"limits.max_buffered_bytes", "limits.max_connection_out_bytes", "limits.write_timeout",
        "limits.handshake_timeout", "limits.max_connections",
        "limits.max_connections_per_address", "limits.max_client_services",
        "limits.max_unserved_services", "metrics.max_service_labels", "shutdown_grace",
        "store.enabled", "store.path", "store.max_requests", "store.max_bytes",
        "store.reply_retention", "buses[].send_hwm_bytes",
        "buses[].max_message_size", "buses[].max_subscriptions_per_subscriber",
        "buses[].max_subscriptions", "buses[].max_subscription_size", "socket_hwm"}) {
    EXPECT_EQ(seen.count(key), 1u) << key;
  }
  const std::string markdown = RenderKeys("markdown");
  for (const KeyDoc& d : docs) {
    EXPECT_NE(markdown.find("| `" + d.key + "` |"), std::string::npos) << d.key;
  }
  EXPECT_NE(markdown.find("| `socket_hwm` | integer | 1 to 100000000 | `100000` | "
                          "`PLANTD_BROKER_SOCKET_HWM`, `--socket-hwm` |"),
            std::string::npos)
      << markdown;
}

// The roff the man pages are made from: one tagged paragraph per documented
// key, keys and flags with \- so they render as the minus a shell takes,
// and \% so groff never hyphenates them.
TEST(ConfigKeys, ManPageFormatsListEveryKeyInRoff) {
  const std::string keys = RenderKeys("man");
  const std::string options = RenderKeys("man-options");
  const std::string environment = RenderKeys("man-environment");
  for (const KeyDoc& d : DocumentedKeys()) {
    std::string key;
    for (char c : d.key) key += c == '-' ? std::string("\\-") : std::string(1, c);
    EXPECT_NE(keys.find(".TP\n\\fB\\%" + key + "\\fR ("), std::string::npos) << d.key;
    if (d.flag.empty()) continue;
    std::string flag = "\\-\\-";
    for (char c : d.flag) flag += c == '-' ? std::string("\\-") : std::string(1, c);
    EXPECT_NE(options.find(".TP\n\\fB\\%" + flag + "\\fR \\fI"), std::string::npos) << d.flag;
    EXPECT_NE(environment.find(".TP\n\\fB\\%" + d.env + "\\fR\n"), std::string::npos) << d.env;
  }
  EXPECT_NE(keys.find(".SS Each entry of buses\n"), std::string::npos);
  EXPECT_NE(keys.find("(integer, 1 to 100000000; default \\fB\\%100000\\fR)"), std::string::npos);
  // No line of generated text may be taken for a request.
  for (const std::string* text : {&keys, &options, &environment}) {
    std::istringstream lines(*text);
    std::string line;
    while (std::getline(lines, line)) {
      if (line.rfind(".TP", 0) == 0 || line.rfind(".SS ", 0) == 0) continue;
      EXPECT_TRUE(line.empty() || (line[0] != '.' && line[0] != '\'')) << line;
    }
  }
  EXPECT_EQ(RenderKeys("roff"), "");
}

TEST(ConfigKeys, EveryScalarKeyHasAVariableAndAFlagNamedAfterIt) {
  for (const auto& spec : BrokerKeys()) {
    if (!spec.alias_of.empty() || spec.type == KeyType::kList) continue;
    std::string env = "PLANTD_BROKER_", flag;
    for (char c : spec.key) {
      env += c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      flag += c == '.' || c == '_' ? '-' : c;
    }
    EXPECT_EQ(spec.env, env);
    EXPECT_EQ(spec.flag, flag);
  }
  std::set<std::string> flags;
  for (const ConfigFlag& f : ConfigFlags()) flags.insert(f.flag);
  EXPECT_EQ(flags.count("limits-max-buffered-bytes"), 1u);
  EXPECT_EQ(flags.count("heartbeat-interval"), 1u);
}

TEST(ConfigKeys, DefaultsReadBackThroughTheirOwnParser) {
  BrokerOptions defaults;
  for (const auto& spec : BrokerKeys()) {
    if (!spec.get) continue;
    BrokerOptions o;
    EXPECT_TRUE(spec.set(o, spec.get(defaults)).ok()) << spec.key << " " << spec.get(defaults);
    EXPECT_EQ(spec.get(o), spec.get(defaults)) << spec.key;
    EXPECT_TRUE(spec.check(defaults).ok()) << spec.key;
  }
  for (const auto& spec : BusKeys()) {
    for (const BusOptions& bus : defaults.buses) {
      BusOptions b;
      EXPECT_TRUE(spec.set(b, spec.get(bus)).ok()) << spec.key;
      EXPECT_EQ(spec.get(b), spec.get(bus)) << spec.key;
    }
  }
}

TEST_F(ConfigLoaderTest, PrintedConfigWithEveryKeyChangedLoadsBack) {
  LoadedConfig first = LoadYaml(R"(
endpoint: tcp://127.0.0.1:7300
heartbeat_interval: 300ms
max_message_size: 1MiB
socket_hwm: 77
shutdown_grace: 1500ms
limits:
  max_buffered_bytes: 100MiB
  max_connection_out_bytes: 3MiB
  handshake_timeout: 1s
  max_connections: 99
  max_connections_per_address: 9
metrics:
  max_service_labels: 5
store:
  enabled: false
  reply_retention: 2h
buses:
  - name: x
    backend: tcp://*:15000
    frontend: tcp://*:15001
    send_hwm_bytes: 2MiB
    recv_hwm: 50
    max_subscription_size: 100
    delivery: block
)");
  ASSERT_TRUE(first.ok()) << first.errors[0].ToString();
  const std::string printed = RenderConfigYaml(first);
  LoadedConfig second = LoadYaml(printed);
  ASSERT_TRUE(second.ok()) << second.errors[0].ToString() << "\n" << printed;
  EXPECT_TRUE(second.warnings.empty()) << second.warnings[0].ToString();
  EXPECT_TRUE(ChangedKeys(first.options, second.options).empty());
  EXPECT_NE(printed.find("max_buffered_bytes: \"100MiB\"  # " + first.file_path + ":8"),
            std::string::npos)
      << printed;
  EXPECT_NE(printed.find("    send_hwm_bytes: \"2MiB\"  # " + first.file_path + ":22"),
            std::string::npos)
      << printed;
  EXPECT_NE(printed.find("max_services: 10000  # default"), std::string::npos) << printed;
}

TEST_F(ConfigLoaderTest, ChangedKeysSeesABusField) {
  BrokerOptions a, b;
  b.buses[0].max_subscriptions = 5;
  EXPECT_EQ(ChangedKeys(a, b), (std::vector<std::string>{"buses"}));
  b = a;
  b.limits.max_connections = 5;
  EXPECT_EQ(ChangedKeys(a, b), (std::vector<std::string>{"limits.max_connections"}));
}

}  // namespace
}  // namespace plantd

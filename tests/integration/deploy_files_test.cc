// The container files agree with the broker: the compose file publishes the
// broker's default ports and mounts the image's volume, Prometheus scrapes
// the default health port of the compose service, Grafana provisions a
// Prometheus data source and loads deploy/grafana-dashboard.json itself, and
// the Dockerfile exposes the same ports. The defaults are read from
// BrokerOptions and the key table, so moving a port or renaming a variable
// fails here rather than in someone's plant. (The image itself is built and
// run by tests/container, label `container`.)
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "config/config_keys.h"
#include "config/endpoint.h"
#include "config/options.h"

namespace plantd::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kSource = PLANTD_SOURCE_DIR;
const fs::path kDeploy = kSource / "deploy";

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

int PortOf(const std::string& endpoint) {
  Result<Endpoint> parsed = ParseEndpoint(endpoint);
  EXPECT_TRUE(parsed.ok()) << endpoint;
  return parsed.ok() ? parsed.value().port : -1;
}

// Every TCP port the broker binds on its built-in defaults.
std::set<int> DefaultPorts() {
  const BrokerOptions defaults;
  std::set<int> ports = {PortOf(defaults.endpoint), PortOf(defaults.client_endpoint),
                         defaults.health.port};
  for (const BusOptions& bus : defaults.buses) {
    for (const std::string* endpoint : {&bus.backend, &bus.frontend, &bus.capture}) {
      if (!endpoint->empty()) ports.insert(PortOf(*endpoint));
    }
  }
  return ports;
}

// "[ADDRESS:]HOST:CONTAINER[/tcp]" from a compose ports list; the address
// is empty when the port is published on every interface.
struct PublishedPort {
  std::string address;
  int host = 0;
  int container = 0;
};
std::vector<PublishedPort> PublishedPorts(const YAML::Node& service) {
  std::vector<PublishedPort> out;
  const std::regex form(R"((?:([0-9.]+):)?(\d+):(\d+)(/tcp)?)");
  for (const YAML::Node& entry : service["ports"]) {
    const std::string text = entry.as<std::string>();
    std::smatch m;
    EXPECT_TRUE(std::regex_match(text, m, form)) << "port entry " << text;
    if (!m.empty()) out.push_back({m[1].str(), std::stoi(m[2]), std::stoi(m[3])});
  }
  return out;
}

// A compose volume entry "SOURCE:TARGET[:ro]".
struct Mount {
  std::string source;
  std::string target;
};
std::vector<Mount> Mounts(const YAML::Node& service) {
  std::vector<Mount> out;
  for (const YAML::Node& entry : service["volumes"]) {
    const std::string text = entry.as<std::string>();
    const size_t colon = text.find(':');
    const size_t second = text.find(':', colon + 1);
    EXPECT_NE(colon, std::string::npos) << text;
    out.push_back({text.substr(0, colon), text.substr(colon + 1, second - colon - 1)});
  }
  return out;
}

// A bind mount's source as a path (compose resolves ./x from the file's
// directory); named volumes have none.
bool IsBindSource(const std::string& source) { return source.rfind(".", 0) == 0 || source[0] == '/'; }
fs::path Resolve(const std::string& source) { return fs::weakly_canonical(kDeploy / source); }

// The arguments of each Dockerfile instruction (continuation lines joined).
std::vector<std::string> Instructions(const std::string& name) {
  std::istringstream in(ReadFile(kSource / "Dockerfile"));
  std::vector<std::string> out;
  std::string line, logical;
  while (std::getline(in, line)) {
    if (logical.empty() && (line.empty() || line[0] == '#')) continue;
    if (!line.empty() && line.back() == '\\') {
      logical += line.substr(0, line.size() - 1) + " ";
      continue;
    }
    logical += line;
    if (logical.rfind(name + " ", 0) == 0) out.push_back(logical.substr(name.size() + 1));
    logical.clear();
  }
  return out;
}

bool IsBrokerVariable(const std::string& name) {
  if (name == "PLANTD_BROKER_CONFIG") return true;
  for (const auto& spec : BrokerKeys()) {
    if (spec.env == name) return true;
  }
  return false;
}

class DeployFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    compose_ = YAML::LoadFile((kDeploy / "compose.yaml").string());
    ASSERT_TRUE(compose_["services"].IsMap());
  }
  YAML::Node Service(const std::string& name) { return compose_["services"][name]; }

  YAML::Node compose_;
};

TEST_F(DeployFilesTest, ComposeBuildsTheRepositoryDockerfileAndPublishesEveryDefaultPort) {
  const YAML::Node broker = Service("broker");
  ASSERT_TRUE(broker.IsMap());
  const fs::path context = Resolve(broker["build"]["context"].as<std::string>());
  EXPECT_EQ(context, fs::canonical(kSource));
  EXPECT_TRUE(fs::exists(context / broker["build"]["dockerfile"].as<std::string>("Dockerfile")));

  std::set<int> published;
  for (const PublishedPort& p : PublishedPorts(broker)) {
    EXPECT_EQ(p.host, p.container) << "the README's ports are the same outside and in";
    EXPECT_EQ(p.address, "") << "the broker's ports are published on every interface";
    published.insert(p.container);
  }
  EXPECT_EQ(published, DefaultPorts());

  for (const auto& variable : broker["environment"]) {
    const std::string name = variable.first.as<std::string>();
    EXPECT_TRUE(IsBrokerVariable(name)) << name << " is no variable of the broker";
  }
}

TEST_F(DeployFilesTest, DockerfileExposesTheDefaultPortsAndKeepsTheStoreInItsVolume) {
  const std::vector<std::string> base = Instructions("ARG");
  ASSERT_FALSE(base.empty());
  EXPECT_EQ(base.front(), "BASE=debian:bookworm-slim");

  std::set<int> exposed;
  for (const std::string& line : Instructions("EXPOSE")) {
    std::istringstream ports(line);
    for (int port; ports >> port;) exposed.insert(port);
  }
  EXPECT_EQ(exposed, DefaultPorts());

  const std::vector<std::string> volumes = Instructions("VOLUME");
  ASSERT_EQ(volumes.size(), 1u);
  const std::string volume = json::parse(volumes[0]).at(0);

  std::string store_path;
  for (const std::string& line : Instructions("ENV")) {
    const std::regex assignment(R"((PLANTD_BROKER_[A-Z_]+)=(\S+))");
    for (std::sregex_iterator it(line.begin(), line.end(), assignment), end; it != end; ++it) {
      EXPECT_TRUE(IsBrokerVariable((*it)[1])) << (*it)[1] << " is no variable of the broker";
      if ((*it)[1] == "PLANTD_BROKER_STORE_PATH") store_path = (*it)[2];
    }
  }
  EXPECT_EQ(store_path.rfind(volume + "/", 0), 0u) << store_path << " is outside " << volume;

  bool compose_mounts_it = false;
  for (const Mount& m : Mounts(Service("broker"))) compose_mounts_it |= m.target == volume;
  EXPECT_TRUE(compose_mounts_it) << "compose keeps no volume at " << volume;

  const std::vector<std::string> checks = Instructions("HEALTHCHECK");
  ASSERT_EQ(checks.size(), 1u);
  EXPECT_NE(checks[0].find("/usr/lib/plantd-broker/healthcheck"), std::string::npos);
  EXPECT_NE(ReadFile(kDeploy / "container" / "healthcheck.sh").find("GET /livez"),
            std::string::npos);
  ASSERT_FALSE(Instructions("USER").empty());
  EXPECT_NE(Instructions("USER").back().rfind("0", 0), 0u) << "the image must not run as root";
}

TEST_F(DeployFilesTest, PrometheusScrapesTheBrokersHealthPort) {
  const YAML::Node prometheus = Service("prometheus");
  ASSERT_TRUE(prometheus.IsMap());
  fs::path config;
  for (const Mount& m : Mounts(prometheus)) {
    if (m.target == "/etc/prometheus/prometheus.yml") config = Resolve(m.source);
  }
  ASSERT_EQ(config, fs::canonical(kDeploy / "prometheus.yml"));

  const YAML::Node scrape = YAML::LoadFile(config.string())["scrape_configs"];
  const std::string expected = "broker:" + std::to_string(BrokerOptions{}.health.port);
  bool found = false;
  for (const YAML::Node& job : scrape) {
    EXPECT_EQ(job["metrics_path"].as<std::string>("/metrics"), "/metrics");
    for (const YAML::Node& group : job["static_configs"]) {
      for (const YAML::Node& target : group["targets"]) found |= target.as<std::string>() == expected;
    }
  }
  EXPECT_TRUE(found) << "no job scrapes " << expected;
}

TEST_F(DeployFilesTest, GrafanaLoadsTheShippedDashboardFromAProvisionedPrometheus) {
  const YAML::Node grafana = Service("grafana");
  ASSERT_TRUE(grafana.IsMap());
  fs::path provisioning;
  std::string dashboard_target;
  for (const Mount& m : Mounts(grafana)) {
    if (!IsBindSource(m.source)) continue;
    if (m.target == "/etc/grafana/provisioning") provisioning = Resolve(m.source);
    if (Resolve(m.source) == fs::canonical(kDeploy / "grafana-dashboard.json")) {
      dashboard_target = m.target;
    }
  }
  ASSERT_EQ(provisioning, fs::canonical(kDeploy / "grafana" / "provisioning"));
  ASSERT_FALSE(dashboard_target.empty()) << "compose does not mount deploy/grafana-dashboard.json";

  // The provider reads the directory the dashboard is mounted in.
  const YAML::Node providers =
      YAML::LoadFile((provisioning / "dashboards" / "plantd.yaml").string())["providers"];
  ASSERT_EQ(providers.size(), 1u);
  EXPECT_EQ(providers[0]["type"].as<std::string>(), "file");
  EXPECT_EQ(fs::path(dashboard_target).parent_path(),
            fs::path(providers[0]["options"]["path"].as<std::string>()));

  // A default Prometheus data source on the compose service's port, which
  // the dashboard's ${datasource} variable (type prometheus) picks.
  const YAML::Node sources =
      YAML::LoadFile((provisioning / "datasources" / "prometheus.yaml").string())["datasources"];
  ASSERT_EQ(sources.size(), 1u);
  EXPECT_EQ(sources[0]["type"].as<std::string>(), "prometheus");
  EXPECT_TRUE(sources[0]["isDefault"].as<bool>());
  EXPECT_EQ(sources[0]["url"].as<std::string>(), "http://prometheus:9090");
  bool publishes_9090 = false;
  for (const PublishedPort& p : PublishedPorts(Service("prometheus"))) {
    publishes_9090 |= p.container == 9090;
    EXPECT_EQ(p.address, "127.0.0.1") << "Prometheus has no authentication: loopback only";
  }
  EXPECT_TRUE(publishes_9090);
  bool publishes_3000 = false;
  for (const PublishedPort& p : PublishedPorts(Service("grafana"))) {
    publishes_3000 |= p.container == 3000;
    EXPECT_EQ(p.address, "127.0.0.1") << "Grafana starts as admin/admin: loopback only";
  }
  EXPECT_TRUE(publishes_3000);

  const json dashboard = json::parse(ReadFile(kDeploy / "grafana-dashboard.json"));
  bool has_variable = false;
  for (const json& variable : dashboard["templating"]["list"]) {
    if (variable["name"] == "datasource") {
      has_variable = variable["type"] == "datasource" && variable["query"] == "prometheus";
    }
  }
  EXPECT_TRUE(has_variable);
  ASSERT_FALSE(dashboard["panels"].empty());
  for (const json& panel : dashboard["panels"]) {
    if (panel.value("type", "") == "row") continue;  // a heading: no queries
    ASSERT_TRUE(panel.contains("datasource")) << panel["title"];
    EXPECT_EQ(panel["datasource"]["type"], "prometheus") << panel["title"];
  }
}

}  // namespace
}  // namespace plantd::test

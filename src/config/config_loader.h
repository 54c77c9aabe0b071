// Builds BrokerOptions from its four sources, highest first: command-line
// flags, PLANTD_BROKER_* environment, a YAML file, built-in defaults. Every
// value remembers where it came from, for error messages and --print-config.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/options.h"

namespace plantd {

struct ConfigSources {
  // --config; when unset, PLANTD_BROKER_CONFIG from `environment` is used.
  std::optional<std::string> file_path;
  // Flag values by canonical key, as collected by the command line parser.
  std::map<std::string, std::string> flags;
  // The process environment (only PLANTD_BROKER_* names are read).
  std::map<std::string, std::string> environment;
};

struct LoadedConfig {
  BrokerOptions options;
  OriginMap origins;
  std::string file_path;              // empty when no file was read
  std::vector<ConfigIssue> warnings;  // unknown keys: reported, not fatal
  std::vector<ConfigIssue> errors;    // any error: the broker must not start

  bool ok() const { return errors.empty(); }
};

LoadedConfig LoadConfig(const ConfigSources& sources);

// A larger configuration file is refused unread (a real one is a few KB).
inline constexpr size_t kMaxConfigFileBytes = size_t{1} << 20;

// The effective configuration as YAML, each value followed by its origin.
std::string RenderConfigYaml(const LoadedConfig& config);

// A flag the command line offers for a configuration key: every scalar key
// of the key table (config_keys.h) has one.
struct ConfigFlag {
  std::string flag;  // without the leading "--"
  std::string key;   // canonical key
  std::string help;  // the key's doc, range, default, key and variable
  std::string type;  // INTEGER, SIZE, DURATION, ...: what --help shows after the flag
};
std::vector<ConfigFlag> ConfigFlags();

// The process environment as a map.
std::map<std::string, std::string> ProcessEnvironment();

// The canonical keys whose values differ between two configurations
// ("buses" stands for any change to the list of buses).
std::vector<std::string> ChangedKeys(const BrokerOptions& before, const BrokerOptions& after);

}  // namespace plantd

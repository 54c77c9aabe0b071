// The configuration loader (config/config_loader.h) on any file an operator
// might write: YAML parsing, the key table, value parsing (sizes,
// durations, endpoints), the buses list and Validate(). A file that loads
// must print (--print-config) as YAML that loads back to the same options,
// as ConfigLoaderTest.PrintedConfigLoadsBackToTheSameOptions promises.
//
// Input: the file's text. The loader reads only files, so each input is
// written to a file in a directory of the harness's own.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "check.h"
#include "config/config_loader.h"

namespace {

using plantd::fuzz::Check;

std::string g_dir;

void RemoveDirectory() {
  std::error_code ignored;
  std::filesystem::remove_all(g_dir, ignored);
}

plantd::LoadedConfig LoadText(std::string_view text, const std::string& name) {
  const std::string path = g_dir + "/" + name;
  {
    std::ofstream file(path, std::ios::binary | std::ios::trunc);
    file.write(text.data(), static_cast<std::streamsize>(text.size()));
    Check(static_cast<bool>(file), "cannot write the configuration file");
  }
  plantd::ConfigSources sources;
  sources.file_path = path;
  return plantd::LoadConfig(sources);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  plantd::fuzz::QuietLogs();
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/plantd-fuzz-config-XXXXXX";
  Check(::mkdtemp(pattern.data()) != nullptr, "mkdtemp");
  g_dir = pattern;
  std::atexit(RemoveDirectory);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const plantd::LoadedConfig first =
      LoadText(std::string_view(reinterpret_cast<const char*>(data), size), "broker.yaml");
  for (const plantd::ConfigIssue& issue : first.errors) issue.ToString();
  for (const plantd::ConfigIssue& issue : first.warnings) issue.ToString();
  if (!first.ok()) return 0;
  const std::string printed = plantd::RenderConfigYaml(first);
  const plantd::LoadedConfig second = LoadText(printed, "printed.yaml");
  if (!second.ok()) {
    std::fprintf(stderr, "%s\n%s\n", second.errors[0].ToString().c_str(), printed.c_str());
  }
  Check(second.ok(), "the printed configuration does not load");
  Check(second.warnings.empty(), "the printed configuration has unknown keys");
  const std::vector<std::string> changed = plantd::ChangedKeys(first.options, second.options);
  for (const std::string& key : changed) std::fprintf(stderr, "changed: %s\n", key.c_str());
  if (!changed.empty()) std::fprintf(stderr, "%s\n", printed.c_str());
  Check(changed.empty(), "the printed configuration loads to other options");
  return 0;
}

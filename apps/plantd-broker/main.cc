// plantd-broker: the message hub of the plantd distributed control system.
//
// Exit status: 0 after a clean stop (SIGINT/SIGTERM) or --help/--version/
// --check-config/--print-config; 1 when an endpoint cannot be bound or the
// broker fails at run time; 2 for a usage or configuration error.

#include <signal.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "app/broker_app.h"
#include "build_info.h"
#include "config/config_loader.h"
#include "log/log.h"

namespace {

constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;

void PrintIssues(const plantd::LoadedConfig& config) {
  for (const plantd::ConfigIssue& w : config.warnings) {
    std::fprintf(stderr, "plantd-broker: warning: %s\n", w.ToString().c_str());
  }
  for (const plantd::ConfigIssue& e : config.errors) {
    std::fprintf(stderr, "plantd-broker: config error: %s\n", e.ToString().c_str());
  }
}

std::string JoinKeys(const std::vector<std::string>& keys) {
  std::string out;
  for (const std::string& k : keys) out += (out.empty() ? "" : ", ") + k;
  return out;
}

// SIGHUP: read the configuration again; apply what can change live.
void Reload(const plantd::ConfigSources& sources, plantd::LoadedConfig* current) {
  plantd::LoadedConfig next = plantd::LoadConfig(sources);
  for (const plantd::ConfigIssue& w : next.warnings) {
    PLANTD_LOG_WARN("config warning", {{"issue", w.ToString()}});
  }
  if (!next.ok()) {
    for (const plantd::ConfigIssue& e : next.errors) {
      PLANTD_LOG_ERROR("config reload rejected; keeping the running configuration",
                       {{"issue", e.ToString()}});
    }
    return;
  }
  std::vector<std::string> applied, need_restart;
  for (const std::string& key : plantd::ChangedKeys(current->options, next.options)) {
    (key == "log.level" || key == "log.format" ? applied : need_restart).push_back(key);
  }
  current->options.log = next.options.log;
  plantd::log::Configure(current->options.log);
  PLANTD_LOG_INFO("configuration reloaded",
                  {{"applied", applied.empty() ? "nothing changed" : JoinKeys(applied)},
                   {"needs_restart", JoinKeys(need_restart)},
                   {"log_level", plantd::LogLevelName(current->options.log.level)}});
}

// Every client and worker holds a descriptor: take all the process may have
// (Debian's soft default of 1024 would stop near a thousand peers).
void RaiseDescriptorLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) return;
  const rlim_t before = limit.rlim_cur;
  limit.rlim_cur = limit.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &limit) == 0) {
    PLANTD_LOG_DEBUG("raised the open-file limit", {{"from", before}, {"to", limit.rlim_cur}});
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"plantd-broker: Majordomo request-reply and pub/sub buses for plantd.\n"
               "Configuration, highest first: flags, PLANTD_BROKER_* environment, the YAML\n"
               "file (--config or PLANTD_BROKER_CONFIG), built-in defaults.",
               "plantd-broker"};
  std::string config_path;
  bool print_config = false;
  bool check_config = false;
  cli.add_option("-c,--config", config_path, "YAML configuration file");
  cli.add_flag("--print-config", print_config,
               "print the effective configuration and where each value came from, then exit");
  cli.add_flag("--check-config", check_config, "validate the configuration, then exit");
  cli.set_version_flag("-V,--version",
                       std::string("plantd-broker ") + plantd::kVersion + " (" +
                           plantd::kGitRevision + ", " + plantd::kBuildType + ", " +
                           plantd::kCompiler + ", libzmq " + std::to_string(ZMQ_VERSION_MAJOR) +
                           "." + std::to_string(ZMQ_VERSION_MINOR) + "." +
                           std::to_string(ZMQ_VERSION_PATCH) + ")");
  const std::vector<plantd::ConfigFlag> flags = plantd::ConfigFlags();
  std::vector<std::string> flag_values(flags.size());
  std::vector<CLI::Option*> flag_options(flags.size());
  for (size_t i = 0; i < flags.size(); ++i) {
    flag_options[i] = cli.add_option("--" + flags[i].flag, flag_values[i],
                                     flags[i].help + " [" + flags[i].key + "]");
  }
  try {
    cli.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return cli.exit(e);
  } catch (const CLI::ParseError& e) {
    cli.exit(e);
    return kExitUsage;
  }

  plantd::ConfigSources sources;
  sources.environment = plantd::ProcessEnvironment();
  if (!config_path.empty()) sources.file_path = config_path;
  for (size_t i = 0; i < flags.size(); ++i) {
    if (flag_options[i]->count() > 0) sources.flags[flags[i].key] = flag_values[i];
  }
  plantd::LoadedConfig config = plantd::LoadConfig(sources);
  PrintIssues(config);
  if (!config.ok()) return kExitUsage;
  if (print_config) {
    std::cout << plantd::RenderConfigYaml(config);
    return 0;
  }
  if (check_config) {
    std::printf("plantd-broker: configuration is valid%s%s\n",
                config.file_path.empty() ? "" : ": ", config.file_path.c_str());
    return 0;
  }

  plantd::log::Configure(config.options.log);
  RaiseDescriptorLimit();

  // Signals are taken by sigwait() below, never by a handler: block them
  // before any thread starts so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
#ifdef PLANTD_TEST_HOOKS
  sigaddset(&signals, SIGUSR1);
#endif
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  plantd::BrokerApp app(config.options);
  if (plantd::Status s = app.Start(); !s.ok()) {
    PLANTD_LOG_ERROR("cannot start", {{"error", s.message()}});
    spdlog::shutdown();
    return kExitRuntime;
  }

  while (true) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGHUP) {
      Reload(sources, &config);
      continue;
    }
#ifdef PLANTD_TEST_HOOKS
    if (sig == SIGUSR1) {
      auto it = sources.environment.find("PLANTD_BROKER_TEST_STALL_MS");
      const int ms = it == sources.environment.end() ? 4000 : std::atoi(it->second.c_str());
      PLANTD_LOG_WARN("test hook: stalling the core loop", {{"ms", ms}});
      app.StallCoreForTest(ms);
      continue;
    }
#endif
    PLANTD_LOG_INFO("stopping", {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
    break;
  }
  app.Stop();
  PLANTD_LOG_INFO("stopped");
  spdlog::shutdown();
  return 0;
}

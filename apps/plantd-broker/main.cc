// plantd-broker: the message hub of the plantd distributed control system.
//
// Exit status: 0 after a clean stop (SIGINT/SIGTERM) or --help/--version/
// --check-config/--print-config/--backup; 1 when an endpoint cannot be bound,
// the request store cannot be opened or backed up, or the broker fails at run
// time; 2 for a usage or configuration error.

#include <signal.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>

#include "app/broker_app.h"
#include "app/process_status.h"
#include "app/systemd_notifier.h"
#include "build_info.h"
#include "config/config_keys.h"
#include "config/config_loader.h"
#include "log/log.h"
#include "store/sqlite_store.h"

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
void Reload(const plantd::ConfigSources& sources, plantd::LoadedConfig* current,
            plantd::BrokerApp* app) {
  plantd::LoadedConfig next = plantd::LoadConfig(sources);
  // The authorized client keys are reread even when the rest of the file
  // is refused: adding or removing a key is the everyday reason for a
  // SIGHUP. The keys listed in the file itself are taken from it only when
  // it loads and the security it runs under is the one in force: a new
  // mechanism or key directory needs a restart, and applying the list
  // alone (say, keys moved from the list into a new directory) would lock
  // their owners out.
  const plantd::SecurityOptions& running = current->options.security;
  const bool list_live = next.ok() && running.mechanism == plantd::SecurityMechanism::kCurve &&
                         next.options.security.mechanism == running.mechanism &&
                         next.options.security.authorized_keys_dir == running.authorized_keys_dir;
  const plantd::Status keys =
      app->ReloadSecurity(list_live ? &next.options.security.authorized_keys : nullptr);
  if (!keys.ok()) {
    PLANTD_LOG_ERROR("authorized keys not reloaded; keeping the keys in use",
                     {{"error", keys.message()}});
  }
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
    if (key == "security.authorized_keys") {
      if (!list_live) {
        need_restart.push_back(key);
      } else if (keys.ok()) {
        applied.push_back(key);
      }  // else the error above says why not
      continue;
    }
    (key == "log.level" || key == "log.format" ? applied : need_restart).push_back(key);
  }
  current->options.log = next.options.log;
  if (list_live && keys.ok()) {
    current->options.security.authorized_keys = next.options.security.authorized_keys;
  }
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

int Main(int argc, char** argv) {
  // A write past a file size limit (RLIMIT_FSIZE: ulimit -f, systemd's
  // LimitFSIZE=) must fail with EFBIG, which the store reports as a full
  // disk and survives, rather than kill the whole broker with SIGXFSZ.
  signal(SIGXFSZ, SIG_IGN);
  CLI::App cli{
      "plantd-broker: Majordomo request-reply and pub/sub buses for plantd.\n"
      "Configuration, highest first: flags, PLANTD_BROKER_* environment, the YAML\n"
      "file (--config or PLANTD_BROKER_CONFIG), built-in defaults. Every key has a\n"
      "flag and a variable named after it (limits.max_connections:\n"
      "--limits-max-connections, PLANTD_BROKER_LIMITS_MAX_CONNECTIONS); per-bus keys\n"
      "are set in the file. All keys: docs/configuration.md.",
      "plantd-broker"};
  std::string config_path;
  bool print_config = false;
  bool check_config = false;
  std::string print_keys;
  cli.add_option("-c,--config", config_path, "YAML configuration file");
  cli.add_flag("--print-config", print_config,
               "print the effective configuration and where each value came from, then exit");
  cli.add_flag("--check-config", check_config, "validate the configuration, then exit");
  std::string backup_path;
  cli.add_option("--backup", backup_path,
                 "copy the durable request store (store.path) to FILE, consistently, while a "
                 "broker may be running on it; then exit");
  // Hidden: regenerates the key tables of docs/configuration.md (markdown)
  // and README.md (summary), and the generated parts of the man pages
  // (man, man-options, man-environment; cmake/ManPages.cmake), from the key
  // table.
  cli.add_option("--print-keys", print_keys,
                 "print the table of keys: markdown, summary, man, man-options or "
                 "man-environment")
      ->group("");
  cli.set_version_flag("-V,--version", std::string("plantd-broker ") + plantd::kVersion + " (" +
                                           plantd::kGitRevision + ", " + plantd::kBuildType + ", " +
                                           plantd::kCompiler + ", libzmq " +
                                           std::to_string(ZMQ_VERSION_MAJOR) + "." +
                                           std::to_string(ZMQ_VERSION_MINOR) + "." +
                                           std::to_string(ZMQ_VERSION_PATCH) + ")");
  const std::vector<plantd::ConfigFlag> flags = plantd::ConfigFlags();
  std::vector<std::string> flag_values(flags.size());
  std::vector<CLI::Option*> flag_options(flags.size());
  for (size_t i = 0; i < flags.size(); ++i) {
    flag_options[i] = cli.add_option("--" + flags[i].flag, flag_values[i], flags[i].help)
                          ->type_name(flags[i].type)
                          ->group("Configuration keys");
  }
  try {
    cli.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return cli.exit(e);
  } catch (const CLI::ParseError& e) {
    cli.exit(e);
    return kExitUsage;
  }

  if (!print_keys.empty()) {
    const std::string table = plantd::RenderKeys(print_keys);
    if (table.empty()) {
      std::fprintf(stderr,
                   "plantd-broker: --print-keys: expected markdown, summary, man, "
                   "man-options or man-environment\n");
      return kExitUsage;
    }
    std::cout << table;
    return 0;
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
  if (!backup_path.empty()) {
    const std::string& from = config.options.store.path;
    if (plantd::Status s = plantd::store::BackupSqliteStore(from, backup_path); !s.ok()) {
      std::fprintf(stderr, "plantd-broker: backup of %s to %s failed: %s\n", from.c_str(),
                   backup_path.c_str(), s.message().c_str());
      return kExitRuntime;
    }
    std::printf("plantd-broker: backed up the request store %s to %s\n", from.c_str(),
                backup_path.c_str());
    return 0;
  }
  if (check_config) {
    std::printf("plantd-broker: configuration is valid%s%s\n", config.file_path.empty() ? "" : ": ",
                config.file_path.c_str());
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

  // Under systemd: READY=1 now that every endpoint is bound; then, between
  // signals, WATCHDOG=1 while every loop turns (a stuck core stops the
  // pings, and systemd restarts the broker) and a fresh STATUS= line.
  plantd::SystemdNotifier systemd;
  plantd::ProcessStatus status(&app, config.options);
  systemd.Ready(status.Summary(std::chrono::steady_clock::now()));
  constexpr std::chrono::milliseconds kStatusPeriod{5000};
  const std::chrono::milliseconds wake =
      std::min(kStatusPeriod, systemd.watchdog_period().value_or(kStatusPeriod));
  auto next_status = std::chrono::steady_clock::now() + kStatusPeriod;

  while (true) {
    int sig = 0;
    if (systemd.enabled()) {
      timespec timeout{static_cast<time_t>(wake.count() / 1000),
                       static_cast<long>((wake.count() % 1000) * 1000000)};
      sig = sigtimedwait(&signals, nullptr, &timeout);
      const auto now = std::chrono::steady_clock::now();
      if (systemd.watchdog_period() && status.Alive(now)) systemd.Watchdog();
      if (now >= next_status) {
        systemd.Status(status.Summary(now));
        next_status = now + kStatusPeriod;
      }
      if (sig < 0) continue;  // timed out (EAGAIN) or interrupted
    } else if (sigwait(&signals, &sig) != 0) {
      continue;
    }
    if (sig == SIGHUP) {
      systemd.Reloading();
      Reload(sources, &config, &app);
      systemd.Ready(status.Summary(std::chrono::steady_clock::now()));
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
  systemd.Stopping();
  // Requests in flight get shutdown_grace; an idle HTTP keep-alive
  // connection gets no more than this.
  const bool clean = app.Stop(std::chrono::milliseconds(200));
  PLANTD_LOG_INFO("stopped");
  if (!clean) {
    // The HTTP server still holds a thread (see BrokerApp::Stop): leave
    // without destroying what it reads.
    spdlog::default_logger_raw()->flush();
    std::fflush(nullptr);
    std::_Exit(0);
  }
  spdlog::shutdown();
  return 0;
}

int main(int argc, char** argv) {
  // Errors are values everywhere below; what could still throw is running
  // out of memory. Say so and exit with a failure instead of aborting.
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "plantd-broker: fatal: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "plantd-broker: fatal: unknown exception\n");
  }
  return kExitRuntime;
}

#include "lib_bench_common.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "child_process.h"

namespace plantd::bench {

const char* EngineName(Engine engine) {
  switch (engine) {
    case Engine::kNative: return "native";
    case Engine::kLibzmq: return "libzmq";
    case Engine::kAuto: break;
  }
  return "auto";
}

bool ParseEngines(const std::string& list, const char* program, std::vector<Engine>* out) {
  out->clear();
  for (size_t begin = 0; begin <= list.size();) {
    const size_t end = std::min(list.find(',', begin), list.size());
    const std::string name = list.substr(begin, end - begin);
    if (name == "native") {
      out->push_back(Engine::kNative);
    } else if (name == "libzmq") {
      out->push_back(Engine::kLibzmq);
    } else {
      std::fprintf(stderr, "%s: --engines takes native and/or libzmq, not '%s'\n", program,
                   name.c_str());
      return false;
    }
    begin = end + 1;
  }
  return true;
}

BrokerConfigDir::BrokerConfigDir(const std::string& prefix, const std::string& yaml) {
  std::string path = "/tmp/" + prefix + "-XXXXXX";
  if (mkdtemp(path.data()) == nullptr) return;
  dir_ = path;
  std::ofstream(config()) << yaml;
}

BrokerConfigDir::~BrokerConfigDir() {
  if (dir_.empty()) return;
  std::remove(config().c_str());
  std::remove(log().c_str());
  rmdir(dir_.c_str());
}

NatsRun RunNatsbench(const std::string& nats_server, const std::string& natsbench,
                     const std::string& arguments, int server_cpu, int load_cpu) {
  NatsRun run;
  const int port = FreeTcpPort();
  ChildProcess server({FindProgram(nats_server), "-a", "127.0.0.1", "-p", std::to_string(port)},
                      server_cpu, "/dev/null");
  if (!WaitForTcpPort(port, 10000)) {
    run.error = "nats-server did not listen";
    return run;
  }
  const std::string command = "taskset -c " + std::to_string(load_cpu) + " '" + natsbench + "' " +
                              arguments + " --port " + std::to_string(port) + " 2>&1";
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) {
    run.error = "cannot run natsbench";
    return run;
  }
  const double cpu_before = ProcessCpuSeconds(server.pid());
  char buffer[4096];
  while (fgets(buffer, sizeof(buffer), p) != nullptr) run.output += buffer;
  const int status = pclose(p);
  run.server_cpu_s = ProcessCpuSeconds(server.pid()) - cpu_before;
  if (status != 0) run.error = "natsbench failed: " + run.output.substr(0, 300);
  return run;
}

double NumberAfter(const std::string& text, const std::string& key) {
  const size_t at = text.find(key);
  return at == std::string::npos ? 0 : std::strtod(text.c_str() + at + key.size(), nullptr);
}

}  // namespace plantd::bench

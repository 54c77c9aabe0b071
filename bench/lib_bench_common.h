// What the libplantd benchmarks (plantd-lib-bench, plantd-lib-bus-bench)
// share: engine names on the command line, a broker's temporary config
// directory, and a natsbench run against a nats-server of its own.
#pragma once

#include <string>
#include <vector>

#include "plantd/engine.h"

namespace plantd::bench {

// "native" or "libzmq" ("auto" for kAuto).
const char* EngineName(Engine engine);

// A comma-separated list of engine names into `*out`; false (and a line on
// stderr naming `program` and the bad name) for anything else.
bool ParseEngines(const std::string& list, const char* program, std::vector<Engine>* out);

// A fresh /tmp/PREFIX-XXXXXX holding broker.yaml (`yaml`), and the broker's
// log beside it; both and the directory are removed when this goes.
class BrokerConfigDir {
 public:
  BrokerConfigDir(const std::string& prefix, const std::string& yaml);
  ~BrokerConfigDir();
  BrokerConfigDir(const BrokerConfigDir&) = delete;
  BrokerConfigDir& operator=(const BrokerConfigDir&) = delete;

  bool ok() const { return !dir_.empty(); }
  std::string config() const { return dir_ + "/broker.yaml"; }
  std::string log() const { return dir_ + "/broker.log"; }

 private:
  std::string dir_;  // empty when it could not be made
};

// natsbench (`natsbench` path) with `arguments` pinned to `load_cpu`,
// against a nats-server (looked up as a shell would) on a free port pinned
// to `server_cpu`. `output` is what natsbench printed; `error` is set when
// a step failed (its exit status included).
struct NatsRun {
  std::string output;
  double server_cpu_s = 0;  // while natsbench ran
  std::string error;
};
NatsRun RunNatsbench(const std::string& nats_server, const std::string& natsbench,
                     const std::string& arguments, int server_cpu, int load_cpu);

// The number right after `key` in `text`, 0 when `key` is absent.
double NumberAfter(const std::string& text, const std::string& key);

}  // namespace plantd::bench

// plantd-durable-bench: the speed requirement of issue 14. In one run,
// alternating, round after round:
//
//   jetstream          nats-server -js, a file-backed stream, publishes each
//                      waiting for its PubAck (the baseline)
//   broker-durable     the real plantd-broker with its SQLite store: 9/TSP
//                      titanic.request, each waiting for ["200", UUID], which
//                      the broker sends only after the group commit holding
//                      the request is synced (docs/durability.md)
//   broker-nondurable  the same broker, ordinary request/reply to echo workers
//
// with the same clients, requests in flight per client and body size, the
// servers pinned to --server-cpu and the load to --load-cpu, and the load
// generators of one design (a thread and a blocking socket per connection).
// After each durable run the stored count is checked against the number
// acknowledged (the broker's SQLite file, the stream's state).
//
//   plantd-durable-bench [--clients 4] [--inflight 16] [--size 64] [--workers 4]
//       [--duration 5] [--warmup 1] [--rounds 2] [--server-cpu 0] [--load-cpu 1]
//       [--dir /tmp] [--broker PATH] [--nats-server PATH]
//       [--credit 16] [--durable-workers 0] [--audit-syncs SECONDS]
//       [--targets jetstream,broker-durable,broker-nondurable]
//
// --durable-workers N: durable requests go to echo workers (dispatched and
// their replies stored too); 0 (default): to a service with no worker, as
// the stream has no consumer. --audit-syncs S: also runs each durable server
// for S seconds under strace -c and prints the fsync/fdatasync calls it made
// per acknowledgement: whether an acknowledgement waited for a sync.
#include <signal.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "child_process.h"
#include "jetstream_load.h"
#include "zmtp_load.h"

namespace {

using plantd::bench::ChildProcess;
using plantd::bench::HttpGet;
using plantd::bench::LoadResult;
using plantd::bench::MetricValue;

struct Options {
  int clients = 4;
  int inflight = 16;
  size_t size = 64;
  int workers = 4;  // echo workers of the non-durable run
  int credit = 16;  // requests each worker may hold (docs/credit.md)
  int durable_workers = 0;
  double duration_s = 5;
  double warmup_s = 1;
  int rounds = 2;
  int server_cpu = 0;
  int load_cpu = 1;
  std::string dir = "/tmp";
  std::string broker = PLANTD_BROKER_BINARY;
  std::string nats_server;
  double audit_syncs_s = 0;
  std::string targets = "jetstream,broker-durable,broker-nondurable";
  bool Runs(const std::string& target) const {
    return ("," + targets + ",").find("," + target + ",") != std::string::npos;
  }
};

// Empty if the options make sense, else why not.
std::string Validate(const Options& o) {
  if (o.clients < 1 || o.inflight < 1) return "--clients and --inflight must be at least 1";
  if (o.size < 1 || o.size > 512 * 1024) return "--size must be 1 B to 512 KiB";
  if (o.workers < 1) return "--workers must be at least 1";
  if (o.credit < 1) return "--credit must be at least 1";
  if (o.durable_workers < 0) return "--durable-workers must be 0 or more";
  if (o.duration_s <= 0 || o.warmup_s < 0 || o.rounds < 1) return "--duration, --rounds > 0";
  if (o.nats_server.empty()) return "nats-server not found (scripts/install-deps.sh installs it)";
  return {};
}

std::string FindOnPath(const std::string& name) {
  for (const char* dir : {"/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"}) {
    const std::string p = std::string(dir) + "/" + name;
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return {};
}

std::string CommandOutput(const std::string& command) {
  std::string out;
  if (FILE* p = popen(command.c_str(), "r")) {
    char buf[512];
    while (fgets(buf, sizeof(buf), p) != nullptr) out += buf;
    pclose(p);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

std::string LoadAverage() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

double Percentile(std::vector<uint64_t> v, double q) {
  if (v.empty()) return NAN;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  return static_cast<double>(v[k]) / 1000.0;
}

double Median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// A fresh directory for one server's files, removed with everything in it.
class TempDir {
 public:
  explicit TempDir(const std::string& parent) {
    std::string tmpl = parent + "/plantd-durable-bench-XXXXXX";
    if (mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// What the broker's store file holds once the broker has stopped.
struct StoreFileCheck {
  int64_t requests = -1;
  std::string journal_mode;
  std::string error;
};

StoreFileCheck CheckStoreFile(const std::string& path) {
  StoreFileCheck r;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    r.error = std::string("open: ") + sqlite3_errmsg(db);
    sqlite3_close(db);
    return r;
  }
  auto query = [&](const char* sql, auto&& on_row) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db, sql, -1, &s, nullptr) != SQLITE_OK) {
      r.error = std::string(sql) + ": " + sqlite3_errmsg(db);
      return;
    }
    if (sqlite3_step(s) == SQLITE_ROW) on_row(s);
    sqlite3_finalize(s);
  };
  query("SELECT count(*) FROM requests", [&](sqlite3_stmt* s) { r.requests = sqlite3_column_int64(s, 0); });
  query("PRAGMA journal_mode", [&](sqlite3_stmt* s) {
    const unsigned char* t = sqlite3_column_text(s, 0);
    r.journal_mode = t != nullptr ? reinterpret_cast<const char*>(t) : "";
  });
  sqlite3_close(db);
  return r;
}

// strace -c output: calls by system call name.
std::map<std::string, uint64_t> ParseStraceSummary(const std::string& file) {
  std::map<std::string, uint64_t> calls;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::vector<std::string> w;
    for (std::string x; words >> x;) w.push_back(x);
    // % time, seconds, usecs/call, calls, [errors,] syscall
    if (w.size() < 5 || !std::isdigit(static_cast<unsigned char>(w[0][0]))) continue;
    if (w.back() == "total") continue;
    calls[w.back()] = std::strtoull(w[3].c_str(), nullptr, 10);
  }
  return calls;
}

constexpr const char* kSyncCalls = "trace=fsync,fdatasync,sync_file_range,syncfs,msync";

// The pid of the only child of `pid` (the server strace started), or -1.
int ChildPidOf(int pid) {
  for (int tries = 0; tries < 200; ++tries) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
    int child = -1;
    if (f >> child && child > 0) return child;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return -1;
}

struct Run {
  std::string target;
  LoadResult load;
  double duration_s = 0;
  int64_t stored = -1;  // durable runs: what the store holds afterwards
  double commits = NAN;
  double syncs = NAN;  // of the WAL; one may cover several commits
  double committed_ops = NAN;
  double commit_seconds = NAN;  // summed over the commits
  long long write_bytes = -1;   // the server's, over the whole run
  std::string sync_note;
  bool audited = false;                        // ran under strace -c
  std::map<std::string, uint64_t> sync_calls;  // audited runs only
  std::string error;

  double rate() const { return static_cast<double>(load.completed_in_window) / duration_s; }
};

void PrintRun(const Options& o, const Run& r) {
  const LoadResult& l = r.load;
  std::printf(
      "RESULT durable target=%s clients=%d inflight=%d size=%zu server_cpu=%d load_cpu=%d "
      "acks_per_s=%.0f p50_us=%.1f p99_us=%.1f server_cpu_us_per_ack=%.2f acked_total=%llu "
      "stored=%lld",
      r.target.c_str(), o.clients, o.inflight, o.size, o.server_cpu, o.load_cpu, r.rate(),
      Percentile(l.latencies_ns, 0.5), Percentile(l.latencies_ns, 0.99),
      l.completed_in_window
          ? l.server_cpu_seconds * 1e6 / static_cast<double>(l.completed_in_window)
          : NAN,
      static_cast<unsigned long long>(l.completed_total), static_cast<long long>(r.stored));
  if (!std::isnan(r.commits) && r.commits > 0) {
    std::printf(" commits=%.0f syncs=%.0f ops_per_commit=%.1f commit_ms=%.2f", r.commits,
                r.syncs, r.committed_ops / r.commits, r.commit_seconds * 1e3 / r.commits);
  }
  if (r.write_bytes >= 0 && l.completed_total > 0) {
    std::printf(" disk_write_bytes_per_ack=%.0f",
                static_cast<double>(r.write_bytes) / static_cast<double>(l.completed_total));
  }
  std::printf(" lost=%llu duplicated=%llu mismatched=%llu load_avg=%s",
              static_cast<unsigned long long>(l.lost),
              static_cast<unsigned long long>(l.duplicated),
              static_cast<unsigned long long>(l.mismatched), LoadAverage().c_str());
  if (r.audited) {
    uint64_t syncs = 0;
    for (const auto& [name, n] : r.sync_calls) {
      std::printf(" %s=%llu", name.c_str(), static_cast<unsigned long long>(n));
      syncs += n;
    }
    std::printf(" syncs=%llu syncs_per_ack=%.4f", static_cast<unsigned long long>(syncs),
                l.completed_total ? static_cast<double>(syncs) /
                                        static_cast<double>(l.completed_total)
                                  : NAN);
  }
  std::printf(" sync=%s\n", r.sync_note.c_str());
  if (!l.error.empty()) std::printf("   error: %s\n", l.error.c_str());
  if (!l.first_mismatch.empty()) std::printf("   first mismatch: %s\n", l.first_mismatch.c_str());
  if (!r.error.empty()) std::printf("   error: %s\n", r.error.c_str());
  std::fflush(stdout);
}

// argv for the server, under strace -c when auditing.
std::vector<std::string> MaybeTraced(std::vector<std::string> argv, const std::string& trace_file) {
  if (trace_file.empty()) return argv;
  std::vector<std::string> traced = {"/usr/bin/strace", "-f", "-qq", "-c", "-o", trace_file,
                                     "-e", kSyncCalls};
  traced.insert(traced.end(), argv.begin(), argv.end());
  return traced;
}

// Stops a server started by MaybeTraced: the server itself when traced (so
// strace writes its summary and exits), then the process we started.
void StopServer(ChildProcess& child, bool traced) {
  if (traced) {
    const int server = ChildPidOf(child.pid());
    if (server > 0) kill(server, SIGTERM);
    for (int i = 0; i < 500 && waitpid(child.pid(), nullptr, WNOHANG) == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  child.Stop();
}

Run RunBroker(const Options& o, bool durable, double duration_s, bool audit) {
  const int port = plantd::bench::FreeTcpPort();
  const int worker_port = plantd::bench::FreeTcpPort();
  const int health_port = plantd::bench::FreeTcpPort();
  Run r;
  r.target = durable ? "broker-durable" : "broker-nondurable";
  r.duration_s = duration_s;
  TempDir dir(o.dir);
  if (dir.path().empty()) {
    r.error = "cannot make a directory under " + o.dir;
    return r;
  }
  const std::string store = dir.path() + "/store.db";
  const std::string config = dir.path() + "/broker.yaml";
  std::ofstream(config) << "endpoint: tcp://127.0.0.1:" << port
                        << "\nclient_endpoint: tcp://127.0.0.1:" << worker_port
                        << "\ntransport: native\nbuses: []\n"
                        << "health:\n  bind: 127.0.0.1\n  port: " << health_port
                        << "\nlog:\n  level: warn\n"
                        << "store:\n  enabled: true\n  path: " << store
                        << "\n  max_requests: 100000000\n  max_bytes: 512GiB\n";
  const std::string trace = audit ? dir.path() + "/strace.txt" : "";
  ChildProcess broker(MaybeTraced({o.broker, "--config", config}, trace), o.server_cpu,
                      dir.path() + "/broker.log");
  if (!plantd::bench::WaitForTcpPort(port, 10000)) {
    r.error = "the broker did not listen on port " + std::to_string(port);
    return r;
  }
  plantd::bench::ZmtpLoadOptions z;
  z.port = port;
  z.clients = o.clients;
  z.inflight = o.inflight;
  z.size = o.size;
  z.warmup_s = o.warmup_s;
  z.duration_s = duration_s;
  z.credit = o.credit;
  if (durable) {
    z.workers = o.durable_workers;
    z.durable_service = o.durable_workers > 0 ? "echo" : "sink";
  } else {
    z.workers = o.workers;
  }
  const int pid = broker.pid();
  z.server_cpu_seconds = [pid] { return plantd::bench::ProcessCpuSeconds(pid); };
  const long long written = plantd::bench::ProcessWriteBytes(pid);
  r.load = plantd::bench::RunZmtpLoad(z);
  if (written >= 0 && !audit) r.write_bytes = plantd::bench::ProcessWriteBytes(pid) - written;
  const std::string metrics = HttpGet(health_port, "/metrics");
  r.commits = MetricValue(metrics, "plantd_store_commits_total");
  r.syncs = MetricValue(metrics, "plantd_store_syncs_total");
  r.committed_ops = MetricValue(metrics, "plantd_store_commit_batch_size_sum");
  r.commit_seconds = MetricValue(metrics, "plantd_store_commit_duration_seconds_sum");
  StopServer(broker, audit);
  if (audit) {
    r.audited = true;
    r.sync_calls = ParseStraceSummary(trace);
  }
  if (durable) {
    const StoreFileCheck check = CheckStoreFile(store);
    r.stored = check.requests;
    r.sync_note = "before-ack(journal_mode=" + check.journal_mode + ",wal_synced_by_store)";
    if (!check.error.empty()) {
      r.error = "store file: " + check.error;
    } else if (check.requests < static_cast<int64_t>(r.load.completed_total)) {
      r.error = "the store holds fewer requests than were acknowledged";
    }
  } else {
    r.sync_note = "none(not durable)";
  }
  return r;
}

Run RunJetStream(const Options& o, double duration_s, bool sync_always, bool audit) {
  const int port = plantd::bench::FreeTcpPort();
  Run r;
  r.target = sync_always ? "jetstream-sync-always" : "jetstream";
  r.duration_s = duration_s;
  TempDir dir(o.dir);
  if (dir.path().empty()) {
    r.error = "cannot make a directory under " + o.dir;
    return r;
  }
  std::vector<std::string> argv;
  if (sync_always) {
    const std::string config = dir.path() + "/nats.conf";
    std::ofstream(config) << "listen: 127.0.0.1:" << port << "\njetstream {\n  store_dir: \""
                          << dir.path() << "/js\"\n  sync_interval: always\n}\n";
    argv = {o.nats_server, "-c", config};
  } else {
    argv = {o.nats_server, "-js", "-sd", dir.path() + "/js", "-a", "127.0.0.1", "-p",
            std::to_string(port)};
  }
  const std::string trace = audit ? dir.path() + "/strace.txt" : "";
  ChildProcess server(MaybeTraced(argv, trace), o.server_cpu, dir.path() + "/nats.log");
  if (!plantd::bench::WaitForTcpPort(port, 10000)) {
    r.error = "nats-server did not listen on port " + std::to_string(port);
    return r;
  }
  plantd::bench::JetStreamLoadOptions j;
  j.port = port;
  j.clients = o.clients;
  j.inflight = o.inflight;
  j.size = o.size;
  j.warmup_s = o.warmup_s;
  j.duration_s = duration_s;
  if (std::string e = plantd::bench::CreateFileStream(j); !e.empty()) {
    r.error = e;
    return r;
  }
  const int pid = server.pid();
  j.server_cpu_seconds = [pid] { return plantd::bench::ProcessCpuSeconds(pid); };
  const long long written = plantd::bench::ProcessWriteBytes(pid);
  r.load = plantd::bench::RunJetStreamLoad(j);
  if (written >= 0 && !audit) r.write_bytes = plantd::bench::ProcessWriteBytes(pid) - written;
  std::string error;
  r.stored = plantd::bench::StreamMessageCount(j, &error);
  if (!error.empty()) {
    r.error = error;
  } else if (r.stored < static_cast<int64_t>(r.load.completed_total)) {
    r.error = "the stream holds fewer messages than were acknowledged";
  }
  r.sync_note = sync_always ? "per-write(sync_interval=always)"
                            : "periodic(file_store,default_sync_interval=2m)";
  StopServer(server, audit);
  if (audit) {
    r.audited = true;
    r.sync_calls = ParseStraceSummary(trace);
  }
  return r;
}

// Whether this nats-server accepts `sync_interval: always` (2.10 and later);
// 2.9 answers "unknown field".
bool NatsSupportsSyncAlways(const Options& o, std::string* answer) {
  TempDir dir(o.dir);
  const std::string config = dir.path() + "/probe.conf";
  std::ofstream(config) << "listen: 127.0.0.1:1\njetstream {\n  store_dir: \"" << dir.path()
                        << "/js\"\n  sync_interval: always\n}\n";
  *answer = CommandOutput(o.nats_server + " -c " + config + " -t 2>&1");
  return answer->find("unknown field") == std::string::npos &&
         answer->find("rror") == std::string::npos;
}

std::string Arg(int argc, char** argv, const char* key, const std::string& fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], key) == 0) return argv[i + 1];
  }
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  Options o;
  static const char* const kKeys[] = {
      "--clients", "--inflight",   "--size",        "--workers",     "--credit",
      "--durable-workers", "--duration", "--warmup", "--rounds",      "--server-cpu",
      "--load-cpu", "--dir",       "--broker",      "--nats-server", "--audit-syncs",
      "--targets"};
  for (int i = 1; i < argc; i += 2) {  // every option takes a value
    const bool known = std::any_of(std::begin(kKeys), std::end(kKeys),
                                   [&](const char* k) { return std::strcmp(argv[i], k) == 0; });
    if (!known || i + 1 >= argc) {
      std::fprintf(stderr, "plantd-durable-bench: %s %s (options: see the top of %s)\n",
                   known ? "no value for" : "unknown option", argv[i], __FILE__);
      return 2;
    }
  }
  o.clients = std::atoi(Arg(argc, argv, "--clients", "4").c_str());
  o.inflight = std::atoi(Arg(argc, argv, "--inflight", "16").c_str());
  o.size = std::strtoull(Arg(argc, argv, "--size", "64").c_str(), nullptr, 10);
  o.workers = std::atoi(Arg(argc, argv, "--workers", "4").c_str());
  o.credit = std::atoi(Arg(argc, argv, "--credit", "16").c_str());
  o.durable_workers = std::atoi(Arg(argc, argv, "--durable-workers", "0").c_str());
  o.duration_s = std::atof(Arg(argc, argv, "--duration", "5").c_str());
  o.warmup_s = std::atof(Arg(argc, argv, "--warmup", "1").c_str());
  o.rounds = std::atoi(Arg(argc, argv, "--rounds", "2").c_str());
  o.server_cpu = std::atoi(Arg(argc, argv, "--server-cpu", "0").c_str());
  o.load_cpu = std::atoi(Arg(argc, argv, "--load-cpu", "1").c_str());
  o.dir = Arg(argc, argv, "--dir", "/tmp");
  o.broker = Arg(argc, argv, "--broker", o.broker);
  o.nats_server = Arg(argc, argv, "--nats-server", FindOnPath("nats-server"));
  o.audit_syncs_s = std::atof(Arg(argc, argv, "--audit-syncs", "0").c_str());
  o.targets = Arg(argc, argv, "--targets", o.targets);
  if (std::string why = Validate(o); !why.empty()) {
    std::fprintf(stderr, "plantd-durable-bench: %s\n", why.c_str());
    return 2;
  }
  plantd::bench::PinToCpu(o.load_cpu);

  struct statfs fs {};
  statfs(o.dir.c_str(), &fs);
  std::string sync_answer;
  const bool sync_always = NatsSupportsSyncAlways(o, &sync_answer);
  std::printf("durable bench: %d clients x %d in flight, %zu B bodies, %.1f s per run after %.1f s "
              "warm-up, %d rounds; server CPU %d, load CPU %d\n",
              o.clients, o.inflight, o.size, o.duration_s, o.warmup_s, o.rounds, o.server_cpu,
              o.load_cpu);
  std::printf("files under %s (statfs type 0x%lx); %s; load average at start %s\n", o.dir.c_str(),
              static_cast<unsigned long>(fs.f_type),
              CommandOutput(o.nats_server + " --version").c_str(), LoadAverage().c_str());
  std::printf("broker-nondurable: %d echo workers, credit %d (docs/credit.md)\n", o.workers,
              o.credit);
  std::printf(
      "broker: acknowledges titanic.request after the SQLite commit holding it is synced (WAL "
      "synced by the store's sync threads, docs/durability.md); durable service: %s\n",
      o.durable_workers > 0 ? "echo, with workers (dispatched, replies stored)"
                            : "sink, no worker (stored only, as the stream has no consumer)");
  std::printf(
      "jetstream: PubAck after the message is written to the file store; by default it syncs "
      "every 2 minutes (sync_interval), not per message. sync_interval: always %s\n",
      sync_always ? "is supported: also measured"
                  : ("is not supported by this nats-server, which answers: " + sync_answer)
                        .c_str());
  std::fflush(stdout);

  std::map<std::string, std::vector<double>> rates;
  std::vector<std::pair<double, double>> pairs;  // durable, jetstream of one round
  bool clean = true;
  for (int round = 0; round < o.rounds; ++round) {
    std::vector<Run> runs;
    if (o.Runs("jetstream")) runs.push_back(RunJetStream(o, o.duration_s, false, false));
    if (sync_always && o.Runs("jetstream")) {
      runs.push_back(RunJetStream(o, o.duration_s, true, false));
    }
    if (o.Runs("broker-durable")) runs.push_back(RunBroker(o, true, o.duration_s, false));
    if (o.Runs("broker-nondurable")) {
      runs.push_back(RunBroker(o, false, o.duration_s, false));
    }
    double durable = 0, jetstream = 0;
    for (const Run& r : runs) {
      PrintRun(o, r);
      rates[r.target].push_back(r.rate());
      if (r.target == "broker-durable") durable = r.rate();
      if (r.target == "jetstream") jetstream = r.rate();
      if (!r.error.empty() || !r.load.error.empty() ||
          r.load.lost + r.load.duplicated + r.load.mismatched > 0) {
        clean = false;
      }
    }
    pairs.emplace_back(durable, jetstream);
  }

  std::printf("== medians over %d rounds (acknowledged per second):", o.rounds);
  for (const auto& [target, v] : rates) std::printf(" %s=%.0f", target.c_str(), Median(v));
  std::printf("\n");
  std::vector<double> per_round;
  for (const auto& [d, j] : pairs) {
    if (j > 0) per_round.push_back(d / j);
  }
  const double d = Median(rates["broker-durable"]);
  const double j = Median(rates["jetstream"]);
  const double n = Median(rates["broker-nondurable"]);
  std::printf("== broker-durable / jetstream: medians %.3f, median of per-round ratios %.3f\n",
              j > 0 ? d / j : NAN, Median(per_round));
  std::printf("== broker-durable / broker-nondurable: %.3f\n", n > 0 ? d / n : NAN);
  if (sync_always) {
    const double s = Median(rates["jetstream-sync-always"]);
    std::printf("== broker-durable / jetstream-sync-always: %.3f\n", s > 0 ? d / s : NAN);
  }

  if (o.audit_syncs_s > 0) {
    std::printf("== sync audit: %.0f s each under strace -c -f -e %s (slower; counts only)\n",
                o.audit_syncs_s, kSyncCalls);
    PrintRun(o, RunJetStream(o, o.audit_syncs_s, false, true));
    if (sync_always) {
      PrintRun(o, RunJetStream(o, o.audit_syncs_s, true, true));
      }
    PrintRun(o, RunBroker(o, true, o.audit_syncs_s, true));
  }
  return clean ? 0 : 1;
}

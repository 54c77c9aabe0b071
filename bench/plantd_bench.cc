// plantd-bench: load generators for the broker and the baselines they are
// measured against, in the same run.
//
//   plantd-bench mdp    --server broker|relay|relay-pipelined  request-reply load
//                       --load zmq|zmtp  (libzmq sockets, or ZMTP over plain
//                       sockets, thread per connection, as natsbench does)
//   plantd-bench bus    --server broker|proxy                  pub/sub load
//   plantd-bench memory --clients N --workers M                broker RSS with idle peers
//   plantd-bench handshake --clients N [--curve 1]             N clients connecting at once
//   plantd-bench relay  / proxy                                the baselines themselves
//
// The server runs in a child process pinned to --server-cpu; the load runs
// pinned to --load-cpu. Its CPU time comes from /proc, so "CPU per request"
// is the server's alone. Every figure is printed on one line starting RESULT.
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "child_process.h"
#include "zmtp_load.h"

namespace {

using plantd::bench::ChildProcess;
using plantd::bench::FreeTcpPort;
using plantd::bench::HttpGet;
using plantd::bench::MetricValue;
using plantd::bench::PinToCpu;
using plantd::bench::ProcessCpuSeconds;
using plantd::bench::WaitForTcpPort;
using Clock = std::chrono::steady_clock;

uint64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

struct Args {
  std::vector<std::string> a;
  std::string Str(const std::string& k, const std::string& d) const {
    for (size_t i = 0; i + 1 < a.size(); ++i) {
      if (a[i] == k) return a[i + 1];
    }
    return d;
  }
  double Num(const std::string& k, double d) const {
    const std::string s = Str(k, "");
    return s.empty() ? d : std::stod(s);
  }
};

long RssKb(int pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

std::string SelfPath() {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  return std::string(buf, n > 0 ? static_cast<size_t>(n) : 0);
}

void Send(zmq::socket_t& s, std::initializer_list<std::string_view> frames, int flags = 0) {
  size_t i = 0;
  for (std::string_view f : frames) {
    ++i;
    const int more = i < frames.size() ? ZMQ_SNDMORE : 0;
    zmq_send(s.handle(), f.data(), f.size(), more | flags);
  }
}

std::vector<zmq::message_t> Recv(zmq::socket_t& s) {
  std::vector<zmq::message_t> frames;
  while (true) {
    frames.emplace_back();
    if (zmq_msg_recv(frames.back().handle(), s.handle(), ZMQ_DONTWAIT) < 0) {
      frames.pop_back();
      return frames;
    }
    if (!frames.back().more()) return frames;
  }
}

std::string_view View(const zmq::message_t& m) {
  return {static_cast<const char*>(m.data()), m.size()};
}

double Percentile(std::vector<uint64_t>& v, double q) {
  if (v.empty()) return NAN;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  return static_cast<double>(v[k]) / 1000.0;  // microseconds
}

// ---------------------------------------------------------------------------
// Baseline: a ROUTER relay with no bookkeeping beyond MDP's one rule (a worker
// holds one request; a new request goes to an idle worker), or with none at
// all (pipelined: round robin, workers hold many).

int RunRelay(const Args& args, bool pipelined) {
  zmq::context_t ctx(1);
  zmq::socket_t router(ctx, zmq::socket_type::router);
  router.set(zmq::sockopt::sndhwm, 100000);
  router.set(zmq::sockopt::rcvhwm, 100000);
  // --curve-secret Z85: libzmq's CURVE server (no ZAP handler: every client
  // key is let in), the baseline for the broker's CURVE.
  if (const std::string secret = args.Str("--curve-secret", ""); !secret.empty()) {
    router.set(zmq::sockopt::curve_server, 1);
    router.set(zmq::sockopt::curve_secretkey, secret);
  }
  router.bind(args.Str("--endpoint", "tcp://127.0.0.1:17300"));
  std::deque<std::string> idle;  // worker ids
  std::vector<std::string> all;  // pipelined: every worker
  size_t next = 0;
  std::deque<std::vector<zmq::message_t>> waiting;
  static const std::string kService = "echo";
  signal(SIGTERM, [](int) { _exit(0); });

  auto dispatch = [&](const std::string& worker, std::vector<zmq::message_t>& m) {
    // m: [client, tag, "", MDPC02, 0x01, service, body...]
    // -> [worker, MDPW02, 0x02, client+tag, "", body...]
    std::string addr(View(m[0]));
    addr.append(View(m[1]));
    Send(router, {worker, "MDPW02", "\x02", addr, ""}, ZMQ_SNDMORE);
    for (size_t i = 6; i < m.size(); ++i) {
      zmq_msg_send(m[i].handle(), router.handle(), i + 1 < m.size() ? ZMQ_SNDMORE : 0);
    }
  };
  while (true) {
    zmq::pollitem_t item{router.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(100));
    for (int n = 0; n < 256; ++n) {
      std::vector<zmq::message_t> m = Recv(router);
      if (m.empty()) break;
      if (m.size() >= 3 && View(m[1]) == "MDPW02") {
        const std::string id(View(m[0]));
        const std::string_view cmd = View(m[2]);
        if (cmd == "\x01") {
          (pipelined ? all : (idle.push_back(id), all)).push_back(id);
        } else if (cmd == "\x04" && m.size() >= 5) {
          // [worker, MDPW02, 0x04, client+tag, "", body...] -> client
          const std::string_view addr = View(m[3]);
          const std::string client(addr.substr(0, 5));
          const std::string tag(addr.substr(5));
          Send(router, {client, tag, "", "MDPC02", "\x03", kService}, ZMQ_SNDMORE);
          for (size_t i = 5; i < m.size(); ++i) {
            zmq_msg_send(m[i].handle(), router.handle(), i + 1 < m.size() ? ZMQ_SNDMORE : 0);
          }
          if (!pipelined) {
            if (!waiting.empty()) {
              dispatch(id, waiting.front());
              waiting.pop_front();
            } else {
              idle.push_back(id);
            }
          }
        }
        continue;
      }
      if (m.size() < 7) continue;
      if (pipelined) {
        if (all.empty()) continue;
        dispatch(all[next++ % all.size()], m);
      } else if (!idle.empty()) {
        const std::string w = idle.front();
        idle.pop_front();
        dispatch(w, m);
      } else {
        waiting.push_back(std::move(m));
      }
    }
  }
}

// ---------------------------------------------------------------------------
// MDP load.

struct Tag {
  uint32_t client;
  uint32_t slot;
  uint64_t seq;
  uint64_t sent_ns;
};

// The CURVE keys of a benchmark run: the server's pair, and one pair that
// every socket of the load uses.
struct BenchKeys {
  bool curve = false;
  char server_public[41] = {};
  char server_secret[41] = {};
  char load_public[41] = {};
  char load_secret[41] = {};

  bool Make() {
    curve = zmq_curve_keypair(server_public, server_secret) == 0 &&
            zmq_curve_keypair(load_public, load_secret) == 0;
    if (!curve) std::fprintf(stderr, "plantd-bench: libzmq cannot make CURVE keys\n");
    return curve;
  }
  // Makes `socket` a CURVE client of the server (nothing without CURVE).
  void Secure(zmq::socket_t& socket) const {
    if (!curve) return;
    socket.set(zmq::sockopt::curve_serverkey, std::string(server_public));
    socket.set(zmq::sockopt::curve_publickey, std::string(load_public));
    socket.set(zmq::sockopt::curve_secretkey, std::string(load_secret));
  }
};

// The broker's config file (no buses, plus `extra_yaml`) and, with CURVE,
// its certificate and the load's public key in an authorized_keys_dir, all
// removed on destruction.
class BrokerConfigFiles {
 public:
  BrokerConfigFiles(const BenchKeys& keys, const std::string& extra_yaml)
      : base_("/tmp/plantd-bench-" + std::to_string(getpid())) {
    std::string yaml = "buses: []\n" + extra_yaml;
    if (keys.curve) {
      std::filesystem::create_directories(base_ + "-clients");
      auto certificate = [](const std::string& path, const char* public_key,
                            const char* secret_key) {
        std::ofstream out(path);
        out << "curve\n    public-key = \"" << public_key << "\"\n";
        if (secret_key != nullptr) out << "    secret-key = \"" << secret_key << "\"\n";
        out.close();
        std::filesystem::permissions(
            path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
      };
      certificate(base_ + "-broker_secret", keys.server_public, keys.server_secret);
      certificate(base_ + "-clients/load", keys.load_public, nullptr);
      yaml += "security:\n  mechanism: curve\n  secret_key_file: " + base_ +
              "-broker_secret\n  authorized_keys_dir: " + base_ + "-clients\n";
    }
    std::ofstream(path()) << yaml;
  }
  ~BrokerConfigFiles() {
    std::error_code ignored;
    std::filesystem::remove_all(base_ + "-clients", ignored);
    std::filesystem::remove(base_ + "-broker_secret", ignored);
    std::filesystem::remove(path(), ignored);
  }
  BrokerConfigFiles(const BrokerConfigFiles&) = delete;
  BrokerConfigFiles& operator=(const BrokerConfigFiles&) = delete;

  std::string path() const { return base_ + ".yaml"; }

 private:
  std::string base_;
};

int RunMdp(const Args& args) {
  const std::string server = args.Str("--server", "broker");
  const int workers = static_cast<int>(args.Num("--workers", 16));
  const int clients = static_cast<int>(args.Num("--clients", 4));
  const int inflight = static_cast<int>(args.Num("--inflight", 16));
  const size_t size = static_cast<size_t>(args.Num("--size", 64));
  const double duration = args.Num("--duration", 5);
  const double warmup = args.Num("--warmup", 1);
  const int server_cpu = static_cast<int>(args.Num("--server-cpu", 0));
  const int load_cpu = static_cast<int>(args.Num("--load-cpu", 1));
  const int credit = static_cast<int>(args.Num("--credit", 1));
  const std::string broker_bin = args.Str("--broker", PLANTD_BROKER_BINARY);
  const int port = 17300 + static_cast<int>(getpid() % 1000);
  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(port);

  // --curve 1: every connection speaks CURVE (RFC 26), libzmq's load with
  // one client key pair; the broker authorizes that key from a directory.
  BenchKeys keys;
  if (args.Num("--curve", 0) != 0 && !keys.Make()) return 2;
  const bool curve = keys.curve;
  auto secure = [&](zmq::socket_t& socket) { keys.Secure(socket); };

  std::vector<std::string> argv;
  if (server == "broker") {
    argv = {broker_bin,
            "--endpoint",
            endpoint,
            "--client-endpoint",
            "tcp://127.0.0.1:" + std::to_string(port + 1),
            "--health-port",
            "0",
            "--log-level",
            "warn",
            "--transport",
            args.Str("--transport", "native")};
  } else {
    argv = {SelfPath(), server == "relay" ? "relay" : "relay-pipelined", "--endpoint", endpoint};
    if (curve) {
      argv.push_back("--curve-secret");
      argv.push_back(keys.server_secret);
    }
  }
  // No buses: one Majordomo endpoint serves clients and workers. With
  // CURVE, the certificates are written beside the config file.
  BrokerConfigFiles files(keys, "");
  if (server == "broker") {
    argv.push_back("--config");
    argv.push_back(files.path());
  }
  ChildProcess child(argv, server_cpu);
  PinToCpu(load_cpu);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const std::string load = args.Str("--load", "zmq");
  if (load == "zmtp" && curve) {
    std::fprintf(stderr, "plantd-bench: --curve needs --load zmq (libzmq does the CURVE)\n");
    return 2;
  }
  if (load == "zmtp") {
    plantd::bench::ZmtpLoadOptions o;
    o.port = port;
    o.workers = workers;
    o.clients = clients;
    o.inflight = inflight;
    o.size = size;
    o.credit = credit;
    o.warmup_s = warmup;
    o.duration_s = duration;
    o.server_cpu_seconds = [&child] { return ProcessCpuSeconds(child.pid()); };
    plantd::bench::LoadResult r = plantd::bench::RunZmtpLoad(o);
    if (!r.error.empty()) std::fprintf(stderr, "plantd-bench: %s\n", r.error.c_str());
    const double rate = static_cast<double>(r.completed_in_window) / duration;
    std::printf(
        "RESULT mdp server=%s load=zmtp workers=%d clients=%d inflight=%d size=%zu credit=%d "
        "server_cpu=%d load_cpu=%d req_per_s=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f "
        "server_cpu_us_per_req=%.2f lost=%llu duplicated=%llu mismatched=%llu\n",
        server.c_str(), workers, clients, inflight, size, credit, server_cpu, load_cpu, rate,
        Percentile(r.latencies_ns, 0.50), Percentile(r.latencies_ns, 0.99),
        Percentile(r.latencies_ns, 0.999),
        r.completed_in_window
            ? r.server_cpu_seconds * 1e6 / static_cast<double>(r.completed_in_window)
            : NAN,
        static_cast<unsigned long long>(r.lost), static_cast<unsigned long long>(r.duplicated),
        static_cast<unsigned long long>(r.mismatched));
    return r.lost + r.duplicated + r.mismatched == 0 && r.error.empty() ? 0 : 1;
  }
  if (load != "zmq") {
    std::fprintf(stderr, "plantd-bench: --load is zmq or zmtp\n");
    return 2;
  }

  zmq::context_t ctx(1);
  ctx.set(zmq::ctxopt::max_sockets, 8192);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> handled{0};

  // Workers: one thread, echoing.
  std::thread worker_thread([&] {
    std::vector<zmq::socket_t> ws;
    for (int i = 0; i < workers; ++i) {
      ws.emplace_back(ctx, zmq::socket_type::dealer);
      ws.back().set(zmq::sockopt::linger, 0);
      secure(ws.back());
      ws.back().connect(endpoint);
      if (credit > 1) {
        Send(ws.back(), {"MDPW02", "\x01", "echo", std::to_string(credit)});
      } else {
        Send(ws.back(), {"MDPW02", "\x01", "echo"});
      }
    }
    std::vector<zmq::pollitem_t> items;
    for (auto& w : ws) items.push_back({w.handle(), 0, ZMQ_POLLIN, 0});
    uint64_t next_hb = NowNs() + 1'000'000'000;
    while (!stop.load(std::memory_order_relaxed)) {
      zmq::poll(items.data(), items.size(), std::chrono::milliseconds(50));
      for (size_t i = 0; i < items.size(); ++i) {
        if (!(items[i].revents & ZMQ_POLLIN)) continue;
        while (true) {
          std::vector<zmq::message_t> m = Recv(ws[i]);
          if (m.empty()) break;
          if (m.size() >= 4 && View(m[1]) == "\x02") {
            // [MDPW02, 0x02, addr, "", body...] -> FINAL
            Send(ws[i], {"MDPW02", "\x04"}, ZMQ_SNDMORE);
            for (size_t k = 2; k < m.size(); ++k) {
              zmq_msg_send(m[k].handle(), ws[i].handle(), k + 1 < m.size() ? ZMQ_SNDMORE : 0);
            }
            handled.fetch_add(1, std::memory_order_relaxed);
          }
        }
      }
      if (NowNs() > next_hb) {
        for (auto& w : ws) Send(w, {"MDPW02", "\x05"});
        next_hb += 1'000'000'000;
      }
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));

  // Clients: one thread, each client keeps `inflight` tagged requests out.
  std::vector<zmq::socket_t> cs;
  for (int c = 0; c < clients; ++c) {
    cs.emplace_back(ctx, zmq::socket_type::dealer);
    cs.back().set(zmq::sockopt::linger, 0);
    cs.back().set(zmq::sockopt::sndhwm, 0);
    cs.back().set(zmq::sockopt::rcvhwm, 0);
    secure(cs.back());
    cs.back().connect(endpoint);
  }
  const std::string body(size, 'x');
  std::vector<std::vector<uint64_t>> outstanding(clients, std::vector<uint64_t>(inflight, 0));
  uint64_t seq = 1, lost = 0, duplicated = 0, mismatched = 0;
  std::vector<uint64_t> latencies;
  latencies.reserve(8'000'000);
  auto send = [&](int c, int slot) {
    Tag t{static_cast<uint32_t>(c), static_cast<uint32_t>(slot), seq++, NowNs()};
    outstanding[c][slot] = t.seq;
    Send(cs[c], {std::string_view(reinterpret_cast<const char*>(&t), sizeof(t)), "", "MDPC02",
                 "\x01", "echo", body});
  };
  for (int c = 0; c < clients; ++c) {
    for (int s = 0; s < inflight; ++s) send(c, s);
  }
  std::vector<zmq::pollitem_t> items;
  for (auto& c : cs) items.push_back({c.handle(), 0, ZMQ_POLLIN, 0});
  const uint64_t start = NowNs();
  const uint64_t window_start = start + static_cast<uint64_t>(warmup * 1e9);
  const uint64_t window_end = window_start + static_cast<uint64_t>(duration * 1e9);
  double cpu_start = 0, cpu = 0;
  bool in_window = false, sending = true;
  uint64_t window_completed = 0, out = static_cast<uint64_t>(clients) * inflight;
  uint64_t drain_end = 0;
  while (out > 0) {
    const uint64_t now = NowNs();
    if (!in_window && now >= window_start) {
      in_window = true;
      cpu_start = ProcessCpuSeconds(child.pid());
    }
    if (sending && now >= window_end) {
      // Stop sending; every request still out must come back, once.
      sending = false;
      in_window = false;
      cpu = ProcessCpuSeconds(child.pid()) - cpu_start;
      drain_end = now + 3'000'000'000ull;
    }
    if (!sending && now >= drain_end) break;
    zmq::poll(items.data(), items.size(), std::chrono::milliseconds(10));
    for (int c = 0; c < clients; ++c) {
      if (!(items[c].revents & ZMQ_POLLIN)) continue;
      while (true) {
        std::vector<zmq::message_t> m = Recv(cs[c]);
        if (m.empty()) break;
        // [tag, "", MDPC02, 0x03, service, body]
        if (m.size() != 6 || m[0].size() != sizeof(Tag) || View(m[5]) != body) {
          ++mismatched;
          continue;
        }
        Tag t;
        std::memcpy(&t, m[0].data(), sizeof(t));
        if (t.client != static_cast<uint32_t>(c) || t.slot >= static_cast<uint32_t>(inflight) ||
            outstanding[c][t.slot] != t.seq) {
          ++duplicated;
          continue;
        }
        outstanding[c][t.slot] = 0;
        --out;
        if (in_window) {
          ++window_completed;
          latencies.push_back(NowNs() - t.sent_ns);
        }
        if (sending) {
          send(c, static_cast<int>(t.slot));
          ++out;
        }
      }
    }
  }
  lost = out;
  stop = true;
  worker_thread.join();

  const double rate = static_cast<double>(window_completed) / duration;
  const double p50 = Percentile(latencies, 0.50), p99 = Percentile(latencies, 0.99),
               p999 = Percentile(latencies, 0.999);
  std::printf(
      "RESULT mdp server=%s load=zmq curve=%d workers=%d clients=%d inflight=%d size=%zu credit=%d "
      "server_cpu=%d load_cpu=%d req_per_s=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f "
      "server_cpu_us_per_req=%.2f lost=%llu duplicated=%llu mismatched=%llu\n",
      server.c_str(), curve ? 1 : 0, workers, clients, inflight, size, credit, server_cpu, load_cpu,
      rate, p50, p99, p999,
      window_completed ? cpu * 1e6 / static_cast<double>(window_completed) : NAN,
      static_cast<unsigned long long>(lost), static_cast<unsigned long long>(duplicated),
      static_cast<unsigned long long>(mismatched));
  return lost + duplicated + mismatched == 0 ? 0 : 1;
}

// ---------------------------------------------------------------------------
// Bus load.

int RunProxy(const Args& args) {
  zmq::context_t ctx(1);
  zmq::socket_t xsub(ctx, zmq::socket_type::xsub), xpub(ctx, zmq::socket_type::xpub);
  const int hwm = static_cast<int>(args.Num("--hwm", 100000));
  xsub.set(zmq::sockopt::rcvhwm, hwm);
  xpub.set(zmq::sockopt::sndhwm, hwm);
  xsub.bind(args.Str("--backend", "tcp://127.0.0.1:17400"));
  xpub.bind(args.Str("--frontend", "tcp://127.0.0.1:17401"));
  signal(SIGTERM, [](int) { _exit(0); });
  zmq::proxy(xsub, xpub);
  return 0;
}

int RunBus(const Args& args) {
  const std::string server = args.Str("--server", "broker");
  const int pubs = static_cast<int>(args.Num("--pubs", 1));
  const int subs = static_cast<int>(args.Num("--subs", 1));
  const size_t size = std::max<size_t>(24, static_cast<size_t>(args.Num("--size", 64)));
  const double duration = args.Num("--duration", 5);
  const double rate = args.Num("--rate", 0);  // per publisher; 0 = as fast as possible
  const int server_cpu = static_cast<int>(args.Num("--server-cpu", 0));
  const int load_cpu = static_cast<int>(args.Num("--load-cpu", 1));
  const int port = 17400 + static_cast<int>(getpid() % 1000) * 2;
  const std::string backend = "tcp://127.0.0.1:" + std::to_string(port);
  const std::string frontend = "tcp://127.0.0.1:" + std::to_string(port + 1);
  std::vector<std::string> argv;
  if (server == "broker") {
    const std::string path = "/tmp/plantd-bench-bus-" + std::to_string(getpid()) + ".yaml";
    std::ofstream(path) << "buses:\n  - name: bench\n    backend: " << backend
                        << "\n    frontend: " << frontend << "\n";
    argv = {args.Str("--broker", PLANTD_BROKER_BINARY),
            "--config",
            path,
            "--endpoint",
            "tcp://127.0.0.1:" + std::to_string(port + 500),
            "--client-endpoint",
            "tcp://127.0.0.1:" + std::to_string(port + 501),
            "--health-port",
            "0",
            "--log-level",
            "warn"};
  } else {
    argv = {SelfPath(), "proxy", "--backend", backend, "--frontend", frontend};
  }
  ChildProcess child(argv, server_cpu);
  PinToCpu(load_cpu);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));

  zmq::context_t ctx(1);
  std::atomic<bool> stop{false};
  std::vector<uint64_t> received(subs, 0), gaps(subs, 0);
  std::vector<std::vector<uint64_t>> lat(subs);
  std::vector<std::thread> sub_threads;
  std::atomic<int> ready{0};
  for (int s = 0; s < subs; ++s) {
    sub_threads.emplace_back([&, s] {
      zmq::socket_t sub(ctx, zmq::socket_type::sub);
      sub.set(zmq::sockopt::rcvhwm, 100000);
      sub.set(zmq::sockopt::subscribe, "");
      sub.connect(frontend);
      std::vector<uint64_t> next(pubs, 0);
      ++ready;
      zmq::message_t m;
      while (!stop.load(std::memory_order_relaxed)) {
        if (!sub.recv(m, zmq::recv_flags::dontwait)) {
          zmq::pollitem_t item{sub.handle(), 0, ZMQ_POLLIN, 0};
          zmq::poll(&item, 1, std::chrono::milliseconds(10));
          continue;
        }
        if (m.size() < 24) continue;
        uint32_t id;
        uint64_t seq, ts;
        std::memcpy(&id, m.data(), 4);
        std::memcpy(&seq, static_cast<char*>(m.data()) + 8, 8);
        std::memcpy(&ts, static_cast<char*>(m.data()) + 16, 8);
        if (id < static_cast<uint32_t>(pubs)) {
          if (seq > next[id]) gaps[s] += seq - next[id];
          next[id] = seq + 1;
        }
        ++received[s];
        if (rate > 0) lat[s].push_back(NowNs() - ts);
      }
    });
  }
  while (ready < subs) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // subscriptions propagate
  std::vector<uint64_t> sent(pubs, 0);
  std::vector<std::thread> pub_threads;
  const double cpu_start = ProcessCpuSeconds(child.pid());
  const uint64_t t0 = NowNs();
  for (int p = 0; p < pubs; ++p) {
    pub_threads.emplace_back([&, p] {
      zmq::socket_t pub(ctx, zmq::socket_type::pub);
      pub.set(zmq::sockopt::sndhwm, 100000);
      pub.connect(backend);
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      std::string payload(size, 'p');
      const uint32_t id = static_cast<uint32_t>(p);
      const uint64_t start = NowNs();
      const uint64_t end = start + static_cast<uint64_t>(duration * 1e9);
      uint64_t seq = 0;
      while (true) {
        const uint64_t now = NowNs();
        if (now >= end) break;
        if (rate > 0) {
          const uint64_t due = start + static_cast<uint64_t>(static_cast<double>(seq) * 1e9 / rate);
          if (now < due) {
            std::this_thread::sleep_for(std::chrono::nanoseconds(due - now));
            continue;
          }
        }
        std::memcpy(payload.data(), &id, 4);
        std::memcpy(payload.data() + 8, &seq, 8);
        const uint64_t ts = NowNs();
        std::memcpy(payload.data() + 16, &ts, 8);
        pub.send(zmq::buffer(payload), zmq::send_flags::none);
        ++seq;
      }
      sent[p] = seq;
    });
  }
  for (auto& t : pub_threads) t.join();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const double elapsed = static_cast<double>(NowNs() - t0) / 1e9;
  const double cpu = ProcessCpuSeconds(child.pid()) - cpu_start;
  stop = true;
  for (auto& t : sub_threads) t.join();
  uint64_t total_sent = 0, total_received = 0, total_gaps = 0;
  for (uint64_t s : sent) total_sent += s;
  std::vector<uint64_t> all_lat;
  for (int s = 0; s < subs; ++s) {
    total_received += received[s];
    total_gaps += gaps[s];
    all_lat.insert(all_lat.end(), lat[s].begin(), lat[s].end());
  }
  const double delivered_per_s = static_cast<double>(total_received) / subs / duration;
  std::printf(
      "RESULT bus server=%s pubs=%d subs=%d size=%zu rate=%.0f sent=%llu "
      "delivered_per_sub_per_s=%.0f "
      "lost=%llu server_cpu_s=%.2f elapsed_s=%.1f p50_us=%.1f p99_us=%.1f\n",
      server.c_str(), pubs, subs, size, rate, static_cast<unsigned long long>(total_sent),
      delivered_per_s,
      static_cast<unsigned long long>(total_sent * subs -
                                      std::min(total_sent * subs, total_received)),
      cpu, elapsed, Percentile(all_lat, 0.5), Percentile(all_lat, 0.99));
  return 0;
}

// ---------------------------------------------------------------------------
// Handshakes: --clients DEALERs (default 1,000) connect at once and each asks
// mmi.service once; the time until every one has its answer, and the
// broker's CPU meanwhile. --curve 1: every client does the CURVE handshake
// (with the one authorized key); otherwise NULL, the baseline.

int RunHandshake(const Args& args) {
  const int clients = static_cast<int>(args.Num("--clients", 1000));
  const int server_cpu = static_cast<int>(args.Num("--server-cpu", 0));
  const int load_cpu = static_cast<int>(args.Num("--load-cpu", 1));
  const double timeout_s = args.Num("--timeout", 60);
  const int port = plantd::bench::FreeTcpPort();
  if (port == 0) {
    std::fprintf(stderr, "plantd-bench: no free TCP port\n");
    return 1;
  }
  // A descriptor per connection on each side.
  rlimit files_limit{};
  if (getrlimit(RLIMIT_NOFILE, &files_limit) == 0 && files_limit.rlim_cur < files_limit.rlim_max) {
    files_limit.rlim_cur = files_limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files_limit);
  }
  BenchKeys keys;
  if (args.Num("--curve", 0) != 0 && !keys.Make()) return 2;
  const std::string room = std::to_string(clients + 64);
  // All from one address, at once: the per-address limits would measure
  // themselves, not the handshakes.
  BrokerConfigFiles files(keys, "limits:\n  max_connections: " + room +
                                    "\n  max_connections_per_address: " + room +
                                    "\n  curve_handshake_burst: " + room + "\n");
  ChildProcess child({args.Str("--broker", PLANTD_BROKER_BINARY), "--endpoint",
                      "tcp://127.0.0.1:" + std::to_string(port), "--client-endpoint",
                      "tcp://127.0.0.1:" + std::to_string(plantd::bench::FreeTcpPort()),
                      "--health-port", "0", "--log-level", "warn", "--config", files.path()},
                     server_cpu);
  PinToCpu(load_cpu);
  if (!plantd::bench::WaitForTcpPort(port, 5000)) {
    std::fprintf(stderr, "plantd-bench: the broker did not start\n");
    return 1;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // settled, idle

  zmq::context_t ctx(1);
  ctx.set(zmq::ctxopt::max_sockets, clients + 64);
  std::vector<zmq::socket_t> sockets;
  sockets.reserve(static_cast<size_t>(clients));
  const double cpu_start = ProcessCpuSeconds(child.pid());
  const uint64_t start = NowNs();
  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(port);
  for (int i = 0; i < clients; ++i) {
    sockets.emplace_back(ctx, zmq::socket_type::dealer);
    sockets.back().set(zmq::sockopt::linger, 0);
    keys.Secure(sockets.back());
    sockets.back().connect(endpoint);
    Send(sockets.back(), {"MDPC02", "\x01", "mmi.service", "echo"});
  }
  std::vector<zmq::pollitem_t> items;
  for (auto& s : sockets) items.push_back({s.handle(), 0, ZMQ_POLLIN, 0});
  std::vector<bool> answered(static_cast<size_t>(clients), false);
  int done = 0;
  const uint64_t deadline = start + static_cast<uint64_t>(timeout_s * 1e9);
  while (done < clients && NowNs() < deadline) {
    zmq::poll(items.data(), items.size(), std::chrono::milliseconds(50));
    for (size_t i = 0; i < items.size(); ++i) {
      if (!(items[i].revents & ZMQ_POLLIN)) continue;
      if (!Recv(sockets[i]).empty() && !answered[i]) {
        answered[i] = true;
        ++done;
      }
    }
  }
  const double seconds = static_cast<double>(NowNs() - start) / 1e9;
  const double cpu = ProcessCpuSeconds(child.pid()) - cpu_start;
  std::printf(
      "RESULT handshake server=broker curve=%d clients=%d answered=%d seconds=%.3f "
      "server_cpu_ms=%.1f server_cpu_us_per_client=%.1f\n",
      keys.curve ? 1 : 0, clients, done, seconds, cpu * 1e3,
      done > 0 ? cpu * 1e6 / static_cast<double>(done) : NAN);
  return done == clients ? 0 : 1;
}

// ---------------------------------------------------------------------------
// Memory: idle peers, spread over child processes (each socket costs the
// load generator two descriptors).

// Runs `hold(ctx, sockets, first, last)` in child processes, each for at most
// `per_process` of `count` peers: `sockets` is empty, with a context that
// may hold that many. `hold` does not return (the caller kills the
// children, whose PIDs this returns).
std::vector<int> ForkPeerHolders(
    int count, int per_process,
    const std::function<void(zmq::context_t&, std::vector<zmq::socket_t>&, int, int)>& hold) {
  std::vector<int> children;
  for (int first = 0; first < count; first += per_process) {
    const int last = std::min(count, first + per_process);
    const int pid = fork();
    if (pid == 0) {
      zmq::context_t ctx(1);
      ctx.set(zmq::ctxopt::max_sockets, per_process + 10);
      std::vector<zmq::socket_t> sockets;
      hold(ctx, sockets, first, last);
      _exit(0);
    }
    children.push_back(pid);
  }
  return children;
}

int RunMemory(const Args& args) {
  const int clients = static_cast<int>(args.Num("--clients", 10000));
  const int workers = static_cast<int>(args.Num("--workers", 1000));
  const int port = 17600 + static_cast<int>(getpid() % 1000);
  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(port);
  const std::string path = "/tmp/plantd-bench-mem-" + std::to_string(getpid()) + ".yaml";
  std::ofstream(path) << "buses: []\nmax_workers: 100000\n";
  const std::string server = args.Str("--server", "broker");
  std::vector<std::string> argv = {args.Str("--broker", PLANTD_BROKER_BINARY),
                                   "--config",
                                   path,
                                   "--endpoint",
                                   endpoint,
                                   "--client-endpoint",
                                   "tcp://127.0.0.1:" + std::to_string(port + 1),
                                   "--health-port",
                                   "0",
                                   "--log-level",
                                   "warn"};
  // The baseline: the bare relay holding the same connections.
  if (server == "relay") argv = {SelfPath(), "relay", "--endpoint", endpoint};
  ChildProcess broker(argv, static_cast<int>(args.Num("--server-cpu", 0)));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const long rss_empty = RssKb(broker.pid());

  constexpr int kPerProcess = 3000;
  int fds[2];
  if (pipe(fds) != 0) return 1;
  const std::vector<int> children = ForkPeerHolders(
      clients + workers, kPerProcess,
      [&](zmq::context_t& ctx, std::vector<zmq::socket_t>& sockets, int first, int last) {
        for (int i = first; i < last; ++i) {
          sockets.emplace_back(ctx, zmq::socket_type::dealer);
          sockets.back().set(zmq::sockopt::linger, 0);
          sockets.back().connect(endpoint);
          if (i < workers) {
            Send(sockets.back(), {"MDPW02", "\x01", "idle.service." + std::to_string(i % 100)});
          } else {
            // A client that asked once (tagged, as the load clients do).
            Send(sockets.back(), {"tag", "", "MDPC02", "\x01", "mmi.heartbeat", "x"});
          }
        }
        std::this_thread::sleep_for(std::chrono::seconds(2));  // connections settle
        char c = 1;
        if (write(fds[1], &c, 1) != 1) _exit(1);
        // Workers heartbeat so the broker keeps them.
        while (true) {
          std::this_thread::sleep_for(std::chrono::seconds(1));
          for (int i = first; i < last && i < workers; ++i) {
            Send(sockets[i - first], {"MDPW02", "\x05"});
          }
        }
      });
  for (size_t i = 0; i < children.size(); ++i) {
    char c;
    if (read(fds[0], &c, 1) != 1) break;
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const long rss = RssKb(broker.pid());
  std::printf("RESULT memory server=%s clients=%d workers=%d rss_empty_mb=%.1f rss_mb=%.1f\n",
              server.c_str(), clients, workers, rss_empty / 1024.0, rss / 1024.0);
  for (int pid : children) kill(pid, SIGKILL);
  for (int pid : children) waitpid(pid, nullptr, 0);
  return 0;
}

// Memory of a bus holding many subscriptions: --subs libzmq SUB sockets,
// each subscribed to --prefixes topic prefixes of its own, spread over
// child processes; the broker's resident memory before they connect and
// once its /metrics counts every subscription.
int RunBusMemory(const Args& args) {
  const int subs = static_cast<int>(args.Num("--subs", 1000));
  const int prefixes = static_cast<int>(args.Num("--prefixes", 100));
  const int backend_port = FreeTcpPort();
  const int frontend_port = FreeTcpPort();
  const int health_port = FreeTcpPort();
  const int mdp_port = FreeTcpPort();
  if (backend_port == 0 || frontend_port == 0 || health_port == 0 || mdp_port == 0) return 1;
  const std::string frontend = "tcp://127.0.0.1:" + std::to_string(frontend_port);
  const long long wanted = static_cast<long long>(subs) * prefixes;
  const std::string path = "/tmp/plantd-bench-bus-mem-" + std::to_string(getpid()) + ".yaml";
  std::ofstream(path) << "buses:\n  - name: bench\n    backend: tcp://127.0.0.1:" << backend_port
                      << "\n    frontend: " << frontend
                      << "\n    max_subscriptions: " << std::max<long long>(wanted, 1)
                      << "\n    max_subscriptions_per_subscriber: " << std::max(prefixes, 1)
                      << "\nhealth:\n  bind: 127.0.0.1\n  port: " << health_port
                      << "\nlimits:\n  max_connections_per_address: " << subs + 100 << "\n";
  ChildProcess broker({args.Str("--broker", PLANTD_BROKER_BINARY), "--config", path, "--endpoint",
                       "tcp://127.0.0.1:" + std::to_string(mdp_port), "--log-level", "warn"},
                      static_cast<int>(args.Num("--server-cpu", 0)));
  if (!WaitForTcpPort(health_port, 5000)) {
    std::fprintf(stderr, "the broker did not start (config %s)\n", path.c_str());
    return 1;
  }
  const long rss_empty = RssKb(broker.pid());

  const std::vector<int> children = ForkPeerHolders(
      subs, 250,
      [&](zmq::context_t& ctx, std::vector<zmq::socket_t>& sockets, int first, int last) {
        for (int i = first; i < last; ++i) {
          sockets.emplace_back(ctx, zmq::socket_type::sub);
          sockets.back().set(zmq::sockopt::linger, 0);
          for (int j = 0; j < prefixes; ++j) {
            sockets.back().set(zmq::sockopt::subscribe,
                               "plant/line" + std::to_string(i) + "/tag" + std::to_string(j) + "/");
          }
          sockets.back().connect(frontend);
        }
        pause();  // killed by the parent
      });
  const std::string metric = "plantd_broker_bus_subscriptions{bus=\"bench\"}";
  double counted = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    counted = MetricValue(HttpGet(health_port, "/metrics"), metric);
    if (counted >= static_cast<double>(wanted)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));  // what was in flight settles
  const long rss = RssKb(broker.pid());
  std::printf(
      "RESULT bus-memory subscribers=%d prefixes=%d subscriptions=%.0f rss_empty_mb=%.1f "
      "rss_mb=%.1f bytes_per_subscription=%.0f\n",
      subs, prefixes, counted, rss_empty / 1024.0, rss / 1024.0,
      counted > 0 ? static_cast<double>(rss - rss_empty) * 1024.0 / counted : NAN);
  for (int pid : children) kill(pid, SIGKILL);
  for (int pid : children) waitpid(pid, nullptr, 0);
  std::remove(path.c_str());
  return counted >= static_cast<double>(wanted) ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(
        stderr,
        "usage: plantd-bench mdp|bus|memory|bus-memory|handshake|relay|relay-pipelined|proxy "
        "[--key value]...\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  Args args{std::vector<std::string>(argv + 2, argv + argc)};
  const std::string mode = argv[1];
  if (mode == "relay") return RunRelay(args, false);
  if (mode == "relay-pipelined") return RunRelay(args, true);
  if (mode == "proxy") return RunProxy(args);
  if (mode == "mdp") return RunMdp(args);
  if (mode == "bus") return RunBus(args);
  if (mode == "memory") return RunMemory(args);
  if (mode == "bus-memory") return RunBusMemory(args);
  if (mode == "handshake") return RunHandshake(args);
  std::fprintf(stderr, "plantd-bench: unknown mode %s\n", mode.c_str());
  return 2;
}

// plantd-lib-bench: request-reply end to end as a user of libplantd writes
// it (issue #13), against NATS request-reply in the same run.
//
//   broker  the real plantd-broker; W workers, each a thread with a
//           plantd::mdp::Worker (credit C) answering Receive() with Reply();
//           N clients, each a thread with a plantd::mdp::AsyncClient whose
//           callback sends the next request, K in flight per client. Only
//           libplantd's public headers are used for the load.
//   nats    nats-server with natsbench reqrep (../shared/tools/natsbench):
//           W responders in a queue group, N requesters with K in flight.
//
// The broker target runs once per libplantd engine named in --engines
// (plantd::mdp::Engine: "native", libplantd's own ZMTP engine, and
// "libzmq"), each as "broker-ENGINE". Rounds alternate the targets; the
// servers run on --server-cpu, the load on --load-cpu. Every reply is
// checked against its request.
//
// --brokers N (issue 17): N brokers, all on the server CPU; every worker
// registers with all of them (its credit split between them) and every
// client sends to them in turn (AsyncClient over N endpoints). The server
// CPU is the sum over the brokers.
//
//   plantd-lib-bench [--clients 4] [--inflight 16] [--workers 4] [--credit 16] [--brokers 1]
//       [--size 64] [--duration 5] [--warmup 1] [--rounds 2] [--server-cpu 0]
//       [--load-cpu 1] [--engines native,libzmq] [--broker PATH]
//       [--nats-server PATH] [--natsbench PATH]
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench_stats.h"
#include "child_process.h"
#include "lib_bench_common.h"
#include "plantd/mdp/async_client.h"
#include "plantd/mdp/worker.h"

namespace {

using Clock = std::chrono::steady_clock;
using plantd::bench::ChildProcess;
using plantd::bench::EngineName;
using plantd::bench::Median;
using plantd::bench::PercentileUs;

struct Options {
  int clients = 4;
  int inflight = 16;
  int workers = 4;
  int credit = 16;
  // Brokers on the server CPU: every worker registers with all of them (its
  // credit split between them), every client sends to all in turn.
  int brokers = 1;
  size_t size = 64;
  double duration_s = 5;
  double warmup_s = 1;
  int rounds = 2;
  int server_cpu = 0;
  int load_cpu = 1;
  std::vector<plantd::mdp::Engine> engines{plantd::mdp::Engine::kNative,
                                           plantd::mdp::Engine::kLibzmq};
  std::string broker = PLANTD_BROKER_BINARY;
  std::string nats_server = "nats-server";
  std::string natsbench = PLANTD_BUILD_DIR "/natsbench";
};

struct Run {
  std::string target;
  double req_per_s = 0;
  double p50_us = 0;
  double p99_us = 0;
  double server_cpu_us_per_req = 0;
  uint64_t lost = 0;
  uint64_t mismatched = 0;
  std::string error;
};

// One client thread: an AsyncClient keeping `inflight` requests going, each
// callback checking its reply and sending the next.
struct ClientLoad {
  uint64_t in_window = 0;
  uint64_t lost = 0;
  uint64_t mismatched = 0;
  std::vector<uint64_t> latencies_ns;
  std::string error;
};

void RunClient(const Options& o, plantd::mdp::Engine engine,
               const std::vector<std::string>& endpoints, int index, Clock::time_point start,
               Clock::time_point end, ClientLoad* out) {
  plantd::bench::PinToCpu(o.load_cpu);
  plantd::mdp::AsyncClient client({.endpoints = endpoints,
                                   .timeout = std::chrono::seconds(10),
                                   .attempts = 1,
                                   .engine = engine});
  if (!client.status().ok()) {
    out->error = client.status().message();
    return;
  }
  uint64_t sequence = 0;
  std::function<void()> send_next;
  send_next = [&] {
    // The body names its client and number, padded to the size asked for.
    std::string body = std::to_string(index) + ":" + std::to_string(sequence++);
    if (body.size() < o.size) body.resize(o.size, '.');
    const Clock::time_point sent = Clock::now();
    client.Send("echo", {body}, [&, body, sent](plantd::Result<plantd::mdp::Frames> reply) {
      const Clock::time_point now = Clock::now();
      if (!reply.ok()) {
        ++out->lost;
        if (out->error.empty()) out->error = reply.status().message();
      } else if (reply->size() != 1 || (*reply)[0] != body) {
        ++out->mismatched;
      } else if (sent >= start && now <= end) {
        ++out->in_window;
        out->latencies_ns.push_back(static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(now - sent).count()));
      }
      if (now < end) send_next();
    });
  };
  for (int i = 0; i < o.inflight; ++i) send_next();
  while (Clock::now() < end) client.Poll(std::chrono::milliseconds(10));
  out->lost += client.Drain(std::chrono::seconds(5));
}

void RunWorker(const Options& o, plantd::mdp::Engine engine,
               const std::vector<std::string>& endpoints, const std::atomic<bool>& stop,
               std::atomic<uint64_t>& reply_failures) {
  plantd::bench::PinToCpu(o.load_cpu);
  plantd::mdp::Worker worker(
      {.endpoints = endpoints, .service = "echo", .credit = o.credit, .engine = engine});
  while (!stop.load(std::memory_order_relaxed)) {
    auto request = worker.Receive(std::chrono::milliseconds(50));
    if (request && !worker.Reply(*request, request->body).ok()) ++reply_failures;
  }
}

Run RunBroker(const Options& o, plantd::mdp::Engine engine) {
  Run r;
  r.target = std::string("broker-") + EngineName(engine);
  std::vector<std::string> client_endpoints, worker_endpoints;
  std::vector<int> ports;
  std::vector<std::unique_ptr<plantd::bench::BrokerConfigDir>> files;
  for (int b = 0; b < o.brokers; ++b) {
    const int port = plantd::bench::FreeTcpPort();
    const int worker_port = plantd::bench::FreeTcpPort();
    ports.push_back(port);
    client_endpoints.push_back("tcp://127.0.0.1:" + std::to_string(port));
    worker_endpoints.push_back("tcp://127.0.0.1:" + std::to_string(worker_port));
    files.push_back(std::make_unique<plantd::bench::BrokerConfigDir>(
        "plantd-lib-bench", "endpoint: " + client_endpoints.back() +
                                "\nclient_endpoint: " + worker_endpoints.back() +
                                "\ntransport: native\nbuses: []\nhealth:\n  port: 0\n"
                                "log:\n  level: warn\nstore:\n  enabled: false\n"));
    if (!files.back()->ok()) {
      r.error = "mkdtemp failed";
      return r;
    }
  }
  {
    std::vector<std::unique_ptr<ChildProcess>> brokers;
    for (int b = 0; b < o.brokers; ++b) {
      brokers.push_back(std::make_unique<ChildProcess>(
          std::vector<std::string>{o.broker, "--config", files[b]->config()}, o.server_cpu,
          files[b]->log()));
    }
    const auto brokers_cpu = [&] {
      double cpu = 0;
      for (const auto& broker : brokers) cpu += plantd::bench::ProcessCpuSeconds(broker->pid());
      return cpu;
    };
    for (int port : ports) {
      if (r.error.empty() && !plantd::bench::WaitForTcpPort(port, 10000)) {
        r.error = "a broker did not listen on port " + std::to_string(port);
      }
    }
    if (r.error.empty()) {
      std::atomic<bool> stop{false};
      std::atomic<uint64_t> reply_failures{0};
      std::vector<std::thread> workers;
      for (int i = 0; i < o.workers; ++i) {
        workers.emplace_back(RunWorker, std::cref(o), engine, std::cref(worker_endpoints),
                             std::cref(stop), std::ref(reply_failures));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(300));  // READY reaches the broker
      const Clock::time_point start = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                         std::chrono::duration<double>(o.warmup_s));
      const Clock::time_point end = start + std::chrono::duration_cast<Clock::duration>(
                                                std::chrono::duration<double>(o.duration_s));
      std::vector<ClientLoad> loads(static_cast<size_t>(o.clients));
      std::vector<std::thread> clients;
      double cpu_at_start = 0;
      for (int i = 0; i < o.clients; ++i) {
        clients.emplace_back(RunClient, std::cref(o), engine, std::cref(client_endpoints), i, start,
                             end, &loads[static_cast<size_t>(i)]);
      }
      std::this_thread::sleep_until(start);
      cpu_at_start = brokers_cpu();
      std::this_thread::sleep_until(end);
      const double cpu = brokers_cpu() - cpu_at_start;
      for (std::thread& t : clients) t.join();
      stop = true;
      for (std::thread& t : workers) t.join();
      uint64_t done = 0;
      std::vector<uint64_t> latencies;
      for (ClientLoad& l : loads) {
        done += l.in_window;
        r.lost += l.lost;
        r.mismatched += l.mismatched;
        latencies.insert(latencies.end(), l.latencies_ns.begin(), l.latencies_ns.end());
        if (r.error.empty() && !l.error.empty()) r.error = l.error;
      }
      if (reply_failures > 0 && r.error.empty()) {
        r.error = std::to_string(reply_failures.load()) + " replies could not be sent";
      }
      r.req_per_s = static_cast<double>(done) / o.duration_s;
      r.p50_us = PercentileUs(latencies, 0.50);
      r.p99_us = PercentileUs(latencies, 0.99);
      if (done > 0) r.server_cpu_us_per_req = cpu * 1e6 / static_cast<double>(done);
    }
  }
  return r;
}

Run RunNats(const Options& o) {
  Run r;
  r.target = "nats";
  char arguments[256];
  std::snprintf(arguments, sizeof(arguments),
                "reqrep --workers %d --clients %d --inflight %d --size %zu --duration %g "
                "--warmup %g",
                o.workers, o.clients, o.inflight, o.size, o.duration_s + o.warmup_s,
                o.warmup_s);  // its duration includes the warm-up
  const plantd::bench::NatsRun run =
      plantd::bench::RunNatsbench(o.nats_server, o.natsbench, arguments, o.server_cpu, o.load_cpu);
  // "TOTAL 123456.7 req/s ... p50=12.3us ... p99=45.6us p99.9=..."
  const size_t at = run.output.find("TOTAL ");
  if (!run.error.empty() || at == std::string::npos) {
    r.error = run.error.empty() ? "natsbench printed no TOTAL" : run.error;
    return r;
  }
  const std::string total = run.output.substr(at);
  r.req_per_s = plantd::bench::NumberAfter(total, "TOTAL ");
  r.p50_us = plantd::bench::NumberAfter(total, "p50=");
  r.p99_us = plantd::bench::NumberAfter(total, "p99=");
  r.lost = static_cast<uint64_t>(plantd::bench::NumberAfter(total, "lost="));
  // natsbench runs warm-up plus the window: its server CPU covers both.
  if (r.req_per_s > 0) {
    r.server_cpu_us_per_req = run.server_cpu_s * 1e6 / (r.req_per_s * (o.duration_s + o.warmup_s));
  }
  return r;
}

void Print(const Options& o, const Run& r) {
  std::printf(
      "RESULT lib target=%s brokers=%d clients=%d inflight=%d workers=%d credit=%d size=%zu "
      "req_per_s=%.0f "
      "p50_us=%.1f p99_us=%.1f server_cpu_us_per_req=%.2f lost=%llu mismatched=%llu%s%s\n",
      r.target.c_str(), r.target == "nats" ? 1 : o.brokers, o.clients, o.inflight, o.workers,
      o.credit, o.size, r.req_per_s, r.p50_us, r.p99_us, r.server_cpu_us_per_req,
      static_cast<unsigned long long>(r.lost), static_cast<unsigned long long>(r.mismatched),
      r.error.empty() ? "" : " error=", r.error.c_str());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i];
    const char* value = argv[i + 1];
    if (key == "--clients")
      o.clients = std::atoi(value);
    else if (key == "--inflight")
      o.inflight = std::atoi(value);
    else if (key == "--workers")
      o.workers = std::atoi(value);
    else if (key == "--credit")
      o.credit = std::atoi(value);
    else if (key == "--brokers")
      o.brokers = std::max(1, std::atoi(value));
    else if (key == "--size")
      o.size = static_cast<size_t>(std::atol(value));
    else if (key == "--duration")
      o.duration_s = std::atof(value);
    else if (key == "--warmup")
      o.warmup_s = std::atof(value);
    else if (key == "--rounds")
      o.rounds = std::atoi(value);
    else if (key == "--server-cpu")
      o.server_cpu = std::atoi(value);
    else if (key == "--load-cpu")
      o.load_cpu = std::atoi(value);
    else if (key == "--engines") {
      if (!plantd::bench::ParseEngines(value, "plantd-lib-bench", &o.engines)) return 2;
    } else if (key == "--broker")
      o.broker = value;
    else if (key == "--nats-server")
      o.nats_server = value;
    else if (key == "--natsbench")
      o.natsbench = value;
    else {
      std::fprintf(stderr, "plantd-lib-bench: unknown option %s (see bench/libplantd_bench.cc)\n",
                   key.c_str());
      return 2;
    }
  }
  if ((argc - 1) % 2 != 0) {
    std::fprintf(stderr, "plantd-lib-bench: %s needs a value\n", argv[argc - 1]);
    return 2;
  }
  const bool with_nats = access(o.natsbench.c_str(), X_OK) == 0;
  std::printf(
      "libplantd end to end: %d clients x %d in flight (AsyncClient, callbacks), %d workers "
      "(Worker, Receive/Reply, credit %d), %zu B, %g s after %g s warm-up, %d rounds; server CPU "
      "%d, load CPU %d\n",
      o.clients, o.inflight, o.workers, o.credit, o.size, o.duration_s, o.warmup_s, o.rounds,
      o.server_cpu, o.load_cpu);
  if (!with_nats) {
    std::printf("nats: skipped, no natsbench at %s (scripts/run-bench.sh builds it)\n",
                o.natsbench.c_str());
  }
  const size_t engines = o.engines.size();
  std::vector<std::vector<double>> broker_rates(engines), ratios(engines);
  std::vector<double> nats_rates;
  bool failed = false;
  for (int round = 0; round < o.rounds; ++round) {
    double nats_rate = 0;
    if (with_nats) {
      const Run n = RunNats(o);
      Print(o, n);
      failed |= !n.error.empty();
      nats_rates.push_back(n.req_per_s);
      nats_rate = n.req_per_s;
    }
    for (size_t e = 0; e < engines; ++e) {
      const Run b = RunBroker(o, o.engines[e]);
      Print(o, b);
      failed |= !b.error.empty() || b.lost > 0 || b.mismatched > 0;
      broker_rates[e].push_back(b.req_per_s);
      if (nats_rate > 0) ratios[e].push_back(b.req_per_s / nats_rate);
    }
  }
  std::printf("== medians over %d rounds (req/s):", o.rounds);
  for (size_t e = 0; e < engines; ++e) {
    std::printf(" broker-%s=%.0f", EngineName(o.engines[e]), Median(broker_rates[e]));
  }
  if (with_nats) {
    std::printf(" nats=%.0f", Median(nats_rates));
    for (size_t e = 0; e < engines; ++e) {
      std::printf("\n== broker-%s / nats: medians %.3f, median of per-round ratios %.3f",
                  EngineName(o.engines[e]),
                  Median(nats_rates) > 0 ? Median(broker_rates[e]) / Median(nats_rates) : 0,
                  Median(ratios[e]));
    }
  }
  std::printf("\n");
  return failed ? 1 : 0;
}

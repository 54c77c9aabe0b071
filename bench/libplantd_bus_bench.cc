// plantd-lib-bus-bench: a bus end to end as a user of libplantd writes it
// (issue #13), against NATS publish/subscribe in the same run.
//
//   broker  the real plantd-broker with one bus in block mode (publishers
//           wait rather than lose); P publisher threads, each with a
//           plantd::bus::Publisher, publish to topic "bench.t" as fast as
//           Publish returns (or at --rate messages/s in total); S
//           subscriber threads, each with a plantd::bus::Subscriber on
//           "bench.", take them with Receive. Only libplantd's public
//           headers are used for the load.
//   nats    nats-server with natsbench pubsub (../shared/tools/natsbench):
//           the same P publishers and S subscribers, subject bench.t.
//
// Each message carries its publisher, a sequence number and its send time
// in its first 24 bytes: subscribers count what is missing and measure
// latency (with --rate; at full speed latency is queueing and not taken).
// A subscriber's rate is its messages over the time from its first to its
// last, as natsbench counts it. The broker target runs once per engine
// named in --engines (plantd::Engine: "native", "libzmq"), as
// "broker-ENGINE"; rounds alternate the targets; servers run on
// --server-cpu, the load on --load-cpu.
//
//   plantd-lib-bus-bench [--pubs 1] [--subs 1] [--size 64] [--duration 5]
//       [--rate 0] [--rounds 2] [--server-cpu 0] [--load-cpu 1]
//       [--engines native,libzmq] [--broker PATH] [--nats-server PATH]
//       [--natsbench PATH]
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_stats.h"
#include "child_process.h"
#include "lib_bench_common.h"
#include "plantd/bus/bus.h"

namespace {

using Clock = std::chrono::steady_clock;
using plantd::bench::ChildProcess;
using plantd::bench::EngineName;
using plantd::bench::Median;
using plantd::bench::NumberAfter;
using plantd::bench::PercentileUs;

// Publisher ids at and above this are warm-up messages, not counted.
constexpr uint32_t kWarmupId = 0xffffffff;

struct Options {
  int pubs = 1;
  int subs = 1;
  size_t size = 64;
  double duration_s = 5;
  double rate = 0;  // messages/s over all publishers; 0: as fast as possible
  int rounds = 2;
  int server_cpu = 0;
  int load_cpu = 1;
  std::vector<plantd::Engine> engines{plantd::Engine::kNative, plantd::Engine::kLibzmq};
  std::string broker = PLANTD_BROKER_BINARY;
  std::string nats_server = "nats-server";
  std::string natsbench = PLANTD_BUILD_DIR "/natsbench";
};

struct Run {
  std::string target;
  double sent_per_s = 0;
  double per_sub_min = 0;  // delivered msg/s of the slowest subscriber
  double per_sub_avg = 0;
  long long missing = 0;  // over all subscribers
  double p50_us = 0;
  double p99_us = 0;
  double server_cpu_s = 0;
  std::string error;
};

uint64_t NowNs() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
          .count());
}

struct SubscriberLoad {
  uint64_t received = 0;
  uint64_t first_ns = 0;
  uint64_t last_ns = 0;
  bool warm = false;  // a warm-up message arrived: the subscription is in place
  std::vector<uint64_t> next_seq;
  uint64_t gaps = 0;
  std::vector<uint64_t> latencies_ns;
  std::string error;
};

void RunSubscriber(const Options& o, plantd::Engine engine, const std::string& endpoint,
                   const std::atomic<int>& publishers_done, SubscriberLoad* load) {
  plantd::bus::Subscriber sub(endpoint, {"bench."}, {.engine = engine});
  if (!sub.status().ok()) {
    load->error = sub.status().message();
    return;
  }
  load->next_seq.assign(static_cast<size_t>(o.pubs), 0);
  // One clock reading per message, as natsbench takes.
  const uint64_t give_up_ns = NowNs() + static_cast<uint64_t>((o.duration_s + 30) * 1e9);
  uint64_t idle_since = NowNs();
  plantd::bus::Message m;  // reused: Receive then allocates nothing
  while (true) {
    if (!sub.Receive(&m, std::chrono::milliseconds(50))) {
      const uint64_t now = NowNs();
      // Done once every publisher has finished and nothing came for 1 s.
      if (now >= give_up_ns ||
          (publishers_done.load() == o.pubs && now - idle_since > uint64_t{1000000000}))
        break;
      continue;
    }
    const uint64_t now = NowNs();
    idle_since = now;
    if (m.frames.empty() || m.frames[0].size() < 24) continue;
    const std::string& body = m.frames[0];
    uint32_t id;
    uint64_t seq, sent_ns;
    std::memcpy(&id, body.data(), 4);
    std::memcpy(&seq, body.data() + 8, 8);
    std::memcpy(&sent_ns, body.data() + 16, 8);
    if (id == kWarmupId) {
      load->warm = true;
      continue;
    }
    if (id >= static_cast<uint32_t>(o.pubs)) continue;
    if (load->received == 0) load->first_ns = now;
    load->last_ns = now;
    ++load->received;
    uint64_t& next = load->next_seq[id];
    if (seq > next) load->gaps += seq - next;
    next = seq + 1;
    if (o.rate > 0) load->latencies_ns.push_back(now - sent_ns);
  }
}

// Publishes warm-up messages until every subscriber has one (the
// subscriptions have reached the publisher), then its share of the load.
void RunPublisher(const Options& o, plantd::Engine engine, const std::string& endpoint, int index,
                  const std::vector<SubscriberLoad>& subs, const std::atomic<bool>& go,
                  uint64_t* sent, std::string* error) {
  ::prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);  // paced sends sleep microseconds
  plantd::bus::Publisher pub(endpoint, {.engine = engine});
  if (!pub.status().ok()) {
    *error = pub.status().message();
    return;
  }
  std::vector<std::string> frames{std::string(o.size, 'p')};
  char* body = frames[0].data();
  std::memcpy(body, &kWarmupId, 4);
  const auto warm_deadline = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < warm_deadline) {
    (void)pub.Publish("bench.t", frames);
    bool all = true;
    for (const SubscriberLoad& s : subs) all &= s.warm;
    if (all && go.load()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const uint32_t id = static_cast<uint32_t>(index);
  std::memcpy(body, &id, 4);
  const double interval_ns = o.rate > 0 ? 1e9 * o.pubs / o.rate : 0;
  const uint64_t start = NowNs();
  const uint64_t end = start + static_cast<uint64_t>(o.duration_s * 1e9);
  uint64_t seq = 0;
  while (true) {
    uint64_t now = NowNs();
    if (now >= end) break;
    if (interval_ns > 0) {
      const uint64_t due = start + static_cast<uint64_t>(static_cast<double>(seq) * interval_ns);
      if (now < due) {
        std::this_thread::sleep_for(std::chrono::nanoseconds(due - now));
        now = NowNs();
      }
    }
    std::memcpy(body + 8, &seq, 8);
    std::memcpy(body + 16, &now, 8);
    const plantd::Status published = pub.Publish("bench.t", frames);
    if (!published.ok()) {
      *error = published.message();
      break;
    }
    ++seq;
  }
  *sent = seq;
}

Run RunBroker(const Options& o, plantd::Engine engine) {
  Run r;
  r.target = std::string("broker-") + EngineName(engine);
  const int backend = plantd::bench::FreeTcpPort();
  const int frontend = plantd::bench::FreeTcpPort();
  const int mdp = plantd::bench::FreeTcpPort();
  const int mdp_workers = plantd::bench::FreeTcpPort();
  plantd::bench::BrokerConfigDir files(
      "plantd-lib-bus-bench",
      "endpoint: tcp://127.0.0.1:" + std::to_string(mdp) +
          "\nclient_endpoint: tcp://127.0.0.1:" + std::to_string(mdp_workers) +
          "\nhealth:\n  port: 0\nlog:\n  level: warn\nstore:\n  enabled: false\n"
          "buses:\n  - name: bench\n    backend: tcp://127.0.0.1:" +
          std::to_string(backend) + "\n    frontend: tcp://127.0.0.1:" + std::to_string(frontend) +
          "\n    delivery: block\n");
  if (!files.ok()) {
    r.error = "mkdtemp failed";
    return r;
  }
  {
    ChildProcess broker({o.broker, "--config", files.config()}, o.server_cpu, files.log());
    if (!plantd::bench::WaitForTcpPort(frontend, 10000)) {
      r.error = "the broker did not listen on port " + std::to_string(frontend);
    } else {
      std::vector<SubscriberLoad> subs(static_cast<size_t>(o.subs));
      std::atomic<int> publishers_done{0};
      std::atomic<bool> go{false};
      std::vector<std::thread> sub_threads, pub_threads;
      for (int i = 0; i < o.subs; ++i) {
        sub_threads.emplace_back(RunSubscriber, std::cref(o), engine,
                                 "tcp://127.0.0.1:" + std::to_string(frontend),
                                 std::cref(publishers_done), &subs[static_cast<size_t>(i)]);
      }
      std::vector<uint64_t> sent(static_cast<size_t>(o.pubs), 0);
      std::vector<std::string> errors(static_cast<size_t>(o.pubs));
      const double cpu_before = plantd::bench::ProcessCpuSeconds(broker.pid());
      const uint64_t start = NowNs();
      for (int i = 0; i < o.pubs; ++i) {
        pub_threads.emplace_back([&, i] {
          RunPublisher(o, engine, "tcp://127.0.0.1:" + std::to_string(backend), i, subs, go,
                       &sent[static_cast<size_t>(i)], &errors[static_cast<size_t>(i)]);
          ++publishers_done;
        });
      }
      go = true;
      for (std::thread& t : pub_threads) t.join();
      const double publish_s = static_cast<double>(NowNs() - start) / 1e9;
      for (std::thread& t : sub_threads) t.join();
      r.server_cpu_s = plantd::bench::ProcessCpuSeconds(broker.pid()) - cpu_before;
      uint64_t total_sent = 0;
      for (size_t i = 0; i < sent.size(); ++i) {
        total_sent += sent[i];
        if (r.error.empty() && !errors[i].empty()) r.error = errors[i];
      }
      r.sent_per_s = static_cast<double>(total_sent) / std::max(publish_s, 1e-9);
      std::vector<uint64_t> latencies;
      double sum = 0;
      r.per_sub_min = 1e300;
      for (SubscriberLoad& s : subs) {
        if (r.error.empty() && !s.error.empty()) r.error = s.error;
        const double span = static_cast<double>(s.last_ns - s.first_ns) / 1e9;
        const double rate = span > 0 ? static_cast<double>(s.received) / span : 0;
        sum += rate;
        r.per_sub_min = std::min(r.per_sub_min, rate);
        r.missing += static_cast<long long>(total_sent) - static_cast<long long>(s.received);
        latencies.insert(latencies.end(), s.latencies_ns.begin(), s.latencies_ns.end());
      }
      if (subs.empty()) r.per_sub_min = 0;
      r.per_sub_avg = subs.empty() ? 0 : sum / static_cast<double>(subs.size());
      r.p50_us = PercentileUs(latencies, 0.50);
      r.p99_us = PercentileUs(latencies, 0.99);
    }
  }
  return r;
}

Run RunNats(const Options& o) {
  Run r;
  r.target = "nats";
  char arguments[256];
  std::snprintf(arguments, sizeof(arguments),
                "pubsub --pubs %d --subs %d --size %zu --duration %g --rate %g", o.pubs, o.subs,
                o.size, o.duration_s, o.rate);
  const plantd::bench::NatsRun run =
      plantd::bench::RunNatsbench(o.nats_server, o.natsbench, arguments, o.server_cpu, o.load_cpu);
  r.server_cpu_s = run.server_cpu_s;
  // "TOTAL sent=N (R msg/s) delivered=... per-sub min=X avg=Y, ... missing=M (..%)"
  // "LAT all subs: p50=Aus p90=... p99=Bus ..."
  const size_t total = run.output.find("TOTAL ");
  if (!run.error.empty() || total == std::string::npos) {
    r.error = run.error.empty() ? "natsbench printed no TOTAL" : run.error;
    return r;
  }
  const std::string tail = run.output.substr(total);
  r.sent_per_s = NumberAfter(tail, "(");
  r.per_sub_min = NumberAfter(tail, "per-sub min=");
  r.per_sub_avg = NumberAfter(tail, "avg=");
  r.missing = static_cast<long long>(NumberAfter(tail, "missing="));
  if (o.rate > 0) {
    r.p50_us = NumberAfter(tail, "p50=");
    r.p99_us = NumberAfter(tail, "p99=");
  }
  if (tail.find("disconnected=0") == std::string::npos) {
    r.error = "a NATS subscriber was disconnected (slow consumer)";
  }
  return r;
}

void Print(const Options& o, const Run& r) {
  std::printf(
      "RESULT lib-bus target=%s pubs=%d subs=%d size=%zu rate=%.0f sent_per_s=%.0f "
      "delivered_per_sub_min=%.0f delivered_per_sub_avg=%.0f missing=%lld p50_us=%.1f "
      "p99_us=%.1f server_cpu_s=%.2f%s%s\n",
      r.target.c_str(), o.pubs, o.subs, o.size, o.rate, r.sent_per_s, r.per_sub_min, r.per_sub_avg,
      r.missing, r.p50_us, r.p99_us, r.server_cpu_s,
      r.error.empty() ? "" : " error=", r.error.c_str());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if ((argc - 1) % 2 != 0) {
    std::fprintf(stderr, "plantd-lib-bus-bench: %s needs a value\n", argv[argc - 1]);
    return 2;
  }
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i];
    const char* value = argv[i + 1];
    if (key == "--pubs") {
      o.pubs = std::atoi(value);
    } else if (key == "--subs") {
      o.subs = std::atoi(value);
    } else if (key == "--size") {
      o.size = std::max<size_t>(24, static_cast<size_t>(std::atol(value)));
    } else if (key == "--duration") {
      o.duration_s = std::atof(value);
    } else if (key == "--rate") {
      o.rate = std::atof(value);
    } else if (key == "--rounds") {
      o.rounds = std::atoi(value);
    } else if (key == "--server-cpu") {
      o.server_cpu = std::atoi(value);
    } else if (key == "--load-cpu") {
      o.load_cpu = std::atoi(value);
    } else if (key == "--engines") {
      if (!plantd::bench::ParseEngines(value, "plantd-lib-bus-bench", &o.engines)) return 2;
    } else if (key == "--broker") {
      o.broker = value;
    } else if (key == "--nats-server") {
      o.nats_server = value;
    } else if (key == "--natsbench") {
      o.natsbench = value;
    } else {
      std::fprintf(stderr, "plantd-lib-bus-bench: unknown option %s (see bench/%s)\n", key.c_str(),
                   "libplantd_bus_bench.cc");
      return 2;
    }
  }
  if (o.pubs < 1 || o.subs < 1 || o.rounds < 1 || o.duration_s <= 0) {
    std::fprintf(stderr,
                 "plantd-lib-bus-bench: --pubs, --subs, --rounds, --duration must be > 0\n");
    return 2;
  }
  plantd::bench::PinToCpu(o.load_cpu);
  const bool with_nats = access(o.natsbench.c_str(), X_OK) == 0;
  std::printf(
      "libplantd bus end to end: %d publishers -> %d subscribers (bus::Publisher, "
      "bus::Subscriber; broker bus in block mode), %zu B, %s, %g s, %d rounds; server CPU %d, "
      "load CPU %d\n",
      o.pubs, o.subs, o.size, o.rate > 0 ? (std::to_string(o.rate) + " msg/s").c_str() : "max rate",
      o.duration_s, o.rounds, o.server_cpu, o.load_cpu);
  if (!with_nats) {
    std::printf("nats: skipped, no natsbench at %s (scripts/run-bench.sh builds it)\n",
                o.natsbench.c_str());
  }
  const size_t engines = o.engines.size();
  std::vector<std::vector<double>> rates(engines), ratios(engines), p99s(engines);
  std::vector<double> nats_rates, nats_p99s;
  bool failed = false;
  for (int round = 0; round < o.rounds; ++round) {
    double nats_rate = 0;
    if (with_nats) {
      const Run n = RunNats(o);
      Print(o, n);
      failed |= !n.error.empty();
      nats_rates.push_back(n.per_sub_min);
      nats_p99s.push_back(n.p99_us);
      nats_rate = n.per_sub_min;
    }
    for (size_t e = 0; e < engines; ++e) {
      const Run b = RunBroker(o, o.engines[e]);
      Print(o, b);
      failed |= !b.error.empty() || b.missing != 0;
      rates[e].push_back(b.per_sub_min);
      p99s[e].push_back(b.p99_us);
      if (nats_rate > 0) ratios[e].push_back(b.per_sub_min / nats_rate);
    }
  }
  std::printf("== medians over %d rounds (delivered msg/s of the slowest subscriber):", o.rounds);
  for (size_t e = 0; e < engines; ++e) {
    std::printf(" broker-%s=%.0f", EngineName(o.engines[e]), Median(rates[e]));
  }
  if (with_nats) std::printf(" nats=%.0f", Median(nats_rates));
  if (o.rate > 0) {
    std::printf("\n== medians of p99 latency (us):");
    for (size_t e = 0; e < engines; ++e) {
      std::printf(" broker-%s=%.1f", EngineName(o.engines[e]), Median(p99s[e]));
    }
    if (with_nats) std::printf(" nats=%.1f", Median(nats_p99s));
  }
  if (with_nats) {
    for (size_t e = 0; e < engines; ++e) {
      std::printf("\n== broker-%s / nats: medians %.3f, median of per-round ratios %.3f",
                  EngineName(o.engines[e]),
                  Median(nats_rates) > 0 ? Median(rates[e]) / Median(nats_rates) : 0,
                  Median(ratios[e]));
    }
  }
  std::printf("\n");
  return failed ? 1 : 0;
}

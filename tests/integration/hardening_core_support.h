// The made-up service name flood of issue 12, shared by the short variant
// (tests/integration/hardening_core_test.cc) and the long one
// (tests/stress/core_stress_test.cc): attackers send requests to distinct
// made-up service names while a real client and worker keep talking, and
// the result says how the real pair fared and what the attackers were told.
#pragma once

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "support.h"

namespace plantd::test {

struct FloodOptions {
  int attackers = 1;                // connections, each with its own names
  int requests_per_attacker = 50000;
  std::chrono::milliseconds real_interval{10};  // between the real client's requests
  std::chrono::milliseconds real_timeout{2000};  // a real request not answered by then fails
  // Called once every attacker has sent everything and read its replies,
  // while their connections are still open.
  std::function<void()> while_connected;
};

struct FloodResult {
  int real_answered = 0;
  int real_unanswered = 0;
  bool real_recovered = false;  // the real pair was answered again after the flood
  std::chrono::nanoseconds real_slowest{0};
  int refusals = 0;             // error replies the attackers read
  int accepted_replies = 0;     // anything else the attackers read
  std::map<std::string, int> refusals_by_reason;
  std::string refusal_status;   // of the first refusal
  std::string refusal_reason;   // of the first refusal
  long rss_growth_bytes = 0;    // the broker's, from before the flood to its peak
};

// The resident set of a process in bytes (0 if unknown).
inline long ResidentBytes(int pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6)) * 1024;
  }
  return 0;
}

inline FloodResult RunServiceNameFlood(zmq::context_t& ctx, const std::string& clients,
                                       const std::string& workers, int broker_pid,
                                       const FloodOptions& options) {
  using Clock = std::chrono::steady_clock;
  using namespace std::chrono_literals;
  FloodResult result;
  std::atomic<bool> stop_worker{false};
  std::atomic<bool> stop_client{false};

  // The real worker: echoes every request, answers heartbeats.
  std::thread worker([&] {
    RawPeer w(ctx, workers);
    w.Send({"MDPW02", Byte(0x01), "real.echo"});
    while (!stop_worker.load()) {
      auto f = w.Recv(50ms);
      if (!f) continue;
      if (IsHeartbeat(*f)) {
        w.Send({"MDPW02", Byte(0x05)});
        continue;
      }
      if (f->size() >= 4 && (*f)[1] == Byte(0x02)) {
        Frames reply{"MDPW02", Byte(0x04), (*f)[2], ""};
        reply.insert(reply.end(), f->begin() + 4, f->end());
        w.Send(reply);
      }
    }
  });

  // The real client: first until the worker answers, then at a steady pace.
  RawPeer real(ctx, clients);
  auto round_trip = [&](int n, std::chrono::milliseconds timeout) -> std::optional<Clock::duration> {
    const std::string body = "real-" + std::to_string(n);
    const auto sent = Clock::now();
    real.Send({"MDPC02", Byte(0x01), "real.echo", body});
    while (true) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(sent + timeout - Clock::now());
      if (left <= 0ms) return std::nullopt;
      auto f = real.Recv(left);
      if (!f) return std::nullopt;
      if (f->size() == 4 && (*f)[3] == body) return Clock::now() - sent;
      // A late reply to an earlier request: skip it.
    }
  };
  int n = 0;
  for (int i = 0; i < 100 && !round_trip(n++, 200ms); ++i) {
  }
  const long rss_before = ResidentBytes(broker_pid);
  std::atomic<long> rss_peak{rss_before};

  std::atomic<int> answered{0};  // result.real_answered, read while the client runs
  std::thread client([&] {
    while (!stop_client.load()) {
      auto took = round_trip(n++, options.real_timeout);
      if (took) {
        ++answered;
        result.real_slowest = std::max<std::chrono::nanoseconds>(result.real_slowest, *took);
      } else {
        ++result.real_unanswered;
      }
      const long rss = ResidentBytes(broker_pid);
      if (rss > rss_peak.load()) rss_peak.store(rss);
      std::this_thread::sleep_for(options.real_interval);
    }
  });

  std::mutex mutex;  // guards the refusal fields of result
  std::atomic<int> attackers_done{0};
  std::atomic<bool> release_attackers{false};
  std::vector<std::thread> attackers;
  for (int a = 0; a < options.attackers; ++a) {
    attackers.emplace_back([&, a] {
      zmq::socket_t s(ctx, zmq::socket_type::dealer);
      s.set(zmq::sockopt::linger, 0);
      s.set(zmq::sockopt::rcvhwm, 0);
      s.connect(clients);
      const std::string prefix = "made-up." + std::to_string(a) + ".";
      int read = 0;
      int refusals = 0;
      int other = 0;
      std::map<std::string, int> by_reason;
      std::string first_status;
      std::string first_reason;
      auto drain = [&](std::chrono::milliseconds wait) {
        zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
        while (zmq::poll(&item, 1, wait) > 0) {
          Frames f;
          while (true) {
            zmq::message_t m;
            (void)s.recv(m);
            f.push_back(m.to_string());
            if (!m.more()) break;
          }
          ++read;
          if (f.size() == 5 && f[0] == "MDPC02" && f[1] == Byte(0x03)) {
            ++refusals;
            ++by_reason[f[4]];
            if (first_status.empty()) {
              first_status = f[3];
              first_reason = f[4];
            }
          } else {
            ++other;
          }
          wait = 0ms;
        }
      };
      for (int i = 0; i < options.requests_per_attacker; ++i) {
        const std::string name = prefix + std::to_string(i);
        s.send(zmq::buffer("MDPC02", 6), zmq::send_flags::sndmore);
        s.send(zmq::buffer("\x01", 1), zmq::send_flags::sndmore);
        s.send(zmq::buffer(name), zmq::send_flags::sndmore);
        s.send(zmq::buffer("x", 1), zmq::send_flags::none);
        if (i % 256 == 255) drain(0ms);
      }
      // Then read what is left, until the broker has been quiet a while.
      const auto deadline = Clock::now() + 30s;
      int before = -1;
      while (read != before && Clock::now() < deadline) {
        before = read;
        drain(1000ms);
      }
      {
        std::lock_guard<std::mutex> lock(mutex);
        result.refusals += refusals;
        result.accepted_replies += other;
        for (const auto& [reason, count] : by_reason) result.refusals_by_reason[reason] += count;
        if (result.refusal_status.empty()) {
          result.refusal_status = first_status;
          result.refusal_reason = first_reason;
        }
      }
      ++attackers_done;
      const auto give_up = Clock::now() + 60s;
      while (!release_attackers.load() && Clock::now() < give_up) {
        std::this_thread::sleep_for(5ms);
      }
    });
  }
  while (attackers_done.load() < options.attackers) std::this_thread::sleep_for(5ms);
  if (options.while_connected) options.while_connected();
  release_attackers.store(true);
  for (std::thread& t : attackers) t.join();
  // The real pair keeps going after the flood until it has been answered a
  // few more times: it recovered.
  const int answered_in_flood = answered.load();
  result.real_recovered = PollUntil([&] { return answered.load() >= answered_in_flood + 3; });
  stop_client.store(true);
  client.join();
  result.real_answered = answered.load();
  stop_worker.store(true);
  worker.join();
  result.rss_growth_bytes = rss_peak.load() - rss_before;
  std::printf(
      "flood: %d attackers x %d names: %d refusals read; real pair %d answered, %d not, "
      "slowest %lld ms; broker RSS +%ld KiB\n",
      options.attackers, options.requests_per_attacker, result.refusals, result.real_answered,
      result.real_unanswered,
      static_cast<long long>(
          std::chrono::duration_cast<std::chrono::milliseconds>(result.real_slowest).count()),
      result.rss_growth_bytes / 1024);
  return result;
}

}  // namespace plantd::test

// Several brokers under load (issue 17, label `stress`): three real brokers,
// workers registered with all three, clients sending to all three at 1,000
// requests a second for 60 s, and one broker killed with SIGKILL a third of
// the way in. No request may be lost; how many ran twice on a worker (a
// request dispatched by the dead broker and sent again by its client:
// docs/brokers.md) is counted and reported, not forbidden.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "plantd/mdp/async_client.h"
#include "plantd/mdp/worker.h"
#include "support.h"

namespace plantd::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kBrokers = 3;
constexpr int kWorkers = 3;
constexpr int kClients = 2;
constexpr int kRatePerClient = 500;  // requests per second
constexpr auto kRun = 60s;
constexpr auto kKillAt = 20s;
constexpr auto kWork = 20ms;  // a worker's time per request
constexpr auto kTimeout = 1000ms;

// What one client thread saw.
struct ClientTally {
  uint64_t sent = 0;
  uint64_t answered = 0;
  uint64_t failed = 0;
  uint64_t mismatched = 0;
  std::chrono::milliseconds slowest{0};
  std::string first_error;
};

TEST(BrokersStress, ThreeBrokersOneKilledMidRunLoseNoRequest) {
  std::vector<std::unique_ptr<BrokerProcess>> brokers;
  std::vector<std::string> client_endpoints, worker_endpoints;
  for (int b = 0; b < kBrokers; ++b) {
    client_endpoints.push_back(TcpEndpoint(FreeTcpPort()));
    worker_endpoints.push_back(TcpEndpoint(FreeTcpPort()));
    brokers.push_back(std::make_unique<BrokerProcess>());
    ASSERT_TRUE(brokers.back()->Start(
        {.config_yaml = "endpoint: " + client_endpoints.back() +
                        "\nclient_endpoint: " + worker_endpoints.back() +
                        "\nbuses: []\nhealth:\n  port: 0\nstore:\n  enabled: false\n"
                        "heartbeat_interval: 100ms\nheartbeat_liveness: 5\n"}))
        << brokers.back()->Output();
  }

  // Workers on every broker, each handling 16 requests at once and taking
  // 20 ms over each, so that about 20 are in flight at any moment and the
  // killed broker takes some with it. Each request's body is its id, and
  // every handling of it is counted.
  std::mutex handled_mutex;
  std::map<std::string, int> handled;  // GUARDED_BY(handled_mutex)
  std::vector<std::unique_ptr<mdp::Worker>> workers;
  std::vector<std::thread> serving;
  for (int w = 0; w < kWorkers; ++w) {
    workers.push_back(
        std::make_unique<mdp::Worker>(mdp::WorkerOptions{.endpoints = worker_endpoints,
                                                         .service = "stress.echo",
                                                         .heartbeat_interval = 100ms,
                                                         .heartbeat_liveness = 5,
                                                         .reconnect_delay = 50ms,
                                                         .reconnect_delay_max = 500ms,
                                                         .credit = 16}));
    serving.emplace_back([&, worker = workers.back().get()] {
      worker->Serve([&](const mdp::WorkerRequest& request) {
        if (!request.body.empty()) {
          std::lock_guard<std::mutex> lock(handled_mutex);
          ++handled[request.body[0]];
        }
        std::this_thread::sleep_for(kWork);
        return request.body;
      });
    });
  }
  std::this_thread::sleep_for(500ms);  // READY to every broker: time must pass

  std::vector<ClientTally> tallies(kClients);
  std::vector<std::thread> clients;
  const Clock::time_point start = Clock::now();
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      ClientTally& t = tallies[static_cast<size_t>(c)];
      mdp::AsyncClient client(
          mdp::ClientOptions{.endpoints = client_endpoints, .timeout = kTimeout, .attempts = 3});
      while (Clock::now() - start < kRun) {
        const auto due = static_cast<uint64_t>(
            std::chrono::duration<double>(Clock::now() - start).count() * kRatePerClient);
        while (t.sent < due) {
          const std::string id = std::to_string(c) + ":" + std::to_string(t.sent++);
          const Clock::time_point sent = Clock::now();
          client.Send("stress.echo", {id}, [&t, id, sent](Result<mdp::Frames> reply) {
            const auto took =
                std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - sent);
            t.slowest = std::max(t.slowest, took);
            if (!reply.ok()) {
              ++t.failed;
              if (t.first_error.empty()) t.first_error = reply.status().message();
            } else if (reply->size() != 1 || (*reply)[0] != id) {
              ++t.mismatched;
            } else {
              ++t.answered;
            }
          });
        }
        client.Poll(1ms);
      }
      EXPECT_EQ(client.Drain(10s), 0u);
    });
  }
  std::this_thread::sleep_until(start + kKillAt);
  brokers[0]->Signal(SIGKILL);
  ASSERT_TRUE(brokers[0]->WaitExit(5s).has_value());
  for (std::thread& t : clients) t.join();
  for (auto& worker : workers) worker->Stop();
  for (std::thread& t : serving) t.join();

  uint64_t sent = 0, answered = 0, failed = 0, mismatched = 0;
  std::chrono::milliseconds slowest{0};
  for (const ClientTally& t : tallies) {
    sent += t.sent;
    answered += t.answered;
    failed += t.failed;
    mismatched += t.mismatched;
    slowest = std::max(slowest, t.slowest);
    EXPECT_TRUE(t.first_error.empty()) << t.first_error;
  }
  uint64_t ran_twice = 0;
  {
    std::lock_guard<std::mutex> lock(handled_mutex);
    for (const auto& [id, times] : handled) ran_twice += times > 1 ? 1 : 0;
  }
  EXPECT_GE(sent, 50'000u) << "the load did not keep its rate";
  EXPECT_EQ(failed, 0u);
  EXPECT_EQ(mismatched, 0u);
  EXPECT_EQ(answered, sent) << "requests lost";
  // Requests the dead broker held were sent again as soon as its connection
  // dropped, not after their timeout.
  EXPECT_LT(slowest, kTimeout) << "a request waited for its timeout";
  RecordProperty("requests", static_cast<int>(sent));
  RecordProperty("ran_twice", static_cast<int>(ran_twice));
  RecordProperty("slowest_ms", static_cast<int>(slowest.count()));
  std::printf(
      "three brokers, one killed at %llds: %llu requests, %llu answered, %llu ran twice on a "
      "worker, slowest %lld ms\n",
      static_cast<long long>(kKillAt.count()), static_cast<unsigned long long>(sent),
      static_cast<unsigned long long>(answered), static_cast<unsigned long long>(ran_twice),
      static_cast<long long>(slowest.count()));
  for (int b = 1; b < kBrokers; ++b) EXPECT_EQ(brokers[static_cast<size_t>(b)]->Stop(), 0);
}

}  // namespace
}  // namespace plantd::test

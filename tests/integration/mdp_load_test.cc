// Many peers at once: nothing lost, nothing duplicated, nothing crossed.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "support.h"

namespace plantd::test {
namespace {

using namespace std::chrono_literals;

void SendFrames(zmq::socket_t& s, const Frames& frames) {
  for (size_t i = 0; i < frames.size(); ++i) {
    s.send(zmq::buffer(frames[i]),
           i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }
}

Frames RecvFrames(zmq::socket_t& s) {
  Frames f;
  zmq::message_t m;
  do {
    (void)s.recv(m);
    f.push_back(m.to_string());
  } while (m.more());
  return f;
}

// W echo workers on one thread, answering until told to stop.
void RunEchoWorkers(const std::string& endpoint, int count, std::atomic<bool>* stop,
                    std::atomic<int>* served) {
  zmq::context_t ctx;
  ctx.set(zmq::ctxopt::max_sockets, 4096);
  std::vector<zmq::socket_t> sockets;
  for (int i = 0; i < count; ++i) {
    sockets.emplace_back(ctx, zmq::socket_type::dealer);
    sockets.back().set(zmq::sockopt::linger, 0);
    sockets.back().connect(endpoint);
    SendFrames(sockets.back(), {"MDPW02", Byte(0x01), "load.echo"});
  }
  std::vector<zmq::pollitem_t> items;
  for (auto& s : sockets) items.push_back({s.handle(), 0, ZMQ_POLLIN, 0});
  auto next_heartbeat = std::chrono::steady_clock::now();
  while (!*stop) {
    zmq::poll(items.data(), items.size(), 50ms);
    for (size_t i = 0; i < items.size(); ++i) {
      if (!(items[i].revents & ZMQ_POLLIN)) continue;
      Frames f = RecvFrames(sockets[i]);
      if (f.size() >= 4 && f[1] == Byte(0x02)) {
        Frames reply{"MDPW02", Byte(0x04), f[2], ""};
        reply.insert(reply.end(), f.begin() + 4, f.end());
        SendFrames(sockets[i], reply);
        ++*served;
      }
    }
    if (std::chrono::steady_clock::now() >= next_heartbeat) {
      for (auto& s : sockets) SendFrames(s, {"MDPW02", Byte(0x05)});
      next_heartbeat += 500ms;
    }
  }
}

// 1,000 concurrent clients and 100 workers: every request answered exactly
// once, with its own body.
TEST(MdpLoad, ThousandClientsHundredWorkersLoseAndDuplicateNothing) {
  constexpr int kClients = 1000;
  constexpr int kWorkers = 100;
  constexpr int kRequestsPerClient = 5;
  const int client_port = FreeTcpPort();
  const int worker_port = FreeTcpPort();
  BrokerProcess broker;
  ASSERT_TRUE(broker.Start({.config_yaml = "endpoint: " + TcpEndpoint(client_port) +
                                           "\nclient_endpoint: " + TcpEndpoint(worker_port) +
                                           "\nbuses: []\nhealth:\n  port: 0\n"}))
      << broker.Output();

  std::atomic<bool> stop{false};
  std::atomic<int> served{0};
  std::thread workers(RunEchoWorkers, TcpEndpoint(worker_port), kWorkers, &stop, &served);

  zmq::context_t ctx;
  ctx.set(zmq::ctxopt::max_sockets, 4096);
  std::vector<zmq::socket_t> clients;
  std::vector<int> sent(kClients, 0), received(kClients, 0);
  int mismatched = 0, extra = 0;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back(ctx, zmq::socket_type::dealer);
    clients.back().set(zmq::sockopt::linger, 0);
    clients.back().connect(TcpEndpoint(client_port));
  }
  auto body = [](int c, int n) { return std::to_string(c) + "/" + std::to_string(n); };
  for (int c = 0; c < kClients; ++c) {
    SendFrames(clients[c], {"MDPC02", Byte(0x01), "load.echo", body(c, 0)});
    sent[c] = 1;
  }
  std::vector<zmq::pollitem_t> items;
  for (auto& s : clients) items.push_back({s.handle(), 0, ZMQ_POLLIN, 0});
  int done = 0;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (done < kClients && std::chrono::steady_clock::now() < deadline) {
    zmq::poll(items.data(), items.size(), 100ms);
    for (int c = 0; c < kClients; ++c) {
      if (!(items[c].revents & ZMQ_POLLIN)) continue;
      Frames f = RecvFrames(clients[c]);
      if (received[c] >= sent[c]) {
        ++extra;
        continue;
      }
      if (f.size() != 4 || f[1] != Byte(0x03) || f[3] != body(c, received[c])) ++mismatched;
      ++received[c];
      if (sent[c] < kRequestsPerClient) {
        SendFrames(clients[c], {"MDPC02", Byte(0x01), "load.echo", body(c, sent[c])});
        ++sent[c];
      } else {
        ++done;
      }
    }
  }
  // Anything still in flight would show up as an extra reply now. Nothing
  // should arrive, so there is no condition to wait on: give a stray reply
  // 200 ms to turn up.
  std::this_thread::sleep_for(200ms);
  for (int c = 0; c < kClients; ++c) {
    zmq::message_t m;
    while (clients[c].recv(m, zmq::recv_flags::dontwait)) {
      if (!m.more()) ++extra;
    }
  }
  stop = true;
  workers.join();

  int total = 0;
  for (int c = 0; c < kClients; ++c) total += received[c];
  EXPECT_EQ(done, kClients);
  EXPECT_EQ(total, kClients * kRequestsPerClient);
  EXPECT_EQ(served.load(), kClients * kRequestsPerClient);
  EXPECT_EQ(mismatched, 0);
  EXPECT_EQ(extra, 0);
  EXPECT_EQ(broker.Stop(), 0);
}

}  // namespace
}  // namespace plantd::test

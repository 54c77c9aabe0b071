// Raw Majordomo peers for protocol tests: they build and check frames by
// hand, in each dialect, so the tests say exactly what crosses the wire.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <string>
#include <thread>

#include "support.h"

namespace plantd::test {

// kMajortomo: the frames of the Python majortomo library (client.py and
// worker.py): 0.2 headers and bytes, a leading empty frame on everything, a
// client REQUEST of 0x02 and client replies 0x03/0x04 without a service frame.
enum class Dialect { kMdp01, kMdp02, kPlantd, kMajortomo };

inline const char* Name(Dialect d) {
  switch (d) {
    case Dialect::kMdp01: return "Mdp01";
    case Dialect::kMdp02: return "Mdp02";
    case Dialect::kPlantd: return "Plantd";
    case Dialect::kMajortomo: return "Majortomo";
  }
  return "?";
}

inline void PrintTo(Dialect d, std::ostream* os) { *os << Name(d); }

// A client: sends REQUEST, receives PARTIAL/FINAL.
class TestClient {
 public:
  // `before_connect` sets further socket options (CURVE keys), as RawPeer.
  TestClient(zmq::context_t& ctx, const std::string& endpoint, Dialect d,
             const std::function<void(zmq::socket_t&)>& before_connect = nullptr)
      : peer_(ctx, endpoint, "", before_connect), dialect_(d) {}

  void Request(const std::string& service, const Frames& body) {
    Frames f;
    switch (dialect_) {
      case Dialect::kMdp01: f = {"", "MDPC01", service}; break;
      case Dialect::kMdp02: f = {"MDPC02", Byte(0x01), service}; break;
      case Dialect::kPlantd: f = {"", "MDPC02", "REQUEST", service}; break;
      case Dialect::kMajortomo: f = {"", "MDPC02", Byte(0x02), service}; break;
    }
    f.insert(f.end(), body.begin(), body.end());
    peer_.Send(f);
  }

  struct Reply {
    bool final = false;
    std::string service;  // empty for majortomo, whose replies do not name it
    Frames body;
  };

  // The next reply, checked against the dialect's framing.
  std::optional<Reply> Receive(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    auto f = peer_.Recv(timeout);
    if (!f) return std::nullopt;
    Reply r;
    size_t i = 0;
    switch (dialect_) {
      case Dialect::kMdp01:
        EXPECT_GE(f->size(), 3u);
        EXPECT_EQ((*f)[0], "");
        EXPECT_EQ((*f)[1], "MDPC01");
        r.final = true;  // 0.1 has only the one reply
        i = 2;
        break;
      case Dialect::kMdp02:
        EXPECT_GE(f->size(), 3u);
        EXPECT_EQ((*f)[0], "MDPC02");
        EXPECT_TRUE((*f)[1] == Byte(0x02) || (*f)[1] == Byte(0x03));
        r.final = (*f)[1] == Byte(0x03);
        i = 2;
        break;
      case Dialect::kPlantd:
        EXPECT_GE(f->size(), 3u);
        EXPECT_EQ((*f)[0], "MDPC02");
        EXPECT_TRUE((*f)[1] == "PARTIAL" || (*f)[1] == "FINAL");
        r.final = (*f)[1] == "FINAL";
        i = 2;
        break;
      case Dialect::kMajortomo:
        // client.py: at least 3 frames, "" first, then MDPC02, then 0x03/0x04.
        EXPECT_GE(f->size(), 3u);
        EXPECT_EQ((*f)[0], "");
        EXPECT_EQ((*f)[1], "MDPC02");
        EXPECT_TRUE((*f)[2] == Byte(0x03) || (*f)[2] == Byte(0x04));
        r.final = (*f)[2] == Byte(0x04);
        r.body.assign(f->begin() + 3, f->end());
        return r;
    }
    if (f->size() <= i) return std::nullopt;
    r.service = (*f)[i];
    r.body.assign(f->begin() + static_cast<long>(i) + 1, f->end());
    return r;
  }

  RawPeer& peer() { return peer_; }

 private:
  RawPeer peer_;
  Dialect dialect_;
};

// A worker: READY, then REQUEST in, PARTIAL/FINAL out.
class TestWorker {
 public:
  TestWorker(zmq::context_t& ctx, const std::string& endpoint, Dialect d,
             const std::string& routing_id = "",
             const std::function<void(zmq::socket_t&)>& before_connect = nullptr)
      : peer_(ctx, endpoint, routing_id, before_connect), dialect_(d) {}

  void Ready(const std::string& service) { peer_.Send(Command(0x01, "READY", {service})); }
  void Heartbeat() { peer_.Send(Command(dialect_ == Dialect::kMdp01 ? 0x04 : 0x05, "HEARTBEAT")); }
  void Disconnect() {
    peer_.Send(Command(dialect_ == Dialect::kMdp01 ? 0x05 : 0x06, "DISCONNECT"));
  }

  struct Request {
    std::string address;
    Frames body;
  };

  // Like a real worker, answer the broker's heartbeats while waiting (off:
  // the worker goes silent, for expiry tests).
  void set_auto_heartbeat(bool on) { auto_heartbeat_ = on; }

  // The next REQUEST, skipping heartbeats; checked against the dialect.
  std::optional<Request> Receive(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    auto f = Next(timeout, auto_heartbeat_);
    if (!f) return std::nullopt;
    size_t i = 0;
    if (dialect_ == Dialect::kMdp01) {
      EXPECT_EQ((*f)[0], "");
      EXPECT_EQ((*f)[1], "MDPW01");
      EXPECT_EQ((*f)[2], Byte(0x02));
      i = 3;
    } else if (dialect_ == Dialect::kMajortomo) {
      // worker.py: "" first, then MDPW02, then REQUEST 0x02.
      EXPECT_EQ((*f)[0], "");
      EXPECT_EQ((*f)[1], "MDPW02");
      EXPECT_EQ((*f)[2], Byte(0x02));
      i = 3;
    } else {
      EXPECT_EQ((*f)[0], "MDPW02");
      EXPECT_EQ((*f)[1], dialect_ == Dialect::kPlantd ? std::string("REQUEST") : Byte(0x02));
      i = 2;
    }
    if (f->size() < i + 2) {
      ADD_FAILURE() << "REQUEST too short";
      return std::nullopt;
    }
    Request r;
    r.address = (*f)[i];
    EXPECT_EQ((*f)[i + 1], "") << "18/MDP: an empty frame follows the client address";
    r.body.assign(f->begin() + static_cast<long>(i) + 2, f->end());
    return r;
  }

  void Partial(const std::string& address, const Frames& body) {
    Frames args{address, ""};
    args.insert(args.end(), body.begin(), body.end());
    peer_.Send(Command(0x03, "PARTIAL", args));
  }

  void Final(const std::string& address, const Frames& body) {
    Frames args{address, ""};
    args.insert(args.end(), body.begin(), body.end());
    peer_.Send(Command(dialect_ == Dialect::kMdp01 ? 0x03 : 0x04, "FINAL", args));
  }

  // True when a DISCONNECT in this worker's dialect arrives in time.
  // Heartbeats are not answered here: the broker would take an answer after
  // its DISCONNECT for a protocol error and send another.
  bool ExpectDisconnect(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    auto f = Next(timeout, /*answer_heartbeats=*/false);
    if (!f) return false;
    if (dialect_ == Dialect::kMdp01) return *f == Frames{"", "MDPW01", Byte(0x05)};
    if (dialect_ == Dialect::kPlantd) return *f == Frames{"MDPW02", "DISCONNECT"};
    if (dialect_ == Dialect::kMajortomo) return *f == Frames{"", "MDPW02", Byte(0x06)};
    return *f == Frames{"MDPW02", Byte(0x06)};
  }

  RawPeer& peer() { return peer_; }

 private:
  // The next message that is not a heartbeat.
  std::optional<Frames> Next(std::chrono::milliseconds timeout, bool answer_heartbeats) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left <= std::chrono::milliseconds(0)) return std::nullopt;
      auto f = peer_.Recv(left);
      if (!f || !IsHeartbeat(*f)) return f;
      if (answer_heartbeats) Heartbeat();
    }
  }

  Frames Command(int byte, const std::string& word, const Frames& args = {}) const {
    Frames f;
    switch (dialect_) {
      case Dialect::kMdp01: f = {"", "MDPW01", Byte(byte)}; break;
      case Dialect::kMdp02: f = {"MDPW02", Byte(byte)}; break;
      case Dialect::kPlantd: f = {"", "MDPW02", word}; break;
      case Dialect::kMajortomo: f = {"", "MDPW02", Byte(byte)}; break;
    }
    f.insert(f.end(), args.begin(), args.end());
    return f;
  }

  RawPeer peer_;
  Dialect dialect_;
  bool auto_heartbeat_ = true;
};

// A 0.2 worker on its own thread: answers every request of `service` with
// `answer(body)` until Stop() or destruction, and counts what it served.
class BackgroundWorker {
 public:
  using Answer = std::function<Frames(const Frames& body)>;
  BackgroundWorker(zmq::context_t& ctx, const std::string& endpoint, const std::string& service,
                   Answer answer)
      : thread_([this, &ctx, endpoint, service, answer = std::move(answer)] {
          TestWorker w(ctx, endpoint, Dialect::kMdp02);
          w.Ready(service);
          while (!stop_.load()) {
            auto request = w.Receive(std::chrono::milliseconds(100));
            if (!request) continue;
            w.Final(request->address, answer(request->body));
            ++served_;
          }
        }) {}
  ~BackgroundWorker() { Stop(); }
  BackgroundWorker(const BackgroundWorker&) = delete;
  BackgroundWorker& operator=(const BackgroundWorker&) = delete;

  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int served() const { return served_.load(); }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> served_{0};
  std::thread thread_;
};

}  // namespace plantd::test

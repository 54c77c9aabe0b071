#include "zmtp_load.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstring>
#include <memory>
#include <string_view>
#include <thread>

#include "load_run.h"
#include "transport/zmtp_framing.h"

namespace plantd::bench {
namespace {

namespace zmtp = plantd::transport::zmtp;

// One DEALER-like connection over a blocking socket.
class Connection : public BufferedSocket {
 public:
  using BufferedSocket::Flush;

  // Connects and completes the NULL handshake; empty on success.
  std::string Open(const std::string& host, int port) {
    if (std::string error = Connect(host, port); !error.empty()) return error;
    zmtp::AppendGreeting(out_);
    zmtp::AppendReady(out_, "DEALER");
    if (!Flush()) return "handshake: send failed";
    // The server's greeting, then its READY.
    const uint64_t deadline = NowNs() + 5'000'000'000ull;
    while (in_.size() - in_begin_ < zmtp::kGreetingSize) {
      if (!Fill(100) || NowNs() > deadline) return "handshake: no greeting";
    }
    if (zmtp::CheckGreeting(Data()) != zmtp::GreetingError::kNone) return "handshake: bad greeting";
    in_begin_ += zmtp::kGreetingSize;
    while (true) {
      zmtp::FrameHeader h;
      const auto parsed = zmtp::ParseFrameHeader(Data(), Available(), &h);
      if (parsed == zmtp::HeaderParse::kOk && Available() >= h.header_size + h.size) {
        in_begin_ += h.header_size + h.size;
        return {};
      }
      if (parsed == zmtp::HeaderParse::kMalformed) return "handshake: malformed READY";
      if (!Fill(100) || NowNs() > deadline) return "handshake: no READY";
    }
  }

  void Queue(std::initializer_list<std::string_view> frames) {
    size_t i = 0;
    for (std::string_view f : frames) zmtp::AppendFrame(out_, f, ++i < frames.size());
  }
  void Queue(const std::vector<std::string_view>& frames) {
    for (size_t i = 0; i < frames.size(); ++i) {
      zmtp::AppendFrame(out_, frames[i], i + 1 < frames.size());
    }
  }

  // Waits up to `timeout_ms` for input, then hands every whole message read
  // to `on_message` (frames as views, valid during the call). False when the
  // connection failed.
  template <typename F>
  bool Read(int timeout_ms, F&& on_message) {
    if (!Fill(timeout_ms)) return false;
    while (true) {
      frames_.clear();
      size_t at = in_begin_;
      bool whole = false;
      while (true) {
        zmtp::FrameHeader h;
        const auto* p = reinterpret_cast<const uint8_t*>(in_.data() + at);
        const auto parsed = zmtp::ParseFrameHeader(p, in_.size() - at, &h);
        if (parsed == zmtp::HeaderParse::kMalformed) return false;
        if (parsed == zmtp::HeaderParse::kIncomplete) break;
        if (in_.size() - at - h.header_size < h.size) break;
        const std::string_view body(in_.data() + at + h.header_size, h.size);
        at += h.header_size + h.size;
        if (h.command) {  // between messages only: nothing the load needs
          in_begin_ = at;
          continue;
        }
        frames_.push_back(body);
        if (!h.more) {
          whole = true;
          break;
        }
      }
      if (!whole) break;
      on_message(frames_);
      in_begin_ = at;
    }
    // Keep the unparsed tail at the front.
    if (in_begin_ > 0) {
      in_.erase(0, in_begin_);
      in_begin_ = 0;
    }
    return true;
  }

 private:
  const uint8_t* Data() const { return reinterpret_cast<const uint8_t*>(in_.data() + in_begin_); }
  size_t Available() const { return in_.size() - in_begin_; }

  size_t in_begin_ = 0;
  std::vector<std::string_view> frames_;
};

struct Tag {
  uint32_t client;
  uint32_t slot;
  uint64_t seq;
  uint64_t sent_ns;
};

constexpr std::string_view kTitanicRequest = "titanic.request";

// A 9/TSP acknowledgement: ["200", 32 hex digits].
bool IsAcknowledgement(std::string_view status, std::string_view uuid) {
  if (status != "200" || uuid.size() != 32) return false;
  for (char ch : uuid) {
    if (!std::isxdigit(static_cast<unsigned char>(ch))) return false;
  }
  return true;
}

void RunWorker(const ZmtpLoadOptions& o, const std::atomic<bool>& stop, std::string* error) {
  Connection c;
  if (std::string e = c.Open(o.host, o.port); !e.empty()) {
    *error = "worker: " + e;
    return;
  }
  const std::string credit = std::to_string(o.credit);
  if (o.credit > 1) {
    c.Queue({"MDPW02", "\x01", "echo", credit});
  } else {
    c.Queue({"MDPW02", "\x01", "echo"});
  }
  c.Flush();
  std::vector<std::string_view> reply;
  uint64_t next_heartbeat = NowNs() + 1'000'000'000ull;
  while (!stop.load(std::memory_order_relaxed)) {
    const bool ok = c.Read(50, [&](const std::vector<std::string_view>& m) {
      // [MDPW02, 0x02, address, "", body...] -> [MDPW02, 0x04, address, "", body...]
      if (m.size() < 4 || m[1] != std::string_view("\x02", 1)) return;
      reply.assign(m.begin(), m.end());
      reply[1] = std::string_view("\x04", 1);
      c.Queue(reply);
    });
    if (!ok) {
      *error = "worker: connection lost";
      return;
    }
    if (NowNs() > next_heartbeat) {
      c.Queue({"MDPW02", "\x05"});
      next_heartbeat += 1'000'000'000ull;
    }
    if (!c.Flush()) {
      *error = "worker: send failed";
      return;
    }
  }
}

void RunClient(const ZmtpLoadOptions& o, int id, uint64_t window_start, uint64_t window_end,
               LoadResult* result) {
  Connection c;
  if (std::string e = c.Open(o.host, o.port); !e.empty()) {
    result->error = "client: " + e;
    return;
  }
  const std::string body(o.size, 'x');
  const bool durable = !o.durable_service.empty();
  std::vector<uint64_t> outstanding(static_cast<size_t>(o.inflight), 0);
  uint64_t seq = 1, out = 0;
  result->latencies_ns.reserve(4'000'000);
  auto send = [&](uint32_t slot) {
    const Tag t{static_cast<uint32_t>(id), slot, seq++, NowNs()};
    outstanding[slot] = t.seq;
    ++out;
    const std::string_view tag(reinterpret_cast<const char*>(&t), sizeof(t));
    if (durable) {
      c.Queue({tag, "", "MDPC02", "\x01", kTitanicRequest, o.durable_service, body});
    } else {
      c.Queue({tag, "", "MDPC02", "\x01", "echo", body});
    }
  };
  for (int s = 0; s < o.inflight; ++s) send(static_cast<uint32_t>(s));
  c.Flush();
  const uint64_t drain_end = window_end + 3'000'000'000ull;
  while (out > 0) {
    const uint64_t now = NowNs();
    if (now >= drain_end) break;
    const bool sending = now < window_end;
    const bool ok = c.Read(10, [&](const std::vector<std::string_view>& m) {
      // [tag, "", MDPC02, 0x03, "echo", body], or
      // [tag, "", MDPC02, 0x03, "titanic.request", "200", UUID]
      const bool expected =
          durable ? m.size() == 7 && m[4] == kTitanicRequest && IsAcknowledgement(m[5], m[6])
                  : m.size() == 6 && m[5] == body;
      if (!expected || m[0].size() != sizeof(Tag)) {
        if (result->mismatched++ == 0) {
          for (size_t i = 4; i < m.size(); ++i) {
            result->first_mismatch.append(m[i].substr(0, 200)).append(" | ");
          }
        }
        return;
      }
      Tag t;
      std::memcpy(&t, m[0].data(), sizeof(t));
      if (t.client != static_cast<uint32_t>(id) || t.slot >= outstanding.size() ||
          outstanding[t.slot] != t.seq) {
        ++result->duplicated;
        return;
      }
      outstanding[t.slot] = 0;
      --out;
      ++result->completed_total;
      const uint64_t done = NowNs();
      if (done >= window_start && done < window_end) {
        ++result->completed_in_window;
        result->latencies_ns.push_back(done - t.sent_ns);
      }
      if (sending) send(t.slot);
    });
    if (!ok || !c.Flush()) {
      result->error = "client: connection lost";
      break;
    }
  }
  result->lost = out;
}

}  // namespace

LoadResult RunZmtpLoad(const ZmtpLoadOptions& o) {
  std::atomic<bool> stop{false};
  std::vector<std::string> worker_errors(static_cast<size_t>(o.workers));
  std::vector<std::thread> workers;
  for (int w = 0; w < o.workers; ++w) {
    workers.emplace_back(RunWorker, std::cref(o), std::cref(stop), &worker_errors[w]);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // workers registered

  LoadResult total = RunClientsOverWindow(o.clients, o.warmup_s, o.duration_s, o.server_cpu_seconds,
                                          [&o](int id, uint64_t start, uint64_t end,
                                               LoadResult* r) { RunClient(o, id, start, end, r); });
  stop = true;
  for (auto& t : workers) t.join();
  for (const std::string& e : worker_errors) {
    if (!e.empty()) total.error = e;
  }
  return total;
}

}  // namespace plantd::bench

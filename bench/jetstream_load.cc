#include "jetstream_load.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <thread>
#include <vector>

#include "load_run.h"

namespace plantd::bench {
namespace {

// One NATS client connection over a blocking socket: the text protocol's
// INFO, CONNECT, PING/PONG, SUB, PUB, MSG, +OK and -ERR, nothing more.
class NatsConnection : public BufferedSocket {
 public:
  // Connects, reads INFO, sends CONNECT (no headers, no echo) and waits for
  // the PONG of a PING. Empty on success.
  std::string Open(const std::string& host, int port) {
    if (std::string error = Connect(host, port); !error.empty()) return error;
    const uint64_t deadline = NowNs() + 5'000'000'000ull;
    while (in_.find("\r\n") == std::string::npos) {
      if (!Fill(100) || NowNs() > deadline) return "no INFO from the server";
    }
    if (in_.rfind("INFO ", 0) != 0) return "the server did not start with INFO";
    Queue(
        "CONNECT {\"verbose\":false,\"pedantic\":false,\"tls_required\":false,"
        "\"name\":\"plantd-durable-bench\",\"lang\":\"c++\",\"version\":\"1\",\"protocol\":1,"
        "\"echo\":false,\"headers\":false,\"no_responders\":false}\r\n");
    return Roundtrip();
  }

  // PING, and wait for its PONG: everything sent before has been processed.
  std::string Roundtrip() {
    const uint64_t want = pongs_ + 1;
    Queue("PING\r\n");
    if (!Flush()) return "send failed";
    const uint64_t deadline = NowNs() + 5'000'000'000ull;
    while (pongs_ < want) {
      if (!Read(100, [](std::string_view, std::string_view) {})) return "connection: " + error_;
      if (NowNs() > deadline) return "no PONG within 5 s";
    }
    return {};
  }

  void Queue(std::string_view text) { out_.append(text); }

  bool Flush() {
    if (BufferedSocket::Flush()) return true;
    error_ = "send failed";
    return false;
  }

  // Waits up to `timeout_ms` for input, then hands every whole MSG read to
  // on_message(subject, payload) (views valid during the call) and answers
  // the server's PINGs. False when the connection failed or the server sent
  // -ERR (error() says which).
  template <typename F>
  bool Read(int timeout_ms, F&& on_message) {
    if (!Fill(timeout_ms)) return false;
    while (true) {
      const size_t eol = in_.find("\r\n", begin_);
      if (eol == std::string::npos) break;
      const std::string_view line(in_.data() + begin_, eol - begin_);
      if (line.rfind("MSG ", 0) == 0) {
        // MSG <subject> <sid> [reply-to] <#bytes>
        std::string_view tokens[4];
        size_t count = 0;
        std::string_view rest = line.substr(4);
        while (!rest.empty() && count < 4) {
          const size_t space = rest.find(' ');
          const std::string_view token = rest.substr(0, space);
          if (!token.empty()) tokens[count++] = token;
          if (space == std::string_view::npos) break;
          rest.remove_prefix(space + 1);
        }
        if (count < 3) {
          error_ = "malformed MSG line: " + std::string(line);
          return false;
        }
        const size_t bytes = std::strtoull(std::string(tokens[count - 1]).c_str(), nullptr, 10);
        if (in_.size() - (eol + 2) < bytes + 2) break;  // the payload is not all here
        on_message(tokens[0], std::string_view(in_.data() + eol + 2, bytes));
        begin_ = eol + 2 + bytes + 2;
        continue;
      }
      if (line == "PING") {
        Queue("PONG\r\n");
      } else if (line == "PONG") {
        ++pongs_;
      } else if (line.rfind("-ERR", 0) == 0) {
        error_ = std::string(line);
        return false;
      }  // +OK and INFO need nothing
      begin_ = eol + 2;
    }
    if (begin_ > 0) {
      in_.erase(0, begin_);
      begin_ = 0;
    }
    return true;
  }

  // Publishes `payload` to `subject` with a reply inbox and waits up to 5 s
  // for the answer. The connection must be subscribed to `reply`.
  std::string Request(const std::string& subject, const std::string& reply,
                      const std::string& payload, std::string* answer) {
    Queue("PUB " + subject + " " + reply + " " + std::to_string(payload.size()) + "\r\n");
    Queue(payload);
    Queue("\r\n");
    if (!Flush()) return error_;
    bool got = false;
    const uint64_t deadline = NowNs() + 5'000'000'000ull;
    while (!got) {
      const bool ok = Read(100, [&](std::string_view s, std::string_view p) {
        if (s == reply) {
          answer->assign(p);
          got = true;
        }
      });
      if (!ok) return "connection: " + error_;
      if (!got && NowNs() > deadline) return "no answer to " + subject + " within 5 s";
      if (!Flush()) return error_;
    }
    return {};
  }

  const std::string& error() const { return error_; }

 private:
  bool Fill(int timeout_ms) {
    if (BufferedSocket::Fill(timeout_ms)) return true;
    error_ = "connection closed by the server";
    return false;
  }

  size_t begin_ = 0;
  uint64_t pongs_ = 0;
  std::string error_;
};

// One control request on a connection of its own.
std::string ControlRequest(const JetStreamLoadOptions& o, const std::string& subject,
                           const std::string& payload, std::string* answer) {
  NatsConnection c;
  if (std::string e = c.Open(o.host, o.port); !e.empty()) return e;
  c.Queue("SUB _INBOX.control.* 1\r\n");
  if (std::string e = c.Roundtrip(); !e.empty()) return e;
  return c.Request(subject, "_INBOX.control.1", payload, answer);
}

// A PubAck is {"stream":"NAME","seq":N} (and "duplicate":true for a
// deduplicated one, which this load never sends); a failure is {"error":..}.
bool IsPubAck(std::string_view payload, std::string_view stream) {
  return payload.find("\"error\"") == std::string_view::npos &&
         payload.find("\"seq\":") != std::string_view::npos &&
         payload.find("\"stream\":\"" + std::string(stream) + "\"") != std::string_view::npos;
}

void RunClient(const JetStreamLoadOptions& o, int id, uint64_t window_start, uint64_t window_end,
               LoadResult* result) {
  NatsConnection c;
  if (std::string e = c.Open(o.host, o.port); !e.empty()) {
    result->error = "client: " + e;
    return;
  }
  // Replies come to _INBOX.<id>.<slot>.<seq>: the slot and the publish it
  // answers, checked as the MDP load checks its tags.
  const std::string inbox = "_INBOX." + std::to_string(id) + ".";
  c.Queue("SUB " + inbox + "> 1\r\n");
  if (std::string e = c.Roundtrip(); !e.empty()) {
    result->error = "client: " + e;
    return;
  }
  const std::string body(o.size, 'x');
  std::vector<uint64_t> outstanding(static_cast<size_t>(o.inflight), 0);
  std::vector<uint64_t> sent_ns(static_cast<size_t>(o.inflight), 0);
  uint64_t seq = 1, out = 0;
  result->latencies_ns.reserve(2'000'000);
  char header[256];
  auto send = [&](size_t slot) {
    outstanding[slot] = seq;
    sent_ns[slot] = NowNs();
    ++out;
    const int n =
        std::snprintf(header, sizeof(header), "PUB %s %s%zu.%llu %zu\r\n", o.subject.c_str(),
                      inbox.c_str(), slot, static_cast<unsigned long long>(seq++), body.size());
    c.Queue(std::string_view(header, static_cast<size_t>(n)));
    c.Queue(body);
    c.Queue("\r\n");
  };
  for (size_t s = 0; s < outstanding.size(); ++s) send(s);
  c.Flush();
  const uint64_t drain_end = window_end + 3'000'000'000ull;
  while (out > 0) {
    const uint64_t now = NowNs();
    if (now >= drain_end) break;
    const bool sending = now < window_end;
    const bool ok = c.Read(10, [&](std::string_view subject, std::string_view payload) {
      // subject: <inbox><slot>.<seq>
      size_t slot = SIZE_MAX;
      uint64_t answered = 0;
      if (subject.substr(0, inbox.size()) == inbox) {
        const std::string tail(subject.substr(inbox.size()));
        char* end = nullptr;
        slot = std::strtoull(tail.c_str(), &end, 10);
        if (*end == '.') answered = std::strtoull(end + 1, nullptr, 10);
      }
      if (!IsPubAck(payload, o.stream)) {
        if (result->mismatched++ == 0) result->first_mismatch = std::string(payload.substr(0, 300));
        if (slot < outstanding.size() && outstanding[slot] == answered) {
          outstanding[slot] = 0;  // answered, if not acknowledged: not lost
          --out;
          if (sending) send(slot);
        }
        return;
      }
      if (slot >= outstanding.size() || outstanding[slot] != answered || answered == 0) {
        ++result->duplicated;
        return;
      }
      outstanding[slot] = 0;
      --out;
      ++result->completed_total;
      const uint64_t done = NowNs();
      if (done >= window_start && done < window_end) {
        ++result->completed_in_window;
        result->latencies_ns.push_back(done - sent_ns[slot]);
      }
      if (sending) send(slot);
    });
    if (!ok || !c.Flush()) {
      result->error = "client: " + c.error();
      break;
    }
  }
  result->lost = out;
}

}  // namespace

std::string CreateFileStream(const JetStreamLoadOptions& o) {
  const std::string config = "{\"name\":\"" + o.stream + "\",\"subjects\":[\"" + o.subject +
                             "\"],\"storage\":\"file\",\"retention\":\"limits\","
                             "\"num_replicas\":1}";
  std::string answer;
  if (std::string e = ControlRequest(o, "$JS.API.STREAM.CREATE." + o.stream, config, &answer);
      !e.empty()) {
    return "stream create: " + e;
  }
  if (answer.find("\"error\"") != std::string::npos ||
      answer.find("\"storage\":\"file\"") == std::string::npos) {
    return "stream create answered: " + answer;
  }
  return {};
}

int64_t StreamMessageCount(const JetStreamLoadOptions& o, std::string* error) {
  std::string answer;
  if (std::string e = ControlRequest(o, "$JS.API.STREAM.INFO." + o.stream, "", &answer);
      !e.empty()) {
    *error = "stream info: " + e;
    return -1;
  }
  const size_t state = answer.find("\"state\":");
  const size_t messages = state == std::string::npos ? state : answer.find("\"messages\":", state);
  if (answer.find("\"error\"") != std::string::npos || messages == std::string::npos) {
    *error = "stream info answered: " + answer.substr(0, 300);
    return -1;
  }
  return std::strtoll(answer.c_str() + messages + std::strlen("\"messages\":"), nullptr, 10);
}

LoadResult RunJetStreamLoad(const JetStreamLoadOptions& o) {
  return RunClientsOverWindow(o.clients, o.warmup_s, o.duration_s, o.server_cpu_seconds,
                              [&o](int id, uint64_t start, uint64_t end, LoadResult* r) {
                                RunClient(o, id, start, end, r);
                              });
}

}  // namespace plantd::bench

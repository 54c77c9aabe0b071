// plantd-mdp: call services, inspect a broker, and run a worker, publisher or
// subscriber from a shell.
//
// Exit status: 0 ok; 1 timeout or no reply (or no broker); 2 usage;
// 3 service not found (no worker serves it); 4 refused by the broker (admin
// from a remote peer, a CURVE key it does not let in, a request its access
// rules deny).

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include <zmq.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>
#include <zmq.hpp>

#include "build_info.h"
#include "plantd/bus/bus.h"
#include "plantd/curve.h"
#include "plantd/mdp/client.h"
#include "plantd/mdp/titanic_client.h"
#include "plantd/mdp/worker.h"

namespace {

using plantd::Status;
using plantd::mdp::Frames;

constexpr int kExitOk = 0;
constexpr int kExitNoReply = 1;
constexpr int kExitUsage = 2;
constexpr int kExitNotFound = 3;
constexpr int kExitRefused = 4;

std::atomic<bool> g_stop{false};

int ExitCodeFor(const Status& s) {
  switch (s.code()) {
    case Status::Code::kOk: return kExitOk;
    case Status::Code::kNotFound: return kExitNotFound;
    case Status::Code::kInvalidArgument: return kExitUsage;
    case Status::Code::kPermissionDenied: return kExitRefused;
    default: return kExitNoReply;
  }
}

int Fail(const Status& s) {
  std::fprintf(stderr, "plantd-mdp: %s\n", s.message().c_str());
  return ExitCodeFor(s);
}

void PrintFrames(const Frames& frames, bool json) {
  if (json) {
    std::cout << nlohmann::json(frames).dump(-1, ' ', false,
                                             nlohmann::json::error_handler_t::replace)
              << std::endl;
    return;
  }
  for (const std::string& f : frames) std::cout << f << "\n";
  std::cout.flush();
}

// A JSON frame pretty-printed, anything else as it is.
void PrintDocument(const std::string& frame) {
  auto j = nlohmann::json::parse(frame, nullptr, false);
  std::cout << (j.is_discarded() ? frame : j.dump(2)) << std::endl;
}

struct Common {
  std::string endpoint = "tcp://127.0.0.1:7200";
  std::vector<std::string> more_endpoints;
  std::string timeout = "2500";
  int attempts = 1;
  bool mdp01 = false;
  bool json = false;
  // --server-key and --key: certificate files; `curve` is what they hold.
  std::string server_key_file;
  std::string key_file;
  plantd::CurveOptions curve;

  // Reads the key files, when given. An error is a usage error (exit 2).
  Status LoadCurve() {
    if (server_key_file.empty()) {
      if (!key_file.empty()) return Status::InvalidArgument("--key needs --server-key");
      return Status::Ok();
    }
    // Without --key: a fresh key pair, which only a broker with no
    // authorized_keys_dir lets in (encryption without authentication).
    auto loaded = plantd::LoadCurveOptions(server_key_file, key_file);
    if (!loaded.ok()) return Status::InvalidArgument(loaded.status().message());
    curve = std::move(loaded.value());
    return Status::Ok();
  }

  plantd::mdp::ClientOptions ClientOptions() const {
    plantd::mdp::ClientOptions o;
    o.endpoints = {endpoint};
    o.endpoints.insert(o.endpoints.end(), more_endpoints.begin(), more_endpoints.end());
    o.timeout = std::chrono::milliseconds(std::stol(timeout));
    o.attempts = attempts;
    o.protocol = mdp01 ? plantd::mdp::Protocol::kMdp01 : plantd::mdp::Protocol::kMdp02;
    o.curve = curve;
    return o;
  }
};

// --each: one MMI question to every broker given (-e and --failover), at
// once, each on its own connection and without failing over. Every broker
// answers for itself: this is how to compare them.
struct BrokerAnswer {
  std::string endpoint;
  std::string answer;  // its JSON document
  std::string error;   // or why there is none
};

std::vector<BrokerAnswer> AskEach(const Common& common, const std::string& service) {
  plantd::mdp::ClientOptions all = common.ClientOptions();
  std::vector<BrokerAnswer> answers(all.endpoints.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < answers.size(); ++i) {
    answers[i].endpoint = all.endpoints[i];
    threads.emplace_back([&all, &answers, &service, i] {
      plantd::mdp::ClientOptions o = all;
      o.endpoints = {all.endpoints[i]};
      plantd::mdp::Client client(o);
      auto reply = client.Request(service, {});
      BrokerAnswer& a = answers[i];
      if (!reply.ok()) {
        a.error = reply.status().message();
        return;
      }
      if (!reply->empty()) a.answer = std::move((*reply)[0]);
    });
  }
  for (std::thread& t : threads) t.join();
  return answers;
}

// Object members as rows "a.b.c" -> value, in key order.
void Flatten(const nlohmann::json& j, const std::string& prefix,
             std::vector<std::pair<std::string, std::string>>* rows) {
  if (!j.is_object()) {
    rows->emplace_back(prefix, j.is_string() ? j.get<std::string>() : j.dump());
    return;
  }
  for (const auto& [key, value] : j.items()) {
    std::string row = prefix;
    if (!row.empty()) row += '.';
    row += key;
    Flatten(value, row, rows);
  }
}

// One column per broker, one row per key that any of them has ("-" where a
// broker lacks it); a broker that did not answer shows why in an "error"
// row. With --json: {endpoint: answer or {"error": why}}.
int PrintSideBySide(const std::vector<BrokerAnswer>& answers, bool json,
                    const std::function<nlohmann::json(const nlohmann::json&)>& shape) {
  bool all_answered = true;
  nlohmann::json out = nlohmann::json::object();
  std::vector<std::string> keys;
  std::vector<std::map<std::string, std::string>> cells(answers.size());
  for (size_t i = 0; i < answers.size(); ++i) {
    const BrokerAnswer& a = answers[i];
    std::string why = a.error;
    nlohmann::json document;
    if (why.empty()) {
      document = nlohmann::json::parse(a.answer, nullptr, false);
      if (document.is_discarded()) why = "the answer is not JSON";
    }
    if (!why.empty()) {
      all_answered = false;
      out[a.endpoint] = {{"error", why}};
      cells[i]["error"] = why;
      if (std::find(keys.begin(), keys.end(), "error") == keys.end()) {
        keys.insert(keys.begin(), "error");
      }
      continue;
    }
    const nlohmann::json shaped = shape(document);
    out[a.endpoint] = shaped;
    std::vector<std::pair<std::string, std::string>> rows;
    Flatten(shaped, "", &rows);
    for (auto& [key, value] : rows) {
      if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(key);
      cells[i][key] = std::move(value);
    }
  }
  if (json) {
    std::cout << out.dump(2) << std::endl;
  } else {
    size_t key_width = 0;
    for (const std::string& k : keys) key_width = std::max(key_width, k.size());
    std::vector<size_t> widths(answers.size());
    for (size_t i = 0; i < answers.size(); ++i) {
      widths[i] = answers[i].endpoint.size();
      for (const auto& [key, value] : cells[i]) widths[i] = std::max(widths[i], value.size());
    }
    const auto line = [&](const std::string& first, const auto& cell) {
      std::string text = first + std::string(key_width - first.size(), ' ');
      for (size_t i = 0; i < answers.size(); ++i) {
        const std::string value = cell(i);
        text += "  " + value + std::string(widths[i] - std::min(widths[i], value.size()), ' ');
      }
      while (!text.empty() && text.back() == ' ') text.pop_back();
      std::cout << text << "\n";
    };
    line("", [&](size_t i) { return answers[i].endpoint; });
    for (const std::string& k : keys) {
      line(k, [&](size_t i) {
        auto it = cells[i].find(k);
        return it == cells[i].end() ? std::string("-") : it->second;
      });
    }
    std::cout.flush();
  }
  return all_answered ? kExitOk : kExitNoReply;
}

// mmi.services' list as {name: {workers, queued, served}}, to line up by name.
nlohmann::json ServicesByName(const nlohmann::json& list) {
  nlohmann::json by_name = nlohmann::json::object();
  if (!list.is_array()) return by_name;
  for (const nlohmann::json& s : list) {
    if (!s.is_object() || !s.contains("name") || !s["name"].is_string()) continue;
    nlohmann::json row = nlohmann::json::object();
    for (const char* key : {"workers", "queued", "served"}) {
      if (s.contains(key)) row[key] = s[key];
    }
    by_name[s["name"].get<std::string>()] = row;
  }
  return by_name;
}

// After a timeout: is it that nobody serves the service? (8/MMI)
Status Explain(const Common& common, const std::string& service, const Status& timeout) {
  if (service.rfind("mmi.", 0) == 0) return timeout;
  // The broker answers MMI itself: a second is plenty even when the request
  // timeout was short.
  plantd::mdp::ClientOptions o = common.ClientOptions();
  o.timeout = std::max(o.timeout, std::chrono::milliseconds(1000));
  plantd::mdp::Client client(o);
  auto exists = client.ServiceExists(service);
  if (exists.ok() && !exists.value()) {
    return Status::NotFound("service " + service + " has no worker (mmi.service: 404)");
  }
  return timeout;
}

int Call(const Common& common, const std::string& service, const Frames& body, bool stream) {
  plantd::mdp::Client client(common.ClientOptions());
  plantd::mdp::Client::PartialHandler on_partial;
  if (stream) on_partial = [&](const Frames& partial) { PrintFrames(partial, common.json); };
  auto reply = client.Request(service, body, on_partial);
  if (!reply.ok()) {
    if (reply.status().code() == Status::Code::kTimeout) {
      return Fail(Explain(common, service, reply.status()));
    }
    return Fail(reply.status());
  }
  PrintFrames(reply.value(), common.json);
  return kExitOk;
}

// --durable: through the broker's Titanic (9/TSP). The id goes to stderr
// first, so that after a crash (of anything) `plantd-mdp reply ID` can fetch
// the answer; the wait is --wait long (default: forever, until Ctrl-C).
int PrintTitanicReply(const std::string& id, const plantd::mdp::TitanicReply& reply, bool json) {
  using State = plantd::mdp::TitanicReply::State;
  switch (reply.state) {
    case State::kReady: PrintFrames(reply.body, json); return kExitOk;
    case State::kPending:
      std::fprintf(stderr, "plantd-mdp: %s: pending (not answered yet)\n", id.c_str());
      return kExitNoReply;
    case State::kUnknown:
      std::fprintf(stderr, "plantd-mdp: %s: unknown (never stored, closed or expired)\n",
                   id.c_str());
      return kExitNotFound;
    case State::kFailed:
      std::fprintf(stderr, "plantd-mdp: %s: failed: %s\n", id.c_str(), reply.reason.c_str());
      return kExitNoReply;
  }
  return kExitNoReply;
}

int WaitForTitanicReply(plantd::mdp::TitanicClient& titanic, const std::string& id, long wait_ms,
                        bool close, bool json) {
  const auto deadline = wait_ms < 0
                            ? std::chrono::steady_clock::time_point::max()
                            : std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  while (true) {
    // Slices of a second, so Ctrl-C is seen; a broker that is down (restarting)
    // is asked again until the deadline.
    auto reply = titanic.Wait(id, std::chrono::milliseconds(1000));
    if (reply.ok()) {
      const int rc = PrintTitanicReply(id, reply.value(), json);
      if (close && reply->state != plantd::mdp::TitanicReply::State::kPending) {
        if (Status s = titanic.Close(id); !s.ok()) return Fail(s);
      }
      return rc;
    }
    if (g_stop.load() || std::chrono::steady_clock::now() >= deadline) {
      std::fprintf(stderr,
                   "plantd-mdp: %s: no reply yet; fetch it later with: plantd-mdp reply %s\n",
                   id.c_str(), id.c_str());
      return Fail(reply.status());
    }
  }
}

int CallDurable(const Common& common, const std::string& service, const Frames& body,
                long wait_ms) {
  plantd::mdp::TitanicClient titanic(common.ClientOptions());
  auto id = titanic.Submit(service, body);
  if (!id.ok()) return Fail(id.status());
  std::fprintf(stderr, "plantd-mdp: stored as %s\n", id->c_str());
  std::fflush(stderr);
  return WaitForTitanicReply(titanic, *id, wait_ms, /*close=*/true, common.json);
}

// org.plantd.Admin (the broker's docs/operations.md, "Draining from the
// shell"): the answer is ["200", JSON], or an error reply [status, reason].
// A plain DEALER rather than mdp::Client: a drained idle broker exits right
// after answering, and mdp::Client's socket (ZMQ_IMMEDIATE) drops a reply
// still unread when its connection closes.
int Admin(const Common& common, const std::string& command) {
  zmq::context_t context;
  zmq::socket_t socket(context, zmq::socket_type::dealer);
  socket.set(zmq::sockopt::linger, 0);
  if (common.curve.enabled()) {
    // Z85 text with its terminating NUL is one of the forms libzmq takes.
    const plantd::CurveOptions& c = common.curve;
    char public_key[41] = {};
    char secret_key[41] = {};
    if (c.public_key.empty() && zmq_curve_keypair(public_key, secret_key) != 0) {
      return Fail(Status::InvalidArgument("libzmq cannot make CURVE keys"));
    }
    const char* pub = c.public_key.empty() ? public_key : c.public_key.c_str();
    const char* sec = c.secret_key.empty() ? secret_key : c.secret_key.c_str();
    const bool set = zmq_setsockopt(socket.handle(), ZMQ_CURVE_SERVERKEY, c.server_key.c_str(),
                                    c.server_key.size() + 1) == 0 &&
                     zmq_setsockopt(socket.handle(), ZMQ_CURVE_PUBLICKEY, pub, 41) == 0 &&
                     zmq_setsockopt(socket.handle(), ZMQ_CURVE_SECRETKEY, sec, 41) == 0;
    explicit_bzero(secret_key, sizeof(secret_key));
    if (!set) return Fail(Status::InvalidArgument("the socket refuses the CURVE keys"));
  }
  socket.connect(common.endpoint);
  const std::string service = "org.plantd.Admin";
  std::vector<std::string> request =
      common.mdp01 ? std::vector<std::string>{"", "MDPC01", service, command}
                   : std::vector<std::string>{"MDPC02", std::string(1, '\x01'), service, command};
  for (size_t i = 0; i < request.size(); ++i) {
    socket.send(zmq::buffer(request[i]),
                i + 1 < request.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }
  const auto timeout = std::chrono::milliseconds(std::stol(common.timeout));
  zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
  if (zmq::poll(&item, 1, timeout) <= 0) {
    return Fail(Status::Timeout("no reply from " + service + " at " + common.endpoint + " within " +
                                common.timeout + " ms"));
  }
  Frames reply;
  while (true) {
    zmq::message_t frame;
    if (!socket.recv(frame, zmq::recv_flags::dontwait)) break;
    reply.push_back(frame.to_string());
    if (!frame.more()) break;
  }
  // 0.2: [MDPC02, FINAL, service, body...]; 0.1: ["", MDPC01, service, body...]
  constexpr size_t head = 3;
  if (reply.size() < head) return Fail(Status::ProtocolError("short reply from the broker"));
  const Frames body(reply.begin() + head, reply.end());
  if (body.size() == 2 && body[0] == "200") {
    PrintDocument(body[1]);
    return kExitOk;
  }
  const std::string status = body.empty() ? "" : body[0];
  const std::string reason = body.size() < 2 ? "" : body[1];
  std::fprintf(
      stderr, "plantd-mdp: admin %s refused: %s %s%s\n", command.c_str(), status.c_str(),
      reason.c_str(),
      reason == "admin_remote" ? " (only from the broker's host; see admin.allow_remote)" : "");
  return status == "400" ? kExitUsage : kExitRefused;
}

int EchoWorker(const std::vector<std::string>& endpoints, const std::string& service, long count,
               bool mdp01, int credit, long heartbeat_ms, const plantd::CurveOptions& curve) {
  plantd::mdp::WorkerOptions o;
  o.curve = curve;
  o.endpoints = endpoints;
  o.service = service;
  o.credit = credit;
  o.heartbeat_interval = std::chrono::milliseconds(heartbeat_ms);
  o.protocol = mdp01 ? plantd::mdp::Protocol::kMdp01 : plantd::mdp::Protocol::kMdp02;
  plantd::mdp::Worker worker(o);
  if (Status s = worker.status(); !s.ok()) return Fail(s);
  std::thread watcher([&] {
    while (!g_stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    worker.Stop();
  });
  std::string brokers;
  for (const std::string& e : endpoints) brokers += (brokers.empty() ? "" : ", ") + e;
  std::fprintf(stderr, "plantd-mdp: echo worker for %s on %s\n", service.c_str(), brokers.c_str());
  long served = 0;
  while (count < 0 || served < count) {
    auto request = worker.Receive();
    if (!request) break;
    (void)worker.Reply(*request, request->body);
    ++served;
  }
  g_stop = true;
  watcher.join();
  return kExitOk;
}

// Writes `text` to a new file `path` with `mode`; never overwrites (a key
// pair replaced by accident locks its holder out).
bool WriteNewFile(const std::string& path, const std::string& text, mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    std::fprintf(stderr, "plantd-mdp: cannot create %s: %s\n", path.c_str(), std::strerror(errno));
    return false;
  }
  size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::fprintf(stderr, "plantd-mdp: cannot write %s: %s\n", path.c_str(), std::strerror(errno));
      ::close(fd);
      return false;
    }
    written += static_cast<size_t>(n);
  }
  return ::close(fd) == 0;
}

// A CURVE key pair as the certificate files czmq's zcert_save writes (what
// the broker's security.* keys and pyzmq's zmq.auth.load_certificate read):
// NAME with the public key, NAME_secret with both, readable by its owner
// only. The secret key is printed nowhere.
int KeyGen(const std::string& name) {
  char public_key[41] = {};
  char secret_key[41] = {};
  if (zmq_curve_keypair(public_key, secret_key) != 0) {
    std::fprintf(stderr, "plantd-mdp: libzmq cannot make CURVE keys (built without libsodium?)\n");
    return kExitNoReply;
  }
  auto certificate = [&](bool secret) {
    std::string text = "#   ****  Generated by plantd-mdp keygen  ****\n";
    text += secret ? "#   ZeroMQ CURVE **Secret** Certificate\n"
                     "#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n"
                   : "#   ZeroMQ CURVE Public Certificate\n"
                     "#   Exchange securely, or use a secure mechanism to verify the contents\n"
                     "#   of this file after exchange. Store public certificates in your home\n"
                     "#   directory, in the .curve subdirectory.\n";
    // Appended piece by piece into one string reserved up front, so that no
    // temporary holds a copy of the secret key.
    text.reserve(text.size() + 160);
    text.append("\nmetadata\ncurve\n    public-key = \"").append(public_key).append("\"\n");
    if (secret) text.append("    secret-key = \"").append(secret_key).append("\"\n");
    return text;
  };
  std::string secret_text = certificate(true);
  const bool secret_written = WriteNewFile(name + "_secret", secret_text, 0600);
  const bool ok = secret_written && WriteNewFile(name, certificate(false), 0644);
  // A half-made pair would make every later run fail on the file left.
  if (secret_written && !ok) ::unlink((name + "_secret").c_str());
  // The secret leaves memory with the files written (explicit_bzero: not
  // optimised away as a store to memory about to be freed).
  explicit_bzero(secret_text.data(), secret_text.size());
  explicit_bzero(secret_key, sizeof(secret_key));
  if (!ok) return kExitNoReply;
  std::printf("%s\n", public_key);
  std::fprintf(stderr, "plantd-mdp: wrote %s (public) and %s_secret (secret, mode 0600)\n",
               name.c_str(), name.c_str());
  return kExitOk;
}

int Publish(const std::string& endpoint, const std::string& topic, const Frames& message,
            const plantd::CurveOptions& curve) {
  plantd::bus::Publisher pub(endpoint, {.curve = curve});
  if (Status s = pub.status(); !s.ok()) return Fail(s);
  // ZeroMQ's slow-joiner rule: give the connection and subscriptions a moment.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  if (Status s = pub.Publish(topic, message); !s.ok()) return Fail(s);
  return kExitOk;
}

int Subscribe(const std::string& endpoint, const std::string& topic, long count, bool json,
              const plantd::CurveOptions& curve) {
  plantd::bus::Subscriber sub(endpoint, {topic}, {.curve = curve});
  if (Status s = sub.status(); !s.ok()) return Fail(s);
  long received = 0;
  while (!g_stop.load() && (count < 0 || received < count)) {
    auto m = sub.Receive(std::chrono::milliseconds(100));
    if (!m) continue;
    Frames all{m->topic};
    all.insert(all.end(), m->frames.begin(), m->frames.end());
    if (json) {
      PrintFrames(all, true);
    } else {
      std::string line;
      for (const std::string& f : all) line += (line.empty() ? "" : " ") + f;
      std::cout << line << std::endl;
    }
    ++received;
  }
  return kExitOk;
}

}  // namespace

int Main(int argc, char** argv) {
  signal(SIGINT, [](int) { g_stop = true; });
  signal(SIGTERM, [](int) { g_stop = true; });

  CLI::App app{
      "plantd-mdp: talk to a plantd broker from the shell.\n"
      "Exit status: 0 ok, 1 timeout or no reply, 2 usage, 3 service not found, "
      "4 refused.",
      "plantd-mdp"};
  app.set_version_flag("-V,--version", std::string("plantd-mdp ") + plantd::kVersion + " (" +
                                           plantd::kGitRevision + ", libzmq " +
                                           std::to_string(ZMQ_VERSION_MAJOR) + "." +
                                           std::to_string(ZMQ_VERSION_MINOR) + "." +
                                           std::to_string(ZMQ_VERSION_PATCH) + ")");
  app.require_subcommand(1);
  Common common;
  // Every command that connects to a broker or a bus can use CURVE.
  auto add_curve = [&common](CLI::App* cmd) {
    cmd->add_option("--server-key", common.server_key_file,
                    "CURVE: the broker's public certificate (zcert file); turns CURVE on")
        ->envname("PLANTD_SERVER_KEY");
    cmd->add_option("--key", common.key_file,
                    "CURVE: this client's secret certificate (NAME_secret from keygen); "
                    "without it, a fresh key pair")
        ->envname("PLANTD_KEY");
  };
  auto add_common = [&common, &add_curve](CLI::App* cmd) {
    add_curve(cmd);
    cmd->add_option("-e,--endpoint", common.endpoint, "broker endpoint for clients")
        ->capture_default_str();
    cmd->add_option("--failover", common.more_endpoints, "further brokers, tried in order");
    cmd->add_option("-t,--timeout", common.timeout, "milliseconds to wait for a reply")
        ->capture_default_str();
    cmd->add_option("--attempts", common.attempts, "attempts per request")->capture_default_str();
    cmd->add_flag("--mdp01", common.mdp01, "speak MDP/0.1 (RFC 7)");
    cmd->add_flag("--json", common.json, "print frames as a JSON array");
  };

  std::string service;
  Frames frames;
  bool stream = false;
  CLI::App* call = app.add_subcommand("call", "send a request and print the reply frames");
  call->add_option("service", service, "service name")->required();
  call->add_option("frames", frames, "request body frames");
  call->add_flag("--stream", stream, "print PARTIAL replies as they arrive");
  bool durable = false;
  long wait_ms = -1;
  call->add_flag("--durable", durable,
                 "through the broker's Titanic (9/TSP): stored before it is acknowledged; "
                 "prints the request id to stderr, waits for the reply, then closes it");
  call->add_option("--wait", wait_ms, "with --durable: milliseconds to wait (default: forever)");
  add_common(call);

  std::string request_id;
  bool close_reply = false;
  CLI::App* reply_cmd = app.add_subcommand(
      "reply", "fetch the reply to a durable request (titanic.reply); exit 1 while pending");
  reply_cmd->add_option("id", request_id, "the id printed by call --durable")->required();
  reply_cmd->add_flag("--close", close_reply, "then let the broker forget it (titanic.close)");
  reply_cmd->add_option("--wait", wait_ms, "milliseconds to wait while it is pending (default: 0)");
  add_common(reply_cmd);

  CLI::App* services = app.add_subcommand("services", "list the broker's services (mmi.services)");
  add_common(services);
  std::string name;
  CLI::App* service_cmd =
      app.add_subcommand("service", "is a service served? (mmi.service; exit 3 if not)");
  service_cmd->add_option("name", name, "service name")->required();
  add_common(service_cmd);
  CLI::App* broker = app.add_subcommand("broker", "broker version, uptime, counts (mmi.broker)");
  add_common(broker);
  bool each = false;
  const char* each_help =
      "ask every broker given (-e and --failover) and show the answers side by side";
  broker->add_flag("--each", each, each_help);
  services->add_flag("--each", each, each_help);

  std::string admin_command;
  CLI::App* admin = app.add_subcommand(
      "admin", "operate a running broker (org.plantd.Admin; from this host only by default)");
  admin
      ->add_option("command", admin_command,
                   "drain: stop taking new requests, finish those in flight within "
                   "shutdown_grace, then exit (as SIGTERM); status: is it draining, what is "
                   "in flight")
      ->required()
      ->check(CLI::IsMember({"drain", "status"}));
  add_common(admin);

  std::vector<std::string> worker_endpoints{"tcp://127.0.0.1:7201"};
  long count = -1;
  CLI::App* echo = app.add_subcommand("echo-worker", "a worker that answers with its request");
  echo->add_option("service", service, "service to serve")->required();
  echo->add_option("-e,--endpoint", worker_endpoints,
                   "broker endpoint for workers; repeat it to serve several brokers (the "
                   "credit is split between them)")
      ->capture_default_str();
  echo->add_option("-n,--count", count, "exit after this many requests");
  echo->add_flag("--mdp01", common.mdp01, "speak MDP/0.1 (RFC 7)");
  long heartbeat_ms = 2500;
  echo->add_option("--heartbeat", heartbeat_ms, "heartbeat interval in ms (use the broker's)")
      ->capture_default_str()
      ->check(CLI::Range(1L, 3600000L));
  int credit = 1;
  echo->add_option("--credit", credit,
                   "requests its brokers may hand it at once, together (docs/credit.md)")
      ->check(CLI::Range(1, 1024));
  add_curve(echo);

  std::string bus_endpoint, topic;
  CLI::App* pub = app.add_subcommand("pub", "publish one message to a bus backend");
  pub->add_option("endpoint", bus_endpoint, "bus backend, e.g. tcp://127.0.0.1:12000")->required();
  pub->add_option("topic", topic, "topic frame")->required();
  pub->add_option("message", frames, "payload frames")->required();
  CLI::App* sub = app.add_subcommand("sub", "print messages from a bus frontend or capture");
  sub->add_option("endpoint", bus_endpoint, "bus frontend, e.g. tcp://127.0.0.1:12001")->required();
  sub->add_option("topic", topic, "topic prefix (default: everything)");
  sub->add_option("-n,--count", count, "exit after this many messages");
  sub->add_flag("--json", common.json, "print frames as a JSON array");
  add_curve(pub);
  add_curve(sub);

  std::string key_name;
  CLI::App* keygen = app.add_subcommand(
      "keygen", "make a CURVE key pair: NAME (public) and NAME_secret (mode 0600), zcert format");
  keygen->add_option("name", key_name, "file name of the public certificate")->required();

  try {
    app.parse(argc, argv);
    if (!common.timeout.empty()) (void)std::stol(common.timeout);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  } catch (const std::exception&) {
    std::fprintf(stderr, "plantd-mdp: --timeout takes a number of milliseconds\n");
    return kExitUsage;
  }

  if (Status s = common.LoadCurve(); !s.ok()) return Fail(s);
  if (call->parsed() && durable) return CallDurable(common, service, frames, wait_ms);
  if (call->parsed()) return Call(common, service, frames, stream);
  if (reply_cmd->parsed()) {
    plantd::mdp::TitanicClient titanic(common.ClientOptions());
    if (wait_ms > 0)
      return WaitForTitanicReply(titanic, request_id, wait_ms, close_reply, common.json);
    auto reply = titanic.Reply(request_id);
    if (!reply.ok()) return Fail(reply.status());
    const int rc = PrintTitanicReply(request_id, reply.value(), common.json);
    if (close_reply && reply->state != plantd::mdp::TitanicReply::State::kPending) {
      if (Status s = titanic.Close(request_id); !s.ok()) return Fail(s);
    }
    return rc;
  }
  if (services->parsed() && each) {
    return PrintSideBySide(AskEach(common, "mmi.services"), common.json, ServicesByName);
  }
  if (broker->parsed() && each) {
    return PrintSideBySide(AskEach(common, "mmi.broker"), common.json,
                           [](const nlohmann::json& j) { return j; });
  }
  if (services->parsed()) {
    plantd::mdp::Client client(common.ClientOptions());
    auto reply = client.Request("mmi.services", {});
    if (!reply.ok()) return Fail(reply.status());
    PrintDocument(reply->empty() ? "[]" : (*reply)[0]);
    return kExitOk;
  }
  if (service_cmd->parsed()) {
    plantd::mdp::Client client(common.ClientOptions());
    auto exists = client.ServiceExists(name);
    if (!exists.ok()) return Fail(exists.status());
    std::printf("%s: %s\n", name.c_str(), exists.value() ? "available" : "no worker");
    return exists.value() ? kExitOk : kExitNotFound;
  }
  if (broker->parsed()) {
    plantd::mdp::Client client(common.ClientOptions());
    auto reply = client.Request("mmi.broker", {});
    if (!reply.ok()) return Fail(reply.status());
    PrintDocument(reply->empty() ? "{}" : (*reply)[0]);
    return kExitOk;
  }
  if (admin->parsed()) return Admin(common, admin_command);
  if (echo->parsed())
    return EchoWorker(worker_endpoints, service, count, common.mdp01, credit, heartbeat_ms,
                      common.curve);
  if (keygen->parsed()) return KeyGen(key_name);
  if (pub->parsed()) return Publish(bus_endpoint, topic, frames, common.curve);
  if (sub->parsed()) return Subscribe(bus_endpoint, topic, count, common.json, common.curve);
  return kExitUsage;
}

int main(int argc, char** argv) {
  // Errors are values everywhere below; what could still throw is running
  // out of memory. Say so and exit with a failure instead of aborting.
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "plantd-mdp: fatal: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "plantd-mdp: fatal: unknown exception\n");
  }
  return kExitNoReply;
}

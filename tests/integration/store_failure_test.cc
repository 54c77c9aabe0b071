// The durable store when its disk fails, through the real broker binary on
// a real SQLite file: a file size limit (RLIMIT_FSIZE), a real full file
// system (a 1 MiB tmpfs), a read-only file, a read-only file system, and a
// store that is stalled (another process holds the database's write lock)
// or too slow for what arrives (store_busy).
//
// What every test checks (issue #14, "bounded and honest under failure"):
//   - no false acknowledgement: every request answered 200 with a UUID is
//     on disk and is answered after the failure is over, also after a
//     kill -9; a request answered 500 was not stored;
//   - a clear error: the 500, the log line and the /healthz store check say
//     what failed and on which file;
//   - ordinary (non-durable) request/reply keeps working meanwhile.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "broker/titanic.h"
#include "http_client.h"
#include "mdp_peers.h"
#include "support.h"

namespace plantd::test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

// Answers every request of `service` on its own thread (and socket) until
// destroyed or sent DISCONNECT: ["echo", each frame up to its first ':'],
// so that a stored request "7:aaaa..." is answered ["echo", "7"], small
// whatever its size.
class EchoWorker {
 public:
  EchoWorker(zmq::context_t& ctx, const std::string& endpoint, const std::string& service)
      : thread_([this, &ctx, endpoint, service] {
          RawPeer peer(ctx, endpoint);
          peer.Send({"MDPW02", Byte(0x01), service});
          while (!stop_.load()) {
            auto f = peer.Recv(50ms);
            if (!f || f->size() < 2) continue;
            if ((*f)[1] == Byte(0x05)) peer.Send({"MDPW02", Byte(0x05)});  // HEARTBEAT
            if ((*f)[1] == Byte(0x06)) break;                              // DISCONNECT
            if ((*f)[1] != Byte(0x02) || f->size() < 4) continue;          // REQUEST
            // [MDPW02, 0x02, client, "", body...] -> FINAL [MDPW02, 0x04, client, "", ...]
            Frames out{"MDPW02", Byte(0x04), (*f)[2], "", "echo"};
            for (size_t i = 4; i < f->size(); ++i)
              out.push_back((*f)[i].substr(0, (*f)[i].find(':')));
            peer.Send(out);
            ++served_;
          }
        }) {}
  ~EchoWorker() {
    stop_ = true;
    thread_.join();
  }
  int served() const { return served_.load(); }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> served_{0};
  std::thread thread_;
};

// Unmounts a mount point when it goes out of scope (lazily, in case a
// process still has a file open there).
struct MountGuard {
  std::string path;
  ~MountGuard() { umount2(path.c_str(), MNT_DETACH); }
};

// A tmpfs of `size` ("1m") at a new directory `path`; false (errno says why)
// where mounting is not permitted.
bool MountTmpfs(const std::string& path, const char* size) {
  std::filesystem::create_directory(path);
  return mount("plantd-test", path.c_str(), "tmpfs", 0, (std::string("size=") + size).c_str()) == 0;
}

class StoreFailureTest : public ::testing::Test {
 protected:
  // Starts (or restarts, on the same ports) the broker on `store_path`.
  // False when it did not start; broker_ then holds its output.
  bool StartBroker(const std::string& store_path, uint64_t max_file_bytes = 0) {
    if (client_port_ == 0) {
      client_port_ = FreeTcpPort();
      worker_port_ = FreeTcpPort();
      http_port_ = FreeTcpPort();
    }
    broker_ = std::make_unique<BrokerProcess>();
    return broker_->Start({.config_yaml = Config(store_path), .max_file_bytes = max_file_bytes});
  }
  std::string Config(const std::string& store_path) const {
    return "endpoint: " + TcpEndpoint(client_port_) +
           "\nclient_endpoint: " + TcpEndpoint(worker_port_) +
           "\nbuses: []\nhealth:\n  bind: 127.0.0.1\n  port: " + std::to_string(http_port_) +
           "\nheartbeat_interval: 200ms\nstore:\n  path: " + store_path + "\n";
  }
  void TearDown() override {
    if (broker_ && broker_->running()) {
      EXPECT_EQ(broker_->Stop(), 0) << broker_->Output();
    }
  }

  std::string clients() const { return TcpEndpoint(client_port_); }
  std::string workers() const { return TcpEndpoint(worker_port_); }

  Frames Call(const std::string& service, const Frames& body,
              std::chrono::milliseconds timeout = 10s) {
    TestClient c(ctx_, clients(), Dialect::kMdp02);
    c.Request(service, body);
    auto r = c.Receive(timeout);
    if (!r) return {"(no answer)"};
    return r->body;
  }

  // titanic.reply until it is no longer 300.
  Frames PollReply(const std::string& id, std::chrono::milliseconds timeout = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      Frames r = Call("titanic.reply", {id});
      if (r.empty() || r[0] != "300" || std::chrono::steady_clock::now() >= deadline) return r;
      std::this_thread::sleep_for(5ms);
    }
  }

  // One ordinary request/reply through `plain`, served by plain_worker_.
  bool PlainRoundTrip(std::chrono::milliseconds timeout = 2s) {
    TestClient c(ctx_, clients(), Dialect::kMdp02);
    const std::string n = std::to_string(++plain_count_);
    c.Request("plain", {"ping", n});
    auto r = c.Receive(timeout);
    return r.has_value() && r->body == (Frames{"echo", "ping", n});
  }
  void StartPlainWorker() {
    plain_worker_ = std::make_unique<EchoWorker>(ctx_, workers(), "plain");
    // Served once mmi.service says so.
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < deadline &&
           Call("mmi.service", {"plain"}) != Frames{"200"}) {
      std::this_thread::sleep_for(5ms);
    }
  }

  json Get(const std::string& path) {
    auto r = HttpGet(http_port_, path);
    if (!r) return json();
    return json::parse(r->body, nullptr, false);
  }
  // Stored requests by state, from /status.
  uint64_t Stored(const std::string& state) {
    json s = Get("/status");
    if (!s.contains("store")) return UINT64_MAX;
    return s["store"]["requests"].value(state, UINT64_MAX);
  }

  // Submits durable requests for `service` (which has no worker, so they
  // stay pending), each with a body "N:" and `body_bytes` more, until one is
  // refused or `max` were acknowledged. Returns the acknowledged ids -> N
  // (what EchoWorker answers); `refusal` gets the refusal's frames.
  std::map<std::string, std::string> FillUntilRefused(const std::string& service, size_t body_bytes,
                                                      int max, Frames* refusal) {
    std::map<std::string, std::string> acked;
    for (int i = 0; i < max; ++i) {
      const std::string key = std::to_string(i);
      Frames r =
          Call("titanic.request",
               {service, key + ":" + std::string(body_bytes, static_cast<char>('a' + i % 26))});
      if (r.size() == 2 && r[0] == "200") {
        acked[r[1]] = key;
        continue;
      }
      *refusal = r;
      break;
    }
    return acked;
  }

  // After the disk is back: every acknowledged request is still on disk
  // (after a kill -9 and a restart, without any file size limit) and is
  // answered for its own body; nothing refused was stored.
  void ExpectEveryAcknowledgedRequestAnswered(const std::string& store_path,
                                              const std::map<std::string, std::string>& acked) {
    broker_->Signal(SIGKILL);
    ASSERT_TRUE(broker_->WaitExit(5s).has_value());
    ASSERT_TRUE(StartBroker(store_path)) << broker_->Output();
    EXPECT_EQ(Stored("pending"), acked.size()) << "a refused request was stored";
    EchoWorker worker(ctx_, workers(), "later");
    for (const auto& [id, key] : acked) {
      EXPECT_EQ(PollReply(id), (Frames{"200", "echo", key})) << id;
    }
    EXPECT_EQ(worker.served(), static_cast<int>(acked.size()));
  }

  // The disk-full scenario shared by the file size limit and the full
  // tmpfs: fill until refused, check what the operator sees and that plain
  // traffic flows, `recover()`, check that durable requests are taken again,
  // then that every acknowledged one survives.
  void DiskFullScenario(const std::string& store_path, uint64_t max_file_bytes,
                        const std::string& expected_cause, const std::function<void()>& recover) {
    ASSERT_TRUE(StartBroker(store_path, max_file_bytes)) << broker_->Output();
    StartPlainWorker();
    ASSERT_TRUE(PlainRoundTrip());
    Frames refusal;
    std::map<std::string, std::string> acked = FillUntilRefused("later", 64 << 10, 200, &refusal);
    ASSERT_FALSE(acked.empty()) << "nothing stored at all: " << broker_->Output();
    ASSERT_EQ(refusal.size(), 2u) << "never refused after " << acked.size() << " requests";
    std::printf("%zu requests of 64 KiB acknowledged, then: %s %s\n", acked.size(),
                refusal[0].c_str(), refusal[1].c_str());
    EXPECT_EQ(refusal[0], "500");
    EXPECT_NE(refusal[1].find("disk full"), std::string::npos) << refusal[1];
    EXPECT_NE(refusal[1].find(expected_cause), std::string::npos) << refusal[1];
    EXPECT_NE(refusal[1].find(store_path), std::string::npos) << refusal[1];
    // Refused again while the disk stays full (a smaller request might
    // still fit), and routing carries on.
    Frames again = Call("titanic.request", {"later", "again:" + std::string(64 << 10, 'x')});
    ASSERT_FALSE(again.empty());
    EXPECT_EQ(again[0], "500") << (again.size() > 1 ? again[1] : "");
    if (again.size() == 2 && again[0] == "200") acked[again[1]] = "again";
    for (int i = 0; i < 20; ++i) ASSERT_TRUE(PlainRoundTrip()) << i;

    // What the operator sees: /healthz warns with the store check, the
    // metrics count it, the log says what and where, once.
    json health = Get("/healthz");
    EXPECT_EQ(health.value("status", ""), "warn") << health.dump();
    EXPECT_EQ(health["checks"]["store"].value("status", ""), "warn") << health.dump();
    EXPECT_NE(health["checks"]["store"].value("output", "").find(store_path), std::string::npos)
        << health.dump();
    EXPECT_EQ(MetricValue(http_port_, "plantd_store_healthy"), 0.0);
    EXPECT_GE(MetricValue(http_port_, "plantd_store_errors_total{reason=\"disk_full\"}"), 2.0);
    const std::string log = broker_->Output();
    EXPECT_NE(log.find("store failing"), std::string::npos) << log;
    EXPECT_NE(log.find(expected_cause), std::string::npos) << log;

    recover();
    // The next durable request is taken; health and the log say so.
    Frames ok = Call("titanic.request", {"later", "after"});
    ASSERT_EQ(ok.size(), 2u);
    EXPECT_EQ(ok[0], "200") << ok[1];
    acked[ok[1]] = "after";
    EXPECT_TRUE(broker_->WaitForOutput("store writable again", 2s)) << broker_->Output();
    EXPECT_EQ(Get("/healthz")["checks"]["store"].value("status", ""), "pass");
    EXPECT_EQ(MetricValue(http_port_, "plantd_store_healthy"), 1.0);
    plain_worker_.reset();
    ExpectEveryAcknowledgedRequestAnswered(store_path, acked);
  }

  zmq::context_t ctx_{1};
  TempDir dir_;
  int client_port_ = 0;
  int worker_port_ = 0;
  int http_port_ = 0;
  int plain_count_ = 0;
  std::unique_ptr<EchoWorker> plain_worker_;
  std::unique_ptr<BrokerProcess> broker_;
};

// RLIMIT_FSIZE (as systemd's LimitFSIZE= or a ulimit sets it): a write past
// it fails with EFBIG, which the store reports as disk full. (Without the
// broker ignoring SIGXFSZ the kernel would kill it instead.)
TEST_F(StoreFailureTest, FileSizeLimitIsDiskFullWithoutFalseAcknowledgement) {
  const std::string path = dir_.path() + "/store.db";
  DiskFullScenario(path, 1 << 20, "File too large", [&] {
    // The operator raises the limit of the running broker.
    const rlimit unlimited{.rlim_cur = RLIM_INFINITY, .rlim_max = RLIM_INFINITY};
    ASSERT_EQ(prlimit(broker_->pid(), RLIMIT_FSIZE, &unlimited, nullptr), 0)
        << std::strerror(errno);
  });
}

// A real file system that fills up: a 1 MiB tmpfs, then space is freed.
TEST_F(StoreFailureTest, FullFileSystemWithoutFalseAcknowledgement) {
  const std::string mnt = dir_.path() + "/small";
  if (!MountTmpfs(mnt, "1m")) {
    GTEST_SKIP() << "cannot mount a tmpfs here (" << std::strerror(errno)
                 << "): needs root or CAP_SYS_ADMIN";
  }
  const MountGuard unmount{mnt};
  // Ballast the operator can delete: half the file system, so that once it
  // is gone there is room for the replies (a store in WAL mode keeps its
  // recent commits, here all of them, in the -wal file).
  const std::string ballast = mnt + "/ballast";
  std::ofstream(ballast) << std::string(512 << 10, 'x');
  const std::string path = mnt + "/store.db";
  DiskFullScenario(path, 0, "No space left on device",
                   [&] { ASSERT_TRUE(std::filesystem::remove(ballast)); });
  if (broker_ && broker_->running()) {
    EXPECT_EQ(broker_->Stop(), 0) << broker_->Output();
  }
}

// A worker answers while the disk is full: its reply cannot be stored. The
// broker keeps it and writes it again until the disk takes it; the request
// is not dispatched again meanwhile (the work is not repeated every second).
TEST_F(StoreFailureTest, AReplyWaitsForTheDiskInsteadOfTheWorkBeingRepeated) {
  const std::string mnt = dir_.path() + "/small";
  if (!MountTmpfs(mnt, "8m")) {
    GTEST_SKIP() << "cannot mount a tmpfs here (" << std::strerror(errno)
                 << "): needs root or CAP_SYS_ADMIN";
  }
  const MountGuard unmount{mnt};
  const std::string path = mnt + "/store.db";
  ASSERT_TRUE(StartBroker(path)) << broker_->Output();
  // More requests than the service's dispatch window: while the disk
  // refuses replies, no more than the window may leave the store, since each
  // one finished would hold its reply in the broker's memory.
  const int window = static_cast<int>(broker::Titanic::Options{}.max_inflight_per_service);
  const int requests = window + 12;
  std::map<std::string, std::string> acked;
  for (int i = 0; i < requests; ++i) {
    Frames r = Call("titanic.request", {"job", std::to_string(i) + ":body"});
    ASSERT_EQ(r.size(), 2u);
    ASSERT_EQ(r[0], "200") << r[1];
    acked[r[1]] = std::to_string(i);
  }
  // Fill the file system to the last byte.
  const std::string fill = mnt + "/fill";
  {
    const int fd = open(fill.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    const std::string chunk(4096, 'f');
    while (write(fd, chunk.data(), chunk.size()) > 0) {
    }
    EXPECT_EQ(errno, ENOSPC);
    const std::string byte(1, 'f');
    while (write(fd, byte.data(), 1) > 0) {
    }
    close(fd);
  }
  {
    EchoWorker worker(ctx_, workers(), "job");
    // Until the replies have been written again, and refused, three times
    // over (a retry delay is 1 s): the dispatch loop had every chance to go on.
    const std::string retried = "plantd_titanic_events_total{event=\"reply_retried\"}";
    const auto deadline = std::chrono::steady_clock::now() + 15s;
    while (MetricValue(http_port_, retried) < 3.0 * window &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(50ms);
    }
    // The window, and at most the few leased before the first refusal came
    // back from the store; never the rest (all 140 went out before).
    EXPECT_GE(worker.served(), window);
    EXPECT_LE(worker.served(), window + 4)
        << "dispatching went on, or a request was run again, while replies waited for the disk";
    for (const auto& [id, key] : acked) EXPECT_EQ(Call("titanic.reply", {id}), Frames{"300"});
    EXPECT_EQ(Get("/healthz")["checks"]["store"].value("status", ""), "warn");
    EXPECT_GE(MetricValue(http_port_, "plantd_titanic_events_total{event=\"reply_retried\"}"),
              1)
        << "the replies written again are not counted";
    StartPlainWorker();
    EXPECT_TRUE(PlainRoundTrip());
    ASSERT_TRUE(std::filesystem::remove(fill));
    for (const auto& [id, key] : acked) {
      EXPECT_EQ(PollReply(id), (Frames{"200", "echo", key})) << id;
    }
    EXPECT_EQ(worker.served(), requests) << "a request was run twice";
  }
  EXPECT_TRUE(broker_->WaitForOutput("store writable again", 2s)) << broker_->Output();
  plain_worker_.reset();
  EXPECT_EQ(broker_->Stop(), 0) << broker_->Output();
}

// A store with one reply stored ("kept") and one request pending for a
// service with no worker ("waiting"), made by a broker that then stopped
// cleanly (so no -wal or -shm file is left beside it).
struct PreparedStore {
  std::string kept_id;
  std::string waiting_id;
};

class ReadOnlyStoreTest : public StoreFailureTest {
 protected:
  PreparedStore Prepare(const std::string& path) {
    PreparedStore p;
    EXPECT_TRUE(StartBroker(path)) << broker_->Output();
    {
      EchoWorker worker(ctx_, workers(), "kept");
      Frames r = Call("titanic.request", {"kept", "body"});
      EXPECT_EQ(r.size(), 2u);
      if (r.size() == 2) p.kept_id = r[1];
      EXPECT_EQ(PollReply(p.kept_id), (Frames{"200", "echo", "body"}));
    }
    Frames r = Call("titanic.request", {"waiting", "body"});
    EXPECT_EQ(r.size(), 2u);
    if (r.size() == 2) p.waiting_id = r[1];
    EXPECT_EQ(broker_->Stop(), 0) << broker_->Output();
    return p;
  }

  // The broker runs on a store it cannot write: it says so, refuses durable
  // requests with 500, still answers from what is stored, and routes
  // ordinary requests.
  void ExpectReadOnlyBroker(const std::string& path, const PreparedStore& p) {
    const std::string log = broker_->Output();
    EXPECT_NE(log.find("read-only"), std::string::npos) << log;
    EXPECT_NE(log.find(path), std::string::npos) << log;
    Frames refused = Call("titanic.request", {"kept", "more"});
    ASSERT_EQ(refused.size(), 2u);
    EXPECT_EQ(refused[0], "500");
    EXPECT_NE(refused[1].find("read-only"), std::string::npos) << refused[1];
    EXPECT_NE(refused[1].find(path), std::string::npos) << refused[1];
    EXPECT_EQ(Call("titanic.reply", {p.kept_id}), (Frames{"200", "echo", "body"}));
    EXPECT_EQ(Call("titanic.reply", {p.waiting_id}), Frames{"300"});
    json health = Get("/healthz");
    EXPECT_EQ(health.value("status", ""), "warn") << health.dump();
    EXPECT_EQ(health["checks"]["store"].value("status", ""), "warn") << health.dump();
    EXPECT_NE(health["checks"]["store"].value("output", "").find("read-only"), std::string::npos)
        << health.dump();
    EXPECT_GE(MetricValue(http_port_, "plantd_store_errors_total{reason=\"read_only\"}"), 1.0);
    StartPlainWorker();
    for (int i = 0; i < 20; ++i) ASSERT_TRUE(PlainRoundTrip()) << i;
    // The pending request could be neither marked dispatched nor answered
    // on disk: it waits there for a broker that can write, rather than be
    // run again every second, each reply failing to be stored.
    {
      EchoWorker worker(ctx_, workers(), "waiting");
      // Nothing should happen, so there is no condition to wait on: 1.5 s
      // covers a retry a second after the worker arrived.
      std::this_thread::sleep_for(1500ms);
      EXPECT_EQ(worker.served(), 0);
    }
    EXPECT_EQ(Call("titanic.reply", {p.waiting_id}), Frames{"300"});
  }
};

// A file the broker may not write (chattr +i: even root cannot). The broker
// starts, warns, refuses durable requests and serves what is stored.
TEST_F(ReadOnlyStoreTest, ReadOnlyFileStartsWarnsAndRefusesDurableRequests) {
  const std::string path = dir_.path() + "/store.db";
  const PreparedStore p = Prepare(path);
  ASSERT_FALSE(p.kept_id.empty());
  ASSERT_FALSE(std::filesystem::exists(path + "-wal"));
  // Immutable: as root, mode bits do not stop writes.
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  int flags = 0;
  const bool immutable = ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 &&
                         (flags |= FS_IMMUTABLE_FL, ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0);
  const int immutable_errno = errno;
  close(fd);
  struct Mutable {
    std::string path;
    bool on;
    ~Mutable() {
      if (!on) return;
      const int f = open(path.c_str(), O_RDONLY | O_CLOEXEC);
      int fl = 0;
      if (f >= 0 && ioctl(f, FS_IOC_GETFLAGS, &fl) == 0) {
        fl &= ~FS_IMMUTABLE_FL;
        ioctl(f, FS_IOC_SETFLAGS, &fl);
      }
      if (f >= 0) close(f);
    }
  } restore{path, immutable};
  if (!immutable) {
    if (geteuid() == 0) {
      GTEST_SKIP() << "cannot make " << path << " immutable (" << std::strerror(immutable_errno)
                   << ") and root ignores mode bits";
    }
    ASSERT_EQ(chmod(path.c_str(), 0444), 0);
  }
  ASSERT_TRUE(StartBroker(path)) << broker_->Output();
  ExpectReadOnlyBroker(path, p);
  EXPECT_EQ(broker_->Stop(), 0) << broker_->Output();
}

// The store's file system mounted read-only (a bind mount made read-only):
// the broker does not start, and says why.
TEST_F(ReadOnlyStoreTest, ReadOnlyFileSystem) {
  const std::string rw = dir_.path() + "/rw";
  const std::string ro = dir_.path() + "/ro";
  std::filesystem::create_directory(rw);
  std::filesystem::create_directory(ro);
  const PreparedStore p = Prepare(rw + "/store.db");
  ASSERT_FALSE(p.kept_id.empty());
  if (mount(rw.c_str(), ro.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    GTEST_SKIP() << "cannot bind-mount here (" << std::strerror(errno)
                 << "): needs root or CAP_SYS_ADMIN";
  }
  const MountGuard unmount{ro};
  ASSERT_EQ(mount(nullptr, ro.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr), 0)
      << std::strerror(errno);
  // SQLite reads a store in WAL mode through a -shm file it creates beside
  // it, which it cannot do here: the broker stops at start, saying the file
  // system is read-only (not that the file is damaged).
  const std::string path = ro + "/store.db";
  RunResult r = RunBroker({"--config", dir_.Write("ro.yaml", Config(path))});
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("cannot open the request store " + path), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("mounted read-only"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("restore it from a backup"), std::string::npos) << r.output;
  // A new store on a read-only file system cannot be created: exit 1, saying
  // where and why.
  r = RunBroker({"--config", dir_.Write("new.yaml", Config(ro + "/new/store.db"))});
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find(ro + "/new"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Read-only file system"), std::string::npos) << r.output;
}

// Holds the store's write lock from this process (as a second program or
// an sqlite3 shell on the same file would): the broker's store thread then
// waits, as it does for a long fsync.
class WriteLockHolder {
 public:
  explicit WriteLockHolder(const std::string& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) return;
    sqlite3_busy_timeout(db_, 5000);
    locked_ = sqlite3_exec(db_, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) == SQLITE_OK;
  }
  ~WriteLockHolder() {
    Release();
    sqlite3_close_v2(db_);
  }
  bool locked() const { return locked_; }
  void Release() {
    if (locked_) sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
    locked_ = false;
  }

 private:
  sqlite3* db_ = nullptr;
  bool locked_ = false;
};

// While the store is stalled for 2 s, durable requests wait (and are all
// acknowledged once it moves again) and ordinary requests are routed as
// fast as ever.
TEST_F(StoreFailureTest, StalledStoreNeverDelaysOrdinaryRouting) {
  const std::string path = dir_.path() + "/store.db";
  ASSERT_TRUE(StartBroker(path)) << broker_->Output();
  StartPlainWorker();
  ASSERT_EQ(Call("titanic.request", {"later", "warm-up"}).at(0), "200");

  constexpr int kDurable = 20;
  WriteLockHolder lock(path);
  ASSERT_TRUE(lock.locked());
  const auto locked_at = std::chrono::steady_clock::now();
  TestClient durable(ctx_, clients(), Dialect::kMdp02);
  for (int i = 0; i < kDurable; ++i)
    durable.Request("titanic.request", {"later", std::to_string(i)});

  std::vector<double> ms;
  while (std::chrono::steady_clock::now() - locked_at < 2s) {
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(PlainRoundTrip());
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  // Nothing was acknowledged while the store could not commit.
  EXPECT_FALSE(durable.Receive(0ms).has_value());
  lock.Release();
  const auto released_at = std::chrono::steady_clock::now();
  int acked = 0;
  double first_ack_ms = -1;
  for (int i = 0; i < kDurable; ++i) {
    auto r = durable.Receive(10s);
    ASSERT_TRUE(r.has_value()) << i;
    if (first_ack_ms < 0) {
      first_ack_ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - released_at)
              .count();
    }
    ASSERT_EQ(r->body.size(), 2u);
    EXPECT_EQ(r->body[0], "200") << r->body[1];
    ++acked;
  }
  const double p50 = Percentile(ms, 0.5);
  const double p99 = Percentile(ms, 0.99);
  std::printf(
      "store stalled 2 s: %zu ordinary round trips, p50 %.2f ms, p99 %.2f ms, max %.2f "
      "ms; %d durable requests acknowledged %.1f ms after the stall\n",
      ms.size(), p50, p99, Percentile(ms, 1.0), acked, first_ack_ms);
  EXPECT_GE(ms.size(), 100u);
  EXPECT_LT(p99, 100.0);
  EXPECT_EQ(acked, kDurable);
  EXPECT_EQ(Stored("pending"), static_cast<uint64_t>(kDurable + 1));
}

// More durable bodies than the store's queue holds (256 MiB) while the store
// is stalled: the excess is refused at once with 500 "waiting for the disk"
// and counted; what was acknowledged is all on disk afterwards.
TEST_F(StoreFailureTest, SlowStoreRefusesTheExcessAsBusy) {
  const std::string path = dir_.path() + "/store.db";
  ASSERT_TRUE(StartBroker(path)) << broker_->Output();
  StartPlainWorker();
  constexpr int kBodies = 40;  // x 8 MiB: 320 MiB, more than the queue's 256
  const std::string big(8 << 20, 'z');
  std::map<std::string, std::string> acked;  // id -> first frame
  int busy = 0;
  {
    WriteLockHolder lock(path);
    ASSERT_TRUE(lock.locked());
    const auto locked_at = std::chrono::steady_clock::now();
    TestClient client(ctx_, clients(), Dialect::kMdp02);
    for (int i = 0; i < kBodies; ++i) {
      client.Request("titanic.request", {"later", std::to_string(i) + ":" + big});
    }
    // The refusals come back while the store is still stalled; the store
    // gives up waiting for a lock after 5 s, so release it before that.
    std::vector<TestClient::Reply> answers;
    while (std::chrono::steady_clock::now() - locked_at < 3500ms &&
           static_cast<int>(answers.size()) < kBodies - 32) {
      if (auto r = client.Receive(50ms)) answers.push_back(*r);
    }
    ASSERT_TRUE(PlainRoundTrip());
    lock.Release();
    while (static_cast<int>(answers.size()) < kBodies) {
      auto r = client.Receive(20s);
      ASSERT_TRUE(r.has_value()) << answers.size();
      answers.push_back(*r);
    }
    for (const TestClient::Reply& r : answers) {
      ASSERT_EQ(r.body.size(), 2u);
      if (r.body[0] == "200") {
        acked[r.body[1]] = "";
      } else {
        EXPECT_EQ(r.body[0], "500");
        EXPECT_NE(r.body[1].find("waiting for the disk"), std::string::npos) << r.body[1];
        ++busy;
      }
    }
  }
  std::printf("%d of %d durable 8 MiB requests refused as busy, %zu acknowledged\n", busy, kBodies,
              acked.size());
  EXPECT_GE(busy, 1);
  EXPECT_GE(acked.size(), 20u);
  EXPECT_EQ(MetricValue(http_port_, "plantd_refused_total{reason=\"store_busy\"}"), busy);
  EXPECT_EQ(MetricValue(http_port_, "plantd_store_errors_total{reason=\"busy\"}"), busy);
  EXPECT_EQ(Stored("pending"), acked.size());
  ASSERT_TRUE(PlainRoundTrip());
  // Each acknowledged one is carried out once the worker comes.
  EchoWorker worker(ctx_, workers(), "later");
  std::set<std::string> answered;
  for (const auto& [id, unused] : acked) {
    Frames r = PollReply(id, 20s);
    ASSERT_EQ(r.size(), 3u) << id << " " << r[0];
    EXPECT_EQ(r[0], "200");
    EXPECT_TRUE(answered.insert(r[2]).second) << r[2];
  }
  EXPECT_EQ(worker.served(), static_cast<int>(acked.size()));
}

}  // namespace
}  // namespace plantd::test

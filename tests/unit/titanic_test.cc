// 9/TSP on a real SQLite store. The test host plays the broker core's part:
// it records what Titanic asks the core to do (answer a client, dispatch a
// stored request) and reports back as the core would.
#include "broker/titanic.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <map>
#include <set>

#include "store/sqlite_store.h"
#include "store_test_util.h"

namespace plantd::broker {
namespace {

using store::Frames;
using store::RequestId;
using store::SqliteStore;

using store::testing::ScratchDir;
using Reply = std::vector<std::string>;

class RecordingHost : public TitanicHost {
 public:
  struct Dispatched {
    RequestId id;
    std::string service;
    Frames body;
  };

  void ReplyToClient(uint64_t token, std::vector<std::string> frames) override {
    replies[token] = std::move(frames);
  }
  bool DispatchStored(const RequestId& id, const std::string& service,
                      const Frames& body) override {
    if (!accept) return false;
    dispatched.push_back({id, service, body});
    return true;
  }
  void CancelStored(const RequestId& id) override { cancelled.push_back(id); }

  bool accept = true;
  std::map<uint64_t, Reply> replies;
  std::vector<Dispatched> dispatched;
  std::vector<RequestId> cancelled;
};

class TitanicTest : public ::testing::Test {
 protected:
  void Open(StoreOptions o = {}, Titanic::Options t = {}) {
    titanic_.reset();
    store_.reset();
    o.path = dir_.File("titanic.db");
    auto r = SqliteStore::Open(o);
    ASSERT_TRUE(r.ok()) << r.status().message();
    store_ = std::move(r.value());
    titanic_ = std::make_unique<Titanic>(store_.get(), &host_, t);
    titanic_->Start(std::chrono::steady_clock::now());
  }

  // Runs Titanic's side of the core loop until `done` or 10 s.
  bool PumpUntil(const std::function<bool()>& done,
                 std::chrono::milliseconds clock_offset = std::chrono::milliseconds(0)) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      pollfd p{titanic_->fd(), POLLIN, 0};
      poll(&p, 1, 20);
      titanic_->Poll(std::chrono::steady_clock::now() + clock_offset);
    }
    return true;
  }

  // Sends one client request and waits for its answer.
  Reply Call(std::string_view service, const std::vector<std::string_view>& body) {
    const uint64_t token = next_token_++;
    titanic_->HandleRequest(token, service, body);
    if (!PumpUntil([&] { return host_.replies.contains(token); })) return {"timeout"};
    return host_.replies[token];
  }

  std::string Submit(std::string_view service, std::string_view body) {
    Reply r = Call("titanic.request", {service, body});
    return r.size() == 2 && r[0] == "200" ? r[1] : std::string();
  }

  ScratchDir dir_;
  RecordingHost host_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<Titanic> titanic_;
  uint64_t next_token_ = 1;
};

TEST_F(TitanicTest, RequestReplyCloseFollowRfc9) {
  Open();
  // Acknowledged only once durable: not within HandleRequest itself.
  titanic_->HandleRequest(100, "titanic.request", {"echo", "hello", "world"});
  EXPECT_FALSE(host_.replies.contains(100));
  ASSERT_TRUE(PumpUntil([&] { return host_.replies.contains(100); }));
  const Reply ack = host_.replies[100];
  ASSERT_EQ(ack.size(), 2u);
  EXPECT_EQ(ack[0], "200");
  ASSERT_EQ(ack[1].size(), 32u);
  const std::optional<RequestId> id = RequestId::Parse(ack[1]);
  ASSERT_TRUE(id.has_value());

  // Handed to the core for the service, as an ordinary request body.
  ASSERT_EQ(host_.dispatched.size(), 1u);
  EXPECT_EQ(host_.dispatched[0].id, *id);
  EXPECT_EQ(host_.dispatched[0].service, "echo");
  EXPECT_EQ(host_.dispatched[0].body, (Frames{"hello", "world"}));

  EXPECT_EQ(Call("titanic.reply", {ack[1]}), Reply{"300"});
  titanic_->OnStoredDispatched(*id);
  EXPECT_EQ(Call("titanic.reply", {ack[1]}), Reply{"300"});
  titanic_->OnStoredReply(*id, {"olleh", ""});
  EXPECT_EQ(titanic_->inflight(), 0u);
  ASSERT_TRUE(PumpUntil([&] { return titanic_->stats().replies_stored == 1; }));

  // Fetched twice: the same answer (titanic.reply is idempotent). UUIDs in
  // lower case are the same UUIDs.
  EXPECT_EQ(Call("titanic.reply", {ack[1]}), (Reply{"200", "olleh", ""}));
  std::string lower = ack[1];
  for (char& ch : lower) ch = static_cast<char>(std::tolower(ch));
  EXPECT_EQ(Call("titanic.reply", {lower}), (Reply{"200", "olleh", ""}));

  EXPECT_EQ(Call("titanic.close", {ack[1]}), Reply{"200"});
  EXPECT_EQ(Call("titanic.reply", {ack[1]}), Reply{"400"});
  EXPECT_EQ(Call("titanic.close", {ack[1]}), Reply{"200"});  // idempotent
  const std::string unknown = RequestId::Random().ToHex();
  EXPECT_EQ(Call("titanic.reply", {unknown}), Reply{"400"});
  EXPECT_EQ(Call("titanic.close", {unknown}), Reply{"200"});  // 9/TSP: MUST be 200
  EXPECT_EQ(titanic_->stats().acknowledged, 1u);
}

TEST_F(TitanicTest, MalformedRequestsAnswer400) {
  Open();
  for (const auto& [service, body] :
       std::vector<std::pair<std::string_view, std::vector<std::string_view>>>{
           {"titanic.request", {}},
           {"titanic.request", {"echo"}},  // 9/TSP: 2 or more frames
           {"titanic.request", {"", "body"}},
           {"titanic.request", {"titanic.request", "body"}},
           {"titanic.request", {"bad\nname", "body"}},
           {"titanic.reply", {}},
           {"titanic.reply", {"not-a-uuid"}},
           {"titanic.close", {std::string(31, 'A')}},
       }) {
    const Reply r = Call(service, body);
    ASSERT_FALSE(r.empty());
    EXPECT_EQ(r[0], "400") << service << " with " << body.size() << " frames";
  }
  EXPECT_TRUE(host_.dispatched.empty());
  EXPECT_EQ(store_->stats().counts.requests(), 0u);
  EXPECT_TRUE(Titanic::IsTitanicService("titanic.close"));
  EXPECT_FALSE(Titanic::IsTitanicService("titanic.other"));
}

// A service with no worker: the core holds a window of its requests, the
// rest wait on disk and follow as replies free the window.
TEST_F(TitanicTest, RequestsBeyondTheWindowWaitOnDiskAndFollowInOrder) {
  Titanic::Options t;
  t.max_inflight_per_service = 50;
  Open({}, t);
  std::vector<std::string> ids;
  for (int i = 0; i < 120; ++i) {
    ids.push_back(Submit("absent", "r" + std::to_string(i)));
    ASSERT_FALSE(ids.back().empty());
  }
  ASSERT_TRUE(PumpUntil([&] { return host_.dispatched.size() == 50; }));
  EXPECT_EQ(titanic_->inflight(), 50u);
  size_t answered = 0;
  while (answered < 120) {
    ASSERT_TRUE(PumpUntil([&] { return host_.dispatched.size() > answered; }));
    const RecordingHost::Dispatched d = host_.dispatched[answered];
    // Store order is dispatch order.
    EXPECT_EQ(d.id.ToHex(), ids[answered]);
    EXPECT_EQ(d.body, Frames{"r" + std::to_string(answered)});
    titanic_->OnStoredReply(d.id, {"done"});
    ++answered;
    EXPECT_LE(titanic_->inflight(), 50u);
  }
  ASSERT_TRUE(PumpUntil([&] { return titanic_->stats().replies_stored == 120; }));
  EXPECT_EQ(host_.dispatched.size(), 120u);  // none twice
  EXPECT_EQ(Call("titanic.reply", {ids[119]}), (Reply{"200", "done"}));
}

TEST_F(TitanicTest, RestartDispatchesPendingAndDispatchedAgainButNotReplied) {
  Open();
  const std::string pending = Submit("svc", "p");
  const std::string dispatched = Submit("svc", "d");
  const std::string replied = Submit("svc", "r");
  ASSERT_EQ(host_.dispatched.size(), 3u);
  titanic_->OnStoredDispatched(*RequestId::Parse(dispatched));
  titanic_->OnStoredDispatched(*RequestId::Parse(replied));
  titanic_->OnStoredReply(*RequestId::Parse(replied), {"answer"});
  ASSERT_TRUE(PumpUntil([&] { return titanic_->stats().replies_stored == 1; }));

  host_.dispatched.clear();
  Open();  // a new store and Titanic on the same file
  EXPECT_EQ(titanic_->stats().recovered, 2u);
  ASSERT_TRUE(PumpUntil([&] { return host_.dispatched.size() == 2; }));
  EXPECT_EQ(host_.dispatched[0].id.ToHex(), pending);
  EXPECT_EQ(host_.dispatched[1].id.ToHex(), dispatched);
  EXPECT_EQ(host_.dispatched[1].body, Frames{"d"});
  EXPECT_EQ(Call("titanic.reply", {replied}), (Reply{"200", "answer"}));
  EXPECT_EQ(Call("titanic.reply", {pending}), Reply{"300"});
  // New requests of the same service queue behind the recovered ones.
  const std::string later = Submit("svc", "n");
  ASSERT_TRUE(PumpUntil([&] { return host_.dispatched.size() == 3; }));
  EXPECT_EQ(host_.dispatched[2].id.ToHex(), later);
}

TEST_F(TitanicTest, ARequestDispatchedTooOftenIsFailedWithAReason) {
  Titanic::Options t;
  t.max_dispatches = 2;
  Open({}, t);
  const std::string id = Submit("crashy", "boom");
  ASSERT_EQ(host_.dispatched.size(), 1u);
  titanic_->OnStoredDispatched(*RequestId::Parse(id));
  titanic_->OnStoredDispatched(*RequestId::Parse(id));  // redispatched once by the core
  ASSERT_TRUE(PumpUntil([&] { return store_->stats().counts.by_state[1] == 1; }));
  host_.dispatched.clear();
  Open({}, t);  // the broker died with it in flight twice
  EXPECT_EQ(titanic_->stats().recovered, 1u);
  ASSERT_TRUE(PumpUntil([&] { return store_->stats().counts.by_state[3] == 1; }));
  EXPECT_TRUE(host_.dispatched.empty());
  const Reply failed = Call("titanic.reply", {id});
  ASSERT_EQ(failed.size(), 2u);
  EXPECT_EQ(failed[0], "500");
  EXPECT_NE(failed[1].find("dispatched 2 times"), std::string::npos) << failed[1];
}

TEST_F(TitanicTest, FailureReportedByTheCoreIsAnswered500WithItsReason) {
  Open();
  const std::string id = Submit("svc", "x");
  titanic_->OnStoredFailed(*RequestId::Parse(id), "no reply after 4 dispatches");
  ASSERT_TRUE(PumpUntil([&] { return titanic_->stats().failed == 1; }));
  EXPECT_EQ(Call("titanic.reply", {id}), (Reply{"500", "no reply after 4 dispatches"}));
}

TEST_F(TitanicTest, ACoreThatCannotTakeARequestGetsItAgainLater) {
  Open();
  host_.accept = false;
  const std::string id = Submit("busy", "x");
  ASSERT_FALSE(id.empty());  // durable, so acknowledged anyway
  EXPECT_EQ(titanic_->inflight(), 0u);
  host_.accept = true;
  titanic_->Poll(std::chrono::steady_clock::now());  // not yet: retry_delay
  EXPECT_TRUE(host_.dispatched.empty());
  ASSERT_TRUE(PumpUntil([&] { return host_.dispatched.size() == 1; }, std::chrono::seconds(2)));
  EXPECT_EQ(host_.dispatched[0].id.ToHex(), id);
}

TEST_F(TitanicTest, StoreFullAnswers500WithTheReasonAndStoresNothing) {
  StoreOptions o;
  o.max_requests = 1;
  Open(o);
  ASSERT_FALSE(Submit("svc", "a").empty());
  const Reply r = Call("titanic.request", {"svc", "b"});
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0], "500");
  EXPECT_NE(r[1].find("store full"), std::string::npos) << r[1];
  EXPECT_EQ(titanic_->stats().refused_full, 1u);
  EXPECT_EQ(host_.dispatched.size(), 1u);
}

TEST_F(TitanicTest, CloseOfARequestInFlightCancelsItAndALateReplyIsNotStored) {
  Open();
  const std::string id = Submit("svc", "x");
  ASSERT_EQ(titanic_->inflight(), 1u);
  EXPECT_EQ(Call("titanic.close", {id}), Reply{"200"});
  ASSERT_EQ(host_.cancelled.size(), 1u);
  EXPECT_EQ(host_.cancelled[0].ToHex(), id);
  EXPECT_EQ(titanic_->inflight(), 0u);
  titanic_->OnStoredReply(*RequestId::Parse(id), {"late"});
  EXPECT_EQ(Call("titanic.reply", {id}), Reply{"400"});
  EXPECT_EQ(store_->stats().counts.requests(), 0u);
}

// The broker's side in a child process, killed with SIGKILL while requests
// are in every state: just acknowledged, with a worker, answered. After a
// restart every acknowledged request is either answered or dispatched again.
TEST_F(TitanicTest, Kill9LosesNoAcknowledgedRequest) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const std::string path = dir_.File("titanic.db");
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    StoreOptions o;
    o.path = path;
    auto r = SqliteStore::Open(o);
    if (!r.ok()) _exit(3);
    RecordingHost host;
    Titanic t(r.value().get(), &host, {});
    t.Start(std::chrono::steady_clock::now());
    uint64_t token = 0;
    size_t answered = 0;
    while (true) {  // until killed
      for (int i = 0; i < 8; ++i) {
        const std::string body = "req" + std::to_string(token);
        t.HandleRequest(++token, "titanic.request", {"svc", body});
      }
      pollfd p{t.fd(), POLLIN, 0};
      poll(&p, 1, 50);
      t.Poll(std::chrono::steady_clock::now());
      for (auto& [tok, reply] : host.replies) {
        if (reply.size() != 2 || reply[0] != "200") _exit(4);
        const char tag = 'A';
        if (write(fds[1], &tag, 1) != 1 || write(fds[1], reply[1].data(), 32) != 32) _exit(5);
      }
      host.replies.clear();
      // The "worker" answers every other dispatched request.
      while (answered < host.dispatched.size()) {
        const RecordingHost::Dispatched& d = host.dispatched[answered++];
        t.OnStoredDispatched(d.id);
        if (answered % 2 == 0) t.OnStoredReply(d.id, {"done"});
      }
    }
  }
  close(fds[1]);
  std::vector<std::string> acked;
  char tag;
  std::string uuid(32, ' ');
  while (acked.size() < 1000 && read(fds[0], &tag, 1) == 1 && read(fds[0], uuid.data(), 32) == 32) {
    acked.push_back(uuid);
  }
  kill(pid, SIGKILL);
  while (read(fds[0], &tag, 1) == 1 && read(fds[0], uuid.data(), 32) == 32) acked.push_back(uuid);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
  ASSERT_GE(acked.size(), 1000u);

  Titanic::Options t;
  t.max_inflight_per_service = 100000;
  Open({}, t);
  ASSERT_TRUE(PumpUntil([&] { return host_.dispatched.size() >= titanic_->stats().recovered; }));
  std::set<std::string> redispatched;
  for (const auto& d : host_.dispatched) redispatched.insert(d.id.ToHex());
  EXPECT_EQ(redispatched.size(), host_.dispatched.size()) << "dispatched twice after restart";
  size_t replied = 0;
  for (const std::string& id : acked) {
    const Reply r = Call("titanic.reply", {id});
    ASSERT_FALSE(r.empty());
    if (r[0] == "200") {
      EXPECT_EQ(r, (Reply{"200", "done"}));
      EXPECT_FALSE(redispatched.contains(id)) << "an answered request was dispatched again";
      ++replied;
    } else {
      EXPECT_EQ(r, Reply{"300"}) << id;
      EXPECT_TRUE(redispatched.contains(id)) << "acknowledged request " << id << " lost";
    }
  }
  EXPECT_GT(replied, 0u);
  EXPECT_LT(replied, acked.size());
}

}  // namespace
}  // namespace plantd::broker

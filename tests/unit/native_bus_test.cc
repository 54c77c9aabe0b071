// libplantd's bus peers on its own ZMTP engine: NativeConnection as a SUB
// and as a PUB (client/native_connection.h), the NativePublisher above it
// (client/native_publisher.h), and how plantd::bus::Publisher and Subscriber
// choose their engine. The peers are real libzmq XPUB and XSUB sockets and,
// where libzmq cannot misbehave as needed (an XSUB that never reads, a peer
// of the wrong type that says so), a peer played by hand over raw TCP.
// Every wait is bounded in time.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "client/native_connection.h"
#include "client/native_publisher.h"
#include "native_connection_driver.h"
#include "plantd/bus/bus.h"
#include "plantd/engine.h"
#include "raw_socket_io.h"
#include "transport/zmtp_framing.h"

namespace plantd::client {
namespace {

namespace zmtp = transport::zmtp;
using std::chrono::milliseconds;
using test::LastEndpoint;
using test::TryRecv;
using Clock = std::chrono::steady_clock;
using Frames = NativeConnection::Frames;
using SocketType = NativeConnection::SocketType;
using Code = Status::Code;

// Generous: the machine may be busy with other builds.
constexpr milliseconds kWait{10'000};
// A generous bound on wait-loop rounds; the deadline normally ends first.
constexpr int kMaxRounds = 1'000'000;

// A subscription or a cancel as ZMTP 3.0 carries it, and as both libzmq's
// XPUB and NativeConnection's PUB hand it over.
std::string Subscription(std::string_view prefix) { return "\x01" + std::string(prefix); }
std::string Cancel(std::string_view prefix) { return std::string(1, '\0') + std::string(prefix); }

// --- NativeConnection driving (as in native_connection_test.cc) -----------

std::unique_ptr<NativeConnection> OpenConnection(const std::string& endpoint, SocketType type) {
  NativeConnection::Options options;
  options.endpoint = endpoint;
  options.socket_type = type;
  auto opened = NativeConnection::Open(std::move(options));
  EXPECT_TRUE(opened.ok()) << opened.status().message();
  return opened.ok() ? std::move(opened.value()) : nullptr;
}

template <typename Done>
bool DriveUntil(NativeConnection& connection, Done done, milliseconds timeout = kWait) {
  return test::DriveUntil(connection, done, timeout);
}

// For conditions that another thread (a NativePublisher's) makes true.
template <typename Done>
bool WaitFor(Done done, milliseconds timeout = kWait) {
  const auto deadline = Clock::now() + timeout;
  for (int round = 0; round < kMaxRounds; ++round) {
    if (done()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(2));
  }
  return done();
}

// --- libzmq side -----------------------------------------------------------

// Binds `socket` to `endpoint`. A socket just closed on the same port may
// still hold it for a moment (libzmq closes in its own threads): the bind
// is tried again while the address is in use, within kWait.
void BindRetrying(zmq::socket_t& socket, const std::string& endpoint) {
  const auto deadline = Clock::now() + kWait;
  while (true) {
    try {
      socket.bind(endpoint);
      return;
    } catch (const zmq::error_t& e) {
      if (e.num() != EADDRINUSE || Clock::now() >= deadline) throw;
    }
    std::this_thread::sleep_for(milliseconds(10));
  }
}

// An XPUB that hands every subscription to the test, repeated or not.
std::unique_ptr<zmq::socket_t> BindXPub(zmq::context_t& context, const std::string& endpoint) {
  auto xpub = std::make_unique<zmq::socket_t>(context, zmq::socket_type::xpub);
  xpub->set(zmq::sockopt::linger, 0);
  xpub->set(zmq::sockopt::xpub_verbose, 1);
  BindRetrying(*xpub, endpoint);
  return xpub;
}

std::unique_ptr<zmq::socket_t> BindXSub(zmq::context_t& context, const std::string& endpoint) {
  auto xsub = std::make_unique<zmq::socket_t>(context, zmq::socket_type::xsub);
  xsub->set(zmq::sockopt::linger, 0);
  BindRetrying(*xsub, endpoint);
  return xsub;
}

// libzmq attaches a new connection to a socket only when the owner's thread
// calls into it, and only then does an XSUB send down it the subscriptions
// it holds: a wait for those must call in now and then.
void ProcessCommands(zmq::socket_t& socket) { (void)socket.get(zmq::sockopt::events); }

// One whole message from `socket`, waiting up to `timeout`.
bool RecvWithin(zmq::socket_t& socket, Frames* frames, milliseconds timeout = kWait) {
  zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
  if (zmq::poll(&item, 1, timeout) <= 0) return false;
  return TryRecv(socket, frames);
}

// Takes every message waiting on `socket` into `*received`; returns how
// many are there in all.
size_t Collect(zmq::socket_t& socket, std::vector<Frames>* received) {
  Frames frames;
  for (int i = 0; i < 10'000 && TryRecv(socket, &frames); ++i) received->push_back(frames);
  return received->size();
}

void SendAll(zmq::socket_t& socket, const Frames& frames) {
  for (size_t i = 0; i < frames.size(); ++i) {
    socket.send(zmq::buffer(frames[i]),
                i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }
}

// --- raw TCP side (an XSUB played by hand) ---------------------------------

using test::ReadExactly;
using test::ReadFrame;
using test::WaitReadable;
using test::WriteAll;

uint16_t LocalPort(int fd) {
  sockaddr_in address{};
  socklen_t length = sizeof(address);
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
  return ntohs(address.sin_port);
}

// A TCP listener on 127.0.0.1 and a port the kernel picked.
int Listen() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_GE(fd, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  EXPECT_EQ(::listen(fd, 4), 0);
  return fd;
}

bool IsReadableNow(int fd) {
  pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
  return ::poll(&p, 1, 0) == 1;
}

// One end of a ZMTP connection played by hand over a TCP listener: it
// completes the handshake as `socket_type`, subscribes as it is told and
// reads only when the test reads (as an XSUB, a bus that has stopped
// reading), or claims a type libzmq would never send to the peer.
class HandPlayedPeer {
 public:
  // A small receive buffer (inherited by the accepted socket, and no
  // autotuning), so that a publisher's output fills it soon.
  // `zmtp_minor`: the minor version its greeting announces (0: ZMTP 3.0,
  // as libzmq before 4.3).
  explicit HandPlayedPeer(std::string socket_type, uint8_t zmtp_minor = 1)
      : socket_type_(std::move(socket_type)), zmtp_minor_(zmtp_minor), listener_(Listen()) {
    const int small = 64 * 1024;
    EXPECT_EQ(::setsockopt(listener_, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
    endpoint_ = "tcp://127.0.0.1:" + std::to_string(LocalPort(listener_));
  }
  ~HandPlayedPeer() {
    if (peer_ >= 0) ::close(peer_);
    ::close(listener_);
  }
  HandPlayedPeer(const HandPlayedPeer&) = delete;
  HandPlayedPeer& operator=(const HandPlayedPeer&) = delete;

  const std::string& endpoint() const { return endpoint_; }
  int peer() const { return peer_; }

  // Accepts a connection if one is waiting, and sends our greeting and
  // READY at once. For a caller that must drive the other end meanwhile.
  bool TryAccept() {
    if (!IsReadableNow(listener_)) return false;
    ClosePeer();
    peer_ = ::accept(listener_, nullptr, nullptr);
    if (peer_ < 0) return false;
    std::string out;
    zmtp::AppendGreeting(out);
    out[11] = static_cast<char>(zmtp_minor_);
    zmtp::AppendReady(out, socket_type_);
    return WriteAll(peer_, out);
  }

  // For a peer with a thread of its own (a NativePublisher): accepts, then
  // reads its greeting and READY and checks it says `expected_type`.
  bool Handshake(std::string_view expected_type) {
    if (!WaitReadable(listener_, Clock::now() + kWait) || !TryAccept()) return false;
    uint8_t greeting[zmtp::kGreetingSize];
    if (!ReadExactly(peer_, greeting, sizeof(greeting), kWait)) return false;
    EXPECT_EQ(zmtp::CheckGreeting(greeting), zmtp::GreetingError::kNone);
    test::RawFrame ready;
    if (!ReadFrame(peer_, &ready, kWait)) return false;
    EXPECT_TRUE(ready.header.command);
    zmtp::PeerMetadata metadata;
    EXPECT_TRUE(zmtp::ParseReady(ready.body, &metadata));
    EXPECT_EQ(metadata.socket_type, expected_type);
    return true;
  }

  // A subscription as a ZMTP 3.0 data frame, as libzmq's XSUB sends one.
  bool Subscribe(std::string_view prefix) {
    std::string out;
    zmtp::AppendFrame(out, Subscription(prefix), /*more=*/false);
    return WriteAll(peer_, out);
  }

  bool Write(std::string_view bytes) { return WriteAll(peer_, bytes); }

  // Closes the connection; with unread input the kernel resets it.
  void ClosePeer() {
    if (peer_ >= 0) ::close(peer_);
    peer_ = -1;
  }

  // The next message, frame by frame; false on a timeout or a closed socket.
  bool ReadMessage(Frames* frames, milliseconds timeout = kWait) {
    frames->clear();
    test::RawFrame frame;
    do {
      if (!ReadFrame(peer_, &frame, timeout)) return false;
      EXPECT_FALSE(frame.header.command) << "a PUB sends its peer no commands after READY";
      frames->push_back(std::move(frame.body));
    } while (frame.header.more);
    return true;
  }

 private:
  std::string socket_type_;
  uint8_t zmtp_minor_;
  int listener_;
  std::string endpoint_;
  int peer_ = -1;
};

// --- NativePublisher -------------------------------------------------------

std::unique_ptr<NativePublisher> OpenPublisher(NativePublisher::Options options) {
  auto opened = NativePublisher::Open(std::move(options));
  EXPECT_TRUE(opened.ok()) << opened.status().message();
  return opened.ok() ? std::move(opened.value()) : nullptr;
}

NativePublisher::Options PublisherOptions(const std::string& endpoint) {
  NativePublisher::Options options;
  options.endpoint = endpoint;
  return options;
}

// The frames of a 64 KiB message and its index, for the full-queue tests.
const std::string& SixtyFourKiB() {
  static const std::string payload(64 * 1024, 'p');
  return payload;
}

// =========================================================================
// NativeConnection as a SUB, against libzmq's XPUB
// =========================================================================

TEST(NativeBusSub, SendsItsSubscriptionsToAnXPubAndReceivesWhatItPublishes) {
  zmq::context_t context;
  auto xpub = BindXPub(context, "tcp://127.0.0.1:0");
  auto sub = OpenConnection(LastEndpoint(*xpub), SocketType::kSub);
  ASSERT_NE(sub, nullptr);
  // Given before the connection is up: kept, and sent once it is.
  ASSERT_TRUE(sub->Subscribe("a."));
  ASSERT_TRUE(sub->Subscribe("b."));
  EXPECT_FALSE(sub->ready());
  std::vector<Frames> subscriptions;
  ASSERT_TRUE(DriveUntil(*sub, [&] { return Collect(*xpub, &subscriptions) >= 2; }))
      << "the XPUB got " << subscriptions.size()
      << " subscriptions; last error: " << sub->last_error().message();
  EXPECT_EQ(subscriptions, (std::vector<Frames>{{Subscription("a.")}, {Subscription("b.")}}));
  EXPECT_TRUE(sub->ready());

  // Given on a live connection: sent at once.
  ASSERT_TRUE(sub->Subscribe("c."));
  ASSERT_TRUE(DriveUntil(*sub, [&] { return Collect(*xpub, &subscriptions) >= 3; }));
  EXPECT_EQ(subscriptions.back(), Frames{Subscription("c.")});

  SendAll(*xpub, {"c.reading", "21.5", "C"});
  Frames received;
  ASSERT_TRUE(DriveUntil(*sub, [&] { return sub->Recv(&received); }))
      << sub->last_error().message();
  EXPECT_EQ(received, (Frames{"c.reading", "21.5", "C"}));
  EXPECT_FALSE(sub->Recv(&received)) << "one message sent, one received";
  EXPECT_EQ(sub->connections(), 1u);
}

// A new XPUB knows nothing of the old one's subscriptions: the SUB sends
// every one of them again at the start of the new connection.
TEST(NativeBusSub, SendsEverySubscriptionAgainToANewXPubOnTheSamePort) {
  zmq::context_t context;
  auto first = BindXPub(context, "tcp://127.0.0.1:0");
  const std::string endpoint = LastEndpoint(*first);
  auto sub = OpenConnection(endpoint, SocketType::kSub);
  ASSERT_NE(sub, nullptr);
  ASSERT_TRUE(sub->Subscribe("a."));
  ASSERT_TRUE(sub->Subscribe("b."));
  std::vector<Frames> at_first;
  ASSERT_TRUE(DriveUntil(*sub, [&] { return Collect(*first, &at_first) >= 2; }));
  ASSERT_TRUE(sub->Subscribe("c."));  // on the live connection
  ASSERT_TRUE(DriveUntil(*sub, [&] { return Collect(*first, &at_first) >= 3; }));

  first.reset();  // the bus goes away
  ASSERT_TRUE(DriveUntil(*sub, [&] { return !sub->ready(); }))
      << "the loss of the XPUB went unnoticed";
  auto second = BindXPub(context, endpoint);
  std::vector<Frames> at_second;
  ASSERT_TRUE(DriveUntil(*sub, [&] { return Collect(*second, &at_second) >= 3; }))
      << "the new XPUB got " << at_second.size()
      << " subscriptions; last error: " << sub->last_error().message();
  EXPECT_EQ(at_second, (std::vector<Frames>{
                           {Subscription("a.")}, {Subscription("b.")}, {Subscription("c.")}}));
  EXPECT_EQ(sub->connections(), 2u);

  SendAll(*second, {"b.after", "x"});
  Frames received;
  ASSERT_TRUE(DriveUntil(*sub, [&] { return sub->Recv(&received); }));
  EXPECT_EQ(received, (Frames{"b.after", "x"}));
}

// Played by hand: a libzmq ROUTER checks the types itself and closes on
// the SUB's READY before sending its own, so the SUB never learns its type.
// RFC 37 (ZMTP 3.1) subscribes with a SUBSCRIBE command, which a ZMTP 3.0
// peer (libzmq before 4.3) does not know: to one that says 3.0 in its
// greeting, the subscription goes as a message, byte 1 then the prefix.
TEST(NativeBusSub, SubscribesWithAMessageToAPeerThatSpeaksZmtp30) {
  HandPlayedPeer bus("PUB", /*zmtp_minor=*/0);
  auto sub = OpenConnection(bus.endpoint(), SocketType::kSub);
  ASSERT_NE(sub, nullptr);
  ASSERT_TRUE(sub->Subscribe("a."));
  ASSERT_TRUE(DriveUntil(*sub, [&] { return bus.TryAccept(); }));
  ASSERT_TRUE(DriveUntil(*sub, [&] { return sub->ready() && sub->unwritten_bytes() == 0; }));
  uint8_t greeting[zmtp::kGreetingSize];
  ASSERT_TRUE(ReadExactly(bus.peer(), greeting, sizeof(greeting), kWait));
  test::RawFrame ready;
  ASSERT_TRUE(ReadFrame(bus.peer(), &ready, kWait));
  EXPECT_TRUE(ready.header.command);
  test::RawFrame subscription;
  ASSERT_TRUE(ReadFrame(bus.peer(), &subscription, kWait));
  EXPECT_FALSE(subscription.header.command) << "a 3.0 peer gets the message form";
  EXPECT_EQ(subscription.body, Subscription("a."));
}

// Receive with a zero timeout still does the I/O that is ready: a loop that
// polls without waiting connects, subscribes and receives.
TEST(NativeBusSubscriber, ReceiveWithAZeroTimeoutStillConnectsAndReceives) {
  zmq::context_t context;
  auto xpub = BindXPub(context, "tcp://127.0.0.1:0");
  bus::Subscriber sub(LastEndpoint(*xpub), {"a."}, {.engine = Engine::kNative});
  ASSERT_TRUE(sub.status().ok()) << sub.status().message();
  bus::Message m;
  bool got = false;
  const auto deadline = Clock::now() + kWait;
  while (!got && Clock::now() < deadline) {
    (void)xpub->send(zmq::str_buffer("a.x"), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    (void)xpub->send(zmq::str_buffer("body"), zmq::send_flags::dontwait);
    got = sub.Receive(&m, milliseconds(0));
    if (!got) std::this_thread::sleep_for(milliseconds(1));
  }
  ASSERT_TRUE(got);
  EXPECT_EQ(m.topic, "a.x");
  EXPECT_EQ(m.frames, (std::vector<std::string>{"body"}));
}

TEST(NativeBusSub, RefusesAPeerThatIsNotAPublisherAsAProtocolErrorNamingItsType) {
  HandPlayedPeer router("ROUTER");
  auto sub = OpenConnection(router.endpoint(), SocketType::kSub);
  ASSERT_NE(sub, nullptr);
  ASSERT_TRUE(sub->Subscribe("a."));
  ASSERT_TRUE(DriveUntil(*sub, [&] { return router.TryAccept(); }));
  ASSERT_TRUE(DriveUntil(*sub, [&] { return !sub->last_error().ok(); }));
  const Status& error = sub->last_error();
  EXPECT_EQ(error.code(), Code::kProtocolError) << error.message();
  EXPECT_NE(error.message().find("ROUTER"), std::string::npos) << error.message();
  EXPECT_FALSE(sub->ready());
  EXPECT_EQ(sub->connections(), 0u);
}

// =========================================================================
// NativeConnection as a PUB, against libzmq's XSUB
// =========================================================================

TEST(NativeBusPub, HandsAnXSubsSubscribeAndCancelToRecvAndSendsItMessages) {
  zmq::context_t context;
  auto xsub = BindXSub(context, "tcp://127.0.0.1:0");
  auto pub = OpenConnection(LastEndpoint(*xsub), SocketType::kPub);
  ASSERT_NE(pub, nullptr);
  ASSERT_TRUE(DriveUntil(*pub, [&] { return pub->ready(); })) << pub->last_error().message();

  SendAll(*xsub, {Subscription("a.")});
  Frames received;
  ASSERT_TRUE(DriveUntil(*pub, [&] {
    ProcessCommands(*xsub);
    return pub->Recv(&received);
  })) << pub->last_error().message();
  EXPECT_EQ(received, Frames{Subscription("a.")});

  ASSERT_TRUE(pub->Send({"a.x"}, {"body"}));
  Frames at_xsub;
  ASSERT_TRUE(DriveUntil(*pub, [&] { return TryRecv(*xsub, &at_xsub); }));
  EXPECT_EQ(at_xsub, (Frames{"a.x", "body"}));

  SendAll(*xsub, {Cancel("a.")});
  ASSERT_TRUE(DriveUntil(*pub, [&] { return pub->Recv(&received); }));
  EXPECT_EQ(received, Frames{Cancel("a.")});
  EXPECT_TRUE(pub->ready());
  EXPECT_EQ(pub->connections(), 1u);
}

// Played by hand for the same reason (a libzmq XPUB closes first).
TEST(NativeBusPub, RefusesAPeerThatIsNotASubscriberAsAProtocolErrorNamingItsType) {
  HandPlayedPeer xpub("XPUB");
  auto pub = OpenConnection(xpub.endpoint(), SocketType::kPub);
  ASSERT_NE(pub, nullptr);
  ASSERT_TRUE(DriveUntil(*pub, [&] { return xpub.TryAccept(); }));
  ASSERT_TRUE(DriveUntil(*pub, [&] { return !pub->last_error().ok(); }));
  EXPECT_EQ(pub->last_error().code(), Code::kProtocolError) << pub->last_error().message();
  EXPECT_NE(pub->last_error().message().find("XPUB"), std::string::npos)
      << pub->last_error().message();
  EXPECT_FALSE(pub->ready());
  EXPECT_EQ(pub->connections(), 0u);
}

// =========================================================================
// NativePublisher against libzmq's XSUB
// =========================================================================

// libzmq's XSUB does not filter what it receives: every message the
// publisher writes reaches the test, in the order written. So a message
// that must not have gone is proved absent by the one published after it
// arriving first, with no wait for something that does not come.
class NativeBusPublisher : public ::testing::Test {
 protected:
  void SetUp() override {
    xsub_ = BindXSub(context_, "tcp://127.0.0.1:0");
    endpoint_ = LastEndpoint(*xsub_);
  }

  void Open(NativePublisher::Options options) {
    publisher_ = OpenPublisher(std::move(options));
    ASSERT_NE(publisher_, nullptr);
  }
  void Open() { Open(PublisherOptions(endpoint_)); }

  // Sends a subscription (or a cancel) from the XSUB and waits until the
  // publisher holds `expected` distinct prefixes.
  void Subscribe(std::string_view prefix, size_t expected) {
    SendAll(*xsub_, {Subscription(prefix)});
    WaitForSubscriptions(expected);
  }
  void CancelSubscription(std::string_view prefix, size_t expected) {
    SendAll(*xsub_, {Cancel(prefix)});
    WaitForSubscriptions(expected);
  }
  void WaitForSubscriptions(size_t expected) {
    ASSERT_TRUE(WaitFor([&] {
      ProcessCommands(*xsub_);
      return publisher_->subscriptions() == expected;
    })) << "the publisher holds "
        << publisher_->subscriptions() << " subscriptions, not " << expected;
  }

  void Publish(std::string_view topic, const Frames& frames = {"body"}) {
    const Status s = publisher_->Publish(topic, frames);
    ASSERT_TRUE(s.ok()) << topic << ": " << s.message();
  }

  // The topic of the next message at the XSUB; empty when none came.
  std::string NextTopic() {
    Frames frames;
    if (!RecvWithin(*xsub_, &frames)) return "";
    return frames.empty() ? "" : frames[0];
  }

  zmq::context_t context_;
  std::unique_ptr<zmq::socket_t> xsub_;
  std::string endpoint_;
  std::unique_ptr<NativePublisher> publisher_;
};

TEST_F(NativeBusPublisher, SendsNothingBeforeTheBusSubscribes) {
  Open();
  ASSERT_TRUE(WaitFor([&] { return publisher_->connected(); }));
  EXPECT_EQ(publisher_->subscriptions(), 0u);
  Publish("a.early");  // ok, and nowhere to go
  Subscribe("a.", 1);
  Publish("a.x");
  EXPECT_EQ(NextTopic(), "a.x") << "a message went before the bus subscribed to it";
}

TEST_F(NativeBusPublisher, SendsOnlyTopicsThatMatchASubscription) {
  Open();
  Subscribe("a.", 1);
  Publish("b.x");
  Publish("a");  // shorter than the prefix
  Publish("a.x", {"21.5", "C"});
  Frames frames;
  ASSERT_TRUE(RecvWithin(*xsub_, &frames));
  EXPECT_EQ(frames, (Frames{"a.x", "21.5", "C"})) << "b.x or a went though nobody subscribed";
}

TEST_F(NativeBusPublisher, StopsSendingATopicOnceItsSubscriptionIsCancelled) {
  Open();
  Subscribe("a.", 1);
  Publish("a.before");
  EXPECT_EQ(NextTopic(), "a.before");
  CancelSubscription("a.", 0);
  Publish("a.after");
  Subscribe("c.", 1);
  Publish("c.x");
  EXPECT_EQ(NextTopic(), "c.x") << "a.after went after its subscription was cancelled";
}

TEST_F(NativeBusPublisher, DeliversTenThousandMessagesPublishedAtFullSpeedAllAndInOrder) {
  Open();
  Subscribe("n.", 1);
  constexpr int kMessages = 10'000;
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_TRUE(publisher_->Publish("n." + std::to_string(i), {std::to_string(i)}).ok());
  }
  Frames frames;
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_TRUE(RecvWithin(*xsub_, &frames)) << "only " << i << " messages arrived";
    ASSERT_EQ(frames, (Frames{"n." + std::to_string(i), std::to_string(i)})) << "message " << i;
  }
  EXPECT_EQ(publisher_->dropped(), 0u);
}

TEST_F(NativeBusPublisher, DestructorLingersUntilEveryQueuedMessageIsWritten) {
  auto options = PublisherOptions(endpoint_);
  options.linger = milliseconds(5000);  // generous; it returns once all went
  Open(options);
  Subscribe("n.", 1);
  constexpr int kMessages = 1000;
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_TRUE(publisher_->Publish("n." + std::to_string(i), {std::to_string(i)}).ok());
  }
  publisher_.reset();  // at once
  Frames frames;
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_TRUE(RecvWithin(*xsub_, &frames)) << "only " << i << " messages arrived";
    ASSERT_EQ(frames, (Frames{"n." + std::to_string(i), std::to_string(i)})) << "message " << i;
  }
}

// Past max_subscriptions prefixes it stops filtering and lets the bus do it.
TEST_F(NativeBusPublisher, SendsEveryMessageOnceThereAreMoreThanMaxSubscriptionsPrefixes) {
  auto options = PublisherOptions(endpoint_);
  options.max_subscriptions = 2;
  Open(options);
  Subscribe("a.", 1);
  Subscribe("b.", 2);
  SendAll(*xsub_, {Subscription("c.")});  // one too many: held nowhere
  // Nothing to wait on for the third but its effect: publish until it shows.
  Frames frames;
  bool arrived = false;
  for (int i = 0; i < 200 && !arrived; ++i) {
    Publish("z.matches-none");
    arrived = RecvWithin(*xsub_, &frames, milliseconds(50));
  }
  ASSERT_TRUE(arrived) << "a topic no prefix matches never went";
  EXPECT_EQ(frames[0], "z.matches-none");
  EXPECT_EQ(publisher_->subscriptions(), 2u) << "prefixes past the cap are not kept";
}

TEST_F(NativeBusPublisher, RefusesAMessageLargerThanItsWholeQueueAsInvalidArgument) {
  auto options = PublisherOptions(endpoint_);
  options.max_queued_bytes = 1024;
  Open(options);
  Subscribe("", 1);
  const Status s = publisher_->Publish("a.big", {std::string(2048, 'x')});
  EXPECT_EQ(s.code(), Code::kInvalidArgument) << s.message();
  EXPECT_EQ(publisher_->dropped(), 0u) << "not a drop: it could never fit";
  Publish("a.small");
  EXPECT_EQ(NextTopic(), "a.small");
}

TEST(NativeBusPublisherOptions, OpenRefusesZeroQueueLimitsAndAMalformedEndpoint) {
  auto no_messages = PublisherOptions("tcp://127.0.0.1:5");
  no_messages.max_queued_messages = 0;
  auto no_bytes = PublisherOptions("tcp://127.0.0.1:5");
  no_bytes.max_queued_bytes = 0;
  auto inproc = PublisherOptions("inproc://x");
  for (const auto& options : {no_messages, no_bytes, inproc}) {
    auto opened = NativePublisher::Open(options);
    ASSERT_FALSE(opened.ok()) << options.endpoint;
    EXPECT_EQ(opened.status().code(), Code::kInvalidArgument) << opened.status().message();
  }
}

TEST_F(NativeBusPublisher, ForgetsSubscriptionsWithTheConnectionAndTakesThemAgainOnTheNext) {
  Open();
  Subscribe("a.", 1);
  Publish("a.first");
  EXPECT_EQ(NextTopic(), "a.first");

  xsub_.reset();  // the bus goes away
  ASSERT_TRUE(WaitFor([&] { return publisher_->subscriptions() == 0; }))
      << "the subscriptions outlived their connection";
  EXPECT_FALSE(publisher_->connected());
  Publish("a.while-away");  // ok: nobody wants it now

  // A new bus on the same port subscribes afresh (libzmq's XSUB sends what
  // it holds on every new connection).
  xsub_ = BindXSub(context_, endpoint_);
  Subscribe("a.", 1);
  EXPECT_TRUE(publisher_->connected());
  Publish("a.second");
  EXPECT_EQ(NextTopic(), "a.second") << "a.while-away was kept for the next connection";
}

// =========================================================================
// NativePublisher against a bus that never reads
// =========================================================================

TEST(NativeBusFullQueue, DropModeRefusesWithUnavailableAndCountsEveryRefusal) {
  HandPlayedPeer bus("XSUB");
  auto options = PublisherOptions(bus.endpoint());
  options.block = false;
  options.max_queued_messages = 4;
  options.linger = milliseconds(0);  // what is queued at the end never goes
  auto publisher = OpenPublisher(options);
  ASSERT_NE(publisher, nullptr);
  ASSERT_TRUE(bus.Handshake("PUB"));
  ASSERT_TRUE(bus.Subscribe(""));  // everything
  ASSERT_TRUE(WaitFor([&] { return publisher->subscriptions() == 1; }));

  // Socket buffers hold some megabytes; 2,000 messages of 64 KiB are
  // 128 MiB. Go on a little past the first refusal to see each counted.
  uint64_t refused = 0;
  int published = 0;
  for (int i = 0; i < 2000 && refused < 10; ++i) {
    const Status s = publisher->Publish("t." + std::to_string(i), {SixtyFourKiB()});
    if (s.code() == Code::kUnavailable) {
      ++refused;
      EXPECT_NE(s.message().find("full"), std::string::npos) << s.message();
    } else {
      ASSERT_TRUE(s.ok()) << s.message();
      ++published;
    }
  }
  ASSERT_GT(refused, 0u) << "all " << published << " messages were taken by a bus that never reads";
  EXPECT_EQ(publisher->dropped(), refused);
}

TEST(NativeBusFullQueue, BlockModeWaitsForRoomUntilTheBusReadsAndLosesNothing) {
  HandPlayedPeer bus("XSUB");
  auto options = PublisherOptions(bus.endpoint());
  options.block = true;
  options.max_queued_messages = 4;
  auto publisher = OpenPublisher(options);
  ASSERT_NE(publisher, nullptr);
  ASSERT_TRUE(bus.Handshake("PUB"));
  ASSERT_TRUE(bus.Subscribe(""));
  ASSERT_TRUE(WaitFor([&] { return publisher->subscriptions() == 1; }));

  // 32 MiB: far more than the socket buffers and the queue hold.
  constexpr int kMessages = 500;
  std::atomic<int> published{0};
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  std::thread publishing([&] {
    for (int i = 0; i < kMessages; ++i) {
      if (!publisher->Publish("t." + std::to_string(i), {SixtyFourKiB()}).ok()) ++failures;
      ++published;
    }
    done = true;
  });

  // A bounded look, which passes only by waiting it out: Publish waits
  // while the bus reads nothing.
  EXPECT_FALSE(WaitFor([&] { return done.load(); }, milliseconds(300)))
      << "Publish returned for all " << kMessages << " messages though the bus read nothing";
  EXPECT_LT(published.load(), kMessages);

  // The bus reads everything: every Publish returns, and nothing was lost.
  Frames frames;
  int read = 0;
  for (; read < kMessages; ++read) {
    if (!bus.ReadMessage(&frames)) break;
    ASSERT_EQ(frames.size(), 2u);
    ASSERT_EQ(frames[0], "t." + std::to_string(read)) << "in order, none missing";
    ASSERT_EQ(frames[1].size(), SixtyFourKiB().size());
  }
  EXPECT_EQ(read, kMessages) << "the bus read only " << read << " messages";
  EXPECT_TRUE(WaitFor([&] { return done.load(); })) << "Publish still waits after the bus read all";
  publishing.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(publisher->dropped(), 0u);
}

// =========================================================================
// NativePublisher across a lost connection, against a hand-played bus
// =========================================================================

// The publisher connects to `bus` again, which subscribes to z. alone:
// z.marker must be the first message it gets, nothing left from before.
void ExpectTheNextBusGetsOnlyWhatItSubscribedTo(HandPlayedPeer& bus, NativePublisher& publisher,
                                                const char* otherwise) {
  ASSERT_TRUE(bus.Handshake("PUB"));
  ASSERT_TRUE(bus.Subscribe("z."));
  ASSERT_TRUE(WaitFor([&] { return publisher.subscriptions() == 1; }));
  ASSERT_TRUE(publisher.Publish("z.marker", {"body"}).ok());
  Frames frames;
  ASSERT_TRUE(bus.ReadMessage(&frames));
  EXPECT_EQ(frames[0], "z.marker") << otherwise;
}

// A subscription that arrives in the same read as what ends the connection
// (here a malformed frame; also an end of file behind a full 64 KiB chunk)
// goes with the connection: while none is up nothing is held, and what is
// published meanwhile does not reach the next bus, which never asked.
TEST(NativeBusLostConnection, SubscriptionReadWithWhatEndedTheConnectionIsForgotten) {
  HandPlayedPeer bus("XSUB");
  auto options = PublisherOptions(bus.endpoint());
  options.linger = milliseconds(0);
  auto publisher = OpenPublisher(options);
  ASSERT_NE(publisher, nullptr);
  ASSERT_TRUE(bus.Handshake("PUB"));
  ASSERT_TRUE(WaitFor([&] { return publisher->connected(); }));

  // One small write, read in one go: a subscription, then a frame whose
  // flags byte no ZMTP peer sends.
  std::string out;
  zmtp::AppendFrame(out, Subscription("a."), /*more=*/false);
  out.append("\xFF\x00", 2);
  ASSERT_TRUE(bus.Write(out));
  ASSERT_TRUE(WaitFor([&] { return !publisher->connected(); }));
  EXPECT_EQ(publisher->subscriptions(), 0u) << "a subscription of the lost connection outlived it";
  ASSERT_TRUE(publisher->Publish("a.after-the-loss", {"body"}).ok());

  ExpectTheNextBusGetsOnlyWhatItSubscribedTo(bus, *publisher,
                                             "the new bus got a topic it never subscribed to");
}

// As libzmq's PUB: messages queued for one connection's subscriptions do
// not go to the next connection, whose bus has not subscribed to them.
TEST(NativeBusLostConnection, MessagesQueuedForALostConnectionDoNotGoToTheNext) {
  HandPlayedPeer bus("XSUB");
  auto options = PublisherOptions(bus.endpoint());
  options.block = false;
  options.max_queued_messages = 4;
  options.linger = milliseconds(0);
  auto publisher = OpenPublisher(options);
  ASSERT_NE(publisher, nullptr);
  ASSERT_TRUE(bus.Handshake("PUB"));
  ASSERT_TRUE(bus.Subscribe(""));
  ASSERT_TRUE(WaitFor([&] { return publisher->subscriptions() == 1; }));
  // The bus reads nothing: publish until the queue is full.
  bool full = false;
  for (int i = 0; i < 2000 && !full; ++i) {
    full =
        publisher->Publish("t." + std::to_string(i), {SixtyFourKiB()}).code() == Code::kUnavailable;
  }
  ASSERT_TRUE(full) << "the queue never filled";

  bus.ClosePeer();  // with unread input: a reset
  ASSERT_TRUE(WaitFor([&] { return publisher->subscriptions() == 0; }));
  ExpectTheNextBusGetsOnlyWhatItSubscribedTo(
      bus, *publisher, "a message queued for the lost connection went to the next");
}

// =========================================================================
// plantd::bus::Publisher and Subscriber: which engine
// =========================================================================

TEST(NativeBusEngine, NativeWithCurveKeysIsInvalidArgument) {
  CurveOptions curve;
  curve.server_key = "any-key-turns-curve-on";
  ASSERT_TRUE(curve.enabled());

  bus::PublisherOptions publisher_options;
  publisher_options.engine = Engine::kNative;
  publisher_options.curve = curve;
  bus::Publisher publisher("tcp://127.0.0.1:5", publisher_options);
  EXPECT_EQ(publisher.status().code(), Code::kInvalidArgument);
  EXPECT_NE(publisher.status().message().find("CURVE"), std::string::npos)
      << publisher.status().message();
  EXPECT_EQ(publisher.Publish("a.x", {"body"}).code(), Code::kInvalidArgument);

  bus::SubscriberOptions subscriber_options;
  subscriber_options.engine = Engine::kNative;
  subscriber_options.curve = curve;
  bus::Subscriber subscriber("tcp://127.0.0.1:5", {"a."}, subscriber_options);
  EXPECT_EQ(subscriber.status().code(), Code::kInvalidArgument);
  EXPECT_NE(subscriber.status().message().find("CURVE"), std::string::npos)
      << subscriber.status().message();
  EXPECT_EQ(subscriber.Subscribe("b.").code(), Code::kInvalidArgument);
  EXPECT_FALSE(subscriber.Receive(milliseconds(0)).has_value());
}

TEST(NativeBusEngine, NativeWithAnInprocEndpointIsInvalidArgumentNamingIt) {
  bus::PublisherOptions publisher_options;
  publisher_options.engine = Engine::kNative;
  bus::Publisher publisher("inproc://native-bus-test", publisher_options);
  EXPECT_EQ(publisher.status().code(), Code::kInvalidArgument);
  EXPECT_NE(publisher.status().message().find("inproc://native-bus-test"), std::string::npos)
      << publisher.status().message();

  bus::SubscriberOptions subscriber_options;
  subscriber_options.engine = Engine::kNative;
  bus::Subscriber subscriber("inproc://native-bus-test", {"a."}, subscriber_options);
  EXPECT_EQ(subscriber.status().code(), Code::kInvalidArgument);
  EXPECT_NE(subscriber.status().message().find("inproc://native-bus-test"), std::string::npos)
      << subscriber.status().message();
}

TEST(NativeBusEngine, AutoWithAnInprocEndpointFallsBackToLibzmq) {
  bus::Publisher publisher("inproc://native-bus-test-auto");  // kAuto
  EXPECT_TRUE(publisher.status().ok()) << publisher.status().message();
  EXPECT_TRUE(publisher.Publish("a.x", {"body"}).ok());
  EXPECT_EQ(publisher.dropped(), 0u) << "libzmq does not count";

  bus::Subscriber subscriber("inproc://native-bus-test-auto", {"a."});
  EXPECT_TRUE(subscriber.status().ok()) << subscriber.status().message();
  EXPECT_TRUE(subscriber.Subscribe("b.").ok());
}

}  // namespace
}  // namespace plantd::client

#include "transport/zap_handler.h"

#include <gtest/gtest.h>
#include <zmq.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "common/refusal.h"

namespace plantd::transport {
namespace {

using std::chrono::milliseconds;

// Long enough for a loopback CURVE handshake on a loaded machine; the
// negative tests wait kQuiet for something that must not happen.
constexpr milliseconds kArrives{3000};
constexpr milliseconds kQuiet{500};

struct Keys {
  std::string public_z85;
  std::string secret_z85;
  std::string public_raw;  // what the ZAP request carries
};

Keys MakeKeys() {
  char public_key[41];
  char secret_key[41];
  EXPECT_EQ(zmq_curve_keypair(public_key, secret_key), 0);
  std::string raw(32, '\0');
  EXPECT_NE(zmq_z85_decode(reinterpret_cast<uint8_t*>(raw.data()), public_key), nullptr);
  return {public_key, secret_key, raw};
}

// What the handler thread saw, read by the test thread.
struct Seen {
  std::mutex mutex;
  std::vector<std::string> mechanisms;
  std::vector<size_t> key_sizes;

  void Add(std::string_view mechanism, std::string_view key) {
    std::lock_guard<std::mutex> lock(mutex);
    mechanisms.emplace_back(mechanism);
    key_sizes.push_back(key.size());
  }
  std::vector<std::string> Mechanisms() {
    std::lock_guard<std::mutex> lock(mutex);
    return mechanisms;
  }
};

std::unique_ptr<ZapHandler> StartOrDie(zmq::context_t& context, ZapHandler::Authorize authorize) {
  auto handler = ZapHandler::Start(context, std::move(authorize));
  EXPECT_TRUE(handler.ok()) << handler.status().message();
  return handler.ok() ? std::move(handler.value()) : nullptr;
}

// A ROUTER that asks ZAP, on a free loopback port; `curve` makes it a
// CURVE server with `server` keys, else it speaks NULL.
zmq::socket_t BindServer(zmq::context_t& context, const Keys* server, std::string* endpoint) {
  zmq::socket_t socket(context, zmq::socket_type::router);
  socket.set(zmq::sockopt::linger, 0);
  socket.set(zmq::sockopt::zap_domain, "plantd-test");
  if (server != nullptr) {
    socket.set(zmq::sockopt::curve_server, 1);
    socket.set(zmq::sockopt::curve_secretkey, server->secret_z85);
  }
  socket.bind("tcp://127.0.0.1:0");
  *endpoint = socket.get(zmq::sockopt::last_endpoint);
  return socket;
}

zmq::socket_t ConnectClient(zmq::context_t& context, const std::string& endpoint,
                            const Keys* server, const Keys* client) {
  zmq::socket_t socket(context, zmq::socket_type::dealer);
  socket.set(zmq::sockopt::linger, 0);
  if (server != nullptr) {
    socket.set(zmq::sockopt::curve_serverkey, server->public_z85);
    socket.set(zmq::sockopt::curve_publickey, client->public_z85);
    socket.set(zmq::sockopt::curve_secretkey, client->secret_z85);
  }
  socket.connect(endpoint);
  return socket;
}

// The payload frame of the next message the ROUTER gets within `wait`, or
// nothing.
std::optional<zmq::message_t> ReceivePayload(zmq::socket_t& server, milliseconds wait) {
  server.set(zmq::sockopt::rcvtimeo, static_cast<int>(wait.count()));
  zmq::message_t id;
  if (!server.recv(id)) return std::nullopt;
  zmq::message_t payload;
  if (!id.more() || !server.recv(payload)) return std::nullopt;
  return payload;
}

// Polls `done` every 10 ms for at most `limit`.
template <typename Done>
bool WaitFor(Done done, milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return true;
}

// Sends a hand-made request through a REQ and returns the reply frames (the
// REQ strips the envelope), empty if none came within kArrives.
std::vector<std::string> Ask(zmq::context_t& context, const std::vector<std::string>& request) {
  zmq::socket_t req(context, zmq::socket_type::req);
  req.set(zmq::sockopt::linger, 0);
  req.set(zmq::sockopt::rcvtimeo, static_cast<int>(kArrives.count()));
  req.connect(ZapHandler::kEndpoint);
  for (size_t i = 0; i < request.size(); ++i) {
    const auto flags = i + 1 < request.size() ? zmq::send_flags::sndmore : zmq::send_flags::none;
    EXPECT_TRUE(req.send(zmq::buffer(request[i]), flags));
  }
  std::vector<std::string> reply;
  for (size_t i = 0; i < 16; ++i) {
    zmq::message_t frame;
    if (!req.recv(frame)) return {};
    reply.push_back(frame.to_string());
    if (!frame.more()) break;
  }
  return reply;
}

TEST(ZapHandlerTest, AuthorizedCurveClientArrivesWithItsUserId) {
  zmq::context_t context;
  const Keys server_keys = MakeKeys();
  const Keys alice = MakeKeys();
  Seen seen;
  auto handler = StartOrDie(
      context, [&](std::string_view mechanism, std::string_view key, std::string* user_id) {
        seen.Add(mechanism, key);
        if (key != alice.public_raw) return false;
        *user_id = "alice";
        return true;
      });
  ASSERT_NE(handler, nullptr);
  std::string endpoint;
  zmq::socket_t server = BindServer(context, &server_keys, &endpoint);
  zmq::socket_t client = ConnectClient(context, endpoint, &server_keys, &alice);

  ASSERT_TRUE(client.send(zmq::str_buffer("hello"), zmq::send_flags::none));
  std::optional<zmq::message_t> payload = ReceivePayload(server, kArrives);
  ASSERT_TRUE(payload.has_value());
  EXPECT_EQ(payload->to_string(), "hello");
  const char* user_id = zmq_msg_gets(payload->handle(), "User-Id");
  ASSERT_NE(user_id, nullptr);
  EXPECT_STREQ(user_id, "alice");
  EXPECT_EQ(handler->accepted(), 1u);
  EXPECT_EQ(handler->denied(), 0u);
  EXPECT_EQ(seen.Mechanisms(), std::vector<std::string>{"CURVE"});
  std::lock_guard<std::mutex> lock(seen.mutex);
  EXPECT_EQ(seen.key_sizes, std::vector<size_t>{32});
}

TEST(ZapHandlerTest, UnauthorizedCurveClientNeverArrivesAndIsCounted) {
  zmq::context_t context;
  const Keys server_keys = MakeKeys();
  const Keys alice = MakeKeys();
  const Keys mallory = MakeKeys();
  auto handler = StartOrDie(context, [&](std::string_view, std::string_view key, std::string*) {
    return key == alice.public_raw;
  });
  ASSERT_NE(handler, nullptr);
  const uint64_t refused_before = refusal::Total(refusal::Reason::kUnauthorizedKey);
  std::string endpoint;
  zmq::socket_t server = BindServer(context, &server_keys, &endpoint);
  zmq::socket_t client = ConnectClient(context, endpoint, &server_keys, &mallory);

  ASSERT_TRUE(client.send(zmq::str_buffer("let me in"), zmq::send_flags::dontwait));
  EXPECT_FALSE(ReceivePayload(server, kQuiet).has_value());
  EXPECT_TRUE(WaitFor([&] { return handler->denied() >= 1; }, kArrives));
  EXPECT_EQ(handler->accepted(), 0u);
  EXPECT_GE(refusal::Total(refusal::Reason::kUnauthorizedKey), refused_before + 1);
}

TEST(ZapHandlerTest, NullMechanismWithDomainIsAskedAndTheAnswerDecides) {
  for (const bool allow : {true, false}) {
    SCOPED_TRACE(allow ? "allowed" : "denied");
    zmq::context_t context;
    Seen seen;
    auto handler = StartOrDie(
        context, [&](std::string_view mechanism, std::string_view key, std::string* user_id) {
          seen.Add(mechanism, key);
          *user_id = "anonymous";
          return allow;
        });
    ASSERT_NE(handler, nullptr);
    std::string endpoint;
    zmq::socket_t server = BindServer(context, nullptr, &endpoint);
    zmq::socket_t client = ConnectClient(context, endpoint, nullptr, nullptr);

    ASSERT_TRUE(client.send(zmq::str_buffer("plain"), zmq::send_flags::dontwait));
    std::optional<zmq::message_t> payload = ReceivePayload(server, allow ? kArrives : kQuiet);
    EXPECT_EQ(payload.has_value(), allow);
    EXPECT_TRUE(WaitFor([&] { return !seen.Mechanisms().empty(); }, kArrives));
    const std::vector<std::string> mechanisms = seen.Mechanisms();
    ASSERT_FALSE(mechanisms.empty());
    EXPECT_EQ(mechanisms.front(), "NULL");
    {
      std::lock_guard<std::mutex> lock(seen.mutex);
      EXPECT_EQ(seen.key_sizes.front(), 0u);
    }
    if (allow) {
      EXPECT_EQ(handler->accepted(), 1u);
    } else {
      EXPECT_GE(handler->denied(), 1u);
      EXPECT_EQ(handler->accepted(), 0u);
    }
  }
}

TEST(ZapHandlerTest, WrongVersionIsAnswered500WithTheSameRequestId) {
  zmq::context_t context;
  bool asked = false;  // written on the handler thread; read after join
  auto handler = StartOrDie(context, [&](std::string_view, std::string_view, std::string*) {
    asked = true;
    return true;
  });
  ASSERT_NE(handler, nullptr);
  const std::vector<std::string> reply = Ask(context, {"2.0", "7", "d", "127.0.0.1", "", "NULL"});
  ASSERT_EQ(reply.size(), 6u);
  EXPECT_EQ(reply[0], "1.0");
  EXPECT_EQ(reply[1], "7");
  EXPECT_EQ(reply[2], "500");
  EXPECT_FALSE(reply[3].empty());
  EXPECT_EQ(reply[4], "");
  EXPECT_EQ(handler->malformed(), 1u);
  handler.reset();
  EXPECT_FALSE(asked);
}

TEST(ZapHandlerTest, MissingFramesAndBadCredentialsAreAnswered500) {
  zmq::context_t context;
  auto handler =
      StartOrDie(context, [](std::string_view, std::string_view, std::string*) { return true; });
  ASSERT_NE(handler, nullptr);
  const std::vector<std::vector<std::string>> requests = {
      {"1.0", "8", "d"},                                       // no mechanism
      {"1.0", "9", "d", "127.0.0.1", "", "CURVE", "short"},    // key not 32 bytes
      {"1.0", "10", "d", "127.0.0.1", "", "CURVE"},            // no key
      {"1.0", "11", "d", "127.0.0.1", "", "NULL", "surplus"},  // NULL has none
  };
  for (const auto& request : requests) {
    SCOPED_TRACE(request[1]);
    const std::vector<std::string> reply = Ask(context, request);
    ASSERT_EQ(reply.size(), 6u);
    EXPECT_EQ(reply[1], request[1]);
    EXPECT_EQ(reply[2], "500");
  }
  EXPECT_EQ(handler->malformed(), requests.size());
  EXPECT_EQ(handler->accepted(), 0u);
}

TEST(ZapHandlerTest, UnsupportedMechanismIsDenied) {
  zmq::context_t context;
  auto handler =
      StartOrDie(context, [](std::string_view, std::string_view, std::string*) { return true; });
  ASSERT_NE(handler, nullptr);
  const std::vector<std::string> reply =
      Ask(context, {"1.0", "3", "d", "127.0.0.1", "", "PLAIN", "user", "password"});
  ASSERT_EQ(reply.size(), 6u);
  EXPECT_EQ(reply[2], "400");
  EXPECT_EQ(handler->denied(), 1u);
}

TEST(ZapHandlerTest, RequestWithoutEnvelopeIsDroppedAndCounted) {
  zmq::context_t context;
  auto handler =
      StartOrDie(context, [](std::string_view, std::string_view, std::string*) { return true; });
  ASSERT_NE(handler, nullptr);
  // A DEALER adds no empty delimiter, so there is no request to answer.
  zmq::socket_t dealer(context, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.set(zmq::sockopt::rcvtimeo, static_cast<int>(kQuiet.count()));
  dealer.connect(ZapHandler::kEndpoint);
  ASSERT_TRUE(dealer.send(zmq::str_buffer("1.0"), zmq::send_flags::sndmore));
  ASSERT_TRUE(dealer.send(zmq::str_buffer("12"), zmq::send_flags::none));
  EXPECT_TRUE(WaitFor([&] { return handler->malformed() == 1; }, kArrives));
  zmq::message_t frame;
  EXPECT_FALSE(dealer.recv(frame).has_value());
}

TEST(ZapHandlerTest, SecondHandlerInTheSameContextFailsToStart) {
  zmq::context_t context;
  auto allow = [](std::string_view, std::string_view, std::string*) { return true; };
  auto first = StartOrDie(context, allow);
  ASSERT_NE(first, nullptr);
  auto second = ZapHandler::Start(context, allow);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("zeromq.zap.01"), std::string::npos)
      << second.status().message();
  EXPECT_NE(second.status().message().find("another ZAP handler"), std::string::npos)
      << second.status().message();

  // Once the first is gone the endpoint is free again.
  first.reset();
  auto third = ZapHandler::Start(context, allow);
  EXPECT_TRUE(third.ok()) << third.status().message();
}

TEST(ZapHandlerTest, DestructionStopsTheThreadPromptly) {
  zmq::context_t context;
  auto handler =
      StartOrDie(context, [](std::string_view, std::string_view, std::string*) { return true; });
  ASSERT_NE(handler, nullptr);
  const auto start = std::chrono::steady_clock::now();
  handler.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(300));
}

TEST(ZapHandlerTest, ContextShutdownStopsTheThreadWithoutThrowing) {
  zmq::context_t context;
  auto handler =
      StartOrDie(context, [](std::string_view, std::string_view, std::string*) { return true; });
  ASSERT_NE(handler, nullptr);
  // The handler thread sees ETERM and closes its socket itself, so a
  // context torn down under it does not wait forever for that socket:
  // closing the context (zmq_ctx_term waits for every socket) returns.
  context.shutdown();
  std::atomic<bool> closed{false};
  std::thread closer([&] {
    context.close();
    closed.store(true);
  });
  EXPECT_TRUE(WaitFor([&] { return closed.load(); }, milliseconds(5000)))
      << "the handler did not close its socket when the context shut down";
  const auto start = std::chrono::steady_clock::now();
  handler.reset();  // had the handler kept its socket, this closes it and frees `closer`
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(300));
  closer.join();
}

}  // namespace
}  // namespace plantd::transport

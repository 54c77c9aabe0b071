// CURVE (RFC 26) on the broker's Majordomo endpoints, as an operator sets it
// up: key files in zcert format, the real plantd-broker binary, and
// unmodified libzmq peers with ZMQ_CURVE_* options as clients and workers.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "curve_support.h"
#include "mdp_peers.h"
#include "raw_zmtp.h"
#include "support.h"
#include "transport/zmtp_framing.h"

namespace plantd::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class CurveTest : public ::testing::Test {
 protected:
  CurveTest() {
    std::filesystem::create_directory(keys_.path() + "/clients");
    WriteCertificate(keys_.path(), "broker", server_, /*secret=*/true);
    WriteCertificate(clients(), "worker", worker_keys_, false);
    WriteCertificate(clients(), "client", client_keys_, false);
  }

  std::string clients() const { return keys_.path() + "/clients"; }

  // `buses` is the YAML value of the buses key (none by default).
  std::string Config(const std::string& extra = "", const std::string& buses = "[]") const {
    return "endpoint: " + TcpEndpoint(client_port_) +
           "\nclient_endpoint: " + TcpEndpoint(worker_port_) + "\nbuses: " + buses +
           "\nhealth:\n  port: 0\nstore:\n  enabled: false\n"
           "security:\n  mechanism: curve\n  secret_key_file: " +
           keys_.path() + "/broker_secret\n  authorized_keys_dir: " + clients() + "\n" + extra;
  }

  void StartBroker(const std::string& extra = "", const std::string& buses = "[]") {
    ASSERT_TRUE(broker_.Start({.config_yaml = Config(extra, buses)})) << broker_.Output();
  }

  TempDir keys_;
  const KeyPair server_ = MakeKeyPair();
  const KeyPair worker_keys_ = MakeKeyPair();
  const KeyPair client_keys_ = MakeKeyPair();
  const int client_port_ = FreeTcpPort();
  const int worker_port_ = FreeTcpPort();
  zmq::context_t ctx_;
  BrokerProcess broker_;
};

// RFC 26 end to end: a libzmq CURVE worker and client, whose keys are
// authorized, exchange a request and its reply through the broker.
TEST_F(CurveTest, AuthorizedClientAndWorkerExchangeRequestAndReply) {
  StartBroker();
  RawPeer worker(ctx_, TcpEndpoint(worker_port_), "", CurveClient(worker_keys_, server_));
  worker.Send({"MDPW02", Byte(0x01), "secure"});
  RawPeer client(ctx_, TcpEndpoint(client_port_), "", CurveClient(client_keys_, server_));
  ASSERT_TRUE(WaitUntilRegistered(client, "secure")) << broker_.Output();

  const std::string body(300, 'b');  // a long frame once boxed
  client.Send({"MDPC02", Byte(0x01), "secure", "first", body});
  auto request = worker.RecvSkippingHeartbeats();
  ASSERT_TRUE(request.has_value()) << broker_.Output();
  ASSERT_GE(request->size(), 6u);
  EXPECT_EQ((*request)[1], Byte(0x02));
  EXPECT_EQ((*request)[4], "first");
  EXPECT_EQ((*request)[5], body);
  worker.Send({"MDPW02", Byte(0x04), (*request)[2], "", "done"});
  auto reply = client.Recv();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(*reply, (Frames{"MDPC02", Byte(0x03), "secure", "done"}));
}

// Every dialect the broker speaks works the same inside CURVE boxes: a
// libzmq CURVE worker and client of each exchange a PARTIAL and a FINAL.
class CurveDialectTest : public CurveTest, public ::testing::WithParamInterface<Dialect> {};

TEST_P(CurveDialectTest, WorkerAndClientOfTheDialectExchangeRepliesThroughCurve) {
  StartBroker();
  const Dialect dialect = GetParam();
  TestWorker worker(ctx_, TcpEndpoint(worker_port_), dialect, "",
                    CurveClient(worker_keys_, server_));
  worker.Ready("secure.dialect");
  RawPeer probe(ctx_, TcpEndpoint(client_port_), "", CurveClient(client_keys_, server_));
  ASSERT_TRUE(WaitUntilRegistered(probe, "secure.dialect")) << broker_.Output();
  TestClient client(ctx_, TcpEndpoint(client_port_), dialect, CurveClient(client_keys_, server_));
  client.Request("secure.dialect", {"setpoint", "42"});
  auto request = worker.Receive();
  ASSERT_TRUE(request.has_value()) << broker_.Output();
  EXPECT_EQ(request->body, (Frames{"setpoint", "42"}));
  if (dialect != Dialect::kMdp01) {  // 7/MDP (0.1) has no PARTIAL
    worker.Partial(request->address, {"working"});
    auto partial = client.Receive();
    ASSERT_TRUE(partial.has_value()) << broker_.Output();
    EXPECT_FALSE(partial->final);
    EXPECT_EQ(partial->body, Frames{"working"});
  }
  worker.Final(request->address, {"done"});
  auto reply = client.Receive();
  ASSERT_TRUE(reply.has_value()) << broker_.Output();
  EXPECT_TRUE(reply->final);
  EXPECT_EQ(reply->body, Frames{"done"});
}

INSTANTIATE_TEST_SUITE_P(AllDialects, CurveDialectTest,
                         ::testing::Values(Dialect::kMdp01, Dialect::kMdp02, Dialect::kPlantd,
                                           Dialect::kMajortomo),
                         [](const auto& info) { return std::string(Name(info.param)); });

// RFC 26 with an access list: a client whose key is not authorized is
// told ERROR 400 (libzmq reports an authentication failure and does not
// retry), gets no traffic through, and the refusal is counted and logged
// with its key.
TEST_F(CurveTest, UnknownClientKeyIsRefusedAndNamed) {
  StartBroker();
  const KeyPair stranger = MakeKeyPair();
  RawPeer client(ctx_, TcpEndpoint(client_port_), "", [&](zmq::socket_t& socket) {
    CurveClient(stranger, server_)(socket);
    ASSERT_EQ(zmq_socket_monitor(socket.handle(), "inproc://stranger-monitor",
                                 ZMQ_EVENT_HANDSHAKE_FAILED_AUTH),
              0);
  });
  zmq::socket_t monitor(ctx_, zmq::socket_type::pair);
  monitor.set(zmq::sockopt::rcvtimeo, 5000);
  monitor.connect("inproc://stranger-monitor");
  zmq::message_t event;
  ASSERT_TRUE(monitor.recv(event)) << "no authentication failure reported\n" << broker_.Output();
  uint16_t event_id = 0;
  std::memcpy(&event_id, event.data(), sizeof(event_id));
  EXPECT_EQ(event_id, ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
  zmq::message_t address;
  (void)monitor.recv(address);

  client.Send({"MDPC02", Byte(0x01), "mmi.service", "anything"});
  EXPECT_FALSE(client.Recv(300ms).has_value());
  EXPECT_TRUE(broker_.WaitForOutput("unauthorized_key", 5s)) << broker_.Output();
  EXPECT_TRUE(broker_.WaitForOutput(stranger.public_z85, 1s)) << "the refusal names the key\n"
                                                              << broker_.Output();
}

// A refusal after the CURVE handshake (here a second connection claiming a
// live routing id) ends with an ERROR inside a MESSAGE box: after READY a
// libzmq peer opens every frame as a box, and would report a clear ERROR
// as a protocol failure (a broken box) instead of being told and closed.
TEST_F(CurveTest, ErrorAfterTheHandshakeTravelsBoxed) {
  StartBroker();
  auto set_identity = [&](zmq::socket_t& socket) {
    socket.set(zmq::sockopt::routing_id, "twin");
    CurveClient(client_keys_, server_)(socket);
  };
  RawPeer first(ctx_, TcpEndpoint(client_port_), "", set_identity);
  first.Send({"MDPC02", Byte(0x01), "mmi.service", "x"});
  ASSERT_TRUE(first.Recv().has_value()) << broker_.Output();

  RawPeer second(ctx_, TcpEndpoint(client_port_), "", [&](zmq::socket_t& socket) {
    set_identity(socket);
    ASSERT_EQ(zmq_socket_monitor(socket.handle(), "inproc://twin-monitor",
                                 ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_DISCONNECTED),
              0);
  });
  zmq::socket_t monitor(ctx_, zmq::socket_type::pair);
  monitor.set(zmq::sockopt::rcvtimeo, 5000);
  monitor.connect("inproc://twin-monitor");
  zmq::message_t event;
  ASSERT_TRUE(monitor.recv(event)) << "the second connection was not closed\n"
                                   << broker_.Output();
  uint16_t event_id = 0;
  std::memcpy(&event_id, event.data(), sizeof(event_id));
  EXPECT_EQ(event_id, ZMQ_EVENT_DISCONNECTED)
      << "libzmq reported a protocol failure: the ERROR was not boxed";
  zmq::message_t address;
  (void)monitor.recv(address);
  EXPECT_TRUE(broker_.WaitForOutput("duplicate_identity", 5s)) << broker_.Output();
}

// transport: zmq serves CURVE through libzmq and the broker's ZAP handler:
// the same authorized peers get through, a stranger is refused with 400.
TEST_F(CurveTest, ZmqTransportServesCurveThroughTheZapHandler) {
  StartBroker("transport: zmq\n");
  RawPeer worker(ctx_, TcpEndpoint(worker_port_), "", CurveClient(worker_keys_, server_));
  worker.Send({"MDPW02", Byte(0x01), "secure"});
  RawPeer client(ctx_, TcpEndpoint(client_port_), "", CurveClient(client_keys_, server_));
  ASSERT_TRUE(WaitUntilRegistered(client, "secure")) << broker_.Output();
  client.Send({"MDPC02", Byte(0x01), "secure", "ping"});
  auto request = worker.RecvSkippingHeartbeats();
  ASSERT_TRUE(request.has_value()) << broker_.Output();
  ASSERT_GE(request->size(), 5u);
  worker.Send({"MDPW02", Byte(0x04), (*request)[2], "", "pong"});
  auto reply = client.Recv();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(*reply, (Frames{"MDPC02", Byte(0x03), "secure", "pong"}));

  const KeyPair stranger = MakeKeyPair();
  RawPeer intruder(ctx_, TcpEndpoint(client_port_), "", CurveClient(stranger, server_));
  intruder.Send({"MDPC02", Byte(0x01), "mmi.service", "secure"});
  EXPECT_FALSE(intruder.Recv(500ms).has_value());
  EXPECT_TRUE(broker_.WaitForOutput("zap: client refused", 5s)) << broker_.Output();
}

// security.authorized_keys lists clients in the configuration itself
// ("KEY NAME"), with no certificate directory: they get in under their
// names, a stranger does not, and a SIGHUP after a key is taken out of the
// file closes that key's connection.
TEST_F(CurveTest, KeysListedInTheConfigurationAreAuthorizedAndReloaded) {
  auto config = [&](bool with_worker) {
    std::string yaml = "endpoint: " + TcpEndpoint(client_port_) +
                       "\nclient_endpoint: " + TcpEndpoint(worker_port_) +
                       "\nbuses: []\nhealth:\n  port: 0\nstore:\n  enabled: false\n"
                       "log:\n  level: info\nsecurity:\n  mechanism: curve\n  secret_key_file: " +
                       keys_.path() + "/broker_secret\n  authorized_keys:\n    - \"" +
                       client_keys_.public_z85 + " operator\"\n";
    if (with_worker) yaml += "    - \"" + worker_keys_.public_z85 + " valve-driver\"\n";
    return keys_.Write("broker.yaml", yaml);
  };
  const std::string path = config(true);
  ASSERT_TRUE(broker_.Start({.args = {"--config", path}})) << broker_.Output();
  EXPECT_EQ(broker_.Output().find("any client key is let in"), std::string::npos)
      << broker_.Output();

  RawPeer worker(ctx_, TcpEndpoint(worker_port_), "", CurveClient(worker_keys_, server_));
  worker.Send({"MDPW02", Byte(0x01), "listed"});
  RawPeer client(ctx_, TcpEndpoint(client_port_), "",
                 WithoutReconnect(CurveClient(client_keys_, server_)));
  ASSERT_TRUE(WaitUntilRegistered(client, "listed")) << broker_.Output();
  client.Send({"MDPC02", Byte(0x01), "listed", "open"});
  auto request = worker.RecvSkippingHeartbeats();
  ASSERT_TRUE(request.has_value()) << broker_.Output();
  ASSERT_GE(request->size(), 5u);
  worker.Send({"MDPW02", Byte(0x04), (*request)[2], "", "opened"});
  EXPECT_EQ(client.Recv(), (Frames{"MDPC02", Byte(0x03), "listed", "opened"}));

  const KeyPair stranger = MakeKeyPair();
  RawPeer intruder(ctx_, TcpEndpoint(client_port_), "", CurveClient(stranger, server_));
  intruder.Send({"MDPC02", Byte(0x01), "mmi.service", "listed"});
  EXPECT_FALSE(intruder.Recv(500ms).has_value());
  EXPECT_TRUE(broker_.WaitForOutput("unauthorized_key", 5s)) << broker_.Output();

  config(false);
  broker_.Signal(SIGHUP);
  ASSERT_TRUE(broker_.WaitForOutput("its key is no longer authorized", 5s)) << broker_.Output();
  EXPECT_TRUE(broker_.WaitForOutput("valve-driver", 1s)) << "the closed key is named\n"
                                                         << broker_.Output();
  EXPECT_TRUE(broker_.WaitForOutput("security.authorized_keys", 5s)) << broker_.Output();
  client.Send({"MDPC02", Byte(0x01), "mmi.service", "x"});
  EXPECT_EQ(client.Recv(), (Frames{"MDPC02", Byte(0x03), "mmi.service", "404"}))
      << "the key still listed keeps its connection";
}

// A client with the wrong server key cannot open HELLO's box: nothing
// passes, and the broker says so (handshake_failed).
TEST_F(CurveTest, ClientWithTheWrongServerKeyGetsNothingThrough) {
  StartBroker();
  const KeyPair impostor = MakeKeyPair();
  RawPeer client(ctx_, TcpEndpoint(client_port_), "", CurveClient(client_keys_, impostor));
  client.Send({"MDPC02", Byte(0x01), "mmi.service", "anything"});
  EXPECT_FALSE(client.Recv(500ms).has_value());
  EXPECT_TRUE(broker_.WaitForOutput("HELLO's box does not open", 5s)) << broker_.Output();
}

// RFC 23: a peer that speaks another mechanism (here NULL, no keys at all)
// is refused at the greeting; it never reaches the broker core.
TEST_F(CurveTest, NullPeerIsRefusedAtTheGreeting) {
  StartBroker();
  // A libzmq NULL client sees our CURVE greeting and gives up itself.
  RawPeer client(ctx_, TcpEndpoint(client_port_));
  client.Send({"MDPC02", Byte(0x01), "mmi.service", "anything"});
  EXPECT_FALSE(client.Recv(500ms).has_value());
  // One that sends its whole NULL greeting is told off by the broker.
  const int fd = RawConnect(client_port_);
  ASSERT_GE(fd, 0);
  std::string greeting;
  transport::zmtp::AppendGreeting(greeting);
  ASSERT_TRUE(SendAll(fd, greeting));
  EXPECT_TRUE(ReadUntilClosed(fd, 5s)) << "the broker closes the connection";
  ::close(fd);
  EXPECT_TRUE(broker_.WaitForOutput("handshake_failed", 5s)) << broker_.Output();
  EXPECT_TRUE(broker_.WaitForOutput("not the one this endpoint requires", 1s)) << broker_.Output();
}

// SIGHUP rereads authorized_keys_dir: a worker whose key was removed is
// disconnected (key_revoked) and cannot come back, while a client whose key
// stayed keeps its connection.
TEST_F(CurveTest, SighupClosesConnectionsWhoseKeyWasRemoved) {
  StartBroker("log:\n  level: info\n");
  RawPeer worker(ctx_, TcpEndpoint(worker_port_), "", CurveClient(worker_keys_, server_));
  worker.Send({"MDPW02", Byte(0x01), "revoked"});
  RawPeer client(ctx_, TcpEndpoint(client_port_), "",
                 WithoutReconnect(CurveClient(client_keys_, server_)));
  ASSERT_TRUE(WaitUntilRegistered(client, "revoked")) << broker_.Output();

  std::filesystem::remove(clients() + "/worker");
  broker_.Signal(SIGHUP);
  ASSERT_TRUE(broker_.WaitForOutput("its key is no longer authorized", 5s)) << broker_.Output();
  // The worker's connection closed, so the broker forgot it at once; the
  // client's stayed, so it can still ask.
  const auto deadline = Clock::now() + 5s;
  bool gone = false;
  while (!gone && Clock::now() < deadline) {
    client.Send({"MDPC02", Byte(0x01), "mmi.service", "revoked"});
    auto answer = client.Recv(1s);
    ASSERT_TRUE(answer.has_value()) << "the client with a kept key lost its connection";
    gone = answer->back() == "404";
    if (!gone) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(gone) << broker_.Output();
  // Coming back with the removed key is refused.
  RawPeer again(ctx_, TcpEndpoint(worker_port_), "", CurveClient(worker_keys_, server_));
  again.Send({"MDPW02", Byte(0x01), "revoked"});
  EXPECT_TRUE(broker_.WaitForOutput("unauthorized_key", 5s)) << broker_.Output();
  client.Send({"MDPC02", Byte(0x01), "mmi.service", "revoked"});
  auto answer = client.Recv(1s);
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->back(), "404");
}

// A bus under CURVE: its frontend (the broker's own ZMTP) and its backend
// (a libzmq XSUB, checked through the broker's ZAP handler) take only
// authorized keys; an authorized publisher reaches an authorized
// subscriber, and a stranger's publisher and subscriber get nothing.
TEST_F(CurveTest, BusPublishersAndSubscribersNeedAuthorizedKeys) {
  const int backend = FreeTcpPort();
  const int frontend = FreeTcpPort();
  StartBroker("", "\n  - name: data\n    backend: " + TcpEndpoint(backend) +
                      "\n    frontend: " + TcpEndpoint(frontend));
  const KeyPair stranger = MakeKeyPair();
  auto subscriber = [&](const KeyPair& keys) {
    auto sub = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::sub);
    sub->set(zmq::sockopt::linger, 0);
    CurveClient(keys, server_)(*sub);
    sub->set(zmq::sockopt::subscribe, "");
    sub->connect(TcpEndpoint(frontend));
    return sub;
  };
  auto publisher = [&](const KeyPair& keys) {
    auto pub = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::pub);
    pub->set(zmq::sockopt::linger, 0);
    CurveClient(keys, server_)(*pub);
    pub->connect(TcpEndpoint(backend));
    return pub;
  };
  auto good_sub = subscriber(client_keys_);
  auto bad_sub = subscriber(stranger);
  auto good_pub = publisher(worker_keys_);
  auto bad_pub = publisher(stranger);

  // Publish until the authorized subscriber hears the authorized publisher
  // (subscriptions take a moment to travel), bounded.
  bool heard = false;
  const auto deadline = Clock::now() + 5s;
  while (!heard && Clock::now() < deadline) {
    (void)bad_pub->send(zmq::str_buffer("stranger"), zmq::send_flags::dontwait);
    (void)good_pub->send(zmq::str_buffer("plant.temp 21.5"), zmq::send_flags::dontwait);
    zmq::pollitem_t item{good_sub->handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, 50ms) > 0) {
      zmq::message_t message;
      ASSERT_TRUE(good_sub->recv(message));
      EXPECT_EQ(message.to_string(), "plant.temp 21.5") << "only the authorized publisher gets in";
      heard = true;
    }
  }
  EXPECT_TRUE(heard) << broker_.Output();
  zmq::pollitem_t item{bad_sub->handle(), 0, ZMQ_POLLIN, 0};
  EXPECT_EQ(zmq::poll(&item, 1, 200ms), 0) << "the stranger's subscription hears nothing";
  // The frontend and the backend (both native) refused the stranger's
  // subscriber and publisher in their handshakes.
  EXPECT_TRUE(broker_.WaitForOutput("unauthorized_key", 5s)) << broker_.Output();
}

// Secrets hygiene (issue 16): over a whole exchange at trace level, with
// CURVE, a worker, a client, a bus and a refused stranger, the broker's log
// holds neither a message body nor any secret key (its own, or a peer's).
TEST_F(CurveTest, NoBodyOrSecretKeyInTheLogAtTraceLevel) {
  const int backend = FreeTcpPort();
  const int frontend = FreeTcpPort();
  StartBroker("log:\n  level: trace\n  format: json\n",
              "\n  - name: data\n    backend: " + TcpEndpoint(backend) +
                  "\n    frontend: " + TcpEndpoint(frontend));
  const std::string body = "body-4f1d9c2e-never-logged";
  RawPeer worker(ctx_, TcpEndpoint(worker_port_), "", CurveClient(worker_keys_, server_));
  worker.Send({"MDPW02", Byte(0x01), "hygiene"});
  RawPeer client(ctx_, TcpEndpoint(client_port_), "", CurveClient(client_keys_, server_));
  ASSERT_TRUE(WaitUntilRegistered(client, "hygiene")) << broker_.Output();
  client.Send({"MDPC02", Byte(0x01), "hygiene", body});
  auto request = worker.RecvSkippingHeartbeats();
  ASSERT_TRUE(request.has_value()) << broker_.Output();
  worker.Send({"MDPW02", Byte(0x04), (*request)[2], "", body + "-reply"});
  ASSERT_TRUE(client.Recv().has_value());
  // A request for a service nobody serves, and an oversized one.
  client.Send({"MDPC02", Byte(0x01), "nobody", body});
  const KeyPair stranger = MakeKeyPair();
  RawPeer intruder(ctx_, TcpEndpoint(client_port_), "", CurveClient(stranger, server_));
  intruder.Send({"MDPC02", Byte(0x01), "hygiene", body});
  zmq::socket_t pub(ctx_, zmq::socket_type::pub);
  pub.set(zmq::sockopt::linger, 0);
  CurveClient(worker_keys_, server_)(pub);
  pub.connect(TcpEndpoint(backend));
  for (int i = 0; i < 20; ++i) {
    (void)pub.send(zmq::buffer("topic " + body), zmq::send_flags::dontwait);
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(broker_.WaitForOutput("unauthorized_key", 5s)) << broker_.Output();
  broker_.Stop();
  const std::string log = broker_.Output();
  // The broker writes nothing at trace itself; debug is the most it says,
  // and it is on.
  EXPECT_NE(log.find("\"level\":\"debug\""), std::string::npos) << log;
  EXPECT_EQ(log.find(body), std::string::npos) << log;
  for (const KeyPair* keys : {&server_, &worker_keys_, &client_keys_, &stranger}) {
    EXPECT_EQ(log.find(keys->secret_z85), std::string::npos) << log;
  }
}

// A secret certificate that group or others may read is refused at start,
// as ssh refuses such a private key: the error names the file and the fix.
TEST_F(CurveTest, SecretKeyFileReadableByOthersIsRefusedAtStart) {
  ::chmod((keys_.path() + "/broker_secret").c_str(), 0644);
  BrokerProcess broker;
  EXPECT_FALSE(broker.Start({.config_yaml = Config()}));
  const std::string output = broker.Output();
  EXPECT_NE(output.find("security.secret_key_file"), std::string::npos) << output;
  EXPECT_NE(output.find("chmod 600"), std::string::npos) << output;
  EXPECT_EQ(output.find(server_.secret_z85), std::string::npos) << "the secret is never printed";
}

// The value of `key = "..."` in a certificate file.
std::string CertificateValue(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const size_t at = line.find(key + " = \"");
    if (at == std::string::npos) continue;
    const size_t from = at + key.size() + 4;
    return line.substr(from, line.find('"', from) - from);
  }
  return {};
}

// `plantd-mdp keygen` writes certificates the broker reads (its secret one
// with mode 0600) and whose keys libzmq peers use as they are.
TEST(CurveKeygen, CertificatesFromKeygenWorkEndToEnd) {
  TempDir dir;
  std::filesystem::create_directory(dir.path() + "/clients");
  RunResult broker_keys = RunProgram("plantd-mdp", {"keygen", dir.path() + "/broker"});
  ASSERT_EQ(broker_keys.status, 0) << broker_keys.output;
  RunResult client_keys = RunProgram("plantd-mdp", {"keygen", dir.path() + "/clients/operator"});
  ASSERT_EQ(client_keys.status, 0) << client_keys.output;
  struct stat secret {};
  ASSERT_EQ(::stat((dir.path() + "/broker_secret").c_str(), &secret), 0);
  EXPECT_EQ(secret.st_mode & 0777, 0600u);
  EXPECT_EQ(RunProgram("plantd-mdp", {"keygen", dir.path() + "/broker"}).status == 0, false)
      << "an existing key pair is never overwritten";
  // The client's secret certificate stays out of the authorized directory.
  std::filesystem::rename(dir.path() + "/clients/operator_secret", dir.path() + "/operator_secret");

  const int port = FreeTcpPort();
  BrokerProcess broker;
  ASSERT_TRUE(broker.Start(
      {.config_yaml =
           "endpoint: " + TcpEndpoint(port) + "\nclient_endpoint: " + TcpEndpoint(FreeTcpPort()) +
           "\nbuses: []\nhealth:\n  port: 0\nstore:\n  enabled: false\n"
           "security:\n  mechanism: curve\n  secret_key_file: " +
           dir.path() + "/broker_secret\n  authorized_keys_dir: " + dir.path() + "/clients\n"}))
      << broker.Output();
  const KeyPair server{CertificateValue(dir.path() + "/broker", "public-key"), ""};
  const KeyPair client{CertificateValue(dir.path() + "/operator_secret", "public-key"),
                       CertificateValue(dir.path() + "/operator_secret", "secret-key")};
  ASSERT_EQ(server.public_z85.size(), 40u);
  ASSERT_EQ(client.secret_z85.size(), 40u);
  zmq::context_t ctx;
  RawPeer peer(ctx, TcpEndpoint(port), "", CurveClient(client, server));
  peer.Send({"MDPC02", Byte(0x01), "mmi.service", "nothing"});
  auto answer = peer.Recv();
  ASSERT_TRUE(answer.has_value()) << broker.Output();
  EXPECT_EQ(answer->back(), "404");
}

// curve without a secret certificate is a configuration error, found before
// anything is bound.
TEST(CurveConfig, CurveWithoutASecretKeyFileIsAConfigError) {
  RunResult r = RunBroker({"--check-config", "--security-mechanism", "curve"});
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("security.secret_key_file"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace plantd::test

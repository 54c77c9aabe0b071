// Access control by CURVE key (security.acl_file), as an operator sets it
// up: key files in zcert format, an ACL file, the real plantd-broker binary,
// and libzmq CURVE peers (raw sockets and libplantd) as clients, workers,
// publishers and subscribers.
#include <gtest/gtest.h>
#include <signal.h>
#include <zmq.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "curve_support.h"
#include "http_client.h"
#include "plantd/curve.h"
#include "plantd/mdp/client.h"
#include "plantd/mdp/titanic_client.h"
#include "plantd/mdp/worker.h"
#include "support.h"

namespace plantd::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Operators may call the plant's services and MMI; the driver may serve
// one service; "observer" is authorized but named by no rule.
constexpr const char* kRules = R"(groups:
  operators: [client]
rules:
  - peers: ["@operators"]
    call: ["plant.*", "mmi.*", "titanic.*"]
  - peers: [worker]
    serve: [plant.valve]
    publish: {data: ["plant."]}
  - peers: [client]
    subscribe: {data: ["plant."]}
)";

class AccessControlTest : public ::testing::Test {
 protected:
  AccessControlTest() {
    std::filesystem::create_directory(keys_.path() + "/clients");
    WriteCertificate(keys_.path(), "broker", server_, /*secret=*/true);
    WriteCertificate(keys_.path(), "broker", server_, /*secret=*/false);
    WriteCertificate(clients(), "worker", worker_keys_, false);
    WriteCertificate(clients(), "client", client_keys_, false);
    WriteCertificate(clients(), "observer", observer_keys_, false);
    WriteCertificate(keys_.path(), "client", client_keys_, true);
    acl_file_ = keys_.Write("acl.yaml", kRules);
  }

  std::string clients() const { return keys_.path() + "/clients"; }

  void StartBroker(const std::string& extra = "", const std::string& buses = "[]") {
    const std::string config =
        "endpoint: " + TcpEndpoint(client_port_) +
        "\nclient_endpoint: " + TcpEndpoint(worker_port_) + "\nbuses: " + buses +
        "\nhealth:\n  port: " + std::to_string(http_port_) + "\nstore:\n  enabled: false\n" +
        "security:\n  mechanism: curve\n  secret_key_file: " + keys_.path() +
        "/broker_secret\n  authorized_keys_dir: " + clients() + "\n  acl_file: " + acl_file_ +
        "\n" + extra;
    ASSERT_TRUE(broker_.Start({.config_yaml = config})) << broker_.Output();
  }

  // A request through a raw libzmq CURVE DEALER; the reply's body.
  std::optional<Frames> Call(const KeyPair& keys, const std::string& service,
                             const Frames& body = {}) {
    RawPeer client(ctx_, TcpEndpoint(client_port_), "", CurveClient(keys, server_));
    Frames request{"MDPC02", Byte(0x01), service};
    request.insert(request.end(), body.begin(), body.end());
    client.Send(request);
    auto reply = client.Recv(3s);
    if (!reply || reply->size() < 3) return std::nullopt;
    return Frames(reply->begin() + 3, reply->end());
  }

  // /status's workers once there are `count` of them (or what there is
  // after 5 s).
  nlohmann::json StatusWorkers(size_t count) {
    nlohmann::json workers;
    const auto deadline = Clock::now() + 5s;
    while (workers.size() != count && Clock::now() < deadline) {
      auto status = HttpGet(http_port_, "/status");
      if (!status.has_value()) break;
      workers = nlohmann::json::parse(status->body)["workers"];
      if (workers.size() != count) std::this_thread::sleep_for(50ms);
    }
    return workers;
  }

  double Refused(const std::string& reason) {
    return MetricValue(http_port_, "plantd_refused_total{reason=\"" + reason + "\"}");
  }

  TempDir keys_;
  const KeyPair server_ = MakeKeyPair();
  const KeyPair worker_keys_ = MakeKeyPair();
  const KeyPair client_keys_ = MakeKeyPair();
  const KeyPair observer_keys_ = MakeKeyPair();
  std::string acl_file_;
  const int client_port_ = FreeTcpPort();
  const int worker_port_ = FreeTcpPort();
  const int http_port_ = FreeTcpPort();
  zmq::context_t ctx_;
  BrokerProcess broker_;
};

// A client may call what a rule grants it and nothing else: the denied
// request gets an error reply it can read (403 denied_call), never silence,
// and the denial is counted and logged with the key's name.
TEST_F(AccessControlTest, ClientMayCallAButNotB) {
  StartBroker("log:\n  format: json\n");
  RawPeer worker(ctx_, TcpEndpoint(worker_port_), "", CurveClient(worker_keys_, server_));
  worker.Send({"MDPW02", Byte(0x01), "plant.valve"});
  RawPeer operator_peer(ctx_, TcpEndpoint(client_port_), "", CurveClient(client_keys_, server_));
  ASSERT_TRUE(WaitUntilRegistered(operator_peer, "plant.valve")) << broker_.Output();

  operator_peer.Send({"MDPC02", Byte(0x01), "plant.valve", "open"});
  auto request = worker.RecvSkippingHeartbeats();
  ASSERT_TRUE(request.has_value()) << broker_.Output();
  ASSERT_GE(request->size(), 5u);
  worker.Send({"MDPW02", Byte(0x04), (*request)[2], "", "opened"});
  auto reply = operator_peer.Recv();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(*reply, (Frames{"MDPC02", Byte(0x03), "plant.valve", "opened"}));

  EXPECT_EQ(Call(client_keys_, "org.plantd.Broker"), (Frames{"403", "denied_call"}));
  EXPECT_EQ(Call(client_keys_, "other.pump", {"start"}), (Frames{"403", "denied_call"}));
  EXPECT_TRUE(broker_.WaitForOutput("denied_call", 5s)) << broker_.Output();
  EXPECT_TRUE(broker_.WaitForOutput("\"peer\":\"client\"", 1s)) << "the log names the key\n"
                                                                << broker_.Output();
  EXPECT_GE(Refused("denied_call"), 2) << broker_.Output();
}

// Default deny: an authorized key that no rule names may do nothing, not
// even ask MMI.
TEST_F(AccessControlTest, KeyNamedByNoRuleIsDeniedEverything) {
  StartBroker();
  EXPECT_EQ(Call(observer_keys_, "mmi.service", {"plant.valve"}), (Frames{"403", "denied_call"}));
  EXPECT_EQ(Call(observer_keys_, "plant.valve"), (Frames{"403", "denied_call"}));
  RawPeer worker(ctx_, TcpEndpoint(worker_port_), "", CurveClient(observer_keys_, server_));
  worker.Send({"MDPW02", Byte(0x01), "plant.valve"});
  auto answer = worker.RecvSkippingHeartbeats(3s);
  ASSERT_TRUE(answer.has_value()) << broker_.Output();
  EXPECT_EQ(*answer, (Frames{"MDPW02", Byte(0x06)})) << "a denied READY gets DISCONNECT";
}

// A worker may serve what a rule grants it: READY for another service gets
// DISCONNECT (18/MDP's answer to a worker the broker will not take), and
// the service stays unserved; the granted one works.
TEST_F(AccessControlTest, WorkerMayServeAButNotB) {
  StartBroker();
  RawPeer rogue(ctx_, TcpEndpoint(worker_port_), "", CurveClient(worker_keys_, server_));
  rogue.Send({"MDPW02", Byte(0x01), "plant.pump"});
  auto answer = rogue.RecvSkippingHeartbeats(3s);
  ASSERT_TRUE(answer.has_value()) << broker_.Output();
  EXPECT_EQ(*answer, (Frames{"MDPW02", Byte(0x06)}));
  EXPECT_EQ(Call(client_keys_, "mmi.service", {"plant.pump"}), (Frames{"404"}));
  EXPECT_TRUE(broker_.WaitForOutput("denied_serve", 5s)) << broker_.Output();

  RawPeer worker(ctx_, TcpEndpoint(worker_port_), "", CurveClient(worker_keys_, server_));
  worker.Send({"MDPW02", Byte(0x01), "plant.valve"});
  RawPeer client(ctx_, TcpEndpoint(client_port_), "", CurveClient(client_keys_, server_));
  EXPECT_TRUE(WaitUntilRegistered(client, "plant.valve")) << broker_.Output();
  EXPECT_GE(Refused("denied_serve"), 1);
}

// /status shows a worker by the name of its key (its certificate's file
// name), next to the connection's short id.
TEST_F(AccessControlTest, StatusNamesWorkersByTheirKey) {
  StartBroker();
  RawPeer worker(ctx_, TcpEndpoint(worker_port_), "", CurveClient(worker_keys_, server_));
  worker.Send({"MDPW02", Byte(0x01), "plant.valve"});
  RawPeer client(ctx_, TcpEndpoint(client_port_), "", CurveClient(client_keys_, server_));
  ASSERT_TRUE(WaitUntilRegistered(client, "plant.valve")) << broker_.Output();
  const nlohmann::json workers = StatusWorkers(1);
  ASSERT_EQ(workers.size(), 1u);
  EXPECT_EQ(workers[0]["key"], "worker");
  EXPECT_EQ(workers[0]["service"], "plant.valve");
}

// titanic.request stores a request for another service: the caller needs
// `call` on that service too, or Titanic would be a way round the rules.
TEST_F(AccessControlTest, TitanicRequestNeedsCallOnItsTargetService) {
  StartBroker("", "[]");
  EXPECT_EQ(Call(client_keys_, "titanic.request", {"other.pump", "start"}),
            (Frames{"403", "denied_call"}));
  // Allowed target: the store is disabled in this broker, so Titanic itself
  // answers (500), which shows the request got past the rules.
  auto allowed = Call(client_keys_, "titanic.request", {"plant.valve", "open"});
  ASSERT_TRUE(allowed.has_value()) << broker_.Output();
  EXPECT_EQ(allowed->at(0), "500");
}

// SIGHUP rereads the rules with the keys: a grant added to the file works
// without a restart, and a mistake in the file keeps the old rules.
TEST_F(AccessControlTest, SighupRereadsTheRules) {
  StartBroker("log:\n  level: info\n");
  EXPECT_EQ(Call(observer_keys_, "mmi.service", {"x"}), (Frames{"403", "denied_call"}));
  keys_.Write("acl.yaml", std::string(kRules) + "  - peers: [observer]\n    call: [\"mmi.*\"]\n");
  broker_.Signal(SIGHUP);
  ASSERT_TRUE(broker_.WaitForOutput("authorized keys reread", 5s)) << broker_.Output();
  EXPECT_EQ(Call(observer_keys_, "mmi.service", {"x"}), (Frames{"404"}));

  keys_.Write("acl.yaml", "rules:\n  - peers: [observer]\n    cal: [x]\n");
  broker_.Signal(SIGHUP);
  ASSERT_TRUE(broker_.WaitForOutput("unknown rule field 'cal'", 5s)) << broker_.Output();
  EXPECT_EQ(Call(observer_keys_, "mmi.service", {"x"}), (Frames{"404"}))
      << "a broken file leaves the rules that were in force";
}

// transport: zmq applies the same rules: the key's name comes from the ZAP
// handler's User-Id on each message.
TEST_F(AccessControlTest, ZmqTransportAppliesTheSameRules) {
  StartBroker("transport: zmq\n");
  EXPECT_EQ(Call(client_keys_, "other.pump"), (Frames{"403", "denied_call"}));
  EXPECT_EQ(Call(client_keys_, "mmi.service", {"plant.valve"}), (Frames{"404"}));
  EXPECT_EQ(Call(observer_keys_, "mmi.service", {"plant.valve"}), (Frames{"403", "denied_call"}));
}

// Bus permissions by topic prefix: the worker's key may publish plant.*
// only, the client's key may subscribe to plant.* only. A denied topic is
// dropped at the bus and counted; a denied subscription is ignored (the
// subscriber stays connected and hears nothing of it).
TEST_F(AccessControlTest, BusPublishAndSubscribeByTopicPrefix) {
  const int backend = FreeTcpPort();
  const int frontend = FreeTcpPort();
  StartBroker("", "\n  - name: data\n    backend: " + TcpEndpoint(backend) +
                      "\n    frontend: " + TcpEndpoint(frontend));
  auto subscriber = [&](const KeyPair& keys, const std::string& prefix) {
    auto sub = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::sub);
    sub->set(zmq::sockopt::linger, 0);
    CurveClient(keys, server_)(*sub);
    sub->set(zmq::sockopt::subscribe, prefix);
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
  auto plant_sub = subscriber(client_keys_, "plant.");
  auto everything_sub = subscriber(client_keys_, "");  // "" is not granted
  auto observer_sub = subscriber(observer_keys_, "plant.");
  auto pub = publisher(worker_keys_);
  auto observer_pub = publisher(observer_keys_);

  bool heard = false;
  const auto deadline = Clock::now() + 5s;
  while (!heard && Clock::now() < deadline) {
    (void)pub->send(zmq::str_buffer("secret.recipe"), zmq::send_flags::dontwait);
    (void)observer_pub->send(zmq::str_buffer("plant.fake"), zmq::send_flags::dontwait);
    (void)pub->send(zmq::str_buffer("plant.temp 21.5"), zmq::send_flags::dontwait);
    zmq::pollitem_t item{plant_sub->handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, 50ms) > 0) {
      zmq::message_t message;
      ASSERT_TRUE(plant_sub->recv(message));
      EXPECT_EQ(message.to_string(), "plant.temp 21.5")
          << "neither the denied topic nor the denied publisher gets through";
      heard = true;
    }
  }
  EXPECT_TRUE(heard) << broker_.Output();
  zmq::pollitem_t items[2] = {{everything_sub->handle(), 0, ZMQ_POLLIN, 0},
                              {observer_sub->handle(), 0, ZMQ_POLLIN, 0}};
  EXPECT_EQ(zmq::poll(items, 2, 300ms), 0) << "denied subscriptions hear nothing";
  // The observer's PUB sends only once the subscription to "plant." has
  // reached it, which may be after the first message was heard.
  bool denied = false;
  for (const auto until = Clock::now() + 5s; !denied && Clock::now() < until;) {
    (void)observer_pub->send(zmq::str_buffer("plant.fake"), zmq::send_flags::dontwait);
    denied = broker_.WaitForOutput("denied_publish", 50ms);
  }
  EXPECT_TRUE(denied) << broker_.Output();
  EXPECT_TRUE(broker_.WaitForOutput("denied_subscribe", 5s)) << broker_.Output();
  EXPECT_GE(Refused("denied_publish"), 1);
  EXPECT_GE(Refused("denied_subscribe"), 2);
}

// security.null_endpoints: a local ipc:// endpoint takes NULL peers while
// tcp:// requires CURVE. Its peers are named "anonymous": the rules must
// name them ("*" means any key, and they have none), /status shows the
// name, and a SIGHUP that rereads the keys leaves them connected.
TEST_F(AccessControlTest, NullEndpointTakesAnonymousPeersUnderTheirOwnRules) {
  acl_file_ = keys_.Write("acl.yaml", std::string(kRules) +
                                          "  - peers: [\"*\"]\n    call: [\"mmi.*\"]\n"
                                          "  - peers: [anonymous]\n    call: [plant.valve]\n"
                                          "    serve: [plant.local]\n");
  const std::string local = "ipc://" + keys_.path() + "/broker.ipc";
  StartBroker("  null_endpoints:\n    - " + local + "\nextra_endpoints:\n  - " + local +
              "\nlog:\n  level: info\n");
  ASSERT_TRUE(broker_.WaitForOutput("security.null_endpoints", 5s)) << broker_.Output();
  EXPECT_EQ(broker_.Output().find("other machines can reach"), std::string::npos)
      << "an ipc:// endpoint is local: no warning\n"
      << broker_.Output();

  // A NULL worker and a NULL client on the ipc endpoint.
  RawPeer local_worker(ctx_, local);
  local_worker.Send({"MDPW02", Byte(0x01), "plant.local"});
  RawPeer curve_worker(ctx_, TcpEndpoint(worker_port_), "", CurveClient(worker_keys_, server_));
  curve_worker.Send({"MDPW02", Byte(0x01), "plant.valve"});
  RawPeer operator_peer(ctx_, TcpEndpoint(client_port_), "", CurveClient(client_keys_, server_));
  ASSERT_TRUE(WaitUntilRegistered(operator_peer, "plant.valve")) << broker_.Output();
  RawPeer local_client(ctx_, local, "", WithoutReconnect());
  local_client.Send({"MDPC02", Byte(0x01), "plant.valve", "open"});
  auto request = curve_worker.RecvSkippingHeartbeats();
  ASSERT_TRUE(request.has_value()) << "anonymous may call plant.valve\n" << broker_.Output();
  ASSERT_GE(request->size(), 5u);
  curve_worker.Send({"MDPW02", Byte(0x04), (*request)[2], "", "opened"});
  auto reply = local_client.Recv();
  ASSERT_TRUE(reply.has_value()) << broker_.Output();
  EXPECT_EQ(*reply, (Frames{"MDPC02", Byte(0x03), "plant.valve", "opened"}));

  local_client.Send({"MDPC02", Byte(0x01), "mmi.service", "plant.valve"});
  EXPECT_EQ(local_client.Recv(),
            (Frames{"MDPC02", Byte(0x03), "mmi.service", "403", "denied_call"}))
      << "\"*\" grants any key, and an anonymous peer has none";
  EXPECT_EQ(Call(client_keys_, "mmi.service", {"plant.local"}), (Frames{"200"}))
      << "the anonymous worker's READY was taken";

  const nlohmann::json workers = StatusWorkers(2);
  ASSERT_EQ(workers.size(), 2u);
  for (const auto& worker : workers) {
    EXPECT_EQ(worker["key"], worker["service"] == "plant.local" ? "anonymous" : "worker");
  }

  // Rereading the keys closes connections whose key was removed; an
  // anonymous one has no key to lose. The observer's removed key shows
  // that the core has swept its connections before the anonymous client
  // asks again.
  RawPeer observer(ctx_, TcpEndpoint(client_port_), "", CurveClient(observer_keys_, server_));
  observer.Send({"MDPC02", Byte(0x01), "mmi.service", "x"});
  ASSERT_TRUE(observer.Recv().has_value()) << broker_.Output();
  std::filesystem::remove(clients() + "/observer");
  broker_.Signal(SIGHUP);
  ASSERT_TRUE(broker_.WaitForOutput("its key is no longer authorized", 5s)) << broker_.Output();
  local_client.Send({"MDPC02", Byte(0x01), "plant.valve", "close"});
  request = curve_worker.RecvSkippingHeartbeats();
  ASSERT_TRUE(request.has_value()) << broker_.Output();
  ASSERT_GE(request->size(), 5u) << broker_.Output();
  curve_worker.Send({"MDPW02", Byte(0x04), (*request)[2], "", "closed"});
  EXPECT_EQ(local_client.Recv(), (Frames{"MDPC02", Byte(0x03), "plant.valve", "closed"}));

  // The tcp:// endpoint still requires CURVE: a NULL peer gets nothing.
  RawPeer outsider(ctx_, TcpEndpoint(client_port_));
  outsider.Send({"MDPC02", Byte(0x01), "mmi.service", "plant.valve"});
  EXPECT_FALSE(outsider.Recv(500ms).has_value());
}

// A bus frontend among security.null_endpoints: a libzmq SUB without keys
// subscribes there, as anonymous, to what the rules let anonymous hear.
TEST_F(AccessControlTest, NullBusFrontendServesAnonymousSubscribers) {
  acl_file_ = keys_.Write("acl.yaml", std::string(kRules) +
                                          "  - peers: [anonymous]\n"
                                          "    subscribe: {data: [\"plant.\"]}\n");
  const int backend = FreeTcpPort();
  const std::string frontend = "ipc://" + keys_.path() + "/data.ipc";
  StartBroker(
      "  null_endpoints: [\"" + frontend + "\"]\n",
      "\n  - name: data\n    backend: " + TcpEndpoint(backend) + "\n    frontend: " + frontend);
  zmq::socket_t sub(ctx_, zmq::socket_type::sub);
  sub.set(zmq::sockopt::linger, 0);
  sub.set(zmq::sockopt::subscribe, "plant.");
  sub.connect(frontend);
  zmq::socket_t denied(ctx_, zmq::socket_type::sub);
  denied.set(zmq::sockopt::linger, 0);
  denied.set(zmq::sockopt::subscribe, "secret.");
  denied.connect(frontend);
  zmq::socket_t pub(ctx_, zmq::socket_type::pub);
  pub.set(zmq::sockopt::linger, 0);
  CurveClient(worker_keys_, server_)(pub);
  pub.connect(TcpEndpoint(backend));

  bool heard = false;
  const auto deadline = Clock::now() + 5s;
  while (!heard && Clock::now() < deadline) {
    (void)pub.send(zmq::str_buffer("plant.temp 21.5"), zmq::send_flags::dontwait);
    zmq::pollitem_t item{sub.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, 50ms) > 0) {
      zmq::message_t message;
      ASSERT_TRUE(sub.recv(message));
      EXPECT_EQ(message.to_string(), "plant.temp 21.5");
      heard = true;
    }
  }
  EXPECT_TRUE(heard) << broker_.Output();
  EXPECT_TRUE(broker_.WaitForOutput("denied_subscribe", 5s)) << broker_.Output();
}

// The same for publishers: a bus backend in security.null_endpoints takes
// keyless PUBs, named "anonymous", and the rules say what they may publish.
TEST_F(AccessControlTest, NullBusBackendTakesAnonymousPublishersUnderTheirRules) {
  acl_file_ = keys_.Write("acl.yaml", std::string(kRules) +
                                          "  - peers: [anonymous]\n"
                                          "    publish: {data: [\"plant.\"]}\n"
                                          "  - peers: [client]\n"
                                          "    subscribe: {data: [\"\"]}\n");
  const std::string backend = "ipc://" + keys_.path() + "/data-in.ipc";
  const int frontend = FreeTcpPort();
  StartBroker("  null_endpoints: [\"" + backend + "\"]\n",
              "\n  - name: data\n    backend: " + backend + "\n    frontend: " +
                  TcpEndpoint(frontend));
  zmq::socket_t sub(ctx_, zmq::socket_type::sub);
  sub.set(zmq::sockopt::linger, 0);
  CurveClient(client_keys_, server_)(sub);
  sub.set(zmq::sockopt::subscribe, "");
  sub.connect(TcpEndpoint(frontend));
  zmq::socket_t pub(ctx_, zmq::socket_type::pub);  // no keys
  pub.set(zmq::sockopt::linger, 0);
  pub.connect(backend);

  bool heard = false;
  const auto deadline = Clock::now() + 5s;
  while (!heard && Clock::now() < deadline) {
    (void)pub.send(zmq::str_buffer("secret.recipe"), zmq::send_flags::dontwait);
    (void)pub.send(zmq::str_buffer("plant.temp 21.5"), zmq::send_flags::dontwait);
    zmq::pollitem_t item{sub.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, 50ms) > 0) {
      zmq::message_t message;
      ASSERT_TRUE(sub.recv(message));
      EXPECT_EQ(message.to_string(), "plant.temp 21.5") << "secret. is not granted to anonymous";
      heard = true;
    }
  }
  EXPECT_TRUE(heard) << broker_.Output();
  EXPECT_TRUE(broker_.WaitForOutput("refused reason=denied_publish peer=anonymous", 5s))
      << broker_.Output();
}

// A mistake in the ACL file stops the broker at start, naming the file and
// line and what is wrong.
TEST_F(AccessControlTest, MalformedRulesStopTheBrokerWithFileAndLine) {
  acl_file_ = keys_.Write("bad.yaml", "rules:\n  - peers: [\"@nobody\"]\n    call: [x]\n");
  BrokerProcess broker;
  EXPECT_FALSE(broker.Start({.config_yaml = "endpoint: " + TcpEndpoint(FreeTcpPort()) +
                                            "\nclient_endpoint: " + TcpEndpoint(FreeTcpPort()) +
                                            "\nbuses: []\nhealth:\n  port: 0\nstore:\n  "
                                            "enabled: false\nsecurity:\n  mechanism: curve\n  "
                                            "secret_key_file: " +
                                            keys_.path() +
                                            "/broker_secret\n  acl_file: " + acl_file_ + "\n"}));
  const std::string output = broker.Output();
  EXPECT_NE(output.find(acl_file_ + ":2"), std::string::npos) << output;
  EXPECT_NE(output.find("no group 'nobody'"), std::string::npos) << output;
}

// libplantd with ClientOptions::curve and WorkerOptions::curve, loaded from
// the certificate files: a request and its reply, end to end.
TEST_F(AccessControlTest, LibplantdClientAndWorkerUseCurveKeysFromFiles) {
  StartBroker();
  WriteCertificate(keys_.path(), "worker", worker_keys_, true);
  auto worker_curve = LoadCurveOptions(keys_.path() + "/broker", keys_.path() + "/worker_secret");
  ASSERT_TRUE(worker_curve.ok()) << worker_curve.status().message();
  auto client_curve = LoadCurveOptions(keys_.path() + "/broker", keys_.path() + "/client_secret");
  ASSERT_TRUE(client_curve.ok()) << client_curve.status().message();

  mdp::Worker worker({.endpoints = {TcpEndpoint(worker_port_)},
                      .service = "plant.valve",
                      .curve = worker_curve.value()});
  ASSERT_TRUE(worker.status().ok()) << worker.status().message();
  std::thread serve([&] {
    if (auto request = worker.Receive(5s)) (void)worker.Reply(*request, {"done"});
  });
  mdp::Client client(
      {.endpoints = {TcpEndpoint(client_port_)}, .timeout = 3s, .curve = client_curve.value()});
  Result<Frames> reply = Status::Timeout("not asked");
  for (int i = 0; i < 50; ++i) {  // until the worker's READY has arrived
    auto exists = client.ServiceExists("plant.valve");
    if (exists.ok() && exists.value()) break;
    std::this_thread::sleep_for(50ms);
  }
  reply = client.Request("plant.valve", {"open"});
  serve.join();
  ASSERT_TRUE(reply.ok()) << reply.status().message() << "\n" << broker_.Output();
  EXPECT_EQ(reply.value(), (Frames{"done"}));
}

// A libplantd client whose key the broker does not let in is told so
// (kPermissionDenied, naming the setting to check), not "unreachable".
TEST_F(AccessControlTest, LibplantdClientWithAnUnknownKeyIsToldItWasRefused) {
  StartBroker();
  const KeyPair stranger = MakeKeyPair();
  CurveOptions curve{.server_key = server_.public_z85,
                     .public_key = stranger.public_z85,
                     .secret_key = stranger.secret_z85};
  mdp::Client client(
      {.endpoints = {TcpEndpoint(client_port_)}, .timeout = 1s, .attempts = 1, .curve = curve});
  auto reply = client.Request("plant.valve", {"open"});
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), Status::Code::kPermissionDenied) << reply.status().message();
  EXPECT_NE(reply.status().message().find("authorized_keys_dir"), std::string::npos)
      << reply.status().message();
}

// plantd-mdp with --server-key and --key: a call allowed by the rules
// succeeds; with a key the broker does not know it exits 4 and says why.
TEST_F(AccessControlTest, PlantdMdpTakesServerAndClientKeys) {
  StartBroker();
  RawPeer worker(ctx_, TcpEndpoint(worker_port_), "", CurveClient(worker_keys_, server_));
  worker.Send({"MDPW02", Byte(0x01), "plant.valve"});
  RawPeer client(ctx_, TcpEndpoint(client_port_), "", CurveClient(client_keys_, server_));
  ASSERT_TRUE(WaitUntilRegistered(client, "plant.valve")) << broker_.Output();

  RunResult allowed = RunProgram(
      "plantd-mdp", {"service", "plant.valve", "-e", TcpEndpoint(client_port_), "--server-key",
                     keys_.path() + "/broker", "--key", keys_.path() + "/client_secret"});
  EXPECT_EQ(allowed.status, 0) << allowed.output;
  EXPECT_NE(allowed.output.find("available"), std::string::npos) << allowed.output;

  const KeyPair stranger = MakeKeyPair();
  WriteCertificate(keys_.path(), "stranger", stranger, true);
  RunResult refused =
      RunProgram("plantd-mdp", {"call", "plant.valve", "-e", TcpEndpoint(client_port_), "-t",
                                "1000", "--server-key", keys_.path() + "/broker", "--key",
                                keys_.path() + "/stranger_secret"});
  EXPECT_EQ(refused.status, 4) << refused.output;
  EXPECT_NE(refused.output.find("refused this client's CURVE key"), std::string::npos)
      << refused.output;
  EXPECT_EQ(refused.output.find(stranger.secret_z85), std::string::npos);

  RunResult usage =
      RunProgram("plantd-mdp", {"services", "--key", keys_.path() + "/client_secret"});
  EXPECT_EQ(usage.status, 2) << usage.output;
}

}  // namespace
}  // namespace plantd::test

// A publish/subscribe bus: publishers connect PUB sockets to `backend` (an
// XSUB here), subscribers connect SUB sockets to `frontend` (an XPUB here),
// and subscriptions flow upstream so publishers filter at the source. Each
// bus runs its own forwarding thread, counts what crosses it, and can copy
// every message to a capture tap and keep the last value of each topic.
//
// A frontend that binds on tcp:// or ipc:// is served by the native ZMTP
// socket (transport/zmtp_router.h) as an XPUB: the bus then knows each
// subscriber, its subscriptions and its queue, so in drop mode every message
// a subscriber loses is counted, and in block mode the subscriber holding
// the bus up is named. A frontend that connects uses libzmq's XPUB.
#pragma once

#include <atomic>
#include <memory>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "bus/last_value_cache.h"
#include "common/status.h"
#include "common/string_map.h"
#include "config/options.h"
#include "transport/zmtp_router.h"

namespace plantd::bus {

// Written by the bus thread only (relaxed stores), read by anyone.
struct BusCounters {
  std::atomic<uint64_t> messages_in{0};
  std::atomic<uint64_t> bytes_in{0};
  std::atomic<uint64_t> messages_out{0};
  std::atomic<uint64_t> bytes_out{0};
  // drop mode: messages not delivered because a subscriber's queue was
  // full, one for each subscriber that missed each message (native
  // frontend); with libzmq's XPUB, messages that found a full queue, a lower
  // bound (docs/buses.md). block mode: always 0.
  std::atomic<uint64_t> dropped{0};
  std::atomic<uint64_t> capture_dropped{0};  // the tap was full
  std::atomic<uint64_t> blocked_ns{0};       // block mode: time spent waiting for subscribers
  std::atomic<int64_t> subscribers{0};       // connected subscriber sockets
  std::atomic<int64_t> subscriptions{0};     // active topic subscriptions
  std::atomic<uint64_t> lvc_replayed{0};     // cached messages sent to new subscriptions
  std::atomic<int64_t> last_tick_ns{0};      // steady clock; the thread is alive
};

class Bus {
 public:
  Bus(zmq::context_t& context, const BusOptions& options);
  ~Bus();
  Bus(const Bus&) = delete;
  Bus& operator=(const Bus&) = delete;

  // Binds (or connects) every endpoint. The error names the bus, the
  // endpoint and its key.
  Status Open();
  void Start();
  void Stop();  // returns when the thread has ended

  const BusOptions& options() const { return options_; }
  const BusCounters& counters() const { return counters_; }

 private:
  void Run();
  bool ForwardMessage();          // one message backend -> frontend; false if none
  void CopyToCapture();
  void HandleSubscription();      // one subscription frontend -> backend
  void HandleMonitorEvent();
  bool SendToSubscribers();       // frames_ to the XPUB, per the delivery mode

  // The native frontend.
  struct Subscriber {
    std::string remote;                 // address:port, for logs
    std::vector<std::string> prefixes;  // one per SUBSCRIBE, as libzmq counts them
    uint64_t dropped = 0;
    bool behind = false;  // lost the last message it was offered
  };
  Status OpenNativeFrontend(const std::string& address);
  void OnSubscriber(std::string_view id, bool connected, std::string_view remote);
  void OnSubscription(std::string_view id, bool subscribe, std::string_view topic);
  void ReceiveFromSubscribers();  // ZMTP 3.0 peers subscribe with messages
  bool SendToNativeSubscribers();
  bool SendFramesTo(std::string_view id, const zmq::message_t* frames, size_t count);
  void SendUpstream(bool subscribe, std::string_view topic);

  const BusOptions options_;
  zmq::context_t& context_;
  zmq::socket_t backend_;   // XSUB
  zmq::socket_t frontend_;  // XPUB
  zmq::socket_t capture_;   // PUB, or closed
  zmq::socket_t monitor_;   // PAIR fed by zmq_socket_monitor on frontend_
  LastValueCache cache_;
  std::vector<zmq::message_t> frames_;  // reused for every message
  size_t frame_count_ = 0;
  BusCounters counters_;
  StringMap<Subscriber> subscribers_;               // by routing id; native frontend
  std::unique_ptr<transport::ZmtpRouter> native_;   // the frontend, when it binds
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace plantd::bus

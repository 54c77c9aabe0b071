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
// the bus up is named. A backend that binds on tcp:// or ipc:// is the same
// socket as an XSUB: publishers' messages are read in batches on the bus
// thread, with no I/O thread or queue between. An endpoint that connects,
// or inproc://, uses libzmq's XPUB or XSUB.
//
// What a peer can make the bus hold is bounded (docs/buses.md): the queue
// of each subscriber (send_hwm messages and send_hwm_bytes), the size of a
// published message (max_message_size), what is queued from each publisher
// (recv_hwm messages), and the number and length of subscriptions, kept in
// a prefix trie so that matching a message costs the same however many
// subscriptions others hold. Each limit that bites is a refusal
// (common/refusal.h).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "bus/bus_counters.h"
#include "bus/last_value_cache.h"
#include "bus/prefix_trie.h"
#include "common/status.h"
#include "common/string_map.h"
#include "config/options.h"
#include "transport/server_security.h"
#include "transport/zmtp_router.h"

namespace plantd::bus {

class Bus {
 public:
  // `limits` gives write_timeout (how long block mode waits for one
  // subscriber) and the per-connection output cap of the native sockets;
  // `budget` is shared by every native socket of the process (null: its own).
  // `security`: what peers connecting to the bus's bound endpoints must
  // prove (null: nothing).
  Bus(zmq::context_t& context, const BusOptions& options, const LimitsOptions& limits = {},
      std::shared_ptr<transport::BufferBudget> budget = nullptr,
      std::shared_ptr<const transport::ServerSecurity> security = nullptr);
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
  // A subscriber of the native frontend, or (id "") all of libzmq's XPUB.
  struct Subscriber {
    std::string id;      // routing id
    std::string remote;  // address:port, for logs
    PrefixTrie::SubscriberId slot = 0;
    uint64_t serial = 0;  // tells a reused slot from the one a wait started on
    // Its subscriptions, one count per SUBSCRIBE as libzmq counts them, so
    // that they can all be cancelled when it leaves.
    StringMap<uint32_t> prefixes;
    size_t subscriptions = 0;
    uint64_t dropped = 0;
    bool behind = false;   // lost the last message it was offered
    bool evicted = false;  // block mode gave up on it: nothing more is sent
  };
  enum class SendResult { kSent, kFull, kGone };

  void Run();
  bool ForwardMessage();         // one message backend -> frontend; false if none
  bool ReceiveFromXsub();        // frames_ <- the next message; false if none
  bool ReceiveFromPublishers();  // the same from the native backend
  void CopyToCapture();
  void HandleSubscription();  // libzmq's XPUB: subscriptions to the trie
  void HandleMonitorEvent();
  bool SendToSubscribers();  // frames_ to the XPUB, per the delivery mode
  bool MayPublish();         // frames_ per the access rules

  Status OpenNativeFrontend(const std::string& address);
  Status OpenNativeBackend(const std::string& address);
  // A native socket on `address` with what both ends share; the error names
  // the bus and `key` (frontend, backend).
  Status BindNative(transport::RouterOptions router, transport::ZmtpOptions zmtp,
                    const std::string& address, const char* key,
                    std::unique_ptr<transport::ZmtpRouter>* out);
  void OnPublisher(std::string_view id, bool connected, std::string_view remote);
  void SendSubscription(std::string_view publisher, bool subscribe, std::string_view prefix);
  // The publisher of frames_, for refusals: its address and key name.
  std::string PublisherAddress() const;
  std::string_view PublisherName() const;
  void OnSubscriber(std::string_view id, bool connected, std::string_view remote);
  void OnSubscription(std::string_view id, bool subscribe, std::string_view topic);
  Subscriber& AddSubscriber(std::string_view id, std::string_view remote);
  void DropSubscriptions(Subscriber& s);
  void ReceiveFromSubscribers();  // ZMTP 3.0 peers subscribe with messages
  bool SendToNativeSubscribers();
  // frames_ to each subscriber that wants it, through send_to(subscriber).
  template <typename SendTo>
  bool SendToNativeSubscribers(SendTo send_to);
  template <typename SendTo>
  void WaitForSubscribers(SendTo send_to);  // block mode: until waiting_ have room
  void Evict(Subscriber& s, std::chrono::milliseconds waited);
  SendResult SendFramesTo(std::string_view id, const zmq::message_t* frames, size_t count);
  SendResult SendViewsTo(std::string_view id, const std::string_view* views, size_t count);
  // A prefix became active (or inactive) on the bus: tell the publishers.
  void SendUpstream(bool subscribe, std::string_view topic);

  const BusOptions options_;
  const LimitsOptions limits_;
  const std::shared_ptr<const transport::ServerSecurity> security_;
  bool publishers_have_keys_ = false;  // the backend binds with CURVE
  transport::AccessRulesView access_rules_{security_};
  zmq::context_t& context_;
  zmq::socket_t backend_;   // XSUB, unless the native backend serves
  zmq::socket_t frontend_;  // XPUB, when the frontend connects
  zmq::socket_t capture_;   // PUB, or closed
  zmq::socket_t monitor_;   // PAIR fed by zmq_socket_monitor on frontend_
  LastValueCache cache_;
  std::vector<zmq::message_t> frames_;  // reused for every message
  size_t frame_count_ = 0;
  bool large_frames_ = false;  // one of them is shared rather than copied
  BusCounters counters_;

  PrefixTrie trie_;
  StringMap<Subscriber> subscribers_;  // by routing id
  std::vector<Subscriber*> slots_;     // by slot; null when free
  std::vector<PrefixTrie::SubscriberId> free_slots_;
  uint64_t next_serial_ = 0;
  std::vector<PrefixTrie::SubscriberId> matched_;  // reused for every message
  struct Waiting {
    PrefixTrie::SubscriberId slot;
    uint64_t serial;
  };
  std::vector<Waiting> waiting_;  // block mode: full subscribers of this message

  std::unique_ptr<transport::ZmtpRouter> native_;      // the frontend, when it binds
  std::unique_ptr<transport::ZmtpRouter> publishers_;  // the backend, when it binds
  std::vector<std::string> publisher_ids_;             // of the native backend's peers
  zmq::message_t publisher_;                           // routing id of frames_' sender
  std::shared_ptr<transport::BufferBudget> budget_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace plantd::bus

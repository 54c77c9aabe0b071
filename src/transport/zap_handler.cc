#include "transport/zap_handler.h"

#include <array>
#include <chrono>
#include <exception>
#include <string>
#include <unordered_map>
#include <utility>

#include "common/refusal.h"
#include "log/log.h"

namespace plantd::transport {
namespace {

using SteadyClock = std::chrono::steady_clock;

// The destructor waits at most about this long for the thread to notice.
constexpr auto kPollInterval = std::chrono::milliseconds(50);

// RFC 27 request, as a ROUTER sees it: the routing id libzmq's pipe gets,
// the empty delimiter, then version, request id, domain, address, identity,
// mechanism and zero or more credentials (NULL 0, CURVE 1, PLAIN 2).
enum Frame : size_t {
  kRoutingId,
  kDelimiter,
  kVersion,
  kRequestId,
  kDomain,
  kAddress,
  kIdentity,
  kMechanism,
  kFirstCredential,
};
// Room for every mechanism's credentials with a margin; more is malformed.
constexpr size_t kMaxFrames = kFirstCredential + 4;

constexpr std::string_view kVersion10 = "1.0";
constexpr size_t kCurvePublicKeyBytes = 32;

// A denied client usually reconnects every reconnect interval; one line per
// key per minute says it is happening without flooding the log.
constexpr auto kDenialLogWindow = std::chrono::minutes(1);
constexpr size_t kMaxDenialKeys = 1024;

std::string_view View(const zmq::message_t& frame) {
  return {static_cast<const char*>(frame.data()), frame.size()};
}

}  // namespace

// Decides whether a denial is logged: at most once per (mechanism, key) per
// kDenialLogWindow, remembering at most kMaxDenialKeys keys; keys beyond
// that share one slot. Handler thread only, so no lock.
class ZapHandler::DenialLog {
 public:
  // Returns the number of denials suppressed since the last line for this
  // key, or -1 when this one should not be logged.
  int64_t Admit(std::string_view mechanism, std::string_view key, SteadyClock::time_point now) {
    std::string slot;
    slot.reserve(mechanism.size() + 1 + key.size());
    slot.append(mechanism).push_back('\0');
    slot.append(key);
    auto it = by_key_.find(slot);
    if (it == by_key_.end()) {
      if (by_key_.size() >= kMaxDenialKeys) {
        std::erase_if(by_key_,
                      [now](const auto& e) { return now - e.second.last >= kDenialLogWindow; });
      }
      if (by_key_.size() >= kMaxDenialKeys) return AdmitIn(overflow_, now);
      by_key_.emplace(std::move(slot), State{now, 0});
      return 0;
    }
    return AdmitIn(it->second, now);
  }

 private:
  struct State {
    SteadyClock::time_point last{};
    uint64_t suppressed = 0;
  };

  static int64_t AdmitIn(State& state, SteadyClock::time_point now) {
    if (state.last != SteadyClock::time_point{} && now - state.last < kDenialLogWindow) {
      ++state.suppressed;
      return -1;
    }
    state.last = now;
    return static_cast<int64_t>(std::exchange(state.suppressed, 0));
  }

  std::unordered_map<std::string, State> by_key_;
  State overflow_;
};

Result<std::unique_ptr<ZapHandler>> ZapHandler::Start(zmq::context_t& context,
                                                      Authorize authorize) {
  if (!authorize) return Status::InvalidArgument("zap: no authorize function");
  zmq::socket_t socket;
  try {
    // ROUTER, not REP: a request without an envelope can be dropped without
    // wedging REP's send/receive state machine.
    socket = zmq::socket_t(context, zmq::socket_type::router);
    socket.set(zmq::sockopt::linger, 0);
  } catch (const zmq::error_t& e) {
    return Status::Error(std::string("zap: cannot create the handler socket: ") + e.what());
  }
  try {
    socket.bind(kEndpoint);
  } catch (const zmq::error_t& e) {
    std::string message = std::string("zap: cannot bind ") + kEndpoint + ": " + e.what();
    if (e.num() == EADDRINUSE) message += " (another ZAP handler already runs in this context)";
    return Status::Error(std::move(message));
  }
  return std::unique_ptr<ZapHandler>(new ZapHandler(std::move(socket), std::move(authorize)));
}

ZapHandler::ZapHandler(zmq::socket_t socket, Authorize authorize)
    : socket_(std::move(socket)),
      authorize_(std::move(authorize)),
      denial_log_(std::make_unique<DenialLog>()) {
  // The socket moves to the thread here; thread creation is the memory
  // barrier libzmq requires for a socket to change threads.
  thread_ = std::thread([this] { Run(); });
}

ZapHandler::~ZapHandler() {
  stop_.store(true, std::memory_order_relaxed);
  if (thread_.joinable()) thread_.join();
  if (!socket_) return;  // Run closed it when the context shut down
  // Closing alone frees the endpoint only later, on libzmq's reaper thread,
  // so a handler started right after this one would fail to bind; unbinding
  // an inproc endpoint frees it now.
  try {
    socket_.unbind(kEndpoint);
  } catch (const zmq::error_t&) {
    // Not bound any more: nothing to free.
  }
  socket_.close();  // linger 0
}

void ZapHandler::Run() {
  bool reported = false;
  while (!stop_.load(std::memory_order_relaxed)) {
    try {
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, kPollInterval) > 0) HandleOne();
    } catch (const zmq::error_t& e) {
      if (e.num() == ETERM) {
        // The context is shutting down and waits for every socket to close.
        socket_.close();
        return;
      }
      if (e.num() == EINTR) continue;
      if (!reported) {
        PLANTD_LOG_ERROR("zap: handler socket failed", {{"error", e.what()}});
        reported = true;
      }
    }
  }
}

void ZapHandler::HandleOne() {
  std::array<zmq::message_t, kMaxFrames> frames;
  size_t count = 0;
  bool too_many = false;
  // A ROUTER delivers a multipart message whole: once the first frame is
  // here, so are the rest, and none of these reads waits.
  for (bool more = true; more;) {
    zmq::message_t frame;
    if (!socket_.recv(frame, zmq::recv_flags::dontwait)) return;
    more = frame.more();
    if (count < kMaxFrames) {
      frames[count++] = std::move(frame);
    } else {
      too_many = true;  // drained, not kept
    }
  }

  // Without the delimiter and a request id there is nobody to answer.
  if (count <= kRequestId || frames[kDelimiter].size() != 0) {
    malformed_.fetch_add(1, std::memory_order_relaxed);
    PLANTD_LOG_DEBUG("zap: dropped a request without an envelope", {{"frames", count}});
    return;
  }

  auto reply = [&](std::string_view status, std::string_view text, std::string_view user_id) {
    const std::string_view parts[] = {View(frames[kRoutingId]),
                                      {},
                                      kVersion10,
                                      View(frames[kRequestId]),
                                      status,
                                      text,
                                      user_id,
                                      {}};  // last: no metadata
    constexpr size_t kParts = std::size(parts);
    for (size_t i = 0; i < kParts; ++i) {
      const auto flags = i + 1 < kParts ? zmq::send_flags::sndmore | zmq::send_flags::dontwait
                                        : zmq::send_flags::dontwait;
      // A requester that went away meanwhile: ROUTER drops it, nothing to do.
      if (!socket_.send(zmq::buffer(parts[i].data(), parts[i].size()), flags)) return;
    }
  };
  auto malformed = [&](std::string_view text) {
    malformed_.fetch_add(1, std::memory_order_relaxed);
    PLANTD_LOG_DEBUG("zap: malformed request", {{"frames", count}, {"why", text}});
    reply("500", text, "");
  };

  if (View(frames[kVersion]) != kVersion10) return malformed("Unsupported version");
  if (too_many || count <= kMechanism) return malformed("Malformed request");

  const std::string_view mechanism = View(frames[kMechanism]);
  const size_t credentials = count - kFirstCredential;
  std::string_view client_key;
  if (mechanism == "NULL") {
    if (credentials != 0) return malformed("Malformed request");
  } else if (mechanism == "CURVE") {
    if (credentials != 1 || frames[kFirstCredential].size() != kCurvePublicKeyBytes) {
      return malformed("Malformed request");
    }
    client_key = View(frames[kFirstCredential]);
  } else {
    // PLAIN and GSSAPI would hand us passwords and tickets that Authorize
    // has no way to judge: refuse rather than guess.
    denied_.fetch_add(1, std::memory_order_relaxed);
    refusal::Count(refusal::Reason::kHandshakeFailed);
    return reply("400", "Mechanism not supported", "");
  }

  std::string user_id;
  bool allowed = false;
  bool failed = false;
  try {
    allowed = authorize_(mechanism, client_key, &user_id);
  } catch (const std::exception&) {
    failed = true;  // the contract says it does not throw; do not let it out
  }
  if (allowed && !failed) {
    accepted_.fetch_add(1, std::memory_order_relaxed);
    return reply("200", "OK", user_id);
  }

  denied_.fetch_add(1, std::memory_order_relaxed);
  // Counted with the native transport's refused CURVE keys, so that
  // plantd_refused_total{reason="unauthorized_key"} reads the same whichever
  // transport a client came through. Logged here instead, at info and per
  // key per minute, because a refused client may reconnect every interval.
  refusal::Count(refusal::Reason::kUnauthorizedKey);
  const int64_t suppressed = denial_log_->Admit(mechanism, client_key, SteadyClock::now());
  if (suppressed >= 0) {
    // Sizes only: never the key or any other credential.
    PLANTD_LOG_INFO("zap: client refused", {{"mechanism", mechanism},
                                            {"domain", View(frames[kDomain])},
                                            {"address", View(frames[kAddress])},
                                            {"key_bytes", client_key.size()},
                                            {"suppressed", suppressed}});
  }
  if (failed) return reply("500", "Internal error", "");
  reply("400", "Not authorized", "");
}

}  // namespace plantd::transport

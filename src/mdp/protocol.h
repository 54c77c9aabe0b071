// Majordomo wire vocabulary shared by the codec, the broker and libplantd:
// 7/MDP (MDP/0.1), 18/MDP (MDP/0.2), the plantd dialect (0.2 headers with
// command words) and majortomo's variant of 0.2. See ../shared/PROTOCOLS.md and docs/protocol.md.
#pragma once

#include <cstdint>
#include <string_view>

namespace plantd::mdp {

// How a peer speaks, learnt from its first message; each peer is answered in
// its own dialect.
enum class Dialect : uint8_t {
  kMdp01,   // 7/MDP: leading empty frame, one-byte commands, no PARTIAL
  kMdp02,   // 18/MDP: one-byte commands
  kPlantd,  // plantd's Go core/mdp: 0.2 headers, command words ("READY")
  // majortomo (Python): 0.2 headers and bytes, every message led by an empty
  // frame; its client REQUEST is 0x02 and its replies carry no service frame.
  kMajortomo,
};

enum class Role : uint8_t { kClient, kWorker };

enum class Command : uint8_t { kRequest, kPartial, kFinal, kReady, kHeartbeat, kDisconnect };

inline constexpr std::string_view kClientHeader01 = "MDPC01";
inline constexpr std::string_view kWorkerHeader01 = "MDPW01";
inline constexpr std::string_view kClientHeader02 = "MDPC02";
inline constexpr std::string_view kWorkerHeader02 = "MDPW02";

// majortomo's client command bytes (its workers use 18/MDP's).
namespace majortomo {
inline constexpr uint8_t kClientRequest = 0x02;
inline constexpr uint8_t kClientPartial = 0x03;
inline constexpr uint8_t kClientFinal = 0x04;
}  // namespace majortomo

// 18/MDP command bytes.
namespace v02 {
inline constexpr uint8_t kClientRequest = 0x01;
inline constexpr uint8_t kClientPartial = 0x02;
inline constexpr uint8_t kClientFinal = 0x03;
inline constexpr uint8_t kReady = 0x01;
inline constexpr uint8_t kRequest = 0x02;
inline constexpr uint8_t kPartial = 0x03;
inline constexpr uint8_t kFinal = 0x04;
inline constexpr uint8_t kHeartbeat = 0x05;
inline constexpr uint8_t kDisconnect = 0x06;
}  // namespace v02

// 7/MDP command bytes (workers only; 0.1 clients send no command).
namespace v01 {
inline constexpr uint8_t kReady = 0x01;
inline constexpr uint8_t kRequest = 0x02;
inline constexpr uint8_t kReply = 0x03;
inline constexpr uint8_t kHeartbeat = 0x04;
inline constexpr uint8_t kDisconnect = 0x05;
}  // namespace v01

// Services whose names start with this are answered by the broker (8/MMI).
inline constexpr std::string_view kMmiPrefix = "mmi.";
// plantd's management service, also answered by the broker itself.
inline constexpr std::string_view kBrokerService = "org.plantd.Broker";

const char* DialectName(Dialect dialect);

}  // namespace plantd::mdp

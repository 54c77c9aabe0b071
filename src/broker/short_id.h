// A routing id as it may be shown where anyone can read it (/status, info and
// warn log lines): 8 hex characters of a keyed hash (SipHash-2-4) under a key
// drawn at random when the process starts.
//
// A routing id is what a peer presents to be sent another peer's messages;
// showing it raw on the unauthenticated /status hands it to whoever asks.
// The short form still tells peers apart and ties a /status row to the log
// lines about the same peer, but it cannot be turned back into the id, and
// it differs from one broker process to the next.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace plantd::broker {

// Thread-safe. Allocates nothing beyond the returned string (SSO: 8 chars).
std::string ShortId(std::string_view routing_id);

// SipHash-2-4 of `data` under a 128-bit key (k0, k1), for the test.
uint64_t SipHash24(uint64_t k0, uint64_t k1, std::string_view data);

}  // namespace plantd::broker

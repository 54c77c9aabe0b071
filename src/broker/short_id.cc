#include "broker/short_id.h"

#include <sys/random.h>

#include <cstring>
#include <random>

namespace plantd::broker {
namespace {

inline uint64_t Rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

inline void Round(uint64_t& v0, uint64_t& v1, uint64_t& v2, uint64_t& v3) {
  v0 += v1;
  v1 = Rotl(v1, 13);
  v1 ^= v0;
  v0 = Rotl(v0, 32);
  v2 += v3;
  v3 = Rotl(v3, 16);
  v3 ^= v2;
  v0 += v3;
  v3 = Rotl(v3, 21);
  v3 ^= v0;
  v2 += v1;
  v1 = Rotl(v1, 17);
  v1 ^= v2;
  v2 = Rotl(v2, 32);
}

struct Key {
  uint64_t k0 = 0;
  uint64_t k1 = 0;
};

Key RandomKey() {
  Key key;
  uint64_t words[2] = {0, 0};
  size_t got = 0;
  auto* bytes = reinterpret_cast<unsigned char*>(words);
  while (got < sizeof(words)) {
    const ssize_t n = getrandom(bytes + got, sizeof(words) - got, 0);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  if (got < sizeof(words)) {
    // No getrandom (very old kernel): the next best source of surprise.
    std::random_device device;
    words[0] = (uint64_t{device()} << 32) | device();
    words[1] = (uint64_t{device()} << 32) | device();
  }
  key.k0 = words[0];
  key.k1 = words[1];
  return key;
}

const Key& ProcessKey() {
  static const Key key = RandomKey();  // thread-safe initialisation
  return key;
}

}  // namespace

uint64_t SipHash24(uint64_t k0, uint64_t k1, std::string_view data) {
  uint64_t v0 = 0x736f6d6570736575ULL ^ k0;
  uint64_t v1 = 0x646f72616e646f6dULL ^ k1;
  uint64_t v2 = 0x6c7967656e657261ULL ^ k0;
  uint64_t v3 = 0x7465646279746573ULL ^ k1;
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  const size_t n = data.size();
  const size_t whole = n & ~size_t{7};
  for (size_t i = 0; i < whole; i += 8) {
    uint64_t m = 0;
    for (int j = 7; j >= 0; --j) m = (m << 8) | p[i + static_cast<size_t>(j)];  // little-endian
    v3 ^= m;
    Round(v0, v1, v2, v3);
    Round(v0, v1, v2, v3);
    v0 ^= m;
  }
  uint64_t b = static_cast<uint64_t>(n) << 56;
  for (size_t i = whole; i < n; ++i) b |= uint64_t{p[i]} << (8 * (i - whole));
  v3 ^= b;
  Round(v0, v1, v2, v3);
  Round(v0, v1, v2, v3);
  v0 ^= b;
  v2 ^= 0xff;
  for (int i = 0; i < 4; ++i) Round(v0, v1, v2, v3);
  return v0 ^ v1 ^ v2 ^ v3;
}

std::string ShortId(std::string_view routing_id) {
  const Key& key = ProcessKey();
  const uint64_t h = SipHash24(key.k0, key.k1, routing_id);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(8, '0');
  for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = kHex[(h >> (60 - 4 * i)) & 0xf];
  return out;
}

}  // namespace plantd::broker

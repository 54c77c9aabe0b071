#include "store/request_store.h"

#include <sys/random.h>

#include <array>
#include <chrono>
#include <cstring>
#include <random>

namespace plantd::store {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void PutU32(std::string* out, uint32_t v) {
  char b[4] = {static_cast<char>(v), static_cast<char>(v >> 8), static_cast<char>(v >> 16),
               static_cast<char>(v >> 24)};
  out->append(b, 4);
}

uint32_t GetU32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return uint32_t{u[0]} | uint32_t{u[1]} << 8 | uint32_t{u[2]} << 16 | uint32_t{u[3]} << 24;
}

void FillFromKernel(uint8_t* bytes, size_t count) {
  size_t got = 0;
  while (got < count) {
    const ssize_t n = getrandom(bytes + got, count - got, 0);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  if (got < count) {
    // getrandom cannot fail on Linux >= 3.17 once the pool is seeded; keep a
    // fallback anyway.
    std::random_device rd;
    for (size_t i = got; i < count; ++i) bytes[i] = static_cast<uint8_t>(rd());
  }
}

// An id is made for every durable request on the core thread, and getrandom
// is a system call: take the kernel's bytes 512 at a time (one call per 32
// ids) and hand them out in order. They are as unpredictable as getrandom's
// own; each byte is used once and only this process holds the pool.
void FillRandom(uint8_t* bytes, size_t count) {
  struct Pool {
    std::array<uint8_t, 512> bytes;
    size_t used = 512;
  };
  thread_local Pool pool;
  if (count > pool.bytes.size()) {
    FillFromKernel(bytes, count);
    return;
  }
  if (pool.bytes.size() - pool.used < count) {
    FillFromKernel(pool.bytes.data(), pool.bytes.size());
    pool.used = 0;
  }
  std::memcpy(bytes, pool.bytes.data() + pool.used, count);
  // Bytes handed out are not kept.
  std::memset(pool.bytes.data() + pool.used, 0, count);
  pool.used += count;
}

}  // namespace

RequestId RequestId::TimeOrdered() {
  RequestId id;
  FillRandom(id.bytes.data(), id.bytes.size());
  const auto ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                            std::chrono::system_clock::now().time_since_epoch())
                                            .count());
  for (int i = 0; i < 6; ++i) id.bytes[i] = static_cast<uint8_t>(ms >> (40 - 8 * i));
  id.bytes[6] = static_cast<uint8_t>((id.bytes[6] & 0x0f) | 0x70);  // version 7
  id.bytes[8] = static_cast<uint8_t>((id.bytes[8] & 0x3f) | 0x80);  // RFC 9562 variant
  return id;
}

RequestId RequestId::Random() {
  RequestId id;
  FillRandom(id.bytes.data(), id.bytes.size());
  id.bytes[6] = static_cast<uint8_t>((id.bytes[6] & 0x0f) | 0x40);  // version 4
  id.bytes[8] = static_cast<uint8_t>((id.bytes[8] & 0x3f) | 0x80);  // RFC 4122 variant
  return id;
}

std::optional<RequestId> RequestId::Parse(std::string_view hex) {
  if (hex.size() != 32) return std::nullopt;
  RequestId id;
  for (size_t i = 0; i < 16; ++i) {
    const int hi = HexValue(hex[2 * i]);
    const int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    id.bytes[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return id;
}

std::string RequestId::ToHex() const {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out(32, '0');
  for (size_t i = 0; i < 16; ++i) {
    out[2 * i] = kDigits[bytes[i] >> 4];
    out[2 * i + 1] = kDigits[bytes[i] & 15];
  }
  return out;
}

size_t RequestIdHash::operator()(const RequestId& id) const {
  uint64_t a;
  uint64_t b;
  std::memcpy(&a, id.bytes.data(), 8);
  std::memcpy(&b, id.bytes.data() + 8, 8);
  return static_cast<size_t>(a ^ (b * 0x9E3779B97F4A7C15ull));
}

const char* RequestStateName(RequestState state) {
  switch (state) {
    case RequestState::kPending: return "pending";
    case RequestState::kDispatched: return "dispatched";
    case RequestState::kReplied: return "replied";
    case RequestState::kFailed: return "failed";
  }
  return "unknown";
}

const char* StoreErrorName(StoreError error) {
  switch (error) {
    case StoreError::kNone: return "none";
    case StoreError::kFull: return "full";
    case StoreError::kBusy: return "busy";
    case StoreError::kNotFound: return "not_found";
    case StoreError::kDiskFull: return "disk_full";
    case StoreError::kReadOnly: return "read_only";
    case StoreError::kIo: return "io";
    case StoreError::kCorrupt: return "corrupt";
    case StoreError::kClosed: return "closed";
    case StoreError::kInternal: return "internal";
    case StoreError::kCount: break;
  }
  return "unknown";
}

std::string EncodeFrames(const Frames& frames) {
  size_t total = 0;
  for (const std::string& f : frames) total += 4 + f.size();
  std::string out;
  out.reserve(total);
  for (const std::string& f : frames) {
    PutU32(&out, static_cast<uint32_t>(f.size()));
    out.append(f);
  }
  return out;
}

bool DecodeFrames(std::string_view blob, Frames* frames) {
  frames->clear();
  while (!blob.empty()) {
    if (blob.size() < 4) return false;
    const uint32_t n = GetU32(blob.data());
    blob.remove_prefix(4);
    if (n > blob.size()) return false;
    frames->emplace_back(blob.substr(0, n));
    blob.remove_prefix(n);
  }
  return true;
}

}  // namespace plantd::store

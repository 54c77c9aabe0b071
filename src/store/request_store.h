// Durable requests: the interface every store backend implements (SQLite
// today, PostgreSQL for the scale-out issue), and the types it speaks.
//
// A store owns a thread (or a connection pool) of its own: the broker core
// calls the operations below and never waits for disk. Each operation is
// queued with a caller-chosen `tag`; its Completion, carrying the same tag,
// comes back later through TakeCompletions(), and completion_fd() becomes
// readable when there are some, so the core's epoll loop can wait on it.
//
// Contract of every backend (docs/durability.md):
//   - A write's completion is delivered only after the transaction holding it
//     is durable (fsync'ed). An error completion means it is not stored.
//   - Writes are group-committed: whatever arrives while one commit is in
//     flight goes into the next transaction.
//   - Reads (Fetch, NextToDispatch) see only committed data, and are answered
//     after every write queued before them.
//   - Completions come back in the order the operations were queued.
//   - Limits (max_requests, max_bytes) refuse with StoreError::kFull; a full
//     or failing disk gives kDiskFull/kReadOnly/kIo/kCorrupt with a message
//     and turns health() to error until a later commit succeeds.
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace plantd::store {

// The identity of a stored request: a UUID (16 bytes), written as 32
// uppercase hex characters on the wire (9/TSP).
struct RequestId {
  std::array<uint8_t, 16> bytes{};

  static RequestId Random();
  // A version-7 UUID (RFC 9562): the Unix time in milliseconds in the first
  // 48 bits, then 74 random bits. Ids made one after another sort near each
  // other, so storing them adds to the end of the store's id index instead
  // of touching a random page of it per request (see bench/RESULTS.md,
  // issue 14: 4-5 KiB written per request with version-4 ids).
  static RequestId TimeOrdered();
  // 32 hex digits in either case; nullopt for anything else.
  static std::optional<RequestId> Parse(std::string_view hex);
  std::string ToHex() const;
  std::string_view AsBytes() const {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
  }
  auto operator<=>(const RequestId&) const = default;
};

struct RequestIdHash {
  size_t operator()(const RequestId& id) const;
};

// What happened to a stored request so far. Values are stored on disk.
enum class RequestState : uint8_t {
  kPending = 0,     // acknowledged, not yet handed to a worker
  kDispatched = 1,  // a worker got it (perhaps several, see attempts)
  kReplied = 2,     // the FINAL reply is stored
  kFailed = 3,      // given up on; a reason is stored
};
inline constexpr size_t kRequestStateCount = 4;
const char* RequestStateName(RequestState state);

// Why an operation failed. kNone is success.
enum class StoreError : uint8_t {
  kNone,
  kFull,      // store.max_requests or store.max_bytes reached
  kBusy,      // too much queued for the store thread (the disk is slow)
  kNotFound,  // no such request (never stored, closed or expired)
  kDiskFull,  // SQLITE_FULL: no space on the device, or a file size limit
  kReadOnly,  // the database file or its file system cannot be written
  kIo,        // an I/O error (EIO, fsync failure, locked by another process)
  kCorrupt,   // the database file is damaged
  kClosed,    // the store has been shut down
  kInternal,  // anything else (out of memory, a bug)
  kCount,
};
inline constexpr size_t kStoreErrorCount = static_cast<size_t>(StoreError::kCount);
// The label in metrics and logs ("full", "disk_full", ...).
const char* StoreErrorName(StoreError error);

// A message body: its frames, owned.
using Frames = std::vector<std::string>;

// Frames <-> one blob: each frame as a 4-byte little-endian length and its
// bytes. Decode returns false on a malformed blob.
std::string EncodeFrames(const Frames& frames);
bool DecodeFrames(std::string_view blob, Frames* frames);

struct StoredRequest {
  RequestId id;
  uint64_t seq = 0;  // store order: older requests have smaller seq
  std::string service;
  Frames body;
  RequestState state = RequestState::kPending;
  uint32_t attempts = 0;  // times marked dispatched, across restarts
};

enum class OpKind : uint8_t {
  kSubmit,
  kMarkDispatched,
  kStoreReply,
  kFail,
  kClose,
  kFetch,
  kNextToDispatch,
  kExpire,
};

// The answer to one operation. Which members are set depends on `op`.
struct Completion {
  OpKind op = OpKind::kSubmit;
  uint64_t tag = 0;  // the caller's, unchanged
  StoreError error = StoreError::kNone;
  std::string message;  // why, when error != kNone (names the file and the cause)
  RequestId id;

  // kSubmit: the store order given to the request, and its service and body
  // handed back (moved, not copied) so the caller can dispatch at once.
  uint64_t seq = 0;
  std::string service;
  // kSubmit: the request body. kFetch of a replied request: the reply.
  // kStoreReply that failed: the reply, handed back to be stored again.
  Frames frames;
  // kFetch: the state; for kFailed, the reason.
  RequestState state = RequestState::kPending;
  std::string reason;
  // kStoreReply: true when the reply did not fit under store.max_bytes and
  // the request was stored as failed instead.
  bool reply_dropped = false;
  // kNextToDispatch: unfinished requests of one service, oldest first.
  std::vector<StoredRequest> requests;
  // kExpire: records deleted.
  uint64_t expired = 0;

  bool ok() const { return error == StoreError::kNone; }
};

struct StoreCounts {
  std::array<uint64_t, kRequestStateCount> by_state{};  // indexed by RequestState
  uint64_t bytes = 0;  // accounted bytes of all stored requests and replies

  uint64_t requests() const { return by_state[0] + by_state[1] + by_state[2] + by_state[3]; }
};

// Upper bounds of the histogram buckets (the last bucket is +Inf).
inline constexpr std::array<uint64_t, 11> kBatchSizeBuckets = {1,  2,   4,   8,    16,  32,
                                                               64, 128, 256, 1024, 4096};
inline constexpr std::array<double, 12> kCommitSecondsBuckets = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5};

struct StoreStats {
  StoreCounts counts;
  uint64_t commits = 0;         // write transactions committed and synced
  uint64_t syncs = 0;           // syncs of the WAL (one may cover several commits)
  uint64_t committed_ops = 0;   // write operations in them
  uint64_t failed_commits = 0;  // write transactions rolled back on an error
  // Operations per committed transaction; last = above the last bound.
  std::array<uint64_t, kBatchSizeBuckets.size() + 1> batch_size{};
  std::array<uint64_t, kCommitSecondsBuckets.size() + 1> commit_seconds{};
  double commit_seconds_sum = 0;
  std::array<uint64_t, kStoreErrorCount> errors{};  // error completions by reason
  uint64_t expired = 0;                             // replies removed by reply_retention
  uint64_t queued_ops = 0;                          // waiting for the store thread right now
};

// Read by the HTTP health check from any thread.
struct StoreHealth {
  bool ok = true;
  std::string message;  // empty when ok: what failed, where, and since when
};

// What the store held when it was opened: after a crash, every request in
// kPending or kDispatched must be dispatched again.
struct RecoveryInfo {
  StoreCounts counts;
  std::vector<std::string> services;  // services with pending or dispatched requests
  // False when the file opened read-only: nothing can be marked dispatched
  // or answered, so stored requests are left on disk rather than run
  // again and again (each reply failing to be stored).
  bool writable = true;
};

class RequestStore {
 public:
  virtual ~RequestStore() = default;
  RequestStore() = default;
  RequestStore(const RequestStore&) = delete;
  RequestStore& operator=(const RequestStore&) = delete;

  // Operations. Any thread; none waits for disk. Each produces exactly one
  // Completion with its tag.

  // Stores a new request in kPending. Completion: seq, service and body.
  virtual void Submit(uint64_t tag, const RequestId& id, std::string service, Frames body) = 0;
  // A worker got the request: kDispatched, attempts + 1. kNotFound if closed
  // or finished.
  virtual void MarkDispatched(uint64_t tag, const RequestId& id) = 0;
  // Stores the FINAL reply: kReplied. kNotFound if closed or already finished
  // (a duplicate reply is not stored twice).
  virtual void StoreReply(uint64_t tag, const RequestId& id, Frames reply) = 0;
  // Gives up: kFailed with `reason`. kNotFound if closed or finished.
  virtual void Fail(uint64_t tag, const RequestId& id, std::string reason) = 0;
  // Deletes the request and its reply, in any state. Succeeds (error kNone)
  // also when there is no such request: closing is idempotent (9/TSP).
  virtual void Close(uint64_t tag, const RequestId& id) = 0;
  // Reads the state (and the reply, or the failure reason). kNotFound if none.
  virtual void Fetch(uint64_t tag, const RequestId& id) = 0;
  // Up to `max_count` unfinished (pending or dispatched) requests of
  // `service` with seq > after_seq, oldest first, stopping once `max_bytes`
  // of bodies are taken (always at least one).
  virtual void NextToDispatch(uint64_t tag, std::string service, uint64_t after_seq,
                              size_t max_count, size_t max_bytes) = 0;
  // Deletes replies and failures older than reply_retention now (the store
  // also does it periodically by itself).
  virtual void Expire(uint64_t tag) = 0;

  // Readable (EPOLLIN) while completions are waiting. Never closed before
  // the store is destroyed.
  virtual int completion_fd() const = 0;
  // Appends every waiting completion to `out`; returns how many. Any thread,
  // but one consumer.
  virtual size_t TakeCompletions(std::vector<Completion>* out) = 0;

  // As found at open. Immutable.
  virtual const RecoveryInfo& recovery() const = 0;
  // Thread-safe snapshots.
  virtual StoreHealth health() const = 0;
  virtual StoreStats stats() const = 0;

  // Finishes what is queued (every operation still gets its completion),
  // then stops the store thread. Later operations complete with kClosed.
  virtual void Shutdown() = 0;
};

}  // namespace plantd::store

// The embedded store: one SQLite file in WAL mode, written by one thread of
// its own that group-commits whatever is queued. Transactions commit with
// synchronous=NORMAL and a WalSyncer makes them durable from a pool of
// threads, so that a commit never waits for the previous one's sync; no
// completion of a write goes out before its transaction is synced, exactly
// as with synchronous=FULL (wal_syncer.h says why this is the same).
//
// Open() does everything that may refuse to start the broker: it creates the
// directory, opens the file, runs PRAGMA quick_check, refuses a file from a
// newer schema (or one that is not a plantd store), migrates an older one in
// place, and reads what a crash left behind (recovery()). A file that opens
// read-only is not refused: the store then answers every write with
// kReadOnly and health() says so, while stored replies can still be read.
#pragma once

#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "config/options.h"
#include "store/request_store.h"
#include "store/wal_syncer.h"

namespace plantd::store {

// PRAGMA user_version of the files this build writes.
inline constexpr int kSchemaVersion = 1;
// PRAGMA application_id of a plantd-broker store ("plnt").
inline constexpr int32_t kApplicationId = 0x706c6e74;

class SqliteStore final : public RequestStore {
 public:
  // Test injection. Production code passes none.
  struct Hooks {
    // Wall-clock milliseconds since the epoch (created/finished times, retention).
    std::function<int64_t()> now_ms;
    // Runs on the store thread just before each COMMIT, with the number of
    // write operations in the transaction (to hold a commit open, or count).
    std::function<void(size_t ops)> before_commit;
    // Syncs the WAL file (0 or an errno) in place of fdatasync(fd): to hold a
    // sync, count them, or model a disk that loses what was not synced.
    WalSyncer::SyncFn sync_wal;
    // The SQLite VFS to open the file with; empty: the default one.
    std::string vfs;
  };

  // Bounds of the queue to the store thread: past them an operation completes
  // at once with kBusy instead of growing memory while the disk is slow.
  static constexpr size_t kMaxQueuedOps = 100000;
  static constexpr size_t kMaxQueuedBytes = size_t{256} << 20;
  // Retention deletes at most this many records per transaction.
  static constexpr size_t kExpireBatch = 1000;

  static Result<std::unique_ptr<SqliteStore>> Open(const StoreOptions& options, Hooks hooks = {});
  ~SqliteStore() override;

  void Submit(uint64_t tag, const RequestId& id, std::string service, Frames body) override;
  void MarkDispatched(uint64_t tag, const RequestId& id) override;
  void StoreReply(uint64_t tag, const RequestId& id, Frames reply) override;
  void Fail(uint64_t tag, const RequestId& id, std::string reason) override;
  void Close(uint64_t tag, const RequestId& id) override;
  void Fetch(uint64_t tag, const RequestId& id) override;
  void NextToDispatch(uint64_t tag, std::string service, uint64_t after_seq, size_t max_count,
                      size_t max_bytes) override;
  void Expire(uint64_t tag) override;

  int completion_fd() const override { return event_fd_; }
  size_t TakeCompletions(std::vector<Completion>* out) override;

  const RecoveryInfo& recovery() const override { return recovery_; }
  StoreHealth health() const override;
  StoreStats stats() const override;
  void Shutdown() override;

  const std::string& path() const { return options_.path; }

 private:
  struct Op;
  // An operation on one stored request; the caller adds its payload.
  static Op MakeOp(OpKind kind, uint64_t tag, const RequestId& id);
  struct Statements;
  struct DbCloser {
    void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
  };

  SqliteStore(const StoreOptions& options, Hooks hooks);
  Status OpenDatabase();
  void Enqueue(Op op);
  void Complete(std::vector<Completion> done);
  // A batch's completions, once what it wrote is durable (or will not be).
  // On the writer thread, or a sync thread; in batch order.
  void Deliver(WalSyncer::Batch batch, const std::string& sync_error);

  // Store thread only.
  void Run();
  void ProcessBatch(std::vector<Op>* batch);
  int ExecuteWrite(Op& op, Completion* c);
  void ExecuteRead(Op& op, Completion* c);
  void ExpireOnce(Completion* c, int* rc);
  void SetHealth(bool ok, std::string message);
  void RecordCommit(size_t ops, double seconds);
  void PublishStats();
  int64_t NowMs() const;

  const StoreOptions options_;
  const Hooks hooks_;
  std::unique_ptr<sqlite3, DbCloser> db_;
  std::unique_ptr<Statements> stmts_;  // store thread only after Open
  bool read_only_ = false;
  RecoveryInfo recovery_;
  // Null when the file is read-only. Destroyed before the members that
  // Deliver uses.
  std::unique_ptr<WalSyncer> syncer_;
  int event_fd_ = -1;

  // Store thread only.
  StoreCounts counts_;
  std::chrono::steady_clock::time_point next_expire_;

  mutable std::mutex queue_mutex_;
  std::condition_variable queue_cv_;
  std::vector<Op> queue_;    // GUARDED_BY(queue_mutex_)
  size_t queued_bytes_ = 0;  // GUARDED_BY(queue_mutex_)
  bool stopping_ = false;    // GUARDED_BY(queue_mutex_)
  bool stopped_ = false;     // GUARDED_BY(queue_mutex_)

  std::mutex done_mutex_;
  std::vector<Completion> done_;  // GUARDED_BY(done_mutex_)
  // Set, and the fd written, when done_ gets its first completion; both
  // cleared when the core takes them. Changed under done_mutex_ only.
  std::atomic<bool> has_done_{false};

  // Lock order: queue_mutex_ before stats_mutex_; the WalSyncer's mutex (held
  // while Deliver runs) before stats_mutex_ and done_mutex_.
  mutable std::mutex stats_mutex_;
  StoreStats stats_;    // GUARDED_BY(stats_mutex_)
  StoreHealth health_;  // GUARDED_BY(stats_mutex_)

  std::thread thread_;
};

struct BackupOptions {
  int pages_per_step = 256;            // ~1 MiB per step at the default page size
  std::chrono::milliseconds pause{1};  // between steps, to leave the disk to the store
};

// Copies the store at `store_path` to `dest_path` with SQLite's online backup
// API, while the store is in use (by this or another process): a separate
// read-only connection holds one read transaction for the whole copy, so the
// copy is the database as of the moment the backup began (every request
// acknowledged before then is in it) and the store's writer never waits.
// The copy is written to `dest_path`.tmp, checked with quick_check, synced,
// and renamed over `dest_path`.
Status BackupSqliteStore(const std::string& store_path, const std::string& dest_path,
                         const BackupOptions& options = {});

}  // namespace plantd::store

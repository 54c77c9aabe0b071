// Makes the store's commits durable by syncing its WAL file from a small pool
// of threads, so that the writer's next commit never waits for the previous
// one's sync, and hands each batch's completions out, in order, once
// everything that batch wrote is on disk.
//
// Why: SQLite's synchronous=FULL syncs the WAL inside every COMMIT, so the
// writer cannot start the next transaction until the disk has answered, and
// an acknowledgement waits for the commit in progress and then its own. The
// store commits with synchronous=NORMAL instead (the WAL frames are written,
// not synced) and this class does the syncing: a sync that *starts* after a
// batch was written makes that batch durable when it returns (fdatasync's
// contract), whatever else was written meanwhile. Several syncs may be in
// flight at once; disks that complete overlapping syncs together (this
// machine's does: bench/RESULTS.md, issue 14) then acknowledge more batches
// per second than one sync at a time would.
//
// The guarantee is the same as FULL's: no completion of a batch that wrote
// anything is delivered before a sync of the WAL that began after the batch
// was committed has returned successfully. A batch that wrote nothing (reads,
// or a transaction that failed and was rolled back) waits for the batches
// before it, so completions keep the order of the operations.
//
// After a failed sync, what the file holds is unknown (Linux reports a lost
// write once per open file and may succeed on the next call), so the failure
// sticks: every batch not yet delivered, and every later one, is delivered
// with the error, until the store is opened again. Each sync thread syncs
// through a file descriptor of its own for the same reason: a write-back
// error is then reported to every thread whose sync could have covered the
// lost pages, not only to the first one to ask.
//
// Threads: Add, WaitForRoom, Drain and the destructor are for the store's
// writer thread (one caller); the sync threads are this class's own; Deliver
// runs on either, under this class's mutex: one call at a time, in batch
// order, and it must not call back into this class.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "store/request_store.h"

namespace plantd::store {

class WalSyncer {
 public:
  // One committed (or attempted) transaction and the completions of its batch.
  struct Batch {
    std::vector<Completion> done;
    bool wrote = false;  // the transaction committed writes that must be synced
    size_t counted = 0;  // the callers' write operations in it (for statistics)
    std::chrono::steady_clock::time_point began;  // BEGIN, for the commit latency
    std::string error;  // why the transaction failed and was rolled back; empty if not
  };
  // `sync_error` is empty when everything the batch wrote is durable; else
  // why it may not be (the batch's writes must then be reported as failed).
  using Deliver = std::function<void(Batch batch, const std::string& sync_error)>;
  // Syncs the WAL: 0, or an errno. Production: fdatasync(fd). Tests wrap it
  // to hold a sync or to model a disk that loses unsynced writes.
  using SyncFn = std::function<int(int fd)>;

  // Opens `wal_path` once per thread (it must exist: SQLite creates it when
  // the database is opened in WAL mode, and keeps it while the connection is
  // open), syncs it and its directory once, and starts the threads.
  static Result<std::unique_ptr<WalSyncer>> Start(const std::string& wal_path, size_t threads,
                                                  SyncFn sync, Deliver deliver);
  // Drain()s, then stops the sync threads and closes the files.
  ~WalSyncer();
  WalSyncer(const WalSyncer&) = delete;
  WalSyncer& operator=(const WalSyncer&) = delete;

  // Writer: a batch was just processed. Its completions are delivered as soon
  // as it (if it wrote) and every batch added before it are durable.
  void Add(Batch batch);
  // Writer: blocks while every sync thread is busy and a committed batch is
  // already waiting for one: committing again then would only make more,
  // smaller transactions, not earlier acknowledgements. Call before taking
  // the next batch, so that what queues up meanwhile joins it.
  void WaitForRoom();
  // Writer: blocks until every batch added so far has been delivered.
  void Drain();
  // Non-empty once a sync has failed: why. Any thread.
  std::string failure() const;

  // Syncs done so far, failed ones included. Any thread.
  uint64_t syncs() const;

 private:
  struct Pending {
    uint64_t needs = 0;  // delivered once durable_ >= needs
    Batch batch;
  };

  WalSyncer(std::vector<int> fds, SyncFn sync, Deliver deliver);
  void RunSyncThread(int fd);
  // REQUIRES: mutex_ held.
  void DeliverReady();

  const std::vector<int> fds_;  // one per sync thread, on the same WAL file
  const SyncFn sync_;
  const Deliver deliver_;

  mutable std::mutex mutex_;
  std::condition_variable work_cv_;  // sync threads: something to sync, or stop
  std::condition_variable room_cv_;  // writer: a sync finished, or a batch delivered
  uint64_t committed_ = 0;           // GUARDED_BY(mutex_) batches that wrote, numbered from 1
  uint64_t covered_ = 0;             // GUARDED_BY(mutex_) newest batch a started sync covers
  uint64_t durable_ = 0;             // GUARDED_BY(mutex_) newest batch a finished sync covered
  size_t in_flight_ = 0;             // GUARDED_BY(mutex_) syncs running now
  std::deque<Pending> pending_;      // GUARDED_BY(mutex_) in batch order
  std::string failure_;              // GUARDED_BY(mutex_) sticky
  uint64_t syncs_ = 0;               // GUARDED_BY(mutex_)
  bool stopping_ = false;            // GUARDED_BY(mutex_)

  std::vector<std::thread> sync_threads_;
};

}  // namespace plantd::store

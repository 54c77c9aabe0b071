// An SQLite VFS, over the default one, that models a machine losing power:
// it remembers what every write replaced until a sync of that file returns,
// so that CrashImage() can write out a database as the disk would hold it if
// the power failed at that moment (every write not yet synced undone).
//
// leveldb tests its durability the same way, with an environment that drops
// unsynced writes (FaultInjectionTestEnv). A kill -9 cannot test this: the
// kernel keeps a killed process's writes.
//
// Syncs made outside SQLite (the store's WalSyncer syncs the WAL itself, on
// its own file descriptors) are reported through SyncFile().
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace plantd::store::testing {

class UnsyncedWritesVfs {
 public:
  // Registers the VFS (once per process) and returns it.
  static UnsyncedWritesVfs& Get();
  static constexpr const char* kName = "plantd-unsynced-writes";

  // fdatasync(fd) of the file at `path` (opened through this VFS): what was
  // written to it before the call counts as synced when it returns 0.
  // Returns 0 or an errno, like the store's sync function. `while_syncing`,
  // if given, runs after the sync has begun: a test holds a slow sync there
  // while more is written (which that sync does not cover).
  int SyncFile(const std::string& path, int fd,
               const std::function<void()>& while_syncing = nullptr);

  // Writes `db_path` and its WAL as they would be after a power failure now
  // to `dest_path` and `dest_path`-wal. Writes through this VFS wait
  // meanwhile, so the image is of one instant. The WAL index (-shm) is not
  // copied: SQLite rebuilds it from the WAL, as after a real crash.
  bool CrashImage(const std::string& db_path, const std::string& dest_path);

  // Writes remembered (not yet synced) for `path` right now.
  size_t UnsyncedWrites(const std::string& path);

  // For the file methods (unsynced_writes_vfs.cc). REQUIRES: mutex() held.
  // What a write or truncate of `path` is about to replace, to be put back
  // by a crash.
  void RecordChange(const std::string& path, int64_t offset, std::string old_bytes,
                    int64_t old_size);
  // Where a sync starting now begins; after it returns, MarkSynced(path, it).
  uint64_t SyncPoint() const { return next_seq_; }
  // Everything recorded for `path` before `point` is on disk.
  void MarkSynced(const std::string& path, uint64_t point);
  std::mutex& mutex() { return mutex_; }

 private:
  struct Change {
    uint64_t seq;
    int64_t offset;
    std::string old_bytes;  // what [offset, offset + size) held, up to old_size
    int64_t old_size;       // the file's size before the change
  };

  UnsyncedWritesVfs() = default;

  // Writes go through the VFS under this mutex (a crash image sees none
  // half done).
  std::mutex mutex_;
  uint64_t next_seq_ = 1;                               // GUARDED_BY(mutex_)
  std::map<std::string, std::vector<Change>> changes_;  // GUARDED_BY(mutex_) by path
};

}  // namespace plantd::store::testing

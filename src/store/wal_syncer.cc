#include "store/wal_syncer.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

namespace plantd::store {
namespace {

void CloseAll(const std::vector<int>& fds) {
  for (int fd : fds) close(fd);
}

}  // namespace

Result<std::unique_ptr<WalSyncer>> WalSyncer::Start(const std::string& wal_path, size_t threads,
                                                    SyncFn sync, Deliver deliver) {
  if (threads == 0) return Status::InvalidArgument("store: at least one sync thread is needed");
  std::vector<int> fds;
  for (size_t i = 0; i < threads; ++i) {
    const int fd = open(wal_path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      const int err = errno;
      CloseAll(fds);
      return Status::Error(fmt::format("store: cannot open the WAL file {} to sync it: {}",
                                       wal_path, std::strerror(err)));
    }
    fds.push_back(fd);
  }
  // The WAL file may have just been created: its directory entry must be on
  // disk too before anything in it counts as durable (SQLite syncs the
  // directory at a new WAL's first sync; the syncs are ours now).
  std::filesystem::path parent = std::filesystem::path(wal_path).parent_path();
  if (parent.empty()) parent = std::filesystem::path(".");
  int err = sync ? sync(fds[0]) : (fdatasync(fds[0]) == 0 ? 0 : errno);
  if (err == 0) {
    const int dir = open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0 || fsync(dir) != 0) err = errno;
    if (dir >= 0) close(dir);
  }
  if (err != 0) {
    CloseAll(fds);
    return Status::Error(fmt::format("store: cannot sync the WAL file {} or its directory: {}",
                                     wal_path, std::strerror(err)));
  }
  return std::unique_ptr<WalSyncer>(
      new WalSyncer(std::move(fds), std::move(sync), std::move(deliver)));
}

WalSyncer::WalSyncer(std::vector<int> fds, SyncFn sync, Deliver deliver)
    : fds_(std::move(fds)), sync_(std::move(sync)), deliver_(std::move(deliver)) {
  sync_threads_.reserve(fds_.size());
  for (int fd : fds_) sync_threads_.emplace_back([this, fd] { RunSyncThread(fd); });
}

WalSyncer::~WalSyncer() {
  Drain();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  for (std::thread& t : sync_threads_) t.join();
  CloseAll(fds_);
}

void WalSyncer::Add(Batch batch) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (batch.wrote) ++committed_;
  pending_.push_back({committed_, std::move(batch)});
  if (committed_ > covered_) work_cv_.notify_one();
  DeliverReady();
}

void WalSyncer::WaitForRoom() {
  std::unique_lock<std::mutex> lock(mutex_);
  room_cv_.wait(lock, [this] { return in_flight_ < fds_.size() || committed_ == covered_; });
}

void WalSyncer::Drain() {
  std::unique_lock<std::mutex> lock(mutex_);
  room_cv_.wait(lock, [this] { return pending_.empty(); });
}

std::string WalSyncer::failure() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return failure_;
}

uint64_t WalSyncer::syncs() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return syncs_;
}

void WalSyncer::RunSyncThread(int fd) {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    work_cv_.wait(lock, [this] { return stopping_ || committed_ > covered_; });
    if (committed_ == covered_) return;  // stopping, and nothing left to sync
    // Everything committed so far was written before this sync starts: it
    // is durable when the sync returns, whatever is written meanwhile.
    const uint64_t target = committed_;
    covered_ = target;
    ++in_flight_;
    lock.unlock();
    const int err = sync_ ? sync_(fd) : (fdatasync(fd) == 0 ? 0 : errno);
    lock.lock();
    --in_flight_;
    ++syncs_;
    if (err != 0) {
      if (failure_.empty()) {
        failure_ = fmt::format("fdatasync of the WAL failed: {}", std::strerror(err));
      }
    } else if (target > durable_) {
      // Syncs may return out of order; each one vouches for what was
      // written before it started, so the newest target wins.
      durable_ = target;
    }
    DeliverReady();
    room_cv_.notify_all();
  }
}

void WalSyncer::DeliverReady() {
  // Held throughout, so that batches are delivered one at a time and in
  // order whichever thread finds them ready.
  bool delivered = false;
  while (!pending_.empty() && (pending_.front().needs <= durable_ || !failure_.empty())) {
    // After a failure nothing waiting is vouched for, not even by a sync
    // that succeeds later (see the header).
    const bool durable = failure_.empty();
    Pending p = std::move(pending_.front());
    pending_.pop_front();
    deliver_(std::move(p.batch), durable ? std::string() : failure_);
    delivered = true;
  }
  if (delivered) room_cv_.notify_all();
}

}  // namespace plantd::store

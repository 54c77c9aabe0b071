#include "unsynced_writes_vfs.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <new>

namespace plantd::store::testing {
namespace {

sqlite3_vfs* real_vfs = nullptr;

// Our file: SQLite allocates szOsFile bytes; the real file follows ours.
struct File {
  sqlite3_file base;
  std::string* path;  // null for files without a name (temporary)
  sqlite3_file* real() { return reinterpret_cast<sqlite3_file*>(this + 1); }
};

File* Of(sqlite3_file* f) { return reinterpret_cast<File*>(f); }
UnsyncedWritesVfs& Vfs() { return UnsyncedWritesVfs::Get(); }

// Reads [offset, offset + n) of the real file, clipped to its size.
std::string ReadOld(sqlite3_file* real, int64_t offset, int64_t n, int64_t size) {
  const int64_t end = std::min(offset + n, size);
  if (end <= offset) return {};
  std::string old(static_cast<size_t>(end - offset), '\0');
  real->pMethods->xRead(real, old.data(), static_cast<int>(old.size()), offset);
  return old;
}

int Close(sqlite3_file* f) {
  File* file = Of(f);
  const int rc = file->real()->pMethods->xClose(file->real());
  delete file->path;
  file->path = nullptr;
  return rc;
}
int Read(sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
  return Of(f)->real()->pMethods->xRead(Of(f)->real(), buf, n, off);
}
int Write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 off) {
  File* file = Of(f);
  sqlite3_file* real = file->real();
  if (file->path == nullptr) return real->pMethods->xWrite(real, buf, n, off);
  std::lock_guard<std::mutex> lock(Vfs().mutex());
  sqlite3_int64 size = 0;
  int rc = real->pMethods->xFileSize(real, &size);
  if (rc != SQLITE_OK) return rc;
  Vfs().RecordChange(*file->path, off, ReadOld(real, off, n, size), size);
  return real->pMethods->xWrite(real, buf, n, off);
}
int Truncate(sqlite3_file* f, sqlite3_int64 to) {
  File* file = Of(f);
  sqlite3_file* real = file->real();
  if (file->path == nullptr) return real->pMethods->xTruncate(real, to);
  std::lock_guard<std::mutex> lock(Vfs().mutex());
  sqlite3_int64 size = 0;
  int rc = real->pMethods->xFileSize(real, &size);
  if (rc != SQLITE_OK) return rc;
  Vfs().RecordChange(*file->path, to, ReadOld(real, to, size - to, size), size);
  return real->pMethods->xTruncate(real, to);
}
int Sync(sqlite3_file* f, int flags) {
  File* file = Of(f);
  sqlite3_file* real = file->real();
  if (file->path == nullptr) return real->pMethods->xSync(real, flags);
  uint64_t point = 0;
  {
    std::lock_guard<std::mutex> lock(Vfs().mutex());
    point = Vfs().SyncPoint();
  }
  const int rc = real->pMethods->xSync(real, flags);
  if (rc == SQLITE_OK) {
    std::lock_guard<std::mutex> lock(Vfs().mutex());
    Vfs().MarkSynced(*file->path, point);
  }
  return rc;
}
int FileSize(sqlite3_file* f, sqlite3_int64* size) {
  return Of(f)->real()->pMethods->xFileSize(Of(f)->real(), size);
}
int Lock(sqlite3_file* f, int level) {
  return Of(f)->real()->pMethods->xLock(Of(f)->real(), level);
}
int Unlock(sqlite3_file* f, int level) {
  return Of(f)->real()->pMethods->xUnlock(Of(f)->real(), level);
}
int CheckReservedLock(sqlite3_file* f, int* out) {
  return Of(f)->real()->pMethods->xCheckReservedLock(Of(f)->real(), out);
}
int FileControl(sqlite3_file* f, int op, void* arg) {
  return Of(f)->real()->pMethods->xFileControl(Of(f)->real(), op, arg);
}
int SectorSize(sqlite3_file* f) { return Of(f)->real()->pMethods->xSectorSize(Of(f)->real()); }
int DeviceCharacteristics(sqlite3_file* f) {
  return Of(f)->real()->pMethods->xDeviceCharacteristics(Of(f)->real());
}
int ShmMap(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
  return Of(f)->real()->pMethods->xShmMap(Of(f)->real(), region, size, extend, out);
}
int ShmLock(sqlite3_file* f, int offset, int n, int flags) {
  return Of(f)->real()->pMethods->xShmLock(Of(f)->real(), offset, n, flags);
}
void ShmBarrier(sqlite3_file* f) { Of(f)->real()->pMethods->xShmBarrier(Of(f)->real()); }
int ShmUnmap(sqlite3_file* f, int delete_flag) {
  return Of(f)->real()->pMethods->xShmUnmap(Of(f)->real(), delete_flag);
}
// No memory-mapped reads: every change must pass through Write.
int Fetch(sqlite3_file*, sqlite3_int64, int, void** out) {
  *out = nullptr;
  return SQLITE_OK;
}
int Unfetch(sqlite3_file*, sqlite3_int64, void*) { return SQLITE_OK; }

const sqlite3_io_methods kMethods = {
    3,
    Close,
    Read,
    Write,
    Truncate,
    Sync,
    FileSize,
    Lock,
    Unlock,
    CheckReservedLock,
    FileControl,
    SectorSize,
    DeviceCharacteristics,
    ShmMap,
    ShmLock,
    ShmBarrier,
    ShmUnmap,
    Fetch,
    Unfetch,
};

int Open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
  File* file = Of(f);
  file->base.pMethods = nullptr;
  file->path = nullptr;
  const int rc = real_vfs->xOpen(real_vfs, name, file->real(), flags, out_flags);
  if (rc != SQLITE_OK) return rc;
  if (name != nullptr) file->path = new std::string(name);
  file->base.pMethods = &kMethods;
  return SQLITE_OK;
}
int Delete(sqlite3_vfs*, const char* name, int sync_dir) {
  return real_vfs->xDelete(real_vfs, name, sync_dir);
}
int Access(sqlite3_vfs*, const char* name, int flags, int* out) {
  return real_vfs->xAccess(real_vfs, name, flags, out);
}
int FullPathname(sqlite3_vfs*, const char* name, int n, char* out) {
  return real_vfs->xFullPathname(real_vfs, name, n, out);
}
int Randomness(sqlite3_vfs*, int n, char* out) { return real_vfs->xRandomness(real_vfs, n, out); }
int Sleep(sqlite3_vfs*, int us) { return real_vfs->xSleep(real_vfs, us); }
int CurrentTime(sqlite3_vfs*, double* out) { return real_vfs->xCurrentTime(real_vfs, out); }
int GetLastError(sqlite3_vfs*, int n, char* out) {
  return real_vfs->xGetLastError(real_vfs, n, out);
}
int CurrentTimeInt64(sqlite3_vfs*, sqlite3_int64* out) {
  return real_vfs->xCurrentTimeInt64(real_vfs, out);
}

bool ReadWhole(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return true;
}

}  // namespace

UnsyncedWritesVfs& UnsyncedWritesVfs::Get() {
  static UnsyncedWritesVfs* instance = [] {
    real_vfs = sqlite3_vfs_find(nullptr);
    static sqlite3_vfs vfs{};
    vfs.iVersion = 2;
    vfs.szOsFile = static_cast<int>(sizeof(File)) + real_vfs->szOsFile;
    vfs.mxPathname = real_vfs->mxPathname;
    vfs.zName = kName;
    vfs.xOpen = Open;
    vfs.xDelete = Delete;
    vfs.xAccess = Access;
    vfs.xFullPathname = FullPathname;
    vfs.xRandomness = Randomness;
    vfs.xSleep = Sleep;
    vfs.xCurrentTime = CurrentTime;
    vfs.xGetLastError = GetLastError;
    vfs.xCurrentTimeInt64 = CurrentTimeInt64;
    sqlite3_vfs_register(&vfs, 0);
    return new UnsyncedWritesVfs();
  }();
  return *instance;
}

void UnsyncedWritesVfs::RecordChange(const std::string& path, int64_t offset, std::string old_bytes,
                                     int64_t old_size) {
  changes_[path].push_back({next_seq_++, offset, std::move(old_bytes), old_size});
}

void UnsyncedWritesVfs::MarkSynced(const std::string& path, uint64_t point) {
  auto it = changes_.find(path);
  if (it == changes_.end()) return;
  std::vector<Change>& v = it->second;
  v.erase(std::remove_if(v.begin(), v.end(), [point](const Change& c) { return c.seq < point; }),
          v.end());
}

int UnsyncedWritesVfs::SyncFile(const std::string& path, int fd,
                                const std::function<void()>& while_syncing) {
  uint64_t point = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    point = SyncPoint();
  }
  if (while_syncing) while_syncing();
  if (fdatasync(fd) != 0) return errno;
  std::lock_guard<std::mutex> lock(mutex_);
  MarkSynced(path, point);
  return 0;
}

size_t UnsyncedWritesVfs::UnsyncedWrites(const std::string& path) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = changes_.find(path);
  return it == changes_.end() ? 0 : it->second.size();
}

bool UnsyncedWritesVfs::CrashImage(const std::string& db_path, const std::string& dest_path) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const char* suffix : {"", "-wal"}) {
    std::string bytes;
    if (!ReadWhole(db_path + suffix, &bytes)) {
      if (*suffix == '\0') return false;
      continue;  // no WAL: nothing to undo in it either
    }
    auto it = changes_.find(db_path + suffix);
    if (it != changes_.end()) {
      // Newest first, so each change finds the file as it left it.
      for (auto c = it->second.rbegin(); c != it->second.rend(); ++c) {
        const auto offset = static_cast<size_t>(c->offset);
        if (bytes.size() < offset + c->old_bytes.size()) {
          bytes.resize(offset + c->old_bytes.size());
        }
        std::memcpy(bytes.data() + offset, c->old_bytes.data(), c->old_bytes.size());
        bytes.resize(static_cast<size_t>(c->old_size));
      }
    }
    std::ofstream out(dest_path + suffix, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) return false;
  }
  return true;
}

}  // namespace plantd::store::testing

#include "store/sqlite_store.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/eventfd.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <tuple>
#include <utility>

#include "log/log.h"

namespace plantd::store {
namespace {

// Bytes charged to every stored request on top of its service, body, reply
// and reason: the row, its index entries and page slack, roughly.
constexpr uint64_t kRowOverhead = 64;

// Schema migrations: kMigrations[v] takes a file from user_version v to v+1.
// All steps up to kSchemaVersion run in one transaction at open.
constexpr const char* kMigrations[] = {
    // 0 -> 1: the requests table. seq is AUTOINCREMENT so that it is never
    // reused after a delete: dispatch cursors (NextToDispatch) rely on it.
    // service is a BLOB because MDP service names are bytes.
    "CREATE TABLE requests ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  id BLOB NOT NULL UNIQUE,"
    "  service BLOB NOT NULL,"
    "  body BLOB NOT NULL,"
    "  state INTEGER NOT NULL,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  created_ms INTEGER NOT NULL,"
    "  finished_ms INTEGER,"
    "  reply BLOB,"
    "  reason TEXT,"
    "  bytes INTEGER NOT NULL);"
    "CREATE INDEX requests_unfinished ON requests(service, seq) WHERE state < 2;"
    "CREATE INDEX requests_finished ON requests(finished_ms) WHERE state >= 2;",
};
static_assert(std::size(kMigrations) == kSchemaVersion);

bool IsWrite(OpKind kind) { return kind != OpKind::kFetch && kind != OpKind::kNextToDispatch; }

const char* OpName(OpKind kind) {
  switch (kind) {
    case OpKind::kSubmit: return "submit";
    case OpKind::kMarkDispatched: return "mark dispatched";
    case OpKind::kStoreReply: return "store reply";
    case OpKind::kFail: return "fail";
    case OpKind::kClose: return "close";
    case OpKind::kFetch: return "fetch";
    case OpKind::kNextToDispatch: return "next to dispatch";
    case OpKind::kExpire: return "expire";
  }
  return "operation";
}

// An SQLite result that concerns one operation only; anything else (I/O,
// full, read-only, corrupt, busy) aborts the whole transaction.
bool IsOpLevel(int rc) {
  const int primary = rc & 0xff;
  return primary == SQLITE_CONSTRAINT || primary == SQLITE_TOOBIG || primary == SQLITE_MISMATCH ||
         primary == SQLITE_RANGE;
}

struct StmtCloser {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtCloser>;

// Resets a statement and its bindings when a use of it ends.
class StmtUse {
 public:
  explicit StmtUse(sqlite3_stmt* s) : s_(s) {}
  ~StmtUse() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  StmtUse(const StmtUse&) = delete;
  StmtUse& operator=(const StmtUse&) = delete;

  void Blob(int i, std::string_view v) {
    sqlite3_bind_blob64(s_, i, v.empty() ? "" : v.data(), v.size(), SQLITE_STATIC);
  }
  void Text(int i, std::string_view v) {
    sqlite3_bind_text64(s_, i, v.data(), v.size(), SQLITE_STATIC, SQLITE_UTF8);
  }
  void Int(int i, int64_t v) { sqlite3_bind_int64(s_, i, v); }
  int Step() { return sqlite3_step(s_); }
  int64_t ColInt(int i) { return sqlite3_column_int64(s_, i); }
  std::string_view ColBlob(int i) {
    const void* p = sqlite3_column_blob(s_, i);
    const int n = sqlite3_column_bytes(s_, i);
    return p == nullptr ? std::string_view() : std::string_view(static_cast<const char*>(p), n);
  }

 private:
  sqlite3_stmt* s_;
};

int Exec(sqlite3* db, const char* sql) { return sqlite3_exec(db, sql, nullptr, nullptr, nullptr); }

StoreError Classify(int rc, int sys_errno) {
  if (sys_errno == ENOSPC || sys_errno == EFBIG || sys_errno == EDQUOT)
    return StoreError::kDiskFull;
  if (sys_errno == EROFS) return StoreError::kReadOnly;
  switch (rc & 0xff) {
    case SQLITE_FULL: return StoreError::kDiskFull;
    case SQLITE_READONLY: return StoreError::kReadOnly;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return StoreError::kCorrupt;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_PROTOCOL: return StoreError::kIo;
    default: return StoreError::kInternal;
  }
}

// What a failed write means to an operator, and what to do about it: the
// start of the message that titanic.request's 500, the log and /healthz
// carry. SQLite's own wording ("disk I/O error" for a file size limit)
// does not say it.
std::string_view FailureHeadline(StoreError error) {
  switch (error) {
    case StoreError::kDiskFull:
      return "disk full (free space on its file system, or raise the file size limit)";
    case StoreError::kReadOnly:
      return "read-only (make the file, its directory and its file system writable)";
    case StoreError::kIo:
      return "I/O error (check the disk and the kernel log; or another process holds the "
             "database locked)";
    case StoreError::kCorrupt: return "the database file is damaged (restore it from a backup)";
    default: return "write failed";
  }
}

std::string Describe(sqlite3* db, const std::string& path, std::string_view what, int rc) {
  std::string msg = fmt::format("store {}: {} failed: {} (SQLite code {})", path, what,
                                db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc), rc);
  const int e = db != nullptr ? sqlite3_system_errno(db) : 0;
  if (e != 0) msg += fmt::format(", {}", std::strerror(e));
  return msg;
}

// Runs `sql` and returns its first column of every row, joined by "; ".
int QueryText(sqlite3* db, const char* sql, std::string* out, size_t max_rows = 10) {
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v2(db, sql, -1, &raw, nullptr);
  if (rc != SQLITE_OK) return rc;
  StmtPtr stmt(raw);
  out->clear();
  size_t rows = 0;
  while ((rc = sqlite3_step(raw)) == SQLITE_ROW) {
    if (rows++ >= max_rows) continue;
    if (!out->empty()) out->append("; ");
    const unsigned char* t = sqlite3_column_text(raw, 0);
    out->append(t != nullptr ? reinterpret_cast<const char*>(t) : "");
  }
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int QueryInt(sqlite3* db, const char* sql, int64_t* out) {
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v2(db, sql, -1, &raw, nullptr);
  if (rc != SQLITE_OK) return rc;
  StmtPtr stmt(raw);
  rc = sqlite3_step(raw);
  if (rc == SQLITE_ROW) {
    *out = sqlite3_column_int64(raw, 0);
    return SQLITE_OK;
  }
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

// The completion of an operation that failed: only what it was, and why.
Completion FailedCompletion(OpKind kind, uint64_t tag, const RequestId& id, StoreError error,
                            std::string message) {
  Completion c;
  c.op = kind;
  c.tag = tag;
  c.id = id;
  c.error = error;
  c.message = std::move(message);
  return c;
}

// After a failed sync of the WAL (WalSyncer::failure()), for the writes it
// covered and every later one.
std::string SyncFailureMessage(const std::string& path, const std::string& why) {
  return fmt::format(
      "store {}: I/O error: {}; nothing more is stored until the broker restarts and reads the "
      "file again",
      path, why);
}

int64_t SystemNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

struct SqliteStore::Op {
  OpKind kind = OpKind::kSubmit;
  uint64_t tag = 0;
  bool internal = false;  // the store's own (periodic expiry): no completion
  RequestId id;
  std::string service;
  Frames frames;
  std::string reason;
  uint64_t after_seq = 0;
  size_t max_count = 0;
  size_t max_bytes = 0;

  size_t Bytes() const {
    size_t n = sizeof(Op) + service.size() + reason.size();
    for (const std::string& f : frames) n += f.size() + sizeof(std::string);
    return n;
  }
};

struct SqliteStore::Statements {
  StmtPtr insert, find, mark_dispatched, reply, fail, remove, fetch, next, expire_select;
};

SqliteStore::SqliteStore(const StoreOptions& options, Hooks hooks)
    : options_(options), hooks_(std::move(hooks)) {}

int64_t SqliteStore::NowMs() const { return hooks_.now_ms ? hooks_.now_ms() : SystemNowMs(); }

namespace {

// Process-wide SQLite settings, before SQLite's first use (sqlite3_config
// refuses once it is initialized; then the defaults stay, which are correct,
// only slower). Memory statistics off: with them on, Debian's build takes a
// global mutex for every allocation, and the store thread allocates for
// every statement step (its build also omits the lookaside allocator).
void ConfigureSqliteOnce() {
  static const bool once = [] {
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    return true;
  }();
  (void)once;
}

}  // namespace

Result<std::unique_ptr<SqliteStore>> SqliteStore::Open(const StoreOptions& options, Hooks hooks) {
  if (options.path.empty()) return Status::InvalidArgument("store.path is empty");
  ConfigureSqliteOnce();
  std::unique_ptr<SqliteStore> store(new SqliteStore(options, std::move(hooks)));
  Status s = store->OpenDatabase();
  if (!s.ok()) return s;
  store->event_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (store->event_fd_ < 0) {
    return Status::Error(fmt::format("store: eventfd: {}", std::strerror(errno)));
  }
  if (!store->read_only_) {
    // The WAL file exists from here on: opening in WAL mode created it, and
    // SQLite keeps it while this connection is open.
    SqliteStore* self = store.get();
    auto syncer =
        WalSyncer::Start(options.path + "-wal", options.sync_threads, store->hooks_.sync_wal,
                         [self](WalSyncer::Batch batch, const std::string& sync_error) {
                           self->Deliver(std::move(batch), sync_error);
                         });
    if (!syncer.ok()) return syncer.status();
    store->syncer_ = std::move(syncer.value());
  }
  store->next_expire_ = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(store->stats_mutex_);
    store->stats_.counts = store->counts_;
    if (store->read_only_) {
      store->health_ = {false, fmt::format("store {}: the database file is read-only: durable "
                                           "requests are refused, stored replies can be read",
                                           options.path)};
    }
  }
  if (store->read_only_) {
    // A fixed message with fields, like the other store lines, so that it
    // can be searched for and alerted on.
    PLANTD_LOG_ERROR("store read-only: durable requests are refused",
                     {{"path", options.path}, {"error", store->health().message}});
  }
  store->thread_ = std::thread([s = store.get()] { s->Run(); });
  return store;
}

Status SqliteStore::OpenDatabase() {
  const std::string& path = options_.path;
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) {
      return Status::Error(fmt::format("store: cannot create directory {} for store.path: {}",
                                       parent.string(), ec.message()));
    }
  }
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           hooks_.vfs.empty() ? nullptr : hooks_.vfs.c_str());
  db_.reset(raw);
  if (rc != SQLITE_OK) return Status::Error(Describe(raw, path, "open", rc));
  sqlite3* db = db_.get();
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, 5000);
  read_only_ = sqlite3_db_readonly(db, "main") == 1;

  int64_t app_id = 0;
  rc = QueryInt(db, "PRAGMA application_id", &app_id);
  if (rc != SQLITE_OK && read_only_) {
    // A store in WAL mode is read through its -shm file, which SQLite must
    // create beside it: on a read-only file system (or in a directory it may
    // not write) the file cannot be read at all, though nothing is wrong
    // with it. Say that, not "restore it from a backup".
    const std::string dir = parent.empty() ? "." : parent.string();
    struct statvfs fs {};
    if (statvfs(dir.c_str(), &fs) == 0 && (fs.f_flag & ST_RDONLY) != 0) {
      return Status::Error(fmt::format(
          "store {}: its file system is mounted read-only, and SQLite cannot read a store in "
          "WAL mode without creating {}-shm beside it; mount it read-write or point store.path "
          "elsewhere ({})",
          path, path, Describe(db, path, "reading the header", rc)));
    }
    if (access(dir.c_str(), W_OK) != 0) {
      return Status::Error(fmt::format(
          "store {}: the directory {} is not writable ({}), and SQLite cannot read a store in "
          "WAL mode without creating {}-shm there; let the broker's user write it",
          path, dir, std::strerror(errno), path));
    }
  }
  if (rc != SQLITE_OK) {
    return Status::Error(fmt::format(
        "{}; it is not a usable SQLite database: restore it from a backup or move it away "
        "(docs/durability.md)",
        Describe(db, path, "reading the header", rc)));
  }
  // The quick check reads every page: a damaged file stops the broker here
  // rather than failing requests one by one later.
  std::string check;
  rc = QueryText(db, "PRAGMA quick_check", &check);
  if (rc != SQLITE_OK || check != "ok") {
    return Status::Error(fmt::format(
        "store {}: PRAGMA quick_check failed: {}; the file is damaged: restore it from a "
        "backup or move it away (docs/durability.md)",
        path, rc != SQLITE_OK ? Describe(db, path, "quick_check", rc) : check));
  }
  int64_t version = 0;
  rc = QueryInt(db, "PRAGMA user_version", &version);
  if (rc != SQLITE_OK) return Status::Error(Describe(db, path, "reading user_version", rc));
  if (version > kSchemaVersion) {
    return Status::Error(fmt::format(
        "store {}: schema version {} is newer than this broker's ({}): it was written by a newer "
        "plantd-broker; run that version, or point store.path at another file",
        path, version, kSchemaVersion));
  }
  int64_t tables = 0;
  rc = QueryInt(db, "SELECT count(*) FROM sqlite_master", &tables);
  if (rc != SQLITE_OK) return Status::Error(Describe(db, path, "reading the schema", rc));
  if ((app_id != 0 && app_id != kApplicationId) || (app_id == 0 && tables > 0)) {
    return Status::Error(fmt::format(
        "store {}: this SQLite file is not a plantd-broker store (application_id {}); point "
        "store.path at another file",
        path, app_id));
  }

  if (!read_only_) {
    std::string mode;
    rc = QueryText(db, "PRAGMA journal_mode=WAL", &mode);
    if (rc != SQLITE_OK) return Status::Error(Describe(db, path, "PRAGMA journal_mode=WAL", rc));
    if (mode != "wal") {
      return Status::Error(
          fmt::format("store {}: cannot use WAL mode (journal_mode is {})", path, mode));
    }
    // NORMAL: a COMMIT writes the WAL and does not sync it; the WalSyncer
    // does, and no write is acknowledged before (see wal_syncer.h).
    // Checkpoints still sync the WAL before copying it and the database after.
    rc = Exec(db, "PRAGMA synchronous=NORMAL");
    if (rc != SQLITE_OK) return Status::Error(Describe(db, path, "PRAGMA synchronous", rc));
    if (version < kSchemaVersion) {
      rc = Exec(db, "BEGIN IMMEDIATE");
      for (int64_t v = version; rc == SQLITE_OK && v < kSchemaVersion; ++v) {
        rc = Exec(db, kMigrations[v]);
      }
      if (rc == SQLITE_OK) {
        rc = Exec(db, fmt::format("PRAGMA user_version={}; PRAGMA application_id={}",
                                  kSchemaVersion, kApplicationId)
                          .c_str());
      }
      if (rc == SQLITE_OK) rc = Exec(db, "COMMIT");
      if (rc != SQLITE_OK) {
        std::string msg = Describe(db, path,
                                   fmt::format("migrating the schema from version {} "
                                               "to {}",
                                               version, kSchemaVersion),
                                   rc);
        Exec(db, "ROLLBACK");
        return Status::Error(msg);
      }
      if (version > 0) {
        PLANTD_LOG_INFO("store schema migrated",
                        {{"path", path}, {"from", version}, {"to", kSchemaVersion}});
      }
    }
  } else if (version < kSchemaVersion) {
    return Status::Error(fmt::format(
        "store {}: the file is read-only and has schema version {}; this broker needs {} and "
        "cannot migrate it",
        path, version, kSchemaVersion));
  }

  // What a crash left: counts by state, and the services with unfinished work.
  {
    sqlite3_stmt* q = nullptr;
    rc = sqlite3_prepare_v2(db, "SELECT state, count(*), total(bytes) FROM requests GROUP BY state",
                            -1, &q, nullptr);
    if (rc != SQLITE_OK) return Status::Error(Describe(db, path, "counting requests", rc));
    StmtPtr stmt(q);
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
      const int64_t state = sqlite3_column_int64(q, 0);
      if (state < 0 || state >= static_cast<int64_t>(kRequestStateCount)) {
        return Status::Error(
            fmt::format("store {}: a request has state {}, which no plantd-broker writes; the "
                        "file is damaged",
                        path, state));
      }
      counts_.by_state[state] = static_cast<uint64_t>(sqlite3_column_int64(q, 1));
      counts_.bytes += static_cast<uint64_t>(sqlite3_column_double(q, 2));
    }
    if (rc != SQLITE_DONE) return Status::Error(Describe(db, path, "counting requests", rc));
  }
  {
    sqlite3_stmt* q = nullptr;
    rc = sqlite3_prepare_v2(db, "SELECT DISTINCT service FROM requests WHERE state < 2", -1, &q,
                            nullptr);
    if (rc != SQLITE_OK) return Status::Error(Describe(db, path, "listing services", rc));
    StmtPtr stmt(q);
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
      const void* p = sqlite3_column_blob(q, 0);
      const int n = sqlite3_column_bytes(q, 0);
      recovery_.services.emplace_back(p != nullptr ? static_cast<const char*>(p) : "", n);
    }
    if (rc != SQLITE_DONE) return Status::Error(Describe(db, path, "listing services", rc));
  }
  recovery_.counts = counts_;
  recovery_.writable = !read_only_;

  stmts_ = std::make_unique<Statements>();
  const std::pair<StmtPtr*, const char*> sql[] = {
      {&stmts_->insert,
       "INSERT INTO requests(id, service, body, state, attempts, created_ms, bytes) "
       "VALUES(?1, ?2, ?3, 0, 0, ?4, ?5)"},
      {&stmts_->find, "SELECT seq, state, bytes, length(service) FROM requests WHERE id = ?1"},
      {&stmts_->mark_dispatched,
       "UPDATE requests SET state = 1, attempts = attempts + 1 WHERE seq = ?1"},
      {&stmts_->reply,
       "UPDATE requests SET state = 2, reply = ?2, body = x'', finished_ms = ?3, bytes = ?4 "
       "WHERE seq = ?1"},
      {&stmts_->fail,
       "UPDATE requests SET state = 3, reason = ?2, body = x'', finished_ms = ?3, bytes = ?4 "
       "WHERE seq = ?1"},
      {&stmts_->remove, "DELETE FROM requests WHERE seq = ?1"},
      {&stmts_->fetch, "SELECT state, reply, reason FROM requests WHERE id = ?1"},
      {&stmts_->next,
       "SELECT seq, id, body, state, attempts FROM requests "
       "WHERE service = ?1 AND state < 2 AND seq > ?2 ORDER BY seq LIMIT ?3"},
      {&stmts_->expire_select,
       "SELECT seq, state, bytes FROM requests WHERE state >= 2 AND finished_ms < ?1 "
       "ORDER BY finished_ms LIMIT ?2"},
  };
  for (const auto& [stmt, text] : sql) {
    sqlite3_stmt* s = nullptr;
    rc = sqlite3_prepare_v3(db, text, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr);
    if (rc != SQLITE_OK) return Status::Error(Describe(db, path, "preparing statements", rc));
    stmt->reset(s);
  }
  return Status::Ok();
}

SqliteStore::~SqliteStore() {
  Shutdown();
  syncer_.reset();
  stmts_.reset();
  db_.reset();
  if (event_fd_ >= 0) close(event_fd_);
}

void SqliteStore::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(queue_mutex_);
    stopping_ = true;
  }
  queue_cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void SqliteStore::Enqueue(Op op) {
  const size_t bytes = op.Bytes();
  StoreError refused;
  {
    std::lock_guard<std::mutex> lock(queue_mutex_);
    if (stopping_ || stopped_) {
      refused = StoreError::kClosed;
    } else if (queue_.size() >= kMaxQueuedOps || queued_bytes_ + bytes > kMaxQueuedBytes) {
      refused = StoreError::kBusy;
    } else {
      queue_.push_back(std::move(op));
      queued_bytes_ += bytes;
      queue_cv_.notify_one();
      return;
    }
  }
  Completion c = FailedCompletion(
      op.kind, op.tag, op.id, refused,
      refused == StoreError::kClosed
          ? fmt::format("store {}: shut down", options_.path)
          : fmt::format("store {}: {} operations ({} bytes) are waiting for the disk; "
                        "refused until it catches up",
                        options_.path, kMaxQueuedOps, kMaxQueuedBytes));
  if (op.kind == OpKind::kStoreReply) c.frames = std::move(op.frames);  // to be stored again
  std::vector<Completion> done;
  done.push_back(std::move(c));
  Complete(std::move(done));
}

SqliteStore::Op SqliteStore::MakeOp(OpKind kind, uint64_t tag, const RequestId& id) {
  Op op;
  op.kind = kind;
  op.tag = tag;
  op.id = id;
  return op;
}

void SqliteStore::Submit(uint64_t tag, const RequestId& id, std::string service, Frames body) {
  Op op = MakeOp(OpKind::kSubmit, tag, id);
  op.service = std::move(service);
  op.frames = std::move(body);
  Enqueue(std::move(op));
}

void SqliteStore::MarkDispatched(uint64_t tag, const RequestId& id) {
  Op op = MakeOp(OpKind::kMarkDispatched, tag, id);
  Enqueue(std::move(op));
}

void SqliteStore::StoreReply(uint64_t tag, const RequestId& id, Frames reply) {
  Op op = MakeOp(OpKind::kStoreReply, tag, id);
  op.frames = std::move(reply);
  Enqueue(std::move(op));
}

void SqliteStore::Fail(uint64_t tag, const RequestId& id, std::string reason) {
  Op op = MakeOp(OpKind::kFail, tag, id);
  op.reason = std::move(reason);
  Enqueue(std::move(op));
}

void SqliteStore::Close(uint64_t tag, const RequestId& id) {
  Op op = MakeOp(OpKind::kClose, tag, id);
  Enqueue(std::move(op));
}

void SqliteStore::Fetch(uint64_t tag, const RequestId& id) {
  Op op = MakeOp(OpKind::kFetch, tag, id);
  Enqueue(std::move(op));
}

void SqliteStore::NextToDispatch(uint64_t tag, std::string service, uint64_t after_seq,
                                 size_t max_count, size_t max_bytes) {
  Op op;
  op.kind = OpKind::kNextToDispatch;
  op.tag = tag;
  op.service = std::move(service);
  op.after_seq = after_seq;
  op.max_count = std::max<size_t>(max_count, 1);
  op.max_bytes = std::max<size_t>(max_bytes, 1);
  Enqueue(std::move(op));
}

void SqliteStore::Expire(uint64_t tag) {
  Op op;
  op.kind = OpKind::kExpire;
  op.tag = tag;
  Enqueue(std::move(op));
}

void SqliteStore::Complete(std::vector<Completion> done) {
  if (done.empty()) return;
  {
    std::lock_guard<std::mutex> lock(stats_mutex_);
    for (const Completion& c : done) {
      if (!c.ok() && c.error != StoreError::kNotFound) {
        ++stats_.errors[static_cast<size_t>(c.error)];
      }
    }
  }
  // The flag, the fd and the list change together under the mutex: the fd
  // is readable exactly while the flag is set, so the core, which drains the
  // fd whenever it sees the flag, never finds the fd readable with nothing
  // to take. (Writing the fd first and setting the flag after it made the
  // core spin on a readable fd until the flag came; with the core and this
  // thread on one CPU, that was a whole scheduler tick, 4 ms, per commit:
  // bench/RESULTS.md, issue 14.)
  std::lock_guard<std::mutex> lock(done_mutex_);
  if (done_.empty()) {
    done_ = std::move(done);
  } else {
    for (Completion& c : done) done_.push_back(std::move(c));
  }
  if (!has_done_.load(std::memory_order_relaxed)) {
    // The flag first: the write may wake the core at once (and, on one CPU,
    // run it before this thread goes on), and it must then see the flag.
    has_done_.store(true, std::memory_order_release);
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(event_fd_, &one, sizeof(one));
  }
}

size_t SqliteStore::TakeCompletions(std::vector<Completion>* out) {
  // The core calls this every loop turn: with nothing done it costs one
  // atomic load, no system call.
  if (!has_done_.load(std::memory_order_acquire)) return 0;
  std::vector<Completion> taken;
  {
    std::lock_guard<std::mutex> lock(done_mutex_);
    taken.swap(done_);
    uint64_t value = 0;
    [[maybe_unused]] ssize_t n = read(event_fd_, &value, sizeof(value));
    has_done_.store(false, std::memory_order_relaxed);
  }
  for (Completion& c : taken) out->push_back(std::move(c));
  return taken.size();
}

StoreHealth SqliteStore::health() const {
  std::lock_guard<std::mutex> lock(stats_mutex_);
  return health_;
}

StoreStats SqliteStore::stats() const {
  StoreStats s;
  {
    std::lock_guard<std::mutex> lock(stats_mutex_);
    s = stats_;
  }
  if (syncer_) s.syncs = syncer_->syncs();
  std::lock_guard<std::mutex> lock(queue_mutex_);
  s.queued_ops = queue_.size();
  return s;
}

void SqliteStore::SetHealth(bool ok, std::string message) {
  bool changed = false;
  {
    std::lock_guard<std::mutex> lock(stats_mutex_);
    if (health_.ok != ok || health_.message != message) {
      changed = true;
      health_ = {ok, message};
    }
  }
  if (!changed) return;
  // Logged on a change only: a full disk fails every batch, and the log must
  // not fill what is left of it.
  if (ok) {
    PLANTD_LOG_INFO("store writable again", {{"path", options_.path}});
  } else {
    PLANTD_LOG_ERROR("store failing: durable requests are refused",
                     {{"path", options_.path}, {"error", message}});
  }
}

void SqliteStore::RecordCommit(size_t ops, double seconds) {
  std::lock_guard<std::mutex> lock(stats_mutex_);
  ++stats_.commits;
  stats_.committed_ops += ops;
  size_t b = 0;
  while (b < kBatchSizeBuckets.size() && ops > kBatchSizeBuckets[b]) ++b;
  ++stats_.batch_size[b];
  size_t l = 0;
  while (l < kCommitSecondsBuckets.size() && seconds > kCommitSecondsBuckets[l]) ++l;
  ++stats_.commit_seconds[l];
  stats_.commit_seconds_sum += seconds;
}

void SqliteStore::PublishStats() {
  std::lock_guard<std::mutex> lock(stats_mutex_);
  stats_.counts = counts_;
}

void SqliteStore::Run() {
  const auto interval = std::clamp<std::chrono::milliseconds>(
      options_.reply_retention / 10, std::chrono::seconds(1), std::chrono::seconds(60));
  if (read_only_) next_expire_ = std::chrono::steady_clock::time_point::max();
  while (true) {
    // While a committed batch already waits for a sync thread, let what
    // arrives meanwhile queue up and go into one transaction.
    if (syncer_) syncer_->WaitForRoom();
    std::vector<Op> batch;
    {
      std::unique_lock<std::mutex> lock(queue_mutex_);
      queue_cv_.wait_until(lock, next_expire_, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty() && stopping_) {
        stopped_ = true;
        break;
      }
      batch.swap(queue_);
      queued_bytes_ = 0;
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= next_expire_) {
      Op op;
      op.kind = OpKind::kExpire;
      op.internal = true;
      batch.push_back(std::move(op));
      next_expire_ = now + interval;
    }
    ProcessBatch(&batch);
  }
  // Shutdown's promise: every operation has its completion when it returns.
  if (syncer_) syncer_->Drain();
}

void SqliteStore::ProcessBatch(std::vector<Op>* batch) {
  sqlite3* db = db_.get();
  std::vector<Completion> done(batch->size());
  size_t writes = 0;
  size_t counted = 0;  // the callers' writes; housekeeping is not counted in stats
  for (size_t i = 0; i < batch->size(); ++i) {
    Op& op = (*batch)[i];
    done[i].op = op.kind;
    done[i].tag = op.tag;
    done[i].id = op.id;
    if (IsWrite(op.kind)) {
      ++writes;
      if (!op.internal) ++counted;
    }
  }

  WalSyncer::Batch out;
  out.counted = counted;
  const std::string sync_failure = syncer_ ? syncer_->failure() : std::string();
  if (writes > 0 && (read_only_ || !sync_failure.empty())) {
    const std::string msg =
        read_only_ ? fmt::format("store {}: the database file is read-only: nothing can be stored",
                                 options_.path)
                   : SyncFailureMessage(options_.path, sync_failure);
    for (size_t i = 0; i < batch->size(); ++i) {
      if (!IsWrite((*batch)[i].kind)) continue;
      done[i].error = read_only_ ? StoreError::kReadOnly : StoreError::kIo;
      done[i].message = msg;
    }
  } else if (writes > 0) {
    const StoreCounts saved = counts_;
    const auto start = std::chrono::steady_clock::now();
    std::string what = "BEGIN";
    // SQLite keeps the errno of a failed write only for some paths
    // (sqlite3_system_errno is 0 for EFBIG): look at errno itself too.
    errno = 0;
    int rc = Exec(db, "BEGIN IMMEDIATE");
    for (size_t i = 0; rc == SQLITE_OK && i < batch->size(); ++i) {
      Op& op = (*batch)[i];
      if (!IsWrite(op.kind)) continue;
      rc = ExecuteWrite(op, &done[i]);
      if (rc != SQLITE_OK) what = OpName(op.kind);
    }
    if (rc == SQLITE_OK) {
      if (hooks_.before_commit && counted > 0) hooks_.before_commit(counted);
      what = "COMMIT";
      rc = Exec(db, "COMMIT");
    }
    if (rc == SQLITE_OK) {
      out.wrote = true;
      out.began = start;
    } else {
      const int last_errno = errno;
      const int sys = sqlite3_system_errno(db) != 0 ? sqlite3_system_errno(db) : last_errno;
      const bool disk_errno =
          sys == ENOSPC || sys == EFBIG || sys == EDQUOT || sys == EROFS || sys == EIO;
      const StoreError error = Classify(rc, disk_errno ? sys : 0);
      std::string detail = Describe(db, options_.path, what, rc);
      if (disk_errno && sqlite3_system_errno(db) == 0)
        detail += fmt::format(", {}", std::strerror(sys));
      // "store PATH: disk full (...): COMMIT failed: ..., File too large"
      const std::string prefix = fmt::format("store {}: ", options_.path);
      std::string msg = fmt::format("{}{}: {}", prefix, FailureHeadline(error),
                                    std::string_view(detail).substr(prefix.size()));
      if (sqlite3_get_autocommit(db) == 0) Exec(db, "ROLLBACK");
      counts_ = saved;
      for (size_t i = 0; i < batch->size(); ++i) {
        if (!IsWrite((*batch)[i].kind)) continue;
        Completion& c = done[i];
        const OpKind kind = c.op;
        c = FailedCompletion(kind, c.tag, c.id, error, msg);
        // A reply that could not be stored goes back to the caller, which
        // can write it again later instead of having the work done again.
        if (kind == OpKind::kStoreReply) c.frames = std::move((*batch)[i].frames);
      }
      {
        std::lock_guard<std::mutex> lock(stats_mutex_);
        ++stats_.failed_commits;
      }
      out.error = msg;
    }
  }

  // Reads after the commit: they see only what is durable.
  for (size_t i = 0; i < batch->size(); ++i) {
    Op& op = (*batch)[i];
    if (!IsWrite(op.kind)) ExecuteRead(op, &done[i]);
  }
  PublishStats();

  out.done.reserve(done.size());
  for (size_t i = 0; i < batch->size(); ++i) {
    Completion& c = done[i];
    if ((*batch)[i].internal) {
      if (c.ok() && c.expired >= kExpireBatch) next_expire_ = std::chrono::steady_clock::now();
      continue;
    }
    out.done.push_back(std::move(c));
  }
  if (syncer_) {
    syncer_->Add(std::move(out));
  } else {
    Deliver(std::move(out), "");
  }
}

void SqliteStore::Deliver(WalSyncer::Batch batch, const std::string& sync_error) {
  if (!sync_error.empty()) {
    // Committed, but perhaps not on disk: nothing it wrote is acknowledged.
    const std::string msg = SyncFailureMessage(options_.path, sync_error);
    for (Completion& c : batch.done) {
      if (!IsWrite(c.op) || !c.ok()) continue;
      c = FailedCompletion(c.op, c.tag, c.id, StoreError::kIo, msg);
    }
    if (batch.wrote) {
      std::lock_guard<std::mutex> lock(stats_mutex_);
      ++stats_.failed_commits;
    }
    SetHealth(false, msg);
  } else if (!batch.error.empty()) {
    SetHealth(false, batch.error);
  } else if (batch.wrote) {
    // Health changes here, in batch order, not at COMMIT: a commit that
    // succeeds after another failed must not hide that failure from
    // /healthz before the failed batch's clients have been told.
    if (batch.counted > 0) {
      RecordCommit(
          batch.counted,
          std::chrono::duration<double>(std::chrono::steady_clock::now() - batch.began).count());
    }
    SetHealth(true, "");
  }
  Complete(std::move(batch.done));
}

int SqliteStore::ExecuteWrite(Op& op, Completion* c) {
  sqlite3* db = db_.get();
  const auto op_error = [&](int rc) {
    c->error = StoreError::kInternal;
    c->message = Describe(db, options_.path, OpName(op.kind), rc);
    return SQLITE_OK;
  };
  if (op.kind == OpKind::kExpire) {
    int rc = SQLITE_OK;
    ExpireOnce(c, &rc);
    return rc;
  }
  if (op.kind == OpKind::kSubmit) {
    const std::string blob = EncodeFrames(op.frames);
    const uint64_t bytes = kRowOverhead + op.service.size() + blob.size();
    if (counts_.requests() + 1 > options_.max_requests) {
      c->error = StoreError::kFull;
      c->message = fmt::format("store full: {} requests stored, store.max_requests is {}",
                               counts_.requests(), options_.max_requests);
      return SQLITE_OK;
    }
    if (counts_.bytes + bytes > options_.max_bytes) {
      c->error = StoreError::kFull;
      c->message =
          fmt::format("store full: {} bytes stored, this request needs {}, store.max_bytes is {}",
                      counts_.bytes, bytes, options_.max_bytes);
      return SQLITE_OK;
    }
    StmtUse q(stmts_->insert.get());
    q.Blob(1, op.id.AsBytes());
    q.Blob(2, op.service);
    q.Blob(3, blob);
    q.Int(4, NowMs());
    q.Int(5, static_cast<int64_t>(bytes));
    const int rc = q.Step();
    if (rc != SQLITE_DONE) return IsOpLevel(rc) ? op_error(rc) : rc;
    c->seq = static_cast<uint64_t>(sqlite3_last_insert_rowid(db));
    ++counts_.by_state[static_cast<size_t>(RequestState::kPending)];
    counts_.bytes += bytes;
    c->service = std::move(op.service);
    c->frames = std::move(op.frames);
    return SQLITE_OK;
  }

  // The others find the request first.
  int64_t seq = 0;
  int64_t state = 0;
  int64_t old_bytes = 0;
  int64_t service_len = 0;
  {
    StmtUse q(stmts_->find.get());
    q.Blob(1, op.id.AsBytes());
    const int rc = q.Step();
    if (rc == SQLITE_DONE) {
      if (op.kind != OpKind::kClose) {  // 9/TSP: closing an unknown UUID is OK
        c->error = StoreError::kNotFound;
        c->message = fmt::format("no stored request {}", op.id.ToHex());
      }
      return SQLITE_OK;
    }
    if (rc != SQLITE_ROW) return IsOpLevel(rc) ? op_error(rc) : rc;
    seq = q.ColInt(0);
    state = q.ColInt(1);
    old_bytes = q.ColInt(2);
    service_len = q.ColInt(3);
  }
  if (state < 0 || state >= static_cast<int64_t>(kRequestStateCount)) state = 3;
  const bool finished = state >= static_cast<int64_t>(RequestState::kReplied);
  if (op.kind != OpKind::kClose && finished) {
    c->error = StoreError::kNotFound;
    c->message = fmt::format("request {} is already {}", op.id.ToHex(),
                             RequestStateName(static_cast<RequestState>(state)));
    c->state = static_cast<RequestState>(state);
    return SQLITE_OK;
  }
  const auto move_to = [&](RequestState to, int64_t new_bytes) {
    --counts_.by_state[state];
    ++counts_.by_state[static_cast<size_t>(to)];
    counts_.bytes =
        counts_.bytes - static_cast<uint64_t>(old_bytes) + static_cast<uint64_t>(new_bytes);
  };

  switch (op.kind) {
    case OpKind::kMarkDispatched: {
      StmtUse q(stmts_->mark_dispatched.get());
      q.Int(1, seq);
      const int rc = q.Step();
      if (rc != SQLITE_DONE) return IsOpLevel(rc) ? op_error(rc) : rc;
      move_to(RequestState::kDispatched, old_bytes);
      return SQLITE_OK;
    }
    case OpKind::kStoreReply:
    case OpKind::kFail: {
      std::string blob;
      std::string reason = std::move(op.reason);
      RequestState to =
          op.kind == OpKind::kStoreReply ? RequestState::kReplied : RequestState::kFailed;
      if (to == RequestState::kReplied) blob = EncodeFrames(op.frames);
      int64_t new_bytes =
          static_cast<int64_t>(kRowOverhead) + service_len + static_cast<int64_t>(blob.size());
      if (to == RequestState::kReplied && new_bytes > old_bytes &&
          counts_.bytes - static_cast<uint64_t>(old_bytes) + static_cast<uint64_t>(new_bytes) >
              options_.max_bytes) {
        // The work is done but its answer does not fit: say so to the client
        // rather than refuse the reply and have the request run again.
        reason = fmt::format("the reply ({} bytes) was not stored: store.max_bytes ({}) reached",
                             blob.size(), options_.max_bytes);
        blob.clear();
        to = RequestState::kFailed;
        c->reply_dropped = true;
      }
      if (to == RequestState::kFailed) {
        new_bytes =
            static_cast<int64_t>(kRowOverhead) + service_len + static_cast<int64_t>(reason.size());
      }
      StmtUse q(to == RequestState::kReplied ? stmts_->reply.get() : stmts_->fail.get());
      q.Int(1, seq);
      if (to == RequestState::kReplied) {
        q.Blob(2, blob);
      } else {
        q.Text(2, reason);
      }
      q.Int(3, NowMs());
      q.Int(4, new_bytes);
      const int rc = q.Step();
      if (rc != SQLITE_DONE) return IsOpLevel(rc) ? op_error(rc) : rc;
      move_to(to, new_bytes);
      c->state = to;
      return SQLITE_OK;
    }
    case OpKind::kClose: {
      StmtUse q(stmts_->remove.get());
      q.Int(1, seq);
      const int rc = q.Step();
      if (rc != SQLITE_DONE) return IsOpLevel(rc) ? op_error(rc) : rc;
      --counts_.by_state[state];
      counts_.bytes -= static_cast<uint64_t>(old_bytes);
      return SQLITE_OK;
    }
    default: return SQLITE_OK;
  }
}

void SqliteStore::ExpireOnce(Completion* c, int* rc) {
  const int64_t cutoff = NowMs() - options_.reply_retention.count();
  std::vector<std::tuple<int64_t, int64_t, int64_t>> rows;  // seq, state, bytes
  {
    StmtUse q(stmts_->expire_select.get());
    q.Int(1, cutoff);
    q.Int(2, static_cast<int64_t>(kExpireBatch));
    int r;
    while ((r = q.Step()) == SQLITE_ROW) rows.emplace_back(q.ColInt(0), q.ColInt(1), q.ColInt(2));
    if (r != SQLITE_DONE) {
      *rc = r;
      return;
    }
  }
  for (const auto& [seq, state, bytes] : rows) {
    StmtUse q(stmts_->remove.get());
    q.Int(1, seq);
    const int r = q.Step();
    if (r != SQLITE_DONE) {
      *rc = r;
      return;
    }
    if (state >= 0 && state < static_cast<int64_t>(kRequestStateCount)) --counts_.by_state[state];
    counts_.bytes -= static_cast<uint64_t>(bytes);
  }
  c->expired = rows.size();
  if (!rows.empty()) {
    std::lock_guard<std::mutex> lock(stats_mutex_);
    stats_.expired += rows.size();
  }
}

void SqliteStore::ExecuteRead(Op& op, Completion* c) {
  sqlite3* db = db_.get();
  const auto fail = [&](int rc) {
    c->error = Classify(rc, sqlite3_system_errno(db));
    c->message = Describe(db, options_.path, OpName(op.kind), rc);
    if (!IsOpLevel(rc)) SetHealth(false, c->message);
  };
  if (op.kind == OpKind::kFetch) {
    StmtUse q(stmts_->fetch.get());
    q.Blob(1, op.id.AsBytes());
    const int rc = q.Step();
    if (rc == SQLITE_DONE) {
      c->error = StoreError::kNotFound;
      c->message = fmt::format("no stored request {}", op.id.ToHex());
      return;
    }
    if (rc != SQLITE_ROW) return fail(rc);
    const int64_t state = q.ColInt(0);
    if (state < 0 || state >= static_cast<int64_t>(kRequestStateCount)) {
      c->error = StoreError::kCorrupt;
      c->message =
          fmt::format("store {}: request {} has state {}", options_.path, op.id.ToHex(), state);
      return;
    }
    c->state = static_cast<RequestState>(state);
    if (c->state == RequestState::kReplied && !DecodeFrames(q.ColBlob(1), &c->frames)) {
      c->error = StoreError::kCorrupt;
      c->message = fmt::format("store {}: the reply of request {} is malformed", options_.path,
                               op.id.ToHex());
      SetHealth(false, c->message);
    } else if (c->state == RequestState::kFailed) {
      c->reason = std::string(q.ColBlob(2));
    }
    return;
  }
  // kNextToDispatch
  c->service = op.service;
  StmtUse q(stmts_->next.get());
  q.Blob(1, op.service);
  q.Int(2, static_cast<int64_t>(std::min<uint64_t>(op.after_seq, INT64_MAX)));
  q.Int(3, static_cast<int64_t>(op.max_count));
  size_t bytes = 0;
  int rc = SQLITE_DONE;
  while (bytes < op.max_bytes && (rc = q.Step()) == SQLITE_ROW) {
    StoredRequest r;
    r.seq = static_cast<uint64_t>(q.ColInt(0));
    const std::string_view id = q.ColBlob(1);
    if (id.size() == r.id.bytes.size()) std::memcpy(r.id.bytes.data(), id.data(), id.size());
    const std::string_view body = q.ColBlob(2);
    if (id.size() != r.id.bytes.size() || !DecodeFrames(body, &r.body)) {
      c->error = StoreError::kCorrupt;
      c->message =
          fmt::format("store {}: stored request seq {} is malformed", options_.path, r.seq);
      SetHealth(false, c->message);
      c->requests.clear();
      return;
    }
    bytes += body.size();
    r.service = op.service;
    r.state = static_cast<RequestState>(q.ColInt(3) == 1 ? 1 : 0);
    r.attempts = static_cast<uint32_t>(q.ColInt(4));
    c->requests.push_back(std::move(r));
  }
  if (bytes < op.max_bytes && rc != SQLITE_DONE) fail(rc);
}

Status BackupSqliteStore(const std::string& store_path, const std::string& dest_path,
                         const BackupOptions& options) {
  if (!std::filesystem::exists(store_path)) {
    return Status::NotFound(fmt::format("backup: no store at {}", store_path));
  }
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(store_path.c_str(), &raw, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  std::unique_ptr<sqlite3, void (*)(sqlite3*)> src(raw, [](sqlite3* d) { sqlite3_close_v2(d); });
  if (rc != SQLITE_OK) return Status::Error(Describe(raw, store_path, "backup: open", rc));
  sqlite3_busy_timeout(raw, 5000);
  // One read transaction for the whole copy: in WAL mode it pins a snapshot,
  // so the writer's commits neither restart the backup nor get into it.
  int64_t unused = 0;
  rc = Exec(raw, "BEGIN");
  if (rc == SQLITE_OK) rc = QueryInt(raw, "SELECT count(*) FROM sqlite_master", &unused);
  if (rc != SQLITE_OK) return Status::Error(Describe(raw, store_path, "backup: read", rc));

  const std::string tmp = dest_path + ".tmp";
  std::error_code ec;
  std::filesystem::remove(tmp, ec);
  sqlite3* draw = nullptr;
  rc = sqlite3_open_v2(tmp.c_str(), &draw,
                       SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  std::unique_ptr<sqlite3, void (*)(sqlite3*)> dst(draw, [](sqlite3* d) { sqlite3_close_v2(d); });
  if (rc != SQLITE_OK) return Status::Error(Describe(draw, tmp, "backup: create", rc));

  sqlite3_backup* b = sqlite3_backup_init(draw, "main", raw, "main");
  if (b == nullptr)
    return Status::Error(Describe(draw, tmp, "backup: init", sqlite3_errcode(draw)));
  while (true) {
    rc = sqlite3_backup_step(b, options.pages_per_step);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED) break;
    if (options.pause.count() > 0) std::this_thread::sleep_for(options.pause);
  }
  const int finish = sqlite3_backup_finish(b);
  if (rc != SQLITE_DONE || finish != SQLITE_OK) {
    const int bad = rc != SQLITE_DONE ? rc : finish;
    std::string msg = Describe(draw, tmp, "backup: copy", bad);
    dst.reset();
    std::filesystem::remove(tmp, ec);
    return Status::Error(msg);
  }
  Exec(raw, "COMMIT");
  src.reset();

  std::string check;
  rc = QueryText(draw, "PRAGMA quick_check", &check);
  if (rc != SQLITE_OK || check != "ok") {
    std::string msg = fmt::format("backup: the copy {} fails quick_check: {}", tmp,
                                  rc != SQLITE_OK ? sqlite3_errmsg(draw) : check);
    dst.reset();
    std::filesystem::remove(tmp, ec);
    return Status::Error(msg);
  }
  // Closing checkpoints the copy's WAL into the file; then make it durable
  // and put it in place atomically.
  rc = sqlite3_close_v2(dst.release());
  if (rc != SQLITE_OK) return Status::Error(fmt::format("backup: closing {} failed", tmp));
  const int fd = open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || fsync(fd) != 0) {
    const int e = errno;
    if (fd >= 0) close(fd);
    return Status::Error(fmt::format("backup: fsync {}: {}", tmp, std::strerror(e)));
  }
  close(fd);
  std::filesystem::rename(tmp, dest_path, ec);
  if (ec) {
    return Status::Error(fmt::format("backup: rename {} to {}: {}", tmp, dest_path, ec.message()));
  }
  std::filesystem::path dir = std::filesystem::path(dest_path).parent_path();
  if (dir.empty()) dir = ".";
  const int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return Status::Ok();
}

}  // namespace plantd::store

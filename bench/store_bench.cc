// Acknowledged durable submits per second through the SQLite store with group
// commit, on a real file: C clients, each with one request outstanding (it
// submits the next as soon as the previous is acknowledged, that is durable).
//
//   ./build/plantd-store-bench [--dir DIR] [--seconds S] [--sync-threads N]
//
// DIR (default: a fresh directory under the current one) should be on the
// disk the broker's store.path will use: fsync cost is the whole story.
#include <poll.h>
#include <stdlib.h>
#include <sys/statfs.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "store/sqlite_store.h"

namespace {

using plantd::StoreOptions;
using plantd::store::Completion;
using plantd::store::RequestId;
using plantd::store::SqliteStore;
using Clock = std::chrono::steady_clock;

struct Result {
  double acks_per_second = 0;
  uint64_t acks = 0;
  uint64_t commits = 0;
  double p50_ms = 0;
  double p99_ms = 0;
};

Result Run(const std::string& dir, size_t concurrency, size_t bytes, double seconds,
           size_t sync_threads) {
  const std::string path =
      dir + "/bench-" + std::to_string(concurrency) + "-" + std::to_string(bytes) + ".db";
  StoreOptions o;
  o.path = path;
  o.max_requests = size_t{1} << 40;
  o.max_bytes = size_t{1} << 50;
  o.sync_threads = sync_threads;
  auto opened = SqliteStore::Open(o);
  if (!opened.ok()) {
    std::fprintf(stderr, "open: %s\n", opened.status().message().c_str());
    std::exit(1);
  }
  SqliteStore& store = *opened.value();
  const std::string body(bytes, 'b');
  std::vector<Clock::time_point> sent(concurrency);
  std::vector<double> latencies_ms;
  latencies_ms.reserve(1 << 20);
  std::vector<Completion> done;

  const uint64_t commits_before = store.stats().commits;
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  for (size_t c = 0; c < concurrency; ++c) {
    sent[c] = Clock::now();
    store.Submit(c, RequestId::TimeOrdered(), "bench", {body});
  }
  uint64_t acks = 0;
  size_t outstanding = concurrency;
  while (outstanding > 0) {
    pollfd p{store.completion_fd(), POLLIN, 0};
    poll(&p, 1, 1000);
    done.clear();
    store.TakeCompletions(&done);
    const auto now = Clock::now();
    for (const Completion& c : done) {
      --outstanding;
      if (!c.ok()) {
        std::fprintf(stderr, "submit failed: %s\n", c.message.c_str());
        std::exit(1);
      }
      ++acks;
      latencies_ms.push_back(std::chrono::duration<double, std::milli>(now - sent[c.tag]).count());
      if (now < end) {
        sent[c.tag] = now;
        store.Submit(c.tag, RequestId::TimeOrdered(), "bench", {body});
        ++outstanding;
      }
    }
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  Result r;
  r.acks = acks;
  r.acks_per_second = static_cast<double>(acks) / elapsed;
  r.commits = store.stats().commits - commits_before;
  std::sort(latencies_ms.begin(), latencies_ms.end());
  if (!latencies_ms.empty()) {
    r.p50_ms = latencies_ms[latencies_ms.size() / 2];
    r.p99_ms = latencies_ms[latencies_ms.size() * 99 / 100];
  }
  opened.value().reset();
  std::error_code ec;
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix, ec);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  double seconds = 3;
  size_t sync_threads = StoreOptions().sync_threads;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
      dir = argv[++i];
    } else if (std::strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else if (std::strcmp(argv[i], "--sync-threads") == 0 && i + 1 < argc) {
      sync_threads = static_cast<size_t>(std::max(1, std::atoi(argv[++i])));
    } else {
      std::fprintf(stderr, "usage: %s [--dir DIR] [--seconds S] [--sync-threads N]\n", argv[0]);
      return 2;
    }
  }
  bool made = false;
  if (dir.empty()) {
    std::string tmpl = "./plantd-store-bench-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) {
      std::perror("mkdtemp");
      return 1;
    }
    dir = tmpl;
    made = true;
  }
  struct statfs fs {};
  statfs(dir.c_str(), &fs);
  std::printf(
      "store bench: SQLite WAL synced before each ack by %zu sync threads, group commit; dir %s "
      "(fs magic 0x%lx), %.0f s per case\n",
      sync_threads, dir.c_str(), static_cast<unsigned long>(fs.f_type), seconds);
  std::printf("%-12s %-7s %14s %10s %12s %10s %10s\n", "concurrency", "bytes", "acks/s", "acks",
              "ops/commit", "p50 ms", "p99 ms");
  for (size_t bytes : {size_t{64}, size_t{1024}}) {
    for (size_t concurrency : {size_t{1}, size_t{16}, size_t{64}}) {
      const Result r = Run(dir, concurrency, bytes, seconds, sync_threads);
      std::printf("%-12zu %-7zu %14.0f %10llu %12.1f %10.2f %10.2f\n", concurrency, bytes,
                  r.acks_per_second, static_cast<unsigned long long>(r.acks),
                  r.commits > 0 ? static_cast<double>(r.acks) / static_cast<double>(r.commits) : 0,
                  r.p50_ms, r.p99_ms);
      std::fflush(stdout);
    }
  }
  if (made) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  return 0;
}

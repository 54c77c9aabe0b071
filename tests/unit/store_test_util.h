// Helpers shared by the store and Titanic tests: a temporary directory and a
// bounded wait for store completions.
#pragma once

#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "store/request_store.h"

namespace plantd::store::testing {

class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "plantd-store-XXXXXX").string();
    if (mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Waits (on completion_fd, as the core's loop would) until `n` completions
// have arrived or `timeout` passed; returns what arrived.
inline std::vector<Completion> WaitFor(
    RequestStore& store, size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  std::vector<Completion> got;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (got.size() < n) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{store.completion_fd(), POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) > 0) store.TakeCompletions(&got);
  }
  return got;
}

inline Completion WaitOne(RequestStore& store) {
  std::vector<Completion> got = WaitFor(store, 1);
  if (got.empty()) {
    Completion timed_out;
    timed_out.error = StoreError::kInternal;
    timed_out.message = "test: no completion within 10 s";
    return timed_out;
  }
  return std::move(got.front());
}

}  // namespace plantd::store::testing

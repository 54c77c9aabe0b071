#include "client/native_publisher.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <system_error>

#include "transport/zmtp_framing.h"

namespace plantd::client {

namespace {

// Output that is written at once, however young: one write of this much
// costs little more than one of a single message.
constexpr size_t kFlushBytes = size_t{64} << 10;

timespec ToTimespec(std::chrono::nanoseconds wait) {
  if (wait.count() < 0) wait = std::chrono::nanoseconds(0);
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(wait);
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(seconds.count());
  ts.tv_nsec = static_cast<long>((wait - seconds).count());
  return ts;
}

}  // namespace

Result<std::unique_ptr<NativePublisher>> NativePublisher::Open(Options options) {
  if (options.max_queued_messages == 0 || options.max_queued_bytes == 0) {
    return Status::InvalidArgument("a publisher's queue limits must be positive");
  }
  if (options.max_delay.count() < 0 || options.linger.count() < 0) {
    return Status::InvalidArgument("a publisher's max_delay and linger must not be negative");
  }
  NativeConnection::Options connection_options;
  connection_options.endpoint = options.endpoint;
  connection_options.socket_type = NativeConnection::SocketType::kPub;
  connection_options.max_queued_bytes = options.max_queued_bytes;
  auto connection = NativeConnection::Open(std::move(connection_options));
  if (!connection.ok()) return connection.status();
  std::unique_ptr<NativePublisher> publisher(new NativePublisher(std::move(options)));
  publisher->connection_ = std::move(connection.value());
  publisher->connection_->Cork();  // this class decides when to write
  publisher->wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (publisher->wake_fd_ < 0) {
    return Status::Unavailable(std::string("cannot make an eventfd: ") + std::strerror(errno));
  }
  try {
    publisher->thread_ = std::thread(&NativePublisher::Run, publisher.get());
  } catch (const std::system_error& e) {
    return Status::Unavailable(std::string("cannot start the publisher's thread: ") + e.what());
  }
  return publisher;
}

NativePublisher::NativePublisher(Options options) : options_(std::move(options)) {}

NativePublisher::~NativePublisher() {
  if (thread_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    Wake();
    room_.notify_all();
    thread_.join();
  }
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void NativePublisher::Wake() {
  const uint64_t one = 1;
  // Cannot fail short of a full counter, which a pending wake-up already
  // means is readable.
  (void)!::write(wake_fd_, &one, sizeof(one));
}

Status NativePublisher::Publish(std::string_view topic, const std::vector<std::string>& frames) {
  size_t bytes = topic.size() + transport::zmtp::kMaxFrameHeaderSize;
  for (const std::string& f : frames) bytes += f.size() + transport::zmtp::kMaxFrameHeaderSize;
  if (bytes > options_.max_queued_bytes) {
    return Status::InvalidArgument("a message of " + std::to_string(bytes) +
                                   " bytes is larger than the publisher's queue (" +
                                   std::to_string(options_.max_queued_bytes) + " bytes)");
  }
  std::unique_lock<std::mutex> lock(mu_);
  bool batch_started = false;
  while (true) {
    // Asked again after each wait: a connection lost meanwhile took the
    // subscriptions with it.
    if (!Wanted(topic)) return Status::Ok();
    batch_started = connection_->unwritten_bytes() == 0;
    if (HasRoom() && connection_->Send({topic}, frames)) break;
    if (!options_.block || stopping_) {
      ++refused_;
      return Status::Unavailable("the publisher's queue to " + options_.endpoint +
                                 " is full: message dropped");
    }
    room_.wait_for(lock, std::chrono::milliseconds(100));
  }
  // The clock is read once per batch, not per message: at full speed a
  // batch is hundreds of messages.
  if (batch_started) {
    const auto now = Clock::now();
    batch_start_ = now;
    if (!socket_full_ && now - last_write_ >= options_.max_delay) Flush(now);
  }
  if (!socket_full_ && connection_->unwritten_bytes() >= kFlushBytes) Flush(Clock::now());
  // The I/O thread writes the rest of a batch that it does not know of.
  if (batch_started && connection_->unwritten_bytes() > 0 && !wake_pending_) {
    wake_pending_ = true;
    Wake();
  }
  return Status::Ok();
}

bool NativePublisher::HasRoom() const {
  return connection_->unwritten_messages() < options_.max_queued_messages;
}

void NativePublisher::Flush(Clock::time_point now) {
  connection_->Flush();
  last_write_ = now;
  batch_start_ = now;
  socket_full_ = connection_->ready() && connection_->unwritten_bytes() > 0;
  // A write may be what finds the connection lost: its subscriptions go
  // with it at once, not when the I/O thread next looks.
  if (!connection_->ready()) ForgetSubscriptions();
  room_.notify_all();
}

bool NativePublisher::Wanted(std::string_view topic) const {
  if (empty_prefix_ > 0 || too_many_) return true;
  for (const auto& [prefix, count] : prefixes_) {
    if (topic.size() >= prefix.size() && topic.compare(0, prefix.size(), prefix) == 0) return true;
  }
  return false;
}

void NativePublisher::TakeSubscriptions() {
  while (connection_->Recv(&received_)) {
    // One frame, 0x01 or 0x00 then the prefix; an XSUB may pass other
    // messages upstream, which a PUB has no use for.
    if (received_.size() != 1 || received_[0].empty()) continue;
    const std::string& message = received_[0];
    if (message[0] != 0 && message[0] != 1) continue;
    const bool subscribe = message[0] == 1;
    const std::string_view prefix = std::string_view(message).substr(1);
    if (prefix.empty()) {
      if (subscribe) {
        ++empty_prefix_;
      } else if (empty_prefix_ > 0) {
        --empty_prefix_;
      }
      continue;
    }
    auto it = std::find_if(prefixes_.begin(), prefixes_.end(),
                           [&](const auto& entry) { return entry.first == prefix; });
    if (subscribe) {
      if (it != prefixes_.end()) {
        ++it->second;
      } else if (prefixes_.size() >= options_.max_subscriptions) {
        too_many_ = true;  // until the connection is lost
      } else {
        prefixes_.emplace_back(prefix, 1);
      }
    } else if (it != prefixes_.end() && --it->second == 0) {
      *it = std::move(prefixes_.back());
      prefixes_.pop_back();
    }
  }
}

void NativePublisher::ForgetSubscriptions() {
  prefixes_.clear();
  empty_prefix_ = 0;
  too_many_ = false;
}

uint64_t NativePublisher::dropped() const {
  std::lock_guard<std::mutex> lock(mu_);
  return refused_ + connection_->dropped_messages();
}

size_t NativePublisher::subscriptions() const {
  std::lock_guard<std::mutex> lock(mu_);
  return prefixes_.size() + (empty_prefix_ > 0 ? 1 : 0);
}

bool NativePublisher::connected() const {
  std::lock_guard<std::mutex> lock(mu_);
  return connection_->ready();
}

void NativePublisher::Run() {
  // The batch deadline is tens of microseconds: the default slack of 50 us
  // would double it.
  ::prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
  std::unique_lock<std::mutex> lock(mu_);
  auto linger_end = Clock::time_point::max();
  while (true) {
    const auto now = Clock::now();
    const bool ready = connection_->ready();
    const bool pending = ready && connection_->unwritten_bytes() > 0;
    if (stopping_) {
      if (linger_end == Clock::time_point::max()) linger_end = now + options_.linger;
      if (!pending || now >= linger_end) break;
    }
    pollfd fds[2] = {{connection_->fd(), connection_->events(), 0}, {wake_fd_, POLLIN, 0}};
    if (pending && socket_full_) fds[0].events = static_cast<short>(fds[0].events | POLLOUT);
    auto deadline = connection_->next_timer();
    if (pending && !socket_full_) deadline = std::min(deadline, batch_start_ + options_.max_delay);
    if (stopping_) deadline = std::min(deadline, linger_end);
    lock.unlock();
    timespec timeout{};
    const timespec* timeout_ptr = nullptr;
    if (deadline != Clock::time_point::max()) {
      timeout = ToTimespec(deadline - Clock::now());
      timeout_ptr = &timeout;
    }
    if (::ppoll(fds, 2, timeout_ptr, nullptr) < 0 && errno != EINTR) {
      fds[0].revents = 0;
      fds[1].revents = 0;
    }
    lock.lock();
    if ((fds[1].revents & POLLIN) != 0) {
      uint64_t count = 0;
      (void)!::read(wake_fd_, &count, sizeof(count));
      wake_pending_ = false;
    }
    connection_->Process(fds[0].revents);
    // Subscriptions read with whatever ended the connection are taken
    // first, so that they are forgotten with it.
    TakeSubscriptions();
    if (!connection_->ready()) {
      ForgetSubscriptions();
      socket_full_ = false;
      room_.notify_all();  // a blocked Publish learns at once
    }
    const auto after = Clock::now();
    if (connection_->ready() && connection_->unwritten_bytes() > 0 &&
        ((fds[0].revents & POLLOUT) != 0 || stopping_ ||
         (!socket_full_ && after >= batch_start_ + options_.max_delay))) {
      Flush(after);
    }
  }
}

}  // namespace plantd::client

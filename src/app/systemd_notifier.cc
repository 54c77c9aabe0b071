#include "app/systemd_notifier.h"

#include <systemd/sd-daemon.h>
#include <time.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>

#include "log/log.h"

namespace plantd {

SystemdNotifier::SystemdNotifier() {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  enabled_ = socket != nullptr && socket[0] != '\0';
  uint64_t usec = 0;
  // > 0: the watchdog is on for this process (WATCHDOG_PID, if set, is ours).
  if (enabled_ && sd_watchdog_enabled(/*unset_environment=*/0, &usec) > 0 && usec > 0) {
    watchdog_period_ = std::chrono::milliseconds(std::max<uint64_t>(usec / 2000, 1));
  }
}

void SystemdNotifier::Send(const std::string& state) {
  if (!enabled_) return;
  const int r = sd_notify(/*unset_environment=*/0, state.c_str());
  if (r < 0) {
    PLANTD_LOG_WARN("sd_notify failed", {{"errno", -r}});
  }
}

void SystemdNotifier::Ready(const std::string& status) { Send("READY=1\nSTATUS=" + status); }

void SystemdNotifier::Status(const std::string& status) { Send("STATUS=" + status); }

void SystemdNotifier::Watchdog() { Send("WATCHDOG=1"); }

void SystemdNotifier::Reloading() {
  // systemd 253+ wants MONOTONIC_USEC with RELOADING=1 for Type=notify-reload;
  // older ones ignore it.
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const uint64_t usec =
      static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
  Send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

void SystemdNotifier::Stopping() { Send("STOPPING=1"); }

}  // namespace plantd

// Tells systemd how the broker is doing (sd_notify(3)), for a unit with
// Type=notify and WatchdogSec=: READY=1 once every endpoint is bound,
// STATUS= a one-line summary, WATCHDOG=1 while every loop turns,
// RELOADING=1 / READY=1 around a SIGHUP reload, STOPPING=1 on shutdown.
//
// Outside systemd (no $NOTIFY_SOCKET) every call does nothing. Main thread.
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace plantd {

class SystemdNotifier {
 public:
  // Reads $NOTIFY_SOCKET and $WATCHDOG_USEC (left set: the broker starts
  // no child processes that could inherit them).
  SystemdNotifier();

  bool enabled() const { return enabled_; }

  // How often to send WATCHDOG=1: half of WatchdogSec, as sd_watchdog_enabled(3)
  // advises. nullopt when the unit has no watchdog.
  std::optional<std::chrono::milliseconds> watchdog_period() const { return watchdog_period_; }

  void Ready(const std::string& status);
  void Status(const std::string& status);
  void Watchdog();
  void Reloading();
  void Stopping();

 private:
  void Send(const std::string& state);

  bool enabled_ = false;
  std::optional<std::chrono::milliseconds> watchdog_period_;
};

}  // namespace plantd

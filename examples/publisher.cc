// A publisher: sends COUNT readings on TOPIC to a bus backend, one every
// INTERVAL milliseconds.
//   publisher [BACKEND] [TOPIC] [COUNT] [INTERVAL_MS]
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "plantd/bus/bus.h"

int main(int argc, char** argv) {
  const std::string endpoint = argc > 1 ? argv[1] : "tcp://127.0.0.1:12000";
  const std::string topic = argc > 2 ? argv[2] : "sensor.temperature";
  const long count = argc > 3 ? std::atol(argv[3]) : 10;
  const long interval_ms = argc > 4 ? std::atol(argv[4]) : 100;

  plantd::bus::Publisher pub(endpoint);
  if (auto s = pub.status(); !s.ok()) {
    std::cerr << s.message() << "\n";  // a malformed endpoint
    return 2;
  }
  for (long i = 0; i < count; ++i) {
    if (auto s = pub.Publish(topic, {std::to_string(20.0 + 0.1 * static_cast<double>(i))});
        !s.ok()) {
      std::cerr << s.message() << "\n";
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
  }
}

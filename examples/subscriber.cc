// A subscriber: prints COUNT messages whose topic starts with PREFIX.
//   subscriber [FRONTEND] [PREFIX] [COUNT]
#include <cstdlib>
#include <iostream>

#include "plantd/bus/bus.h"

int main(int argc, char** argv) {
  const std::string endpoint = argc > 1 ? argv[1] : "tcp://127.0.0.1:12001";
  const std::string prefix = argc > 2 ? argv[2] : "sensor.";
  const long count = argc > 3 ? std::atol(argv[3]) : 10;

  plantd::bus::Subscriber sub(endpoint, {prefix});
  if (auto s = sub.status(); !s.ok()) {
    std::cerr << s.message() << "\n";  // a malformed endpoint
    return 2;
  }
  for (long i = 0; i < count;) {
    auto message = sub.Receive(std::chrono::seconds(10));
    if (!message) return 1;  // nothing for 10 s
    std::cout << message->topic;
    for (const std::string& frame : message->frames) std::cout << " " << frame;
    std::cout << std::endl;
    ++i;
  }
}

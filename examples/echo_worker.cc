// An echo worker: answers every request with its own body.
//   echo_worker [ENDPOINT] [SERVICE] [COUNT]
#include <cstdlib>
#include <iostream>

#include "plantd/mdp/worker.h"

int main(int argc, char** argv) {
  const std::string endpoint = argc > 1 ? argv[1] : "tcp://127.0.0.1:7201";
  const std::string service = argc > 2 ? argv[2] : "org.plantd.Echo";
  const long count = argc > 3 ? std::atol(argv[3]) : -1;  // -1: forever

  plantd::mdp::Worker worker(endpoint, service);
  if (auto s = worker.status(); !s.ok()) {
    std::cerr << s.message() << "\n";  // a malformed endpoint
    return 2;
  }
  for (long served = 0; count < 0 || served < count; ++served) {
    auto request = worker.Receive();
    if (!request) break;
    if (auto s = worker.Reply(*request, request->body); !s.ok()) std::cerr << s.message() << "\n";
  }
}

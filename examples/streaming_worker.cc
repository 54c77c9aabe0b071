// A streaming worker: answers "count N" with N PARTIAL replies, then a FINAL.
//   streaming_worker [ENDPOINT] [SERVICE] [REQUESTS]
#include <cstdlib>
#include <iostream>
#include <string>

#include "plantd/mdp/worker.h"

int main(int argc, char** argv) {
  const std::string endpoint = argc > 1 ? argv[1] : "tcp://127.0.0.1:7201";
  const std::string service = argc > 2 ? argv[2] : "org.plantd.Counter";
  const long requests = argc > 3 ? std::atol(argv[3]) : -1;

  plantd::mdp::Worker worker(endpoint, service);
  if (auto s = worker.status(); !s.ok()) {
    std::cerr << s.message() << "\n";  // a malformed endpoint
    return 2;
  }
  for (long served = 0; requests < 0 || served < requests; ++served) {
    auto request = worker.Receive();
    if (!request) break;
    const int n = request->body.size() > 1 ? std::atoi(request->body[1].c_str()) : 3;
    for (int i = 1; i <= n; ++i) (void)worker.Partial(*request, {std::to_string(i)});
    (void)worker.Reply(*request, {"done"});
  }
}

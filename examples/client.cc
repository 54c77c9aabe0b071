// A client: sends one request and prints the reply.
//   client [ENDPOINT] [SERVICE] [FRAME...]
#include <iostream>

#include "plantd/mdp/client.h"

int main(int argc, char** argv) {
  const std::string endpoint = argc > 1 ? argv[1] : "tcp://127.0.0.1:7200";
  const std::string service = argc > 2 ? argv[2] : "org.plantd.Echo";
  plantd::mdp::Frames body(argv + std::min(argc, 3), argv + argc);
  if (body.empty()) body = {"hello"};

  plantd::mdp::Client client(endpoint);
  auto reply = client.Request(service, body);
  if (!reply.ok()) {
    std::cerr << "error: " << reply.status().message() << "\n";
    return 1;
  }
  for (const std::string& frame : reply.value()) std::cout << frame << "\n";
}

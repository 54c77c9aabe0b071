// A durable Majordomo client: requests go through the broker's 9/TSP Titanic
// service, which stores each one on disk before acknowledging it, so the
// request survives a crash of the broker, of the worker or of this process.
//
//   plantd::mdp::TitanicClient titanic("tcp://localhost:7200");
//   auto id = titanic.Submit("org.plantd.Recipe", {"download", recipe});
//   if (!id.ok()) ...;               // not stored: nothing will happen
//   // ... keep *id somewhere durable; later, even from another process:
//   auto reply = titanic.Wait(*id, std::chrono::seconds(30));
//   if (reply.ok() && reply->state == plantd::mdp::TitanicReply::State::kReady) {
//     use(reply->body);
//     (void)titanic.Close(*id);      // the broker may forget it now
//   }
//
// Delivery to the worker is at least once (docs/durability.md): a worker
// whose requests go through Titanic must be idempotent. Errors are values;
// nothing throws. Not thread-safe: one TitanicClient per thread.
#pragma once

#include <chrono>
#include <string>

#include "plantd/mdp/client.h"
#include "plantd/status.h"

namespace plantd::mdp {

struct TitanicReply {
  enum class State {
    kPending,  // 9/TSP 300: stored, not answered yet
    kReady,    // 200: `body` is the worker's FINAL reply
    kUnknown,  // 400: no such request (never stored, closed, or expired)
    kFailed,   // 500: given up on (see `reason`), or the store failed
  };
  State state = State::kPending;
  Frames body;
  std::string reason;
};

const char* TitanicStateName(TitanicReply::State state);

class TitanicClient {
 public:
  // `options.attempts`: a titanic.request that times out is sent again, and
  // may then be stored twice (two ids; the worker runs it twice). Keep
  // attempts at 1 where that matters.
  explicit TitanicClient(ClientOptions options = {});
  explicit TitanicClient(const std::string& endpoint);

  // titanic.request: returns the request's id (32 hex digits) once the
  // broker has made it durable. Errors: kUnavailable (the store is full or
  // failing, or the broker refused), kTimeout, kInvalidArgument.
  Result<std::string> Submit(const std::string& service, const Frames& body);

  // titanic.reply: the request's state now.
  Result<TitanicReply> Reply(const std::string& id);

  // Asks (titanic.reply) until the request is no longer pending, at most
  // `timeout`: kTimeout while it is still pending then.
  Result<TitanicReply> Wait(const std::string& id, std::chrono::milliseconds timeout);

  // titanic.close: the broker deletes the request and its reply. Closing an
  // unknown id succeeds (9/TSP).
  Status Close(const std::string& id);

 private:
  Client client_;
};

}  // namespace plantd::mdp

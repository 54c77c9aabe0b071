// What one load run measured, whatever it drove (the broker over ZMTP, or
// nats-server): the requests (or acknowledged publishes) completed in the
// measured window and the checks made on every answer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace plantd::bench {

struct LoadResult {
  uint64_t completed_in_window = 0;
  uint64_t completed_total = 0;        // warm-up and drain included
  uint64_t lost = 0;                   // still unanswered when the drain ended
  uint64_t duplicated = 0;             // an answer to nothing outstanding
  uint64_t mismatched = 0;             // an answer that is not the expected one
  std::vector<uint64_t> latencies_ns;  // of the requests completed in the window
  double server_cpu_seconds = 0;       // over the window
  std::string error;                   // a connection that failed
  std::string first_mismatch;          // what the first mismatched answer said
};

}  // namespace plantd::bench

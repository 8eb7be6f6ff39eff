// Simulator: `abgate simulate`, a bounded traffic and outcome generator for demos, tests and
// benchmarks, usable against any running gateway.
//
// Users have a fixed profile (loyalty tier, prior bookings, device); each request is one search
// session showing `hotels` candidate hotels (the booking features of serving/training.h). The
// gateway's model scores them; the site lists the top-scored hotel first and the user books it
// with its true booking probability. A model that ranks better therefore earns more bookings.
// Outcomes (`booked` 0/1 and `revenue`) go to POST /outcomes in JSON-lines batches, attributed
// by request id. Rate-limited, stops after `duration_s` or `max_requests`, or when `stop` is set.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "absl/status/statusor.h"

namespace abgate::control {

struct SimulateOptions {
  std::string gateway = "http://127.0.0.1:8080";  // the data plane
  std::string experiment;  // empty: POST /predict (the default experiment)
  int64_t users = 5000;
  double rate = 500;         // requests per second, across all workers
  double duration_s = 30;
  int64_t max_requests = 10'000'000;
  int hotels = 3;            // candidate hotels per session
  int workers = 8;           // concurrent requests
  uint64_t seed = 1;
};

struct ArmTally {
  int64_t requests = 0;
  int64_t bookings = 0;
  double revenue = 0;
};

struct SimulateReport {
  int64_t sent = 0;
  int64_t ok = 0;
  int64_t failed = 0;  // non-2xx or transport errors
  int64_t outcomes = 0;
  int64_t outcomes_rejected = 0;
  std::map<std::string, ArmTally> arms;  // by "arm (vVERSION)"
  double elapsed_s = 0;
};

// Runs until done; `progress` (optional) is called about once a second from the caller's thread.
absl::StatusOr<SimulateReport> Simulate(const SimulateOptions& options,
                                        const std::function<void(const SimulateReport&)>& progress = {},
                                        const std::atomic<bool>* stop = nullptr);

}  // namespace abgate::control

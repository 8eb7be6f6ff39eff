// ResultsCache: experiment analyses computed off the admin and I/O threads, once per change of
// the store, shared by everyone who asks.
//
// An analysis reads the whole experiment from the event store (seconds on a 1M-row store), so
// it must neither run on the thread that applies admin changes nor once per caller. Each key
// (experiment, since_us) has at most one computation running and one queued; a caller joins
// the queued one (every caller gets a result computed after it asked, so it sees its own
// writes), or, with a positive `max_age_us`, takes a result that holds everything committed
// up to no longer than that ago (its age counts from the store's mark taken before computing,
// not from when it was done; a poller also takes a running computation that started within
// that age instead of waiting for the next; a dashboard's polling costs nothing between recomputations; on a
// store whose refresh is slow, the accepted age grows with the refresh's cost, never with the
// key's first computation, which builds what later ones update). Before computing, the worker asks for
// the store's mark (config version + commits): an unchanged exact mark reuses the previous
// result or NOT_FOUND (other failures, such as a store outage, are computed again).
// Computations run on `threads` worker threads; at most `max_queued` keys wait for one (more:
// RESOURCE_EXHAUSTED). The workers run at a lower priority (Options::nice). Thread-safe;
// callbacks run on a worker thread, or on the caller's thread for a fresh-enough cached result.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "common/clock.h"
#include "common/mutex.h"

namespace abgate::dashboard {

struct ResultsKey {
  std::string experiment;
  int64_t since_us = 0;
  auto operator<=>(const ResultsKey&) const = default;
};

// What the store held when a result was computed. Two equal exact marks mean the same data and
// config, hence the same result; a mark that is not exact (a store other processes write too)
// never proves that.
struct StoreMark {
  uint64_t config_version = 0;
  int64_t commits = 0;
  bool exact = true;
  bool operator==(const StoreMark&) const = default;
};

// One computed analysis: the report and the traffic split, or why there is none.
struct Results {
  absl::Status status;
  std::string report_json;
  std::string traffic_json;
  StoreMark mark;
  int64_t computed_at_us = 0;
  int64_t compute_us = 0;  // time the computation took (by the cache's clock)
};

class ResultsCache {
 public:
  struct Options {
    int threads = 1;        // analyses running at once
    size_t max_queued = 16;  // keys waiting for a thread
    size_t max_entries = 64;  // results kept (least recently used evicted)
    // A caller that accepts an old result (max_age_us > 0, a polling dashboard) accepts one as
    // old as this many times the last recomputation of its key took (the age counts from the
    // computation's start), so pollers keep a results thread busy at most 1 / factor of the time
    // however slow the refresh (20% with 5). The key's first computation does not count: it
    // builds the follower's units (seconds at 1M units), and later refreshes only update them.
    int64_t poller_cost_factor = 5;
    // Added to the results threads' nice value (per thread on Linux; the threads an analysis
    // starts inherit it), so analyses take CPU the I/O threads leave: an open dashboard does
    // not slow the data plane of a loaded gateway. 0 keeps the creating thread's.
    int nice = 10;
  };
  // Both run on a worker thread and may block: `mark` (e.g. after flushing the writer) is
  // taken before every computation; `compute` does the analysis.
  using MarkFn = std::function<StoreMark()>;
  using ComputeFn = std::function<Results(const ResultsKey&)>;
  using Done = absl::AnyInvocable<void(std::shared_ptr<const Results>) &&>;

  ResultsCache(Options options, const common::Clock& clock, MarkFn mark, ComputeFn compute);
  // Stops the workers; callers still waiting get UNAVAILABLE.
  ~ResultsCache();
  ResultsCache(const ResultsCache&) = delete;
  ResultsCache& operator=(const ResultsCache&) = delete;

  // Calls `done` exactly once with a result (its status may be an error). Never blocks.
  void Get(const ResultsKey& key, int64_t max_age_us, Done done);

  struct Stats {
    int64_t requests = 0;      // Get calls
    int64_t cached = 0;        // answered from a result, or a running computation, within max_age
    int64_t computations = 0;  // analyses run
    int64_t reused = 0;        // recomputations skipped because the mark had not moved
    int64_t rejected = 0;      // refused: too many keys queued
    int64_t compute_us = 0;    // total time in analyses
  };
  Stats stats() const;

 private:
  struct Entry {
    std::shared_ptr<const Results> result;
    // When the store's mark was taken for `result` (its computation, or a reuse, started): it
    // holds everything committed before then.
    int64_t verified_at_us = 0;
    // What refreshes (computations after the key's first) take: the cost a poller's accepted
    // age scales with, the smaller of the last two (one slow refresh, such as a store's
    // periodic recount, does not hold every poller back), 0 until the key is computed twice.
    int64_t refresh_cost_us = 0;
    int64_t last_refresh_us = 0;
    int64_t last_used_us = 0;
    bool queued = false;
    bool running = false;
    int64_t running_as_of_us = 0;  // when the running computation's mark was taken
    std::vector<Done> waiters;  // for the next computation to start
    std::vector<Done> riders;   // pollers answered by the running computation (recent enough)
  };
  void Run();
  void EvictLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static std::shared_ptr<const Results> Failed(absl::Status s);

  const Options options_;
  const common::Clock& clock_;
  const MarkFn mark_;
  const ComputeFn compute_;
  mutable common::Mutex mu_;
  common::CondVar work_;  // queue_ has a key, or stopping_
  std::map<ResultsKey, Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::deque<ResultsKey> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  Stats stats_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_;
};

}  // namespace abgate::dashboard

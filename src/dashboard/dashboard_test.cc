#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "dashboard/assets.h"
#include "dashboard/results_cache.h"
#include "dashboard/traffic.h"
#include "gtest/gtest.h"

namespace abgate::dashboard {
namespace {

namespace json = boost::json;

// Collects results delivered on other threads; Wait blocks until `n` arrived (with a deadline).
class Collector {
 public:
  ResultsCache::Done Callback() {
    return [this](std::shared_ptr<const Results> r) {
      std::lock_guard lock(mu_);
      results_.push_back(std::move(r));
      cv_.notify_all();
    };
  }
  std::vector<std::shared_ptr<const Results>> Wait(size_t n) {
    std::unique_lock lock(mu_);
    EXPECT_TRUE(cv_.wait_for(lock, std::chrono::seconds(10), [&] { return results_.size() >= n; }));
    return results_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::shared_ptr<const Results>> results_;
};

// A computation that blocks until released, counting how often it ran.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  int started = 0;
  std::atomic<int> computations{0};
  std::atomic<int64_t> commits{0};

  Results Compute(const ResultsKey& key) {
    std::unique_lock lock(mu);
    ++started;
    cv.notify_all();
    cv.wait(lock, [&] { return open; });
    Results r;
    r.report_json = key.experiment + "#" + std::to_string(computations.fetch_add(1) + 1);
    return r;
  }
  void WaitStarted(int n) {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return started >= n; }));
  }
  void Open() {
    std::lock_guard lock(mu);
    open = true;
    cv.notify_all();
  }
};

TEST(ResultsCacheTest, ConcurrentCallersShareOneComputation) {
  common::FakeClock clock(1'000'000);
  Gate gate;
  ResultsCache cache({.threads = 1}, clock, [&] { return StoreMark{1, gate.commits.load(), true}; },
                     [&](const ResultsKey& k) { return gate.Compute(k); });
  Collector c;
  for (int i = 0; i < 10; ++i) cache.Get({"exp", 0}, 0, c.Callback());
  gate.Open();
  auto got = c.Wait(10);
  ASSERT_EQ(got.size(), 10u);
  for (const auto& r : got) EXPECT_EQ(r->report_json, "exp#1");
  EXPECT_EQ(gate.computations.load(), 1);
  EXPECT_EQ(cache.stats().computations, 1);
}

TEST(ResultsCacheTest, CallerArrivingDuringAComputationGetsALaterOne) {
  common::FakeClock clock(1'000'000);
  Gate gate;
  ResultsCache cache({.threads = 2}, clock, [&] { return StoreMark{1, gate.commits.fetch_add(1), true}; },
                     [&](const ResultsKey& k) { return gate.Compute(k); });
  Collector first, second;
  cache.Get({"exp", 0}, 0, first.Callback());
  gate.WaitStarted(1);  // running now: what is written next is not in it
  cache.Get({"exp", 0}, 0, second.Callback());
  cache.Get({"exp", 0}, 0, second.Callback());
  gate.Open();
  EXPECT_EQ(first.Wait(1)[0]->report_json, "exp#1");
  auto later = second.Wait(2);
  EXPECT_EQ(later[0]->report_json, "exp#2");  // one more computation for both late callers
  EXPECT_EQ(later[1]->report_json, "exp#2");
  EXPECT_EQ(gate.computations.load(), 2);
}

TEST(ResultsCacheTest, UnchangedMarkReusesTheResultAndMaxAgeSkipsTheWorker) {
  common::FakeClock clock(1'000'000);
  Gate gate;
  gate.Open();
  std::atomic<int> marks{0};
  bool exact = true;
  ResultsCache cache({.threads = 1}, clock, [&] {
    marks.fetch_add(1);
    return StoreMark{7, gate.commits.load(), exact};
  }, [&](const ResultsKey& k) { return gate.Compute(k); });
  Collector a, b, c, d;
  cache.Get({"exp", 0}, 0, a.Callback());
  EXPECT_EQ(a.Wait(1)[0]->report_json, "exp#1");
  cache.Get({"exp", 0}, 0, b.Callback());  // nothing committed since: same result, no analysis
  EXPECT_EQ(b.Wait(1)[0]->report_json, "exp#1");
  EXPECT_EQ(gate.computations.load(), 1);
  EXPECT_EQ(cache.stats().reused, 1);
  gate.commits = 5;  // new events
  clock.AdvanceUs(500'000);
  cache.Get({"exp", 0}, 1'000'000, c.Callback());  // a recent result is good enough: no mark, no worker
  EXPECT_EQ(c.Wait(1)[0]->report_json, "exp#1");
  EXPECT_EQ(marks.load(), 2);
  cache.Get({"exp", 0}, 0, d.Callback());  // must see the new events
  EXPECT_EQ(d.Wait(1)[0]->report_json, "exp#2");
  EXPECT_EQ(cache.stats().cached, 1);
}

TEST(ResultsCacheTest, PollersOfASlowAnalysisAcceptAnOlderResult) {
  common::FakeClock clock(1'000'000);
  std::atomic<int> computations{0};
  std::atomic<int64_t> commits{0};
  ResultsCache cache({.threads = 1, .poller_cost_factor = 5}, clock, [&] { return StoreMark{1, commits.load(), true}; },
                     [&](const ResultsKey& k) {
                       clock.AdvanceUs(1'000'000);  // an analysis that takes a second
                       Results r;
                       r.report_json = "#" + std::to_string(computations.fetch_add(1) + 1);
                       return r;
                     });
  Collector a, b, c, d;
  cache.Get({"exp", 0}, 0, a.Callback());
  EXPECT_EQ(a.Wait(1)[0]->compute_us, 1'000'000);
  commits = 1;
  cache.Get({"exp", 0}, 0, b.Callback());  // a refresh: its cost is what pollers scale with
  EXPECT_EQ(b.Wait(1)[0]->report_json, "#2");
  commits = 9;  // new events, but a poller (900 ms) may take a result up to 5 × 1 s old
  clock.AdvanceUs(3'500'000);  // 4.5 s since #2 started
  cache.Get({"exp", 0}, 900'000, c.Callback());
  EXPECT_EQ(c.Wait(1)[0]->report_json, "#2");
  clock.AdvanceUs(1'000'000);  // 5.5 s: too old now
  cache.Get({"exp", 0}, 900'000, d.Callback());
  EXPECT_EQ(d.Wait(1)[0]->report_json, "#3");
}

// Issue 15 item 3 (bench/dashboard_visibility: new traffic took 18 s to show after the first
// read of a 1M-unit experiment): a key's first computation builds the follower's units, seconds
// that no later refresh costs, so it must not stretch the age a poller accepts.
TEST(ResultsCacheTest, Issue15AKeysFirstComputationDoesNotStretchThePollersAge) {
  common::FakeClock clock(1'000'000);
  std::atomic<int> computations{0};
  std::atomic<int64_t> commits{0};
  ResultsCache cache({.threads = 1}, clock, [&] { return StoreMark{1, commits.load(), true}; },
                     [&](const ResultsKey& k) {
                       const int n = computations.fetch_add(1) + 1;
                       clock.AdvanceUs(n == 1 ? 10'000'000 : 50'000);  // a first read, then refreshes
                       Results r;
                       r.report_json = "#" + std::to_string(n);
                       return r;
                     });
  Collector a, b, c;
  cache.Get({"exp", 0}, 900'000, a.Callback());
  EXPECT_EQ(a.Wait(1)[0]->report_json, "#1");
  commits = 5;  // new traffic; the dashboard polls a second later
  clock.AdvanceUs(1'000'000);
  cache.Get({"exp", 0}, 900'000, b.Callback());
  EXPECT_EQ(b.Wait(1)[0]->report_json, "#2");
  commits = 6;
  clock.AdvanceUs(1'000'000);
  cache.Get({"exp", 0}, 900'000, c.Callback());
  EXPECT_EQ(c.Wait(1)[0]->report_json, "#3");
}

// Issue 15 item 3: a poller's max_age bounds how old the data is, so it counts from the store's
// mark (taken when the computation starts), not from when the computation ended.
TEST(ResultsCacheTest, Issue15APollersAgeCountsFromTheStartOfTheComputation) {
  common::FakeClock clock(1'000'000);
  std::atomic<int> computations{0};
  std::atomic<int64_t> commits{0};
  ResultsCache cache({.threads = 1}, clock, [&] { return StoreMark{1, commits.load(), true}; },
                     [&](const ResultsKey& k) {
                       clock.AdvanceUs(100'000);
                       Results r;
                       r.report_json = "#" + std::to_string(computations.fetch_add(1) + 1);
                       return r;
                     });
  Collector a, b, c, d;
  cache.Get({"exp", 0}, 0, a.Callback());
  a.Wait(1);
  commits = 1;
  cache.Get({"exp", 0}, 0, b.Callback());  // started at +100 ms, holds what was committed then
  EXPECT_EQ(b.Wait(1)[0]->report_json, "#2");
  commits = 2;
  clock.AdvanceUs(800'000);  // 900 ms after #2 started: still good enough
  cache.Get({"exp", 0}, 900'000, c.Callback());
  EXPECT_EQ(c.Wait(1)[0]->report_json, "#2");
  clock.AdvanceUs(50'000);  // 950 ms after it started, 850 ms after it ended: too old
  cache.Get({"exp", 0}, 900'000, d.Callback());
  EXPECT_EQ(d.Wait(1)[0]->report_json, "#3");
}

// Issue 15 item 3 (bench/dashboard_visibility on PostgreSQL, 5 dashboards: p95 2.2 s): a
// poller that finds a computation running that started within its age takes it, instead of
// waiting for the next one to start after it and end.
TEST(ResultsCacheTest, Issue15APollerTakesARunningComputationThatStartedWithinItsAge) {
  common::FakeClock clock(1'000'000);
  Gate gate;
  ResultsCache cache({.threads = 1}, clock, [&] { return StoreMark{1, gate.commits.fetch_add(1), true}; },
                     [&](const ResultsKey& k) { return gate.Compute(k); });
  Collector first, poller, late;
  cache.Get({"exp", 0}, 0, first.Callback());
  gate.WaitStarted(1);
  clock.AdvanceUs(500'000);
  cache.Get({"exp", 0}, 900'000, poller.Callback());  // it started 0.5 s ago: recent enough
  clock.AdvanceUs(500'000);
  cache.Get({"exp", 0}, 900'000, late.Callback());  // 1 s ago: too old, the next one
  gate.Open();
  EXPECT_EQ(first.Wait(1)[0]->report_json, "exp#1");
  EXPECT_EQ(poller.Wait(1)[0]->report_json, "exp#1");
  EXPECT_EQ(late.Wait(1)[0]->report_json, "exp#2");
  EXPECT_EQ(gate.computations.load(), 2);
}

// Issue 15 item 3: one slow refresh (PostgreSQL's periodic recount, a busy machine) does not
// make pollers accept five times its cost; a lasting slowdown does.
TEST(ResultsCacheTest, Issue15OneSlowRefreshDoesNotStretchThePollersAge) {
  common::FakeClock clock(1'000'000);
  std::atomic<int> computations{0};
  std::atomic<int64_t> commits{0};
  std::vector<int64_t> costs = {5'000'000, 50'000, 2'000'000, 2'000'000, 2'000'000};
  ResultsCache cache({.threads = 1}, clock, [&] { return StoreMark{1, commits.load(), true}; },
                     [&](const ResultsKey& k) {
                       const int n = computations.fetch_add(1);
                       clock.AdvanceUs(costs[n]);
                       Results r;
                       r.report_json = "#" + std::to_string(n + 1);
                       return r;
                     });
  auto poll = [&](int64_t max_age_us) {
    Collector c;
    commits.fetch_add(1);
    cache.Get({"exp", 0}, max_age_us, c.Callback());
    return c.Wait(1)[0]->report_json;
  };
  EXPECT_EQ(poll(0), "#1");  // the first read
  EXPECT_EQ(poll(0), "#2");  // a 50 ms refresh
  EXPECT_EQ(poll(0), "#3");  // a 2 s one
  clock.AdvanceUs(1'000'000);  // 3 s after #3 started: 5 x 2 s would still take it
  EXPECT_EQ(poll(900'000), "#4");
  clock.AdvanceUs(1'000'000);  // #4 took 2 s too: now pollers accept up to 10 s
  EXPECT_EQ(poll(900'000), "#4");
}

// Issue 15 item 3: analyses run below the I/O threads' priority, so open dashboards take the
// CPU a loaded data plane leaves (bench/dashboard_visibility).
TEST(ResultsCacheTest, Issue15AnalysesRunAtALowerPriority) {
  common::FakeClock clock(1'000'000);
  errno = 0;
  const int here = ::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()));
  ASSERT_EQ(errno, 0);
  std::atomic<int> seen{-100};
  ResultsCache cache({.threads = 1}, clock, [] { return StoreMark{1, 1, true}; }, [&](const ResultsKey&) {
    seen = ::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()));
    return Results{};
  });
  Collector a;
  cache.Get({"exp", 0}, 0, a.Callback());
  a.Wait(1);
  EXPECT_EQ(seen.load(), std::min(19, here + 10));
  // This thread's priority is its own: nothing else was lowered.
  EXPECT_EQ(::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid())), here);
}

TEST(ResultsCacheTest, AFailedAnalysisIsNotReusedOnAnUnchangedMark) {
  common::FakeClock clock(1'000'000);
  std::atomic<int> calls{0};
  ResultsCache cache({.threads = 1}, clock, [] { return StoreMark{1, 1, true}; }, [&](const ResultsKey&) {
    Results r;
    if (calls.fetch_add(1) == 0) r.status = absl::UnavailableError("the store is down");
    return r;
  });
  Collector a, b;
  cache.Get({"exp", 0}, 0, a.Callback());
  EXPECT_EQ(a.Wait(1)[0]->status.code(), absl::StatusCode::kUnavailable);
  cache.Get({"exp", 0}, 0, b.Callback());  // no commit since, but the store may be back
  EXPECT_TRUE(b.Wait(1)[0]->status.ok());
  EXPECT_EQ(calls.load(), 2);
}

TEST(ResultsCacheTest, InexactMarkAlwaysRecomputes) {
  common::FakeClock clock(1'000'000);
  Gate gate;
  gate.Open();
  ResultsCache cache({.threads = 1}, clock, [] { return StoreMark{1, 1, false}; },
                     [&](const ResultsKey& k) { return gate.Compute(k); });
  for (int i = 1; i <= 3; ++i) {
    Collector c;
    cache.Get({"exp", 0}, 0, c.Callback());
    EXPECT_EQ(c.Wait(1)[0]->report_json, "exp#" + std::to_string(i));
  }
}

TEST(ResultsCacheTest, TooManyQueuedKeysAreRefusedNotQueued) {
  common::FakeClock clock(1'000'000);
  Gate gate;
  ResultsCache cache({.threads = 1, .max_queued = 2}, clock, [] { return StoreMark{}; },
                     [&](const ResultsKey& k) { return gate.Compute(k); });
  Collector running, queued, refused;
  cache.Get({"a", 0}, 0, running.Callback());
  gate.WaitStarted(1);
  cache.Get({"b", 0}, 0, queued.Callback());
  cache.Get({"c", 0}, 0, queued.Callback());
  cache.Get({"d", 0}, 0, refused.Callback());  // answered at once
  EXPECT_EQ(refused.Wait(1)[0]->status.code(), absl::StatusCode::kResourceExhausted);
  cache.Get({"b", 0}, 0, queued.Callback());  // joins b's queued computation: not refused
  gate.Open();
  auto got = queued.Wait(3);
  for (const auto& r : got) EXPECT_TRUE(r->status.ok());
  EXPECT_EQ(cache.stats().rejected, 1);
  EXPECT_EQ(gate.computations.load(), 3);
}

TEST(ResultsCacheTest, DestructionAnswersWaiters) {
  common::FakeClock clock(1'000'000);
  Gate gate;
  Collector c;
  std::thread opener;
  {
    ResultsCache cache({.threads = 1}, clock, [] { return StoreMark{}; },
                       [&](const ResultsKey& k) { return gate.Compute(k); });
    cache.Get({"a", 0}, 0, c.Callback());
    gate.WaitStarted(1);
    cache.Get({"a", 0}, 0, c.Callback());
    opener = std::thread([&] { gate.Open(); });  // the destructor waits for the running analysis
  }
  opener.join();
  auto got = c.Wait(2);
  ASSERT_EQ(got.size(), 2u);
}

TEST(TrafficSplitTest, CountsNewUnitsPerArmPerInterval) {
  analysis::AnalysisInput in;
  in.arms = {{"A", "7", 90, 0}, {"B", "8", 10, 0}};
  auto unit = [](int arm, int64_t ts) {
    analysis::UnitObservation u;
    u.arm = arm;
    u.first_ts_us = ts;
    return u;
  };
  // First half 9:1, second half 1:1.
  for (int i = 0; i < 90; ++i) in.units.push_back(unit(0, i % 75));
  for (int i = 0; i < 10; ++i) in.units.push_back(unit(1, i));
  for (int i = 0; i < 50; ++i) in.units.push_back(unit(0, 100 + i));
  for (int i = 0; i < 50; ++i) in.units.push_back(unit(1, 100 + i));
  const json::object split = TrafficSplit(in, 2);
  EXPECT_EQ(json::serialize(split.at("arms")), R"(["A","B"])");
  const auto& bins = split.at("bins").as_array();
  ASSERT_EQ(bins.size(), 2u);
  EXPECT_EQ(json::serialize(bins[0].at("units")), "[90,10]");
  EXPECT_EQ(json::serialize(bins[1].at("units")), "[50,50]");
  EXPECT_EQ(bins[0].at("start_us").as_int64(), 0);
  EXPECT_EQ(bins[1].at("end_us").as_int64(), 150);
  EXPECT_TRUE(TrafficSplit(analysis::AnalysisInput{}, 10).at("bins").as_array().empty());
}

// From a follower's statistics (AnalysisState's blocks, units added in any order, some removed)
// the split is the units' split.
TEST(TrafficSplitTest, FromTheStateAsFromTheUnits) {
  analysis::AnalysisInput in;
  in.arms = {{"A", "7", 50, 0}, {"B", "8", 50, 0}, {"C", "9", 0, 0}};
  auto state = std::make_shared<analysis::AnalysisState>(3, std::vector<analysis::MetricKind>{analysis::MetricKind::kBinary},
                                                         std::vector<int>{-1}, 0);
  std::mt19937_64 rng(5);
  std::vector<analysis::UnitObservation> removed;
  for (int i = 0; i < 5000; ++i) {
    analysis::UnitObservation u;
    u.arm = static_cast<int>(rng() % 2);
    u.first_ts_us = 1'000 + static_cast<int64_t>(rng() % 100'000);
    u.values = {static_cast<double>(rng() % 2)};
    u.key = rng();
    state->AddUnit(u, u.key, 1);
    if (i % 7 == 0) {
      removed.push_back(u);
    } else {
      in.units.push_back(u);
    }
  }
  for (const auto& u : removed) state->AddUnit(u, u.key, -1);
  analysis::AnalysisInput followed = in;
  followed.units.clear();
  followed.state = state;
  followed.state_arms = {1, 0, -1};  // the state met B first
  for (auto& u : in.units) u.arm = 1 - u.arm;
  for (int bins : {1, 7, 40}) {
    EXPECT_EQ(json::serialize(TrafficSplit(followed, bins)), json::serialize(TrafficSplit(in, bins))) << bins;
  }
}

TEST(AssetsTest, PageScriptAndStyleAreEmbedded) {
  const Asset* page = FindAsset("index.html");
  ASSERT_NE(page, nullptr);
  EXPECT_NE(page->body.find("app.js"), std::string_view::npos);
  EXPECT_EQ(page->content_type, "text/html; charset=utf-8");
  ASSERT_NE(FindAsset("app.js"), nullptr);
  ASSERT_NE(FindAsset("app.css"), nullptr);
  EXPECT_EQ(FindAsset("../gateway.cc"), nullptr);
}

}  // namespace
}  // namespace abgate::dashboard

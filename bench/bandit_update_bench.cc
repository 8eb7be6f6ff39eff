// What one bandit weight update costs the gateway (a benchmark, not a test), the way it reads
// now side by side with the way it read before, and an anchor. A bandit experiment's store of N
// served requests (arms A/B, each with its recorded assignment probability) and outcomes by
// request id (booked: 5% of A's requests, 8% of B's) is written through the real sink; then, R
// times: NEW rows are appended (half new requests, half outcomes, a third of those for requests
// served long ago) and an update is computed as Gateway::UpdateBandit does it (the analysis
// reader, analysis::BanditEvidence, gateway::ComputeBanditWeights: 20,000 Thompson draws).
// Printed per size:
//   update:   through the experiment's kept EventStoreFollower (what the gateway does now),
//   full:     a full read of the store from its URI each time (what it did before),
//   anchor:   the sqlite3 CLI computing only the per-arm requests and successes from the same
//             SQLite file (a join of exposures and outcomes by request id, over the whole store).
// Usage: build/bench/bandit_update_bench [N=1000000] [NEW=1000] [UPDATES=20] [STORE_URI]
// (STORE_URI defaults to a temporary SQLite file; postgresql://... measures PostgreSQL, no anchor.)
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "analysis/analysis.h"
#include "common/random.h"
#include "events/event_reader.h"
#include "events/event_sink.h"
#include "bench_store.h"
#include "gateway/gateway.h"

using namespace abgate;
using bench::kStartUs;
using bench::Percentile;
using bench::Seconds;

namespace {

struct Writer {
  events::EventSink& sink;
  common::Xoshiro256 rng{18};
  int64_t next_request = 0;

  // A request drawn with the weights {0.3, 0.7}; its outcome (when it converts) by request id.
  events::Exposure Exposure(int64_t ts, bool* converts) {
    events::Exposure e;
    e.request_id = "req-" + std::to_string(next_request++);
    e.ts_us = ts;
    e.experiment = "bench";
    e.unit_id = "user-" + std::to_string(rng() % 100000);
    const bool b = rng.NextDouble() < 0.7;
    e.arm = e.assigned_arm = b ? "B" : "A";
    e.model_name = "m";
    e.model_version = b ? "8" : "7";
    e.routing_mode = "bandit";
    e.status = 200;
    e.latency_us = 900;
    e.assignment_probability = b ? 0.7 : 0.3;
    *converts = rng.NextDouble() < (b ? 0.08 : 0.05);
    return e;
  }
  events::Outcome Outcome(int64_t request, int64_t ts) {
    events::Outcome o;
    o.ts_us = ts;
    o.experiment = "bench";
    o.request_id = "req-" + std::to_string(request);
    o.metric = "booked";
    o.value = 1;
    return o;
  }
  bool Write(const std::vector<events::Exposure>& e, const std::vector<events::Outcome>& o) {
    auto s = sink.WriteBatch(e, {}, o);
    if (!s.ok()) std::fprintf(stderr, "write: %s\n", std::string(s.message()).c_str());
    return s.ok();
  }
};

config::ExperimentConfig Config() {
  config::ExperimentConfig c;
  c.name = "bench";
  c.model = "m";
  c.control = "A";
  c.routing_mode = config::RoutingMode::kBandit;
  c.arms = {{"A", "7", 0.3, "http://127.0.0.1:1/invocations", "", ""},
            {"B", "8", 0.7, "http://127.0.0.1:1/invocations", "", ""}};
  c.metrics = {{"booked", config::MetricType::kBinary, true, ""}};
  c.bandit = config::BanditConfig{"booked", 0.1, 60'000'000};
  return c;
}

// One update's computation (Gateway::UpdateBandit without the commit); `follower` null: the
// old way, a full read from the store's URI. Returns B's served weight.
absl::StatusOr<double> Update(const std::string& uri, events::EventReader& reader,
                              analysis::EventStoreFollower* follower, const config::ExperimentConfig& c, int64_t now) {
  auto input = follower ? analysis::ReadConfiguredExperiment(reader, *follower, c)
                        : analysis::ReadConfiguredExperiment(uri, c, analysis::UnitOf(c),
                                                             {{"booked", analysis::MetricKind::kBinary}});
  if (!input.ok()) return input.status();
  auto weights = gateway::ComputeBanditWeights(c, analysis::BanditEvidence(*input), now);
  if (!weights.ok()) return weights.status();
  return weights->served[1];
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t n = argc > 1 ? std::atoll(argv[1]) : 1'000'000;
  const int64_t fresh = argc > 2 ? std::atoll(argv[2]) : 1000;
  const int updates = argc > 3 ? std::atoi(argv[3]) : 20;
  auto store = bench::OpenBenchStore("bandit_bench", argc > 4 ? argv[4] : "");
  if (!store.ok()) {
    std::fprintf(stderr, "cannot open the store: %s\n", std::string(store.status().message()).c_str());
    return 1;
  }
  const auto& [dir, uri, sqlite, db, sink, reader] = *store;
  Writer w{*sink};
  auto t0 = std::chrono::steady_clock::now();
  int64_t ts = kStartUs, outcomes = 0;
  for (int64_t i = 0; i < n;) {
    std::vector<events::Exposure> e;
    std::vector<events::Outcome> o;
    for (int64_t k = 0; k < 20000 && i < n; ++k, ++i) {
      bool converts = false;
      e.push_back(w.Exposure(ts += 1000, &converts));
      if (converts) o.push_back(w.Outcome(w.next_request - 1, ts + 500));
    }
    outcomes += static_cast<int64_t>(o.size());
    if (!w.Write(e, o)) return 1;
  }
  std::printf("store: %s, %lld bandit requests, %lld outcomes, written in %.1f s\n", uri.c_str(),
              static_cast<long long>(n), static_cast<long long>(outcomes), Seconds(t0));
  const config::ExperimentConfig c = Config();
  analysis::EventStoreFollower follower(c.name, analysis::UnitOf(c), {{"booked", analysis::MetricKind::kBinary}});
  t0 = std::chrono::steady_clock::now();
  if (auto s = Update(uri, *reader, &follower, c, ts); !s.ok()) {
    std::fprintf(stderr, "%s\n", std::string(s.status().message()).c_str());
    return 1;
  }
  std::printf("first update (the follower's first read): %.3f s\n", Seconds(t0));
  std::vector<double> incremental, full, anchor;
  for (int u = 0; u < updates; ++u) {
    std::vector<events::Exposure> e;
    std::vector<events::Outcome> o;
    for (int64_t k = 0; k < fresh; ++k) {
      ts += 1000;
      bool converts = false;
      if (k % 2 == 0) {
        e.push_back(w.Exposure(ts, &converts));
      } else {
        // A third of the outcomes are for requests served long ago.
        const int64_t request = k % 3 == 0 ? static_cast<int64_t>(w.rng() % static_cast<uint64_t>(n))
                                           : std::max<int64_t>(w.next_request - 1, 0);
        o.push_back(w.Outcome(request, ts));
      }
    }
    if (!w.Write(e, o)) return 1;
    t0 = std::chrono::steady_clock::now();
    auto now = Update(uri, *reader, &follower, c, ts);
    if (!now.ok()) return 1;
    incremental.push_back(Seconds(t0));
    if (u % 5 == 0) {
      t0 = std::chrono::steady_clock::now();
      auto before = Update(uri, *reader, nullptr, c, ts);
      if (!before.ok()) return 1;
      full.push_back(Seconds(t0));
      if (*before != *now) {
        std::fprintf(stderr, "the follower's weights (B %.6f) differ from a full read's (%.6f)\n", *now, *before);
        return 1;
      }
      if (sqlite) {
        const std::string sql =
            "SELECT e.assigned_arm, count(*), sum(o.request_id IS NOT NULL) FROM exposures e LEFT JOIN (SELECT DISTINCT "
            "request_id FROM outcomes WHERE experiment='bench' AND metric='booked' AND value > 0) o ON o.request_id = "
            "e.request_id WHERE e.experiment='bench' AND e.in_experiment=1 GROUP BY e.assigned_arm;";
        t0 = std::chrono::steady_clock::now();
        const std::string cmd = "sqlite3 -readonly '" + db + "' \"" + sql + "\" > /dev/null";
        if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "anchor: sqlite3 failed\n");
        anchor.push_back(Seconds(t0));
      }
    }
  }
  std::printf("update after %lld new rows, kept follower (%d updates): p50 %.1f ms, max %.1f ms\n",
              static_cast<long long>(fresh), updates, 1000 * Percentile(incremental, 0.5),
              1000 * Percentile(incremental, 1.0));
  std::printf("update by a full read from the URI (before): p50 %.1f ms, max %.1f ms (same weights)\n",
              1000 * Percentile(full, 0.5), 1000 * Percentile(full, 1.0));
  {
    // What every update costs whatever the store's size: the Thompson draws.
    const std::vector<stats::BanditArm> evidence = {{300000, 15000}, {700000, 56000}};
    t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 20; ++i) {
      if (!gateway::ComputeBanditWeights(c, evidence, ts + i).ok()) return 1;
    }
    std::printf("of which the weights from the evidence (20,000 Thompson draws): %.1f ms\n", 1000 * Seconds(t0) / 20);
  }
  if (!anchor.empty()) {
    std::printf("anchor, sqlite3 CLI per-arm requests and successes over the store: p50 %.1f ms\n",
                1000 * Percentile(anchor, 0.5));
  }
  std::filesystem::remove_all(dir);  // its own temporary folder (empty with a PostgreSQL URI)
  return 0;
}

// What one dashboard refresh of an experiment's results costs (a benchmark, not a test), with the
// anchor side by side. A store of N exposures (N/5 users, 80/20, scored) and about N/2 outcomes
// (booked, revenue) is written through the real sink; then, R times: NEW rows are appended (half
// exposures of new and returning users, half outcomes, a third of them for units exposed long
// ago) and the results are computed as the gateway's results thread does (the key's
// EventStoreFollower, the configured arms, Analyze, the report's JSON). Printed per size:
//   refresh:  the time of that computation after the append (p50 / max),
//   full:     the same on a new follower (what a gateway without the follower's state pays),
//   anchor:   the sqlite3 CLI (psql for a PostgreSQL store) computing only the per-arm units and
//             conversions (first exposure decides the arm) from the same store, a query over
//             the whole experiment.
// SHADOWS=K mirrors one exposure in K to a shadow arm (table `shadows`; the refresh then also
// computes the shadow summary, as the gateway does).
// Usage: [USERS=N/5] [SHADOWS=K] build/bench/results_refresh_bench [N=1000000] [NEW=1000] [REFRESHES=20] [STORE_URI]
// (STORE_URI defaults to a temporary SQLite file, removed at the end; sqlite:PATH writes PATH and
// keeps it; postgresql://... measures PostgreSQL: give it an empty database, the bench writes
// experiment `bench`.) FILL_ONLY=1 writes the store and stops (bench/dashboard_visibility.sh
// fills its stores so). READ_ONLY=1 with a STORE_URI written by an earlier run: nothing is
// written, only the first read is timed (for perf). ABGATE_ANALYZE_TIMINGS=1 prints the phases.
// After the first read: what the follower keeps (kept_events, kept_bytes) and the resident
// memory it added.
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "analysis/analysis.h"
#include "analysis/report.h"
#include "common/random.h"
#include "config/json_format.h"
#include "events/event_reader.h"
#include "events/event_sink.h"
#include "bench_store.h"

using namespace abgate;
using bench::kStartUs;
using bench::Percentile;
using bench::Seconds;

namespace {

struct Writer {
  events::EventSink& sink;
  common::Xoshiro256 rng{42};
  int64_t next_request = 0;
  int64_t users = 0;
  int64_t shadow_every = 0;  // 0: no shadow traffic

  events::Exposure Exposure(int64_t user, int64_t ts) {
    events::Exposure e;
    e.request_id = "req-" + std::to_string(next_request++);
    e.ts_us = ts;
    e.experiment = "bench";
    e.unit_id = "user-" + std::to_string(user);
    const bool b = (static_cast<uint64_t>(user) * 2654435761u) % 100 >= 80;
    e.arm = e.assigned_arm = b ? "B" : "A";
    e.model_name = "m";
    e.model_version = b ? "8" : "7";
    e.routing_mode = "user_hash";
    e.status = 200;
    e.latency_us = 900;
    e.score = static_cast<double>(rng() % 1000) / 1000.0;
    if (shadow_every > 0 && next_request % shadow_every == 0) {
      e.shadow = events::ExposureShadow{"C", static_cast<double>(rng() % 1000) / 1000.0,
                                        static_cast<int64_t>(800 + rng() % 400), rng() % 50 == 0 ? 504 : 200};
      if (e.shadow->status != 200) e.shadow->score.reset();
    }
    return e;
  }
  events::Outcome Outcome(int64_t user, int64_t ts, bool revenue) {
    events::Outcome o;
    o.ts_us = ts;
    o.experiment = "bench";
    o.unit_id = "user-" + std::to_string(user);
    o.metric = revenue ? "revenue" : "booked";
    o.value = revenue ? static_cast<double>(rng() % 50000) / 100.0 : 1;
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
  c.arms = {{"A", "7", 80, "http://127.0.0.1:1/invocations", "", ""},
            {"B", "8", 20, "http://127.0.0.1:1/invocations", "", ""}};
  c.metrics = {{"booked", config::MetricType::kBinary, true, ""}, {"revenue", config::MetricType::kContinuous, false, ""}};
  return c;
}

// The gateway's results computation (Gateway::ComputeResults).
absl::StatusOr<size_t> Compute(events::EventReader& reader, analysis::EventStoreFollower& follower,
                               const config::ExperimentConfig& c) {
  const auto t0 = std::chrono::steady_clock::now();
  auto input = analysis::ReadConfiguredExperiment(reader, follower, c);
  if (!input.ok()) return input.status();
  const auto t1 = std::chrono::steady_clock::now();
  auto report = analysis::Analyze(*input);
  if (!report.ok()) return report.status();
  report->shadow = input->shadow_summary;
  const auto t2 = std::chrono::steady_clock::now();
  const size_t size = config::ToJson(analysis::ToJson(*report)).size();
  if (std::getenv("ABGATE_ANALYZE_TIMINGS")) {
    std::fprintf(stderr, "read %.5f s, analyze and shadow summary %.5f s, json %.5f s\n",
                 std::chrono::duration<double>(t1 - t0).count(), std::chrono::duration<double>(t2 - t1).count(),
                 Seconds(t2));
  }
  return size;
}

// Resident memory (after returning freed heap pages to the system), in bytes.
int64_t ResidentBytes() {
  ::malloc_trim(0);
  long pages = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return static_cast<int64_t>(resident) * ::sysconf(_SC_PAGESIZE);
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t n = argc > 1 ? std::atoll(argv[1]) : 1'000'000;
  const int64_t fresh = argc > 2 ? std::atoll(argv[2]) : 1000;
  const int refreshes = argc > 3 ? std::atoi(argv[3]) : 20;
  const std::string given = argc > 4 ? argv[4] : "";
  auto store = bench::OpenBenchStore("refresh_bench", given);
  if (!store.ok()) {
    std::fprintf(stderr, "cannot open the store: %s\n", std::string(store.status().message()).c_str());
    return 1;
  }
  const auto& [dir, uri, sqlite, db, sink, reader] = *store;
  Writer w{*sink};
  w.users = std::max<int64_t>(std::getenv("USERS") ? std::atoll(std::getenv("USERS")) : n / 5, 1);
  w.shadow_every = std::getenv("SHADOWS") ? std::atoll(std::getenv("SHADOWS")) : 0;
  auto t0 = std::chrono::steady_clock::now();
  int64_t ts = kStartUs;
  const bool read_only = std::getenv("READ_ONLY") != nullptr && !given.empty();
  for (int64_t i = 0; i < n && !read_only;) {
    std::vector<events::Exposure> e;
    std::vector<events::Outcome> o;
    for (int64_t k = 0; k < 20000 && i < n; ++k, ++i) {
      e.push_back(w.Exposure(i % w.users, ts += 1000));
      if (i % 2 == 0) o.push_back(w.Outcome(i % w.users, ts + 500, i % 4 == 0));
    }
    if (!w.Write(e, o)) return 1;
  }
  std::printf("store: %s, %lld exposures, %lld users, %lld outcomes, %lld shadowed, written in %.1f s\n", uri.c_str(),
              static_cast<long long>(n), static_cast<long long>(w.users), static_cast<long long>(n / 2),
              static_cast<long long>(w.shadow_every > 0 ? n / w.shadow_every : 0), Seconds(t0));
  if (std::getenv("FILL_ONLY")) {
    std::filesystem::remove_all(dir);
    return 0;
  }
  if (!sqlite && !read_only) {
    // As autovacuum would have by now: without statistics the anchor's plan is a nested loop.
    const std::string cmd = "psql -X -q '" + uri + "' -c 'VACUUM ANALYZE' > /dev/null";
    if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "psql VACUUM ANALYZE failed\n");
  }
  const config::ExperimentConfig c = Config();
  const auto metrics = analysis::MetricsOf(c);
  analysis::EventStoreFollower follower(c.name, analysis::UnitOf(c), metrics);
  const int64_t resident_before = ResidentBytes();
  t0 = std::chrono::steady_clock::now();
  if (auto s = Compute(*reader, follower, c); !s.ok()) {
    std::fprintf(stderr, "%s\n", std::string(s.status().message()).c_str());
    return 1;
  }
  std::printf("first read: %.3f s\n", Seconds(t0));
  const int64_t resident = ResidentBytes() - resident_before;
  std::printf("follower keeps %lld events: kept_bytes %.1f MB, resident +%.1f MB (%.0f bytes per event)\n",
              static_cast<long long>(follower.kept_events()), static_cast<double>(follower.kept_bytes()) / 1e6,
              static_cast<double>(resident) / 1e6,
              static_cast<double>(resident) / static_cast<double>(std::max<int64_t>(follower.kept_events(), 1)));
  if (read_only) return 0;
  std::vector<double> refresh, full, anchor;
  int64_t new_users = w.users;
  for (int r = 0; r < refreshes; ++r) {
    std::vector<events::Exposure> e;
    std::vector<events::Outcome> o;
    for (int64_t k = 0; k < fresh; ++k) {
      ts += 1000;
      if (k % 2 == 0) {
        e.push_back(w.Exposure(k % 4 == 0 ? new_users++ : static_cast<int64_t>(w.rng() % static_cast<uint64_t>(w.users)), ts));
      } else {
        // A third of the outcomes are for units first exposed long ago.
        const int64_t user = k % 3 == 0 ? static_cast<int64_t>(w.rng() % static_cast<uint64_t>(w.users)) : new_users - 1;
        o.push_back(w.Outcome(user, ts, k % 5 == 0));
      }
    }
    if (!w.Write(e, o)) return 1;
    t0 = std::chrono::steady_clock::now();
    if (auto s = Compute(*reader, follower, c); !s.ok()) return 1;
    refresh.push_back(Seconds(t0));
    if (r % 5 == 0 && !std::getenv("NOFULL")) {
      analysis::EventStoreFollower fresh_follower(c.name, analysis::UnitOf(c), metrics);
      t0 = std::chrono::steady_clock::now();
      if (auto s = Compute(*reader, fresh_follower, c); !s.ok()) return 1;
      full.push_back(Seconds(t0));
      // The anchor: per-arm units and conversions (binary, first exposure decides) in SQL.
      // (SQLite's bare `arm` beside min(ts) is the first exposure's; a unit converted when its
      // last positive outcome is not before its first exposure.)
      std::string cmd;
      if (sqlite) {
        const std::string sql =
            "CREATE TEMP TABLE o (unit_id TEXT PRIMARY KEY, t INTEGER) WITHOUT ROWID; INSERT INTO o SELECT unit_id, "
            "max(ts) FROM outcomes WHERE experiment='bench' AND metric='booked' AND value > 0 GROUP BY unit_id; "
            "SELECT f.arm, count(*), sum(o.t >= f.t) FROM (SELECT unit_id, min(ts) AS t, arm FROM exposures WHERE "
            "experiment='bench' AND in_experiment=1 GROUP BY unit_id) f LEFT JOIN o ON o.unit_id = f.unit_id GROUP BY f.arm;";
        cmd = "sqlite3 -readonly '" + db + "' \"" + sql + "\" > /dev/null";
      } else {
        const std::string sql =
            "WITH o AS (SELECT unit_id, max(ts) AS t FROM outcomes WHERE experiment='bench' AND metric='booked' AND "
            "value > 0 GROUP BY unit_id), f AS (SELECT DISTINCT ON (unit_id) unit_id, ts AS t, arm FROM exposures "
            "WHERE experiment='bench' AND in_experiment=1 ORDER BY unit_id, ts) SELECT f.arm, count(*), "
            "count(*) FILTER (WHERE o.t >= f.t) FROM f LEFT JOIN o USING (unit_id) GROUP BY f.arm;";
        cmd = "psql -X -q '" + uri + "' -c \"" + sql + "\" > /dev/null";
      }
      t0 = std::chrono::steady_clock::now();
      if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "anchor: %s failed\n", sqlite ? "sqlite3" : "psql");
      anchor.push_back(Seconds(t0));
    }
  }
  std::printf("refresh after %lld new rows (%d refreshes): p50 %.1f ms, max %.1f ms\n", static_cast<long long>(fresh),
              refreshes, 1000 * Percentile(refresh, 0.5), 1000 * Percentile(refresh, 1.0));
  if (!full.empty()) std::printf("full read and analysis (new follower): p50 %.1f ms\n", 1000 * Percentile(full, 0.5));
  if (!anchor.empty()) {
    std::printf("anchor, %s per-arm units and conversions over the store: p50 %.1f ms\n",
                sqlite ? "sqlite3 CLI" : "psql", 1000 * Percentile(anchor, 0.5));
  }
  if (!given.empty() || !std::getenv("KEEP")) std::filesystem::remove_all(dir);  // not a given PATH
  if (given.empty() && std::getenv("KEEP")) std::printf("kept %s\n", db.c_str());
  return 0;
}

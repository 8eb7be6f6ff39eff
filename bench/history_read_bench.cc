// What reading an experiment's weight history costs at each dashboard refresh (a benchmark,
// not a test): analysis::ReadWeightHistory reads the audit trail (every admin change, its config
// before and after as JSON) and, for a bandit, every row of bandit_weights (one per update,
// default every 60 s: 1,440 a day). A store gets ADMIN audited changes and BANDIT weight rows
// through the real sink; then the history is read R times (p50 / max), beside the anchor: the
// sqlite3 CLI (psql for PostgreSQL) selecting the same rows' text; and through a
// WeightHistoryCache (what a follower's refresh pays while the history has not changed: a count
// of its rows).
// Usage: build/bench/history_read_bench [ADMIN=200] [BANDIT=43200] [R=20] [STORE_URI]
// (STORE_URI defaults to a temporary SQLite file; postgresql://... needs an empty database.)
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "analysis/analysis.h"
#include "config/gateway_config.h"
#include "common/strings.h"
#include "config/json_format.h"
#include "events/event_reader.h"
#include "events/event_sink.h"
#include "bench_store.h"

using namespace abgate;
using bench::kStartUs;
using bench::Percentile;
using bench::Seconds;

namespace {

config::ExperimentConfig Config(double weight_a) {
  config::ExperimentConfig c;
  c.name = "hist";
  c.model = "m";
  c.control = "A";
  c.routing_mode = config::RoutingMode::kBandit;
  c.bandit = config::BanditConfig{"booked", 0.05};
  c.arms = {{"A", "7", weight_a, "http://127.0.0.1:1/invocations", "", ""},
            {"B", "8", 100 - weight_a, "http://127.0.0.1:1/invocations", "", ""}};
  c.metrics = {{"booked", config::MetricType::kBinary, true, ""}};
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  const int admin = argc > 1 ? std::atoi(argv[1]) : 200;
  const int bandit = argc > 2 ? std::atoi(argv[2]) : 43'200;
  const int reads = argc > 3 ? std::max(1, std::atoi(argv[3])) : 20;
  auto store = bench::OpenBenchStore("history_bench", argc > 4 ? argv[4] : "");
  if (!store.ok()) {
    std::fprintf(stderr, "cannot open the store: %s\n", std::string(store.status().message()).c_str());
    return 1;
  }
  const auto& [dir, uri, sqlite, db, sink, reader] = *store;
  std::vector<events::AuditRecord> audit;
  for (int i = 0; i < admin; ++i) {
    audit.push_back({kStartUs + i * 1'000'000, "bench", "127.0.0.1", "weights", "hist",
                     config::ToJson(config::ExperimentToJson(Config(10 + i % 80))),
                     config::ToJson(config::ExperimentToJson(Config(10 + (i + 1) % 80)))});
  }
  std::vector<events::EventSink::BanditUpdate> updates;
  for (int i = 0; i < bandit; ++i) {
    const double a = 0.05 + 0.9 * static_cast<double>(i % 97) / 97;
    updates.push_back({"hist", kStartUs + int64_t{i} * 60'000'000, StrCat("{\"A\":", a, ",\"B\":", 1 - a, "}"),
                       "{\"A\":{\"trials\":1000,\"successes\":100,\"prob_best\":0.4},\"B\":{\"trials\":1000,"
                       "\"successes\":110,\"prob_best\":0.6}}"});
  }
  const std::vector<events::EventSink::ConfigChange> change = {
      {"hist", config::ToJson(config::ExperimentToJson(Config(50)))}};
  if (auto s = sink->SaveExperimentConfigs(change, 0, audit, kStartUs, updates); !s.ok()) {
    std::fprintf(stderr, "write: %s\n", std::string(s.status().message()).c_str());
    return 1;
  }
  std::printf("store: %s, %d audited changes, %d bandit weight rows\n", uri.c_str(), admin, bandit);
  std::vector<double> times, anchor, cached;
  size_t periods = 0;
  analysis::WeightHistoryCache cache;
  for (int r = 0; r < reads; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    auto history = analysis::ReadWeightHistory(*reader, Config(50));
    times.push_back(Seconds(t0));
    if (!history.ok()) {
      std::fprintf(stderr, "%s\n", std::string(history.status().message()).c_str());
      return 1;
    }
    periods = history->size();
    const auto t2 = std::chrono::steady_clock::now();
    if (!analysis::ReadWeightHistory(*reader, Config(50), cache).ok()) return 1;
    if (r > 0) cached.push_back(Seconds(t2));  // the first fills the cache
    const std::string sql =
        "SELECT before, after FROM audit_log WHERE experiment = 'hist' ORDER BY id; "
        "SELECT ts, weights FROM bandit_weights WHERE experiment = 'hist' ORDER BY ts;";
    const std::string cmd = sqlite ? "sqlite3 -readonly '" + db + "' \"" + sql + "\" > /dev/null"
                                   : "psql -X -q '" + uri + "' -c \"" + sql + "\" > /dev/null";
    const auto t1 = std::chrono::steady_clock::now();
    if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "anchor failed\n");
    anchor.push_back(Seconds(t1));
  }
  std::printf("ReadWeightHistory (%zu periods): p50 %.1f ms, max %.1f ms; anchor (%s reading the rows): p50 %.1f ms\n",
              periods, 1000 * Percentile(times, 0.5), 1000 * Percentile(times, 1.0), sqlite ? "sqlite3" : "psql",
              1000 * Percentile(anchor, 0.5));
  if (!cached.empty()) std::printf("through the cache, unchanged: p50 %.2f ms\n", 1000 * Percentile(cached, 0.5));
  std::filesystem::remove_all(dir);
  return 0;
}

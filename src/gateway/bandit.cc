// Bandit experiments (routing_mode: bandit): the thread that recomputes their weights by
// Thompson sampling and swaps them in like any other change.
//
// Every bandit.update_interval one gateway reads the experiment's attributed outcomes through
// the analysis reader (the same numbers as GET …/results), turns each arm's requests and
// successes into P(arm is best) under Beta posteriors, keeps every arm at >= floor, and hands
// the new weights to the admin thread, which commits them like an admin change (stored, given
// a config version, announced to the fleet, applied by the same snapshot swap) but without an
// audit record: a row of the compact weight history (bandit_weights) instead. The store says
// when the experiment was last updated, so gateways sharing it take turns rather than each
// updating; of two that compute at once, the second's commit is refused as stale.
#include <algorithm>

#include <boost/json.hpp>

#include "analysis/analysis.h"
#include "common/hash64.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "config/json_format.h"
#include "gateway/gateway.h"
#include "stats/bandit.h"

namespace abgate::gateway {

namespace json = boost::json;

namespace {

constexpr auto kBanditTick = std::chrono::milliseconds(200);
constexpr int kThompsonDraws = 20000;
// What the bandits' followers may keep, over all of them (EventStoreFollower::kept_bytes: ~220
// bytes per unit, ~65 per exposure, 40 per outcome); the dashboard's followers have their own.
constexpr int64_t kFollowedBytes = int64_t{512} << 20;

}  // namespace

absl::StatusOr<std::vector<double>> BanditServingWeights(std::vector<double> weights, double floor) {
  // The gateway serves bucket shares (k/10000 of GrowthBook's ranges), which can fall a bucket
  // short of the weight: move buckets from the largest arm until every arm has its floor.
  const int k = static_cast<int>(weights.size());
  for (int round = 0; round < 4 * k + 8; ++round) {
    ABGATE_ASSIGN_OR_RETURN(auto allocation, assign::Allocation::Create(weights, 1.0));
    std::vector<double> served(k);
    for (int i = 0; i < k; ++i) served[i] = allocation.ProbabilityAt(i, 0);
    int short_arm = -1;
    for (int i = 0; i < k; ++i) {
      if (served[i] < floor - 1e-9) short_arm = i;
    }
    if (short_arm < 0) return served;
    const int largest = static_cast<int>(std::max_element(served.begin(), served.end()) - served.begin());
    weights = served;
    weights[short_arm] += 1.0 / assign::kNumBuckets;
    weights[largest] -= 1.0 / assign::kNumBuckets;
  }
  return absl::InternalError("could not give every arm its floor in whole buckets");
}

absl::StatusOr<BanditUpdateWeights> ComputeBanditWeights(const config::ExperimentConfig& cfg,
                                                         const std::vector<stats::BanditArm>& evidence,
                                                         int64_t now_us) {
  if (!cfg.bandit) return absl::InvalidArgumentError(StrCat("experiment ", cfg.name, " is not a bandit"));
  const double floor = cfg.bandit->floor;
  common::Xoshiro256 rng(common::Hash64(StrCat(cfg.HashSeed(), ":", now_us)));
  // w = floor + (1 - k floor) P(best) (stats::ThompsonWeights), in whole buckets.
  BanditUpdateWeights out;
  ABGATE_ASSIGN_OR_RETURN(out.thompson, stats::ThompsonWeights(evidence, floor, kThompsonDraws, rng));
  ABGATE_ASSIGN_OR_RETURN(out.served, BanditServingWeights(out.thompson, floor));
  return out;
}

void Gateway::RunBanditLoop() {
  std::map<std::string, int64_t> next_check_us;  // per experiment: nothing to do before this
  // Per bandit experiment, what its updates read so far (touched only on this thread): each
  // update scans only the events stored since the previous one.
  std::map<std::string, std::unique_ptr<analysis::EventStoreFollower>> followers;
  while (true) {
    {
      common::MutexLock lock(bandit_mu_);
      const auto until = std::chrono::steady_clock::now() + kBanditTick;
      while (!bandit_stop_ && bandit_cv_.WaitUntil(bandit_mu_, until)) {
      }
      if (bandit_stop_) return;
    }
    auto snapshot = snapshot_.Load();
    // An experiment that is no longer a running bandit gives its follower's memory back.
    for (auto it = followers.begin(); it != followers.end();) {
      const CompiledExperiment* e = snapshot->Find(it->first);
      const bool keep = e && e->config.routing_mode == config::RoutingMode::kBandit && e->config.bandit &&
                        e->config.state == config::ExperimentState::kRunning;
      it = keep ? std::next(it) : followers.erase(it);
    }
    for (const auto& [name, e] : snapshot->experiments) {
      const auto& cfg = e->config;
      if (cfg.routing_mode != config::RoutingMode::kBandit || !cfg.bandit ||
          cfg.state != config::ExperimentState::kRunning) {
        continue;
      }
      const int64_t now = clock_.NowUs();
      if (now < next_check_us[name]) continue;
      // Another gateway sharing the store may have updated it since: the store decides.
      auto last = sink_->LastBanditUpdateUs(name);
      if (!last.ok()) {
        ABGATE_LOG(kWarning, "bandit %s: cannot read its last update: %s", name, last.status().message());
        next_check_us[name] = now + 1'000'000;
        continue;
      }
      const int64_t due = std::max(*last, e->start_us) + cfg.bandit->update_interval_us;
      if (now < due) {
        next_check_us[name] = due;
        continue;
      }
      next_check_us[name] = now + cfg.bandit->update_interval_us;
      UpdateBandit(cfg, followers[name]);
      // Kept within kFollowedBytes over every bandit; beyond it an update reads the experiment
      // whole, as without a follower.
      int64_t kept = 0;
      for (const auto& [_, f] : followers) kept += f ? f->kept_bytes() : 0;
      if (kept > kFollowedBytes) followers.erase(name);
    }
  }
}

void Gateway::UpdateBandit(const config::ExperimentConfig& cfg,
                           std::unique_ptr<analysis::EventStoreFollower>& follower) {
  const config::BanditConfig& bandit = *cfg.bandit;
  const std::string unit = analysis::UnitOf(cfg);
  const std::vector<analysis::MetricSpec> metrics{{bandit.metric, analysis::MetricKind::kBinary}};
  // The experiment's follower reads only what was stored since the last update and gives what
  // a full read gives; a new one when the unit, the metric or the window changed.
  if (!follower || !follower->Follows(unit, metrics, cfg.attribution_window_us, 0)) {
    follower = std::make_unique<analysis::EventStoreFollower>(cfg.name, unit, metrics, cfg.attribution_window_us, 0);
  }
  auto input = analysis::ReadConfiguredExperiment(*results_reader_, *follower, cfg);
  ++bandit_reads_;
  if (input.ok() && follower->last_read_incremental()) ++bandit_incremental_reads_;
  // After an error the follower would read everything again anyway; where the store cannot
  // resume a scan (it is read whole every time), keeping its events saves nothing.
  if (!input.ok() || !follower->can_resume()) follower.reset();
  if (!input.ok()) {
    // No exposures yet: the weights stay as they are.
    if (input.status().code() != absl::StatusCode::kNotFound) {
      ABGATE_LOG(kWarning, "bandit %s: cannot read its outcomes: %s", cfg.name, input.status().message());
    }
    return;
  }
  // The reader lays the arms out in config order.
  std::vector<stats::BanditArm> evidence = analysis::BanditEvidence(*input);
  const int64_t now = clock_.NowUs();
  auto computed = ComputeBanditWeights(cfg, evidence, now);
  if (!computed.ok()) {
    ABGATE_LOG(kWarning, "bandit %s: %s", cfg.name, computed.status().message());
    return;
  }
  const std::vector<double>& thompson = computed->thompson;
  std::vector<double> served = std::move(computed->served);
  const double free = 1 - bandit.floor * static_cast<double>(thompson.size());
  json::object weights_json, evidence_json;
  for (size_t i = 0; i < cfg.arms.size(); ++i) {
    weights_json[cfg.arms[i].name] = served[i];
    evidence_json[cfg.arms[i].name] = json::object{
        {"trials", evidence[i].trials},
        {"successes", evidence[i].successes},
        {"prob_best", free > 0 ? (thompson[i] - bandit.floor) / free : 1.0 / static_cast<double>(thompson.size())}};
  }
  events::EventSink::BanditUpdate row{cfg.name, now, config::ToJson(weights_json), config::ToJson(evidence_json)};
  admin_thread_.Post([this, name = cfg.name, served = std::move(served), row = std::move(row)]() mutable {
    auto snapshot = snapshot_.Load();
    const CompiledExperiment* before = snapshot->Find(name);
    if (!before || before->config.routing_mode != config::RoutingMode::kBandit ||
        before->config.state != config::ExperimentState::kRunning || before->arms.size() != served.size()) {
      return;  // changed meanwhile
    }
    const auto known = snapshot->config_versions.find(name);
    const int64_t base_version = known == snapshot->config_versions.end() ? 0 : known->second;
    config::ExperimentConfig after = before->config;
    for (size_t i = 0; i < served.size(); ++i) after.arms[i].weight = served[i];
    auto commit = [&](const ExperimentSet& next, const Installed&) -> absl::StatusOr<int64_t> {
      std::vector<events::EventSink::ConfigChange> rows{
          {name, config::ToJson(config::ExperimentToJson(next.Find(name)->config))}};
      return sink_->SaveExperimentConfigs(rows, base_version, {}, clock_.NowUs(), {&row, 1});
    };
    auto installed = Install(name, before, std::move(after), /*take_default=*/false, commit);
    if (!installed.ok()) {
      // Aborted: another gateway changed the experiment since this one read it; the next
      // interval computes again from the newer state.
      if (installed.status().code() != absl::StatusCode::kAborted) {
        ABGATE_LOG(kWarning, "bandit %s: weights not applied: %s", name, installed.status().message());
      }
      return;
    }
    ABGATE_LOG(kDebug, "bandit %s: weights %s (config version %d)", name, row.weights_json, installed->version);
  });
}

}  // namespace abgate::gateway

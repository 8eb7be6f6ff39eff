// AnalysisState: everything Analyze computes a report from, kept up to date one unit or one
// scored prediction at a time, in either direction. Per arm: the units' count and, per metric,
// sufficient statistics (successes/trials, exact sums of y and y², CUPED's sums, a bandit's IPW
// sums); the predictions grouped by score (AUC, log loss, calibration); and every unit in time
// order (the timeline, the SRM check per weight period, the traffic split). Sums are exact
// (stats::ExactSum), so the state — and the report — is a function of the set of units and
// predictions, not of the order they came and went in: a follower of the event store that
// removes a unit's old contribution and adds its new one when its outcomes arrive reports, to
// the last bit, what a full analysis of the same store reports. Pure (no I/O).
// Thread-compatible.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/container/inlined_vector.h"
#include "analysis/report.h"
#include "stats/exact_sum.h"
#include "stats/model_quality.h"
#include "stats/moments.h"

namespace abgate::analysis {

struct UnitObservation;
struct ScoredPrediction;

class AnalysisState {
 public:
  // The layout: `arms` arms; per metric its kind, and the index of its CUPED covariate's value
  // in UnitObservation::values (-1: none); `primary` indexes the metrics.
  AnalysisState(int arms, std::vector<MetricKind> kinds, std::vector<int> covariate_slots, int primary);

  // Adds an arm (no units yet); returns its index.
  int AddArm();
  // Adds (sign = 1) or removes (sign = -1) one unit; `key` is unique per unit and orders units
  // with the same first exposure. A removed unit must be given as it was added. Its arm and the
  // width of its values must fit the layout (unchecked).
  void AddUnit(const UnitObservation& unit, uint64_t key, int sign);
  // Removes the unit added with this first exposure and key (AddUnit with sign -1 reads only
  // these); none: nothing.
  void RemoveUnit(int64_t first_ts_us, uint64_t key);
  // Adds every unit, as AddUnit(units[i], key, 1) for each would, the key of units[i] being
  // units[i].key, or i when that is 0 (UnitObservation::key). On `workers` threads (the caller's
  // among them); blocks until done. Into an empty state (a full analysis, a follower's first
  // read) the units are copied and counted in input order (the sums are exact: the order does
  // not show), sorted by time once, and the time index and its blocks built in one pass —
  // ~4x faster than one AddUnit each, which visits the units in time order, a cache miss each.
  void AddUnits(std::span<const UnitObservation> units, int workers = 1);
  // Adds or removes one scored prediction (label 0 or 1).
  void AddPrediction(int arm, double score, int label, int sign);
  // Adds every prediction (label > 0: positive), as AddPrediction for each would, grouped by
  // score on `workers` threads first.
  void AddPredictions(std::span<const ScoredPrediction> predictions, int workers = 1);
  // Units first exposed after `cutoff_us` are kept but left out of every statistic (their
  // outcomes may still come: Analyze's maturity rule). Moving it costs the units it moves over.
  void SetCutoff(int64_t cutoff_us);

  struct Arm {
    int64_t units = 0;
    std::vector<stats::Proportion> props;          // per metric (binary metrics)
    std::vector<stats::ExactSum> sum, sum_squares;  // per metric (continuous metrics)
    struct Cuped {
      stats::ExactSum y, y2, x, x2, xy;
    };
    std::vector<Cuped> cuped;  // per metric with a covariate
    // Bandits: units whose primary value is positive, and the IPW sums over the units with a
    // recorded probability (stats::IpwSums).
    int64_t positives = 0;
    int64_t without_probability = 0;
    int64_t ipw_units = 0;
    stats::ExactSum w, wy, wyy2, wy2, w2;
    absl::btree_map<uint64_t, stats::ScoreGroup> groups;  // by stats::ScoreKey
  };
  // A unit as kept (UnitObservation's fields that the statistics read).
  struct Unit {
    int arm = 0;
    int64_t first_ts_us = 0;
    float propensity = 0;
    absl::InlinedVector<double, 4> values;
  };
  const Arm& arm(int a) const { return arms_[static_cast<size_t>(a)]; }
  int arms() const { return static_cast<int>(arms_.size()); }
  int primary() const { return primary_; }
  int64_t counted_units() const { return counted_; }
  int64_t maturing_units() const { return static_cast<int64_t>(by_time_.size()) - counted_; }
  int64_t cutoff_us() const { return cutoff_us_; }
  // What the first units in time order add up to per arm on the primary metric (the
  // timeline's running statistics): units, positives, and exact sums of y and y² (y the value,
  // 0/1 for a binary metric) and of its covariate x, x², xy (with one).
  struct ArmSums {
    int64_t units = 0, positives = 0;
    stats::ExactSum y, y2, x, x2, xy;
  };
  struct Prefix {
    std::vector<ArmSums> arms;  // by state arm
    int64_t last_ts_us = 0;     // the first exposure of the last unit in it
  };
  // The prefixes of the first ranks[i] units in time order (every unit kept, counted or not),
  // for increasing ranks in [1, units()]. Costs the blocks plus at most one block of units
  // (~kBlockUnits) per rank, whatever the number of units.
  std::vector<Prefix> Prefixes(const std::vector<int64_t>& ranks) const;
  // Per bound (increasing), per state arm: how many units were first exposed before it.
  std::vector<std::vector<int64_t>> CountsBefore(const std::vector<int64_t>& bounds_us) const;
  int64_t units() const { return static_cast<int64_t>(by_time_.size()); }
  // The memory it holds, counted from its containers (a B-tree node's overhead estimated).
  int64_t memory_bytes() const;
  // The first exposures of the first and the last unit in time order (units() > 0).
  int64_t first_ts_us() const { return by_time_.begin()->ts; }
  int64_t last_ts_us() const { return by_time_.rbegin()->ts; }
  // The predictions of arm `a` as groups in score order.
  std::vector<stats::ScoreGroup> Groups(int a) const;
  // Every unit (counted or not) in time order: fn(unit).
  template <typename Fn>
  void ForEachUnit(Fn&& fn) const {
    for (const TimeKey& t : by_time_) fn(slots_of_units_[t.slot]);
  }
  // The counted units in time order, ties by key.
  template <typename Fn>
  void ForEachCountedUnit(Fn&& fn) const {
    for (auto it = by_time_.begin(); it != by_time_.end() && it->ts <= cutoff_us_; ++it) fn(slots_of_units_[it->slot]);
  }

 private:
  void Count(const Unit& unit, int sign);
  void CountInto(Arm& arm, const Unit& unit, int sign) const;  // Count's arm statistics

  std::vector<Arm> arms_;
  std::vector<MetricKind> kinds_;
  std::vector<int> slots_;
  int primary_ = 0;
  int64_t cutoff_us_;
  int64_t counted_ = 0;
  // Units in time order: small keys in the tree (so a node holds many and a walk reads few
  // cache lines), the units themselves in a slab with a free list.
  struct TimeKey {
    int64_t ts;
    uint64_t key;
    uint32_t slot;
    bool operator<(const TimeKey& o) const { return ts != o.ts ? ts < o.ts : key < o.key; }
  };
  absl::btree_set<TimeKey> by_time_;
  // The time index cut into blocks of consecutive units (by their first unit), each with its
  // units' ArmSums: a prefix is whole blocks plus part of one. A block splits in two past
  // 2 kBlockUnits; sums are exact, so how the units fell into blocks does not show.
  static constexpr int64_t kBlockUnits = 512;
  struct Block {
    int64_t units = 0;
    std::vector<ArmSums> arms;
  };
  void AddToSums(ArmSums& sums, const Unit& unit, int sign) const;
  void AddToBlock(const TimeKey& at, const Unit& unit, int sign);  // before `at` leaves by_time_
  absl::btree_map<TimeKey, Block> blocks_;
  bool primary_sums_ = false;  // y sums needed (continuous primary, or a covariate)
  std::vector<Unit> slots_of_units_;
  std::vector<uint32_t> free_slots_;
};

}  // namespace abgate::analysis

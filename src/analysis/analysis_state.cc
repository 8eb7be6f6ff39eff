#include "analysis/analysis_state.h"

#include <cassert>
#include <cmath>
#include <limits>

#include "analysis/analysis.h"

namespace abgate::analysis {

AnalysisState::AnalysisState(int arms, std::vector<MetricKind> kinds, std::vector<int> covariate_slots, int primary)
    : kinds_(std::move(kinds)),
      slots_(std::move(covariate_slots)),
      primary_(primary),
      cutoff_us_(std::numeric_limits<int64_t>::max()) {
  for (int a = 0; a < arms; ++a) AddArm();
  primary_sums_ = kinds_[static_cast<size_t>(primary_)] != MetricKind::kBinary || slots_[static_cast<size_t>(primary_)] >= 0;
}

int AnalysisState::AddArm() {
  Arm& a = arms_.emplace_back();
  a.props.resize(kinds_.size());
  a.sum.resize(kinds_.size());
  a.sum_squares.resize(kinds_.size());
  a.cuped.resize(kinds_.size());
  return static_cast<int>(arms_.size() - 1);
}

void AnalysisState::AddUnit(const UnitObservation& u, uint64_t key, int sign) {
  const TimeKey probe{u.first_ts_us, key, 0};
  if (sign > 0) {
    uint32_t slot;
    if (free_slots_.empty()) {
      slot = static_cast<uint32_t>(slots_of_units_.size());
      slots_of_units_.emplace_back();
    } else {
      slot = free_slots_.back();
      free_slots_.pop_back();
    }
    Unit& kept = slots_of_units_[slot];
    kept = Unit{u.arm, u.first_ts_us, u.propensity, u.values};
    if (u.first_ts_us <= cutoff_us_) Count(kept, 1);
    TimeKey at = probe;
    at.slot = slot;
    // Units mostly come in time order: then the insertion is at the end.
    if (by_time_.empty() || *by_time_.rbegin() < at) {
      by_time_.insert(by_time_.end(), at);
    } else {
      by_time_.insert(at);
    }
    AddToBlock(at, kept, 1);
    return;
  }
  auto it = by_time_.find(probe);
  assert(it != by_time_.end());
  if (it == by_time_.end()) return;
  if (u.first_ts_us <= cutoff_us_) Count(slots_of_units_[it->slot], -1);
  AddToBlock(*it, slots_of_units_[it->slot], -1);
  free_slots_.push_back(it->slot);
  slots_of_units_[it->slot].values.clear();
  by_time_.erase(it);
}

// The unit's contribution to its arm's statistics, added or taken away. Every sum is exact, so
// taking a contribution away leaves exactly the state without it.
void AnalysisState::Count(const Unit& u, int sign) {
  Arm& a = arms_[static_cast<size_t>(u.arm)];
  counted_ += sign;
  a.units += sign;
  const double s = sign;
  for (size_t j = 0; j < kinds_.size(); ++j) {
    const double value = u.values[j];
    const bool binary = kinds_[j] == MetricKind::kBinary;
    const double y = binary ? (value > 0 ? 1.0 : 0.0) : value;
    if (binary) {
      a.props[j].trials += sign;
      a.props[j].successes += value > 0 ? sign : 0;
    } else {
      a.sum[j].Add(s * y);
      a.sum_squares[j].AddProduct(s * y, y);
    }
    if (slots_[j] >= 0) {
      const double x = u.values[static_cast<size_t>(slots_[j])];
      Arm::Cuped& c = a.cuped[j];
      c.y.Add(s * y);
      c.y2.AddProduct(s * y, y);
      c.x.Add(s * x);
      c.x2.AddProduct(s * x, x);
      c.xy.AddProduct(s * x, y);
    }
  }
  const double primary = u.values[static_cast<size_t>(primary_)];
  if (primary > 0) a.positives += sign;
  const double p = u.propensity;
  if (!(p > 0 && p <= 1)) {
    a.without_probability += sign;
    return;
  }
  // As BanditSection: the primary metric as 0/1, weighted by 1/p.
  const double y = primary > 0 ? 1.0 : 0.0;
  const double w = 1 / p;
  a.ipw_units += sign;
  a.w.Add(s * w);
  a.wy.Add(s * y * w);
  a.wyy2.AddProduct(s * y * w, y * w);
  a.wy2.AddProduct(s * y * w, w);
  a.w2.AddProduct(s * w, w);
}

void AnalysisState::AddPrediction(int arm, double score, int label, int sign) {
  auto& groups = arms_[static_cast<size_t>(arm)].groups;
  const uint64_t key = stats::ScoreKey(score);
  auto [it, inserted] = groups.try_emplace(key, stats::ScoreGroup{score, 0, 0});
  (label ? it->second.positives : it->second.negatives) += sign;
  if (it->second.positives == 0 && it->second.negatives == 0) groups.erase(it);
}

void AnalysisState::SetCutoff(int64_t cutoff_us) {
  if (cutoff_us > cutoff_us_) {
    for (auto it = by_time_.upper_bound(TimeKey{cutoff_us_, std::numeric_limits<uint64_t>::max(), 0});
         it != by_time_.end() && it->ts <= cutoff_us; ++it) {
      Count(slots_of_units_[it->slot], 1);
    }
  } else if (cutoff_us < cutoff_us_) {
    for (auto it = by_time_.upper_bound(TimeKey{cutoff_us, std::numeric_limits<uint64_t>::max(), 0});
         it != by_time_.end() && it->ts <= cutoff_us_; ++it) {
      Count(slots_of_units_[it->slot], -1);
    }
  }
  cutoff_us_ = cutoff_us;
}

std::vector<stats::ScoreGroup> AnalysisState::Groups(int a) const {
  std::vector<stats::ScoreGroup> out;
  const auto& groups = arms_[static_cast<size_t>(a)].groups;
  out.reserve(groups.size());
  for (const auto& [_, g] : groups) out.push_back(g);
  return out;
}

void AnalysisState::AddToSums(ArmSums& sums, const Unit& u, int sign) const {
  sums.units += sign;
  const double value = u.values[static_cast<size_t>(primary_)];
  if (value > 0) sums.positives += sign;
  if (!primary_sums_) return;
  const double s = sign;
  const double y = kinds_[static_cast<size_t>(primary_)] == MetricKind::kBinary ? (value > 0 ? 1.0 : 0.0) : value;
  sums.y.Add(s * y);
  sums.y2.AddProduct(s * y, y);
  const int slot = slots_[static_cast<size_t>(primary_)];
  if (slot < 0) return;
  const double x = u.values[static_cast<size_t>(slot)];
  sums.x.Add(s * x);
  sums.x2.AddProduct(s * x, x);
  sums.xy.AddProduct(s * x, y);
}

namespace {
void MergeSums(AnalysisState::ArmSums& to, const AnalysisState::ArmSums& from, int sign, bool exact) {
  to.units += sign * from.units;
  to.positives += sign * from.positives;
  if (!exact) return;
  to.y.Merge(from.y, sign);
  to.y2.Merge(from.y2, sign);
  to.x.Merge(from.x, sign);
  to.x2.Merge(from.x2, sign);
  to.xy.Merge(from.xy, sign);
}
}  // namespace

void AnalysisState::AddToBlock(const TimeKey& at, const Unit& u, int sign) {
  const auto arm = static_cast<size_t>(u.arm);
  if (blocks_.empty()) {
    if (sign < 0) return;
    blocks_.emplace(at, Block{});
  }
  auto it = blocks_.upper_bound(at);
  if (it == blocks_.begin()) {
    // Before the first block: it starts here now.
    Block first = std::move(it->second);
    blocks_.erase(it);
    it = blocks_.emplace(at, std::move(first)).first;
  } else {
    --it;
  }
  Block& b = it->second;
  if (b.arms.size() <= arm) b.arms.resize(arms_.size());
  AddToSums(b.arms[arm], u, sign);
  b.units += sign;
  if (sign < 0) {
    if (b.units == 0) {
      blocks_.erase(it);
    } else if (!(it->first < at) && !(at < it->first)) {
      // Its first unit leaves (still in by_time_): the next one starts it.
      auto next = std::next(by_time_.find(at));
      Block rest = std::move(it->second);
      blocks_.erase(it);
      blocks_.emplace(*next, std::move(rest));
    }
    return;
  }
  if (b.units <= 2 * kBlockUnits) return;
  // Split: the second half becomes a block of its own.
  auto unit = by_time_.find(it->first);
  for (int64_t i = 0; i < kBlockUnits; ++i) ++unit;
  const TimeKey middle = *unit;
  Block second;
  second.arms.resize(arms_.size());
  auto next_block = std::next(it);
  for (; unit != by_time_.end() && (next_block == blocks_.end() || *unit < next_block->first); ++unit) {
    const Unit& v = slots_of_units_[unit->slot];
    AddToSums(second.arms[static_cast<size_t>(v.arm)], v, 1);
    ++second.units;
  }
  b.units -= second.units;
  if (b.arms.size() < arms_.size()) b.arms.resize(arms_.size());
  for (size_t a = 0; a < second.arms.size(); ++a) MergeSums(b.arms[a], second.arms[a], -1, primary_sums_);
  blocks_.emplace(middle, std::move(second));
}

std::vector<AnalysisState::Prefix> AnalysisState::Prefixes(const std::vector<int64_t>& ranks) const {
  std::vector<Prefix> out;
  Prefix running;
  running.arms.resize(arms_.size());
  int64_t seen = 0;
  size_t q = 0;
  for (auto it = blocks_.begin(); it != blocks_.end() && q < ranks.size(); ++it) {
    const Block& b = it->second;
    if (ranks[q] <= seen + b.units) {
      // Some ranks end inside this block: its units one by one.
      Prefix partial = running;
      int64_t count = seen;
      for (auto unit = by_time_.find(it->first); unit != by_time_.end() && q < ranks.size() && ranks[q] <= seen + b.units;
           ++unit) {
        const Unit& v = slots_of_units_[unit->slot];
        AddToSums(partial.arms[static_cast<size_t>(v.arm)], v, 1);
        if (++count != ranks[q]) continue;
        partial.last_ts_us = unit->ts;
        out.push_back(partial);
        ++q;
      }
    }
    for (size_t a = 0; a < b.arms.size(); ++a) MergeSums(running.arms[a], b.arms[a], 1, primary_sums_);
    seen += b.units;
  }
  return out;
}

std::vector<std::vector<int64_t>> AnalysisState::CountsBefore(const std::vector<int64_t>& bounds_us) const {
  std::vector<std::vector<int64_t>> out;
  std::vector<int64_t> running(arms_.size(), 0);
  size_t q = 0;
  for (auto it = blocks_.begin(); it != blocks_.end() && q < bounds_us.size(); ++it) {
    const Block& b = it->second;
    auto next = std::next(it);
    // The block is wholly before the bound when the next one starts before it.
    while (q < bounds_us.size() && (next == blocks_.end() || next->first.ts >= bounds_us[q])) {
      std::vector<int64_t> partial = running;
      for (auto unit = by_time_.find(it->first);
           unit != by_time_.end() && (next == blocks_.end() || *unit < next->first) && unit->ts < bounds_us[q]; ++unit) {
        ++partial[static_cast<size_t>(slots_of_units_[unit->slot].arm)];
      }
      out.push_back(std::move(partial));
      ++q;
    }
    for (size_t a = 0; a < b.arms.size(); ++a) running[a] += b.arms[a].units;
  }
  while (q++ < bounds_us.size()) out.push_back(running);
  return out;
}

}  // namespace abgate::analysis

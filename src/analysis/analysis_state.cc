#include "analysis/analysis_state.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "analysis/analysis.h"
#include "common/parallel.h"

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
  RemoveUnit(u.first_ts_us, key);
}

void AnalysisState::RemoveUnit(int64_t first_ts_us, uint64_t key) {
  auto it = by_time_.find(TimeKey{first_ts_us, key, 0});
  assert(it != by_time_.end());
  if (it == by_time_.end()) return;
  if (first_ts_us <= cutoff_us_) Count(slots_of_units_[it->slot], -1);
  AddToBlock(*it, slots_of_units_[it->slot], -1);
  free_slots_.push_back(it->slot);
  slots_of_units_[it->slot].values.clear();
  by_time_.erase(it);
}

// The unit's contribution to its arm's statistics, added or taken away. Every sum is exact, so
// taking a contribution away leaves exactly the state without it.
void AnalysisState::Count(const Unit& u, int sign) {
  counted_ += sign;
  CountInto(arms_[static_cast<size_t>(u.arm)], u, sign);
}

void AnalysisState::CountInto(Arm& a, const Unit& u, int sign) const {
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

namespace {

// `from`'s statistics (not its score groups) added to `to`'s: counts add, exact sums merge, so
// arms counted apart and merged equal one arm counted whole.
void MergeArm(AnalysisState::Arm& to, const AnalysisState::Arm& from) {
  to.units += from.units;
  for (size_t j = 0; j < to.props.size(); ++j) {
    to.props[j].successes += from.props[j].successes;
    to.props[j].trials += from.props[j].trials;
    to.sum[j].Merge(from.sum[j]);
    to.sum_squares[j].Merge(from.sum_squares[j]);
    to.cuped[j].y.Merge(from.cuped[j].y);
    to.cuped[j].y2.Merge(from.cuped[j].y2);
    to.cuped[j].x.Merge(from.cuped[j].x);
    to.cuped[j].x2.Merge(from.cuped[j].x2);
    to.cuped[j].xy.Merge(from.cuped[j].xy);
  }
  to.positives += from.positives;
  to.without_probability += from.without_probability;
  to.ipw_units += from.ipw_units;
  to.w.Merge(from.w);
  to.wy.Merge(from.wy);
  to.wyy2.Merge(from.wyy2);
  to.wy2.Merge(from.wy2);
  to.w2.Merge(from.w2);
}

// Sorts time keys by (ts, key): a stable LSD radix sort on ts (11-bit digits, as many passes as
// the span of the timestamps needs: 4 for a month in µs), then runs of equal ts by key. ~4x
// faster than std::sort on 1M keys, whose comparisons mispredict.
template <typename T>
void SortByTime(std::vector<T>& v) {
  if (v.size() < 4096) {
    std::sort(v.begin(), v.end());
    return;
  }
  int64_t lo = v[0].ts, hi = v[0].ts;
  for (const T& t : v) {
    lo = std::min(lo, t.ts);
    hi = std::max(hi, t.ts);
  }
  const auto span = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);
  constexpr int kBits = 11;
  constexpr size_t kBuckets = size_t{1} << kBits;
  int passes = 0;
  while (passes * kBits < 64 && (span >> (passes * kBits)) != 0) ++passes;
  std::vector<std::array<uint32_t, kBuckets>> counts(static_cast<size_t>(passes));
  for (auto& c : counts) c.fill(0);
  for (const T& t : v) {
    const uint64_t x = static_cast<uint64_t>(t.ts) - static_cast<uint64_t>(lo);
    for (int p = 0; p < passes; ++p) ++counts[static_cast<size_t>(p)][(x >> (p * kBits)) & (kBuckets - 1)];
  }
  std::vector<T> other(v.size());
  for (int p = 0; p < passes; ++p) {
    auto& c = counts[static_cast<size_t>(p)];
    uint32_t sum = 0;
    for (uint32_t& n : c) sum += std::exchange(n, sum);  // bucket starts
    for (const T& t : v) {
      const uint64_t x = static_cast<uint64_t>(t.ts) - static_cast<uint64_t>(lo);
      other[c[(x >> (p * kBits)) & (kBuckets - 1)]++] = t;
    }
    v.swap(other);
  }
  for (size_t i = 0; i < v.size();) {
    size_t j = i + 1;
    while (j < v.size() && v[j].ts == v[i].ts) ++j;
    if (j - i > 1) std::sort(v.begin() + static_cast<std::ptrdiff_t>(i), v.begin() + static_cast<std::ptrdiff_t>(j));
    i = j;
  }
}

}  // namespace

void AnalysisState::AddUnits(std::span<const UnitObservation> units, int workers) {
  const size_t n = units.size();
  std::vector<TimeKey> order(n);
  if (!by_time_.empty()) {
    // Into a state with units: one at a time, in time order.
    for (size_t i = 0; i < n; ++i) order[i] = {units[i].first_ts_us, units[i].key ? units[i].key : i, static_cast<uint32_t>(i)};
    SortByTime(order);
    for (const TimeKey& t : order) AddUnit(units[t.slot], t.key, 1);
    return;
  }
  // An empty state: every slot is free, no block is left.
  slots_of_units_.clear();
  free_slots_.clear();
  blocks_.clear();
  // Room for the units a follower's next reads add (untouched, the pages cost nothing), so the
  // first of them does not copy every slot.
  slots_of_units_.reserve(n + n / 4);
  slots_of_units_.resize(n);
  // Copied and counted in input order (sequential reads), each worker into arms of its own,
  // merged after.
  workers = std::max(workers, 1);
  constexpr size_t kChunk = 1 << 16;
  std::vector<std::vector<Arm>> partial(static_cast<size_t>(workers));
  std::vector<int64_t> counted(static_cast<size_t>(workers), 0);
  const size_t chunks = (n + kChunk - 1) / kChunk;
  common::ParallelFor(workers, chunks, [&](int worker, size_t c) {
    auto& arms = partial[static_cast<size_t>(worker)];
    if (arms.empty()) {
      arms.resize(arms_.size());
      for (Arm& a : arms) {
        a.props.resize(kinds_.size());
        a.sum.resize(kinds_.size());
        a.sum_squares.resize(kinds_.size());
        a.cuped.resize(kinds_.size());
      }
    }
    for (size_t i = c * kChunk; i < std::min(n, (c + 1) * kChunk); ++i) {
      const UnitObservation& u = units[i];
      Unit& kept = slots_of_units_[i];
      kept = Unit{u.arm, u.first_ts_us, u.propensity, u.values};
      order[i] = {u.first_ts_us, u.key ? u.key : i, static_cast<uint32_t>(i)};
      if (u.first_ts_us > cutoff_us_) continue;
      CountInto(arms[static_cast<size_t>(u.arm)], kept, 1);
      ++counted[static_cast<size_t>(worker)];
    }
  });
  for (size_t w = 0; w < partial.size(); ++w) {
    counted_ += counted[w];
    for (size_t a = 0; a < partial[w].size(); ++a) MergeArm(arms_[a], partial[w][a]);
  }
  SortByTime(order);
  // The time index, appended in order; blocks of kBlockUnits consecutive units, each summed on
  // its own (the units read through their slots: prefetched, they are in input order).
  const size_t blocks = (n + kBlockUnits - 1) / kBlockUnits;
  std::vector<Block> built(blocks);
  common::ParallelFor(workers, blocks, [&](int, size_t b) {
    Block& block = built[b];
    block.arms.resize(arms_.size());
    const size_t end = std::min(n, (b + 1) * kBlockUnits);
    for (size_t r = b * kBlockUnits; r < end; ++r) {
      if (r + 8 < end) __builtin_prefetch(&slots_of_units_[order[r + 8].slot]);
      const Unit& u = slots_of_units_[order[r].slot];
      AddToSums(block.arms[static_cast<size_t>(u.arm)], u, 1);
      ++block.units;
    }
  });
  for (const TimeKey& t : order) by_time_.insert(by_time_.end(), t);
  for (size_t b = 0; b < blocks; ++b) blocks_.emplace_hint(blocks_.end(), order[b * kBlockUnits], std::move(built[b]));
}

void AnalysisState::AddPredictions(std::span<const ScoredPrediction> predictions, int workers) {
  // Each worker groups its chunks by (arm, score) in a hash map; the groups are then merged into
  // the arms' (counts: the order does not show).
  struct Counts {
    double score;
    int64_t positives = 0, negatives = 0;
  };
  using Groups = absl::flat_hash_map<std::pair<int, uint64_t>, Counts>;
  workers = std::max(workers, 1);
  constexpr size_t kChunk = 1 << 16;
  std::vector<Groups> partial(static_cast<size_t>(workers));
  common::ParallelFor(workers, (predictions.size() + kChunk - 1) / kChunk, [&](int worker, size_t c) {
    Groups& groups = partial[static_cast<size_t>(worker)];
    for (size_t i = c * kChunk; i < std::min(predictions.size(), (c + 1) * kChunk); ++i) {
      const ScoredPrediction& p = predictions[i];
      const double score = p.score == 0 ? 0.0 : p.score;
      auto [it, inserted] = groups.try_emplace({p.arm, stats::ScoreKey(score)}, Counts{score});
      ++(p.label > 0 ? it->second.positives : it->second.negatives);
    }
  });
  for (const Groups& groups : partial) {
    for (const auto& [at, c] : groups) {
      auto& arm_groups = arms_[static_cast<size_t>(at.first)].groups;
      auto [it, inserted] = arm_groups.try_emplace(at.second, stats::ScoreGroup{c.score, 0, 0});
      it->second.positives += c.positives;
      it->second.negatives += c.negatives;
    }
  }
}

void AnalysisState::AddPrediction(int arm, double score, int label, int sign) {
  auto& groups = arms_[static_cast<size_t>(arm)].groups;
  if (score == 0) score = 0.0;  // -0: the group's score is +0 whichever came first
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

int64_t AnalysisState::memory_bytes() const {
  // B-tree nodes hold up to 256 bytes of values and are at least half full (2/3 on average
  // after random inserts, nearly full after appends): 3/2 the values' bytes as a bound.
  size_t bytes = slots_of_units_.capacity() * sizeof(Unit) + free_slots_.capacity() * sizeof(uint32_t) +
                 by_time_.size() * sizeof(TimeKey) * 3 / 2;
  for (const Unit& u : slots_of_units_) {
    if (u.values.size() > 4) bytes += u.values.capacity() * sizeof(double);  // not inline
  }
  for (const auto& [_, b] : blocks_) bytes += (sizeof(TimeKey) + sizeof(Block)) * 3 / 2 + b.arms.capacity() * sizeof(ArmSums);
  for (const Arm& a : arms_) {
    bytes += sizeof(Arm) + a.groups.size() * (sizeof(uint64_t) + sizeof(stats::ScoreGroup)) * 3 / 2 +
             (a.sum.capacity() + a.sum_squares.capacity()) * sizeof(stats::ExactSum) + a.cuped.capacity() * sizeof(Arm::Cuped);
  }
  return static_cast<int64_t>(bytes);
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

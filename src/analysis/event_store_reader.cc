// ReadEventStore: one experiment's exposures and outcomes → AnalysisInput.
//
// Built for 10M exposures and 10M outcomes on 2 cores (bench/analyze_vs_pandas.sh). The work
// is arranged so every core stays busy and no step chases pointers through a big hash map:
//  1. Scan. The store's scan (events::EventReader, events/event_reader.h: rowid, block-id or
//     heap-page ranges, each worker on its own connection) is cut into tasks that workers take
//     in turn. Every event, its ids already 64-bit keys, becomes a fixed-size record keyed by
//     its unit (or request) and is appended to one of 256 partitions picked by the key's top
//     bits, so the exposures of a unit and the outcomes naming it land in the same partition.
//  2. Request join, only when outcomes carry request ids: exposures and those outcomes are
//     partitioned by request key and joined partition by partition; each joined outcome moves
//     to its unit's partition.
//  3. Per partition, in parallel: a hash map small enough to stay in cache gives the units
//     (first exposure, arm, seen in two arms?), outcomes are attributed, and the partition's
//     units and scored predictions are written out.
// An EventStoreFollower keeps what the scan read in the same partitions (units by unit
// partition, requests by request partition) and folds each read's new events in with the same
// phases, so its first read of 1M units runs on every core as a full read does.
// Ids are hashed rather than kept: two of 2M ids collide with probability ~1e-7.
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include <boost/json.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "analysis/analysis.h"
#include "common/hash64.h"
#include "common/mutex.h"
#include "common/parallel.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "events/event_reader.h"

namespace abgate::analysis {
namespace {

constexpr int kPartitionBits = 8;
constexpr size_t kPartitions = size_t{1} << kPartitionBits;
constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();

size_t PartitionOf(uint64_t key) { return static_cast<size_t>(key >> (64 - kPartitionBits)); }

// Units that are requests (request-level analysis, or an exposure without a unit id) get keys
// apart from user keys: a bijection of the request key, so distinct requests stay distinct.
uint64_t RequestUnitKey(uint64_t request_key) { return (request_key ^ 0x9e3779b97f4a7c15ULL) * 0xbf58476d1ce4e5b9ULL; }

struct ExposureRow {
  uint64_t unit_key;
  uint64_t request_key;
  int64_t ts;
  double score;  // NaN when the request was not scored (SQLite cannot store a NaN score)
  uint32_t arm;  // index in the scan's ArmTable
  float assignment_probability;  // a bandit's (0: none recorded); fills the padding after `arm`
};

struct OutcomeRow {
  uint64_t key;  // the unit's key; the request's key until the request join
  int64_t ts;
  double value;
  uint32_t metric;
  uint32_t exposure;  // joined by request: the exposure's index in its partition, else kNone
};

// The (arm, model version) pairs the scan met — an arm defined by alias is served by every
// version the alias pointed at — shared by the workers (each keeps its own cache, so the lock
// is taken once per worker and pair). `first_rowid` orders each arm's versions by first sight.
class ArmTable {
 public:
  struct Arm {
    std::string name;
    std::string model_version;
    int64_t first_rowid;
  };

  uint32_t Find(std::string_view name, std::string_view model_version, int64_t rowid) {
    common::MutexLock lock(mu_);
    for (uint32_t i = 0; i < arms_.size(); ++i) {
      if (arms_[i].name != name || arms_[i].model_version != model_version) continue;
      arms_[i].first_rowid = std::min(arms_[i].first_rowid, rowid);
      return i;
    }
    arms_.push_back({std::string(name), std::string(model_version), rowid});
    return static_cast<uint32_t>(arms_.size() - 1);
  }
  ArmTable() = default;
  // Before or after the scan, when no worker runs (their threads were joined): no lock.
  ArmTable& operator=(ArmTable&& o) noexcept ABSL_NO_THREAD_SAFETY_ANALYSIS {
    arms_ = std::move(o.arms_);
    return *this;
  }
  std::vector<Arm>& arms() ABSL_NO_THREAD_SAFETY_ANALYSIS { return arms_; }
  void Clear() ABSL_NO_THREAD_SAFETY_ANALYSIS { arms_.clear(); }

 private:
  common::Mutex mu_;
  std::vector<Arm> arms_ ABSL_GUARDED_BY(mu_);
};

// What one worker's scan produced.
struct ScanOutput {
  ScanOutput() : exposures(kPartitions), outcomes(kPartitions), request_outcomes(kPartitions) {}
  std::vector<std::vector<ExposureRow>> exposures;        // by PartitionOf(unit key)
  std::vector<std::vector<OutcomeRow>> outcomes;          // by unit id, by PartitionOf(unit key)
  std::vector<std::vector<OutcomeRow>> request_outcomes;  // by request id, by PartitionOf(request key)
  std::vector<int64_t> arm_exposures;                     // by ArmTable index
  std::vector<std::tuple<std::string, std::string, uint32_t>> arm_cache;  // name, version, ArmTable index
  // A follower's read only: the event block of each outcome (ScanBatch::block), parallel to
  // `outcomes` and `request_outcomes`.
  std::vector<std::vector<int64_t>> outcome_blocks, request_outcome_blocks;
  absl::Status status;
};

}  // namespace

// The shadow rows read, the request keys of the comparable ones, and where the read ended.
struct KeptShadows {
  ShadowObservations observations;
  absl::flat_hash_set<uint64_t> comparable_keys;
  events::ShadowCursor cursor;
};

// What an EventStoreFollower keeps between reads: every event read so far, in the unit
// partition of its unit (the scan's partitions: PartitionOf(unit key)), each linked into its
// unit's lists, with the units built from them and their current contribution to the
// analysis' sufficient statistics (AnalysisState); per request partition, the first exposure of
// every request (outcomes may name it) and the outcomes naming requests not read yet; the arms
// met, and where the store's scan ended. A read folds its new events in and recomputes only the
// units they touched (their old contribution is taken away and the new one added), partition by
// partition on every core. Sizes (bytes per exposure, outcome and unit) are in kept_bytes().
struct EventStoreFollower::State {
  static constexpr uint32_t kEnd = std::numeric_limits<uint32_t>::max();
  struct Exposure {
    double score;  // NaN: not scored
    uint32_t arm;   // ArmTable index
    uint32_t unit;  // in its partition
    uint32_t next = kEnd;  // the unit's next exposure
    uint8_t request_partition = 0;  // PartitionOf(request key): orders the outcomes naming requests
    int8_t label = -1;  // its request's label while its unit is counted (binary primary metric; -1: none)
    int8_t request_label = -1;  // from outcomes that named it (-1: none)
  };
  struct Outcome {
    int64_t ts;
    double value;
    int64_t block = 0;        // the id of the event block it came from (0: rows), for store order
    uint32_t metric;          // index in the reader's outcome names
    uint32_t exposure = kEnd;  // named a request: its exposure (in the unit's partition), else kEnd
    uint32_t next = kEnd;
    uint32_t seq = 0;  // named a request: its place in store order among its request partition's
  };
  struct List {
    uint32_t head = kEnd, tail = kEnd;
  };
  struct Counts {  // a unit's outcomes' share of the totals
    uint32_t attributed = 0, before_exposure = 0, after_window = 0, covariate = 0;
  };
  struct Unit {
    uint64_t key;
    int64_t first_ts;
    int64_t counted_ts = 0;  // its first exposure when it was counted (the statistics' time key)
    uint32_t arm;  // ArmTable index of its first exposure read
    float assignment_probability;
    bool multiple_arms = false;
    bool dirty = false;
    bool counted = false;  // its contribution is in `stats`
    List exposures, outcomes, request_outcomes;
    Counts counts;
  };
  // One unit partition's units and events (indexes are the partition's own).
  struct Part {
    std::vector<Exposure> exposures;
    std::vector<Outcome> outcomes;
    std::vector<Unit> units;
    absl::flat_hash_map<uint64_t, uint32_t> unit_index;  // unit key → units
    absl::flat_hash_map<uint64_t, List> pending_units;   // outcomes of units not exposed (yet)
    int64_t pending = 0;                                 // outcomes in pending_units
    int64_t multiple_arm_units = 0;
    std::vector<uint32_t> dirty;
  };
  struct RequestRef {
    uint32_t part, exposure;
  };
  // One request partition (PartitionOf(request key)).
  struct RequestPart {
    absl::flat_hash_map<uint64_t, RequestRef> index;  // request key → its first exposure
    absl::flat_hash_map<uint64_t, List> pending;      // outcomes naming requests not read (yet)
    std::vector<Outcome> outcomes;                    // theirs
    int64_t pending_count = 0;
    uint32_t next_seq = 0;
  };

  State() : parts(kPartitions), requests(kPartitions) {}
  void Clear() { *this = State(); }

  ArmTable arms;
  std::vector<int64_t> arm_exposures;  // by ArmTable index
  events::ScanCursor cursor;
  KeptShadows shadows;  // read on from shadows.cursor while the scan resumes
  bool last_incremental = false;
  std::vector<Part> parts;           // by unit partition
  std::vector<RequestPart> requests;  // by request partition
  // The statistics, with arms by name in order of first sight (state_arm_names).
  std::shared_ptr<AnalysisState> stats;
  std::vector<std::string> state_arm_names;
  AnalysisInput::OutcomeCounts counts;  // over the units (unknown_unit: the pending outcomes)
};
static_assert(sizeof(EventStoreFollower::State::Outcome) == 40);

namespace {

// A unit partition's share of the result.
struct PartitionResult {
  std::vector<UnitObservation> units;
  std::vector<ScoredPrediction> predictions;
  std::vector<std::pair<uint64_t, int>> shadow_labels;  // (request key, label) of shadowed requests
  std::vector<RequestLabels> request_labels;
  AnalysisInput::OutcomeCounts counts;
  int64_t multiple_arm_units = 0;
};

// Phase timings on stderr when ABGATE_ANALYZE_TIMINGS is set (for bench/analyze_vs_pandas.sh).
class PhaseLog {
 public:
  PhaseLog() : enabled_(std::getenv("ABGATE_ANALYZE_TIMINGS") != nullptr), last_(std::chrono::steady_clock::now()) {}
  void Mark(const char* phase) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    std::fprintf(stderr, "analyze: %-14s %8.5f s\n", phase, std::chrono::duration<double>(now - last_).count());
    last_ = now;
  }

 private:
  bool enabled_;
  std::chrono::steady_clock::time_point last_;
};

class StoreReader {
 public:
  StoreReader(events::EventReader& reader, const std::string& experiment, const std::string& unit,
              std::vector<MetricSpec> metrics, int64_t window_us, int64_t since_us, ReadTuning tuning,
              EventStoreFollower::State* follow = nullptr)
      : follow_(follow),
        arms_(follow ? follow->arms : own_arms_),
        shadows_(follow ? follow->shadows : own_shadows_),
        reader_(reader),
        experiment_(experiment),
        request_units_(unit == "request"),
        metrics_(std::move(metrics)),
        window_us_(window_us),
        since_us_(since_us),
        workers_(tuning.workers > 0 ? tuning.workers : common::DefaultParallelism()),
        rows_per_chunk_(tuning.rows_per_chunk),
        use_blocks_(tuning.use_blocks),
        want_request_labels_(tuning.request_labels),
        label_requests_(std::move(tuning.label_requests)),
        scans_(static_cast<size_t>(std::max(workers_, 2))) {
    input_.experiment = experiment;
    input_.unit = unit;
    // The outcome names to read: every metric's (its values after the first exposure), and
    // every CUPED covariate's (its values before it), a name possibly serving as both.
    input_.covariates = CovariatesOf(metrics_);
    for (uint32_t j = 0; j < metrics_.size(); ++j) {
      names_.push_back(metrics_[j].name);
      slots_.push_back({j, kNone});
    }
    for (size_t c = 0; c < input_.covariates.size(); ++c) {
      auto it = std::find(names_.begin(), names_.end(), input_.covariates[c]);
      if (it == names_.end()) {
        names_.push_back(input_.covariates[c]);
        slots_.push_back({kNone, kNone});
        it = names_.end() - 1;
      }
      slots_[static_cast<size_t>(it - names_.begin())].pre = static_cast<uint32_t>(metrics_.size() + c);
    }
  }

  absl::StatusOr<AnalysisInput> Read() {
    PhaseLog log;
    // Shadow traffic, to be paired with its requests' labels (a store without any: none).
    absl::Status scanned = Scan();
    for (const auto& scan : scans_) scanned.Update(scan.status);
    if (scanned.ok()) scanned = ReadShadowRows();
    if (!scanned.ok()) {
      // What was kept may now hold part of a scan: the next read starts over.
      if (follow_) follow_->Clear();
      return scanned;
    }
    log.Mark("scan");
    // A store that cannot resume a scan (PostgreSQL) is read whole every time: the parallel
    // path builds its units faster than folding every event into the follower's.
    if (follow_ && cursor_.valid) return Follow(log);
    auto result = Compute(log);
    if (follow_) follow_->Clear();  // after Compute, which reads the arms it met
    return result;
  }

 private:
  absl::StatusOr<AnalysisInput> Compute(PhaseLog& log) {
    int64_t exposures = 0;
    for (const auto& scan : scans_) {
      for (int64_t n : scan.arm_exposures) exposures += n;
    }
    if (exposures == 0) {
      return absl::NotFoundError(StrCat("no exposures for experiment '", experiment_, "' in ", reader_.uri()));
    }
    SortArms();
    input_.metrics = std::move(metrics_);
    const size_t joined = JoinRequests();
    if (joined > 0) log.Mark("request join");
    AttributeByPartition();
    log.Mark("attribution");
    return std::move(input_);
  }

  // ---- Follower: the new events folded into the kept units ------------------------------
  //
  // Every phase runs partition by partition on every core, so a first read of 1M units costs
  // what the parallel full read does: (a) per unit partition, the new exposures and the
  // outcomes naming units are folded into its units; (b) per request partition, the new
  // exposures' requests are indexed, outcomes waiting for them are released, and the new
  // outcomes naming requests are resolved to their exposure (or wait); (c) per unit partition,
  // those outcomes are linked into their units; (d) per unit partition, the touched units are
  // recomputed into a delta; (e) the deltas are applied to the statistics (a first read's units
  // at once: AnalysisState::AddUnits).

  using State = EventStoreFollower::State;
  static constexpr uint32_t kEnd = State::kEnd;

  static void Append(State::List& list, uint32_t index, std::vector<State::Outcome>& outcomes) {
    if (list.tail == kEnd) {
      list.head = index;
    } else {
      outcomes[list.tail].next = index;
    }
    list.tail = index;
  }
  // The event block of the i-th outcome of partition p in a worker's scan (ScanOutput's
  // outcome_blocks or request_outcome_blocks; empty when the worker read no outcome).
  static int64_t BlockOf(const std::vector<std::vector<int64_t>>& blocks, size_t p, size_t i) {
    return blocks.empty() ? 0 : blocks[p][i];
  }
  static void MarkDirty(State::Part& part, uint32_t unit) {
    State::Unit& u = part.units[unit];
    if (u.dirty) return;
    u.dirty = true;
    part.dirty.push_back(unit);
  }
  // The statistics' arm of an (arm, version) pair: arms by name, in order of first sight.
  int StateArm(uint32_t pair) {
    State& f = *follow_;
    const std::string& name = arms_.arms()[pair].name;
    auto it = std::find(f.state_arm_names.begin(), f.state_arm_names.end(), name);
    if (it != f.state_arm_names.end()) return static_cast<int>(it - f.state_arm_names.begin());
    f.state_arm_names.push_back(name);
    return f.stats->AddArm();
  }

  // An exposure this read made known: its request, and where it is.
  struct NewRequest {
    uint64_t request_key;
    State::RequestRef at;
  };

  // (a) One exposure into partition p's units. `names` gives each arm pair's name index.
  void FoldExposure(State::Part& part, uint32_t p, const ExposureRow& e, const std::vector<uint32_t>& names,
                    std::vector<std::vector<NewRequest>>& requests) {
    const auto index = static_cast<uint32_t>(part.exposures.size());
    auto [it, inserted] = part.unit_index.try_emplace(e.unit_key, static_cast<uint32_t>(part.units.size()));
    const uint32_t unit = it->second;
    if (inserted) {
      State::Unit u;
      u.key = e.unit_key;
      u.first_ts = e.ts;
      u.arm = e.arm;
      u.assignment_probability = e.assignment_probability;
      if (auto pending = part.pending_units.find(e.unit_key); pending != part.pending_units.end()) {
        u.outcomes = pending->second;
        for (uint32_t o = u.outcomes.head; o != kEnd; o = part.outcomes[o].next) --part.pending;
        part.pending_units.erase(pending);
      }
      part.units.push_back(u);
    } else {
      State::Unit& u = part.units[unit];
      // Versions of one arm are one arm (an alias that moved): compare names, not pairs.
      if (!u.multiple_arms && names[u.arm] != names[e.arm]) {
        u.multiple_arms = true;
        ++part.multiple_arm_units;
      }
      if (e.ts < u.first_ts) {
        u.first_ts = e.ts;
        u.assignment_probability = e.assignment_probability;
      }
    }
    const auto q = static_cast<uint8_t>(PartitionOf(e.request_key));
    part.exposures.push_back({e.score, e.arm, unit, kEnd, q});
    State::Unit& u = part.units[unit];
    if (u.exposures.tail == kEnd) {
      u.exposures.head = index;
    } else {
      part.exposures[u.exposures.tail].next = index;
    }
    u.exposures.tail = index;
    requests[q].push_back({e.request_key, {p, index}});
    MarkDirty(part, unit);
  }

  // (a) One outcome naming a unit into its partition.
  static void FoldOutcome(State::Part& part, const OutcomeRow& o, int64_t block) {
    const auto index = static_cast<uint32_t>(part.outcomes.size());
    part.outcomes.push_back({o.ts, o.value, block, o.metric});
    auto it = part.unit_index.find(o.key);
    if (it == part.unit_index.end()) {
      Append(part.pending_units[o.key], index, part.outcomes);
      ++part.pending;
      return;
    }
    Append(part.units[it->second].outcomes, index, part.outcomes);
    MarkDirty(part, it->second);
  }

  // (b) Request partition q: this read's exposures indexed (a request served twice, not
  // something the gateway does: its first exposure, the one read first, or the first in
  // (partition, index) order within a read, as JoinRequests), the outcomes that waited for them
  // released, and this read's outcomes naming requests resolved or kept waiting. `news` holds
  // each worker's new requests of partition q, each in (partition, index) order.
  void IndexRequests(size_t q, const std::vector<const std::vector<NewRequest>*>& news,
                     std::vector<std::vector<State::Outcome>>& resolved) {
    State::RequestPart& rq = follow_->requests[q];
    std::vector<size_t> next(news.size(), 0);
    auto release = [&](uint64_t key, State::RequestRef at) {
      auto pending = rq.pending.find(key);
      if (pending == rq.pending.end()) return;
      for (uint32_t o = pending->second.head; o != kEnd; o = rq.outcomes[o].next) {
        State::Outcome out = rq.outcomes[o];
        out.exposure = at.exposure;
        out.next = kEnd;
        if (resolved.empty()) resolved.resize(kPartitions);
        resolved[at.part].push_back(out);
        --rq.pending_count;
      }
      rq.pending.erase(pending);
    };
    // Merge the workers' lists (each sorted by (partition, index)) into one order.
    for (;;) {
      size_t best = news.size();
      for (size_t w = 0; w < news.size(); ++w) {
        if (next[w] == news[w]->size()) continue;
        const State::RequestRef& at = (*news[w])[next[w]].at;
        if (best == news.size() || std::pair(at.part, at.exposure) < std::pair((*news[best])[next[best]].at.part,
                                                                                (*news[best])[next[best]].at.exposure)) {
          best = w;
        }
      }
      if (best == news.size()) break;
      const NewRequest& r = (*news[best])[next[best]++];
      if (rq.index.try_emplace(r.request_key, r.at).second && !rq.pending.empty()) release(r.request_key, r.at);
    }
    if (rq.pending.empty()) rq.outcomes.clear();  // every one released (they moved to their units)
    ForEachInOrder(&ScanOutput::request_outcomes, &TaskMark::request_outcomes, q, [&](const OutcomeRow& o, size_t w,
                                                                                        size_t i) {
      const uint32_t seq = rq.next_seq++;
      const int64_t block = BlockOf(scans_[w].request_outcome_blocks, q, i);
      auto it = rq.index.find(o.key);
      if (it == rq.index.end()) {
        const auto index = static_cast<uint32_t>(rq.outcomes.size());
        rq.outcomes.push_back({o.ts, o.value, block, o.metric, kEnd, kEnd, seq});
        Append(rq.pending[o.key], index, rq.outcomes);
        ++rq.pending_count;
        return;
      }
      if (resolved.empty()) resolved.resize(kPartitions);
      resolved[it->second.part].push_back({o.ts, o.value, block, o.metric, it->second.exposure, kEnd, seq});
    });
  }

  // What recomputing a partition's touched units changes in the statistics. Arms are pairs
  // (ArmTable indexes) until applied.
  struct Delta {
    std::vector<std::pair<int64_t, uint64_t>> removed;  // (counted first exposure, key)
    std::vector<ScoredPrediction> removed_predictions;
    std::vector<UnitObservation> added;
    std::vector<ScoredPrediction> added_predictions;
    AnalysisInput::OutcomeCounts counts;  // added minus removed
  };

  static void AddCounts(AnalysisInput::OutcomeCounts& to, const State::Counts& c, int sign) {
    to.attributed += sign * static_cast<int64_t>(c.attributed);
    to.before_exposure += sign * static_cast<int64_t>(c.before_exposure);
    to.after_window += sign * static_cast<int64_t>(c.after_window);
    to.covariate += sign * static_cast<int64_t>(c.covariate);
  }

  // (d) One unit's old contribution taken away and its new one computed from its events by the
  // rules of ProcessPartition, in its order (the unit's outcomes in store order, then those
  // naming its requests by request partition and store order there), so sums agree to the last
  // bit.
  void Recompute(State::Part& part, uint32_t index, Delta& delta) {
    State::Unit& u = part.units[index];
    u.dirty = false;
    if (u.counted) {
      delta.removed.emplace_back(u.counted_ts, u.key);
      u.counted = false;
    }
    for (uint32_t e = u.exposures.head; e != kEnd; e = part.exposures[e].next) {
      State::Exposure& x = part.exposures[e];
      if (x.label >= 0 && !std::isnan(x.score)) delta.removed_predictions.push_back({static_cast<int>(x.arm), x.score, x.label});
      x.label = -1;
      x.request_label = -1;
    }
    AddCounts(delta.counts, u.counts, -1);
    u.counts = {};

    const size_t m = input_.metrics.size() + input_.covariates.size();
    absl::InlinedVector<double, 4> values(m, 0.0);
    auto attribute = [&](const State::Outcome& o) {
      const Slots slot = slots_[o.metric];
      if (o.ts < u.first_ts) {
        if (slot.pre != kNone) {
          values[slot.pre] += o.value;
          ++u.counts.covariate;
        } else {
          ++u.counts.before_exposure;
        }
        return;
      }
      if (slot.post == kNone) return;
      if (window_us_ > 0 && o.ts > u.first_ts + window_us_) {
        ++u.counts.after_window;
        return;
      }
      ++u.counts.attributed;
      double& v = values[slot.post];
      v = input_.metrics[slot.post].kind == MetricKind::kBinary ? std::max(v, o.value > 0 ? 1.0 : 0.0) : v + o.value;
      if (o.exposure != kEnd && slot.post == 0) {
        int8_t& label = part.exposures[o.exposure].request_label;
        label = std::max<int8_t>(label, o.value > 0 ? 1 : 0);
      }
    };
    // The unit's outcomes in store order: by event block id, then as stored in the block,
    // which is their order in part.outcomes (a block is read whole, by one scan). An
    // incremental PostgreSQL scan can deliver a block that committed late after blocks with
    // higher ids, so the list is put in that order first when it is not.
    auto store_order = [&](uint32_t a, uint32_t b) {
      const int64_t x = part.outcomes[a].block, y = part.outcomes[b].block;
      return x != y ? x < y : a < b;
    };
    bool sorted = true;
    for (uint32_t o = u.outcomes.head; o != kEnd && part.outcomes[o].next != kEnd && sorted; o = part.outcomes[o].next) {
      sorted = store_order(o, part.outcomes[o].next);
    }
    if (!sorted) {
      std::vector<uint32_t> order;
      for (uint32_t o = u.outcomes.head; o != kEnd; o = part.outcomes[o].next) order.push_back(o);
      std::sort(order.begin(), order.end(), store_order);
      u.outcomes = {};
      for (uint32_t o : order) {
        part.outcomes[o].next = kEnd;
        Append(u.outcomes, o, part.outcomes);
      }
    }
    for (uint32_t o = u.outcomes.head; o != kEnd; o = part.outcomes[o].next) attribute(part.outcomes[o]);
    // Those naming its requests: by request partition, then in store order there (block id,
    // then the order read in the request partition: `seq`, which an outcome that waited for its
    // request keeps).
    if (u.request_outcomes.head != kEnd) {
      const State::Outcome& first = part.outcomes[u.request_outcomes.head];
      if (first.next == kEnd) {
        attribute(first);
      } else {
        std::vector<std::tuple<uint8_t, int64_t, uint32_t, uint32_t>> order;  // (request partition, block, seq, outcome)
        for (uint32_t o = u.request_outcomes.head; o != kEnd; o = part.outcomes[o].next) {
          const State::Outcome& x = part.outcomes[o];
          order.emplace_back(part.exposures[x.exposure].request_partition, x.block, x.seq, o);
        }
        std::sort(order.begin(), order.end());
        for (const auto& x : order) attribute(part.outcomes[std::get<3>(x)]);
      }
    }
    AddCounts(delta.counts, u.counts, 1);
    if (u.multiple_arms) return;  // counted apart, and left out
    delta.added.push_back({static_cast<int>(u.arm), u.first_ts, values, u.assignment_probability, u.key});
    u.counted = true;
    u.counted_ts = u.first_ts;
    if (input_.metrics[0].kind != MetricKind::kBinary) return;
    for (uint32_t e = u.exposures.head; e != kEnd; e = part.exposures[e].next) {
      State::Exposure& x = part.exposures[e];
      const double label = x.request_label >= 0 ? x.request_label : values[0];
      x.label = label > 0 ? 1 : 0;
      if (!std::isnan(x.score)) delta.added_predictions.push_back({static_cast<int>(x.arm), x.score, x.label});
    }
  }

  // The scan's rows folded into the follower's units, the touched units recomputed, and the
  // input made from the statistics (AnalysisInput::state).
  absl::StatusOr<AnalysisInput> Follow(PhaseLog& log) {
    State& f = *follow_;
    f.cursor = cursor_;
    f.last_incremental = incremental_;
    input_.metrics = metrics_;
    if (!f.stats) {
      std::vector<MetricKind> kinds;
      for (const auto& metric : input_.metrics) kinds.push_back(metric.kind);
      std::vector<int> covariate_slots(input_.metrics.size(), -1);
      for (size_t j = 0; j < input_.metrics.size(); ++j) {
        const auto& name = input_.metrics[j].cuped_covariate;
        if (name.empty()) continue;
        auto it = std::find(input_.covariates.begin(), input_.covariates.end(), name);
        covariate_slots[j] = static_cast<int>(input_.metrics.size() + static_cast<size_t>(it - input_.covariates.begin()));
      }
      f.stats = std::make_shared<AnalysisState>(0, std::move(kinds), std::move(covariate_slots), 0);
    }
    for (const auto& scan : scans_) {
      if (f.arm_exposures.size() < scan.arm_exposures.size()) f.arm_exposures.resize(scan.arm_exposures.size());
      for (size_t i = 0; i < scan.arm_exposures.size(); ++i) f.arm_exposures[i] += scan.arm_exposures[i];
    }
    // Each pair's arm name, as an index (pairs of one name are one arm).
    std::vector<uint32_t> names;
    {
      const auto& pairs = arms_.arms();
      for (size_t i = 0; i < pairs.size(); ++i) {
        uint32_t j = 0;
        while (j < i && pairs[j].name != pairs[i].name) ++j;
        names.push_back(j);
      }
    }
    // A refresh's few new events are folded on this thread: a worker thread started for them
    // costs more than it saves (on a loaded machine, up to a time slice per phase to join).
    size_t new_events = 0;
    for (const auto& scan : scans_) {
      for (size_t p = 0; p < kPartitions; ++p) {
        new_events += scan.exposures[p].size() + scan.outcomes[p].size() + scan.request_outcomes[p].size();
      }
    }
    const int threads = new_events >= 16384 ? workers_ : 1;
    const auto workers = static_cast<size_t>(threads);
    // (a) Exposures and the outcomes naming units, per unit partition.
    std::vector<std::vector<std::vector<NewRequest>>> new_requests(workers, std::vector<std::vector<NewRequest>>(kPartitions));
    common::ParallelFor(threads, kPartitions, [&](int worker, size_t p) {
      State::Part& part = f.parts[p];
      if (part.exposures.empty()) {  // a first read: sized at once (later ones grow by doubling)
        size_t n = 0;
        for (const auto& scan : scans_) n += scan.exposures[p].size();
        part.exposures.reserve(n);
      }
      auto& mine = new_requests[static_cast<size_t>(worker)];
      ForEachInOrder(&ScanOutput::exposures, &TaskMark::exposures, p,
                     [&](const ExposureRow& e) { FoldExposure(part, static_cast<uint32_t>(p), e, names, mine); });
      ForEachInOrder(&ScanOutput::outcomes, &TaskMark::outcomes, p, [&](const OutcomeRow& o, size_t w, size_t i) {
        FoldOutcome(part, o, BlockOf(scans_[w].outcome_blocks, p, i));
      });
    });
    log.Mark("fold units");
    // (b) Requests, per request partition; resolved[q][p]: outcomes of q for unit partition p,
    // their exposure set (resolved[q] sized when q resolves one).
    std::vector<std::vector<std::vector<State::Outcome>>> resolved(kPartitions);
    common::ParallelFor(threads, kPartitions, [&](int, size_t q) {
      std::vector<const std::vector<NewRequest>*> news;
      for (const auto& w : new_requests) news.push_back(&w[q]);
      bool any = !f.requests[q].pending.empty();
      for (const auto* n : news) any |= !n->empty();
      for (const auto& scan : scans_) any |= !scan.request_outcomes[q].empty();
      if (any) IndexRequests(q, news, resolved[q]);
    });
    new_requests.clear();
    log.Mark("requests");
    // (c) and (d): per unit partition, the resolved outcomes linked (in request partition
    // order), then the touched units recomputed.
    std::vector<Delta> deltas(kPartitions);
    common::ParallelFor(threads, kPartitions, [&](int, size_t p) {
      State::Part& part = f.parts[p];
      for (auto& q : resolved) {
        if (q.empty()) continue;
        for (const State::Outcome& o : q[p]) {
          const auto index = static_cast<uint32_t>(part.outcomes.size());
          part.outcomes.push_back(o);
          const uint32_t unit = part.exposures[o.exposure].unit;
          Append(part.units[unit].request_outcomes, index, part.outcomes);
          MarkDirty(part, unit);
        }
        std::vector<State::Outcome>().swap(q[p]);
      }
      for (uint32_t unit : part.dirty) Recompute(part, unit, deltas[p]);
      part.dirty.clear();
    });
    log.Mark("recompute");
    // (e) The deltas applied: everything taken away first (a unit comes back with the same key).
    AnalysisState& stats = *f.stats;
    std::vector<int> state_arm(arms_.arms().size(), -1);
    auto arm_of = [&](int pair) {
      int& a = state_arm[static_cast<size_t>(pair)];
      if (a < 0) a = StateArm(static_cast<uint32_t>(pair));
      return a;
    };
    size_t added = 0, added_predictions = 0;
    for (Delta& d : deltas) {
      for (const auto& [ts, key] : d.removed) stats.RemoveUnit(ts, key);
      for (const ScoredPrediction& x : d.removed_predictions) stats.AddPrediction(arm_of(x.arm), x.score, x.label, -1);
      added += d.added.size();
      added_predictions += d.added_predictions.size();
      f.counts.attributed += d.counts.attributed;
      f.counts.before_exposure += d.counts.before_exposure;
      f.counts.after_window += d.counts.after_window;
      f.counts.covariate += d.counts.covariate;
    }
    std::vector<UnitObservation> units;
    std::vector<ScoredPrediction> predictions;
    units.reserve(added);
    predictions.reserve(added_predictions);
    for (Delta& d : deltas) {
      for (UnitObservation& u : d.added) {
        u.arm = arm_of(u.arm);
        units.push_back(std::move(u));
      }
      for (ScoredPrediction& x : d.added_predictions) {
        x.arm = arm_of(x.arm);
        predictions.push_back(x);
      }
      d = Delta();
    }
    stats.AddUnits(units, threads);
    stats.AddPredictions(predictions, threads);
    log.Mark("statistics");
    int64_t exposures = 0, pending = 0, multiple_arm_units = 0;
    for (const State::Part& part : f.parts) {
      exposures += static_cast<int64_t>(part.exposures.size());
      pending += part.pending;
      multiple_arm_units += part.multiple_arm_units;
    }
    for (const State::RequestPart& rq : f.requests) pending += rq.pending_count;
    if (exposures == 0) {
      return absl::NotFoundError(StrCat("no exposures for experiment '", experiment_, "' in ", reader_.uri()));
    }
    // The arms as a full read lays them out (SortArms reads the exposures per pair from scans_).
    scans_.assign(1, ScanOutput());
    scans_[0].arm_exposures = f.arm_exposures;
    SortArms();
    input_.state = f.stats;
    input_.state_arms.assign(input_.arms.size(), -1);
    for (size_t a = 0; a < input_.arms.size(); ++a) {
      auto it = std::find(f.state_arm_names.begin(), f.state_arm_names.end(), input_.arms[a].name);
      if (it != f.state_arm_names.end()) input_.state_arms[a] = static_cast<int>(it - f.state_arm_names.begin());
    }
    AnalysisInput::OutcomeCounts counts = f.counts;
    counts.unknown_unit = pending;
    input_.outcomes = counts;
    input_.multiple_exposure_units = multiple_arm_units;
    // Shadowed requests' labels, as ProcessPartition gives them.
    absl::flat_hash_map<uint64_t, int> shadow_labels;
    if (!shadows_.comparable_keys.empty() && input_.metrics[0].kind == MetricKind::kBinary) {
      for (uint64_t key : shadows_.comparable_keys) {
        const auto& index = f.requests[PartitionOf(key)].index;
        auto it = index.find(key);
        if (it == index.end()) continue;
        const State::Exposure& x = f.parts[it->second.part].exposures[it->second.exposure];
        if (x.label >= 0) shadow_labels.emplace(key, x.label);
      }
    }
    PairShadows(shadow_labels);
    return std::move(input_);
  }

  // ---- 1. Scan ----------------------------------------------------------------------------

  // The store's scan (events::EventReader) cut into tasks that the workers take in turn, each
  // worker's events going to its own ScanOutput.
  absl::Status Scan() {
    events::ScanRequest request;
    request.experiment = experiment_;
    request.since_us = since_us_;
    // A covariate is measured before the first exposure, so its outcomes are read from the
    // start; AddOutcome drops the metrics' own outcomes before since_us.
    if (!input_.covariates.empty()) request.outcomes_since_us = 0;
    request.metrics = names_;
    request.workers = workers_;
    request.rows_per_chunk = rows_per_chunk_;
    request.use_blocks = use_blocks_;
    if (follow_) request.after = follow_->cursor;
    ABGATE_ASSIGN_OR_RETURN(auto scan, reader_.ScanEvents(request));
    incremental_ = scan->incremental();
    cursor_ = scan->cursor();
    if (follow_ && !incremental_) follow_->Clear();  // everything again: forget what was kept
    Reserve(scan->expected_exposures(), scan->expected_outcomes());
    std::vector<Visitor> visitors;
    visitors.reserve(scans_.size());
    for (auto& out : scans_) visitors.push_back(Visitor(this, &out));
    ScanChunks(scan->tasks(), [&](ScanOutput& out, size_t worker, size_t task) {
      out.status = scan->Run(task, static_cast<int>(worker), visitors[worker]);
    });
    return absl::OkStatus();
  }

  // Takes a worker's batches into its ScanOutput.
  class Visitor : public events::EventVisitor {
   public:
    Visitor(StoreReader* reader, ScanOutput* out) : reader_(reader), out_(out) {}

    void Exposures(const events::ExposureBatch& batch) override {
      // The batch's arms resolved when first used (an arm with no event here is not one seen).
      arms_.assign(batch.arms.size(), kNone);
      for (const events::ExposureKeys& e : batch.rows) {
        uint32_t& arm = arms_[e.arm];
        if (arm == kNone) {
          const events::BatchArm& a = batch.arms[e.arm];
          arm = reader_->ResolveArm(*out_, a.name, a.model_version, a.position);
        }
        reader_->AddExposure(*out_, arm, e.request_key, e.has_unit, e.unit_key, e.ts_us, e.scored, e.score,
                             e.assignment_probability);
      }
    }

    void Outcomes(const events::OutcomeBatch& batch) override {
      const auto& names = reader_->names_;
      metrics_.resize(batch.metrics.size());
      for (size_t b = 0; b < batch.metrics.size(); ++b) {
        uint32_t j = 0;
        while (j < names.size() && names[j] != batch.metrics[b]) ++j;
        metrics_[b] = j == names.size() ? kNone : j;
      }
      for (const events::OutcomeKeys& o : batch.rows) {
        const uint32_t j = metrics_[o.metric];
        if (j != kNone) reader_->AddOutcome(*out_, j, o.by_request, o.key, o.value, o.ts_us, batch.block);
      }
    }

   private:
    StoreReader* reader_;
    ScanOutput* out_;
    std::vector<uint32_t> arms_, metrics_;  // batch index → ArmTable / outcome name index (names_)
  };

  // The (arm, version) pair's index in arms_, through the worker's cache. `position` orders
  // first sightings (a rowid).
  uint32_t ResolveArm(ScanOutput& out, std::string_view name, std::string_view model_version, int64_t position) {
    for (const auto& [cached, version, index] : out.arm_cache) {
      if (cached == name && version == model_version) return index;
    }
    const uint32_t arm = arms_.Find(name, model_version, position);
    out.arm_cache.emplace_back(std::string(name), std::string(model_version), arm);
    if (out.arm_exposures.size() <= arm) out.arm_exposures.resize(arm + 1);
    return arm;
  }

  void AddExposure(ScanOutput& out, uint32_t arm, uint64_t request_key, bool has_unit, uint64_t unit_key, int64_t ts,
                   bool scored, double score, float assignment_probability) {
    ++out.arm_exposures[arm];
    // Request-level analysis, and units without an id, use the request as the unit.
    if (request_units_ || !has_unit) unit_key = RequestUnitKey(request_key);
    out.exposures[PartitionOf(unit_key)].push_back(
        {unit_key, request_key, ts, scored ? score : std::numeric_limits<double>::quiet_NaN(), arm,
         assignment_probability});
  }

  // Attributed by request id when the outcome has one, else by unit id.
  // `metric` indexes names_. Before since_us only a covariate's outcomes are kept.
  void AddOutcome(ScanOutput& out, uint32_t metric, bool by_request, uint64_t key, double value, int64_t ts,
                  int64_t block) {
    if (ts < since_us_ && slots_[metric].pre == kNone) return;
    (by_request ? out.request_outcomes : out.outcomes)[PartitionOf(key)].push_back({key, ts, value, metric, kNone});
    if (follow_ && cursor_.valid) {  // set before the scan's tasks run
      auto& blocks = by_request ? out.request_outcome_blocks : out.outcome_blocks;
      if (blocks.empty()) blocks.resize(kPartitions);
      blocks[PartitionOf(key)].push_back(block);
    }
  }

  // Sizes every partition from the expected number of events (the blocks' counts, or a bound
  // from the tables' rowid spans or pages when the store holds other experiments too;
  // untouched reserved pages cost no memory), so the 10M-row vectors do not grow by copying.
  void Reserve(int64_t exposure_rows, int64_t outcome_rows) {
    const auto per = [&](int64_t rows) {
      // Workers share the chunks about evenly; a worker past its share grows by copying.
      return static_cast<size_t>(std::clamp<int64_t>(rows, 0, int64_t{1} << 25) * 3 / (2 * workers_ * kPartitions)) + 8;
    };
    for (auto& scan : scans_) {
      for (auto& v : scan.exposures) v.reserve(per(exposure_rows));
      for (auto& v : scan.outcomes) v.reserve(per(outcome_rows));
    }
  }

  // Arms in name order, whatever order the scan met them in, so reports are deterministic;
  // each arm's versions in the order they first served it.
  void SortArms() {
    auto& seen = arms_.arms();
    std::vector<uint32_t> order(seen.size());
    for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
      return seen[a].name != seen[b].name ? seen[a].name < seen[b].name : seen[a].first_rowid < seen[b].first_rowid;
    });
    arm_index_.assign(seen.size(), 0);
    for (uint32_t pair : order) {
      if (input_.arms.empty() || input_.arms.back().name != seen[pair].name) {
        input_.arms.push_back(ArmInfo{seen[pair].name, "", 0, 0});
      }
      ArmInfo& info = input_.arms.back();
      arm_index_[pair] = static_cast<int>(input_.arms.size() - 1);
      int64_t exposures = 0;
      for (const auto& scan : scans_) {
        if (pair < scan.arm_exposures.size()) exposures += scan.arm_exposures[pair];
      }
      info.exposures += exposures;
      info.versions.push_back({seen[pair].model_version, exposures});
      StrAppend(&info.model_version, info.model_version.empty() ? "" : ",", seen[pair].model_version);
    }
  }

  // Where each scan task's rows begin in its worker's partitions. Reading every partition in
  // task order (= rowid order) instead of worker order makes the result independent of which
  // worker happened to take which task: sums come out the same to the last bit on every run.
  struct TaskMark {
    size_t worker = 0;
    std::array<uint32_t, kPartitions> exposures{}, outcomes{}, request_outcomes{};
  };

  // Runs fn(output, worker, task) for every scan task on the workers, each task's rows going to
  // its worker's output; a worker whose output holds an error skips the rest. Records where each
  // task's rows begin, for ForEachInOrder.
  template <typename Fn>
  void ScanChunks(size_t tasks, Fn&& fn) {
    marks_.resize(tasks);
    common::ParallelFor(workers_, tasks, [&](int worker, size_t task) {
      const auto w = static_cast<size_t>(worker);
      MarkTask(task, w);
      if (scans_[w].status.ok()) fn(scans_[w], w, task);
    });
  }

  void MarkTask(size_t task, size_t worker) {
    TaskMark& m = marks_[task];
    m.worker = worker;
    const ScanOutput& out = scans_[worker];
    for (size_t p = 0; p < kPartitions; ++p) {
      m.exposures[p] = static_cast<uint32_t>(out.exposures[p].size());
      m.outcomes[p] = static_cast<uint32_t>(out.outcomes[p].size());
      m.request_outcomes[p] = static_cast<uint32_t>(out.request_outcomes[p].size());
    }
  }

  // Calls fn(row) (or fn(row, worker, index in its worker's partition)) for the rows of one
  // kind in partition p, in task order.
  template <typename Row, typename Fn>
  void ForEachInOrder(std::vector<std::vector<Row>> ScanOutput::*kind, std::array<uint32_t, kPartitions> TaskMark::*start,
                      size_t p, Fn&& fn) const {
    for (size_t t = 0; t < marks_.size(); ++t) {
      const TaskMark& m = marks_[t];
      const std::vector<Row>& rows = (scans_[m.worker].*kind)[p];
      size_t end = rows.size();
      for (size_t next = t + 1; next < marks_.size(); ++next) {
        if (marks_[next].worker == m.worker) {
          end = (marks_[next].*start)[p];
          break;
        }
      }
      for (size_t i = (m.*start)[p]; i < end; ++i) {
        if constexpr (std::is_invocable_v<Fn&, const Row&, size_t, size_t>) {
          fn(rows[i], m.worker, i);
        } else {
          fn(rows[i]);
        }
      }
    }
  }

  // ---- 2. Request join ----------------------------------------------------------------------

  // Moves every outcome that names a request to its unit's partition (`joined_`), with the
  // exposure's index there. Returns how many outcomes named a request.
  size_t JoinRequests() {
    size_t by_request = 0;
    for (const auto& scan : scans_) {
      for (const auto& v : scan.request_outcomes) by_request += v.size();
    }
    request_unknown_.assign(static_cast<size_t>(workers_), 0);
    if (by_request == 0) return 0;

    // Every exposure by request key: (request key, unit key, partition, index there).
    struct RequestRef {
      uint64_t request_key;
      uint64_t unit_key;
      uint32_t partition;
      uint32_t index;
    };
    std::vector<std::vector<std::vector<RequestRef>>> refs(static_cast<size_t>(workers_),
                                                           std::vector<std::vector<RequestRef>>(kPartitions));
    common::ParallelFor(workers_, kPartitions, [&](int worker, size_t p) {
      auto& mine = refs[static_cast<size_t>(worker)];
      uint32_t index = 0;
      ForEachInOrder(&ScanOutput::exposures, &TaskMark::exposures, p, [&](const ExposureRow& e) {
        mine[PartitionOf(e.request_key)].push_back({e.request_key, e.unit_key, static_cast<uint32_t>(p), index++});
      });
    });
    // joined_[q][p]: the outcomes of request partition q that belong to unit partition p, so
    // partition p can take them in a fixed order.
    joined_.assign(kPartitions, std::vector<std::vector<OutcomeRow>>(kPartitions));
    common::ParallelFor(workers_, kPartitions, [&](int worker, size_t q) {
      absl::flat_hash_map<uint64_t, const RequestRef*> requests;
      size_t n = 0;
      for (const auto& w : refs) n += w[q].size();
      requests.reserve(n);
      for (const auto& w : refs) {
        for (const RequestRef& r : w[q]) {
          // A request id served twice (not something the gateway does): its first exposure.
          auto [it, inserted] = requests.try_emplace(r.request_key, &r);
          if (!inserted && std::pair(r.partition, r.index) < std::pair(it->second->partition, it->second->index)) {
            it->second = &r;
          }
        }
      }
      auto& out = joined_[q];
      ForEachInOrder(&ScanOutput::request_outcomes, &TaskMark::request_outcomes, q, [&](const OutcomeRow& o) {
        auto it = requests.find(o.key);
        if (it == requests.end()) {
          ++request_unknown_[static_cast<size_t>(worker)];
          return;
        }
        out[it->second->partition].push_back({it->second->unit_key, o.ts, o.value, o.metric, it->second->index});
      });
    });
    return by_request;
  }

  // ---- 3. Units, attribution and predictions, partition by partition ------------------------

  struct UnitState {
    int64_t first_ts;
    uint32_t arm;
    float assignment_probability;  // of the first exposure (bandits: request units, one exposure)
    bool multiple_arms;
    uint64_t key;
  };

  // Reused across the partitions a worker takes.
  struct Scratch {
    absl::flat_hash_map<uint64_t, uint32_t> index;  // unit key → units[]
    std::vector<UnitState> units;
    std::vector<double> values;     // units × metrics
    std::vector<uint32_t> row_unit; // exposure row → units[]
    std::vector<double> request_label;
    std::vector<double> request_values;  // exposures × metrics, NaN: no outcome named it
  };

  void ProcessPartition(size_t p, Scratch& s, PartitionResult& r) {
    const size_t m = input_.metrics.size() + input_.covariates.size();  // values per unit
    size_t n = 0;
    for (const auto& scan : scans_) n += scan.exposures[p].size();
    s.index.clear();
    s.index.reserve(n);
    s.units.clear();
    s.row_unit.resize(n);
    size_t i = 0;
    ForEachInOrder(&ScanOutput::exposures, &TaskMark::exposures, p, [&](const ExposureRow& e) {
      auto [it, inserted] = s.index.try_emplace(e.unit_key, static_cast<uint32_t>(s.units.size()));
      if (inserted) {
        s.units.push_back({e.ts, e.arm, e.assignment_probability, false, e.unit_key});
      } else {
        UnitState& u = s.units[it->second];
        // Versions of one arm are one arm (an alias that moved): compare arms, not pairs.
        u.multiple_arms |= arm_index_[u.arm] != arm_index_[e.arm];
        if (e.ts < u.first_ts) {
          u.first_ts = e.ts;
          u.assignment_probability = e.assignment_probability;
        }
      }
      s.row_unit[i++] = it->second;
    });
    s.values.assign(s.units.size() * m, 0.0);
    bool any_request_labels = false;
    for (const auto& q : joined_) any_request_labels |= !q[p].empty();
    if (any_request_labels) s.request_label.assign(n, -1);
    if (want_request_labels_ && any_request_labels) s.request_values.assign(n * m, std::numeric_limits<double>::quiet_NaN());

    // An outcome counts for its unit when it falls in [first exposure, first exposure +
    // window]; otherwise it is kept in the store and counted as unattributed here.
    // A CUPED covariate is the sum of its outcomes before the first exposure (a pre-period
    // measure the treatment cannot have moved).
    auto attribute = [&](const OutcomeRow& o, uint32_t u) {
      const int64_t first = s.units[u].first_ts;
      const Slots slot = slots_[o.metric];
      if (o.ts < first) {
        if (slot.pre != kNone) {
          s.values[u * m + slot.pre] += o.value;
          ++r.counts.covariate;
        } else {
          ++r.counts.before_exposure;
        }
        return;
      }
      if (slot.post == kNone) return;  // a covariate's own outcomes after the exposure: not used
      if (window_us_ > 0 && o.ts > first + window_us_) {
        ++r.counts.after_window;
        return;
      }
      ++r.counts.attributed;
      double& v = s.values[u * m + slot.post];
      v = input_.metrics[slot.post].kind == MetricKind::kBinary ? std::max(v, o.value > 0 ? 1.0 : 0.0) : v + o.value;
      if (o.exposure != kNone && slot.post == 0) {
        s.request_label[o.exposure] = std::max(s.request_label[o.exposure], o.value > 0 ? 1.0 : 0.0);
      }
      if (o.exposure != kNone && !s.request_values.empty()) {  // the same rule, per request
        double& rv = s.request_values[o.exposure * m + o.metric];
        const double before = std::isnan(rv) ? 0.0 : rv;
        rv = input_.metrics[o.metric].kind == MetricKind::kBinary ? std::max(before, o.value > 0 ? 1.0 : 0.0)
                                                                   : before + o.value;
      }
    };
    ForEachInOrder(&ScanOutput::outcomes, &TaskMark::outcomes, p, [&](const OutcomeRow& o) {
      auto it = s.index.find(o.key);
      if (it == s.index.end()) {
        ++r.counts.unknown_unit;
      } else {
        attribute(o, it->second);
      }
    });
    for (const auto& q : joined_) {
      for (const OutcomeRow& o : q[p]) attribute(o, s.row_unit[o.exposure]);
    }

    // Units seen in more than one arm are counted and left out.
    r.units.reserve(s.units.size());
    for (size_t u = 0; u < s.units.size(); ++u) {
      if (s.units[u].multiple_arms) {
        ++r.multiple_arm_units;
        continue;
      }
      r.units.push_back({arm_index_[s.units[u].arm], s.units[u].first_ts,
                         absl::InlinedVector<double, 4>(s.values.begin() + u * m, s.values.begin() + (u + 1) * m),
                         s.units[u].assignment_probability, s.units[u].key});
    }
    // Model quality: each scored request against its own label when an outcome named it, else
    // against its unit's primary binary metric.
    if (input_.metrics[0].kind == MetricKind::kBinary) {
      r.predictions.reserve(n);
      i = 0;
      ForEachInOrder(&ScanOutput::exposures, &TaskMark::exposures, p, [&](const ExposureRow& e) {
        const uint32_t u = s.row_unit[i];
        const double request_label = any_request_labels ? s.request_label[i] : -1;
        ++i;
        if (s.units[u].multiple_arms) return;
        const double label = request_label >= 0 ? request_label : s.values[u * m];
        // A shadowed request: its label, for the paired comparison with the shadow's score.
        if (!shadows_.comparable_keys.empty() && shadows_.comparable_keys.contains(e.request_key)) {
          r.shadow_labels.emplace_back(e.request_key, label > 0 ? 1 : 0);
        }
        if (std::isnan(e.score)) return;
        r.predictions.push_back({arm_index_[e.arm], e.score, label > 0 ? 1 : 0});
      });
    }
    if (want_request_labels_) {
      if (!label_requests_) r.request_labels.reserve(n);
      i = 0;
      ForEachInOrder(&ScanOutput::exposures, &TaskMark::exposures, p, [&](const ExposureRow& e) {
        const size_t row = i++;
        if (label_requests_ && !label_requests_(e.request_key)) return;
        const uint32_t u = s.row_unit[row];
        RequestLabels l{e.request_key, arm_index_[e.arm], s.units[u].first_ts, s.units[u].multiple_arms, false, {}};
        l.values.assign(s.values.begin() + u * m, s.values.begin() + (u + 1) * m);
        if (!s.request_values.empty()) {  // per metric: the request's own outcomes when any named it
          for (size_t j = 0; j < m; ++j) {
            const double rv = s.request_values[row * m + j];
            if (std::isnan(rv)) continue;
            l.values[j] = rv;
            l.by_request = true;
          }
        }
        r.request_labels.push_back(std::move(l));
      });
    }
  }

  void AttributeByPartition() {
    std::vector<PartitionResult> results(kPartitions);
    std::vector<Scratch> scratch(static_cast<size_t>(workers_));
    common::ParallelFor(workers_, kPartitions, [&](int worker, size_t p) {
      ProcessPartition(p, scratch[static_cast<size_t>(worker)], results[p]);
      for (auto& scan : scans_) {  // done with them: the memory goes back before the next partition
        if (follow_) break;  // a follower keeps them
        std::vector<ExposureRow>().swap(scan.exposures[p]);
        std::vector<OutcomeRow>().swap(scan.outcomes[p]);
      }
      for (auto& q : joined_) std::vector<OutcomeRow>().swap(q[p]);
    });
    AnalysisInput::OutcomeCounts counts;
    size_t units = 0, predictions = 0;
    for (const auto& r : results) {
      units += r.units.size();
      predictions += r.predictions.size();
    }
    input_.units.reserve(units);
    input_.predictions.reserve(predictions);
    absl::flat_hash_map<uint64_t, int> shadow_labels;
    for (auto& r : results) {
      for (const auto& [key, label] : r.shadow_labels) shadow_labels.emplace(key, label);
      std::move(r.units.begin(), r.units.end(), std::back_inserter(input_.units));
      input_.predictions.insert(input_.predictions.end(), r.predictions.begin(), r.predictions.end());
      std::move(r.request_labels.begin(), r.request_labels.end(), std::back_inserter(input_.request_labels));
      counts.attributed += r.counts.attributed;
      counts.before_exposure += r.counts.before_exposure;
      counts.after_window += r.counts.after_window;
      counts.unknown_unit += r.counts.unknown_unit;
      counts.covariate += r.counts.covariate;
      input_.multiple_exposure_units += r.multiple_arm_units;
      r = PartitionResult();
    }
    for (int64_t n : request_unknown_) counts.unknown_unit += n;
    input_.outcomes = counts;
    PairShadows(shadow_labels);
  }

  // Shadow traffic (after the scan: its requests' labels pair with it), kept in order
  // (ShadowObservations). A follower whose scan resumed reads only the rows stored since its
  // last read (a store without any: none).
  absl::Status ReadShadowRows() {
    events::ShadowCursor after;
    if (follow_ && incremental_) after = shadows_.cursor;
    auto read = reader_.ReadShadowsAfter(experiment_, since_us_, after);
    if (!read.ok()) return read.status();
    if (!read->incremental) shadows_ = KeptShadows();
    shadows_.cursor = std::move(read->cursor);
    for (const events::ShadowRow& row : read->rows) {
      if (row.score && row.shadow_score && row.status < 300) shadows_.comparable_keys.insert(common::Hash64(row.request_id));
    }
    shadows_.observations.Add(read->rows);
    return absl::OkStatus();
  }

  // The comparable shadow rows whose request has a label, grouped by (served arm, shadow arm)
  // in ShadowObservations' order; and the shadow traffic's summary.
  void PairShadows(const absl::flat_hash_map<uint64_t, int>& labels) {
    const ShadowObservations& shadow = shadows_.observations;
    std::vector<int> group_of(shadow.pairs.size(), -1);
    for (const ShadowObservations::Row& row : shadow.rows) {
      if (!row.comparable()) continue;
      auto label = labels.find(row.request_key);
      if (label == labels.end()) continue;
      int& g = group_of[row.pair];
      if (g < 0) {
        g = static_cast<int>(input_.shadows.size());
        input_.shadows.push_back({shadow.pairs[row.pair].first, shadow.pairs[row.pair].second, {}, {}, {}});
      }
      ShadowPairs& group = input_.shadows[static_cast<size_t>(g)];
      group.scores.push_back(row.score);
      group.shadow_scores.push_back(row.shadow_score);
      group.labels.push_back(label->second);
    }
    if (auto summary = ShadowSummaryOf(shadow)) {
      if (auto typed = ShadowFromJson(boost::json::value(std::move(*summary))); typed.ok()) input_.shadow_summary = *typed;
    }
  }

  EventStoreFollower::State* const follow_;  // null for a one-off read
  ArmTable own_arms_;
  ArmTable& arms_;  // the follower's, or own_arms_
  KeptShadows own_shadows_;
  KeptShadows& shadows_;  // the follower's, or own_shadows_
  events::EventReader& reader_;
  const std::string& experiment_;
  const bool request_units_;
  std::vector<MetricSpec> metrics_;
  // Outcome names read (OutcomeRow::metric indexes them) and where each one's values go: the
  // metric's index for outcomes from the first exposure on, the covariate's value index
  // (metrics + covariate) for outcomes before it; kNone for neither.
  struct Slots {
    uint32_t post, pre;
  };
  std::vector<std::string> names_;
  std::vector<Slots> slots_;
  const int64_t window_us_;
  const int64_t since_us_;
  const int workers_;
  const int64_t rows_per_chunk_;
  const bool use_blocks_;
  const bool want_request_labels_;
  const std::function<bool(uint64_t)> label_requests_;
  std::vector<ScanOutput> scans_;  // one per worker (a follower's kept rows, after Fold)
  bool incremental_ = false;       // the scan read only what was stored after the follower's cursor
  events::ScanCursor cursor_;
  std::vector<int> arm_index_;  // ArmTable index → index in input_.arms
  std::vector<TaskMark> marks_;  // one per scan task
  std::vector<std::vector<std::vector<OutcomeRow>>> joined_;  // [request partition][unit partition]
  std::vector<int64_t> request_unknown_;                      // [worker] outcomes naming no exposed request
  AnalysisInput input_;
};

}  // namespace

absl::StatusOr<AnalysisInput> ReadEventStore(events::EventReader& reader, const std::string& experiment,
                                             const std::string& unit, std::vector<MetricSpec> metrics,
                                             int64_t attribution_window_us, int64_t since_us, ReadTuning tuning) {
  if (unit != "user" && unit != "request") return absl::InvalidArgumentError("unit must be user or request");
  if (metrics.empty()) return absl::InvalidArgumentError("at least one metric is needed");
  return StoreReader(reader, experiment, unit, std::move(metrics), attribution_window_us, since_us, tuning).Read();
}

absl::StatusOr<AnalysisInput> ReadEventStore(const std::string& store_uri, const std::string& experiment,
                                             const std::string& unit, std::vector<MetricSpec> metrics,
                                             int64_t attribution_window_us, int64_t since_us, ReadTuning tuning) {
  ABGATE_ASSIGN_OR_RETURN(auto reader, events::OpenEventReader(store_uri));
  return ReadEventStore(*reader, experiment, unit, std::move(metrics), attribution_window_us, since_us, tuning);
}

EventStoreFollower::EventStoreFollower(std::string experiment, std::string unit, std::vector<MetricSpec> metrics,
                                       int64_t attribution_window_us, int64_t since_us)
    : experiment_(std::move(experiment)),
      unit_(std::move(unit)),
      metrics_(std::move(metrics)),
      window_us_(attribution_window_us),
      since_us_(since_us),
      state_(std::make_unique<State>()) {}

EventStoreFollower::~EventStoreFollower() = default;

bool EventStoreFollower::Follows(const std::string& unit, const std::vector<MetricSpec>& metrics,
                                 int64_t attribution_window_us, int64_t since_us) const {
  if (unit != unit_ || metrics.size() != metrics_.size() || attribution_window_us != window_us_ ||
      since_us != since_us_) {
    return false;
  }
  for (size_t i = 0; i < metrics.size(); ++i) {
    if (metrics[i].name != metrics_[i].name || metrics[i].kind != metrics_[i].kind ||
        metrics[i].cuped_covariate != metrics_[i].cuped_covariate) {
      return false;
    }
  }
  return true;
}

absl::StatusOr<AnalysisInput> EventStoreFollower::Read(events::EventReader& reader, ReadTuning tuning) {
  if (unit_ != "user" && unit_ != "request") return absl::InvalidArgumentError("unit must be user or request");
  if (metrics_.empty()) return absl::InvalidArgumentError("at least one metric is needed");
  return StoreReader(reader, experiment_, unit_, metrics_, window_us_, since_us_, tuning, state_.get()).Read();
}

int64_t EventStoreFollower::kept_events() const {
  size_t n = 0;
  for (const State::Part& part : state_->parts) n += part.exposures.size() + part.outcomes.size();
  for (const State::RequestPart& rq : state_->requests) n += static_cast<size_t>(rq.pending_count);
  return static_cast<int64_t>(n + state_->shadows.observations.rows.size());
}

namespace {
// A flat hash map's memory: a slot and a control byte per entry of its capacity.
template <typename Map>
size_t MapBytes(const Map& map) {
  return map.capacity() * (sizeof(typename Map::value_type) + 1);
}
}  // namespace

int64_t EventStoreFollower::kept_bytes() const {
  size_t bytes = sizeof(State) + state_->parts.capacity() * sizeof(State::Part) +
                 state_->requests.capacity() * sizeof(State::RequestPart);
  for (const State::Part& part : state_->parts) {
    bytes += part.exposures.capacity() * sizeof(State::Exposure) + part.outcomes.capacity() * sizeof(State::Outcome) +
             part.units.capacity() * sizeof(State::Unit) + MapBytes(part.unit_index) + MapBytes(part.pending_units) +
             part.dirty.capacity() * sizeof(uint32_t);
  }
  for (const State::RequestPart& rq : state_->requests) {
    bytes += MapBytes(rq.index) + MapBytes(rq.pending) + rq.outcomes.capacity() * sizeof(State::Outcome);
  }
  const KeptShadows& shadows = state_->shadows;
  bytes += shadows.observations.rows.capacity() * sizeof(ShadowObservations::Row) + MapBytes(shadows.comparable_keys);
  if (state_->stats) bytes += static_cast<size_t>(state_->stats->memory_bytes());
  return static_cast<int64_t>(bytes);
}

bool EventStoreFollower::last_read_incremental() const { return state_->last_incremental; }

bool EventStoreFollower::can_resume() const { return state_->cursor.valid; }

}  // namespace abgate::analysis

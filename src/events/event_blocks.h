// Event blocks: the analysis copy of exposures and outcomes, written by the SQLite event sink
// in the same transaction as the rows (tables exposure_blocks and outcome_blocks, one block
// per experiment per written batch). A block packs a batch into columns of fixed-width numbers
// with ids reduced to stable 64-bit keys (common::Hash64), so `abgate analyze` reads 10M events
// as a few thousand blobs instead of stepping SQLite through 10M rows (see
// src/analysis/event_store_reader.cc). Only in-experiment exposures are kept, with their
// assigned arm — exactly what the analysis reads.
//
// Layout (little-endian), version 1:
//   exposures: u8 version, u32 n, u8 arms, arms × (u16 len, name, u16 len, model version; one
//              entry per arm and version served in the block), then columns u64 unit_key[n],
//              u64 request_key[n], i64 ts[n], f64 score[n], u8 arm[n], u8 flags[n]
//              (bit 0: has a unit id, bit 1: scored)
//              version 2 (only blocks with a bandit's exposures, so older readers still read
//              every other block): the same, then f32 assignment_probability[n] (0 = none)
//   outcomes:  u8 version, u32 n, u8 metrics, metrics × (u16 len, name), then columns
//              u64 key[n], i64 ts[n], f64 value[n], u8 metric[n], u8 flags[n]
//              (bit 0: key is the request id's, else the unit id's)
// Pure; builders and readers are thread-compatible values.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace abgate::events {

inline constexpr uint8_t kBlockVersion = 1;
inline constexpr uint8_t kExposureBlockVersionWithProbability = 2;

// SQLite stores: in a query over block_coverage, the current last rowid of the row's source
// table. The blocks hold every row while `intact` and last_rowid equals it (see
// sqlite_event_sink.cc).
inline constexpr const char* kCoverageCurrentRowid =
    "CASE source WHEN 'exposures' THEN (SELECT coalesce(max(rowid), 0) FROM exposures) "
    "ELSE (SELECT coalesce(max(rowid), 0) FROM outcomes) END";
inline constexpr size_t kMaxBlockNames = 255;  // arms or metrics per block

class ExposureBlockBuilder {
 public:
  // False (nothing added) when the block already names kMaxBlockNames arms and `arm` is a new
  // one: Finish this block and add to the next.
  // `probability`: a bandit's assignment probability (Exposure::assignment_probability).
  bool Add(std::string_view request_id, std::string_view unit_id, std::string_view arm,
           std::string_view model_version, int64_t ts_us, std::optional<double> score,
           std::optional<double> probability = std::nullopt);
  size_t size() const { return ts_.size(); }
  int64_t min_ts() const { return min_ts_; }
  int64_t max_ts() const { return max_ts_; }
  // The encoded block; the builder is empty afterwards.
  std::string Finish();

 private:
  std::vector<std::pair<std::string, std::string>> arms_;  // name, model version
  std::vector<uint64_t> unit_keys_, request_keys_;
  std::vector<int64_t> ts_;
  std::vector<double> scores_;
  std::vector<uint8_t> arm_, flags_;
  std::vector<float> probabilities_;  // written (version 2) only when one is non-zero
  bool any_probability_ = false;
  int64_t min_ts_ = 0, max_ts_ = 0;
};

class OutcomeBlockBuilder {
 public:
  // The outcome is keyed by its request id when it has one, else by its unit id (one of them
  // must be non-empty). False when the block is full of metric names, as above.
  bool Add(std::string_view request_id, std::string_view unit_id, std::string_view metric, double value, int64_t ts_us);
  size_t size() const { return ts_.size(); }
  int64_t min_ts() const { return min_ts_; }
  int64_t max_ts() const { return max_ts_; }
  std::string Finish();

 private:
  std::vector<std::string> metrics_;
  std::vector<uint64_t> keys_;
  std::vector<int64_t> ts_;
  std::vector<double> values_;
  std::vector<uint8_t> metric_, flags_;
  int64_t min_ts_ = 0, max_ts_ = 0;
};

// A finished block, ready to store in `exposure_blocks` or `outcome_blocks`.
struct EncodedBlock {
  bool outcomes = false;  // which table
  std::string experiment;
  int64_t min_ts = 0, max_ts = 0;
  int64_t rows = 0;         // events in `data`
  int64_t source_rows = 0;  // rows of the source table it accounts for (also out-of-experiment exposures)
  std::string data;
};

// One written batch's events grouped into blocks by experiment (more than one when a block runs
// out of names). Feed it the rows the batch stored, in order.
class BlockSet {
 public:
  // `in_experiment` false: counted in source_rows only (the analysis never reads those).
  void AddExposure(std::string_view experiment, std::string_view request_id, std::string_view unit_id,
                   std::string_view arm, std::string_view model_version, int64_t ts_us, std::optional<double> score,
                   bool in_experiment = true, std::optional<double> probability = std::nullopt);
  // An outcome naming neither a request nor a unit is counted in source_rows only.
  void AddOutcome(std::string_view experiment, std::string_view request_id, std::string_view unit_id,
                  std::string_view metric, double value, int64_t ts_us);
  // Every block, in the order they filled; the set is empty afterwards. Blocks without events
  // (a batch of out-of-experiment rows) only when `keep_empty`.
  std::vector<EncodedBlock> Finish(bool keep_empty = false);

 private:
  template <typename Builder>
  struct Open {
    std::string experiment;
    Builder builder;
    int64_t source_rows = 0;
  };
  template <typename Builder>
  static Open<Builder>& For(std::vector<Open<Builder>>& open, std::string_view experiment);
  template <typename Builder>
  void Close(Open<Builder>& open, bool outcomes, bool keep_empty);

  std::vector<Open<ExposureBlockBuilder>> exposures_;
  std::vector<Open<OutcomeBlockBuilder>> outcomes_;
  std::vector<EncodedBlock> done_;
};

namespace internal {
template <typename T>
T Load(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}
}  // namespace internal

// A parsed exposure block; views into the blob, which must outlive it.
class ExposureBlock {
 public:
  // InvalidArgument for a blob that is not a well-formed version-1 block.
  static absl::StatusOr<ExposureBlock> Parse(std::string_view blob);
  // The block views the blob: a temporary string would dangle, so it does not compile.
  static absl::StatusOr<ExposureBlock> Parse(std::string&& blob) = delete;
  struct Arm {
    std::string_view name, model_version;
  };
  const std::vector<Arm>& arms() const { return arms_; }
  size_t size() const { return n_; }
  uint64_t unit_key(size_t i) const { return internal::Load<uint64_t>(unit_keys_ + 8 * i); }
  uint64_t request_key(size_t i) const { return internal::Load<uint64_t>(request_keys_ + 8 * i); }
  int64_t ts(size_t i) const { return internal::Load<int64_t>(ts_ + 8 * i); }
  double score(size_t i) const { return internal::Load<double>(scores_ + 8 * i); }
  uint8_t arm(size_t i) const { return static_cast<uint8_t>(arm_[i]); }
  bool has_unit(size_t i) const { return flags_[i] & 1; }
  bool scored(size_t i) const { return flags_[i] & 2; }
  // The bandit's assignment probability; 0 when none was recorded (or a version-1 block).
  float probability(size_t i) const { return probabilities_ ? internal::Load<float>(probabilities_ + 4 * i) : 0.0f; }

 private:
  std::vector<Arm> arms_;
  size_t n_ = 0;
  const char *unit_keys_ = nullptr, *request_keys_ = nullptr, *ts_ = nullptr, *scores_ = nullptr, *arm_ = nullptr,
             *flags_ = nullptr, *probabilities_ = nullptr;
};

class OutcomeBlock {
 public:
  static absl::StatusOr<OutcomeBlock> Parse(std::string_view blob);
  static absl::StatusOr<OutcomeBlock> Parse(std::string&& blob) = delete;  // as ExposureBlock's
  const std::vector<std::string_view>& metrics() const { return metrics_; }
  size_t size() const { return n_; }
  uint64_t key(size_t i) const { return internal::Load<uint64_t>(keys_ + 8 * i); }
  int64_t ts(size_t i) const { return internal::Load<int64_t>(ts_ + 8 * i); }
  double value(size_t i) const { return internal::Load<double>(values_ + 8 * i); }
  uint8_t metric(size_t i) const { return static_cast<uint8_t>(metric_[i]); }
  bool by_request(size_t i) const { return flags_[i] & 1; }

 private:
  std::vector<std::string_view> metrics_;
  size_t n_ = 0;
  const char *keys_ = nullptr, *ts_ = nullptr, *values_ = nullptr, *metric_ = nullptr, *flags_ = nullptr;
};

}  // namespace abgate::events

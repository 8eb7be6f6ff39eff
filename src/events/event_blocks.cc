#include "events/event_blocks.h"

#include <algorithm>
#include <utility>

#include "common/hash64.h"
#include "common/strings.h"

namespace abgate::events {
namespace {

void Put(std::string& out, const void* p, size_t n) { out.append(static_cast<const char*>(p), n); }

template <typename T>
void PutValue(std::string& out, T v) {
  Put(out, &v, sizeof v);
}

void PutString(std::string& out, std::string_view s) {
  PutValue(out, static_cast<uint32_t>(s.size()));
  out.append(s);
}

template <typename T>
void PutColumn(std::string& out, const std::vector<T>& column) {
  Put(out, column.data(), column.size() * sizeof(T));
}

// Reads a block front to back; every read is bounds-checked.
class Cursor {
 public:
  explicit Cursor(std::string_view data) : data_(data) {}
  bool Take(size_t n, const char*& p) {
    if (data_.size() - pos_ < n) return false;
    p = data_.data() + pos_;
    pos_ += n;
    return true;
  }
  template <typename T>
  bool Value(T& v) {
    const char* p;
    if (!Take(sizeof(T), p)) return false;
    v = internal::Load<T>(p);
    return true;
  }
  bool String(std::string_view& s) {
    uint32_t n;
    const char* p;
    if (!Value(n) || !Take(n, p)) return false;
    s = std::string_view(p, n);
    return true;
  }
  bool AtEnd() const { return pos_ == data_.size(); }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

absl::Status Corrupt(const char* what) { return absl::InvalidArgumentError(StrCat("corrupt ", what, " block")); }

void Widen(int64_t ts, size_t size_before, int64_t& min_ts, int64_t& max_ts) {
  min_ts = size_before == 0 ? ts : std::min(min_ts, ts);
  max_ts = size_before == 0 ? ts : std::max(max_ts, ts);
}

}  // namespace

bool ExposureBlockBuilder::Add(std::string_view request_id, std::string_view unit_id, std::string_view arm,
                               std::string_view model_version, int64_t ts_us, std::optional<double> score,
                               std::optional<double> probability) {
  // One dictionary entry per (arm, model version): an arm defined by alias can be served by a
  // new version mid-batch, and each version keeps its own exposures.
  size_t index = 0;
  while (index < arms_.size() && (arms_[index].first != arm || arms_[index].second != model_version)) ++index;
  if (index == arms_.size()) {
    if (index == kMaxBlockNames) return false;
    arms_.emplace_back(std::string(arm), std::string(model_version));
  }
  Widen(ts_us, ts_.size(), min_ts_, max_ts_);
  unit_keys_.push_back(unit_id.empty() ? 0 : common::Hash64(unit_id));
  request_keys_.push_back(common::Hash64(request_id));
  ts_.push_back(ts_us);
  scores_.push_back(score.value_or(0.0));
  arm_.push_back(static_cast<uint8_t>(index));
  flags_.push_back(static_cast<uint8_t>((unit_id.empty() ? 0 : 1) | (score ? 2 : 0)));
  probabilities_.push_back(static_cast<float>(probability.value_or(0.0)));
  any_probability_ = any_probability_ || probability.has_value();
  return true;
}

std::string ExposureBlockBuilder::Finish() {
  std::string out;
  const size_t n = ts_.size();
  out.reserve(16 + arms_.size() * 32 + n * 38);
  PutValue(out, any_probability_ ? kExposureBlockVersionWithProbability : kBlockVersion);
  PutValue(out, static_cast<uint32_t>(n));
  PutValue(out, static_cast<uint8_t>(arms_.size()));
  for (const auto& [name, version] : arms_) {
    PutString(out, name);
    PutString(out, version);
  }
  PutColumn(out, unit_keys_);
  PutColumn(out, request_keys_);
  PutColumn(out, ts_);
  PutColumn(out, scores_);
  PutColumn(out, arm_);
  PutColumn(out, flags_);
  if (any_probability_) PutColumn(out, probabilities_);
  *this = ExposureBlockBuilder();
  return out;
}

bool OutcomeBlockBuilder::Add(std::string_view request_id, std::string_view unit_id, std::string_view metric,
                              double value, int64_t ts_us) {
  size_t index = 0;
  while (index < metrics_.size() && metrics_[index] != metric) ++index;
  if (index == metrics_.size()) {
    if (index == kMaxBlockNames) return false;
    metrics_.emplace_back(metric);
  }
  Widen(ts_us, ts_.size(), min_ts_, max_ts_);
  const bool by_request = !request_id.empty();
  keys_.push_back(common::Hash64(by_request ? request_id : unit_id));
  ts_.push_back(ts_us);
  values_.push_back(value);
  metric_.push_back(static_cast<uint8_t>(index));
  flags_.push_back(by_request ? 1 : 0);
  return true;
}

std::string OutcomeBlockBuilder::Finish() {
  std::string out;
  const size_t n = ts_.size();
  out.reserve(16 + metrics_.size() * 16 + n * 26);
  PutValue(out, kBlockVersion);
  PutValue(out, static_cast<uint32_t>(n));
  PutValue(out, static_cast<uint8_t>(metrics_.size()));
  for (const auto& m : metrics_) PutString(out, m);
  PutColumn(out, keys_);
  PutColumn(out, ts_);
  PutColumn(out, values_);
  PutColumn(out, metric_);
  PutColumn(out, flags_);
  *this = OutcomeBlockBuilder();
  return out;
}

template <typename Builder>
BlockSet::Open<Builder>& BlockSet::For(std::vector<Open<Builder>>& open, std::string_view experiment) {
  // A batch holds a handful of experiments: a list beats a map.
  for (auto& o : open) {
    if (o.experiment == experiment) return o;
  }
  return open.emplace_back(Open<Builder>{std::string(experiment), Builder(), 0});
}

template <typename Builder>
void BlockSet::Close(Open<Builder>& open, bool outcomes, bool keep_empty) {
  if (open.builder.size() == 0 && (!keep_empty || open.source_rows == 0)) return;
  EncodedBlock b;
  b.outcomes = outcomes;
  b.experiment = open.experiment;
  b.min_ts = open.builder.min_ts();
  b.max_ts = open.builder.max_ts();
  b.rows = static_cast<int64_t>(open.builder.size());
  b.source_rows = open.source_rows;
  b.data = open.builder.Finish();
  open.source_rows = 0;
  done_.push_back(std::move(b));
}

void BlockSet::AddExposure(std::string_view experiment, std::string_view request_id, std::string_view unit_id,
                           std::string_view arm, std::string_view model_version, int64_t ts_us,
                           std::optional<double> score, bool in_experiment, std::optional<double> probability) {
  auto& open = For(exposures_, experiment);
  ++open.source_rows;
  if (!in_experiment) return;
  if (open.builder.Add(request_id, unit_id, arm, model_version, ts_us, score, probability)) return;
  --open.source_rows;  // it goes with the next block
  Close(open, false, true);
  ++open.source_rows;
  open.builder.Add(request_id, unit_id, arm, model_version, ts_us, score, probability);
}

void BlockSet::AddOutcome(std::string_view experiment, std::string_view request_id, std::string_view unit_id,
                          std::string_view metric, double value, int64_t ts_us) {
  auto& open = For(outcomes_, experiment);
  ++open.source_rows;
  if (request_id.empty() && unit_id.empty()) return;  // attributable to nothing
  if (open.builder.Add(request_id, unit_id, metric, value, ts_us)) return;
  --open.source_rows;
  Close(open, true, true);
  ++open.source_rows;
  open.builder.Add(request_id, unit_id, metric, value, ts_us);
}

std::vector<EncodedBlock> BlockSet::Finish(bool keep_empty) {
  for (auto& open : exposures_) Close(open, false, keep_empty);
  for (auto& open : outcomes_) Close(open, true, keep_empty);
  exposures_.clear();
  outcomes_.clear();
  return std::exchange(done_, {});
}

absl::StatusOr<ExposureBlock> ExposureBlock::Parse(std::string_view blob) {
  Cursor c(blob);
  uint8_t version, arms;
  uint32_t n;
  if (!c.Value(version) || (version != kBlockVersion && version != kExposureBlockVersionWithProbability) ||
      !c.Value(n) || !c.Value(arms)) {
    return Corrupt("exposure");
  }
  ExposureBlock b;
  for (int i = 0; i < arms; ++i) {
    Arm a;
    if (!c.String(a.name) || !c.String(a.model_version)) return Corrupt("exposure");
    b.arms_.push_back(a);
  }
  b.n_ = n;
  if (!c.Take(8 * size_t{n}, b.unit_keys_) || !c.Take(8 * size_t{n}, b.request_keys_) || !c.Take(8 * size_t{n}, b.ts_) ||
      !c.Take(8 * size_t{n}, b.scores_) || !c.Take(n, b.arm_) || !c.Take(n, b.flags_) ||
      (version == kExposureBlockVersionWithProbability && !c.Take(4 * size_t{n}, b.probabilities_)) || !c.AtEnd()) {
    return Corrupt("exposure");
  }
  for (size_t i = 0; i < n; ++i) {
    if (b.arm(i) >= arms) return Corrupt("exposure");
  }
  return b;
}

absl::StatusOr<OutcomeBlock> OutcomeBlock::Parse(std::string_view blob) {
  Cursor c(blob);
  uint8_t version, metrics;
  uint32_t n;
  if (!c.Value(version) || version != kBlockVersion || !c.Value(n) || !c.Value(metrics)) return Corrupt("outcome");
  OutcomeBlock b;
  for (int i = 0; i < metrics; ++i) {
    std::string_view m;
    if (!c.String(m)) return Corrupt("outcome");
    b.metrics_.push_back(m);
  }
  b.n_ = n;
  if (!c.Take(8 * size_t{n}, b.keys_) || !c.Take(8 * size_t{n}, b.ts_) || !c.Take(8 * size_t{n}, b.values_) ||
      !c.Take(n, b.metric_) || !c.Take(n, b.flags_) || !c.AtEnd()) {
    return Corrupt("outcome");
  }
  for (size_t i = 0; i < n; ++i) {
    if (b.metric(i) >= metrics) return Corrupt("outcome");
  }
  return b;
}

}  // namespace abgate::events

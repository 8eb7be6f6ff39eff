#include "events/internal/scan_batcher.h"

#include <algorithm>

#include "common/hash64.h"
#include "events/event_blocks.h"

namespace abgate::events_internal {

std::vector<Chunk> PlanChunks(std::pair<int64_t, int64_t> exposures, std::pair<int64_t, int64_t> outcomes,
                              int64_t min_size, int64_t rows_per_chunk, int workers) {
  const auto span = [](std::pair<int64_t, int64_t> r) { return std::max<int64_t>(0, r.second - r.first + 1); };
  int64_t size = rows_per_chunk;
  if (size <= 0) size = std::max<int64_t>(min_size, (span(exposures) + span(outcomes)) / (8 * workers) + 1);
  auto cut = [&](std::pair<int64_t, int64_t> r, bool outcome_table) {
    std::vector<Chunk> chunks;
    for (int64_t first = r.first; first <= r.second; first += size) {
      chunks.push_back({outcome_table, first, std::min(r.second, first + size - 1)});
      if (first > r.second - size) break;  // the next step would overflow
    }
    return chunks;
  };
  const auto e = cut(exposures, false), o = cut(outcomes, true);
  std::vector<Chunk> chunks;
  for (size_t i = 0; i < std::max(e.size(), o.size()); ++i) {
    if (i < e.size()) chunks.push_back(e[i]);
    if (i < o.size()) chunks.push_back(o[i]);
  }
  return chunks;
}

void ScanBatcher::Begin(events::EventVisitor& visitor) {
  visitor_ = &visitor;
  arms_.clear();
  metrics_.clear();
  exposures_.clear();
  outcomes_.clear();
}

void ScanBatcher::Finish() {
  FlushExposures();
  FlushOutcomes();
}

int ScanBatcher::Wanted(std::string_view metric) const {
  for (size_t j = 0; j < request_.metrics.size(); ++j) {
    if (request_.metrics[j] == metric) return static_cast<int>(j);
  }
  return -1;
}

void ScanBatcher::AddExposureRow(std::string_view request_id, std::string_view unit_id, std::string_view arm,
                                 std::string_view model_version, int64_t position, int64_t ts_us, bool scored,
                                 double score, double assignment_probability) {
  if (ts_us < request_.since_us) return;
  uint32_t a = 0;
  while (a < arms_.size() && (arms_[a].name != arm || arms_[a].model_version != model_version)) ++a;
  if (a == arms_.size()) arms_.push_back({std::string(arm), std::string(model_version), position});
  exposures_.push_back({unit_id.empty() ? 0 : common::Hash64(unit_id), common::Hash64(request_id), ts_us,
                        scored ? score : 0.0, a, !unit_id.empty(), scored,
                        static_cast<float>(assignment_probability)});
  if (exposures_.size() >= kBatchRows) FlushExposures();
}

void ScanBatcher::AddOutcomeRow(std::string_view request_id, std::string_view unit_id, std::string_view metric,
                                double value, int64_t ts_us) {
  if (ts_us < request_.SinceUs(true) || (request_id.empty() && unit_id.empty())) return;
  int j;
  if (request_.metrics.empty()) {
    j = 0;
    while (j < static_cast<int>(metrics_.size()) && metrics_[j] != metric) ++j;
    if (j == static_cast<int>(metrics_.size())) metrics_.emplace_back(metric);
  } else if ((j = Wanted(metric)) < 0) {
    return;
  }
  const bool by_request = !request_id.empty();
  outcomes_.push_back({common::Hash64(by_request ? request_id : unit_id), ts_us, value, static_cast<uint32_t>(j),
                       by_request});
  if (outcomes_.size() >= kBatchRows) FlushOutcomes();
}

void ScanBatcher::FlushExposures() {
  if (exposures_.empty()) return;
  arm_views_.clear();
  for (const auto& a : arms_) arm_views_.push_back({a.name, a.model_version, a.position});
  visitor_->Exposures({arm_views_, exposures_});
  exposures_.clear();
}

void ScanBatcher::FlushOutcomes() {
  if (outcomes_.empty()) return;
  metric_views_.clear();
  for (const auto& m : request_.metrics.empty() ? metrics_ : request_.metrics) metric_views_.push_back(m);
  visitor_->Outcomes({metric_views_, outcomes_});
  outcomes_.clear();
}

absl::Status ScanBatcher::AddExposureBlock(std::string_view blob, int64_t position) {
  auto block = events::ExposureBlock::Parse(blob);
  if (!block.ok()) return block.status();
  FlushExposures();
  const int64_t since = request_.since_us;
  const size_t n = block->size();
  if (block_exposures_.size() < n) block_exposures_.resize(n);  // grows, never shrinks: no refill per block
  size_t kept = 0;
  for (size_t i = 0; i < n; ++i) {
    const int64_t ts = block->ts(i);
    if (ts < since) continue;
    events::ExposureKeys& e = block_exposures_[kept++];
    e.unit_key = block->unit_key(i);
    e.request_key = block->request_key(i);
    e.ts_us = ts;
    e.score = block->score(i);
    e.arm = block->arm(i);
    e.has_unit = block->has_unit(i);
    e.scored = block->scored(i);
    e.assignment_probability = block->probability(i);
  }
  if (kept > 0) {
    arm_views_.clear();
    for (const auto& a : block->arms()) arm_views_.push_back({a.name, a.model_version, position});
    visitor_->Exposures({arm_views_, std::span<const events::ExposureKeys>(block_exposures_.data(), kept), position});
  }
  return absl::OkStatus();
}

absl::Status ScanBatcher::AddOutcomeBlock(std::string_view blob, int64_t position) {
  auto block = events::OutcomeBlock::Parse(blob);
  if (!block.ok()) return block.status();
  FlushOutcomes();
  bool wanted[events::kMaxBlockNames];
  for (size_t b = 0; b < block->metrics().size(); ++b) {
    wanted[b] = request_.metrics.empty() || Wanted(block->metrics()[b]) >= 0;
  }
  const int64_t since = request_.SinceUs(true);
  const size_t n = block->size();
  if (block_outcomes_.size() < n) block_outcomes_.resize(n);
  size_t kept = 0;
  for (size_t i = 0; i < n; ++i) {
    const uint8_t metric = block->metric(i);
    const int64_t ts = block->ts(i);
    if (!wanted[metric] || ts < since) continue;
    events::OutcomeKeys& o = block_outcomes_[kept++];
    o.key = block->key(i);
    o.ts_us = ts;
    o.value = block->value(i);
    o.metric = metric;
    o.by_request = block->by_request(i);
  }
  if (kept > 0) {
    metric_views_.assign(block->metrics().begin(), block->metrics().end());
    visitor_->Outcomes({metric_views_, std::span<const events::OutcomeKeys>(block_outcomes_.data(), kept), position});
  }
  return absl::OkStatus();
}

}  // namespace abgate::events_internal

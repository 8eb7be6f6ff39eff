#include "events/in_memory_event_reader.h"

#include <algorithm>
#include <map>

#include "events/internal/scan_batcher.h"

namespace abgate::events {
namespace {

class InMemoryScan : public EventScan {
 public:
  InMemoryScan(const std::vector<Exposure>& exposures, const std::vector<Outcome>& outcomes,
               const ScanRequest& request)
      : exposures_(exposures), outcomes_(outcomes), request_(request) {
    const int64_t n_exposures = static_cast<int64_t>(exposures.size()), n_outcomes = static_cast<int64_t>(outcomes.size());
    chunks_ = events_internal::PlanChunks({0, n_exposures - 1}, {0, n_outcomes - 1}, 1, request.rows_per_chunk,
                                          std::max(request.workers, 1));
    for (int i = 0; i < std::max(request.workers, 1); ++i) batchers_.push_back(std::make_unique<events_internal::ScanBatcher>(request_));
  }

  size_t tasks() const override { return chunks_.size(); }
  int64_t expected_exposures() const override { return static_cast<int64_t>(exposures_.size()); }
  int64_t expected_outcomes() const override { return static_cast<int64_t>(outcomes_.size()); }

  absl::Status Run(size_t task, int worker, EventVisitor& visitor) override {
    const events_internal::Chunk& chunk = chunks_[task];
    auto& batcher = *batchers_[static_cast<size_t>(worker)];
    batcher.Begin(visitor);
    for (int64_t i = chunk.first; i <= chunk.last; ++i) {
      if (chunk.outcomes) {
        const Outcome& o = outcomes_[static_cast<size_t>(i)];
        if (o.experiment == request_.experiment) batcher.AddOutcomeRow(o.request_id, o.unit_id, o.metric, o.value, o.ts_us);
      } else {
        const Exposure& e = exposures_[static_cast<size_t>(i)];
        if (e.experiment != request_.experiment || !e.in_experiment) continue;
        batcher.AddExposureRow(e.request_id, e.unit_id, e.assigned_arm, e.model_version, i, e.ts_us,
                               e.score.has_value(), e.score.value_or(0), e.assignment_probability.value_or(0));
      }
    }
    batcher.Finish();
    return absl::OkStatus();
  }

 private:
  const std::vector<Exposure>& exposures_;
  const std::vector<Outcome>& outcomes_;
  const ScanRequest request_;
  std::vector<events_internal::Chunk> chunks_;
  std::vector<std::unique_ptr<events_internal::ScanBatcher>> batchers_;
};

}  // namespace

void InMemoryEventReader::Add(const Outcome& o) {
  if (!o.event_id.empty() && !event_ids_.emplace(o.experiment, o.event_id).second) return;
  outcomes_.push_back(o);
}

absl::StatusOr<std::unique_ptr<EventScan>> InMemoryEventReader::ScanEvents(const ScanRequest& request) {
  return std::unique_ptr<EventScan>(std::make_unique<InMemoryScan>(exposures_, outcomes_, request));
}

absl::StatusOr<std::vector<ShadowRow>> InMemoryEventReader::ReadShadows(const std::string& experiment,
                                                                        int64_t since_us) {
  std::vector<ShadowRow> rows;
  for (const Exposure& e : exposures_) {
    if (e.experiment != experiment || !e.shadow || e.ts_us < since_us) continue;
    rows.push_back({e.request_id, e.score, e.shadow->score, e.latency_us, e.shadow->latency_us, e.shadow->status, e.arm,
                    e.shadow->arm, e.ts_us});
  }
  return rows;
}

absl::StatusOr<std::string> InMemoryEventReader::ReadStoredConfig(const std::string& experiment) {
  auto it = configs_.find(experiment);
  return it == configs_.end() ? std::string() : it->second;
}

absl::StatusOr<std::vector<AuditedConfig>> InMemoryEventReader::ReadConfigHistory(const std::string& experiment) {
  std::vector<AuditedConfig> rows;
  for (const AuditRecord& a : audit_) {
    if (a.experiment == experiment) rows.push_back({a.ts_us, a.before_json, a.after_json});
  }
  return rows;
}

absl::Status InMemoryEventReader::ScanPopulation(const std::string& experiment,
                                                 const std::function<void(const UnitExposure&)>& exposure,
                                                 const std::function<void(const OutcomeRecord&)>& outcome) {
  auto in_scope = [&](const std::string& e) { return experiment.empty() || e == experiment; };
  for (const Exposure& e : exposures_) {
    if (in_scope(e.experiment) && !e.unit_id.empty()) {
      exposure({e.unit_id, e.request_id, e.ts_us, e.routing_mode == kHoldoutRoutingMode});
    }
  }
  for (const Outcome& o : outcomes_) {
    if (in_scope(o.experiment)) outcome({o.request_id, o.unit_id, o.metric, o.value, o.ts_us, o.event_id});
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<BanditWeights>> InMemoryEventReader::ReadBanditWeights(const std::string&) {
  return std::vector<BanditWeights>();  // tests of the analysis give weight periods directly
}

absl::StatusOr<std::vector<StoredMetric>> InMemoryEventReader::ReadOutcomeMetrics(const std::string& experiment) {
  std::map<std::string, bool> binary;
  for (const Outcome& o : outcomes_) {
    if (o.experiment != experiment) continue;
    auto [it, inserted] = binary.try_emplace(o.metric, true);
    it->second = it->second && (o.value == 0 || o.value == 1);
  }
  std::vector<StoredMetric> out;
  for (const auto& [name, b] : binary) out.push_back({name, b});
  return out;
}

absl::Status InMemoryEventReader::ReadServedRequests(const std::string& experiment, int64_t since_us,
                                                     const std::function<void(const ServedRequest&)>& visit) {
  for (const Exposure& e : exposures_) {
    if (e.experiment != experiment || !e.in_experiment || e.ts_us < since_us) continue;
    ServedRequest r{e.request_id, e.ts_us, e.unit_id, e.arm, e.assigned_arm, e.model_name, e.model_version,
                    e.routing_mode, e.score, std::nullopt, e.request_payload.has_value(),
                    e.request_payload.value_or(""), e.response_payload.value_or(""), e.payload_truncated};
    visit(r);
  }
  return absl::OkStatus();
}

}  // namespace abgate::events

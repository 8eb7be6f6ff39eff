// InMemoryEventReader: EventReader over events held in memory, fed with the typed rows a sink
// would store (Exposure, Outcome, AuditRecord, stored configs). For tests of the analysis without
// a store: the same scan contract as the stores (in-experiment exposures by assigned arm, ids as
// keys, outcomes with a repeated (experiment, event_id) kept once), cut into tasks of
// `rows_per_chunk` rows so the caller's parallel paths run too. Thread-safe for reads; add
// everything before reading.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "events/event.h"
#include "events/event_reader.h"

namespace abgate::events {

class InMemoryEventReader : public EventReader {
 public:
  InMemoryEventReader() = default;

  void Add(const Exposure& e) { exposures_.push_back(e); }
  // A repeated (experiment, event_id) is kept once, as the stores keep it.
  void Add(const Outcome& o);
  void Add(const AuditRecord& a) { audit_.push_back(a); }
  void SetStoredConfig(const std::string& experiment, std::string config_json) {
    configs_[experiment] = std::move(config_json);
  }

  const std::string& uri() const override { return uri_; }
  absl::StatusOr<std::unique_ptr<EventScan>> ScanEvents(const ScanRequest& request) override;
  absl::StatusOr<std::vector<ShadowRow>> ReadShadows(const std::string& experiment, int64_t since_us) override;
  absl::StatusOr<std::string> ReadStoredConfig(const std::string& experiment) override;
  absl::StatusOr<std::vector<AuditedConfig>> ReadConfigHistory(const std::string& experiment) override;
  absl::StatusOr<std::vector<StoredMetric>> ReadOutcomeMetrics(const std::string& experiment) override;
  absl::Status ScanPopulation(const std::string& experiment, const std::function<void(const UnitExposure&)>& exposure,
                              const std::function<void(const OutcomeRecord&)>& outcome) override;
  absl::Status ReadServedRequests(const std::string& experiment, int64_t since_us,
                                  const std::function<void(const ServedRequest&)>& visit) override;
  absl::StatusOr<std::vector<BanditWeights>> ReadBanditWeights(const std::string& experiment) override;

 private:
  const std::string uri_ = "memory:";
  std::vector<Exposure> exposures_;
  std::vector<Outcome> outcomes_;
  std::set<std::pair<std::string, std::string>> event_ids_;
  std::vector<AuditRecord> audit_;
  std::map<std::string, std::string> configs_;
};

}  // namespace abgate::events

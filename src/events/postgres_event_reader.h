// PostgresEventReader: EventReader over a PostgreSQL event store (what PostgresEventSink
// writes), through the postgres library. A scan reads on one connection per worker, all in one
// exported snapshot so they see the same rows: the event blocks when the experiment's blocks
// account for all its rows, in ranges of block ids; else the rows, in ranges of heap pages (TID
// range scans, PostgreSQL 14 on; one range per table before). Thread-safe (see event_reader.h).
#pragma once

#include <memory>
#include <string>

#include "events/event_reader.h"

namespace abgate::events {

class PostgresEventReader : public EventReader {
 public:
  // `uri` is a libpq URI; nothing connects until a read.
  explicit PostgresEventReader(std::string uri) : uri_(std::move(uri)) {}

  const std::string& uri() const override { return uri_; }
  absl::StatusOr<std::unique_ptr<EventScan>> ScanEvents(const ScanRequest& request) override;
  absl::StatusOr<std::vector<ShadowRow>> ReadShadows(const std::string& experiment, int64_t since_us) override;
  absl::StatusOr<ShadowRead> ReadShadowsAfter(const std::string& experiment, int64_t since_us,
                                              const ShadowCursor& after) override;
  absl::StatusOr<std::string> ReadStoredConfig(const std::string& experiment) override;
  absl::StatusOr<std::vector<AuditedConfig>> ReadConfigHistory(const std::string& experiment) override;
  absl::StatusOr<std::vector<StoredMetric>> ReadOutcomeMetrics(const std::string& experiment) override;
  absl::Status ScanPopulation(const std::string& experiment, const std::function<void(const UnitExposure&)>& exposure,
                              const std::function<void(const OutcomeRecord&)>& outcome) override;
  absl::Status ReadServedRequests(const std::string& experiment, int64_t since_us,
                                  const std::function<void(const ServedRequest&)>& visit) override;
  absl::StatusOr<std::vector<BanditWeights>> ReadBanditWeights(const std::string& experiment) override;
  absl::StatusOr<int64_t> CountHistoryRows(const std::string& experiment) override;

 private:
  const std::string uri_;
};

}  // namespace abgate::events

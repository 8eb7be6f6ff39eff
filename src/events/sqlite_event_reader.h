// SqliteEventReader: EventReader over a SQLite event store file (what SqliteEventSink writes).
// Every read opens its own read-only connections, which wait on locks (a writing gateway
// checkpoints now and then), so reads run beside a gateway writing the same file. The scan
// reads the event blocks while they hold every row (block_coverage), else the rows, both cut
// into rowid ranges. Thread-safe (see event_reader.h).
#pragma once

#include <memory>
#include <string>

#include "events/event_reader.h"

namespace abgate::events {

class SqliteEventReader : public EventReader {
 public:
  // `path` is the file; nothing is opened until a read.
  explicit SqliteEventReader(std::string path) : path_(std::move(path)), uri_("sqlite:" + path_) {}

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
  const std::string path_;
  const std::string uri_;
};

}  // namespace abgate::events

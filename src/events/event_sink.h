// EventSink: durable storage for exposures and audit records. Implementations are used from
// one writer thread (WriteBatch) plus any thread for the read-side queries, which must be
// safe to call concurrently with writes.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "events/event.h"

namespace abgate::events {

class EventSink {
 public:
  virtual ~EventSink() = default;
  // Writes everything in one transaction: all or nothing. Blocking. When `outcome_stored` is
  // given it is resized to outcomes.size() and says per outcome whether it was stored (false:
  // a duplicate event_id, already stored before).
  // Assignments: a "hash" row never replaces an override or bulk row; deletions remove the row.
  virtual absl::Status WriteBatch(std::span<const Exposure> exposures, std::span<const AuditRecord> audit,
                                  std::span<const Outcome> outcomes = {},
                                  std::vector<bool>* outcome_stored = nullptr,
                                  std::span<const Assignment> assignments = {}) = 0;
  // First-assignment claim for stores shared by several gateways: stores `a` unless the unit
  // already has an assignment in force (an override, a bulk row, or a hash row of the same or
  // a newer bucket version), and returns the assignment in force afterwards. Blocking.
  virtual absl::StatusOr<Assignment> ClaimAssignment(const Assignment& a) = 0;
  // Every stored assignment of `experiment`. Blocking.
  virtual absl::StatusOr<std::vector<Assignment>> ReadAssignments(const std::string& experiment) = 0;
  // The stored start time of `experiment`, recording `now_us` if it has none. Blocking.
  virtual absl::StatusOr<int64_t> EnsureExperimentStart(const std::string& experiment, int64_t now_us) = 0;
  // Newest first; `experiment` empty = all. Blocking.
  virtual absl::StatusOr<std::vector<AuditRecord>> ReadAudit(const std::string& experiment, int limit) = 0;
  virtual absl::StatusOr<int64_t> CountExposures(const std::string& experiment) = 0;

  // Experiment configs changed through the admin API, so a restarted gateway serves what was
  // in force (the YAML is the starting point). `config_json` empty records a deletion. Blocking.
  struct StoredConfig {
    std::string name;
    std::string config_json;  // empty: deleted
    int64_t updated_us = 0;
  };
  virtual absl::Status SaveExperimentConfig(const std::string& name, const std::string& config_json,
                                            int64_t now_us) = 0;
  // Several (name, config_json) and the audit records of the change, in one transaction: all
  // stored or none. Blocking.
  virtual absl::Status SaveExperimentConfigs(std::span<const std::pair<std::string, std::string>> configs,
                                             std::span<const AuditRecord> audit, int64_t now_us) = 0;
  virtual absl::StatusOr<std::vector<StoredConfig>> LoadExperimentConfigs() = 0;
};

// Opens the store named by `uri`: "sqlite:PATH" or "postgresql://user@host:port/db" (also
// "postgres://"). InvalidArgument for other schemes. Defined in event_store.cc, the one place
// that knows every backend.
absl::StatusOr<std::unique_ptr<EventSink>> OpenEventSink(const std::string& uri);

}  // namespace abgate::events

// PostgresEventSink: the scale-out event store (PostgreSQL through libpq). Many gateways can
// share one database. Writes go through prepared statements sent in libpq's pipeline mode, so a
// whole batch is one round trip and one transaction; no SQL is ever built from user data. One
// write connection used by the writer thread, one read connection behind a mutex for queries.
// A broken connection (the server restarted, the network dropped) is replaced by the next call
// that needs it; until then calls fail with kUnavailable. Errors follow postgres/connection.h:
// kUnavailable (unreachable, out of resources), kAborted (retry), kInvalidArgument (refused data).
#pragma once

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "common/mutex.h"
#include "events/event_sink.h"
#include "postgres/connection.h"

namespace abgate::events {

class PostgresEventSink final : public EventSink {
 public:
  // Connects (a libpq URI: postgresql://user@host:port/db) and creates the schema if needed.
  static absl::StatusOr<std::unique_ptr<PostgresEventSink>> Open(const std::string& uri);
  ~PostgresEventSink() override;

  absl::Status WriteBatch(std::span<const Exposure> exposures, std::span<const AuditRecord> audit,
                          std::span<const Outcome> outcomes = {}, std::vector<bool>* outcome_stored = nullptr,
                          std::span<const Assignment> assignments = {}) override;
  absl::StatusOr<int64_t> EnsureExperimentStart(const std::string& experiment, int64_t now_us) override;
  absl::StatusOr<int64_t> SaveExperimentConfigs(std::span<const ConfigChange> changes, int64_t base_version,
                                                std::span<const AuditRecord> audit, int64_t now_us,
                                                std::span<const BanditUpdate> bandit) override;
  absl::StatusOr<std::vector<StoredConfig>> LoadExperimentConfigs() override;
  absl::StatusOr<int64_t> LastBanditUpdateUs(const std::string& experiment) override;
  absl::StatusOr<std::unique_ptr<ConfigFeed>> OpenConfigFeed() override;
  absl::Status SaveReplica(const Replica& r, int64_t now_us) override;
  absl::Status RemoveReplica(const std::string& id) override;
  absl::StatusOr<std::vector<Replica>> ReadReplicas(int64_t now_us) override;
  absl::StatusOr<std::vector<AuditRecord>> ReadAudit(const std::string& experiment, int limit) override;
  absl::StatusOr<int64_t> CountExposures(const std::string& experiment) override;
  absl::StatusOr<std::vector<Assignment>> ReadAssignments(const std::string& experiment) override;
  absl::StatusOr<Assignment> ClaimAssignment(const Assignment& a) override;

 private:
  explicit PostgresEventSink(std::string uri);
  // (Re)connect when the connection is missing or broken; the writer's also prepares the
  // statements.
  absl::Status ConnectWriter();
  absl::Status ConnectReader() ABSL_EXCLUSIVE_LOCKS_REQUIRED(read_mu_);
  // One statement on the read connection, reconnecting first if needed.
  absl::StatusOr<postgres::Result> Read(const char* sql, const postgres::Params& params)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(read_mu_);

  const std::string uri_;
  postgres::Connection write_;  // the writer thread's
  common::Mutex read_mu_;
  postgres::Connection read_ ABSL_GUARDED_BY(read_mu_);
};

}  // namespace abgate::events

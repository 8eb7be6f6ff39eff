// SqliteEventSink: the embedded event store (SQLite in WAL mode, synchronous=NORMAL, so a
// committed batch survives a process crash). One write connection used by the writer thread,
// one read connection behind a mutex for queries; WAL lets them run concurrently.
#pragma once

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "common/mutex.h"
#include "events/event_sink.h"

struct sqlite3;
struct sqlite3_stmt;

namespace abgate::sqlite {
class Database;
}  // namespace abgate::sqlite

namespace abgate::events {

class SqliteEventSink final : public EventSink {
 public:
  // Opens or creates the database at `path` and migrates its schema.
  static absl::StatusOr<std::unique_ptr<SqliteEventSink>> Open(const std::string& path);
  ~SqliteEventSink() override;

  absl::Status WriteBatch(std::span<const Exposure> exposures, std::span<const AuditRecord> audit,
                          std::span<const Outcome> outcomes = {},
                          std::vector<bool>* outcome_stored = nullptr,
                          std::span<const Assignment> assignments = {}) override;
  absl::StatusOr<std::vector<Assignment>> ReadAssignments(const std::string& experiment) override;
  absl::StatusOr<Assignment> ClaimAssignment(const Assignment& a) override;
  absl::StatusOr<int64_t> EnsureExperimentStart(const std::string& experiment, int64_t now_us) override;
  absl::StatusOr<int64_t> SaveExperimentConfigs(std::span<const ConfigChange> changes, int64_t base_version,
                                                std::span<const AuditRecord> audit, int64_t now_us,
                                                std::span<const BanditUpdate> bandit) override;
  absl::StatusOr<std::vector<StoredConfig>> LoadExperimentConfigs() override;
  absl::StatusOr<int64_t> LastBanditUpdateUs(const std::string& experiment) override;
  absl::Status SaveReplica(const Replica& r, int64_t now_us) override;
  absl::Status RemoveReplica(const std::string& id) override;
  absl::StatusOr<std::vector<Replica>> ReadReplicas(int64_t now_us) override;
  absl::StatusOr<std::vector<AuditRecord>> ReadAudit(const std::string& experiment, int limit) override;
  absl::StatusOr<int64_t> CountExposures(const std::string& experiment) override;

 private:
  SqliteEventSink() = default;
  std::unique_ptr<sqlite::Database> write_;
  sqlite3* write_db_ = nullptr;  // write_->raw(), for the prepared inserts
  bool durable_ = false;         // writer thread: synchronous=FULL in force (acknowledged writes)
  sqlite3_stmt* insert_exposure_ = nullptr;
  sqlite3_stmt* insert_audit_ = nullptr;
  sqlite3_stmt* insert_outcome_ = nullptr;
  sqlite3_stmt* upsert_assignment_ = nullptr;
  sqlite3_stmt* delete_assignment_ = nullptr;
  sqlite3_stmt* insert_payload_ = nullptr;
  sqlite3_stmt* insert_shadow_ = nullptr;
  // Admin, gateway and dashboard threads read and write through this one connection (SQLite
  // connections are not thread-safe: opened NOMUTEX, with cached statements).
  common::Mutex read_mu_;
  std::unique_ptr<sqlite::Database> read_ ABSL_PT_GUARDED_BY(read_mu_);
};


}  // namespace abgate::events

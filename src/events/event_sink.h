// EventSink: durable storage for exposures and audit records. Implementations are used from
// one writer thread (WriteBatch) plus any thread for the read-side queries, which must be
// safe to call concurrently with writes.
#pragma once

#include <chrono>
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
  // in force (the YAML is the starting point) and gateways sharing the store serve the same.
  // Every change gets a config version from one counter of the store (a PostgreSQL sequence),
  // so versions are store-wide and increase with each change; version 1 is the YAML alone.
  struct StoredConfig {
    std::string name;
    std::string config_json;  // empty: deleted
    int64_t updated_us = 0;
    int64_t version = 0;  // the change that wrote it (0: stored by an abgate without versions)
  };
  struct ConfigChange {
    std::string name;
    std::string config_json;  // empty: deleted
  };
  // One recomputation of a bandit's weights: the compact weight history (table bandit_weights)
  // that stands in for an audit record per update.
  struct BanditUpdate {
    std::string experiment;
    int64_t ts_us = 0;
    std::string weights_json;   // {"A": 0.1, "B": 0.9}
    std::string evidence_json;  // what they were computed from: per arm trials, successes, P(best)
  };
  // Commits one admin change — the new configs of the experiments it touched, `changes[0]` the
  // one it was made to — in one transaction with one new version, which it returns, and the
  // change's audit records and bandit weight-history rows (all stored or none); other
  // gateways sharing the store are told (ConfigFeed). Aborted, and nothing stored, when
  // `changes[0]` was stored with a version above `base_version` (the change was computed from an
  // older state of that experiment: 0 = from the YAML). Blocking.
  virtual absl::StatusOr<int64_t> SaveExperimentConfigs(std::span<const ConfigChange> changes, int64_t base_version,
                                                        std::span<const AuditRecord> audit, int64_t now_us,
                                                        std::span<const BanditUpdate> bandit) = 0;
  // When `experiment`'s bandit weights were last recomputed by any gateway sharing the store
  // (0: never), so one replica recomputes per interval. Blocking.
  virtual absl::StatusOr<int64_t> LastBanditUpdateUs(const std::string& experiment) = 0;
  virtual absl::StatusOr<std::vector<StoredConfig>> LoadExperimentConfigs() = 0;

  // Announced config changes of gateways sharing the store (PostgreSQL LISTEN/NOTIFY). Used by
  // one thread.
  class ConfigFeed {
   public:
    virtual ~ConfigFeed() = default;
    // Blocks up to `timeout` for announcements: true when at least one came (all pending ones
    // are consumed), false on timeout. Unavailable when the connection broke (open a new feed).
    virtual absl::StatusOr<bool> Wait(std::chrono::milliseconds timeout) = 0;
  };
  // nullptr when no other gateway can change the configs (SQLite: one gateway owns the store).
  virtual absl::StatusOr<std::unique_ptr<ConfigFeed>> OpenConfigFeed() { return std::unique_ptr<ConfigFeed>(); }

  // The gateways sharing the store (GET /api/v1/fleet): each saves its row on every heartbeat
  // and after applying a config version, and removes it when it shuts down.
  struct Replica {
    std::string id;       // host:admin port unless configured
    std::string address;  // the admin API, host:port
    std::string build;
    int64_t applied_version = 0;  // config version it serves
    int64_t started_us = 0;
    int64_t heartbeat_age_us = 0;  // on read: how long ago it last saved its row (store's clock)
  };
  // Upserts `r` with its heartbeat at `now_us` (PostgreSQL uses its own clock, so replicas with
  // skewed clocks compare fairly). Blocking.
  virtual absl::Status SaveReplica(const Replica& r, int64_t now_us) = 0;
  virtual absl::Status RemoveReplica(const std::string& id) = 0;
  virtual absl::StatusOr<std::vector<Replica>> ReadReplicas(int64_t now_us) = 0;
};

// Opens the store named by `uri`: "sqlite:PATH" or "postgresql://user@host:port/db" (also
// "postgres://"). InvalidArgument for other schemes. Defined in event_store.cc, the one place
// that knows every backend.
absl::StatusOr<std::unique_ptr<EventSink>> OpenEventSink(const std::string& uri);

}  // namespace abgate::events

#include "events/sqlite_event_sink.h"

#include <sqlite3.h>

#include <optional>
#include <string>
#include <vector>

#include "common/status_macros.h"
#include "common/strings.h"
#include "events/event_blocks.h"
#include "sqlite/database.h"

namespace abgate::events {
namespace {

// Schema version 1. Timestamps are integer microseconds since the Unix epoch.
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS exposures (
  request_id    TEXT    NOT NULL,
  ts            INTEGER NOT NULL,
  experiment    TEXT    NOT NULL,
  unit_id       TEXT,
  unit_random   INTEGER NOT NULL,
  arm           TEXT    NOT NULL,
  assigned_arm  TEXT    NOT NULL,
  model_name    TEXT,
  model_version TEXT,
  routing_mode  TEXT    NOT NULL,
  status        INTEGER NOT NULL,
  latency_us    INTEGER NOT NULL,
  score         REAL,
  fallback      INTEGER NOT NULL,
  in_experiment INTEGER NOT NULL,
  assignment_probability REAL
);
CREATE TABLE IF NOT EXISTS bandit_weights (
  experiment TEXT    NOT NULL,
  ts         INTEGER NOT NULL,
  version    INTEGER NOT NULL,
  weights    TEXT    NOT NULL,
  evidence   TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS bandit_weights_experiment ON bandit_weights (experiment, ts);
CREATE TABLE IF NOT EXISTS payloads (
  request_id TEXT    NOT NULL,
  ts         INTEGER NOT NULL,
  experiment TEXT    NOT NULL,
  unit_id    TEXT    NOT NULL,
  arm        TEXT    NOT NULL,
  request    TEXT    NOT NULL,
  response   TEXT    NOT NULL,
  truncated  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS shadows (
  request_id        TEXT    NOT NULL,
  ts                INTEGER NOT NULL,
  experiment        TEXT    NOT NULL,
  arm               TEXT    NOT NULL,
  score             REAL,
  latency_us        INTEGER NOT NULL,
  shadow_arm        TEXT    NOT NULL,
  shadow_score      REAL,
  shadow_latency_us INTEGER NOT NULL,
  shadow_status     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_log (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  ts          INTEGER NOT NULL,
  actor       TEXT    NOT NULL,
  remote_addr TEXT    NOT NULL,
  action      TEXT    NOT NULL,
  experiment  TEXT    NOT NULL,
  before      TEXT    NOT NULL,
  after       TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS outcomes (
  ts         INTEGER NOT NULL,
  experiment TEXT    NOT NULL,
  request_id TEXT,
  unit_id    TEXT,
  metric     TEXT    NOT NULL,
  value      REAL    NOT NULL,
  event_id   TEXT
);
CREATE TABLE IF NOT EXISTS assignments (
  experiment     TEXT    NOT NULL,
  unit_id        TEXT    NOT NULL,
  arm            TEXT    NOT NULL,
  assigned_at    INTEGER NOT NULL,
  source         TEXT    NOT NULL,
  bucket_version INTEGER NOT NULL,
  PRIMARY KEY (experiment, unit_id)
);
CREATE TABLE IF NOT EXISTS experiment_configs (
  name       TEXT PRIMARY KEY,
  config     TEXT    NOT NULL,
  updated_at INTEGER NOT NULL,
  version    INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS replicas (
  id              TEXT PRIMARY KEY,
  address         TEXT    NOT NULL,
  build           TEXT    NOT NULL,
  applied_version INTEGER NOT NULL,
  started_at      INTEGER NOT NULL,
  heartbeat       INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS exposure_blocks (
  experiment TEXT    NOT NULL,
  min_ts     INTEGER NOT NULL,
  max_ts     INTEGER NOT NULL,
  rows       INTEGER NOT NULL,
  data       BLOB    NOT NULL
);
CREATE TABLE IF NOT EXISTS outcome_blocks (
  experiment TEXT    NOT NULL,
  min_ts     INTEGER NOT NULL,
  max_ts     INTEGER NOT NULL,
  rows       INTEGER NOT NULL,
  data       BLOB    NOT NULL
);
CREATE TABLE IF NOT EXISTS block_coverage (
  source     TEXT    PRIMARY KEY,
  last_rowid INTEGER NOT NULL,
  intact     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS experiment_state (
  name       TEXT PRIMARY KEY,
  started_at INTEGER NOT NULL
);
)sql";

// Version 2 added outcomes.event_id and its unique index (idempotent intake); version 3 the
// event blocks (events/event_blocks.h), filled from the rows when an older store is opened.
// block_coverage says, per source table, up to which rowid the blocks hold its rows and
// whether they still do ("intact"): rows written by anything but this sink (a hand-made
// INSERT) break it, readers then use the rows, and the next sink to open the store rebuilds
// the blocks. Version 4 added exposures.assignment_probability (bandits: the chance with which
// the request's arm was drawn; NULL in other modes and in older rows) and the bandit weight
// history (bandit_weights: one row per recomputation instead of an audit record each).
constexpr int kSchemaVersion = 4;
constexpr int kBlocksSchemaVersion = 3;  // stores older than this get their blocks backfilled


void BindText(sqlite3_stmt* st, int i, const std::string& s) {
  sqlite3_bind_text(st, i, s.data(), static_cast<int>(s.size()), SQLITE_STATIC);
}
// SQLITE_STATIC keeps the pointer until the statement is reset, so a temporary would dangle:
// only lvalues may be bound.
void BindText(sqlite3_stmt* st, int i, std::string&& s) = delete;

void BindOptionalText(sqlite3_stmt* st, int i, const std::string& s) {
  if (s.empty()) {
    sqlite3_bind_null(st, i);
  } else {
    BindText(st, i, s);
  }
}
void BindOptionalText(sqlite3_stmt* st, int i, std::string&& s) = delete;

void BindOptionalDouble(sqlite3_stmt* st, int i, const std::optional<double>& d) {
  if (d) {
    sqlite3_bind_double(st, i, *d);
  } else {
    sqlite3_bind_null(st, i);
  }
}

// Stores `blocks` (BlockSet::Finish) in the open transaction.
absl::Status WriteBlocks(sqlite::Database& db, const std::vector<EncodedBlock>& blocks) {
  for (const EncodedBlock& b : blocks) {
    ABGATE_RETURN_IF_ERROR(db.Exec(b.outcomes ? "INSERT INTO outcome_blocks (experiment, min_ts, max_ts, rows, data) "
                                                "VALUES (?,?,?,?,?)"
                                              : "INSERT INTO exposure_blocks (experiment, min_ts, max_ts, rows, data) "
                                                "VALUES (?,?,?,?,?)",
                                   {b.experiment, b.min_ts, b.max_ts, b.rows, sqlite::Database::Blob{b.data}}));
  }
  return absl::OkStatus();
}

// False when rows reached exposures or outcomes other than through this sink (see
// block_coverage above), or a store has no coverage yet.
bool BlocksIntact(sqlite::Database& db) {
  auto intact =
      db.QueryInt(StrCat("SELECT count(*) = 2 FROM block_coverage WHERE intact = 1 AND last_rowid = ", kCoverageCurrentRowid));
  return intact.ok() && *intact == 1;
}

// Version 3: blocks for the events an older abgate stored as rows only, in rowid order (the
// order later batches append in), 4096 events per block.
absl::Status BackfillBlocks(sqlite::Database& db) {
  constexpr size_t kPerBlock = 4096;
  auto scan = [&](const char* sql, auto&& add) -> absl::Status {
    BlockSet blocks;
    size_t pending = 0;
    absl::Status written;
    ABGATE_RETURN_IF_ERROR(db.Query(sql, {}, [&](sqlite3_stmt* st) {
      if (!written.ok()) return;
      add(blocks, st);
      if (++pending == kPerBlock) {
        written = WriteBlocks(db, blocks.Finish());
        pending = 0;
      }
    }));
    ABGATE_RETURN_IF_ERROR(written);
    return WriteBlocks(db, blocks.Finish());
  };
  using sqlite::TextView;
  ABGATE_RETURN_IF_ERROR(db.ExecScript("DELETE FROM exposure_blocks; DELETE FROM outcome_blocks; DELETE FROM block_coverage;"));
  ABGATE_RETURN_IF_ERROR(db.ExecScript(
                              "INSERT INTO block_coverage SELECT 'exposures', coalesce(max(rowid), 0), 1 FROM exposures; "
                              "INSERT INTO block_coverage SELECT 'outcomes', coalesce(max(rowid), 0), 1 FROM outcomes;"));
  ABGATE_RETURN_IF_ERROR(scan(
      "SELECT experiment, request_id, unit_id, assigned_arm, model_version, ts, score, assignment_probability "
      "FROM exposures WHERE in_experiment = 1 ORDER BY rowid",
      [&](BlockSet& b, sqlite3_stmt* st) {
        const bool scored = sqlite3_column_type(st, 6) != SQLITE_NULL;
        const bool drawn = sqlite3_column_type(st, 7) != SQLITE_NULL;
        b.AddExposure(TextView(st, 0), TextView(st, 1), TextView(st, 2), TextView(st, 3), TextView(st, 4),
                      sqlite3_column_int64(st, 5),
                      scored ? std::optional<double>(sqlite3_column_double(st, 6)) : std::nullopt, true,
                      drawn ? std::optional<double>(sqlite3_column_double(st, 7)) : std::nullopt);
      }));
  return scan("SELECT experiment, request_id, unit_id, metric, value, ts FROM outcomes ORDER BY rowid",
              [&](BlockSet& b, sqlite3_stmt* st) {
                b.AddOutcome(TextView(st, 0), TextView(st, 1), TextView(st, 2), TextView(st, 3),
                             sqlite3_column_double(st, 4), sqlite3_column_int64(st, 5));
              });
}

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteEventSink>> SqliteEventSink::Open(const std::string& path) {
  std::unique_ptr<SqliteEventSink> sink(new SqliteEventSink());
  ABGATE_ASSIGN_OR_RETURN(sink->write_,
                          sqlite::Database::Open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, "event store"));
  sink->write_db_ = sink->write_->raw();
  ABGATE_RETURN_IF_ERROR(sink->write_->ExecScript("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"));
  ABGATE_RETURN_IF_ERROR(sink->write_->ExecScript("BEGIN IMMEDIATE"));
  ABGATE_RETURN_IF_ERROR(sink->write_->ExecScript(kSchema));
  {
    ABGATE_ASSIGN_OR_RETURN(const int64_t version, sink->write_->QueryInt("SELECT max(version) FROM schema_version"));
    if (version > kSchemaVersion) {
      sink->write_->ExecScript("ROLLBACK").IgnoreError();
      return absl::FailedPreconditionError(StrCat(path, " has event-store schema version ", version,
                                                  ", newer than this abgate (", kSchemaVersion, ")"));
    }
    if (!sink->write_->HasColumn("exposures", "assignment_probability")) {  // before version 4
      ABGATE_RETURN_IF_ERROR(sink->write_->ExecScript("ALTER TABLE exposures ADD COLUMN assignment_probability REAL"));
    }
    if (version < kBlocksSchemaVersion || !BlocksIntact(*sink->write_)) {
      if (!sink->write_->HasColumn("outcomes", "event_id")) {  // a version-1 store
        ABGATE_RETURN_IF_ERROR(sink->write_->ExecScript("ALTER TABLE outcomes ADD COLUMN event_id TEXT"));
      }
      ABGATE_RETURN_IF_ERROR(BackfillBlocks(*sink->write_));
    }
    if (version < kSchemaVersion) {
      ABGATE_RETURN_IF_ERROR(
          sink->write_->ExecScript(StrCat("INSERT INTO schema_version VALUES (", kSchemaVersion, ")").c_str()));
    }
    if (!sink->write_->HasColumn("experiment_configs", "version")) {  // stored before config versions
      ABGATE_RETURN_IF_ERROR(
          sink->write_->ExecScript("ALTER TABLE experiment_configs ADD COLUMN version INTEGER NOT NULL DEFAULT 0"));
    }
    ABGATE_RETURN_IF_ERROR(sink->write_->ExecScript(
        "CREATE UNIQUE INDEX IF NOT EXISTS outcomes_event_id ON outcomes (experiment, event_id) "
        "WHERE event_id IS NOT NULL"));
  }
  ABGATE_RETURN_IF_ERROR(sink->write_->ExecScript("COMMIT"));
  if (sqlite3_prepare_v3(sink->write_db_,
                         "INSERT INTO exposures (request_id, ts, experiment, unit_id, unit_random, arm, "
                         "assigned_arm, model_name, model_version, routing_mode, status, latency_us, score, "
                         "fallback, in_experiment, assignment_probability) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                         -1, SQLITE_PREPARE_PERSISTENT, &sink->insert_exposure_, nullptr) != SQLITE_OK ||
      sqlite3_prepare_v3(sink->write_db_,
                         "INSERT INTO audit_log (ts, actor, remote_addr, action, experiment, before, after) "
                         "VALUES (?,?,?,?,?,?,?)",
                         -1, SQLITE_PREPARE_PERSISTENT, &sink->insert_audit_, nullptr) != SQLITE_OK ||
      sqlite3_prepare_v3(sink->write_db_,
                         "INSERT OR IGNORE INTO outcomes (ts, experiment, request_id, unit_id, metric, value, event_id) "
                         "VALUES (?,?,?,?,?,?,?)",
                         -1, SQLITE_PREPARE_PERSISTENT, &sink->insert_outcome_, nullptr) != SQLITE_OK ||
      sqlite3_prepare_v3(sink->write_db_,
                         "INSERT INTO assignments (experiment, unit_id, arm, assigned_at, source, bucket_version) "
                         "VALUES (?,?,?,?,?,?) ON CONFLICT (experiment, unit_id) DO UPDATE SET arm = excluded.arm, "
                         "assigned_at = excluded.assigned_at, source = excluded.source, bucket_version = excluded.bucket_version "
                         "WHERE assignments.source = 'hash' OR excluded.source <> 'hash'",
                         -1, SQLITE_PREPARE_PERSISTENT, &sink->upsert_assignment_, nullptr) != SQLITE_OK ||
      sqlite3_prepare_v3(sink->write_db_, "DELETE FROM assignments WHERE experiment = ? AND unit_id = ?", -1,
                         SQLITE_PREPARE_PERSISTENT, &sink->delete_assignment_, nullptr) != SQLITE_OK ||
      sqlite3_prepare_v3(sink->write_db_,
                         "INSERT INTO payloads (request_id, ts, experiment, unit_id, arm, request, response, truncated) "
                         "VALUES (?,?,?,?,?,?,?,?)",
                         -1, SQLITE_PREPARE_PERSISTENT, &sink->insert_payload_, nullptr) != SQLITE_OK ||
      sqlite3_prepare_v3(sink->write_db_,
                         "INSERT INTO shadows (request_id, ts, experiment, arm, score, latency_us, shadow_arm, "
                         "shadow_score, shadow_latency_us, shadow_status) VALUES (?,?,?,?,?,?,?,?,?,?)",
                         -1, SQLITE_PREPARE_PERSISTENT, &sink->insert_shadow_, nullptr) != SQLITE_OK) {
    return sink->write_->Error("prepare");
  }
  ABGATE_ASSIGN_OR_RETURN(sink->read_,
                          sqlite::Database::Open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, "event store"));
  return sink;
}

SqliteEventSink::~SqliteEventSink() {
  sqlite3_finalize(insert_exposure_);
  sqlite3_finalize(insert_audit_);
  sqlite3_finalize(insert_outcome_);
  sqlite3_finalize(upsert_assignment_);
  sqlite3_finalize(delete_assignment_);
  sqlite3_finalize(insert_payload_);
  sqlite3_finalize(insert_shadow_);
}

absl::Status SqliteEventSink::WriteBatch(std::span<const Exposure> exposures, std::span<const AuditRecord> audit,
                                         std::span<const Outcome> outcomes, std::vector<bool>* outcome_stored,
                                         std::span<const Assignment> assignments) {
  // Acknowledged writes (outcomes, audit records with the admin changes they record) commit
  // with synchronous=FULL: the WAL is fsync'd before COMMIT returns, so an acknowledgement
  // survives a power loss. Exposure-only batches keep NORMAL (fsync at checkpoints): a crash of
  // the process loses nothing committed, a power loss may lose the last batches.
  const bool durable = !outcomes.empty() || !audit.empty();
  if (durable != durable_) {
    ABGATE_RETURN_IF_ERROR(write_->ExecScript(durable ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL"));
    durable_ = durable;
  }
  ABGATE_RETURN_IF_ERROR(write_->ExecScript("BEGIN IMMEDIATE"));
  auto abort = [this](absl::Status s) {
    write_->ExecScript("ROLLBACK").IgnoreError();
    return s;
  };
  auto fail = [&](std::string_view what) { return abort(write_->Error(what)); };
  // Rows someone else added since this sink's last batch are in no block: mark the blocks
  // broken for readers (and for the next Open, which rebuilds them).
  const bool blocks_change = !exposures.empty() || !outcomes.empty();
  static const std::string kMarkBroken =
      StrCat("UPDATE block_coverage SET intact = 0 WHERE intact = 1 AND last_rowid <> ", kCoverageCurrentRowid);
  static const std::string kAdvance = StrCat("UPDATE block_coverage SET last_rowid = ", kCoverageCurrentRowid);
  if (blocks_change) {
    if (auto s = write_->Exec(kMarkBroken); !s.ok()) return abort(s);
  }
  BlockSet blocks;
  sqlite3_stmt* st = insert_exposure_;
  for (const Exposure& e : exposures) {
    if (e.request_payload) {
      sqlite3_stmt* p = insert_payload_;
      BindText(p, 1, e.request_id);
      sqlite3_bind_int64(p, 2, e.ts_us);
      BindText(p, 3, e.experiment);
      BindText(p, 4, e.unit_id);
      BindText(p, 5, e.arm);
      BindText(p, 6, *e.request_payload);
      static const std::string kNoResponse;
      BindText(p, 7, e.response_payload ? *e.response_payload : kNoResponse);
      sqlite3_bind_int(p, 8, e.payload_truncated);
      const int prc = sqlite3_step(p);
      sqlite3_reset(p);
      if (prc != SQLITE_DONE) return fail("insert payload");
    }
    if (e.shadow) {
      sqlite3_stmt* p = insert_shadow_;
      BindText(p, 1, e.request_id);
      sqlite3_bind_int64(p, 2, e.ts_us);
      BindText(p, 3, e.experiment);
      BindText(p, 4, e.arm);
      BindOptionalDouble(p, 5, e.score);
      sqlite3_bind_int64(p, 6, e.latency_us);
      BindText(p, 7, e.shadow->arm);
      BindOptionalDouble(p, 8, e.shadow->score);
      sqlite3_bind_int64(p, 9, e.shadow->latency_us);
      sqlite3_bind_int(p, 10, e.shadow->status);
      const int src = sqlite3_step(p);
      sqlite3_reset(p);
      if (src != SQLITE_DONE) return fail("insert shadow");
    }
    BindText(st, 1, e.request_id);
    sqlite3_bind_int64(st, 2, e.ts_us);
    BindText(st, 3, e.experiment);
    BindOptionalText(st, 4, e.unit_id);
    sqlite3_bind_int(st, 5, e.unit_random);
    BindText(st, 6, e.arm);
    BindText(st, 7, e.assigned_arm);
    BindOptionalText(st, 8, e.model_name);
    BindOptionalText(st, 9, e.model_version);
    BindText(st, 10, e.routing_mode);
    sqlite3_bind_int(st, 11, e.status);
    sqlite3_bind_int64(st, 12, e.latency_us);
    BindOptionalDouble(st, 13, e.score);
    sqlite3_bind_int(st, 14, e.fallback);
    sqlite3_bind_int(st, 15, e.in_experiment);
    BindOptionalDouble(st, 16, e.assignment_probability);
    const int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return fail("insert exposure");
    blocks.AddExposure(e.experiment, e.request_id, e.unit_id, e.assigned_arm, e.model_version, e.ts_us, e.score,
                       e.in_experiment, e.assignment_probability);
  }
  st = insert_audit_;
  for (const AuditRecord& a : audit) {
    sqlite3_bind_int64(st, 1, a.ts_us);
    BindText(st, 2, a.actor);
    BindText(st, 3, a.remote_addr);
    BindText(st, 4, a.action);
    BindText(st, 5, a.experiment);
    BindText(st, 6, a.before_json);
    BindText(st, 7, a.after_json);
    const int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return fail("insert audit");
  }
  if (outcome_stored) outcome_stored->assign(outcomes.size(), false);
  st = insert_outcome_;
  for (size_t i = 0; i < outcomes.size(); ++i) {
    const Outcome& o = outcomes[i];
    sqlite3_bind_int64(st, 1, o.ts_us);
    BindText(st, 2, o.experiment);
    BindOptionalText(st, 3, o.request_id);
    BindOptionalText(st, 4, o.unit_id);
    BindText(st, 5, o.metric);
    sqlite3_bind_double(st, 6, o.value);
    BindOptionalText(st, 7, o.event_id);
    const int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return fail("insert outcome");
    const bool stored = sqlite3_changes(write_db_) > 0;  // not a repeated event_id
    if (outcome_stored) (*outcome_stored)[i] = stored;
    if (stored) blocks.AddOutcome(o.experiment, o.request_id, o.unit_id, o.metric, o.value, o.ts_us);
  }
  if (auto b = WriteBlocks(*write_, blocks.Finish()); !b.ok()) return abort(b);
  if (blocks_change) {
    if (auto s = write_->Exec(kAdvance); !s.ok()) return abort(s);
  }
  for (const Assignment& a : assignments) {
    st = a.remove ? delete_assignment_ : upsert_assignment_;
    BindText(st, 1, a.experiment);
    BindText(st, 2, a.unit_id);
    if (!a.remove) {
      BindText(st, 3, a.arm);
      sqlite3_bind_int64(st, 4, a.assigned_at_us);
      BindText(st, 5, a.source);
      sqlite3_bind_int64(st, 6, a.bucket_version);
    }
    const int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return fail("write assignment");
  }
  if (sqlite3_exec(write_db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) return fail("commit");
  return absl::OkStatus();
}

// The read connection's calls go through sqlite::Database (cached statements); only the
// batch writer's hot inserts are prepared by hand.

absl::StatusOr<std::vector<Assignment>> SqliteEventSink::ReadAssignments(const std::string& experiment) {
  common::MutexLock lock(read_mu_);
  std::vector<Assignment> out;
  ABGATE_RETURN_IF_ERROR(read_->Query(
      "SELECT unit_id, arm, assigned_at, source, bucket_version FROM assignments WHERE experiment = ?", {experiment},
      [&](sqlite3_stmt* st) {
        out.push_back({experiment, sqlite::Text(st, 0), sqlite::Text(st, 1), sqlite3_column_int64(st, 2),
                       sqlite::Text(st, 3), sqlite3_column_int64(st, 4), false});
      }));
  return out;
}

absl::StatusOr<int64_t> SqliteEventSink::EnsureExperimentStart(const std::string& experiment, int64_t now_us) {
  common::MutexLock lock(read_mu_);
  ABGATE_RETURN_IF_ERROR(
      read_->Exec("INSERT OR IGNORE INTO experiment_state (name, started_at) VALUES (?, ?)", {experiment, now_us}));
  return read_->QueryInt("SELECT started_at FROM experiment_state WHERE name = ?", {experiment}, now_us);
}

absl::StatusOr<int64_t> SqliteEventSink::SaveExperimentConfigs(std::span<const ConfigChange> changes,
                                                                int64_t base_version,
                                                                std::span<const AuditRecord> audit, int64_t now_us,
                                                                std::span<const BanditUpdate> bandit) {
  if (changes.empty()) return absl::InvalidArgumentError("no experiment changed");
  common::MutexLock lock(read_mu_);
  int64_t version = 0;
  ABGATE_RETURN_IF_ERROR(read_->Transaction([&]() -> absl::Status {
    read_mu_.AssertHeld();  // run by Transaction, within this scope
    ABGATE_ASSIGN_OR_RETURN(const int64_t stored,
                            read_->QueryInt("SELECT version FROM experiment_configs WHERE name = ?", {changes[0].name}));
    if (stored > base_version) {
      return absl::AbortedError(StrCat("experiment ", changes[0].name, " was changed at config version ", stored,
                                       ", after version ", base_version));
    }
    // One writer (BEGIN IMMEDIATE), so the next version is the largest plus one; 1 is the YAML.
    ABGATE_ASSIGN_OR_RETURN(version, read_->QueryInt("SELECT max(coalesce(max(version), 0), 1) + 1 FROM experiment_configs"));
    for (const ConfigChange& c : changes) {
      ABGATE_RETURN_IF_ERROR(read_->Exec(
          "INSERT OR REPLACE INTO experiment_configs (name, config, updated_at, version) VALUES (?, ?, ?, ?)",
          {c.name, c.config_json, now_us, version}));
    }
    for (const AuditRecord& a : audit) {
      ABGATE_RETURN_IF_ERROR(read_->Exec(
          "INSERT INTO audit_log (ts, actor, remote_addr, action, experiment, before, after) VALUES (?, ?, ?, ?, ?, ?, ?)",
          {a.ts_us, a.actor, a.remote_addr, a.action, a.experiment, a.before_json, a.after_json}));
    }
    for (const BanditUpdate& b : bandit) {
      ABGATE_RETURN_IF_ERROR(
          read_->Exec("INSERT INTO bandit_weights (experiment, ts, version, weights, evidence) VALUES (?, ?, ?, ?, ?)",
                      {b.experiment, b.ts_us, version, b.weights_json, b.evidence_json}));
    }
    return absl::OkStatus();
  }));
  return version;
}

absl::StatusOr<int64_t> SqliteEventSink::LastBanditUpdateUs(const std::string& experiment) {
  common::MutexLock lock(read_mu_);
  return read_->QueryInt("SELECT coalesce(max(ts), 0) FROM bandit_weights WHERE experiment = ?", {experiment});
}

absl::StatusOr<std::vector<EventSink::StoredConfig>> SqliteEventSink::LoadExperimentConfigs() {
  common::MutexLock lock(read_mu_);
  std::vector<StoredConfig> out;
  ABGATE_RETURN_IF_ERROR(read_->Query("SELECT name, config, updated_at, version FROM experiment_configs ORDER BY name",
                                      {}, [&](sqlite3_stmt* st) {
                                        out.push_back({sqlite::Text(st, 0), sqlite::Text(st, 1),
                                                       sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3)});
                                      }));
  return out;
}

absl::Status SqliteEventSink::SaveReplica(const Replica& r, int64_t now_us) {
  common::MutexLock lock(read_mu_);
  return read_->Exec(
      "INSERT OR REPLACE INTO replicas (id, address, build, applied_version, started_at, heartbeat) "
      "VALUES (?, ?, ?, ?, ?, ?)",
      {r.id, r.address, r.build, r.applied_version, r.started_us, now_us});
}

absl::Status SqliteEventSink::RemoveReplica(const std::string& id) {
  common::MutexLock lock(read_mu_);
  return read_->Exec("DELETE FROM replicas WHERE id = ?", {id});
}

absl::StatusOr<std::vector<EventSink::Replica>> SqliteEventSink::ReadReplicas(int64_t now_us) {
  common::MutexLock lock(read_mu_);
  std::vector<Replica> out;
  ABGATE_RETURN_IF_ERROR(read_->Query(
      "SELECT id, address, build, applied_version, started_at, ? - heartbeat FROM replicas ORDER BY id", {now_us},
      [&](sqlite3_stmt* st) {
        out.push_back({sqlite::Text(st, 0), sqlite::Text(st, 1), sqlite::Text(st, 2), sqlite3_column_int64(st, 3),
                       sqlite3_column_int64(st, 4), sqlite3_column_int64(st, 5)});
      }));
  return out;
}

absl::StatusOr<std::vector<AuditRecord>> SqliteEventSink::ReadAudit(const std::string& experiment, int limit) {
  common::MutexLock lock(read_mu_);
  std::vector<sqlite::Database::Value> args;
  if (!experiment.empty()) args.emplace_back(experiment);
  args.emplace_back(int64_t{limit});
  std::vector<AuditRecord> out;
  ABGATE_RETURN_IF_ERROR(read_->Query(
      StrCat("SELECT ts, actor, remote_addr, action, experiment, before, after FROM audit_log ",
             experiment.empty() ? "" : "WHERE experiment = ? ", "ORDER BY id DESC LIMIT ?"),
      args, [&](sqlite3_stmt* st) {
        using sqlite::Text;
        out.push_back({sqlite3_column_int64(st, 0), Text(st, 1), Text(st, 2), Text(st, 3), Text(st, 4), Text(st, 5),
                       Text(st, 6)});
      }));
  return out;
}

absl::StatusOr<int64_t> SqliteEventSink::CountExposures(const std::string& experiment) {
  common::MutexLock lock(read_mu_);
  return read_->QueryInt("SELECT count(*) FROM exposures WHERE experiment = ?", {experiment});
}

absl::StatusOr<Assignment> SqliteEventSink::ClaimAssignment(const Assignment& a) {
  // One process owns a SQLite store, so its in-memory view is authoritative; the claim exists
  // for interface parity and runs on the read connection.
  common::MutexLock lock(read_mu_);
  ABGATE_RETURN_IF_ERROR(read_->Exec(
      "INSERT INTO assignments (experiment, unit_id, arm, assigned_at, source, bucket_version) "
      "VALUES (?,?,?,?,?,?) ON CONFLICT (experiment, unit_id) DO UPDATE SET arm = excluded.arm, "
      "assigned_at = excluded.assigned_at, source = excluded.source, bucket_version = excluded.bucket_version "
      "WHERE assignments.source = 'hash' AND assignments.bucket_version < excluded.bucket_version",
      {a.experiment, a.unit_id, a.arm, a.assigned_at_us, a.source, a.bucket_version}));
  std::optional<Assignment> out;
  ABGATE_RETURN_IF_ERROR(read_->Query(
      "SELECT arm, assigned_at, source, bucket_version FROM assignments WHERE experiment = ? AND unit_id = ?",
      {a.experiment, a.unit_id}, [&](sqlite3_stmt* st) {
        out = Assignment{a.experiment,        a.unit_id, sqlite::Text(st, 0), sqlite3_column_int64(st, 1),
                         sqlite::Text(st, 2), sqlite3_column_int64(st, 3), false};
      }));
  if (!out) return absl::InternalError("the claimed assignment is missing");
  return *std::move(out);
}

}  // namespace abgate::events

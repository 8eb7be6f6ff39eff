#include "events/postgres_event_sink.h"

#include <poll.h>

#include <cerrno>
#include <vector>

#include "common/logging.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "events/event_blocks.h"

namespace abgate::events {
namespace {

// The same tables and column types as the SQLite store (timestamps are integer microseconds
// since the epoch; flags are 0/1 integers), so the same SQL reads both.
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS exposures (
  request_id TEXT NOT NULL, ts BIGINT NOT NULL, experiment TEXT NOT NULL, unit_id TEXT,
  unit_random INTEGER NOT NULL, arm TEXT NOT NULL, assigned_arm TEXT NOT NULL, model_name TEXT,
  model_version TEXT, routing_mode TEXT NOT NULL, status INTEGER NOT NULL, latency_us BIGINT NOT NULL,
  score DOUBLE PRECISION, fallback INTEGER NOT NULL, in_experiment INTEGER NOT NULL);
ALTER TABLE exposures ADD COLUMN IF NOT EXISTS assignment_probability DOUBLE PRECISION;
CREATE INDEX IF NOT EXISTS exposures_experiment ON exposures (experiment);
CREATE TABLE IF NOT EXISTS bandit_weights (
  experiment TEXT NOT NULL, ts BIGINT NOT NULL, version BIGINT NOT NULL, weights TEXT NOT NULL, evidence TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS bandit_weights_experiment ON bandit_weights (experiment, ts);
CREATE TABLE IF NOT EXISTS payloads (
  request_id TEXT NOT NULL, ts BIGINT NOT NULL, experiment TEXT NOT NULL, unit_id TEXT NOT NULL,
  arm TEXT NOT NULL, request BYTEA NOT NULL, response BYTEA NOT NULL, truncated INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outcomes (
  ts BIGINT NOT NULL, experiment TEXT NOT NULL, request_id TEXT, unit_id TEXT, metric TEXT NOT NULL,
  value DOUBLE PRECISION NOT NULL, event_id TEXT);
CREATE UNIQUE INDEX IF NOT EXISTS outcomes_event_id ON outcomes (experiment, event_id) WHERE event_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS assignments (
  experiment TEXT NOT NULL, unit_id TEXT NOT NULL, arm TEXT NOT NULL, assigned_at BIGINT NOT NULL,
  source TEXT NOT NULL, bucket_version BIGINT NOT NULL, PRIMARY KEY (experiment, unit_id));
CREATE TABLE IF NOT EXISTS shadows (
  request_id TEXT NOT NULL, ts BIGINT NOT NULL, experiment TEXT NOT NULL, arm TEXT NOT NULL, score DOUBLE PRECISION,
  latency_us BIGINT NOT NULL, shadow_arm TEXT NOT NULL, shadow_score DOUBLE PRECISION, shadow_latency_us BIGINT NOT NULL,
  shadow_status INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS audit_log (
  id BIGSERIAL PRIMARY KEY, ts BIGINT NOT NULL, actor TEXT NOT NULL, remote_addr TEXT NOT NULL,
  action TEXT NOT NULL, experiment TEXT NOT NULL, before TEXT NOT NULL, after TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS experiment_state (name TEXT PRIMARY KEY, started_at BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS experiment_configs (name TEXT PRIMARY KEY, config TEXT NOT NULL, updated_at BIGINT NOT NULL);
ALTER TABLE experiment_configs ADD COLUMN IF NOT EXISTS version BIGINT NOT NULL DEFAULT 0;
CREATE SEQUENCE IF NOT EXISTS experiment_config_version START 2;
CREATE TABLE IF NOT EXISTS replicas (
  id TEXT PRIMARY KEY, address TEXT NOT NULL, build TEXT NOT NULL, applied_version BIGINT NOT NULL,
  started_at BIGINT NOT NULL, heartbeat BIGINT NOT NULL);
DO $$ DECLARE t TEXT; BEGIN
  FOREACH t IN ARRAY ARRAY['exposure_blocks', 'outcome_blocks'] LOOP
    IF to_regclass(t) IS NULL THEN
      EXECUTE format('CREATE TABLE %I (id BIGSERIAL PRIMARY KEY, experiment TEXT NOT NULL, min_ts BIGINT NOT NULL, '
                     'max_ts BIGINT NOT NULL, rows BIGINT NOT NULL, source_rows BIGINT NOT NULL, '
                     'data BYTEA NOT NULL)', t);
      EXECUTE format('ALTER TABLE %I ALTER COLUMN data SET STORAGE EXTERNAL', t);
      EXECUTE format('CREATE INDEX %I ON %I (experiment, id)', t || '_experiment', t);
    END IF;
  END LOOP;
  -- Payloads are the bytes the client sent (raw text/csv, cut at payload_max_bytes: not always
  -- UTF-8), so they are stored as bytes; stores made before kept them as text.
  IF (SELECT data_type FROM information_schema.columns WHERE table_schema = current_schema()
      AND table_name = 'payloads' AND column_name = 'request') = 'text' THEN
    ALTER TABLE payloads ALTER COLUMN request TYPE BYTEA USING convert_to(request, 'UTF8'),
                         ALTER COLUMN response TYPE BYTEA USING convert_to(response, 'UTF8');
  END IF;
  IF to_regclass('outcomes_experiment') IS NULL THEN
    CREATE INDEX outcomes_experiment ON outcomes (experiment);
  END IF;
  -- The transaction that wrote each event block and shadow row (PostgreSQL 13+), so a reader
  -- resumes after its last snapshot (see below). Added, then given its default: a volatile
  -- default on ADD COLUMN would rewrite the table and stamp every old row with this
  -- transaction's id. Old rows stay NULL: committed before any reader's cursor existed.
  IF current_setting('server_version_num')::int >= 130000 THEN
    FOREACH t IN ARRAY ARRAY['exposure_blocks', 'outcome_blocks', 'shadows'] LOOP
      IF NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()
                     AND table_name = t AND column_name = 'xid') THEN
        EXECUTE format('ALTER TABLE %I ADD COLUMN xid xid8', t);
        EXECUTE format('ALTER TABLE %I ALTER COLUMN xid SET DEFAULT pg_current_xact_id()', t);
        EXECUTE format('CREATE INDEX %I ON %I (experiment, xid)', t || '_xid', t);
      END IF;
    END LOOP;
  END IF;
END $$;
)sql";
// Event blocks (events/event_blocks.h) are written with the rows, in the same transaction,
// stored uncompressed (they are dense numbers; pglz would cost the writer for little). Each
// block says how many rows of its table it stands for (`source_rows`, out-of-experiment
// exposures included): readers use the blocks of an experiment only when those add up to its
// rows — rows written by an abgate without blocks (a rolling upgrade) or by hand are otherwise
// read as rows. outcomes_experiment makes that count cheap.
// Column `xid` (exposure_blocks, outcome_blocks, shadows) is the writing transaction's id
// (pg_current_xact_id(), the top-level one): block ids come from a sequence, taken at insert,
// not at commit, so with several gateways on one store a block with a lower id can commit after
// one with a higher id was read. A reader keeps its scan's snapshot (pg_current_snapshot()) and
// reads next only the rows whose transaction that snapshot did not see
// (NOT pg_visible_in_snapshot(xid, snapshot), bounded below by pg_snapshot_xmin(snapshot) so
// the (experiment, xid) index finds them).

struct Statement {
  const char* name;
  const char* sql;
  int params;
};

constexpr Statement kStatements[] = {
    {"insert_exposure",
     "INSERT INTO exposures (request_id, ts, experiment, unit_id, unit_random, arm, assigned_arm, model_name, "
     "model_version, routing_mode, status, latency_us, score, fallback, in_experiment, assignment_probability) "
     "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16)",
     16},
    {"insert_shadow",
     "INSERT INTO shadows (request_id, ts, experiment, arm, score, latency_us, shadow_arm, shadow_score, "
     "shadow_latency_us, shadow_status) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)",
     10},
    {"insert_payload",
     "INSERT INTO payloads (request_id, ts, experiment, unit_id, arm, request, response, truncated) "
     "VALUES ($1,$2,$3,$4,$5,$6,$7,$8)",
     8},
    {"insert_audit",
     "INSERT INTO audit_log (ts, actor, remote_addr, action, experiment, before, after) VALUES ($1,$2,$3,$4,$5,$6,$7)", 7},
    {"insert_outcome",
     "INSERT INTO outcomes (ts, experiment, request_id, unit_id, metric, value, event_id) VALUES ($1,$2,$3,$4,$5,$6,$7) "
     "ON CONFLICT (experiment, event_id) WHERE event_id IS NOT NULL DO NOTHING",
     7},
    {"upsert_assignment",
     "INSERT INTO assignments (experiment, unit_id, arm, assigned_at, source, bucket_version) VALUES ($1,$2,$3,$4,$5,$6) "
     "ON CONFLICT (experiment, unit_id) DO UPDATE SET arm = excluded.arm, assigned_at = excluded.assigned_at, "
     "source = excluded.source, bucket_version = excluded.bucket_version "
     "WHERE assignments.source = 'hash' OR excluded.source <> 'hash'",
     6},
    {"delete_assignment", "DELETE FROM assignments WHERE experiment = $1 AND unit_id = $2", 2},
    {"insert_exposure_block",
     "INSERT INTO exposure_blocks (experiment, min_ts, max_ts, rows, source_rows, data) VALUES ($1,$2,$3,$4,$5,$6)", 6},
    {"insert_outcome_block",
     "INSERT INTO outcome_blocks (experiment, min_ts, max_ts, rows, source_rows, data) VALUES ($1,$2,$3,$4,$5,$6)", 6},
};

using postgres::Connection;
using postgres::Params;
using postgres::Result;

Params BlockParams(const EncodedBlock& b) {
  Params p;
  p.Text(b.experiment).Int(b.min_ts).Int(b.max_ts).Int(b.rows).Int(b.source_rows).Binary(b.data);
  return p;
}

}  // namespace


absl::StatusOr<std::unique_ptr<PostgresEventSink>> PostgresEventSink::Open(const std::string& uri) {
  std::unique_ptr<PostgresEventSink> sink(new PostgresEventSink(uri));
  ABGATE_ASSIGN_OR_RETURN(Connection c, Connection::Connect(uri));
  // Gateways starting together must not race on CREATE ... IF NOT EXISTS.
  ABGATE_RETURN_IF_ERROR(c.Exec("SELECT pg_advisory_lock(717171)"));
  absl::Status schema = c.Exec(kSchema);
  ABGATE_RETURN_IF_ERROR(c.Exec("SELECT pg_advisory_unlock(717171)"));
  ABGATE_RETURN_IF_ERROR(schema);
  ABGATE_RETURN_IF_ERROR(sink->ConnectWriter());
  {
    common::MutexLock lock(sink->read_mu_);
    ABGATE_RETURN_IF_ERROR(sink->ConnectReader());
  }
  return sink;
}

PostgresEventSink::PostgresEventSink(std::string uri) : uri_(std::move(uri)) {}

PostgresEventSink::~PostgresEventSink() = default;

absl::Status PostgresEventSink::ConnectWriter() {
  if (write_.ok()) return absl::OkStatus();
  ABGATE_ASSIGN_OR_RETURN(Connection c, Connection::Connect(uri_));
  for (const auto& s : kStatements) ABGATE_RETURN_IF_ERROR(c.Prepare(s.name, s.sql, s.params));
  write_ = std::move(c);
  return absl::OkStatus();
}

absl::Status PostgresEventSink::ConnectReader() {
  if (read_.ok()) return absl::OkStatus();
  ABGATE_ASSIGN_OR_RETURN(read_, Connection::Connect(uri_));
  return absl::OkStatus();
}

absl::Status PostgresEventSink::WriteBatch(std::span<const Exposure> exposures, std::span<const AuditRecord> audit,
                                           std::span<const Outcome> outcomes, std::vector<bool>* outcome_stored,
                                           std::span<const Assignment> assignments) {
  if (outcome_stored) outcome_stored->assign(outcomes.size(), false);
  // A connection lost in an outage (server stopped, network cut) is replaced here, on the next
  // batch: the writer retries with backoff while this fails.
  ABGATE_RETURN_IF_ERROR(ConnectWriter());
  // One transaction, sent as a pipeline: BEGIN, one prepared INSERT per row (and the event
  // blocks of the exposures), COMMIT, then read every result. With outcomes the pipeline stops
  // before COMMIT: which outcomes were stored (not repeated event ids) is only known from the
  // results, and their blocks go in a second pipeline with the COMMIT. An error aborts the rest
  // of the pipeline and the transaction.
  ABGATE_RETURN_IF_ERROR(write_.EnterPipeline());
  enum class Kind { kOther, kOutcome };
  std::vector<Kind> sent;
  auto send = [&](const char* statement, const Params& params, Kind kind) {
    if (!write_.SendPrepared(statement, params)) return false;
    sent.push_back(kind);
    return true;
  };
  auto send_sql = [&](const char* sql) {
    if (!write_.SendQuery(sql)) return false;
    sent.push_back(Kind::kOther);
    return true;
  };
  // Sends the sync and reads every result sent so far; outcome results go to `stored`. The
  // first failure decides the status (later statements only say "aborted").
  absl::Status status;
  std::vector<bool> stored;
  auto finish_pipeline = [&](bool queued) {
    if (!queued && status.ok()) status = write_.Error("send");
    if (!write_.PipelineSync() && status.ok()) status = write_.Error("sync");
    // Read one result set per query sent (each followed by a NULL), then the sync marker.
    for (Kind kind : sent) {
      Result r = write_.NextResult();
      if (!r.ok() && status.ok()) {
        status = r && r.status() == PGRES_PIPELINE_ABORTED ? absl::AbortedError("postgresql batch aborted")
                                                           : write_.Error("write batch", &r);
      }
      if (kind == Kind::kOutcome) stored.push_back(r && r.AffectedRows() == 1);
      while (write_.NextResult()) {
      }
    }
    sent.clear();
    while (Result r = write_.NextResult()) {
      if (r.status() == PGRES_PIPELINE_SYNC) break;
    }
  };

  bool queued = send_sql("BEGIN");
  BlockSet blocks;
  for (const Exposure& e : exposures) {
    if (!queued) break;
    Params p;
    p.Text(e.request_id).Int(e.ts_us).Text(e.experiment).OptionalText(e.unit_id).Bool(e.unit_random).Text(e.arm)
        .Text(e.assigned_arm).OptionalText(e.model_name).OptionalText(e.model_version).Text(e.routing_mode)
        .Int(e.status).Int(e.latency_us).OptionalDouble(e.score).Bool(e.fallback).Bool(e.in_experiment)
        .OptionalDouble(e.assignment_probability);
    queued = send("insert_exposure", p, Kind::kOther);
    blocks.AddExposure(e.experiment, e.request_id, e.unit_id, e.assigned_arm, e.model_version, e.ts_us, e.score,
                       e.in_experiment, e.assignment_probability);
    if (queued && e.request_payload) {
      // Bytes as bytes (bytea): a raw body need not be UTF-8.
      Params q;
      q.Text(e.request_id).Int(e.ts_us).Text(e.experiment).Text(e.unit_id).Text(e.arm).Binary(*e.request_payload)
          .Binary(e.response_payload ? *e.response_payload : std::string()).Bool(e.payload_truncated);
      queued = send("insert_payload", q, Kind::kOther);
    }
    if (queued && e.shadow) {
      Params q;
      q.Text(e.request_id).Int(e.ts_us).Text(e.experiment).Text(e.arm).OptionalDouble(e.score).Int(e.latency_us)
          .Text(e.shadow->arm).OptionalDouble(e.shadow->score).Int(e.shadow->latency_us).Int(e.shadow->status);
      queued = send("insert_shadow", q, Kind::kOther);
    }
  }
  for (const EncodedBlock& b : blocks.Finish(/*keep_empty=*/true)) {
    if (queued) queued = send("insert_exposure_block", BlockParams(b), Kind::kOther);
  }
  for (const AuditRecord& a : audit) {
    if (!queued) break;
    Params p;
    p.Int(a.ts_us).Text(a.actor).Text(a.remote_addr).Text(a.action).Text(a.experiment).Text(a.before_json).Text(a.after_json);
    queued = send("insert_audit", p, Kind::kOther);
  }
  for (const Outcome& o : outcomes) {
    if (!queued) break;
    Params p;
    p.Int(o.ts_us).Text(o.experiment).OptionalText(o.request_id).OptionalText(o.unit_id).Text(o.metric).Double(o.value)
        .OptionalText(o.event_id);
    queued = send("insert_outcome", p, Kind::kOutcome);
  }
  for (const Assignment& a : assignments) {
    if (!queued) break;
    Params p;
    if (a.remove) {
      p.Text(a.experiment).Text(a.unit_id);
      queued = send("delete_assignment", p, Kind::kOther);
    } else {
      p.Text(a.experiment).Text(a.unit_id).Text(a.arm).Int(a.assigned_at_us).Text(a.source).Int(a.bucket_version);
      queued = send("upsert_assignment", p, Kind::kOther);
    }
  }
  if (outcomes.empty()) {
    if (queued) queued = send_sql("COMMIT");
    finish_pipeline(queued);
  } else {
    finish_pipeline(queued);
    if (status.ok()) {
      for (size_t i = 0; i < outcomes.size() && i < stored.size(); ++i) {
        const Outcome& o = outcomes[i];
        if (stored[i]) blocks.AddOutcome(o.experiment, o.request_id, o.unit_id, o.metric, o.value, o.ts_us);
      }
      queued = true;
      for (const EncodedBlock& b : blocks.Finish(/*keep_empty=*/true)) {
        if (queued) queued = send("insert_outcome_block", BlockParams(b), Kind::kOther);
      }
      if (queued) queued = send_sql("COMMIT");
      finish_pipeline(queued);
    }
  }
  write_.ExitPipeline();
  if (!status.ok()) {
    // An aborted transaction block ends with the sync; make sure nothing is left open.
    if (write_.ok()) (void)write_.Exec("ROLLBACK");
    return status;
  }
  if (outcome_stored) *outcome_stored = std::move(stored);
  return absl::OkStatus();
}

absl::StatusOr<Result> PostgresEventSink::Read(const char* sql, const Params& params) {
  ABGATE_RETURN_IF_ERROR(ConnectReader());
  return read_.Query(sql, params);
}

absl::StatusOr<int64_t> PostgresEventSink::EnsureExperimentStart(const std::string& experiment, int64_t now_us) {
  common::MutexLock lock(read_mu_);
  Params p;
  p.Text(experiment).Int(now_us);
  ABGATE_ASSIGN_OR_RETURN(Result inserted, Read("INSERT INTO experiment_state (name, started_at) VALUES ($1, $2) "
                                                "ON CONFLICT (name) DO NOTHING", p));
  Params q;
  q.Text(experiment);
  ABGATE_ASSIGN_OR_RETURN(Result r, Read("SELECT started_at FROM experiment_state WHERE name = $1", q));
  return r.rows() == 1 ? r.Int(0, 0) : now_us;
}

absl::StatusOr<int64_t> PostgresEventSink::SaveExperimentConfigs(std::span<const ConfigChange> changes,
                                                                  int64_t base_version,
                                                                  std::span<const AuditRecord> audit, int64_t now_us,
                                                                  std::span<const BanditUpdate> bandit) {
  if (changes.empty()) return absl::InvalidArgumentError("no experiment changed");
  common::MutexLock lock(read_mu_);
  ABGATE_RETURN_IF_ERROR(ConnectReader());
  ABGATE_RETURN_IF_ERROR(read_.Exec("BEGIN"));
  auto body = [&]() -> absl::StatusOr<int64_t> {
    read_mu_.AssertHeld();  // called below, within this scope
    ABGATE_ASSIGN_OR_RETURN(Result next, read_.Query("SELECT nextval('experiment_config_version')"));
    const int64_t version = next.Int(0, 0);
    for (size_t i = 0; i < changes.size(); ++i) {
      // The first row is checked: a concurrent insert of the same name waits for the other
      // transaction and then sees its row, so of two changes based on one version one fails.
      Params p;
      p.Text(changes[i].name).Text(changes[i].config_json).Int(now_us).Int(version).Int(i == 0 ? base_version : version);
      ABGATE_ASSIGN_OR_RETURN(
          Result r, read_.Query("INSERT INTO experiment_configs (name, config, updated_at, version) "
                                "VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO UPDATE SET config = excluded.config, "
                                "updated_at = excluded.updated_at, version = excluded.version "
                                "WHERE experiment_configs.version <= $5 RETURNING version",
                                p));
      if (r.rows() != 1) {
        Params q;
        q.Text(changes[i].name);
        ABGATE_ASSIGN_OR_RETURN(Result stored, read_.Query("SELECT version FROM experiment_configs WHERE name = $1", q));
        return absl::AbortedError(StrCat("experiment ", changes[i].name, " was changed at config version ",
                                         stored.rows() == 1 ? stored.Text(0, 0) : "?", ", after version ",
                                         base_version));
      }
    }
    for (const AuditRecord& a : audit) {
      Params p;
      p.Int(a.ts_us).Text(a.actor).Text(a.remote_addr).Text(a.action).Text(a.experiment).Text(a.before_json)
          .Text(a.after_json);
      ABGATE_RETURN_IF_ERROR(read_.Query("INSERT INTO audit_log (ts, actor, remote_addr, action, experiment, before, "
                                         "after) VALUES ($1,$2,$3,$4,$5,$6,$7)", p)
                                 .status());
    }
    for (const BanditUpdate& b : bandit) {
      Params p;
      p.Text(b.experiment).Int(b.ts_us).Int(version).Text(b.weights_json).Text(b.evidence_json);
      ABGATE_RETURN_IF_ERROR(read_.Query("INSERT INTO bandit_weights (experiment, ts, version, weights, evidence) "
                                         "VALUES ($1,$2,$3,$4,$5)", p)
                                 .status());
    }
    // Delivered to the listeners when the transaction commits, never before.
    Params n;
    n.Int(version);
    ABGATE_RETURN_IF_ERROR(read_.Query("SELECT pg_notify('abgate_config', $1)", n).status());
    return version;
  };
  absl::StatusOr<int64_t> version = body();
  if (version.ok()) {
    if (absl::Status s = read_.Exec("COMMIT"); !s.ok()) version = s;
  }
  if (!version.ok() && read_.ok()) read_.Exec("ROLLBACK").IgnoreError();
  return version;
}

absl::StatusOr<int64_t> PostgresEventSink::LastBanditUpdateUs(const std::string& experiment) {
  common::MutexLock lock(read_mu_);
  Params p;
  p.Text(experiment);
  ABGATE_ASSIGN_OR_RETURN(Result r, Read("SELECT coalesce(max(ts), 0) FROM bandit_weights WHERE experiment = $1", p));
  return r.Int(0, 0);
}

absl::StatusOr<std::vector<EventSink::StoredConfig>> PostgresEventSink::LoadExperimentConfigs() {
  common::MutexLock lock(read_mu_);
  ABGATE_ASSIGN_OR_RETURN(Result r,
                          Read("SELECT name, config, updated_at, version FROM experiment_configs ORDER BY name", {}));
  std::vector<StoredConfig> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back({r.Text(i, 0), r.Text(i, 1), r.Int(i, 2), r.Int(i, 3)});
  return out;
}

namespace {

// LISTEN abgate_config on a connection of its own.
class PostgresConfigFeed final : public EventSink::ConfigFeed {
 public:
  explicit PostgresConfigFeed(Connection c) : c_(std::move(c)) {}

  absl::StatusOr<bool> Wait(std::chrono::milliseconds timeout) override {
    if (PQconsumeInput(c_.get()) != 1) return c_.Error("listen");
    if (Drain()) return true;
    pollfd fd{PQsocket(c_.get()), POLLIN, 0};
    if (fd.fd < 0) return c_.Error("listen");
    const int ready = poll(&fd, 1, static_cast<int>(timeout.count()));
    if (ready < 0 && errno != EINTR) return absl::UnavailableError("postgresql listen: poll failed");
    if (ready <= 0) return false;
    if (PQconsumeInput(c_.get()) != 1) return c_.Error("listen");
    return Drain();
  }

 private:
  bool Drain() {
    bool any = false;
    while (PGnotify* n = PQnotifies(c_.get())) {
      any = true;
      PQfreemem(n);
    }
    return any;
  }
  Connection c_;
};

// Heartbeats in the store's clock (microseconds), so replicas on machines with skewed clocks
// compare fairly.
constexpr const char* kStoreNowUs = "(extract(epoch from clock_timestamp()) * 1000000)::bigint";

}  // namespace

absl::StatusOr<std::unique_ptr<EventSink::ConfigFeed>> PostgresEventSink::OpenConfigFeed() {
  ABGATE_ASSIGN_OR_RETURN(Connection c, Connection::Connect(uri_));
  ABGATE_RETURN_IF_ERROR(c.Exec("LISTEN abgate_config"));
  return std::unique_ptr<ConfigFeed>(std::make_unique<PostgresConfigFeed>(std::move(c)));
}

absl::Status PostgresEventSink::SaveReplica(const Replica& rep, int64_t) {
  common::MutexLock lock(read_mu_);
  Params p;
  p.Text(rep.id).Text(rep.address).Text(rep.build).Int(rep.applied_version).Int(rep.started_us);
  return Read(StrCat("INSERT INTO replicas (id, address, build, applied_version, started_at, heartbeat) "
                     "VALUES ($1, $2, $3, $4, $5, ", kStoreNowUs, ") ON CONFLICT (id) DO UPDATE SET "
                     "address = excluded.address, build = excluded.build, applied_version = excluded.applied_version, "
                     "started_at = excluded.started_at, heartbeat = excluded.heartbeat").c_str(),
              p)
      .status();
}

absl::Status PostgresEventSink::RemoveReplica(const std::string& id) {
  common::MutexLock lock(read_mu_);
  Params p;
  p.Text(id);
  return Read("DELETE FROM replicas WHERE id = $1", p).status();
}

absl::StatusOr<std::vector<EventSink::Replica>> PostgresEventSink::ReadReplicas(int64_t) {
  common::MutexLock lock(read_mu_);
  ABGATE_ASSIGN_OR_RETURN(Result r, Read(StrCat("SELECT id, address, build, applied_version, started_at, ",
                                                kStoreNowUs, " - heartbeat FROM replicas ORDER BY id").c_str(),
                                         {}));
  std::vector<Replica> out;
  for (int i = 0; i < r.rows(); ++i) {
    out.push_back({r.Text(i, 0), r.Text(i, 1), r.Text(i, 2), r.Int(i, 3), r.Int(i, 4), r.Int(i, 5)});
  }
  return out;
}

absl::StatusOr<std::vector<AuditRecord>> PostgresEventSink::ReadAudit(const std::string& experiment, int limit) {
  common::MutexLock lock(read_mu_);
  Params p;
  p.Text(experiment).Int(limit);
  ABGATE_ASSIGN_OR_RETURN(Result r, Read("SELECT ts, actor, remote_addr, action, experiment, before, after FROM audit_log "
                                         "WHERE ($1 = '' OR experiment = $1) ORDER BY id DESC LIMIT $2", p));
  std::vector<AuditRecord> out;
  for (int i = 0; i < r.rows(); ++i) {
    out.push_back({r.Int(i, 0), r.Text(i, 1), r.Text(i, 2), r.Text(i, 3), r.Text(i, 4), r.Text(i, 5), r.Text(i, 6)});
  }
  return out;
}

absl::StatusOr<int64_t> PostgresEventSink::CountExposures(const std::string& experiment) {
  common::MutexLock lock(read_mu_);
  Params p;
  p.Text(experiment);
  ABGATE_ASSIGN_OR_RETURN(Result r, Read("SELECT count(*) FROM exposures WHERE experiment = $1", p));
  return r.Int(0, 0);
}

absl::StatusOr<std::vector<Assignment>> PostgresEventSink::ReadAssignments(const std::string& experiment) {
  common::MutexLock lock(read_mu_);
  Params p;
  p.Text(experiment);
  ABGATE_ASSIGN_OR_RETURN(Result r, Read("SELECT unit_id, arm, assigned_at, source, bucket_version FROM assignments "
                                         "WHERE experiment = $1", p));
  std::vector<Assignment> out;
  for (int i = 0; i < r.rows(); ++i) {
    out.push_back({experiment, r.Text(i, 0), r.Text(i, 1), r.Int(i, 2), r.Text(i, 3), r.Int(i, 4), false});
  }
  return out;
}

absl::StatusOr<Assignment> PostgresEventSink::ClaimAssignment(const Assignment& a) {
  common::MutexLock lock(read_mu_);
  Params p;
  p.Text(a.experiment).Text(a.unit_id).Text(a.arm).Int(a.assigned_at_us).Text(a.source).Int(a.bucket_version);
  ABGATE_ASSIGN_OR_RETURN(
      Result claimed,
      Read("INSERT INTO assignments (experiment, unit_id, arm, assigned_at, source, bucket_version) "
           "VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT (experiment, unit_id) DO UPDATE SET arm = excluded.arm, "
           "assigned_at = excluded.assigned_at, source = excluded.source, bucket_version = excluded.bucket_version "
           "WHERE assignments.source = 'hash' AND assignments.bucket_version < excluded.bucket_version",
           p));
  Params q;
  q.Text(a.experiment).Text(a.unit_id);
  ABGATE_ASSIGN_OR_RETURN(Result r, Read("SELECT arm, assigned_at, source, bucket_version FROM assignments "
                                         "WHERE experiment = $1 AND unit_id = $2", q));
  if (r.rows() != 1) return absl::InternalError("the claimed assignment is missing");
  return Assignment{a.experiment, a.unit_id, r.Text(0, 0), r.Int(0, 1), r.Text(0, 2), r.Int(0, 3), false};
}

}  // namespace abgate::events

// EventReader: the read side of the event store, beside EventSink (its write side). The
// analysis reads everything it needs through it: an experiment's exposures and outcomes as typed
// batches (ScanEvents), its shadow traffic, the config last stored for it, its audited configs and
// the metrics it has outcomes for. Implementations: SqliteEventReader, PostgresEventReader (one
// connection per scan worker, all in one snapshot) and InMemoryEventReader (typed rows held in
// memory, for tests of the analysis). OpenEventReader (event_store.cc) picks one by URI.
//
// The scan hands over events as the analysis consumes them, never as rows of text: in-experiment
// exposures with their assigned arm, and outcomes, ids already reduced to 64-bit keys
// (common::Hash64 — the keys event blocks store, events/event_blocks.h). It is cut into numbered
// tasks that the caller runs on its own workers; each task delivers its events in store order, so
// a caller that reads task by task gets the same order whatever the workers.
// Thread safety: an EventReader's methods may be called from any thread, concurrently; an
// EventScan's Run may be called concurrently for different `worker`s, each worker's calls one at a
// time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace abgate::events {

// One in-experiment exposure.
struct ExposureKeys {
  uint64_t unit_key = 0;     // Hash64(unit id); 0 when !has_unit
  uint64_t request_key = 0;  // Hash64(request id)
  int64_t ts_us = 0;
  double score = 0;   // when `scored`
  uint32_t arm = 0;   // index into the batch's arms
  bool has_unit = false;
  bool scored = false;
  float assignment_probability = 0;  // a bandit's, as recorded; 0 when none was
};

// One outcome.
struct OutcomeKeys {
  uint64_t key = 0;  // Hash64 of the request id when `by_request`, else of the unit id
  int64_t ts_us = 0;
  double value = 0;
  uint32_t metric = 0;  // index into the batch's metrics
  bool by_request = false;
};

// The assigned arm and the model version that served it (an arm by alias can be served by
// several versions). `position` is where the batch first met it, in store order (a rowid, a
// block id, ...): comparable within one scan, to order an arm's versions by first sight.
struct BatchArm {
  std::string_view name, model_version;
  int64_t position = 0;
};

// Views, valid during the visitor's call only. `block`: the id of the event block the batch's
// events come from (in the block's order), 0 when they were read from rows. A full scan
// delivers blocks by id; an incremental one (ScanCursor) may deliver a block after blocks with
// higher ids that an earlier scan read (PostgreSQL: its transaction committed late), so a
// caller that folds events in store order orders them by (block, order in the block).
struct ExposureBatch {
  std::span<const BatchArm> arms;
  std::span<const ExposureKeys> rows;
  int64_t block = 0;
};
struct OutcomeBatch {
  std::span<const std::string_view> metrics;
  std::span<const OutcomeKeys> rows;
  int64_t block = 0;
};

// Receives a scan task's events, on the thread that runs the task.
class EventVisitor {
 public:
  virtual ~EventVisitor() = default;
  virtual void Exposures(const ExposureBatch& batch) = 0;
  virtual void Outcomes(const OutcomeBatch& batch) = 0;
};

// Where a scan ended, so the next one can read only what was stored after it (a dashboard's
// refresh folds new events into what it kept). SQLite (one writer, rowids in commit order):
// the last rowid read, of rows or of event blocks. PostgreSQL, event blocks only (sequence
// values are taken at insert, not at commit, so with several writers a block with a lower id
// can commit after one with a higher id was read): the scan's snapshot, and the next scan
// reads the blocks whose writing transaction (column `xid`) that snapshot did not see. Rows
// (heap pages are reused) give none.
struct ScanCursor {
  bool valid = false;  // false: read everything
  bool blocks = false;  // the positions are event blocks' (else rows')
  int64_t exposures = 0, outcomes = 0;  // the last position read in each table (PostgreSQL: the highest block id)
  std::string snapshot;  // PostgreSQL: the scan's snapshot (pg_current_snapshot() as text)
  int unchecked = 0;  // PostgreSQL: scans since the blocks were last counted against the rows
};

struct ScanRequest {
  std::string experiment;
  int64_t since_us = 0;               // only events at or after it
  // Outcomes from this time on instead (a CUPED covariate is measured before the exposures in
  // view); unset: since_us.
  std::optional<int64_t> outcomes_since_us;
  std::vector<std::string> metrics;   // outcomes of other metrics may be left out; empty: all
  int workers = 1;                    // the caller's threads (each gets its own connection)
  int64_t rows_per_chunk = 0;         // per task: rowids, blocks or heap pages; 0: from the tables' sizes
  bool use_blocks = true;             // read the event blocks when they hold every row, else the rows
  ScanCursor after;                   // read only the events stored after it, when the store can

  // The time filter of one table's scan.
  int64_t SinceUs(bool outcomes) const { return outcomes ? outcomes_since_us.value_or(since_us) : since_us; }
};

class EventScan {
 public:
  virtual ~EventScan() = default;
  virtual size_t tasks() const = 0;
  // About how many events the scan will deliver (for reserving memory; may be far off).
  virtual int64_t expected_exposures() const = 0;
  virtual int64_t expected_outcomes() const = 0;
  // True when the scan delivers only the events stored after request.after (false: every
  // event; the caller must drop what it kept, e.g. because the store switched between rows and
  // blocks).
  virtual bool incremental() const { return false; }
  // Where this scan ends, for the next request's `after`; invalid when the store cannot resume.
  virtual ScanCursor cursor() const { return {}; }
  // Delivers task `task`'s events to `visitor`, in store order. `worker` in [0, workers) names
  // the calling thread. Blocking. InvalidArgument for a damaged event block, Unavailable when
  // the store cannot be read.
  virtual absl::Status Run(size_t task, int worker, EventVisitor& visitor) = 0;
};

// One mirrored request (table `shadows`).
struct ShadowRow {
  std::string request_id;  // the served request, which outcomes may name
  std::optional<double> score, shadow_score;
  int64_t latency_us = 0, shadow_latency_us = 0;
  int status = 0;
  std::string arm, shadow_arm;
  int64_t ts_us = 0;
};

// Where a read of shadow rows ended (ReadShadowsAfter), as ScanCursor for events: SQLite the
// last rowid, PostgreSQL the read's snapshot (column `xid` of `shadows`).
struct ShadowCursor {
  bool valid = false;  // false: read every row
  int64_t rowid = 0;
  std::string snapshot;
};

// The shadow rows stored after a cursor, and the cursor for the next read.
struct ShadowRead {
  std::vector<ShadowRow> rows;  // in store order
  bool incremental = false;     // only the rows stored after the cursor given (else every row)
  ShadowCursor cursor;          // invalid when the store cannot resume
};

// One audited admin change of an experiment: its config before and after ("" for none).
struct AuditedConfig {
  int64_t ts_us = 0;
  std::string before_json, after_json;
};

// One exposure with a unit id, in any experiment, for the global holdout's analysis. Views valid
// during the callback only.
struct UnitExposure {
  std::string_view unit_id, request_id;
  int64_t ts_us = 0;
  bool holdout = false;  // routing_mode kHoldoutRoutingMode: the unit is in the global holdout
};
// One outcome row, by name. Views valid during the callback only.
struct OutcomeRecord {
  std::string_view request_id, unit_id, metric;
  double value = 0;
  int64_t ts_us = 0;
  std::string_view event_id;  // the client's idempotency key, empty when it gave none
};

// One in-experiment served request with what the gateway kept of it (tables `exposures` and
// `payloads`), for the training-data export.
struct ServedRequest {
  std::string request_id;
  int64_t ts_us = 0;
  std::string unit_id, arm, assigned_arm, model_name, model_version, routing_mode;
  std::optional<double> score;
  std::optional<double> assignment_probability;  // when the store records one per exposure
  bool sampled = false;  // a payload was stored (payload_sample_rate); then:
  std::string request, response;  // the scoring payload and the reply, as stored (bytes)
  bool truncated = false;
};

// One recomputation of a bandit's weights (table bandit_weights).
struct BanditWeights {
  int64_t ts_us = 0;
  std::string weights_json;  // {"A": 0.1, "B": 0.9}
};

// A metric the store has outcomes for: binary when every value is 0 or 1.
struct StoredMetric {
  std::string name;
  bool binary = false;
};

class EventReader {
 public:
  virtual ~EventReader() = default;
  // The store's URI, for messages.
  virtual const std::string& uri() const = 0;
  // Plans a scan of `request.experiment`. FailedPrecondition when the store has no exposures
  // table; Unavailable when it cannot be read. Blocking.
  virtual absl::StatusOr<std::unique_ptr<EventScan>> ScanEvents(const ScanRequest& request) = 0;
  // The experiment's shadow traffic from `since_us` on, in store order. Blocking.
  virtual absl::StatusOr<std::vector<ShadowRow>> ReadShadows(const std::string& experiment, int64_t since_us) = 0;
  // The same, only the rows stored after `after` (a previous read's cursor) when the store can
  // resume (SQLite by rowid, PostgreSQL by snapshot, as ScanEvents); else every row. Blocking.
  virtual absl::StatusOr<ShadowRead> ReadShadowsAfter(const std::string& experiment, int64_t since_us,
                                                      const ShadowCursor& after) {
    (void)after;
    auto rows = ReadShadows(experiment, since_us);
    if (!rows.ok()) return rows.status();
    return ShadowRead{*std::move(rows), false, {}};
  }
  // The config last stored for it through the admin API; "" when none (or deleted). Blocking.
  virtual absl::StatusOr<std::string> ReadStoredConfig(const std::string& experiment) = 0;
  // Its audit trail, oldest first. Blocking.
  virtual absl::StatusOr<std::vector<AuditedConfig>> ReadConfigHistory(const std::string& experiment) = 0;
  // Every exposure with a unit id (in or out of the experiment), then every outcome, of
  // `experiment`, or of every experiment when it is empty, in store order. Blocking.
  virtual absl::Status ScanPopulation(const std::string& experiment,
                                      const std::function<void(const UnitExposure&)>& exposure,
                                      const std::function<void(const OutcomeRecord&)>& outcome) = 0;
  // The metrics it has outcomes for, by name. Blocking.
  virtual absl::StatusOr<std::vector<StoredMetric>> ReadOutcomeMetrics(const std::string& experiment) = 0;
  // Calls `visit` for every in-experiment exposure at or after `since_us`, in store order, with
  // its payload when one was sampled (the sampled payloads are held in memory meanwhile).
  // Blocking.
  virtual absl::Status ReadServedRequests(const std::string& experiment, int64_t since_us,
                                          const std::function<void(const ServedRequest&)>& visit) = 0;
  // A bandit's weight history (every recomputation), oldest first. Blocking.
  virtual absl::StatusOr<std::vector<BanditWeights>> ReadBanditWeights(const std::string& experiment) = 0;
  // How many rows its audit trail and its bandit weight history hold: both tables are only
  // appended to, so an unchanged count means an unchanged history. -1: the store cannot say
  // (read the history every time). Blocking.
  virtual absl::StatusOr<int64_t> CountHistoryRows(const std::string& experiment) {
    (void)experiment;
    return -1;
  }
};

// Opens the reader of the store named by `uri` (common/store_uri.h); no I/O until a read.
// InvalidArgument for an unsupported URI. Defined in event_store.cc, beside OpenEventSink.
absl::StatusOr<std::unique_ptr<EventReader>> OpenEventReader(const std::string& uri);

}  // namespace abgate::events

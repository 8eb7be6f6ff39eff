#include "events/sqlite_event_reader.h"

#include <sqlite3.h>

#include <cstdio>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "events/event.h"
#include "events/event_blocks.h"
#include "events/internal/scan_batcher.h"
#include "sqlite/database.h"

namespace abgate::events {
namespace {

using events_internal::Chunk;
using events_internal::ScanBatcher;

// A read-only connection, for one thread. It waits on locks: readers opening a WAL store at the
// same moment contend briefly for its index, and a writing gateway checkpoints now and then.
absl::StatusOr<std::unique_ptr<sqlite::Database>> OpenForReading(const std::string& path) {
  return sqlite::Database::Open(path, SQLITE_OPEN_READONLY, "event store", 10'000);
}

// (min(rowid), max(rowid)) of `table`; (1, 0) when it is empty.
std::pair<int64_t, int64_t> RowidRange(sqlite::Database& db, const char* table) {
  // min() and max() of the rowid are one B-tree descent each.
  std::pair<int64_t, int64_t> range{1, 0};
  (void)db.Query(StrCat("SELECT min(rowid), max(rowid) FROM ", table), {}, [&](sqlite3_stmt* st) {
    if (sqlite3_column_type(st, 0) != SQLITE_NULL) range = {sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1)};
  });
  return range;
}

// Whether the event blocks hold every exposure and outcome row (table block_coverage of the
// SQLite sink: intact, and no row past the last one the sink wrote).
bool BlocksCoverRows(sqlite::Database& db) {
  auto covered =
      db.QueryInt(StrCat("SELECT count(*) = 2 FROM block_coverage WHERE intact = 1 AND last_rowid = ", kCoverageCurrentRowid));
  return covered.ok() && *covered == 1;
}

// Streams the rows of `sql` (the experiment is its one parameter, written ?) to `row`. A
// missing `table` is no rows.
absl::Status ScanTable(const std::string& path, const std::string& sql, const std::string& experiment,
                       const char* table, absl::FunctionRef<void(sqlite3_stmt*)> row) {
  ABGATE_ASSIGN_OR_RETURN(auto db, OpenForReading(path));
  if (!db->HasTable(table)) return absl::OkStatus();
  return db->Query(sql, {experiment}, [&](sqlite3_stmt* st) { row(st); });
}

std::string_view ValueView(sqlite3_value* v) {
  const auto* p = reinterpret_cast<const char*>(sqlite3_value_text(v));
  return p ? std::string_view(p, static_cast<size_t>(sqlite3_value_bytes(v))) : std::string_view();
}

// A column's bytes (text or blob), empty for NULL.
std::string_view BlobOf(sqlite3_stmt* st, int i) {
  const auto* p = static_cast<const char*>(sqlite3_column_blob(st, i));
  return p ? std::string_view(p, static_cast<size_t>(sqlite3_column_bytes(st, i))) : std::string_view();
}

std::string_view BlobView(sqlite3_value* v) {
  const auto* p = static_cast<const char*>(sqlite3_value_blob(v));
  return p ? std::string_view(p, static_cast<size_t>(sqlite3_value_bytes(v))) : std::string_view();
}

// SQLite hands each row to an aggregate function registered on the worker's connection, so a
// chunk is one sqlite3_step: stepping out of the VM and fetching columns through
// sqlite3_column_* cost more than the scan itself (5.6 s vs 2.6 s for 10M exposure rows). With
// event blocks a row is a block of thousands of events, and decoding them is most of the work.
class SqliteScan : public EventScan {
 public:
  SqliteScan(std::string path, const ScanRequest& request) : path_(std::move(path)), request_(request) {}

  absl::Status Plan() {
    std::pair<int64_t, int64_t> exposure_rows, outcome_rows{1, 0};
    ABGATE_ASSIGN_OR_RETURN(auto db, OpenForReading(path_));
    if (!db->HasTable("exposures")) return absl::FailedPreconditionError(StrCat(path_, " has no exposures table"));
    // Blocks exist from schema version 3 on and hold every row while block_coverage says so
    // (see sqlite_event_sink.cc); otherwise (an older store, or rows added by hand) the rows
    // are read.
    blocks_ = request_.use_blocks && db->HasTable("exposure_blocks") && db->HasTable("outcome_blocks") &&
              db->HasTable("block_coverage") && BlocksCoverRows(*db);
    // A store no schema-4 sink has opened has no assignment probabilities.
    probabilities_ = db->HasColumn("exposures", "assignment_probability");
    const char* exposures = blocks_ ? "exposure_blocks" : "exposures";
    const char* outcomes = blocks_ ? "outcome_blocks" : "outcomes";
    exposure_rows = RowidRange(*db, exposures);
    if (db->HasTable(outcomes)) outcome_rows = RowidRange(*db, outcomes);
    // One writer appends, so rows (and blocks) stored after the last scan have larger rowids,
    // and every rowid up to the max read here is committed. Resuming needs the same kind of
    // positions, and positions that still exist (a store rebuilt behind our back reads whole).
    const ScanCursor& after = request_.after;
    incremental_ = after.valid && after.blocks == blocks_ && after.exposures <= exposure_rows.second &&
                   after.outcomes <= std::max<int64_t>(outcome_rows.second, 0);
    cursor_ = {true, blocks_, std::max<int64_t>(exposure_rows.second, 0), std::max<int64_t>(outcome_rows.second, 0), {}};
    if (incremental_) {
      exposure_rows.first = std::max(exposure_rows.first, after.exposures + 1);
      outcome_rows.first = std::max(outcome_rows.first, after.outcomes + 1);
      expected_exposures_ = expected_outcomes_ = 0;  // a refresh's few events need no reserve
    } else if (blocks_) {
      auto events = [&](const char* table) {
        auto n = db->QueryInt(StrCat("SELECT coalesce(sum(rows), 0) FROM ", table, " WHERE experiment = ?"),
                              {request_.experiment});
        return n.ok() ? *n : 0;
      };
      expected_exposures_ = events("exposure_blocks");
      expected_outcomes_ = events("outcome_blocks");
    } else {
      expected_exposures_ = exposure_rows.second - exposure_rows.first + 1;
      expected_outcomes_ = outcome_rows.second - outcome_rows.first + 1;
    }
    // Blocks hold ~thousands of events each: chunks of a few blocks.
    chunks_ = events_internal::PlanChunks(exposure_rows, outcome_rows, blocks_ ? 4 : 1 << 16, request_.rows_per_chunk,
                                          request_.workers);
    workers_.resize(static_cast<size_t>(std::max(request_.workers, 1)));
    for (auto& w : workers_) w = std::make_unique<Worker>(request_);
    return absl::OkStatus();
  }

  size_t tasks() const override { return chunks_.size(); }
  int64_t expected_exposures() const override { return expected_exposures_; }
  int64_t expected_outcomes() const override { return expected_outcomes_; }
  bool incremental() const override { return incremental_; }
  ScanCursor cursor() const override { return cursor_; }

  absl::Status Run(size_t task, int worker, EventVisitor& visitor) override {
    const Chunk& chunk = chunks_[task];
    Worker& w = *workers_[static_cast<size_t>(worker)];
    if (!w.db) ABGATE_RETURN_IF_ERROR(w.Open(path_));
    sqlite3_stmt*& st = w.statements[chunk.outcomes];
    if (st == nullptr) {
      if (sqlite3_prepare_v2(w.db->raw(), Query(chunk.outcomes).c_str(), -1, &st, nullptr) != SQLITE_OK) {
        return w.db->Error("prepare");
      }
      sqlite3_bind_text(st, 3, request_.experiment.c_str(), -1, SQLITE_STATIC);
      if (request_.SinceUs(chunk.outcomes) > 0) sqlite3_bind_int64(st, 4, request_.SinceUs(chunk.outcomes));
    }
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, chunk.first);
    sqlite3_bind_int64(st, 2, chunk.last);
    w.batcher.Begin(visitor);
    w.status = absl::OkStatus();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    }
    w.batcher.Finish();
    // A damaged block's error (set by the step function) comes first.
    if (!w.status.ok()) return w.status;
    if (rc != SQLITE_DONE) return w.db->Error("scan");
    return absl::OkStatus();
  }

 private:
  struct Worker {
    explicit Worker(const ScanRequest& request) : batcher(request) {}
    ~Worker() {
      for (auto* st : statements) sqlite3_finalize(st);
    }
    absl::Status Open(const std::string& path) {
      ABGATE_ASSIGN_OR_RETURN(db, OpenForReading(path));
      // Pages straight from the page cache instead of a read() copy each (capped by the
      // library's SQLITE_MAX_MMAP_SIZE; the rest is read as usual).
      (void)db->ExecScript("PRAGMA mmap_size = 1099511627776");
      constexpr int kFlags = SQLITE_UTF8 | SQLITE_DIRECTONLY;
      const struct {
        const char* name;
        int args;
        void (*step)(sqlite3_context*, int, sqlite3_value**);
      } functions[] = {{"abgate_exposure", 8, ExposureStep},
                       {"abgate_outcome", 5, OutcomeStep},
                       {"abgate_exposure_block", 2, ExposureBlockStep},
                       {"abgate_outcome_block", 2, OutcomeBlockStep}};
      for (const auto& f : functions) {
        if (sqlite3_create_function(db->raw(), f.name, f.args, kFlags, this, nullptr, f.step, NoResult) != SQLITE_OK) {
          return db->Error("register functions");
        }
      }
      return absl::OkStatus();
    }
    std::unique_ptr<sqlite::Database> db;
    sqlite3_stmt* statements[2] = {nullptr, nullptr};
    ScanBatcher batcher;
    absl::Status status;  // of the chunk being stepped
  };

  static Worker& Of(sqlite3_context* context) { return *static_cast<Worker*>(sqlite3_user_data(context)); }

  static void ExposureStep(sqlite3_context* context, int, sqlite3_value** v) {
    const bool scored = sqlite3_value_type(v[5]) != SQLITE_NULL;
    Of(context).batcher.AddExposureRow(ValueView(v[0]), ValueView(v[1]), ValueView(v[2]), ValueView(v[6]),
                                       sqlite3_value_int64(v[3]), sqlite3_value_int64(v[4]), scored,
                                       scored ? sqlite3_value_double(v[5]) : 0.0,
                                       sqlite3_value_type(v[7]) == SQLITE_NULL ? 0.0 : sqlite3_value_double(v[7]));
  }

  static void OutcomeStep(sqlite3_context* context, int, sqlite3_value** v) {
    Of(context).batcher.AddOutcomeRow(ValueView(v[0]), ValueView(v[1]), ValueView(v[2]), sqlite3_value_double(v[3]),
                                      sqlite3_value_int64(v[4]));
  }

  static void ExposureBlockStep(sqlite3_context* context, int, sqlite3_value** v) {
    Worker& w = Of(context);
    if (w.status.ok()) w.status = w.batcher.AddExposureBlock(BlobView(v[0]), sqlite3_value_int64(v[1]));
  }

  static void OutcomeBlockStep(sqlite3_context* context, int, sqlite3_value** v) {
    Worker& w = Of(context);
    if (w.status.ok()) w.status = w.batcher.AddOutcomeBlock(BlobView(v[0]), sqlite3_value_int64(v[1]));
  }

  static void NoResult(sqlite3_context* context) { sqlite3_result_null(context); }

  // Exposures: the assigned arm (intent to treat: a fallback served by control still counts for
  // the arm it was assigned to). No ORDER BY: the earliest exposure is tracked per unit. The ts
  // condition only when it filters (each costs ~10% of a row scan).
  std::string Query(bool outcomes) const {
    const bool since = request_.SinceUs(outcomes) > 0;
    if (blocks_) {
      return StrCat(outcomes ? "SELECT abgate_outcome_block(data, rowid) FROM outcome_blocks "
                             : "SELECT abgate_exposure_block(data, rowid) FROM exposure_blocks ",
                    "WHERE rowid BETWEEN ?1 AND ?2 AND experiment = ?3", since ? " AND max_ts >= ?4" : "");
    }
    return StrCat(outcomes ? "SELECT abgate_outcome(request_id, unit_id, metric, value, ts) FROM outcomes "
                           : StrCat("SELECT abgate_exposure(request_id, unit_id, assigned_arm, rowid, ts, score, "
                                    "model_version, ",
                                    probabilities_ ? "assignment_probability" : "NULL", ") FROM exposures "),
                  "WHERE rowid BETWEEN ?1 AND ?2 AND experiment = ?3", outcomes ? "" : " AND in_experiment = 1",
                  since ? " AND ts >= ?4" : "");
  }

  const std::string path_;
  const ScanRequest request_;
  bool blocks_ = false;
  bool incremental_ = false;
  ScanCursor cursor_;
  bool probabilities_ = false;
  int64_t expected_exposures_ = 0, expected_outcomes_ = 0;
  std::vector<Chunk> chunks_;
  std::vector<std::unique_ptr<Worker>> workers_;  // by worker; the step functions point at them
};

}  // namespace

absl::StatusOr<std::unique_ptr<EventScan>> SqliteEventReader::ScanEvents(const ScanRequest& request) {
  auto scan = std::make_unique<SqliteScan>(path_, request);
  ABGATE_RETURN_IF_ERROR(scan->Plan());
  return std::unique_ptr<EventScan>(std::move(scan));
}

absl::StatusOr<std::vector<ShadowRow>> SqliteEventReader::ReadShadows(const std::string& experiment,
                                                                      int64_t since_us) {
  ABGATE_ASSIGN_OR_RETURN(ShadowRead read, ReadShadowsAfter(experiment, since_us, {}));
  return std::move(read.rows);
}

// One writer appends, so shadow rows stored after a read have larger rowids, and every rowid up
// to the max read first is committed: the rows after the cursor and up to that max are the new
// ones, whatever is written meanwhile.
absl::StatusOr<ShadowRead> SqliteEventReader::ReadShadowsAfter(const std::string& experiment, int64_t since_us,
                                                               const ShadowCursor& after) {
  ShadowRead read;
  ABGATE_ASSIGN_OR_RETURN(auto db, OpenForReading(path_));
  if (!db->HasTable("shadows")) return ShadowRead{{}, false, {true, 0, ""}};
  const int64_t last = RowidRange(*db, "shadows").second;
  read.incremental = after.valid && after.rowid <= std::max<int64_t>(last, 0);  // else a store made anew
  read.cursor = {true, std::max<int64_t>(last, 0), ""};
  ABGATE_RETURN_IF_ERROR(db->Query(
      "SELECT score, shadow_score, latency_us, shadow_latency_us, shadow_status, arm, shadow_arm, ts, request_id "
      "FROM shadows WHERE experiment = ? AND rowid > ? AND rowid <= ? AND ts >= ?",
      {experiment, read.incremental ? after.rowid : int64_t{0}, last, since_us}, [&](sqlite3_stmt* st) {
        ShadowRow row;
        if (sqlite3_column_type(st, 0) != SQLITE_NULL) row.score = sqlite3_column_double(st, 0);
        if (sqlite3_column_type(st, 1) != SQLITE_NULL) row.shadow_score = sqlite3_column_double(st, 1);
        row.latency_us = sqlite3_column_int64(st, 2);
        row.shadow_latency_us = sqlite3_column_int64(st, 3);
        row.status = sqlite3_column_int(st, 4);
        row.arm = sqlite::Text(st, 5);
        row.shadow_arm = sqlite::Text(st, 6);
        row.ts_us = sqlite3_column_int64(st, 7);
        row.request_id = sqlite::Text(st, 8);
        read.rows.push_back(std::move(row));
      }));
  return read;
}

absl::StatusOr<std::string> SqliteEventReader::ReadStoredConfig(const std::string& experiment) {
  std::string stored;
  ABGATE_RETURN_IF_ERROR(ScanTable(path_, "SELECT config FROM experiment_configs WHERE name = ?", experiment,
                                   "experiment_configs", [&](sqlite3_stmt* st) { stored = sqlite::Text(st, 0); }));
  return stored;
}

absl::StatusOr<std::vector<AuditedConfig>> SqliteEventReader::ReadConfigHistory(const std::string& experiment) {
  std::vector<AuditedConfig> rows;
  ABGATE_RETURN_IF_ERROR(ScanTable(path_, "SELECT ts, before, after FROM audit_log WHERE experiment = ? ORDER BY id",
                                   experiment, "audit_log", [&](sqlite3_stmt* st) {
                                     rows.push_back({sqlite3_column_int64(st, 0), sqlite::Text(st, 1),
                                                     sqlite::Text(st, 2)});
                                   }));
  return rows;
}

// Experiment names are never empty, so `experiment <> ''` is every experiment.
absl::Status SqliteEventReader::ScanPopulation(const std::string& experiment,
                                               const std::function<void(const UnitExposure&)>& exposure,
                                               const std::function<void(const OutcomeRecord&)>& outcome) {
  const std::string scope = experiment.empty() ? "experiment <> ?" : "experiment = ?";
  ABGATE_RETURN_IF_ERROR(ScanTable(
      path_, StrCat("SELECT unit_id, request_id, ts, routing_mode FROM exposures WHERE ", scope,
                    " AND unit_id IS NOT NULL AND unit_id <> ''"),
      experiment, "exposures", [&](sqlite3_stmt* st) {
        exposure({sqlite::Text(st, 0), sqlite::Text(st, 1), sqlite3_column_int64(st, 2),
                  sqlite::Text(st, 3) == kHoldoutRoutingMode});
      }));
  return ScanTable(path_, StrCat("SELECT request_id, unit_id, metric, value, ts, event_id FROM outcomes WHERE ", scope),
                   experiment, "outcomes", [&](sqlite3_stmt* st) {
                     outcome({sqlite::Text(st, 0), sqlite::Text(st, 1), sqlite::Text(st, 2),
                              sqlite3_column_double(st, 3), sqlite3_column_int64(st, 4), sqlite::Text(st, 5)});
                   });
}

absl::StatusOr<std::vector<BanditWeights>> SqliteEventReader::ReadBanditWeights(const std::string& experiment) {
  std::vector<BanditWeights> rows;
  ABGATE_RETURN_IF_ERROR(ScanTable(path_, "SELECT ts, weights FROM bandit_weights WHERE experiment = ? ORDER BY ts",
                                   experiment, "bandit_weights", [&](sqlite3_stmt* st) {
                                     rows.push_back({sqlite3_column_int64(st, 0), sqlite::Text(st, 1)});
                                   }));
  return rows;
}

absl::StatusOr<int64_t> SqliteEventReader::CountHistoryRows(const std::string& experiment) {
  ABGATE_ASSIGN_OR_RETURN(auto db, OpenForReading(path_));
  int64_t rows = 0;
  for (const char* table : {"audit_log", "bandit_weights"}) {
    if (!db->HasTable(table)) continue;
    ABGATE_ASSIGN_OR_RETURN(const int64_t n,
                            db->QueryInt(StrCat("SELECT count(*) FROM ", table, " WHERE experiment = ?"), {experiment}));
    rows += n;
  }
  return rows;
}

absl::StatusOr<std::vector<StoredMetric>> SqliteEventReader::ReadOutcomeMetrics(const std::string& experiment) {
  char sql[512];
  std::snprintf(sql, sizeof(sql), events_internal::kOutcomeMetricsSql, "?");
  std::vector<StoredMetric> rows;
  ABGATE_RETURN_IF_ERROR(ScanTable(path_, sql, experiment, "outcomes", [&](sqlite3_stmt* st) {
    rows.push_back({sqlite::Text(st, 0), sqlite::Text(st, 1) == "binary"});
  }));
  return rows;
}

absl::Status SqliteEventReader::ReadServedRequests(const std::string& experiment, int64_t since_us,
                                                   const std::function<void(const ServedRequest&)>& visit) {
  ABGATE_ASSIGN_OR_RETURN(auto db, OpenForReading(path_));
  if (!db->HasTable("exposures")) return absl::FailedPreconditionError(StrCat(path_, " has no exposures table"));
  // The sampled payloads first (a small share of the requests), then one pass over the exposures.
  struct Payload {
    std::string request, response;
    bool truncated;
  };
  absl::flat_hash_map<std::string, Payload> payloads;
  if (db->HasTable("payloads")) {
    ABGATE_RETURN_IF_ERROR(db->Query(
        "SELECT request_id, request, response, truncated FROM payloads WHERE experiment = ? AND ts >= ?",
        {experiment, since_us}, [&](sqlite3_stmt* st) {
          payloads.insert_or_assign(sqlite::Text(st, 0), Payload{std::string(BlobOf(st, 1)), std::string(BlobOf(st, 2)),
                                                                 sqlite3_column_int(st, 3) != 0});
        }));
  }
  bool has_probability = false;
  ABGATE_RETURN_IF_ERROR(db->Query("SELECT name FROM pragma_table_info('exposures')", {}, [&](sqlite3_stmt* st) {
    has_probability |= sqlite::Text(st, 0) == "assignment_probability";
  }));
  ServedRequest r;
  return db->Query(
      StrCat("SELECT request_id, ts, unit_id, arm, assigned_arm, model_name, model_version, routing_mode, score, ",
             has_probability ? "assignment_probability" : "NULL",
             " FROM exposures WHERE experiment = ? AND in_experiment = 1 AND ts >= ?"),
      {experiment, since_us}, [&](sqlite3_stmt* st) {
        r.request_id = sqlite::Text(st, 0);
        r.ts_us = sqlite3_column_int64(st, 1);
        r.unit_id = sqlite::Text(st, 2);
        r.arm = sqlite::Text(st, 3);
        r.assigned_arm = sqlite::Text(st, 4);
        r.model_name = sqlite::Text(st, 5);
        r.model_version = sqlite::Text(st, 6);
        r.routing_mode = sqlite::Text(st, 7);
        r.score = sqlite3_column_type(st, 8) == SQLITE_NULL ? std::nullopt : std::optional(sqlite3_column_double(st, 8));
        r.assignment_probability =
            sqlite3_column_type(st, 9) == SQLITE_NULL ? std::nullopt : std::optional(sqlite3_column_double(st, 9));
        auto it = payloads.find(r.request_id);
        r.sampled = it != payloads.end();
        if (r.sampled) {
          r.request = std::move(it->second.request);
          r.response = std::move(it->second.response);
          r.truncated = it->second.truncated;
          payloads.erase(it);
        } else {
          r.request.clear();
          r.response.clear();
          r.truncated = false;
        }
        visit(r);
      });
}

}  // namespace abgate::events

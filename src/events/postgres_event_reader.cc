#include "events/postgres_event_reader.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>

#include "absl/container/flat_hash_map.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "events/event.h"
#include "events/internal/scan_batcher.h"
#include "postgres/connection.h"

namespace abgate::events {
namespace {

using events_internal::Chunk;
using events_internal::ScanBatcher;

// Runs `select` through a cursor inside the current transaction and calls fn(result, row) for
// every row, fetched in binary, `batch` rows at a time (single-row mode cost a PGresult per row).
absl::Status ForEachRow(postgres::Connection& c, const std::string& select,
                        const std::function<void(const postgres::Result&, int)>& fn, int batch = 20000) {
  ABGATE_RETURN_IF_ERROR(c.Exec(StrCat("DECLARE abgate_rows NO SCROLL CURSOR FOR ", select)));
  const std::string fetch = StrCat("FETCH FORWARD ", batch, " FROM abgate_rows");
  for (;;) {
    ABGATE_ASSIGN_OR_RETURN(const postgres::Result r, c.Query(fetch, {}, /*binary_results=*/true));
    const int n = r.rows();
    for (int i = 0; i < n; ++i) fn(r, i);
    if (n < batch) break;
  }
  return c.Exec("CLOSE abgate_rows");
}

// Streams the rows of `sql` (the experiment is its one parameter, $1) in single-row mode, so
// millions of rows stream without being held in one result.
absl::Status ScanTable(const std::string& uri, const std::string& sql, const std::string& experiment,
                       const std::function<void(const postgres::Result&)>& row) {
  ABGATE_ASSIGN_OR_RETURN(auto c, postgres::Connection::Connect(uri));
  return c.ForEachRowStreamed(sql, postgres::Params().Text(experiment), row);
}

// Scans of blocks that trust the last count of an experiment's rows (see PostgresScan::Plan).
constexpr int kScansPerCoverageCheck = 10;

// A snapshot as pg_current_snapshot() prints it ("xmin:xmax:xip,..."), safe to quote as a literal.
bool IsSnapshotText(std::string_view s) {
  return !s.empty() && s.size() < (1 << 20) &&
         std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || c == ':' || c == ','; });
}

// The condition on a table's `xid` column for the rows whose writing transaction `snapshot` (an
// IsSnapshotText) did not see: every transaction below its xmin had ended, so the index on
// (experiment, xid) bounds the scan.
std::string NotSeenBy(const std::string& snapshot) {
  return StrCat("xid >= pg_snapshot_xmin('", snapshot, "'::pg_snapshot) AND NOT pg_visible_in_snapshot(xid, '",
                snapshot, "'::pg_snapshot)");
}

class PostgresScan : public EventScan {
 public:
  PostgresScan(const std::string& uri, const ScanRequest& request) : uri_(uri), request_(request) {}

  absl::Status Plan() {
    ABGATE_ASSIGN_OR_RETURN(lead_, postgres::Connection::Connect(uri_));
    ABGATE_RETURN_IF_ERROR(lead_.Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
    char* quoted = PQescapeLiteral(lead_.get(), request_.experiment.c_str(), request_.experiment.size());
    if (!quoted) return lead_.Error("quote");
    experiment_ = quoted;
    PQfreemem(quoted);
    ABGATE_ASSIGN_OR_RETURN(
        const postgres::Result info,
        lead_.Query("SELECT pg_export_snapshot(), to_regclass('exposures') IS NOT NULL, to_regclass('outcomes') IS NOT "
                    "NULL, pg_relation_size('exposures') / current_setting('block_size')::bigint, "
                    "coalesce(pg_relation_size(to_regclass('outcomes')), 0) / current_setting('block_size')::bigint, "
                    "to_regclass('exposure_blocks') IS NOT NULL AND to_regclass('outcome_blocks') IS NOT NULL, "
                    "EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() AND "
                    "table_name = 'exposures' AND column_name = 'assignment_probability'), "
                    "(SELECT count(*) = 2 FROM information_schema.columns WHERE table_schema = current_schema() AND "
                    "table_name IN ('exposure_blocks', 'outcome_blocks') AND column_name = 'xid')"));
    auto flag = [&](int i) { return info.View(0, i) == "t"; };
    snapshot_ = info.Text(0, 0);
    if (!flag(1)) return absl::FailedPreconditionError(StrCat(uri_, " has no exposures table"));
    const bool has_outcomes = flag(2);
    probabilities_ = flag(6);  // a store no newer gateway has opened has none
    const int64_t exposure_pages = info.Int(0, 3), outcome_pages = info.Int(0, 4);
    if (request_.use_blocks && has_outcomes && flag(5)) {
      // A refresh after a scan of blocks reads the blocks that scan's snapshot did not see: ids
      // prove nothing (see the sink). Its cursor must come from this store as it is (the ids
      // did not go back: not a store made anew since).
      const ScanCursor& after = request_.after;
      const bool resumable = flag(7);
      const bool follows = resumable && after.valid && after.blocks && IsSnapshotText(after.snapshot);
      auto resume = [&](int64_t exposure_id, int64_t outcome_id, std::string snapshot, int unchecked) {
        cursor_ = {true, true, exposure_id, outcome_id, std::move(snapshot), unchecked};
        incremental_ = follows && after.exposures <= exposure_id && after.outcomes <= outcome_id;
      };
      if (follows && after.unchecked < kScansPerCoverageCheck) {
        // Counting the experiment's rows costs ~45 ms per million at every refresh (more than
        // the refresh), so the coverage the last count found is trusted for a few scans: rows
        // written without blocks show within kScansPerCoverageCheck refreshes, which then
        // read them whole.
        ABGATE_ASSIGN_OR_RETURN(
            const postgres::Result r,
            lead_.Query(StrCat("SELECT pg_current_snapshot()::text, (SELECT coalesce(max(id), 0) FROM exposure_blocks "
                               "WHERE experiment = ", experiment_, "), (SELECT coalesce(max(id), 0) FROM outcome_blocks "
                               "WHERE experiment = ", experiment_, ")")));
        resume(r.Int(0, 1), r.Int(0, 2), r.Text(0, 0), after.unchecked + 1);
        blocks_ = incremental_;
      }
      if (!incremental_) {
        // Per table, one pass over the experiment's blocks: do they stand for all its rows, the
        // range of their ids, and how many events they hold. Blocks are read when they stand
        // for every row (source_rows against count(*)), so rows from an older gateway during a
        // rolling upgrade, or from a hand-made INSERT, are never missed.
        struct BlockSummary {
          bool covers_rows;
          int64_t first_id, last_id, events;
        };
        auto summarize = [&](const char* blocks_table, const char* rows_table) -> absl::StatusOr<BlockSummary> {
          ABGATE_ASSIGN_OR_RETURN(
              const postgres::Result r,
              lead_.Query(StrCat("SELECT coalesce(sum(source_rows), 0) = (SELECT count(*) FROM ", rows_table,
                                 " WHERE experiment = ", experiment_, "), coalesce(min(id), 1), coalesce(max(id), 0), ",
                                 "coalesce(sum(rows), 0) FROM ", blocks_table, " WHERE experiment = ", experiment_)));
          return BlockSummary{r.View(0, 0) == "t", r.Int(0, 1), r.Int(0, 2), r.Int(0, 3)};
        };
        ABGATE_ASSIGN_OR_RETURN(const BlockSummary e, summarize("exposure_blocks", "exposures"));
        ABGATE_ASSIGN_OR_RETURN(const BlockSummary o, summarize("outcome_blocks", "outcomes"));
        blocks_ = e.covers_rows && o.covers_rows;
        if (blocks_ && resumable) {
          ABGATE_ASSIGN_OR_RETURN(const postgres::Result snapshot, lead_.Query("SELECT pg_current_snapshot()::text"));
          resume(e.last_id, o.last_id, snapshot.Text(0, 0), 0);
        }
        if (blocks_ && !incremental_) {
          chunks_ = events_internal::PlanChunks({e.first_id, e.last_id}, {o.first_id, o.last_id}, 4,
                                                request_.rows_per_chunk, request_.workers);
          expected_exposures_ = e.events;
          expected_outcomes_ = o.events;
        }
      }
      if (incremental_) chunks_ = {{false, 0, -1}, {true, 0, -1}};  // a refresh's few blocks: one task per table
    }
    tid_ranges_ = PQserverVersion(lead_.get()) >= 140000;
    if (!blocks_) {
      if (tid_ranges_) {
        chunks_ = events_internal::PlanChunks({0, exposure_pages - 1}, {0, has_outcomes ? outcome_pages - 1 : -1}, 64,
                                              request_.rows_per_chunk, request_.workers);
      }
      // Each table's last range is open-ended (and is the whole table without TID ranges).
      for (const bool outcome_table : {false, true}) {
        if (outcome_table && !has_outcomes) continue;
        auto last =
            std::find_if(chunks_.rbegin(), chunks_.rend(), [&](const Chunk& c) { return c.outcomes == outcome_table; });
        if (last == chunks_.rend()) {
          chunks_.push_back({outcome_table, 0, -1});
        } else {
          last->last = -1;
        }
      }
      expected_exposures_ = exposure_pages * 40;  // rows per page, about
      expected_outcomes_ = outcome_pages * 60;
    }
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
    if (!w.connection) {
      ABGATE_ASSIGN_OR_RETURN(w.connection, postgres::Connection::Connect(uri_));
      ABGATE_RETURN_IF_ERROR(w.connection->Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
      ABGATE_RETURN_IF_ERROR(w.connection->Exec(StrCat("SET TRANSACTION SNAPSHOT '", snapshot_, "'")));
    }
    postgres::Connection& c = *w.connection;
    ScanBatcher& batcher = w.batcher;
    batcher.Begin(visitor);
    absl::Status status;
    const int64_t since = request_.SinceUs(chunk.outcomes);
    if (blocks_) {
      // A refresh: the blocks whose transaction the last scan's snapshot did not see (every
      // transaction below its xmin had ended), in id order.
      const std::string range =
          incremental_ ? StrCat(" AND ", NotSeenBy(request_.after.snapshot))
                       : StrCat(" AND id BETWEEN ", chunk.first, " AND ", chunk.last);
      const std::string query =
          StrCat("SELECT data, id FROM ", chunk.outcomes ? "outcome_blocks" : "exposure_blocks", " WHERE experiment = ",
                 experiment_, range, since > 0 ? StrCat(" AND max_ts >= ", since) : "", " ORDER BY id");
      absl::Status damaged;
      status = ForEachRow(c, query, [&](const postgres::Result& r, int i) {
        if (!damaged.ok()) return;
        damaged = chunk.outcomes ? batcher.AddOutcomeBlock(r.View(i, 0), r.BinaryInt64(i, 1))
                                 : batcher.AddExposureBlock(r.View(i, 0), r.BinaryInt64(i, 1));
      }, 64);
      batcher.Finish();
      // A damaged block's error comes first.
      return damaged.ok() ? status : damaged;
    }
    std::string where = StrCat(" WHERE experiment = ", experiment_);
    if (tid_ranges_ && chunk.first > 0) where += StrCat(" AND ctid >= '(", chunk.first, ",0)'::tid");
    if (tid_ranges_ && chunk.last >= 0) where += StrCat(" AND ctid < '(", chunk.last + 1, ",0)'::tid");
    if (since > 0) where += StrCat(" AND ts >= ", since);
    const std::string query =
        chunk.outcomes ? StrCat("SELECT request_id, unit_id, metric, value, ts FROM outcomes", where)
                       : StrCat("SELECT request_id, ts, unit_id, assigned_arm, score, model_version, ",
                                probabilities_ ? "assignment_probability" : "NULL::float8", " FROM exposures", where,
                                " AND in_experiment = 1");
    const int64_t position = static_cast<int64_t>(task) << 40;  // scan order, for each arm's first version
    int64_t row = 0;
    status = ForEachRow(c, query, [&](const postgres::Result& r, int i) {
      if (chunk.outcomes) {
        batcher.AddOutcomeRow(r.View(i, 0), r.View(i, 1), r.View(i, 2), r.BinaryDouble(i, 3), r.BinaryInt64(i, 4));
      } else {
        const bool scored = !r.IsNull(i, 4);
        batcher.AddExposureRow(r.View(i, 0), r.View(i, 2), r.View(i, 3), r.View(i, 5), position + row++,
                               r.BinaryInt64(i, 1), scored, scored ? r.BinaryDouble(i, 4) : 0.0,
                               r.IsNull(i, 6) ? 0.0 : r.BinaryDouble(i, 6));
      }
    });
    batcher.Finish();
    return status;
  }

 private:
  struct Worker {
    explicit Worker(const ScanRequest& request) : batcher(request) {}
    std::optional<postgres::Connection> connection;
    ScanBatcher batcher;
  };

  const std::string uri_;
  const ScanRequest request_;
  postgres::Connection lead_;  // holds the exported snapshot open until the scan ends
  std::string experiment_;     // quoted literal
  std::string snapshot_;
  bool blocks_ = false;
  bool incremental_ = false;  // only the blocks request_.after's snapshot did not see
  ScanCursor cursor_;
  bool tid_ranges_ = false;
  bool probabilities_ = false;  // exposures has assignment_probability
  int64_t expected_exposures_ = 0, expected_outcomes_ = 0;
  std::vector<Chunk> chunks_;
  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<EventScan>> PostgresEventReader::ScanEvents(const ScanRequest& request) {
  auto scan = std::make_unique<PostgresScan>(uri_, request);
  ABGATE_RETURN_IF_ERROR(scan->Plan());
  return std::unique_ptr<EventScan>(std::move(scan));
}

absl::StatusOr<std::vector<ShadowRow>> PostgresEventReader::ReadShadows(const std::string& experiment,
                                                                        int64_t since_us) {
  ABGATE_ASSIGN_OR_RETURN(ShadowRead read, ReadShadowsAfter(experiment, since_us, {}));
  return std::move(read.rows);
}

// As the event blocks (PostgresScan::Plan): the rows whose writing transaction (column `xid`)
// the last read's snapshot did not see, read in one snapshot that becomes the next cursor.
absl::StatusOr<ShadowRead> PostgresEventReader::ReadShadowsAfter(const std::string& experiment, int64_t since_us,
                                                                 const ShadowCursor& after) {
  ShadowRead read;
  ABGATE_ASSIGN_OR_RETURN(auto c, postgres::Connection::Connect(uri_));
  ABGATE_RETURN_IF_ERROR(c.Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
  ABGATE_ASSIGN_OR_RETURN(const postgres::Result info,
                          c.Query("SELECT to_regclass('shadows') IS NOT NULL, EXISTS (SELECT 1 FROM "
                                  "information_schema.columns WHERE table_schema = current_schema() AND "
                                  "table_name = 'shadows' AND column_name = 'xid')"));
  if (info.View(0, 0) != "t") return read;
  std::string where = "experiment = $1 AND ts >= $2";
  if (info.View(0, 1) == "t") {
    ABGATE_ASSIGN_OR_RETURN(const postgres::Result snapshot, c.Query("SELECT pg_current_snapshot()::text"));
    read.cursor = {true, 0, snapshot.Text(0, 0)};
    read.incremental = after.valid && IsSnapshotText(after.snapshot);
    if (read.incremental) {
      where += StrCat(" AND ", NotSeenBy(after.snapshot));
    }
  }
  ABGATE_RETURN_IF_ERROR(c.ForEachRowStreamed(
      StrCat("SELECT score, shadow_score, latency_us, shadow_latency_us, shadow_status, arm, shadow_arm, ts, request_id "
             "FROM shadows WHERE ", where),
      postgres::Params().Text(experiment).Int(since_us), [&](const postgres::Result& r) {
        ShadowRow row;
        if (!r.IsNull(0, 0)) row.score = std::strtod(PQgetvalue(r.get(), 0, 0), nullptr);
        if (!r.IsNull(0, 1)) row.shadow_score = std::strtod(PQgetvalue(r.get(), 0, 1), nullptr);
        row.latency_us = r.Int(0, 2);
        row.shadow_latency_us = r.Int(0, 3);
        row.status = static_cast<int>(r.Int(0, 4));
        row.arm = r.Text(0, 5);
        row.shadow_arm = r.Text(0, 6);
        row.ts_us = r.Int(0, 7);
        row.request_id = r.Text(0, 8);
        read.rows.push_back(std::move(row));
      }));
  ABGATE_RETURN_IF_ERROR(c.Exec("COMMIT"));
  return read;
}

absl::StatusOr<std::string> PostgresEventReader::ReadStoredConfig(const std::string& experiment) {
  std::string stored;
  ABGATE_RETURN_IF_ERROR(ScanTable(uri_, "SELECT config FROM experiment_configs WHERE name = $1", experiment,
                                   [&](const postgres::Result& r) { stored = r.Text(0, 0); }));
  return stored;
}

absl::StatusOr<std::vector<AuditedConfig>> PostgresEventReader::ReadConfigHistory(const std::string& experiment) {
  std::vector<AuditedConfig> rows;
  ABGATE_RETURN_IF_ERROR(ScanTable(uri_, "SELECT ts, before, after FROM audit_log WHERE experiment = $1 ORDER BY id",
                                   experiment, [&](const postgres::Result& r) {
                                     rows.push_back({r.Int(0, 0), r.Text(0, 1), r.Text(0, 2)});
                                   }));
  return rows;
}

absl::Status PostgresEventReader::ScanPopulation(const std::string& experiment,
                                                 const std::function<void(const UnitExposure&)>& exposure,
                                                 const std::function<void(const OutcomeRecord&)>& outcome) {
  const std::string scope = experiment.empty() ? "experiment <> $1" : "experiment = $1";
  ABGATE_RETURN_IF_ERROR(ScanTable(uri_,
                                   StrCat("SELECT unit_id, request_id, ts, routing_mode FROM exposures WHERE ", scope,
                                          " AND unit_id IS NOT NULL AND unit_id <> ''"),
                                   experiment, [&](const postgres::Result& r) {
                                     exposure({r.View(0, 0), r.View(0, 1), r.Int(0, 2), r.View(0, 3) == kHoldoutRoutingMode});
                                   }));
  return ScanTable(uri_, StrCat("SELECT request_id, unit_id, metric, value, ts, event_id FROM outcomes WHERE ", scope),
                   experiment, [&](const postgres::Result& r) {
                     outcome({r.View(0, 0), r.View(0, 1), r.View(0, 2), std::strtod(PQgetvalue(r.get(), 0, 3), nullptr),
                              r.Int(0, 4), r.View(0, 5)});
                   });
}

absl::StatusOr<std::vector<BanditWeights>> PostgresEventReader::ReadBanditWeights(const std::string& experiment) {
  std::vector<BanditWeights> rows;
  ABGATE_RETURN_IF_ERROR(ScanTable(uri_, "SELECT ts, weights FROM bandit_weights WHERE experiment = $1 ORDER BY ts",
                                   experiment, [&](const postgres::Result& r) {
                                     rows.push_back({r.Int(0, 0), r.Text(0, 1)});
                                   }));
  return rows;
}

absl::StatusOr<int64_t> PostgresEventReader::CountHistoryRows(const std::string& experiment) {
  ABGATE_ASSIGN_OR_RETURN(auto c, postgres::Connection::Connect(uri_));
  // One snapshot for both counts; a store no newer gateway has opened has no bandit_weights.
  ABGATE_RETURN_IF_ERROR(c.Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
  ABGATE_ASSIGN_OR_RETURN(const postgres::Result tables,
                          c.Query("SELECT to_regclass('audit_log') IS NOT NULL, to_regclass('bandit_weights') IS NOT NULL"));
  int64_t rows = 0;
  for (const auto& [column, table] : {std::pair{0, "audit_log"}, std::pair{1, "bandit_weights"}}) {
    if (tables.View(0, column) != "t") continue;
    ABGATE_ASSIGN_OR_RETURN(const postgres::Result n, c.Query(StrCat("SELECT count(*) FROM ", table, " WHERE experiment = $1"),
                                                              postgres::Params().Text(experiment)));
    rows += n.Int(0, 0);
  }
  ABGATE_RETURN_IF_ERROR(c.Exec("COMMIT"));
  return rows;
}

absl::StatusOr<std::vector<StoredMetric>> PostgresEventReader::ReadOutcomeMetrics(const std::string& experiment) {
  char sql[512];
  std::snprintf(sql, sizeof(sql), events_internal::kOutcomeMetricsSql, "$1");
  std::vector<StoredMetric> rows;
  ABGATE_RETURN_IF_ERROR(ScanTable(uri_, sql, experiment, [&](const postgres::Result& r) {
    rows.push_back({r.Text(0, 0), r.View(0, 1) == "binary"});
  }));
  return rows;
}

absl::Status PostgresEventReader::ReadServedRequests(const std::string& experiment, int64_t since_us,
                                                     const std::function<void(const ServedRequest&)>& visit) {
  ABGATE_ASSIGN_OR_RETURN(auto c, postgres::Connection::Connect(uri_));
  // One snapshot for both tables, so a payload and its exposure are seen together.
  ABGATE_RETURN_IF_ERROR(c.Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
  ABGATE_ASSIGN_OR_RETURN(const postgres::Result info,
                          c.Query("SELECT to_regclass('exposures') IS NOT NULL, to_regclass('payloads') IS NOT NULL, "
                                  "EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = 'exposures' AND "
                                  "column_name = 'assignment_probability')"));
  if (info.View(0, 0) != "t") return absl::FailedPreconditionError(StrCat(uri_, " has no exposures table"));
  const bool has_probability = info.View(0, 2) == "t";
  struct Payload {
    std::string request, response;
    bool truncated;
  };
  // Payloads are bytea: read as hex text and decoded here.
  auto unhex = [](std::string_view hex) {
    auto nibble = [](char ch) { return ch <= '9' ? ch - '0' : (ch | 0x20) - 'a' + 10; };
    std::string out;
    out.reserve(hex.size() / 2);
    for (size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(static_cast<char>(nibble(hex[i]) * 16 + nibble(hex[i + 1])));
    return out;
  };
  absl::flat_hash_map<std::string, Payload> payloads;
  if (info.View(0, 1) == "t") {
    ABGATE_RETURN_IF_ERROR(c.ForEachRowStreamed(
        "SELECT request_id, encode(request, 'hex'), encode(response, 'hex'), truncated FROM payloads WHERE "
        "experiment = $1 AND ts >= $2",
        postgres::Params().Text(experiment).Int(since_us), [&](const postgres::Result& r) {
          payloads.insert_or_assign(r.Text(0, 0), Payload{unhex(r.View(0, 1)), unhex(r.View(0, 2)), r.Int(0, 3) != 0});
        }));
  }
  ServedRequest row;
  ABGATE_RETURN_IF_ERROR(c.ForEachRowStreamed(
      StrCat("SELECT request_id, ts, unit_id, arm, assigned_arm, model_name, model_version, routing_mode, score, ",
             has_probability ? "assignment_probability" : "NULL",
             " FROM exposures WHERE experiment = $1 AND in_experiment = 1 AND ts >= $2"),
      postgres::Params().Text(experiment).Int(since_us), [&](const postgres::Result& r) {
        row.request_id = r.Text(0, 0);
        row.ts_us = r.Int(0, 1);
        row.unit_id = r.Text(0, 2);
        row.arm = r.Text(0, 3);
        row.assigned_arm = r.Text(0, 4);
        row.model_name = r.Text(0, 5);
        row.model_version = r.Text(0, 6);
        row.routing_mode = r.Text(0, 7);
        row.score = r.IsNull(0, 8) ? std::nullopt : std::optional(std::strtod(PQgetvalue(r.get(), 0, 8), nullptr));
        row.assignment_probability =
            r.IsNull(0, 9) ? std::nullopt : std::optional(std::strtod(PQgetvalue(r.get(), 0, 9), nullptr));
        auto it = payloads.find(row.request_id);
        row.sampled = it != payloads.end();
        row.request = row.sampled ? std::move(it->second.request) : std::string();
        row.response = row.sampled ? std::move(it->second.response) : std::string();
        row.truncated = row.sampled && it->second.truncated;
        if (row.sampled) payloads.erase(it);
        visit(row);
      }));
  return c.Exec("COMMIT");
}

}  // namespace abgate::events

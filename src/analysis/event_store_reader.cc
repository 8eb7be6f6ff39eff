// ReadEventStore: one experiment's exposures and outcomes → AnalysisInput.
//
// Built for 10M exposures and 10M outcomes on 2 cores (bench/analyze_vs_pandas.sh). The work
// is arranged so every core stays busy and no step chases pointers through a big hash map:
//  1. Scan. Both tables are cut into rowid ranges (SQLite; PostgreSQL streams each table on
//     its own connection) that workers take in turn, each on its own connection. Every row
//     becomes a fixed-size record keyed by a 64-bit hash of its unit (or request) id and is
//     appended to one of 256 partitions picked by the key's top bits, so the exposures of a
//     unit and the outcomes naming it land in the same partition.
//  2. Request join, only when outcomes carry request ids: exposures and those outcomes are
//     partitioned by request key and joined partition by partition; each joined outcome moves
//     to its unit's partition.
//  3. Per partition, in parallel: a hash map small enough to stay in cache gives the units
//     (first exposure, arm, seen in two arms?), outcomes are attributed, and the partition's
//     units and scored predictions are written out.
// Ids are hashed rather than kept: two of 2M ids collide with probability ~1e-7.
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "analysis/analysis.h"
#include "analysis/store_scan.h"
#include "common/hash64.h"
#include "common/parallel.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "events/event_blocks.h"
#include "sqlite/database.h"

namespace abgate::analysis {
namespace {

using internal::IsPostgres;
using internal::PgConnection;
using internal::PgDouble;
using internal::PgInt64;

constexpr int kPartitionBits = 8;
constexpr size_t kPartitions = size_t{1} << kPartitionBits;
constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();

size_t PartitionOf(uint64_t key) { return static_cast<size_t>(key >> (64 - kPartitionBits)); }

// The same stable hash the event blocks were written with.
uint64_t KeyOf(std::string_view id) { return common::Hash64(id); }

// Units that are requests (request-level analysis, or an exposure without a unit id) get keys
// apart from user keys: a bijection of the request key, so distinct requests stay distinct.
uint64_t RequestUnitKey(uint64_t request_key) { return (request_key ^ 0x9e3779b97f4a7c15ULL) * 0xbf58476d1ce4e5b9ULL; }

struct ExposureRow {
  uint64_t unit_key;
  uint64_t request_key;
  int64_t ts;
  double score;  // NaN when the request was not scored (SQLite cannot store a NaN score)
  uint32_t arm;  // index in the scan's ArmTable
};

struct OutcomeRow {
  uint64_t key;  // the unit's key; the request's key until the request join
  int64_t ts;
  double value;
  uint32_t metric;
  uint32_t exposure;  // joined by request: the exposure's index in its partition, else kNone
};

// The (arm, model version) pairs the scan met — an arm defined by alias is served by every
// version the alias pointed at — shared by the workers (each keeps its own cache, so the lock
// is taken once per worker and pair). `first_rowid` orders each arm's versions by first sight.
class ArmTable {
 public:
  struct Arm {
    std::string name;
    std::string model_version;
    int64_t first_rowid;
  };

  uint32_t Find(std::string_view name, std::string_view model_version, int64_t rowid) {
    std::lock_guard lock(mu_);
    for (uint32_t i = 0; i < arms_.size(); ++i) {
      if (arms_[i].name != name || arms_[i].model_version != model_version) continue;
      arms_[i].first_rowid = std::min(arms_[i].first_rowid, rowid);
      return i;
    }
    arms_.push_back({std::string(name), std::string(model_version), rowid});
    return static_cast<uint32_t>(arms_.size() - 1);
  }
  // After the scan (no lock).
  std::vector<Arm>& arms() { return arms_; }

 private:
  std::mutex mu_;
  std::vector<Arm> arms_;
};

// What one worker's scan produced.
struct ScanOutput {
  ScanOutput() : exposures(kPartitions), outcomes(kPartitions), request_outcomes(kPartitions) {}
  std::vector<std::vector<ExposureRow>> exposures;        // by PartitionOf(unit key)
  std::vector<std::vector<OutcomeRow>> outcomes;          // by unit id, by PartitionOf(unit key)
  std::vector<std::vector<OutcomeRow>> request_outcomes;  // by request id, by PartitionOf(request key)
  std::vector<int64_t> arm_exposures;                     // by ArmTable index
  std::vector<std::tuple<std::string, std::string, uint32_t>> arm_cache;  // name, version, ArmTable index
  absl::Status status;
};

// A unit partition's share of the result.
struct PartitionResult {
  std::vector<UnitObservation> units;
  std::vector<ScoredPrediction> predictions;
  AnalysisInput::OutcomeCounts counts;
  int64_t multiple_arm_units = 0;
};

// Phase timings on stderr when ABGATE_ANALYZE_TIMINGS is set (for bench/analyze_vs_pandas.sh).
class PhaseLog {
 public:
  PhaseLog() : enabled_(std::getenv("ABGATE_ANALYZE_TIMINGS") != nullptr), last_(std::chrono::steady_clock::now()) {}
  void Mark(const char* phase) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    std::fprintf(stderr, "analyze: %-14s %6.3f s\n", phase, std::chrono::duration<double>(now - last_).count());
    last_ = now;
  }

 private:
  bool enabled_;
  std::chrono::steady_clock::time_point last_;
};

class StoreReader {
 public:
  StoreReader(const std::string& uri, const std::string& experiment, const std::string& unit,
              std::vector<MetricSpec> metrics, int64_t window_us, int64_t since_us, ReadTuning tuning)
      : uri_(uri),
        experiment_(experiment),
        request_units_(unit == "request"),
        metrics_(std::move(metrics)),
        window_us_(window_us),
        since_us_(since_us),
        workers_(tuning.workers > 0 ? tuning.workers : common::DefaultParallelism()),
        rows_per_chunk_(tuning.rows_per_chunk),
        use_blocks_(tuning.use_blocks),
        scans_(static_cast<size_t>(std::max(workers_, 2))) {
    input_.experiment = experiment;
    input_.unit = unit;
  }

  absl::StatusOr<AnalysisInput> Read() {
    PhaseLog log;
    if (auto s = IsPostgres(uri_) ? ScanPostgres() : ScanSqlite(); !s.ok()) return s;
    for (const auto& scan : scans_) {
      if (!scan.status.ok()) return scan.status;
    }
    log.Mark("scan");
    int64_t exposures = 0;
    for (const auto& scan : scans_) {
      for (int64_t n : scan.arm_exposures) exposures += n;
    }
    if (exposures == 0) return absl::NotFoundError(StrCat("no exposures for experiment '", experiment_, "' in ", uri_));
    SortArms();
    input_.metrics = std::move(metrics_);
    const size_t joined = JoinRequests();
    if (joined > 0) log.Mark("request join");
    AttributeByPartition();
    log.Mark("attribution");
    return std::move(input_);
  }

 private:
  // ---- 1. Scan ----------------------------------------------------------------------------

  // The (arm, version) pair's index in arms_, through the worker's cache. `position` orders
  // first sightings (a rowid).
  uint32_t ResolveArm(ScanOutput& out, std::string_view name, std::string_view model_version, int64_t position) {
    for (const auto& [cached, version, index] : out.arm_cache) {
      if (cached == name && version == model_version) return index;
    }
    const uint32_t arm = arms_.Find(name, model_version, position);
    out.arm_cache.emplace_back(std::string(name), std::string(model_version), arm);
    if (out.arm_exposures.size() <= arm) out.arm_exposures.resize(arm + 1);
    return arm;
  }

  void AddExposure(ScanOutput& out, uint32_t arm, uint64_t request_key, bool has_unit, uint64_t unit_key, int64_t ts,
                   bool scored, double score) {
    ++out.arm_exposures[arm];
    // Request-level analysis, and units without an id, use the request as the unit.
    if (request_units_ || !has_unit) unit_key = RequestUnitKey(request_key);
    out.exposures[PartitionOf(unit_key)].push_back(
        {unit_key, request_key, ts, scored ? score : std::numeric_limits<double>::quiet_NaN(), arm});
  }

  // Attributed by request id when the outcome has one, else by unit id.
  void AddOutcome(ScanOutput& out, uint32_t metric, bool by_request, uint64_t key, double value, int64_t ts) {
    (by_request ? out.request_outcomes : out.outcomes)[PartitionOf(key)].push_back({key, ts, value, metric, kNone});
  }

  // One stored row (the row path: PostgreSQL, or a SQLite store without event blocks).
  void AddExposureRow(ScanOutput& out, std::string_view request_id, std::string_view unit_id, std::string_view arm,
                      std::string_view model_version, int64_t rowid, int64_t ts, bool scored, double score) {
    AddExposure(out, ResolveArm(out, arm, model_version, rowid), KeyOf(request_id), !unit_id.empty(),
                unit_id.empty() ? 0 : KeyOf(unit_id), ts, scored, score);
  }

  void AddOutcomeRow(ScanOutput& out, std::string_view request_id, std::string_view unit_id, std::string_view metric,
                     double value, int64_t ts) {
    uint32_t j = 0;
    while (j < metrics_.size() && metrics_[j].name != metric) ++j;
    if (j == metrics_.size() || (request_id.empty() && unit_id.empty())) return;
    const bool by_request = !request_id.empty();
    AddOutcome(out, j, by_request, KeyOf(by_request ? request_id : unit_id), value, ts);
  }

  // One event block (events/event_blocks.h): ids are already keys.
  void AddExposureBlock(ScanOutput& out, std::string_view blob, int64_t rowid) {
    auto block = events::ExposureBlock::Parse(blob);
    if (!block.ok()) {
      out.status = block.status();
      return;
    }
    uint32_t arms[events::kMaxBlockNames];
    std::fill(std::begin(arms), std::end(arms), kNone);
    for (size_t i = 0; i < block->size(); ++i) {
      const int64_t ts = block->ts(i);
      if (ts < since_us_) continue;
      uint32_t& arm = arms[block->arm(i)];
      if (arm == kNone) {
        const auto& a = block->arms()[block->arm(i)];
        arm = ResolveArm(out, a.name, a.model_version, rowid);
      }
      AddExposure(out, arm, block->request_key(i), block->has_unit(i), block->unit_key(i), ts, block->scored(i),
                  block->score(i));
    }
  }

  void AddOutcomeBlock(ScanOutput& out, std::string_view blob) {
    auto block = events::OutcomeBlock::Parse(blob);
    if (!block.ok()) {
      out.status = block.status();
      return;
    }
    uint32_t metric[events::kMaxBlockNames];
    for (size_t b = 0; b < block->metrics().size(); ++b) {
      uint32_t j = 0;
      while (j < metrics_.size() && metrics_[j].name != block->metrics()[b]) ++j;
      metric[b] = j == metrics_.size() ? kNone : j;
    }
    for (size_t i = 0; i < block->size(); ++i) {
      const uint32_t j = metric[block->metric(i)];
      const int64_t ts = block->ts(i);
      if (j == kNone || ts < since_us_) continue;
      AddOutcome(out, j, block->by_request(i), block->key(i), block->value(i), ts);
    }
  }

  // SQLite hands each row to an aggregate function registered on the worker's connection, so
  // a chunk is one sqlite3_step: stepping out of the VM and fetching columns through
  // sqlite3_column_* cost more than the scan itself (5.6 s vs 2.6 s for 10M exposure rows
  // here). With event blocks a row is a block of thousands of events, and decoding them is
  // most of the work. Exposures: the assigned arm (intent to treat: a fallback served by
  // control still counts for the arm it was assigned to). No ORDER BY: the earliest exposure
  // is tracked per unit. The ts condition only when it filters (each costs ~10% of a row scan).
  std::string SqliteQuery(bool outcomes) const {
    if (blocks_) {
      return StrCat(outcomes ? "SELECT abgate_outcome_block(data) FROM outcome_blocks "
                             : "SELECT abgate_exposure_block(data, rowid) FROM exposure_blocks ",
                    "WHERE rowid BETWEEN ?1 AND ?2 AND experiment = ?3", since_us_ > 0 ? " AND max_ts >= ?4" : "");
    }
    return StrCat(outcomes ? "SELECT abgate_outcome(request_id, unit_id, metric, value, ts) FROM outcomes "
                           : "SELECT abgate_exposure(request_id, unit_id, assigned_arm, rowid, ts, score, model_version) "
                             "FROM exposures ",
                  "WHERE rowid BETWEEN ?1 AND ?2 AND experiment = ?3", outcomes ? "" : " AND in_experiment = 1",
                  since_us_ > 0 ? " AND ts >= ?4" : "");
  }

  struct SqliteSink {
    StoreReader* reader;
    ScanOutput* out;
  };

  static std::string_view ValueView(sqlite3_value* v) {
    const auto* p = reinterpret_cast<const char*>(sqlite3_value_text(v));
    return p ? std::string_view(p, static_cast<size_t>(sqlite3_value_bytes(v))) : std::string_view();
  }

  static std::string_view BlobView(sqlite3_value* v) {
    const auto* p = static_cast<const char*>(sqlite3_value_blob(v));
    return p ? std::string_view(p, static_cast<size_t>(sqlite3_value_bytes(v))) : std::string_view();
  }

  static void ExposureStep(sqlite3_context* context, int, sqlite3_value** v) {
    auto* sink = static_cast<SqliteSink*>(sqlite3_user_data(context));
    const bool scored = sqlite3_value_type(v[5]) != SQLITE_NULL;
    sink->reader->AddExposureRow(*sink->out, ValueView(v[0]), ValueView(v[1]), ValueView(v[2]), ValueView(v[6]),
                                 sqlite3_value_int64(v[3]), sqlite3_value_int64(v[4]), scored,
                                 scored ? sqlite3_value_double(v[5]) : 0.0);
  }

  static void OutcomeStep(sqlite3_context* context, int, sqlite3_value** v) {
    auto* sink = static_cast<SqliteSink*>(sqlite3_user_data(context));
    sink->reader->AddOutcomeRow(*sink->out, ValueView(v[0]), ValueView(v[1]), ValueView(v[2]),
                                sqlite3_value_double(v[3]), sqlite3_value_int64(v[4]));
  }

  static void ExposureBlockStep(sqlite3_context* context, int, sqlite3_value** v) {
    auto* sink = static_cast<SqliteSink*>(sqlite3_user_data(context));
    sink->reader->AddExposureBlock(*sink->out, BlobView(v[0]), sqlite3_value_int64(v[1]));
  }

  static void OutcomeBlockStep(sqlite3_context* context, int, sqlite3_value** v) {
    auto* sink = static_cast<SqliteSink*>(sqlite3_user_data(context));
    sink->reader->AddOutcomeBlock(*sink->out, BlobView(v[0]));
  }

  static void NoResult(sqlite3_context* context) { sqlite3_result_null(context); }

  struct Chunk {
    bool outcomes;
    int64_t first, last;  // rowids, inclusive
  };

  // Both tables cut into rowid ranges, exposures and outcomes alternating so the workers
  // share both.
  std::vector<Chunk> PlanChunks(std::pair<int64_t, int64_t> exposures, std::pair<int64_t, int64_t> outcomes,
                                int64_t min_size) const {
    const auto span = [](std::pair<int64_t, int64_t> r) { return std::max<int64_t>(0, r.second - r.first + 1); };
    int64_t size = rows_per_chunk_;
    if (size <= 0) size = std::max<int64_t>(min_size, (span(exposures) + span(outcomes)) / (8 * workers_) + 1);
    auto cut = [&](std::pair<int64_t, int64_t> r, bool outcome_table) {
      std::vector<Chunk> chunks;
      for (int64_t first = r.first; first <= r.second; first += size) {
        chunks.push_back({outcome_table, first, std::min(r.second, first + size - 1)});
        if (first > r.second - size) break;  // the next step would overflow
      }
      return chunks;
    };
    const auto e = cut(exposures, false), o = cut(outcomes, true);
    std::vector<Chunk> chunks;
    for (size_t i = 0; i < std::max(e.size(), o.size()); ++i) {
      if (i < e.size()) chunks.push_back(e[i]);
      if (i < o.size()) chunks.push_back(o[i]);
    }
    return chunks;
  }

  absl::Status ScanSqlite() {
    const std::string path = uri_.substr(7);
    std::pair<int64_t, int64_t> exposure_rows, outcome_rows{1, 0};
    {
      ABGATE_ASSIGN_OR_RETURN(auto db, internal::OpenForReading(path));
      if (!db->HasTable("exposures")) return absl::FailedPreconditionError(StrCat(path, " has no exposures table"));
      // Blocks exist from schema version 3 on and hold every row while block_coverage says so
      // (see sqlite_event_sink.cc); otherwise (an older store, or rows added by hand) the rows
      // are read.
      blocks_ = use_blocks_ && db->HasTable("exposure_blocks") && db->HasTable("outcome_blocks") &&
                db->HasTable("block_coverage") && internal::BlocksCoverRows(*db);
      const char* exposures = blocks_ ? "exposure_blocks" : "exposures";
      const char* outcomes = blocks_ ? "outcome_blocks" : "outcomes";
      exposure_rows = internal::RowidRange(*db, exposures);
      if (db->HasTable(outcomes)) outcome_rows = internal::RowidRange(*db, outcomes);
      if (blocks_) {
        auto events = [&](const char* table) {
          auto n = db->QueryInt(StrCat("SELECT coalesce(sum(rows), 0) FROM ", table, " WHERE experiment = ?"),
                                {experiment_});
          return n.ok() ? *n : 0;
        };
        Reserve(events("exposure_blocks"), events("outcome_blocks"));
      } else {
        Reserve(exposure_rows.second - exposure_rows.first + 1, outcome_rows.second - outcome_rows.first + 1);
      }
    }
    // Blocks hold ~thousands of events each: chunks of a few blocks.
    const std::vector<Chunk> chunks = PlanChunks(exposure_rows, outcome_rows, blocks_ ? 4 : 1 << 16);

    struct Connection {
      std::unique_ptr<sqlite::Database> db;
      SqliteSink sink;
      sqlite3_stmt* statements[2] = {nullptr, nullptr};
      ~Connection() {
        for (auto* st : statements) sqlite3_finalize(st);
      }
      absl::Status Open(const std::string& path) {
        ABGATE_ASSIGN_OR_RETURN(db, internal::OpenForReading(path));
        // Pages straight from the page cache instead of a read() copy each (capped by the
        // library's SQLITE_MAX_MMAP_SIZE; the rest is read as usual).
        (void)db->ExecScript("PRAGMA mmap_size = 1099511627776");
        constexpr int kFlags = SQLITE_UTF8 | SQLITE_DIRECTONLY;
        const struct {
          const char* name;
          int args;
          void (*step)(sqlite3_context*, int, sqlite3_value**);
        } functions[] = {{"abgate_exposure", 7, ExposureStep},
                         {"abgate_outcome", 5, OutcomeStep},
                         {"abgate_exposure_block", 2, ExposureBlockStep},
                         {"abgate_outcome_block", 1, OutcomeBlockStep}};
        for (const auto& f : functions) {
          if (sqlite3_create_function(db->raw(), f.name, f.args, kFlags, &sink, nullptr, f.step, NoResult) !=
              SQLITE_OK) {
            return db->Error("register functions");
          }
        }
        return absl::OkStatus();
      }
    };
    std::vector<Connection> connections(static_cast<size_t>(workers_));
    ScanChunks(chunks.size(), [&](ScanOutput& out, size_t worker, size_t task) {
      const Chunk& chunk = chunks[task];
      Connection& c = connections[worker];
      if (!c.db) {
        c.sink = {this, &out};
        if (out.status = c.Open(path); !out.status.ok()) return;
      }
      sqlite3_stmt*& st = c.statements[chunk.outcomes];
      if (st == nullptr) {
        if (sqlite3_prepare_v2(c.db->raw(), SqliteQuery(chunk.outcomes).c_str(), -1, &st, nullptr) != SQLITE_OK) {
          out.status = c.db->Error("prepare");
          return;
        }
        sqlite3_bind_text(st, 3, experiment_.c_str(), -1, SQLITE_STATIC);
        if (since_us_ > 0) sqlite3_bind_int64(st, 4, since_us_);
      }
      sqlite3_reset(st);
      sqlite3_bind_int64(st, 1, chunk.first);
      sqlite3_bind_int64(st, 2, chunk.last);
      int rc;
      while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      }
      if (rc != SQLITE_DONE) out.status = c.db->Error("scan");
    });

    return absl::OkStatus();
  }

  // PostgreSQL: every worker reads on its own connection, all in one exported snapshot so they
  // see the same rows. Event blocks when the experiment's blocks account for all its rows
  // (postgres_event_sink.cc), in ranges of block ids; else the rows, in ranges of heap pages
  // (TID range scans, PostgreSQL 14 on; one range per table before). Values arrive in binary,
  // 20000 rows per FETCH (single-row mode cost a PGresult per row).
  absl::Status ScanPostgres() {
    PgConnection lead;
    if (auto s = lead.Connect(uri_); !s.ok()) return s;
    if (auto s = lead.Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); !s.ok()) return s;
    char* quoted = PQescapeLiteral(lead.get(), experiment_.c_str(), experiment_.size());
    if (!quoted) return lead.Error("quote");
    const std::string experiment = quoted;
    PQfreemem(quoted);
    auto info = lead.Query(
        "SELECT pg_export_snapshot(), to_regclass('exposures') IS NOT NULL, to_regclass('outcomes') IS NOT NULL, "
        "pg_relation_size('exposures') / current_setting('block_size')::bigint, "
        "coalesce(pg_relation_size(to_regclass('outcomes')), 0) / current_setting('block_size')::bigint, "
        "to_regclass('exposure_blocks') IS NOT NULL AND to_regclass('outcome_blocks') IS NOT NULL");
    if (!info.ok()) return info.status();
    auto value = [&](int i) { return PQgetvalue(info->get(), 0, i); };
    const std::string snapshot = value(0);
    if (value(1)[0] != 't') return absl::FailedPreconditionError(StrCat(uri_, " has no exposures table"));
    const bool has_outcomes = value(2)[0] == 't';
    const int64_t exposure_pages = std::atoll(value(3)), outcome_pages = std::atoll(value(4));
    std::vector<Chunk> chunks;
    if (use_blocks_ && has_outcomes && value(5)[0] == 't') {
      // Per table, one pass over the experiment's blocks: do they stand for all its rows, the
      // range of their ids, and how many events they hold.
      struct BlockSummary {
        bool covers_rows;
        int64_t first_id, last_id, events;
      };
      auto summarize = [&](const char* blocks_table, const char* rows_table) -> absl::StatusOr<BlockSummary> {
        auto r = lead.Query(StrCat("SELECT coalesce(sum(source_rows), 0) = (SELECT count(*) FROM ", rows_table,
                                   " WHERE experiment = ", experiment, "), coalesce(min(id), 1), coalesce(max(id), 0), ",
                                   "coalesce(sum(rows), 0) FROM ", blocks_table, " WHERE experiment = ", experiment));
        if (!r.ok()) return r.status();
        auto number = [&](int i) { return std::atoll(PQgetvalue(r->get(), 0, i)); };
        return BlockSummary{PQgetvalue(r->get(), 0, 0)[0] == 't', number(1), number(2), number(3)};
      };
      ABGATE_ASSIGN_OR_RETURN(const BlockSummary e, summarize("exposure_blocks", "exposures"));
      ABGATE_ASSIGN_OR_RETURN(const BlockSummary o, summarize("outcome_blocks", "outcomes"));
      blocks_ = e.covers_rows && o.covers_rows;
      if (blocks_) {
        chunks = PlanChunks({e.first_id, e.last_id}, {o.first_id, o.last_id}, 4);
        Reserve(e.events, o.events);
      }
    }
    const bool tid_ranges = PQserverVersion(lead.get()) >= 140000;
    if (!blocks_) {
      if (tid_ranges) chunks = PlanChunks({0, exposure_pages - 1}, {0, has_outcomes ? outcome_pages - 1 : -1}, 64);
      // Each table's last range is open-ended (and is the whole table without TID ranges).
      for (const bool outcome_table : {false, true}) {
        if (outcome_table && !has_outcomes) continue;
        auto last =
            std::find_if(chunks.rbegin(), chunks.rend(), [&](const Chunk& c) { return c.outcomes == outcome_table; });
        if (last == chunks.rend()) {
          chunks.push_back({outcome_table, 0, -1});
        } else {
          last->last = -1;
        }
      }
      Reserve(exposure_pages * 40, outcome_pages * 60);  // rows per page, about
    }

    std::vector<PgConnection> connections(static_cast<size_t>(workers_));
    ScanChunks(chunks.size(), [&](ScanOutput& out, size_t worker, size_t task) {
      const Chunk& chunk = chunks[task];
      PgConnection& c = connections[worker];
      if (!c.get()) {
        out.status = c.Connect(uri_);
        if (out.status.ok()) out.status = c.Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
        if (out.status.ok()) out.status = c.Exec(StrCat("SET TRANSACTION SNAPSHOT '", snapshot, "'"));
        if (!out.status.ok()) return;
      }
      using internal::PgView;
      if (blocks_) {
        const std::string query =
            StrCat("SELECT data, id FROM ", chunk.outcomes ? "outcome_blocks" : "exposure_blocks",
                   " WHERE experiment = ", experiment, " AND id BETWEEN ", chunk.first, " AND ", chunk.last,
                   since_us_ > 0 ? StrCat(" AND max_ts >= ", since_us_) : "", " ORDER BY id");
        // A damaged block's error (set by Add…Block) comes first.
        out.status.Update(c.ForEachRow(query, [&](PGresult* r, int i) {
          if (chunk.outcomes) {
            AddOutcomeBlock(out, PgView(r, i, 0));
          } else {
            AddExposureBlock(out, PgView(r, i, 0), PgInt64(r, i, 1));
          }
        }, 64));
        return;
      }
      std::string where = StrCat(" WHERE experiment = ", experiment);
      if (tid_ranges && chunk.first > 0) where += StrCat(" AND ctid >= '(", chunk.first, ",0)'::tid");
      if (tid_ranges && chunk.last >= 0) where += StrCat(" AND ctid < '(", chunk.last + 1, ",0)'::tid");
      if (since_us_ > 0) where += StrCat(" AND ts >= ", since_us_);
      const std::string query =
          chunk.outcomes
              ? StrCat("SELECT request_id, unit_id, metric, value, ts FROM outcomes", where)
              : StrCat("SELECT request_id, ts, unit_id, assigned_arm, score, model_version FROM exposures", where,
                       " AND in_experiment = 1");
      const int64_t position = static_cast<int64_t>(task) << 40;  // scan order, for each arm's first version
      int64_t row = 0;
      out.status = c.ForEachRow(query, [&](PGresult* r, int i) {
        if (chunk.outcomes) {
          AddOutcomeRow(out, PgView(r, i, 0), PgView(r, i, 1), PgView(r, i, 2), PgDouble(r, i, 3), PgInt64(r, i, 4));
        } else {
          const bool scored = !PQgetisnull(r, i, 4);
          AddExposureRow(out, PgView(r, i, 0), PgView(r, i, 2), PgView(r, i, 3), PgView(r, i, 5), position + row++,
                         PgInt64(r, i, 1), scored, scored ? PgDouble(r, i, 4) : 0.0);
        }
      });
    });
    return absl::OkStatus();
  }

  // Sizes every partition from the expected number of events (the blocks' counts, or a bound
  // from the tables' rowid spans or pages when the store holds other experiments too;
  // untouched reserved pages cost no memory), so the 10M-row vectors do not grow by copying.
  void Reserve(int64_t exposure_rows, int64_t outcome_rows) {
    const auto per = [&](int64_t rows) {
      // Workers share the chunks about evenly; a worker past its share grows by copying.
      return static_cast<size_t>(std::clamp<int64_t>(rows, 0, int64_t{1} << 25) * 3 / (2 * workers_ * kPartitions)) + 8;
    };
    for (auto& scan : scans_) {
      for (auto& v : scan.exposures) v.reserve(per(exposure_rows));
      for (auto& v : scan.outcomes) v.reserve(per(outcome_rows));
    }
  }

  // Arms in name order, whatever order the scan met them in, so reports are deterministic;
  // each arm's versions in the order they first served it.
  void SortArms() {
    auto& seen = arms_.arms();
    std::vector<uint32_t> order(seen.size());
    for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
      return seen[a].name != seen[b].name ? seen[a].name < seen[b].name : seen[a].first_rowid < seen[b].first_rowid;
    });
    arm_index_.assign(seen.size(), 0);
    for (uint32_t pair : order) {
      if (input_.arms.empty() || input_.arms.back().name != seen[pair].name) {
        input_.arms.push_back(ArmInfo{seen[pair].name, "", 0, 0});
      }
      ArmInfo& info = input_.arms.back();
      arm_index_[pair] = static_cast<int>(input_.arms.size() - 1);
      int64_t exposures = 0;
      for (const auto& scan : scans_) {
        if (pair < scan.arm_exposures.size()) exposures += scan.arm_exposures[pair];
      }
      info.exposures += exposures;
      info.versions.push_back({seen[pair].model_version, exposures});
      StrAppend(&info.model_version, info.model_version.empty() ? "" : ",", seen[pair].model_version);
    }
  }

  // Where each scan task's rows begin in its worker's partitions. Reading every partition in
  // task order (= rowid order) instead of worker order makes the result independent of which
  // worker happened to take which task: sums come out the same to the last bit on every run.
  struct TaskMark {
    size_t worker = 0;
    std::array<uint32_t, kPartitions> exposures{}, outcomes{}, request_outcomes{};
  };

  // Runs fn(output, worker, task) for every scan task on the workers, each task's rows going to
  // its worker's output; a worker whose output holds an error skips the rest. Records where each
  // task's rows begin, for ForEachInOrder.
  template <typename Fn>
  void ScanChunks(size_t tasks, Fn&& fn) {
    marks_.resize(tasks);
    common::ParallelFor(workers_, tasks, [&](int worker, size_t task) {
      const auto w = static_cast<size_t>(worker);
      MarkTask(task, w);
      if (scans_[w].status.ok()) fn(scans_[w], w, task);
    });
  }

  void MarkTask(size_t task, size_t worker) {
    TaskMark& m = marks_[task];
    m.worker = worker;
    const ScanOutput& out = scans_[worker];
    for (size_t p = 0; p < kPartitions; ++p) {
      m.exposures[p] = static_cast<uint32_t>(out.exposures[p].size());
      m.outcomes[p] = static_cast<uint32_t>(out.outcomes[p].size());
      m.request_outcomes[p] = static_cast<uint32_t>(out.request_outcomes[p].size());
    }
  }

  // Calls fn(row) for the rows of one kind in partition p, in task order.
  template <typename Row, typename Fn>
  void ForEachInOrder(std::vector<std::vector<Row>> ScanOutput::*kind, std::array<uint32_t, kPartitions> TaskMark::*start,
                      size_t p, Fn&& fn) const {
    for (size_t t = 0; t < marks_.size(); ++t) {
      const TaskMark& m = marks_[t];
      const std::vector<Row>& rows = (scans_[m.worker].*kind)[p];
      size_t end = rows.size();
      for (size_t next = t + 1; next < marks_.size(); ++next) {
        if (marks_[next].worker == m.worker) {
          end = (marks_[next].*start)[p];
          break;
        }
      }
      for (size_t i = (m.*start)[p]; i < end; ++i) fn(rows[i]);
    }
  }

  // ---- 2. Request join ----------------------------------------------------------------------

  // Moves every outcome that names a request to its unit's partition (`joined_`), with the
  // exposure's index there. Returns how many outcomes named a request.
  size_t JoinRequests() {
    size_t by_request = 0;
    for (const auto& scan : scans_) {
      for (const auto& v : scan.request_outcomes) by_request += v.size();
    }
    request_unknown_.assign(static_cast<size_t>(workers_), 0);
    if (by_request == 0) return 0;

    // Every exposure by request key: (request key, unit key, partition, index there).
    struct RequestRef {
      uint64_t request_key;
      uint64_t unit_key;
      uint32_t partition;
      uint32_t index;
    };
    std::vector<std::vector<std::vector<RequestRef>>> refs(static_cast<size_t>(workers_),
                                                           std::vector<std::vector<RequestRef>>(kPartitions));
    common::ParallelFor(workers_, kPartitions, [&](int worker, size_t p) {
      auto& mine = refs[static_cast<size_t>(worker)];
      uint32_t index = 0;
      ForEachInOrder(&ScanOutput::exposures, &TaskMark::exposures, p, [&](const ExposureRow& e) {
        mine[PartitionOf(e.request_key)].push_back({e.request_key, e.unit_key, static_cast<uint32_t>(p), index++});
      });
    });
    // joined_[q][p]: the outcomes of request partition q that belong to unit partition p, so
    // partition p can take them in a fixed order.
    joined_.assign(kPartitions, std::vector<std::vector<OutcomeRow>>(kPartitions));
    common::ParallelFor(workers_, kPartitions, [&](int worker, size_t q) {
      absl::flat_hash_map<uint64_t, const RequestRef*> requests;
      size_t n = 0;
      for (const auto& w : refs) n += w[q].size();
      requests.reserve(n);
      for (const auto& w : refs) {
        for (const RequestRef& r : w[q]) {
          // A request id served twice (not something the gateway does): its first exposure.
          auto [it, inserted] = requests.try_emplace(r.request_key, &r);
          if (!inserted && std::pair(r.partition, r.index) < std::pair(it->second->partition, it->second->index)) {
            it->second = &r;
          }
        }
      }
      auto& out = joined_[q];
      ForEachInOrder(&ScanOutput::request_outcomes, &TaskMark::request_outcomes, q, [&](const OutcomeRow& o) {
        auto it = requests.find(o.key);
        if (it == requests.end()) {
          ++request_unknown_[static_cast<size_t>(worker)];
          return;
        }
        out[it->second->partition].push_back({it->second->unit_key, o.ts, o.value, o.metric, it->second->index});
      });
    });
    return by_request;
  }

  // ---- 3. Units, attribution and predictions, partition by partition ------------------------

  struct UnitState {
    int64_t first_ts;
    uint32_t arm;
    bool multiple_arms;
  };

  // Reused across the partitions a worker takes.
  struct Scratch {
    absl::flat_hash_map<uint64_t, uint32_t> index;  // unit key → units[]
    std::vector<UnitState> units;
    std::vector<double> values;     // units × metrics
    std::vector<uint32_t> row_unit; // exposure row → units[]
    std::vector<double> request_label;
  };

  void ProcessPartition(size_t p, Scratch& s, PartitionResult& r) {
    const size_t m = input_.metrics.size();
    size_t n = 0;
    for (const auto& scan : scans_) n += scan.exposures[p].size();
    s.index.clear();
    s.index.reserve(n);
    s.units.clear();
    s.row_unit.resize(n);
    size_t i = 0;
    ForEachInOrder(&ScanOutput::exposures, &TaskMark::exposures, p, [&](const ExposureRow& e) {
      auto [it, inserted] = s.index.try_emplace(e.unit_key, static_cast<uint32_t>(s.units.size()));
      if (inserted) {
        s.units.push_back({e.ts, e.arm, false});
      } else {
        UnitState& u = s.units[it->second];
        // Versions of one arm are one arm (an alias that moved): compare arms, not pairs.
        u.multiple_arms |= arm_index_[u.arm] != arm_index_[e.arm];
        u.first_ts = std::min(u.first_ts, e.ts);
      }
      s.row_unit[i++] = it->second;
    });
    s.values.assign(s.units.size() * m, 0.0);
    bool any_request_labels = false;
    for (const auto& q : joined_) any_request_labels |= !q[p].empty();
    if (any_request_labels) s.request_label.assign(n, -1);

    // An outcome counts for its unit when it falls in [first exposure, first exposure +
    // window]; otherwise it is kept in the store and counted as unattributed here.
    auto attribute = [&](const OutcomeRow& o, uint32_t u) {
      const int64_t first = s.units[u].first_ts;
      if (o.ts < first) {
        ++r.counts.before_exposure;
        return;
      }
      if (window_us_ > 0 && o.ts > first + window_us_) {
        ++r.counts.after_window;
        return;
      }
      ++r.counts.attributed;
      double& v = s.values[u * m + o.metric];
      v = input_.metrics[o.metric].kind == MetricKind::kBinary ? std::max(v, o.value > 0 ? 1.0 : 0.0) : v + o.value;
      if (o.exposure != kNone && o.metric == 0) {
        s.request_label[o.exposure] = std::max(s.request_label[o.exposure], o.value > 0 ? 1.0 : 0.0);
      }
    };
    ForEachInOrder(&ScanOutput::outcomes, &TaskMark::outcomes, p, [&](const OutcomeRow& o) {
      auto it = s.index.find(o.key);
      if (it == s.index.end()) {
        ++r.counts.unknown_unit;
      } else {
        attribute(o, it->second);
      }
    });
    for (const auto& q : joined_) {
      for (const OutcomeRow& o : q[p]) attribute(o, s.row_unit[o.exposure]);
    }

    // Units seen in more than one arm are counted and left out.
    r.units.reserve(s.units.size());
    for (size_t u = 0; u < s.units.size(); ++u) {
      if (s.units[u].multiple_arms) {
        ++r.multiple_arm_units;
        continue;
      }
      r.units.push_back({arm_index_[s.units[u].arm], s.units[u].first_ts,
                         absl::InlinedVector<double, 4>(s.values.begin() + u * m, s.values.begin() + (u + 1) * m)});
    }
    // Model quality: each scored request against its own label when an outcome named it, else
    // against its unit's primary binary metric.
    if (input_.metrics[0].kind == MetricKind::kBinary) {
      r.predictions.reserve(n);
      i = 0;
      ForEachInOrder(&ScanOutput::exposures, &TaskMark::exposures, p, [&](const ExposureRow& e) {
        const uint32_t u = s.row_unit[i];
        const double request_label = any_request_labels ? s.request_label[i] : -1;
        ++i;
        if (std::isnan(e.score) || s.units[u].multiple_arms) return;
        const double label = request_label >= 0 ? request_label : s.values[u * m];
        r.predictions.push_back({arm_index_[e.arm], e.score, label > 0 ? 1 : 0});
      });
    }
  }

  void AttributeByPartition() {
    std::vector<PartitionResult> results(kPartitions);
    std::vector<Scratch> scratch(static_cast<size_t>(workers_));
    common::ParallelFor(workers_, kPartitions, [&](int worker, size_t p) {
      ProcessPartition(p, scratch[static_cast<size_t>(worker)], results[p]);
      for (auto& scan : scans_) {  // done with them: the memory goes back before the next partition
        std::vector<ExposureRow>().swap(scan.exposures[p]);
        std::vector<OutcomeRow>().swap(scan.outcomes[p]);
      }
      for (auto& q : joined_) std::vector<OutcomeRow>().swap(q[p]);
    });
    AnalysisInput::OutcomeCounts counts;
    size_t units = 0, predictions = 0;
    for (const auto& r : results) {
      units += r.units.size();
      predictions += r.predictions.size();
    }
    input_.units.reserve(units);
    input_.predictions.reserve(predictions);
    for (auto& r : results) {
      std::move(r.units.begin(), r.units.end(), std::back_inserter(input_.units));
      input_.predictions.insert(input_.predictions.end(), r.predictions.begin(), r.predictions.end());
      counts.attributed += r.counts.attributed;
      counts.before_exposure += r.counts.before_exposure;
      counts.after_window += r.counts.after_window;
      counts.unknown_unit += r.counts.unknown_unit;
      input_.multiple_exposure_units += r.multiple_arm_units;
      r = PartitionResult();
    }
    for (int64_t n : request_unknown_) counts.unknown_unit += n;
    input_.outcomes = counts;
  }

  const std::string& uri_;
  const std::string& experiment_;
  const bool request_units_;
  std::vector<MetricSpec> metrics_;
  const int64_t window_us_;
  const int64_t since_us_;
  const int workers_;
  const int64_t rows_per_chunk_;
  const bool use_blocks_;
  bool blocks_ = false;  // reading event blocks, not rows
  std::vector<ScanOutput> scans_;  // one per worker
  ArmTable arms_;
  std::vector<int> arm_index_;  // ArmTable index → index in input_.arms
  std::vector<TaskMark> marks_;  // one per scan task
  std::vector<std::vector<std::vector<OutcomeRow>>> joined_;  // [request partition][unit partition]
  std::vector<int64_t> request_unknown_;                      // [worker] outcomes naming no exposed request
  AnalysisInput input_;
};

}  // namespace

absl::StatusOr<AnalysisInput> ReadEventStore(const std::string& store_uri, const std::string& experiment,
                                             const std::string& unit, std::vector<MetricSpec> metrics,
                                             int64_t attribution_window_us, int64_t since_us, ReadTuning tuning) {
  if (!store_uri.starts_with("sqlite:") && !IsPostgres(store_uri)) {
    return absl::InvalidArgumentError(
        StrCat("unsupported event store '", store_uri, "' (use sqlite:PATH or postgresql://...)"));
  }
  if (unit != "user" && unit != "request") return absl::InvalidArgumentError("unit must be user or request");
  if (metrics.empty()) return absl::InvalidArgumentError("at least one metric is needed");
  return StoreReader(store_uri, experiment, unit, std::move(metrics), attribution_window_us, since_us, tuning).Read();
}

}  // namespace abgate::analysis

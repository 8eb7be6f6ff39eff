// The dashboard's follower on a PostgreSQL store (scripts/test.sh starts one): a refresh reads
// only the event blocks and shadow rows the last read's snapshot did not see, including a block
// whose transaction took its id early and committed late (several gateways share one store),
// and its report, shadow summary and paired shadow evaluation are a full read's to the last bit.
// The same on SQLite for the shadow rows (by rowid).
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <sqlite3.h>

#include "analysis/analysis.h"
#include "analysis/report.h"
#include "common/strings.h"
#include "config/gateway_config.h"
#include "config/json_format.h"
#include "events/event.h"
#include "events/event_blocks.h"
#include "events/event_reader.h"
#include "events/event_sink.h"
#include "gtest/gtest.h"
#include "postgres/connection.h"
#include "testing/test_store.h"

namespace abgate::analysis {
namespace {

namespace json = boost::json;

struct Events {
  std::vector<events::Exposure> exposures;
  std::vector<events::Outcome> outcomes;
};

// `n` exposures (requests r<first>...) of 300 users in three arms, a few in two arms, some out
// of the experiment; outcomes by unit and by request (booked, revenue, and clicks: revenue's
// CUPED covariate, also before the first exposures), timestamps out of order.
Events Generate(uint64_t seed, int first, int n) {
  std::mt19937_64 rng(seed);
  auto uniform = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  const std::vector<std::string> arms = {"A", "B", "C"}, versions = {"7", "8", "9"};
  Events g;
  for (int i = first; i < first + n; ++i) {
    events::Exposure e;
    e.request_id = StrCat("r", i);
    e.ts_us = uniform(1'000'000, 2'000'000);
    e.experiment = uniform(0, 19) == 0 ? "other" : "exp";
    const int user = static_cast<int>(uniform(0, 299));
    e.unit_id = uniform(0, 19) == 0 ? "" : StrCat("u", user);
    const int arm = uniform(0, 49) == 0 ? static_cast<int>(uniform(0, 2)) : user % 3;
    e.arm = e.assigned_arm = arms[arm];
    e.model_version = versions[arm];
    e.routing_mode = "user_hash";
    if (uniform(0, 9) != 0) e.score = static_cast<double>(uniform(0, 999)) / 1000;
    e.in_experiment = uniform(0, 19) != 0;
    if (uniform(0, 3) == 0) {  // mirrored to a shadow arm, which sometimes fails
      const bool failed = uniform(0, 9) == 0;
      e.latency_us = uniform(500, 3000);
      e.shadow = events::ExposureShadow{uniform(0, 5) == 0 ? "T" : "S",
                                        failed ? std::nullopt : std::optional(static_cast<double>(uniform(0, 999)) / 1000),
                                        uniform(500, 5000), failed ? 504 : 200};
    }
    g.exposures.push_back(e);
  }
  for (int i = 0; i < n; ++i) {
    events::Outcome o;
    o.ts_us = uniform(900'000, 2'500'000);
    o.experiment = "exp";
    if (uniform(0, 2) == 0) {
      o.request_id = StrCat("r", uniform(0, first + n));
    } else {
      o.unit_id = StrCat("u", uniform(0, 320));  // some never exposed
    }
    const int64_t metric = uniform(0, 4);
    o.metric = metric < 2 ? "booked" : metric < 4 ? "revenue" : "clicks";
    o.value = o.metric == "booked" ? static_cast<double>(uniform(0, 1)) : static_cast<double>(uniform(1, 500)) / 7;
    g.outcomes.push_back(o);
  }
  return g;
}

const std::vector<MetricSpec>& Metrics() {
  static const std::vector<MetricSpec> metrics = {{"booked", MetricKind::kBinary},
                                                  {"revenue", MetricKind::kContinuous, "clicks"}};
  return metrics;
}

void Write(events::EventSink& sink, const Events& g) {
  const std::span exposures(g.exposures);
  const std::span outcomes(g.outcomes);
  for (size_t i = 0; i < std::max(exposures.size(), outcomes.size()); i += 50) {
    const size_t e_to = std::min(exposures.size(), i + 50), o_to = std::min(outcomes.size(), i + 50);
    const size_t e_from = std::min(exposures.size(), i), o_from = std::min(outcomes.size(), i);
    ASSERT_TRUE(sink.WriteBatch(exposures.subspan(e_from, e_to - e_from), {}, outcomes.subspan(o_from, o_to - o_from))
                    .ok());
  }
}

// One batch's rows and event blocks written as the sink writes them, on `c`, in whatever
// transaction it has open (so a test can hold it open after its blocks took their ids).
void WriteByHand(postgres::Connection& c, const Events& g) {
  events::BlockSet blocks;
  for (const events::Exposure& e : g.exposures) {
    postgres::Params p;
    p.Text(e.request_id).Int(e.ts_us).Text(e.experiment).OptionalText(e.unit_id).Bool(e.unit_random).Text(e.arm)
        .Text(e.assigned_arm).OptionalText(e.model_name).OptionalText(e.model_version).Text(e.routing_mode)
        .Int(e.status).Int(e.latency_us).OptionalDouble(e.score).Bool(e.fallback).Bool(e.in_experiment);
    ASSERT_TRUE(c.Query("INSERT INTO exposures (request_id, ts, experiment, unit_id, unit_random, arm, assigned_arm, "
                        "model_name, model_version, routing_mode, status, latency_us, score, fallback, in_experiment) "
                        "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)",
                        p)
                    .ok());
    blocks.AddExposure(e.experiment, e.request_id, e.unit_id, e.assigned_arm, e.model_version, e.ts_us, e.score,
                       e.in_experiment);
    if (e.shadow) {
      postgres::Params q;
      q.Text(e.request_id).Int(e.ts_us).Text(e.experiment).Text(e.arm).OptionalDouble(e.score).Int(e.latency_us)
          .Text(e.shadow->arm).OptionalDouble(e.shadow->score).Int(e.shadow->latency_us).Int(e.shadow->status);
      ASSERT_TRUE(c.Query("INSERT INTO shadows (request_id, ts, experiment, arm, score, latency_us, shadow_arm, "
                          "shadow_score, shadow_latency_us, shadow_status) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)",
                          q)
                      .ok());
    }
  }
  for (const events::Outcome& o : g.outcomes) {
    postgres::Params p;
    p.Int(o.ts_us).Text(o.experiment).OptionalText(o.request_id).OptionalText(o.unit_id).Text(o.metric).Double(o.value);
    ASSERT_TRUE(c.Query("INSERT INTO outcomes (ts, experiment, request_id, unit_id, metric, value) "
                        "VALUES ($1,$2,$3,$4,$5,$6)",
                        p)
                    .ok());
    blocks.AddOutcome(o.experiment, o.request_id, o.unit_id, o.metric, o.value, o.ts_us);
  }
  for (const events::EncodedBlock& b : blocks.Finish(/*keep_empty=*/true)) {
    postgres::Params p;
    p.Text(b.experiment).Int(b.min_ts).Int(b.max_ts).Int(b.rows).Int(b.source_rows).Binary(b.data);
    ASSERT_TRUE(c.Query(StrCat("INSERT INTO ", b.outcomes ? "outcome_blocks" : "exposure_blocks",
                               " (experiment, min_ts, max_ts, rows, source_rows, data) VALUES ($1,$2,$3,$4,$5,$6)"),
                        p)
                    .ok());
  }
}

absl::StatusOr<std::string> ReportJson(const AnalysisInput& input) {
  auto report = Analyze(input);
  if (!report.ok()) return report.status();
  return json::serialize(ToJson(*report));
}

class FollowerTestBase : public ::testing::Test {
 protected:
  explicit FollowerTestBase(const std::string& backend) : dir_(MakeDir()), store_(backend, dir_) {}
  ~FollowerTestBase() override { std::filesystem::remove_all(dir_); }

  static std::string MakeDir() {
    std::string dir = (std::filesystem::temp_directory_path() / "abgate_follower_XXXXXX").string();
    return ::mkdtemp(dir.data()) ? dir : std::string();
  }

  void SetUp() override {
    if (!store_.ok()) GTEST_SKIP() << store_.reason();
    auto reader = events::OpenEventReader(store_.uri());
    ASSERT_TRUE(reader.ok());
    reader_ = std::move(*reader);
    for (const std::string unit : {"user", "request"}) {
      for (const ReadTuning& tuning : {ReadTuning{}, ReadTuning{3, 2, true}}) {
        cases_.push_back({unit, tuning, std::make_unique<EventStoreFollower>("exp", unit, Metrics(), 300'000)});
      }
    }
  }

  // Every follower reads (only new blocks when `incremental`) and reports what a full read of
  // the store reports, to the last bit, and keeps each stored event once.
  void Check(const std::string& stage, bool incremental) {
    const int64_t stored = store_.QueryInt(
        "SELECT (SELECT coalesce(sum(rows), 0) FROM exposure_blocks WHERE experiment = 'exp') + "
        "(SELECT coalesce(sum(rows), 0) FROM outcome_blocks WHERE experiment = 'exp') + "
        "(SELECT count(*) FROM shadows WHERE experiment = 'exp')");
    auto summary = ReadShadowSummary(*reader_, "exp");
    ASSERT_TRUE(summary.ok()) << summary.status();
    ASSERT_TRUE(summary->has_value()) << stage;
    const std::string summary_json = json::serialize(**summary);
    for (Case& c : cases_) {
      const std::string what = StrCat(stage, ", unit=", c.unit, ", workers=", c.tuning.workers);
      auto followed = c.follower->Read(*reader_, c.tuning);
      ASSERT_TRUE(followed.ok()) << followed.status() << " " << what;
      EXPECT_EQ(c.follower->last_read_incremental(), incremental) << what;
      if (c.follower->can_resume()) {
        EXPECT_EQ(c.follower->kept_events(), stored) << what;
      }
      auto full = ReadEventStore(*reader_, "exp", c.unit, Metrics(), 300'000, 0, c.tuning);
      ASSERT_TRUE(full.ok()) << full.status() << " " << what;
      auto a = ReportJson(*followed), b = ReportJson(*full);
      ASSERT_TRUE(a.ok() && b.ok()) << what;
      EXPECT_EQ(*a, *b) << what;
      // The shadow rows: the summary (as ReadShadowSummary gives it) and the pairs with labels.
      for (const AnalysisInput* in : {&*followed, &*full}) {
        ASSERT_TRUE(in->shadow_summary.has_value()) << what;
        auto read = ShadowFromJson(json::value(**summary));
        ASSERT_TRUE(read.ok());
        EXPECT_EQ(json::serialize(ToJson(*in->shadow_summary)), json::serialize(ToJson(*read))) << what;
      }
      EXPECT_EQ(json::serialize(ToJson(*followed->shadow_summary)), summary_json) << what;
      ASSERT_EQ(followed->shadows.size(), full->shadows.size()) << what;
      EXPECT_FALSE(followed->shadows.empty()) << what;
      for (size_t g = 0; g < full->shadows.size(); ++g) {
        EXPECT_EQ(followed->shadows[g].arm, full->shadows[g].arm) << what;
        EXPECT_EQ(followed->shadows[g].shadow_arm, full->shadows[g].shadow_arm) << what;
        EXPECT_EQ(followed->shadows[g].scores, full->shadows[g].scores) << what;
        EXPECT_EQ(followed->shadows[g].shadow_scores, full->shadows[g].shadow_scores) << what;
        EXPECT_EQ(followed->shadows[g].labels, full->shadows[g].labels) << what;
      }
    }
  }

  // Runs `sql` on the store (SQLite: a read-write connection of its own).
  void Exec(const std::string& sql) {
    if (store_.is_postgres()) {
      EXPECT_EQ(store_.QueryInt(sql + "; SELECT 1"), 1);
      return;
    }
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(store_.uri().substr(7).c_str(), &db), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    sqlite3_close(db);
  }

  struct Case {
    std::string unit;
    ReadTuning tuning;
    std::unique_ptr<EventStoreFollower> follower;
  };
  const std::string dir_;  // this test's (the SQLite store's file)
  testing::TestStore store_;
  std::unique_ptr<events::EventReader> reader_;
  std::vector<Case> cases_;
};

class PostgresFollowerTest : public FollowerTestBase {
 protected:
  PostgresFollowerTest() : FollowerTestBase("postgres") {}
};

class FollowerTest : public FollowerTestBase, public ::testing::WithParamInterface<std::string> {
 protected:
  FollowerTest() : FollowerTestBase(GetParam()) {}
};

INSTANTIATE_TEST_SUITE_P(Stores, FollowerTest, ::testing::Values("sqlite", "postgres"));

TEST_P(FollowerTest, ARefreshReadsOnlyNewEventsAndShadowRowsAndMatchesAFullRead) {
  auto sink = events::OpenEventSink(store_.uri());
  ASSERT_TRUE(sink.ok()) << sink.status();
  Write(**sink, Generate(1, 0, 600));
  Check("first read", false);
  EXPECT_TRUE(cases_[0].follower->can_resume());
  Write(**sink, Generate(2, 600, 300));
  Check("new batches", true);
  Check("nothing new", true);
  Write(**sink, Generate(3, 900, 200));
  Check("more batches", true);
}

// The shadow rows a read after a cursor gives: only those stored since (what a refresh reads).
TEST_P(FollowerTest, ShadowRowsAreReadAfterTheCursor) {
  auto sink = events::OpenEventSink(store_.uri());
  ASSERT_TRUE(sink.ok()) << sink.status();
  Write(**sink, Generate(1, 0, 300));
  auto first = reader_->ReadShadowsAfter("exp", 0, {});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->incremental);
  EXPECT_TRUE(first->cursor.valid);
  const int64_t stored = store_.QueryInt("SELECT count(*) FROM shadows WHERE experiment = 'exp'");
  EXPECT_EQ(static_cast<int64_t>(first->rows.size()), stored);
  Write(**sink, Generate(2, 300, 200));
  auto next = reader_->ReadShadowsAfter("exp", 0, first->cursor);
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_TRUE(next->incremental);
  EXPECT_EQ(static_cast<int64_t>(next->rows.size()),
            store_.QueryInt("SELECT count(*) FROM shadows WHERE experiment = 'exp'") - stored);
  EXPECT_FALSE(next->rows.empty());
  for (const events::ShadowRow& row : next->rows) EXPECT_GE(std::stoi(row.request_id.substr(1)), 300) << row.request_id;
  auto again = reader_->ReadShadowsAfter("exp", 0, next->cursor);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->incremental);
  EXPECT_TRUE(again->rows.empty());
}

// A bandit's weight history (audit trail and bandit_weights, read at every refresh): read again
// only when its rows or the config changed, and then the same as a read without the cache.
TEST_P(FollowerTest, TheWeightHistoryIsReadAgainOnlyWhenItChanged) {
  auto sink = events::OpenEventSink(store_.uri());
  ASSERT_TRUE(sink.ok()) << sink.status();
  config::ExperimentConfig c;
  c.name = "exp";
  c.model = "m";
  c.control = "A";
  c.routing_mode = config::RoutingMode::kBandit;
  c.bandit = config::BanditConfig{"booked", 0.05};
  c.arms = {{"A", "7", 50, "http://127.0.0.1:1/invocations", "", ""},
            {"B", "8", 50, "http://127.0.0.1:1/invocations", "", ""}};
  c.metrics = {{"booked", config::MetricType::kBinary, true, ""}};
  const std::string stored = config::ToJson(config::ExperimentToJson(c));
  int64_t version = 0;
  auto save = [&](int64_t ts, double a) {
    const std::vector<events::EventSink::ConfigChange> change = {{"exp", stored}};
    const std::vector<events::AuditRecord> audit = {{ts, "test", "127.0.0.1", "weights", "exp", stored, stored}};
    const std::vector<events::EventSink::BanditUpdate> update = {
        {"exp", ts, StrCat("{\"A\":", a, ",\"B\":", 1 - a, "}"), "{}"}};
    auto v = (*sink)->SaveExperimentConfigs(change, version, audit, ts, update);
    ASSERT_TRUE(v.ok()) << v.status();
    version = *v;
  };
  auto same = [](const std::vector<WeightPeriod>& x, const std::vector<WeightPeriod>& y) {
    if (x.size() != y.size()) return false;
    for (size_t i = 0; i < x.size(); ++i) {
      if (x[i].start_us != y[i].start_us || x[i].weights != y[i].weights) return false;
    }
    return true;
  };
  save(1'000'000, 0.3);
  save(2'000'000, 0.6);
  WeightHistoryCache cache;
  auto first = ReadWeightHistory(*reader_, c, cache);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(cache.rows, 4);  // two audited changes, two weight rows
  auto plain = ReadWeightHistory(*reader_, c);
  ASSERT_TRUE(plain.ok());
  EXPECT_TRUE(same(*first, *plain));
  EXPECT_GE(first->size(), 3u);
  // A row changed in place (the gateway never does): the count did not move, so the kept
  // periods are given without reading the rows.
  Exec("UPDATE bandit_weights SET weights = '{\"A\":0.9,\"B\":0.1}'");
  auto kept = ReadWeightHistory(*reader_, c, cache);
  ASSERT_TRUE(kept.ok());
  EXPECT_TRUE(same(*kept, *first));
  EXPECT_FALSE(same(*kept, *ReadWeightHistory(*reader_, c)));
  // A new row: read again.
  save(3'000'000, 0.2);
  auto grown = ReadWeightHistory(*reader_, c, cache);
  ASSERT_TRUE(grown.ok());
  EXPECT_TRUE(same(*grown, *ReadWeightHistory(*reader_, c)));
  EXPECT_EQ(cache.rows, 6);
  // Another config (other arms' weights): read for it.
  config::ExperimentConfig other = c;
  other.arms[0].weight = 20;
  other.arms[1].weight = 80;
  auto for_other = ReadWeightHistory(*reader_, other, cache);
  ASSERT_TRUE(for_other.ok());
  EXPECT_TRUE(same(*for_other, *ReadWeightHistory(*reader_, other)));
}

TEST_F(PostgresFollowerTest, RowsWithoutBlocksAreReadWhole) {
  auto sink = events::OpenEventSink(store_.uri());
  ASSERT_TRUE(sink.ok()) << sink.status();
  Write(**sink, Generate(1, 0, 600));
  Check("first read", false);
  // A row without blocks (an older gateway, or by hand): the blocks no longer hold every row,
  // so the rows are read, whole, at every refresh.
  ASSERT_EQ(store_.QueryInt("INSERT INTO exposures (request_id, ts, experiment, unit_id, unit_random, arm, assigned_arm, "
                            "model_version, routing_mode, status, latency_us, score, fallback, in_experiment) VALUES "
                            "('r-by-hand', 1500000, 'exp', 'u-by-hand', 0, 'A', 'A', '7', 'user_hash', 200, 1000, 0.5, "
                            "0, 1) RETURNING 1"),
            1);
  // The rows are counted against the blocks every few refreshes (counting them each time would
  // cost more than the refresh): until then the refreshes trust the last count.
  for (Case& c : cases_) {
    int refreshes = 0;
    for (; refreshes < 20; ++refreshes) {
      ASSERT_TRUE(c.follower->Read(*reader_, c.tuning).ok());
      if (!c.follower->last_read_incremental()) break;
    }
    EXPECT_LE(refreshes, 10);
  }
  Check("a row by hand: rows", false);
  EXPECT_FALSE(cases_[0].follower->can_resume());
  Write(**sink, Generate(3, 600, 100));
  Check("rows, new batches", false);
}

// Two gateways: one's transaction takes its blocks' ids, the other commits blocks with higher
// ids, a refresh reads them, then the first commits. The refresh after must read the late
// blocks (ids below ones already read), once, and fold them in store order: a unit's revenue
// 1e16 (before), +1 (late, lower id), -1e16 (committed first, higher id) sums to 0 in id order
// and to 1 in the order the blocks were read.
TEST_F(PostgresFollowerTest, ABlockCommittedLateIsReadOnceAndInStoreOrder) {
  auto sink = events::OpenEventSink(store_.uri());
  ASSERT_TRUE(sink.ok()) << sink.status();
  Events base = Generate(4, 0, 400);
  auto revenue = [](const char* unit, double value, int64_t ts) {
    events::Outcome o;
    o.ts_us = ts;
    o.experiment = "exp";
    o.unit_id = unit;
    o.metric = "revenue";
    o.value = value;
    return o;
  };
  events::Exposure late_unit = base.exposures[0];
  late_unit.experiment = "exp";
  late_unit.in_experiment = true;
  late_unit.request_id = "r-late-unit";
  late_unit.unit_id = "u-late";
  late_unit.ts_us = 1'000'000;
  late_unit.arm = late_unit.assigned_arm = "A";
  late_unit.model_version = "7";
  base.exposures.push_back(late_unit);
  base.outcomes.push_back(revenue("u-late", 1e16, 1'100'000));
  Write(**sink, base);
  Check("first read", false);

  // Gateway 1: its blocks take their ids, and it does not commit yet.
  auto held = postgres::Connection::Connect(store_.uri());
  ASSERT_TRUE(held.ok());
  ASSERT_TRUE(held->Exec("BEGIN").ok());
  Events late = Generate(5, 400, 120);
  late.outcomes.push_back(revenue("u-late", 1, 1'150'000));
  WriteByHand(*held, late);
  const int64_t late_block = [&] {
    auto r = held->Query("SELECT max(id) FROM outcome_blocks");
    return r.ok() ? r->Int(0, 0) : -1;
  }();
  // Gateway 2 commits after it, with higher ids.
  Events early = Generate(6, 520, 120);
  early.outcomes.push_back(revenue("u-late", -1e16, 1'200'000));
  Write(**sink, early);
  EXPECT_LT(late_block, store_.QueryInt("SELECT max(id) FROM outcome_blocks"));
  Check("the other gateway's blocks", true);
  auto shadows_before = reader_->ReadShadowsAfter("exp", 0, {});
  ASSERT_TRUE(shadows_before.ok());
  ASSERT_TRUE(held->Exec("COMMIT").ok());
  Check("the late blocks", true);
  // The late transaction's shadow rows too, and only them.
  auto late_shadows = reader_->ReadShadowsAfter("exp", 0, shadows_before->cursor);
  ASSERT_TRUE(late_shadows.ok());
  EXPECT_TRUE(late_shadows->incremental);
  size_t mirrored = 0;
  for (const events::Exposure& e : late.exposures) mirrored += e.shadow && e.experiment == "exp";
  EXPECT_GT(mirrored, 0u);
  EXPECT_EQ(late_shadows->rows.size(), mirrored);
  Check("nothing new", true);
  Write(**sink, Generate(7, 640, 100));
  Check("more batches", true);
}

// A store written before the `xid` column: its readers cannot resume (read whole, as before);
// the next sink to open it adds the column without rewriting the old blocks (NULL: committed
// before any cursor), and from then on a refresh reads only new blocks, never the old ones again.
TEST_F(PostgresFollowerTest, AStoreWithoutTheXidColumnIsUpgraded) {
  {
    auto sink = events::OpenEventSink(store_.uri());
    ASSERT_TRUE(sink.ok()) << sink.status();
    Write(**sink, Generate(8, 0, 300));
  }
  // What an older gateway left.
  ASSERT_EQ(store_.QueryInt("ALTER TABLE exposure_blocks DROP COLUMN xid; ALTER TABLE outcome_blocks DROP COLUMN xid; "
                            "ALTER TABLE shadows DROP COLUMN xid; SELECT 1"),
            1);
  Check("an older store", false);
  EXPECT_FALSE(cases_[0].follower->can_resume());
  auto sink = events::OpenEventSink(store_.uri());  // the upgrade
  ASSERT_TRUE(sink.ok()) << sink.status();
  EXPECT_EQ(store_.QueryInt("SELECT count(*) FROM exposure_blocks WHERE xid IS NOT NULL"), 0);
  EXPECT_GT(store_.QueryInt("SELECT count(*) FROM exposure_blocks WHERE xid IS NULL"), 0);
  Check("upgraded", false);
  EXPECT_TRUE(cases_[0].follower->can_resume());
  Write(**sink, Generate(9, 300, 200));
  EXPECT_EQ(store_.QueryInt("SELECT count(*) FROM outcome_blocks WHERE xid IS NULL") +
                store_.QueryInt("SELECT count(*) FROM outcome_blocks WHERE xid IS NOT NULL"),
            store_.QueryInt("SELECT count(*) FROM outcome_blocks"));
  EXPECT_GT(store_.QueryInt("SELECT count(*) FROM outcome_blocks WHERE xid IS NOT NULL"), 0);
  Check("new batches after the upgrade", true);
}

}  // namespace
}  // namespace abgate::analysis

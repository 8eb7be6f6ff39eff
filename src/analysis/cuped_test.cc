// CUPED in the analysis (issue 18 item 2): the adjusted comparison against an independent
// reference (tests/tools/gen_cuped_analysis_reference.py: numpy least squares + scipy Welch),
// the covariate read from the store's pre-exposure outcomes, the decision on the adjusted
// effect, and the report's JSON round trip.
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include <boost/json.hpp>

#include "analysis/analysis.h"
#include "events/sqlite_event_sink.h"
#include "gtest/gtest.h"
#include "testing/reference_csv.h"

namespace abgate::analysis {
namespace {

namespace json = boost::json;

using testing::ReadReferenceCsv;

void ExpectClose(double actual, const std::string& expected, const char* what) {
  const double e = std::stod(expected);
  EXPECT_NEAR(actual, e, std::max(1e-12, 1e-9 * std::fabs(e))) << what;
}

struct GoldenUnit {
  std::string arm, unit;
  double x, y;
};

std::map<int, std::vector<GoldenUnit>> GoldenUnits() {
  std::map<int, std::vector<GoldenUnit>> cases;
  for (const auto& row : ReadReferenceCsv("cuped_units.csv")) {
    cases[std::stoi(row.at("case"))].push_back({row.at("arm"), row.at("unit"), std::stod(row.at("x")), std::stod(row.at("y"))});
  }
  return cases;
}

AnalysisInput TwoArms(const std::string& metric, MetricKind kind, const std::string& covariate) {
  AnalysisInput in;
  in.experiment = "cuped";
  in.arms = {{"A", "1", 50, 0, {}}, {"B", "2", 50, 0, {}}};
  in.metrics = {MetricSpec(metric, kind, covariate)};
  in.covariates = CovariatesOf(in.metrics);
  return in;
}

// Every number of the adjusted comparison, and the raw ones beside it, as the reference has them.
void ExpectMatchesReference(const Report& report, const std::map<std::string, std::string>& want) {
  const ComparisonReport* c = report.Comparison(want.at("metric"), "B");
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->insufficient_data.empty()) << c->insufficient_data;
  ASSERT_TRUE(c->cuped.has_value());
  ASSERT_TRUE(c->cuped->applied) << c->cuped->not_applied;
  EXPECT_EQ(c->test, "welch_t_cuped");
  ExpectClose(c->cuped->theta, want.at("theta"), "theta");
  ExpectClose(c->diff, want.at("diff"), "diff");
  ExpectClose(c->diff_ci.low, want.at("diff_low"), "diff_low");
  ExpectClose(c->diff_ci.high, want.at("diff_high"), "diff_high");
  ExpectClose(c->statistic, want.at("t"), "t");
  ExpectClose(c->p_value, want.at("p"), "p");
  ASSERT_TRUE(c->lift && c->lift_ci);
  ExpectClose(*c->lift, want.at("lift"), "lift");
  ExpectClose(c->lift_ci->low, want.at("lift_low"), "lift_low");
  ExpectClose(c->lift_ci->high, want.at("lift_high"), "lift_high");
  ExpectClose(c->cuped->variance_reduction, want.at("variance_reduction"), "variance_reduction");
  ExpectClose(c->cuped->unadjusted_diff, want.at("raw_diff"), "raw_diff");
  ExpectClose(c->cuped->unadjusted_diff_ci.low, want.at("raw_diff_low"), "raw_diff_low");
  ExpectClose(c->cuped->unadjusted_diff_ci.high, want.at("raw_diff_high"), "raw_diff_high");
  ExpectClose(c->cuped->unadjusted_p_value, want.at("raw_p"), "raw_p");
  // The decision reads this comparison: its evidence is the adjusted one.
  ASSERT_TRUE(report.decision.evidence.has_value());
  EXPECT_EQ(report.decision.evidence->diff, c->diff);
}

TEST(CupedAnalysisTest, AdjustedComparisonMatchesIndependentReference) {
  auto cases = GoldenUnits();
  const auto expected = ReadReferenceCsv("cuped_analysis_expected.csv");
  ASSERT_EQ(expected.size(), 3u);
  for (const auto& want : expected) {
    SCOPED_TRACE(want.at("metric"));
    const int id = std::stoi(want.at("case"));
    const MetricKind kind = want.at("metric") == "booked" ? MetricKind::kBinary : MetricKind::kContinuous;
    AnalysisInput in = TwoArms(want.at("metric"), kind, "pre");
    for (const auto& u : cases[id]) in.units.push_back({u.arm == "A" ? 0 : 1, 0, {u.y, u.x}});
    auto report = Analyze(in);
    ASSERT_TRUE(report.ok()) << report.status();
    ExpectMatchesReference(*report, want);
  }
}

class CupedStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("abgate_cuped_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

// The reference's case 0 written as events: each unit's pre-period revenue as outcomes before its
// first exposure (under `pre_metric`, split in two so the covariate is a sum; none for a new
// unit), its revenue after. Exposures from t = 1,000,000 us on.
std::string WriteCase0(const std::filesystem::path& dir, const std::string& pre_metric) {
  const std::string path = (dir / "events.db").string();
  auto sink = events::SqliteEventSink::Open(path);
  EXPECT_TRUE(sink.ok()) << sink.status();
  std::vector<events::Exposure> exposures;
  std::vector<events::Outcome> outcomes;
  int i = 0;
  const auto cases = GoldenUnits();  // held: a range-for over GoldenUnits()[0] would dangle
  for (const auto& u : cases.at(0)) {
    events::Exposure e;
    e.request_id = "r-" + u.unit;
    e.ts_us = 1'000'000 + 10 * i;
    e.experiment = "exp";
    e.unit_id = u.unit;
    e.arm = e.assigned_arm = u.arm;
    e.routing_mode = "user_hash";
    e.status = 200;
    exposures.push_back(e);
    if (u.x != 0) {
      outcomes.push_back({100 + i, "exp", "", u.unit, pre_metric, u.x / 4, ""});
      outcomes.push_back({e.ts_us - 1, "exp", "", u.unit, pre_metric, u.x - u.x / 4, ""});
    }
    if (u.y != 0) outcomes.push_back({e.ts_us + 5, "exp", "", u.unit, "revenue", u.y, ""});
    ++i;
  }
  EXPECT_TRUE((*sink)->WriteBatch(exposures, {}, outcomes).ok());
  return "sqlite:" + path;
}

TEST_F(CupedStoreTest, CovariateIsTheSumOfOutcomesBeforeTheFirstExposure) {
  const auto expected = ReadReferenceCsv("cuped_analysis_expected.csv");
  const std::string store = WriteCase0(dir_, "pre_revenue");
  // since_us after every pre-period outcome: the covariate still comes from before it.
  for (int64_t since_us : {int64_t{0}, int64_t{999'000}}) {
    auto in = ReadEventStore(store, "exp", "user", {MetricSpec("revenue", MetricKind::kContinuous, "pre_revenue")}, 0,
                             since_us);
    ASSERT_TRUE(in.ok()) << in.status();
    ASSERT_EQ(in->covariates, std::vector<std::string>{"pre_revenue"});
    in->arms[0].weight = in->arms[1].weight = 50;
    auto report = Analyze(*in);
    ASSERT_TRUE(report.ok()) << report.status();
    ExpectMatchesReference(*report, expected[0]);
    ASSERT_TRUE(report->outcomes.has_value());
    EXPECT_GT(report->outcomes->covariate, 0);
    EXPECT_EQ(report->outcomes->before_exposure, 0);
  }
}

TEST_F(CupedStoreTest, AMetricCanBeItsOwnPrePeriodCovariate) {
  const auto expected = ReadReferenceCsv("cuped_analysis_expected.csv");
  const std::string store = WriteCase0(dir_, "revenue");
  auto in = ReadEventStore(store, "exp", "user", {MetricSpec("revenue", MetricKind::kContinuous, "revenue")});
  ASSERT_TRUE(in.ok()) << in.status();
  auto report = Analyze(*in);
  ASSERT_TRUE(report.ok()) << report.status();
  ExpectMatchesReference(*report, expected[0]);
  // Without CUPED the same pre-period outcomes are unattributed (before exposure), as before.
  auto plain = ReadEventStore(store, "exp", "user", {MetricSpec("revenue", MetricKind::kContinuous)});
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_GT(plain->outcomes->before_exposure, 0);
  auto plain_report = Analyze(*plain);
  ASSERT_TRUE(plain_report.ok());
  const auto* c = plain_report->Comparison("revenue", "B");
  ASSERT_NE(c, nullptr);
  EXPECT_FALSE(c->cuped.has_value());
  ExpectClose(c->diff, expected[0].at("raw_diff"), "raw diff");
}

// Revenue = pre-period revenue (large spread) + 0.3 for B + small noise: invisible without the
// covariate, clear with it. The decision (and its sequential test) follows the adjusted effect.
TEST(CupedAnalysisTest, DecisionUsesTheAdjustedEffect) {
  std::mt19937_64 rng(18);
  std::normal_distribution<double> pre(100, 30), noise(0, 1);
  AnalysisInput with = TwoArms("revenue", MetricKind::kContinuous, "pre_revenue");
  for (int i = 0; i < 4000; ++i) {
    const int arm = i % 2;
    const double x = pre(rng);
    with.units.push_back({arm, i, {x + 0.3 * arm + noise(rng), x}});
  }
  AnalysisInput without = with;
  without.metrics[0].cuped_covariate.clear();
  without.covariates.clear();
  for (auto& u : without.units) u.values.resize(1);
  auto adjusted = Analyze(with);
  auto raw = Analyze(without);
  ASSERT_TRUE(adjusted.ok() && raw.ok());
  EXPECT_EQ(raw->decision.action, "continue") << raw->decision.reason;
  EXPECT_EQ(adjusted->decision.action, "promote") << adjusted->decision.reason;
  EXPECT_EQ(adjusted->decision.winner, "B");
  const auto* c = adjusted->Comparison("revenue", "B");
  ASSERT_TRUE(c && c->cuped && c->cuped->applied);
  EXPECT_GT(c->cuped->variance_reduction, 0.99);
  EXPECT_NEAR(c->diff, 0.3, 0.1);
  EXPECT_LT(*c->sequential_p_value, 0.001);
  // The timeline's last point is the same adjusted comparison.
  ASSERT_FALSE(adjusted->timeline.empty());
  ASSERT_FALSE(adjusted->timeline[0].points.empty());
  EXPECT_NEAR(adjusted->timeline[0].points.back().lift, *c->lift, 1e-9 * std::fabs(*c->lift));
}

TEST(CupedAnalysisTest, ACovariateWithoutVarianceFallsBackToTheRawTestAndSaysWhy) {
  AnalysisInput in = TwoArms("revenue", MetricKind::kContinuous, "pre_revenue");
  std::mt19937_64 rng(3);
  std::normal_distribution<double> y(10, 2);
  for (int i = 0; i < 200; ++i) in.units.push_back({i % 2, i, {y(rng), 0.0}});  // all new units: X = 0
  auto report = Analyze(in);
  ASSERT_TRUE(report.ok()) << report.status();
  const auto* c = report->Comparison("revenue", "B");
  ASSERT_TRUE(c && c->cuped);
  EXPECT_FALSE(c->cuped->applied);
  EXPECT_NE(c->cuped->not_applied.find("variance"), std::string::npos) << c->cuped->not_applied;
  EXPECT_EQ(c->test, "welch_t");
  EXPECT_NE(RenderText(*report).find("not applied"), std::string::npos);
}

TEST(CupedAnalysisTest, AnUnknownCovariateIsAnError) {
  AnalysisInput in = TwoArms("revenue", MetricKind::kContinuous, "pre_revenue");
  in.covariates.clear();
  in.units.push_back({0, 0, {1.0}});
  EXPECT_EQ(Analyze(in).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(CupedAnalysisTest, ReportJsonKeepsTheAdjustmentAndRenderersShowIt) {
  auto cases = GoldenUnits();
  AnalysisInput in = TwoArms("revenue", MetricKind::kContinuous, "pre_revenue");
  for (const auto& u : cases[0]) in.units.push_back({u.arm == "A" ? 0 : 1, 0, {u.y, u.x}});
  auto report = Analyze(in);
  ASSERT_TRUE(report.ok()) << report.status();
  const json::value j = ToJson(*report);
  const auto& cu = j.at("comparisons").at(0).at("cuped");
  EXPECT_EQ(cu.at("covariate"), "pre_revenue");
  EXPECT_TRUE(cu.at("applied").as_bool());
  EXPECT_TRUE(cu.at("unadjusted").at("p_value").is_double());
  auto back = ReportFromJson(j);
  ASSERT_TRUE(back.ok()) << back.status();
  const auto* c = back->Comparison("revenue", "B");
  ASSERT_TRUE(c && c->cuped);
  EXPECT_EQ(c->cuped->variance_reduction, report->comparisons[0].cuped->variance_reduction);
  EXPECT_EQ(c->cuped->unadjusted_p_value, report->comparisons[0].cuped->unadjusted_p_value);
  EXPECT_EQ(json::serialize(ToJson(*back)), json::serialize(j));
  EXPECT_NE(RenderText(*report).find("CUPED B vs A on revenue (covariate pre_revenue"), std::string::npos);
  EXPECT_NE(RenderHtml(*report).find("Variance reduction (CUPED)"), std::string::npos);
  // A peer's malformed adjustment is an error naming the field, not a throw.
  json::value broken = j;
  broken.at("comparisons").at(0).at("cuped").as_object()["theta"] = "x";
  EXPECT_NE(ReportFromJson(broken).status().message().find("cuped.theta"), std::string::npos);
}

}  // namespace
}  // namespace abgate::analysis

#include "analysis/analysis.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include <boost/json.hpp>

#include "events/sqlite_event_sink.h"
#include "gtest/gtest.h"
#include "stats/tests.h"

namespace abgate::analysis {
namespace {

namespace json = boost::json;

class AnalysisTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("abgate_analysis_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A seed-style file: v7 converts at 10%, v8 at 14%, v8's scores more informative.
  std::string WriteResults(int users, uint64_t seed) {
    const auto path = (dir_ / "ab_results.csv").string();
    std::ofstream out(path);
    out << "user_id,model_version,y_true,y_pred\n";
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> u(0, 1);
    for (int i = 0; i < users; ++i) {
      const bool b = u(rng) < 0.2;
      const bool booked = u(rng) < (b ? 0.14 : 0.10);
      const double noise = u(rng);
      const double score = b ? 0.5 * booked + 0.5 * noise : 0.2 * booked + 0.8 * noise;
      out << "u" << i << "," << (b ? 8 : 7) << "," << booked << "," << score << "\n";
    }
    out << "u1,8,0,0.5\n" << "u2,7,0,0.5\n";  // u1/u2 may now be in both arms
    return path;
  }

  std::filesystem::path dir_;
};

TEST_F(AnalysisTest, ResultsCsvGivesArmsComparisonsAndModelQuality) {
  auto input = ReadResultsCsv(WriteResults(20000, 1), "");
  ASSERT_TRUE(input.ok()) << input.status();
  EXPECT_EQ(input->arms[input->control].model_version, "7");  // lowest version is control
  input->arms[0].weight = 80;
  input->arms[1].weight = 20;
  input->weights_known = true;
  auto report = Analyze(*input);
  ASSERT_TRUE(report.ok()) << report.status();
  const auto& r = report->as_object();
  EXPECT_EQ(r.at("control"), "v7");
  EXPECT_EQ(r.at("unit"), "user");
  ASSERT_EQ(r.at("arms").as_array().size(), 2u);
  const auto& a = r.at("arms").as_array()[0].as_object();
  const auto& b = r.at("arms").as_array()[1].as_object();
  const int64_t multi = r.at("multiple_exposure_units").as_int64();
  EXPECT_GE(multi, 0);
  EXPECT_LE(multi, 2);
  EXPECT_EQ(a.at("units").as_int64() + b.at("units").as_int64() + multi, 20000);
  EXPECT_NEAR(a.at("metrics").at("booked").at("mean").as_double(), 0.10, 0.01);
  EXPECT_GT(b.at("metrics").at("auc").at("value").as_double(), a.at("metrics").at("auc").at("value").as_double());
  ASSERT_TRUE(a.at("metrics").as_object().contains("log_loss"));
  ASSERT_TRUE(a.at("metrics").as_object().contains("calibration_error"));

  // The booked comparison is exactly the z-test on the per-arm counts.
  const auto& cmp = r.at("comparisons").as_array()[0].as_object();
  EXPECT_EQ(cmp.at("metric"), "booked");
  EXPECT_EQ(cmp.at("test"), "two_proportion_z");
  stats::Proportion pa, pb;
  for (const auto& u : input->units) (u.arm == 0 ? pa : pb).Add(u.values[0] > 0);
  auto z = stats::TwoProportionZTest(pa, pb);
  EXPECT_DOUBLE_EQ(cmp.at("p_value").as_double(), z->p_value);
  EXPECT_GE(cmp.at("p_value_adjusted").as_double(), cmp.at("p_value").as_double());
  EXPECT_GE(cmp.at("sequential_p_value").as_double(), cmp.at("p_value").as_double());
  EXPECT_TRUE(cmp.contains("chance_to_beat"));
  EXPECT_TRUE(cmp.contains("lift_ci"));
  bool has_auc_comparison = false;
  for (const auto& c : r.at("comparisons").as_array()) has_auc_comparison |= c.at("metric") == "auc";
  EXPECT_TRUE(has_auc_comparison);
  EXPECT_FALSE(r.at("srm").at("mismatch").as_bool());
  EXPECT_EQ(r.at("decision").at("action"), "promote");  // 14% vs 10% on 20k users is clear
  EXPECT_EQ(r.at("decision").at("winner"), "v8");
  EXPECT_FALSE(r.at("timeline").as_array().empty());

  const std::string text = RenderText(*report);
  EXPECT_NE(text.find("decision: promote v8"), std::string::npos) << text;
  const std::string html = RenderHtml(*report);
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_EQ(html.find("http://"), std::string::npos);   // self-contained: no fetches
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
}

TEST_F(AnalysisTest, AaDataContinuesAndSrmIsFlagged) {
  auto input = ReadResultsCsv(WriteResults(2000, 2), "");
  ASSERT_TRUE(input.ok());
  for (auto& u : input->units) u.values[0] = (&u - &input->units[0]) % 10 == 0;  // identical 10% rate
  input->arms[0].weight = 50;  // the file has an 80/20 split: a mismatch
  input->arms[1].weight = 50;
  input->weights_known = true;
  auto report = Analyze(*input);
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->at("srm").at("mismatch").as_bool());
  EXPECT_EQ(report->at("decision").at("action"), "investigate");
}

TEST_F(AnalysisTest, BadCsvInputIsAClearError) {
  const auto path = (dir_ / "bad.csv").string();
  std::ofstream(path) << "user_id,model_version,y_true\nu1,7,1\n";
  auto r = ReadResultsCsv(path, "");
  EXPECT_NE(std::string(r.status().message()).find("missing column 'y_pred'"), std::string::npos);
  std::ofstream(path) << "user_id,model_version,y_true,y_pred\nu1,7,yes,0.3\n";
  r = ReadResultsCsv(path, "");
  EXPECT_NE(std::string(r.status().message()).find(":2: y_true must be 0 or 1"), std::string::npos) << r.status();
  EXPECT_EQ(ReadResultsCsv((dir_ / "nope.csv").string(), "").status().code(), absl::StatusCode::kNotFound);
  std::ofstream(path) << "user_id,model_version,y_true,y_pred\nu1,7,1,0.3\n";
  EXPECT_FALSE(ReadResultsCsv(path, "9").ok());
  // One arm with one unit: reported as insufficient data, never NaN.
  auto one = ReadResultsCsv(path, "");
  ASSERT_TRUE(one.ok());
  auto report = Analyze(*one);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(json::serialize(*report).find("nan"), std::string::npos);
  EXPECT_EQ(report->at("decision").at("action"), "continue");
}

TEST_F(AnalysisTest, EventStoreExposuresAndOutcomesByUnitAndRequest) {
  const std::string db_path = (dir_ / "events.db").string();
  {
    auto sink = events::SqliteEventSink::Open(db_path);
    ASSERT_TRUE(sink.ok()) << sink.status();
    std::vector<events::Exposure> exposures;
    for (int i = 0; i < 4000; ++i) {
      events::Exposure e;
      e.request_id = "r" + std::to_string(i);
      e.ts_us = 1000 + i;
      e.experiment = "exp";
      e.unit_id = "u" + std::to_string(i % 2000);  // two requests per user
      e.arm = e.assigned_arm = (i % 2000) < 1000 ? "A" : "B";
      e.routing_mode = "user_hash";
      e.status = 200;
      e.score = (i % 7) / 7.0;
      exposures.push_back(e);
    }
    // One user seen in both arms, and one exposure outside the experiment (not analysed).
    events::Exposure odd = exposures[0];
    odd.request_id = "r-odd";
    odd.arm = odd.assigned_arm = "B";
    exposures.push_back(odd);
    events::Exposure outside = exposures[1];
    outside.request_id = "r-out";
    outside.unit_id = "u-outside";
    outside.in_experiment = false;
    exposures.push_back(outside);
    ASSERT_TRUE((*sink)->WriteBatch(exposures, {}).ok());
  }
  // Outcomes through the store's own write path (what POST /outcomes uses): users in B book
  // more often; revenue arrives by request id.
  {
    auto sink = events::SqliteEventSink::Open(db_path);
    ASSERT_TRUE(sink.ok()) << sink.status();
    std::vector<events::Outcome> outcomes;
    for (int u = 0; u < 2000; ++u) {
      const bool booked = u < 1000 ? (u % 10 == 0) : (u % 5 == 0);
      if (booked) outcomes.push_back({5000, "exp", "", "u" + std::to_string(u), "booked", 1, ""});
      outcomes.push_back({5000, "exp", "r" + std::to_string(u), "", "revenue", 10.5, ""});
    }
    ASSERT_TRUE((*sink)->WriteBatch({}, {}, outcomes).ok());
  }

  auto input = ReadEventStore("sqlite:" + db_path, "exp", "user",
                              {{"booked", MetricKind::kBinary}, {"revenue", MetricKind::kContinuous}});
  ASSERT_TRUE(input.ok()) << input.status();
  EXPECT_EQ(input->multiple_exposure_units, 1);
  EXPECT_EQ(input->units.size(), 1999u);
  auto report = Analyze(*input);
  ASSERT_TRUE(report.ok()) << report.status();
  const auto& arms = report->at("arms").as_array();
  EXPECT_EQ(arms[0].at("arm"), "A");
  EXPECT_EQ(arms[0].at("exposures").as_int64(), 2000);
  EXPECT_NEAR(arms[0].at("metrics").at("booked").at("mean").as_double(), 0.1, 0.001);
  EXPECT_NEAR(arms[1].at("metrics").at("booked").at("mean").as_double(), 0.2, 0.001);
  // Revenue came by request_id: 10.5 for the first request of users u0..u1999.
  EXPECT_NEAR(arms[1].at("metrics").at("revenue").at("mean").as_double(), 10.5, 1e-9);

  auto by_request = ReadEventStore("sqlite:" + db_path, "exp", "request", {{"booked", MetricKind::kBinary}});
  ASSERT_TRUE(by_request.ok()) << by_request.status();
  EXPECT_EQ(by_request->units.size(), 4001u);
  const auto nope = ReadEventStore("sqlite:" + db_path, "nope", "user", {{"booked", MetricKind::kBinary}});
  EXPECT_EQ(nope.status().code(), absl::StatusCode::kNotFound) << nope.status();
}

}  // namespace
}  // namespace abgate::analysis

namespace abgate::analysis {
namespace {

TEST_F(AnalysisTest, OutcomesOutsideTheAttributionWindowAreCountedNotDropped) {
  const std::string db_path = (dir_ / "window.db").string();
  auto sink = events::SqliteEventSink::Open(db_path);
  ASSERT_TRUE(sink.ok());
  std::vector<events::Exposure> exposures;
  for (int i = 0; i < 4; ++i) {
    events::Exposure e;
    e.request_id = "r" + std::to_string(i);
    e.ts_us = 1'000'000;
    e.experiment = "w";
    e.unit_id = "u" + std::to_string(i);
    e.arm = e.assigned_arm = i % 2 ? "B" : "A";
    e.routing_mode = "user_hash";
    exposures.push_back(e);
  }
  std::vector<events::Outcome> outcomes = {
      {500'000, "w", "", "u0", "booked", 1, ""},      // before the exposure
      {1'500'000, "w", "", "u1", "booked", 1, ""},    // inside a 1 s window
      {9'000'000, "w", "", "u2", "booked", 1, ""},    // after it
      {1'200'000, "w", "r3", "", "booked", 1, ""},    // by request id, inside
      {1'200'000, "w", "", "ghost", "booked", 1, ""}, // nobody exposed
  };
  ASSERT_TRUE((*sink)->WriteBatch(exposures, {}, outcomes).ok());
  auto in = ReadEventStore("sqlite:" + db_path, "w", "user", {{"booked", MetricKind::kBinary}}, 1'000'000);
  ASSERT_TRUE(in.ok()) << in.status();
  ASSERT_TRUE(in->outcomes.has_value());
  EXPECT_EQ(in->outcomes->attributed, 2);
  EXPECT_EQ(in->outcomes->before_exposure, 1);
  EXPECT_EQ(in->outcomes->after_window, 1);
  EXPECT_EQ(in->outcomes->unknown_unit, 1);
  int booked = 0;
  for (const auto& u : in->units) booked += u.values[0] > 0;
  EXPECT_EQ(booked, 2);
  // Without a window only the one before its exposure and the stranger stay out.
  auto open = ReadEventStore("sqlite:" + db_path, "w", "user", {{"booked", MetricKind::kBinary}});
  EXPECT_EQ(open->outcomes->attributed, 3);
  auto report = Analyze(*in);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->at("outcomes").at("unattributed").at("after_window"), 1);
}

}  // namespace
}  // namespace abgate::analysis

// Paired shadow evaluation (issue 18 item 6): the shadow table joined with the requests'
// outcomes in the store, compared on the same requests by the paired tests of
// stats::ComparePairedModels, in the report and its JSON.
#include <unistd.h>

#include <filesystem>
#include <random>

#include <boost/json.hpp>

#include "analysis/analysis.h"
#include "events/sqlite_event_sink.h"
#include "gtest/gtest.h"
#include "stats/model_quality.h"

namespace abgate::analysis {
namespace {

namespace json = boost::json;

class ShadowEvaluationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("abgate_shadow_eval_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Every request served by A (the champion) and mirrored to B. Requests' outcomes come by
  // request id for even users and by unit id for odd ones (both are labels the analysis uses).
  // `b_signal` sets how informative B's score is relative to A's (A's is 1).
  std::string WriteShadowStep(double b_signal, std::vector<double>* a_scores, std::vector<double>* b_scores,
                              std::vector<int>* labels) {
    const std::string path = (dir_ / "events.db").string();
    auto sink = events::SqliteEventSink::Open(path);
    EXPECT_TRUE(sink.ok()) << sink.status();
    std::mt19937_64 rng(18);
    std::normal_distribution<double> noise(0, 1);
    std::uniform_real_distribution<double> u(0, 1);
    std::vector<events::Exposure> exposures;
    std::vector<events::Outcome> outcomes;
    for (int i = 0; i < 3000; ++i) {
      const int label = u(rng) < 0.25;
      const double common = noise(rng);
      auto squash = [](double z) { return 1 / (1 + std::exp(-z)); };
      const double a = squash(-1 + 1.0 * label + 0.8 * common + 0.6 * noise(rng));
      const double b = squash(-1 + b_signal * label + 0.8 * common + 0.6 * noise(rng));
      events::Exposure e;
      e.request_id = "r" + std::to_string(i);
      e.ts_us = 1'000'000 + i;
      e.experiment = "exp";
      e.unit_id = "u" + std::to_string(i);
      e.arm = e.assigned_arm = "A";
      e.routing_mode = "user_hash";
      e.status = 200;
      e.score = a;
      e.shadow = events::ExposureShadow{"B", b, 900, 200};
      if (i == 7) e.shadow->status = 504;  // a failed shadow call: not compared
      exposures.push_back(e);
      if (i != 7) {
        a_scores->push_back(a);
        b_scores->push_back(b);
        labels->push_back(label);
      }
      if (label) {
        outcomes.push_back(i % 2 ? events::Outcome{e.ts_us + 5, "exp", "", e.unit_id, "booked", 1, ""}
                                 : events::Outcome{e.ts_us + 5, "exp", e.request_id, "", "booked", 1, ""});
      }
    }
    EXPECT_TRUE((*sink)->WriteBatch(exposures, {}, outcomes).ok());
    return "sqlite:" + path;
  }

  std::filesystem::path dir_;
};

TEST_F(ShadowEvaluationTest, TheShadowIsComparedWithTheServedModelOnTheSameRequests) {
  std::vector<double> a, b;
  std::vector<int> y;
  const std::string store = WriteShadowStep(0.3, &a, &b, &y);  // B much less informative
  auto in = ReadEventStore(store, "exp", "user", {MetricSpec("booked")});
  ASSERT_TRUE(in.ok()) << in.status();
  ASSERT_EQ(in->shadows.size(), 1u);
  EXPECT_EQ(in->shadows[0].arm, "A");
  EXPECT_EQ(in->shadows[0].shadow_arm, "B");
  EXPECT_EQ(in->shadows[0].labels, y);  // every comparable request, labelled by request or unit
  auto report = Analyze(*in);
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_EQ(report->shadow_evaluation.size(), 1u);
  const ShadowEvaluation& e = report->shadow_evaluation[0];
  auto direct = stats::ComparePairedModels(a, b, y);
  ASSERT_TRUE(direct.ok()) << direct.status();
  EXPECT_EQ(e.requests, 2999);
  EXPECT_DOUBLE_EQ(e.auc, direct->a.value);
  EXPECT_DOUBLE_EQ(e.shadow_auc, direct->b.value);
  EXPECT_DOUBLE_EQ(e.auc_p_value, direct->auc_p_value);
  EXPECT_DOUBLE_EQ(e.log_loss_diff, direct->log_loss_diff);
  EXPECT_LT(e.auc_diff, 0);
  EXPECT_TRUE(e.shadow_worse);
  EXPECT_FALSE(e.shadow_better);

  const json::value j = ToJson(*report);
  const auto& je = j.at("shadow_evaluation").at(0);
  EXPECT_EQ(je.at("test"), "paired_delong");
  EXPECT_TRUE(je.at("shadow_worse").as_bool());
  auto back = ReportFromJson(j);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(json::serialize(ToJson(*back)), json::serialize(j));
  EXPECT_NE(RenderText(*report).find("B is significantly worse offline"), std::string::npos) << RenderText(*report);
  EXPECT_NE(RenderHtml(*report).find("Shadow evaluation (same requests, paired)"), std::string::npos);
  json::value broken = j;
  broken.at("shadow_evaluation").at(0).at("auc").as_object()["diff"] = "x";
  EXPECT_NE(ReportFromJson(broken).status().message().find("shadow_evaluation[0].auc.diff"), std::string::npos);
}

TEST_F(ShadowEvaluationTest, ABetterShadowIsSaidToBeBetterAndStepsFilterIt) {
  std::vector<double> a, b;
  std::vector<int> y;
  const std::string store = WriteShadowStep(2.5, &a, &b, &y);
  auto in = ReadEventStore(store, "exp", "user", {MetricSpec("booked")});
  ASSERT_TRUE(in.ok()) << in.status();
  auto report = Analyze(*in);
  ASSERT_TRUE(report.ok());
  ASSERT_EQ(report->shadow_evaluation.size(), 1u);
  EXPECT_TRUE(report->shadow_evaluation[0].shadow_better);
  EXPECT_FALSE(report->shadow_evaluation[0].shadow_worse);
  // A step's window: only the shadow rows from since_us on.
  auto later = ReadEventStore(store, "exp", "user", {MetricSpec("booked")}, 0, 1'000'000 + 2000);
  ASSERT_TRUE(later.ok()) << later.status();
  ASSERT_EQ(later->shadows.size(), 1u);
  EXPECT_EQ(later->shadows[0].labels.size(), 1000u);
}

// A candidate that ranks requests better but is badly calibrated (every score above 0.5): its log
// loss is worse, its AUC better. The ranking decides: not refused (the demo's strong candidate).
TEST(ShadowEvaluationRule, TheRankingDecidesWhenAucAndLogLossDisagree) {
  std::mt19937_64 rng(7);
  std::normal_distribution<double> noise(0, 1);
  std::uniform_real_distribution<double> u(0, 1);
  AnalysisInput in;
  in.experiment = "e";
  in.arms = {{"A", "1", 100, 0, {}}, {"B", "2", 0, 0, {}}};
  in.metrics = {MetricSpec("booked")};
  ShadowPairs pairs{"A", "B", {}, {}, {}};
  for (int i = 0; i < 3000; ++i) {
    const int label = u(rng) < 0.3;
    const double z = noise(rng);
    pairs.scores.push_back(1 / (1 + std::exp(-(-1 + 0.8 * label + z))));
    pairs.shadow_scores.push_back(0.5 + 0.49 / (1 + std::exp(-(-1 + 2.0 * label + 0.6 * z))));
    pairs.labels.push_back(label);
    in.units.push_back({0, i, {static_cast<double>(label)}});
  }
  in.shadows.push_back(pairs);
  auto report = Analyze(in);
  ASSERT_TRUE(report.ok()) << report.status();
  const ShadowEvaluation& e = report->shadow_evaluation.at(0);
  ASSERT_TRUE(e.insufficient_data.empty()) << e.insufficient_data;
  EXPECT_GT(e.auc_diff, 0);
  EXPECT_LT(e.auc_p_value, 0.05);
  EXPECT_GT(e.log_loss_diff, 0);
  EXPECT_LT(e.log_loss_p_value, 0.05);
  EXPECT_FALSE(e.shadow_worse);
  EXPECT_TRUE(e.shadow_better);
}

}  // namespace
}  // namespace abgate::analysis

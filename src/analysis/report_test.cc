// The typed report: JSON round trip, old keys kept, and a reader that never throws on a
// malformed report from a peer.
#include "analysis/report.h"

#include <random>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "analysis/analysis.h"
#include "common/human.h"
#include "common/strings.h"

namespace abgate::analysis {
namespace {

namespace json = boost::json;

Report Sample() {
  AnalysisInput in;
  in.experiment = "hyatt";
  in.arms = {{"A", "7", 80, 0}, {"B", "8", 20, 0}};
  in.weights_known = true;
  in.metrics = {{"booked", MetricKind::kBinary}, {"revenue", MetricKind::kContinuous}};
  in.outcomes = OutcomeCounts{10, 1, 2, 3};
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> u(0, 1);
  for (int i = 0; i < 5000; ++i) {
    const int arm = u(rng) < 0.2;
    const bool booked = u(rng) < (arm ? 0.14 : 0.10);
    in.units.push_back({arm, i, {booked ? 1.0 : 0.0, booked ? 200 * u(rng) : 0.0}});
    in.predictions.push_back({arm, 0.4 * booked + 0.6 * u(rng), booked});
  }
  auto r = Analyze(in);
  EXPECT_TRUE(r.ok()) << r.status();
  return *r;
}

TEST(ReportTest, JsonRoundTripsAndKeepsTheDocumentedKeys) {
  const Report r = Sample();
  const json::object j = ToJson(r);
  for (const char* key : {"experiment", "unit", "control", "alpha", "arms", "comparisons", "adjustment", "srm",
                          "multiple_exposure_units", "outcomes", "decision", "timeline"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  const auto& c = j.at("comparisons").as_array()[0].as_object();
  for (const char* key : {"metric", "control", "treatment", "test", "diff", "diff_ci", "lift", "lift_ci", "statistic",
                          "p_value", "p_value_adjusted", "sequential_p_value", "sequential_ci",
                          "sequential_p_value_adjusted", "family", "chance_to_beat", "significant"}) {
    EXPECT_TRUE(c.contains(key)) << key;
  }
  EXPECT_EQ(c.at("family"), "primary");
  for (const char* key : {"metric", "action", "winner", "reason", "evidence", "guardrails", "sequential_p_value"}) {
    EXPECT_TRUE(j.at("decision").as_object().contains(key)) << key;
  }
  auto back = ReportFromJson(json::value(j));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(json::serialize(ToJson(*back)), json::serialize(j));
  EXPECT_EQ(RenderText(*back), RenderText(r));
}

TEST(ReportTest, MalformedReportsAreClearErrorsNeverExceptions) {
  EXPECT_FALSE(ReportFromJson(json::value(42)).ok());
  EXPECT_FALSE(ReportFromJson(json::parse("{}")).ok());
  auto bad = ReportFromJson(json::parse(R"({"experiment":"e","control":"A","arms":"no","comparisons":[]})"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(bad.status().message()).find("report.arms must be an array"), std::string::npos)
      << bad.status();
  bad = ReportFromJson(json::parse(
      R"({"experiment":"e","control":"A","arms":[],"comparisons":[{"metric":"m","control":"A","treatment":"B","test":"z","diff":"x"}]})"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(std::string(bad.status().message()).find("report.comparisons[0].diff must be a number"), std::string::npos)
      << bad.status();

  // A number that is not finite (Boost.JSON reads 1e400 as inf, 0e400 as NaN; our writer prints
  // non-finite doubles as strings) is refused, not carried into a decision.
  for (const char* number : {"1e400", "-1e400", "0e400"}) {
    bad = ReportFromJson(json::parse(StrCat(
        R"({"experiment":"e","control":"A","arms":[],"comparisons":[{"metric":"m","control":"A","treatment":"B","test":"z","diff":)",
        number, "}]}")));
    ASSERT_FALSE(bad.ok()) << number;
    EXPECT_NE(std::string(bad.status().message()).find("report.comparisons[0].diff must be a finite number"),
              std::string::npos)
        << bad.status();
    std::string doc = json::serialize(ToJson(Sample()));
    const size_t ci = doc.find("\"diff_ci\":[");
    ASSERT_NE(ci, std::string::npos) << doc;
    doc.replace(ci + 11, doc.find(',', ci) - ci - 11, number);
    bad = ReportFromJson(json::parse(doc));
    ASSERT_FALSE(bad.ok()) << doc;
    EXPECT_NE(std::string(bad.status().message()).find("diff_ci must be a [low, high] pair of finite numbers"),
              std::string::npos)
        << bad.status();
  }

  // Every value of a real report replaced, one at a time, by a value of each wrong type: the
  // reader answers (ok or InvalidArgument) and never throws.
  const json::value good = ToJson(Sample());
  const json::value replacements[] = {json::value(nullptr), json::value("s"), json::value(1.5), json::value(-3),
                                      json::value(true), json::array{1, "x"}, json::object{{"k", 1}}};
  int paths = 0;
  std::function<void(json::value&, const std::function<void()>&)> visit = [&](json::value& v,
                                                                              const std::function<void()>& check) {
    const json::value saved = v;
    for (const auto& r : replacements) {
      v = r;
      check();
    }
    v = saved;
    ++paths;
    if (v.is_object()) {
      for (auto& [k, child] : v.as_object()) visit(child, check);
    } else if (v.is_array()) {
      auto& a = v.as_array();
      for (size_t i = 0; i < std::min<size_t>(a.size(), 3); ++i) visit(a[i], check);
    }
  };
  json::value doc = good;
  visit(doc, [&] {
    absl::StatusOr<Report> r = absl::UnknownError("not run");
    EXPECT_NO_THROW(r = ReportFromJson(doc));
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    }
  });
  EXPECT_GT(paths, 100);
}

TEST(ReportTest, NumbersForPeopleHaveAtMostFourSignificantDigits) {
  EXPECT_EQ(Human(0.0015873), "0.001587");
  EXPECT_EQ(Human(0.0458), "0.0458");
  EXPECT_EQ(Human(1234.5678), "1235");
  EXPECT_EQ(Human(0.5), "0.5");
  EXPECT_EQ(Human(0), "0");
  EXPECT_EQ(Human(3.2e-9), "3.2e-09");
  EXPECT_EQ(Human(-0.00012346), "-0.0001235");
  EXPECT_EQ(HumanPercent(0.123456), "12.35%");
  EXPECT_EQ(HumanP(0.00001), "< 0.0001");
  const std::string text = RenderText(Sample());
  EXPECT_EQ(text.find("e-0"), std::string::npos) << text;  // ordinary magnitudes in fixed notation
  EXPECT_EQ(text.find("(("), std::string::npos) << text;
}

}  // namespace
}  // namespace abgate::analysis

#include "analysis/analysis.h"

#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <span>
#include <tuple>

#include <boost/json.hpp>

#include "common/hash64.h"
#include "common/strings.h"
#include "events/event_sink.h"
#include "events/in_memory_event_reader.h"
#include "events/sqlite_event_sink.h"
#include "gtest/gtest.h"
#include "analysis/analysis_state.h"
#include "stats/tests.h"
#include "testing/test_store.h"

namespace abgate::analysis {
namespace {

namespace json = boost::json;

// The report as DESIGN.md's JSON, which these tests check key by key.
absl::StatusOr<json::value> AnalyzeToJson(const AnalysisInput& input) {
  auto report = Analyze(input);
  if (!report.ok()) return report.status();
  return json::value(ToJson(*report));
}

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
  auto report = AnalyzeToJson(*input);
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

  auto typed = ReportFromJson(*report);
  ASSERT_TRUE(typed.ok()) << typed.status();
  const std::string text = RenderText(*typed);
  EXPECT_NE(text.find("\ndecision: promote v8 -- "), std::string::npos) << text;
  EXPECT_EQ(text.find("decision rule on this data"), std::string::npos) << text;
  // Concluded: the same decision under the label that says the rule only reads this data, after
  // the conclusion's line (text and HTML).
  Report concluded = *typed;
  concluded.conclusion = Conclusion{"promote", "v8", "8", "v7", 1'790'000'000'000'000, "v8 beats v7"};
  const std::string concluded_text = RenderText(concluded);
  // The line after its label, up to its end.
  auto after = [](const std::string& t, std::string_view label) {
    const size_t at = t.find(StrCat("\n", label));
    if (at == std::string::npos) return std::string("(no such line)");
    const size_t from = at + 1 + label.size();
    return t.substr(from, t.find('\n', from) - from);
  };
  EXPECT_EQ(after(concluded_text, "decision rule on this data: "), after(text, "decision: ")) << concluded_text;
  const size_t rule = concluded_text.find("\ndecision rule on this data: promote v8 -- ");
  ASSERT_NE(rule, std::string::npos) << concluded_text;
  EXPECT_EQ(concluded_text.find("\ndecision: "), std::string::npos) << concluded_text;
  EXPECT_LT(concluded_text.find("\nconcluded: promoted v8 (v8) at "), rule) << concluded_text;
  EXPECT_NE(RenderHtml(concluded).find("Decision rule on this data: promote"), std::string::npos);
  const std::string html = RenderHtml(*typed);
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
  auto report = AnalyzeToJson(*input);
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
  auto report = AnalyzeToJson(*one);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(json::serialize(*report).find("nan"), std::string::npos);
  EXPECT_EQ(report->at("decision").at("action"), "continue");
}

// Issue 14: versions were sorted by a comparator that was not a strict weak order when numbers
// and names mixed (2 < 1e1 < 1f < 2), undefined behaviour in std::sort. Numbers come first now.
TEST_F(AnalysisTest, Issue14MixedVersionsSortNumbersFirst) {
  const auto path = (dir_ / "mixed.csv").string();
  std::ofstream(path) << "user_id,model_version,y_true,y_pred\nu1,1f,1,0.3\nu2,1e1,0,0.3\nu3,2,1,0.3\nu4,b,0,0.1\n";
  auto r = ReadResultsCsv(path, "");
  ASSERT_TRUE(r.ok()) << r.status();
  std::vector<std::string> arms;
  for (const auto& a : r->arms) arms.push_back(a.name);
  EXPECT_EQ(arms, (std::vector<std::string>{"v2", "v1e1", "v1f", "vb"}));
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
  auto report = AnalyzeToJson(*input);
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
  auto report = AnalyzeToJson(*in);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->at("outcomes").at("unattributed").at("after_window"), 1);
}

}  // namespace
}  // namespace abgate::analysis

namespace abgate::analysis {
namespace {

// What ReadEventStore must produce, recomputed from the generated events with plain maps of
// strings, independently of the reader's hashing, partitions, chunks and event blocks.
struct Expected {
  std::map<std::string, int64_t> exposures;  // per arm
  std::vector<std::tuple<std::string, int64_t, double, double>> units;  // arm, first ts, booked, revenue
  std::vector<std::tuple<std::string, double, int>> predictions;        // arm, score, label
  AnalysisInput::OutcomeCounts counts;
  int64_t multiple = 0;
};

Expected Recompute(const std::vector<events::Exposure>& exposures, const std::vector<events::Outcome>& outcomes,
                   const std::string& experiment, bool request_units, int64_t window, int64_t since) {
  struct Unit {
    std::string arm;
    int64_t first_ts;
    bool multiple = false;
    double booked = 0, revenue = 0;
  };
  Expected x;
  std::map<std::string, Unit> units;
  std::map<std::string, std::string> unit_of_request;
  std::vector<const events::Exposure*> kept;
  for (const auto& e : exposures) {
    if (e.experiment != experiment || !e.in_experiment || e.ts_us < since) continue;
    kept.push_back(&e);
    ++x.exposures[e.assigned_arm];
    const std::string unit = request_units || e.unit_id.empty() ? "request:" + e.request_id : "user:" + e.unit_id;
    unit_of_request.try_emplace(e.request_id, unit);
    auto [it, inserted] = units.try_emplace(unit, Unit{e.assigned_arm, e.ts_us});
    if (!inserted) {
      it->second.multiple |= it->second.arm != e.assigned_arm;
      it->second.first_ts = std::min(it->second.first_ts, e.ts_us);
    }
  }
  std::map<std::string, double> request_label;
  std::set<std::string> seen_event_ids;
  for (const auto& o : outcomes) {
    if (!o.event_id.empty() && !seen_event_ids.insert(o.experiment + "/" + o.event_id).second) continue;  // stored once
    if (o.experiment != experiment || o.ts_us < since || (o.metric != "booked" && o.metric != "revenue")) continue;
    std::string unit;
    if (!o.request_id.empty()) {
      auto it = unit_of_request.find(o.request_id);
      if (it == unit_of_request.end()) {
        ++x.counts.unknown_unit;
        continue;
      }
      unit = it->second;
    } else if (!o.unit_id.empty()) {
      unit = "user:" + o.unit_id;
      if (!units.contains(unit)) {
        ++x.counts.unknown_unit;
        continue;
      }
    } else {
      continue;
    }
    Unit& u = units.at(unit);
    if (o.ts_us < u.first_ts) {
      ++x.counts.before_exposure;
    } else if (window > 0 && o.ts_us > u.first_ts + window) {
      ++x.counts.after_window;
    } else {
      ++x.counts.attributed;
      if (o.metric == "booked") {
        u.booked = std::max(u.booked, o.value > 0 ? 1.0 : 0.0);
        if (!o.request_id.empty()) request_label[o.request_id] = std::max(request_label[o.request_id], o.value > 0 ? 1.0 : 0.0);
      } else {
        u.revenue += o.value;
      }
    }
  }
  for (const auto& [key, u] : units) {
    if (u.multiple) {
      ++x.multiple;
    } else {
      x.units.emplace_back(u.arm, u.first_ts, u.booked, u.revenue);
    }
  }
  for (const auto* e : kept) {
    const Unit& u = units.at(unit_of_request.at(e->request_id));
    if (!e->score || u.multiple) continue;
    auto label = request_label.find(e->request_id);
    x.predictions.emplace_back(e->assigned_arm, *e->score, (label != request_label.end() ? label->second : u.booked) > 0);
  }
  std::sort(x.units.begin(), x.units.end());
  std::sort(x.predictions.begin(), x.predictions.end());
  return x;
}

void ExpectMatches(const AnalysisInput& in, const Expected& x, const std::string& what) {
  SCOPED_TRACE(what);
  std::map<std::string, int64_t> exposures;
  for (const auto& a : in.arms) exposures[a.name] = a.exposures;
  EXPECT_EQ(exposures, x.exposures);
  std::vector<std::tuple<std::string, int64_t, double, double>> units;
  for (const auto& u : in.units) units.emplace_back(in.arms[u.arm].name, u.first_ts_us, u.values[0], u.values[1]);
  std::sort(units.begin(), units.end());
  ASSERT_EQ(units.size(), x.units.size());
  for (size_t i = 0; i < units.size(); ++i) {
    EXPECT_EQ(std::get<0>(units[i]), std::get<0>(x.units[i]));
    EXPECT_EQ(std::get<1>(units[i]), std::get<1>(x.units[i]));
    EXPECT_EQ(std::get<2>(units[i]), std::get<2>(x.units[i]));
    EXPECT_NEAR(std::get<3>(units[i]), std::get<3>(x.units[i]), 1e-9);  // sums in another order
  }
  std::vector<std::tuple<std::string, double, int>> predictions;
  for (const auto& p : in.predictions) predictions.emplace_back(in.arms[p.arm].name, p.score, p.label);
  std::sort(predictions.begin(), predictions.end());
  EXPECT_EQ(predictions, x.predictions);
  ASSERT_TRUE(in.outcomes.has_value());
  EXPECT_EQ(in.outcomes->attributed, x.counts.attributed);
  EXPECT_EQ(in.outcomes->before_exposure, x.counts.before_exposure);
  EXPECT_EQ(in.outcomes->after_window, x.counts.after_window);
  EXPECT_EQ(in.outcomes->unknown_unit, x.counts.unknown_unit);
  EXPECT_EQ(in.multiple_exposure_units, x.multiple);
}

// Events with everything the reader must get right: units in two arms, exposures without a
// unit, other experiments, rows outside the experiment, fallbacks, outcomes by unit, by request,
// by both, for nobody, around a window, repeated event ids, a metric nobody asked for.
struct GeneratedEvents {
  std::vector<events::Exposure> exposures;
  std::vector<events::Outcome> outcomes;
};

GeneratedEvents Generate(uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto uniform = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  const std::vector<std::string> arms = {"A", "B", "C"}, versions = {"7", "8", "9"};
  GeneratedEvents g;
  for (int i = 0; i < 3000; ++i) {
    events::Exposure e;
    e.request_id = "r" + std::to_string(i);
    e.ts_us = uniform(1'000'000, 2'000'000);
    e.experiment = uniform(0, 19) == 0 ? "other" : "exp";
    const int user = static_cast<int>(uniform(0, 399));
    e.unit_id = uniform(0, 19) == 0 ? "" : "u" + std::to_string(user);
    const int arm = uniform(0, 49) == 0 ? static_cast<int>(uniform(0, 2)) : user % 3;  // a few units in two arms
    e.assigned_arm = arms[arm];
    e.arm = uniform(0, 9) == 0 ? "A" : e.assigned_arm;  // fallbacks: the assigned arm counts
    e.model_version = versions[arm];
    e.routing_mode = "user_hash";
    if (uniform(0, 9) != 0) e.score = static_cast<double>(uniform(0, 999)) / 1000;
    e.in_experiment = uniform(0, 19) != 0;
    g.exposures.push_back(e);
  }
  for (int i = 0; i < 2500; ++i) {
    events::Outcome o;
    o.ts_us = uniform(900'000, 2'500'000);
    o.experiment = uniform(0, 19) == 0 ? "other" : "exp";
    const int64_t kind = uniform(0, 9);
    if (kind < 5) {
      o.unit_id = "u" + std::to_string(uniform(0, 449));  // some never exposed
    } else if (kind < 8) {
      o.request_id = "r" + std::to_string(uniform(0, 3199));  // some never served
      if (uniform(0, 1)) o.unit_id = "u1";  // a request id wins over a unit id
    }
    const int64_t metric = uniform(0, 4);
    o.metric = metric < 3 ? "booked" : metric == 3 ? "revenue" : "clicks";
    o.value = o.metric == "booked" ? static_cast<double>(uniform(0, 1)) : static_cast<double>(uniform(1, 500)) / 4;
    if (uniform(0, 9) == 0) o.event_id = "e" + std::to_string(uniform(0, 40));  // repeats are stored once
    g.outcomes.push_back(o);
  }
  return g;
}

// Gateway-sized batches: many blocks.
void WriteInBatches(events::EventSink& sink, const GeneratedEvents& g) {
  const std::span exposures(g.exposures);
  const std::span outcomes(g.outcomes);
  for (size_t i = 0; i < exposures.size(); i += 100) {
    const size_t n = std::min<size_t>(100, exposures.size() - i);
    const size_t from = std::min(outcomes.size(), i), to = std::min(outcomes.size(), i + 100);
    ASSERT_TRUE(sink.WriteBatch(exposures.subspan(i, n), {}, outcomes.subspan(from, to - from)).ok());
  }
}

// ReadEventStore under every tuning must match the plain recomputation, and give one report to
// the last bit (rows are taken in store order whatever the workers and chunks).
void CheckAgainstRecomputation(const std::string& uri, const GeneratedEvents& g, const std::string& stage) {
  const std::vector<MetricSpec> metrics = {{"booked", MetricKind::kBinary}, {"revenue", MetricKind::kContinuous}};
  const std::vector<std::pair<std::string, ReadTuning>> tunings = {
      {"blocks", {}},
      {"blocks, 3 workers, 1 block (page) per chunk", {3, 1, true}},
      {"rows, 3 workers, 64 rows per chunk", {3, 64, false}},
      {"rows, 1 worker", {1, 0, false}}};
  for (const std::string unit : {"user", "request"}) {
    for (const int64_t since : {int64_t{0}, int64_t{1'400'000}}) {
      const Expected x = Recompute(g.exposures, g.outcomes, "exp", unit == "request", 300'000, since);
      const std::string what = StrCat(stage, " unit=", unit, " since=", since);
      std::string first_report;
      for (const auto& [name, tuning] : tunings) {
        auto in = ReadEventStore(uri, "exp", unit, metrics, 300'000, since, tuning);
        ASSERT_TRUE(in.ok()) << in.status();
        ExpectMatches(*in, x, what + " " + name);
        for (const auto& a : in->arms) EXPECT_EQ(a.model_version, std::string(1, a.name[0] - 'A' + '7')) << what << " " << name;
        auto report = AnalyzeToJson(*in);
        ASSERT_TRUE(report.ok()) << report.status();
        if (first_report.empty()) first_report = json::serialize(*report);
        EXPECT_EQ(json::serialize(*report), first_report) << what << " " << name;
      }
    }
  }
}

TEST_F(AnalysisTest, EventBlocksRowsAndAPlainRecomputationAgree) {
  const std::string db_path = (dir_ / "events.db").string();
  GeneratedEvents g = Generate(7);
  auto& exposures = g.exposures;
  {
    auto sink = events::SqliteEventSink::Open(db_path);
    ASSERT_TRUE(sink.ok()) << sink.status();
    WriteInBatches(**sink, g);
  }
  auto check_all = [&](const std::string& stage) { CheckAgainstRecomputation("sqlite:" + db_path, g, stage); };
  check_all("written with blocks");

  // A store from before the blocks (schema version 2, without the bandits' assignment
  // probability of version 4): the reader falls back to rows, and the next sink to open it
  // fills the blocks in and adds the column.
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(db_path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db,
                           "DROP TABLE exposure_blocks; DROP TABLE outcome_blocks; DROP TABLE block_coverage; "
                           "ALTER TABLE exposures DROP COLUMN assignment_probability; DROP TABLE bandit_weights; "
                           "DELETE FROM schema_version; "
                           "INSERT INTO schema_version VALUES (2)",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  check_all("version 2 store");
  ASSERT_TRUE(events::SqliteEventSink::Open(db_path).ok());
  {
    sqlite3* db = nullptr;
    sqlite3_stmt* st = nullptr;
    ASSERT_EQ(sqlite3_open(db_path.c_str(), &db), SQLITE_OK);
    sqlite3_prepare_v2(db,
                       "SELECT (SELECT sum(rows) FROM exposure_blocks), (SELECT max(version) FROM schema_version), "
                       "(SELECT count(*) FROM pragma_table_info('exposures') WHERE name = 'assignment_probability'), "
                       "(SELECT count(*) FROM bandit_weights)",
                       -1, &st, nullptr);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    EXPECT_GT(sqlite3_column_int64(st, 0), 2000);
    EXPECT_EQ(sqlite3_column_int(st, 1), 4);
    EXPECT_EQ(sqlite3_column_int(st, 2), 1);
    EXPECT_EQ(sqlite3_column_int(st, 3), 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
  }
  check_all("migrated to blocks");

  // Rows added behind abgate's back (a hand-made INSERT) are in no block: readers see the rows
  // until the next sink rebuilds the blocks, and a sink writing after them marks the blocks
  // broken too.
  auto hand_insert = [&](const events::Exposure& e) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(db_path.c_str(), &db), SQLITE_OK);
    const std::string sql = StrCat(
        "INSERT INTO exposures (request_id, ts, experiment, unit_id, unit_random, arm, assigned_arm, model_name, "
        "model_version, routing_mode, status, latency_us, score, fallback, in_experiment) VALUES ('",
        e.request_id, "', ", e.ts_us, ", 'exp', '", e.unit_id, "', 0, '", e.arm, "', '", e.assigned_arm, "', NULL, '",
        e.model_version, "', 'user_hash', 200, 1000, 0.5, 0, 1)");
    ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    sqlite3_close(db);
  };
  events::Exposure by_hand = exposures[1];
  by_hand.experiment = "exp";
  by_hand.in_experiment = true;
  by_hand.request_id = "r-by-hand";
  by_hand.unit_id = "u-by-hand";
  by_hand.score = 0.5;
  hand_insert(by_hand);
  exposures.push_back(by_hand);
  check_all("a row added by hand");
  {
    auto sink = events::SqliteEventSink::Open(db_path);  // rebuilds
    ASSERT_TRUE(sink.ok());
    by_hand.request_id = "r-by-hand-2";
    by_hand.unit_id = "u-by-hand-2";
    hand_insert(by_hand);
    exposures.push_back(by_hand);
    events::Exposure more = by_hand;
    more.request_id = "r-after";
    more.unit_id = "u-after";
    ASSERT_TRUE((*sink)->WriteBatch(std::vector<events::Exposure>{more}, {}).ok());
    exposures.push_back(more);
  }
  check_all("a row added by hand between two batches");
  ASSERT_TRUE(events::SqliteEventSink::Open(db_path).ok());
  check_all("blocks rebuilt");
}

// A promotion stops the experiment with the winner at 100%: that is no assignment, so it starts
// no weight period. (The demo's store had 105 units first exposed in the moment between the
// promote's commit and the swap, checked against 0/100: "SRM MISMATCH" on a clean test.)
TEST(WeightHistoryTest, APausedOrConcludedExperimentStartsNoPeriod) {
  auto config = [](double a, double b, const char* state) {
    return StrCat(R"({"name":"e","arms":[{"name":"A","weight":)", a, R"(,"upstream":"http://h:1/x"},)",
                  R"({"name":"B","weight":)", b, R"(,"upstream":"http://h:1/y"}],"state":")", state, R"("})");
  };
  events::InMemoryEventReader memory;
  memory.Add(events::AuditRecord{100, "admin", "", "weights", "e", config(90, 10, "running"), config(50, 50, "running")});
  memory.Add(events::AuditRecord{200, "admin", "", "pause", "e", config(50, 50, "running"), config(50, 50, "paused")});
  memory.Add(events::AuditRecord{300, "admin", "", "resume", "e", config(50, 50, "paused"), config(50, 50, "running")});
  // The promote's audit row carries its evidence: {experiment, evidence}.
  memory.Add(events::AuditRecord{400, "admin", "", "promote", "e", config(50, 50, "running"),
                                 StrCat(R"({"experiment":)", config(0, 100, "stopped"), R"(,"evidence":{"reason":"r"}})")});
  auto parsed = config::ParseExperimentConfig(boost::json::parse(config(0, 100, "stopped")), "e");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  auto periods = ReadWeightHistory(memory, *parsed);
  ASSERT_TRUE(periods.ok()) << periods.status();
  ASSERT_EQ(periods->size(), 2u);
  EXPECT_EQ((*periods)[0].start_us, 0);
  EXPECT_EQ((*periods)[0].weights, (std::vector<double>{90, 10}));
  EXPECT_EQ((*periods)[1].start_us, 100);
  EXPECT_EQ((*periods)[1].weights, (std::vector<double>{50, 50}));
}

// ReadConfiguredExperiment lays the store's arms (name order) out in the config's order, and a
// concluded experiment's control and winner are looked up among those configured arms: the full
// read and a follower's read (its statistics' arms remapped the same way) give one report.
TEST_F(AnalysisTest, ConfiguredArmsInConfigOrderAndTheConclusionNamesConfiguredArms) {
  const char* arms[] = {"A", "B", "C"};
  const char* versions[] = {"7", "8", "9"};
  std::vector<events::Exposure> exposures;
  std::vector<events::Outcome> outcomes;
  for (int i = 0; i < 300; ++i) {
    events::Exposure e;
    e.request_id = StrCat("r", i);
    e.ts_us = 1'000'000 + i;
    e.experiment = "e";
    e.unit_id = StrCat("u", i);
    e.arm = e.assigned_arm = arms[i % 3];
    e.model_version = versions[i % 3];
    e.routing_mode = "user_hash";
    e.status = 200;
    exposures.push_back(e);
    if (i % (2 + i % 3) == 0) outcomes.push_back(events::Outcome{e.ts_us + 10, "e", e.request_id, e.unit_id, "booked", 1, ""});
  }
  const std::string uri = "sqlite:" + (dir_ / "configured.db").string();
  {
    auto sink = events::OpenEventSink(uri);
    ASSERT_TRUE(sink.ok()) << sink.status();
    ASSERT_TRUE((*sink)->WriteBatch(exposures, {}, outcomes).ok());
  }
  auto opened = events::OpenEventReader(uri);
  ASSERT_TRUE(opened.ok()) << opened.status();
  events::EventReader& reader = **opened;
  // Configured C, B, A; B promoted (it serves everyone and is control now), A was control in the test.
  const std::string config_json =
      R"({"name":"e","control":"B","state":"stopped","arms":[)"
      R"({"name":"C","version":"9","weight":0,"upstream":"http://h:1/c"},)"
      R"({"name":"B","weight":100,"upstream":"http://h:1/b"},)"
      R"({"name":"A","version":"7","weight":0,"upstream":"http://h:1/a"}],)"
      R"("metrics":[{"name":"booked","type":"binary"}],)"
      R"("conclusion":{"action":"promote","winner":"B","tested_control":"A","at_us":5000000,"reason":"r"}})";
  auto experiment = config::ParseExperimentConfig(json::parse(config_json), "e");
  ASSERT_TRUE(experiment.ok()) << experiment.status();
  auto full = ReadConfiguredExperiment(reader, *experiment, "user", MetricsOf(*experiment));
  ASSERT_TRUE(full.ok()) << full.status();
  ASSERT_EQ(full->arms.size(), 3u);
  EXPECT_EQ(full->arms[0].name, "C");
  EXPECT_EQ(full->arms[1].name, "B");
  EXPECT_EQ(full->arms[2].name, "A");
  EXPECT_EQ(full->arms[1].model_version, "8");  // B's version as served (none configured)
  EXPECT_EQ(full->arms[0].exposures, 100);
  EXPECT_EQ(full->control, 2) << "the tested control, A";
  ASSERT_TRUE(full->conclusion);
  EXPECT_EQ(full->conclusion->winner, "B");
  EXPECT_EQ(full->conclusion->winner_version, "8");
  EXPECT_EQ(full->conclusion->tested_control, "A");

  EventStoreFollower follower("e", "user", MetricsOf(*experiment), experiment->attribution_window_us);
  auto followed = ReadConfiguredExperiment(reader, follower, *experiment);
  ASSERT_TRUE(followed.ok()) << followed.status();
  EXPECT_EQ(followed->control, 2);
  ASSERT_TRUE(followed->state);
  auto a = Analyze(*full), b = Analyze(*followed);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(json::serialize(ToJson(*a)), json::serialize(ToJson(*b)));
  // Per arm: the units each arm served (a third each), in the config's order.
  ASSERT_EQ(a->arms.size(), 3u);
  for (const auto& arm : a->arms) EXPECT_EQ(arm.units, 100) << arm.arm;

  // An arm the store has and the config does not list is an error that names it.
  config::ExperimentConfig without_c = *experiment;
  without_c.arms.erase(without_c.arms.begin());
  auto refused = ReadConfiguredExperiment(reader, without_c, "user", MetricsOf(without_c));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("arm 'C'"), std::string_view::npos) << refused.status();
}

// The analysis over an in-memory reader fed with the typed rows gives the numbers of the same
// rows written to SQLite and read back (blocks or rows), to the last bit of the report.
TEST_F(AnalysisTest, AnInMemoryReaderGivesTheNumbersOfTheSqliteStore) {
  const std::string db_path = (dir_ / "memory-vs-sqlite.db").string();
  const GeneratedEvents g = Generate(13);
  events::InMemoryEventReader memory;
  for (const auto& e : g.exposures) memory.Add(e);
  for (const auto& o : g.outcomes) memory.Add(o);
  {
    auto sink = events::SqliteEventSink::Open(db_path);
    ASSERT_TRUE(sink.ok()) << sink.status();
    WriteInBatches(**sink, g);
  }
  const std::vector<MetricSpec> metrics = {{"booked", MetricKind::kBinary}, {"revenue", MetricKind::kContinuous}};
  for (const std::string unit : {"user", "request"}) {
    for (const int64_t since : {int64_t{0}, int64_t{1'400'000}}) {
      const std::string what = StrCat("unit=", unit, " since=", since);
      const Expected x = Recompute(g.exposures, g.outcomes, "exp", unit == "request", 300'000, since);
      for (const ReadTuning& tuning : {ReadTuning{}, ReadTuning{3, 64, true}, ReadTuning{1, 0, false}}) {
        auto from_memory = ReadEventStore(memory, "exp", unit, metrics, 300'000, since, tuning);
        ASSERT_TRUE(from_memory.ok()) << from_memory.status();
        ExpectMatches(*from_memory, x, what + " in memory");
        auto from_sqlite = ReadEventStore("sqlite:" + db_path, "exp", unit, metrics, 300'000, since, tuning);
        ASSERT_TRUE(from_sqlite.ok()) << from_sqlite.status();
        auto a = AnalyzeToJson(*from_memory), b = AnalyzeToJson(*from_sqlite);
        ASSERT_TRUE(a.ok() && b.ok());
        EXPECT_EQ(json::serialize(*a), json::serialize(*b)) << what;
      }
    }
  }
  auto stored = ReadStoredMetrics("sqlite:" + db_path, "exp");
  auto in_memory = ReadStoredMetrics(memory, "exp");
  ASSERT_TRUE(stored.ok() && in_memory.ok());
  ASSERT_EQ(stored->size(), 3u);  // booked, clicks, revenue
  ASSERT_EQ(in_memory->size(), stored->size());
  for (size_t i = 0; i < stored->size(); ++i) {
    EXPECT_EQ((*in_memory)[i].name, (*stored)[i].name);
    EXPECT_EQ((*in_memory)[i].kind, (*stored)[i].kind) << (*stored)[i].name;
  }
  EXPECT_EQ(ReadEventStore(memory, "nope", "user", metrics).status().code(), absl::StatusCode::kNotFound);
}

// A follower (the dashboard's results) reads only what was stored since its last read, and its
// report is the full read's to the last bit: as batches arrive (timestamps out of order), when
// a row added by hand switches the store to rows, while rows are read, and when the blocks are
// rebuilt.
TEST_F(AnalysisTest, AFollowerReadsOnlyNewEventsAndMatchesAFullRead) {
  const std::string db_path = (dir_ / "follow.db").string();
  const std::string uri = "sqlite:" + db_path;
  const GeneratedEvents g = Generate(17);
  // With a CUPED covariate: its outcomes before each unit's first exposure are read from the start.
  const std::vector<MetricSpec> metrics = {{"booked", MetricKind::kBinary},
                                           {"revenue", MetricKind::kContinuous, "clicks"}};
  auto reader = events::OpenEventReader(uri);
  ASSERT_TRUE(reader.ok());
  struct Case {
    std::string unit;
    int64_t since;
    ReadTuning tuning;
    std::unique_ptr<EventStoreFollower> follower;
  };
  std::vector<Case> cases;
  for (const std::string unit : {"user", "request"}) {
    for (const int64_t since : {int64_t{0}, int64_t{1'400'000}}) {
      for (const ReadTuning& tuning : {ReadTuning{}, ReadTuning{3, 2, true}}) {
        cases.push_back({unit, since, tuning, std::make_unique<EventStoreFollower>("exp", unit, metrics, 300'000, since)});
      }
    }
  }
  auto check = [&](const std::string& stage, bool incremental) {
    for (auto& c : cases) {
      const std::string what = StrCat(stage, " unit=", c.unit, " since=", c.since, " workers=", c.tuning.workers);
      auto followed = c.follower->Read(**reader, c.tuning);
      ASSERT_TRUE(followed.ok()) << followed.status() << " " << what;
      EXPECT_EQ(c.follower->last_read_incremental(), incremental) << what;
      auto full = ReadEventStore(uri, "exp", c.unit, metrics, 300'000, c.since, c.tuning);
      ASSERT_TRUE(full.ok()) << full.status();
      // The follower hands over sufficient statistics (its AnalysisState), the full read units.
      EXPECT_TRUE(followed->state != nullptr && followed->units.empty()) << what;
      auto a = AnalyzeToJson(*followed), b = AnalyzeToJson(*full);
      ASSERT_TRUE(a.ok() && b.ok()) << what;
      EXPECT_EQ(json::serialize(*a), json::serialize(*b)) << what;
      // The same with the maturity rule (the state's cutoff moves forward and back), weight
      // periods for SRM, and as a bandit (IPW and probability best from the state's sums).
      for (const int64_t as_of : {int64_t{1'900'000}, int64_t{1'500'000}, int64_t{2'400'000}, int64_t{1'700'000}}) {
        for (AnalysisInput* in : {&*followed, &*full}) {
          in->as_of_us = as_of;
          in->maturity_us = 250'000;
          in->weights_known = true;
          for (auto& arm : in->arms) arm.weight = 1;
          in->weight_periods = {{0, std::vector<double>(in->arms.size(), 1.0)},
                                {1'450'000, std::vector<double>(in->arms.size(), 2.0)}};
          in->weight_periods[1].weights[0] = 1;
          in->bandit = as_of == 1'700'000 ? std::optional(AnalysisInput::Bandit{0.05}) : std::nullopt;
        }
        auto fa = AnalyzeToJson(*followed), fb = AnalyzeToJson(*full);
        ASSERT_TRUE(fa.ok() && fb.ok()) << what;
        EXPECT_EQ(json::serialize(*fa), json::serialize(*fb)) << what << " as of " << as_of;
      }
    }
  };
  auto write = [&](size_t from, size_t to, events::EventSink& sink) {
    for (size_t i = from; i < to; i += 100) {
      const size_t n = std::min<size_t>(100, to - i);
      const size_t o_from = std::min(g.outcomes.size(), i), o_to = std::min(g.outcomes.size(), i + n);
      ASSERT_TRUE(sink.WriteBatch(std::span(g.exposures).subspan(i, n), {},
                                  std::span(g.outcomes).subspan(o_from, o_to - o_from))
                      .ok());
    }
  };
  auto hand_insert = [&] {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(db_path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db,
                           "INSERT INTO exposures (request_id, ts, experiment, unit_id, unit_random, arm, assigned_arm, "
                           "model_name, model_version, routing_mode, status, latency_us, score, fallback, in_experiment) "
                           "VALUES ('r-by-hand', 1500000, 'exp', 'u-by-hand', 0, 'A', 'A', NULL, '7', 'user_hash', 200, "
                           "1000, 0.5, 0, 1)",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  };
  {
    auto sink = events::SqliteEventSink::Open(db_path);
    ASSERT_TRUE(sink.ok()) << sink.status();
    write(0, 1000, **sink);
    check("first read", false);
    write(1000, 1500, **sink);
    check("new batches", true);
    check("nothing new", true);
    // A row added by hand: the blocks no longer hold every row, so the rows are read (all of
    // them), and while the sink runs it keeps writing rows the blocks do not cover.
    hand_insert();
    check("a row by hand: rows", false);
    write(1500, 2000, **sink);
    check("rows, new batches", true);
  }
  // The next sink rebuilds the blocks: read whole again, then only new blocks.
  {
    auto sink = events::SqliteEventSink::Open(db_path);
    ASSERT_TRUE(sink.ok());
    check("blocks rebuilt", false);
    write(2000, 2500, **sink);
    check("more batches after the rebuild", true);
    write(2500, g.exposures.size(), **sink);
    check("the last batches", true);
  }
}

// A follower's first read of many units in every partition, on several workers, and its later
// reads equal full reads byte for byte when sums depend on order: revenue in sevenths (not
// exact in binary, so a unit's sum depends on the order its outcomes are added in), units with
// several requests whose outcomes name them (request and unit partitions differ: the outcome
// crosses partitions), outcomes stored before the exposure of the request they name (they wait,
// and join the unit's later), requests named and never served, and a request served twice.
TEST_F(AnalysisTest, AFollowersLargeFirstReadAndOutcomesAcrossPartitionsMatchAFullRead) {
  const std::string db_path = (dir_ / "follow-large.db").string();
  const std::string uri = "sqlite:" + db_path;
  std::mt19937_64 rng(23);
  auto uniform = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  constexpr int kExposures = 24000;
  std::vector<events::Exposure> exposures;
  for (int i = 0; i < kExposures; ++i) {
    events::Exposure e;
    e.request_id = i == 700 ? "r699" : "r" + std::to_string(i);  // r699 served twice
    e.ts_us = 1'000'000 + i * 40 + uniform(-500, 500);
    e.experiment = "exp";
    const int user = static_cast<int>(uniform(0, 5999));
    e.unit_id = "u" + std::to_string(user);
    e.arm = e.assigned_arm = user % 2 ? "B" : "A";
    e.model_version = user % 2 ? "8" : "7";
    e.routing_mode = "user_hash";
    e.score = static_cast<double>(uniform(0, 999)) / 1000;
    exposures.push_back(e);
  }
  // Outcomes written with the batch of exposures b: some name requests of later batches.
  auto outcomes_of = [&](int from, int to) {
    std::vector<events::Outcome> out;
    for (int k = from; k < to; ++k) {
      events::Outcome o;
      o.ts_us = 1'000'000 + k * 40 + uniform(0, 400'000);
      o.experiment = "exp";
      const int64_t kind = uniform(0, 9);
      if (kind < 4) {
        o.unit_id = "u" + std::to_string(uniform(0, 6199));  // some never exposed
      } else if (kind < 9) {
        o.request_id = "r" + std::to_string(std::clamp<int64_t>(k + uniform(-3000, 1500), 0, kExposures + 99));
      } else {
        o.request_id = "never-" + std::to_string(k);
      }
      o.metric = uniform(0, 2) == 0 ? "booked" : "revenue";
      o.value = o.metric == "booked" ? static_cast<double>(uniform(0, 1)) : static_cast<double>(uniform(1, 9999)) / 7;
      out.push_back(o);
    }
    return out;
  };
  const std::vector<MetricSpec> metrics = {{"booked", MetricKind::kBinary}, {"revenue", MetricKind::kContinuous}};
  auto reader = events::OpenEventReader(uri);
  ASSERT_TRUE(reader.ok());
  struct Case {
    std::string unit;
    ReadTuning tuning;
    std::unique_ptr<EventStoreFollower> follower;
  };
  std::vector<Case> cases;
  for (const std::string unit : {"user", "request"}) {
    for (const ReadTuning& tuning : {ReadTuning{1, 0, true}, ReadTuning{2, 0, true}, ReadTuning{3, 4, true}}) {
      cases.push_back({unit, tuning, std::make_unique<EventStoreFollower>("exp", unit, metrics, 0, 0)});
    }
  }
  auto check = [&](const std::string& stage, bool incremental) {
    for (auto& c : cases) {
      const std::string what = StrCat(stage, " unit=", c.unit, " workers=", c.tuning.workers);
      auto followed = c.follower->Read(**reader, c.tuning);
      ASSERT_TRUE(followed.ok()) << followed.status() << " " << what;
      EXPECT_EQ(c.follower->last_read_incremental(), incremental) << what;
      auto full = ReadEventStore(uri, "exp", c.unit, metrics, 0, 0, c.tuning);
      ASSERT_TRUE(full.ok()) << full.status();
      EXPECT_GT(full->outcomes->attributed, 0) << what;
      auto a = AnalyzeToJson(*followed), b = AnalyzeToJson(*full);
      ASSERT_TRUE(a.ok() && b.ok()) << what;
      EXPECT_EQ(json::serialize(*a), json::serialize(*b)) << what;
      // What it keeps is counted: at least its records (24 bytes an exposure, 32 an outcome).
      EXPECT_GT(c.follower->kept_bytes(), 24 * c.follower->kept_events()) << what;
      EXPECT_LT(c.follower->kept_bytes(), 2000 * c.follower->kept_events()) << what;
    }
  };
  auto sink = events::SqliteEventSink::Open(db_path);
  ASSERT_TRUE(sink.ok()) << sink.status();
  // Unit "uz" has two requests in one request partition: an outcome naming the second waits for
  // it while one naming the first arrives; the full read adds them in store order, and so must
  // the follower (in sevenths of 1e9, the order shows in the sum's last bits).
  std::vector<std::string> same_partition;
  for (int i = 0; same_partition.size() < 2; ++i) {
    const std::string id = "rz" + std::to_string(i);
    if (same_partition.empty() || common::Hash64(id) >> 56 == common::Hash64(same_partition[0]) >> 56) {
      same_partition.push_back(id);
    }
  }
  auto uz = [&](const std::string& request_id, int64_t ts) {
    events::Exposure e = exposures[0];
    e.request_id = request_id;
    e.unit_id = "uz";
    e.ts_us = ts;
    return e;
  };
  auto revenue = [](const std::string& request_id, const std::string& unit_id, double value) {
    events::Outcome o;
    o.ts_us = 1'500'000;
    o.experiment = "exp";
    o.request_id = request_id;
    o.unit_id = unit_id;
    o.metric = "revenue";
    o.value = value;
    return o;
  };
  std::vector<std::vector<events::Outcome>> uz_outcomes = {
      {revenue("", "uz", 1e9 / 3), revenue(same_partition[1], "", 1e9 / 7)}, {revenue(same_partition[0], "", 1e9 / 11)}};
  std::vector<std::vector<events::Exposure>> uz_exposures = {{uz(same_partition[0], 1'000'000)}, {}};
  auto write = [&](int from, int to) {
    if (!uz_outcomes.empty()) {
      ASSERT_TRUE((*sink)->WriteBatch(uz_exposures.front(), {}, uz_outcomes.front()).ok());
      uz_exposures.erase(uz_exposures.begin());
      uz_outcomes.erase(uz_outcomes.begin());
    }
    for (int i = from; i < to; i += 500) {
      const int n = std::min(500, to - i);
      const auto outcomes = outcomes_of(i, i + n);
      ASSERT_TRUE((*sink)->WriteBatch(std::span(exposures).subspan(static_cast<size_t>(i), static_cast<size_t>(n)), {},
                                      outcomes)
                      .ok());
    }
  };
  write(0, 16000);
  check("a large first read", false);  // 32k events: folded on every worker
  write(16000, 16100);
  check("a small batch", true);
  write(16100, 20000);
  check("a large batch", true);
  write(20000, kExposures);
  // The requests named and not served yet are served now.
  std::vector<events::Exposure> late;
  for (int i = kExposures; i < kExposures + 100; ++i) {
    events::Exposure e = exposures[static_cast<size_t>(i - 100)];
    e.request_id = "r" + std::to_string(i);
    late.push_back(e);
  }
  late.push_back(uz(same_partition[1], 1'000'001));  // the request an outcome waited for
  ASSERT_TRUE((*sink)->WriteBatch(late, {}).ok());
  check("the last batches", true);
}

// The state's prefix sums and counts (blocks split as units come, emptied as they go) are what
// a plain pass over the units in time order gives.
TEST(AnalysisStateTest, PrefixesAndCountsMatchAPassOverTheUnits) {
  std::mt19937_64 rng(11);
  AnalysisState state(2, {MetricKind::kContinuous}, {1}, 0);
  std::map<std::pair<int64_t, uint64_t>, UnitObservation> kept;
  for (int round = 0; round < 6; ++round) {
    for (int i = 0; i < 900; ++i) {
      UnitObservation u;
      u.arm = static_cast<int>(rng() % 2);
      u.first_ts_us = static_cast<int64_t>(rng() % 3000);
      u.values = {static_cast<double>(rng() % 1000) / 8, static_cast<double>(rng() % 100)};
      u.key = rng();
      state.AddUnit(u, u.key, 1);
      kept[{u.first_ts_us, u.key}] = u;
    }
    for (int i = 0; i < 500 && !kept.empty(); ++i) {  // and some go (a unit's old contribution)
      auto it = kept.begin();
      std::advance(it, static_cast<long>(rng() % kept.size()));
      state.AddUnit(it->second, it->second.key, -1);
      kept.erase(it);
    }
    ASSERT_EQ(state.units(), static_cast<int64_t>(kept.size()));
    const int64_t n = state.units();
    const std::vector<int64_t> ranks = {1, n / 3, n / 3 + 1, n / 2, n - 1, n};
    const auto prefixes = state.Prefixes(ranks);
    ASSERT_EQ(prefixes.size(), ranks.size());
    const std::vector<int64_t> bounds = {-5, 0, 700, 701, 1500, 2999, 3000, 5000};
    const auto counts = state.CountsBefore(bounds);
    ASSERT_EQ(counts.size(), bounds.size());
    for (size_t r = 0; r < ranks.size(); ++r) {
      int64_t units[2] = {0, 0};
      double y[2] = {0, 0}, xy[2] = {0, 0};  // exact: eighths and integers, small sums
      int64_t i = 0, last = 0;
      for (const auto& [at, u] : kept) {
        if (++i > ranks[r]) break;
        ++units[u.arm];
        y[u.arm] += u.values[0];
        xy[u.arm] += u.values[0] * u.values[1];
        last = at.first;
      }
      EXPECT_EQ(prefixes[r].last_ts_us, last);
      for (int a = 0; a < 2; ++a) {
        EXPECT_EQ(prefixes[r].arms[a].units, units[a]) << "rank " << ranks[r];
        EXPECT_EQ(prefixes[r].arms[a].y.Value(), y[a]) << "rank " << ranks[r];
        EXPECT_EQ(prefixes[r].arms[a].xy.Value(), xy[a]) << "rank " << ranks[r];
      }
    }
    for (size_t b = 0; b < bounds.size(); ++b) {
      int64_t before[2] = {0, 0};
      for (const auto& [at, u] : kept) {
        if (at.first < bounds[b]) ++before[u.arm];
      }
      EXPECT_EQ(counts[b][0], before[0]) << bounds[b];
      EXPECT_EQ(counts[b][1], before[1]) << bounds[b];
    }
  }
}

// Units and predictions added at once (a full analysis, a follower's first read: copied and
// counted in input order on several threads, sorted by time once, blocks built in one pass)
// make the state that adding them one at a time makes: every sum, prefix, count and group, and
// units taken away afterwards leave the same state as well.
TEST(AnalysisStateTest, AddingUnitsAtOnceEqualsAddingThemOneByOne) {
  std::mt19937_64 rng(5);
  std::vector<UnitObservation> units;
  std::vector<ScoredPrediction> predictions;
  for (int i = 0; i < 5000; ++i) {
    UnitObservation u;
    u.arm = static_cast<int>(rng() % 3);
    u.first_ts_us = 1'000'000 + static_cast<int64_t>(rng() % 1500) * 1000;  // many ties
    u.values = {static_cast<double>(rng() % 7) / 10, static_cast<double>(rng() % 100) / 3};
    u.propensity = rng() % 4 == 0 ? 0.0f : 0.25f + static_cast<float>(rng() % 3) / 4;
    u.key = rng() % 10 == 0 ? 0 : rng();  // 0: its index orders it
    units.push_back(u);
    predictions.push_back({u.arm, rng() % 5 == 0 ? -0.0 : static_cast<double>(rng() % 200) / 199, static_cast<int>(rng() % 2)});
  }
  auto make = [] {
    auto state = std::make_unique<AnalysisState>(3, std::vector<MetricKind>{MetricKind::kContinuous}, std::vector<int>{1}, 0);
    state->SetCutoff(2'000'000);
    return state;
  };
  auto expect_same = [](const AnalysisState& a, const AnalysisState& b, const std::string& what) {
    ASSERT_EQ(a.units(), b.units()) << what;
    EXPECT_EQ(a.counted_units(), b.counted_units()) << what;
    for (int arm = 0; arm < 3; ++arm) {
      const auto &x = a.arm(arm), &y = b.arm(arm);
      EXPECT_EQ(x.units, y.units) << what;
      EXPECT_EQ(x.sum[0].Value2(), y.sum[0].Value2()) << what;
      EXPECT_EQ(x.sum_squares[0].Value2(), y.sum_squares[0].Value2()) << what;
      EXPECT_EQ(x.cuped[0].xy.Value2(), y.cuped[0].xy.Value2()) << what;
      EXPECT_EQ(x.ipw_units, y.ipw_units) << what;
      EXPECT_EQ(x.wy2.Value2(), y.wy2.Value2()) << what;
      EXPECT_EQ(x.positives, y.positives) << what;
      const auto ga = a.Groups(arm), gb = b.Groups(arm);
      ASSERT_EQ(ga.size(), gb.size()) << what;
      for (size_t g = 0; g < ga.size(); ++g) {
        EXPECT_EQ(std::signbit(ga[g].score), std::signbit(gb[g].score)) << what;
        EXPECT_EQ(ga[g].score, gb[g].score) << what;
        EXPECT_EQ(ga[g].positives, gb[g].positives) << what;
        EXPECT_EQ(ga[g].negatives, gb[g].negatives) << what;
      }
    }
    const int64_t n = a.units();
    const std::vector<int64_t> ranks = {1, 2, n / 7, n / 2, n / 2 + 1, n - 1, n};
    const auto pa = a.Prefixes(ranks), pb = b.Prefixes(ranks);
    ASSERT_EQ(pa.size(), pb.size()) << what;
    for (size_t r = 0; r < pa.size(); ++r) {
      EXPECT_EQ(pa[r].last_ts_us, pb[r].last_ts_us) << what << " rank " << ranks[r];
      for (int arm = 0; arm < 3; ++arm) {
        EXPECT_EQ(pa[r].arms[arm].units, pb[r].arms[arm].units) << what << " rank " << ranks[r];
        EXPECT_EQ(pa[r].arms[arm].y.Value2(), pb[r].arms[arm].y.Value2()) << what << " rank " << ranks[r];
        EXPECT_EQ(pa[r].arms[arm].xy.Value2(), pb[r].arms[arm].xy.Value2()) << what << " rank " << ranks[r];
      }
    }
    const std::vector<int64_t> bounds = {0, 1'000'000, 1'000'001, 1'700'000, 2'499'000, 3'000'000};
    EXPECT_EQ(a.CountsBefore(bounds), b.CountsBefore(bounds)) << what;
    std::vector<std::pair<int64_t, int>> ua, ub;
    a.ForEachUnit([&](const AnalysisState::Unit& u) { ua.emplace_back(u.first_ts_us, u.arm); });
    b.ForEachUnit([&](const AnalysisState::Unit& u) { ub.emplace_back(u.first_ts_us, u.arm); });
    EXPECT_EQ(ua, ub) << what;
  };
  auto one_by_one = make();
  std::vector<size_t> shuffled(units.size());
  for (size_t i = 0; i < shuffled.size(); ++i) shuffled[i] = i;
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  for (size_t i : shuffled) one_by_one->AddUnit(units[i], units[i].key ? units[i].key : i, 1);
  for (const auto& p : predictions) one_by_one->AddPrediction(p.arm, p.score, p.label, 1);
  for (const int workers : {1, 2, 3}) {
    auto at_once = make();
    at_once->AddUnits(units, workers);
    at_once->AddPredictions(predictions, workers);
    expect_same(*one_by_one, *at_once, StrCat("at once, ", workers, " workers"));
    // Units taken away and added again one at a time (a follower's later reads).
    for (size_t i = 0; i < units.size(); i += 3) at_once->AddUnit(units[i], units[i].key ? units[i].key : i, -1);
    for (size_t i = 0; i < units.size(); i += 3) at_once->AddUnit(units[i], units[i].key ? units[i].key : i, 1);
    expect_same(*one_by_one, *at_once, StrCat("after units left and came back, ", workers, " workers"));
  }
  // Into a state that already has units: the rest added at once.
  auto halves = make();
  const size_t half = units.size() / 2;
  for (size_t i = 0; i < half; ++i) halves->AddUnit(units[i], units[i].key ? units[i].key : i, 1);
  std::vector<UnitObservation> rest(units.begin() + static_cast<std::ptrdiff_t>(half), units.end());
  for (size_t i = 0; i < rest.size(); ++i) {
    if (rest[i].key == 0) rest[i].key = half + i;  // the index it has in `units`
  }
  halves->AddUnits(rest, 2);
  halves->AddPredictions(predictions, 2);
  expect_same(*one_by_one, *halves, "the second half at once");
}

TEST_F(AnalysisTest, ADamagedEventBlockIsAnErrorNotACrash) {
  const std::string db_path = (dir_ / "damaged.db").string();
  {
    auto sink = events::SqliteEventSink::Open(db_path);
    ASSERT_TRUE(sink.ok());
    events::Exposure e;
    e.request_id = "r1";
    e.experiment = "exp";
    e.unit_id = "u1";
    e.arm = e.assigned_arm = "A";
    e.routing_mode = "user_hash";
    ASSERT_TRUE((*sink)->WriteBatch(std::vector<events::Exposure>{e}, {}).ok());
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE exposure_blocks SET data = x'01ffffff'", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto in = ReadEventStore("sqlite:" + db_path, "exp", "user", {{"booked", MetricKind::kBinary}});
  EXPECT_EQ(in.status().code(), absl::StatusCode::kInvalidArgument) << in.status();
  EXPECT_NE(in.status().message().find("corrupt exposure block"), std::string::npos) << in.status();
}

}  // namespace
}  // namespace abgate::analysis

namespace abgate::analysis {
namespace {

// The same on PostgreSQL (when scripts/test.sh provides one): rows read in page ranges by
// several connections in one snapshot.
TEST_F(AnalysisTest, PostgresReadsAgreeWithAPlainRecomputation) {
  testing::TestStore store("postgres", dir_.string());
  if (store.unconfigured()) GTEST_SKIP() << store.reason();
  ASSERT_TRUE(store.ok()) << store.reason();
  const GeneratedEvents g = Generate(11);
  {
    auto sink = events::OpenEventSink(store.uri());
    ASSERT_TRUE(sink.ok()) << sink.status();
    WriteInBatches(**sink, g);
  }
  CheckAgainstRecomputation(store.uri(), g, "postgres");
  EXPECT_GT(store.QueryInt("SELECT count(*) FROM exposure_blocks"), 10);
  // The blocks are what was read: a damaged one is reported (then put back).
  EXPECT_EQ(store.QueryInt("CREATE TABLE saved AS SELECT id, data FROM exposure_blocks; "
                           "UPDATE exposure_blocks SET data = '\\x01ffffff'::bytea "
                           "WHERE id = (SELECT min(id) FROM exposure_blocks WHERE experiment = 'exp'); SELECT 1"),
            1);
  auto damaged = ReadEventStore(store.uri(), "exp", "user", {{"booked", MetricKind::kBinary}});
  EXPECT_EQ(damaged.status().code(), absl::StatusCode::kInvalidArgument) << damaged.status();
  EXPECT_EQ(store.QueryInt("UPDATE exposure_blocks b SET data = s.data FROM saved s WHERE b.id = s.id; SELECT 1"), 1);
  EXPECT_TRUE(ReadEventStore(store.uri(), "exp", "user", {{"booked", MetricKind::kBinary}}).ok());

  // A row written without blocks (an older gateway during a rolling upgrade, or by hand): the
  // experiment's blocks no longer add up to its rows, so its rows are read.
  GeneratedEvents more = g;
  events::Exposure e = g.exposures[5];
  e.experiment = "exp";
  e.in_experiment = true;
  e.request_id = "r-older-gateway";
  e.unit_id = "u-older-gateway";
  e.score = 0.25;
  EXPECT_EQ(store.QueryInt(StrCat("INSERT INTO exposures (request_id, ts, experiment, unit_id, unit_random, arm, "
                                  "assigned_arm, model_name, model_version, routing_mode, status, latency_us, score, "
                                  "fallback, in_experiment) VALUES ('", e.request_id, "', ", e.ts_us, ", 'exp', '",
                                  e.unit_id, "', 0, '", e.arm, "', '", e.assigned_arm, "', NULL, '", e.model_version,
                                  "', 'user_hash', 200, 1000, 0.25, 0, 1) RETURNING 1")),
            1);
  more.exposures.push_back(e);
  CheckAgainstRecomputation(store.uri(), more, "postgres, a row without blocks");
}

}  // namespace
}  // namespace abgate::analysis

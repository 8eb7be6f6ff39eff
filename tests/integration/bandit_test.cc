// Issue 18 item 5: routing_mode bandit end to end. A real gateway on port 0 in front of two
// model stand-ins, requests sent, outcomes posted by request id with fixed-seed conversions
// (A converts 5% of the time, B 25%), and the gateway's own Thompson-sampling updates observed
// through the admin API, the exposures and the weight history.
#include <boost/json.hpp>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <thread>

#include "analysis/analysis.h"
#include "common/random.h"
#include "stats/bandit.h"
#include "gateway_fixture.h"
#include "testing/subprocess.h"

namespace abgate::testing {
namespace {

namespace json = boost::json;

class BanditTest : public GatewayFixture {
 protected:
  std::string BanditConfig() {
    return ConfigYaml(
               "    routing_mode: bandit\n"
               "    metrics: [{name: booked, type: binary}]\n"
               "    bandit: {metric: booked, floor: 0.1, update_interval: 1s}\n",
               "50, 50");
  }

  json::object Experiment() {
    const auto r = Admin("GET", "/api/v1/experiments/hyatt_booking_ab");
    EXPECT_EQ(r.status, 200) << r.body;
    boost::system::error_code ec;
    json::value v = json::parse(r.body, ec);
    return ec || !v.is_object() ? json::object() : v.as_object();
  }
  static int64_t Version(const json::object& e) { return e.at("runtime").at("config_version").to_number<int64_t>(); }
  static double Weight(const json::object& e, int arm) {
    return e.at("runtime").at("current_weights").as_array().at(arm).to_number<double>();
  }

  // `n` requests, each one's outcome (booked with the arm's true rate) posted by request id.
  // Returns the requests each arm served.
  std::array<int, 2> Round(int n, common::Xoshiro256& rng, int& next_user) {
    std::array<int, 2> served{0, 0};
    std::string outcomes;
    for (int i = 0; i < n; ++i) {
      const auto r = Predict(R"({"user_id": "u)" + std::to_string(next_user++) +
                             R"(", "dataframe_split": {"columns": ["x"], "data": [[1]]}})");
      EXPECT_EQ(r.status, 200) << r.body;
      const std::string arm = r.headers.count("x-abgate-arm") ? r.headers.at("x-abgate-arm") : "";
      const int a = arm == "B" ? 1 : 0;
      ++served[a];
      const double rate = a == 1 ? 0.25 : 0.05;
      const int booked = rng.NextDouble() < rate ? 1 : 0;
      outcomes += R"({"experiment": "hyatt_booking_ab", "metric": "booked", "value": )" + std::to_string(booked) +
                  R"(, "request_id": ")" + r.headers.at("x-request-id") + "\"}\n";
    }
    const auto posted = RawRequest(gateway_->port(), "POST", "/outcomes", outcomes, "application/x-ndjson");
    EXPECT_EQ(posted.status, 200) << posted.body;
    return served;
  }

  // Waits (10 s deadline) until the bandit has committed a config version above `version`.
  json::object WaitForUpdate(int64_t version) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    json::object e = Experiment();
    while (Version(e) <= version && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling an observable condition
      e = Experiment();
    }
    EXPECT_GT(Version(e), version) << "no bandit update within 10 s";
    return e;
  }
};

TEST_F(BanditTest, Issue18BetterArmGetsTheTrafficWorseKeepsItsFloor) {
  StartGateway(BanditConfig());
  common::Xoshiro256 rng(18);
  int next_user = 0;
  json::object e = Experiment();
  EXPECT_DOUBLE_EQ(Weight(e, 0), 0.5);
  std::array<int, 2> last{0, 0};
  for (int round = 0; round < 8; ++round) {
    last = Round(250, rng, next_user);
    e = WaitForUpdate(Version(e));
  }
  // B (25%) ends above 60% of the traffic; A (5%) keeps its floor of 10%, no less.
  EXPECT_GT(Weight(e, 1), 0.6);
  EXPECT_GE(Weight(e, 0), 0.1 - 1e-12);
  EXPECT_NEAR(Weight(e, 0) + Weight(e, 1), 1, 1e-9);
  EXPECT_GT(last[1], 250 * 0.6 - 40) << "the last round's requests follow the weights";
  EXPECT_GT(last[0], 0) << "the worse arm still gets traffic";

  // Every exposure records the chance of the arm it was drawn for, as served then; the last
  // ones the weights now in force.
  EXPECT_EQ(QueryInt("SELECT count(*) FROM exposures WHERE routing_mode = 'bandit' AND assignment_probability IS NULL"),
            0);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM exposures WHERE assignment_probability <= 0 OR assignment_probability > 1"),
            0);
  Round(20, rng, next_user);
  gateway_->FlushEventsForTest();
  const auto probabilities = store_->QueryStrings(
      "SELECT DISTINCT assigned_arm || '=' || CAST(round(assignment_probability * 10000) AS INTEGER) FROM exposures "
      "WHERE ts >= (SELECT max(ts) FROM exposures) - 50000 ORDER BY 1");
  ASSERT_FALSE(probabilities.empty());
  for (const auto& p : probabilities) {
    const int arm = p[0] == 'B' ? 1 : 0;
    EXPECT_EQ(p.substr(2), std::to_string(std::lround(Weight(e, arm) * 10000))) << p;
  }

  // Not audited one by one: a compact weight history, one row per update, instead.
  EXPECT_GE(QueryInt("SELECT count(*) FROM bandit_weights WHERE experiment = 'hyatt_booking_ab'"), 8);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM audit_log WHERE experiment = 'hyatt_booking_ab'"), 0);

  // The results endpoint (what the dashboard shows) analyses the bandit by IPW from the recorded
  // probabilities: each arm's estimate is the self-normalised IPW mean of the stored exposures and
  // outcomes, no fixed-horizon comparison, no winner, and P(best) for B. That the intervals cover
  // the true rates is a statistical property, checked with a fixed seed in the simulation test
  // (stats and gateway weight function); here the gateway's routing draws are not seeded, and a
  // 95% Wald interval around a heavily weighted IPW mean misses in a few percent of runs (a clean
  // clone's CI saw A at 0.0136 [0.0001, 0.027] for a true 5%: one late success where 6.7 were
  // expected), so this end-to-end test checks the plumbing exactly and the estimate loosely.
  const auto expected_ipw = store_->QueryStrings(
      "SELECT e.assigned_arm || '=' || (sum(coalesce(o.v, 0) / e.assignment_probability) / "
      "sum(1 / e.assignment_probability)) FROM exposures e LEFT JOIN (SELECT request_id, sum(value) AS v FROM "
      "outcomes WHERE metric = 'booked' GROUP BY request_id) o ON o.request_id = e.request_id "
      "WHERE e.experiment = 'hyatt_booking_ab' AND e.in_experiment = 1 GROUP BY e.assigned_arm ORDER BY 1");
  ASSERT_EQ(expected_ipw.size(), 2u);
  json::object report;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    const auto r = Admin("GET", "/api/v1/experiments/hyatt_booking_ab/results");
    ASSERT_EQ(r.status, 200) << r.body;
    report = json::parse(r.body).as_object();
    if (report.contains("bandit")) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // polling an observable condition
  }
  ASSERT_TRUE(report.contains("bandit")) << json::serialize(report);
  const auto& bandit = report.at("bandit").as_object();
  EXPECT_EQ(bandit.at("without_probability").to_number<int64_t>(), 0);
  const double truth[] = {0.05, 0.25};
  for (int a = 0; a < 2; ++a) {
    const auto& arm = bandit.at("arms").as_array().at(a).as_object();
    ASSERT_TRUE(arm.contains("ipw_ci")) << json::serialize(arm);
    const double mean = arm.at("ipw_mean").to_number<double>();
    EXPECT_NEAR(mean, std::stod(expected_ipw[a].substr(2)), 1e-9) << expected_ipw[a] << " " << json::serialize(arm);
    EXPECT_LE(arm.at("ipw_ci").as_array()[0].to_number<double>(), mean) << json::serialize(arm);
    EXPECT_GE(arm.at("ipw_ci").as_array()[1].to_number<double>(), mean) << json::serialize(arm);
    EXPECT_NEAR(mean, truth[a], 0.1) << json::serialize(arm);
    EXPECT_NEAR(arm.at("weight").to_number<double>(), Weight(e, a), 1e-9);
  }
  EXPECT_GT(bandit.at("arms").as_array().at(1).at("prob_best").to_number<double>(), 0.99);
  EXPECT_TRUE(report.at("comparisons").as_array().empty());
  const auto& decision = report.at("decision").as_object();
  EXPECT_EQ(decision.at("action").as_string(), "continue");
  EXPECT_TRUE(!decision.contains("winner") || decision.at("winner").is_null());
  EXPECT_NE(std::string(decision.at("reason").as_string()).find("fixed-horizon p-values do not apply"),
            std::string::npos);

  // `abgate assign` prints the chances the gateway serves now, read from the store.
  gateway_->FlushEventsForTest();
  const std::string config_path = (dir_ / "bandit.yaml").string();
  {
    std::FILE* f = std::fopen(config_path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    const std::string yaml = BanditConfig();
    std::fwrite(yaml.data(), 1, yaml.size(), f);
    std::fclose(f);
  }
  Subprocess assign({ABGATE_BINARY, "assign", "--config", config_path, "--experiment", "hyatt_booking_ab", "u1"});
  ASSERT_EQ(assign.Wait(20000), 0) << assign.stderr_text();
  char expected[128];
  std::snprintf(expected, sizeof expected, "u1\tbandit: A=%.6g B=%.6g\n", Weight(e, 0), Weight(e, 1));
  EXPECT_EQ(assign.stdout_text(), expected);

  // Hand-set weights are refused while the bandit sets them.
  const auto refused = Admin("POST", "/api/v1/experiments/hyatt_booking_ab/weights", R"({"weights": [50, 50]})");
  EXPECT_EQ(refused.status, 409) << refused.body;
  EXPECT_NE(refused.body.find("is a bandit"), std::string::npos) << refused.body;
}

// Issue 15: each update reads only what was stored since the previous one (the experiment's
// kept follower), and its weights are what a full read of the store gives. Several rounds of
// traffic, with outcomes for the previous round's requests arriving late (units the follower
// already counted change); after each round, an update that began after everything was stored
// is checked against a full read: its evidence, and its weights recomputed from the full read's
// evidence with the same seed (the update's time).
TEST_F(BanditTest, Issue15UpdatesReadIncrementallyAndEqualAFullRead) {
  StartGateway(BanditConfig());
  common::Xoshiro256 rng(15);
  int next_user = 0;
  std::string late;  // outcomes held back to the next round
  gateway::Gateway::BanditReads after_first{};
  for (int round = 0; round < 4; ++round) {
    std::string outcomes = late;
    late.clear();
    for (int i = 0; i < 120; ++i) {
      const auto r = Predict(R"({"user_id": "u)" + std::to_string(next_user++) +
                             R"(", "dataframe_split": {"columns": ["x"], "data": [[1]]}})");
      ASSERT_EQ(r.status, 200) << r.body;
      const int a = r.headers.count("x-abgate-arm") && r.headers.at("x-abgate-arm") == "B" ? 1 : 0;
      const int booked = rng.NextDouble() < (a == 1 ? 0.3 : 0.1) ? 1 : 0;
      (i < 30 ? late : outcomes) += R"({"experiment": "hyatt_booking_ab", "metric": "booked", "value": )" +
                                    std::to_string(booked) + R"(, "request_id": ")" + r.headers.at("x-request-id") +
                                    "\"}\n";
    }
    const auto posted = RawRequest(gateway_->port(), "POST", "/outcomes", outcomes, "application/x-ndjson");
    ASSERT_EQ(posted.status, 200) << posted.body;
    gateway_->FlushEventsForTest();
    const int64_t stored_us = common::SystemClock::Get().NowUs();
    // The second update stamped after everything was stored began reading after it (updates
    // are an interval apart; a read takes milliseconds).
    const std::string after = "SELECT CAST(ts AS TEXT) FROM bandit_weights WHERE experiment = 'hyatt_booking_ab' AND ts > " +
                              std::to_string(stored_us) + " ORDER BY ts";
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    std::vector<std::string> stamps = store_->QueryStrings(after);
    while (stamps.size() < 2 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling an observable condition
      stamps = store_->QueryStrings(after);
    }
    ASSERT_GE(stamps.size(), 2u) << "round " << round << ": no second update within 15 s";
    const std::string ts = stamps[1];
    const auto weights = store_->QueryStrings("SELECT weights FROM bandit_weights WHERE ts = " + ts);
    const auto evidence = store_->QueryStrings("SELECT evidence FROM bandit_weights WHERE ts = " + ts);
    ASSERT_EQ(weights.size(), 1u);
    ASSERT_EQ(evidence.size(), 1u);

    // A full read of the store as it is now (no traffic since the flush).
    const config::ExperimentConfig cfg = gateway_->snapshot()->Find("hyatt_booking_ab")->config;
    auto full = analysis::ReadConfiguredExperiment(store_->uri(), cfg, "request",
                                                   {{"booked", analysis::MetricKind::kBinary}});
    ASSERT_TRUE(full.ok()) << full.status();
    ASSERT_TRUE(full->units.size() > 0 && !full->state);
    const auto expected = analysis::BanditEvidence(*full);
    const json::object got = json::parse(evidence[0]).as_object();
    for (int a = 0; a < 2; ++a) {
      const auto& arm = got.at(a == 0 ? "A" : "B").as_object();
      EXPECT_EQ(arm.at("trials").to_number<int64_t>(), expected[a].trials) << "round " << round << " " << evidence[0];
      EXPECT_EQ(arm.at("successes").to_number<int64_t>(), expected[a].successes)
          << "round " << round << " " << evidence[0];
    }
    int64_t total = 0;
    for (const auto& e : expected) total += e.trials;
    EXPECT_EQ(total, 120 * (round + 1));
    auto recomputed = gateway::ComputeBanditWeights(cfg, expected, std::stoll(ts));
    ASSERT_TRUE(recomputed.ok()) << recomputed.status();
    const json::object served = json::parse(weights[0]).as_object();
    EXPECT_EQ(served.at("A").to_number<double>(), recomputed->served[0]) << "round " << round << " " << weights[0];
    EXPECT_EQ(served.at("B").to_number<double>(), recomputed->served[1]) << "round " << round << " " << weights[0];
    if (round == 0) after_first = gateway_->bandit_reads_for_test();
  }
  // Every update after the first round's read scanned only what was new (SQLite and PostgreSQL).
  const auto reads = gateway_->bandit_reads_for_test();
  EXPECT_GE(reads.reads - after_first.reads, 6);
  EXPECT_EQ(reads.incremental - after_first.incremental, reads.reads - after_first.reads);
}

// The same pieces without processes, in a fixed-seed simulation: the gateway's weights
// (stats::ThompsonWeights with the floor, in whole buckets), requests drawn with them and their
// probabilities recorded, and the analysis of the result (analysis::Analyze's bandit section).
TEST(BanditSimulationTest, Issue18BetterArmAbove60PercentAndIpwRecoversTheRates) {
  const std::vector<double> rates = {0.10, 0.14};
  const double floor = 0.1;
  common::Xoshiro256 rng(2026), thompson(18);
  analysis::AnalysisInput input;
  input.experiment = "sim";
  input.unit = "request";
  input.metrics = {{"booked", analysis::MetricKind::kBinary}};
  input.bandit = analysis::AnalysisInput::Bandit{floor};
  std::vector<double> weights = {0.5, 0.5};
  for (int batch = 0; batch < 30; ++batch) {
    for (int i = 0; i < 1000; ++i) {
      const int arm = rng.NextDouble() < weights[0] ? 0 : 1;
      analysis::UnitObservation u;
      u.arm = arm;
      u.propensity = static_cast<float>(weights[arm]);
      u.first_ts_us = batch * 1000 + i;
      u.values.push_back(rng.NextDouble() < rates[arm] ? 1 : 0);
      input.units.push_back(std::move(u));
    }
    input.arms = {{"A", "7", weights[0]}, {"B", "8", weights[1]}};
    auto next = stats::ThompsonWeights(analysis::BanditEvidence(input), floor, 20000, thompson);
    ASSERT_TRUE(next.ok()) << next.status();
    auto served = gateway::BanditServingWeights(*next, floor);
    ASSERT_TRUE(served.ok()) << served.status();
    for (double w : *served) EXPECT_GE(w, floor - 1e-12);
    weights = *served;
  }
  input.arms = {{"A", "7", weights[0]}, {"B", "8", weights[1]}};
  EXPECT_GT(weights[1], 0.6);
  EXPECT_NEAR(weights[0], floor, 1e-9);  // the worse arm keeps its floor, and no more

  auto report = analysis::Analyze(input);
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_TRUE(report->bandit);
  const auto& b = *report->bandit;
  ASSERT_EQ(b.arms.size(), 2u);
  for (int a = 0; a < 2; ++a) {
    ASSERT_TRUE(b.arms[a].ipw_mean) << b.arms[a].insufficient_data;
    EXPECT_LE(b.arms[a].ipw_ci->low, rates[a]) << b.arms[a].arm;
    EXPECT_GE(b.arms[a].ipw_ci->high, rates[a]) << b.arms[a].arm;
  }
  EXPECT_GT(b.arms[1].prob_best, 0.95);
  EXPECT_NEAR(b.arms[1].weight, weights[1], 1e-12);
  // No fixed-horizon comparison, and no winner declared.
  EXPECT_TRUE(report->comparisons.empty());
  EXPECT_EQ(report->decision.action, "continue");
  EXPECT_FALSE(report->decision.winner);
  EXPECT_NE(report->decision.reason.find("fixed-horizon p-values do not apply"), std::string::npos)
      << report->decision.reason;
  EXPECT_NE(report->decision.reason.find("B is best"), std::string::npos) << report->decision.reason;
  // The report survives its JSON (results endpoint, dashboard) unchanged.
  auto back = analysis::ReportFromJson(json::value(analysis::ToJson(*report)));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(json::serialize(analysis::ToJson(*back)), json::serialize(analysis::ToJson(*report)));
  EXPECT_NE(analysis::RenderText(*report).find("booked (IPW) [CI]"), std::string::npos);
}

}  // namespace
}  // namespace abgate::testing

#include "control/rollout.h"

#include "control/promotion.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace abgate::control {
namespace {

namespace json = boost::json;

config::ControlledModelConfig Model() {
  config::ControlledModelConfig m;
  m.name = "hyatt_booking_model";
  m.parsed.guardrails = {0.02, 250};
  m.plan = {{.name = "canary", .percent = 10, .min_duration_us = 10'000'000, .min_units = 100},
            {.name = "half", .percent = 50, .min_duration_us = 20'000'000, .min_units = 1000}};
  m.max_duration_us = 600'000'000;
  return m;
}

analysis::Report Report(double diff, double seq_p, bool srm = false, int64_t units_b = 600) {
  analysis::Report r;
  r.experiment = "e";
  r.control = "A";
  r.primary_metric = "booked";
  r.metrics = {"booked"};
  r.arms.resize(2);
  r.arms[0].arm = "A";
  r.arms[0].units = 600;
  r.arms[1].arm = "B";
  r.arms[1].units = units_b;
  analysis::ComparisonReport c;
  c.metric = "booked";
  c.control = "A";
  c.treatment = "B";
  c.family = analysis::Family::kPrimary;
  c.test = "two_proportion_z";
  c.diff = diff;
  c.lift = diff * 10;
  c.lift_ci = analysis::Interval{diff * 10 - 0.1, diff * 10 + 0.1};
  c.p_value = seq_p / 2;
  c.sequential_p_value = seq_p;
  c.sequential_p_value_adjusted = seq_p;
  c.sequential_family_size = 1;
  r.comparisons.push_back(c);
  r.srm.checked = true;
  r.srm.mismatch = srm;
  return r;
}

ArmHealth Healthy(int64_t attempts, int64_t failures, double latency_ms) {
  ArmHealth h{attempts, failures, {}};
  for (double le : {1.0, 10.0, 100.0, 500.0}) h.latency_buckets.emplace_back(le, latency_ms <= le ? attempts : 0);
  h.latency_buckets.emplace_back(HUGE_VAL, attempts);
  return h;
}

Look At(const analysis::Report& report, size_t step, int64_t step_s, int64_t total_s, ArmHealth b = Healthy(1000, 0, 5)) {
  Look l;
  l.report = &report;
  l.control = Healthy(1000, 0, 5);
  l.candidate = std::move(b);
  l.step = step;
  l.step_elapsed_us = step_s * 1'000'000;
  l.total_elapsed_us = total_s * 1'000'000;
  return l;
}

TEST(Rollout, WaitsThenAdvancesThenPromotesOnlyWhenSignificant) {
  const auto m = Model();
  const analysis::Report better = Report(0.03, 0.001);
  EXPECT_EQ(Evaluate(At(better, 0, 5, 5), m, 0.05).action, Action::kWait);      // step too young
  EXPECT_EQ(Evaluate(At(better, 0, 11, 11), m, 0.05).action, Action::kAdvance);
  EXPECT_EQ(Evaluate(At(better, 1, 5, 16), m, 0.05).action, Action::kWait);     // final step too young
  const Verdict promote = Evaluate(At(better, 1, 21, 32), m, 0.05);
  EXPECT_EQ(promote.action, Action::kPromote);
  EXPECT_EQ(promote.evidence.at("sequential_p_value").as_double(), 0.001);
  EXPECT_EQ(promote.evidence.at("test"), "two_proportion_z");
  const analysis::Report flat = Report(0.001, 0.6);
  EXPECT_EQ(Evaluate(At(flat, 1, 100, 200), m, 0.05).action, Action::kWait);
  EXPECT_EQ(Evaluate(At(flat, 1, 500, 600), m, 0.05).action, Action::kInconclusive);
  const analysis::Report srm = Report(0.03, 0.001, true);
  EXPECT_EQ(Evaluate(At(srm, 1, 21, 32), m, 0.05).action, Action::kWait);
}

// Issue 18 item 6: a candidate significantly worse than the champion on the same requests is
// rolled back at the end of its shadow step (with the paired numbers as evidence), unless the
// gate is off; not significantly worse advances.
TEST(Rollout, TheShadowGateRefusesACandidateWorseOffline) {
  auto m = Model();
  m.plan.insert(m.plan.begin(), {.name = "shadow", .percent = 0, .shadow_percent = 100, .min_duration_us = 10'000'000});
  analysis::Report report = Report(0, 0.9);
  analysis::ShadowEvaluation e;
  e.arm = "A";
  e.shadow_arm = "B";
  e.requests = 2000;
  e.auc = 0.74;
  e.shadow_auc = 0.69;
  e.auc_diff = -0.05;
  e.auc_p_value = 0.001;
  e.shadow_worse = true;
  report.shadow_evaluation.push_back(e);
  EXPECT_EQ(Evaluate(At(report, 0, 5, 5), m, 0.05).action, Action::kWait);  // the step is not over
  const Verdict worse = Evaluate(At(report, 0, 11, 11), m, 0.05);
  EXPECT_EQ(worse.action, Action::kRollback);
  EXPECT_NE(worse.reason.find("shadow gate"), std::string::npos) << worse.reason;
  EXPECT_EQ(worse.evidence.at("guardrail"), "shadow_evaluation");
  // The decision stored with the report says the same (it was "continue": no user saw B yet).
  EXPECT_EQ(worse.decision.action, "rollback");
  EXPECT_EQ(worse.decision.failed_arms, std::vector<std::string>{"B"});
  EXPECT_EQ(worse.decision.reason, worse.reason);
  EXPECT_EQ(worse.evidence.at("shadow_auc_diff").as_double(), -0.05);
  m.shadow_gate = false;
  EXPECT_EQ(Evaluate(At(report, 0, 11, 11), m, 0.05).action, Action::kAdvance);
  m.shadow_gate = true;
  report.shadow_evaluation[0].shadow_worse = false;
  EXPECT_EQ(Evaluate(At(report, 0, 11, 11), m, 0.05).action, Action::kAdvance);
}

TEST(Rollout, GuardrailsRollBack) {
  const auto m = Model();
  const analysis::Report fine = Report(0, 1);
  // 15% failures against none on control: significant and above 2%.
  Verdict errors = Evaluate(At(fine, 0, 1, 1, Healthy(200, 30, 5)), m, 0.05);
  EXPECT_EQ(errors.action, Action::kRollback);
  EXPECT_EQ(errors.evidence.at("guardrail"), "error_rate");
  // 1% failures is under the limit.
  EXPECT_EQ(Evaluate(At(fine, 0, 1, 1, Healthy(1000, 10, 5)), m, 0.05).action, Action::kWait);
  // Too few attempts to judge.
  EXPECT_EQ(Evaluate(At(fine, 0, 1, 1, Healthy(10, 5, 5)), m, 0.05).action, Action::kWait);
  Verdict slow = Evaluate(At(fine, 0, 1, 1, Healthy(1000, 0, 600)), m, 0.05);  // all past the 500 ms bound
  EXPECT_EQ(slow.action, Action::kRollback);
  EXPECT_EQ(slow.evidence.at("guardrail"), "p99_latency");
  // 5% of 2000 requests past 500 ms (limit 250 → checked at the 500 bound): significantly > 1%.
  ArmHealth tail = Healthy(2000, 0, 5);
  for (int i : {1, 2, 3}) tail.latency_buckets[i].second = 1900;  // le 10, 100, 500; 100 beyond
  Verdict some = Evaluate(At(fine, 0, 1, 1, tail), m, 0.05);
  EXPECT_EQ(some.action, Action::kRollback);
  // 1.2% slow over 1000 requests: above 1% but not significantly; no rollback yet.
  ArmHealth edge = Healthy(1000, 0, 5);
  for (int i : {1, 2, 3}) edge.latency_buckets[i].second = 988;
  EXPECT_EQ(Evaluate(At(fine, 0, 1, 1, edge), m, 0.05).action, Action::kWait);
  const analysis::Report worse_report = Report(-0.03, 0.001);
  Verdict worse = Evaluate(At(worse_report, 0, 1, 1), m, 0.05);
  EXPECT_EQ(worse.action, Action::kRollback);
  EXPECT_EQ(worse.evidence.at("guardrail"), "booked");
  // Worse but not significantly: keep going.
  const analysis::Report not_worse = Report(-0.03, 0.2);
  EXPECT_EQ(Evaluate(At(not_worse, 0, 11, 11), m, 0.05).action, Action::kAdvance);
}

TEST(Rollout, HealthDifferencesAndPercentiles) {
  const ArmHealth base = Healthy(100, 1, 5);
  const ArmHealth now = Healthy(300, 4, 5);
  const ArmHealth d = Since(now, base);
  EXPECT_EQ(d.attempts, 200);
  EXPECT_EQ(d.failures, 3);
  EXPECT_EQ(Since(base, now).attempts, 100);  // counters went backwards: a restarted gateway
  EXPECT_EQ(P99Ms(Healthy(100, 0, 50)), 100);
  EXPECT_EQ(P99Ms(ArmHealth{}), 0);
  auto parsed = ArmHealthFromJson(ToJson(Healthy(7, 1, 5)));
  ASSERT_TRUE(parsed.ok());
  const ArmHealth& round = *parsed;
  EXPECT_EQ(round.attempts, 7);
  EXPECT_EQ(round.latency_buckets.size(), 5u);
  EXPECT_TRUE(std::isinf(round.latency_buckets.back().first));
}

// The gateway's health reply is network data: a counter that is not a non-negative integer
// (1.5 made Boost.JSON's to_number<int64_t> throw; 1e400 arrives as inf) or a bucket bound that
// is not finite (0e400 arrives as NaN) is an error, never an exception or a NaN bound.
TEST(Rollout, HealthWithNonIntegerCountsOrNonFiniteBoundsIsRefused) {
  const char* refused[] = {
      R"({"attempts": 1.5})",
      R"({"attempts": 1e400})",
      R"({"failures": -3})",
      R"({"failures": "7"})",
      R"({"attempts": 3, "latency_ms_buckets": [{"le": 0e400, "count": 1}]})",
      R"({"attempts": 3, "latency_ms_buckets": [{"le": 1e400, "count": 1}]})",
      R"({"attempts": 3, "latency_ms_buckets": [{"le": 5, "count": 2.5}]})",
      R"({"attempts": 3, "latency_ms_buckets": [{"le": "soon", "count": 1}]})",
  };
  for (const char* text : refused) {
    auto parsed = ArmHealthFromJson(boost::json::parse(text).as_object());
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << text;
  }
  auto ok = ArmHealthFromJson(boost::json::parse(
      R"({"attempts": 4.0, "failures": 1, "latency_ms_buckets": [{"le": 5, "count": 3}, {"le": "+Inf", "count": 4}]})").as_object());
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->attempts, 4);
  EXPECT_EQ(ok->latency_buckets.size(), 2u);
  EXPECT_TRUE(std::isinf(ok->latency_buckets.back().first));
}

// Issue 12: on the same data, the controller's final step promotes exactly when
// `promote --winner auto` would (both are Decide under the experiment's policy).
TEST(Rollout, ControllerAndPromoteAutoAgreeOnTheSameData) {
  const auto m = Model();
  struct Case {
    analysis::Report report;
    ArmHealth candidate;
  };
  analysis::Report srm = Report(0.03, 0.001, true);
  srm.srm.observed = {600, 900};
  srm.srm.expected_share = {0.5, 0.5};
  const Case cases[] = {{Report(0.03, 0.001), Healthy(1000, 0, 5)},  {Report(0.03, 0.2), Healthy(1000, 0, 5)},
                        {Report(-0.03, 0.001), Healthy(1000, 0, 5)}, {srm, Healthy(1000, 0, 5)},
                        {Report(0.03, 0.001), Healthy(200, 30, 5)},  {Report(0.03, 0.001), Healthy(1000, 0, 600)},
                        {Report(0.03, 0.04), Healthy(1000, 0, 5)}};
  int promoted = 0;
  for (const auto& c : cases) {
    const Verdict v = Evaluate(At(c.report, 1, 21, 32, c.candidate), m, 0.05);
    auto winner = AutoWinner(c.report, m.parsed, {{"A", Healthy(1000, 0, 5)}, {"B", c.candidate}});
    EXPECT_EQ(v.action == Action::kPromote, winner.ok() && *winner == "B") << v.reason;
    if (!winner.ok()) {
      EXPECT_NE(std::string(winner.status().message()).find(v.decision.reason), std::string::npos);
    }
    promoted += v.action == Action::kPromote;
  }
  EXPECT_EQ(promoted, 2);
}

}  // namespace
}  // namespace abgate::control

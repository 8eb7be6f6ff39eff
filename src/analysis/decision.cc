#include "analysis/decision.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/human.h"
#include "common/strings.h"
#include "stats/sequential.h"

namespace abgate::analysis {

double P99Ms(const ServingHealth& h) {
  if (h.latency_buckets.empty()) return 0;
  const int64_t total = h.latency_buckets.back().second;
  if (total == 0) return 0;
  const double target = 0.99 * static_cast<double>(total);
  for (const auto& [le, cumulative] : h.latency_buckets) {
    if (static_cast<double>(cumulative) >= target) return le;
  }
  return std::numeric_limits<double>::infinity();
}

namespace {

using Status = GuardrailResult::Status;

// "+1.23 pp" for a binary metric's difference, "+0.457" otherwise: three significant digits, as
// the comparison table of the report prints the same difference (render.cc, Signed()).
std::string DiffText(double diff, MetricKind kind) {
  return kind == MetricKind::kBinary ? StrCat(diff >= 0 ? "+" : "", Human(100 * diff, 3), " pp")
                                     : StrCat(diff >= 0 ? "+" : "", Human(diff, 3));
}

std::string SeqPText(const ComparisonReport& c) {
  std::string out = StrCat("sequential p = ", HumanP(*c.sequential_p_value));
  if (c.sequential_p_value_adjusted && c.sequential_family_size > 1) {
    StrAppend(&out, ", Holm-adjusted over ", c.sequential_family_size, " comparisons ",
              HumanP(*c.sequential_p_value_adjusted));
  }
  return out;
}

GuardrailResult ErrorRate(const std::string& arm, const ServingHealth& a, const ServingHealth& b,
                          const std::string& control, double max_rate, double alpha) {
  GuardrailResult g;
  g.name = "error_rate";
  g.arm = arm;
  g.limit = max_rate;
  const double rate_a = a.attempts ? static_cast<double>(a.failures) / a.attempts : 0;
  const double rate_b = b.attempts ? static_cast<double>(b.failures) / b.attempts : 0;
  g.observed = rate_b;
  if (b.attempts < 20) {
    g.detail = StrCat(arm, ": ", b.attempts, " requests so far (the error-rate guardrail needs 20)");
    return g;
  }
  g.status = Status::kPass;
  g.detail = StrCat(arm, " failed ", HumanPercent(rate_b), " of ", b.attempts, " requests (max ", HumanPercent(max_rate),
                    ", ", control, " ", HumanPercent(rate_a), ")");
  if (rate_b <= max_rate) return g;
  // Binomial variance with a floor of one event, so an arm without failures still has one.
  const double pa = std::max(rate_a, 1.0 / std::max<int64_t>(a.attempts, 1));
  const double pb = std::clamp(rate_b, 1.0 / b.attempts, 1.0 - 1.0 / b.attempts);
  const double var = pb * (1 - pb) / b.attempts + (a.attempts ? pa * (1 - pa) / a.attempts : pb * (1 - pb) / b.attempts);
  auto seq = stats::MixtureSequentialTest(rate_b - rate_a, var, a.attempts + b.attempts, alpha);
  if (!seq.ok()) return g;
  g.sequential_p_value = seq->p_value;
  StrAppend(&g.detail, "; one-sided sequential p = ", HumanP(seq->p_value));
  if (seq->p_value < alpha) g.status = Status::kFail;
  return g;
}

// "p99 above the limit" means more than 1% of the arm's requests took longer than it; the share
// certainly slower (past the first histogram bound at or above the limit) is tested against 1%.
GuardrailResult P99(const std::string& arm, const ServingHealth& b, double limit_ms, double alpha) {
  GuardrailResult g;
  g.name = "p99_latency";
  g.arm = arm;
  g.limit = 0.01;
  if (b.attempts < 100 || b.latency_buckets.empty() || b.latency_buckets.back().second == 0) {
    g.detail = StrCat(arm, ": ", b.attempts, " requests so far (the p99 guardrail needs 100)");
    return g;
  }
  int64_t within = b.latency_buckets.back().second;
  for (const auto& [le, cumulative] : b.latency_buckets) {
    if (le >= limit_ms) {
      within = cumulative;
      break;
    }
  }
  const double n = static_cast<double>(b.latency_buckets.back().second);
  const double slow = static_cast<double>(n - within) / n;
  g.observed = slow;
  g.status = Status::kPass;
  g.detail = StrCat(HumanPercent(slow), " of ", arm, "'s ", b.attempts, " requests took longer than ", Human(limit_ms),
                    " ms (at most 1% may; p99 ", Human(P99Ms(b)), " ms)");
  if (slow <= 0.01) return g;
  const double share = std::clamp(slow, 1.0 / n, 1.0 - 1.0 / n);  // keeps the variance positive
  auto seq = stats::MixtureSequentialTest(slow - 0.01, share * (1 - share) / n, static_cast<int64_t>(n), alpha);
  if (!seq.ok()) return g;
  g.sequential_p_value = seq->p_value;
  StrAppend(&g.detail, "; one-sided sequential p = ", HumanP(seq->p_value));
  if (seq->p_value < alpha) g.status = Status::kFail;
  return g;
}

// The primary metric significantly worse than control. The always-valid test is two-sided;
// used one-sided (only a worse treatment fails), its p-value is conservative for that side.
GuardrailResult PrimaryWorse(const Report& r, const std::string& metric, const std::string& arm, double alpha) {
  GuardrailResult g;
  g.name = StrCat("metric:", metric);
  g.arm = arm;
  const ComparisonReport* c = r.Comparison(metric, arm);
  if (!c || !c->insufficient_data.empty() || !c->sequential_p_value) {
    g.detail = StrCat(arm, ": no data on ", metric, " yet");
    return g;
  }
  g.status = Status::kPass;
  g.observed = c->diff;
  g.sequential_p_value = c->diff < 0 ? *c->sequential_p_value : 1.0;
  const std::string diff = StrCat("diff ", DiffText(c->diff, r.KindOf(metric)));
  if (c->diff >= 0) {
    g.detail = StrCat(arm, " is not worse than ", r.control, " on ", metric, " (", diff, ")");
  } else if (*c->sequential_p_value < alpha) {
    g.status = Status::kFail;
    g.detail = StrCat(arm, " is significantly worse than ", r.control, " on ", metric, " (", diff,
                      ", one-sided sequential p = ", HumanP(*g.sequential_p_value), ")");
  } else {
    g.detail = StrCat(arm, " is not significantly worse than ", r.control, " on ", metric, " (", diff,
                      ", one-sided sequential p = ", HumanP(*g.sequential_p_value), ")");
  }
  return g;
}

}  // namespace

namespace {

// A bandit never has a fixed-horizon winner: its traffic followed the outcomes, so the tests
// behind a promotion do not apply. It keeps running (the bandit already sends most traffic to
// the arm most likely best) and says which arm that is and how sure the posterior is; only a
// failed serving guardrail (error rate, latency: counters, not the adaptive comparison) rolls
// back. Promoting a bandit's leader is a person's call (POST …/promote with the winner).
Decision DecideBandit(const Report& r, Decision d) {
  const BanditReport& b = *r.bandit;
  if (!d.failed_arms.empty()) {
    d.action = "rollback";
    for (const auto& g : d.guardrails) {
      if (g.status == GuardrailResult::Status::kFail) {
        d.reason = StrCat("bandit arm ", g.arm, " failed its ", g.name, " guardrail: ", g.detail);
        break;
      }
    }
    return d;
  }
  d.action = "continue";
  const BanditArmReport* best = nullptr;
  for (const auto& a : b.arms) {
    if (!best || a.prob_best > best->prob_best) best = &a;
  }
  if (!best || best->requests == 0) {
    d.reason = "bandit: no outcomes yet; fixed-horizon p-values do not apply to a bandit";
    return d;
  }
  std::string rate = best->ipw_mean ? StrCat(", ", b.metric, " ", Human(*best->ipw_mean), " (IPW)") : "";
  d.reason = StrCat("bandit: ", best->arm, " is best with posterior probability ", HumanChance(best->prob_best), rate,
                    ", serving ", HumanPercent(best->weight, 3),
                    " of traffic; fixed-horizon p-values do not apply to a bandit, so no winner is declared");
  return d;
}

}  // namespace

Decision Decide(const Report& r, const DecisionPolicy& policy, const std::map<std::string, ServingHealth>& serving) {
  Decision d;
  d.metric = policy.primary_metric.empty() ? r.primary_metric : policy.primary_metric;
  if (d.metric.empty() && !r.metrics.empty()) d.metric = r.metrics.front();
  const double alpha = policy.alpha;
  std::vector<std::string> treatments;
  for (const auto& a : r.arms) {
    if (a.arm != r.control) treatments.push_back(a.arm);
  }

  // Guardrails, per treatment.
  const auto control_health = serving.find(r.control);
  for (const auto& t : treatments) {
    const auto th = serving.find(t);
    if (th != serving.end()) {
      const ServingHealth none;
      const ServingHealth& ch = control_health != serving.end() ? control_health->second : none;
      if (policy.max_error_rate > 0) {
        d.guardrails.push_back(ErrorRate(t, ch, th->second, r.control, policy.max_error_rate, alpha));
      }
      if (policy.max_p99_latency_ms > 0) d.guardrails.push_back(P99(t, th->second, policy.max_p99_latency_ms, alpha));
    }
    d.guardrails.push_back(PrimaryWorse(r, d.metric, t, alpha));
  }
  for (const auto& g : d.guardrails) {
    if (g.status == Status::kFail && std::find(d.failed_arms.begin(), d.failed_arms.end(), g.arm) == d.failed_arms.end()) {
      d.failed_arms.push_back(g.arm);
    }
  }
  d.srm_mismatch = r.srm.checked && r.srm.mismatch;
  if (r.bandit) return DecideBandit(r, std::move(d));

  // The primary family: the best significant improvement among treatments that passed.
  const ComparisonReport* winner = nullptr;
  const ComparisonReport* closest = nullptr;
  int with_data = 0;
  for (const auto& t : treatments) {
    const ComparisonReport* c = r.Comparison(d.metric, t);
    if (!c || !c->insufficient_data.empty() || !c->sequential_p_value) continue;
    ++with_data;
    const double p = c->sequential_p_value_adjusted.value_or(*c->sequential_p_value);
    if (!closest || p < closest->sequential_p_value_adjusted.value_or(*closest->sequential_p_value)) closest = c;
    const bool failed = std::find(d.failed_arms.begin(), d.failed_arms.end(), t) != d.failed_arms.end();
    if (!failed && p < alpha && c->diff > 0 && (!winner || c->diff > winner->diff)) winner = c;
  }

  const GuardrailResult* first_failure = nullptr;
  for (const auto& g : d.guardrails) {
    if (g.status == Status::kFail) {
      first_failure = &g;
      break;
    }
  }
  auto rollback = [&] {
    d.action = "rollback";
    if (d.failed_arms.size() == treatments.size()) d.winner = r.control;
    d.reason = StrCat("guardrail ", first_failure->name.rfind("metric:", 0) == 0 ? first_failure->name.substr(7)
                                                                                 : first_failure->name,
                      ": ", first_failure->detail);
    // The evidence is the failing arm's primary comparison (also for a serving guardrail).
    if (const ComparisonReport* c = r.Comparison(d.metric, first_failure->arm); c && c->insufficient_data.empty()) {
      d.evidence = *c;
    }
  };
  if (d.srm_mismatch) {
    if (first_failure) {
      rollback();
      StrAppend(&d.reason, " (the split also shows a sample ratio mismatch)");
      return d;
    }
    d.action = "investigate";
    std::string observed, expected;
    for (int64_t n : r.srm.observed) StrAppend(&observed, observed.empty() ? "" : "/", n);
    for (double s : r.srm.expected_share) StrAppend(&expected, expected.empty() ? "" : "/", HumanPercent(s, 3));
    d.reason = StrCat("sample ratio mismatch: units ", observed, " against an expected ", expected, " (p = ",
                      HumanP(r.srm.p_value), "); the comparison is not trustworthy");
    if (closest) d.evidence = *closest;
    return d;
  }
  if (winner) {
    d.action = "promote";
    d.winner = winner->treatment;
    d.evidence = *winner;
    d.reason = StrCat(winner->treatment, " beats ", r.control, " on ", d.metric, " (diff ",
                      DiffText(winner->diff, r.KindOf(d.metric)),
                      winner->lift ? StrCat(", lift ", winner->lift >= 0 ? "+" : "", HumanPercent(*winner->lift, 3))
                                   : std::string(),
                      "; ", SeqPText(*winner), ")");
    return d;
  }
  if (first_failure) {
    rollback();
    return d;
  }
  d.action = "continue";
  if (with_data == 0) {
    d.reason = treatments.empty() ? StrCat("no treatment arm to compare with ", r.control)
                                  : StrCat("no data on ", d.metric, " yet");
    return d;
  }
  d.evidence = *closest;
  d.reason = StrCat("no significant difference on ", d.metric, " yet (", closest->treatment, " vs ", r.control, ": diff ",
                    DiffText(closest->diff, r.KindOf(d.metric)), ", ", SeqPText(*closest), ")");
  if (with_data < static_cast<int>(treatments.size())) {
    StrAppend(&d.reason, "; no data yet for ", static_cast<int>(treatments.size()) - with_data, " arm(s)");
  }
  return d;
}

}  // namespace abgate::analysis

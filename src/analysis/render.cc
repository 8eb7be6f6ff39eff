// Text and HTML renderings of the analysis report. Numbers for people: at most 4 significant
// digits (common/human.h), columns sized to their content. The HTML is one self-contained
// file: inline CSS and SVG, no scripts, no network fetches.
#include <algorithm>
#include <cmath>
#include <string>

#include <boost/json.hpp>

#include "absl/strings/str_format.h"
#include "analysis/analysis.h"
#include "common/human.h"
#include "common/strings.h"

namespace abgate::analysis {

namespace {

std::string Signed(double x, int significant = 3) { return StrCat(x >= 0 ? "+" : "", Human(x, significant)); }

std::string FormatMetric(const MetricSummary& m) {
  if (!m.insufficient_data.empty() || !m.mean) return m.n == 0 ? "no data" : "insufficient data";
  const bool percent = m.kind == MetricKind::kBinary;
  auto f = [&](double x) { return percent ? HumanPercent(x) : Human(x); };
  std::string out = f(*m.mean);
  if (m.ci) StrAppend(&out, " [", f(m.ci->low), ", ", f(m.ci->high), "]");
  return out;
}

std::string FormatAuc(const ModelQuality& q) {
  if (!q.auc) return "insufficient data";
  std::string out = Human(*q.auc);
  if (q.auc_ci) StrAppend(&out, " [", Human(q.auc_ci->low), ", ", Human(q.auc_ci->high), "]");
  return out;
}

std::string Escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

std::string Diff(const ComparisonReport& c, MetricKind kind) {
  if (!c.insufficient_data.empty()) return c.insufficient_data.rfind("no data", 0) == 0 ? "no data" : "insufficient data";
  if (kind == MetricKind::kBinary && c.metric != "auc") {
    return StrCat(Signed(100 * c.diff), " pp [", Signed(100 * c.diff_ci.low), ", ", Signed(100 * c.diff_ci.high), "]");
  }
  return StrCat(Signed(c.diff), " [", Signed(c.diff_ci.low), ", ", Signed(c.diff_ci.high), "]");
}

std::string Lift(const ComparisonReport& c) {
  if (!c.lift || !c.lift_ci) return "-";
  return StrCat(Signed(100 * *c.lift), "% [", Signed(100 * c.lift_ci->low), ", ", Signed(100 * c.lift_ci->high), "]");
}

std::string P(const std::optional<double>& p) { return p ? HumanP(*p) : "-"; }

// One line per CUPED-adjusted comparison: what the adjustment did, and the raw numbers.
std::string CupedLine(const ComparisonReport& c, MetricKind kind) {
  const CupedReport& k = *c.cuped;
  const std::string head = StrCat("CUPED ", c.treatment, " vs ", c.control, " on ", c.metric, " (covariate ", k.covariate,
                                  " before first exposure): ");
  if (!k.applied) return StrCat(head, "not applied, unadjusted test shown -- ", k.not_applied);
  ComparisonReport raw;
  raw.metric = c.metric;
  raw.diff = k.unadjusted_diff;
  raw.diff_ci = k.unadjusted_diff_ci;
  return StrCat(head, "variance of the difference ", Signed(-100 * k.variance_reduction), "%, theta ", Human(k.theta),
                "; adjusted ", Diff(c, kind), ", ", HumanPIs(c.p_value),
                c.family == Family::kPrimary ? " (shown above; the decision reads it)" : " (shown above)", "; unadjusted ",
                Diff(raw, kind), ", ", HumanPIs(k.unadjusted_p_value));
}

// A table whose columns are as wide as their widest cell.
class Table {
 public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  std::string Render(std::string_view indent = "") const {
    std::vector<size_t> width;
    for (const auto& row : rows_) {
      if (width.size() < row.size()) width.resize(row.size());
      for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], Utf8Width(row[i]));
    }
    std::string out;
    for (const auto& row : rows_) {
      std::string line(indent);
      for (size_t i = 0; i < row.size(); ++i) {
        line += row[i];
        if (i + 1 < row.size()) line.append(width[i] - Utf8Width(row[i]) + 2, ' ');
      }
      out += line + "\n";
    }
    return out;
  }

 private:
  static size_t Utf8Width(std::string_view s) {
    size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
  }
  std::vector<std::vector<std::string>> rows_;
};

std::string SrmLine(const SrmReport& srm) {
  if (!srm.checked) return StrCat("SRM: not checked: ", srm.reason);
  std::string observed, expected;
  for (int64_t n : srm.observed) StrAppend(&observed, observed.empty() ? "" : "/", n);
  for (double s : srm.expected_share) StrAppend(&expected, expected.empty() ? "" : "/", HumanPercent(s, 3));
  return StrCat("SRM: units ", observed, ", expected ", expected, ", chi2 ", Human(srm.chi2), ", p = ", HumanP(srm.p_value),
                " -> ", srm.mismatch ? "MISMATCH (do not trust the comparison)" : "ok",
                srm.period.empty() ? std::string() : StrCat(" (", srm.period, ")"),
                srm.note.empty() ? std::string() : StrCat("; ", srm.note));
}

// "concluded: promoted B (v2) at 2026-11-27T23:04:56Z -- B beats A on booked (…)"
std::string ConclusionLine(const Conclusion& c) {
  std::string what = c.action == "promote" ? StrCat("promoted ", c.winner) : StrCat("rolled back to ", c.winner);
  if (!c.winner_version.empty()) StrAppend(&what, " (v", c.winner_version, ")");
  return StrCat("concluded: ", what, " at ", HumanUtc(c.at_us), c.reason.empty() ? std::string() : " -- " + c.reason,
                "; the analysis compares the arms as tested (control ", c.tested_control, ")");
}

// "<label>: promote B -- <reason>"; the label says whether the rule decided ("decision") or only
// reads data the experiment's conclusion came after ("decision rule on this data").
std::string DecisionLine(const Decision& d, std::string_view label) {
  std::string what = d.action;
  if (d.action == "rollback") {
    std::string arms;
    for (const auto& a : d.failed_arms) StrAppend(&arms, arms.empty() ? "" : ", ", a);
    if (!arms.empty()) StrAppend(&what, " ", arms);
    if (d.winner) StrAppend(&what, " (", *d.winner, " stays)");
  } else if (d.winner) {
    StrAppend(&what, " ", *d.winner);
  }
  return StrCat(label, ": ", what, " -- ", d.reason);
}

}  // namespace

std::string ShadowLine(const ShadowSummary& s) {
  return StrCat("shadow: ", s.requests, " requests served by ", s.arm, " were also scored by ", s.shadow_arm, " (",
                s.shadow_failures, " failed); predictions disagree on ",
                s.disagreement ? HumanPercent(*s.disagreement, 3) : std::string("-"), ", score correlation ",
                s.score_correlation ? Human(*s.score_correlation, 3) : std::string("-"), "; p99 latency ",
                Human(s.primary_latency_ms.p99, 3), " ms served vs ", Human(s.shadow_latency_ms.p99, 3), " ms shadow");
}

std::string ShadowEvaluationLine(const ShadowEvaluation& e) {
  const std::string head = StrCat("shadow evaluation: ", e.shadow_arm, " (shadow) vs ", e.arm, " (served) on ",
                                  WithThousands(e.requests), " requests with outcomes (", WithThousands(e.positives),
                                  " positive)");
  if (!e.insufficient_data.empty()) return StrCat(head, ": insufficient data -- ", e.insufficient_data);
  const std::string verdict = e.shadow_worse    ? StrCat(e.shadow_arm, " is significantly worse offline")
                              : e.shadow_better ? StrCat(e.shadow_arm, " is significantly better offline")
                                                : std::string("no significant difference offline");
  return StrCat(head, ": AUC ", Human(e.shadow_auc), " vs ", Human(e.auc), ", diff ", Signed(e.auc_diff), " [",
                Signed(e.auc_diff_ci.low), ", ", Signed(e.auc_diff_ci.high), "], ", HumanPIs(e.auc_p_value),
                " (paired DeLong); log loss ", Human(e.shadow_log_loss), " vs ", Human(e.log_loss), ", diff ",
                Signed(e.log_loss_diff), " [", Signed(e.log_loss_diff_ci.low), ", ", Signed(e.log_loss_diff_ci.high),
                "], ", HumanPIs(e.log_loss_p_value), " -- ", verdict);
}

namespace {
// The bandit section: per arm its traffic now, requests, IPW rate with CI, and P(best).
std::string BanditText(const BanditReport& b) {
  Table t({"arm", "traffic now", "requests", StrCat(b.metric, " (IPW) [CI]"), "P(best)"});
  for (const auto& a : b.arms) {
    t.Add({a.arm, HumanPercent(a.weight, 3), WithThousands(a.requests),
           a.ipw_mean ? StrCat(Human(*a.ipw_mean), " [", Human(a.ipw_ci->low), ", ", Human(a.ipw_ci->high), "]")
                      : StrCat("- (", a.insufficient_data, ")"),
           HumanChance(a.prob_best)});
  }
  std::string out = StrCat("bandit on ", b.metric, " (Thompson sampling, floor ", HumanPercent(b.floor, 3), ")\n");
  out += t.Render();
  out += StrCat("(", b.note, ")\n");
  if (b.without_probability > 0) {
    out += StrCat("requests without a recorded assignment probability (overrides, older rows; not in IPW): ",
                  b.without_probability, "\n");
  }
  return out;
}
}  // namespace

std::string RenderText(const Report& r) {
  std::string out = StrCat("experiment ", r.experiment, "   unit: ", r.unit, "   control: ", r.control, "   alpha ",
                           Human(r.alpha), r.window.empty() ? std::string() : StrCat("   data: ", r.window), "\n");
  std::string secondary;
  for (const auto& m : r.metrics) {
    if (m != r.primary_metric) StrAppend(&secondary, secondary.empty() ? "" : ", ", m);
  }
  const bool any_quality = std::any_of(r.arms.begin(), r.arms.end(), [](const auto& a) { return a.quality.has_value(); });
  if (any_quality) StrAppend(&secondary, secondary.empty() ? "" : ", ", "auc");
  out += StrCat("primary metric: ", r.primary_metric, " (decides; Holm across the treatments)",
                secondary.empty() ? std::string() : StrCat("   secondary: ", secondary, " (", r.adjustment, ", never decide)"),
                "\n\n");

  std::vector<std::string> head = {"arm", "version", "units", "exposures"};
  for (const auto& m : r.metrics) head.push_back(m);
  if (any_quality) head.push_back("auc");
  Table arms(head);
  for (const auto& a : r.arms) {
    std::vector<std::string> row = {a.arm, a.model_version.empty() ? "-" : a.model_version, WithThousands(a.units),
                                    WithThousands(a.exposures)};
    for (const auto& m : r.metrics) {
      const auto* s = a.Metric(m);
      row.push_back(s ? FormatMetric(*s) : "-");
    }
    if (any_quality) row.push_back(a.quality ? FormatAuc(*a.quality) : "-");
    arms.Add(std::move(row));
  }
  out += arms.Render();

  Table cmp({"comparison", "metric", "family", "diff [CI]", "lift [CI]", "p", "p adj", "seq p", "seq p adj", "P(beat)",
             "significant"});
  for (const auto& c : r.comparisons) {
    const bool data = c.insufficient_data.empty();
    cmp.Add({StrCat(c.treatment, " vs ", c.control), c.metric, std::string(FamilyName(c.family)),
             Diff(c, r.KindOf(c.metric)), data ? Lift(c) : "-", data ? HumanP(c.p_value) : "-",
             data ? HumanP(c.p_value_adjusted) : "-", data ? P(c.sequential_p_value) : "-",
             data ? P(c.sequential_p_value_adjusted) : "-",
             c.chance_to_beat ? HumanChance(*c.chance_to_beat) : "-", c.significant ? "yes" : "no"});
  }
  if (r.bandit) {
    out += "\n" + BanditText(*r.bandit);
  } else {
    out += "\n" + cmp.Render();
    out += "(seq p: always-valid sequential p-value; adj: adjusted within its family; significant: seq p adj < alpha)\n";
  }
  for (const auto& c : r.comparisons) {
    if (c.cuped && c.insufficient_data.empty()) out += CupedLine(c, r.KindOf(c.metric)) + "\n";
  }
  for (const auto& c : r.chi_squared) {
    if (c.insufficient_data.empty()) {
      out += StrCat("chi-squared across all arms on ", c.metric, ": ", Human(c.statistic), " (df ", c.df,
                    "), p = ", HumanP(c.p_value), "\n");
    }
  }
  out += "\n" + SrmLine(r.srm) + "\n";
  out += StrCat("units seen in more than one arm (excluded): ", r.multiple_exposure_units, "\n");
  if (r.maturing_units > 0) {
    out += StrCat("units too recent for their outcomes to be complete (left out): ", r.maturing_units, "\n");
  }
  for (const auto& g : r.decision.guardrails) {
    if (g.status == GuardrailResult::Status::kNotChecked && g.detail.empty()) continue;
    out += StrCat("guardrail ", g.name.rfind("metric:", 0) == 0 ? g.name.substr(7) : g.name, " (", g.arm,
                  "): ", GuardrailStatusName(g.status), " -- ", g.detail, "\n");
  }
  if (r.conclusion) {
    // Ended: how, then what the rule reads in the data shown (which can differ: other window).
    out += ConclusionLine(*r.conclusion) + "\n";
    out += DecisionLine(r.decision, "decision rule on this data") + "\n";
  } else {
    out += DecisionLine(r.decision, "decision") + "\n";
  }
  if (r.shadow) out += ShadowLine(*r.shadow) + "\n";
  for (const auto& e : r.shadow_evaluation) out += ShadowEvaluationLine(e) + "\n";
  return out;
}

namespace {

// Dot-and-whisker plot of one metric's per-arm mean and CI.
std::string MeansPlot(const Report& r, const std::string& metric) {
  struct Row {
    std::string arm;
    double mean, lo, hi;
  };
  std::vector<Row> rows;
  bool percent = false;
  for (const auto& a : r.arms) {
    const auto* m = a.Metric(metric);
    if (!m || !m->mean || !m->ci) continue;
    percent = m->kind == MetricKind::kBinary;
    rows.push_back({a.arm, *m->mean, m->ci->low, m->ci->high});
  }
  if (rows.empty()) return "";
  double lo = rows[0].lo, hi = rows[0].hi;
  for (const auto& row : rows) {
    lo = std::min(lo, row.lo);
    hi = std::max(hi, row.hi);
  }
  const double pad = (hi - lo) * 0.1 + 1e-12;
  lo -= pad;
  hi += pad;
  auto label = [&](double v) { return percent ? HumanPercent(v, 3) : Human(v); };
  const int w = 560, left = 60, row_h = 34, h = row_h * static_cast<int>(rows.size()) + 30;
  auto x = [&](double v) { return left + (v - lo) / (hi - lo) * (w - left - 20); };
  std::string svg = absl::StrFormat("<svg width=\"%d\" height=\"%d\" role=\"img\" aria-label=\"%s per arm\">", w, h, Escape(metric));
  for (size_t i = 0; i < rows.size(); ++i) {
    const double y = 20 + row_h * static_cast<double>(i);
    svg += absl::StrFormat("<text x=\"4\" y=\"%.1f\" class=\"lbl\">%s</text>", y + 4, Escape(rows[i].arm));
    svg += absl::StrFormat("<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" class=\"ci\"/>", x(rows[i].lo), x(rows[i].hi), y, y);
    svg += absl::StrFormat("<circle cx=\"%.1f\" cy=\"%.1f\" r=\"5\" class=\"pt\"/>", x(rows[i].mean), y);
    svg += absl::StrFormat("<text x=\"%.1f\" y=\"%.1f\" class=\"val\">%s</text>", x(rows[i].mean), y - 8, label(rows[i].mean));
  }
  svg += absl::StrFormat("<text x=\"%d\" y=\"%d\" class=\"axis\">%s</text><text x=\"%d\" y=\"%d\" class=\"axis\" text-anchor=\"end\">%s</text>",
                         left, h - 4, label(lo), w - 20, h - 4, label(hi));
  return svg + "</svg>";
}

// Cumulative lift with its confidence-sequence band, one panel per treatment.
std::string LiftPlot(const TimelineSeries& series) {
  const auto& points = series.points;
  if (points.size() < 2) return "<p>Not enough data for a timeline yet.</p>";
  double lo = 0, hi = 0, max_units = 0;
  for (const auto& p : points) {
    lo = std::min({lo, p.ci.low, p.lift});
    hi = std::max({hi, p.ci.high, p.lift});
    max_units = std::max(max_units, static_cast<double>(p.units));
  }
  lo = std::max(lo, -1.0);
  hi = std::min(hi, 1.0);
  const int w = 560, h = 220, left = 50, bottom = 24;
  auto x = [&](double u) { return left + u / max_units * (w - left - 10); };
  auto y = [&](double v) { return 10 + (hi - std::clamp(v, lo, hi)) / (hi - lo + 1e-12) * (h - bottom - 10); };
  std::string band_top, band_bottom, line;
  for (const auto& p : points) {
    const double u = static_cast<double>(p.units);
    band_top += absl::StrFormat("%.1f,%.1f ", x(u), y(p.ci.high));
    line += absl::StrFormat("%.1f,%.1f ", x(u), y(p.lift));
  }
  for (auto it = points.rbegin(); it != points.rend(); ++it) {
    band_bottom += absl::StrFormat("%.1f,%.1f ", x(static_cast<double>(it->units)), y(it->ci.low));
  }
  std::string svg = absl::StrFormat("<svg width=\"%d\" height=\"%d\" role=\"img\" aria-label=\"cumulative lift\">", w, h);
  svg += absl::StrFormat("<polygon points=\"%s%s\" class=\"band\"/>", band_top, band_bottom);
  svg += absl::StrFormat("<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" class=\"zero\"/>", left, w - 10, y(0), y(0));
  svg += absl::StrFormat("<polyline points=\"%s\" class=\"lift\"/>", line);
  svg += absl::StrFormat("<text x=\"2\" y=\"14\" class=\"axis\">%s%%</text><text x=\"2\" y=\"%d\" class=\"axis\">%s%%</text>",
                         Signed(100 * hi, 2), h - bottom, Signed(100 * lo, 2));
  svg += absl::StrFormat("<text x=\"%d\" y=\"%d\" class=\"axis\" text-anchor=\"end\">%s units</text>", w - 10, h - 4,
                         WithThousands(static_cast<int64_t>(max_units)));
  return svg + "</svg>";
}

}  // namespace

std::string RenderHtml(const Report& r) {
  const Decision& d = r.decision;
  std::string html = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>abgate: " +
                     Escape(r.experiment) + "</title><style>"
                     "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;max-width:1000px}"
                     "table{border-collapse:collapse;margin:1em 0}td,th{border-bottom:1px solid #ddd;padding:4px 10px;text-align:left}"
                     ".ok{color:#176c2f}.bad{color:#b3261e;font-weight:bold}.box{padding:8px 12px;border-radius:6px;background:#f4f4f4;display:inline-block}"
                     ".ci{stroke:#555;stroke-width:2}.pt{fill:#1f5fbf}.lbl,.val,.axis{font-size:12px}.band{fill:#1f5fbf33}"
                     ".lift{fill:none;stroke:#1f5fbf;stroke-width:2}.zero{stroke:#999;stroke-dasharray:4 3}"
                     "pre{background:#f7f7f7;padding:1em;overflow:auto}</style></head><body>";
  html += "<h1>Experiment " + Escape(r.experiment) + "</h1>";
  if (r.conclusion) html += "<p class=\"box\" id=\"conclusion\"><b>" + Escape(ConclusionLine(*r.conclusion)) + "</b></p>";
  html += "<p class=\"box\"><b>" + std::string(r.conclusion ? "Decision rule on this data: " : "Decision: ") + Escape(d.action) + "</b>" +
          (d.winner ? " &mdash; winner " + Escape(*d.winner) : std::string()) + "<br>" + Escape(d.reason) + "</p>";
  html += "<p class=\"" + std::string(r.srm.mismatch ? "bad" : "ok") + "\">" + Escape(SrmLine(r.srm)) + "</p>";
  if (!d.guardrails.empty()) {
    html += "<h2>Guardrails</h2><table><tr><th>guardrail</th><th>arm</th><th>status</th><th>detail</th></tr>";
    for (const auto& g : d.guardrails) {
      html += "<tr><td>" + Escape(g.name) + "</td><td>" + Escape(g.arm) + "</td><td class=\"" +
              (g.status == GuardrailResult::Status::kFail ? "bad" : "ok") + "\">" +
              std::string(GuardrailStatusName(g.status)) + "</td><td>" + Escape(g.detail) + "</td></tr>";
    }
    html += "</table>";
  }
  html += "<h2>Per arm</h2>";
  for (const auto& m : r.metrics) {
    const std::string plot = MeansPlot(r, m);
    if (!plot.empty()) {
      html += "<h3>" + Escape(m) + (m == r.primary_metric ? " (primary)" : "") + " &mdash; mean and " +
              Human(100 * (1 - r.alpha)) + "% CI</h3>" + plot;
    }
  }
  std::string cuped;
  for (const auto& c : r.comparisons) {
    if (c.cuped && c.insufficient_data.empty()) cuped += "<li>" + Escape(CupedLine(c, r.KindOf(c.metric))) + "</li>";
  }
  if (!cuped.empty()) {
    html += "<h2>Variance reduction (CUPED)</h2><ul>" + cuped +
            "</ul><p>The adjusted effect is the one every table, plot and the decision use.</p>";
  }
  if (!r.shadow_evaluation.empty()) {
    html += "<h2>Shadow evaluation (same requests, paired)</h2><ul>";
    for (const auto& e : r.shadow_evaluation) {
      html += std::string("<li class=\"") + (e.shadow_worse ? "bad" : "ok") + "\">" + Escape(ShadowEvaluationLine(e)) + "</li>";
    }
    html += "</ul>";
  }
  if (r.bandit) {
    html += "<h2>Bandit</h2><pre>" + Escape(BanditText(*r.bandit)) + "</pre>";
  } else {
    html += "<h2>Cumulative lift with its confidence sequence</h2>";
    for (const auto& s : r.timeline) {
      html += "<h3>" + Escape(s.treatment) + " vs " + Escape(r.control) + " on " + Escape(s.metric) + "</h3>" + LiftPlot(s);
    }
    if (r.timeline.empty()) html += "<p>Not enough units for a timeline.</p>";
  }
  html += "<h2>Tables</h2><pre>" + Escape(RenderText(r)) + "</pre>";
  html += "<p>Generated by abgate analyze. The band is an anytime-valid confidence sequence (mixture SPRT), safe to watch continuously.</p>";
  return html + "</body></html>\n";
}

}  // namespace abgate::analysis

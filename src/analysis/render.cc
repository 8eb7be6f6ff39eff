// Text and HTML renderings of the analysis JSON. The HTML is one self-contained file: inline
// CSS and SVG, no scripts, no network fetches.
#include <algorithm>
#include <cmath>
#include <string>

#include <boost/json.hpp>

#include "absl/strings/str_format.h"
#include "analysis/analysis.h"
#include "common/strings.h"

namespace abgate::analysis {

namespace json = boost::json;

namespace {

double Num(const json::value& v) { return v.is_number() ? v.to_number<double>() : 0; }
std::string Str(const json::value& v) { return v.is_string() ? std::string(v.as_string()) : std::string(); }
const json::value* Get(const json::object& o, std::string_view k) { return o.if_contains(k); }

std::string FormatMetric(const json::object& m, bool percent) {
  if (Get(m, "insufficient_data")) return "insufficient data";
  const auto* mean = Get(m, "mean");
  const auto* value = Get(m, "value");
  const double x = mean ? Num(*mean) : value ? Num(*value) : 0;
  std::string out = percent ? absl::StrFormat("%.2f%%", 100 * x) : absl::StrFormat("%.4g", x);
  if (const auto* ci = Get(m, "ci")) {
    const auto& a = ci->as_array();
    out += percent ? absl::StrFormat(" [%.2f, %.2f]", 100 * Num(a[0]), 100 * Num(a[1]))
                   : absl::StrFormat(" [%.4g, %.4g]", Num(a[0]), Num(a[1]));
  }
  return out;
}

std::string Pad(std::string s, size_t width) {
  if (s.size() < width) s.append(width - s.size(), ' ');
  return s;
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

std::string PValue(const json::object& c, std::string_view key) {
  const auto* p = Get(c, key);
  if (!p) return "-";
  const double x = Num(*p);
  return x < 1e-4 ? absl::StrFormat("%.1e", x) : absl::StrFormat("%.4f", x);
}

std::string Diff(const json::object& c, bool binary) {
  if (Get(c, "insufficient_data")) return "insufficient data";
  const double d = Num(c.at("diff"));
  const auto& ci = c.at("diff_ci").as_array();
  return binary ? absl::StrFormat("%+.2fpp [%+.2f, %+.2f]", 100 * d, 100 * Num(ci[0]), 100 * Num(ci[1]))
                : absl::StrFormat("%+.4g [%+.4g, %+.4g]", d, Num(ci[0]), Num(ci[1]));
}

std::string Lift(const json::object& c) {
  const auto* l = Get(c, "lift");
  if (!l || !l->is_number()) return "-";
  const auto& ci = c.at("lift_ci").as_array();
  return absl::StrFormat("%+.1f%% [%+.1f, %+.1f]", 100 * Num(*l), 100 * Num(ci[0]), 100 * Num(ci[1]));
}

bool IsBinary(const json::object& report, const std::string& metric) {
  for (const auto& a : report.at("arms").as_array()) {
    if (const auto* m = a.at("metrics").as_object().if_contains(metric)) {
      if (const auto* t = m->as_object().if_contains("type")) return Str(*t) == "binary";
    }
  }
  return false;
}

std::vector<std::string> MetricNames(const json::object& report) {
  std::vector<std::string> names;
  for (const auto& a : report.at("arms").as_array()) {
    for (const auto& kv : a.at("metrics").as_object()) {
      if (std::find(names.begin(), names.end(), std::string(kv.key())) == names.end()) names.emplace_back(kv.key());
    }
  }
  return names;
}

std::string SrmLine(const json::object& srm) {
  if (!Get(srm, "checked") || !srm.at("checked").as_bool()) return StrCat("SRM: not checked (", Str(srm.at("reason")), ")");
  std::string observed, expected;
  for (const auto& v : srm.at("observed").as_array()) StrAppend(&observed, observed.empty() ? "" : "/", v.to_number<int64_t>());
  for (const auto& v : srm.at("expected_share").as_array()) {
    StrAppend(&expected, expected.empty() ? "" : "/", absl::StrFormat("%.1f%%", 100 * Num(v)));
  }
  return absl::StrFormat("SRM: observed %s, expected %s, chi2 %.3f, p = %.4g -> %s", observed, expected,
                         Num(srm.at("chi2")), Num(srm.at("p_value")),
                         srm.at("mismatch").as_bool() ? "MISMATCH (do not trust the comparison)" : "ok");
}

}  // namespace

std::string RenderText(const json::value& v) {
  const auto& r = v.as_object();
  std::string out = absl::StrFormat("experiment %s   unit: %s   control: %s   alpha %.3g   adjustment: %s\n\n",
                                    Str(r.at("experiment")), Str(r.at("unit")), Str(r.at("control")),
                                    Num(r.at("alpha")), Str(r.at("adjustment")));
  const auto metrics = MetricNames(r);
  std::string head = Pad("arm", 8) + Pad("version", 10) + Pad("units", 10) + Pad("exposures", 11);
  for (const auto& m : metrics) head += Pad(m, 30);
  out += head + "\n";
  for (const auto& a : r.at("arms").as_array()) {
    const auto& arm = a.as_object();
    std::string line = Pad(Str(arm.at("arm")), 8) + Pad(Str(arm.at("model_version")), 10) +
                       Pad(std::to_string(arm.at("units").to_number<int64_t>()), 10) +
                       Pad(std::to_string(arm.at("exposures").to_number<int64_t>()), 11);
    for (const auto& m : metrics) {
      const auto* mv = arm.at("metrics").as_object().if_contains(m);
      line += Pad(mv ? FormatMetric(mv->as_object(), IsBinary(r, m)) : "-", 30);
    }
    out += line + "\n";
  }
  out += "\n" + Pad("comparison", 14) + Pad("metric", 10) + Pad("diff [CI]", 30) + Pad("lift [CI]", 26) +
         Pad("p", 10) + Pad("adj p", 10) + Pad("seq p", 10) + Pad("P(beat)", 9) + "significant\n";
  for (const auto& c : r.at("comparisons").as_array()) {
    const auto& o = c.as_object();
    const std::string metric = Str(o.at("metric"));
    const auto* chance = Get(o, "chance_to_beat");
    out += Pad(StrCat(Str(o.at("treatment")), " vs ", Str(o.at("control"))), 14) + Pad(metric, 10) +
           Pad(Diff(o, IsBinary(r, metric)), 30) + Pad(Lift(o), 26) + Pad(PValue(o, "p_value"), 10) +
           Pad(PValue(o, "p_value_adjusted"), 10) + Pad(PValue(o, "sequential_p_value_adjusted"), 10) +
           Pad(chance ? absl::StrFormat("%.1f%%", 100 * Num(*chance)) : "-", 9) +
           (o.at("significant").as_bool() ? "yes" : "no") + "\n";
  }
  if (const auto* chi = Get(r, "chi_squared")) {
    for (const auto& c : chi->as_array()) {
      const auto& o = c.as_object();
      if (Get(o, "p_value")) {
        out += absl::StrFormat("\nchi-squared across all arms on %s: %.3f (df %d), p = %.4g", Str(o.at("metric")),
                               Num(o.at("statistic")), static_cast<int>(Num(o.at("df"))), Num(o.at("p_value")));
      }
    }
    out += "\n";
  }
  out += "\n" + SrmLine(r.at("srm").as_object()) + "\n";
  out += StrCat("units seen in more than one arm (excluded): ", r.at("multiple_exposure_units").to_number<int64_t>(), "\n");
  const auto& d = r.at("decision").as_object();
  out += StrCat("decision: ", Str(d.at("action")),
                d.at("winner").is_string() ? StrCat(" ", Str(d.at("winner"))) : std::string(), " -- ",
                Str(d.at("reason")), "\n");
  if (const auto* sh = r.if_contains("shadow"); sh && sh->is_object()) {
    const auto& o = sh->as_object();
    auto num = [&](std::string_view k) { return o.contains(k) ? o.at(k).to_number<double>() : 0.0; };
    const auto& lat = o.at("latency_ms").as_object();
    out += StrCat("shadow: ", Str(o.at("shadow_arm")), " mirrored ", o.at("requests").to_number<int64_t>(),
                  " requests of ", Str(o.at("arm")), " (", o.at("shadow_failures").to_number<int64_t>(),
                  " failed); disagreement ", num("disagreement") * 100, "%, score correlation ",
                  num("score_correlation"), "; p99 latency ", lat.at("primary").as_object().at("p99").to_number<double>(),
                  " ms vs ", lat.at("shadow").as_object().at("p99").to_number<double>(), " ms\n");
  }
  return out;
}

namespace {

// Dot-and-whisker plot of one metric's per-arm mean and CI.
std::string MeansPlot(const json::object& r, const std::string& metric, bool percent) {
  struct Row {
    std::string arm;
    double mean, lo, hi;
  };
  std::vector<Row> rows;
  for (const auto& a : r.at("arms").as_array()) {
    const auto* m = a.at("metrics").as_object().if_contains(metric);
    if (!m) continue;
    const auto& o = m->as_object();
    const auto* mean = Get(o, "mean") ? Get(o, "mean") : Get(o, "value");
    const auto* ci = Get(o, "ci");
    if (!mean || !ci) continue;
    rows.push_back({Str(a.at("arm")), Num(*mean), Num(ci->as_array()[0]), Num(ci->as_array()[1])});
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
  const int w = 560, left = 60, row_h = 34, h = row_h * static_cast<int>(rows.size()) + 30;
  auto x = [&](double v) { return left + (v - lo) / (hi - lo) * (w - left - 20); };
  std::string svg = absl::StrFormat("<svg width=\"%d\" height=\"%d\" role=\"img\" aria-label=\"%s per arm\">", w, h, Escape(metric));
  for (size_t i = 0; i < rows.size(); ++i) {
    const double y = 20 + row_h * static_cast<double>(i);
    svg += absl::StrFormat("<text x=\"4\" y=\"%.1f\" class=\"lbl\">%s</text>", y + 4, Escape(rows[i].arm));
    svg += absl::StrFormat("<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" class=\"ci\"/>", x(rows[i].lo), x(rows[i].hi), y, y);
    svg += absl::StrFormat("<circle cx=\"%.1f\" cy=\"%.1f\" r=\"5\" class=\"pt\"/>", x(rows[i].mean), y);
    svg += absl::StrFormat("<text x=\"%.1f\" y=\"%.1f\" class=\"val\">%s</text>", x(rows[i].mean), y - 8,
                           percent ? absl::StrFormat("%.2f%%", 100 * rows[i].mean) : absl::StrFormat("%.4g", rows[i].mean));
  }
  svg += absl::StrFormat("<text x=\"%d\" y=\"%d\" class=\"axis\">%s</text><text x=\"%d\" y=\"%d\" class=\"axis\" text-anchor=\"end\">%s</text>",
                         left, h - 4, percent ? absl::StrFormat("%.2f%%", 100 * lo) : absl::StrFormat("%.4g", lo), w - 20, h - 4,
                         percent ? absl::StrFormat("%.2f%%", 100 * hi) : absl::StrFormat("%.4g", hi));
  return svg + "</svg>";
}

// Cumulative lift with its confidence-sequence band, one panel per treatment.
std::string LiftPlot(const json::object& series) {
  const auto& points = series.at("points").as_array();
  if (points.size() < 2) return "<p>Not enough data for a timeline yet.</p>";
  double lo = 0, hi = 0, max_units = 0;
  for (const auto& p : points) {
    const auto& ci = p.at("ci").as_array();
    lo = std::min({lo, Num(ci[0]), Num(p.at("lift"))});
    hi = std::max({hi, Num(ci[1]), Num(p.at("lift"))});
    max_units = std::max(max_units, Num(p.at("units")));
  }
  lo = std::max(lo, -1.0);
  hi = std::min(hi, 1.0);
  const int w = 560, h = 220, left = 50, bottom = 24;
  auto x = [&](double u) { return left + u / max_units * (w - left - 10); };
  auto y = [&](double v) { return 10 + (hi - std::clamp(v, lo, hi)) / (hi - lo + 1e-12) * (h - bottom - 10); };
  std::string band_top, band_bottom, line;
  for (const auto& p : points) {
    const double u = Num(p.at("units"));
    const auto& ci = p.at("ci").as_array();
    band_top += absl::StrFormat("%.1f,%.1f ", x(u), y(Num(ci[1])));
    line += absl::StrFormat("%.1f,%.1f ", x(u), y(Num(p.at("lift"))));
  }
  for (auto it = points.rbegin(); it != points.rend(); ++it) {
    band_bottom += absl::StrFormat("%.1f,%.1f ", x(Num(it->at("units"))), y(Num(it->at("ci").as_array()[0])));
  }
  std::string svg = absl::StrFormat("<svg width=\"%d\" height=\"%d\" role=\"img\" aria-label=\"cumulative lift\">", w, h);
  svg += absl::StrFormat("<polygon points=\"%s%s\" class=\"band\"/>", band_top, band_bottom);
  svg += absl::StrFormat("<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" class=\"zero\"/>", left, w - 10, y(0), y(0));
  svg += absl::StrFormat("<polyline points=\"%s\" class=\"lift\"/>", line);
  svg += absl::StrFormat("<text x=\"2\" y=\"14\" class=\"axis\">%+.0f%%</text><text x=\"2\" y=\"%d\" class=\"axis\">%+.0f%%</text>",
                         100 * hi, h - bottom, 100 * lo);
  svg += absl::StrFormat("<text x=\"%d\" y=\"%d\" class=\"axis\" text-anchor=\"end\">%d units</text>", w - 10, h - 4,
                         static_cast<int64_t>(max_units));
  return svg + "</svg>";
}

}  // namespace

std::string RenderHtml(const json::value& v) {
  const auto& r = v.as_object();
  const auto& srm = r.at("srm").as_object();
  const bool mismatch = Get(srm, "mismatch") && srm.at("mismatch").as_bool();
  const auto& d = r.at("decision").as_object();
  std::string html = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>abgate: " +
                     Escape(Str(r.at("experiment"))) + "</title><style>"
                     "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;max-width:1000px}"
                     "table{border-collapse:collapse;margin:1em 0}td,th{border-bottom:1px solid #ddd;padding:4px 10px;text-align:left}"
                     ".ok{color:#176c2f}.bad{color:#b3261e;font-weight:bold}.box{padding:8px 12px;border-radius:6px;background:#f4f4f4;display:inline-block}"
                     ".ci{stroke:#555;stroke-width:2}.pt{fill:#1f5fbf}.lbl,.val,.axis{font-size:12px}.band{fill:#1f5fbf33}"
                     ".lift{fill:none;stroke:#1f5fbf;stroke-width:2}.zero{stroke:#999;stroke-dasharray:4 3}"
                     "pre{background:#f7f7f7;padding:1em;overflow:auto}</style></head><body>";
  html += "<h1>Experiment " + Escape(Str(r.at("experiment"))) + "</h1>";
  html += "<p class=\"box\"><b>Decision: " + Escape(Str(d.at("action"))) + "</b>" +
          (d.at("winner").is_string() ? " &mdash; winner " + Escape(Str(d.at("winner"))) : std::string()) + "<br>" +
          Escape(Str(d.at("reason"))) + "</p>";
  html += "<p class=\"" + std::string(mismatch ? "bad" : "ok") + "\">" + Escape(SrmLine(srm)) + "</p>";
  html += "<h2>Per arm</h2>";
  for (const auto& m : MetricNames(r)) {
    const std::string plot = MeansPlot(r, m, IsBinary(r, m));
    if (!plot.empty()) html += "<h3>" + Escape(m) + " (mean and " + absl::StrFormat("%.0f", 100 * (1 - Num(r.at("alpha")))) + "% CI)</h3>" + plot;
  }
  html += "<h2>Cumulative lift with its confidence sequence</h2>";
  for (const auto& s : r.at("timeline").as_array()) {
    html += "<h3>" + Escape(Str(s.at("treatment"))) + " vs " + Escape(Str(r.at("control"))) + " on " + Escape(Str(s.at("metric"))) +
            "</h3>" + LiftPlot(s.as_object());
  }
  if (r.at("timeline").as_array().empty()) html += "<p>Not enough units for a timeline.</p>";
  html += "<h2>Tables</h2><pre>" + Escape(RenderText(v)) + "</pre>";
  html += "<p>Generated by abgate analyze. The band is an anytime-valid confidence sequence (mixture SPRT), safe to watch continuously.</p>";
  return html + "</body></html>\n";
}

}  // namespace abgate::analysis

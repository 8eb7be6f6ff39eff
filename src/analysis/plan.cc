#include "analysis/plan.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include <boost/json.hpp>

#include "common/status_macros.h"
#include "common/strings.h"

namespace abgate::analysis {
namespace json = boost::json;
namespace {

absl::StatusOr<double> Number(const std::string& name, const std::string& text) {
  char* end = nullptr;
  const double v = text.empty() ? NAN : std::strtod(text.c_str(), &end);
  if (!std::isfinite(v) || end != text.c_str() + text.size()) {
    return absl::InvalidArgumentError(StrCat(name, ": '", text, "' is not a number"));
  }
  return v;
}

absl::StatusOr<int64_t> Count(const std::string& name, const std::string& text) {
  ABGATE_ASSIGN_OR_RETURN(const double v, Number(name, text));
  if (!(v >= 1) || v > 1e15 || v != std::floor(v)) {
    return absl::InvalidArgumentError(StrCat(name, ": '", text, "' is not a positive whole number"));
  }
  return static_cast<int64_t>(v);
}

int Hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string Decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && Hex(s[i + 1]) >= 0 && Hex(s[i + 2]) >= 0) {
      out += static_cast<char>(Hex(s[i + 1]) * 16 + Hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// 14749 → "14,749".
std::string Grouped(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

std::string Fmt(double v, const char* format = "%.6g") {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

json::object DesignJson(const stats::PlanDesign& d, const std::optional<int64_t>& daily_units) {
  json::array units;
  for (int64_t u : d.units_per_arm) units.push_back(u);
  json::object o{{"units_per_arm", std::move(units)}, {"total_units", d.total_units}, {"power", d.power},
                 {"mde", d.mde}};
  if (daily_units) o["days"] = (d.total_units + *daily_units - 1) / *daily_units;
  return o;
}

}  // namespace

absl::StatusOr<PlanRequest> ParsePlanRequest(const std::vector<std::pair<std::string, std::string>>& params) {
  PlanRequest r;
  stats::PlanInput& in = r.input;
  std::optional<double> baseline, mde, sd;
  std::optional<int64_t> days;
  std::vector<std::string> seen;
  for (const auto& [name, value] : params) {
    for (const auto& s : seen) {
      if (s == name) return absl::InvalidArgumentError(StrCat(name, " is given twice"));
    }
    seen.push_back(name);
    if (name == "baseline") {
      ABGATE_ASSIGN_OR_RETURN(baseline, Number(name, value));
    } else if (name == "mde") {
      ABGATE_ASSIGN_OR_RETURN(mde, Number(name, value));
    } else if (name == "mde_relative") {
      ABGATE_ASSIGN_OR_RETURN(r.mde_relative, Number(name, value));
    } else if (name == "sd") {
      ABGATE_ASSIGN_OR_RETURN(sd, Number(name, value));
    } else if (name == "alpha") {
      ABGATE_ASSIGN_OR_RETURN(in.alpha, Number(name, value));
    } else if (name == "power") {
      ABGATE_ASSIGN_OR_RETURN(in.power, Number(name, value));
    } else if (name == "sequential_tuning") {
      ABGATE_ASSIGN_OR_RETURN(in.sequential_tuning_n, Number(name, value));
    } else if (name == "daily_units") {
      ABGATE_ASSIGN_OR_RETURN(r.daily_units, Count(name, value));
    } else if (name == "days") {
      ABGATE_ASSIGN_OR_RETURN(days, Count(name, value));
    } else if (name == "total_units") {
      ABGATE_ASSIGN_OR_RETURN(in.total_units, Count(name, value));
    } else if (name == "weights") {
      in.weights.clear();
      size_t start = 0;
      while (start <= value.size()) {
        const size_t comma = value.find(',', start);
        const std::string part = value.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        ABGATE_ASSIGN_OR_RETURN(const double w, Number("weights", part));
        in.weights.push_back(w);
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
    } else {
      return absl::InvalidArgumentError(StrCat("unknown parameter '", name, "'"));
    }
  }
  in.metric = sd ? stats::PlanMetric::kMean : stats::PlanMetric::kProportion;
  if (sd) in.sd = *sd;
  if (baseline) {
    in.baseline = *baseline;
  } else if (!sd) {
    return absl::InvalidArgumentError("give baseline (a rate) or sd (for a mean)");
  }
  if (mde && r.mde_relative) return absl::InvalidArgumentError("give mde or mde_relative, not both");
  if (r.mde_relative) {
    if (!baseline || *baseline == 0) return absl::InvalidArgumentError("mde_relative needs a non-zero baseline");
    mde = *baseline * *r.mde_relative;
  }
  in.mde = mde;
  if (days) {
    if (!r.daily_units) return absl::InvalidArgumentError("days needs daily_units");
    if (in.total_units) return absl::InvalidArgumentError("give days or total_units, not both");
    in.total_units = *days * *r.daily_units;
  }
  if (!in.mde && !in.total_units) {
    return absl::InvalidArgumentError("give the effect to detect (mde or mde_relative), the size (total_units or days), or both");
  }
  return r;
}

absl::StatusOr<PlanRequest> ParsePlanQuery(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> params;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view kv = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (kv.empty()) continue;
    const size_t eq = kv.find('=');
    params.emplace_back(Decode(kv.substr(0, eq)), eq == std::string_view::npos ? "" : Decode(kv.substr(eq + 1)));
  }
  return ParsePlanRequest(params);
}

absl::StatusOr<json::value> PlanReport(const PlanRequest& request) {
  const stats::PlanInput& in = request.input;
  ABGATE_ASSIGN_OR_RETURN(const stats::PlanResult plan, stats::Plan(in));
  const bool mean = in.metric == stats::PlanMetric::kMean;
  const char* mode = !in.total_units ? "sample_size" : in.mde ? "power" : "mde";
  double sum = 0;
  for (double w : in.weights) sum += w;
  json::array weights;
  for (double w : in.weights) weights.push_back(w / sum);
  json::object o{{"metric", mean ? "mean" : "proportion"},
                 {"mode", mode},
                 {"baseline", in.baseline},
                 {"alpha", in.alpha},
                 {"power_target", in.power},
                 {"weights", std::move(weights)},
                 {"arms", static_cast<int64_t>(in.weights.size())},
                 {"comparisons", plan.comparisons},
                 {"alpha_per_comparison", plan.alpha_per_comparison},
                 {"sequential_tuning", in.sequential_tuning_n}};
  if (mean) o["sd"] = in.sd;
  if (request.mde_relative) o["mde_relative"] = *request.mde_relative;
  if (request.daily_units) o["daily_units"] = *request.daily_units;
  const json::object fixed = DesignJson(plan.fixed, request.daily_units);
  for (const auto& [k, v] : fixed) o[k] = v;
  if (in.mde) o["mde"] = *in.mde;  // signed, as asked
  json::object seq = DesignJson(plan.sequential, request.daily_units);
  seq["extra_units"] = plan.sequential.total_units - plan.fixed.total_units;
  seq["extra_percent"] = 100.0 * static_cast<double>(plan.sequential.total_units - plan.fixed.total_units) /
                         static_cast<double>(plan.fixed.total_units);
  o["sequential"] = std::move(seq);
  return json::value(std::move(o));
}

std::string RenderPlanText(const json::value& report) {
  const json::object& o = report.as_object();
  const std::string mode(o.at("mode").as_string());
  const bool mean = o.at("metric").as_string() == "mean";
  const double baseline = o.at("baseline").to_number<double>();
  const auto units = [](const json::object& d) {
    std::string s;
    for (const auto& u : d.at("units_per_arm").as_array()) s += (s.empty() ? "" : " + ") + Grouped(u.as_int64());
    return s;
  };
  std::string out;
  if (mean) {
    out += StrCat("Mean metric, sd ", Fmt(o.at("sd").to_number<double>()), ", baseline ", Fmt(baseline));
  } else {
    out += StrCat("Rate metric, baseline ", Fmt(100 * baseline), "%");
  }
  if (o.contains("mde") && mode != "mde") {
    const double mde = o.at("mde").to_number<double>();
    out += mean ? StrCat(", effect ", Fmt(mde)) : StrCat(" → ", Fmt(100 * (baseline + mde)), "% (", Fmt(100 * mde), " percentage points)");
    if (o.contains("mde_relative")) out += StrCat(", ", Fmt(100 * o.at("mde_relative").to_number<double>()), "% relative");
  }
  out += "\n";
  std::string split;
  for (const auto& w : o.at("weights").as_array()) split += (split.empty() ? "" : "/") + Fmt(100 * w.to_number<double>(), "%.4g");
  const int64_t comparisons = o.at("comparisons").as_int64();
  out += StrCat(o.at("arms").as_int64(), " arms (", split, "%, control first), alpha ", Fmt(o.at("alpha").to_number<double>()),
                " two-sided");
  if (comparisons > 1) {
    out += StrCat(" with Holm over ", comparisons, " comparisons against control (planned at ",
                  Fmt(o.at("alpha_per_comparison").to_number<double>()), " each)");
  }
  out += StrCat(", power ", Fmt(o.at("power_target").to_number<double>()), "\n\n");
  const auto line = [&](const char* title, const json::object& d) {
    std::string s = StrCat(title, "units per arm ", units(d), ", ", Grouped(d.at("total_units").as_int64()), " in total");
    if (d.contains("days")) s += StrCat(", ", d.at("days").as_int64(), " days at ", Grouped(o.at("daily_units").as_int64()), " a day");
    if (mode == "power") s += StrCat("; power ", Fmt(d.at("power").to_number<double>(), "%.3f"));
    if (mode == "mde") {
      const double mde = d.at("mde").to_number<double>();
      s += mean ? StrCat("; detects ", Fmt(mde))
                : StrCat("; detects ", Fmt(100 * mde, "%.4g"), " points (", Fmt(100 * mde / baseline, "%.3g"), "% relative)");
    }
    return s + "\n";
  };
  const json::object& seq = o.at("sequential").as_object();
  out += line("Fixed horizon (look once at the end):  ", o);
  out += line("Sequential (always valid, any look):    ", seq);
  if (mode == "sample_size") {
    out += StrCat("The sequential test costs ", Grouped(seq.at("extra_units").as_int64()), " more units (+",
                  Fmt(seq.at("extra_percent").to_number<double>(), "%.0f"),
                  "%) for the right to stop at any look; if the effect is larger it stops earlier.\n");
  }
  return out;
}

}  // namespace abgate::analysis

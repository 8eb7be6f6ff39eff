// abgate analyze: per-arm metrics, comparisons, SRM and a decision, from the event store or
// from a seed-style ab_results.csv; text, JSON or a self-contained HTML report.
#include <CLI/CLI.hpp>

#include <boost/json.hpp>

#include <cstdio>
#include <algorithm>
#include <charconv>
#include <chrono>
#include <fstream>
#include <sstream>
#include <memory>
#include <optional>
#include <string>

#include "analysis/analysis.h"
#include "analysis/holdout.h"
#include "cli/commands.h"
#include "common/logging.h"
#include "common/strings.h"
#include "config/gateway_config.h"
#include "common/status_macros.h"
#include "config/json_format.h"
#include "control/promotion.h"
#include "registry/mlflow_client.h"

namespace abgate::cli {
namespace {

struct Args {
  std::string csv, store, experiment, config, format = "text", output, metric, control, weights, unit, adjust = "holm";
  std::string mlflow_uri, mlflow_experiment = "abgate-analyses";
  std::vector<std::string> cuped;  // METRIC=COVARIATE
  double alpha = 0.05;
  double tuning = 5000;
  bool holdout = false;
};

int Fail(const std::string& message) {
  std::fprintf(stderr, "abgate analyze: %s\n", message.c_str());
  return 1;
}

absl::StatusOr<analysis::MetricSpec> ParseMetric(const std::string& text) {
  analysis::MetricSpec m;
  const size_t colon = text.find(':');
  m.name = text.substr(0, colon);
  const std::string kind = colon == std::string::npos ? "binary" : text.substr(colon + 1);
  if (kind == "binary") {
    m.kind = analysis::MetricKind::kBinary;
  } else if (kind == "continuous" || kind == "count") {
    m.kind = analysis::MetricKind::kContinuous;
  } else {
    return absl::InvalidArgumentError(StrCat("--metric ", text, ": type must be binary or continuous"));
  }
  if (m.name.empty()) return absl::InvalidArgumentError("--metric needs a name");
  return m;
}

// One MLflow run per arm (tag ab_test=<experiment>, as the controller's): the arm's aggregates
// and, on treatments, the primary comparison's numbers the decision read; the decision itself
// as tags. Any experiment, however it was started, gets its evidence tracked this way.
absl::Status LogToMlflow(const Args& a, const analysis::Report& report) {
  ABGATE_ASSIGN_OR_RETURN(auto client, registry::MlflowClient::Create(registry::MlflowClientOptions::ForUri(a.mlflow_uri)));
  ABGATE_ASSIGN_OR_RETURN(std::string exp_id, client->GetOrCreateExperiment(a.mlflow_experiment));
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch()).count();
  for (const auto& arm : report.arms) {
    ABGATE_ASSIGN_OR_RETURN(auto run, client->CreateRun(exp_id, StrCat(report.experiment, "-", arm.arm),
                                                        {{"ab_test", report.experiment}, {"arm", arm.arm}}));
    std::vector<registry::Metric> metrics = {{"units", static_cast<double>(arm.units), now_ms, 0},
                                             {"exposures", static_cast<double>(arm.exposures), now_ms, 0}};
    control::AppendRunMetrics(report, report.decision, arm.arm, now_ms, 0, &metrics);
    registry::TagMap params = {{"arm", arm.arm},
                               {"role", arm.arm == report.control ? "control" : "treatment"},
                               {"model_version", arm.model_version},
                               {"primary_metric", report.primary_metric}};
    registry::TagMap tags = {{"ab_test.decision", report.decision.action},
                             {"ab_test.reason", report.decision.reason.substr(0, 5000)}};
    if (!report.window.empty()) tags["ab_test.window"] = report.window;
    ABGATE_RETURN_IF_ERROR(client->LogBatch(run.run_id, metrics, params, tags));
    ABGATE_RETURN_IF_ERROR(client->SetTerminated(run.run_id, "FINISHED"));
    std::fprintf(stderr, "abgate analyze: logged arm %s to MLflow run %s\n", arm.arm.c_str(), run.run_id.c_str());
  }
  return absl::OkStatus();
}

// analyze --holdout: the global holdout against everyone else, across every experiment (or the
// one named), per metric.
int RunHoldout(const Args& a) {
  if (!a.csv.empty() || (a.store.empty() && a.config.empty())) {
    return Fail("--holdout reads the event store: give --store URI or --config FILE (not --csv)");
  }
  if (a.format == "html") return Fail("--holdout prints text or json");
  analysis::HoldoutOptions options;
  options.experiment = a.experiment;
  std::string store = a.store;
  if (!a.config.empty()) {
    auto cfg = config::LoadGatewayConfig(a.config);
    if (!cfg.ok()) return Fail(std::string(cfg.status().message()));
    if (store.empty()) store = cfg->events.store;
    options.percent = cfg->holdout.percent;
    // The configured metrics of the experiments in scope, each once, primary ones first.
    for (const auto& e : cfg->experiments) {
      if (!a.experiment.empty() && e.name != a.experiment) continue;
      if (e.metrics.empty()) continue;
      for (const auto& m : analysis::MetricsOf(e)) {
        if (std::none_of(options.metrics.begin(), options.metrics.end(), [&](const auto& x) { return x.name == m.name; })) {
          options.metrics.push_back(m);
        }
      }
    }
  }
  if (!a.metric.empty()) {
    auto m = ParseMetric(a.metric);
    if (!m.ok()) return Fail(std::string(m.status().message()));
    options.metrics = {*m};
  }
  auto input = analysis::ReadHoldout(store, options);
  if (!input.ok()) return Fail(std::string(input.status().message()));
  input->alpha = a.alpha;
  input->sequential_tuning_n = a.tuning;
  input->adjustment = a.adjust;
  auto report = analysis::Analyze(*input);
  if (!report.ok()) return Fail(std::string(report.status().message()));
  const std::string scope = a.experiment.empty() ? "all experiments" : StrCat("experiment ", a.experiment);
  const std::string text = a.format == "json"
                               ? config::ToJson(analysis::HoldoutToJson(*report, scope, options.percent)) + "\n"
                               : analysis::RenderHoldoutText(*report, scope, options.percent);
  if (a.output.empty()) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    return 0;
  }
  std::ofstream out(a.output, std::ios::binary);
  out << text;
  if (!out) return Fail(StrCat("cannot write ", a.output));
  return 0;
}

int Run(const Args& a) {
  if (!a.holdout && a.csv.empty() == (a.store.empty() && a.config.empty())) {
    return Fail("give either --csv FILE or --store URI (or --config FILE) with --experiment NAME");
  }
  if (a.format != "text" && a.format != "json" && a.format != "html") return Fail("--format must be text, json or html");
  if (!(a.alpha > 0 && a.alpha < 1)) return Fail("--alpha must be in (0, 1)");
  if (a.adjust != "holm" && a.adjust != "bh" && a.adjust != "none") return Fail("--adjust must be holm, bh or none");
  if (!(a.tuning > 0)) return Fail("--sequential-tuning must be positive");
  if (a.holdout) return RunHoldout(a);

  analysis::AnalysisInput input;
  if (!a.csv.empty()) {
    auto in = analysis::ReadResultsCsv(a.csv, a.control);
    if (!in.ok()) return Fail(std::string(in.status().message()));
    input = std::move(*in);
    if (!a.cuped.empty()) return Fail("--cuped needs the event store (--store or --config): ab_results.csv has no pre-period");
    if (!a.metric.empty() && a.metric != "booked" && a.metric != "booked:binary") {
      return Fail("ab_results.csv has one metric, booked (from y_true)");
    }
  } else {
    if (a.experiment.empty()) return Fail("--experiment is required with --store or --config");
    std::string store = a.store;
    std::string unit = a.unit.empty() ? "user" : a.unit;
    std::vector<analysis::MetricSpec> metrics;
    const config::ExperimentConfig* exp = nullptr;
    absl::StatusOr<config::GatewayConfig> cfg;
    if (!a.config.empty()) {
      cfg = config::LoadGatewayConfig(a.config);
      if (!cfg.ok()) return Fail(std::string(cfg.status().message()));
      for (const auto& e : cfg->experiments) {
        if (e.name == a.experiment) exp = &e;
      }
      if (!exp) return Fail(StrCat("no experiment named '", a.experiment, "' in ", a.config));
      if (store.empty()) store = cfg->events.store;
      if (a.unit.empty()) unit = analysis::UnitOf(*exp);
      metrics = analysis::MetricsOf(*exp);
    }
    // Without a YAML, the experiment as it ran: the config last stored through the admin API
    // (arms, control, weights and their history, metrics, attribution window).
    std::optional<config::ExperimentConfig> stored;
    if (!exp) {
      auto from_store = analysis::ReadStoredExperiment(store, a.experiment);
      if (!from_store.ok()) return Fail(std::string(from_store.status().message()));
      stored = *std::move(from_store);
      if (stored) {
        exp = &*stored;
        if (a.unit.empty()) unit = analysis::UnitOf(*exp);
        if (!exp->metrics.empty()) metrics = analysis::MetricsOf(*exp);
      }
    }
    // Every metric the store has outcomes for, after the configured ones (primary first);
    // --metric instead names the one to analyse (and skips this scan of the outcome rows).
    if (a.metric.empty()) {
      auto found = analysis::ReadStoredMetrics(store, a.experiment);
      if (!found.ok()) return Fail(std::string(found.status().message()));
      for (const auto& m : *found) {
        if (std::none_of(metrics.begin(), metrics.end(), [&](const auto& x) { return x.name == m.name; })) {
          metrics.push_back(m);
        }
      }
    }
    if (!a.metric.empty()) {
      auto m = ParseMetric(a.metric);
      if (!m.ok()) return Fail(std::string(m.status().message()));
      auto it = std::find_if(metrics.begin(), metrics.end(), [&](const auto& x) { return x.name == m->name; });
      if (it != metrics.end()) {
        std::rotate(metrics.begin(), it, it + 1);
      } else {
        metrics.insert(metrics.begin(), *m);
      }
    }
    if (metrics.empty()) metrics.push_back({"booked", analysis::MetricKind::kBinary});
    // --cuped METRIC=COVARIATE adds or replaces a metric's covariate.
    for (const auto& spec : a.cuped) {
      const size_t eq = spec.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) {
        return Fail(StrCat("--cuped ", spec, ": give METRIC=COVARIATE (an outcome metric recorded before exposure)"));
      }
      const std::string name = spec.substr(0, eq);
      auto it = std::find_if(metrics.begin(), metrics.end(), [&](const auto& x) { return x.name == name; });
      if (it == metrics.end()) {
        return Fail(StrCat("--cuped ", spec, ": no metric '", name, "' in this analysis (name it with --metric)"));
      }
      it->cuped_covariate = spec.substr(eq + 1);
    }
    // A metric found in the store that serves only as another metric's covariate (a pre-period
    // import such as pre_revenue) is not analysed as an outcome of its own.
    std::vector<std::string> covariate_only;
    for (const auto& m : metrics) {
      const bool configured = exp && std::any_of(exp->metrics.begin(), exp->metrics.end(),
                                                 [&](const auto& c) { return c.name == m.name; });
      const bool named = !a.metric.empty() && m.name == metrics.front().name;
      const bool covariate = std::any_of(metrics.begin(), metrics.end(),
                                         [&](const auto& x) { return x.cuped_covariate == m.name && x.name != m.name; });
      if (covariate && !configured && !named && m.cuped_covariate.empty()) covariate_only.push_back(m.name);
    }
    std::erase_if(metrics, [&](const analysis::MetricSpec& m) {
      return std::find(covariate_only.begin(), covariate_only.end(), m.name) != covariate_only.end();
    });
    // Metrics the config does not name are analysed as well; they need their kind from the data.
    if (exp && !exp->metrics.empty()) {
      std::vector<analysis::MetricSpec> configured = analysis::MetricsOf(*exp);
      for (auto& m : metrics) {
        for (const auto& c : configured) {
          if (c.name == m.name) m.kind = c.kind;
        }
      }
    }
    const auto read_start = std::chrono::steady_clock::now();
    auto in = exp ? analysis::ReadConfiguredExperiment(store, *exp, unit, metrics)
                  : analysis::ReadEventStore(store, a.experiment, unit, metrics);
    ABGATE_LOG(kDebug, "read the event store in %.2f s",
               std::chrono::duration<double>(std::chrono::steady_clock::now() - read_start).count());
    if (!in.ok()) return Fail(std::string(in.status().message()));
    input = std::move(*in);
    if (!exp && !a.control.empty()) {
      auto it = std::find_if(input.arms.begin(), input.arms.end(), [&](const auto& x) { return x.name == a.control; });
      if (it == input.arms.end()) return Fail(StrCat("--control ", a.control, " is not an arm in the store"));
      input.control = static_cast<int>(it - input.arms.begin());
    }
  }
  if (!a.weights.empty()) {
    std::vector<double> w;
    std::stringstream ss(a.weights);
    std::string cell;
    while (std::getline(ss, cell, ',')) {
      double x = 0;
      auto [p, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), x);
      if (ec != std::errc() || p != cell.data() + cell.size() || !(x >= 0)) {
        return Fail(StrCat("--weights: '", cell, "' is not a non-negative number"));
      }
      w.push_back(x);
    }
    if (w.size() != input.arms.size()) return Fail(StrCat("--weights needs ", input.arms.size(), " numbers (one per arm)"));
    for (size_t i = 0; i < w.size(); ++i) input.arms[i].weight = w[i];
    input.weights_known = true;
    input.weight_periods.clear();  // the weights given are the ones to check against
  }
  input.alpha = a.alpha;
  input.adjustment = a.adjust;
  input.sequential_tuning_n = a.tuning;
  const auto analyze_start = std::chrono::steady_clock::now();
  auto report = analysis::Analyze(input);
  ABGATE_LOG(kDebug, "analysed %d units and %d predictions in %.2f s", input.units.size(), input.predictions.size(),
             std::chrono::duration<double>(std::chrono::steady_clock::now() - analyze_start).count());
  if (!report.ok()) return Fail(std::string(report.status().message()));
  // Shadow traffic as `results` shows it (requests mirrored, failures, agreement, latency), from
  // the rows the store's read gave (no second read, as the dashboard's results); the paired
  // offline comparison is already in the report (shadow_evaluation).
  report->shadow = input.shadow_summary;
  const std::string text = a.format == "json"   ? config::ToJson(analysis::ToJson(*report)) + "\n"
                           : a.format == "html" ? analysis::RenderHtml(*report)
                                                : analysis::RenderText(*report);
  if (!a.mlflow_uri.empty()) {
    if (auto s = LogToMlflow(a, *report); !s.ok()) return Fail(StrCat("--log-to-mlflow: ", s.message()));
  }
  if (a.output.empty()) {
    std::fwrite(text.data(), 1, text.size(), stdout);
  } else {
    std::ofstream out(a.output, std::ios::binary);
    out << text;
    if (!out) return Fail(StrCat("cannot write ", a.output));
    std::fprintf(stderr, "abgate analyze: wrote %s\n", a.output.c_str());
  }
  return 0;
}

}  // namespace

Command AddAnalyze(CLI::App& app) {
  auto* cmd = app.add_subcommand("analyze", "Per-arm metrics, tests, SRM and a decision (text, JSON or HTML)");
  auto a = std::make_shared<Args>();
  cmd->add_option("--csv", a->csv, "seed-style ab_results.csv (user_id, model_version, y_true, y_pred)");
  cmd->add_option("--store", a->store, "event store URI (sqlite:PATH or postgresql://...); default: events.store from --config");
  cmd->add_option("--experiment,-e", a->experiment, "experiment name (with --store or --config)");
  cmd->add_option("--config,-c", a->config, "gateway config: control, weights, metrics and unit of the experiment");
  cmd->add_option("--format,-f", a->format, "text, json or html (default text)");
  cmd->add_option("--output,-o", a->output, "write the report to this file instead of stdout");
  cmd->add_option("--alpha", a->alpha, "significance level (default 0.05)");
  cmd->add_option("--metric", a->metric, "primary metric NAME[:binary|continuous]");
  cmd->add_option("--control", a->control, "control arm (store) or model_version (CSV)");
  cmd->add_option("--weights", a->weights, "configured weights for the SRM check, e.g. 80,20");
  cmd->add_option("--unit", a->unit, "user or request (default: request for request_random experiments)");
  cmd->add_option("--adjust", a->adjust, "multiple-testing adjustment: holm (default), bh or none");
  cmd->add_option("--log-to-mlflow", a->mlflow_uri,
                  "also write one MLflow run per arm (aggregates and the decision's evidence) to this tracking URI");
  cmd->add_option("--mlflow-experiment", a->mlflow_experiment, "MLflow experiment of those runs (default abgate-analyses)");
  cmd->add_flag("--holdout", a->holdout,
               "compare the global holdout with everyone else (every experiment, or --experiment's), per metric");
  cmd->add_option("--cuped", a->cuped,
                  "METRIC=COVARIATE: adjust METRIC by CUPED with COVARIATE's outcomes recorded before each unit's first "
                  "exposure (repeatable; or metrics[].cuped.covariate in the config)");
  cmd->add_option("--sequential-tuning", a->tuning, "sample size where the confidence sequence is tightest (default 5000)");
  return {cmd, [a] { return Run(*a); }};
}

}  // namespace abgate::cli

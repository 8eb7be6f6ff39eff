#include "control/controller.h"


#include <algorithm>
#include <chrono>
#include <thread>

#include <boost/json.hpp>

#include "common/logging.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "config/json_format.h"
#include "control/promotion.h"
#include "control/rollout.h"
#include "sqlite/database.h"

namespace abgate::control {
namespace json = boost::json;

namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS rollouts (
  experiment        TEXT PRIMARY KEY,
  model             TEXT    NOT NULL,
  champion_version  TEXT    NOT NULL,
  candidate_version TEXT    NOT NULL,
  status            TEXT    NOT NULL,
  step              INTEGER NOT NULL,
  step_started_ms   INTEGER NOT NULL,
  started_ms        INTEGER NOT NULL,
  looks             INTEGER NOT NULL,
  reason            TEXT    NOT NULL,
  baseline          TEXT    NOT NULL,
  runs              TEXT    NOT NULL,
  report            TEXT    NOT NULL,
  updated_ms        INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS retrains (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  model       TEXT    NOT NULL,
  ts_ms       INTEGER NOT NULL,
  experiment  TEXT    NOT NULL,
  since_us    INTEGER NOT NULL,
  until_us    INTEGER NOT NULL,
  rows        INTEGER NOT NULL,
  version     TEXT    NOT NULL,
  run_id      TEXT    NOT NULL,
  export_file TEXT    NOT NULL,
  status      TEXT    NOT NULL,
  message     TEXT    NOT NULL
);
)sql";

json::object ParseObject(const std::string& text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  return !ec && v.is_object() ? v.as_object() : json::object();
}

}  // namespace

json::object ExperimentFor(const config::ControlledModelConfig& model, const std::string& experiment,
                           const std::string& champion, const std::string& candidate,
                           const config::RolloutStepConfig& step) {
  const double percent = step.percent;
  json::object e = model.experiment;
  e["name"] = experiment;
  e["model"] = model.name;
  e["default"] = true;
  e["control"] = "A";
  auto arm = [&](const char* name, const std::string& version, double weight) {
    json::object a{{"name", name}, {"version", version}, {"weight", weight}};
    if (auto it = model.upstreams.find(version); it != model.upstreams.end()) a["upstream"] = it->second;
    return a;
  };
  e["arms"] = json::array{arm("A", champion, 100 - percent), arm("B", candidate, percent)};
  if (step.shadow_percent > 0) e["shadow"] = json::object{{"arm", "B"}, {"percent", step.shadow_percent}};
  return e;
}

Controller::Controller(config::ControllerConfig config, std::unique_ptr<registry::MlflowClient> registry,
                       std::unique_ptr<GatewayAdmin> gateway, std::unique_ptr<sqlite::Database> db,
                       const common::Clock& clock)
    : config_(std::move(config)),
      registry_(std::move(registry)),
      gateway_(std::move(gateway)),
      db_(std::move(db)),
      clock_(clock) {}

Controller::~Controller() = default;

absl::StatusOr<std::unique_ptr<Controller>> Controller::Create(const config::GatewayConfig& config,
                                                               const std::string& admin_token,
                                                               const common::Clock& clock) {
  if (!config.controller) return absl::InvalidArgumentError("the config has no `controller:` section");
  if (config.registry.uri.empty()) return absl::InvalidArgumentError("the controller needs registry.uri");
  ABGATE_ASSIGN_OR_RETURN(auto registry, registry::MlflowClient::Create(registry::MlflowClientOptions::ForUri(config.registry.uri)));
  ABGATE_ASSIGN_OR_RETURN(auto gateway, GatewayAdmin::Create(config.controller->gateway_admin, admin_token));
  const std::string path = config.controller->state.substr(7);
  ABGATE_ASSIGN_OR_RETURN(auto db, sqlite::Database::Open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                                                          "controller state"));
  ABGATE_RETURN_IF_ERROR(db->ExecScript(kSchema));
  ABGATE_RETURN_IF_ERROR(db->Exec("INSERT INTO schema_version SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM schema_version)"));
  auto controller = std::unique_ptr<Controller>(
      new Controller(*config.controller, std::move(registry), std::move(gateway), std::move(db), clock));
  controller->store_uri_ = config.events.store;
  controller->registry_uri_ = config.registry.uri;
  return controller;
}

void Controller::Emit(const std::string& line) {
  ABGATE_LOG(kInfo, "controller: %s", line);
  if (on_event_) on_event_(line);
}

std::vector<Rollout> Controller::Rollouts() const {
  std::vector<Rollout> out;
  common::MutexLock lock(db_mu_);
  const absl::Status read = db_->Query(
      "SELECT experiment, model, champion_version, candidate_version, status, step, step_started_ms, started_ms, "
      "looks, reason, baseline, runs, report FROM rollouts ORDER BY started_ms",
      {}, [&](sqlite3_stmt* st) {
        using sqlite::Text;
        Rollout r;
        r.experiment = Text(st, 0);
        r.model = Text(st, 1);
        r.champion_version = Text(st, 2);
        r.candidate_version = Text(st, 3);
        r.status = Text(st, 4);
        r.step = sqlite3_column_int(st, 5);
        r.step_started_ms = sqlite3_column_int64(st, 6);
        r.started_ms = sqlite3_column_int64(st, 7);
        r.looks = sqlite3_column_int64(st, 8);
        r.reason = Text(st, 9);
        r.baseline_json = Text(st, 10);
        r.runs_json = Text(st, 11);
        r.report_json = Text(st, 12);
        out.push_back(std::move(r));
      });
  if (!read.ok()) ABGATE_LOG(kError, "controller: %s", read.message());
  return out;
}

absl::Status Controller::Save(const Rollout& r) {
  common::MutexLock lock(db_mu_);
  return db_->Exec("INSERT OR REPLACE INTO rollouts VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                   {r.experiment, r.model, r.champion_version, r.candidate_version, r.status, int64_t{r.step},
                    r.step_started_ms, r.started_ms, r.looks, r.reason, r.baseline_json, r.runs_json, r.report_json,
                    NowMs()});
}

absl::Status Controller::Tick() {
  absl::Status first_error;
  for (const auto& model : config_.models) {
    for (Rollout& r : Rollouts()) {
      if (r.status != "running" || r.model != model.name) continue;
      absl::Status s = Evaluate(r, model);
      if (!s.ok()) {
        Emit(StrCat(r.experiment, ": ", s.message()));
        if (first_error.ok()) first_error = s;
      }
    }
    // The feedback loop first, so a candidate it registers is started in this same pass.
    for (const auto& rc : config_.retrain) {
      if (rc.model != model.name) continue;
      absl::Status s = MaybeRetrain(rc);
      if (!s.ok()) {
        Emit(StrCat(model.name, ": retrain: ", s.message()));
        if (first_error.ok()) first_error = s;
      }
    }
    absl::Status s = StartCandidates(model);
    if (!s.ok()) {
      Emit(StrCat(model.name, ": ", s.message()));
      if (first_error.ok()) first_error = s;
    }
  }
  return first_error;
}

std::vector<RetrainRecord> Controller::Retrains() const {
  std::vector<RetrainRecord> out;
  common::MutexLock lock(db_mu_);
  const absl::Status read = db_->Query(
      "SELECT model, ts_ms, experiment, since_us, until_us, rows, version, run_id, export_file, status, message "
      "FROM retrains ORDER BY id",
      {}, [&](sqlite3_stmt* st) {
        using sqlite::Text;
        out.push_back({Text(st, 0), sqlite3_column_int64(st, 1), Text(st, 2), sqlite3_column_int64(st, 3),
                       sqlite3_column_int64(st, 4), sqlite3_column_int64(st, 5), Text(st, 6), Text(st, 7), Text(st, 8),
                       Text(st, 9), Text(st, 10)});
      });
  if (!read.ok()) ABGATE_LOG(kError, "controller: %s", read.message());
  return out;
}

absl::Status Controller::SaveRetrain(const RetrainRecord& r) {
  common::MutexLock lock(db_mu_);
  return db_->Exec(
      "INSERT INTO retrains (model, ts_ms, experiment, since_us, until_us, rows, version, run_id, export_file, status, "
      "message) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
      {r.model, r.ts_ms, r.experiment, r.since_us, r.until_us, r.rows, r.version, r.run_id, r.export_file, r.status,
       r.message});
}

absl::Status Controller::MaybeRetrain(const config::RetrainConfig& rc) {
  if (!retrainer_) {
    if (!warned_no_retrainer_) Emit(StrCat(rc.model, ": controller.retrain is set but this controller has no trainer"));
    warned_no_retrainer_ = true;
    return absl::OkStatus();
  }
  const config::ControlledModelConfig* model = nullptr;
  for (const auto& m : config_.models) {
    if (m.name == rc.model) model = &m;
  }
  if (!model) return absl::OkStatus();  // the config parser refuses this
  // Never while a test of the model runs: its data is still coming, and a new candidate waits.
  std::string experiment = rc.experiment;
  for (const Rollout& r : Rollouts()) {
    if (r.model != rc.model) continue;
    if (r.status == "running") return absl::OkStatus();
    if (rc.experiment.empty()) experiment = r.experiment;  // the latest test (ordered by start)
  }
  if (experiment.empty()) return absl::OkStatus();  // no logs yet
  // At most once per `every` after a registered version; a check that found too little new
  // data (or failed) is repeated after min(every, 5 min).
  const RetrainRecord* last_ok = nullptr;
  const RetrainRecord* last = nullptr;
  const auto history = Retrains();
  for (const auto& h : history) {
    if (h.model != rc.model) continue;
    last = &h;
    if (h.status == "registered") last_ok = &h;
  }
  const int64_t now_ms = NowMs();
  if (last_ok && now_ms - last_ok->ts_ms < rc.every_us / 1000) return absl::OkStatus();
  if (last && last != last_ok && now_ms - last->ts_ms < std::min<int64_t>(rc.every_us / 1000, 300'000)) {
    return absl::OkStatus();
  }
  // A candidate already waiting for its test: no new one on top of it.
  ABGATE_ASSIGN_OR_RETURN(auto tagged, registry_->SearchModelVersions(StrCat("name = '", model->name, "' AND tags.`",
                                                                             model->candidate_tag, "` = 'true'")));
  if (!tagged.empty()) return absl::OkStatus();

  RetrainRequest req;
  req.config = rc;
  req.experiment = experiment;
  req.store = store_uri_;
  req.registry_uri = registry_uri_;
  req.tracking_experiment = StrCat(config_.tracking_experiment, "-training");
  req.candidate_tag = model->candidate_tag;
  req.label = rc.label;
  if (req.label.empty()) {
    const auto& metrics = model->parsed.metrics;
    auto primary = std::find_if(metrics.begin(), metrics.end(), [](const auto& m) { return m.primary; });
    req.label = primary != metrics.end() ? primary->name : (metrics.empty() ? "booked" : metrics.front().name);
  }
  req.since_us = last_ok ? last_ok->until_us + 1 : 0;
  RetrainRecord rec;
  rec.model = rc.model;
  rec.ts_ms = now_ms;
  rec.experiment = experiment;
  rec.since_us = req.since_us;
  auto result = retrainer_(req);
  if (result.ok()) {
    rec.until_us = result->until_us;
    rec.rows = result->rows;
    rec.version = result->version;
    rec.run_id = result->run_id;
    rec.export_file = result->export_file;
    rec.status = "registered";
    rec.message = result->summary;
    ABGATE_RETURN_IF_ERROR(SaveRetrain(rec));
    Emit(StrCat(rc.model, ": retrained on ", experiment, ": ", result->summary));
    return absl::OkStatus();
  }
  rec.status = result.status().code() == absl::StatusCode::kFailedPrecondition ? "waiting" : "failed";
  rec.message = std::string(result.status().message());
  ABGATE_RETURN_IF_ERROR(SaveRetrain(rec));
  if (!last || last->message != rec.message) Emit(StrCat(rc.model, ": retrain ", rec.status, ": ", rec.message));
  return absl::OkStatus();
}

void Controller::Run(const std::atomic<bool>& stop) {
  while (!stop.load()) {
    (void)Tick();
    const int64_t until = clock_.NowUs() + config_.poll_interval_us;
    while (!stop.load() && clock_.NowUs() < until) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

absl::Status Controller::EnsureExperiment(const Rollout& r, const config::ControlledModelConfig& model) {
  auto existing = gateway_->GetExperiment(r.experiment);
  if (existing.ok()) return absl::OkStatus();
  if (existing.status().code() != absl::StatusCode::kNotFound) return existing.status();
  // The new experiment takes /predict from the current default in one admin change (the
  // earlier one keeps serving its winner at /predict/{name}), so /predict is never without one.
  json::object config = ExperimentFor(model, r.experiment, r.champion_version, r.candidate_version, model.plan[r.step]);
  config["replace_default"] = true;
  auto created = gateway_->CreateExperiment(config);
  return created.status();
}

absl::Status Controller::StartCandidates(const config::ControlledModelConfig& model) {
  const auto rollouts = Rollouts();
  for (const Rollout& r : rollouts) {
    if (r.model == model.name && r.status == "running") return absl::OkStatus();  // one at a time
  }
  ABGATE_ASSIGN_OR_RETURN(auto candidates,
                          registry_->SearchModelVersions(StrCat("name = '", model.name, "' AND tags.`",
                                                                model.candidate_tag, "` = 'true'")));
  if (candidates.empty()) return absl::OkStatus();
  std::sort(candidates.begin(), candidates.end(), [](const auto& a, const auto& b) { return a.version > b.version; });
  // The champion: alias `champion`, else the latest Production version.
  std::string champion;
  auto by_alias = registry_->GetModelVersionByAlias(model.name, "champion");
  if (by_alias.ok()) {
    champion = std::to_string(by_alias->version);
  } else {
    ABGATE_ASSIGN_OR_RETURN(auto prod, registry_->GetLatestVersions(model.name, {"Production"}));
    if (!prod.empty()) champion = std::to_string(prod.back().version);
  }
  for (const auto& cand : candidates) {
    const std::string version = std::to_string(cand.version);
    const std::string experiment = StrCat(model.name, "-v", version, "-vs-v", champion);
    const Rollout* earlier = nullptr;
    for (const Rollout& r : rollouts) {
      if (r.experiment == experiment) earlier = &r;
    }
    if (earlier) {
      // A finished comparison is not run again: the tag goes (it may also be one a failed clear
      // left behind) and a note on the version says where the result is.
      ABGATE_RETURN_IF_ERROR(registry_->SetModelVersionTag(
          model.name, version, "ab_test.note",
          StrCat("already tested against v", champion, " in ", experiment, " (", earlier->status, ")")));
      ABGATE_RETURN_IF_ERROR(registry_->DeleteModelVersionTag(model.name, version, model.candidate_tag));
      Emit(StrCat(model.name, ": v", version, " was already tested against v", champion, " (", earlier->status,
                  "); candidate tag cleared"));
      continue;
    }
    if (champion.empty() || champion == version) {
      // Nothing to compare against: the first version simply becomes the champion.
      ABGATE_RETURN_IF_ERROR(registry_->SetAlias(model.name, "champion", version));
      ABGATE_RETURN_IF_ERROR(registry_->TransitionStage(model.name, version, "Production", true).status());
      ABGATE_RETURN_IF_ERROR(registry_->DeleteModelVersionTag(model.name, version, model.candidate_tag));
      Emit(StrCat(model.name, ": v", version, " has no champion to beat; it becomes the champion"));
      return absl::OkStatus();
    }
    Rollout r;
    r.experiment = experiment;
    r.model = model.name;
    r.champion_version = champion;
    r.candidate_version = version;
    r.status = "running";
    r.started_ms = r.step_started_ms = NowMs();
    // Tracking runs first (idempotent to redo), then the state row, then the experiment.
    ABGATE_ASSIGN_OR_RETURN(std::string exp_id, registry_->GetOrCreateExperiment(config_.tracking_experiment));
    json::object runs;
    for (const auto& [arm, v, role] : {std::tuple{"A", champion, "control"}, std::tuple{"B", version, "candidate"}}) {
      ABGATE_ASSIGN_OR_RETURN(auto run, registry_->CreateRun(exp_id, StrCat(experiment, "-", arm),
                                                             {{"ab_test", experiment}, {"arm", arm}}));
      ABGATE_RETURN_IF_ERROR(registry_->LogBatch(
          run.run_id, {},
          {{"arm", arm}, {"role", role}, {"model_name", model.name}, {"model_version", v},
           {"routing_mode", std::string(config::RoutingModeName(model.parsed.routing_mode))},
           {"plan", [&] {
              std::string p;
              for (const auto& s : model.plan) StrAppend(&p, p.empty() ? "" : ",", s.name, ":", s.percent, "%");
              return p;
            }()}},
          {}));
      runs[arm] = run.run_id;
    }
    r.runs_json = config::ToJson(runs);
    ABGATE_RETURN_IF_ERROR(Save(r));
    ABGATE_RETURN_IF_ERROR(EnsureExperiment(r, model));
    r.step_started_ms = NowMs();  // the first step's weights are in force from here on
    ABGATE_ASSIGN_OR_RETURN(json::object health, gateway_->Health(experiment));
    r.baseline_json = config::ToJson(health);
    ABGATE_RETURN_IF_ERROR(Save(r));
    ABGATE_RETURN_IF_ERROR(registry_->SetAlias(model.name, "challenger", version));
    // No tag of an earlier test may tell its numbers as this one's (the champion carries its
    // own promotion's evidence; a re-tagged candidate its previous result).
    ABGATE_RETURN_IF_ERROR(ClearTestTags(*registry_, model.name, version));
    ABGATE_RETURN_IF_ERROR(ClearTestTags(*registry_, model.name, champion));
    ABGATE_RETURN_IF_ERROR(registry_->SetModelVersionTag(model.name, champion, "ab_test.experiment", experiment));
    ABGATE_RETURN_IF_ERROR(registry_->SetModelVersionTag(model.name, champion, "ab_test.status", "running"));
    ABGATE_RETURN_IF_ERROR(registry_->SetModelVersionTag(model.name, champion, "ab_test.role", "champion"));
    ABGATE_RETURN_IF_ERROR(registry_->SetModelVersionTag(model.name, version, "ab_test.role", "candidate"));
    ABGATE_RETURN_IF_ERROR(registry_->SetModelVersionTag(model.name, version, "ab_test.experiment", experiment));
    ABGATE_RETURN_IF_ERROR(registry_->SetModelVersionTag(model.name, version, "ab_test.status", "running"));
    Emit(StrCat(model.name, ": candidate v", version, " vs champion v", champion, " — started ", experiment, " at ",
                model.plan[0].name, " (", model.plan[0].percent, "%",
                model.plan[0].shadow_percent > 0 ? StrCat(", shadow ", model.plan[0].shadow_percent, "%") : std::string(),
                ")"));
    return absl::OkStatus();
  }
  return absl::OkStatus();
}

absl::Status Controller::Evaluate(Rollout& r, const config::ControlledModelConfig& model) {
  // Health answers 404 only when the gateway has no such experiment (it restarted without it):
  // then it gets the experiment back at the current step.
  auto health_or = gateway_->Health(r.experiment);
  if (!health_or.ok() && health_or.status().code() == absl::StatusCode::kNotFound) {
    ABGATE_RETURN_IF_ERROR(EnsureExperiment(r, model));
    health_or = gateway_->Health(r.experiment);
  }
  if (!health_or.ok()) return health_or.status();
  auto health = HealthByArm(*health_or);
  if (!health.ok()) return health.status();
  // Each step is analysed on its own data: with user_hash, units move between arms when the
  // weights change, so only one step's split can be checked for SRM. The step's window starts
  // when its weights were in force (recorded after the gateway applied them).
  auto report_or = gateway_->Report(r.experiment, r.step_started_ms * 1000);
  if (!report_or.ok() && report_or.status().code() == absl::StatusCode::kNotFound) {
    return Save(r);  // no exposures in this step yet
  }
  if (!report_or.ok()) return report_or.status();
  analysis::Report report = *std::move(report_or);
  auto baseline = HealthByArm(ParseObject(r.baseline_json));
  auto since = [&](const std::string& arm) {
    const ArmHealth now = health->count(arm) ? health->at(arm) : ArmHealth{};
    if (!baseline.ok() || !baseline->count(arm)) return now;
    return Since(now, baseline->at(arm));
  };
  Look look;
  look.report = &report;
  look.control = since("A");
  look.candidate = since("B");
  look.step = static_cast<size_t>(std::min<int>(r.step, static_cast<int>(model.plan.size()) - 1));
  look.step_elapsed_us = (NowMs() - r.step_started_ms) * 1000;
  look.total_elapsed_us = (NowMs() - r.started_ms) * 1000;
  Verdict v = control::Evaluate(look, model, config_.alpha);
  ++r.looks;
  // The stored report carries the decision of this look (serving guardrails included), so
  // everything that shows it later (the demo, `rollouts`) tells the same numbers.
  report.decision = v.decision;
  r.report_json = config::ToJson(analysis::ToJson(report));

  // Tracking: the look's numbers on each arm's run.
  const json::object runs = ParseObject(r.runs_json);
  const int64_t now = NowMs();
  for (const auto& arm : report.arms) {
    auto run = runs.if_contains(arm.arm);
    if (!run || !run->is_string()) continue;
    std::vector<registry::Metric> metrics = {{"units", static_cast<double>(arm.units), now, r.looks},
                                             {"exposures", static_cast<double>(arm.exposures), now, r.looks},
                                             {"traffic_percent", arm.arm == "A" ? 100 - model.plan[look.step].percent
                                                                                : model.plan[look.step].percent, now, r.looks}};
    AppendRunMetrics(report, v.decision, arm.arm, now, r.looks, &metrics);
    (void)registry_->LogBatch(std::string(run->as_string()), metrics, {}, {});  // tracking is best effort
  }

  auto finish_runs = [&](const std::string& outcome) {
    for (const auto& [arm, run] : runs) {
      if (!run.is_string()) continue;
      (void)registry_->LogBatch(std::string(run.as_string()), {}, {}, {{"ab_test.outcome", outcome}});
      (void)registry_->SetTerminated(std::string(run.as_string()), "FINISHED");
    }
  };
  switch (v.action) {
    case Action::kWait:
      return Save(r);
    case Action::kAdvance: {
      r.step += 1;
      r.step_started_ms = NowMs();
      ABGATE_RETURN_IF_ERROR(Save(r));  // the state first: a restart re-applies the weights
      const auto& next = model.plan[r.step];
      const double p = next.percent;
      // Weights and shadow share of the new step in one change.
      const json::object patch{
          {"arms", ExperimentFor(model, r.experiment, r.champion_version, r.candidate_version, next).at("arms")},
          {"shadow", json::object{{"arm", "B"}, {"percent", next.shadow_percent}}}};
      ABGATE_ASSIGN_OR_RETURN(json::object view,
                              gateway_->Call("PATCH", StrCat("/api/v1/experiments/", r.experiment), &patch));
      // Every gateway sharing the store routes by the new weights before the step counts data
      // (a fleet of one answers at once); the wait is audited as fleet_applied.
      ABGATE_ASSIGN_OR_RETURN(const int64_t version, ConfigVersionOf(view));
      ABGATE_RETURN_IF_ERROR(
          gateway_->WaitAndRecordFleet(r.experiment, version, std::chrono::milliseconds(30'000)).status());
      // The step's window starts now that its weights are in force, not when it was decided:
      // exposures served under the previous weights would otherwise count in this step (older
      // units, mostly control's, with more of their outcomes in), which biases the comparison.
      r.step_started_ms = NowMs();
      ABGATE_RETURN_IF_ERROR(Save(r));
      Emit(StrCat(r.experiment, ": ", v.reason, "; advancing to ", next.name, " (", p, "%",
                  next.shadow_percent > 0 ? StrCat(", shadow ", next.shadow_percent, "%") : std::string(), ")"));
      return absl::OkStatus();
    }
    case Action::kPromote: {
      Decision d{r.experiment, model.name, {"B", r.candidate_version}, {{"A", r.champion_version}}, v.evidence,
                 model.candidate_tag};
      d.evidence["reason"] = v.reason;
      ABGATE_RETURN_IF_ERROR(ApplyPromotion(*registry_, *gateway_, d));
      r.status = "promoted";
      r.reason = v.reason;
      finish_runs("promoted");
      ABGATE_RETURN_IF_ERROR(Save(r));
      Emit(StrCat(r.experiment, ": PROMOTED v", r.candidate_version, " — ", v.reason));
      return absl::OkStatus();
    }
    case Action::kRollback:
    case Action::kInconclusive: {
      const std::string outcome = v.action == Action::kRollback ? "rolled_back" : "inconclusive";
      ABGATE_RETURN_IF_ERROR(ApplyRollback(*registry_, *gateway_, r.experiment, model.name, {"B", r.candidate_version},
                                           outcome, v.reason, v.evidence, model.candidate_tag));
      (void)registry_->SetModelVersionTag(model.name, r.champion_version, "ab_test.status",
                                          outcome == "rolled_back" ? "kept (candidate rolled back)" : "kept (inconclusive)");
      r.status = outcome;
      r.reason = v.reason;
      finish_runs(outcome);
      ABGATE_RETURN_IF_ERROR(Save(r));
      Emit(StrCat(r.experiment, ": ", v.action == Action::kRollback ? "ROLLED BACK" : "INCONCLUSIVE", " v",
                  r.candidate_version, " — ", v.reason));
      return absl::OkStatus();
    }
  }
  return absl::OkStatus();
}

}  // namespace abgate::control

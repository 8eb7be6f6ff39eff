// abgate demo: the whole workflow on embedded defaults in one process tree — an MLflow-compatible
// registry, two trained booking models (champion = the weaker), the better one tagged
// ab_test_candidate=true, the controller picking it up, simulated users booking depending on
// what the served model ranked first, the rollout ramping 10% → 50%, and the winner promoted
// (or, with --candidate-worse, the candidate rolled back by a guardrail). Prints progress and a
// report; everything it wrote stays in --workdir.
#include <CLI/CLI.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "analysis/analysis.h"
#include "cli/commands.h"
#include "common/clock.h"
#include "common/logging.h"
#include "common/random.h"
#include "common/strings.h"
#include "config/gateway_config.h"
#include "config/json_format.h"
#include "config/json_reader.h"
#include "control/controller.h"
#include "control/gateway_admin.h"
#include "control/simulator.h"
#include "feedback/retrain.h"
#include "gateway/gateway.h"
#include "registry/registry_server.h"
#include "serving/training.h"

namespace abgate::cli {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

struct DemoFlags {
  std::string workdir = "abgate-demo";
  uint64_t seed = 7;
  int64_t users = 200000;
  double rate = 1500;
  double max_seconds = 100;
  bool candidate_worse = false;
  int generations = 1;
  std::string model = "hyatt_booking_model";
};

int Fail(std::string_view message) {
  std::fprintf(stderr, "abgate demo: %.*s\n", static_cast<int>(message.size()), message.data());
  return 1;
}

void Say(const char* fmt, auto... args) {
  std::printf(fmt, args...);
  std::printf("\n");
  std::fflush(stdout);
}

std::string Elapsed(std::chrono::steady_clock::time_point start) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%5.1fs", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return buf;
}

// The demo's mark on a folder it may empty: written first in a new or empty folder. Without it
// a non-empty folder is the user's, and the demo refuses it rather than delete anything.
constexpr const char* kWorkdirMarker = ".abgate-demo";

// Makes `workdir` an empty folder for the demo: creates it, or empties one that holds the marker
// (the folder itself is kept), or takes an empty one. Anything else is an error; nothing is removed.
std::string PrepareWorkdir(const fs::path& workdir) {
  std::error_code ec;
  const fs::file_status st = fs::symlink_status(workdir, ec);
  if (fs::exists(st)) {
    if (!fs::is_directory(st)) return StrCat("--workdir ", workdir.string(), " exists and is not a folder");
    if (!fs::is_empty(workdir, ec)) {
      if (!fs::exists(fs::symlink_status(workdir / kWorkdirMarker, ec))) {
        return StrCat("--workdir ", workdir.string(), " is not empty and was not made by abgate demo (no ",
                      kWorkdirMarker, " file in it); choose a new or empty folder");
      }
      std::vector<fs::path> entries;
      for (const auto& entry : fs::directory_iterator(workdir, ec)) entries.push_back(entry.path());
      for (const auto& entry : entries) {
        if (!ec) fs::remove_all(entry, ec);
      }
      if (ec) return StrCat("cannot empty ", workdir.string(), ": ", ec.message());
    }
  } else {
    fs::create_directories(workdir, ec);
    if (ec) return StrCat("cannot create ", workdir.string(), ": ", ec.message());
  }
  std::ofstream marker(workdir / kWorkdirMarker);
  marker << "Made by abgate demo: the next `abgate demo --workdir` on this folder empties it.\n";
  if (!marker.flush()) return StrCat("cannot write in ", workdir.string());
  return "";
}

int RunDemo(const DemoFlags& f) {
  const auto t0 = std::chrono::steady_clock::now();
  common::SetLogLevel(common::LogLevel::kWarning);
  if (const std::string error = PrepareWorkdir(f.workdir); !error.empty()) return Fail(error);
  const fs::path dir = fs::absolute(f.workdir);
  Say("abgate demo (seed %llu) in %s", static_cast<unsigned long long>(f.seed), dir.c_str());

  // 1. The embedded registry.
  auto store = registry::RegistryStore::Open((dir / "registry.db").string(), common::SystemClock::Get());
  if (!store.ok()) return Fail(ToStd(store.status().message()));
  auto artifacts = registry::ArtifactStore::Open(dir / "artifacts");
  if (!artifacts.ok()) return Fail(ToStd(artifacts.status().message()));
  registry::RegistryServerOptions ro;
  ro.port = 0;
  ro.threads = 1;
  auto reg_server = registry::RegistryServer::Create(**store, *std::move(artifacts), ro);
  if (!reg_server.ok()) return Fail(ToStd(reg_server.status().message()));
  (*reg_server)->Start();
  const std::string registry_uri = StrCat("http://127.0.0.1:", static_cast<int>((*reg_server)->port()));
  Say("[%s] registry       MLflow-compatible registry at %s (MLFLOW_TRACKING_URI)", Elapsed(t0).c_str(), registry_uri.c_str());
  auto client = registry::MlflowClient::Create(registry::MlflowClientOptions::ForUri(registry_uri));
  if (!client.ok()) return Fail(ToStd(client.status().message()));

  // 2. Two versions of different quality; the weaker one is the champion.
  const auto champion_q = f.candidate_worse ? serving::ModelQuality::kStrong : serving::ModelQuality::kWeak;
  const auto candidate_q = f.candidate_worse ? serving::ModelQuality::kWeak : serving::ModelQuality::kStrong;
  std::string versions[2];
  for (int i = 0; i < 2; ++i) {
    const auto q = i == 0 ? champion_q : candidate_q;
    auto trained = serving::TrainBookingModel(q, f.seed + i, 20000);
    if (!trained.ok()) return Fail(ToStd(trained.status().message()));
    registry::TagMap tags;
    if (i == 1) tags["ab_test_candidate"] = "true";
    auto reg = serving::LogAndRegister(**client, *trained, q, f.seed + i, "booking-model-training", f.model, tags, "xgb");
    if (!reg.ok()) return Fail(ToStd(reg.status().message()));
    versions[i] = reg->version;
    const char* quality = q == serving::ModelQuality::kStrong ? "strong" : "weak";
    if (i == 0) {
      if (auto s = (*client)->TransitionStage(f.model, reg->version, "Production", true); !s.ok()) return Fail(ToStd(s.status().message()));
      if (auto s = (*client)->SetAlias(f.model, "champion", reg->version); !s.ok()) return Fail(ToStd(s.message()));
      Say("[%s] train        v%s (%s model, holdout AUC %.3f) registered, stage Production, alias champion",
          Elapsed(t0).c_str(), reg->version.c_str(), quality, trained->holdout_auc);
    } else {
      Say("[%s] train        v%s (%s model, holdout AUC %.3f) registered and tagged ab_test_candidate=true",
          Elapsed(t0).c_str(), reg->version.c_str(), quality, trained->holdout_auc);
    }
  }

  // 3. The gateway (no experiments yet) and the controller.
  common::Xoshiro256 rng = common::Xoshiro256::FromEntropy();
  const std::string token = StrCat("demo-", rng());
  setenv("ABGATE_DEMO_ADMIN_TOKEN", token.c_str(), 1);
  const std::string yaml = StrCat(R"(
server: {listen: 127.0.0.1:0, admin_listen: 127.0.0.1:0, admin_token_env: ABGATE_DEMO_ADMIN_TOKEN, threads: 2}
registry: {uri: ")", registry_uri, R"(", cache_dir: ")", (dir / "model-cache").string(), R"("}
events: {store: "sqlite:)", (dir / "events.db").string(), R"(", flush_ms: 20}
experiments: []
)");
  auto gw_config = config::ParseGatewayConfig(yaml);
  if (!gw_config.ok()) return Fail(ToStd(gw_config.status().message()));
  auto gateway = gateway::Gateway::Create(*gw_config, common::SystemClock::Get());
  if (!gateway.ok()) return Fail(ToStd(gateway.status().message()));
  (*gateway)->Start();
  const std::string data_url = StrCat("http://127.0.0.1:", static_cast<int>((*gateway)->port()));
  const std::string admin_url = StrCat("http://127.0.0.1:", static_cast<int>((*gateway)->admin_port()));
  Say("[%s] gateway      data plane %s, admin API %s", Elapsed(t0).c_str(), data_url.c_str(), admin_url.c_str());

  const std::string controller_yaml = StrCat(R"(
controller:
  gateway_admin: ")", admin_url, R"("
  poll_interval: 1s
  state: "sqlite:)", (dir / "controller.db").string(), R"("
  tracking_experiment: hyatt-booking-ab-tests
  models:
    - name: )", f.model, R"(
      max_duration: )", static_cast<int64_t>(f.max_seconds), R"(s
      experiment:
        routing_mode: user_hash
        unit: {field: user_id}
        metrics:
          - {name: booked, type: binary, primary: true}
          - {name: revenue, type: continuous}
        guardrails: {max_error_rate: 0.02, max_p99_latency_ms: 250})", f.generations > 1 ? R"(
        payload_sample_rate: 1.0)" : "", R"(
      plan:
        - {name: shadow, percent: 0, shadow: 100, min_duration: 3s, min_units: 1000}
        - {name: canary, percent: 10, min_duration: 4s, min_units: 500}
        - {name: half, percent: 50, min_duration: 6s, min_units: 4000}
)", f.generations > 1 ? StrCat(R"(
  retrain:
    model: )", f.model, R"(
    every: 1h
    min_new_labels: 2000
    top_ranked_only: true
    data_dir: ")", (dir / "retrain").string(), R"("
    params: {max_depth: 4, eta: 0.2, rounds: 60}
)") : std::string());
  auto ctl_doc = config::YamlToJson(controller_yaml);
  if (!ctl_doc.ok()) return Fail(ToStd(ctl_doc.status().message()));
  auto ctl_config = config::ParseControllerConfig(ctl_doc->as_object().at("controller"));
  if (!ctl_config.ok()) return Fail(ToStd(ctl_config.status().message()));
  config::GatewayConfig with_controller = *gw_config;
  with_controller.controller = *ctl_config;
  auto controller = control::Controller::Create(with_controller, token, common::SystemClock::Get());
  if (!controller.ok()) return Fail(ToStd(controller.status().message()));
  (*controller)->set_on_event([t0](const std::string& line) { Say("[%s] controller   %s", Elapsed(t0).c_str(), line.c_str()); });
  (*controller)->set_retrainer(feedback::Retrain);
  if (auto s = (*controller)->Tick(); !s.ok()) return Fail(ToStd(s.message()));
  auto rollouts = (*controller)->Rollouts();
  if (rollouts.empty()) return Fail("the controller did not pick up the candidate");
  const std::string experiment = rollouts.back().experiment;

  // 4. Users and the loop, until the controller decides (or the time limit).
  std::atomic<bool> stop{false};
  std::thread loop([&] { (*controller)->Run(stop); });
  control::SimulateOptions so;
  so.gateway = data_url;
  so.users = f.users;
  so.rate = f.rate;
  so.duration_s = f.generations * (f.max_seconds + 10);
  so.seed = f.seed;
  so.workers = 8;
  Say("[%s] simulate     %lld users, %.0f requests/s, 3 hotels per search; a user books the hotel listed first",
      Elapsed(t0).c_str(), static_cast<long long>(f.users), f.rate);
  std::atomic<bool> decided{false};
  // Generation 2: after the first decision the controller exports what the gateway logged in the
  // first test, trains the next version on it and tests it against the (new) champion.
  if (f.generations > 1) {
    Say("[%s] feedback     generation 2 follows: the controller retrains on the first test's logged payloads and "
        "outcomes (controller.retrain), then tests that version against the champion",
        Elapsed(t0).c_str());
  }
  const double limit_s = f.generations * (f.max_seconds + 15);
  std::thread watcher([&] {
    while (!decided.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
      const auto all = (*controller)->Rollouts();
      int finished = 0;
      for (const auto& r : all) finished += r.status != "running";
      if (finished >= f.generations) decided = true;
      // A retrain that failed or found too little data ends the demo too (its line says why).
      if (f.generations > 1 && finished >= 1 && all.size() == static_cast<size_t>(finished)) {
        for (const auto& h : (*controller)->Retrains()) {
          if (h.status != "registered") decided = true;
        }
      }
      if (std::chrono::steady_clock::now() - t0 > std::chrono::duration<double>(limit_s)) decided = true;
    }
  });
  auto sim = control::Simulate(
      so,
      [&](const control::SimulateReport& r) {
        if (static_cast<int64_t>(r.elapsed_s) % 5 != 0) return;
        std::string arms;
        for (const auto& [arm, t] : r.arms) {
          StrAppend(&arms, "  ", arm, ": ", t.requests, " req, ",
                    t.requests ? StrCat(static_cast<double>(static_cast<int64_t>(1000.0 * t.bookings / t.requests)) / 10, "% booked")
                               : std::string("-"));
        }
        Say("[%s] traffic      %lld requests, %lld failed%s", Elapsed(t0).c_str(), static_cast<long long>(r.sent),
            static_cast<long long>(r.failed), arms.c_str());
      },
      &decided);
  watcher.join();
  stop = true;
  loop.join();
  if (!sim.ok()) return Fail(ToStd(sim.status().message()));

  // 5. The report.
  (*gateway)->FlushEventsForTest();
  // The last test's analysis is shown (with --generations 2, the retrained version's test).
  const auto tests = (*controller)->Rollouts();
  std::string shown = experiment;
  std::string report_text;
  for (const auto& r : tests) {
    shown = r.experiment;
    report_text = r.report_json;
  }
  std::vector<std::string> all_versions(std::begin(versions), std::end(versions));
  for (const auto& h : (*controller)->Retrains()) {
    if (h.status == "registered") all_versions.push_back(h.version);
  }
  // The analysis the decision rested on (the final look, the last rollout step's data).
  boost::system::error_code jec;
  const json::value report_json = json::parse(report_text, jec);
  std::printf("\n== the analysis behind the decision (last rollout step) ==\n");
  if (auto report = jec ? absl::StatusOr<analysis::Report>(absl::InvalidArgumentError("not JSON"))
                        : analysis::ReportFromJson(report_json);
      report.ok()) {
    std::printf("%s", analysis::RenderText(*report).c_str());
    std::ofstream(dir / "report.html") << analysis::RenderHtml(*report);
  } else {
    std::printf("  (the controller stored no readable report: %s)\n", std::string(report.status().message()).c_str());
  }
  // Shadow step: the candidate scored every request next to the champion, its replies discarded.
  // When the decision was taken at the shadow step, the analysis above is that step's; else the
  // shadow requests are analysed now, with every outcome that has come in since the gate.
  const bool decided_at_shadow = report_json.is_object() && report_json.as_object().contains("shadow_evaluation");
  if (auto admin = control::GatewayAdmin::Create(admin_url, token); admin.ok() && !decided_at_shadow) {
    if (auto all = (*admin)->Report(shown); all.ok() && all->shadow) {
      std::printf("\n== shadow step (all its requests, analysed now) ==\n  %s\n", analysis::ShadowLine(*all->shadow).c_str());
      for (const auto& e : all->shadow_evaluation) std::printf("  %s\n", analysis::ShadowEvaluationLine(e).c_str());
    } else if (!all.ok()) {
      std::printf("\n== shadow step ==\n  (no report: %s)\n", std::string(all.status().message()).c_str());
    }
  }
  std::printf("\n== registry after the decision ==\n");
  for (const std::string& v : all_versions) {
    auto mv = (*client)->GetModelVersion(f.model, v);
    if (!mv.ok()) continue;
    auto by_alias = (*client)->GetModelVersionByAlias(f.model, "champion");
    std::printf("  %s v%s  stage %-10s%s", f.model.c_str(), v.c_str(), mv->current_stage.c_str(),
                by_alias.ok() && std::to_string(by_alias->version) == v ? "  alias champion" : "");
    for (const char* key : {"ab_test.decision", "ab_test.sequential_p_value", "ab_test.lift"}) {
      if (auto it = mv->tags.find(key); it != mv->tags.end()) std::printf("  %s=%s", key, it->second.c_str());
    }
    std::printf("\n");
  }
  std::printf("\n== decision%s ==\n", tests.size() > 1 ? "s" : "");
  bool undecided = tests.empty() || static_cast<int>(tests.size()) < f.generations;
  for (const auto& r : tests) {
    std::printf("  %s: %s\n  %s\n", r.experiment.c_str(), r.status.c_str(), r.reason.c_str());
    undecided |= r.status == "running";
  }
  if (f.generations > 1) {
    for (const auto& h : (*controller)->Retrains()) {
      std::printf("  retrain of %s on %s: %s%s%s\n", h.model.c_str(), h.experiment.c_str(), h.status.c_str(),
                  h.message.empty() ? "" : ": ", h.message.c_str());
      if (!h.export_file.empty()) std::printf("    training data: %s\n", h.export_file.c_str());
    }
  }
  std::printf("\nsimulated %lld requests in %.1f s (%lld failed); outcomes sent %lld\n",
              static_cast<long long>(sim->sent), sim->elapsed_s, static_cast<long long>(sim->failed),
              static_cast<long long>(sim->outcomes));
  std::printf("HTML report: %s\nregistry, events and controller state: %s\n", (dir / "report.html").c_str(), dir.c_str());
  std::printf("finished in %s\n", Elapsed(t0).c_str());
  std::fflush(stdout);
  (*gateway)->Shutdown();
  (*reg_server)->Shutdown();
  if (undecided) return Fail(static_cast<int>(tests.size()) < f.generations ? "the next generation never reached a test"
                                                                          : "no decision within the time limit");
  return 0;
}

}  // namespace

Command AddDemo(CLI::App& app) {
  auto* cmd = app.add_subcommand("demo", "The whole workflow on embedded defaults: train, register, A/B test, ramp, promote");
  auto f = std::make_shared<DemoFlags>();
  cmd->add_option("--workdir", f->workdir, "where the registry, artifacts, events and report go: a new or empty folder, or one an earlier demo made (emptied)")
      ->capture_default_str();
  cmd->add_option("--seed", f->seed, "reproducible data, training and traffic")->capture_default_str();
  cmd->add_option("--users", f->users, "simulated users")->capture_default_str()->check(CLI::Range(int64_t{100}, int64_t{10'000'000}));
  cmd->add_option("--rate", f->rate, "simulated requests per second")->capture_default_str()->check(CLI::Range(10.0, 100000.0));
  auto* max_seconds = cmd->add_option("--max-seconds", f->max_seconds, "experiment time limit (then inconclusive; 45 per test with --generations 2)")
      ->capture_default_str()
      ->check(CLI::Range(10.0, 3600.0));
  cmd->add_flag("--candidate-worse", f->candidate_worse, "make the candidate the weaker model (the rollback path)");
  cmd->add_option("--generations", f->generations,
                  "2: after the first test the controller retrains on what the gateway logged and tests that version too")
      ->capture_default_str()
      ->check(CLI::Range(1, 2));
  return {cmd, [f, max_seconds]() {
    // Two tests: the second (a retrained version against a strong champion) is often a close
    // call, so each test gets less time unless asked otherwise.
    if (f->generations > 1 && max_seconds->count() == 0) f->max_seconds = 45;
    return RunDemo(*f);
  }};
}

}  // namespace abgate::cli

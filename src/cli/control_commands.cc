// abgate promote, abgate controller, abgate simulate: thin wrappers over src/control.
#include <signal.h>

#include <CLI/CLI.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include <boost/json.hpp>

#include "cli/commands.h"
#include "common/clock.h"
#include "common/strings.h"
#include "config/gateway_config.h"
#include "config/json_format.h"
#include "control/controller.h"
#include "control/manual_rollout.h"
#include "control/promotion.h"
#include "control/simulator.h"
#include "feedback/retrain.h"

namespace abgate::cli {
namespace {

int Fail(std::string_view command, std::string_view message) {
  std::fprintf(stderr, "abgate %.*s: %.*s\n", static_cast<int>(command.size()), command.data(),
               static_cast<int>(message.size()), message.data());
  return 1;
}

std::string Env(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  return v ? v : "";
}

}  // namespace

Command AddPromote(CLI::App& app) {
  auto* cmd = app.add_subcommand("promote", "Promote an experiment's winner: registry stage + aliases + tags, gateway to 100%");
  struct Flags {
    std::string config, admin_url, registry_uri, experiment, winner = "auto", token_env = "ABGATE_ADMIN_TOKEN";
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("--experiment,-e", f->experiment, "experiment name")->required();
  cmd->add_option("--winner", f->winner, "auto (from the analysis, refusing without a significant winner) or an arm name")
      ->capture_default_str();
  cmd->add_option("--config,-c", f->config, "gateway config (admin address and registry URI)");
  cmd->add_option("--admin-url", f->admin_url, "gateway admin API, e.g. http://127.0.0.1:8081");
  cmd->add_option("--registry-uri", f->registry_uri, "MLflow tracking URI (default: config or $MLFLOW_TRACKING_URI)");
  cmd->add_option("--token-env", f->token_env, "environment variable holding the admin token")->capture_default_str();
  return {cmd, [f]() -> int {
    if (!f->config.empty()) {
      auto c = config::LoadGatewayConfig(f->config);
      if (!c.ok()) return Fail("promote", ToStd(c.status().message()));
      if (f->admin_url.empty()) {
        f->admin_url = StrCat("http://", c->server.admin_listen.host, ":", static_cast<int>(c->server.admin_listen.port));
      }
      if (f->registry_uri.empty()) f->registry_uri = c->registry.uri;
      if (f->token_env == "ABGATE_ADMIN_TOKEN") f->token_env = c->server.admin_token_env;
    }
    if (f->registry_uri.empty()) f->registry_uri = Env("MLFLOW_TRACKING_URI");
    if (f->admin_url.empty() || f->registry_uri.empty()) {
      return Fail("promote", "need the gateway admin URL and the registry URI (--config, or --admin-url and --registry-uri)");
    }
    auto registry = registry::MlflowClient::Create(registry::MlflowClientOptions::ForUri(f->registry_uri));
    if (!registry.ok()) return Fail("promote", ToStd(registry.status().message()));
    auto gateway = control::GatewayAdmin::Create(f->admin_url, Env(f->token_env));
    if (!gateway.ok()) return Fail("promote", ToStd(gateway.status().message()));
    control::FleetState fleet;
    auto d = control::PromoteExperiment(**registry, **gateway, f->experiment, f->winner, &fleet);
    if (!d.ok()) return Fail("promote", ToStd(d.status().message()));
    std::printf("promoted %s version %s (arm %s) of %s; archived:", d->model.c_str(), d->winner.version.c_str(),
                d->winner.arm.c_str(), d->experiment.c_str());
    for (const auto& l : d->losers) std::printf(" v%s", l.version.c_str());
    std::printf("\nevidence: %s\n", config::ToJson(d->evidence).c_str());
    std::printf("in force on %d/%zu live gateway(s) sharing the store (audited as fleet_applied)\n", fleet.live(),
                fleet.replicas.size());
    return 0;
  }};
}

Command AddRollout(CLI::App& app) {
  auto* cmd = app.add_subcommand("rollout", "Step a ramp by hand: give an arm a share of the traffic on every gateway");
  struct Flags {
    std::string config, admin_url, experiment, arm, token_env = "ABGATE_ADMIN_TOKEN";
    double percent = -1;
    double timeout_s = 30;
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("--experiment,-e", f->experiment, "experiment name")->required();
  cmd->add_option("--percent,-p", f->percent, "share of the traffic for the arm, 0-100")->required();
  cmd->add_option("--arm", f->arm, "the arm to ramp (default: the only non-control arm)");
  cmd->add_option("--config,-c", f->config, "gateway config (admin address and token variable)");
  cmd->add_option("--admin-url", f->admin_url, "gateway admin API, e.g. http://127.0.0.1:8081");
  cmd->add_option("--token-env", f->token_env, "environment variable holding the admin token")->capture_default_str();
  cmd->add_option("--timeout", f->timeout_s, "seconds to wait for every gateway to apply it")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  return {cmd, [f]() -> int {
    if (!f->config.empty()) {
      auto c = config::LoadGatewayConfig(f->config);
      if (!c.ok()) return Fail("rollout", ToStd(c.status().message()));
      if (f->admin_url.empty()) {
        f->admin_url = StrCat("http://", c->server.admin_listen.host, ":", static_cast<int>(c->server.admin_listen.port));
      }
      if (f->token_env == "ABGATE_ADMIN_TOKEN") f->token_env = c->server.admin_token_env;
    }
    if (f->admin_url.empty()) return Fail("rollout", "need the gateway admin URL (--config or --admin-url)");
    auto gateway = control::GatewayAdmin::Create(f->admin_url, Env(f->token_env));
    if (!gateway.ok()) return Fail("rollout", ToStd(gateway.status().message()));
    auto step = control::StepRollout(**gateway, f->experiment, f->percent, f->arm,
                                     std::chrono::milliseconds(static_cast<int64_t>(f->timeout_s * 1000)));
    if (!step.ok()) return Fail("rollout", ToStd(step.status().message()));
    std::string weights;
    for (size_t i = 0; i < step->arms.size(); ++i) {
      weights += StrCat(i ? " " : "", step->arms[i], "=", step->weights[i]);
    }
    std::printf("%s: arm %s at %g%% (weights %s), config version %lld in force on %d live gateway(s) after %lld ms\n",
                step->experiment.c_str(), step->arm.c_str(), f->percent, weights.c_str(),
                static_cast<long long>(step->config_version), step->live_replicas,
                static_cast<long long>(step->waited_ms));
    return 0;
  }};
}

Command AddController(CLI::App& app) {
  auto* cmd = app.add_subcommand("controller", "Run the automation loop: candidates → experiments → ramp → promote/rollback");
  auto path = std::make_shared<std::string>();
  auto once = std::make_shared<bool>(false);
  cmd->add_option("--config,-c", *path, "config with registry.uri and a controller: section")->required();
  cmd->add_flag("--once", *once, "one evaluation pass, then exit");
  return {cmd, [path, once]() -> int {
    auto c = config::LoadGatewayConfig(*path);
    if (!c.ok()) return Fail("controller", ToStd(c.status().message()));
    auto controller = control::Controller::Create(*c, Env(c->server.admin_token_env), common::SystemClock::Get());
    if (!controller.ok()) return Fail("controller", ToStd(controller.status().message()));
    (*controller)->set_on_event([](const std::string& line) {
      std::printf("%s\n", line.c_str());
      std::fflush(stdout);
    });
    (*controller)->set_retrainer(feedback::Retrain);  // controller.retrain: export, train, register, tag
    if (*once) {
      absl::Status s = (*controller)->Tick();
      return s.ok() ? 0 : Fail("controller", ToStd(s.message()));
    }
    BlockStopSignals();
    std::atomic<bool> stop{false};
    std::thread loop([&] { (*controller)->Run(stop); });
    std::printf("abgate controller: watching %zu model(s), gateway %s\n", c->controller->models.size(),
                c->controller->gateway_admin.c_str());
    std::fflush(stdout);
    WaitForStopSignal();
    stop = true;
    loop.join();
    return 0;
  }};
}

Command AddSimulate(CLI::App& app) {
  auto* cmd = app.add_subcommand("simulate", "Send simulated booking traffic and outcomes to a gateway (bounded)");
  auto o = std::make_shared<control::SimulateOptions>();
  cmd->add_option("--gateway,-g", o->gateway, "gateway data plane URL")->capture_default_str();
  cmd->add_option("--experiment,-e", o->experiment, "experiment (default: the gateway's default, POST /predict)");
  cmd->add_option("--users", o->users, "distinct users")->capture_default_str()->check(CLI::Range(int64_t{1}, int64_t{100'000'000}));
  cmd->add_option("--rate", o->rate, "requests per second")->capture_default_str()->check(CLI::Range(0.1, 1e6));
  cmd->add_option("--duration", o->duration_s, "seconds")->capture_default_str()->check(CLI::Range(0.1, 86400.0));
  cmd->add_option("--max-requests", o->max_requests, "stop after this many requests")->capture_default_str();
  cmd->add_option("--hotels", o->hotels, "candidate hotels per session")->capture_default_str()->check(CLI::Range(1, 100));
  cmd->add_option("--workers", o->workers, "concurrent requests")->capture_default_str()->check(CLI::Range(1, 256));
  cmd->add_option("--seed", o->seed, "random seed")->capture_default_str();
  return {cmd, [o]() -> int {
    auto report = control::Simulate(*o, [](const control::SimulateReport& r) {
      std::fprintf(stderr, "  %5.1fs  sent %lld  ok %lld  failed %lld\n", r.elapsed_s, static_cast<long long>(r.sent),
                   static_cast<long long>(r.ok), static_cast<long long>(r.failed));
    });
    if (!report.ok()) return Fail("simulate", ToStd(report.status().message()));
    std::printf("sent %lld requests in %.1f s: %lld answered, %lld failed; %lld outcomes (%lld rejected)\n",
                static_cast<long long>(report->sent), report->elapsed_s, static_cast<long long>(report->ok),
                static_cast<long long>(report->failed), static_cast<long long>(report->outcomes),
                static_cast<long long>(report->outcomes_rejected));
    for (const auto& [arm, t] : report->arms) {
      std::printf("  %-14s %8lld requests  %7lld bookings (%.2f%%)  revenue %.0f\n", arm.c_str(),
                  static_cast<long long>(t.requests), static_cast<long long>(t.bookings),
                  t.requests ? 100.0 * t.bookings / t.requests : 0.0, t.revenue);
    }
    return report->ok > 0 ? 0 : Fail("simulate", "no request was answered");
  }};
}

}  // namespace abgate::cli

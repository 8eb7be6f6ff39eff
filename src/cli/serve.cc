// abgate serve --config FILE: the gateway, until SIGINT or SIGTERM (graceful drain + flush).
// SIGHUP re-reads the file and applies its experiments; a file that does not validate is
// logged in one line and the running config stays.
#include <signal.h>

#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "common/logging.h"
#include "common/strings.h"
#include "config/gateway_config.h"
#include "gateway/gateway.h"

namespace abgate::cli {

Command AddServe(CLI::App& app) {
  auto* cmd = app.add_subcommand("serve", "Run the gateway: /predict, /invocations, admin API, /metrics");
  auto config_path = std::make_shared<std::string>();
  auto listen = std::make_shared<std::string>();
  auto admin_listen = std::make_shared<std::string>();
  cmd->add_option("--config,-c", *config_path, "YAML config file")->required();
  cmd->add_option("--listen", *listen, "override server.listen (HOST:PORT, port 0 = any)");
  cmd->add_option("--admin-listen", *admin_listen, "override server.admin_listen");
  return {cmd, [config_path, listen, admin_listen]() -> int {
    auto config = config::LoadGatewayConfig(*config_path);
    if (!config.ok()) {
      std::fprintf(stderr, "abgate serve: %s\n", std::string(config.status().message()).c_str());
      return 1;
    }
    for (auto [text, target] : {std::pair{listen.get(), &config->server.listen},
                                std::pair{admin_listen.get(), &config->server.admin_listen}}) {
      if (text->empty()) continue;
      auto hp = config::ParseHostPort(*text);
      if (!hp.ok()) {
        std::fprintf(stderr, "abgate serve: %s\n", std::string(hp.status().message()).c_str());
        return 1;
      }
      *target = *hp;
    }
    BlockStopSignals();
    // SIGHUP too, before any thread starts, so that only the wait below takes it.
    sigset_t hangup;
    sigemptyset(&hangup);
    sigaddset(&hangup, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &hangup, nullptr);

    auto gw = gateway::Gateway::Create(*std::move(config), common::SystemClock::Get());
    if (!gw.ok()) {
      std::fprintf(stderr, "abgate serve: %s\n", std::string(gw.status().message()).c_str());
      return 1;
    }
    (*gw)->Start();
    // Machine-readable readiness line (tests and scripts read the ports from it).
    std::printf("abgate serve: listening data=127.0.0.1:%u admin=127.0.0.1:%u\n", (*gw)->port(), (*gw)->admin_port());
    std::fflush(stdout);
    ABGATE_LOG(kInfo, "serving on port %d (admin %d)", (*gw)->port(), (*gw)->admin_port());
    sigset_t waited;
    sigemptyset(&waited);
    for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&waited, s);
    int sig = 0;
    while (sigwait(&waited, &sig) == 0 && sig == SIGHUP) {
      auto reloaded = config::LoadGatewayConfig(*config_path);
      absl::Status applied = (*gw)->ReloadExperiments(
          reloaded.ok() ? absl::StatusOr<std::vector<config::ExperimentConfig>>(reloaded->experiments)
                        : absl::StatusOr<std::vector<config::ExperimentConfig>>(reloaded.status()));
      if (!applied.ok()) {
        ABGATE_LOG(kError, "SIGHUP: keeping the running config: %s", applied.message());
        continue;
      }
      ABGATE_LOG(kInfo, "SIGHUP: reloaded %d experiment(s) from %s (config version %d; listen, events and registry "
                 "settings change at restart)", reloaded->experiments.size(), *config_path, (*gw)->snapshot()->version);
    }
    ABGATE_LOG(kInfo, "%s: draining", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    (*gw)->Shutdown();
    return 0;
  }};
}

}  // namespace abgate::cli

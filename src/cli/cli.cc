#include "cli/cli.h"

#include <pthread.h>
#include <signal.h>

#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include "cli/commands.h"

namespace abgate::cli {

namespace {
sigset_t StopSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  return signals;
}
}  // namespace

void BlockStopSignals() {
  const sigset_t signals = StopSignals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

int WaitForStopSignal() {
  const sigset_t signals = StopSignals();
  int sig = 0;
  sigwait(&signals, &sig);
  return sig;
}

int Main(int argc, char** argv) {
  CLI::App app{"abgate: an A/B testing gateway for machine-learning model versions"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "abgate 0.1.0");
  const std::vector<Command> commands = {AddServe(app), AddAssign(app), AddAnalyze(app), AddPlan(app), AddImport(app), AddRegistry(app), AddModelServer(app), AddTrain(app), AddExport(app), AddPromote(app), AddRollout(app), AddController(app), AddSimulate(app), AddDemo(app)};
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // One line, non-zero exit.
    std::fprintf(stderr, "abgate: %s (see abgate --help)\n", e.what());
    return 2;
  }
  for (const auto& command : commands) {
    if (command.app->parsed()) return command.run();
  }
  return 2;
}

}  // namespace abgate::cli

// Subcommand registration shared by the cli/*.cc files (the only files that include CLI11).
#pragma once

#include <functional>

namespace CLI {
class App;
}

namespace abgate::cli {

// A subcommand and the function that runs it once the command line is parsed.
struct Command {
  CLI::App* app;
  std::function<int()> run;
};

// For long-running commands: blocks SIGINT and SIGTERM in this thread and every thread it
// starts afterwards (and ignores SIGPIPE), so WaitForStopSignal can take them synchronously.
void BlockStopSignals();
// Waits for SIGINT or SIGTERM (after BlockStopSignals) and returns which one came.
int WaitForStopSignal();

Command AddServe(CLI::App& app);
Command AddAssign(CLI::App& app);
Command AddAnalyze(CLI::App& app);
Command AddPlan(CLI::App& app);
Command AddImport(CLI::App& app);
Command AddRegistry(CLI::App& app);
Command AddModelServer(CLI::App& app);
Command AddTrain(CLI::App& app);
Command AddExport(CLI::App& app);
Command AddPromote(CLI::App& app);
Command AddRollout(CLI::App& app);
Command AddController(CLI::App& app);
Command AddSimulate(CLI::App& app);
Command AddDemo(CLI::App& app);

}  // namespace abgate::cli

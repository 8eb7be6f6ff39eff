// abgate plan: sample size, power or minimum detectable effect before a test starts, for the
// fixed-horizon and the sequential test. The parameters and the report are analysis/plan's, the
// same as GET /api/v1/plan's.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "analysis/plan.h"
#include "cli/commands.h"
#include "config/json_format.h"

namespace abgate::cli {

Command AddPlan(CLI::App& app) {
  auto* cmd = app.add_subcommand("plan", "Sample size, power or detectable effect of a test, before it starts");
  // Flag → parameter name of analysis::ParsePlanRequest; values are parsed there, once.
  static constexpr std::pair<const char*, const char*> kFlags[] = {
      {"--baseline", "baseline"},
      {"--mde", "mde"},
      {"--mde-relative", "mde_relative"},
      {"--sd", "sd"},
      {"--alpha", "alpha"},
      {"--power", "power"},
      {"--weights", "weights"},
      {"--daily-units", "daily_units"},
      {"--days", "days"},
      {"--units", "total_units"},
      {"--sequential-tuning", "sequential_tuning"},
  };
  static constexpr const char* kHelp[] = {
      "the control's rate (e.g. 0.10) or, with --sd, its mean",
      "absolute effect to detect (0.01 = one percentage point for a rate)",
      "effect as a fraction of the baseline (0.1 = +10%)",
      "per-unit standard deviation: plan for a mean instead of a rate",
      "family-wise significance level, two-sided (default 0.05)",
      "power per comparison (default 0.8)",
      "traffic split, control first (default 50,50); k arms → Holm over k-1 comparisons",
      "eligible units per day over all arms: gives the days",
      "run this many days (with --daily-units): gives the power or the detectable effect",
      "total units over all arms: gives the power (with an effect) or the detectable effect",
      "units where the sequential test's confidence sequence is tightest (default 5000, as analyze)",
  };
  struct Args {
    std::vector<std::string> values = std::vector<std::string>(std::size(kFlags));
    std::string format = "text";
  };
  auto args = std::make_shared<Args>();
  for (size_t i = 0; i < std::size(kFlags); ++i) cmd->add_option(kFlags[i].first, args->values[i], kHelp[i]);
  cmd->add_option("--format", args->format, "text or json")->check(CLI::IsMember({"text", "json"}));
  return {cmd, [args]() -> int {
    std::vector<std::pair<std::string, std::string>> params;
    for (size_t i = 0; i < std::size(kFlags); ++i) {
      if (!args->values[i].empty()) params.emplace_back(kFlags[i].second, args->values[i]);
    }
    auto request = analysis::ParsePlanRequest(params);
    absl::StatusOr<boost::json::value> report =
        request.ok() ? analysis::PlanReport(*request) : absl::StatusOr<boost::json::value>(request.status());
    if (!report.ok()) {
      std::fprintf(stderr, "abgate plan: %s\n", std::string(report.status().message()).c_str());
      return 1;
    }
    const std::string out =
        args->format == "json" ? config::ToJson(*report) + "\n" : analysis::RenderPlanText(*report);
    std::fputs(out.c_str(), stdout);
    return 0;
  }};
}

}  // namespace abgate::cli

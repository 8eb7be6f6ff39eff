// abgate export training-data: the gateway's sampled payloads joined with their attributed
// outcomes, as CSV or JSON lines (feedback/training_export.h).
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "common/strings.h"
#include "config/gateway_config.h"
#include "config/json_reader.h"
#include "feedback/training_export.h"

namespace abgate::cli {
namespace {

struct ExportFlags {
  std::string store, experiment, since, arm, output, format, config, registry_uri, signature_from, cache_dir;
  bool force = false;
  std::string command_line;
};

int Fail(std::string_view message) {
  std::fprintf(stderr, "abgate export training-data: %.*s\n", static_cast<int>(message.size()), message.data());
  return 1;
}

absl::StatusOr<int64_t> ParseSinceUs(const std::string& text) {
  if (text.empty()) return 0;
  // Unix seconds.
  if (text.find_first_not_of("0123456789") == std::string::npos && text.size() <= 12) {
    return static_cast<int64_t>(std::strtoll(text.c_str(), nullptr, 10)) * 1'000'000;
  }
  // A UTC time: 2026-11-27T10:00:00Z (or a space for the T; the Z may be left out).
  std::tm tm{};
  const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!end) end = strptime(text.c_str(), "%Y-%m-%d %H:%M:%S", &tm);
  if (end && (*end == '\0' || (end[0] == 'Z' && end[1] == '\0'))) return static_cast<int64_t>(timegm(&tm)) * 1'000'000;
  // A duration: that long ago.
  auto ago = config::ParseDurationUs(text);
  if (ago.ok()) {
    const int64_t now = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::system_clock::now().time_since_epoch()).count();
    return now - *ago;
  }
  return absl::InvalidArgumentError(
      StrCat("--since '", text, "': give Unix seconds, a UTC time (2026-11-27T10:00:00Z) or a duration ago (24h)"));
}

}  // namespace

Command AddExport(CLI::App& app) {
  auto* cmd = app.add_subcommand("export", "Export data from the event store");
  cmd->require_subcommand(1);
  auto* td = cmd->add_subcommand(
      "training-data",
      "Sampled request payloads joined with their attributed outcomes: one row per scored instance (CSV or JSON lines)");
  auto f = std::make_shared<ExportFlags>();
  if (const char* uri = std::getenv("MLFLOW_TRACKING_URI")) f->registry_uri = uri;
  td->add_option("--store", f->store, "event store: sqlite:PATH or postgresql://... (default: the --config's)");
  td->add_option("--experiment", f->experiment, "experiment name")->required();
  td->add_option("--since", f->since, "only exposures and outcomes from then on: Unix seconds, 2026-11-27T10:00:00Z, or 24h (ago)");
  td->add_option("--arm", f->arm, "only requests served by this arm");
  td->add_option("--output,-o", f->output, "the file to write (.csv, or .jsonl for JSON lines)")->required();
  td->add_option("--format", f->format, "csv or jsonl (default: from the file name, else csv)")
      ->check(CLI::IsMember({"csv", "jsonl"}));
  td->add_option("--config", f->config, "gateway YAML with the experiment (default: the config stored through the admin API)");
  td->add_option("--registry-uri", f->registry_uri, "registry for the served versions' signatures (default: $MLFLOW_TRACKING_URI)");
  td->add_option("--signature-from", f->signature_from, "take the column names from this model (folder or models:/ URI)");
  td->add_option("--model-cache", f->cache_dir, "where downloaded models are kept (default: a temporary folder)");
  td->add_flag("--force", f->force, "replace --output if it exists");
  return {cmd, [f, td]() -> int {
    if (!td->parsed()) return Fail("usage: abgate export training-data --store URI --experiment E --output FILE");
    feedback::ExportOptions o;
    o.store = f->store;
    o.experiment = f->experiment;
    o.arm = f->arm;
    o.output = f->output;
    o.overwrite = f->force;
    o.registry_uri = f->registry_uri;
    o.signature_from = f->signature_from;
    o.model_cache_dir = f->cache_dir;
    auto since = ParseSinceUs(f->since);
    if (!since.ok()) return Fail(ToStd(since.status().message()));
    o.since_us = *since;
    const std::string format = !f->format.empty() ? f->format
                               : (f->output.ends_with(".jsonl") || f->output.ends_with(".json")) ? "jsonl"
                                                                                                 : "csv";
    o.format = format == "jsonl" ? feedback::ExportFormat::kJsonLines : feedback::ExportFormat::kCsv;
    if (!f->config.empty()) {
      auto cfg = config::LoadGatewayConfig(f->config);
      if (!cfg.ok()) return Fail(ToStd(cfg.status().message()));
      for (const auto& e : cfg->experiments) {
        if (e.name == f->experiment) o.experiment_config = e;
      }
      if (!o.experiment_config) return Fail(StrCat("no experiment named '", f->experiment, "' in ", f->config));
      if (o.store.empty()) o.store = cfg->events.store;
    }
    if (o.store.empty()) return Fail("give --store URI (or --config FILE)");
    o.command_line = StrCat("abgate export training-data --store ", o.store, " --experiment ", o.experiment,
                            f->since.empty() ? "" : StrCat(" --since ", f->since), f->arm.empty() ? "" : StrCat(" --arm ", f->arm),
                            " --output ", o.output);
    auto sum = feedback::ExportTrainingData(o);
    if (!sum.ok()) return Fail(ToStd(sum.status().message()));
    std::printf("wrote %s: %lld rows from %lld sampled requests of %s (%lld exposures, %lld unsampled; left out: %lld "
                "of units in two arms, %lld maturing, %lld unreadable); features %zu, labels %s\n",
                o.output.c_str(), static_cast<long long>(sum->rows), static_cast<long long>(sum->requests_written),
                o.experiment.c_str(), static_cast<long long>(sum->exposures), static_cast<long long>(sum->unsampled),
                static_cast<long long>(sum->multiple_arm_units), static_cast<long long>(sum->maturing),
                static_cast<long long>(sum->unreadable), sum->features.size(),
                sum->labels.empty() ? "-" : sum->labels.front().c_str());
    return 0;
  }};
}

}  // namespace abgate::cli

// abgate train: trains a booking model on synthetic data (see serving/training.h), writes it as
// an MLflow model folder and/or logs it to a run and registers a version.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "common/strings.h"
#include "registry/mlflow_client.h"
#include "serving/training.h"

namespace abgate::cli {
namespace {

struct TrainFlags {
  std::string quality = "strong";
  uint64_t seed = 1;
  int64_t rows = 20000;
  std::string format = "xgb";
  std::string output;
  std::string registry_uri;
  std::string model_name;
  std::string experiment = "abgate-training";
  std::vector<std::string> tags;
  std::string alias;
  std::string stage;
};

int Fail(std::string_view message) {
  std::fprintf(stderr, "abgate train: %.*s\n", static_cast<int>(message.size()), message.data());
  return 1;
}

}  // namespace

Command AddTrain(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "Train a booking model on synthetic data; save and/or register it");
  auto f = std::make_shared<TrainFlags>();
  if (const char* uri = std::getenv("MLFLOW_TRACKING_URI")) f->registry_uri = uri;
  cmd->add_option("--quality", f->quality, "strong (every feature) or weak (lead time and price only)")
      ->capture_default_str()
      ->check(CLI::IsMember({"strong", "weak"}));
  cmd->add_option("--seed", f->seed, "data and training seed")->capture_default_str();
  cmd->add_option("--rows", f->rows, "training rows")->capture_default_str()->check(CLI::Range(int64_t{100}, int64_t{10'000'000}));
  cmd->add_option("--format", f->format, "model file format")->capture_default_str()->check(CLI::IsMember({"xgb", "json", "ubj"}));
  cmd->add_option("--output,-o", f->output, "write the MLflow model folder here");
  cmd->add_option("--registry-uri", f->registry_uri, "MLflow tracking URI (default: $MLFLOW_TRACKING_URI)");
  cmd->add_option("--model-name", f->model_name, "register a version of this model (needs a registry)");
  cmd->add_option("--experiment", f->experiment, "experiment of the training run")->capture_default_str();
  cmd->add_option("--tag", f->tags, "KEY=VALUE tag on the new version (repeatable), e.g. ab_test_candidate=true");
  cmd->add_option("--alias", f->alias, "point this alias at the new version");
  cmd->add_option("--stage", f->stage, "transition the new version to this stage");
  return {cmd, [f]() -> int {
    if (f->output.empty() && f->model_name.empty()) return Fail("give --output DIR and/or --model-name NAME");
    registry::TagMap tags;
    for (const auto& t : f->tags) {
      const size_t eq = t.find('=');
      if (eq == std::string::npos || eq == 0) return Fail(StrCat("--tag '", t, "' is not KEY=VALUE"));
      tags[t.substr(0, eq)] = t.substr(eq + 1);
    }
    std::unique_ptr<registry::MlflowClient> client;
    if (!f->model_name.empty()) {
      if (f->registry_uri.empty()) return Fail("--model-name needs --registry-uri (or MLFLOW_TRACKING_URI)");
      auto c = registry::MlflowClient::Create(registry::MlflowClientOptions::ForUri(f->registry_uri));
      if (!c.ok()) return Fail(ToStd(c.status().message()));
      client = *std::move(c);
    }
    const auto quality = f->quality == "weak" ? serving::ModelQuality::kWeak : serving::ModelQuality::kStrong;
    auto trained = serving::TrainBookingModel(quality, f->seed, f->rows);
    if (!trained.ok()) return Fail(ToStd(trained.status().message()));
    std::printf("trained a %s booking model (seed %llu, %lld rows): holdout AUC %.4f, log loss %.4f\n",
                f->quality.c_str(), static_cast<unsigned long long>(f->seed), static_cast<long long>(f->rows),
                trained->holdout_auc, trained->holdout_log_loss);
    if (!f->output.empty()) {
      absl::Status s = serving::WriteMlflowModel(trained->booster, f->output, f->format, "");
      if (!s.ok()) return Fail(ToStd(s.message()));
      std::printf("wrote the MLflow model folder %s\n", f->output.c_str());
    }
    if (client) {
      auto reg = serving::LogAndRegister(*client, *trained, quality, f->seed, f->experiment, f->model_name, tags, f->format);
      if (!reg.ok()) return Fail(ToStd(reg.status().message()));
      std::printf("registered %s version %s (run %s, source %s)\n", f->model_name.c_str(), reg->version.c_str(),
                  reg->run_id.c_str(), reg->source.c_str());
      if (!f->stage.empty()) {
        auto moved = client->TransitionStage(f->model_name, reg->version, f->stage, true);
        if (!moved.ok()) return Fail(ToStd(moved.status().message()));
      }
      if (!f->alias.empty()) {
        absl::Status s = client->SetAlias(f->model_name, f->alias, reg->version);
        if (!s.ok()) return Fail(ToStd(s.message()));
      }
    }
    std::fflush(stdout);
    return 0;
  }};
}

}  // namespace abgate::cli

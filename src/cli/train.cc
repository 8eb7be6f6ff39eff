// abgate train: trains a booking model on synthetic data (see serving/training.h), or on a file
// `abgate export training-data` wrote (--data, feedback/export_training.h), writes it as an
// MLflow model folder and/or logs it to a run and registers a version.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "common/strings.h"
#include "registry/mlflow_client.h"
#include "feedback/export_training.h"
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
  // Training on an export.
  std::string data;
  std::string label;
  std::string weight = "ipw";
  bool top_ranked_only = false;
  double holdout = 0.2;
  int rounds = 60;
  std::vector<std::string> params;
  std::vector<std::string> features;
};

int Fail(std::string_view message) {
  std::fprintf(stderr, "abgate train: %.*s\n", static_cast<int>(message.size()), message.data());
  return 1;
}

int TrainOnExport(const TrainFlags& f, const registry::TagMap& tags, registry::MlflowClient* client) {
  feedback::TrainingOptions o;
  o.label = f.label;
  o.features = f.features;
  o.inverse_probability_weights = f.weight == "ipw";
  o.top_ranked_only = f.top_ranked_only;
  o.holdout_fraction = f.holdout;
  o.rounds = f.rounds;
  for (const auto& p : f.params) {
    const size_t eq = p.find('=');
    if (eq == std::string::npos || eq == 0) return Fail(StrCat("--param '", p, "' is not KEY=VALUE"));
    o.params.emplace_back(p.substr(0, eq), p.substr(eq + 1));
  }
  auto data = feedback::ReadTrainingData(f.data, o);
  if (!data.ok()) return Fail(ToStd(data.status().message()));
  auto trained = feedback::TrainOnData(*data, o);
  if (!trained.ok()) return Fail(ToStd(trained.status().message()));
  auto metric = [](const std::optional<double>& v) { return v ? StrCat(*v) : std::string("n/a (one class)"); };
  std::printf("trained on %s: %lld rows (%lld train, %lld holdout; %lld without a label, %lld not ranked first), "
              "%zu features, weighting %s: holdout AUC %s, log loss %s\n",
              f.data.c_str(), static_cast<long long>(data->rows), static_cast<long long>(trained->train_rows),
              static_cast<long long>(trained->holdout_rows), static_cast<long long>(data->skipped_no_label),
              static_cast<long long>(data->skipped_rank), data->features.size(),
              data->weight.empty() ? "none" : "1/assignment_probability", metric(trained->holdout_auc).c_str(),
              metric(trained->holdout_log_loss).c_str());
  serving::ModelSignature signature{data->features, {}};
  const size_t cols = data->features.size();
  signature.example.assign(data->x.begin(), data->x.begin() + static_cast<std::ptrdiff_t>(std::min<size_t>(2, data->rows) * cols));
  if (!f.output.empty()) {
    absl::Status s = serving::WriteMlflowModel(trained->booster, f.output, f.format, "", signature);
    if (!s.ok()) return Fail(ToStd(s.message()));
    std::printf("wrote the MLflow model folder %s\n", f.output.c_str());
  }
  if (client) {
    const serving::RunRecord record = feedback::RunRecordFor(f.data, *data, *trained, o, f.experiment, f.model_name);
    auto reg = serving::LogAndRegisterModel(*client, trained->booster, signature, record, f.model_name, tags, f.format);
    if (!reg.ok()) return Fail(ToStd(reg.status().message()));
    std::printf("registered %s version %s (run %s, source %s)\n", f.model_name.c_str(), reg->version.c_str(),
                reg->run_id.c_str(), reg->source.c_str());
    if (!f.stage.empty()) {
      auto moved = client->TransitionStage(f.model_name, reg->version, f.stage, true);
      if (!moved.ok()) return Fail(ToStd(moved.status().message()));
    }
    if (!f.alias.empty()) {
      absl::Status s = client->SetAlias(f.model_name, f.alias, reg->version);
      if (!s.ok()) return Fail(ToStd(s.message()));
    }
  }
  std::fflush(stdout);
  return 0;
}

}  // namespace

Command AddTrain(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "Train a booking model (synthetic data, or --data an export); save and/or register it");
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
  cmd->add_option("--data", f->data, "train on this export (abgate export training-data: CSV or JSON lines) instead of synthetic data");
  cmd->add_option("--label", f->label, "the label column of --data (0/1), e.g. booked");
  cmd->add_option("--weight", f->weight, "ipw: weight rows by 1/assignment_probability; none")
      ->capture_default_str()
      ->check(CLI::IsMember({"ipw", "none"}));
  cmd->add_flag("--top-ranked-only", f->top_ranked_only, "only rows the served model ranked first (rank = 1)");
  cmd->add_option("--holdout", f->holdout, "share of units held out for the metrics")->capture_default_str()->check(CLI::Range(0.0, 0.9));
  cmd->add_option("--rounds", f->rounds, "boosting rounds (--data)")->capture_default_str()->check(CLI::Range(1, 10000));
  cmd->add_option("--param", f->params, "KEY=VALUE XGBoost parameter (repeatable), e.g. max_depth=6");
  cmd->add_option("--features", f->features, "feature columns (default: the export's)")->delimiter(',');
  return {cmd, [f]() -> int {
    if (f->output.empty() && f->model_name.empty()) return Fail("give --output DIR and/or --model-name NAME");
    registry::TagMap tags;
    for (const auto& t : f->tags) {
      const size_t eq = t.find('=');
      if (eq == std::string::npos || eq == 0) return Fail(StrCat("--tag '", t, "' is not KEY=VALUE"));
      tags[t.substr(0, eq)] = t.substr(eq + 1);
    }
    if (f->data.empty() != f->label.empty()) return Fail("--data and --label go together");
    std::unique_ptr<registry::MlflowClient> client;
    if (!f->model_name.empty()) {
      if (f->registry_uri.empty()) return Fail("--model-name needs --registry-uri (or MLFLOW_TRACKING_URI)");
      auto c = registry::MlflowClient::Create(registry::MlflowClientOptions::ForUri(f->registry_uri));
      if (!c.ok()) return Fail(ToStd(c.status().message()));
      client = *std::move(c);
    }
    if (!f->data.empty()) return TrainOnExport(*f, tags, client.get());
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

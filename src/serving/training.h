// Synthetic hotel-booking data and the training of booking models for the demo and tests:
// XGBoost binary:logistic through the C API, written as a proper MLflow model folder, and
// optionally logged to a run and registered as a version through the MLflow REST API.
//
// The data-generating process (one row = one search session shown a hotel):
//   lead_time_days ~ U(0, 365)        nightly_price ~ U(60, 600)     length_of_stay ~ U{1..14}
//   is_weekend ~ Bernoulli(0.3)       loyalty_tier ~ U{0..3}         prior_bookings ~ Poisson(2)
//   mobile ~ Bernoulli(0.5)           search_rank ~ U{1..20}
//   logit P(book) = -1.2 - 0.006 lead - 0.005 (price - 250) + 0.8 loyalty + 0.25 min(prior, 6)
//                   - 0.16 (rank - 1) + 0.1 min(stay, 7) + 1.2 mobile·[lead < 14]
//                   - 0.8 weekend·[price > 400]
// A "strong" model sees every feature (depth 4, 60 rounds); a "weak" one is trained with only
// lead time and price informative (the other columns blanked to missing; depth 2, 10 rounds),
// so its ranking is clearly worse while its signature is the same. Deterministic per seed.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "registry/mlflow_client.h"
#include "serving/booster.h"

namespace abgate::serving {

const std::vector<std::string>& BookingColumns();

struct BookingData {
  std::vector<float> features;  // row-major, BookingColumns() order
  std::vector<float> labels;    // 0/1 booked
  std::vector<double> true_probability;
  int64_t rows = 0;
};
BookingData GenerateBookings(int64_t rows, uint64_t seed);
// The true P(book) of one row under the process above.
double BookingProbability(const float* row);

enum class ModelQuality { kStrong, kWeak };

struct TrainedModel {
  Booster booster;
  double holdout_auc = 0;
  double holdout_log_loss = 0;
  std::vector<std::pair<std::string, std::string>> params;
  int rounds = 0;
};
absl::StatusOr<TrainedModel> TrainBookingModel(ModelQuality quality, uint64_t seed, int64_t rows = 20000);

// Writes an MLflow model folder as mlflow.xgboost.save_model does (MLFLOW.md §8): MLmodel with
// the xgboost and python_function flavors and the column signature, the booster in `format`
// (xgb / json / ubj), conda.yaml, python_env.yaml, requirements.txt, input_example.json and
// serving_input_example.json. `run_id` empty for a plain save.
absl::Status WriteMlflowModel(const Booster& booster, const std::filesystem::path& folder, const std::string& format,
                              const std::string& run_id);

// The columns of a model's signature (all `double`) and a few rows for its input example.
struct ModelSignature {
  std::vector<std::string> columns;
  std::vector<float> example;  // row-major, columns.size() per row (NaN: missing)
};
ModelSignature BookingSignature();
// The same for any columns (models trained on an export).
absl::Status WriteMlflowModel(const Booster& booster, const std::filesystem::path& folder, const std::string& format,
                              const std::string& run_id, const ModelSignature& signature);

struct Registration {
  std::string run_id;
  std::string version;
  std::string source;
};
// Logs `folder` as artifact `model` of a new run in experiment `experiment` (params and holdout
// metrics included), records it with runs/log-model and registers it as a new version of
// `model_name` with `tags`.
// What a training run records besides the model: its name and tags, params and metrics.
struct RunRecord {
  std::string experiment;  // tracking experiment of the run
  std::string run_name;
  registry::TagMap run_tags;
  registry::TagMap params;
  std::vector<std::pair<std::string, double>> metrics;
};
// Creates the run, logs `record`, uploads the model folder as artifact `model`, records it with
// runs/log-model and registers a new version of `model_name` with `tags`.
absl::StatusOr<Registration> LogAndRegisterModel(registry::MlflowClient& client, const Booster& booster,
                                                 const ModelSignature& signature, const RunRecord& record,
                                                 const std::string& model_name, const registry::TagMap& tags,
                                                 const std::string& format);

absl::StatusOr<Registration> LogAndRegister(registry::MlflowClient& client, const TrainedModel& trained,
                                            ModelQuality quality, uint64_t seed, const std::string& experiment,
                                            const std::string& model_name, const registry::TagMap& tags,
                                            const std::string& format);

}  // namespace abgate::serving

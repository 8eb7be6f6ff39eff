// Predictor: an MLflow XGBoost model ready to score, with its own worker threads.
//
// Scoring never runs on an I/O thread: Predict enqueues and returns; a worker takes every
// request waiting (up to `max_batch_rows` rows), scores them as one matrix with its own
// Booster (XGBoost boosters are not shareable across threads) and completes each request with
// its slice. Concurrent small requests are therefore batched without any added wait. The queue
// is bounded (ResourceExhausted when full). Thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "serving/mlflow_model.h"
#include "serving/scoring_input.h"

namespace abgate::serving {

struct PredictorOptions {
  int threads = 1;
  int64_t max_batch_rows = 4096;
  int64_t max_queue = 10000;  // requests waiting
};

using PredictDone = absl::AnyInvocable<void(absl::StatusOr<std::vector<float>>) &&>;

class Predictor {
 public:
  // Reads the MLflow folder and loads one booster per worker thread.
  static absl::StatusOr<std::shared_ptr<Predictor>> Load(const std::filesystem::path& folder,
                                                         PredictorOptions options = {});
  ~Predictor();

  // `done` runs on a worker thread.
  void Predict(Matrix rows, PredictDone done);
  // Runs `task` on a worker thread, in the queue's order (for work too long for an I/O
  // thread, such as parsing a large request body). False, and `task` dropped unrun, when the
  // queue is full or the predictor is stopping.
  bool Post(absl::AnyInvocable<void() &&> task);
  // Blocking convenience for tools and tests.
  absl::StatusOr<std::vector<float>> PredictNow(Matrix rows);

  const MlflowModel& model() const;
  int64_t num_features() const;
  // Batches scored and requests in them since start (batching shows as requests > batches).
  int64_t batches() const;
  int64_t requests() const;

  struct Impl;

 private:
  explicit Predictor(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Resolves a model location to a local MLflow model folder: a folder path or file:// URI as
// is; `models:/name/7`, `models:/name@alias`, `models:/name/Stage` through the registry at
// `registry_uri`, downloaded once into `cache_dir/<name>/<version>`.
absl::StatusOr<std::filesystem::path> ResolveModelFolder(const std::string& uri, const std::string& registry_uri,
                                                         const std::filesystem::path& cache_dir,
                                                         std::string* resolved_version = nullptr);

}  // namespace abgate::serving

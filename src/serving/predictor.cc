#include "serving/predictor.h"

#include <atomic>
#include <deque>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "common/mutex.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "registry/mlflow_client.h"
#include "serving/booster.h"

namespace abgate::serving {

struct Predictor::Impl {
  struct Job {
    Matrix rows;
    PredictDone done;
    absl::AnyInvocable<void() &&> task;  // set: not a prediction, run alone
  };

  MlflowModel model;
  PredictorOptions options;
  int64_t num_features = 0;
  common::Mutex mu;
  common::CondVar cv;  // queue or stopping
  std::deque<Job> queue ABSL_GUARDED_BY(mu);
  bool stopping ABSL_GUARDED_BY(mu) = false;
  std::vector<std::thread> workers;
  std::atomic<int64_t> batches{0};
  std::atomic<int64_t> requests{0};

  void Run(Booster booster) {
    std::vector<Job> batch;
    std::vector<float> joined;
    while (true) {
      batch.clear();
      absl::AnyInvocable<void() &&> task;
      {
        common::MutexLock lock(mu);
        while (!stopping && queue.empty()) cv.Wait(mu);
        if (queue.empty()) return;  // stopping and drained
        if (queue.front().task) {
          task = std::move(queue.front().task);
          queue.pop_front();
        }
        int64_t rows = 0;
        while (!task && !queue.empty() && !queue.front().task && (batch.empty() || rows + queue.front().rows.rows <= options.max_batch_rows) &&
               queue.front().rows.cols == (batch.empty() ? queue.front().rows.cols : batch.front().rows.cols)) {
          rows += queue.front().rows.rows;
          batch.push_back(std::move(queue.front()));
          queue.pop_front();
        }
      }
      if (task) {
        std::move(task)();
        continue;
      }
      batches.fetch_add(1, std::memory_order_relaxed);
      requests.fetch_add(static_cast<int64_t>(batch.size()), std::memory_order_relaxed);
      if (batch.size() == 1) {
        Matrix& m = batch[0].rows;
        std::move(batch[0].done)(booster.Predict(m.values.data(), m.rows, m.cols));
        continue;
      }
      joined.clear();
      int64_t total = 0;
      for (const Job& j : batch) {
        joined.insert(joined.end(), j.rows.values.begin(), j.rows.values.end());
        total += j.rows.rows;
      }
      auto out = booster.Predict(joined.data(), total, batch[0].rows.cols);
      int64_t offset = 0;
      for (Job& j : batch) {
        if (!out.ok()) {
          std::move(j.done)(out.status());
          continue;
        }
        const int64_t per_row = total ? static_cast<int64_t>(out->size()) / total : 0;
        std::vector<float> slice(out->begin() + offset * per_row, out->begin() + (offset + j.rows.rows) * per_row);
        offset += j.rows.rows;
        std::move(j.done)(std::move(slice));
      }
    }
  }
};

Predictor::Predictor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Predictor::~Predictor() {
  {
    common::MutexLock lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.NotifyAll();
  for (auto& t : impl_->workers) t.join();
}

absl::StatusOr<std::shared_ptr<Predictor>> Predictor::Load(const std::filesystem::path& folder,
                                                           PredictorOptions options) {
  ABGATE_ASSIGN_OR_RETURN(MlflowModel model, ReadMlflowModel(folder));
  std::ifstream in(model.data_file, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  const std::string data = bytes.str();
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  std::vector<Booster> boosters;
  for (int i = 0; i < std::max(1, options.threads); ++i) {
    auto b = Booster::FromBytes(data);
    if (!b.ok()) {
      return absl::Status(b.status().code(), StrCat(model.data_file.string(), ": ", ToStd(b.status().message())));
    }
    boosters.push_back(*std::move(b));
  }
  impl->num_features = boosters[0].num_features();
  if (!model.inputs.empty() && static_cast<int64_t>(model.inputs.size()) != impl->num_features) {
    return absl::InvalidArgumentError(StrCat("the signature of ", folder.string(), " has ",
                                             static_cast<int64_t>(model.inputs.size()), " columns but the booster takes ",
                                             impl->num_features, " features"));
  }
  impl->model = std::move(model);
  Impl* raw = impl.get();
  for (auto& b : boosters) raw->workers.emplace_back([raw, b = std::move(b)]() mutable { raw->Run(std::move(b)); });
  return std::shared_ptr<Predictor>(new Predictor(std::move(impl)));
}

void Predictor::Predict(Matrix rows, PredictDone done) {
  {
    common::MutexLock lock(impl_->mu);
    if (static_cast<int64_t>(impl_->queue.size()) < impl_->options.max_queue && !impl_->stopping) {
      impl_->queue.push_back({std::move(rows), std::move(done), nullptr});
      impl_->cv.NotifyOne();
      return;
    }
  }
  std::move(done)(absl::ResourceExhaustedError("the model's prediction queue is full"));
}

bool Predictor::Post(absl::AnyInvocable<void() &&> task) {
  common::MutexLock lock(impl_->mu);
  if (static_cast<int64_t>(impl_->queue.size()) >= impl_->options.max_queue || impl_->stopping) return false;
  impl_->queue.push_back({Matrix{}, nullptr, std::move(task)});
  impl_->cv.NotifyOne();
  return true;
}

absl::StatusOr<std::vector<float>> Predictor::PredictNow(Matrix rows) {
  std::promise<absl::StatusOr<std::vector<float>>> promise;
  auto future = promise.get_future();
  Predict(std::move(rows), [&promise](absl::StatusOr<std::vector<float>> r) { promise.set_value(std::move(r)); });
  return future.get();
}

const MlflowModel& Predictor::model() const { return impl_->model; }
int64_t Predictor::num_features() const { return impl_->num_features; }
int64_t Predictor::batches() const { return impl_->batches.load(std::memory_order_relaxed); }
int64_t Predictor::requests() const { return impl_->requests.load(std::memory_order_relaxed); }

absl::StatusOr<std::filesystem::path> ResolveModelFolder(const std::string& uri, const std::string& registry_uri,
                                                         const std::filesystem::path& cache_dir,
                                                         std::string* resolved_version) {
  if (uri.rfind("models:/", 0) != 0) {
    std::string path = uri;
    if (path.rfind("file://", 0) == 0) path = path.substr(7);
    if (!std::filesystem::is_directory(path)) {
      return absl::NotFoundError(StrCat("model folder '", path, "' does not exist"));
    }
    return std::filesystem::path(path);
  }
  if (registry_uri.empty()) {
    return absl::InvalidArgumentError(StrCat("model URI ", uri, " needs a registry (registry.uri / --registry-uri)"));
  }
  registry::MlflowClientOptions options;
  options.tracking_uri = registry_uri;
  ABGATE_ASSIGN_OR_RETURN(auto client, registry::MlflowClient::Create(options));
  ABGATE_ASSIGN_OR_RETURN(registry::ModelVersion v, client->ResolveModelUri(uri));
  if (resolved_version) *resolved_version = std::to_string(v.version);
  return client->DownloadModelVersion(v.name, std::to_string(v.version), cache_dir);
}

}  // namespace abgate::serving

// RegistryStore: MLflow's tracking and model-registry state (experiments, runs, params, tags,
// metrics, registered models, versions, stages, aliases) persisted in SQLite.
//
// Every entity except metric history lives in memory too: reads and searches never touch the
// database (an alias lookup is a map lookup), while every change is written to SQLite in one
// transaction first and applied to memory only once committed, so a failed write changes
// nothing. One process owns a store file. Errors use absl codes that the REST layer maps to
// MLflow's: InvalidArgument → INVALID_PARAMETER_VALUE (400), AlreadyExists →
// RESOURCE_ALREADY_EXISTS (400), NotFound → RESOURCE_DOES_NOT_EXIST (404), Internal → 500.
// Thread-safe: readers share a lock, writers take it exclusively.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/mutex.h"
#include "registry/entities.h"
#include "registry/search.h"

struct sqlite3;

namespace abgate::sqlite {
class Database;
}  // namespace abgate::sqlite

namespace abgate::registry {

enum class ViewType { kActiveOnly, kDeletedOnly, kAll };

template <typename T>
struct Page {
  std::vector<T> items;
  std::string next_page_token;  // empty on the last page
};

struct SearchRequest {
  std::string filter;
  std::vector<std::string> order_by;
  int64_t max_results = 0;  // 0 = the search's default
  std::string page_token;
  ViewType view_type = ViewType::kActiveOnly;
};

class RegistryStore {
 public:
  // Opens (creating or migrating) the SQLite file at `path` and loads it.
  static absl::StatusOr<std::unique_ptr<RegistryStore>> Open(const std::string& path, const common::Clock& clock);
  ~RegistryStore();

  // --- experiments ---
  absl::StatusOr<int64_t> CreateExperiment(const std::string& name, std::string artifact_location, const TagMap& tags);
  absl::StatusOr<Experiment> GetExperiment(int64_t id) const;
  absl::StatusOr<Experiment> GetExperimentByName(const std::string& name) const;
  absl::StatusOr<Page<Experiment>> SearchExperiments(const SearchRequest& req) const;
  absl::Status SetExperimentLifecycle(int64_t id, bool deleted);
  absl::Status RenameExperiment(int64_t id, const std::string& new_name);
  absl::Status SetExperimentTag(int64_t id, const std::string& key, const std::string& value);

  // --- runs ---
  absl::StatusOr<Run> CreateRun(int64_t experiment_id, const std::string& user_id, std::string run_name,
                                std::optional<int64_t> start_time, const TagMap& tags);
  absl::StatusOr<Run> GetRun(const std::string& run_id) const;
  absl::StatusOr<Run> UpdateRun(const std::string& run_id, std::optional<std::string> status,
                                std::optional<int64_t> end_time, std::optional<std::string> run_name);
  absl::Status SetRunLifecycle(const std::string& run_id, bool deleted);
  // Params: a different value for a logged key is refused; metrics append to the history.
  absl::Status LogBatch(const std::string& run_id, const std::vector<Metric>& metrics,
                        const std::vector<std::pair<std::string, std::string>>& params,
                        const std::vector<std::pair<std::string, std::string>>& tags);
  absl::Status DeleteRunTag(const std::string& run_id, const std::string& key);
  absl::StatusOr<Page<Run>> SearchRuns(const std::vector<int64_t>& experiment_ids, const SearchRequest& req) const;
  absl::StatusOr<std::vector<Metric>> GetMetricHistory(const std::string& run_id, const std::string& key) const;

  // --- registered models ---
  absl::StatusOr<RegisteredModel> CreateRegisteredModel(const std::string& name, const TagMap& tags,
                                                        std::optional<std::string> description);
  absl::StatusOr<RegisteredModel> GetRegisteredModel(const std::string& name) const;
  absl::StatusOr<RegisteredModel> RenameRegisteredModel(const std::string& name, const std::string& new_name);
  absl::StatusOr<RegisteredModel> UpdateRegisteredModel(const std::string& name, std::optional<std::string> description);
  absl::Status DeleteRegisteredModel(const std::string& name);
  absl::StatusOr<Page<RegisteredModel>> SearchRegisteredModels(const SearchRequest& req) const;
  absl::Status SetRegisteredModelTag(const std::string& name, const std::string& key, const std::string& value);
  absl::Status DeleteRegisteredModelTag(const std::string& name, const std::string& key);
  absl::StatusOr<std::vector<ModelVersion>> GetLatestVersions(const std::string& name,
                                                             const std::vector<std::string>& stages) const;
  absl::Status SetAlias(const std::string& name, const std::string& alias, const std::string& version);
  absl::Status DeleteAlias(const std::string& name, const std::string& alias);
  // The version and the aliases pointing at it.
  absl::StatusOr<std::pair<ModelVersion, std::vector<std::string>>> GetVersionByAlias(const std::string& name,
                                                                                     const std::string& alias) const;

  // --- model versions ---
  absl::StatusOr<ModelVersion> CreateModelVersion(const std::string& name, std::string source, const std::string& run_id,
                                                  const TagMap& tags, const std::string& run_link,
                                                  std::optional<std::string> description);
  absl::StatusOr<std::pair<ModelVersion, std::vector<std::string>>> GetModelVersion(const std::string& name,
                                                                                   const std::string& version) const;
  absl::StatusOr<ModelVersion> UpdateModelVersion(const std::string& name, const std::string& version,
                                                  std::optional<std::string> description);
  absl::StatusOr<ModelVersion> TransitionStage(const std::string& name, const std::string& version,
                                               const std::string& stage, bool archive_existing_versions);
  absl::Status DeleteModelVersion(const std::string& name, const std::string& version);
  absl::StatusOr<Page<std::pair<ModelVersion, std::vector<std::string>>>> SearchModelVersions(
      const SearchRequest& req) const;
  absl::Status SetModelVersionTag(const std::string& name, const std::string& version, const std::string& key,
                                  const std::string& value);
  absl::Status DeleteModelVersionTag(const std::string& name, const std::string& version, const std::string& key);

  // For the artifact checks of model-versions/create: a run's artifact URI.
  absl::StatusOr<std::string> RunArtifactUri(const std::string& run_id) const;

 private:
  RegistryStore(std::unique_ptr<sqlite::Database> db, const common::Clock& clock);
  absl::Status Load() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int64_t NowMs() const;
  // Lookups under the lock; NotFound with MLflow's messages.
  absl::StatusOr<Experiment*> FindExperiment(int64_t id) ABSL_SHARED_LOCKS_REQUIRED(mu_);
  absl::StatusOr<Run*> FindRun(const std::string& run_id) ABSL_SHARED_LOCKS_REQUIRED(mu_);
  absl::StatusOr<RegisteredModel*> FindModel(const std::string& name) ABSL_SHARED_LOCKS_REQUIRED(mu_);
  absl::StatusOr<ModelVersion*> FindVersion(const std::string& name, const std::string& version)
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  absl::Status CheckRunActive(const Run& run) const;

  // Readers share the in-memory maps; every use of the database connection (one SQLite
  // connection with a statement cache, not thread-safe) and every change holds it exclusively.
  const std::unique_ptr<sqlite::Database> db_ ABSL_PT_GUARDED_BY(mu_);
  const common::Clock& clock_;
  mutable common::SharedMutex mu_;
  std::map<int64_t, Experiment> experiments_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int64_t, std::less<>> experiment_ids_by_name_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Run> runs_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, RegisteredModel, std::less<>> models_ ABSL_GUARDED_BY(mu_);
};

// Parses a model version number as MLflow does ("Model version must be an integer, got 'x'").
absl::StatusOr<int64_t> ParseVersion(const std::string& version);

}  // namespace abgate::registry

// MlflowClient: abgate's client of an MLflow tracking/registry server — the embedded
// `abgate registry` or a team's real MLflow 2.x server (it follows MLFLOW.md's observed
// behaviour, not just ours).
//
// Resolves model URIs (`models:/name/7`, `models:/name@alias`, `models:/name/Production`,
// `models:/name/latest`), downloads a version's files through get-download-uri and the
// artifact proxy (`mlflow-artifacts:/…`, `runs:/…` and local sources) into a cache keyed by
// name/version, changes stages, aliases and tags, and does the tracking side (experiments,
// runs, batched params/metrics/tags, artifact uploads, model registration).
//
// Calls block the caller. Transient failures (connection errors, timeouts, 429, 500, 502,
// 503, 504) are retried with exponential backoff, as MLflow's Python client does; other errors
// come back at once with MLflow's error_code in the message and a matching absl code
// (NotFound, InvalidArgument, AlreadyExists, Unauthenticated, ...). Thread-safe: calls from many
// threads share one connection pool.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/value.hpp>

#include "absl/status/statusor.h"
#include "registry/entities.h"

namespace abgate::registry {

struct MlflowClientOptions {
  std::string tracking_uri;  // http[s]://host[:port][/prefix]
  // Credentials; empty fields are read from MLFLOW_TRACKING_USERNAME / _PASSWORD / _TOKEN.
  std::string username;
  std::string password;
  std::string token;
  // https: a PEM file of CAs to trust besides the system's, and whether to check the server's
  // certificate at all; empty/true are read from MLflow's MLFLOW_TRACKING_SERVER_CERT_PATH and
  // MLFLOW_TRACKING_INSECURE_TLS.
  std::string tls_ca_file;
  bool tls_insecure = false;
  int max_retries = 5;
  int64_t initial_backoff_ms = 100;  // doubled per retry, capped at 5 s
  int64_t request_timeout_ms = 30'000;

  static MlflowClientOptions ForUri(std::string uri) {
    MlflowClientOptions o;
    o.tracking_uri = std::move(uri);
    return o;
  }
};

// A parsed `models:/` URI. Exactly one of version, alias, stage is set ("latest" is a stage).
struct ModelUri {
  std::string name;
  std::string version;
  std::string alias;
  std::string stage;
};
absl::StatusOr<ModelUri> ParseModelUri(std::string_view uri);

struct RunHandle {
  std::string run_id;
  std::string experiment_id;
  std::string artifact_uri;
};

class MlflowClient {
 public:
  static absl::StatusOr<std::unique_ptr<MlflowClient>> Create(MlflowClientOptions options);
  ~MlflowClient();

  // One REST call under /api/2.0/mlflow/<path>. GET sends `body`'s fields as a query string.
  // Returns the reply's JSON object.
  absl::StatusOr<boost::json::object> Call(std::string_view method, std::string_view path,
                                           const boost::json::object& body);

  // --- registry ---
  absl::StatusOr<ModelVersion> GetModelVersion(const std::string& name, const std::string& version);
  absl::StatusOr<ModelVersion> GetModelVersionByAlias(const std::string& name, const std::string& alias);
  // The highest version in each of `stages` (all stages when empty).
  absl::StatusOr<std::vector<ModelVersion>> GetLatestVersions(const std::string& name,
                                                             const std::vector<std::string>& stages);
  // The version a `models:/` URI names.
  absl::StatusOr<ModelVersion> ResolveModelUri(std::string_view uri);
  absl::StatusOr<std::string> GetDownloadUri(const std::string& name, const std::string& version);
  // Every version matching an MLflow filter, across pages.
  absl::StatusOr<std::vector<ModelVersion>> SearchModelVersions(const std::string& filter);
  // Creates the registered model unless it exists.
  absl::Status EnsureRegisteredModel(const std::string& name);
  absl::StatusOr<ModelVersion> CreateModelVersion(const std::string& name, const std::string& source,
                                                  const std::string& run_id, const TagMap& tags);
  absl::StatusOr<ModelVersion> TransitionStage(const std::string& name, const std::string& version,
                                               const std::string& stage, bool archive_existing_versions);
  absl::Status SetAlias(const std::string& name, const std::string& alias, const std::string& version);
  absl::Status DeleteAlias(const std::string& name, const std::string& alias);
  absl::Status SetModelVersionTag(const std::string& name, const std::string& version, const std::string& key,
                                  const std::string& value);
  absl::Status DeleteModelVersionTag(const std::string& name, const std::string& version, const std::string& key);
  absl::Status SetRegisteredModelTag(const std::string& name, const std::string& key, const std::string& value);

  // --- artifacts ---
  // Downloads the files under an artifact URI (mlflow-artifacts:/, runs:/, a local path or
  // file://) into `dest` (created).
  absl::Status DownloadArtifacts(const std::string& uri, const std::filesystem::path& dest);
  // Downloads a model version once into `cache_root/<name>/<version>` and returns that folder.
  // Concurrent callers (threads or processes) download into private temporary folders and
  // rename into place, so a partial download is never visible.
  absl::StatusOr<std::filesystem::path> DownloadModelVersion(const std::string& name, const std::string& version,
                                                             const std::filesystem::path& cache_root);
  // PUTs `bytes` to `<artifact_uri>/<relative>` through the artifact proxy.
  absl::Status UploadArtifact(const std::string& artifact_uri, const std::string& relative, std::string_view bytes);

  // --- tracking ---
  // The experiment's id, creating it when missing.
  absl::StatusOr<std::string> GetOrCreateExperiment(const std::string& name);
  absl::StatusOr<RunHandle> CreateRun(const std::string& experiment_id, const std::string& run_name, const TagMap& tags);
  // Splits into MLflow's per-call limits (1000 metrics, 100 params, 100 tags).
  absl::Status LogBatch(const std::string& run_id, const std::vector<Metric>& metrics, const TagMap& params,
                        const TagMap& tags);
  absl::Status SetTerminated(const std::string& run_id, const std::string& status);
  absl::Status LogModel(const std::string& run_id, const boost::json::object& mlmodel);
  // Runs matching `filter` in the experiments, across pages, as returned (info + data).
  absl::StatusOr<std::vector<boost::json::object>> SearchRuns(const std::vector<std::string>& experiment_ids,
                                                              const std::string& filter);

  const std::string& tracking_uri() const;

  struct Impl;

 private:
  explicit MlflowClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A model version from MLflow's JSON (fields that are absent stay default).
ModelVersion ModelVersionFromJson(const boost::json::object& o);

}  // namespace abgate::registry

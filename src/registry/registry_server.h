// RegistryServer: `abgate registry`, an MLflow-compatible tracking and model-registry server
// (MLFLOW.md §3–§6): the REST API under /api/2.0/mlflow/ and /ajax-api/2.0/mlflow/, the
// artifact proxy under /api/2.0/mlflow-artifacts/, /health and /version.
//
// Requests are parsed the way MLflow's Flask handlers parse them (query strings for GET, JSON
// bodies otherwise, MLflow's messages for missing or mistyped fields) and answered with
// MLflow's JSON. Store calls are short in-memory operations plus one SQLite commit, so they run
// on the I/O threads. With credentials configured, every request that changes state needs HTTP
// Basic or a bearer token (what MLflow clients send from MLFLOW_TRACKING_USERNAME/PASSWORD or
// MLFLOW_TRACKING_TOKEN); reads stay open. Credentials and body limits are checked on the
// request's header, before its body is read: an anonymous upload is refused without reading it,
// API calls get a small body limit, and artifact uploads stream to a temporary file (never held
// in memory) renamed into place once complete. Thread-safe after Start.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "registry/artifact_store.h"
#include "registry/registry_store.h"

namespace abgate::registry {

struct RegistryServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 5000;  // 0 = any free port
  int threads = 2;
  int64_t max_body_bytes = 4ll << 20;           // REST calls (JSON)
  int64_t max_artifact_bytes = 2048ll << 20;    // one artifact upload (streamed to disk)
  int64_t read_timeout_us = 10'000'000;         // a request's header (and a REST call's body)
  int64_t upload_timeout_us = 600'000'000;      // an artifact upload's body
  int64_t max_connections = 0;                  // 0 = http::DefaultMaxConnections()
  // Credentials for mutations; all empty = no authentication.
  std::string username;
  std::string password;
  std::string token;
};

class RegistryServer {
 public:
  static absl::StatusOr<std::unique_ptr<RegistryServer>> Create(RegistryStore& store, ArtifactStore artifacts,
                                                                RegistryServerOptions options);
  ~RegistryServer();
  uint16_t port() const;
  void Start();
  void Shutdown();

  struct Impl;

 private:
  explicit RegistryServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace abgate::registry

// ModelServer: `abgate model-server`, a drop-in for `mlflow models serve` with an XGBoost model:
// `/invocations` (the four JSON forms and CSV; MLflow's replies and errors, MLFLOW.md §7),
// `/ping`, `/health`, `/version`. Small requests are parsed on the I/O threads, large ones
// (over 64 KB) and every prediction on the Predictor's workers. Thread-safe after Start.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "serving/predictor.h"

namespace abgate::serving {

struct ModelServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 5001;
  int threads = 1;  // I/O threads; scoring threads belong to the Predictor
  int64_t max_body_bytes = 64ll << 20;
  int64_t read_timeout_us = 10'000'000;  // from a request's first byte to its last (408)
  int64_t max_connections = 0;           // 0 = http::DefaultMaxConnections()
};

class ModelServer {
 public:
  static absl::StatusOr<std::unique_ptr<ModelServer>> Create(std::shared_ptr<Predictor> predictor,
                                                             ModelServerOptions options);
  ~ModelServer();
  uint16_t port() const;
  void Start();
  void Shutdown();

  struct Impl;

 private:
  explicit ModelServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The scoring handler shared by the model server and the gateway's in-process arms: parses
// `body` of `content_type` for `predictor` (on the calling thread up to 64 KB, else on a
// predictor thread) and scores it asynchronously. Parsing is linear in the body and bounded by
// LimitsFor (a 400 beyond). `done` runs once, on the calling thread for a bad content type or
// small bad input, else on a predictor thread.
struct ScoringReply {
  std::vector<float> predictions;
  std::optional<ScoringError> error;  // bad input (400/415), as MLflow reports it
  absl::Status status;                // scoring failed (500) or the queue is full (503)
};
void Score(Predictor& predictor, std::string_view content_type, std::string body,
           absl::AnyInvocable<void(ScoringReply) &&> done);

}  // namespace abgate::serving

// abgate model-server --model URI: serves one MLflow XGBoost model over MLflow's scoring protocol.
#include <signal.h>

#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "common/logging.h"
#include "common/strings.h"
#include "serving/model_server.h"

namespace abgate::cli {
namespace {

struct ModelServerFlags {
  std::string model;
  std::string host = "127.0.0.1";
  int port = 5001;
  std::string registry_uri;
  std::string cache_dir = "abgate-model-cache";
  int workers = 1;
  int threads = 1;
  double read_timeout_s = 10;
  int64_t max_connections = 0;
};

int Fail(std::string_view message) {
  std::fprintf(stderr, "abgate model-server: %.*s\n", static_cast<int>(message.size()), message.data());
  return 1;
}

}  // namespace

Command AddModelServer(CLI::App& app) {
  auto* cmd = app.add_subcommand("model-server", "Serve one MLflow XGBoost model over MLflow's scoring protocol");
  auto f = std::make_shared<ModelServerFlags>();
  if (const char* uri = std::getenv("MLFLOW_TRACKING_URI")) f->registry_uri = uri;
  cmd->add_option("--model,-m", f->model, "models:/NAME/VERSION, models:/NAME@ALIAS, models:/NAME/STAGE or a folder")
      ->required();
  cmd->add_option("--host", f->host, "listen address")->capture_default_str();
  cmd->add_option("--port,-p", f->port, "listen port, 0 = any free port")->capture_default_str()->check(CLI::Range(0, 65535));
  cmd->add_option("--registry-uri", f->registry_uri, "MLflow tracking URI for models:/ (default: $MLFLOW_TRACKING_URI)");
  cmd->add_option("--cache-dir", f->cache_dir, "where registry models are downloaded")->capture_default_str();
  cmd->add_option("--workers,-w", f->workers, "scoring threads (one booster each)")->capture_default_str()->check(CLI::Range(1, 64));
  cmd->add_option("--threads", f->threads, "I/O threads")->capture_default_str()->check(CLI::Range(1, 64));
  cmd->add_option("--read-timeout", f->read_timeout_s, "seconds from a request's first byte to its last (then 408)")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 3600.0));
  cmd->add_option("--max-connections", f->max_connections,
                  "open connections at most (idle ones are closed to make room); 0 = half the open-file limit, at most 10000")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30));
  return {cmd, [f]() -> int {
    BlockStopSignals();
    std::string version;
    auto folder = serving::ResolveModelFolder(f->model, f->registry_uri, f->cache_dir, &version);
    if (!folder.ok()) return Fail(ToStd(folder.status().message()));
    auto predictor = serving::Predictor::Load(*folder, {.threads = f->workers});
    if (!predictor.ok()) return Fail(ToStd(predictor.status().message()));
    serving::ModelServerOptions options;
    options.host = f->host;
    options.port = static_cast<uint16_t>(f->port);
    options.threads = f->threads;
    options.read_timeout_us = static_cast<int64_t>(f->read_timeout_s * 1e6);
    options.max_connections = f->max_connections;
    auto server = serving::ModelServer::Create(*predictor, options);
    if (!server.ok()) return Fail(ToStd(server.status().message()));
    (*server)->Start();
    std::printf("abgate model-server: listening http://%s:%u (model %s%s%s from %s)\n", f->host.c_str(),
                (*server)->port(), f->model.c_str(), version.empty() ? "" : ", version ", version.c_str(),
                folder->string().c_str());
    std::fflush(stdout);
    const int sig = WaitForStopSignal();
    ABGATE_LOG(kInfo, "%s: stopping the model server", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    (*server)->Shutdown();
    return 0;
  }};
}

}  // namespace abgate::cli

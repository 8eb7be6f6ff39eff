// abgate registry: the embedded MLflow-compatible tracking and registry server.
#include <signal.h>

#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "common/clock.h"
#include "common/logging.h"
#include "common/strings.h"
#include "registry/registry_server.h"

namespace abgate::cli {
namespace {

struct RegistryFlags {
  std::string store = "sqlite:abgate-registry.db";
  std::string artifacts = "abgate-artifacts";
  std::string host = "127.0.0.1";
  int port = 5000;
  int threads = 2;
  int max_artifact_mb = 2048;
  double read_timeout_s = 10;
  double upload_timeout_s = 600;
  int64_t max_connections = 0;
};

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

int Fail(std::string_view message) {
  std::fprintf(stderr, "abgate registry: %.*s\n", static_cast<int>(message.size()), message.data());
  return 1;
}

}  // namespace

Command AddRegistry(CLI::App& app) {
  auto* cmd = app.add_subcommand("registry", "Run the embedded MLflow-compatible tracking and model-registry server");
  auto flags = std::make_shared<RegistryFlags>();
  cmd->add_option("--store", flags->store, "sqlite:FILE for runs, experiments and the registry")->capture_default_str();
  cmd->add_option("--artifacts", flags->artifacts, "folder for artifacts (served as mlflow-artifacts:/)")
      ->capture_default_str();
  cmd->add_option("--host", flags->host, "listen address (loopback by default)")->capture_default_str();
  cmd->add_option("--port", flags->port, "listen port, 0 = any free port")->capture_default_str()->check(CLI::Range(0, 65535));
  cmd->add_option("--threads", flags->threads, "I/O threads")->capture_default_str()->check(CLI::Range(1, 64));
  cmd->add_option("--max-artifact-mb", flags->max_artifact_mb, "largest artifact upload (streamed to disk)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--read-timeout", flags->read_timeout_s,
                  "seconds from a request's first byte to its last, artifact uploads excepted (then 408)")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 3600.0));
  cmd->add_option("--upload-timeout", flags->upload_timeout_s, "seconds for an artifact upload's body")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 86400.0));
  cmd->add_option("--max-connections", flags->max_connections,
                  "open connections at most (idle ones are closed to make room); 0 = half the open-file limit, at most 10000")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30));
  cmd->footer(
      "Authentication: set ABGATE_REGISTRY_USERNAME and ABGATE_REGISTRY_PASSWORD (HTTP Basic) and/or\n"
      "ABGATE_REGISTRY_TOKEN (bearer) to require credentials for every change; MLflow clients send them\n"
      "from MLFLOW_TRACKING_USERNAME/PASSWORD or MLFLOW_TRACKING_TOKEN.");
  return {cmd, [flags]() -> int {
    if (flags->store.rfind("sqlite:", 0) != 0) return Fail("--store must be sqlite:FILE");
    BlockStopSignals();

    auto store = registry::RegistryStore::Open(flags->store.substr(7), common::SystemClock::Get());
    if (!store.ok()) return Fail(ToStd(store.status().message()));
    auto artifacts = registry::ArtifactStore::Open(flags->artifacts);
    if (!artifacts.ok()) return Fail(ToStd(artifacts.status().message()));
    registry::RegistryServerOptions options;
    options.host = flags->host;
    options.port = static_cast<uint16_t>(flags->port);
    options.threads = flags->threads;
    options.max_artifact_bytes = int64_t{flags->max_artifact_mb} << 20;
    options.read_timeout_us = static_cast<int64_t>(flags->read_timeout_s * 1e6);
    options.upload_timeout_us = static_cast<int64_t>(flags->upload_timeout_s * 1e6);
    options.max_connections = flags->max_connections;
    options.username = Env("ABGATE_REGISTRY_USERNAME");
    options.password = Env("ABGATE_REGISTRY_PASSWORD");
    options.token = Env("ABGATE_REGISTRY_TOKEN");
    auto server = registry::RegistryServer::Create(**store, *std::move(artifacts), options);
    if (!server.ok()) return Fail(ToStd(server.status().message()));
    (*server)->Start();
    std::printf("abgate registry: listening http://%s:%u\n", flags->host.c_str(), (*server)->port());
    std::fflush(stdout);
    const int sig = WaitForStopSignal();
    ABGATE_LOG(kInfo, "%s: stopping the registry", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    (*server)->Shutdown();
    return 0;
  }};
}

}  // namespace abgate::cli

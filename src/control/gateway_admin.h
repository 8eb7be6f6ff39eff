// GatewayAdmin: a blocking client of the gateway's admin API (/api/v1/...), for the controller
// and `abgate promote`. Errors carry the gateway's error_code and HTTP status. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "absl/status/statusor.h"
#include "analysis/report.h"
#include "http/blocking_client.h"

namespace abgate::control {

// GET /api/v1/fleet: the gateways sharing the event store and the config version each serves.
struct ReplicaState {
  std::string id;
  std::string address;
  int64_t applied_config_version = 0;
  int64_t heartbeat_age_ms = 0;
  bool live = false;
};
struct FleetState {
  int64_t config_version = 0;  // the store's newest
  std::vector<ReplicaState> replicas;
  // Live replicas serving a version below `version`.
  std::vector<std::string> BehindOf(int64_t version) const;
  int live() const;
};
absl::StatusOr<FleetState> FleetStateFromJson(const boost::json::object& o);

// The config version a change reply (an experiment view) says is in force, or InvalidArgument.
absl::StatusOr<int64_t> ConfigVersionOf(const boost::json::object& view);

class GatewayAdmin {
 public:
  // `admin_url` is http://host:port of `server.admin_listen`; `token` the bearer token.
  static absl::StatusOr<std::unique_ptr<GatewayAdmin>> Create(const std::string& admin_url, std::string token);

  absl::StatusOr<boost::json::object> GetExperiment(const std::string& name);  // NotFound when absent
  absl::StatusOr<boost::json::object> CreateExperiment(const boost::json::object& config);
  // `expected_config_version` (what the caller read): FailedPrecondition (HTTP 409) when the
  // experiment was changed since.
  absl::StatusOr<boost::json::object> SetWeights(const std::string& name, const std::vector<double>& weights,
                                                 std::optional<int64_t> expected_config_version = std::nullopt);
  absl::StatusOr<FleetState> Fleet();
  // Blocks until every live replica serves config `version` or newer (polls GET /api/v1/fleet),
  // then returns the fleet as seen. DeadlineExceeded after `timeout`, naming the replicas behind.
  absl::StatusOr<FleetState> WaitForFleet(int64_t version, std::chrono::milliseconds timeout);
  // WaitForFleet, then an audit record (action fleet_applied) that `experiment`'s change at
  // `version` is in force on every live replica; the gateway checks the fleet itself.
  absl::StatusOr<FleetState> WaitAndRecordFleet(const std::string& experiment, int64_t version,
                                                std::chrono::milliseconds timeout);
  // The analysis report; `since_us` > 0 restricts it to exposures and outcomes from then on.
  absl::StatusOr<boost::json::object> Results(const std::string& name, int64_t since_us = 0);
  // The same report, typed (analysis::ReportFromJson: a malformed reply is InvalidArgument
  // naming the field, never a crash).
  absl::StatusOr<analysis::Report> Report(const std::string& name, int64_t since_us = 0);
  absl::StatusOr<boost::json::object> Health(const std::string& name);
  absl::StatusOr<boost::json::object> Promote(const std::string& name, const std::string& winner,
                                              const boost::json::object& evidence);
  absl::StatusOr<boost::json::object> Rollback(const std::string& name, const boost::json::object& evidence);
  absl::StatusOr<boost::json::object> Call(const std::string& method, const std::string& path,
                                           const boost::json::object* body);

 private:
  GatewayAdmin(http::Url url, std::string token) : url_(std::move(url)), token_(std::move(token)) {}
  http::Url url_;
  std::string token_;
  http::BlockingClient client_;
};

}  // namespace abgate::control

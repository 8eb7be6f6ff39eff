// GatewayAdmin: a blocking client of the gateway's admin API (/api/v1/...), for the controller
// and `abgate promote`. Errors carry the gateway's error_code and HTTP status. Thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "absl/status/statusor.h"
#include "http/blocking_client.h"

namespace abgate::control {

class GatewayAdmin {
 public:
  // `admin_url` is http://host:port of `server.admin_listen`; `token` the bearer token.
  static absl::StatusOr<std::unique_ptr<GatewayAdmin>> Create(const std::string& admin_url, std::string token);

  absl::StatusOr<boost::json::object> GetExperiment(const std::string& name);  // NotFound when absent
  absl::StatusOr<boost::json::object> CreateExperiment(const boost::json::object& config);
  absl::StatusOr<boost::json::object> SetWeights(const std::string& name, const std::vector<double>& weights);
  // The analysis report; `since_us` > 0 restricts it to exposures and outcomes from then on.
  absl::StatusOr<boost::json::object> Results(const std::string& name, int64_t since_us = 0);
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

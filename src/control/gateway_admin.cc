#include "control/gateway_admin.h"

#include <boost/json.hpp>

#include "common/status_macros.h"
#include "common/strings.h"
#include "config/json_format.h"

namespace abgate::control {
namespace json = boost::json;

absl::StatusOr<std::unique_ptr<GatewayAdmin>> GatewayAdmin::Create(const std::string& admin_url, std::string token) {
  ABGATE_ASSIGN_OR_RETURN(http::Url url, http::ParseHttpUrl(admin_url));
  return std::unique_ptr<GatewayAdmin>(new GatewayAdmin(std::move(url), std::move(token)));
}

absl::StatusOr<json::object> GatewayAdmin::Call(const std::string& method, const std::string& path,
                                                const json::object* body) {
  std::vector<http::Header> headers;
  if (!token_.empty()) headers.push_back({"Authorization", StrCat("Bearer ", token_)});
  ABGATE_ASSIGN_OR_RETURN(http::ClientResponse r,
                          client_.Send(url_, method, path, "application/json", body ? config::ToJson(*body) : "",
                                       std::move(headers), 120'000'000));
  boost::system::error_code ec;
  json::value v = json::parse(r.body, ec);
  if (r.status >= 300) {
    std::string code = "HTTP_" + std::to_string(r.status), message = r.body.substr(0, 300);
    if (!ec && v.is_object()) {
      if (auto* c = v.as_object().if_contains("error_code"); c && c->is_string()) code = std::string(c->as_string());
      if (auto* m = v.as_object().if_contains("message"); m && m->is_string()) message = std::string(m->as_string());
    }
    const std::string text = StrCat("gateway ", method, " ", path, ": ", code, " (HTTP ", r.status, "): ", message);
    if (r.status == 404) return absl::NotFoundError(text);
    if (r.status == 401 || r.status == 403) return absl::PermissionDeniedError(text);
    if (r.status == 409 || code == "FAILED_PRECONDITION") return absl::FailedPreconditionError(text);
    if (r.status < 500) return absl::InvalidArgumentError(text);
    return absl::UnavailableError(text);
  }
  if (ec || !v.is_object()) return absl::UnavailableError(StrCat("gateway ", path, ": the reply is not a JSON object"));
  return std::move(v).as_object();
}

absl::StatusOr<json::object> GatewayAdmin::GetExperiment(const std::string& name) {
  return Call("GET", StrCat("/api/v1/experiments/", name), nullptr);
}

absl::StatusOr<json::object> GatewayAdmin::CreateExperiment(const json::object& config) {
  return Call("POST", "/api/v1/experiments", &config);
}

absl::StatusOr<json::object> GatewayAdmin::SetWeights(const std::string& name, const std::vector<double>& weights) {
  json::array w;
  for (double x : weights) w.push_back(x);
  const json::object body{{"weights", std::move(w)}};
  return Call("POST", StrCat("/api/v1/experiments/", name, "/weights"), &body);
}

absl::StatusOr<json::object> GatewayAdmin::Results(const std::string& name, int64_t since_us) {
  return Call("GET", StrCat("/api/v1/experiments/", name, "/results", since_us > 0 ? StrCat("?since_us=", since_us) : ""),
              nullptr);
}

absl::StatusOr<json::object> GatewayAdmin::Health(const std::string& name) {
  return Call("GET", StrCat("/api/v1/experiments/", name, "/health"), nullptr);
}

absl::StatusOr<json::object> GatewayAdmin::Promote(const std::string& name, const std::string& winner,
                                                   const json::object& evidence) {
  const json::object body{{"winner", winner}, {"evidence", evidence}};
  return Call("POST", StrCat("/api/v1/experiments/", name, "/promote"), &body);
}

absl::StatusOr<json::object> GatewayAdmin::Rollback(const std::string& name, const json::object& evidence) {
  const json::object body{{"evidence", evidence}};
  return Call("POST", StrCat("/api/v1/experiments/", name, "/rollback"), &body);
}

}  // namespace abgate::control

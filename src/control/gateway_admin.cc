#include "control/gateway_admin.h"

#include <thread>

#include <boost/json.hpp>

#include "common/status_macros.h"
#include "common/strings.h"
#include "config/json_format.h"

namespace abgate::control {
namespace json = boost::json;

namespace {

absl::StatusOr<int64_t> IntField(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (!v || !v->is_int64()) return absl::InvalidArgumentError(StrCat("fleet reply: '", key, "' is not an integer"));
  return v->as_int64();
}

}  // namespace

std::vector<std::string> FleetState::BehindOf(int64_t version) const {
  std::vector<std::string> behind;
  for (const auto& r : replicas) {
    if (r.live && r.applied_config_version < version) {
      behind.push_back(StrCat(r.id, " (at ", r.applied_config_version, ")"));
    }
  }
  return behind;
}

int FleetState::live() const {
  int n = 0;
  for (const auto& r : replicas) n += r.live;
  return n;
}

absl::StatusOr<FleetState> FleetStateFromJson(const json::object& o) {
  FleetState f;
  ABGATE_ASSIGN_OR_RETURN(f.config_version, IntField(o, "config_version"));
  const json::value* list = o.if_contains("replicas");
  if (!list || !list->is_array()) return absl::InvalidArgumentError("fleet reply: 'replicas' is not a list");
  for (const auto& v : list->as_array()) {
    if (!v.is_object()) return absl::InvalidArgumentError("fleet reply: a replica is not an object");
    const json::object& r = v.as_object();
    ReplicaState s;
    const json::value* id = r.if_contains("id");
    const json::value* address = r.if_contains("address");
    const json::value* live = r.if_contains("live");
    if (!id || !id->is_string() || !live || !live->is_bool()) {
      return absl::InvalidArgumentError("fleet reply: a replica lacks 'id' or 'live'");
    }
    s.id = std::string(id->as_string());
    if (address && address->is_string()) s.address = std::string(address->as_string());
    s.live = live->as_bool();
    ABGATE_ASSIGN_OR_RETURN(s.applied_config_version, IntField(r, "applied_config_version"));
    ABGATE_ASSIGN_OR_RETURN(s.heartbeat_age_ms, IntField(r, "heartbeat_age_ms"));
    f.replicas.push_back(std::move(s));
  }
  return f;
}

absl::StatusOr<int64_t> ConfigVersionOf(const json::object& view) {
  const json::value* runtime = view.if_contains("runtime");
  if (runtime && runtime->is_object()) return IntField(runtime->as_object(), "config_version");
  return IntField(view, "config_version");  // a deletion's reply
}

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

absl::StatusOr<json::object> GatewayAdmin::SetWeights(const std::string& name, const std::vector<double>& weights,
                                                      std::optional<int64_t> expected_config_version) {
  json::array w;
  for (double x : weights) w.push_back(x);
  json::object body{{"weights", std::move(w)}};
  if (expected_config_version) body["expected_config_version"] = *expected_config_version;
  return Call("POST", StrCat("/api/v1/experiments/", name, "/weights"), &body);
}

absl::StatusOr<json::object> GatewayAdmin::Results(const std::string& name, int64_t since_us) {
  return Call("GET", StrCat("/api/v1/experiments/", name, "/results", since_us > 0 ? StrCat("?since_us=", since_us) : ""),
              nullptr);
}

absl::StatusOr<analysis::Report> GatewayAdmin::Report(const std::string& name, int64_t since_us) {
  ABGATE_ASSIGN_OR_RETURN(json::object results, Results(name, since_us));
  auto report = analysis::ReportFromJson(json::value(std::move(results)));
  if (!report.ok()) {
    return absl::InvalidArgumentError(StrCat("gateway results of ", name, ": ", report.status().message()));
  }
  return report;
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

absl::StatusOr<FleetState> GatewayAdmin::Fleet() {
  ABGATE_ASSIGN_OR_RETURN(json::object o, Call("GET", "/api/v1/fleet", nullptr));
  return FleetStateFromJson(o);
}

absl::StatusOr<FleetState> GatewayAdmin::WaitForFleet(int64_t version, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    ABGATE_ASSIGN_OR_RETURN(FleetState fleet, Fleet());
    const auto behind = fleet.BehindOf(version);
    if (behind.empty() && fleet.live() > 0) return fleet;
    if (std::chrono::steady_clock::now() >= deadline) {
      std::string names;
      for (const auto& b : behind) StrAppend(&names, names.empty() ? "" : ", ", b);
      return absl::DeadlineExceededError(StrCat("config version ", version, " is not applied on every live gateway after ",
                                                timeout.count(), " ms: ", names.empty() ? "no live gateway" : names));
    }
    // Replicas apply an announced change within a second; poll at a tenth of that.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

absl::StatusOr<FleetState> GatewayAdmin::WaitAndRecordFleet(const std::string& experiment, int64_t version,
                                                            std::chrono::milliseconds timeout) {
  ABGATE_ASSIGN_OR_RETURN(FleetState fleet, WaitForFleet(version, timeout));
  const json::object body{{"config_version", version}};
  ABGATE_RETURN_IF_ERROR(Call("POST", StrCat("/api/v1/experiments/", experiment, "/fleet-applied"), &body).status());
  return fleet;
}

}  // namespace abgate::control

#include "config/gateway_config.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <set>
#include <sstream>

#include <boost/json.hpp>
#include <boost/url/parse.hpp>

#include "common/strings.h"
#include "common/status_macros.h"
#include "common/store_uri.h"
#include "config/json_format.h"
#include "config/json_reader.h"

namespace abgate::config {

namespace json = boost::json;

std::string_view RoutingModeName(RoutingMode mode) {
  switch (mode) {
    case RoutingMode::kRequestRandom: return "request_random";
    case RoutingMode::kUserHash: return "user_hash";
    case RoutingMode::kSticky: return "sticky";
    case RoutingMode::kBandit: return "bandit";
  }
  return "?";
}

absl::StatusOr<RoutingMode> ParseRoutingMode(std::string_view name) {
  if (name == "request_random") return RoutingMode::kRequestRandom;
  if (name == "user_hash") return RoutingMode::kUserHash;
  if (name == "sticky") return RoutingMode::kSticky;
  if (name == "bandit") return RoutingMode::kBandit;
  return absl::InvalidArgumentError(StrCat(
      "unknown routing_mode '", name, "' (use request_random, user_hash, sticky or bandit)"));
}

std::string_view ExperimentStateName(ExperimentState state) {
  switch (state) {
    case ExperimentState::kRunning: return "running";
    case ExperimentState::kPaused: return "paused";
    case ExperimentState::kStopped: return "stopped";
  }
  return "?";
}

namespace {

absl::StatusOr<ExperimentState> ParseState(std::string_view s) {
  if (s == "running") return ExperimentState::kRunning;
  if (s == "paused") return ExperimentState::kPaused;
  if (s == "stopped") return ExperimentState::kStopped;
  return absl::InvalidArgumentError(StrCat("unknown state '", s, "' (running, paused, stopped)"));
}

std::string_view MetricTypeName(MetricType t) {
  switch (t) {
    case MetricType::kBinary: return "binary";
    case MetricType::kContinuous: return "continuous";
    case MetricType::kCount: return "count";
  }
  return "?";
}

absl::StatusOr<MetricType> ParseMetricType(std::string_view s) {
  if (s == "binary") return MetricType::kBinary;
  if (s == "continuous") return MetricType::kContinuous;
  if (s == "count") return MetricType::kCount;
  return absl::InvalidArgumentError(StrCat("unknown metric type '", s, "' (binary, continuous, count)"));
}

bool IsName(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) return false;
  }
  return true;
}

absl::StatusOr<std::vector<double>> ReadWeights(JsonReader& r, std::string_view key) {
  JsonReader w = r.Child(key);
  if (!w.value().is_array()) return r.Error(key, "must be a list of numbers");
  std::vector<double> out;
  for (const auto& x : w.value().as_array()) {
    if (!x.is_number()) return r.Error(key, "must be a list of numbers");
    out.push_back(x.to_number<double>());
  }
  return out;
}

absl::Status ReadServer(JsonReader r, ServerConfig& s) {
  if (!r.value().is_null() && !r.is_object()) return r.Error("", "must be a mapping");
  ABGATE_ASSIGN_OR_RETURN(std::string listen, r.String("listen", "127.0.0.1:8080"));
  auto hp = ParseHostPort(listen);
  if (!hp.ok()) return r.Error("listen", hp.status().message());
  s.listen = *hp;
  ABGATE_ASSIGN_OR_RETURN(std::string admin, r.String("admin_listen", "127.0.0.1:8081"));
  hp = ParseHostPort(admin);
  if (!hp.ok()) return r.Error("admin_listen", hp.status().message());
  s.admin_listen = *hp;
  ABGATE_ASSIGN_OR_RETURN(s.admin_token_env, r.String("admin_token_env", s.admin_token_env));
  ABGATE_ASSIGN_OR_RETURN(int64_t threads, r.Int("threads", s.threads));
  if (threads < 1 || threads > 256) return r.Error("threads", "must be between 1 and 256");
  s.threads = static_cast<int>(threads);
  ABGATE_ASSIGN_OR_RETURN(s.max_body_bytes, r.Int("max_body_bytes", s.max_body_bytes));
  if (s.max_body_bytes < 1024) return r.Error("max_body_bytes", "must be at least 1024");
  ABGATE_ASSIGN_OR_RETURN(s.max_header_bytes, r.Int("max_header_bytes", s.max_header_bytes));
  if (s.max_header_bytes < 1024) return r.Error("max_header_bytes", "must be at least 1024");
  ABGATE_ASSIGN_OR_RETURN(s.read_timeout_us, r.DurationUs("read_timeout", s.read_timeout_us));
  ABGATE_ASSIGN_OR_RETURN(s.idle_timeout_us, r.DurationUs("idle_timeout", s.idle_timeout_us));
  ABGATE_ASSIGN_OR_RETURN(s.drain_timeout_us, r.DurationUs("drain_timeout", s.drain_timeout_us));
  ABGATE_ASSIGN_OR_RETURN(s.public_reads, r.Bool("public_reads", s.public_reads));
  ABGATE_ASSIGN_OR_RETURN(s.dashboard_public_reads, r.Bool("dashboard_public_reads", s.dashboard_public_reads));
  ABGATE_ASSIGN_OR_RETURN(int64_t analysis_threads, r.Int("analysis_threads", s.analysis_threads));
  if (analysis_threads < 1 || analysis_threads > 64) return r.Error("analysis_threads", "must be between 1 and 64");
  s.analysis_threads = static_cast<int>(analysis_threads);
  if (s.read_timeout_us <= 0 || s.idle_timeout_us <= 0) {
    return r.Error("", "read_timeout and idle_timeout must be positive");
  }
  ABGATE_ASSIGN_OR_RETURN(s.max_connections, r.Int("max_connections", s.max_connections));
  if (s.max_connections < 0 || s.max_connections > (int64_t{1} << 30)) {
    return r.Error("max_connections", "must be in [0, 2^30] (0 = half the open-file limit, at most 10000)");
  }
  return r.CheckNoUnknownKeys();
}

absl::Status ReadUpstream(JsonReader r, UpstreamConfig& u) {
  if (!r.value().is_null() && !r.is_object()) return r.Error("", "must be a mapping");
  ABGATE_ASSIGN_OR_RETURN(u.connect_timeout_us, r.DurationUs("connect_timeout", u.connect_timeout_us));
  ABGATE_ASSIGN_OR_RETURN(u.request_timeout_us, r.DurationUs("request_timeout", u.request_timeout_us));
  ABGATE_ASSIGN_OR_RETURN(int64_t idle, r.Int("max_idle_per_host", u.max_idle_per_host));
  if (idle < 0 || idle > 100000) return r.Error("max_idle_per_host", "must be in [0, 100000]");
  u.max_idle_per_host = static_cast<int>(idle);
  ABGATE_ASSIGN_OR_RETURN(u.tls_ca_file, r.String("tls_ca_file", u.tls_ca_file));
  ABGATE_ASSIGN_OR_RETURN(u.tls_verify, r.Bool("tls_verify", u.tls_verify));
  if (u.connect_timeout_us <= 0 || u.request_timeout_us <= 0) {
    return r.Error("", "timeouts must be positive");
  }
  JsonReader od = r.Child("outlier_detection");
  if (!od.value().is_null()) {
    if (!od.is_object()) return r.Error("outlier_detection", "must be a mapping");
    OutlierDetectionConfig& o = u.outlier_detection;
    ABGATE_ASSIGN_OR_RETURN(int64_t n, od.Int("consecutive_failures", o.consecutive_failures));
    if (n < 0 || n > 1000000) return od.Error("consecutive_failures", "must be in [0, 1000000] (0 = off)");
    o.consecutive_failures = static_cast<int>(n);
    ABGATE_ASSIGN_OR_RETURN(o.base_ejection_time_us, od.DurationUs("base_ejection_time", o.base_ejection_time_us));
    ABGATE_ASSIGN_OR_RETURN(o.max_ejection_time_us, od.DurationUs("max_ejection_time", o.max_ejection_time_us));
    if (o.base_ejection_time_us <= 0 || o.max_ejection_time_us < o.base_ejection_time_us) {
      return od.Error("", "base_ejection_time must be positive and at most max_ejection_time");
    }
    ABGATE_ASSIGN_OR_RETURN(o.max_ejection_percent, od.Number("max_ejection_percent", o.max_ejection_percent));
    if (!(o.max_ejection_percent >= 0 && o.max_ejection_percent <= 100)) {
      return od.Error("max_ejection_percent", "must be in [0, 100]");
    }
    ABGATE_RETURN_IF_ERROR(od.CheckNoUnknownKeys());
  }
  return r.CheckNoUnknownKeys();
}

absl::Status ReadEvents(JsonReader r, EventsConfig& e) {
  if (!r.value().is_null() && !r.is_object()) return r.Error("", "must be a mapping");
  ABGATE_ASSIGN_OR_RETURN(e.store, r.String("store", e.store));
  if (!common::ParseStoreUri(e.store).ok()) {
    return r.Error("store", "must be sqlite:PATH or postgresql://user@host:port/db");
  }
  if (r.Has("flush_ms")) {
    ABGATE_ASSIGN_OR_RETURN(int64_t ms, r.Int("flush_ms", 50));
    if (ms < 1 || ms > 60000) return r.Error("flush_ms", "must be in [1, 60000]");
    e.flush_us = ms * 1000;
  }
  ABGATE_ASSIGN_OR_RETURN(e.queue_capacity, r.Int("queue_capacity", e.queue_capacity));
  if (e.queue_capacity < 1) return r.Error("queue_capacity", "must be positive");
  ABGATE_ASSIGN_OR_RETURN(e.max_outcome_batch, r.Int("max_outcome_batch", e.max_outcome_batch));
  if (e.max_outcome_batch < 1) return r.Error("max_outcome_batch", "must be positive");
  return r.CheckNoUnknownKeys();
}

}  // namespace

absl::StatusOr<HostPort> ParseHostPort(std::string_view text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return absl::InvalidArgumentError(StrCat("expected HOST:PORT, got '", text, "'"));
  }
  HostPort hp;
  hp.host = std::string(text.substr(0, colon));
  if (hp.host.size() > 2 && hp.host.front() == '[' && hp.host.back() == ']') {
    hp.host = hp.host.substr(1, hp.host.size() - 2);
  }
  const std::string_view port = text.substr(colon + 1);
  unsigned value = 0;
  auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || p != port.data() + port.size() || value > 65535) {
    return absl::InvalidArgumentError(StrCat("bad port in '", text, "'"));
  }
  hp.port = static_cast<uint16_t>(value);
  return hp;
}

absl::StatusOr<UpstreamUrl> ParseUpstreamUrl(std::string_view text) {
  auto url = boost::urls::parse_absolute_uri(text);
  if (!url) return absl::InvalidArgumentError(StrCat("bad URL '", text, "'"));
  if (url->scheme() != "http" && url->scheme() != "https") {
    return absl::InvalidArgumentError(StrCat("upstream '", text, "' must be http:// or https://"));
  }
  if (url->host().empty()) return absl::InvalidArgumentError(StrCat("upstream '", text, "' has no host"));
  UpstreamUrl u;
  if (url->scheme() == "https") {
    u.tls = true;
    u.port = 443;
  }
  u.host = std::string(url->host_address());
  if (url->has_port()) {
    if (url->port_number() == 0) return absl::InvalidArgumentError(StrCat("bad port in '", text, "'"));
    u.port = url->port_number();
  }
  u.target = std::string(url->encoded_path());
  if (u.target.empty()) u.target = "/invocations";
  if (url->has_query()) StrAppend(&u.target, "?", std::string_view(url->encoded_query()));
  return u;
}

std::string ExperimentConfig::HashSeed() const {
  return bucket_version == 0 ? seed : StrCat(seed, ":", bucket_version);
}

int ExperimentConfig::ControlIndex() const {
  for (size_t i = 0; i < arms.size(); ++i) {
    if (arms[i].name == control) return static_cast<int>(i);
  }
  return 0;
}

std::string ExperimentConfig::ArmModelUri(const ArmConfig& arm) const {
  if (!arm.model.empty()) return arm.model;
  if (model.empty()) return "";
  if (!arm.alias.empty()) return StrCat("models:/", model, "@", arm.alias);
  if (!arm.version.empty()) return StrCat("models:/", model, "/", arm.version);
  return "";
}

const ExperimentConfig* GatewayConfig::DefaultExperiment() const {
  for (const auto& e : experiments) {
    if (e.is_default) return &e;
  }
  return nullptr;
}

absl::StatusOr<ExperimentConfig> ParseExperimentConfig(const json::value& v, const std::string& path) {
  JsonReader r(v, path);
  if (!r.is_object()) return r.Error("", "must be a mapping");
  ExperimentConfig e;
  ABGATE_ASSIGN_OR_RETURN(e.name, r.String("name"));
  ABGATE_ASSIGN_OR_RETURN(e.model, r.String("model"));
  ABGATE_ASSIGN_OR_RETURN(e.is_default, r.Bool("default", false));
  ABGATE_ASSIGN_OR_RETURN(std::string mode, r.String("routing_mode", "user_hash"));
  auto parsed_mode = ParseRoutingMode(mode);
  if (!parsed_mode.ok()) return r.Error("routing_mode", parsed_mode.status().message());
  e.routing_mode = *parsed_mode;
  {
    JsonReader unit = r.Child("unit");
    if (!unit.value().is_null()) {
      if (!unit.is_object()) return r.Error("unit", "must be a mapping {field, header}");
      ABGATE_ASSIGN_OR_RETURN(e.unit_field, unit.String("field", e.unit_field));
      ABGATE_ASSIGN_OR_RETURN(e.unit_header, unit.String("header"));
      ABGATE_RETURN_IF_ERROR(unit.CheckNoUnknownKeys());
    }
  }
  ABGATE_ASSIGN_OR_RETURN(e.seed, r.String("seed"));
  if (e.seed.empty()) e.seed = e.name;
  ABGATE_ASSIGN_OR_RETURN(e.coverage, r.Number("coverage", 1.0));
  ABGATE_ASSIGN_OR_RETURN(e.control, r.String("control"));
  {
    JsonReader arms = r.Child("arms");
    if (!arms.value().is_array()) return r.Error("arms", "must be a list of arms");
    const auto& list = arms.value().as_array();
    for (size_t i = 0; i < list.size(); ++i) {
      JsonReader a(list[i], StrCat(arms.path(), "[", i, "]"));
      if (!a.is_object()) return a.Error("", "must be a mapping");
      ArmConfig arm;
      ABGATE_ASSIGN_OR_RETURN(arm.name, a.String("name"));
      ABGATE_ASSIGN_OR_RETURN(arm.version, a.StringOrInt("version"));
      ABGATE_ASSIGN_OR_RETURN(arm.weight, a.Number("weight", -1));
      if (arm.weight < 0) return a.Error("weight", "is required and must be >= 0");
      ABGATE_ASSIGN_OR_RETURN(arm.upstream, a.String("upstream"));
      ABGATE_ASSIGN_OR_RETURN(arm.model, a.String("model"));
      ABGATE_ASSIGN_OR_RETURN(arm.alias, a.String("alias"));
      ABGATE_RETURN_IF_ERROR(a.CheckNoUnknownKeys());
      e.arms.push_back(std::move(arm));
    }
  }
  if (e.control.empty() && !e.arms.empty()) e.control = e.arms.front().name;
  {
    JsonReader ramp = r.Child("ramp");
    if (!ramp.value().is_null()) {
      if (!ramp.value().is_array()) return r.Error("ramp", "must be a list of {after, weights}");
      const auto& list = ramp.value().as_array();
      for (size_t i = 0; i < list.size(); ++i) {
        JsonReader s(list[i], StrCat(ramp.path(), "[", i, "]"));
        if (!s.is_object()) return s.Error("", "must be a mapping {after, weights}");
        RampStepConfig step;
        if (!s.Has("after")) return s.Error("after", "is required");
        ABGATE_ASSIGN_OR_RETURN(step.after_us, s.DurationUs("after", 0));
        ABGATE_ASSIGN_OR_RETURN(step.weights, ReadWeights(s, "weights"));
        ABGATE_RETURN_IF_ERROR(s.CheckNoUnknownKeys());
        e.ramp.push_back(std::move(step));
      }
    }
  }
  ABGATE_ASSIGN_OR_RETURN(e.fallback_to_control, r.Bool("fallback_to_control", true));
  {
    JsonReader metrics = r.Child("metrics");
    if (!metrics.value().is_null()) {
      if (!metrics.value().is_array()) return r.Error("metrics", "must be a list");
      const auto& list = metrics.value().as_array();
      for (size_t i = 0; i < list.size(); ++i) {
        JsonReader m(list[i], StrCat(metrics.path(), "[", i, "]"));
        if (!m.is_object()) return m.Error("", "must be a mapping {name, type, primary}");
        MetricConfig metric;
        ABGATE_ASSIGN_OR_RETURN(metric.name, m.String("name"));
        ABGATE_ASSIGN_OR_RETURN(std::string type, m.String("type", "binary"));
        auto t = ParseMetricType(type);
        if (!t.ok()) return m.Error("type", t.status().message());
        metric.type = *t;
        ABGATE_ASSIGN_OR_RETURN(metric.primary, m.Bool("primary", false));
        JsonReader cuped = m.Child("cuped");
        if (!cuped.value().is_null()) {
          if (!cuped.is_object()) return cuped.Error("", "must be a mapping {covariate: METRIC}");
          ABGATE_ASSIGN_OR_RETURN(metric.cuped_covariate, cuped.String("covariate"));
          if (metric.cuped_covariate.empty()) return cuped.Error("covariate", "is required (an outcome metric's name)");
          ABGATE_RETURN_IF_ERROR(cuped.CheckNoUnknownKeys());
        }
        ABGATE_RETURN_IF_ERROR(m.CheckNoUnknownKeys());
        e.metrics.push_back(std::move(metric));
      }
    }
  }
  {
    JsonReader g = r.Child("guardrails");
    if (!g.value().is_null()) {
      if (!g.is_object()) return r.Error("guardrails", "must be a mapping");
      ABGATE_ASSIGN_OR_RETURN(e.guardrails.max_error_rate, g.Number("max_error_rate", 0));
      ABGATE_ASSIGN_OR_RETURN(e.guardrails.max_p99_latency_ms, g.Number("max_p99_latency_ms", 0));
      ABGATE_RETURN_IF_ERROR(g.CheckNoUnknownKeys());
    }
  }
  if (r.Has("start_us")) {
    ABGATE_ASSIGN_OR_RETURN(int64_t start, r.Int("start_us", 0));
    e.start_us = start;
  }
  ABGATE_ASSIGN_OR_RETURN(e.bucket_version, r.Int("bucket_version", 0));
  ABGATE_ASSIGN_OR_RETURN(e.attribution_window_us, r.DurationUs("attribution_window", 0));
  {
    JsonReader shadow = r.Child("shadow");
    if (!shadow.value().is_null()) {
      if (!shadow.is_object()) return r.Error("shadow", "must be {arm, percent}");
      ABGATE_ASSIGN_OR_RETURN(e.shadow_arm, shadow.String("arm"));
      ABGATE_ASSIGN_OR_RETURN(e.shadow_percent, shadow.Number("percent", 100));
      ABGATE_RETURN_IF_ERROR(shadow.CheckNoUnknownKeys());
      if (e.shadow_percent < 0 || e.shadow_percent > 100) return shadow.Error("percent", "must be in [0, 100]");
    }
  }
  {
    JsonReader ns = r.Child("namespace");
    if (!ns.value().is_null()) {
      if (!ns.is_object()) return r.Error("namespace", "must be {name, range: [low, high]}");
      NamespaceConfig n;
      ABGATE_ASSIGN_OR_RETURN(n.name, ns.String("name"));
      if (!IsName(n.name)) return ns.Error("name", "must be 1-128 characters of [A-Za-z0-9_.-]");
      ABGATE_ASSIGN_OR_RETURN(const std::vector<double> range, ReadWeights(ns, "range"));
      if (range.size() != 2 || !(range[0] >= 0 && range[0] < range[1] && range[1] <= 1)) {
        return ns.Error("range", "must be [low, high) with 0 <= low < high <= 1");
      }
      n.low = range[0];
      n.high = range[1];
      ABGATE_RETURN_IF_ERROR(ns.CheckNoUnknownKeys());
      e.namespace_range = std::move(n);
    }
  }
  {
    JsonReader b = r.Child("bandit");
    if (!b.value().is_null()) {
      if (!b.is_object()) return r.Error("bandit", "must be {metric, floor, update_interval}");
      BanditConfig bandit;
      ABGATE_ASSIGN_OR_RETURN(bandit.metric, b.String("metric"));
      ABGATE_ASSIGN_OR_RETURN(bandit.floor, b.Number("floor", bandit.floor));
      ABGATE_ASSIGN_OR_RETURN(bandit.update_interval_us, b.DurationUs("update_interval", bandit.update_interval_us));
      ABGATE_RETURN_IF_ERROR(b.CheckNoUnknownKeys());
      e.bandit = std::move(bandit);
      // The bandit's metric decides: it is the primary metric unless another one is declared
      // primary (which ValidateBandit refuses).
      const bool any_primary = std::any_of(e.metrics.begin(), e.metrics.end(), [](const auto& m) { return m.primary; });
      for (auto& m : e.metrics) {
        if (!any_primary && m.name == e.bandit->metric) m.primary = true;
      }
    }
  }
  {
    JsonReader c = r.Child("conclusion");
    if (!c.value().is_null()) {
      if (!c.is_object()) return r.Error("conclusion", "must be {action, winner, tested_control, at_us, reason}");
      ConclusionConfig conclusion;
      ABGATE_ASSIGN_OR_RETURN(conclusion.action, c.String("action"));
      if (conclusion.action != "promote" && conclusion.action != "rollback") {
        return c.Error("action", "must be promote or rollback");
      }
      ABGATE_ASSIGN_OR_RETURN(conclusion.winner, c.String("winner"));
      ABGATE_ASSIGN_OR_RETURN(conclusion.tested_control, c.String("tested_control"));
      ABGATE_ASSIGN_OR_RETURN(conclusion.at_us, c.Int("at_us", 0));
      ABGATE_ASSIGN_OR_RETURN(conclusion.reason, c.String("reason", ""));
      ABGATE_RETURN_IF_ERROR(c.CheckNoUnknownKeys());
      e.conclusion = std::move(conclusion);
    }
  }
  ABGATE_ASSIGN_OR_RETURN(e.payload_sample_rate, r.Number("payload_sample_rate", 0));
  if (e.payload_sample_rate < 0 || e.payload_sample_rate > 1) return r.Error("payload_sample_rate", "must be in [0, 1]");
  ABGATE_ASSIGN_OR_RETURN(e.payload_max_bytes, r.Int("payload_max_bytes", e.payload_max_bytes));
  if (e.payload_max_bytes < 0) return r.Error("payload_max_bytes", "must be >= 0");
  if (e.bucket_version < 0) return r.Error("bucket_version", "must be >= 0");
  ABGATE_ASSIGN_OR_RETURN(std::string state, r.String("state", "running"));
  auto parsed_state = ParseState(state);
  if (!parsed_state.ok()) return r.Error("state", parsed_state.status().message());
  e.state = *parsed_state;
  ABGATE_RETURN_IF_ERROR(r.CheckNoUnknownKeys());
  if (auto s = ValidateExperiment(e); !s.ok()) return r.Error("", s.message());
  return e;
}

absl::Status ValidateExperiment(const ExperimentConfig& e) {
  if (!IsName(e.name)) {
    return absl::InvalidArgumentError("name must be 1-128 characters of [A-Za-z0-9_.-]");
  }
  if (e.arms.empty()) return absl::InvalidArgumentError("arms: at least one arm is required");
  std::set<std::string> names;
  for (const auto& arm : e.arms) {
    if (!IsName(arm.name)) {
      return absl::InvalidArgumentError(StrCat("arm name '", arm.name, "' must be 1-128 characters of [A-Za-z0-9_.-]"));
    }
    if (!names.insert(arm.name).second) {
      return absl::InvalidArgumentError(StrCat("arm name '", arm.name, "' is used twice"));
    }
    if (arm.upstream.empty()) {
      if (e.ArmModelUri(arm).empty()) {
        return absl::InvalidArgumentError(StrCat("arm ", arm.name,
                                                 ": give an upstream, or a model (models:/NAME/VERSION, models:/NAME@ALIAS "
                                                 "or a folder) to serve in-process, or the experiment's model plus the "
                                                 "arm's version or alias"));
      }
      continue;
    }
    if (auto u = ParseUpstreamUrl(arm.upstream); !u.ok()) {
      return absl::InvalidArgumentError(StrCat("arm ", arm.name, ": ", u.status().message()));
    }
  }
  if (!names.contains(e.control)) {
    return absl::InvalidArgumentError(StrCat("control '", e.control, "' is not one of the arms"));
  }
  if (e.conclusion && (!names.contains(e.conclusion->winner) || !names.contains(e.conclusion->tested_control))) {
    return absl::InvalidArgumentError("conclusion: winner and tested_control must be arms");
  }
  if (!e.shadow_arm.empty() && !names.contains(e.shadow_arm)) {
    return absl::InvalidArgumentError(StrCat("shadow.arm '", e.shadow_arm, "' is not one of the arms"));
  }
  if (e.unit_field.empty() && e.unit_header.empty()) {
    return absl::InvalidArgumentError("unit: give a body field, a header, or both");
  }
  if (e.coverage < 0 || e.coverage > 1) return absl::InvalidArgumentError("coverage must be in [0, 1]");
  for (const auto& step : e.ramp) {
    if (step.weights.size() != e.arms.size()) {
      return absl::InvalidArgumentError(StrCat("ramp: each step needs ", e.arms.size(), " weights"));
    }
  }
  int primaries = 0;
  std::set<std::string> metric_names;
  for (const auto& m : e.metrics) {
    if (!IsName(m.name)) return absl::InvalidArgumentError(StrCat("metric name '", m.name, "' is not valid"));
    if (!metric_names.insert(m.name).second) {
      return absl::InvalidArgumentError(StrCat("metric '", m.name, "' is listed twice"));
    }
    if (!m.cuped_covariate.empty() && !IsName(m.cuped_covariate)) {
      return absl::InvalidArgumentError(
          StrCat("metric '", m.name, "': cuped covariate '", m.cuped_covariate, "' is not a valid metric name"));
    }
    primaries += m.primary;
  }
  if (primaries > 1) return absl::InvalidArgumentError("metrics: at most one primary metric");
  if (e.guardrails.max_error_rate < 0 || e.guardrails.max_error_rate > 1) {
    return absl::InvalidArgumentError("guardrails.max_error_rate must be in [0, 1]");
  }
  if (e.guardrails.max_p99_latency_ms < 0) {
    return absl::InvalidArgumentError("guardrails.max_p99_latency_ms must be >= 0");
  }
  return ValidateBandit(e);
}

absl::Status ValidateBandit(const ExperimentConfig& e) {
  const bool bandit_mode = e.routing_mode == RoutingMode::kBandit;
  if (!bandit_mode) {
    if (e.bandit) return absl::InvalidArgumentError("bandit: only with routing_mode: bandit");
    return absl::OkStatus();
  }
  if (!e.bandit) {
    return absl::InvalidArgumentError(
        "routing_mode bandit needs bandit: {metric: NAME, floor: F, update_interval: DURATION}");
  }
  const BanditConfig& b = *e.bandit;
  const size_t k = e.arms.size();
  if (k < 2) return absl::InvalidArgumentError("bandit: a bandit needs at least two arms");
  if (b.metric.empty()) return absl::InvalidArgumentError("bandit.metric is required: the binary metric to maximise");
  const MetricConfig* metric = nullptr;
  for (const auto& m : e.metrics) {
    if (m.name == b.metric) metric = &m;
  }
  if (!metric) {
    return absl::InvalidArgumentError(StrCat("bandit.metric '", b.metric,
                                             "' must be one of the experiment's metrics (list it under metrics "
                                             "with type: binary)"));
  }
  if (metric->type != MetricType::kBinary) {
    return absl::InvalidArgumentError(StrCat("bandit.metric '", b.metric, "' is ", MetricTypeName(metric->type),
                                             ": Thompson sampling here needs a binary metric (0 or 1 per request)"));
  }
  if (!metric->primary) {
    return absl::InvalidArgumentError(StrCat("bandit.metric '", b.metric,
                                             "' must be the primary metric: the bandit maximises it and the analysis "
                                             "decides on it (mark it primary: true, or no metric primary)"));
  }
  if (!(b.floor >= 0 && b.floor * static_cast<double>(k) <= 1 + 1e-12)) {
    return absl::InvalidArgumentError(StrCat("bandit.floor ", b.floor, " × ", k,
                                             " arms must be at most 1 (each arm keeps at least the floor): use a "
                                             "floor in [0, ",
                                             1.0 / static_cast<double>(k), "]"));
  }
  if (b.update_interval_us < kMinBanditIntervalUs || b.update_interval_us > kMaxBanditIntervalUs) {
    return absl::InvalidArgumentError("bandit.update_interval must be between 1s and 24h");
  }
  if (!e.ramp.empty()) return absl::InvalidArgumentError("ramp: a bandit sets its own weights; remove the ramp");
  return absl::OkStatus();
}

absl::Status ValidateNamespaces(const std::vector<const ExperimentConfig*>& experiments) {
  for (size_t i = 0; i < experiments.size(); ++i) {
    const ExperimentConfig& a = *experiments[i];
    if (!a.namespace_range || a.state != ExperimentState::kRunning) continue;
    for (size_t j = 0; j < i; ++j) {
      const ExperimentConfig& b = *experiments[j];
      if (!b.namespace_range || b.state != ExperimentState::kRunning) continue;
      const NamespaceConfig &x = *a.namespace_range, &y = *b.namespace_range;
      if (x.name == y.name && x.low < y.high && y.low < x.high) {
        return absl::FailedPreconditionError(StrCat(
            "namespace '", x.name, "': experiment ", a.name, "'s range [", x.low, ", ", x.high, ") overlaps experiment ",
            b.name, "'s [", y.low, ", ", y.high, "); running experiments in one namespace must have disjoint ranges"));
      }
    }
  }
  return absl::OkStatus();
}

json::value ExperimentToJson(const ExperimentConfig& e) {
  json::object o;
  o["name"] = e.name;
  if (!e.model.empty()) o["model"] = e.model;
  o["default"] = e.is_default;
  o["routing_mode"] = RoutingModeName(e.routing_mode);
  json::object unit;
  if (!e.unit_field.empty()) unit["field"] = e.unit_field;
  if (!e.unit_header.empty()) unit["header"] = e.unit_header;
  o["unit"] = std::move(unit);
  o["seed"] = e.seed;
  o["coverage"] = e.coverage;
  o["control"] = e.control;
  json::array arms;
  for (const auto& a : e.arms) {
    json::object arm;
    arm["name"] = a.name;
    if (!a.version.empty()) arm["version"] = a.version;
    arm["weight"] = a.weight;
    if (!a.upstream.empty()) arm["upstream"] = a.upstream;
    if (!a.model.empty()) arm["model"] = a.model;
    if (!a.alias.empty()) arm["alias"] = a.alias;
    arms.push_back(std::move(arm));
  }
  o["arms"] = std::move(arms);
  if (!e.ramp.empty()) {
    json::array ramp;
    for (const auto& s : e.ramp) {
      json::object step;
      step["after"] = StrCat(s.after_us / 1000, "ms");
      json::array w;
      for (double x : s.weights) w.push_back(x);
      step["weights"] = std::move(w);
      ramp.push_back(std::move(step));
    }
    o["ramp"] = std::move(ramp);
  }
  o["fallback_to_control"] = e.fallback_to_control;
  if (!e.metrics.empty()) {
    json::array metrics;
    for (const auto& m : e.metrics) {
      json::object mo{{"name", m.name}, {"type", MetricTypeName(m.type)}, {"primary", m.primary}};
      if (!m.cuped_covariate.empty()) mo["cuped"] = json::object{{"covariate", m.cuped_covariate}};
      metrics.push_back(std::move(mo));
    }
    o["metrics"] = std::move(metrics);
  }
  o["guardrails"] = json::object{{"max_error_rate", e.guardrails.max_error_rate},
                                 {"max_p99_latency_ms", e.guardrails.max_p99_latency_ms}};
  if (e.start_us) o["start_us"] = *e.start_us;
  o["state"] = ExperimentStateName(e.state);
  if (e.bucket_version != 0) o["bucket_version"] = e.bucket_version;
  if (e.attribution_window_us != 0) o["attribution_window"] = StrCat(e.attribution_window_us / 1000, "ms");
  if (!e.shadow_arm.empty()) o["shadow"] = json::object{{"arm", e.shadow_arm}, {"percent", e.shadow_percent}};
  if (e.namespace_range) {
    o["namespace"] = json::object{{"name", e.namespace_range->name},
                                  {"range", json::array{e.namespace_range->low, e.namespace_range->high}}};
  }
  if (e.bandit) {
    o["bandit"] = json::object{{"metric", e.bandit->metric},
                               {"floor", e.bandit->floor},
                               {"update_interval", StrCat(e.bandit->update_interval_us / 1000, "ms")}};
  }
  if (e.conclusion) {
    json::object c{{"action", e.conclusion->action},
                   {"winner", e.conclusion->winner},
                   {"tested_control", e.conclusion->tested_control},
                   {"at_us", e.conclusion->at_us}};
    if (!e.conclusion->reason.empty()) c["reason"] = e.conclusion->reason;
    o["conclusion"] = std::move(c);
  }
  if (e.payload_sample_rate != 0) {
    o["payload_sample_rate"] = e.payload_sample_rate;
    o["payload_max_bytes"] = e.payload_max_bytes;
  }
  return o;
}

absl::StatusOr<GatewayConfig> ParseGatewayConfigJson(const json::value& root) {
  JsonReader r(root, "");
  if (!r.is_object()) return absl::InvalidArgumentError("config: the top level must be a mapping");
  GatewayConfig c;
  ABGATE_RETURN_IF_ERROR(ReadServer(r.Child("server"), c.server));
  {
    JsonReader reg = r.Child("registry");
    if (!reg.value().is_null()) {
      if (!reg.is_object()) return r.Error("registry", "must be a mapping");
      ABGATE_ASSIGN_OR_RETURN(c.registry.uri, reg.String("uri"));
      ABGATE_ASSIGN_OR_RETURN(c.registry.cache_dir, reg.String("cache_dir", c.registry.cache_dir));
      ABGATE_RETURN_IF_ERROR(reg.CheckNoUnknownKeys());
    }
  }
  ABGATE_RETURN_IF_ERROR(ReadEvents(r.Child("events"), c.events));
  ABGATE_RETURN_IF_ERROR(ReadUpstream(r.Child("upstream"), c.upstream));
  {
    JsonReader o = r.Child("outcomes");
    if (!o.value().is_null()) {
      if (!o.is_object()) return r.Error("outcomes", "must be a mapping");
      ABGATE_ASSIGN_OR_RETURN(c.outcomes.token_env, o.String("token_env"));
      ABGATE_ASSIGN_OR_RETURN(c.outcomes.max_future_us, o.DurationUs("max_future", c.outcomes.max_future_us));
      if (c.outcomes.max_future_us < 0) return o.Error("max_future", "must not be negative");
      ABGATE_RETURN_IF_ERROR(o.CheckNoUnknownKeys());
    }
  }
  JsonReader exps = r.Child("experiments");
  if (!exps.value().is_array()) return r.Error("experiments", "must be a list");
  std::set<std::string> names;
  int defaults = 0;
  const auto& list = exps.value().as_array();
  for (size_t i = 0; i < list.size(); ++i) {
    ABGATE_ASSIGN_OR_RETURN(ExperimentConfig e,
                            ParseExperimentConfig(list[i], StrCat("experiments[", i, "]")));
    if (!names.insert(e.name).second) {
      return absl::InvalidArgumentError(StrCat("experiments[", i, "]: name '", e.name, "' is used twice"));
    }
    defaults += e.is_default;
    c.experiments.push_back(std::move(e));
  }
  if (defaults > 1) return absl::InvalidArgumentError("experiments: at most one may be `default: true`");
  {
    std::vector<const ExperimentConfig*> all;
    for (const auto& e : c.experiments) all.push_back(&e);
    if (auto s = ValidateNamespaces(all); !s.ok()) return absl::InvalidArgumentError(StrCat("experiments: ", s.message()));
  }
  {
    JsonReader h = r.Child("holdout");
    if (!h.value().is_null()) {
      if (!h.is_object()) return r.Error("holdout", "must be {percent, seed}");
      ABGATE_ASSIGN_OR_RETURN(c.holdout.percent, h.Number("percent", 0));
      ABGATE_ASSIGN_OR_RETURN(c.holdout.seed, h.String("seed", c.holdout.seed));
      if (!(c.holdout.percent >= 0 && c.holdout.percent < 100)) return h.Error("percent", "must be in [0, 100)");
      if (c.holdout.seed.empty()) return h.Error("seed", "must not be empty");
      ABGATE_RETURN_IF_ERROR(h.CheckNoUnknownKeys());
    }
  }
  if (const json::value& ctl = r.Child("controller").value(); !ctl.is_null()) {
    ABGATE_ASSIGN_OR_RETURN(c.controller, ParseControllerConfig(ctl));
  }
  ABGATE_RETURN_IF_ERROR(r.CheckNoUnknownKeys());
  return c;
}

absl::StatusOr<ControllerConfig> ParseControllerConfig(const json::value& v) {
  JsonReader r(v, "controller");
  if (!r.is_object()) return r.Error("", "must be a mapping");
  ControllerConfig c;
  ABGATE_ASSIGN_OR_RETURN(c.gateway_admin, r.String("gateway_admin", c.gateway_admin));
  ABGATE_ASSIGN_OR_RETURN(c.poll_interval_us, r.DurationUs("poll_interval", c.poll_interval_us));
  ABGATE_ASSIGN_OR_RETURN(c.state, r.String("state", c.state));
  ABGATE_ASSIGN_OR_RETURN(c.tracking_experiment, r.String("tracking_experiment", c.tracking_experiment));
  ABGATE_ASSIGN_OR_RETURN(c.alpha, r.Number("alpha", c.alpha));
  if (c.alpha <= 0 || c.alpha >= 0.5) return r.Error("alpha", "must be in (0, 0.5)");
  if (c.poll_interval_us <= 0) return r.Error("poll_interval", "must be positive");
  if (c.state.rfind("sqlite:", 0) != 0) return r.Error("state", "must be sqlite:FILE");
  JsonReader models = r.Child("models");
  if (!models.value().is_array() || models.value().as_array().empty()) {
    return r.Error("models", "must be a non-empty list of {name, plan, ...}");
  }
  const auto& list = models.value().as_array();
  for (size_t i = 0; i < list.size(); ++i) {
    JsonReader m(list[i], StrCat(models.path(), "[", i, "]"));
    if (!m.is_object()) return m.Error("", "must be a mapping");
    ControlledModelConfig mc;
    ABGATE_ASSIGN_OR_RETURN(mc.name, m.String("name"));
    if (mc.name.empty()) return m.Error("name", "is required");
    ABGATE_ASSIGN_OR_RETURN(mc.candidate_tag, m.String("candidate_tag", mc.candidate_tag));
    ABGATE_ASSIGN_OR_RETURN(mc.max_duration_us, m.DurationUs("max_duration", mc.max_duration_us));
    ABGATE_ASSIGN_OR_RETURN(mc.shadow_gate, m.Bool("shadow_gate", mc.shadow_gate));
    JsonReader exp = m.Child("experiment");
    if (!exp.value().is_null()) {
      if (!exp.is_object()) return m.Error("experiment", "must be a mapping of experiment fields");
      mc.experiment = exp.value().as_object();
    }
    for (const char* reserved : {"name", "model", "arms", "control", "ramp", "default"}) {
      if (mc.experiment.contains(reserved)) {
        return m.Error(StrCat("experiment.", reserved), "is set by the controller");
      }
    }
    // Validate the template with the real experiment parser.
    json::object probe = mc.experiment;
    probe["name"] = "probe";
    probe["model"] = mc.name;
    probe["arms"] = json::array{json::object{{"name", "A"}, {"version", "1"}, {"weight", 1}},
                                json::object{{"name", "B"}, {"version", "2"}, {"weight", 1}}};
    ABGATE_ASSIGN_OR_RETURN(mc.parsed, ParseExperimentConfig(probe, exp.path()));
    JsonReader plan = m.Child("plan");
    if (!plan.value().is_array() || plan.value().as_array().empty()) {
      return m.Error("plan", "must be a non-empty list of {name, percent, min_duration, min_units}");
    }
    double last = -1;
    for (size_t j = 0; j < plan.value().as_array().size(); ++j) {
      JsonReader st(plan.value().as_array()[j], StrCat(plan.path(), "[", j, "]"));
      if (!st.is_object()) return st.Error("", "must be a mapping");
      RolloutStepConfig step;
      ABGATE_ASSIGN_OR_RETURN(step.name, st.String("name", StrCat("step", j + 1)));
      ABGATE_ASSIGN_OR_RETURN(step.percent, st.Number("percent", -1));
      ABGATE_ASSIGN_OR_RETURN(step.shadow_percent, st.Number("shadow", 0));
      if (step.shadow_percent < 0 || step.shadow_percent > 100) return st.Error("shadow", "must be in [0, 100]");
      ABGATE_ASSIGN_OR_RETURN(step.min_duration_us, st.DurationUs("min_duration", 0));
      ABGATE_ASSIGN_OR_RETURN(step.min_units, st.Int("min_units", 0));
      ABGATE_RETURN_IF_ERROR(st.CheckNoUnknownKeys());
      if (step.percent < 0 || step.percent >= 100 || (step.percent == 0 && step.shadow_percent == 0)) {
        return st.Error("percent", "must be in (0, 100) (0 only with shadow > 0): 100% is the promotion itself");
      }
      if (step.percent < last) return st.Error("percent", "must not decrease along the plan");
      last = step.percent;
      mc.plan.push_back(std::move(step));
    }
    JsonReader ups = m.Child("upstreams");
    if (!ups.value().is_null()) {
      if (!ups.is_object()) return m.Error("upstreams", "must map versions to http(s):// URLs");
      for (const auto& [version, url] : ups.value().as_object()) {
        if (!url.is_string()) return ups.Error(std::string_view(version.data(), version.size()), "must be a URL");
        ABGATE_RETURN_IF_ERROR(ParseUpstreamUrl(url.as_string()).status());
        mc.upstreams[std::string(version)] = std::string(url.as_string());
      }
    }
    ABGATE_RETURN_IF_ERROR(m.CheckNoUnknownKeys());
    c.models.push_back(std::move(mc));
  }
  JsonReader retrain = r.Child("retrain");
  if (!retrain.value().is_null()) {
    json::array entries;
    if (retrain.value().is_array()) {
      entries = retrain.value().as_array();
    } else {
      entries.push_back(retrain.value());
    }
    for (size_t i = 0; i < entries.size(); ++i) {
      JsonReader e(entries[i], retrain.value().is_array() ? StrCat(retrain.path(), "[", i, "]") : retrain.path());
      if (!e.is_object()) return e.Error("", "must be a mapping {model, every, min_new_labels, params}");
      RetrainConfig rc;
      ABGATE_ASSIGN_OR_RETURN(rc.model, e.String("model"));
      auto model = std::find_if(c.models.begin(), c.models.end(), [&](const auto& m) { return m.name == rc.model; });
      if (model == c.models.end()) return e.Error("model", "must name one of controller.models");
      ABGATE_ASSIGN_OR_RETURN(rc.experiment, e.String("experiment", ""));
      if (rc.experiment.empty() && model->parsed.payload_sample_rate <= 0) {
        return e.Error("model", StrCat("'", rc.model, "': its experiments store no payloads to train on; set "
                                       "payload_sample_rate in its experiment: section"));
      }
      ABGATE_ASSIGN_OR_RETURN(rc.every_us, e.DurationUs("every", rc.every_us));
      if (rc.every_us <= 0) return e.Error("every", "must be positive");
      ABGATE_ASSIGN_OR_RETURN(rc.min_new_labels, e.Int("min_new_labels", rc.min_new_labels));
      if (rc.min_new_labels < 1) return e.Error("min_new_labels", "must be at least 1");
      ABGATE_ASSIGN_OR_RETURN(rc.label, e.String("label", ""));
      ABGATE_ASSIGN_OR_RETURN(rc.top_ranked_only, e.Bool("top_ranked_only", false));
      std::string weight;
      ABGATE_ASSIGN_OR_RETURN(weight, e.String("weight", "ipw"));
      if (weight != "ipw" && weight != "none") return e.Error("weight", "must be ipw or none");
      rc.inverse_probability_weights = weight == "ipw";
      ABGATE_ASSIGN_OR_RETURN(rc.data_dir, e.String("data_dir", rc.data_dir));
      JsonReader params = e.Child("params");
      if (!params.value().is_null()) {
        if (!params.is_object()) return e.Error("params", "must map XGBoost parameters (and rounds) to values");
        for (const auto& [k, v] : params.value().as_object()) {
          const std::string key(k.data(), k.size());
          if (!v.is_string() && !v.is_number() && !v.is_bool()) return params.Error(key, "must be a scalar");
          const std::string value = v.is_string() ? std::string(v.as_string()) : ToJson(v);
          if (key == "rounds" || key == "num_boost_round") {
            if (!v.is_int64() || v.as_int64() < 1 || v.as_int64() > 10000) return params.Error(key, "must be in [1, 10000]");
            rc.rounds = static_cast<int>(v.as_int64());
          } else {
            rc.params.emplace_back(key, value);
          }
        }
      }
      ABGATE_RETURN_IF_ERROR(e.CheckNoUnknownKeys());
      c.retrain.push_back(std::move(rc));
    }
  }
  ABGATE_RETURN_IF_ERROR(r.CheckNoUnknownKeys());
  return c;
}

absl::StatusOr<GatewayConfig> ParseGatewayConfig(std::string_view yaml_text) {
  ABGATE_ASSIGN_OR_RETURN(json::value root, YamlToJson(yaml_text));
  return ParseGatewayConfigJson(root);
}

absl::StatusOr<GatewayConfig> LoadGatewayConfig(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(StrCat(path, ": cannot open config file"));
  std::stringstream ss;
  ss << in.rdbuf();
  auto c = ParseGatewayConfig(ss.str());
  if (!c.ok()) return absl::Status(c.status().code(), StrCat(path, ": ", c.status().message()));
  return c;
}

}  // namespace abgate::config

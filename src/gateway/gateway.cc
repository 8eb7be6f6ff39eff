#include "gateway/gateway.h"

#include <filesystem>

#include <chrono>
#include <cmath>

#include <boost/json.hpp>

#include "absl/strings/str_format.h"
#include "assign/hash.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "common/store_uri.h"
#include "config/json_format.h"
#include "gateway/outlier.h"
#include "gateway/scoring_body.h"
#include "serving/model_server.h"

namespace abgate::gateway {

namespace json = boost::json;

namespace {

int64_t SteadyUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) {
    if (c >= 'A' && c <= 'Z') c += 32;
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

enum class BodyKind { kJson, kCsv };

// MLflow's scoring-server rules: application/json (or text/csv where allowed), an optional
// charset that must be utf-8, and no other parameters. Returns the 415 response on failure.
std::optional<http::Response> CheckContentType(std::string_view header, bool allow_csv, BodyKind* kind) {
  const std::string_view media = Trim(header.substr(0, header.find(';')));
  // Compared without lowering a copy: "application/json" is one byte past the short-string
  // buffer, so a copy cost a heap allocation per request.
  if (http::EqualsIgnoreCase(media, "application/json")) {
    *kind = BodyKind::kJson;
  } else if (allow_csv && http::EqualsIgnoreCase(media, "text/csv")) {
    *kind = BodyKind::kCsv;
  } else {
    return http::ErrorResponse(
        415, "UNSUPPORTED_MEDIA_TYPE",
        header.empty() ? "Content-Type header is missing; send application/json"
                       : StrCat("Content-Type must be application/json", allow_csv ? " or text/csv" : "",
                                ", got '", header, "'"));
  }
  size_t pos = header.find(';');
  while (pos != std::string_view::npos) {
    const size_t next = header.find(';', pos + 1);
    const std::string_view param = Trim(header.substr(pos + 1, next == std::string_view::npos ? next : next - pos - 1));
    pos = next;
    if (param.empty()) continue;
    const size_t eq = param.find('=');
    const std::string name = ToLower(Trim(param.substr(0, eq)));
    std::string value = eq == std::string_view::npos ? "" : ToLower(Trim(param.substr(eq + 1)));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
    if (name == "charset") {
      if (value != "utf-8" && value != "utf8") {
        return http::ErrorResponse(415, "UNSUPPORTED_MEDIA_TYPE", "only UTF-8 request bodies are supported");
      }
    } else {
      return http::ErrorResponse(415, "UNSUPPORTED_MEDIA_TYPE",
                                 StrCat("unrecognized Content-Type parameter '", name, "'"));
    }
  }
  return std::nullopt;
}

bool ValidRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (c <= ' ' || c > '~' || c == '"' || c == '\\') return false;
  }
  return true;
}

std::optional<double> FirstScore(const json::value& predictions) {
  const json::value* v = &predictions;
  if (v->is_array()) {
    if (v->as_array().empty()) return std::nullopt;
    v = &v->as_array()[0];
  }
  // A model's reply is network data: Boost.JSON reads 1e400 as inf and 0e400 as NaN. A stored
  // inf made `abgate analyze` refuse the whole experiment ("a prediction's score is not finite"),
  // so a non-finite score is stored as none.
  if (v->is_number() && std::isfinite(v->to_number<double>())) return v->to_number<double>();
  return std::nullopt;
}

}  // namespace

// One /predict or /invocations request in flight. Lives until the reply is sent.
struct PredictCall : std::enable_shared_from_this<PredictCall> {
  Gateway* gw = nullptr;
  std::shared_ptr<const ExperimentSet> snapshot;  // keeps `exp` alive
  const CompiledExperiment* exp = nullptr;
  http::Respond respond;
  int worker = 0;
  bool mlflow_shape = false;
  std::string_view content_type;  // a literal
  std::string forward_body;
  events::Exposure exposure;
  int serving = 0;
  int assigned = -1;         // the arm the request was routed to (before any fallback)
  int64_t started_us = 0;    // steady clock, when the request reached HandlePredict
  int64_t upstream_started_us = 0;
  int64_t upstream_total_us = 0;
  // Shadow traffic: the exposure is written once both the served arm and the shadow answered.
  bool shadow_pending = false;
  bool primary_done = false;
  int64_t shadow_started_us = 0;
  unsigned char reply_buffer[2048];  // first block for parsing the model's reply
  json::monotonic_resource reply_memory{reply_buffer, sizeof(reply_buffer)};

  // The gateway's reply (DESIGN.md) up to the value of "predictions": the caller appends the
  // predictions and the closing '}' straight into it.
  std::string ReplyHead(const CompiledArm& a, size_t predictions_size) const {
    std::string body;
    body.reserve(predictions_size + 160);
    body += "{\"model_group\":";
    config::AppendJsonString(body, a.name);
    body += ",\"model_version\":";
    config::AppendJsonString(body, a.version);
    body += ",\"request_id\":";
    config::AppendJsonString(body, exposure.request_id);
    body += ",\"experiment\":";
    config::AppendJsonString(body, exp->config.name);
    body += ",\"predictions\":";
    return body;
  }

  http::ClientRequest UpstreamRequest(const CompiledArm& a, std::string body) const {
    http::ClientRequest req;
    req.tls = a.upstream.tls;
    req.host = a.upstream.host;
    req.port = a.upstream.port;
    req.target = a.upstream.target;
    req.content_type = content_type;
    req.body = std::move(body);
    req.headers.reserve(2);
    req.headers.push_back({"X-Request-Id", exposure.request_id});
    req.connect_timeout_us = gw->config_.upstream.connect_timeout_us;
    req.request_timeout_us = gw->config_.upstream.request_timeout_us;
    return req;
  }

  void Send(int arm) {
    const CompiledArm& a = exp->arms[arm];
    if (arm != exp->control && exp->config.fallback_to_control && !exposure.fallback && IsEjected(*exp, arm, SteadyUs())) {
      // Outlier ejection: the arm's upstream failed repeatedly; control serves at once.
      a.metrics->outlier.ejected_requests.fetch_add(1, std::memory_order_relaxed);
      a.metrics->fallbacks.fetch_add(1, std::memory_order_relaxed);
      exposure.fallback = true;
      return Send(exp->control);
    }
    serving = arm;
    if (a.model) return SendInProcess(a);
    // Copied only while a fallback may still need to send it again.
    const bool may_fall_back = arm != exp->control && exp->config.fallback_to_control && !exposure.fallback;
    http::ClientRequest req = UpstreamRequest(a, may_fall_back ? forward_body : std::move(forward_body));
    req.headers.push_back({"X-Abgate-Arm", a.name});
    upstream_started_us = SteadyUs();
    gw->client_->Send(worker, std::move(req), [self = shared_from_this()](absl::StatusOr<http::ClientResponse> r) {
      self->OnUpstream(std::move(r));
    });
  }

  // Sends a copy of the request to arm `shadow` without waiting for it; the reply is only
  // measured and compared. Counted in that arm's model latency and failure metrics.
  void StartShadow(int shadow) {
    const CompiledArm& s = exp->arms[shadow];
    shadow_pending = true;
    exposure.shadow.emplace();
    exposure.shadow->arm = s.name;
    shadow_started_us = SteadyUs();
    auto self = shared_from_this();
    if (s.model) {
      serving::Score(*s.model, content_type, forward_body, [self, shadow](serving::ScoringReply reply) {
        self->gw->pool_->Post(self->worker, [self, shadow, reply = std::move(reply)] {
          std::optional<double> score;
          if (!reply.predictions.empty()) score = reply.predictions[0];
          const int status = reply.error ? reply.error->http_status : (reply.status.ok() ? 200 : 502);
          self->OnShadow(shadow, score, status);
        });
      });
      return;
    }
    http::ClientRequest req = UpstreamRequest(s, forward_body);
    req.headers.push_back({"X-Abgate-Shadow", "true"});
    gw->client_->Send(worker, std::move(req), [self, shadow](absl::StatusOr<http::ClientResponse> r) {
      std::optional<double> score;
      int status = 502;
      if (!r.ok()) {
        status = r.status().code() == absl::StatusCode::kDeadlineExceeded ? 504 : 502;
      } else {
        status = r->status;
        boost::system::error_code ec;
        json::value v = json::parse(r->body, ec);
        if (!ec && r->status < 300) {
          const json::value* p = &v;
          if (v.is_object()) {
            if (const auto* q = v.as_object().if_contains("predictions")) p = q;
          }
          score = FirstScore(*p);
        }
      }
      self->OnShadow(shadow, score, status);
    });
  }

  void OnShadow(int shadow, std::optional<double> score, int status) {
    const CompiledArm& s = exp->arms[shadow];
    const int64_t took = SteadyUs() - shadow_started_us;
    s.metrics->upstream_latency.Observe(took);
    if (status >= 500) s.metrics->upstream_errors.fetch_add(1, std::memory_order_relaxed);
    exposure.shadow->score = score;
    exposure.shadow->latency_us = took;
    exposure.shadow->status = status;
    shadow_pending = false;
    if (primary_done) gw->writer_->Enqueue(std::move(exposure));
  }

  // An in-process arm: the body is parsed here and scored on the model's own threads; the
  // result comes back to this connection's I/O loop.
  void SendInProcess(const CompiledArm& a) {
    const bool may_fall_back = serving != exp->control && exp->config.fallback_to_control && !exposure.fallback;
    std::string body = may_fall_back ? forward_body : std::move(forward_body);
    upstream_started_us = SteadyUs();
    serving::Score(*a.model, content_type, std::move(body), [self = shared_from_this()](serving::ScoringReply reply) {
      self->gw->pool_->Post(self->worker, [self, reply = std::move(reply)]() mutable { self->OnModel(std::move(reply)); });
    });
  }

  void OnModel(serving::ScoringReply reply) {
    const int64_t took = SteadyUs() - upstream_started_us;
    upstream_total_us += took;
    const CompiledArm& a = exp->arms[serving];
    a.metrics->upstream_latency.Observe(took);
    if (reply.error) {
      // Bad input for the model: answered as MLflow's scoring server would, never a fallback.
      if (reply.error->error_code.empty()) return Finish(http::Response::Text(reply.error->http_status, reply.error->message));
      return Finish(http::ErrorResponse(reply.error->http_status, reply.error->error_code, reply.error->message));
    }
    if (!reply.status.ok()) return OnFailure(StrCat("model ", a.name, ": ", reply.status.message()), 502);
    const bool labels = a.model->model().predicts_labels();
    if (!reply.predictions.empty()) exposure.score = reply.predictions[0];
    // What `mlflow models serve` answers: the /invocations reply and the stored payload.
    std::string mlflow_reply;
    if (mlflow_shape || exposure.request_payload) mlflow_reply = serving::PredictionsJson(reply.predictions, labels);
    if (exposure.request_payload) {
      const size_t cap = static_cast<size_t>(exp->config.payload_max_bytes);
      exposure.payload_truncated |= mlflow_reply.size() > cap;
      exposure.response_payload = mlflow_reply.substr(0, cap);
    }
    http::Response ok;
    if (mlflow_shape) {
      ok.body = std::move(mlflow_reply);
    } else {
      ok.body = ReplyHead(a, reply.predictions.size() * 20);
      serving::AppendPredictionList(ok.body, reply.predictions, labels);
      ok.body += '}';
    }
    Finish(std::move(ok));
  }

  // A failed arm: fall back to control when allowed, else 502/504.
  void OnFailure(std::string failure, int failure_status) {
    const CompiledArm& a = exp->arms[serving];
    a.metrics->upstream_errors.fetch_add(1, std::memory_order_relaxed);
    if (serving != exp->control && exp->config.fallback_to_control && !exposure.fallback) {
      ABGATE_LOG(kDebug, "arm %s failed (%s); falling back to control", a.name, failure);
      a.metrics->fallbacks.fetch_add(1, std::memory_order_relaxed);
      exposure.fallback = true;
      return Send(exp->control);
    }
    Finish(http::ErrorResponse(failure_status, failure_status == 504 ? "UPSTREAM_TIMEOUT" : "UPSTREAM_ERROR", failure));
  }

  void OnUpstream(absl::StatusOr<http::ClientResponse> r) {
    const int64_t took = SteadyUs() - upstream_started_us;
    upstream_total_us += took;
    const CompiledArm& a = exp->arms[serving];
    a.metrics->upstream_latency.Observe(took);
    std::optional<json::value> parsed;
    std::string failure;
    int failure_status = 502;
    if (!r.ok()) {
      failure = std::string(r.status().message());
      if (r.status().code() == absl::StatusCode::kDeadlineExceeded) failure_status = 504;
    } else if (r->status >= 500) {
      failure = StrCat("upstream ", a.name, " answered HTTP ", r->status);
    } else if (r->status < 300) {
      boost::system::error_code ec;
      parsed = config::ParseJson(r->body, &reply_memory, ec);
      if (ec) {
        failure = StrCat("upstream ", a.name, " sent a reply that is not JSON: ", ec.message());
        parsed.reset();
      }
    }
    if (const int64_t ejected_us = RecordUpstreamResult(gw->config_.upstream.outlier_detection, *exp, serving,
                                                        failure.empty(), SteadyUs())) {
      ABGATE_LOG(kWarning, "experiment %s: arm %s ejected for %ds after %d upstream failures in a row (last: %s); "
                 "control serves its requests meanwhile", exp->config.name, a.name, ejected_us / 1'000'000,
                 gw->config_.upstream.outlier_detection.consecutive_failures, failure);
    }
    if (!failure.empty()) return OnFailure(std::move(failure), failure_status);
    if (r->status >= 300) {
      // Upstream 4xx (bad input for the model, schema mismatch): pass it through unchanged.
      http::Response pass;
      pass.status = r->status;
      pass.content_type = std::move(r->content_type);
      pass.body = std::move(r->body);
      return Finish(std::move(pass));
    }
    const json::value* predictions = &*parsed;
    if (parsed->is_object()) {
      if (const auto* p = parsed->as_object().if_contains("predictions")) predictions = p;
    }
    exposure.score = FirstScore(*predictions);
    if (exposure.request_payload) {
      const size_t cap = static_cast<size_t>(exp->config.payload_max_bytes);
      exposure.response_payload = r->body.substr(0, cap);
      exposure.payload_truncated |= r->body.size() > cap;
    }
    http::Response ok;
    if (mlflow_shape) {
      ok.body = std::move(r->body);  // MLflow's own reply, byte for byte
    } else {
      ok.body = ReplyHead(a, r->body.size());
      config::AppendJson(ok.body, *predictions);
      ok.body += '}';
    }
    Finish(std::move(ok));
  }

  void Finish(http::Response response) {
    const CompiledArm& a = exp->arms[serving];
    response.headers.reserve(6);
    response.headers.push_back({"X-Request-Id", exposure.request_id});
    response.headers.push_back({"X-Abgate-Experiment", exp->config.name});
    response.headers.push_back({"X-Abgate-Arm", a.name});
    response.headers.push_back({"X-Abgate-Model-Version", a.version});
    response.headers.push_back({"X-Abgate-Config-Version", std::to_string(snapshot->version)});
    if (exposure.fallback) response.headers.push_back({"X-Abgate-Fallback", "true"});
    const int status = response.status;
    auto& by_status = exposure.fallback ? a.metrics->fallback_requests_by_status : a.metrics->requests_by_status;
    by_status[status < 600 && status >= 0 ? status : 0].fetch_add(1, std::memory_order_relaxed);
    exp->arms[assigned >= 0 ? assigned : serving].metrics->request_latency.Observe(SteadyUs() - started_us);
    exposure.arm = a.name;
    exposure.model_version = a.version;
    exposure.status = status;
    exposure.latency_us = upstream_total_us;
    if (shadow_pending) {
      primary_done = true;  // OnShadow writes the exposure
    } else {
      gw->writer_->Enqueue(std::move(exposure));
    }
    std::move(respond)(std::move(response));
  }
};

Gateway::Gateway(config::GatewayConfig config, const common::Clock& clock)
    : config_(std::move(config)), clock_(clock) {}

Gateway::~Gateway() { Shutdown(); }

absl::StatusOr<std::unique_ptr<Gateway>> Gateway::Create(config::GatewayConfig config, const common::Clock& clock) {
  if (const std::string& env = config.outcomes.token_env; !env.empty()) {
    const char* token = std::getenv(env.c_str());
    if (!token || !*token) {
      // Asked for but missing: refuse to start rather than take anonymous outcomes.
      return absl::InvalidArgumentError(StrCat("outcomes.token_env: the environment variable ", env, " is not set"));
    }
  }
  std::unique_ptr<Gateway> gw(new Gateway(std::move(config), clock));
  const auto& c = gw->config_;
  if (const char* token = std::getenv(c.server.admin_token_env.c_str()); token && *token) {
    gw->admin_token_ = token;
  } else {
    ABGATE_LOG(kWarning, "%s is not set: the admin API is read-only", c.server.admin_token_env);
  }
  if (!c.outcomes.token_env.empty()) gw->outcomes_token_ = std::getenv(c.outcomes.token_env.c_str());
  ABGATE_ASSIGN_OR_RETURN(gw->sink_, events::OpenEventSink(c.events.store));
  ABGATE_ASSIGN_OR_RETURN(gw->results_reader_, events::OpenEventReader(c.events.store));
  gw->shared_store_ = common::IsSharedStore(c.events.store);

  Gateway* self = gw.get();
  gw->model_loader_ = [self](const std::string& uri) -> absl::StatusOr<LoadedModel> {
    // Resolving an alias or stage asks the registry each time, so a moved alias is picked up
    // by the next snapshot; the folder (name/version) decides whether anything is loaded.
    std::string version;
    ABGATE_ASSIGN_OR_RETURN(auto folder, serving::ResolveModelFolder(uri, self->config_.registry.uri,
                                                                     self->config_.registry.cache_dir, &version));
    const std::string key = std::filesystem::absolute(folder).lexically_normal().string();
    common::MutexLock lock(self->models_mu_);
    if (auto it = self->models_.find(key); it != self->models_.end()) return LoadedModel{it->second, version};
    ABGATE_ASSIGN_OR_RETURN(auto predictor, serving::Predictor::Load(folder));
    ABGATE_LOG(kInfo, "loaded in-process model %s (version %s) from %s", uri, version.empty() ? "-" : version, key);
    self->models_[key] = predictor;
    return LoadedModel{predictor, version};
  };

  // The YAML is the starting point; changes made through the admin API were stored and win.
  ABGATE_ASSIGN_OR_RETURN(auto set, gw->BuildSet(c.experiments));
  gw->snapshot_.Store(std::move(set));

  gw->writer_ = std::make_unique<events::BatchingWriter>(*gw->sink_, c.events.flush_us, c.events.queue_capacity);
  gw->pool_ = std::make_unique<http::IoPool>(c.server.threads);
  gw->client_ = std::make_unique<http::Client>(*gw->pool_, c.upstream.max_idle_per_host,
                                               http::TlsOptions{c.upstream.tls_ca_file, c.upstream.tls_verify});
  for (int i = 0; i < c.server.threads; ++i) gw->rngs_.push_back(common::Xoshiro256::FromEntropy());

  Gateway* g = gw.get();
  auto& r = gw->data_router_;
  r.Add("POST", "/predict", [g](http::Request& req, http::Respond respond) {
    g->HandlePredict(req, std::move(respond), {}, false);
  });
  r.Add("POST", "/predict/{experiment}", [g](http::Request& req, http::Respond respond) {
    const std::string name(req.PathParam("experiment"));
    g->HandlePredict(req, std::move(respond), name, false);
  });
  r.Add("POST", "/outcomes", [g](http::Request& req, http::Respond respond) { g->HandleOutcomes(req, std::move(respond)); });
  r.Add("POST", "/invocations", [g](http::Request& req, http::Respond respond) {
    g->HandlePredict(req, std::move(respond), {}, true);
  });
  auto alive = [](http::Request&, http::Respond respond) {
    std::move(respond)(http::Response::Json(200, R"({"status":"ok"})"));
  };
  r.Add("GET", "/healthz", alive);
  r.Add("GET", "/ping", alive);    // MLflow scoring-server health route, for drop-in clients
  r.Add("GET", "/health", alive);
  r.Add("GET", "/readyz", [g](http::Request& req, http::Respond respond) { g->HandleReady(req, std::move(respond)); });
  r.Add("GET", "/metrics", [g](http::Request& req, http::Respond respond) { g->HandleMetrics(req, std::move(respond)); });
  gw->RegisterAdminRoutes();

  http::ServerOptions data;
  data.host = c.server.listen.host;
  data.port = c.server.listen.port;
  data.max_body_bytes = c.server.max_body_bytes;
  data.max_header_bytes = c.server.max_header_bytes;
  data.read_timeout_us = c.server.read_timeout_us;
  data.idle_timeout_us = c.server.idle_timeout_us;
  data.max_connections = c.server.max_connections;
  ABGATE_ASSIGN_OR_RETURN(gw->data_server_, http::Server::Create(*gw->pool_, data, [g](http::Request& req, http::Respond respond) {
    g->data_router_.Dispatch(req, std::move(respond));
  }));
  http::ServerOptions admin = data;
  admin.host = c.server.admin_listen.host;
  admin.port = c.server.admin_listen.port;
  ABGATE_ASSIGN_OR_RETURN(gw->admin_server_, http::Server::Create(*gw->pool_, admin, [g](http::Request& req, http::Respond respond) {
    g->DispatchAdmin(req, std::move(respond));
  }));
  return gw;
}

void Gateway::Start() {
  if (started_.exchange(true)) return;
  pool_->Start();
  data_server_->Start();
  admin_server_->Start();
  started_us_ = clock_.NowUs();
  replica_id_ = ReplicaId();
  Heartbeat();
  fleet_thread_ = std::thread([this] { RunFleetLoop(); });
  bandit_thread_ = std::thread([this] { RunBanditLoop(); });
}

void Gateway::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  draining_ = true;
  if (started_) {
    data_server_->Shutdown(config_.server.drain_timeout_us);
    admin_server_->Shutdown(1'000'000);
  }
  results_.reset();  // waits for a running analysis; before the writer, which it flushes
  if (fleet_thread_.joinable()) {
    {
      common::MutexLock lock(fleet_mu_);
      fleet_stop_ = true;
    }
    fleet_cv_.NotifyAll();
    fleet_thread_.join();
  }
  if (bandit_thread_.joinable()) {
    {
      common::MutexLock lock(bandit_mu_);
      bandit_stop_ = true;
    }
    bandit_cv_.NotifyAll();
    bandit_thread_.join();
  }
  admin_thread_.Stop();
  store_thread_.Stop();
  if (started_) {
    // Leaves the fleet: a stopped replica must not hold back convergence waits.
    if (absl::Status s = sink_->RemoveReplica(replica_id_); !s.ok()) {
      ABGATE_LOG(kWarning, "could not remove this replica from the fleet table: %s", s.message());
    }
  }
  if (!pool_) return;  // Create failed before the loops existed
  pool_->Stop();
  client_.reset();  // idle upstream connections belong to the stopped loops
  writer_->Stop();  // flushes every queued exposure
  const auto s = writer_->stats();
  ABGATE_LOG(kInfo, "shut down: %d exposures written, %d dropped, %d lost to write errors", s.written, s.dropped,
             s.write_errors);
}

absl::Status Gateway::LoadAssignments(const std::string& experiment) {
  auto rows = sink_->ReadAssignments(experiment);
  if (!rows.ok()) return rows.status();
  for (auto& a : *rows) {
    sticky_.Put(experiment, a.unit_id, {std::move(a.arm), std::move(a.source), a.bucket_version, a.assigned_at_us});
  }
  return absl::OkStatus();
}

std::string Gateway::NextRequestId(int worker) {
  auto& rng = rngs_[worker];
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(32, '0');
  uint64_t a = rng(), b = rng();
  for (int i = 0; i < 16; ++i) {
    id[i] = kHex[(a >> (4 * i)) & 15];
    id[16 + i] = kHex[(b >> (4 * i)) & 15];
  }
  return id;
}

void Gateway::HandlePredict(http::Request& req, http::Respond respond, std::string_view name, bool mlflow_shape) {
  const int64_t started_us = SteadyUs();
  const std::string_view route = mlflow_shape ? "/invocations" : (name.empty() ? "/predict" : "/predict/{experiment}");
  auto reject = [&](http::Response r) {
    metrics_.CountRejected(route, r.status);
    std::move(respond)(std::move(r));
  };
  if (draining_) return reject(http::ErrorResponse(503, "SHUTTING_DOWN", "the gateway is shutting down"));
  auto snapshot = snapshot_.Load();
  const CompiledExperiment* exp = name.empty() ? snapshot->default_experiment.get() : snapshot->Find(name);
  if (!exp) {
    return reject(name.empty()
                      ? http::ErrorResponse(404, "NO_DEFAULT_EXPERIMENT",
                                            "no experiment is marked `default: true`; use POST /predict/{experiment}")
                      : http::ErrorResponse(404, "EXPERIMENT_NOT_FOUND", StrCat("no experiment named '", name, "'")));
  }
  BodyKind kind = BodyKind::kJson;
  if (auto bad = CheckContentType(req.FindHeader("Content-Type"), mlflow_shape, &kind)) return reject(std::move(*bad));

  const auto& cfg = exp->config;
  std::string unit;
  bool have_unit = false;
  std::string forward_body;
  if (kind == BodyKind::kJson) {
    // One SAX pass (no DOM); the unit member is cut out of the bytes, the rest is forwarded as sent.
    ScoringBody read = ReadScoringBody(req.body, cfg.unit_field);
    switch (read.error) {
      case ScoringBody::Error::kNone:
        break;
      case ScoringBody::Error::kInvalidUtf8:
        return reject(http::ErrorResponse(400, "INVALID_UTF8", read.message));
      case ScoringBody::Error::kMalformedJson:
        return reject(http::ErrorResponse(400, "MALFORMED_JSON", read.message));
      case ScoringBody::Error::kNotObject:
      case ScoringBody::Error::kScoringKeys:
        return reject(http::ErrorResponse(400, "BAD_REQUEST", read.message));
      case ScoringBody::Error::kInvalidUnit:
        return reject(http::ErrorResponse(400, "INVALID_UNIT", read.message));
    }
    if (read.has_unit) unit = std::move(read.unit);
    have_unit = !unit.empty();
    forward_body = std::move(req.body);
  } else {
    forward_body = std::move(req.body);  // text/csv goes to the model unchanged
  }
  if (!have_unit && !cfg.unit_header.empty()) {
    const std::string_view h = req.FindHeader(cfg.unit_header);
    if (!h.empty()) {
      if (h.size() > 512 || !assign::IsValidUtf8(h)) {
        return reject(http::ErrorResponse(400, "INVALID_UNIT",
                                          StrCat("header ", cfg.unit_header, " must be valid UTF-8 of at most 512 bytes")));
      }
      unit = std::string(h);
      have_unit = true;
    }
  }

  auto call = std::make_shared<PredictCall>();
  call->started_us = started_us;
  call->gw = this;
  call->exp = exp;
  call->snapshot = std::move(snapshot);
  call->respond = std::move(respond);
  call->worker = req.worker;
  call->mlflow_shape = mlflow_shape;
  call->content_type = kind == BodyKind::kJson ? "application/json" : "text/csv";
  const bool sampled = have_unit && exp->payload_buckets > 0 && exp->payload_hasher.Bucket(unit) < exp->payload_buckets;
  if (sampled) {
    const size_t cap = static_cast<size_t>(cfg.payload_max_bytes);
    call->exposure.request_payload = forward_body.substr(0, cap);
    call->exposure.payload_truncated = forward_body.size() > cap;
  }
  call->forward_body = std::move(forward_body);
  auto& e = call->exposure;
  const std::string_view given_id = req.FindHeader("X-Request-Id");
  e.request_id = ValidRequestId(given_id) ? std::string(given_id) : NextRequestId(req.worker);
  e.ts_us = clock_.NowUs();
  e.experiment = cfg.name;
  e.model_name = cfg.model;
  e.routing_mode = std::string(config::RoutingModeName(cfg.routing_mode));
  e.unit_id = unit;

  // A stored assignment decides first: overrides and bulk pre-assignments in every mode, and in
  // sticky mode the unit's first assignment (unless a bucket-version bump re-randomised it).
  // Mutual exclusion and the global holdout decide before any hash or sticky assignment; only
  // an explicit override or bulk assignment wins over them. A unit held out, or outside the
  // namespace range, is in no experiment (served by control, not analysed); held-out exposures
  // are flagged for `analyze --holdout`.
  const bool held_out = have_unit && call->snapshot->holdout.Contains(unit);
  const bool excluded =
      held_out || (exp->namespace_range && !(have_unit && assign::InNamespace(*exp->namespace_range, unit)));
  if (held_out) e.routing_mode = events::kHoldoutRoutingMode;
  auto stored_arm = [&]() -> int {
    if (!have_unit || sticky_.empty()) return -1;
    const auto stored = sticky_.Lookup(cfg.name, unit);
    if (!stored) return -1;
    if (stored->source == "hash" && (excluded || cfg.routing_mode != config::RoutingMode::kSticky ||
                                      stored->bucket_version != cfg.bucket_version)) {
      return -1;
    }
    return exp->ArmIndex(stored->arm);  // -1 when the stored arm no longer exists
  };
  int arm;
  if (cfg.state != config::ExperimentState::kRunning) {
    arm = -1;
  } else if (const int stored = stored_arm(); stored >= 0) {
    arm = stored;
  } else if (excluded) {
    arm = -1;
  } else if (cfg.routing_mode == config::RoutingMode::kRequestRandom) {
    arm = exp->ArmForBucket(static_cast<uint32_t>(rngs_[req.worker]() % assign::kNumBuckets), e.ts_us);
  } else if (cfg.routing_mode == config::RoutingMode::kBandit) {
    // Each request drawn afresh with the bandit's weights in this snapshot; the chance of the
    // arm drawn is recorded for the inverse-propensity analysis.
    arm = exp->ArmForBucket(static_cast<uint32_t>(rngs_[req.worker]() % assign::kNumBuckets), e.ts_us);
    if (arm >= 0) e.assignment_probability = exp->allocation.ProbabilityAt(arm, e.ts_us - exp->start_us);
  } else if (have_unit) {
    arm = exp->ArmForBucket(exp->hasher.Bucket(unit), e.ts_us);
    if (cfg.routing_mode == config::RoutingMode::kSticky && arm >= 0) {
      StoredAssignment first{exp->arms[arm].name, "hash", cfg.bucket_version, e.ts_us};
      if (shared_store_) {
        // Another gateway may have assigned this unit already: claim the first assignment in
        // the shared store (off the I/O thread) and route by whatever is in force there.
        ClaimThenSend(std::move(call), unit, std::move(first));
        return;
      }
      // One gateway owns the store, so its memory is authoritative: remember the first
      // assignment now and store it with the next commit; later weight changes do not move it.
      sticky_.Put(cfg.name, unit, first);
      events::Assignment row{cfg.name, unit, first.arm, e.ts_us, "hash", cfg.bucket_version, false};
      std::vector<events::Assignment> rows;
      rows.push_back(std::move(row));
      writer_->EnqueueAssignments(std::move(rows));
    }
  } else {
    e.unit_random = true;
    exp->metrics->random_unit.fetch_add(1, std::memory_order_relaxed);
    arm = exp->ArmForBucket(static_cast<uint32_t>(rngs_[req.worker]() % assign::kNumBuckets), e.ts_us);
  }
  Route(std::move(call), arm);
}

void Gateway::Route(std::shared_ptr<PredictCall> call, int arm) {
  const CompiledExperiment* exp = call->exp;
  if (arm < 0) {
    call->exposure.in_experiment = false;
    exp->metrics->outside_experiment.fetch_add(1, std::memory_order_relaxed);
    arm = exp->control;
  }
  call->exposure.assigned_arm = exp->arms[arm].name;
  call->assigned = arm;
  const auto& cfg = exp->config;
  if (cfg.shadow_percent > 0 && !cfg.shadow_arm.empty() && cfg.state == config::ExperimentState::kRunning) {
    thread_local common::Xoshiro256 rng = common::Xoshiro256::FromEntropy();
    const int shadow = exp->ArmIndex(cfg.shadow_arm);
    if (shadow >= 0 && shadow != arm && rng.NextDouble() * 100 < cfg.shadow_percent) call->StartShadow(shadow);
  }
  call->Send(arm);
}

void Gateway::ClaimThenSend(std::shared_ptr<PredictCall> call, std::string unit, StoredAssignment first) {
  const CompiledExperiment* exp = call->exp;
  events::Assignment row{exp->config.name, unit, first.arm, first.assigned_at_us, "hash", first.bucket_version, false};
  store_thread_.Post([this, call = std::move(call), row = std::move(row), first = std::move(first)]() mutable {
    auto claimed = sink_->ClaimAssignment(row);  // blocking: this is the store thread
    if (claimed.ok()) {
      first = {claimed->arm, claimed->source, claimed->bucket_version, claimed->assigned_at_us};
      if (claims_failing_) {
        claims_failing_ = false;
        ABGATE_LOG(kWarning, "sticky assignment claims work again");
      }
    } else {
      // Routed by hash; the assignment is stored through the writer, which keeps it through an
      // outage. One log line per change of state, not per request.
      if (!claims_failing_) {
        claims_failing_ = true;
        ABGATE_LOG(kWarning, "sticky assignment claims fail, routing by hash and storing through the event writer: %s",
                   std::string(claimed.status().message()));
      }
      std::vector<events::Assignment> rows;
      rows.push_back(row);
      writer_->EnqueueAssignments(std::move(rows));
    }
    const int worker = call->worker;
    pool_->Post(worker, [this, call = std::move(call), row = std::move(row), first = std::move(first)]() mutable {
      const CompiledExperiment* exp = call->exp;
      const int arm = exp->ArmIndex(first.arm);
      sticky_.Put(exp->config.name, row.unit_id, std::move(first));
      Route(std::move(call), arm);
    });
  });
}

namespace {

struct Rejection {
  size_t line;
  std::string error_code;
  std::string message;
};

// Validates one outcome object against the experiments in `snapshot`.
std::optional<Rejection> ParseOutcome(const json::value& v, size_t line, const ExperimentSet& snapshot, int64_t now_us,
                                      int64_t max_future_us, events::Outcome& out) {
  auto reject = [line](std::string code, std::string message) {
    return std::optional<Rejection>(Rejection{line, std::move(code), std::move(message)});
  };
  if (!v.is_object()) return reject("BAD_REQUEST", "an outcome must be a JSON object");
  const auto& o = v.as_object();
  auto string_field = [&](std::string_view key, size_t max, std::string& into) -> std::optional<Rejection> {
    const auto* f = o.if_contains(key);
    if (!f || f->is_null()) return std::nullopt;
    if (f->is_string() && !f->as_string().empty() && f->as_string().size() <= max) {
      into = std::string(f->as_string());
    } else if (f->is_int64() && key == "unit_id") {
      into = std::to_string(f->as_int64());
    } else {
      return reject("INVALID_FIELD", StrCat("'", key, "' must be a non-empty string of at most ", max, " bytes"));
    }
    return std::nullopt;
  };
  for (const char* key : {"experiment", "metric", "value"}) {
    if (!o.contains(key)) return reject("MISSING_KEY", StrCat("missing '", key, "'"));
  }
  if (auto r = string_field("experiment", 128, out.experiment)) return r;
  if (auto r = string_field("metric", 128, out.metric)) return r;
  if (auto r = string_field("request_id", 128, out.request_id)) return r;
  if (auto r = string_field("unit_id", 512, out.unit_id)) return r;
  if (auto r = string_field("event_id", 128, out.event_id)) return r;
  if (out.experiment.empty() || out.metric.empty()) return reject("MISSING_KEY", "'experiment' and 'metric' must be strings");
  if (out.request_id.empty() && out.unit_id.empty()) return reject("MISSING_KEY", "give 'request_id' and/or 'unit_id'");
  const CompiledExperiment* exp = snapshot.Find(out.experiment);
  if (!exp) return reject("UNKNOWN_EXPERIMENT", StrCat("no experiment named '", out.experiment, "'"));
  const config::MetricConfig* metric = nullptr;
  bool covariate = false;  // a CUPED covariate a metric names (pre-period values, e.g. last year's revenue)
  for (const auto& m : exp->config.metrics) {
    if (m.name == out.metric) metric = &m;
    covariate |= m.cuped_covariate == out.metric;
  }
  if (!metric && !covariate && !exp->config.metrics.empty()) {
    return reject("UNKNOWN_METRIC", StrCat("experiment '", out.experiment, "' has no metric '", out.metric, "'"));
  }
  const json::value& value = o.at("value");
  if (value.is_bool()) {
    out.value = value.as_bool() ? 1 : 0;
  } else if (value.is_number()) {
    out.value = value.to_number<double>();
    if (!std::isfinite(out.value)) return reject("INVALID_VALUE", "'value' must be finite");
  } else {
    return reject("INVALID_VALUE", "'value' must be a number or a boolean");
  }
  if (metric && metric->type == config::MetricType::kBinary && out.value != 0 && out.value != 1) {
    return reject("INVALID_VALUE", StrCat("metric '", out.metric, "' is binary: 'value' must be 0, 1, true or false"));
  }
  out.ts_us = now_us;
  if (const auto* ts = o.if_contains("ts"); ts && !ts->is_null()) {
    // Written so that NaN fails too: Boost.JSON reads 0e400 as NaN (outcomes_fuzz found it; the
    // cast below was undefined and stored a stamp of INT64_MIN).
    const double seconds = ts->is_number() ? ts->to_number<double>() : -1;
    if (!(seconds >= 0 && seconds <= 4e9)) return reject("INVALID_FIELD", "'ts' must be Unix seconds (a number)");
    out.ts_us = static_cast<int64_t>(seconds * 1e6);
    // A stamp from the future would sit inside every later analysis window (and outside
    // attribution windows in a way no real event can): a clock bug or a forgery, refused.
    if (out.ts_us > now_us + max_future_us) {
      return reject("TS_IN_FUTURE", StrCat("'ts' is ", (out.ts_us - now_us) / 1'000'000,
                                           " s in the future; at most ", max_future_us / 1'000'000, " s is accepted"));
    }
  }
  return std::nullopt;
}

}  // namespace

void Gateway::HandleOutcomes(http::Request& req, http::Respond respond) {
  auto reject = [&](http::Response r) {
    metrics_.CountRejected("/outcomes", r.status);
    std::move(respond)(std::move(r));
  };
  if (draining_) return reject(http::ErrorResponse(503, "SHUTTING_DOWN", "the gateway is shutting down"));
  if (!outcomes_token_.empty()) {
    const std::string_view auth = req.FindHeader("Authorization");
    const std::string_view given = auth.starts_with("Bearer ") ? auth.substr(7) : std::string_view();
    // Constant time over the expected token's length whatever was sent.
    unsigned char diff = given.size() != outcomes_token_.size();
    for (size_t i = 0; i < outcomes_token_.size(); ++i) {
      diff |= static_cast<unsigned char>(outcomes_token_[i] ^ (i < given.size() ? given[i] : 0));
    }
    if (diff != 0) {
      http::Response r = http::ErrorResponse(
          401, "UNAUTHENTICATED", StrCat("POST /outcomes needs Authorization: Bearer $", config_.outcomes.token_env));
      r.headers.push_back({"WWW-Authenticate", "Bearer"});
      return reject(std::move(r));
    }
  }
  const std::string_view content_type = req.FindHeader("Content-Type");
  const std::string media = ToLower(Trim(content_type.substr(0, content_type.find(';'))));
  if (media != "application/json" && media != "application/x-ndjson" && media != "application/jsonl" &&
      media != "application/x-jsonlines") {
    return reject(http::ErrorResponse(415, "UNSUPPORTED_MEDIA_TYPE",
                                      "send one JSON object (application/json) or JSON lines (application/x-ndjson)"));
  }
  // One JSON object, or one object per line.
  std::vector<std::pair<size_t, std::string_view>> lines;
  {
    boost::system::error_code ec;
    json::monotonic_resource probe;
    config::ParseJson(req.body, &probe, ec);
    if (!ec) {
      lines.emplace_back(1, req.body);
    } else {
      std::string_view rest = req.body;
      size_t n = 0;
      while (!rest.empty()) {
        const size_t nl = rest.find('\n');
        std::string_view line = rest.substr(0, nl);
        rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
        ++n;
        if (!Trim(line).empty() && line != "\r") lines.emplace_back(n, line);
      }
    }
  }
  if (lines.empty()) return reject(http::ErrorResponse(400, "BAD_REQUEST", "no outcomes in the body"));
  if (static_cast<int64_t>(lines.size()) > config_.events.max_outcome_batch) {
    return reject(http::ErrorResponse(413, "BATCH_TOO_LARGE", StrCat(lines.size(), " lines; at most ",
                                                                     config_.events.max_outcome_batch, " per request")));
  }
  auto snapshot = snapshot_.Load();
  const int64_t now = clock_.NowUs();
  std::vector<events::Outcome> valid;
  std::vector<Rejection> rejected;
  for (const auto& [n, text] : lines) {
    boost::system::error_code ec;
    json::monotonic_resource memory;
    const json::value v = config::ParseJson(text, &memory, ec);
    events::Outcome o;
    if (ec) {
      rejected.push_back({n, assign::IsValidUtf8(text) ? "MALFORMED_JSON" : "INVALID_UTF8",
                          StrCat("not valid JSON: ", ec.message())});
    } else if (auto r = ParseOutcome(v, n, *snapshot, now, config_.outcomes.max_future_us, o)) {
      rejected.push_back(std::move(*r));
    } else {
      valid.push_back(std::move(o));
    }
  }
  json::array rejected_json;
  for (const auto& r : rejected) {
    rejected_json.push_back(json::object{{"line", r.line}, {"error_code", r.error_code}, {"message", r.message}});
  }
  if (valid.empty()) {
    json::object body{{"error_code", "NO_VALID_OUTCOMES"},
                      {"message", "every line was rejected; nothing was stored"},
                      {"accepted", 0},
                      {"rejected", std::move(rejected_json)}};
    return reject(http::Response::Json(400, config::ToJson(body)));
  }
  // While the store is unavailable nothing is acknowledged: the client keeps the outcomes and
  // retries (event_id makes a retry safe).
  if (!writer_->store_available()) {
    metrics_.CountRejected("/outcomes", 503);
    return std::move(respond)(StoreUnavailable(
        StrCat("the event store is unavailable (", writer_->health().error, "); nothing was stored, retry later")));
  }
  const int64_t accepted = static_cast<int64_t>(valid.size());
  auto shared = std::make_shared<http::Respond>(std::move(respond));
  // Answered only once the batch is committed: an acknowledged outcome is durable.
  writer_->EnqueueOutcomes(std::move(valid), [shared, accepted, rejected_json = std::move(rejected_json)](
                                                 absl::Status s, int64_t stored) mutable {
    if (!s.ok()) {
      return std::move(*shared)(
          StoreUnavailable(StrCat("the event store failed (", s.message(), "); nothing was stored, retry later")));
    }
    json::object body{{"accepted", accepted},
                      {"stored", stored},
                      {"duplicates", accepted - stored},
                      {"rejected", std::move(rejected_json)}};
    std::move(*shared)(http::Response::Json(200, config::ToJson(body)));
  });
}

http::Response Gateway::StoreUnavailable(std::string_view message) {
  http::Response r = http::ErrorResponse(503, "STORE_UNAVAILABLE", message);
  r.headers.push_back({"Retry-After", "1"});
  return r;
}

void Gateway::HandleReady(http::Request&, http::Respond respond) {
  if (draining_) {
    return std::move(respond)(http::ErrorResponse(503, "SHUTTING_DOWN", "the gateway is shutting down"));
  }
  if (const events::StoreHealth store = writer_->health(); !store.available) {
    // Predictions are still served; outcomes and admin changes are refused until it is back.
    json::object o{{"status", "store_unavailable"},
                   {"error_code", "STORE_UNAVAILABLE"},
                   {"message", StrCat("the event store is unavailable: ", store.error)},
                   {"unavailable_for_s", static_cast<double>(clock_.NowUs() - store.unavailable_since_us) / 1e6},
                   {"queued_exposures", writer_->stats().queued}};
    return std::move(respond)(http::Response::Json(503, config::ToJson(o)));
  }
  auto snapshot = snapshot_.Load();
  json::object o;
  o["status"] = "ready";
  o["experiments"] = snapshot->experiments.size();
  o["config_version"] = snapshot->version;
  std::move(respond)(http::Response::Json(200, config::ToJson(o)));
}

void Gateway::HandleMetrics(http::Request&, http::Respond respond) {
  const auto s = writer_->stats();
  const auto version = snapshot_.Load()->version;
  std::string body = metrics_.Render([&](std::string& out) {
    StrAppend(&out, "# HELP abgate_event_queue_depth Exposures waiting for the event writer.\n",
              "# TYPE abgate_event_queue_depth gauge\nabgate_event_queue_depth ", s.queued, "\n",
              "# HELP abgate_events_dropped_total Exposures dropped because the event queue was full.\n",
              "# TYPE abgate_events_dropped_total counter\nabgate_events_dropped_total ", s.dropped, "\n",
              "# HELP abgate_events_written_total Exposures committed to the event store.\n",
              "# TYPE abgate_events_written_total counter\nabgate_events_written_total ", s.written, "\n",
              "# HELP abgate_event_write_errors_total Exposures lost: refused by the store, or unwritten at shutdown.\n",
              "# TYPE abgate_event_write_errors_total counter\nabgate_event_write_errors_total ", s.write_errors, "\n",
              "# HELP abgate_event_store_up 1 while the event store takes writes, 0 during an outage.\n",
              "# TYPE abgate_event_store_up gauge\nabgate_event_store_up ", writer_->store_available() ? 1 : 0, "\n",
              "# HELP abgate_event_store_outages_total Times the event store became unavailable.\n",
              "# TYPE abgate_event_store_outages_total counter\nabgate_event_store_outages_total ", s.outages, "\n",
              "# HELP abgate_event_store_failed_writes_total Store transactions that failed (their rows retried).\n",
              "# TYPE abgate_event_store_failed_writes_total counter\nabgate_event_store_failed_writes_total ",
              s.failed_writes, "\n",
              "# HELP abgate_sticky_assignments_lost_total First sticky assignments the store refused or never took.\n",
              "# TYPE abgate_sticky_assignments_lost_total counter\nabgate_sticky_assignments_lost_total ",
              s.sticky_lost, "\n",
              "# HELP abgate_upstream_connects_total Upstream connections opened (grows with load only when the "
              "idle pool, upstream.max_idle_per_host, is too small).\n",
              "# TYPE abgate_upstream_connects_total counter\nabgate_upstream_connects_total ", client_->connects(), "\n",
              "# HELP abgate_config_version Config version being served (the store's, equal on every replica once applied).\n",
              "# TYPE abgate_config_version gauge\nabgate_config_version ", version, "\n",
              "# HELP abgate_config_reloads_total SIGHUP reloads of the YAML, applied or refused.\n",
              "# TYPE abgate_config_reloads_total counter\nabgate_config_reloads_total{result=\"ok\"} ",
              reloads_ok_.load(std::memory_order_relaxed), "\nabgate_config_reloads_total{result=\"failed\"} ",
              reloads_failed_.load(std::memory_order_relaxed), "\n");
    if (results_) {
      const auto r = results_->stats();
      StrAppend(&out, "# HELP abgate_results_requests_total Results and traffic reads of the admin API.\n",
                "# TYPE abgate_results_requests_total counter\nabgate_results_requests_total ", r.requests, "\n",
                "# HELP abgate_results_computations_total Analyses run for them (shared by concurrent readers).\n",
                "# TYPE abgate_results_computations_total counter\nabgate_results_computations_total ",
                r.computations, "\n",
                "# HELP abgate_results_reused_total Reads answered without an analysis: nothing was written since.\n",
                "# TYPE abgate_results_reused_total counter\nabgate_results_reused_total ", r.reused + r.cached, "\n",
                "# HELP abgate_results_rejected_total Reads refused because too many analyses were waiting.\n",
                "# TYPE abgate_results_rejected_total counter\nabgate_results_rejected_total ", r.rejected, "\n",
                "# HELP abgate_results_compute_seconds_total Time spent in analyses.\n",
                "# TYPE abgate_results_compute_seconds_total counter\nabgate_results_compute_seconds_total ",
                absl::StrFormat("%.6f", r.compute_us / 1e6), "\n");
    }
    // Connection limits (issue 14): open connections against the cap, idle ones closed to make
    // room, newcomers refused with 503, requests that did not arrive in time (408).
    const std::pair<const char*, http::ServerStats> listeners[] = {{"data", data_server_->stats()},
                                                                   {"admin", admin_server_->stats()}};
    struct Series {
      const char* name;
      const char* help;
      int64_t http::ServerStats::*field;
    };
    const Series series[] = {
        {"abgate_http_connections", "Open connections per listener.", &http::ServerStats::open_connections},
        {"abgate_http_max_connections", "The listener's connection cap (server.max_connections).",
         &http::ServerStats::max_connections},
        {"abgate_http_idle_connections_closed_total", "Idle connections closed to make room (cap or out of descriptors).",
         &http::ServerStats::evicted_idle},
        {"abgate_http_connections_refused_total", "Connections answered 503 at the cap, every connection busy.",
         &http::ServerStats::refused},
        {"abgate_http_accept_errors_total", "Failed accepts (out of file descriptors).", &http::ServerStats::accept_errors},
        {"abgate_http_request_timeouts_total", "Requests that did not arrive within server.read_timeout (408).",
         &http::ServerStats::timeouts}};
    for (const auto& [name, help, field] : series) {
      const bool gauge = std::string_view(name).find("_total") == std::string_view::npos;
      StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name, gauge ? " gauge\n" : " counter\n");
      for (const auto& [listener, st] : listeners) StrAppend(&out, name, "{listener=\"", listener, "\"} ", st.*field, "\n");
    }
  });
  std::move(respond)(http::Response::Text(200, std::move(body), "text/plain; version=0.0.4; charset=utf-8"));
}

}  // namespace abgate::gateway

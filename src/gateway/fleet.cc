// Gateways sharing one event store (a fleet behind a load balancer): how the experiment configs
// stay the same on every replica, and how the fleet is seen.
//
// An admin change accepted by any replica is committed to the store first (experiment_configs,
// with a version from one store-wide counter), then announced (PostgreSQL NOTIFY, delivered at
// commit). Each replica's fleet thread listens; on an announcement it asks the admin thread to
// apply the stored changes newer than its snapshot, by the same snapshot swap as a local change.
// A re-read every few seconds repairs missed announcements and a lost listening connection.
// Each replica saves its row (id, address, build, applied version) every second and right after
// it applied a new version, so GET /api/v1/fleet on any replica shows who serves what.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <future>

#include <boost/json.hpp>

#include "common/logging.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "config/json_format.h"
#include "gateway/gateway.h"
#include "http/status_to_http.h"

namespace abgate::gateway {

namespace json = boost::json;

std::string ActorOf(const http::Request& req);  // admin_api.cc

namespace {

constexpr auto kHeartbeatInterval = std::chrono::seconds(1);
constexpr auto kResyncInterval = std::chrono::seconds(3);
constexpr auto kListenSlice = std::chrono::milliseconds(100);  // also bounds shutdown and heartbeat delays
// A replica whose row is older than this is listed as not live (and not waited for).
constexpr int64_t kLiveWithinUs = 5'000'000;
constexpr const char* kBuild = "abgate 0.1.0";

absl::StatusOr<config::ExperimentConfig> ParseStored(const events::EventSink::StoredConfig& sc) {
  boost::system::error_code ec;
  const json::value v = json::parse(sc.config_json, ec);
  if (ec) return absl::InvalidArgumentError(ec.message());
  return config::ParseExperimentConfig(v, StrCat("stored experiment ", sc.name));
}

}  // namespace

std::string Gateway::ReplicaId() const {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return StrCat(host[0] ? host : "localhost", ":", admin_port());
}

std::string Gateway::ReplicaAddress() const { return StrCat(config_.server.admin_listen.host, ":", admin_port()); }

absl::StatusOr<std::shared_ptr<ExperimentSet>> Gateway::BuildSet(const std::vector<config::ExperimentConfig>& yaml) {
  std::vector<config::ExperimentConfig> experiments = yaml;
  ABGATE_ASSIGN_OR_RETURN(auto stored, sink_->LoadExperimentConfigs());
  std::sort(stored.begin(), stored.end(), [](const auto& a, const auto& b) {
    return std::tie(a.version, a.updated_us) < std::tie(b.version, b.updated_us);
  });
  auto set = std::make_shared<ExperimentSet>();
  set->version = 1;
  set->holdout = assign::Holdout(config_.holdout.seed, config_.holdout.percent);
  for (const auto& sc : stored) {
    set->config_versions[sc.name] = sc.version;
    set->version = std::max<uint64_t>(set->version, sc.version);
    auto it = std::find_if(experiments.begin(), experiments.end(), [&](const auto& e) { return e.name == sc.name; });
    if (sc.config_json.empty()) {
      if (it != experiments.end()) experiments.erase(it);
      ABGATE_LOG(kInfo, "experiment %s: deleted through the admin API; not loaded", sc.name);
      continue;
    }
    auto parsed = ParseStored(sc);
    if (!parsed.ok()) {
      ABGATE_LOG(kWarning, "experiment %s: ignoring its stored admin change (%s)", sc.name, parsed.status().message());
      continue;
    }
    if (parsed->is_default) {
      for (auto& e : experiments) e.is_default = false;  // the latest stored default wins
    }
    if (it != experiments.end()) {
      *it = *std::move(parsed);
    } else {
      experiments.push_back(*std::move(parsed));
    }
    ABGATE_LOG(kInfo, "experiment %s: using the configuration last changed through the admin API", sc.name);
  }
  {
    std::vector<const config::ExperimentConfig*> all;
    for (const auto& e : experiments) all.push_back(&e);
    ABGATE_RETURN_IF_ERROR(config::ValidateNamespaces(all));
  }
  for (const auto& e : experiments) {
    int64_t start_us;
    if (e.start_us) {
      start_us = *e.start_us;
    } else {
      ABGATE_ASSIGN_OR_RETURN(start_us, sink_->EnsureExperimentStart(e.name, clock_.NowUs()));
    }
    ABGATE_ASSIGN_OR_RETURN(auto compiled, CompiledExperiment::Create(e, start_us, metrics_, model_loader_));
    ABGATE_RETURN_IF_ERROR(LoadAssignments(e.name));
    if (e.is_default) set->default_experiment = compiled;
    set->experiments.emplace(e.name, std::move(compiled));
  }
  return set;
}

absl::Status Gateway::SyncFromStore() {
  ABGATE_ASSIGN_OR_RETURN(auto stored, sink_->LoadExperimentConfigs());
  auto current = snapshot_.Load();
  std::vector<const events::EventSink::StoredConfig*> newer;
  for (const auto& sc : stored) {
    const auto it = current->config_versions.find(sc.name);
    if (sc.version > (it == current->config_versions.end() ? 0 : it->second)) newer.push_back(&sc);
  }
  if (newer.empty()) return absl::OkStatus();
  std::sort(newer.begin(), newer.end(), [](const auto* a, const auto* b) { return a->version < b->version; });
  auto next = std::make_shared<ExperimentSet>(*current);
  int applied = 0;
  for (const auto* sc : newer) {
    // `current` keeps the previous compiled experiment alive while `next` replaces it.
    const CompiledExperiment* before = current->Find(sc->name);
    if (sc->config_json.empty()) {
      next->experiments.erase(sc->name);
    } else {
      absl::StatusOr<std::shared_ptr<const CompiledExperiment>> compiled = [&]()
          -> absl::StatusOr<std::shared_ptr<const CompiledExperiment>> {
        ABGATE_ASSIGN_OR_RETURN(auto parsed, ParseStored(*sc));
        int64_t start_us;
        if (parsed.start_us) {
          start_us = *parsed.start_us;
        } else if (before) {
          start_us = before->start_us;
        } else {
          ABGATE_ASSIGN_OR_RETURN(start_us, sink_->EnsureExperimentStart(parsed.name, clock_.NowUs()));
        }
        if (!before) ABGATE_RETURN_IF_ERROR(LoadAssignments(parsed.name));
        return CompiledExperiment::Create(std::move(parsed), start_us, metrics_, model_loader_);
      }();
      if (!compiled.ok()) {
        // Not applied: this replica keeps serving the previous config and shows the lag in
        // GET /api/v1/fleet; the next re-read tries again (logged once per version).
        if (std::exchange(sync_failed_[sc->name], sc->version) != sc->version) {
          ABGATE_LOG(kError, "experiment %s: cannot apply config version %d from the store: %s", sc->name,
                     sc->version, compiled.status().message());
        }
        continue;
      }
      next->experiments[sc->name] = *std::move(compiled);
    }
    next->config_versions[sc->name] = sc->version;
    next->version = std::max<uint64_t>(next->version, sc->version);
    ++applied;
  }
  if (applied == 0) return absl::OkStatus();
  // The default is the most recently changed experiment marked default (a change that moved
  // the default stored both experiments with one version).
  next->default_experiment.reset();
  int64_t newest = -1;
  for (const auto& [name, e] : next->experiments) {
    if (!e->config.is_default) continue;
    const auto it = next->config_versions.find(name);
    const int64_t v = it == next->config_versions.end() ? 0 : it->second;
    if (v > newest) {
      newest = v;
      next->default_experiment = e;
    }
  }
  const uint64_t version = next->version;
  snapshot_.Store(std::move(next));
  ABGATE_LOG(kInfo, "applied %d change(s) made on other gateways: config version %d", applied, version);
  HeartbeatSoon();
  return absl::OkStatus();
}

void Gateway::RequestSync() {
  if (sync_queued_.exchange(true)) return;
  admin_thread_.Post([this] {
    sync_queued_ = false;
    absl::Status s = SyncFromStore();
    // One log line per change of state, not one per re-read.
    if (!s.ok() && !sync_failing_) ABGATE_LOG(kWarning, "cannot read the stored configs: %s", s.message());
    if (s.ok() && sync_failing_) ABGATE_LOG(kInfo, "reading the stored configs again");
    sync_failing_ = !s.ok();
  });
}

void Gateway::Heartbeat() {
  events::EventSink::Replica self;
  self.id = replica_id_;
  self.address = ReplicaAddress();
  self.build = kBuild;
  self.applied_version = static_cast<int64_t>(snapshot_.Load()->version);
  self.started_us = started_us_;
  absl::Status s = sink_->SaveReplica(self, clock_.NowUs());
  if (!s.ok() && !heartbeat_failing_) ABGATE_LOG(kWarning, "cannot save this replica's heartbeat: %s", s.message());
  if (s.ok() && heartbeat_failing_) ABGATE_LOG(kInfo, "heartbeats saved again");
  heartbeat_failing_ = !s.ok();
}

void Gateway::HeartbeatSoon() {
  {
    // Under the lock, so the fleet thread cannot miss it between its check and its wait.
    common::MutexLock lock(fleet_mu_);
    heartbeat_due_ = true;
  }
  fleet_cv_.NotifyAll();
}

void Gateway::RunFleetLoop() {
  using Steady = std::chrono::steady_clock;
  std::unique_ptr<events::EventSink::ConfigFeed> feed;
  bool feed_failing = false;
  auto next_listen_attempt = Steady::now();
  auto last_resync = Steady::now();
  auto last_heartbeat = Steady::now();
  while (true) {
    {
      common::MutexLock lock(fleet_mu_);
      if (fleet_stop_) return;
    }
    bool notified = false;
    if (shared_store_ && !feed && Steady::now() >= next_listen_attempt) {
      auto opened = sink_->OpenConfigFeed();
      if (opened.ok() && *opened) {
        feed = *std::move(opened);
        if (feed_failing) ABGATE_LOG(kInfo, "listening for config changes again");
        feed_failing = false;
        notified = true;  // catch up on what was announced while not listening
      } else {
        if (!feed_failing) {
          ABGATE_LOG(kWarning, "cannot listen for config changes (retrying every second): %s",
                     opened.ok() ? "no feed" : std::string(opened.status().message()));
        }
        feed_failing = true;
        next_listen_attempt = Steady::now() + std::chrono::seconds(1);
      }
    }
    if (feed) {
      auto r = feed->Wait(kListenSlice);
      if (!r.ok()) {
        ABGATE_LOG(kWarning, "lost the config-change listener (reconnecting): %s", r.status().message());
        feed.reset();
        feed_failing = true;
      } else {
        notified = notified || *r;
      }
    } else {
      common::MutexLock lock(fleet_mu_);
      const auto until = Steady::now() + kListenSlice;
      while (!fleet_stop_ && !heartbeat_due_.load() && fleet_cv_.WaitUntil(fleet_mu_, until)) {
      }
    }
    const auto now = Steady::now();
    if (notified || (shared_store_ && now - last_resync >= kResyncInterval)) {
      RequestSync();
      last_resync = now;
    }
    if (heartbeat_due_.exchange(false) || now - last_heartbeat >= kHeartbeatInterval) {
      Heartbeat();
      last_heartbeat = now;
    }
  }
}

void Gateway::HandleFleet(http::Request&, http::Respond respond) {
  auto shared = std::make_shared<http::Respond>(std::move(respond));
  // Store reads block: off the I/O thread, and not behind slow admin work (analyses).
  store_thread_.Post([this, shared] {
    auto replicas = sink_->ReadReplicas(clock_.NowUs());
    if (!replicas.ok()) return std::move(*shared)(http::StatusResponse(replicas.status()));
    auto stored = sink_->LoadExperimentConfigs();
    if (!stored.ok()) return std::move(*shared)(http::StatusResponse(stored.status()));
    int64_t latest = 1;
    for (const auto& sc : *stored) latest = std::max(latest, sc.version);
    json::array list;
    bool converged = true;
    int live_count = 0;
    for (const auto& r : *replicas) {
      const bool live = r.heartbeat_age_us <= kLiveWithinUs;
      live_count += live;
      if (live && r.applied_version < latest) converged = false;
      list.push_back(json::object{{"id", r.id},
                                  {"address", r.address},
                                  {"build", r.build},
                                  {"applied_config_version", r.applied_version},
                                  {"lag_versions", std::max<int64_t>(0, latest - r.applied_version)},
                                  {"heartbeat_age_ms", r.heartbeat_age_us / 1000},
                                  {"live", live},
                                  {"started_us", r.started_us},
                                  {"self", r.id == replica_id_}});
    }
    std::move(*shared)(http::Response::Json(200, config::ToJson(json::object{{"config_version", latest},
                                                                              {"live_replicas", live_count},
                                                                              {"converged", converged},
                                                                              {"replicas", std::move(list)}})));
  });
}

void Gateway::HandleFleetApplied(http::Request& req, http::Respond respond) {
  if (!Authorized(req)) return std::move(respond)(Unauthorized());
  boost::system::error_code ec;
  const json::value body = json::parse(req.body, ec);
  const json::value* v = !ec && body.is_object() ? body.as_object().if_contains("config_version") : nullptr;
  if (!v || !v->is_int64() || v->as_int64() < 1) {
    return std::move(respond)(http::ErrorResponse(400, "INVALID_ARGUMENT", "body needs {\"config_version\": N}"));
  }
  const int64_t version = v->as_int64();
  auto shared = std::make_shared<http::Respond>(std::move(respond));
  store_thread_.Post([this, shared, version, name = std::string(req.PathParam("name")),
                      actor = ActorOf(req), remote = std::string(req.remote_addr)]() mutable {
    auto replicas = sink_->ReadReplicas(clock_.NowUs());
    if (!replicas.ok()) return std::move(*shared)(http::StatusResponse(replicas.status()));
    json::array live;
    std::string behind;
    for (const auto& r : *replicas) {
      if (r.heartbeat_age_us > kLiveWithinUs) continue;
      live.push_back(json::object{{"id", r.id}, {"applied_config_version", r.applied_version}});
      if (r.applied_version < version) StrAppend(&behind, behind.empty() ? "" : ", ", r.id, " (at ", r.applied_version, ")");
    }
    if (!behind.empty()) {
      return std::move(*shared)(http::ErrorResponse(
          409, "NOT_CONVERGED", StrCat("config version ", version, " is not applied yet on ", behind)));
    }
    json::object after{{"config_version", version}, {"replicas", std::move(live)}};
    events::AuditRecord audit = NewAudit(std::move(actor), std::move(remote), "fleet_applied", std::move(name));
    audit.after_json = config::ToJson(after);
    writer_->EnqueueAudit(std::move(audit), [shared, after = std::move(after)](absl::Status s) mutable {
      if (!s.ok()) return std::move(*shared)(http::ErrorResponse(503, "NOT_STORED", StrCat("audit: ", s.message())));
      std::move(*shared)(http::Response::Json(200, config::ToJson(after)));
    });
  });
}

absl::Status Gateway::ReloadExperiments(absl::StatusOr<std::vector<config::ExperimentConfig>> experiments) {
  absl::Status status = experiments.status();
  if (status.ok()) {
    auto done = std::make_shared<std::promise<absl::Status>>();
    auto result = done->get_future();
    admin_thread_.Post([this, done, experiments = *std::move(experiments)] {
      auto set = BuildSet(experiments);
      if (!set.ok()) return done->set_value(set.status());
      snapshot_.Store(*std::move(set));
      HeartbeatSoon();
      done->set_value(absl::OkStatus());
    });
    status = result.wait_for(std::chrono::seconds(60)) == std::future_status::ready
                 ? result.get()
                 : absl::DeadlineExceededError("the admin thread did not apply the reload within 60 s");
  }
  (status.ok() ? reloads_ok_ : reloads_failed_).fetch_add(1, std::memory_order_relaxed);
  return status;
}

}  // namespace abgate::gateway

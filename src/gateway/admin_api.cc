// The admin API: experiments (list, get, create, patch, delete, mode, weights, ramp, pause,
// resume, stop), results, the audit log and the dashboard. Reads need the token unless the
// config opens them, and answer on the I/O thread from the snapshot (analyses run on the
// results threads); every change is authorised with the bearer token, then runs on the single
// admin thread (so changes are serialised without locks), swaps in a new snapshot and answers
// once its audit row is committed.
#include <boost/json.hpp>

#include "common/logging.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "config/json_format.h"
#include "gateway/gateway.h"

#include <charconv>
#include "analysis/analysis.h"
#include "analysis/plan.h"
#include "assign/hash.h"
#include "dashboard/dashboard.h"
#include "dashboard/traffic.h"
#include "http/status_to_http.h"

namespace abgate::gateway {

namespace json = boost::json;

namespace {

// RFC 7396 JSON merge patch.
void MergePatch(json::value& target, const json::value& patch) {
  if (!patch.is_object()) {
    target = patch;
    return;
  }
  if (!target.is_object()) target = json::object();
  auto& t = target.as_object();
  for (const auto& kv : patch.as_object()) {
    if (kv.value().is_null()) {
      t.erase(kv.key());
    } else {
      MergePatch(t[kv.key()], kv.value());
    }
  }
}

// Constant-time comparison: always walks the whole expected token, so the time taken does not
// reveal where a guess first differs.
bool SecureEquals(std::string_view given, std::string_view expected) {
  size_t diff = given.size() ^ expected.size();
  for (size_t i = 0; i < expected.size(); ++i) {
    const char g = i < given.size() ? given[i] : 0;
    diff |= static_cast<unsigned char>(g ^ expected[i]);
  }
  return diff == 0;
}

json::object View(const CompiledExperiment& e, uint64_t version, int64_t now_us) {
  json::object o = config::ExperimentToJson(e.config).as_object();
  json::object runtime;
  runtime["start_us"] = e.start_us;
  runtime["ramp_step"] = e.allocation.StepIndexAt(now_us - e.start_us);
  json::array weights;
  for (double w : e.allocation.WeightsAt(now_us - e.start_us)) weights.push_back(w);
  runtime["current_weights"] = std::move(weights);
  runtime["config_version"] = version;
  o["runtime"] = std::move(runtime);
  return o;
}

absl::StatusOr<std::optional<config::ExperimentConfig>> Patched(const CompiledExperiment* current,
                                                                const json::value& patch) {
  if (!current) return absl::NotFoundError("no such experiment");
  json::value merged = config::ExperimentToJson(current->config);
  MergePatch(merged, patch);
  if (merged.as_object()["name"] != json::value(current->config.name)) {
    return absl::InvalidArgumentError("an experiment cannot be renamed; create a new one");
  }
  auto parsed = config::ParseExperimentConfig(merged, "experiment");
  if (!parsed.ok()) return parsed.status();
  return std::optional<config::ExperimentConfig>(std::move(*parsed));
}

absl::StatusOr<std::optional<config::ExperimentConfig>> WithState(const CompiledExperiment* current,
                                                                  config::ExperimentState state) {
  if (!current) return absl::NotFoundError("no such experiment");
  if (current->config.state == config::ExperimentState::kStopped && state != config::ExperimentState::kStopped) {
    return absl::FailedPreconditionError("the experiment is stopped; create a new one to run again");
  }
  config::ExperimentConfig c = current->config;
  c.state = state;
  return std::optional<config::ExperimentConfig>(std::move(c));
}

// A bandit's weights are Thompson sampling's: FailedPrecondition for a hand-set `what`.
absl::Status NotABandit(const CompiledExperiment& e, std::string_view what) {
  if (e.config.routing_mode != config::RoutingMode::kBandit) return absl::OkStatus();
  return absl::FailedPreconditionError(StrCat("experiment ", e.config.name,
                                              " is a bandit: Thompson sampling sets its weights every ",
                                              e.config.bandit->update_interval_us / 1000000.0,
                                              " s; to set ", what, " by hand switch routing_mode first (POST …/mode)"));
}

// The value of `key` in a query string ("" when absent).
std::string_view QueryParam(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view kv = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (kv.size() > key.size() && kv.starts_with(key) && kv[key.size()] == '=') return kv.substr(key.size() + 1);
  }
  return {};
}

// A non-negative integer query parameter (0 when absent); nullopt when malformed.
std::optional<int64_t> QueryInt(std::string_view query, std::string_view key) {
  const std::string_view v = QueryParam(query, key);
  if (v.empty()) return 0;
  int64_t out = 0;
  const auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || ptr != v.data() + v.size() || out < 0) return std::nullopt;
  return out;
}

// The reads the dashboard makes, open to anyone with `server.dashboard_public_reads`:
// /api/v1/experiments, /api/v1/audit, /api/v1/experiments/{name}[/results|/traffic|/health].
bool IsDashboardRead(std::string_view path) {
  if (path == "/api/v1/experiments" || path == "/api/v1/audit") return true;
  constexpr std::string_view kPrefix = "/api/v1/experiments/";
  if (!path.starts_with(kPrefix)) return false;
  std::string_view rest = path.substr(kPrefix.size());
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return !rest.empty();
  rest = rest.substr(slash + 1);
  return rest == "results" || rest == "traffic" || rest == "health";
}

// A change's base version (optimistic concurrency): {"expected_config_version": N} in the body
// (taken out of it) or `If-Match: "N"`. nullopt when neither is given.
absl::StatusOr<std::optional<int64_t>> ExpectedVersion(const http::Request& req, json::value& body) {
  std::optional<int64_t> expected;
  if (body.is_object()) {
    if (const auto* v = body.as_object().if_contains("expected_config_version")) {
      if (!v->is_int64() && !v->is_uint64()) {
        return absl::InvalidArgumentError("expected_config_version must be a non-negative integer");
      }
      expected = v->is_int64() ? v->as_int64() : static_cast<int64_t>(v->as_uint64());
      body.as_object().erase("expected_config_version");
    }
  }
  std::string_view match = req.FindHeader("If-Match");
  if (!expected && !match.empty()) {
    if (match.starts_with("W/")) match.remove_prefix(2);
    if (match.size() >= 2 && match.front() == '"' && match.back() == '"') match = match.substr(1, match.size() - 2);
    int64_t v = -1;
    const auto [ptr, ec] = std::from_chars(match.data(), match.data() + match.size(), v);
    if (ec != std::errc() || ptr != match.data() + match.size()) {
      return absl::InvalidArgumentError("If-Match must be a config version, e.g. \"12\"");
    }
    expected = v;
  }
  if (expected && *expected < 0) return absl::InvalidArgumentError("expected_config_version must be non-negative");
  return expected;
}

// 409: the experiment was changed after the version the change was based on.
http::Response Conflict(const std::string& name, int64_t based_on, int64_t now) {
  http::Response r = http::ErrorResponse(
      409, "CONFLICT",
      now >= 0 ? StrCat("experiment ", name, " was changed at config version ", now, ", after version ", based_on,
                        " this change was based on; read it again and retry")
               : StrCat("experiment ", name, " kept changing concurrently; read it again and retry"));
  return r;
}

}  // namespace

// Who made a change: X-Abgate-Actor when the caller names itself, else "admin".
std::string ActorOf(const http::Request& req) {
  std::string actor(req.FindHeader("X-Abgate-Actor"));
  return actor.empty() ? "admin" : actor;
}

events::AuditRecord Gateway::NewAudit(std::string actor, std::string remote, std::string action,
                                      std::string experiment) const {
  events::AuditRecord audit;
  audit.ts_us = clock_.NowUs();
  audit.actor = std::move(actor);
  audit.remote_addr = std::move(remote);
  audit.action = std::move(action);
  audit.experiment = std::move(experiment);
  return audit;
}

http::Response Gateway::Unauthorized() const {
  return http::ErrorResponse(401, "UNAUTHENTICATED",
                             admin_token_.empty() ? StrCat("the admin API is read-only: set ", config_.server.admin_token_env,
                                                           " before starting the gateway")
                                                  : "missing or wrong bearer token");
}

bool Gateway::Authorized(const http::Request& req) const {
  if (admin_token_.empty()) return false;
  const std::string_view auth = req.FindHeader("Authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (auth.size() <= kBearer.size() || !http::EqualsIgnoreCase(auth.substr(0, kBearer.size()), kBearer)) return false;
  return SecureEquals(auth.substr(kBearer.size()), admin_token_);
}

void Gateway::DispatchAdmin(http::Request& req, http::Respond respond) {
  // Reads need the token too (an anonymous caller must not see experiments, nor make the
  // gateway run analyses), unless the config opens them.
  if (req.method == "GET" && req.path.starts_with("/api/") && !config_.server.public_reads && !Authorized(req) &&
      !(config_.server.dashboard_public_reads && IsDashboardRead(req.path))) {
    return std::move(respond)(http::ErrorResponse(
        401, "UNAUTHENTICATED",
        admin_token_.empty()
            ? StrCat("no admin token is configured (", config_.server.admin_token_env,
                     "), and reads need it unless server.public_reads is true")
            : "reading the admin API needs the bearer token (or server.public_reads: true in the config)"));
  }
  admin_router_.Dispatch(req, std::move(respond));
}

dashboard::Results Gateway::ComputeResults(const dashboard::ResultsKey& key) {
  dashboard::Results out;
  auto snapshot = snapshot_.Load();
  const CompiledExperiment* e = snapshot->Find(key.experiment);
  if (!e) {
    out.status = absl::NotFoundError(StrCat("no experiment named '", key.experiment, "'"));
    return out;
  }
  const std::string unit = analysis::UnitOf(e->config);
  const std::vector<analysis::MetricSpec> metrics = analysis::MetricsOf(e->config);
  // The key's follower reads only what was stored since its last read (same result as a full
  // read); a new one when the experiment's metrics, unit or window changed.
  std::shared_ptr<analysis::EventStoreFollower> follower;
  {
    common::MutexLock lock(followers_mu_);
    Followed& f = followers_[key];
    if (!f.follower || !f.follower->Follows(unit, metrics, e->config.attribution_window_us, key.since_us)) {
      f = {std::make_shared<analysis::EventStoreFollower>(key.experiment, unit, metrics,
                                                          e->config.attribution_window_us, key.since_us),
           0};
    }
    follower = f.follower;
  }
  auto input = analysis::ReadConfiguredExperiment(*results_reader_, *follower, e->config);
  {
    // Kept only where it saves a read (a store that can resume a scan) and within the memory
    // bound: kFollowedBytes over every key, as the followers count what they keep
    // (EventStoreFollower::kept_bytes: ~220 bytes per unit, ~65 per exposure, 40 per outcome;
    // a 1M-unit experiment's follower keeps ~300 MB).
    constexpr int64_t kFollowedBytes = int64_t{1} << 30;
    common::MutexLock lock(followers_mu_);
    auto it = followers_.find(key);
    if (it != followers_.end() && it->second.follower == follower) {
      it->second.kept_bytes = follower->kept_bytes();
      int64_t total = 0;
      for (const auto& [_, f] : followers_) total += f.kept_bytes;
      if (!follower->can_resume() || total > kFollowedBytes || followers_.size() > 64) followers_.erase(it);
    }
  }
  if (!input.ok()) {
    out.status = input.status();
    return out;
  }
  auto report = analysis::Analyze(*input);
  if (!report.ok()) {
    out.status = report.status();
    return out;
  }
  report->shadow = input->shadow_summary;  // from the shadow rows the follower keeps, not a second read
  out.report_json = config::ToJson(analysis::ToJson(*report));
  out.traffic_json = config::ToJson(dashboard::TrafficSplit(*input, 40));
  return out;
}

absl::StatusOr<Gateway::Installed> Gateway::Install(const std::string& name, const CompiledExperiment* before,
                                                    std::optional<config::ExperimentConfig> after, bool take_default,
                                                    const Commit& commit) {
  auto current = snapshot_.Load();
  auto next = std::make_shared<ExperimentSet>(*current);
  Installed installed;
  next->experiments.erase(name);
  if (next->default_experiment && next->default_experiment->config.name == name) next->default_experiment.reset();
  if (after) {
    if (!before) {
      if (auto s = LoadAssignments(after->name); !s.ok()) return s;  // a reused name keeps its overrides
    }
    int64_t start_us;
    if (after->start_us) {
      start_us = *after->start_us;
    } else if (before) {
      start_us = before->start_us;
    } else {
      auto stored = sink_->EnsureExperimentStart(after->name, clock_.NowUs());  // admin thread: may block
      if (!stored.ok()) return stored.status();
      start_us = *stored;
    }
    if (after->is_default && next->default_experiment) {
      if (!take_default) {
        return absl::FailedPreconditionError(StrCat("experiment ", next->default_experiment->config.name,
                                                    " is already the default; unset it first, or send "
                                                    "\"replace_default\": true to move the default in one step"));
      }
      const CompiledExperiment& old_default = *next->default_experiment;
      config::ExperimentConfig unset = old_default.config;
      unset.is_default = false;
      auto recompiled = CompiledExperiment::Create(std::move(unset), old_default.start_us, metrics_, model_loader_);
      if (!recompiled.ok()) return recompiled.status();
      installed.displaced = old_default.config.name;
      installed.displaced_before = config::ToJson(config::ExperimentToJson(old_default.config));
      next->experiments[installed.displaced] = std::move(*recompiled);
      next->default_experiment.reset();
    }
    auto compiled = CompiledExperiment::Create(std::move(*after), start_us, metrics_, model_loader_);
    if (!compiled.ok()) return compiled.status();
    if ((*compiled)->config.is_default) next->default_experiment = *compiled;
    next->experiments.emplace(name, std::move(*compiled));
  }
  {
    std::vector<const config::ExperimentConfig*> all;
    for (const auto& [_, e] : next->experiments) all.push_back(&e->config);
    ABGATE_RETURN_IF_ERROR(config::ValidateNamespaces(all));
  }
  // Committed to the store first: what every gateway will apply, with its fleet-wide version.
  auto version = commit(*next, installed);
  if (!version.ok()) return version.status();
  next->version = std::max<uint64_t>(current->version, *version);
  next->config_versions[name] = *version;
  if (!installed.displaced.empty()) next->config_versions[installed.displaced] = *version;
  installed.version = next->version;
  snapshot_.Store(std::move(next));
  HeartbeatSoon();
  return installed;
}

void Gateway::Mutate(http::Request& req, http::Respond respond, std::string action, Change change) {
  if (!Authorized(req)) return std::move(respond)(Unauthorized());
  json::value body = json::object();
  if (!req.body.empty()) {
    boost::system::error_code ec;
    body = json::parse(req.body, ec);
    if (ec) return std::move(respond)(http::ErrorResponse(400, "MALFORMED_JSON", StrCat("invalid JSON: ", ec.message())));
    if (!body.is_object()) return std::move(respond)(http::ErrorResponse(400, "INVALID_ARGUMENT", "the body must be a JSON object"));
  }
  // The version the change was based on: "expected_config_version" in the body or If-Match.
  auto expected_version = ExpectedVersion(req, body);
  if (!expected_version.ok()) return std::move(respond)(http::StatusResponse(expected_version.status()));
  std::string name(req.PathParam("name"));
  std::string actor = ActorOf(req);
  auto shared_respond = std::make_shared<http::Respond>(std::move(respond));
  admin_thread_.Post([this, action = std::move(action), change = std::move(change), body = std::move(body),
                      expected_version = *expected_version,
                      name = std::move(name), actor = std::move(actor), remote = std::string(req.remote_addr),
                      shared_respond]() mutable {
    auto snapshot = snapshot_.Load();
    if (name.empty() && body.is_object()) {  // create: the name is in the body
      if (const auto* n = body.as_object().if_contains("name"); n && n->is_string()) name = std::string(n->as_string());
    }
    // "replace_default": true moves the default to this experiment in the same swap (not a
    // config field: taken out before the body is read as one).
    bool take_default = false;
    if (body.is_object()) {
      if (const auto* replace = body.as_object().if_contains("replace_default")) {
        if (!replace->is_bool()) {
          return std::move(*shared_respond)(http::ErrorResponse(400, "INVALID_ARGUMENT", "replace_default must be true or false"));
        }
        take_default = replace->as_bool();
        body.as_object().erase("replace_default");
      }
    }
    // The change is computed from this gateway's snapshot and committed only if the store holds
    // no newer change of the experiment; otherwise this gateway catches up and computes it again.
    // A caller's expected version (what it read) must still be current, else 409.
    absl::StatusOr<Installed> version;
    events::AuditRecord audit;
    bool store_failed = false;
    for (int attempt = 0;; ++attempt) {
      snapshot = snapshot_.Load();
      const CompiledExperiment* before = name.empty() ? nullptr : snapshot->Find(name);
      const auto known = snapshot->config_versions.find(name);
      const int64_t base_version = known == snapshot->config_versions.end() ? 0 : known->second;
      if (expected_version && base_version > *expected_version) {
        return std::move(*shared_respond)(Conflict(name, *expected_version, base_version));
      }
      auto after = change(before, body);
      if (!after.ok()) {
        absl::Status s = after.status();
        if (s.code() == absl::StatusCode::kNotFound && !name.empty()) {
          s = absl::NotFoundError(StrCat("no experiment named '", name, "'"));
        }
        return std::move(*shared_respond)(http::StatusResponse(s));
      }
      if (*after) name = (*after)->name;
      audit = NewAudit(actor, remote, action, name);
      if (before) audit.before_json = config::ToJson(config::ExperimentToJson(before->config));
      // Stored with its audit records in one transaction before it is swapped in: a restart
      // serves it, and a store failure changes nothing (admin thread: may block).
      auto commit = [&](const ExperimentSet& next, const Installed& installed) -> absl::StatusOr<int64_t> {
        if (const CompiledExperiment* now = next.Find(name)) {
          audit.after_json = config::ToJson(config::ExperimentToJson(now->config));
          // A decision's evidence (test, p-value, lift, units) is kept with the change it caused.
          if (const auto* evidence = body.is_object() ? body.as_object().if_contains("evidence") : nullptr) {
            audit.after_json = config::ToJson(
                json::object{{"experiment", config::ExperimentToJson(now->config)}, {"evidence", *evidence}});
          }
        }
        std::vector<events::AuditRecord> audits{audit};
        if (!installed.displaced.empty()) {
          events::AuditRecord moved = NewAudit(actor, remote, "unset_default", installed.displaced);
          moved.before_json = installed.displaced_before;
          moved.after_json = config::ToJson(config::ExperimentToJson(next.Find(installed.displaced)->config));
          audits.push_back(std::move(moved));
        }
        std::vector<events::EventSink::ConfigChange> rows;
        for (const std::string& changed : {name, installed.displaced}) {
          if (changed.empty()) continue;
          const CompiledExperiment* now = next.Find(changed);
          rows.push_back({changed, now ? config::ToJson(config::ExperimentToJson(now->config)) : std::string()});
        }
        auto saved = sink_->SaveExperimentConfigs(rows, base_version, audits, clock_.NowUs(), {});
        store_failed = !saved.ok() && saved.status().code() != absl::StatusCode::kAborted;
        return saved;
      };
      version = Install(name, before, std::move(*after), take_default, commit);
      if (version.ok() || version.status().code() != absl::StatusCode::kAborted) break;
      if (attempt == 2) return std::move(*shared_respond)(Conflict(name, base_version, -1));
      if (absl::Status synced = SyncFromStore(); !synced.ok()) {
        return std::move(*shared_respond)(http::StatusResponse(synced));
      }
    }
    if (!version.ok()) {
      if (store_failed) {
        return std::move(*shared_respond)(StoreUnavailable(
            StrCat("the change was not applied: the event store could not store it: ", version.status().message())));
      }
      return std::move(*shared_respond)(http::StatusResponse(version.status()));
    }
    auto installed = snapshot_.Load();
    json::object reply;
    if (const CompiledExperiment* now = installed->Find(name)) {
      reply = View(*now, installed->version, clock_.NowUs());
    } else {
      reply["deleted"] = name;
      reply["config_version"] = installed->version;
    }
    ABGATE_LOG(kInfo, "admin %s on %s by %s: config version %d", action, name, actor, version->version);
    std::move(*shared_respond)(http::Response::Json(action == "create" ? 201 : 200, config::ToJson(reply)));
  });
}

void Gateway::ApplyAssignments(
    http::Request& req, http::Respond respond, std::string action,
    std::function<absl::StatusOr<std::vector<events::Assignment>>(const CompiledExperiment&)> build) {
  if (!Authorized(req)) return std::move(respond)(Unauthorized());
  std::string actor = ActorOf(req);
  auto shared = std::make_shared<http::Respond>(std::move(respond));
  admin_thread_.Post([this, name = std::string(req.PathParam("name")), action = std::move(action), build = std::move(build),
                      actor = std::move(actor), remote = std::string(req.remote_addr), shared]() mutable {
    auto snapshot = snapshot_.Load();
    const CompiledExperiment* exp = snapshot->Find(name);
    if (!exp) return std::move(*shared)(http::ErrorResponse(404, "NOT_FOUND", StrCat("no experiment named '", name, "'")));
    auto rows = build(*exp);
    if (!rows.ok()) return std::move(*shared)(http::StatusResponse(rows.status()));
    json::array changed;
    for (const auto& a : *rows) {
      if (changed.size() < 100) {
        const std::optional<StoredAssignment> previous = sticky_.Lookup(name, a.unit_id);
        changed.push_back(json::object{{"unit_id", a.unit_id},
                                       {"before", previous ? json::value(previous->arm) : json::value(nullptr)},
                                       {"after", a.remove ? json::value(nullptr) : json::value(a.arm)}});
      }
    }
    events::AuditRecord audit = NewAudit(actor, remote, action, name);
    audit.after_json = config::ToJson(json::object{{"assignments", rows->size()}, {"sample", changed}});
    const int64_t count = static_cast<int64_t>(rows->size());
    // The rows and their audit record in one transaction; served only once stored.
    auto applied = std::make_shared<std::vector<events::Assignment>>(*rows);
    std::vector<events::AuditRecord> audits;
    audits.push_back(std::move(audit));
    writer_->EnqueueAssignments(
        std::move(*rows),
        [this, shared, count, applied, changed = std::move(changed)](absl::Status s) mutable {
          if (!s.ok()) {
            return std::move(*shared)(StoreUnavailable(
                StrCat("the change was not applied: the event store could not store it: ", s.message())));
          }
          for (const auto& a : *applied) {
            if (a.remove) {
              sticky_.Remove(a.experiment, a.unit_id);
            } else {
              sticky_.Put(a.experiment, a.unit_id, {a.arm, a.source, a.bucket_version, a.assigned_at_us});
            }
          }
          std::move(*shared)(http::Response::Json(
              200, config::ToJson(json::object{{"assignments", count}, {"changed", std::move(changed)}})));
        },
        std::move(audits));
  });
}

void Gateway::RegisterAdminRoutes() {
  auto& r = admin_router_;
  dashboard::RegisterRoutes(r);
  // The results cache's mark: this gateway's commits after a flush (so a caller sees what it
  // was served) and the config version. On a shared store other gateways write too, so the
  // mark cannot prove a result current there: every fresh read recomputes.
  results_ = std::make_unique<dashboard::ResultsCache>(
      dashboard::ResultsCache::Options{.threads = config_.server.analysis_threads}, clock_,
      [this] {
        writer_->Flush();
        return dashboard::StoreMark{snapshot_.Load()->version, writer_->stats().batches, !shared_store_};
      },
      [this](const dashboard::ResultsKey& key) { return ComputeResults(key); });
  r.Add("GET", "/api/v1/experiments", [this](http::Request&, http::Respond respond) {
    auto snapshot = snapshot_.Load();
    json::array list;
    const int64_t now = clock_.NowUs();
    for (const auto& [name, e] : snapshot->experiments) list.push_back(View(*e, snapshot->version, now));
    std::move(respond)(http::Response::Json(200, config::ToJson(json::object{{"experiments", std::move(list)}})));
  });
  r.Add("GET", "/api/v1/experiments/{name}", [this](http::Request& req, http::Respond respond) {
    auto snapshot = snapshot_.Load();
    const CompiledExperiment* e = snapshot->Find(req.PathParam("name"));
    if (!e) {
      return std::move(respond)(http::ErrorResponse(404, "NOT_FOUND", StrCat("no experiment named '", req.PathParam("name"), "'")));
    }
    http::Response reply = http::Response::Json(200, config::ToJson(View(*e, snapshot->version, clock_.NowUs())));
    reply.headers.push_back({"ETag", StrCat("\"", snapshot->version, "\"")});  // for If-Match
    std::move(respond)(std::move(reply));
  });
  r.Add("GET", "/api/v1/fleet", [this](http::Request& req, http::Respond respond) { HandleFleet(req, std::move(respond)); });
  r.Add("POST", "/api/v1/experiments/{name}/fleet-applied", [this](http::Request& req, http::Respond respond) {
    HandleFleetApplied(req, std::move(respond));
  });
  r.Add("POST", "/api/v1/experiments", [this](http::Request& req, http::Respond respond) {
    Mutate(req, std::move(respond), "create", [](const CompiledExperiment* current, const json::value& body)
               -> absl::StatusOr<std::optional<config::ExperimentConfig>> {
      if (current) return absl::AlreadyExistsError(StrCat("experiment '", current->config.name, "' already exists"));
      auto parsed = config::ParseExperimentConfig(body, "experiment");
      if (!parsed.ok()) return parsed.status();
      return std::optional<config::ExperimentConfig>(std::move(*parsed));
    });
  });
  r.Add("PATCH", "/api/v1/experiments/{name}", [this](http::Request& req, http::Respond respond) {
    Mutate(req, std::move(respond), "patch", Patched);
  });
  r.Add("DELETE", "/api/v1/experiments/{name}", [this](http::Request& req, http::Respond respond) {
    Mutate(req, std::move(respond), "delete", [](const CompiledExperiment* current, const json::value&)
               -> absl::StatusOr<std::optional<config::ExperimentConfig>> {
      if (!current) return absl::NotFoundError("no such experiment");
      return std::optional<config::ExperimentConfig>();
    });
  });
  r.Add("POST", "/api/v1/experiments/{name}/mode", [this](http::Request& req, http::Respond respond) {
    Mutate(req, std::move(respond), "mode", [](const CompiledExperiment* current, const json::value& body)
               -> absl::StatusOr<std::optional<config::ExperimentConfig>> {
      const auto* mode = body.as_object().if_contains("routing_mode");
      if (!mode || !mode->is_string()) return absl::InvalidArgumentError("body needs {\"routing_mode\": \"...\"}");
      // Entering bandit mode may bring its settings ({"bandit": {...}}); leaving it drops them.
      json::object patch{{"routing_mode", *mode}};
      if (const auto* bandit = body.as_object().if_contains("bandit")) {
        patch["bandit"] = *bandit;
      } else if (mode->as_string() != "bandit") {
        patch["bandit"] = nullptr;
      }
      return Patched(current, patch);
    });
  });
  r.Add("POST", "/api/v1/experiments/{name}/weights", [this](http::Request& req, http::Respond respond) {
    Mutate(req, std::move(respond), "weights", [this](const CompiledExperiment* current, const json::value& body)
               -> absl::StatusOr<std::optional<config::ExperimentConfig>> {
      if (!current) return absl::NotFoundError("no such experiment");
      ABGATE_RETURN_IF_ERROR(NotABandit(*current, "weights"));
      const auto& o = body.as_object();
      const auto* w = o.if_contains("weights");
      if (!w || !w->is_array()) return absl::InvalidArgumentError("body needs {\"weights\": [numbers, one per arm]}");
      std::vector<double> weights;
      for (const auto& x : w->as_array()) {
        if (!x.is_number()) return absl::InvalidArgumentError("weights must be numbers");
        weights.push_back(x.to_number<double>());
      }
      if (weights.size() != current->arms.size()) {
        return absl::InvalidArgumentError(StrCat("need ", current->arms.size(), " weights, got ", weights.size()));
      }
      if (auto valid = assign::Allocation::Create(weights, current->config.coverage); !valid.ok()) {
        return valid.status();
      }
      const auto* allow = o.if_contains("allow_reassignment");
      const bool allow_reassignment = allow && allow->is_bool() && allow->as_bool();
      // Governance: a change that moves units out of an arm whose weight does not go down is
      // refused unless explicitly allowed (same rule as ramps).
      const int64_t elapsed = clock_.NowUs() - current->start_us;
      const auto now_weights = current->allocation.WeightsAt(elapsed);
      std::vector<std::string> names;
      for (const auto& a : current->arms) names.push_back(a.name);
      auto check = assign::Allocation::Create(std::vector<double>(now_weights.begin(), now_weights.end()),
                                              current->config.coverage, {{0, weights}}, names);
      if (!check.ok() && !allow_reassignment) {
        return absl::FailedPreconditionError(StrCat(check.status().message(),
                                                    ". Send \"allow_reassignment\": true to accept that."));
      }
      config::ExperimentConfig c = current->config;
      for (size_t i = 0; i < weights.size(); ++i) c.arms[i].weight = weights[i];
      c.ramp.clear();  // explicit weights end any time-based ramp
      return std::optional<config::ExperimentConfig>(std::move(c));
    });
  });
  r.Add("POST", "/api/v1/experiments/{name}/ramp", [this](http::Request& req, http::Respond respond) {
    Mutate(req, std::move(respond), "ramp", [](const CompiledExperiment* current, const json::value& body)
               -> absl::StatusOr<std::optional<config::ExperimentConfig>> {
      if (current) ABGATE_RETURN_IF_ERROR(NotABandit(*current, "a ramp"));
      const auto* ramp = body.as_object().if_contains("ramp");
      if (!ramp || !ramp->is_array()) return absl::InvalidArgumentError("body needs {\"ramp\": [{after, weights}, ...]}");
      return Patched(current, json::object{{"ramp", *ramp}});
    });
  });
  // Decisions: all traffic to one arm, which becomes the control, and the experiment stops (a
  // stopped experiment serves its control). `promote` names the winner; `rollback` keeps the
  // control. Either may carry {"evidence": {...}} for the audit log (its `reason`, a string,
  // also goes into the config's `conclusion`, which the analysis shows from then on).
  for (const char* verb : {"promote", "rollback"}) {
    const bool promote = std::string_view(verb) == "promote";
    r.Add("POST", StrCat("/api/v1/experiments/{name}/", verb), [this, verb = std::string(verb), promote](
                                                                 http::Request& req, http::Respond respond) {
      Mutate(req, std::move(respond), verb, [this, verb, promote](const CompiledExperiment* current, const json::value& body)
                 -> absl::StatusOr<std::optional<config::ExperimentConfig>> {
        if (!current) return absl::NotFoundError("no such experiment");

        std::string winner = current->config.control;
        if (promote) {
          const auto* w = body.as_object().if_contains("winner");
          if (!w || !w->is_string()) return absl::InvalidArgumentError("body needs {\"winner\": \"ARM\"}");
          winner = std::string(w->as_string());
          if (current->ArmIndex(winner) < 0) return absl::InvalidArgumentError(StrCat("no arm named '", winner, "'"));
        }
        config::ExperimentConfig c = current->config;
        config::ConclusionConfig conclusion{verb, winner, current->config.control, clock_.NowUs(), ""};
        if (const auto* ev = body.as_object().if_contains("evidence"); ev && ev->is_object()) {
          if (const auto* why = ev->as_object().if_contains("reason"); why && why->is_string()) {
            conclusion.reason = std::string(why->as_string());
          }
        }
        // A repeated call (a controller retrying after a crash) keeps the first conclusion: the
        // control it records is the one the experiment ran with.
        if (!c.conclusion) c.conclusion = std::move(conclusion);
        c.control = winner;
        for (auto& arm : c.arms) arm.weight = arm.name == winner ? 100 : 0;
        c.ramp.clear();
        c.state = config::ExperimentState::kStopped;
        return std::optional<config::ExperimentConfig>(std::move(c));
      });
    });
  }
  const std::pair<const char*, config::ExperimentState> states[] = {
      {"pause", config::ExperimentState::kPaused},
      {"resume", config::ExperimentState::kRunning},
      {"stop", config::ExperimentState::kStopped}};
  for (const auto& [verb, state] : states) {
    r.Add("POST", StrCat("/api/v1/experiments/{name}/", verb), [this, verb = std::string(verb), state = state](
                                                                 http::Request& req, http::Respond respond) {
      Mutate(req, std::move(respond), verb, [state](const CompiledExperiment* current, const json::value&) {
        return WithState(current, state);
      });
    });
  }
  r.Add("GET", "/api/v1/experiments/{name}/assignments/{unit}", [this](http::Request& req, http::Respond respond) {
    auto stored = sticky_.Lookup(req.PathParam("name"), req.PathParam("unit"));
    if (!stored) {
      return std::move(respond)(http::ErrorResponse(404, "NOT_FOUND", "no stored assignment for this unit"));
    }
    std::move(respond)(http::Response::Json(200, config::ToJson(json::object{{"unit_id", req.PathParam("unit")},
                                                                             {"arm", stored->arm},
                                                                             {"source", stored->source},
                                                                             {"bucket_version", stored->bucket_version},
                                                                             {"assigned_at_us", stored->assigned_at_us}})));
  });
  r.Add("PUT", "/api/v1/experiments/{name}/assignments/{unit}", [this](http::Request& req, http::Respond respond) {
    boost::system::error_code ec;
    const json::value body = json::parse(req.body, ec);
    const json::value* arm = !ec && body.is_object() ? body.as_object().if_contains("arm") : nullptr;
    if (!arm || !arm->is_string()) {
      return std::move(respond)(http::ErrorResponse(400, "INVALID_ARGUMENT", "body needs {\"arm\": \"NAME\"}"));
    }
    ApplyAssignments(req, std::move(respond), "assign_override",
                     [this, unit = std::string(req.PathParam("unit")), arm = std::string(arm->as_string())](
                         const CompiledExperiment& e) -> absl::StatusOr<std::vector<events::Assignment>> {
                       if (e.ArmIndex(arm) < 0) return absl::InvalidArgumentError(StrCat("no arm named '", arm, "'"));
                       std::vector<events::Assignment> rows(1);
                       rows[0] = {e.config.name, unit, arm, clock_.NowUs(), "override", e.config.bucket_version, false};
                       return rows;
                     });
  });
  r.Add("DELETE", "/api/v1/experiments/{name}/assignments/{unit}", [this](http::Request& req, http::Respond respond) {
    ApplyAssignments(req, std::move(respond), "assign_delete",
                     [unit = std::string(req.PathParam("unit"))](const CompiledExperiment& e)
                         -> absl::StatusOr<std::vector<events::Assignment>> {
                       std::vector<events::Assignment> rows(1);
                       rows[0].experiment = e.config.name;
                       rows[0].unit_id = unit;
                       rows[0].remove = true;
                       return rows;
                     });
  });
  // Bulk pre-assignment: JSON lines {"unit_id", "arm"} or CSV `unit_id,arm` (text/csv). All
  // lines are validated before anything is applied.
  r.Add("POST", "/api/v1/experiments/{name}/assignments", [this](http::Request& req, http::Respond respond) {
    const bool csv = req.FindHeader("Content-Type").starts_with("text/csv");
    ApplyAssignments(req, std::move(respond), "assign_bulk",
                     [this, csv, body = req.body](const CompiledExperiment& e)
                         -> absl::StatusOr<std::vector<events::Assignment>> {
                       std::vector<events::Assignment> rows;
                       std::string_view rest = body;
                       size_t line_no = 0;
                       const int64_t now = clock_.NowUs();
                       while (!rest.empty()) {
                         const size_t nl = rest.find('\n');
                         std::string_view line = rest.substr(0, nl);
                         rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
                         ++line_no;
                         if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
                         if (line.empty() || (csv && line_no == 1 && line.starts_with("unit_id"))) continue;
                         std::string unit, arm;
                         if (csv) {
                           const size_t comma = line.find(',');
                           if (comma == std::string_view::npos) {
                             return absl::InvalidArgumentError(StrCat("line ", line_no, ": expected unit_id,arm"));
                           }
                           unit = std::string(line.substr(0, comma));
                           arm = std::string(line.substr(comma + 1));
                         } else {
                           boost::system::error_code ec;
                           const json::value v = json::parse(line, ec);
                           const json::value* u = !ec && v.is_object() ? v.as_object().if_contains("unit_id") : nullptr;
                           const json::value* a = !ec && v.is_object() ? v.as_object().if_contains("arm") : nullptr;
                           if (!u || !a || !u->is_string() || !a->is_string()) {
                             return absl::InvalidArgumentError(StrCat("line ", line_no, ": expected {\"unit_id\": \"...\", \"arm\": \"...\"}"));
                           }
                           unit = std::string(u->as_string());
                           arm = std::string(a->as_string());
                         }
                         if (unit.empty() || unit.size() > 512 || !assign::IsValidUtf8(unit)) {
                           return absl::InvalidArgumentError(StrCat("line ", line_no, ": bad unit_id"));
                         }
                         if (e.ArmIndex(arm) < 0) return absl::InvalidArgumentError(StrCat("line ", line_no, ": no arm named '", arm, "'"));
                         rows.push_back({e.config.name, std::move(unit), std::move(arm), now, "bulk", e.config.bucket_version, false});
                       }
                       if (rows.empty()) return absl::InvalidArgumentError("no assignments in the body");
                       return rows;
                     });
  });
  r.Add("POST", "/api/v1/experiments/{name}/bucket-version", [this](http::Request& req, http::Respond respond) {
    Mutate(req, std::move(respond), "bucket_version", [](const CompiledExperiment* current, const json::value&)
               -> absl::StatusOr<std::optional<config::ExperimentConfig>> {
      if (!current) return absl::NotFoundError("no such experiment");
      config::ExperimentConfig c = current->config;
      ++c.bucket_version;  // a new hash seed; stored "hash" assignments of older versions lapse
      return std::optional<config::ExperimentConfig>(std::move(c));
    });
  });
  // Serving health per arm since this gateway started (cumulative counters; a controller takes
  // differences between looks): attempts, failures, fallbacks and the latency histogram, and
  // the outlier ejection (requests skipped while ejected count as attempts and failures).
  r.Add("GET", "/api/v1/experiments/{name}/health", [this](http::Request& req, http::Respond respond) {
    auto snapshot = snapshot_.Load();
    const CompiledExperiment* exp = snapshot->Find(req.PathParam("name"));
    if (!exp) return std::move(respond)(http::ErrorResponse(404, "NOT_FOUND", "no such experiment"));
    json::array arms;
    const int64_t now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                               std::chrono::steady_clock::now().time_since_epoch())
                               .count();
    for (const auto& a : exp->arms) {
      // Outlier ejection (gateway/outlier.h): how long the arm stays out, 0 when serving.
      const int64_t ejected_ms = std::max<int64_t>(0, a.metrics->outlier.ejected_until_us.load() - now_us) / 1000;
      uint64_t ok = 0, client_errors = 0, server_errors = 0;
      for (size_t status = 0; status < a.metrics->requests_by_status.size(); ++status) {
        const uint64_t n = a.metrics->requests_by_status[status].load(std::memory_order_relaxed);
        if (status >= 500) server_errors += n;
        else if (status >= 400) client_errors += n;
        else ok += n;
      }
      auto buckets_of = [](const LatencyHistogram& h) {
        json::array buckets;
        uint64_t cumulative = 0;
        for (size_t i = 0; i < h.buckets.size(); ++i) {
          cumulative += h.buckets[i].load(std::memory_order_relaxed);
          buckets.push_back(json::object{
              {"le", i < kLatencyBucketsSeconds.size() ? json::value(kLatencyBucketsSeconds[i] * 1000) : json::value("+Inf")},
              {"count", cumulative}});
        }
        return buckets;
      };
      json::array buckets = buckets_of(a.metrics->upstream_latency);
      arms.push_back(json::object{{"arm", a.name},
                                  {"version", a.version},
                                  {"backend", a.model ? "in_process" : "upstream"},
                                  {"fallback_served", [&] {
                                     uint64_t n = 0;
                                     for (const auto& c : a.metrics->fallback_requests_by_status) n += c.load(std::memory_order_relaxed);
                                     return n;
                                   }()},
                                  {"request_latency_ms_buckets", buckets_of(a.metrics->request_latency)},
                                  {"attempts", a.metrics->attempts()},
                                  {"failures", a.metrics->failures()},
                                  {"fallbacks", a.metrics->fallbacks.load(std::memory_order_relaxed)},
                                  {"ejected", ejected_ms > 0},
                                  {"ejected_for_ms", ejected_ms},
                                  {"ejections", a.metrics->outlier.ejections.load(std::memory_order_relaxed)},
                                  {"ejected_requests", a.metrics->outlier.ejected_requests.load(std::memory_order_relaxed)},
                                  {"responses", json::object{{"ok", ok}, {"4xx", client_errors}, {"5xx", server_errors}}},
                                  {"latency_ms_buckets", std::move(buckets)}});
    }
    std::move(respond)(http::Response::Json(
        200, config::ToJson(json::object{{"experiment", exp->config.name}, {"arms", std::move(arms)}})));
  });
  // The analysis of an experiment from this gateway's event store (the `abgate analyze --format
  // json` report) and its traffic split over time, computed on the results threads and shared
  // (dashboard::ResultsCache). ?since_us=T analyses only what happened from T on (one rollout
  // step); ?max_age_ms=M accepts a result computed up to M ms ago (a polling dashboard), else
  // the result includes everything committed before the request.
  for (const bool traffic : {false, true}) {
    r.Add("GET", traffic ? "/api/v1/experiments/{name}/traffic" : "/api/v1/experiments/{name}/results",
          [this, traffic](http::Request& req, http::Respond respond) {
            const auto since_us = QueryInt(req.query, "since_us");
            const auto max_age_ms = QueryInt(req.query, "max_age_ms");
            if (!since_us || !max_age_ms || *max_age_ms > 86'400'000) {
              return std::move(respond)(http::ErrorResponse(
                  400, "INVALID_ARGUMENT", "since_us and max_age_ms must be non-negative integers (max_age_ms at most a day)"));
            }
            std::string name(req.PathParam("name"));
            if (!snapshot_.Load()->Find(name)) {
              return std::move(respond)(http::ErrorResponse(404, "NOT_FOUND", StrCat("no experiment named '", name, "'")));
            }
            results_->Get({std::move(name), *since_us}, *max_age_ms * 1000,
                          [respond = std::move(respond), traffic](std::shared_ptr<const dashboard::Results> r) mutable {
                            if (!r->status.ok()) return std::move(respond)(http::StatusResponse(r->status));
                            http::Response ok = http::Response::Json(200, traffic ? r->traffic_json : r->report_json);
                            ok.headers.push_back({"X-Abgate-Computed-At-Us", std::to_string(r->computed_at_us)});
                            std::move(respond)(std::move(ok));
                          });
          });
  }
  // Planning is pure arithmetic (a few bisections), cheap enough for the I/O thread.
  r.Add("GET", "/api/v1/plan", [](http::Request& req, http::Respond respond) {
    auto request = analysis::ParsePlanQuery(req.query);
    if (!request.ok()) return std::move(respond)(http::StatusResponse(request.status()));
    auto report = analysis::PlanReport(*request);
    if (!report.ok()) return std::move(respond)(http::StatusResponse(report.status()));
    std::move(respond)(http::Response::Json(200, config::ToJson(*report)));
  });
  r.Add("GET", "/api/v1/audit", [this](http::Request& req, http::Respond respond) {
    std::string experiment;
    int limit = 100;
    // Tiny query parser for experiment=NAME&limit=N (names are [A-Za-z0-9_.-]).
    std::string_view q = req.query;
    while (!q.empty()) {
      const size_t amp = q.find('&');
      const std::string_view kv = q.substr(0, amp);
      q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
      const size_t eq = kv.find('=');
      if (eq == std::string_view::npos) continue;
      if (kv.substr(0, eq) == "experiment") experiment = std::string(kv.substr(eq + 1));
      if (kv.substr(0, eq) == "limit") limit = std::clamp(std::atoi(std::string(kv.substr(eq + 1)).c_str()), 1, 10000);
    }
    auto shared_respond = std::make_shared<http::Respond>(std::move(respond));
    admin_thread_.Post([this, experiment, limit, shared_respond] {
      auto rows = sink_->ReadAudit(experiment, limit);
      if (!rows.ok()) return std::move(*shared_respond)(http::StatusResponse(rows.status()));
      json::array list;
      for (const auto& a : *rows) {
        json::object o;
        o["ts_us"] = a.ts_us;
        o["actor"] = a.actor;
        o["remote_addr"] = a.remote_addr;
        o["action"] = a.action;
        o["experiment"] = a.experiment;
        boost::system::error_code ec;
        o["before"] = a.before_json.empty() ? json::value(nullptr) : json::parse(a.before_json, ec);
        o["after"] = a.after_json.empty() ? json::value(nullptr) : json::parse(a.after_json, ec);
        list.push_back(std::move(o));
      }
      std::move(*shared_respond)(http::Response::Json(200, config::ToJson(json::object{{"audit", std::move(list)}})));
    });
  });
}

}  // namespace abgate::gateway

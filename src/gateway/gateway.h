// Gateway: the `abgate serve` process. Owns the I/O loops, the data-plane server (/predict,
// /invocations, /healthz, /readyz, /metrics), the admin server (/api/v1/...), the upstream
// client, the event writer and the current experiment snapshot.
//
// Request path (all on the connection's I/O thread, nothing blocks): validate the payload,
// take the snapshot once, assign an arm, forward the MLflow scoring payload to the arm's
// upstream, fall back to control on failure when configured, reply, and enqueue one exposure.
// Admin changes run on one admin thread, build a new snapshot and swap it whole.
// Start/Shutdown are called from one controlling thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/json/value.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/mutex.h"
#include "common/random.h"
#include "common/worker_thread.h"
#include "config/gateway_config.h"
#include "dashboard/results_cache.h"
#include "events/batching_writer.h"
#include "events/event_reader.h"
#include "events/event_sink.h"
#include "gateway/experiment_set.h"
#include "gateway/metrics.h"
#include "gateway/sticky_assignments.h"
#include "http/client.h"
#include "http/io_pool.h"
#include "http/router.h"
#include "http/server.h"
#include "stats/bandit.h"

namespace abgate::analysis {
class EventStoreFollower;
}  // namespace abgate::analysis

namespace abgate::gateway {

struct PredictCall;  // one request in flight (gateway.cc)

// A bandit's weights as the gateway will serve them: whole buckets (k/10000), every arm at
// >= `floor`, summing to 1 (bandit.cc). InvalidArgument for weights Allocation refuses.
absl::StatusOr<std::vector<double>> BanditServingWeights(std::vector<double> weights, double floor);

// One bandit update's weights from its evidence (per arm, in config order): P(best) by
// Thompson sampling with `draws` draws seeded by the experiment's hash seed and `now_us` (so
// the same evidence at the same time gives the same weights), floored
// (stats::ThompsonWeights), then in whole buckets (BanditServingWeights).
struct BanditUpdateWeights {
  std::vector<double> thompson;  // floor + (1 - k floor) P(best)
  std::vector<double> served;    // what the gateway serves
};
absl::StatusOr<BanditUpdateWeights> ComputeBanditWeights(const config::ExperimentConfig& experiment,
                                                   const std::vector<stats::BanditArm>& evidence, int64_t now_us);

class Gateway {
 public:
  // Validates the config, opens the event store, compiles the experiments and binds both
  // listeners (port 0 = any free port). Nothing is served until Start().
  static absl::StatusOr<std::unique_ptr<Gateway>> Create(config::GatewayConfig config,
                                                         const common::Clock& clock);
  ~Gateway();

  void Start();
  // Graceful: stop accepting, drain in-flight requests (server.drain_timeout), flush every
  // queued exposure to the store, stop the threads. Idempotent.
  void Shutdown();

  // SIGHUP: rebuilds the snapshot from the re-read YAML's experiments and the stored admin
  // changes, as at startup. An error (the file's, passed in, or compiling) keeps the running
  // snapshot and is returned. Counted in /metrics either way. Blocks until applied (admin
  // thread). fleet.cc.
  absl::Status ReloadExperiments(absl::StatusOr<std::vector<config::ExperimentConfig>> experiments);

  uint16_t port() const { return data_server_->port(); }
  uint16_t admin_port() const { return admin_server_->port(); }
  std::shared_ptr<const ExperimentSet> snapshot() const { return snapshot_.Load(); }
  events::WriterStats writer_stats() const { return writer_->stats(); }
  // Blocks until queued exposures are committed (tests).
  void FlushEventsForTest() { writer_->Flush(); }
  // Bandit updates so far that read the store, and those of them that scanned only the events
  // stored since the previous update (a kept follower).
  struct BanditReads {
    int64_t reads = 0, incremental = 0;
  };
  BanditReads bandit_reads_for_test() const { return {bandit_reads_.load(), bandit_incremental_reads_.load()}; }

 private:
  friend struct PredictCall;
  Gateway(config::GatewayConfig config, const common::Clock& clock);

  // Data plane.
  void HandlePredict(http::Request& req, http::Respond respond, std::string_view experiment, bool mlflow_shape);
  void HandleMetrics(http::Request& req, http::Respond respond);
  void HandleOutcomes(http::Request& req, http::Respond respond);
  void HandleReady(http::Request& req, http::Respond respond);

  // Admin API (admin_api.cc). Mutations are posted to admin_thread_.
  void RegisterAdminRoutes();
  // The admin listener's entry: reads of /api/ need the token unless configured open, then the
  // router (admin_api.cc).
  void DispatchAdmin(http::Request& req, http::Respond respond);
  bool Authorized(const http::Request& req) const;
  // An analysis of one experiment for results_ (report + traffic split). Blocking: a results thread.
  dashboard::Results ComputeResults(const dashboard::ResultsKey& key);
  // The 401 for a change without the right token (says so when no token is configured).
  http::Response Unauthorized() const;
  events::AuditRecord NewAudit(std::string actor, std::string remote, std::string action, std::string experiment) const;
  // A change computes the experiment's new config (nullopt = delete) from the current one
  // (null when it does not exist) and the request body. Runs on the admin thread.
  using Change = std::function<absl::StatusOr<std::optional<config::ExperimentConfig>>(
      const CompiledExperiment* current, const boost::json::value& body)>;
  void Mutate(http::Request& req, http::Respond respond, std::string action, Change change);
  // Compiles `after` and swaps in a new snapshot with it (or without `name`). An `after` that
  // is the default while another experiment is refuses, unless `take_default`: then the other
  // stops being the default in the same swap, so /predict never lacks an experiment. Admin thread.
  struct Installed {
    uint64_t version = 0;
    std::string displaced;         // the experiment that stopped being the default, if any
    std::string displaced_before;  // its config before, as JSON
  };
  // `commit` stores the change (given the set about to be swapped in) before the swap and
  // returns its config version; its error is returned and nothing is swapped.
  using Commit = std::function<absl::StatusOr<int64_t>(const ExperimentSet& next, const Installed& installed)>;
  absl::StatusOr<Installed> Install(const std::string& name, const CompiledExperiment* before,
                                    std::optional<config::ExperimentConfig> after, bool take_default,
                                    const Commit& commit);

  // Fleet (fleet.cc): config sync between gateways sharing the store, replica heartbeats and
  // GET /api/v1/fleet.
  // The snapshot for `yaml` plus the stored admin changes (the later change wins). Blocking.
  absl::StatusOr<std::shared_ptr<ExperimentSet>> BuildSet(const std::vector<config::ExperimentConfig>& yaml);
  // Applies stored changes newer than the snapshot's (another gateway's), by the same snapshot
  // swap as a local change. Admin thread.
  absl::Status SyncFromStore();
  // Queues one SyncFromStore on the admin thread unless one is already queued. Any thread.
  void RequestSync();
  // Saves this replica's row (id, address, build, applied version). Blocking; logs failures.
  void Heartbeat();
  // Asks the fleet thread for a heartbeat now (a new applied version). Any thread.
  void HeartbeatSoon();
  // The fleet thread: listens for announced changes, re-reads the configs every few seconds
  // (missed notifications, reconnects) and heartbeats.
  void RunFleetLoop();
  void HandleFleet(http::Request& req, http::Respond respond);
  // POST …/{name}/fleet-applied {"config_version": V}: audits that every live replica serves V
  // (409 NOT_CONVERGED when not).
  void HandleFleetApplied(http::Request& req, http::Respond respond);
  // host name:admin port, and the admin address as configured (host:port).
  std::string ReplicaId() const;
  std::string ReplicaAddress() const;
  // 503 STORE_UNAVAILABLE with Retry-After: the event store cannot take a write now.
  static http::Response StoreUnavailable(std::string_view message);
  // Loads the stored assignments of `experiment` into sticky_. Blocking (startup, admin thread).
  absl::Status LoadAssignments(const std::string& experiment);
  // Assignment overrides (admin_api.cc): applies `changes` to sticky_ and the store, audits, and
  // answers once committed. Runs on the admin thread.
  void ApplyAssignments(http::Request& req, http::Respond respond, std::string action,
                        std::function<absl::StatusOr<std::vector<events::Assignment>>(const CompiledExperiment&)> build);

  std::string NextRequestId(int worker);
  // Fills in the assigned arm (control when outside the experiment) and forwards.
  void Route(std::shared_ptr<PredictCall> call, int arm);
  // Sticky mode on a shared store: claims the unit's first assignment on store_thread_, then
  // routes by the assignment in force, back on the connection's loop.
  void ClaimThenSend(std::shared_ptr<PredictCall> call, std::string unit, StoredAssignment first);

  // Bandits (bandit.cc): the thread that recomputes bandit weights when due, and one update
  // (blocking read of the store on that thread through the experiment's follower, which it
  // keeps, replaces or drops; the swap is posted to the admin thread).
  void RunBanditLoop();
  void UpdateBandit(const config::ExperimentConfig& experiment,
                    std::unique_ptr<analysis::EventStoreFollower>& follower);

  config::GatewayConfig config_;
  const common::Clock& clock_;
  std::string admin_token_;
  std::string outcomes_token_;  // POST /outcomes needs it as a bearer token when set
  std::unique_ptr<http::IoPool> pool_;
  std::unique_ptr<http::Client> client_;
  std::unique_ptr<events::EventSink> sink_;
  std::unique_ptr<events::BatchingWriter> writer_;
  Metrics metrics_;
  // In-process models by local folder (name/version in the cache), shared by every snapshot
  // that serves them (touched only at startup and on the admin thread).
  common::Mutex models_mu_;
  std::map<std::string, std::shared_ptr<serving::Predictor>> models_ ABSL_GUARDED_BY(models_mu_);
  ModelLoader model_loader_;
  SnapshotHolder snapshot_;
  StickyAssignments sticky_;
  common::WorkerThread admin_thread_;
  // GET …/results and …/traffic: analyses on their own threads, shared and cached (admin_api.cc).
  std::unique_ptr<dashboard::ResultsCache> results_;
  std::unique_ptr<events::EventReader> results_reader_;
  // Per results key, what its analyses read so far, so a refresh reads only new events (a
  // follower is used by its key's one running computation at a time; `kept_bytes` is its size after
  // its last read, for the memory bound).
  struct Followed {
    std::shared_ptr<analysis::EventStoreFollower> follower;
    int64_t kept_bytes = 0;  // as of its last read
  };
  common::Mutex followers_mu_;
  std::map<dashboard::ResultsKey, Followed> followers_ ABSL_GUARDED_BY(followers_mu_);
  common::WorkerThread store_thread_;  // blocking store reads of the request path (shared stores)
  bool shared_store_ = false;          // PostgreSQL: other gateways write the same assignments
  bool claims_failing_ = false;        // touched on store_thread_ only (one log line per change)
  http::Router data_router_;
  http::Router admin_router_;
  std::unique_ptr<http::Server> data_server_;
  std::unique_ptr<http::Server> admin_server_;
  std::vector<common::Xoshiro256> rngs_;  // one per I/O loop, touched only on that loop
  // Fleet: this replica's identity, and the fleet thread's stop signal.
  std::string replica_id_;
  int64_t started_us_ = 0;
  std::thread fleet_thread_;
  common::Mutex fleet_mu_;
  common::CondVar fleet_cv_;  // fleet_stop_ or heartbeat_due_
  bool fleet_stop_ ABSL_GUARDED_BY(fleet_mu_) = false;
  std::thread bandit_thread_;
  common::Mutex bandit_mu_;
  common::CondVar bandit_cv_;  // bandit_stop_
  bool bandit_stop_ ABSL_GUARDED_BY(bandit_mu_) = false;
  std::atomic<int64_t> bandit_reads_{0}, bandit_incremental_reads_{0};
  std::atomic<bool> sync_queued_{false};
  std::atomic<bool> heartbeat_due_{false};
  std::atomic<uint64_t> reloads_ok_{0};
  std::atomic<uint64_t> reloads_failed_{0};
  std::map<std::string, int64_t> sync_failed_;  // name -> version whose apply failed (admin thread)
  bool sync_failing_ = false;                   // admin thread
  bool heartbeat_failing_ = false;              // fleet thread (and Start, before it runs)
  std::atomic<bool> draining_{false};
  std::atomic<bool> started_{false};
  bool shut_down_ = false;
};

}  // namespace abgate::gateway

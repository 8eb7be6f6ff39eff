// Compiled experiments and the immutable snapshot the data plane reads.
//
// A CompiledExperiment is an ExperimentConfig validated and prepared for the request path:
// allocation tables, the seeded hasher, parsed upstream addresses, metric pointers. An
// ExperimentSet is one consistent version of all experiments; the admin API builds a new set
// and swaps it whole (SnapshotHolder), and each request reads one set for its whole life.
// Everything here is immutable after construction, hence thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "assign/allocation.h"
#include "assign/eligibility.h"
#include "assign/hash.h"
#include "common/mutex.h"
#include "config/gateway_config.h"
#include "gateway/metrics.h"
#include "serving/predictor.h"

namespace abgate::gateway {

// Loads (or returns the already loaded) in-process model for a model URI. Called off the data
// plane: at startup and on the admin thread, so a new version loads while traffic continues on
// the previous snapshot, and the swap of the snapshot makes the change atomic.
// `version` is the registry version the URI resolved to (an alias or stage names none itself).
struct LoadedModel {
  std::shared_ptr<serving::Predictor> predictor;
  std::string version;
};
using ModelLoader = std::function<absl::StatusOr<LoadedModel>(const std::string& uri)>;

struct CompiledArm {
  std::string name;
  std::string version;  // as configured, else the version an alias resolved to when compiled
  config::UpstreamUrl upstream;              // when served over HTTP
  std::shared_ptr<serving::Predictor> model;  // when served in-process
  ArmMetrics* metrics = nullptr;
};

struct CompiledExperiment {
  config::ExperimentConfig config;
  assign::Allocation allocation;
  assign::SeededHasher hasher;
  int64_t start_us = 0;
  int control = 0;
  std::vector<CompiledArm> arms;
  ExperimentMetrics* metrics = nullptr;
  // Payload sampling: a unit is sampled iff its bucket under this separate seed is below
  // rate * 10000, so a unit is either always sampled or never, independent of its arm.
  assign::SeededHasher payload_hasher{""};
  uint32_t payload_buckets = 0;
  // Mutual exclusion: only units in this slice of the namespace enter (GrowthBook inNamespace).
  std::optional<assign::NamespaceRange> namespace_range{};

  // Compiles and validates (monotone ramps included). `start_us` is the ramp clock origin.
  static absl::StatusOr<std::shared_ptr<const CompiledExperiment>> Create(config::ExperimentConfig config,
                                                                          int64_t start_us, Metrics& metrics,
                                                                          const ModelLoader& load_model);

  // Index of the arm named `name`, or -1 when there is none.
  int ArmIndex(std::string_view name) const {
    for (size_t i = 0; i < arms.size(); ++i) {
      if (arms[i].name == name) return static_cast<int>(i);
    }
    return -1;
  }

  // The arm for a bucket in [0, 10000) at wall time `now_us`, or -1 outside coverage.
  int ArmForBucket(uint32_t bucket, int64_t now_us) const {
    return allocation.ArmForBucket(bucket, now_us - start_us);
  }
};

struct ExperimentSet {
  uint64_t version = 0;  // the store's config version it reflects (1: the YAML alone)
  // Per experiment, the config version of its last stored change applied here (absent or 0:
  // as in the YAML). Kept for deleted experiments too, so a deletion counts as applied.
  std::map<std::string, int64_t, std::less<>> config_versions;
  std::map<std::string, std::shared_ptr<const CompiledExperiment>, std::less<>> experiments;
  std::shared_ptr<const CompiledExperiment> default_experiment;  // may be null
  assign::Holdout holdout;  // the global holdout (config `holdout`); copied into every next set

  const CompiledExperiment* Find(std::string_view name) const {
    auto it = experiments.find(name);
    return it == experiments.end() ? nullptr : it->second.get();
  }
};

// Holds the current ExperimentSet: Load() copies the shared_ptr under a mutex (one uncontended
// lock and a reference count per request), Store() replaces the set whole; the old set is
// released outside the lock. Not std::atomic<std::shared_ptr>: libstdc++ 12 releases its
// internal lock with a relaxed store, which ThreadSanitizer reports as a race. Thread-safe.
class SnapshotHolder {
 public:
  std::shared_ptr<const ExperimentSet> Load() const {
    common::MutexLock lock(mu_);
    return current_;
  }
  void Store(std::shared_ptr<const ExperimentSet> set) {
    {
      common::MutexLock lock(mu_);
      current_.swap(set);
    }
    set.reset();  // the previous set, destroyed outside the lock
  }

 private:
  mutable common::Mutex mu_;
  std::shared_ptr<const ExperimentSet> current_ ABSL_GUARDED_BY(mu_);
};

}  // namespace abgate::gateway

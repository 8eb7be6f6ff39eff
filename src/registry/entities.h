// The MLflow tracking and registry entities as plain structs (MLFLOW.md §2), and their wire
// JSON: fields left out when unset, ids and versions as strings, int64 timestamps as numbers.
// Plain values: not thread-safe, copy them out of the store.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/value.hpp>

namespace abgate::registry {

using TagMap = std::map<std::string, std::string>;

struct Experiment {
  int64_t id = 0;
  std::string name;
  std::string artifact_location;
  std::string lifecycle_stage = "active";
  int64_t creation_time = 0;  // ms
  int64_t last_update_time = 0;
  TagMap tags;
};

struct Metric {
  std::string key;
  double value = 0;
  int64_t timestamp = 0;  // ms
  int64_t step = 0;
};

struct Run {
  std::string run_id;
  std::string run_name;
  int64_t experiment_id = 0;
  std::string user_id;
  std::string status = "RUNNING";
  int64_t start_time = 0;
  std::optional<int64_t> end_time;
  std::string artifact_uri;
  std::string lifecycle_stage = "active";
  TagMap params;
  TagMap tags;
  std::map<std::string, Metric> latest_metrics;  // the latest value per key (MLflow's rule)
};

struct ModelVersion {
  std::string name;
  int64_t version = 0;
  int64_t creation_timestamp = 0;
  int64_t last_updated_timestamp = 0;
  std::optional<std::string> description;
  std::string user_id;
  std::string current_stage = "None";
  std::string source;
  std::string run_id;
  std::string run_link;
  std::string status = "READY";
  std::string status_message;
  TagMap tags;
  bool deleted = false;
};

struct RegisteredModel {
  std::string name;
  int64_t creation_timestamp = 0;
  int64_t last_updated_timestamp = 0;
  std::optional<std::string> description;
  std::string user_id;
  TagMap tags;
  std::map<std::string, int64_t> aliases;  // alias → version
  std::map<int64_t, ModelVersion> versions;  // deleted ones kept (numbers are never reused)
};

// Wire JSON, as MLflow 2.17's REST API writes these entities.
boost::json::object ToJson(const Experiment& e);
boost::json::object ToJson(const Run& r);
boost::json::object RunInfoJson(const Run& r);
boost::json::object ToJson(const Metric& m);
// `aliases` are the aliases pointing at this version.
boost::json::object ToJson(const ModelVersion& v, const std::vector<std::string>& aliases);
// With latest_versions (one per stage that has versions), tags and aliases.
boost::json::object ToJson(const RegisteredModel& m, bool with_latest_versions);
std::vector<std::string> AliasesOf(const RegisteredModel& m, int64_t version);

}  // namespace abgate::registry

#include "registry/entities.h"

#include <cmath>
#include <string>

namespace abgate::registry {
namespace json = boost::json;
namespace {

json::array TagArray(const TagMap& tags) {
  json::array out;
  out.reserve(tags.size());
  for (const auto& [k, v] : tags) out.push_back(json::object{{"key", k}, {"value", v}});
  return out;
}

// MLflow writes NaN and infinities as strings.
json::value Double(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  return d;
}

}  // namespace

json::object ToJson(const Experiment& e) {
  json::object o{{"experiment_id", std::to_string(e.id)},
                 {"name", e.name},
                 {"artifact_location", e.artifact_location},
                 {"lifecycle_stage", e.lifecycle_stage},
                 {"last_update_time", e.last_update_time},
                 {"creation_time", e.creation_time}};
  if (!e.tags.empty()) o["tags"] = TagArray(e.tags);
  return o;
}

json::object RunInfoJson(const Run& r) {
  json::object o{{"run_uuid", r.run_id},
                 {"experiment_id", std::to_string(r.experiment_id)},
                 {"run_name", r.run_name},
                 {"user_id", r.user_id},
                 {"status", r.status},
                 {"start_time", r.start_time}};
  if (r.end_time) o["end_time"] = *r.end_time;
  o["artifact_uri"] = r.artifact_uri;
  o["lifecycle_stage"] = r.lifecycle_stage;
  o["run_id"] = r.run_id;
  return o;
}

json::object ToJson(const Metric& m) {
  return json::object{{"key", m.key}, {"value", Double(m.value)}, {"timestamp", m.timestamp}, {"step", m.step}};
}

json::object ToJson(const Run& r) {
  json::object data;
  if (!r.latest_metrics.empty()) {
    json::array metrics;
    for (const auto& [k, m] : r.latest_metrics) metrics.push_back(ToJson(m));
    data["metrics"] = std::move(metrics);
  }
  if (!r.params.empty()) data["params"] = TagArray(r.params);
  if (!r.tags.empty()) data["tags"] = TagArray(r.tags);
  return json::object{{"info", RunInfoJson(r)}, {"data", std::move(data)}, {"inputs", json::object{}}};
}

std::vector<std::string> AliasesOf(const RegisteredModel& m, int64_t version) {
  std::vector<std::string> out;
  for (const auto& [alias, v] : m.aliases) {
    if (v == version) out.push_back(alias);
  }
  return out;
}

json::object ToJson(const ModelVersion& v, const std::vector<std::string>& aliases) {
  json::object o{{"name", v.name},
                 {"version", std::to_string(v.version)},
                 {"creation_timestamp", v.creation_timestamp},
                 {"last_updated_timestamp", v.last_updated_timestamp}};
  if (!v.user_id.empty()) o["user_id"] = v.user_id;
  o["current_stage"] = v.current_stage;
  if (v.description) o["description"] = *v.description;
  o["source"] = v.source;
  if (!v.run_id.empty()) o["run_id"] = v.run_id;
  o["status"] = v.status;
  if (!v.status_message.empty()) o["status_message"] = v.status_message;
  if (!v.tags.empty()) o["tags"] = TagArray(v.tags);
  o["run_link"] = v.run_link;
  if (!aliases.empty()) {
    json::array a;
    for (const auto& s : aliases) a.push_back(json::value(s));
    o["aliases"] = std::move(a);
  }
  return o;
}

json::object ToJson(const RegisteredModel& m, bool with_latest_versions) {
  json::object o{{"name", m.name},
                 {"creation_timestamp", m.creation_timestamp},
                 {"last_updated_timestamp", m.last_updated_timestamp}};
  if (!m.user_id.empty()) o["user_id"] = m.user_id;
  if (m.description) o["description"] = *m.description;
  if (with_latest_versions) {
    // The highest version in each stage that has versions.
    std::map<std::string, const ModelVersion*> latest;
    for (const auto& [n, v] : m.versions) {
      if (!v.deleted) latest[v.current_stage] = &v;  // ascending, so the last one wins
    }
    if (!latest.empty()) {
      std::vector<const ModelVersion*> ordered;
      for (const auto& [stage, v] : latest) ordered.push_back(v);
      std::sort(ordered.begin(), ordered.end(), [](auto* a, auto* b) { return a->version < b->version; });
      json::array arr;
      for (const ModelVersion* v : ordered) arr.push_back(ToJson(*v, {}));
      o["latest_versions"] = std::move(arr);
    }
  }
  if (!m.tags.empty()) o["tags"] = TagArray(m.tags);
  if (!m.aliases.empty()) {
    json::array arr;
    for (const auto& [alias, v] : m.aliases) {
      arr.push_back(json::object{{"alias", alias}, {"version", std::to_string(v)}});
    }
    o["aliases"] = std::move(arr);
  }
  return o;
}

}  // namespace abgate::registry

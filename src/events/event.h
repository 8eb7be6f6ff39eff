// Event records written to the event store. Plain values; copy or move freely.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace abgate::events {

// `routing_mode` of the exposures of units in the global holdout (config `holdout`): served by
// control, in_experiment false, and read by `analyze --holdout`.
inline constexpr char kHoldoutRoutingMode[] = "holdout";

// Exposure::Shadow. Declared outside Exposure: clang 14 cannot use a nested struct with default
// member initializers in std::optional within the enclosing class.
struct ExposureShadow {
  std::string arm;
  std::optional<double> score;  // the shadow arm's first prediction
  int64_t latency_us = 0;
  int status = 0;  // 200, or the failure's HTTP status (502/504/400...)
};

// One served request (the DESIGN.md `exposures` row).
struct Exposure {
  std::string request_id;
  int64_t ts_us = 0;          // wall time the request arrived, microseconds since the epoch
  std::string experiment;
  std::string unit_id;        // empty when the request carried no unit
  bool unit_random = false;   // no unit in a unit-based mode: assigned at random (flagged)
  std::string arm;            // the arm that served the request
  std::string assigned_arm;   // the arm assignment chose (differs from arm on fallback)
  std::string model_name;
  std::string model_version;
  std::string routing_mode;   // the experiment's mode, or kHoldoutRoutingMode for a held-out unit
  int status = 0;             // HTTP status returned to the client
  int64_t latency_us = 0;     // upstream round trip
  std::optional<double> score;  // first prediction, when it is a number
  bool fallback = false;      // served by control after the assigned arm failed
  bool in_experiment = true;  // false: outside coverage, paused or stopped (not analysed)
  // Bandits: the probability with which `assigned_arm` was drawn for this request (the weights
  // in force); the analysis weights each request by its inverse. Unset in other modes.
  std::optional<double> assignment_probability;
  // Set for sampled units only (experiment payload_sample_rate): the scoring payload sent to
  // the model and the model's reply, each cut at payload_max_bytes.
  std::optional<std::string> request_payload;
  std::optional<std::string> response_payload;
  bool payload_truncated = false;
  // Shadow traffic: the same request also scored by another arm, its reply discarded; stored
  // with the exposure (table `shadows`) once both have answered.
  using Shadow = ExposureShadow;
  std::optional<Shadow> shadow;
};

// One ground-truth observation posted to /outcomes (the DESIGN.md `outcomes` row).
struct Outcome {
  int64_t ts_us = 0;
  std::string experiment;
  std::string request_id;  // either or both of request_id and unit_id
  std::string unit_id;
  std::string metric;
  double value = 0;
  std::string event_id;  // client idempotency key; a repeated (experiment, event_id) is stored once
};

// A unit's stored arm (the DESIGN.md `assignments` row, the seed's ab_assignments).
struct Assignment {
  std::string experiment;
  std::string unit_id;
  std::string arm;             // empty in a deletion
  int64_t assigned_at_us = 0;
  std::string source;          // "hash" (first sticky assignment), "override", "bulk"
  int64_t bucket_version = 0;
  bool remove = false;         // delete the row instead of writing it
};

// One change to an experiment or a model stage.
struct AuditRecord {
  int64_t ts_us = 0;
  std::string actor;
  std::string remote_addr;
  std::string action;      // "create", "weights", "mode", "pause", ...
  std::string experiment;
  std::string before_json;  // experiment JSON before the change ("" for create)
  std::string after_json;   // and after ("" for delete)
};

}  // namespace abgate::events

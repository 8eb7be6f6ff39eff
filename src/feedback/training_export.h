// Training data from the gateway's own logs (`abgate export training-data`): the sampled request
// payloads of one experiment (payload_sample_rate) joined with the outcomes attributed to them,
// one row per scored instance (a request scoring three hotels gives three rows), with the
// served arm and version, the prediction, its rank within the request, the probability with
// which the unit was assigned to its arm, and one label column per metric.
//
// Labels come from the analysis' own reader (analysis::ReadEventStore with request labels), so
// a row's label is exactly what the analysis attributed: the request's outcomes when one named
// it, else its unit's, within the attribution window; units the analysis leaves out (seen in
// two arms, or younger than the attribution window) are left out here too and counted. Every
// exposure that is not written is counted by reason, and the file begins with a header saying
// how it was made (CSV: `#` lines; JSON lines: a first line {"abgate_export": {...}}).
// Thread-compatible: one call per thread.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "absl/status/statusor.h"
#include "config/gateway_config.h"

namespace abgate::feedback {

enum class ExportFormat { kCsv, kJsonLines };

struct ExportOptions {
  std::string store;        // sqlite:PATH or postgresql://…
  std::string experiment;
  int64_t since_us = 0;     // exposures and outcomes at or after; 0: all
  std::string arm;          // only rows served by this arm; empty: all
  std::string output;       // the file to write (refused when it exists, unless `overwrite`)
  bool overwrite = false;
  ExportFormat format = ExportFormat::kCsv;
  // The experiment's config (metrics, attribution window, arms, weights); when unset, the one
  // last stored through the admin API.
  std::optional<config::ExperimentConfig> experiment_config;
  // Where the served model versions' signatures (column names) come from.
  std::string registry_uri;
  std::string model_cache_dir;  // ResolveModelFolder's cache; empty: a temporary folder
  std::string signature_from;   // a model folder or models:/ URI to take the columns from instead
  std::string command_line;     // recorded in the header
};

// What an export wrote and left out (the header renders the same numbers).
struct ExportSummary {
  std::string experiment;
  std::string store;
  int64_t since_us = 0;
  int64_t first_ts_us = 0, last_ts_us = 0;  // of the exposures written
  int64_t created_us = 0;
  int64_t exposures = 0;         // in-experiment exposures in range (and arm)
  int64_t sampled = 0;           // of those, with a stored payload
  int64_t unsampled = 0;         // without one (payload_sample_rate): counted, not written
  int64_t multiple_arm_units = 0;  // exposures of units seen in two arms (left out, as analysed)
  int64_t maturing = 0;          // exposures of units younger than the attribution window
  int64_t unreadable = 0;        // payloads that did not parse (or were truncated)
  std::string first_unreadable;  // why the first of them did not
  int64_t requests_written = 0;  // sampled requests written
  int64_t rows = 0;              // rows written (instances)
  int64_t labelled_rows = 0;     // rows whose primary label came from an outcome (not a default 0)
  std::vector<std::string> features;
  std::vector<std::string> labels;  // metric names, primary first
  std::string assignment_probability_source;  // "exposures column" or "weight history"
  std::map<std::string, int64_t> rows_by_arm;

  boost::json::object ToJson() const;
};

// Reads, joins and writes. InvalidArgument for bad options, NotFound for an experiment without
// exposures or without sampled payloads, AlreadyExists for an existing output file, and the
// store's or registry's errors. Nothing is written on error (the output is written to a
// temporary file and renamed into place).
absl::StatusOr<ExportSummary> ExportTrainingData(const ExportOptions& options);

// Columns an export writes before the features (the metadata of each row).
const std::vector<std::string>& ExportMetaColumns();

}  // namespace abgate::feedback

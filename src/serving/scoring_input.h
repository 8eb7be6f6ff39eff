// MLflow's scoring protocol, request side (MLFLOW.md §7): the four JSON forms
// (`dataframe_split`, `dataframe_records`, `instances`, `inputs`) and CSV, turned into a dense
// float32 matrix in the model's signature order, with MLflow's errors and status codes for bad
// input. Also formats the `{"predictions": [...]}` reply. Pure; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>

#include "serving/mlflow_model.h"

namespace abgate::serving {

struct Matrix {
  std::vector<float> values;  // row-major, NaN = missing
  int64_t rows = 0;
  int64_t cols = 0;
};

// An error as MLflow's scoring server reports it: 400 with BAD_REQUEST or
// INVALID_PARAMETER_VALUE (JSON), or 415 with a plain-text message.
struct ScoringError {
  int http_status = 400;
  std::string error_code;  // empty for the plain-text 415s
  std::string message;
};

struct ScoringResult {
  Matrix matrix;
  std::optional<ScoringError> error;
  bool ok() const { return !error.has_value(); }
};

// What one request may turn into, so that parsing stays linear in the body and memory bounded
// by it: a `dataframe_records` body whose records each name other keys would otherwise become
// a dense table of (records x distinct keys) cells, quadratic in the body. Exceeding a limit is
// a 400 BAD_REQUEST.
struct ScoringLimits {
  int64_t max_columns = 0;  // distinct column names in the request
  int64_t max_cells = 0;    // rows x columns of the table and of the model's matrix
};
// The limits for a body of `body_bytes` for a model of `n_features`: the larger of 10000 and
// `n_features` columns; the larger of 2^20 and `body_bytes` cells (every dense form spends at
// least one byte per cell, so no request that MLflow's dense forms can express is refused).
ScoringLimits LimitsFor(size_t body_bytes, int64_t n_features);

// Checks a Content-Type the way MLflow's server does: application/json or text/csv, charset
// utf-8 only, no other parameters. On success sets `is_csv`.
std::optional<ScoringError> CheckContentType(std::string_view content_type, bool& is_csv);

// `inputs` is the model signature (empty = positional, `n_features` columns expected).
// The string forms apply LimitsFor(body.size(), n_features).
ScoringResult ParseJsonInput(const boost::json::value& body, const std::vector<ColumnSpec>& inputs, int64_t n_features,
                             const ScoringLimits& limits);
ScoringResult ParseJsonInput(std::string_view body, const std::vector<ColumnSpec>& inputs, int64_t n_features);
ScoringResult ParseCsvInput(std::string_view body, const std::vector<ColumnSpec>& inputs, int64_t n_features);

// {"predictions": [...]} with each float widened to double and printed shortest-round-trip, as
// Python prints numpy float32 values widened to float (0.5744470357894897); labels as integers.
std::string PredictionsJson(const std::vector<float>& predictions, bool labels);
// Only the list, for embedding in a gateway reply.
void AppendPredictionList(std::string& out, const std::vector<float>& predictions, bool labels);

}  // namespace abgate::serving

#include "serving/scoring_input.h"

#include <algorithm>
#include <cmath>

#include <boost/json.hpp>

#include "absl/container/flat_hash_map.h"

#include "common/csv.h"
#include "common/strings.h"
#include "config/json_format.h"

namespace abgate::serving {
namespace json = boost::json;
namespace {

constexpr int64_t kMaxColumns = 10000;
constexpr int64_t kMinMaxCells = int64_t{1} << 20;

constexpr std::string_view kInputFields = "{'dataframe_split', 'dataframe_records', 'instances', 'inputs'}";
constexpr std::string_view kProtocolNote =
    " IMPORTANT: The MLflow Model scoring protocol has changed in MLflow version 2.0. If you are seeing this error, "
    "you are likely using an outdated scoring request format. To resolve the error, either update your request "
    "format or adjust your MLflow Model's requirements file to specify an older version of MLflow (for example, "
    "change the 'mlflow' requirement specifier to 'mlflow==1.30.0').";

ScoringResult Fail(int status, std::string_view code, std::string message) {
  ScoringResult r;
  r.error = ScoringError{status, std::string(code), std::move(message)};
  return r;
}

// A table before schema enforcement: named columns, or positional rows.
struct Table {
  bool named = false;
  std::vector<std::string> columns;                // named: column names in the order given
  std::vector<std::vector<const json::value*>> rows;  // cells (nullptr = absent)
};

// A cell as float32: numbers, booleans, null (NaN). Strings are refused (MLflow cannot convert
// an object column to float64 either).
bool CellToFloat(const json::value* v, float& out) {
  if (v == nullptr || v->is_null()) {
    out = NAN;
    return true;
  }
  switch (v->kind()) {
    case json::kind::double_: out = static_cast<float>(v->as_double()); return true;
    case json::kind::int64: out = static_cast<float>(v->as_int64()); return true;
    case json::kind::uint64: out = static_cast<float>(v->as_uint64()); return true;
    case json::kind::bool_: out = v->as_bool() ? 1.f : 0.f; return true;
    default: return false;
  }
}

std::string PyList(const std::vector<std::string>& names) {
  std::string out = "[";
  for (size_t i = 0; i < names.size(); ++i) StrAppend(&out, i ? ", " : "", "'", names[i], "'");
  return out + "]";
}

std::string_view PandasType(std::string_view mlflow_type) {
  if (mlflow_type == "float") return "float32";
  if (mlflow_type == "long") return "int64";
  if (mlflow_type == "integer") return "int32";
  if (mlflow_type == "boolean") return "bool";
  return "float64";
}

ScoringResult Malformed(std::string_view what) {
  return Fail(400, "BAD_REQUEST", StrCat("Invalid input. ", what));
}

ScoringResult TooManyColumns(const ScoringLimits& limits) {
  return Malformed(StrCat("The input names more than ", limits.max_columns, " distinct columns."));
}

// rows x cols within the limit, without overflow.
ScoringResult CheckCells(int64_t rows, int64_t cols, const ScoringLimits& limits) {
  if (cols > 0 && rows > limits.max_cells / cols) {
    return Malformed(StrCat("The input would be a table of ", rows, " rows by ", cols, " columns; at most ",
                            limits.max_cells, " cells are accepted for a body of this size."));
  }
  return {};
}

ScoringResult Enforce(const Table& t, const std::vector<ColumnSpec>& inputs, int64_t n_features,
                      const ScoringLimits& limits) {
  ScoringResult r;
  Matrix& m = r.matrix;
  m.rows = static_cast<int64_t>(t.rows.size());
  if (static_cast<int64_t>(t.columns.size()) > limits.max_columns) return TooManyColumns(limits);
  if (!inputs.empty()) {
    if (!t.named) {
      std::vector<std::string> names;
      for (const auto& c : inputs) names.push_back(c.name);
      return Fail(400, "INVALID_PARAMETER_VALUE",
                  StrCat("Failed to predict data. \nError: Failed to enforce schema of data with schema ",
                         PyList(names), ". Error: Model is missing inputs ", PyList(names),
                         ". Note that there were extra inputs: ['0']."));
    }
    // The first column of each name, as pandas picks it.
    absl::flat_hash_map<std::string_view, int> by_name;
    for (size_t j = 0; j < t.columns.size(); ++j) by_name.try_emplace(t.columns[j], static_cast<int>(j));
    std::vector<int> index;
    std::vector<std::string> missing;
    for (const auto& spec : inputs) {
      const auto it = by_name.find(spec.name);
      if (it == by_name.end()) {
        if (spec.required) missing.push_back(spec.name);
        index.push_back(-1);
      } else {
        index.push_back(it->second);
      }
    }
    if (!missing.empty()) {
      return Fail(400, "INVALID_PARAMETER_VALUE",
                  StrCat("Failed to predict data. \nError: Failed to enforce schema of data with schema. Error: Model "
                         "is missing inputs ",
                         PyList(missing), "."));
    }
    m.cols = static_cast<int64_t>(inputs.size());
    if (ScoringResult big = CheckCells(m.rows, m.cols, limits); !big.ok()) return big;
    m.values.resize(m.rows * m.cols);
    for (int64_t i = 0; i < m.rows; ++i) {
      for (int64_t j = 0; j < m.cols; ++j) {
        const json::value* cell = index[j] < 0 || index[j] >= static_cast<int>(t.rows[i].size()) ? nullptr
                                                                                                  : t.rows[i][index[j]];
        if (!CellToFloat(cell, m.values[i * m.cols + j])) {
          return Fail(400, "BAD_REQUEST",
                      StrCat("Invalid input. Data is not compatible with model signature. Failed to convert column ",
                             inputs[j].name, " to type '", PandasType(inputs[j].type), "'. Error: could not convert ",
                             config::ToJson(*cell), " to a number"));
        }
      }
    }
    return r;
  }
  // No signature: columns in the order given.
  m.cols = t.named ? static_cast<int64_t>(t.columns.size()) : (t.rows.empty() ? 0 : static_cast<int64_t>(t.rows[0].size()));
  if (m.rows > 0 && m.cols != n_features) {
    return Fail(400, "BAD_REQUEST",
                StrCat("Encountered an unexpected error while evaluating the model. Verify that the serialized input "
                       "Dataframe is compatible with the model for inference. Error: the model expects ",
                       n_features, " features, got ", m.cols));
  }
  if (ScoringResult big = CheckCells(m.rows, m.cols, limits); !big.ok()) return big;
  m.values.resize(m.rows * m.cols);
  for (int64_t i = 0; i < m.rows; ++i) {
    if (static_cast<int64_t>(t.rows[i].size()) != m.cols && !t.named) {
      return Fail(400, "BAD_REQUEST", StrCat("Invalid input. Row ", i, " has ", static_cast<int64_t>(t.rows[i].size()),
                                             " values, expected ", m.cols));
    }
    for (int64_t j = 0; j < m.cols; ++j) {
      const json::value* cell = j < static_cast<int64_t>(t.rows[i].size()) ? t.rows[i][j] : nullptr;
      if (!CellToFloat(cell, m.values[i * m.cols + j])) {
        return Fail(400, "BAD_REQUEST", StrCat("Invalid input. Failed to convert ", config::ToJson(*cell), " to a number"));
      }
    }
  }
  return r;
}

// Builds a Table from one of the four keyed forms.
ScoringResult ToTable(std::string_view key, const json::value& v, const ScoringLimits& limits, Table& t) {
  if (key == "dataframe_split") {
    if (!v.is_object()) return Malformed("dataframe_split must be an object with 'columns' and 'data'.");
    const auto& o = v.as_object();
    auto* data = o.if_contains("data");
    if (!data || !data->is_array()) return Malformed("dataframe_split needs a 'data' list.");
    if (auto* cols = o.if_contains("columns")) {
      if (!cols->is_array()) return Malformed("dataframe_split 'columns' must be a list.");
      t.named = true;
      for (const auto& c : cols->as_array()) {
        t.columns.push_back(c.is_string() ? std::string(c.as_string()) : config::ToJson(c));
      }
    }
    for (const auto& row : data->as_array()) {
      std::vector<const json::value*> cells;
      if (row.is_array()) {
        for (const auto& c : row.as_array()) cells.push_back(&c);
      } else {
        cells.push_back(&row);
      }
      if (t.named && cells.size() != t.columns.size()) {
        return Malformed(StrCat(t.columns.size(), " columns passed, passed data had ", cells.size(), " columns"));
      }
      t.rows.push_back(std::move(cells));
    }
    return {};
  }
  if (key == "dataframe_records" || (key == "instances" && v.is_array() && !v.as_array().empty() &&
                                     v.as_array()[0].is_object())) {
    if (!v.is_array()) return Malformed(StrCat(key, " must be a list of records."));
    t.named = true;
    // One pass over the keys: each record may name other columns (absent cells are missing
    // values), so the table is as wide as the union of the keys. A hash map keeps the union
    // linear in the body; the limits keep the dense table it becomes linear in the body too.
    absl::flat_hash_map<std::string_view, int64_t> index;
    for (const auto& rec : v.as_array()) {
      if (!rec.is_object()) return Malformed(StrCat(key, " must be a list of objects."));
      for (const auto& [k, _] : rec.as_object()) {
        const std::string_view name(k.data(), k.size());
        if (index.try_emplace(name, static_cast<int64_t>(t.columns.size())).second) {
          t.columns.emplace_back(name);
          if (static_cast<int64_t>(t.columns.size()) > limits.max_columns) return TooManyColumns(limits);
        }
      }
    }
    const int64_t rows = static_cast<int64_t>(v.as_array().size());
    if (const ScoringResult big = CheckCells(rows, static_cast<int64_t>(t.columns.size()), limits); !big.ok()) {
      return big;
    }
    t.rows.reserve(rows);
    for (const auto& rec : v.as_array()) {
      std::vector<const json::value*> cells(t.columns.size(), nullptr);
      for (const auto& [k, cell] : rec.as_object()) cells[index.find(std::string_view(k.data(), k.size()))->second] = &cell;
      t.rows.push_back(std::move(cells));
    }
    return {};
  }
  if (key == "inputs" && v.is_object()) {
    // Columnar: {"col": [values...]} (a scalar is a one-row column).
    t.named = true;
    size_t n = 0;
    for (const auto& [k, col] : v.as_object()) {
      t.columns.emplace_back(k.data(), k.size());
      const size_t len = col.is_array() ? col.as_array().size() : 1;
      if (t.columns.size() > 1 && len != n) return Malformed("all columns in 'inputs' must have the same length.");
      n = len;
    }
    t.rows.assign(n, std::vector<const json::value*>(t.columns.size(), nullptr));
    size_t j = 0;
    for (const auto& [k, col] : v.as_object()) {
      for (size_t i = 0; i < n; ++i) t.rows[i][j] = col.is_array() ? &col.as_array()[i] : &col;
      ++j;
    }
    return {};
  }
  // instances / inputs as (nested) lists: positional rows.
  if (!v.is_array()) return Malformed(StrCat("'", key, "' must be a list or an object."));
  for (const auto& row : v.as_array()) {
    std::vector<const json::value*> cells;
    if (row.is_array()) {
      for (const auto& c : row.as_array()) cells.push_back(&c);
    } else {
      cells.push_back(&row);
    }
    t.rows.push_back(std::move(cells));
  }
  return {};
}

}  // namespace

std::optional<ScoringError> CheckContentType(std::string_view content_type, bool& is_csv) {
  const size_t semi = content_type.find(';');
  std::string media(content_type.substr(0, semi));
  while (!media.empty() && media.back() == ' ') media.pop_back();
  for (auto& c : media) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (media != "application/json" && media != "text/csv") {
    return ScoringError{415, "",
                        StrCat("This predictor only supports the following content types: Types: ['text/csv', "
                               "'application/json']. Got '",
                               content_type, "'.")};
  }
  is_csv = media == "text/csv";
  std::string_view params = semi == std::string_view::npos ? std::string_view() : content_type.substr(semi + 1);
  std::vector<std::string> unknown;
  while (!params.empty()) {
    const size_t next = params.find(';');
    std::string_view p = params.substr(0, next);
    params = next == std::string_view::npos ? std::string_view() : params.substr(next + 1);
    while (!p.empty() && p.front() == ' ') p.remove_prefix(1);
    if (p.empty()) continue;
    const size_t eq = p.find('=');
    std::string name(p.substr(0, eq));
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (name == "charset") {
      std::string value(eq == std::string_view::npos ? "" : p.substr(eq + 1));
      for (auto& c : value) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (value != "utf-8" && value != "utf8" && value != "\"utf-8\"") {
        return ScoringError{415, "", "The scoring server only supports UTF-8"};
      }
    } else {
      unknown.push_back(name);
    }
  }
  if (!unknown.empty()) {
    std::string names;
    for (const auto& n : unknown) StrAppend(&names, names.empty() ? "" : ", ", n);
    return ScoringError{415, "", StrCat("Unrecognized content type parameters: ", names, ".", kProtocolNote)};
  }
  return std::nullopt;
}

ScoringLimits LimitsFor(size_t body_bytes, int64_t n_features) {
  ScoringLimits l;
  l.max_columns = std::max(kMaxColumns, n_features);
  l.max_cells = std::max(kMinMaxCells, static_cast<int64_t>(body_bytes));
  return l;
}

ScoringResult ParseJsonInput(const json::value& body, const std::vector<ColumnSpec>& inputs, int64_t n_features,
                             const ScoringLimits& limits) {
  if (!body.is_object()) {
    return Fail(400, "BAD_REQUEST",
                StrCat("Invalid input. The input must be a JSON dictionary with exactly one of the input fields ",
                       kInputFields, ". Received a ", body.is_array() ? "list" : "scalar", "."));
  }
  std::vector<std::string> found;
  for (const auto& [k, _] : body.as_object()) {
    const std::string_view key(k.data(), k.size());
    if (key == "dataframe_split" || key == "dataframe_records" || key == "instances" || key == "inputs") {
      found.emplace_back(key);
    }
  }
  if (found.size() != 1) {
    return Fail(400, "BAD_REQUEST",
                StrCat("Invalid input. The input must be a JSON dictionary with exactly one of the input fields ",
                       kInputFields, ". Received dictionary with input fields: ", PyList(found), ".", kProtocolNote));
  }
  Table t;
  ScoringResult shaped = ToTable(found[0], body.as_object().at(found[0]), limits, t);
  if (!shaped.ok()) return shaped;
  return Enforce(t, inputs, n_features, limits);
}

ScoringResult ParseJsonInput(std::string_view body, const std::vector<ColumnSpec>& inputs, int64_t n_features) {
  boost::system::error_code ec;
  json::monotonic_resource arena;
  json::value v = config::ParseJson(body, &arena, ec);
  if (ec) {
    return Fail(400, "BAD_REQUEST",
                StrCat("Invalid input. Ensure that input is a valid JSON formatted string. Error: 'JSONDecodeError(",
                       ec.message(), ")'\nInput: \n", body.substr(0, 200)));
  }
  return ParseJsonInput(v, inputs, n_features, LimitsFor(body.size(), n_features));
}

ScoringResult ParseCsvInput(std::string_view body, const std::vector<ColumnSpec>& inputs, int64_t n_features) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < body.size()) {
    size_t end = body.find('\n', start);
    if (end == std::string_view::npos) end = body.size();
    std::string_view line = body.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty()) lines.emplace_back(line);
    start = end + 1;
  }
  if (lines.empty()) return Malformed("Failed to parse input as a Pandas DataFrame: no columns to parse from the CSV.");
  // Cells become JSON values so the JSON path's schema enforcement applies unchanged.
  std::vector<std::vector<json::value>> cells;
  Table t;
  t.named = true;
  t.columns = common::SplitCsvRecord(lines[0]);
  for (size_t i = 1; i < lines.size(); ++i) {
    auto fields = common::SplitCsvRecord(lines[i]);
    if (fields.size() != t.columns.size()) {
      return Malformed(StrCat("Failed to parse input as a Pandas DataFrame: line ", static_cast<int64_t>(i + 1),
                              " has ", static_cast<int64_t>(fields.size()), " fields, expected ",
                              static_cast<int64_t>(t.columns.size())));
    }
    std::vector<json::value> row;
    for (const auto& f : fields) {
      double d = 0;
      if (f.empty() || f == "nan" || f == "NaN") {
        row.emplace_back(nullptr);
      } else if (f == "True" || f == "true") {
        row.emplace_back(true);
      } else if (f == "False" || f == "false") {
        row.emplace_back(false);
      } else if (common::ParseFiniteDouble(f, d)) {
        row.emplace_back(d);
      } else {
        row.emplace_back(f);
      }
    }
    cells.push_back(std::move(row));
  }
  for (const auto& row : cells) {
    std::vector<const json::value*> ptrs;
    for (const auto& c : row) ptrs.push_back(&c);
    t.rows.push_back(std::move(ptrs));
  }
  return Enforce(t, inputs, n_features, LimitsFor(body.size(), n_features));
}

void AppendPredictionList(std::string& out, const std::vector<float>& predictions, bool labels) {
  out += '[';
  for (size_t i = 0; i < predictions.size(); ++i) {
    if (i) out += ", ";
    if (labels) {
      out += predictions[i] > 0.5f ? '1' : '0';
    } else if (std::isfinite(predictions[i])) {
      const size_t before = out.size();
      StrAppend(&out, static_cast<double>(predictions[i]));
      // Python prints a float with a '.0' or an exponent; to_chars leaves "1" bare.
      if (out.find_first_of(".en", before) == std::string::npos) out += ".0";
    } else {
      out += "NaN";
    }
  }
  out += ']';
}

std::string PredictionsJson(const std::vector<float>& predictions, bool labels) {
  std::string out = "{\"predictions\": ";
  AppendPredictionList(out, predictions, labels);
  out += '}';
  return out;
}

}  // namespace abgate::serving

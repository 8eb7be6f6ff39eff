#include "serving/mlflow_model.h"

#include <fstream>
#include <sstream>

#include <boost/json.hpp>

#include "common/status_macros.h"
#include "common/strings.h"
#include "config/json_reader.h"

namespace abgate::serving {
namespace json = boost::json;
namespace {

std::string Str(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  if (!v) return "";
  if (v->is_string()) return std::string(v->as_string());
  if (v->is_null()) return "";
  return json::serialize(*v);
}

}  // namespace

absl::StatusOr<MlflowModel> ReadMlflowModel(const std::filesystem::path& folder) {
  const auto path = folder / "MLmodel";
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(StrCat("no MLmodel file in ", folder.string(), " (is it an MLflow model folder?)"));
  }
  std::stringstream text;
  text << in.rdbuf();
  auto doc = config::YamlToJson(text.str());
  if (!doc.ok()) return absl::InvalidArgumentError(StrCat(path.string(), ": ", ToStd(doc.status().message())));
  if (!doc->is_object()) return absl::InvalidArgumentError(StrCat(path.string(), ": not a YAML mapping"));
  const json::object& root = doc->as_object();
  MlflowModel m;
  m.folder = folder;
  m.run_id = Str(root, "run_id");
  m.mlflow_version = Str(root, "mlflow_version");
  auto* flavors = root.if_contains("flavors");
  if (!flavors || !flavors->is_object()) return absl::InvalidArgumentError(StrCat(path.string(), " has no flavors"));
  auto* xgb = flavors->as_object().if_contains("xgboost");
  if (!xgb || !xgb->is_object()) {
    std::string found;
    for (const auto& [name, _] : flavors->as_object()) {
      StrAppend(&found, found.empty() ? "" : ", ", std::string_view(name.data(), name.size()));
    }
    return absl::InvalidArgumentError(StrCat("the model in ", folder.string(), " has no xgboost flavor (found flavors: ",
                                             found.empty() ? "none" : found,
                                             "); abgate serves MLflow XGBoost models natively — serve others with "
                                             "`mlflow models serve` behind an upstream arm"));
  }
  const json::object& flavor = xgb->as_object();
  const std::string data = Str(flavor, "data");
  if (data.empty() || data.find("..") != std::string::npos || data.front() == '/') {
    return absl::InvalidArgumentError(StrCat(path.string(), ": flavors.xgboost.data is missing or leaves the folder"));
  }
  m.data_file = folder / data;
  m.model_format = Str(flavor, "model_format");
  if (m.model_format.empty()) m.model_format = "xgb";
  if (m.model_format != "xgb" && m.model_format != "json" && m.model_format != "ubj" && m.model_format != "deprecated") {
    return absl::InvalidArgumentError(StrCat(path.string(), ": unknown xgboost model_format '", m.model_format, "'"));
  }
  m.model_class = Str(flavor, "model_class");
  if (!std::filesystem::is_regular_file(m.data_file)) {
    return absl::NotFoundError(StrCat("the model file ", m.data_file.string(), " named by ", path.string(), " is missing"));
  }
  // signature.inputs is a JSON string inside the YAML.
  if (auto* sig = root.if_contains("signature"); sig && sig->is_object()) {
    const std::string inputs = Str(sig->as_object(), "inputs");
    if (!inputs.empty()) {
      boost::system::error_code ec;
      json::value parsed = json::parse(inputs, ec);
      if (ec || !parsed.is_array()) {
        return absl::InvalidArgumentError(StrCat(path.string(), ": signature.inputs is not a JSON list"));
      }
      for (const auto& col : parsed.as_array()) {
        if (!col.is_object()) return absl::InvalidArgumentError(StrCat(path.string(), ": bad signature entry"));
        const auto& o = col.as_object();
        ColumnSpec spec{Str(o, "name"), Str(o, "type"), true};
        if (auto* r = o.if_contains("required"); r && r->is_bool()) spec.required = r->as_bool();
        if (spec.type == "tensor") {
          m.inputs.clear();  // a tensor signature: inputs are positional
          break;
        }
        static const char* kNumeric[] = {"double", "float", "long", "integer", "boolean"};
        if (std::find(std::begin(kNumeric), std::end(kNumeric), spec.type) == std::end(kNumeric)) {
          return absl::InvalidArgumentError(StrCat("signature column '", spec.name, "' has type '", spec.type,
                                                   "'; XGBoost takes numeric columns only"));
        }
        if (spec.name.empty()) return absl::InvalidArgumentError(StrCat(path.string(), ": unnamed signature column"));
        m.inputs.push_back(std::move(spec));
      }
    }
  }
  return m;
}

}  // namespace abgate::serving

#include "serving/booster.h"

#include <xgboost/c_api.h>

#include <fstream>
#include <sstream>

#include "common/status_macros.h"
#include "common/strings.h"

namespace abgate::serving {
namespace {

absl::Status XgbError(std::string_view what) {
  return absl::InternalError(StrCat("xgboost ", what, ": ", XGBGetLastError()));
}

}  // namespace

Booster::Booster(void* handle) : handle_(handle) {
  bst_ulong n = 0;
  if (XGBoosterGetNumFeature(handle_, &n) == 0) num_features_ = static_cast<int64_t>(n);
}

Booster::Booster(Booster&& other) noexcept : handle_(other.handle_), num_features_(other.num_features_) {
  other.handle_ = nullptr;
}

Booster& Booster::operator=(Booster&& other) noexcept {
  if (this != &other) {
    if (handle_) XGBoosterFree(handle_);
    handle_ = other.handle_;
    num_features_ = other.num_features_;
    other.handle_ = nullptr;
  }
  return *this;
}

Booster::~Booster() {
  if (handle_) XGBoosterFree(handle_);
}

absl::StatusOr<Booster> Booster::FromBytes(std::string_view bytes) {
  BoosterHandle h = nullptr;
  if (XGBoosterCreate(nullptr, 0, &h) != 0) return XgbError("create");
  if (XGBoosterLoadModelFromBuffer(h, bytes.data(), bytes.size()) != 0) {
    absl::Status s = absl::InvalidArgumentError(StrCat("not an XGBoost model: ", XGBGetLastError()));
    XGBoosterFree(h);
    return s;
  }
  // One thread per booster: concurrency comes from one booster per worker thread.
  XGBoosterSetParam(h, "nthread", "1");
  return Booster(h);
}

absl::StatusOr<Booster> Booster::FromFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(StrCat("cannot open model file ", path));
  std::stringstream buf;
  buf << in.rdbuf();
  return FromBytes(buf.str());
}

absl::StatusOr<Booster> Booster::Train(const std::vector<float>& features, int64_t rows, int64_t cols,
                                       const std::vector<float>& labels,
                                       const std::vector<std::pair<std::string, std::string>>& params, int rounds,
                                       const std::vector<float>& weights) {
  if (static_cast<int64_t>(features.size()) != rows * cols || static_cast<int64_t>(labels.size()) != rows ||
      (!weights.empty() && static_cast<int64_t>(weights.size()) != rows)) {
    return absl::InvalidArgumentError("training data shape mismatch");
  }
  DMatrixHandle dtrain = nullptr;
  if (XGDMatrixCreateFromMat(features.data(), rows, cols, NAN, &dtrain) != 0) return XgbError("DMatrix");
  struct Free {
    DMatrixHandle m;
    ~Free() { XGDMatrixFree(m); }
  } free_dtrain{dtrain};
  if (XGDMatrixSetFloatInfo(dtrain, "label", labels.data(), rows) != 0) return XgbError("labels");
  if (!weights.empty() && XGDMatrixSetFloatInfo(dtrain, "weight", weights.data(), rows) != 0) return XgbError("weights");
  BoosterHandle h = nullptr;
  if (XGBoosterCreate(&dtrain, 1, &h) != 0) return XgbError("create");
  Booster booster(h);
  for (const auto& [k, v] : params) {
    if (XGBoosterSetParam(h, k.c_str(), v.c_str()) != 0) return XgbError(StrCat("parameter ", k));
  }
  for (int i = 0; i < rounds; ++i) {
    if (XGBoosterUpdateOneIter(h, i, dtrain) != 0) return XgbError("training");
  }
  bst_ulong n = 0;
  if (XGBoosterGetNumFeature(h, &n) == 0) booster.num_features_ = static_cast<int64_t>(n);
  return booster;
}

absl::StatusOr<std::vector<float>> Booster::Predict(const float* rows, int64_t n_rows, int64_t cols) {
  if (cols != num_features_) {
    return absl::InvalidArgumentError(StrCat("the model expects ", num_features_, " features, got ", cols));
  }
  if (n_rows == 0) return std::vector<float>();
  const std::string array = StrCat(R"({"data":[)", reinterpret_cast<uintptr_t>(rows), R"(,true],"shape":[)", n_rows,
                                   ",", cols, R"(],"typestr":"<f4","version":3})");
  static constexpr const char* kConfig =
      R"({"type":0,"training":false,"iteration_begin":0,"iteration_end":0,"strict_shape":false,"missing":NaN,"cache_id":0})";
  const bst_ulong* shape = nullptr;
  bst_ulong dim = 0;
  const float* out = nullptr;
  if (XGBoosterPredictFromDense(handle_, array.c_str(), kConfig, nullptr, &shape, &dim, &out) != 0) {
    return XgbError("predict");
  }
  bst_ulong total = 1;
  for (bst_ulong i = 0; i < dim; ++i) total *= shape[i];
  return std::vector<float>(out, out + total);  // copied before anything else touches the booster
}

absl::StatusOr<std::string> Booster::Save(std::string_view format) const {
  // XGBoost's legacy binary ("binf", MLflow's default model.xgb) is the "deprecated" raw format.
  if (format == "xgb") format = "deprecated";
  if (format != "deprecated" && format != "json" && format != "ubj") {
    return absl::InvalidArgumentError(StrCat("unknown model format ", format));
  }
  const std::string config = StrCat(R"({"format":")", format, R"("})");
  bst_ulong len = 0;
  const char* raw = nullptr;
  if (XGBoosterSaveModelToBuffer(handle_, config.c_str(), &len, &raw) != 0) return XgbError("save");
  return std::string(raw, len);
}

absl::Status Booster::SetFeatureNames(const std::vector<std::string>& names) {
  std::vector<const char*> ptrs;
  for (const auto& n : names) ptrs.push_back(n.c_str());
  if (XGBoosterSetStrFeatureInfo(handle_, "feature_name", ptrs.data(), ptrs.size()) != 0) {
    return XgbError("feature names");
  }
  return absl::OkStatus();
}

}  // namespace abgate::serving

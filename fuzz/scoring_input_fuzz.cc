// MLflow scoring input (JSON's four forms and CSV) up to the 1 MB body limit: never a crash,
// and parsing stays bounded (issue 14: a 0.9 MB body of distinct keys needed gigabytes).
// The first byte picks CSV or JSON and a column signature or positional columns.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "serving/scoring_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  using abgate::serving::ColumnSpec;
  static const std::vector<ColumnSpec> kSignature = {
      {"lead_time_days", "double", true}, {"nightly_price", "float", true}, {"is_member", "boolean", false}};
  const uint8_t mode = data[0];
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::vector<ColumnSpec> none;
  const auto& inputs = (mode & 2) ? kSignature : none;
  abgate::serving::ScoringResult r = (mode & 1) ? abgate::serving::ParseCsvInput(body, inputs, 3)
                                                : abgate::serving::ParseJsonInput(body, inputs, 3);
  if (r.ok()) {
    // A parsed matrix is exactly rows x cols, never larger than the limits allow.
    const auto limits = abgate::serving::LimitsFor(body.size(), 3);
    if (static_cast<int64_t>(r.matrix.values.size()) != r.matrix.rows * r.matrix.cols) __builtin_trap();
    if (r.matrix.rows * r.matrix.cols > limits.max_cells) __builtin_trap();
  } else if (r.error->http_status != 400) {
    __builtin_trap();  // input errors are 400s
  }
  bool csv = false;
  abgate::serving::CheckContentType(body.substr(0, 200), csv);
  return 0;
}

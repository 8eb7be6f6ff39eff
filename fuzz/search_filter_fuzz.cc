// The registry's search grammar (filter strings, order_by clauses, page tokens) and matching:
// never a crash, errors are InvalidArgument. The first line is the filter, the others order_by.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "registry/search.h"

namespace {
using abgate::registry::KeyType;
const abgate::registry::FilterRules kRules{{"run_id", "run_name", "status", "name"},
                                           {"start_time", "version_number"},
                                           {"run_id"},
                                           true,
                                           {KeyType::kMetric, KeyType::kParam, KeyType::kTag, KeyType::kDataset},
                                           "['run_id', 'run_name', 'status', 'start_time']"};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const size_t nl = text.find('\n');
  const std::string_view filter = text.substr(0, nl);
  auto clauses = abgate::registry::ParseFilter(filter, kRules);
  if (clauses.ok()) {
    for (const auto& c : *clauses) {
      abgate::registry::MatchString(c, "hyatt_booking_model");
      abgate::registry::MatchString(c, std::string_view(text).substr(0, 300));
      abgate::registry::MatchNumber(c, 0.5);
    }
  } else if (clauses.status().code() != absl::StatusCode::kInvalidArgument) {
    __builtin_trap();
  }
  std::vector<std::string> order_by;
  std::string_view rest = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
  while (!rest.empty()) {
    const size_t end = rest.find('\n');
    order_by.emplace_back(rest.substr(0, end));
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
  }
  (void)abgate::registry::ParseOrderBy(order_by, {"start_time", "name"}, {KeyType::kMetric, KeyType::kTag});
  (void)abgate::registry::DecodePageToken(filter);
  if (size > 1) abgate::registry::LikeMatch(filter.substr(0, filter.size() / 2), filter.substr(filter.size() / 2), data[0] & 1);
  return 0;
}

// MLflow's search grammar (MLFLOW.md §6): filter strings, order_by clauses and page tokens.
//
// A filter is a conjunction of `<identifier> <comparator> <value>` clauses; OR, NOT and
// grouping parentheses are refused the way MLflow refuses them. Parsing produces plain values
// that the store evaluates in memory against its entities, so no text from a request is ever
// spliced into SQL. Each search checks the clauses against the identifiers and comparators it
// allows (`FilterRules`). Pure and thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace abgate::registry {

enum class KeyType { kAttribute, kMetric, kParam, kTag, kDataset };
enum class Comparator { kEq, kNe, kGt, kGe, kLt, kLe, kLike, kILike, kIn, kNotIn };

struct Clause {
  KeyType type = KeyType::kAttribute;
  std::string key;  // attribute name (canonical), or the metric/param/tag key
  Comparator op = Comparator::kEq;
  bool numeric = false;             // value was an unquoted number
  double number = 0;                // when numeric
  std::string text;                 // when a quoted string
  std::vector<std::string> values;  // IN / NOT IN
};

// What a search accepts. Attribute names listed in `string_attributes` take string comparators,
// `numeric_attributes` numeric ones; `in_attributes` may also use IN (and NOT IN when
// `allow_not_in`). `key_types` lists the prefixed key kinds allowed (metrics., tags., ...).
struct FilterRules {
  std::vector<std::string> string_attributes;
  std::vector<std::string> numeric_attributes;
  std::vector<std::string> in_attributes;
  bool allow_not_in = false;
  std::vector<KeyType> key_types;
  // The message's list of valid keys for an unknown attribute (MLflow's wording).
  std::string valid_keys_message;
};

// Parses a filter string; an empty or all-blank string gives no clauses. InvalidArgument with
// MLflow's messages otherwise.
absl::StatusOr<std::vector<Clause>> ParseFilter(std::string_view filter, const FilterRules& rules);

struct OrderBy {
  KeyType type = KeyType::kAttribute;
  std::string key;
  bool ascending = true;
};
// Parses `order_by` entries ("metrics.auc DESC", "name", "`my key` ASC"). Allowed attributes as
// in `attributes`; `key_types` as for filters. The same key twice is refused.
absl::StatusOr<std::vector<OrderBy>> ParseOrderBy(const std::vector<std::string>& items,
                                                  const std::vector<std::string>& attributes,
                                                  const std::vector<KeyType>& key_types);

// SQL LIKE: '%' any run, '_' one character (one byte); `fold_case` for ILIKE (ASCII).
bool LikeMatch(std::string_view text, std::string_view pattern, bool fold_case);

// String comparison for =, !=, LIKE, ILIKE, IN, NOT IN.
bool MatchString(const Clause& c, std::string_view value);
// Numeric comparison for = != > >= < <=. InvalidArgument is raised at parse time for strings.
bool MatchNumber(const Clause& c, double value);

// Page tokens: base64 of {"offset": N}, as MLflow writes them. An empty token is offset 0.
std::string EncodePageToken(int64_t offset);
absl::StatusOr<int64_t> DecodePageToken(std::string_view token);

}  // namespace abgate::registry

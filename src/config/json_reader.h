// Strict, typed reading of a JSON object for config and admin payloads: every access names its
// path ("experiments[0].arms[1].weight") in the error, and unknown keys are reported so typos
// never pass silently. Never throws. Not thread-safe (one reader per document).
#pragma once

#include <concepts>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include <boost/json/value.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace abgate::config {

class JsonReader {
 public:
  // `v` must outlive the reader. `path` prefixes error messages.
  JsonReader(const boost::json::value& v, std::string path) : v_(v), path_(std::move(path)) {}

  bool is_object() const { return v_.is_object(); }
  const std::string& path() const { return path_; }
  bool Has(std::string_view key) const;
  // A child reader; the child's value is null when the key is absent.
  JsonReader Child(std::string_view key);
  const boost::json::value& value() const { return v_; }

  // Each getter: absent key → the default (or nullopt); wrong type → InvalidArgument.
  absl::StatusOr<std::string> String(std::string_view key, std::string def = "");
  // Accepts a string or an integer (YAML `version: 7` and `version: "7"` mean the same).
  absl::StatusOr<std::string> StringOrInt(std::string_view key, std::string def = "");
  absl::StatusOr<double> Number(std::string_view key, double def);
  absl::StatusOr<int64_t> Int(std::string_view key, int64_t def);
  absl::StatusOr<bool> Bool(std::string_view key, bool def);
  // "250ms", "30s", "5m", "24h", "2d", or a bare number of seconds. Returns microseconds.
  absl::StatusOr<int64_t> DurationUs(std::string_view key, int64_t def_us);

  // InvalidArgument naming the first key of the object not read through this reader.
  absl::Status CheckNoUnknownKeys() const;
  absl::Status Error(std::string_view key, std::string_view what) const;
  template <typename T>
    requires std::same_as<T, absl::string_view>  // a Status message, not a literal
  absl::Status Error(std::string_view key, T what) const {
    return Error(key, std::string_view(what.data(), what.size()));
  }

 private:
  const boost::json::value* Find(std::string_view key);
  const boost::json::value& v_;
  std::string path_;
  std::set<std::string, std::less<>> seen_;
};

// Parses "250ms" / "30s" / "5m" / "24h" / "2d" / "1.5h" into microseconds.
absl::StatusOr<int64_t> ParseDurationUs(std::string_view text);

// Converts a YAML document to JSON. Plain scalars become null/bool/int/double when they look
// like one; quoted scalars stay strings. InvalidArgument carries YAML's line and column.
absl::StatusOr<boost::json::value> YamlToJson(std::string_view yaml_text);

}  // namespace abgate::config

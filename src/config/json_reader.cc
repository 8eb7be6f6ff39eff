#include "config/json_reader.h"

#include <charconv>
#include <cmath>

#include "common/strings.h"

namespace abgate::config {

namespace json = boost::json;

bool JsonReader::Has(std::string_view key) const {
  return v_.is_object() && v_.as_object().contains(key);
}

const json::value* JsonReader::Find(std::string_view key) {
  seen_.emplace(key);
  if (!v_.is_object()) return nullptr;
  const auto* p = v_.as_object().if_contains(key);
  return (p && !p->is_null()) ? p : nullptr;
}

JsonReader JsonReader::Child(std::string_view key) {
  static const json::value kNull;
  const json::value* p = Find(key);
  return JsonReader(p ? *p : kNull, path_.empty() ? std::string(key) : StrCat(path_, ".", key));
}

absl::Status JsonReader::Error(std::string_view key, std::string_view what) const {
  const std::string where = key.empty() ? path_ : (path_.empty() ? std::string(key) : StrCat(path_, ".", key));
  return absl::InvalidArgumentError(StrCat(where.empty() ? "config" : where, ": ", what));
}

absl::StatusOr<std::string> JsonReader::String(std::string_view key, std::string def) {
  const json::value* p = Find(key);
  if (!p) return def;
  if (!p->is_string()) return Error(key, "must be a string");
  return std::string(p->as_string());
}

absl::StatusOr<std::string> JsonReader::StringOrInt(std::string_view key, std::string def) {
  const json::value* p = Find(key);
  if (!p) return def;
  if (p->is_string()) return std::string(p->as_string());
  if (p->is_int64()) return std::to_string(p->as_int64());
  if (p->is_uint64()) return std::to_string(p->as_uint64());
  return Error(key, "must be a string or an integer");
}

absl::StatusOr<double> JsonReader::Number(std::string_view key, double def) {
  const json::value* p = Find(key);
  if (!p) return def;
  if (!p->is_number()) return Error(key, "must be a number");
  const double d = p->to_number<double>();
  if (!std::isfinite(d)) return Error(key, "must be finite");
  return d;
}

absl::StatusOr<int64_t> JsonReader::Int(std::string_view key, int64_t def) {
  const json::value* p = Find(key);
  if (!p) return def;
  if (p->is_int64()) return p->as_int64();
  if (p->is_uint64() && p->as_uint64() <= INT64_MAX) return static_cast<int64_t>(p->as_uint64());
  if (p->is_double() && std::trunc(p->as_double()) == p->as_double() && std::fabs(p->as_double()) < 9e15) {
    return static_cast<int64_t>(p->as_double());
  }
  return Error(key, "must be an integer");
}

absl::StatusOr<bool> JsonReader::Bool(std::string_view key, bool def) {
  const json::value* p = Find(key);
  if (!p) return def;
  if (!p->is_bool()) return Error(key, "must be true or false");
  return p->as_bool();
}

absl::StatusOr<int64_t> JsonReader::DurationUs(std::string_view key, int64_t def_us) {
  const json::value* p = Find(key);
  if (!p) return def_us;
  if (p->is_number()) {
    const double s = p->to_number<double>();
    if (!std::isfinite(s) || s < 0) return Error(key, "must be a non-negative duration");
    if (s * 1e6 > 9e18) return Error(key, "is too long");  // beyond int64 microseconds
    return static_cast<int64_t>(s * 1e6);
  }
  if (!p->is_string()) return Error(key, "must be a duration such as 250ms, 30s, 5m, 24h");
  auto d = ParseDurationUs(p->as_string());
  if (!d.ok()) return Error(key, d.status().message());
  return d;
}

absl::Status JsonReader::CheckNoUnknownKeys() const {
  if (!v_.is_object()) return absl::OkStatus();
  for (const auto& kv : v_.as_object()) {
    if (!seen_.contains(kv.key())) return Error(kv.key(), "unknown key");
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> ParseDurationUs(std::string_view text) {
  double value = 0;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || ptr == begin || !std::isfinite(value) || value < 0) {
    return absl::InvalidArgumentError(StrCat("bad duration '", text, "' (use e.g. 250ms, 30s, 5m, 24h)"));
  }
  const std::string_view unit(ptr, end - ptr);
  double scale;
  if (unit == "us") scale = 1;
  else if (unit == "ms") scale = 1e3;
  else if (unit == "s" || unit.empty()) scale = 1e6;
  else if (unit == "m") scale = 60e6;
  else if (unit == "h") scale = 3600e6;
  else if (unit == "d") scale = 86400e6;
  else return absl::InvalidArgumentError(StrCat("bad duration unit in '", text, "' (use us, ms, s, m, h, d)"));
  const double us = value * scale;
  if (us > 9e18) return absl::InvalidArgumentError(StrCat("duration '", text, "' is too long"));
  return static_cast<int64_t>(us);
}

}  // namespace abgate::config

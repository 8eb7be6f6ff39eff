#include "gateway/scoring_body.h"

#include <array>
#include <cstdint>
#include <cstring>
#include <limits>

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/parse.hpp>

#include "assign/hash.h"
#include "common/strings.h"

namespace abgate::gateway {

namespace json = boost::json;

namespace {

constexpr std::array<std::string_view, 4> kScoringKeys = {"dataframe_split", "dataframe_records", "instances",
                                                          "inputs"};
constexpr size_t kMaxUnitBytes = 512;

// SAX handler: validates the whole text (the parser does) and notes, at the top level only,
// which scoring keys are present and the last value of the unit field. Allocates nothing
// unless a top-level key or the unit arrives in pieces (escapes), which the small buffers take.
class Handler {
 public:
  static constexpr size_t max_object_size = std::numeric_limits<size_t>::max();
  static constexpr size_t max_array_size = std::numeric_limits<size_t>::max();
  static constexpr size_t max_key_size = std::numeric_limits<size_t>::max();
  static constexpr size_t max_string_size = std::numeric_limits<size_t>::max();

  explicit Handler(std::string_view unit_field) : unit_field_(unit_field) {}

  enum class Root { kNone, kObject, kArray, kScalar };
  enum class Unit { kAbsent, kNull, kValue, kInvalid };

  Root root = Root::kNone;
  unsigned scoring_keys = 0;  // bit i: kScoringKeys[i] present
  Unit unit_state = Unit::kAbsent;
  std::string unit;

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_object_begin(json::error_code&) { return Open(Root::kObject); }
  bool on_object_end(size_t, json::error_code&) { return Close(); }
  bool on_array_begin(json::error_code&) { return Open(Root::kArray); }
  bool on_array_end(size_t, json::error_code&) { return Close(); }
  bool on_key_part(json::string_view s, size_t, json::error_code&) {
    if (depth_ == 1) key_.append(s.data(), s.size());
    return true;
  }
  bool on_key(json::string_view s, size_t, json::error_code&) {
    if (depth_ != 1) return true;
    std::string_view key(s.data(), s.size());
    if (!key_.empty()) {
      key_.append(s.data(), s.size());
      key = key_;
    }
    for (size_t i = 0; i < kScoringKeys.size(); ++i) {
      if (key == kScoringKeys[i]) scoring_keys |= 1u << i;
    }
    in_unit_ = !unit_field_.empty() && key == unit_field_;
    if (in_unit_) {
      unit.clear();
      unit_state = Unit::kValue;  // settled by the value's callback
    }
    key_.clear();
    return true;
  }
  bool on_string_part(json::string_view s, size_t n, json::error_code&) {
    if (TakesUnit() && n <= kMaxUnitBytes) unit.append(s.data(), s.size());
    return Scalar();
  }
  bool on_string(json::string_view s, size_t n, json::error_code&) {
    if (TakesUnit()) {
      if (n == 0 || n > kMaxUnitBytes) {
        unit_state = Unit::kInvalid;
      } else {
        unit.append(s.data(), s.size());
      }
      in_unit_ = false;
    }
    return Scalar();
  }
  bool on_number_part(json::string_view, json::error_code&) { return true; }
  bool on_int64(int64_t v, json::string_view, json::error_code&) {
    if (TakesUnit()) SetUnit(std::to_string(v));
    return Scalar();
  }
  bool on_uint64(uint64_t v, json::string_view, json::error_code&) {
    if (TakesUnit()) SetUnit(std::to_string(v));
    return Scalar();
  }
  bool on_double(double, json::string_view, json::error_code&) { return Invalid(); }
  bool on_bool(bool, json::error_code&) { return Invalid(); }
  bool on_null(json::error_code&) {
    if (TakesUnit()) {
      unit_state = Unit::kNull;
      in_unit_ = false;
    }
    return Scalar();
  }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }

 private:
  // True while the next value at the top level is the unit member's.
  bool TakesUnit() const { return in_unit_ && depth_ == 1; }
  void SetUnit(std::string v) {
    unit = std::move(v);
    in_unit_ = false;
  }
  bool Invalid() {
    if (TakesUnit()) {
      unit_state = Unit::kInvalid;
      in_unit_ = false;
    }
    return Scalar();
  }
  bool Scalar() {
    if (depth_ == 0) root = Root::kScalar;
    return true;
  }
  bool Open(Root kind) {
    if (depth_ == 0) root = kind;
    if (TakesUnit()) {  // an object or array as the unit
      unit_state = Unit::kInvalid;
      in_unit_ = false;
    }
    ++depth_;
    return true;
  }
  bool Close() {
    --depth_;
    return true;
  }

  std::string_view unit_field_;
  size_t depth_ = 0;
  bool in_unit_ = false;
  std::string key_;  // a top-level key that came in pieces
};

// ---- Cutting members out of text already known to be a valid JSON object.

size_t SkipSpace(std::string_view s, size_t i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  return i;
}

// `i` at an opening quote; returns the index after the closing one.
size_t SkipString(std::string_view s, size_t i) {
  for (++i; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;
    } else if (s[i] == '"') {
      return i + 1;
    }
  }
  return i;
}

// `i` at a value's first byte; returns the index after its last.
size_t SkipValue(std::string_view s, size_t i) {
  if (i >= s.size()) return i;
  if (s[i] == '"') return SkipString(s, i);
  if (s[i] == '{' || s[i] == '[') {
    int depth = 0;
    while (i < s.size()) {
      const char c = s[i];
      if (c == '"') {
        i = SkipString(s, i);
        continue;
      }
      if (c == '{' || c == '[') ++depth;
      if (c == '}' || c == ']') {
        if (--depth == 0) return i + 1;
      }
      ++i;
    }
    return i;
  }
  while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\t' &&
         s[i] != '\n' && s[i] != '\r') {
    ++i;
  }
  return i;
}

// A key's text between its quotes equals `name` once unescaped.
bool KeyEquals(std::string_view raw, std::string_view name) {
  if (raw.find('\\') == std::string_view::npos) return raw == name;
  // Escapes are rare in keys: let the full parser unescape it.
  json::error_code ec;
  const json::value v = json::parse(StrCat("\"", raw, "\""), ec);
  return !ec && v.is_string() && std::string_view(v.as_string().data(), v.as_string().size()) == name;
}

// Removes every top-level member named `name` from `text` (a valid JSON object) in place: the
// members kept are moved up, joined by commas; the bytes before the first member and after the
// last are kept as they were.
void CutMembers(std::string& text, std::string_view name) {
  const std::string_view s = text;
  size_t i = SkipSpace(s, 0);
  if (i >= s.size() || s[i] != '{') return;
  i = SkipSpace(s, i + 1);
  size_t write = i;  // where the next kept member goes
  bool first = true;
  while (i < s.size() && s[i] == '"') {
    const size_t start = i;
    const size_t key_end = SkipString(s, i);
    const bool cut = KeyEquals(s.substr(start + 1, key_end - start - 2), name);
    i = SkipSpace(s, key_end);
    i = SkipSpace(s, i + 1);  // past the ':'
    i = SkipValue(s, i);
    if (!cut) {
      if (!first) text[write++] = ',';
      first = false;
      // Left to right and never longer than the original: `write` never passes `start`.
      std::memmove(text.data() + write, text.data() + start, i - start);
      write += i - start;
    }
    const size_t value_end = i;
    i = SkipSpace(s, i);
    if (i < s.size() && s[i] == ',') {
      i = SkipSpace(s, i + 1);
    } else {
      // The end of the object: keep what follows the last member as it was.
      const size_t tail = s.size() - value_end;
      std::memmove(text.data() + write, text.data() + value_end, tail);
      text.resize(write + tail);
      return;
    }
  }
}

}  // namespace

ScoringBody ReadScoringBody(std::string& body, std::string_view unit_field) {
  ScoringBody out;
  json::parse_options options;
  options.max_depth = 256;  // as config::ParseJson
  json::basic_parser<Handler> parser(options, unit_field);
  json::error_code ec;
  const size_t n = parser.write_some(false, body.data(), body.size(), ec);
  if (!ec && n < body.size()) ec = json::error::extra_data;
  if (ec) {
    if (!assign::IsValidUtf8(body)) {
      out.error = ScoringBody::Error::kInvalidUtf8;
      out.message = "the request body is not valid UTF-8";
    } else {
      out.error = ScoringBody::Error::kMalformedJson;
      out.message = StrCat("the request body is not valid JSON: ", ec.message());
    }
    return out;
  }
  Handler& h = parser.handler();
  if (h.root != Handler::Root::kObject) {
    out.error = ScoringBody::Error::kNotObject;
    out.message = StrCat(
        "the input must be a JSON object with exactly one of the fields dataframe_split, "
        "dataframe_records, instances, inputs; received ",
        h.root == Handler::Root::kArray ? "a list" : "a JSON scalar");
    return out;
  }
  if (h.scoring_keys == 0 || (h.scoring_keys & (h.scoring_keys - 1)) != 0) {
    std::string present;
    for (size_t i = 0; i < kScoringKeys.size(); ++i) {
      if (h.scoring_keys & (1u << i)) StrAppend(&present, present.empty() ? "" : ", ", kScoringKeys[i]);
    }
    out.error = ScoringBody::Error::kScoringKeys;
    out.message = StrCat(
        "the input must be a JSON object with exactly one of the fields dataframe_split, "
        "dataframe_records, instances, inputs; received [",
        present, "]");
    return out;
  }
  if (h.unit_state == Handler::Unit::kInvalid) {
    out.error = ScoringBody::Error::kInvalidUnit;
    out.message = StrCat("'", unit_field, "' must be a non-empty string (at most 512 bytes) or an integer");
    return out;
  }
  if (h.unit_state != Handler::Unit::kAbsent) {
    out.has_unit = h.unit_state == Handler::Unit::kValue;
    if (out.has_unit) out.unit = std::move(h.unit);
    CutMembers(body, unit_field);  // the model gets only the scoring payload
  }
  return out;
}

}  // namespace abgate::gateway

// yaml-cpp sits behind this one function; its exceptions stop here.
#include <charconv>
#include <cmath>
#include <string>

#include <boost/json.hpp>
#include <yaml-cpp/yaml.h>

#include "common/strings.h"
#include "config/json_reader.h"

namespace abgate::config {
namespace {

namespace json = boost::json;

json::value Scalar(const YAML::Node& node) {
  const std::string& s = node.Scalar();
  if (node.Tag() == "!") return json::string(s);  // quoted: always a string
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  int64_t i;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), i);
  if (ec == std::errc() && p == s.data() + s.size()) return i;
  double d;
  auto [p2, ec2] = std::from_chars(s.data(), s.data() + s.size(), d);
  if (ec2 == std::errc() && p2 == s.data() + s.size() && std::isfinite(d)) return d;
  return json::string(s);
}

// Aliases repeat a node without repeating its text: nine lines of `&b [*a, *a, ...]` name
// billions of values (an "alias bomb": 20 s and 4 GB before the bound), and `&a [1, *a]` is a
// node that contains itself. The conversion therefore has a budget of values (one per node,
// one more per 64 bytes of a scalar) proportional to the text, and a depth limit.
class Converter {
 public:
  explicit Converter(size_t text_bytes) : budget_(100'000 + 16 * static_cast<int64_t>(text_bytes)) {}

  absl::StatusOr<json::value> Run(const YAML::Node& root) {
    json::value out = Convert(root, 0);
    if (too_deep_) return absl::InvalidArgumentError(StrCat("YAML nests deeper than ", kMaxDepth, " levels"));
    if (budget_ < 0) {
      return absl::InvalidArgumentError(
          "YAML expands to too many values (aliases repeating aliases?): refused rather than expanded");
    }
    return out;
  }

 private:
  static constexpr int kMaxDepth = 256;

  json::value Convert(const YAML::Node& node, int depth) {
    if (--budget_ < 0) return nullptr;
    if (depth > kMaxDepth) {
      too_deep_ = true;
      budget_ = -1;  // stops every caller too
      return nullptr;
    }
    switch (node.Type()) {
      case YAML::NodeType::Null:
      case YAML::NodeType::Undefined:
        return nullptr;
      case YAML::NodeType::Scalar:
        budget_ -= static_cast<int64_t>(node.Scalar().size() / 64);
        return Scalar(node);
      case YAML::NodeType::Sequence: {
        json::array a;
        for (const auto& child : node) {
          if (budget_ < 0) break;
          a.push_back(Convert(child, depth + 1));
        }
        return a;
      }
      case YAML::NodeType::Map: {
        json::object o;
        for (const auto& kv : node) {
          if (budget_ < 0) break;
          const std::string key = kv.first.as<std::string>();  // throws YAML::Exception for a non-scalar key
          budget_ -= static_cast<int64_t>(key.size() / 64);
          o[key] = Convert(kv.second, depth + 1);
        }
        return o;
      }
    }
    return nullptr;
  }

  int64_t budget_;
  bool too_deep_ = false;
};

}  // namespace

absl::StatusOr<json::value> YamlToJson(std::string_view yaml_text) {
  try {
    const YAML::Node root = YAML::Load(std::string(yaml_text));
    return Converter(yaml_text.size()).Run(root);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(StrCat("YAML error at line ", e.mark.line + 1,
                                                   ", column ", e.mark.column + 1, ": ", e.msg));
  }
}

}  // namespace abgate::config

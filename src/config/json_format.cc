#include "config/json_format.h"

#include <charconv>
#include <cmath>

#include <boost/json.hpp>

namespace abgate::config {

namespace json = boost::json;

namespace {

}  // namespace

void AppendJsonString(std::string& out, std::string_view s) {
  out.push_back('"');
  static constexpr char kHex[] = "0123456789abcdef";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 15]);
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
}

namespace {

template <typename T>
void AppendNumber(std::string& out, T v) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, r.ptr);
}

}  // namespace

void AppendJson(std::string& out, const json::value& v) {
  switch (v.kind()) {
    case json::kind::null: out += "null"; return;
    case json::kind::bool_: out += v.get_bool() ? "true" : "false"; return;
    case json::kind::int64: AppendNumber(out, v.get_int64()); return;
    case json::kind::uint64: AppendNumber(out, v.get_uint64()); return;
    case json::kind::double_: {
      const double d = v.get_double();
      if (!std::isfinite(d)) {  // not representable in JSON; MLflow writes these as strings
        out += std::isnan(d) ? "\"NaN\"" : (d > 0 ? "\"Infinity\"" : "\"-Infinity\"");
        return;
      }
      const size_t start = out.size();
      AppendNumber(out, d);
      if (out.find_first_of(".eE", start) == std::string::npos) out += ".0";
      return;
    }
    case json::kind::string: AppendJsonString(out, v.get_string()); return;
    case json::kind::array: {
      out.push_back('[');
      bool first = true;
      for (const auto& x : v.get_array()) {
        if (!first) out.push_back(',');
        first = false;
        AppendJson(out, x);
      }
      out.push_back(']');
      return;
    }
    case json::kind::object: {
      out.push_back('{');
      bool first = true;
      for (const auto& kv : v.get_object()) {
        if (!first) out.push_back(',');
        first = false;
        AppendJsonString(out, kv.key());
        out.push_back(':');
        AppendJson(out, kv.value());
      }
      out.push_back('}');
      return;
    }
  }
}

json::value ParseJson(std::string_view text, json::storage_ptr storage, boost::system::error_code& ec) {
  unsigned char temp[4096];  // parser scratch space on the stack
  json::parse_options options;
  options.max_depth = 256;
  json::parser p(json::storage_ptr(), options, temp, sizeof(temp));
  p.reset(std::move(storage));
  p.write(text.data(), text.size(), ec);  // a complete text: incomplete input is an error
  if (ec) return nullptr;
  return p.release();
}

std::string ToJson(const json::value& v) {
  std::string out;
  AppendJson(out, v);
  return out;
}

}  // namespace abgate::config

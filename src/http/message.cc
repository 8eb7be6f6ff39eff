#include "http/message.h"

#include <boost/json/serialize.hpp>
#include <boost/json/object.hpp>

namespace abgate::http {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x += 32;
    if (y >= 'A' && y <= 'Z') y += 32;
    if (x != y) return false;
  }
  return true;
}

std::string_view Request::FindHeader(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (EqualsIgnoreCase(n, name)) return v;
  }
  return {};
}

std::string_view Request::PathParam(std::string_view name) const {
  for (const auto& [k, v] : path_params) {
    if (k == name) return v;
  }
  return {};
}

Response ErrorResponse(int status, std::string_view error_code, std::string_view message) {
  boost::json::object o;
  o["error_code"] = error_code;
  o["message"] = message;
  return Response::Json(status, boost::json::serialize(o));
}

}  // namespace abgate::http

// JSON text for replies and audit records. Boost.JSON 1.81's serializer writes doubles in
// exponent form (0.31 → "3.1E-1"); this writer uses the shortest round-trip decimal form and
// keeps a ".0" on integral doubles, as Python's json (and so MLflow) does. Pure, thread-safe.
#pragma once

#include <string>

#include <boost/json/value.hpp>

namespace abgate::config {

std::string ToJson(const boost::json::value& v);
void AppendJson(std::string& out, const boost::json::value& v);

}  // namespace abgate::config

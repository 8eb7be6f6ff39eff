// JSON text for replies and audit records. Boost.JSON 1.81's serializer writes doubles in
// exponent form (0.31 → "3.1E-1"); this writer uses the shortest round-trip decimal form and
// keeps a ".0" on integral doubles, as Python's json (and so MLflow) does. Pure, thread-safe.
#pragma once

#include <string>

#include <string_view>

#include <boost/json/storage_ptr.hpp>
#include <boost/json/value.hpp>
#include <boost/system/error_code.hpp>

namespace abgate::config {

std::string ToJson(const boost::json::value& v);
void AppendJson(std::string& out, const boost::json::value& v);
// Appends `s` as a JSON string literal (quotes and escapes).
void AppendJsonString(std::string& out, std::string_view s);

// Parses `text` (UTF-8 validated, nesting up to 256) into memory from `storage` — pass a
// json::monotonic_resource on the request path to avoid one malloc per node. Never throws.
boost::json::value ParseJson(std::string_view text, boost::json::storage_ptr storage,
                             boost::system::error_code& ec);

}  // namespace abgate::config

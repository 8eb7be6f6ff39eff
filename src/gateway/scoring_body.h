// ReadScoringBody: what /predict needs from a JSON scoring body (MLflow's four input forms plus
// the experiment's unit field), read in one pass of Boost.JSON's SAX parser without building a
// DOM, and the body for the model made by cutting the unit member out of the bytes as sent
// (everything else is forwarded untouched). The rules are those of the DOM reading it replaced:
// the body must be valid JSON (UTF-8 checked, depth ≤ 256), an object with exactly one of
// dataframe_split, dataframe_records, instances, inputs at the top level, and the unit (the last
// top-level member of that name, as a JSON object keeps the last of duplicate keys) a non-empty
// string of at most 512 bytes, an integer, or null (= no unit).
// Pure function; thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace abgate::gateway {

struct ScoringBody {
  enum class Error {
    kNone,
    kMalformedJson,  // not valid JSON (message: the parser's)
    kInvalidUtf8,    // not valid JSON because it is not valid UTF-8
    kNotObject,      // an array or a scalar (message says which)
    kScoringKeys,    // not exactly one scoring key (message lists the ones present)
    kInvalidUnit,    // the unit field has a type or size that cannot be a unit
  };
  Error error = Error::kNone;
  std::string message;  // for the 400 reply when error != kNone
  bool has_unit = false;
  std::string unit;  // the unit as a string (integers in decimal), when has_unit
};

// Reads `body` (JSON) and, when `unit_field` is a top-level member, removes every top-level
// member of that name from `body` in place (the model gets only the scoring payload). On error
// `body` is left as it was. Empty `unit_field` reads no unit.
ScoringBody ReadScoringBody(std::string& body, std::string_view unit_field);

}  // namespace abgate::gateway

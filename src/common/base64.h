// Base64 (RFC 4648, standard alphabet with padding): HTTP Basic credentials and MLflow's
// page tokens. Pure and thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace abgate::common {

std::string Base64Encode(std::string_view bytes);
// nullopt on characters outside the alphabet or bad padding. Padding may be omitted.
std::optional<std::string> Base64Decode(std::string_view text);

}  // namespace abgate::common

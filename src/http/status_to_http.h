// The one table from absl::StatusCode to an HTTP status and a JSON error_code. Pure.
#pragma once

#include <string_view>

#include "absl/status/status.h"
#include "http/message.h"

namespace abgate::http {

int HttpStatusFor(absl::StatusCode code);
std::string_view ErrorCodeFor(absl::StatusCode code);
// {"error_code", "message"} response for a non-OK status.
Response StatusResponse(const absl::Status& status);

}  // namespace abgate::http

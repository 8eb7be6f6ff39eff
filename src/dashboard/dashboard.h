// The dashboard's HTTP side: GET /dashboard (the single-page app) and GET /dashboard/{file}
// (its script and style), served from the embedded assets with a strict Content-Security-Policy
// (everything from this origin, nothing inline, no framing). The page holds no data: it reads
// the admin API with the token the user gives it, so these routes need none. Thread-safe.
#pragma once

#include "http/router.h"

namespace abgate::dashboard {

// Adds the dashboard's routes to `router` (the admin listener's).
void RegisterRoutes(http::Router& router);

}  // namespace abgate::dashboard

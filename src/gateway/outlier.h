// Outlier ejection of arms' upstreams, after Envoy's outlier detection (consecutive failures →
// ejected for base_ejection_time × recent ejections, at most max_ejection_time; at most
// max_ejection_percent of the hosts out, at least one). Here the hosts are an experiment's arms
// and the fallback is control: an ejected arm's requests are served by control at once instead
// of each waiting for the upstream's timeout. Control is never ejected, nor an arm whose
// experiment does not fall back to control. The state lives in the arm's ArmMetrics::outlier
// (lock-free atomics); every function is thread-safe.
#pragma once

#include <cstdint>

#include "config/gateway_config.h"
#include "gateway/experiment_set.h"

namespace abgate::gateway {

// True while arm `arm` of `exp` is ejected (now_us on the steady clock).
bool IsEjected(const CompiledExperiment& exp, int arm, int64_t now_us);

// Records one upstream call of arm `arm`: a success resets its run of failures; the configured
// run of failures ejects it. Returns the ejection's length when this call ejected the arm, else 0.
int64_t RecordUpstreamResult(const config::OutlierDetectionConfig& od, const CompiledExperiment& exp, int arm,
                             bool ok, int64_t now_us);

}  // namespace abgate::gateway

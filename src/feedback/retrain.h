// The controller's feedback loop step (controller.retrain): export → check there are enough new
// labelled rows → train → log the run (naming the export) → register the version tagged as a
// candidate. The controller calls it through control::Retrainer; the binary installs it, so the
// controller links no event-store reader or trainer of its own. Blocking; one call at a time.
#pragma once

#include "control/controller.h"

namespace abgate::feedback {

// FailedPrecondition (and no file left behind) when the export holds fewer than
// `request.config.min_new_labels` usable labelled rows; the store's, registry's or trainer's
// errors otherwise. The export is kept in `request.config.data_dir` (the run names it).
absl::StatusOr<control::RetrainResult> Retrain(const control::RetrainRequest& request);

}  // namespace abgate::feedback

// Internal to the events library: what the EventReader backends share to turn stored rows and
// event blocks into the typed batches of an EventScan (event_reader.h), and to cut tables into
// scan tasks. Thread-compatible: one ScanBatcher per worker.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "events/event_reader.h"

namespace abgate::events_internal {

// A scan task: a range of rowids, block ids or heap pages (inclusive; `last` -1: to the end).
struct Chunk {
  bool outcomes = false;
  int64_t first = 0, last = 0;
};

// Both tables' ranges cut into chunks of `rows_per_chunk` (0: about 8 per worker, at least
// `min_size`), exposures and outcomes alternating so the workers share both.
std::vector<Chunk> PlanChunks(std::pair<int64_t, int64_t> exposures, std::pair<int64_t, int64_t> outcomes,
                              int64_t min_size, int64_t rows_per_chunk, int workers);

// The metrics an experiment has outcomes for, and whether each is binary (every value 0 or 1);
// %s is the experiment's placeholder.
inline constexpr const char* kOutcomeMetricsSql =
    "SELECT metric, CASE WHEN min(value) >= 0 AND max(value) <= 1 AND sum(CASE WHEN value = 0 OR value = 1 THEN 0 "
    "ELSE 1 END) = 0 THEN 'binary' ELSE 'continuous' END FROM outcomes WHERE experiment = %s GROUP BY metric";

// Collects one task's events and hands them to the visitor in batches, in the order added.
class ScanBatcher {
 public:
  explicit ScanBatcher(const events::ScanRequest& request) : request_(request) {}

  // Starts a task: its events go to `visitor` (names met in earlier tasks are forgotten).
  void Begin(events::EventVisitor& visitor);
  // Hands over what is left; call at the end of every task.
  void Finish();

  // One stored row (an in-experiment exposure; its assigned arm). Rows before since_us are
  // skipped; so are outcomes of metrics the request did not ask for, or naming nobody.
  void AddExposureRow(std::string_view request_id, std::string_view unit_id, std::string_view arm,
                      std::string_view model_version, int64_t position, int64_t ts_us, bool scored, double score,
                      double assignment_probability = 0);
  void AddOutcomeRow(std::string_view request_id, std::string_view unit_id, std::string_view metric, double value,
                     int64_t ts_us);
  // One event block (events/event_blocks.h); `position` (its id) orders it in the store. InvalidArgument
  // for a damaged block.
  absl::Status AddExposureBlock(std::string_view blob, int64_t position);
  absl::Status AddOutcomeBlock(std::string_view blob, int64_t position);

 private:
  static constexpr size_t kBatchRows = 4096;
  struct OwnedArm {
    std::string name, model_version;
    int64_t position;
  };
  void FlushExposures();
  void FlushOutcomes();
  int Wanted(std::string_view metric) const;  // index in request_.metrics, or -1

  const events::ScanRequest& request_;
  events::EventVisitor* visitor_ = nullptr;
  // Row path: the task's names, and the rows waiting to be handed over.
  std::vector<OwnedArm> arms_;
  std::vector<std::string> metrics_;  // only when the request names no metrics
  std::vector<events::ExposureKeys> exposures_;
  std::vector<events::OutcomeKeys> outcomes_;
  // Block path: one block's events (sized to the largest block seen).
  std::vector<events::ExposureKeys> block_exposures_;
  std::vector<events::OutcomeKeys> block_outcomes_;
  // Views for a batch (rebuilt at each hand-over: the owned strings may have moved).
  std::vector<events::BatchArm> arm_views_;
  std::vector<std::string_view> metric_views_;
};

}  // namespace abgate::events_internal

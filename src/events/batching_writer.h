// BatchingWriter: a bounded in-memory queue in front of an EventSink, drained by one writer
// thread that commits a batch per transaction (LevelDB-style group commit) every `flush_us`
// or sooner when a batch fills up.
//
// Exposures are best-effort: when the queue holds `capacity` events, Enqueue refuses and the
// refusal is counted (never silent). Audit records are never refused and take a completion
// callback that runs on the writer thread after their transaction commits (or fails).
// Stop() flushes everything still queued. All methods are thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "events/event_sink.h"

namespace abgate::events {

struct WriterStats {
  int64_t queued = 0;        // waiting for the writer now
  int64_t written = 0;       // committed exposures
  int64_t dropped = 0;       // refused because the queue was full
  int64_t write_errors = 0;  // exposures lost to failed transactions
  int64_t batches = 0;       // committed transactions
};

class BatchingWriter {
 public:
  BatchingWriter(EventSink& sink, int64_t flush_us, int64_t capacity);
  ~BatchingWriter();  // Stop()

  // Non-blocking. False when the queue is full (the event is dropped and counted).
  bool Enqueue(Exposure exposure);
  // Non-blocking; `committed` runs on the writer thread once the record is durable or failed.
  void EnqueueAudit(AuditRecord record, std::function<void(absl::Status)> committed);
  // Outcomes are never refused. `committed` runs on the writer thread once the batch is durable
  // (or failed) with the number stored (the rest were duplicates of earlier event_ids). The
  // writer wakes at once, so concurrent batches share a commit (group commit).
  void EnqueueOutcomes(std::vector<Outcome> outcomes, std::function<void(absl::Status, int64_t stored)> committed);
  // Assignments are never refused. With a callback (admin changes) the writer wakes at once;
  // without one (first sticky assignments on the request path) they ride the next commit.
  void EnqueueAssignments(std::vector<Assignment> assignments, std::function<void(absl::Status)> committed = nullptr);
  // Blocks until everything enqueued before the call is committed (or failed).
  void Flush();
  // Flushes and joins the writer thread. Later Enqueue calls are dropped and counted.
  void Stop();

  WriterStats stats() const;

 private:
  void Run();

  EventSink& sink_;
  const int64_t flush_us_;
  const int64_t capacity_;
  static constexpr size_t kBatchTrigger = 8192;

  mutable std::mutex mu_;
  std::condition_variable wake_writer_;
  std::condition_variable flushed_;
  std::vector<Exposure> pending_;                       // guarded by mu_
  std::vector<AuditRecord> pending_audit_;              // guarded by mu_
  std::vector<std::function<void(absl::Status)>> pending_callbacks_;  // guarded by mu_
  struct OutcomeBatch {
    size_t count;
    std::function<void(absl::Status, int64_t)> committed;
  };
  std::vector<Outcome> pending_outcomes_;        // guarded by mu_
  std::vector<OutcomeBatch> pending_outcome_batches_;  // guarded by mu_
  std::vector<Assignment> pending_assignments_;         // guarded by mu_
  uint64_t enqueued_seq_ = 0;                           // guarded by mu_
  uint64_t committed_seq_ = 0;                          // guarded by mu_
  bool stopping_ = false;                               // guarded by mu_
  bool flush_requested_ = false;                        // guarded by mu_

  std::atomic<int64_t> written_{0};
  std::atomic<int64_t> dropped_{0};
  std::atomic<int64_t> write_errors_{0};
  std::atomic<int64_t> batches_{0};
  std::atomic<int64_t> queued_{0};
  std::thread thread_;
};

}  // namespace abgate::events

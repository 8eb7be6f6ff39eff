// BatchingWriter: a bounded in-memory queue in front of an EventSink, drained by one writer
// thread that commits a batch per transaction (LevelDB-style group commit) every `flush_us`
// or sooner when a batch fills up.
//
// Exposures are best-effort but accounted for: when the queue holds `capacity` events (those
// waiting for a retry included), Enqueue refuses and the refusal is counted. Every exposure
// ends up written, dropped (queue full), or counted in write_errors (a row the store refused
// on its own, or still unwritten when Stop gave up on an unavailable store).
//
// Writes that carry a completion callback (outcomes, audit records, admin assignment changes)
// are never refused; the callback runs on the writer thread after their transaction commits,
// or with the error when it failed — they are never retried behind the caller's back, so an
// acknowledgement always means stored.
//
// Store failures: when a transaction fails because the store is unavailable (connection lost,
// disk full, read-only, I/O error), the exposures and first sticky assignments of the batch
// stay queued and are retried with exponential backoff; the writer reports the outage through
// health() and logs one line when the store becomes unavailable and one when it is back. When
// the store refuses a batch because of its data (kInvalidArgument: e.g. one row PostgreSQL
// will not take), the batch is split and its halves retried until the refused rows are
// isolated; only those are lost, counted, and logged (sticky assignments by unit).
//
// Stop() flushes everything still queued (retrying an unavailable store for at most
// `stop_budget_us`). All methods are thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "common/mutex.h"
#include "events/event_sink.h"

namespace abgate::events {

struct WriterStats {
  int64_t queued = 0;           // exposures waiting for the writer now (a retried backlog included)
  int64_t written = 0;          // committed exposures
  int64_t dropped = 0;          // refused because the queue was full
  int64_t write_errors = 0;     // exposures lost: refused by the store, or unwritten at Stop
  int64_t batches = 0;          // committed transactions
  int64_t failed_writes = 0;    // transactions that failed (their work retried or reported)
  int64_t sticky_lost = 0;      // first sticky assignments lost the same two ways (each logged)
  int64_t outages = 0;          // times the store became unavailable
};

struct StoreHealth {
  bool available = true;
  std::string error;                // while unavailable: the last failure
  int64_t unavailable_since_us = 0;  // Unix microseconds (system clock); 0 while available
};

struct WriterOptions {
  int64_t retry_initial_us = 100'000;  // first retry after an unavailable store; doubles
  int64_t retry_max_us = 1'000'000;
  int64_t stop_budget_us = 5'000'000;  // Stop() retries an unavailable store this long
};

class BatchingWriter {
 public:
  BatchingWriter(EventSink& sink, int64_t flush_us, int64_t capacity, WriterOptions options = {});
  ~BatchingWriter();  // Stop()

  // Non-blocking. False when the queue is full (the event is dropped and counted).
  bool Enqueue(Exposure exposure);
  // Non-blocking; `committed` runs on the writer thread once the record is durable or failed.
  void EnqueueAudit(AuditRecord record, std::function<void(absl::Status)> committed);
  // Outcomes are never refused. `committed` runs on the writer thread once the batch is durable
  // (or failed) with the number stored (the rest were duplicates of earlier event_ids). The
  // writer wakes at once, so concurrent batches share a commit (group commit).
  void EnqueueOutcomes(std::vector<Outcome> outcomes, std::function<void(absl::Status, int64_t stored)> committed);
  // Assignments are never refused. With a callback (admin changes) the writer wakes at once and
  // `audit` (if any) is stored in the same transaction; without one (first sticky assignments
  // on the request path) they ride the next commit and are retried through outages.
  void EnqueueAssignments(std::vector<Assignment> assignments, std::function<void(absl::Status)> committed = nullptr,
                          std::vector<AuditRecord> audit = {});
  // Blocks until everything enqueued before the call was tried: committed, failed, or (store
  // unavailable) kept for a retry.
  void Flush();
  // Flushes and joins the writer thread. Later Enqueue calls are dropped and counted.
  void Stop();

  WriterStats stats() const;
  // Cheap; for the request path.
  bool store_available() const { return available_.load(std::memory_order_relaxed); }
  StoreHealth health() const;

 private:
  // One call waiting for its commit.
  struct Acked {
    std::vector<AuditRecord> audit;
    std::vector<Outcome> outcomes;
    std::vector<Assignment> assignments;
    std::function<void(absl::Status, int64_t outcomes_stored)> done;
  };
  void Run();
  // Writes `exposures` (all of them, in chunks), `sticky` and `acked`; on an unavailable store
  // leaves the unwritten exposures and sticky assignments in place and returns the error.
  absl::Status Drain(std::vector<Exposure>& exposures, std::vector<Assignment>& sticky, std::vector<Acked>& acked);
  // One transaction, isolating refused rows (see the top of this file).
  absl::Status WriteIsolating(std::vector<Exposure>& exposures, std::vector<Assignment>& sticky,
                              std::vector<Acked>& acked);
  // Splits until the refused rows are alone; rows not written because the store became
  // unavailable go to `left_*`.
  absl::Status Bisect(std::span<Exposure> exposures, std::span<Assignment> sticky, std::vector<Exposure>& left_exposures,
                      std::vector<Assignment>& left_sticky);
  void MarkUnavailable(const absl::Status& s);
  void MarkAvailable();
  // The writer has something to do now (see Run).
  bool WriterWakeLocked(bool stop_seen) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  EventSink& sink_;
  const int64_t flush_us_;
  const int64_t capacity_;
  const WriterOptions options_;
  static constexpr size_t kBatchTrigger = 8192;
  static constexpr size_t kMaxBatch = 8192;    // exposures per transaction when draining a backlog
  static constexpr size_t kProbeBatch = 1024;  // the first one after an outage

  mutable common::Mutex mu_;
  common::CondVar wake_writer_;
  common::CondVar flushed_;  // committed_seq_ moved, or stopped_
  std::vector<Exposure> pending_ ABSL_GUARDED_BY(mu_);
  std::vector<Assignment> pending_sticky_ ABSL_GUARDED_BY(mu_);
  std::vector<Acked> pending_acked_ ABSL_GUARDED_BY(mu_);
  int64_t backlog_ ABSL_GUARDED_BY(mu_) = 0;  // exposures the writer holds (in flight or kept for a retry)
  uint64_t enqueued_seq_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t committed_seq_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;  // the writer thread has ended
  bool flush_requested_ ABSL_GUARDED_BY(mu_) = false;
  StoreHealth health_ ABSL_GUARDED_BY(mu_);

  // Writer thread only.
  int64_t backoff_us_ = 0;
  int64_t dropped_at_outage_ = 0;
  std::chrono::steady_clock::time_point outage_start_;
  std::chrono::steady_clock::time_point last_refusal_log_;
  int64_t refusals_unlogged_ = 0;

  std::atomic<bool> available_{true};
  std::atomic<int64_t> written_{0};
  std::atomic<int64_t> dropped_{0};
  std::atomic<int64_t> write_errors_{0};
  std::atomic<int64_t> batches_{0};
  std::atomic<int64_t> failed_writes_{0};
  std::atomic<int64_t> sticky_lost_{0};
  std::atomic<int64_t> outages_{0};
  std::atomic<int64_t> queued_{0};
  std::thread thread_;
};

}  // namespace abgate::events

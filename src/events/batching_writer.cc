#include "events/batching_writer.h"

#include <chrono>

#include "common/logging.h"

namespace abgate::events {

BatchingWriter::BatchingWriter(EventSink& sink, int64_t flush_us, int64_t capacity)
    : sink_(sink), flush_us_(flush_us), capacity_(capacity) {
  pending_.reserve(kBatchTrigger);
  thread_ = std::thread([this] { Run(); });
}

BatchingWriter::~BatchingWriter() { Stop(); }

bool BatchingWriter::Enqueue(Exposure exposure) {
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    if (stopping_ || static_cast<int64_t>(pending_.size()) >= capacity_) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    pending_.push_back(std::move(exposure));
    ++enqueued_seq_;
    wake = pending_.size() == kBatchTrigger;
    queued_.store(static_cast<int64_t>(pending_.size()), std::memory_order_relaxed);
  }
  if (wake) wake_writer_.notify_one();
  return true;
}

void BatchingWriter::EnqueueAudit(AuditRecord record, std::function<void(absl::Status)> committed) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      if (committed) committed(absl::UnavailableError("the event writer is stopped"));
      return;
    }
    pending_audit_.push_back(std::move(record));
    pending_callbacks_.push_back(std::move(committed));
    ++enqueued_seq_;
  }
  wake_writer_.notify_one();
}

void BatchingWriter::EnqueueOutcomes(std::vector<Outcome> outcomes,
                                     std::function<void(absl::Status, int64_t)> committed) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      if (committed) committed(absl::UnavailableError("the event writer is stopped"), 0);
      return;
    }
    pending_outcome_batches_.push_back({outcomes.size(), std::move(committed)});
    for (auto& o : outcomes) pending_outcomes_.push_back(std::move(o));
    ++enqueued_seq_;
  }
  wake_writer_.notify_one();
}

void BatchingWriter::EnqueueAssignments(std::vector<Assignment> assignments, std::function<void(absl::Status)> committed) {
  const bool urgent = committed != nullptr;
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      if (committed) committed(absl::UnavailableError("the event writer is stopped"));
      return;
    }
    for (auto& a : assignments) pending_assignments_.push_back(std::move(a));
    if (committed) pending_callbacks_.push_back(std::move(committed));
    ++enqueued_seq_;
  }
  if (urgent) wake_writer_.notify_one();
}

void BatchingWriter::Flush() {
  std::unique_lock lock(mu_);
  const uint64_t target = enqueued_seq_;
  flush_requested_ = true;
  wake_writer_.notify_one();
  flushed_.wait(lock, [&] { return committed_seq_ >= target || !thread_.joinable(); });
}

void BatchingWriter::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_writer_.notify_one();
  if (thread_.joinable()) thread_.join();
  flushed_.notify_all();
}

WriterStats BatchingWriter::stats() const {
  WriterStats s;
  s.queued = queued_.load(std::memory_order_relaxed);
  s.written = written_.load(std::memory_order_relaxed);
  s.dropped = dropped_.load(std::memory_order_relaxed);
  s.write_errors = write_errors_.load(std::memory_order_relaxed);
  s.batches = batches_.load(std::memory_order_relaxed);
  return s;
}

void BatchingWriter::Run() {
  std::vector<Exposure> batch;
  std::vector<AuditRecord> audit;
  std::vector<std::function<void(absl::Status)>> callbacks;
  std::vector<Outcome> outcomes;
  std::vector<OutcomeBatch> outcome_batches;
  std::vector<Assignment> assignments;
  std::vector<bool> stored;
  batch.reserve(kBatchTrigger);
  for (;;) {
    uint64_t seq;
    bool stop;
    {
      std::unique_lock lock(mu_);
      wake_writer_.wait_for(lock, std::chrono::microseconds(flush_us_), [&] {
        return stopping_ || flush_requested_ || pending_.size() >= kBatchTrigger ||
               !pending_audit_.empty() || !pending_outcome_batches_.empty() || !pending_callbacks_.empty();
      });
      flush_requested_ = false;
      batch.swap(pending_);
      audit.swap(pending_audit_);
      callbacks.swap(pending_callbacks_);
      outcomes.swap(pending_outcomes_);
      outcome_batches.swap(pending_outcome_batches_);
      assignments.swap(pending_assignments_);
      seq = enqueued_seq_;
      stop = stopping_;
      queued_.store(0, std::memory_order_relaxed);
    }
    if (!batch.empty() || !audit.empty() || !outcomes.empty() || !assignments.empty() || !callbacks.empty()) {
      const absl::Status s = sink_.WriteBatch(batch, audit, outcomes, &stored, assignments);
      if (s.ok()) {
        written_.fetch_add(static_cast<int64_t>(batch.size()), std::memory_order_relaxed);
        batches_.fetch_add(1, std::memory_order_relaxed);
      } else {
        write_errors_.fetch_add(static_cast<int64_t>(batch.size()), std::memory_order_relaxed);
        ABGATE_LOG(kError, "event store write of %d exposures and %d audit records failed: %s",
                   batch.size(), audit.size(), std::string(s.message()));
      }
      for (auto& cb : callbacks) {
        if (cb) cb(s);
      }
      size_t offset = 0;
      for (auto& b : outcome_batches) {
        int64_t n = 0;
        for (size_t i = 0; s.ok() && i < b.count; ++i) n += stored[offset + i];
        offset += b.count;
        if (b.committed) b.committed(s, n);
      }
      batch.clear();
      audit.clear();
      callbacks.clear();
      outcomes.clear();
      outcome_batches.clear();
      assignments.clear();
    }
    {
      std::lock_guard lock(mu_);
      committed_seq_ = seq;
    }
    flushed_.notify_all();
    if (stop) {
      std::lock_guard lock(mu_);
      if (pending_.empty() && pending_audit_.empty() && pending_outcome_batches_.empty() &&
          pending_assignments_.empty() && pending_callbacks_.empty()) {
        return;
      }
    }
  }
}

}  // namespace abgate::events

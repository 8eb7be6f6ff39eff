#include "events/batching_writer.h"

#include <algorithm>
#include <iterator>

#include "common/logging.h"
#include "common/strings.h"

namespace abgate::events {
namespace {

using Clock = std::chrono::steady_clock;

int64_t NowUnixUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The store refused the data (retrying the same rows gives the same answer); anything else is
// the store being unavailable (connection, disk, permissions) and worth a retry later.
bool IsRefusal(const absl::Status& s) { return s.code() == absl::StatusCode::kInvalidArgument; }

}  // namespace

BatchingWriter::BatchingWriter(EventSink& sink, int64_t flush_us, int64_t capacity, WriterOptions options)
    : sink_(sink), flush_us_(flush_us), capacity_(capacity), options_(options) {
  pending_.reserve(kBatchTrigger);
  thread_ = std::thread([this] { Run(); });
}

BatchingWriter::~BatchingWriter() { Stop(); }

bool BatchingWriter::Enqueue(Exposure exposure) {
  bool wake = false;
  {
    common::MutexLock lock(mu_);
    const int64_t queued = static_cast<int64_t>(pending_.size()) + backlog_;
    if (stopping_ || queued >= capacity_) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    pending_.push_back(std::move(exposure));
    ++enqueued_seq_;
    wake = pending_.size() == kBatchTrigger;
    queued_.store(queued + 1, std::memory_order_relaxed);
  }
  if (wake) wake_writer_.NotifyOne();
  return true;
}

void BatchingWriter::EnqueueAudit(AuditRecord record, std::function<void(absl::Status)> committed) {
  Acked a;
  a.audit.push_back(std::move(record));
  if (committed) a.done = [cb = std::move(committed)](absl::Status s, int64_t) { cb(std::move(s)); };
  {
    common::MutexLock lock(mu_);
    if (stopping_) {
      if (a.done) a.done(absl::UnavailableError("the event writer is stopped"), 0);
      return;
    }
    pending_acked_.push_back(std::move(a));
    ++enqueued_seq_;
  }
  wake_writer_.NotifyOne();
}

void BatchingWriter::EnqueueOutcomes(std::vector<Outcome> outcomes,
                                     std::function<void(absl::Status, int64_t)> committed) {
  Acked a;
  a.outcomes = std::move(outcomes);
  a.done = std::move(committed);
  {
    common::MutexLock lock(mu_);
    if (stopping_) {
      if (a.done) a.done(absl::UnavailableError("the event writer is stopped"), 0);
      return;
    }
    pending_acked_.push_back(std::move(a));
    ++enqueued_seq_;
  }
  wake_writer_.NotifyOne();
}

void BatchingWriter::EnqueueAssignments(std::vector<Assignment> assignments, std::function<void(absl::Status)> committed,
                                        std::vector<AuditRecord> audit) {
  const bool acked = committed != nullptr || !audit.empty();
  {
    common::MutexLock lock(mu_);
    if (stopping_) {
      if (committed) committed(absl::UnavailableError("the event writer is stopped"));
      if (!committed) {
        sticky_lost_.fetch_add(static_cast<int64_t>(assignments.size()), std::memory_order_relaxed);
      }
      return;
    }
    if (acked) {
      Acked a;
      a.assignments = std::move(assignments);
      a.audit = std::move(audit);
      if (committed) a.done = [cb = std::move(committed)](absl::Status s, int64_t) { cb(std::move(s)); };
      pending_acked_.push_back(std::move(a));
    } else {
      for (auto& a : assignments) pending_sticky_.push_back(std::move(a));
    }
    ++enqueued_seq_;
  }
  if (acked) wake_writer_.NotifyOne();
}

void BatchingWriter::Flush() {
  common::MutexLock lock(mu_);
  const uint64_t target = enqueued_seq_;
  flush_requested_ = true;
  wake_writer_.NotifyOne();
  // stopped_, not thread_.joinable(): Stop() joins thread_ on another thread.
  while (committed_seq_ < target && !stopped_) flushed_.Wait(mu_);
}

void BatchingWriter::Stop() {
  {
    common::MutexLock lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_writer_.NotifyOne();
  if (thread_.joinable()) thread_.join();
  {
    common::MutexLock lock(mu_);
    stopped_ = true;
  }
  flushed_.NotifyAll();
}

WriterStats BatchingWriter::stats() const {
  WriterStats s;
  s.queued = queued_.load(std::memory_order_relaxed);
  s.written = written_.load(std::memory_order_relaxed);
  s.dropped = dropped_.load(std::memory_order_relaxed);
  s.write_errors = write_errors_.load(std::memory_order_relaxed);
  s.batches = batches_.load(std::memory_order_relaxed);
  s.failed_writes = failed_writes_.load(std::memory_order_relaxed);
  s.sticky_lost = sticky_lost_.load(std::memory_order_relaxed);
  s.outages = outages_.load(std::memory_order_relaxed);
  return s;
}

StoreHealth BatchingWriter::health() const {
  common::MutexLock lock(mu_);
  return health_;
}

void BatchingWriter::MarkUnavailable(const absl::Status& s) {
  backoff_us_ = backoff_us_ == 0 ? options_.retry_initial_us : std::min(backoff_us_ * 2, options_.retry_max_us);
  const bool was_available = available_.exchange(false);
  {
    common::MutexLock lock(mu_);
    health_.available = false;
    health_.error = std::string(s.message());
    if (was_available) health_.unavailable_since_us = NowUnixUs();
  }
  if (!was_available) return;
  outages_.fetch_add(1, std::memory_order_relaxed);
  outage_start_ = Clock::now();
  dropped_at_outage_ = dropped_.load(std::memory_order_relaxed);
  // One line per state change, however many batches fail meanwhile.
  ABGATE_LOG(kError,
             "event store unavailable: %s; exposures stay queued (capacity %d) and are retried, outcomes and admin "
             "changes are refused until it is back",
             std::string(s.message()), capacity_);
}

void BatchingWriter::MarkAvailable() {
  backoff_us_ = 0;
  if (available_.load(std::memory_order_relaxed)) return;
  {
    common::MutexLock lock(mu_);
    health_ = StoreHealth{};
  }
  available_.store(true);
  const double seconds = std::chrono::duration<double>(Clock::now() - outage_start_).count();
  ABGATE_LOG(kWarning, "event store available again after %.1f s; %d exposures dropped meanwhile (queue full)", seconds,
             dropped_.load(std::memory_order_relaxed) - dropped_at_outage_);
}

absl::Status BatchingWriter::Bisect(std::span<Exposure> exposures, std::span<Assignment> sticky,
                                    std::vector<Exposure>& left_exposures, std::vector<Assignment>& left_sticky) {
  const absl::Status s = sink_.WriteBatch(exposures, {}, {}, nullptr, sticky);
  if (s.ok()) {
    written_.fetch_add(static_cast<int64_t>(exposures.size()), std::memory_order_relaxed);
    batches_.fetch_add(1, std::memory_order_relaxed);
    return s;
  }
  failed_writes_.fetch_add(1, std::memory_order_relaxed);
  if (!IsRefusal(s)) {
    for (auto& e : exposures) left_exposures.push_back(std::move(e));
    for (auto& a : sticky) left_sticky.push_back(std::move(a));
    return s;
  }
  if (exposures.size() + sticky.size() == 1) {
    // Isolated: this row alone is refused. Counted; a sticky assignment logged by its unit (the
    // unit may be re-assigned by hash elsewhere), exposures at most once a second.
    if (!sticky.empty()) {
      sticky_lost_.fetch_add(1, std::memory_order_relaxed);
      ABGATE_LOG(kError, "event store refused the sticky assignment of unit %s in %s to %s, lost: %s", sticky[0].unit_id,
                 sticky[0].experiment, sticky[0].arm, std::string(s.message()));
      return absl::OkStatus();
    }
    write_errors_.fetch_add(1, std::memory_order_relaxed);
    ++refusals_unlogged_;
    const auto now = Clock::now();
    if (now - last_refusal_log_ >= std::chrono::seconds(1)) {
      last_refusal_log_ = now;
      ABGATE_LOG(kError, "event store refused %d exposure row(s), lost and counted (last: request %s of %s): %s",
                 refusals_unlogged_, exposures[0].request_id, exposures[0].experiment, std::string(s.message()));
      refusals_unlogged_ = 0;
    }
    return absl::OkStatus();
  }
  // Two non-empty halves.
  std::span<Exposure> e1 = exposures, e2;
  std::span<Assignment> s1 = sticky, s2;
  if (!exposures.empty() && !sticky.empty()) {
    e1 = exposures;
    s1 = {};
    s2 = sticky;
  } else if (!exposures.empty()) {
    e1 = exposures.first(exposures.size() / 2);
    e2 = exposures.subspan(exposures.size() / 2);
    s1 = {};
  } else {
    e1 = {};
    s1 = sticky.first(sticky.size() / 2);
    s2 = sticky.subspan(sticky.size() / 2);
  }
  if (absl::Status first = Bisect(e1, s1, left_exposures, left_sticky); !first.ok()) {
    for (auto& e : e2) left_exposures.push_back(std::move(e));
    for (auto& a : s2) left_sticky.push_back(std::move(a));
    return first;
  }
  return Bisect(e2, s2, left_exposures, left_sticky);
}

absl::Status BatchingWriter::WriteIsolating(std::vector<Exposure>& exposures, std::vector<Assignment>& sticky,
                                            std::vector<Acked>& acked) {
  // Everything in one transaction (the common case).
  std::vector<AuditRecord> audit;
  std::vector<Outcome> outcomes;
  std::vector<Assignment> assignments = sticky;
  for (const Acked& a : acked) {
    audit.insert(audit.end(), a.audit.begin(), a.audit.end());
    outcomes.insert(outcomes.end(), a.outcomes.begin(), a.outcomes.end());
    assignments.insert(assignments.end(), a.assignments.begin(), a.assignments.end());
  }
  std::vector<bool> stored;
  absl::Status s = sink_.WriteBatch(exposures, audit, outcomes, &stored, assignments);
  auto answer = [](Acked& a, const absl::Status& status, const std::vector<bool>& stored, size_t offset) {
    int64_t n = 0;
    for (size_t i = 0; status.ok() && i < a.outcomes.size() && offset + i < stored.size(); ++i) n += stored[offset + i];
    if (a.done) a.done(status, n);
  };
  if (s.ok()) {
    written_.fetch_add(static_cast<int64_t>(exposures.size()), std::memory_order_relaxed);
    batches_.fetch_add(1, std::memory_order_relaxed);
    size_t offset = 0;
    for (Acked& a : acked) {
      answer(a, s, stored, offset);
      offset += a.outcomes.size();
    }
    exposures.clear();
    sticky.clear();
    acked.clear();
    return s;
  }
  failed_writes_.fetch_add(1, std::memory_order_relaxed);
  if (!IsRefusal(s)) {
    // Unavailable: callers waiting for an answer get the error now (they may retry); the rest
    // is kept for the retry.
    for (Acked& a : acked) answer(a, s, stored, 0);
    acked.clear();
    return s;
  }
  // A row was refused: each acknowledged write on its own (one caller's bad row fails only that
  // caller), then the exposures and sticky assignments split until the refused rows are alone.
  absl::Status trouble;
  for (Acked& a : acked) {
    if (!trouble.ok()) {
      answer(a, trouble, stored, 0);
      continue;
    }
    std::vector<bool> alone;
    absl::Status one = sink_.WriteBatch({}, a.audit, a.outcomes, &alone, a.assignments);
    if (!one.ok()) failed_writes_.fetch_add(1, std::memory_order_relaxed);
    if (!one.ok() && !IsRefusal(one)) trouble = one;
    answer(a, one, alone, 0);
  }
  acked.clear();
  if (!trouble.ok()) return trouble;
  std::vector<Exposure> left_exposures;
  std::vector<Assignment> left_sticky;
  s = Bisect(std::span<Exposure>(exposures), std::span<Assignment>(sticky), left_exposures, left_sticky);
  exposures = std::move(left_exposures);
  sticky = std::move(left_sticky);
  return s;
}

absl::Status BatchingWriter::Drain(std::vector<Exposure>& exposures, std::vector<Assignment>& sticky,
                                   std::vector<Acked>& acked) {
  // A backlog kept through an outage is written kMaxBatch exposures per transaction; the
  // acknowledged writes and sticky assignments go with the first.
  size_t done = 0;
  absl::Status status;
  do {
    // After an outage the first transaction is small, so the store is reported back (and
    // outcomes acknowledged again) without waiting for a big one.
    const size_t n = std::min(store_available() ? kMaxBatch : kProbeBatch, exposures.size() - done);
    std::vector<Exposure> chunk(std::make_move_iterator(exposures.begin() + done),
                                std::make_move_iterator(exposures.begin() + done + n));
    status = WriteIsolating(chunk, sticky, acked);
    if (!status.ok()) {
      // Kept for the retry: the chunk's unwritten rows, then the rest.
      std::vector<Exposure> rest;
      rest.reserve(chunk.size() + exposures.size() - done - n);
      std::move(chunk.begin(), chunk.end(), std::back_inserter(rest));
      std::move(exposures.begin() + done + n, exposures.end(), std::back_inserter(rest));
      exposures = std::move(rest);
      return status;
    }
    MarkAvailable();  // as soon as one transaction commits, not after the whole backlog
    done += n;
    if (done < exposures.size()) {
      // Writes waiting for an answer (outcomes, admin changes) ride the next chunk instead of
      // waiting behind the whole backlog.
      common::MutexLock lock(mu_);
      std::move(pending_acked_.begin(), pending_acked_.end(), std::back_inserter(acked));
      pending_acked_.clear();
    }
  } while (done < exposures.size());
  exposures.clear();
  return status;
}

bool BatchingWriter::WriterWakeLocked(bool stop_seen) const {
  return (stopping_ && !stop_seen) || flush_requested_ || !pending_acked_.empty() ||
         (store_available() && pending_.size() >= kBatchTrigger);
}

void BatchingWriter::Run() {
  std::vector<Exposure> backlog;
  std::vector<Assignment> sticky;
  std::vector<Acked> acked;
  backlog.reserve(kBatchTrigger);
  bool stop_seen = false;
  Clock::time_point give_up;
  Clock::time_point retry_at = Clock::now();
  for (;;) {
    uint64_t seq;
    bool stop;
    {
      common::MutexLock lock(mu_);
      // Callers waiting for an answer, Flush and Stop wake the writer at once, also during an
      // outage (an admin change or outcome is a fresh attempt); otherwise it waits for the
      // flush interval, a full batch, or — store unavailable — the retry time.
      const Clock::time_point until =
          store_available() ? Clock::now() + std::chrono::microseconds(flush_us_) : retry_at;
      while (!WriterWakeLocked(stop_seen) && wake_writer_.WaitUntil(mu_, until)) {
      }
      flush_requested_ = false;
      if (backlog.empty()) {
        backlog.swap(pending_);
      } else {
        std::move(pending_.begin(), pending_.end(), std::back_inserter(backlog));
        pending_.clear();
      }
      std::move(pending_sticky_.begin(), pending_sticky_.end(), std::back_inserter(sticky));
      pending_sticky_.clear();
      std::move(pending_acked_.begin(), pending_acked_.end(), std::back_inserter(acked));
      pending_acked_.clear();
      backlog_ = static_cast<int64_t>(backlog.size());
      seq = enqueued_seq_;
      stop = stopping_;
    }
    if (stop && !stop_seen) {
      stop_seen = true;
      give_up = Clock::now() + std::chrono::microseconds(options_.stop_budget_us);
    }
    absl::Status s;
    if (!backlog.empty() || !sticky.empty() || !acked.empty()) {
      s = Drain(backlog, sticky, acked);
    } else if (!store_available()) {
      s = sink_.WriteBatch({}, {});  // a probe: nothing to write, but is the store back?
    }
    if (s.ok()) {
      MarkAvailable();
    } else {
      MarkUnavailable(s);
      retry_at = Clock::now() + std::chrono::microseconds(backoff_us_);
    }
    {
      common::MutexLock lock(mu_);
      backlog_ = static_cast<int64_t>(backlog.size());
      queued_.store(backlog_ + static_cast<int64_t>(pending_.size()), std::memory_order_relaxed);
      committed_seq_ = seq;
    }
    flushed_.NotifyAll();
    if (stop) {
      bool idle;
      {
        common::MutexLock lock(mu_);
        idle = pending_.empty() && pending_acked_.empty() && pending_sticky_.empty();
      }
      if (idle && backlog.empty() && sticky.empty()) return;
      if (Clock::now() >= give_up) {
        write_errors_.fetch_add(static_cast<int64_t>(backlog.size()), std::memory_order_relaxed);
        sticky_lost_.fetch_add(static_cast<int64_t>(sticky.size()), std::memory_order_relaxed);
        ABGATE_LOG(kError, "stopping with the event store unavailable (%s): %d exposures and %d sticky assignments lost",
                   std::string(s.message()), backlog.size(), sticky.size());
        common::MutexLock lock(mu_);
        backlog_ = 0;
        queued_.store(0, std::memory_order_relaxed);
        return;
      }
    }
  }
}

}  // namespace abgate::events

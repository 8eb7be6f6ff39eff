// Clock: the injectable source of wall time. Every implementation is thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace abgate::common {

// Wall-clock time as microseconds since the Unix epoch. Persisted timestamps use this unit.
using TimeUs = int64_t;

class Clock {
 public:
  virtual ~Clock() = default;
  // Current wall time in microseconds since the Unix epoch. Never blocks.
  virtual TimeUs NowUs() const = 0;
};

class SystemClock final : public Clock {
 public:
  TimeUs NowUs() const override {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  // A process-wide instance; SystemClock has no state, so sharing it is safe.
  static const SystemClock& Get() {
    static const SystemClock clock;
    return clock;
  }
};

// A clock that only moves when told to; for tests of time-based ramps.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(TimeUs now_us) : now_us_(now_us) {}
  TimeUs NowUs() const override { return now_us_.load(std::memory_order_relaxed); }
  void AdvanceUs(TimeUs delta_us) { now_us_.fetch_add(delta_us, std::memory_order_relaxed); }
  void SetUs(TimeUs now_us) { now_us_.store(now_us, std::memory_order_relaxed); }

 private:
  std::atomic<TimeUs> now_us_;
};

}  // namespace abgate::common

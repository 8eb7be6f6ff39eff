// ParallelFor: a fixed set of workers pulling numbered tasks from a shared counter. For
// CPU-bound batch work (the analysis reader); not for anything that blocks on the network.
// Reentrant; the task function runs on several threads at once and must be safe for that.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <thread>
#include <vector>

namespace abgate::common {

// One worker per core, at least 1 and at most `cap`.
inline int DefaultParallelism(int cap = 8) {
  return std::clamp(static_cast<int>(std::thread::hardware_concurrency()), 1, cap);
}

// Calls fn(worker, task) for every task in [0, tasks) on `workers` threads (the calling thread
// is worker 0), each taking the next task as it finishes one, so uneven tasks still balance.
// Tasks are handed out in increasing order. Returns when all have run. `fn` must not throw.
template <typename Fn>
void ParallelFor(int workers, size_t tasks, Fn&& fn) {
  std::atomic<size_t> next{0};
  auto run = [&](int worker) {
    for (size_t task; (task = next.fetch_add(1, std::memory_order_relaxed)) < tasks;) fn(worker, task);
  };
  workers = std::max(1, std::min<int>(workers, static_cast<int>(std::max<size_t>(tasks, 1))));
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(workers - 1));
  for (int w = 1; w < workers; ++w) threads.emplace_back(run, w);
  run(0);
  for (auto& t : threads) t.join();
}

}  // namespace abgate::common

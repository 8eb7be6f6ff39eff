// WorkerThread: one thread running posted tasks in order. For blocking work (SQL, file I/O)
// that must stay off the I/O threads, and for serialising admin changes. Thread-safe.
#pragma once

#include <deque>
#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "common/mutex.h"

namespace abgate::common {

class WorkerThread {
 public:
  WorkerThread() : thread_([this] { Run(); }) {}
  ~WorkerThread() { Stop(); }
  WorkerThread(const WorkerThread&) = delete;
  WorkerThread& operator=(const WorkerThread&) = delete;

  // Queues `task`; tasks run one at a time in posting order. Dropped after Stop().
  void Post(std::function<void()> task) {
    {
      MutexLock lock(mu_);
      if (stopping_) return;
      tasks_.push_back(std::move(task));
    }
    cv_.NotifyOne();
  }

  // Runs the tasks already queued, then joins.
  void Stop() {
    {
      MutexLock lock(mu_);
      stopping_ = true;
    }
    cv_.NotifyOne();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Run() {
    for (;;) {
      std::function<void()> task;
      {
        MutexLock lock(mu_);
        while (!stopping_ && tasks_.empty()) cv_.Wait(mu_);
        if (tasks_.empty()) return;
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }

  Mutex mu_;
  CondVar cv_;  // tasks_ or stopping_
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace abgate::common

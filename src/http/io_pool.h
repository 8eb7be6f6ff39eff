// IoPool: N single-threaded event loops, one thread each. A connection lives on one loop for
// its whole life, so per-connection and per-loop state (upstream connection pools) needs no
// locks. Start/Stop are called from one controlling thread; Post is thread-safe.
#pragma once

#include <functional>
#include <memory>

namespace abgate::http {

class IoPool {
 public:
  explicit IoPool(int threads);
  ~IoPool();  // stops and joins
  IoPool(const IoPool&) = delete;
  IoPool& operator=(const IoPool&) = delete;

  int size() const;
  // Starts the threads. Loops keep running (even with no work) until Stop.
  void Start();
  // Stops every loop and joins the threads; pending handlers are dropped.
  void Stop();
  // Runs `fn` on loop `worker`'s thread.
  void Post(int worker, std::function<void()> fn);

  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace abgate::http

// Service: an IoPool with one Server on it — the shell of a small HTTP service (the registry,
// the model server): Create binds, Start serves, Shutdown drains and stops. One controlling
// thread calls Start/Shutdown; the handler runs on the I/O threads.
#pragma once

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "http/io_pool.h"
#include "http/server.h"

namespace abgate::http {

class Service {
 public:
  static absl::StatusOr<std::unique_ptr<Service>> Create(int threads, ServerOptions options, Handler handler);
  ~Service() { Shutdown(); }
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  uint16_t port() const { return server_->port(); }
  void Start();
  // Stops accepting, lets requests in flight finish for up to `drain_us`, stops the loops.
  // Later calls do nothing.
  void Shutdown(int64_t drain_us = 5'000'000);

 private:
  explicit Service(int threads) : pool_(threads) {}

  IoPool pool_;
  std::unique_ptr<Server> server_;
  bool stopped_ = false;
};

}  // namespace abgate::http

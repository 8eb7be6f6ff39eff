// Server: an HTTP/1.1 listener on an IoPool (Boost.Beast inside server.cc only).
//
// Keep-alive, and a limit on every read: body size (413), header size (431), an idle timeout
// while waiting for a request and a read timeout once one has started (the connection is
// closed). Malformed requests get a 400 JSON error and the connection is closed after it.
// Shutdown drains: stop accepting, close idle connections, let in-flight requests finish.
// Thread-safe: Start/Shutdown from one controlling thread; handlers run on I/O threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "http/io_pool.h"
#include "http/message.h"

namespace abgate::http {

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;  // 0 = any free port; see Server::port()
  int64_t max_body_bytes = 1 << 20;
  int64_t max_header_bytes = 16 << 10;
  int64_t read_timeout_us = 10'000'000;
  int64_t idle_timeout_us = 60'000'000;
};

class Server {
 public:
  // Binds and listens (errors: address in use, bad address). Handler must be non-blocking.
  static absl::StatusOr<std::unique_ptr<Server>> Create(IoPool& pool, ServerOptions options,
                                                        Handler handler);
  ~Server();

  uint16_t port() const;
  // Begins accepting on the pool's loops.
  void Start();
  // Graceful drain: stops accepting, closes idle keep-alive connections, and waits up to
  // `timeout_us` for in-flight requests; then closes whatever remains. Blocks the caller.
  void Shutdown(int64_t timeout_us);
  // Connections currently open.
  int64_t open_connections() const;

  struct Impl;

 private:
  explicit Server(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace abgate::http

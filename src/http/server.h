// Server: an HTTP/1.1 listener on an IoPool (Boost.Beast inside server.cc only).
//
// Keep-alive, and a limit on every read: body size (413), header size (431), an idle timeout
// while waiting for a request, and a read timeout from the first byte of a request until its
// header and body have arrived (408, then the connection is closed). Malformed requests get a
// 400 JSON error and the connection is closed after it. An optional head handler sees each
// request once its header has arrived, before any of the body is read: it may answer at once
// (a 401 for a 200 MB upload without credentials), set that request's body limit, or stream the
// body into a BodySink. `Expect: 100-continue` is answered once the head is accepted.
//
// Connections are capped (`max_connections`). At the cap the server does what nginx does when
// it runs out of connections: it closes the longest-waiting idle connections (keep-alive ones,
// and fresh ones that have not sent a byte) to make room; when every connection is in a
// request, the new one gets a 503 and is closed. Running out of file descriptors (EMFILE,
// ENFILE) sheds idle connections too and backs off accepting (10 ms doubling to 1 s) instead of
// spinning; both conditions log one line when they start and one when they end.
// Shutdown drains: stop accepting, close idle connections, let in-flight requests finish.
// Thread-safe: Start/Shutdown from one controlling thread; handlers run on I/O threads.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "http/io_pool.h"
#include "http/message.h"

namespace abgate::http {

// What to do with a request whose header has arrived, before its body is read.
struct HeadDecision {
  std::optional<Response> reject;  // answer this now and close; the body is never read
  int64_t max_body_bytes = -1;     // this request's body limit; -1 = ServerOptions::max_body_bytes
  std::shared_ptr<BodySink> sink;  // stream the body here instead of into Request::body
  // Time for the rest of this request (its body) from now on; -1 = what is left of
  // ServerOptions::read_timeout_us (large uploads get more than a JSON call).
  int64_t read_timeout_us = -1;
};
// Sees the request with an empty body (string_views valid during the call only). Runs on the
// connection's I/O thread and must not block.
using HeadHandler = std::function<HeadDecision(const Request& head)>;

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;  // 0 = any free port; see Server::port()
  int64_t max_body_bytes = 1 << 20;
  int64_t max_header_bytes = 16 << 10;
  int64_t read_timeout_us = 10'000'000;  // from a request's first byte to its last
  int64_t idle_timeout_us = 60'000'000;  // waiting for a request
  // Open connections at most; 0 = half the open-file soft limit, at most 10000
  // (DefaultMaxConnections).
  int64_t max_connections = 0;
  HeadHandler head_handler;  // optional
};

// The default connection cap: half of RLIMIT_NOFILE's soft limit (the rest is left for upstream
// connections, stores and files), between 16 and 10000.
int64_t DefaultMaxConnections();

// Counters of one server since it started. Thread-safe snapshot.
struct ServerStats {
  int64_t open_connections = 0;
  int64_t max_connections = 0;
  int64_t evicted_idle = 0;   // idle connections closed to make room (cap or out of descriptors)
  int64_t refused = 0;        // connections answered 503 at the cap
  int64_t accept_errors = 0;  // failed accepts (out of descriptors)
  int64_t timeouts = 0;       // requests answered 408
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
  ServerStats stats() const;

  struct Impl;

 private:
  explicit Server(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace abgate::http

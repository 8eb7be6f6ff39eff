// Client: a pooled keep-alive HTTP/1.1 client for upstream model servers.
//
// Each IoPool loop has its own pool of idle connections per host:port, so a request never
// takes a lock; Send must be called on the loop `worker` it names (the connection's loop in a
// handler) and completes there. A request that fails on a reused connection before any
// response byte arrived is retried once on a fresh connection (the peer closed an idle
// keep-alive connection). https with ClientRequest::tls (OpenSSL, through Asio). Errors:
// DeadlineExceeded for connect or request timeouts, Unavailable for refused/reset connections,
// failed TLS handshakes (an untrusted certificate) and unparseable responses.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "http/io_pool.h"
#include "http/message.h"

namespace abgate::http {

struct ClientRequest {
  std::string method = "POST";
  bool tls = false;  // https: TLS with SNI, the certificate checked against `host`
  std::string host;
  uint16_t port = 80;
  std::string target = "/";
  std::string_view content_type = "application/json";  // a literal
  std::vector<Header> headers;
  std::string body;
  int64_t connect_timeout_us = 1'000'000;
  int64_t request_timeout_us = 5'000'000;  // from the first byte written to the last read
  uint64_t max_response_bytes = 64ull << 20;  // larger replies fail as Unavailable
};

struct ClientResponse {
  int status = 0;
  std::string content_type;  // filled for non-2xx replies only (kept for pass-through)
  std::string body;
};

using ClientCallback = absl::AnyInvocable<void(absl::StatusOr<ClientResponse>) &&>;

// How TLS (https) peers are checked: against the system's CAs (Debian: ca-certificates) plus
// `ca_file` when set (PEM; a private CA), unless `verify` is false.
struct TlsOptions {
  std::string ca_file;
  bool verify = true;
};

class Client {
 public:
  // `max_idle_per_host`: idle connections kept per scheme, host and port on each loop.
  Client(IoPool& pool, int max_idle_per_host, TlsOptions tls = {});
  ~Client();

  // Sends `request` on loop `worker`; `done` runs on that loop. Call from that loop's thread.
  void Send(int worker, ClientRequest request, ClientCallback done);

  // Connections opened so far (every loop, every host): a count that keeps growing under steady
  // load means the idle pool is too small for the requests in flight. Any thread.
  int64_t connects() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace abgate::http

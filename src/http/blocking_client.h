// BlockingClient: one HTTP/1.1 exchange at a time for tools and control loops (the controller,
// `abgate promote`, `abgate simulate`), on top of Client with a private one-thread IoPool.
// Thread-safe: calls from many threads share the pool and its keep-alive connections.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "http/client.h"

namespace abgate::http {

struct Url {
  bool tls = false;  // https
  std::string host;
  uint16_t port = 80;
  std::string prefix;  // path prefix without a trailing '/'
};
// Parses http[s]://host[:port][/prefix] (default ports 80 and 443).
absl::StatusOr<Url> ParseHttpUrl(std::string_view url);

class BlockingClient {
 public:
  explicit BlockingClient(int max_idle_per_host = 8, TlsOptions tls = {});
  ~BlockingClient();
  // `target` goes after base.prefix; `content_type` must be a literal (see ClientRequest).
  // Transport errors as in Client.
  absl::StatusOr<ClientResponse> Send(const Url& base, std::string method, std::string_view target,
                                      std::string_view content_type = "application/json", std::string body = "",
                                      std::vector<Header> headers = {}, int64_t timeout_us = 30'000'000,
                                      uint64_t max_response_bytes = 64ull << 20);

 private:
  std::unique_ptr<IoPool> pool_;
  std::unique_ptr<Client> client_;
};

}  // namespace abgate::http

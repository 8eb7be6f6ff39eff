#include "http/blocking_client.h"

#include <charconv>
#include <future>

#include "common/strings.h"

namespace abgate::http {

absl::StatusOr<Url> ParseHttpUrl(std::string_view url) {
  Url out;
  if (url.rfind("https://", 0) == 0) {
    out.tls = true;
    out.port = 443;
    url.remove_prefix(8);
  } else if (url.rfind("http://", 0) == 0) {
    url.remove_prefix(7);
  } else {
    return absl::InvalidArgumentError(StrCat("'", url, "' is not an http:// or https:// URL"));
  }
  const size_t slash = url.find('/');
  const std::string_view authority = url.substr(0, slash);
  if (slash != std::string_view::npos) out.prefix = std::string(url.substr(slash));
  while (!out.prefix.empty() && out.prefix.back() == '/') out.prefix.pop_back();
  const size_t colon = authority.rfind(':');
  out.host = std::string(authority.substr(0, colon));
  if (colon != std::string_view::npos) {
    const std::string_view p = authority.substr(colon + 1);
    int port = 0;
    const auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
    if (ec != std::errc() || ptr != p.data() + p.size() || port <= 0 || port > 65535) {
      return absl::InvalidArgumentError(StrCat("bad port in '", url, "'"));
    }
    out.port = static_cast<uint16_t>(port);
  }
  if (out.host.empty()) return absl::InvalidArgumentError(StrCat("no host in '", url, "'"));
  return out;
}

BlockingClient::BlockingClient(int max_idle_per_host, TlsOptions tls)
    : pool_(std::make_unique<IoPool>(1)), client_(std::make_unique<Client>(*pool_, max_idle_per_host, std::move(tls))) {
  pool_->Start();
}

BlockingClient::~BlockingClient() {
  pool_->Stop();
  client_.reset();
}

absl::StatusOr<ClientResponse> BlockingClient::Send(const Url& base, std::string method, std::string_view target,
                                                    std::string_view content_type, std::string body,
                                                    std::vector<Header> headers, int64_t timeout_us,
                                                    uint64_t max_response_bytes) {
  ClientRequest req;
  req.method = std::move(method);
  req.tls = base.tls;
  req.host = base.host;
  req.port = base.port;
  req.target = StrCat(base.prefix, target);
  req.content_type = content_type;
  req.body = std::move(body);
  req.headers = std::move(headers);
  req.request_timeout_us = timeout_us;
  req.max_response_bytes = max_response_bytes;
  req.connect_timeout_us = 5'000'000;
  auto promise = std::make_shared<std::promise<absl::StatusOr<ClientResponse>>>();
  auto future = promise->get_future();
  pool_->Post(0, [this, req = std::move(req), promise]() mutable {
    client_->Send(0, std::move(req), [promise](absl::StatusOr<ClientResponse> r) { promise->set_value(std::move(r)); });
  });
  return future.get();
}

}  // namespace abgate::http

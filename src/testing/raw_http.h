// Test helpers: blocking loopback HTTP over raw POSIX sockets, so tests can send exactly the
// bytes they want (malformed, truncated, oversized) and see exactly what comes back.
// Not thread-safe per connection; use one RawConnection per thread.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace abgate::testing {

struct RawResponse {
  int status = 0;  // 0 when the connection closed or timed out before a status line
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  bool closed = false;  // the server closed the connection after this response
};

class RawConnection {
 public:
  explicit RawConnection(uint16_t port, int timeout_ms = 5000);
  ~RawConnection();
  bool ok() const { return fd_ >= 0; }
  bool Send(std::string_view bytes);
  // Reads one response (Content-Length framed, or until close).
  RawResponse Read();
  // True when the peer has closed or reset the connection within `timeout_ms`.
  bool PeerClosed(int timeout_ms);

 private:
  int fd_ = -1;
  std::string buffer_;
};

// A loopback port nothing listens on right now (bound, read, released; another process could
// take it before the caller does, which tests accept).
uint16_t FreeLoopbackPort();
// True when something accepts connections on 127.0.0.1:`port` now.
bool AcceptsConnections(uint16_t port);

// One request on a fresh connection.
RawResponse RawRequest(uint16_t port, std::string_view method, std::string_view target,
                       std::string_view body = "", std::string_view content_type = "application/json",
                       std::string_view extra_headers = "");

}  // namespace abgate::testing

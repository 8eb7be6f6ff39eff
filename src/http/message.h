// Transport-neutral HTTP request and response values, so that only src/http/*.cc include
// Boost.Beast. Plain structs: not thread-safe, move them between threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"

namespace abgate::http {

// A response or upstream-request header. Names are always string literals in this code base,
// hence a view (no allocation); values are owned.
struct Header {
  std::string_view name;
  std::string value;
};

// ASCII case-insensitive equality, for header names.
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

// Whether `s` holds a CR or LF (a header value that would inject headers). One pass: the
// standard find_first_of("\r\n") calls memchr once per byte of `s`.
inline bool HasLineBreak(std::string_view s) {
  for (const char c : s) {
    if (c == '\r' || c == '\n') return true;
  }
  return false;
}

// Where a streamed request body goes as it arrives, instead of into Request::body (an artifact
// upload written to a temporary file). Called on the connection's I/O thread, in order; a
// non-OK status stops the read and is answered (StatusResponse) before the connection closes.
class BodySink {
 public:
  virtual ~BodySink() = default;
  virtual absl::Status Write(std::string_view bytes) = 0;
};

// A request as the server hands it to a handler. The string_views point into the server's
// parser and are valid only during the handler call; copy what outlives it. The body is owned
// and may be moved out.
struct Request {
  std::string_view method;  // "GET", "POST", ...
  std::string_view target;  // as sent: path plus optional ?query
  std::string_view path;    // target before '?'
  std::string_view query;   // target after '?', without it
  std::vector<std::pair<std::string_view, std::string_view>> headers;
  std::string body;
  // The sink the server's head handler chose for this body (then `body` is empty), else null.
  std::shared_ptr<BodySink> body_sink;
  std::string_view remote_addr;
  int worker = 0;      // index of the I/O thread serving the connection
  std::vector<std::pair<std::string, std::string>> path_params;  // filled by Router

  // First header with this name (case-insensitive), or "" when absent.
  std::string_view FindHeader(std::string_view name) const;
  std::string_view PathParam(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::string content_type;  // empty means application/json (saves an allocation per reply)
  std::vector<Header> headers;
  std::string body;
  bool close = false;  // ask the server to close the connection after this response

  static Response Json(int status, std::string body) {
    Response r;
    r.status = status;
    r.body = std::move(body);
    return r;
  }
  static Response Text(int status, std::string body, std::string content_type = "text/plain; charset=utf-8") {
    Response r;
    r.status = status;
    r.content_type = std::move(content_type);
    r.body = std::move(body);
    return r;
  }
};

// {"error_code": code, "message": message} with the given status.
Response ErrorResponse(int status, std::string_view error_code, std::string_view message);

// Completes a request. Call exactly once, from any thread; the server hops back to the
// connection's I/O thread to write.
using Respond = absl::AnyInvocable<void(Response) &&>;
// Handles one request. Must not block: post blocking work elsewhere and respond later.
using Handler = absl::AnyInvocable<void(Request&, Respond)>;

}  // namespace abgate::http

#include "http/client.h"

#include <array>
#include <atomic>
#include <chrono>
#include <optional>
#include <unordered_map>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "common/strings.h"
#include "http/internal/field_arena.h"
#include "http/internal/io_pool_impl.h"

namespace abgate::http {

namespace bhttp = boost::beast::http;

namespace {


namespace ssl = asio::ssl;

// A reply's header fields come from its exchange's arena (field_arena.h).
constexpr size_t kReplyFieldBytes = 1024;
using ReplyFieldAllocator = internal::FieldAllocator<char, kReplyFieldBytes>;
using ReplyParser = bhttp::response_parser<bhttp::string_body, ReplyFieldAllocator>;

// A TCP connection, wrapped in TLS once the handshake starts for an https request.
struct Connection {
  explicit Connection(asio::io_context& ctx) : plain(std::make_unique<Stream>(ctx.get_executor())) {}
  Stream& tcp() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
  // Runs fn(stream) on the stream the request and response go through.
  template <typename Fn>
  void With(Fn&& fn) {
    if (tls) {
      fn(*tls);
    } else {
      fn(*plain);
    }
  }
  std::unique_ptr<Stream> plain;                  // until TLS takes the TCP stream over
  std::unique_ptr<beast::ssl_stream<Stream>> tls;
  beast::flat_buffer buffer;
};

// Idle connections of one loop. Only touched on that loop's thread.
struct LoopPool {
  std::unordered_map<std::string, std::vector<std::unique_ptr<Connection>>> idle;
};

}  // namespace

struct Client::Impl {
  IoPool* pool;
  int max_idle_per_host;
  std::vector<LoopPool> loops;
  ssl::context tls{ssl::context::tls_client};
  absl::Status tls_status;  // why https requests cannot be made (a CA file that does not load)
  std::atomic<int64_t> connects{0};
};

namespace {

class Exchange : public std::enable_shared_from_this<Exchange> {
 public:
  Exchange(Client::Impl* client, int worker, ClientRequest req, ClientCallback done)
      : client_(client), worker_(worker), req_(std::move(req)), done_(std::move(done)),
        authority_(StrCat(req_.host, ":", req_.port)), key_(StrCat(req_.tls ? "https://" : "", authority_)) {
    // Serialised by hand (see Session::Send in server.cc for why); values with CR/LF dropped.
    head_.reserve(256);
    StrAppend(&head_, req_.method, " ", req_.target, " HTTP/1.1\r\nHost: ", authority_, "\r\n");
    if (!req_.content_type.empty()) StrAppend(&head_, "Content-Type: ", req_.content_type, "\r\n");
    for (const auto& h : req_.headers) {
      if (HasLineBreak(h.value)) continue;
      StrAppend(&head_, h.name, ": ", h.value, "\r\n");
    }
    StrAppend(&head_, "Content-Length: ", req_.body.size(), "\r\n\r\n");
  }

  void Start() {
    if (req_.tls && !client_->tls_status.ok()) return Fail(client_->tls_status);
    auto& idle = client_->loops[worker_].idle[key_];
    if (!idle.empty()) {
      conn_ = std::move(idle.back());
      idle.pop_back();
      reused_ = true;
      return Write();
    }
    Connect();
  }

 private:
  asio::io_context& Context() { return *client_->pool->impl().contexts[worker_]; }

  void Connect() {
    reused_ = false;
    client_->connects.fetch_add(1, std::memory_order_relaxed);
    conn_ = std::make_unique<Connection>(Context());
    beast::error_code ec;
    const auto address = asio::ip::make_address(req_.host, ec);
    conn_->tcp().expires_after(std::chrono::microseconds(req_.connect_timeout_us));
    if (!ec) {
      conn_->tcp().async_connect(tcp::endpoint(address, req_.port),
                                  [self = shared_from_this()](beast::error_code ec) { self->OnConnect(ec); });
      return;
    }
    resolver_.emplace(Context());
    resolver_->async_resolve(req_.host, std::to_string(req_.port),
                             [self = shared_from_this()](beast::error_code ec, tcp::resolver::results_type results) {
                               if (ec) return self->Fail(absl::UnavailableError(
                                   StrCat("cannot resolve ", self->req_.host, ": ", ec.message())));
                               self->conn_->tcp().async_connect(
                                   results, [self](beast::error_code ec, const tcp::endpoint&) { self->OnConnect(ec); });
                             });
  }

  void OnConnect(beast::error_code ec) {
    if (ec == beast::error::timeout) {
      return Fail(absl::DeadlineExceededError(StrCat("connect to ", key_, " timed out")));
    }
    if (ec) return Fail(absl::UnavailableError(StrCat("connect to ", key_, ": ", ec.message())));
    conn_->tcp().socket().set_option(tcp::no_delay(true), ec);
    if (!req_.tls) return Write();
    conn_->tls = std::make_unique<beast::ssl_stream<Stream>>(std::move(*conn_->plain), client_->tls);
    conn_->plain.reset();
    // SNI, and the certificate must name the host (an IP address is checked as one).
    if (!SSL_set_tlsext_host_name(conn_->tls->native_handle(), req_.host.c_str())) {
      return Fail(absl::UnavailableError(StrCat("TLS to ", key_, ": cannot set the server name")));
    }
    conn_->tls->set_verify_callback(ssl::host_name_verification(req_.host));
    conn_->tls->async_handshake(ssl::stream_base::client, [self = shared_from_this()](beast::error_code ec) {
      if (ec == beast::error::timeout) {
        return self->Fail(absl::DeadlineExceededError(StrCat("TLS handshake with ", self->key_, " timed out")));
      }
      if (ec) return self->Fail(absl::UnavailableError(StrCat("TLS handshake with ", self->key_, ": ", ec.message())));
      self->Write();
    });
  }

  void Write() {
    conn_->tcp().expires_after(std::chrono::microseconds(req_.request_timeout_us));
    const std::array<asio::const_buffer, 2> buffers = {asio::buffer(head_), asio::buffer(req_.body)};
    conn_->With([&](auto& stream) {
      asio::async_write(stream, buffers, [self = shared_from_this()](beast::error_code ec, size_t) {
        if (ec) return self->OnTransportError(ec, "write");
        self->Read();
      });
    });
  }

  void Read() {
    parser_.reset();  // a retry's first parser gives its fields back first
    field_arena_.Reset();
    parser_.emplace(std::piecewise_construct, std::make_tuple(), std::make_tuple(ReplyFieldAllocator(field_arena_)));
    parser_->body_limit(req_.max_response_bytes);
    conn_->With([&](auto& stream) {
      bhttp::async_read(stream, conn_->buffer, *parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
        if (ec) return self->OnTransportError(ec, "read");
        self->OnResponse();
      });
    });
  }

  void OnTransportError(beast::error_code ec, const char* what) {
    if (ec == beast::error::timeout) {
      return Fail(absl::DeadlineExceededError(
          StrCat("upstream ", key_, " did not answer within ", req_.request_timeout_us / 1000, " ms")));
    }
    // A pooled connection the peer closed while idle: retry once on a fresh one.
    const bool nothing_received = !parser_ || !parser_->got_some();
    if (reused_ && !retried_ && nothing_received &&
        (ec == bhttp::error::end_of_stream || ec == asio::error::eof || ec == ssl::error::stream_truncated ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe)) {
      retried_ = true;
      conn_.reset();
      return Connect();
    }
    Fail(absl::UnavailableError(StrCat("upstream ", key_, " ", what, " failed: ", ec.message())));
  }

  void OnResponse() {
    auto& res = parser_->get();
    ClientResponse out;
    out.status = static_cast<int>(res.result_int());
    if (out.status >= 300) {
      const auto ct = res[bhttp::field::content_type];
      out.content_type.assign(ct.data(), ct.size());
    }
    out.body = std::move(res.body());
    if (res.keep_alive() && !parser_->need_eof()) {
      auto& idle = client_->loops[worker_].idle[key_];
      if (static_cast<int>(idle.size()) < client_->max_idle_per_host) {
        conn_->tcp().expires_never();
        idle.push_back(std::move(conn_));
      }
    }
    conn_.reset();
    std::move(done_)(std::move(out));
  }

  void Fail(absl::Status status) {
    conn_.reset();
    std::move(done_)(std::move(status));
  }

  Client::Impl* client_;
  int worker_;
  ClientRequest req_;
  ClientCallback done_;
  std::string authority_;  // host:port
  std::string key_;        // the idle pool's key: scheme and authority
  std::string head_;
  std::unique_ptr<Connection> conn_;
  internal::FieldArena<kReplyFieldBytes> field_arena_;  // before parser_: outlives it
  std::optional<ReplyParser> parser_;
  std::optional<tcp::resolver> resolver_;
  bool reused_ = false;
  bool retried_ = false;
};

}  // namespace

Client::Client(IoPool& pool, int max_idle_per_host, TlsOptions tls) : impl_(std::make_unique<Impl>()) {
  impl_->pool = &pool;
  impl_->max_idle_per_host = max_idle_per_host;
  impl_->loops.resize(pool.size());
  beast::error_code ec;
  impl_->tls.set_default_verify_paths(ec);
  if (!tls.ca_file.empty()) {
    impl_->tls.load_verify_file(tls.ca_file, ec);
    if (ec) {
      impl_->tls_status = absl::FailedPreconditionError(StrCat("cannot load CA file ", tls.ca_file, ": ", ec.message()));
    }
  }
  impl_->tls.set_verify_mode(tls.verify ? ssl::verify_peer : ssl::verify_none);
}

Client::~Client() = default;

int64_t Client::connects() const { return impl_->connects.load(std::memory_order_relaxed); }

void Client::Send(int worker, ClientRequest request, ClientCallback done) {
  std::make_shared<Exchange>(impl_.get(), worker, std::move(request), std::move(done))->Start();
}

}  // namespace abgate::http

// The HTTP server: IoPool loops, an acceptor, and one Session per connection, after the shape
// of Boost.Beast's current advanced_server.cpp (one operation of each kind in flight, a timeout
// on every read, the response kept alive until its write completes).
#include "http/server.h"

#include <atomic>
#include <array>
#include <chrono>
#include <future>
#include <list>
#include <mutex>
#include <optional>
#include <thread>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "common/logging.h"
#include "common/strings.h"
#include "http/internal/io_pool_impl.h"

namespace abgate::http {

namespace bhttp = boost::beast::http;

// ---------------------------------------------------------------------------------- IoPool

IoPool::IoPool(int threads) : impl_(std::make_unique<Impl>()) {
  for (int i = 0; i < threads; ++i) {
    impl_->contexts.push_back(std::make_unique<asio::io_context>(1));
    impl_->guards.push_back(asio::make_work_guard(*impl_->contexts.back()));
  }
}

IoPool::~IoPool() { Stop(); }

int IoPool::size() const { return static_cast<int>(impl_->contexts.size()); }

void IoPool::Start() {
  for (auto& ctx : impl_->contexts) {
    impl_->threads.emplace_back([c = ctx.get()] { c->run(); });
  }
}

void IoPool::Stop() {
  for (auto& g : impl_->guards) g.reset();
  for (auto& ctx : impl_->contexts) ctx->stop();
  for (auto& t : impl_->threads) {
    if (t.joinable()) t.join();
  }
  impl_->threads.clear();
}

void IoPool::Post(int worker, std::function<void()> fn) {
  asio::post(*impl_->contexts[worker % impl_->contexts.size()], std::move(fn));
}

// ---------------------------------------------------------------------------------- Server

namespace {
std::string_view Sv(boost::core::string_view s) { return {s.data(), s.size()}; }
}  // namespace

class Session;

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
  IoPool* pool = nullptr;
  ServerOptions options;
  Handler handler;
  std::optional<tcp::acceptor> acceptor;
  uint16_t port = 0;
  std::atomic<int> next_worker{0};
  std::atomic<bool> draining{false};
  std::atomic<int64_t> open{0};
  std::mutex sessions_mu;
  std::list<std::weak_ptr<Session>> sessions;  // guarded by sessions_mu

  void Accept();
  asio::io_context& Context(int worker) { return *pool->impl().contexts[worker]; }
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Socket&& socket, std::shared_ptr<Server::Impl> server, int worker)
      : stream_(std::move(socket)), read_timer_(stream_.get_executor()), server_(std::move(server)), worker_(worker) {
    beast::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = StrCat(ep.address().to_string(), ":", ep.port());
  }

  ~Session() {
    std::lock_guard lock(server_->sessions_mu);
    server_->sessions.erase(self_it_);
    server_->open.fetch_sub(1);
  }

  void Register() {
    std::lock_guard lock(server_->sessions_mu);
    server_->sessions.push_front(weak_from_this());
    self_it_ = server_->sessions.begin();
  }

  void Start() { DoRead(); }
  Executor executor() { return stream_.get_executor(); }

  // On the session's loop: stop after the current request; close now if idle.
  void Drain() {
    draining_ = true;
    if (state_ == State::kIdle) Close();
  }

  void Close() {
    if (state_ == State::kClosed) return;
    state_ = State::kClosed;
    read_timer_.cancel();
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
  }

 private:
  enum class State { kIdle, kReading, kHandling, kWriting, kClosed };

  void DoRead() {
    if (draining_ && buffer_.size() == 0) return Close();
    parser_.emplace();
    parser_->body_limit(server_->options.max_body_bytes);
    parser_->header_limit(static_cast<uint32_t>(server_->options.max_header_bytes));
    state_ = State::kIdle;
    stream_.expires_after(std::chrono::microseconds(server_->options.idle_timeout_us));
    bhttp::async_read_some(stream_, buffer_, *parser_,
                           [self = shared_from_this()](beast::error_code ec, size_t) {
                             self->OnFirstRead(ec);
                           });
  }

  void OnFirstRead(beast::error_code ec) {
    if (ec) return OnReadError(ec);
    if (parser_->is_done()) return OnRequest();
    // The rest of the request must arrive within read_timeout. A private timer cancels the read
    // (tcp_stream's own expiry would close the socket), so the client still gets a 408.
    state_ = State::kReading;
    stream_.expires_never();
    read_timer_.expires_after(std::chrono::microseconds(server_->options.read_timeout_us));
    read_timer_.async_wait([weak = weak_from_this()](beast::error_code ec) {
      auto self = weak.lock();
      if (ec || !self || self->state_ != State::kReading) return;
      self->read_timed_out_ = true;
      self->stream_.socket().cancel(ec);
    });
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        self->read_timer_.cancel();
                        if (ec) return self->OnReadError(ec);
                        self->OnRequest();
                      });
  }

  void OnReadError(beast::error_code ec) {
    if (state_ == State::kClosed) return;
    if (read_timed_out_) {
      return WriteAndClose(ErrorResponse(408, "REQUEST_TIMEOUT", "the request did not arrive in time"));
    }
    if (ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset) {
      return Close();
    }
    if (ec == beast::error::timeout) return Close();  // idle keep-alive connection
    if (ec == bhttp::error::body_limit) {
      return WriteAndClose(ErrorResponse(
          413, "PAYLOAD_TOO_LARGE",
          StrCat("request body exceeds ", server_->options.max_body_bytes, " bytes")));
    }
    if (ec == bhttp::error::header_limit) {
      return WriteAndClose(ErrorResponse(
          431, "REQUEST_HEADER_FIELDS_TOO_LARGE",
          StrCat("request headers exceed ", server_->options.max_header_bytes, " bytes")));
    }
    if (&ec.category() == &bhttp::make_error_code(bhttp::error::bad_target).category()) {
      return WriteAndClose(ErrorResponse(400, "BAD_REQUEST", StrCat("malformed HTTP request: ", ec.message())));
    }
    ABGATE_LOG(kDebug, "read from %s failed: %s", remote_, ec.message());
    Close();
  }

  void OnRequest() {
    auto& msg = parser_->get();
    Request req;
    req.method = Sv(msg.method_string());
    req.target = Sv(msg.target());
    const size_t q = req.target.find('?');
    req.path = req.target.substr(0, q);
    if (q != std::string_view::npos) req.query = req.target.substr(q + 1);
    req.headers.reserve(8);
    for (const auto& field : msg) req.headers.emplace_back(Sv(field.name_string()), Sv(field.value()));
    req.body = std::move(msg.body());
    req.remote_addr = remote_;
    req.worker = worker_;
    keep_alive_ = msg.keep_alive();
    http10_ = msg.version() == 10;
    state_ = State::kHandling;
    stream_.expires_never();  // the handler bounds its own work (upstream timeouts)
    server_->handler(req, Respond([self = shared_from_this()](Response r) mutable {
      auto ex = self->stream_.get_executor();
      asio::dispatch(ex, [self = std::move(self), r = std::move(r)]() mutable {
        self->Write(std::move(r));
      });
    }));
  }

  void Write(Response r) {
    if (state_ == State::kClosed) return;
    const bool keep = keep_alive_ && !r.close && !draining_;
    Send(std::move(r), keep);
  }

  void WriteAndClose(Response r) { Send(std::move(r), false); }

  // Writes the status line and headers by hand into one buffer and the body as a second one
  // (one gathered write). Beast's generic serializer cost more than the rest of the request
  // path in profiles. Header values containing CR or LF are dropped (no header injection).
  void Send(Response r, bool keep_alive) {
    state_ = State::kWriting;
    head_.clear();
    StrAppend(&head_, "HTTP/1.1 ", r.status, " ", Sv(bhttp::obsolete_reason(static_cast<bhttp::status>(r.status))),
              "\r\nContent-Type: ", r.content_type.empty() ? std::string_view("application/json") : std::string_view(r.content_type),
              "\r\nContent-Length: ", r.body.size(), "\r\n");
    for (const auto& h : r.headers) {
      if (h.value.find_first_of("\r\n") != std::string::npos || h.name.find_first_of("\r\n: ") != std::string_view::npos) continue;
      StrAppend(&head_, h.name, ": ", h.value, "\r\n");
    }
    if (!keep_alive) {
      head_ += "Connection: close\r\n";
    } else if (http10_) {
      head_ += "Connection: keep-alive\r\n";
    }
    head_ += "\r\n";
    body_ = std::move(r.body);
    stream_.expires_after(std::chrono::microseconds(server_->options.read_timeout_us));
    const std::array<asio::const_buffer, 2> buffers = {asio::buffer(head_), asio::buffer(body_)};
    asio::async_write(stream_, buffers, [self = shared_from_this(), keep_alive](beast::error_code ec, size_t) {
      if (ec) return self->Close();
      if (keep_alive) return self->DoRead();
      self->LingerClose();
    });
  }

  // Half-close, then discard what the client still sends (up to a bound) so the kernel does
  // not answer unread data with a reset that could destroy the response in flight.
  void LingerClose() {
    state_ = State::kWriting;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.expires_after(std::chrono::seconds(1));
    DiscardSome();
  }

  void DiscardSome() {
    if (discarded_ > (4 << 20)) return Close();
    stream_.async_read_some(asio::buffer(scratch_), [self = shared_from_this()](beast::error_code ec, size_t n) {
      self->discarded_ += n;
      if (ec) return self->Close();
      self->DiscardSome();
    });
  }

  Stream stream_;
  Timer read_timer_;
  bool read_timed_out_ = false;
  std::shared_ptr<Server::Impl> server_;
  int worker_;
  std::string remote_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::string head_;  // response status line and headers in flight
  std::string body_;  // response body in flight
  bool keep_alive_ = false;
  bool http10_ = false;
  bool draining_ = false;
  State state_ = State::kIdle;
  std::list<std::weak_ptr<Session>>::iterator self_it_;
  char scratch_[4096];
  size_t discarded_ = 0;
};

void Server::Impl::Accept() {
  const int worker = next_worker.fetch_add(1) % pool->size();
  auto socket = std::make_shared<Socket>(Context(worker).get_executor());
  acceptor->async_accept(*socket, [self = shared_from_this(), worker, socket](beast::error_code ec) {
    if (ec == asio::error::operation_aborted || !self->acceptor->is_open()) return;
    if (!ec && !self->draining) {
      socket->set_option(tcp::no_delay(true), ec);
      self->open.fetch_add(1);
      auto session = std::make_shared<Session>(std::move(*socket), self, worker);
      session->Register();
      asio::dispatch(self->Context(worker), [session] { session->Start(); });
    } else if (ec) {
      ABGATE_LOG(kWarning, "accept failed: %s", ec.message());
      if (ec == asio::error::no_descriptors) {
        // Out of file descriptors: back off briefly instead of spinning.
        auto timer = std::make_shared<asio::steady_timer>(self->acceptor->get_executor(), std::chrono::milliseconds(50));
        timer->async_wait([self, timer](beast::error_code) { self->Accept(); });
        return;
      }
    }
    self->Accept();
  });
}

Server::Server(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() = default;

absl::StatusOr<std::unique_ptr<Server>> Server::Create(IoPool& pool, ServerOptions options, Handler handler) {
  auto impl = std::make_shared<Impl>();
  impl->pool = &pool;
  impl->options = options;
  impl->handler = std::move(handler);
  beast::error_code ec;
  const auto address = asio::ip::make_address(options.host, ec);
  if (ec) return absl::InvalidArgumentError(StrCat("bad listen address '", options.host, "': ", ec.message()));
  const tcp::endpoint endpoint(address, options.port);
  impl->acceptor.emplace(impl->Context(0));
  impl->acceptor->open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor->bind(endpoint, ec);
  if (!ec) impl->acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(StrCat("cannot listen on ", options.host, ":", options.port, ": ", ec.message()));
  }
  impl->port = impl->acceptor->local_endpoint().port();
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

uint16_t Server::port() const { return impl_->port; }

int64_t Server::open_connections() const { return impl_->open.load(); }

void Server::Start() {
  asio::post(impl_->acceptor->get_executor(), [impl = impl_] { impl->Accept(); });
}

void Server::Shutdown(int64_t timeout_us) {
  if (impl_->draining.exchange(true)) return;
  auto closed = std::make_shared<std::promise<void>>();
  asio::post(impl_->acceptor->get_executor(), [impl = impl_, closed] {
    beast::error_code ec;
    impl->acceptor->close(ec);
    closed->set_value();
  });
  // Bounded: if the loops are already stopped there is nothing left to drain.
  if (closed->get_future().wait_for(std::chrono::seconds(5)) != std::future_status::ready) return;

  auto post_all = [this](void (Session::*fn)()) {
    std::vector<std::shared_ptr<Session>> live;
    {
      std::lock_guard lock(impl_->sessions_mu);
      for (auto& w : impl_->sessions) {
        if (auto s = w.lock()) live.push_back(std::move(s));
      }
    }
    for (auto& s : live) asio::post(s->executor(), [s, fn] { ((*s).*fn)(); });
  };
  auto wait_until_closed = [this](int64_t budget_us) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(budget_us);
    while (impl_->open.load() > 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  };
  post_all(&Session::Drain);
  wait_until_closed(timeout_us);
  if (impl_->open.load() > 0) {
    ABGATE_LOG(kWarning, "drain timeout: closing %d connections with requests in flight", impl_->open.load());
    post_all(&Session::Close);
    wait_until_closed(1'000'000);
  }
}

}  // namespace abgate::http

// The HTTP server: IoPool loops, an acceptor, and one Session per connection, after the shape
// of Boost.Beast's current advanced_server.cpp (one operation of each kind in flight, a timeout
// on every read, the response kept alive until its write completes).
#include "http/server.h"

#include <atomic>
#include <array>
#include <chrono>
#include <future>
#include <list>
#include <optional>
#include <thread>

#include <sys/resource.h>

#include <algorithm>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "absl/base/thread_annotations.h"
#include "common/logging.h"
#include "common/mutex.h"
#include "common/strings.h"
#include "http/internal/field_arena.h"
#include "http/internal/io_pool_impl.h"
#include "http/status_to_http.h"

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

// A request body: kept in memory, or written to the head handler's sink as it arrives (so a
// 200 MB upload never sits in RAM). Beast's Body concept, like string_body plus the sink.
struct RequestBody {
  struct value_type {
    std::string text;
    std::shared_ptr<BodySink> sink;
    absl::Status sink_status;  // the sink's error that stopped the read
  };
  class reader {
   public:
    template <bool isRequest, class Fields>
    reader(bhttp::header<isRequest, Fields>&, value_type& body) : body_(body) {}
    void init(const boost::optional<uint64_t>& length, beast::error_code& ec) {
      // The parser has already checked the length against this request's body limit.
      if (length && !body_.sink) body_.text.reserve(static_cast<size_t>(*length));
      ec = {};
    }
    template <class ConstBufferSequence>
    size_t put(const ConstBufferSequence& buffers, beast::error_code& ec) {
      ec = {};
      size_t n = 0;
      for (const auto b : beast::buffers_range_ref(buffers)) {
        const std::string_view bytes(static_cast<const char*>(b.data()), b.size());
        if (body_.sink) {
          body_.sink_status = body_.sink->Write(bytes);
          if (!body_.sink_status.ok()) {
            ec = beast::errc::make_error_code(beast::errc::io_error);
            return n;
          }
        } else {
          body_.text.append(bytes);
        }
        n += bytes.size();
      }
      return n;
    }
    void finish(beast::error_code& ec) { ec = {}; }

   private:
    value_type& body_;
  };
};

// A request's header fields come from its connection's arena (field_arena.h): enough for a
// typical client's headers; more fall back to the heap.
constexpr size_t kRequestFieldBytes = 768;
using RequestFieldAllocator = internal::FieldAllocator<char, kRequestFieldBytes>;
using RequestParser = bhttp::request_parser<RequestBody, RequestFieldAllocator>;
using RequestMessage = RequestParser::value_type;

}  // namespace

int64_t DefaultMaxConnections() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return 10000;
  return std::clamp<int64_t>(static_cast<int64_t>(limit.rlim_cur) / 2, 16, 10000);
}

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
  std::atomic<int64_t> evicted{0};
  std::atomic<int64_t> evicting{0};  // idle sessions asked to close that have not gone yet
  std::atomic<int64_t> refused{0};
  std::atomic<int64_t> accept_errors{0};
  std::atomic<int64_t> timeouts{0};
  common::Mutex sessions_mu;
  std::list<std::weak_ptr<Session>> sessions ABSL_GUARDED_BY(sessions_mu);  // newest first
  // Touched only by the accept handler, which runs on the acceptor's loop alone.
  bool at_cap = false;         // logged "connection limit reached", not yet "below" again
  bool out_of_fds = false;     // logged "out of file descriptors", not yet recovered
  int64_t failed_accepts = 0;  // since out_of_fds began
  int64_t backoff_ms = 0;

  void Accept();
  void OnAccepted(std::shared_ptr<Socket> socket, int worker);
  void OnAcceptError(beast::error_code ec);
  // Posts a close to up to `n` idle connections, oldest first; returns how many were asked.
  int EvictIdle(int n);
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
    if (idle_.load() == kClaimed) server_->evicting.fetch_sub(1);
    common::MutexLock lock(server_->sessions_mu);
    server_->sessions.erase(self_it_);
    server_->open.fetch_sub(1);
  }

  void Register() {
    common::MutexLock lock(server_->sessions_mu);
    server_->sessions.push_front(weak_from_this());
    self_it_ = server_->sessions.begin();
  }

  void Start() {
    if (state_ != State::kClosed) DoRead();  // evicted before it started
  }
  Executor executor() { return stream_.get_executor(); }
  // From any thread: true once for a session that waits for a request and has not received a
  // byte of one (it is then no longer counted idle, so two evictions never pick the same one).
  // A session counts as idle from its creation: a connection that has sent nothing yet is what
  // nginx reuses first, too.
  bool ClaimIdle() {
    int expected = kIdleNow;
    return idle_.compare_exchange_strong(expected, kClaimed);
  }

  // On the session's loop: stop after the current request; close now if idle.
  void Drain() {
    draining_ = true;
    if (state_ == State::kIdle) Close();
  }

  // On the session's loop: closes the connection if it is still idle (room for a new one).
  void Evict() {
    if (state_ != State::kIdle || buffer_.size() != 0) {
      // A request started meanwhile: it stays, and no longer counts as leaving.
      idle_.store(kBusy);
      server_->evicting.fetch_sub(1);
      return;
    }
    server_->evicted.fetch_add(1, std::memory_order_relaxed);
    // Abortive close (RST): nothing is in flight on an idle connection, and under a flood a
    // graceful close would leave one TIME_WAIT per eviction holding the client's port.
    beast::error_code ec;
    stream_.socket().set_option(asio::socket_base::linger(true, 0), ec);
    state_ = State::kClosed;  // idle_ stays kClaimed: the destructor settles `evicting`
    read_timer_.cancel();
    stream_.socket().close(ec);
  }

  // On the session's loop: the server is at its connection cap with no idle connection to
  // close; this one gets a 503 and is closed.
  void Refuse() {
    state_ = State::kReading;
    WriteAndClose(ErrorResponse(503, "TOO_MANY_CONNECTIONS",
                                StrCat("the server is at its limit of ", server_->options.max_connections,
                                       " connections, all busy; retry later")));
  }

  void NotIdle() { idle_.store(kBusy); }

  void Close() {
    if (state_ == State::kClosed) return;
    state_ = State::kClosed;
    SetIdle(false);
    read_timer_.cancel();
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
  }

 private:
  enum class State { kIdle, kReading, kHandling, kWriting, kClosed };
  static constexpr size_t kReadSize = 64 << 10;
  static constexpr size_t kFirstReadSize = 4 << 10;

  void DoRead() {
    if (draining_ && buffer_.size() == 0) return Close();
    parser_.reset();  // the previous request's fields go back to the arena
    field_arena_.Reset();
    parser_.emplace(std::piecewise_construct, std::make_tuple(), std::make_tuple(RequestFieldAllocator(field_arena_)));
    parser_->header_limit(static_cast<uint32_t>(server_->options.max_header_bytes));
    // With a head handler the limit is decided per request once the header is in (OnHeader);
    // until then the header's Content-Length must not be refused by the default.
    if (server_->options.head_handler) {
      parser_->body_limit(boost::none);
    } else {
      parser_->body_limit(server_->options.max_body_bytes);
    }
    // The parser refuses a Content-Length over the limit while it parses the header, before
    // OnHeader: the 413 must name this limit (it said "exceeds 0 bytes").
    body_limit_ = server_->options.max_body_bytes;
    if (buffer_.size() > 0) return BeginRequest();  // pipelined: the next request has started
    state_ = State::kIdle;
    SetIdle(true);
    stream_.expires_after(std::chrono::microseconds(server_->options.idle_timeout_us));
    // An idle connection holds a small buffer (memory grows with the work, not with the
    // connections): a request's first read takes up to kFirstReadSize, enough for a JSON call;
    // the rest of a large body continues in kReadSize reads (ReadMore), and that buffer is
    // given back here once the request is done.
    if (buffer_.capacity() > kFirstReadSize) buffer_.shrink_to_fit();
    stream_.async_read_some(buffer_.prepare(kFirstReadSize), [self = shared_from_this()](beast::error_code ec, size_t n) {
      self->buffer_.commit(n);
      if (ec) return self->OnReadError(ec);
      self->BeginRequest();
    });
  }

  // The first byte of a request is here: from now on the whole request must arrive within
  // read_timeout. A private timer cancels the read (tcp_stream's own expiry would close the
  // socket), so the client still gets a 408.
  void BeginRequest() {
    SetIdle(false);
    state_ = State::kReading;
    read_timed_out_ = false;
    stream_.expires_never();
    ArmReadTimer(server_->options.read_timeout_us);
    Parse();
  }

  // (Re)starts the deadline of the request being read; an earlier wait is cancelled.
  void ArmReadTimer(int64_t timeout_us) {
    read_timer_.expires_after(std::chrono::microseconds(timeout_us));
    read_timer_.async_wait([weak = weak_from_this()](beast::error_code ec) {
      auto self = weak.lock();
      if (ec || !self || self->state_ != State::kReading) return;
      self->read_timed_out_ = true;
      self->stream_.socket().cancel(ec);
    });
  }

  // Feeds buffered bytes to the parser until the request is complete or more must be read.
  void Parse() {
    for (;;) {
      if (parser_->is_done()) {
        read_timer_.cancel();
        return OnRequest();
      }
      if (buffer_.size() == 0) return ReadMore();
      beast::error_code ec;
      const bool header_was_done = parser_->is_header_done();
      const size_t n = parser_->put(buffer_.data(), ec);
      buffer_.consume(n);
      if (ec == bhttp::error::need_more) return ReadMore();
      if (ec) return OnReadError(ec);
      if (!header_was_done && parser_->is_header_done()) {
        if (!OnHeader()) return;
      } else if (n == 0) {
        return ReadMore();
      }
    }
  }

  void ReadMore() {
    // Body bytes are consumed as they are parsed, so only a header or a chunk header waits
    // here; the parser bounds the header, and this bounds an endless chunk header.
    if (buffer_.size() > static_cast<size_t>(server_->options.max_header_bytes) + kReadSize) {
      read_timer_.cancel();
      return WriteAndClose(ErrorResponse(400, "BAD_REQUEST", "malformed HTTP request: unterminated chunk header"));
    }
    stream_.async_read_some(buffer_.prepare(kReadSize), [self = shared_from_this()](beast::error_code ec, size_t n) {
      self->buffer_.commit(n);
      if (ec) return self->OnReadError(ec);
      self->Parse();
    });
  }

  // The header is complete and no body byte has been parsed: apply the head handler and the
  // body limit. Returns whether to keep parsing now.
  bool OnHeader() {
    auto& msg = parser_->get();
    int64_t limit = server_->options.max_body_bytes;
    if (server_->options.head_handler) {
      Request head = MakeRequest(msg);
      HeadDecision d = server_->options.head_handler(head);
      if (d.reject) {
        read_timer_.cancel();
        WriteAndClose(std::move(*d.reject));
        return false;
      }
      if (d.max_body_bytes >= 0) limit = d.max_body_bytes;
      msg.body().sink = std::move(d.sink);
      const auto length = parser_->content_length();
      if (length && *length > static_cast<uint64_t>(limit)) {
        read_timer_.cancel();
        WriteAndClose(ErrorResponse(413, "PAYLOAD_TOO_LARGE", StrCat("request body exceeds ", limit, " bytes")));
        return false;
      }
      parser_->body_limit(static_cast<uint64_t>(limit));
      if (d.read_timeout_us >= 0 && !parser_->is_done()) ArmReadTimer(d.read_timeout_us);
    }
    body_limit_ = limit;
    parser_->eager(true);
    const auto expect = msg[bhttp::field::expect];
    if (!parser_->is_done() && msg.version() == 11 && EqualsIgnoreCase(Sv(expect), "100-continue")) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      asio::async_write(stream_, asio::buffer(kContinue.data(), kContinue.size()),
                        [self = shared_from_this()](beast::error_code ec, size_t) {
                          if (ec) return self->OnReadError(ec);
                          self->Parse();
                        });
      return false;
    }
    return true;
  }

  void OnReadError(beast::error_code ec) {
    if (state_ == State::kClosed) return;
    read_timer_.cancel();
    if (read_timed_out_) {
      server_->timeouts.fetch_add(1, std::memory_order_relaxed);
      return WriteAndClose(ErrorResponse(408, "REQUEST_TIMEOUT", "the request did not arrive in time"));
    }
    if (parser_ && !parser_->get().body().sink_status.ok()) {
      return WriteAndClose(StatusResponse(parser_->get().body().sink_status));
    }
    if (ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset) {
      return Close();
    }
    if (ec == beast::error::timeout) return Close();  // idle keep-alive connection
    if (ec == bhttp::error::body_limit) {
      return WriteAndClose(ErrorResponse(413, "PAYLOAD_TOO_LARGE", StrCat("request body exceeds ", body_limit_, " bytes")));
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

  Request MakeRequest(RequestMessage& msg) {
    Request req;
    req.method = Sv(msg.method_string());
    req.target = Sv(msg.target());
    const size_t q = req.target.find('?');
    req.path = req.target.substr(0, q);
    if (q != std::string_view::npos) req.query = req.target.substr(q + 1);
    req.headers = std::move(headers_);  // the previous request's vector, its capacity kept
    req.headers.clear();
    req.headers.reserve(8);
    for (const auto& field : msg) req.headers.emplace_back(Sv(field.name_string()), Sv(field.value()));
    req.remote_addr = remote_;
    req.worker = worker_;
    return req;
  }

  void OnRequest() {
    auto& msg = parser_->get();
    Request req = MakeRequest(msg);
    req.body = std::move(msg.body().text);
    req.body_sink = std::move(msg.body().sink);
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
    headers_ = std::move(req.headers);
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
      if (HasLineBreak(h.value) || HasLineBreak(h.name) || h.name.find(':') != std::string_view::npos ||
          h.name.find(' ') != std::string_view::npos) {
        continue;
      }
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
    if (!scratch_) scratch_ = std::make_unique<char[]>(kScratchSize);
    stream_.async_read_some(asio::buffer(scratch_.get(), kScratchSize), [self = shared_from_this()](beast::error_code ec, size_t n) {
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
  internal::FieldArena<kRequestFieldBytes> field_arena_;  // before parser_: outlives it
  std::optional<RequestParser> parser_;
  std::vector<std::pair<std::string_view, std::string_view>> headers_;  // reused by MakeRequest
  int64_t body_limit_ = 0;  // the request in progress's (for the 413 message)
  std::string head_;  // response status line and headers in flight
  std::string body_;  // response body in flight
  bool keep_alive_ = false;
  bool http10_ = false;
  bool draining_ = false;
  State state_ = State::kIdle;
  // Eviction handshake between the acceptor (ClaimIdle) and the session's loop: a claim is
  // settled exactly once, by Evict (the session turned busy) or by the destructor.
  static constexpr int kBusy = 0, kIdleNow = 1, kClaimed = 2;
  std::atomic<int> idle_{kIdleNow};
  // On the loop: idle ↔ busy, never undoing a claim (Evict settles it).
  void SetIdle(bool idle) {
    int expected = idle ? kBusy : kIdleNow;
    idle_.compare_exchange_strong(expected, idle ? kIdleNow : kBusy);
  }
  std::list<std::weak_ptr<Session>>::iterator self_it_;
  // Discarded bytes after a response with Connection: close; allocated then only (not 4 KB
  // held by every keep-alive connection).
  static constexpr size_t kScratchSize = 4096;
  std::unique_ptr<char[]> scratch_;
  size_t discarded_ = 0;
};

void Server::Impl::Accept() {
  const int worker = next_worker.fetch_add(1) % pool->size();
  auto socket = std::make_shared<Socket>(Context(worker).get_executor());
  acceptor->async_accept(*socket, [self = shared_from_this(), worker, socket](beast::error_code ec) {
    if (ec == asio::error::operation_aborted || !self->acceptor->is_open()) return;
    if (ec) return self->OnAcceptError(ec);
    self->OnAccepted(socket, worker);
    self->Accept();
  });
}

void Server::Impl::OnAccepted(std::shared_ptr<Socket> socket, int worker) {
  if (out_of_fds) {
    ABGATE_LOG(kInfo, "%s:%d: accepting again after %d accepts failed for lack of file descriptors", options.host, port,
               failed_accepts);
    out_of_fds = false;
    failed_accepts = 0;
    backoff_ms = 0;
  }
  if (draining) return;  // the socket closes when its last reference goes
  beast::error_code ec;
  socket->set_option(tcp::no_delay(true), ec);
  bool refuse = false;
  // Connections already asked to close are leaving: they do not count against the cap again.
  const int64_t now_open = open.load() - evicting.load();
  if (now_open >= options.max_connections) {
    // nginx's answer when its connections run out: reuse (close) the longest-idle keep-alive
    // connections; only when none is idle is the newcomer turned away, with a 503 rather than a
    // reset so that a client knows to retry.
    const int asked = EvictIdle(static_cast<int>(std::min<int64_t>(now_open - options.max_connections + 1, 64)));
    refuse = asked == 0;
    if (!at_cap) {
      ABGATE_LOG(kWarning, "%s:%d: %d open connections reached server.max_connections (%d): closing idle "
                 "connections, oldest first, and answering 503 when none is idle", options.host, port, now_open,
                 options.max_connections);
      at_cap = true;
    }
  } else if (at_cap && now_open < options.max_connections * 9 / 10) {
    ABGATE_LOG(kInfo, "%s:%d: below the connection limit again (%d open of %d; %d idle closed, %d refused so far)",
               options.host, port, now_open, options.max_connections, evicted.load(), refused.load());
    at_cap = false;
  }
  open.fetch_add(1);
  auto session = std::make_shared<Session>(std::move(*socket), shared_from_this(), worker);
  if (refuse) session->NotIdle();  // about to be answered 503: not a room to make
  session->Register();
  if (refuse) {
    refused.fetch_add(1, std::memory_order_relaxed);
    asio::dispatch(Context(worker), [session] { session->Refuse(); });
  } else {
    asio::dispatch(Context(worker), [session] { session->Start(); });
  }
}

void Server::Impl::OnAcceptError(beast::error_code ec) {
  accept_errors.fetch_add(1, std::memory_order_relaxed);
  const bool no_fds = ec == asio::error::no_descriptors || ec == boost::system::errc::too_many_files_open_in_system ||
                      ec == asio::error::no_buffer_space || ec == asio::error::no_memory;
  if (!no_fds) {
    // A connection that died in the backlog (ECONNABORTED) and the like: nothing to wait for.
    ABGATE_LOG(kDebug, "%s:%d: accept failed: %s", options.host, port, ec.message());
    return Accept();
  }
  ++failed_accepts;
  if (!out_of_fds) {
    ABGATE_LOG(kWarning, "%s:%d: accept failed: %s (%d connections open); closing idle connections and retrying "
               "with back-off", options.host, port, ec.message(), open.load());
    out_of_fds = true;
  }
  // Idle connections hold descriptors a probe needs more; then wait, doubling up to 1 s, for
  // descriptors to come back instead of spinning on the error.
  EvictIdle(32);
  backoff_ms = std::clamp<int64_t>(backoff_ms * 2, 10, 1000);
  auto timer = std::make_shared<asio::steady_timer>(acceptor->get_executor(), std::chrono::milliseconds(backoff_ms));
  timer->async_wait([self = shared_from_this(), timer](beast::error_code) {
    if (self->acceptor->is_open()) self->Accept();
  });
}

int Server::Impl::EvictIdle(int n) {
  std::vector<std::shared_ptr<Session>> victims, busy;
  {
    common::MutexLock lock(sessions_mu);
    for (auto it = sessions.rbegin(); it != sessions.rend() && static_cast<int>(victims.size()) < n; ++it) {
      auto s = it->lock();
      if (!s) continue;
      // Never drop a reference under the lock: if it is the last one, ~Session takes
      // sessions_mu itself (a self-deadlock seen as a hung server in full test runs).
      (s->ClaimIdle() ? victims : busy).push_back(std::move(s));
    }
  }
  busy.clear();
  evicting.fetch_add(static_cast<int64_t>(victims.size()));
  for (auto& s : victims) asio::post(s->executor(), [s] { s->Evict(); });
  return static_cast<int>(victims.size());
}

Server::Server(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() = default;

absl::StatusOr<std::unique_ptr<Server>> Server::Create(IoPool& pool, ServerOptions options, Handler handler) {
  auto impl = std::make_shared<Impl>();
  impl->pool = &pool;
  if (options.max_connections <= 0) options.max_connections = DefaultMaxConnections();
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

ServerStats Server::stats() const {
  ServerStats s;
  s.open_connections = impl_->open.load();
  s.max_connections = impl_->options.max_connections;
  s.evicted_idle = impl_->evicted.load();
  s.refused = impl_->refused.load();
  s.accept_errors = impl_->accept_errors.load();
  s.timeouts = impl_->timeouts.load();
  return s;
}

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
      common::MutexLock lock(impl_->sessions_mu);
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

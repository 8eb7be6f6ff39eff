// Fuzz helper: one exchange with a server on 127.0.0.1 over a fresh connection: sends `bytes`,
// closes the sending side and reads until the server closes (or the deadline passes), and says
// how it ended, so that a harness's verdict names the cause in one line.
//
// Every socket call is non-blocking and waited on with poll(): libFuzzer's -timeout runs a
// SIGALRM every few seconds installed without SA_RESTART, and a blocking connect() that it
// interrupts fails with EINTR although the connection is still being made (a CI run stopped
// outcomes_fuzz at 88k exchanges with "cannot connect: Interrupted system call"). EINTR is
// retried everywhere; so are this side's own lack of descriptors or ports.
// Not thread-safe (the per-process counters): libFuzzer calls a harness from one thread.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

namespace abgate::fuzz {

using SteadyClock = std::chrono::steady_clock;

// How one exchange ended.
enum class End {
  kClosed,         // the server closed its side (after a reply, or without one)
  kReset,          // the server reset the connection (ECONNRESET and the like)
  kTimeout,        // the connection stayed open, the server sent nothing more until the deadline
  kConnectFailed,  // no connection: refused, or not accepted until the deadline
};

struct ExchangeResult {
  std::string reply;
  End end = End::kClosed;
  int error = 0;            // errno of the call that failed (connect, send or recv); 0 if none
  size_t sent = 0;          // request bytes the kernel took
  size_t request_size = 0;
  int64_t connect_us = 0;   // until the connection was established (or given up)
  int64_t elapsed_us = 0;   // the whole exchange
  int connect_retries = 0;  // EINTR, or this side out of descriptors/ports, retried

  // One line: how the exchange ended, with errno and timings, e.g. "the server closed the
  // connection without a reply after 3 ms (connect 0 ms, 87/87 bytes sent)".
  std::string Describe() const;
};

// Counters over this process's exchanges, printed with a finding (and at exit if asked).
struct ExchangeStats {
  int64_t exchanges = 0;
  int64_t connect_retries = 0;
  int64_t slow_connects = 0;  // took 100 ms or more: a lost SYN waits for its 1 s retransmit
  int64_t max_connect_us = 0;
  int64_t max_exchange_us = 0;
};

inline ExchangeStats& Stats() {
  static ExchangeStats stats;
  return stats;
}

inline std::string StatsLine() {
  const ExchangeStats& s = Stats();
  char line[256];
  std::snprintf(line, sizeof(line),
                "loopback: %lld exchanges, %lld connect retries, %lld connects >= 100 ms, slowest connect %lld ms, "
                "slowest exchange %lld ms",
                static_cast<long long>(s.exchanges), static_cast<long long>(s.connect_retries),
                static_cast<long long>(s.slow_connects), static_cast<long long>(s.max_connect_us / 1000),
                static_cast<long long>(s.max_exchange_us / 1000));
  return line;
}

inline std::string ExchangeResult::Describe() const {
  const long long ms = elapsed_us / 1000;
  const long long connect_ms = connect_us / 1000;
  const char* err = error != 0 ? std::strerror(error) : "";
  char line[512];
  switch (end) {
    case End::kConnectFailed:
      std::snprintf(line, sizeof(line), "no connection after %lld ms (%d retries): connect: %s", ms, connect_retries,
                    error != 0 ? err : "not established before the deadline");
      break;
    case End::kTimeout:
      std::snprintf(line, sizeof(line),
                    "the connection stayed open and the server sent %s within %lld ms (connect %lld ms, %zu/%zu bytes "
                    "sent)",
                    reply.empty() ? "no reply" : "an unfinished reply", ms, connect_ms, sent, request_size);
      break;
    case End::kReset:
      std::snprintf(line, sizeof(line), "the server reset the connection (%s) after %lld ms, %zu reply bytes before "
                    "(connect %lld ms, %zu/%zu bytes sent)", err, ms, reply.size(), connect_ms, sent, request_size);
      break;
    case End::kClosed:
      std::snprintf(line, sizeof(line), "the server closed the connection %s after %lld ms (connect %lld ms, %zu/%zu "
                    "bytes sent%s%s)", reply.empty() ? "without a reply" : "after its reply", ms, connect_ms, sent,
                    request_size, error != 0 ? "; send: " : "", err);
      break;
  }
  return line;
}

namespace loopback_internal {

inline int64_t UsSince(SteadyClock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - t).count();
}

// Waits up to `deadline` for `events` on `fd`; EINTR waits again. Returns poll's revents, 0 at
// the deadline.
inline short Wait(int fd, short events, SteadyClock::time_point deadline) {
  while (true) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - SteadyClock::now()).count();
    if (left <= 0) return 0;
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 1000)));
    if (n > 0) return p.revents;
    if (n < 0 && errno != EINTR) return POLLERR;
  }
}

inline bool LocalShortage(int err) {
  return err == EMFILE || err == ENFILE || err == EADDRNOTAVAIL || err == EAGAIN || err == ENOBUFS;
}

// A connection to 127.0.0.1:port (non-blocking), or -1 with `r` saying why. This side's own
// shortage of descriptors or ports is retried until `deadline`: only the server's behaviour
// reaches the verdict.
inline int Connect(uint16_t port, SteadyClock::time_point deadline, ExchangeResult& r) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  while (true) {
    int err = 0;
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      err = errno;
    } else if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      return fd;
    } else if (errno == EINPROGRESS || errno == EINTR) {
      // The handshake goes on (also after EINTR); its result is SO_ERROR once writable.
      const short ev = Wait(fd, POLLOUT, deadline);
      socklen_t len = sizeof(err);
      if (ev == 0) {
        err = ETIMEDOUT;
      } else if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
        err = errno;
      }
      if (err == 0) return fd;
    } else {
      err = errno;
    }
    if (fd >= 0) ::close(fd);
    if (!LocalShortage(err) || SteadyClock::now() >= deadline) {
      r.end = End::kConnectFailed;
      r.error = err == ETIMEDOUT ? 0 : err;
      return -1;
    }
    ++r.connect_retries;
    ::poll(nullptr, 0, 10);  // the kernel frees ports and descriptors as connections close
  }
}

}  // namespace loopback_internal

// Sends `bytes` on a fresh connection, half-closes, and reads until the server closes or
// `timeout_ms` passes after the last byte was sent (connecting has its own `timeout_ms`).
inline ExchangeResult ExchangeWithResult(uint16_t port, std::string_view bytes, int timeout_ms = 5000) {
  using namespace loopback_internal;
  const auto start = SteadyClock::now();
  ExchangeResult r;
  r.request_size = bytes.size();
  const int fd = Connect(port, start + std::chrono::milliseconds(timeout_ms), r);
  r.connect_us = UsSince(start);
  ExchangeStats& stats = Stats();
  ++stats.exchanges;
  stats.connect_retries += r.connect_retries;
  if (r.connect_us >= 100'000) ++stats.slow_connects;
  stats.max_connect_us = std::max(stats.max_connect_us, r.connect_us);
  if (fd < 0) {
    r.elapsed_us = UsSince(start);
    return r;
  }
  auto deadline = SteadyClock::now() + std::chrono::milliseconds(timeout_ms);
  while (r.sent < bytes.size()) {
    const ssize_t n = ::send(fd, bytes.data() + r.sent, bytes.size() - r.sent, MSG_NOSIGNAL);
    if (n > 0) {
      r.sent += static_cast<size_t>(n);
    } else if (errno == EINTR || ((errno == EAGAIN || errno == EWOULDBLOCK) && Wait(fd, POLLOUT, deadline) != 0)) {
      continue;
    } else {
      // The server closed or reset early (it may have answered already, e.g. a 413): read on.
      r.error = errno;
      break;
    }
  }
  ::shutdown(fd, SHUT_WR);
  deadline = SteadyClock::now() + std::chrono::milliseconds(timeout_ms);
  r.end = End::kTimeout;
  char buf[16384];
  while (true) {
    if (Wait(fd, POLLIN, deadline) == 0) break;  // kTimeout
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n > 0) {
      r.reply.append(buf, static_cast<size_t>(n));
    } else if (n == 0) {
      r.end = End::kClosed;
      break;
    } else if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
      r.end = End::kReset;
      r.error = errno;
      break;
    }
  }
  // Abortive close: this side sent the first FIN, so a connection the server has not closed
  // yet (a timeout) would otherwise stay in TIME_WAIT for 60 s. One the server closed is in
  // TIME_WAIT already (~13.5k during a run); Linux reuses those loopback ports for connect()
  // (tcp_tw_reuse=2), and a shortage of ports is retried in Connect anyway.
  const linger abortive{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &abortive, sizeof(abortive));
  ::close(fd);
  r.elapsed_us = UsSince(start);
  stats.max_exchange_us = std::max(stats.max_exchange_us, r.elapsed_us);
  return r;
}

// The reply alone (harnesses that only look for crashes and hangs).
inline std::string Exchange(uint16_t port, std::string_view bytes, int timeout_ms = 5000) {
  return ExchangeWithResult(port, bytes, timeout_ms).reply;
}

}  // namespace abgate::fuzz

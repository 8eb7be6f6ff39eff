// Fuzz helper: one exchange with a server on 127.0.0.1 over a fresh connection: sends `bytes`,
// closes the sending side and reads until the server closes (or `timeout_ms` passes).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <cstdint>
#include <string>
#include <string_view>

namespace abgate::fuzz {

// A connection of this harness's own: socket() or connect() failing for lack of local resources
// (descriptors, ephemeral ports: EMFILE, EADDRNOTAVAIL, EAGAIN) is retried until `deadline`, so
// only the server's behaviour on an open connection reaches the harness's verdict.
inline int ConnectLoopback(uint16_t port, std::chrono::steady_clock::time_point deadline) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  while (true) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) return fd;
    const int err = errno;
    if (fd >= 0) ::close(fd);
    const bool local = err == EMFILE || err == ENFILE || err == EADDRNOTAVAIL || err == EAGAIN || err == ENOBUFS;
    if (!local || std::chrono::steady_clock::now() >= deadline) {
      std::fprintf(stderr, "loopback: cannot connect to 127.0.0.1:%u: %s\n", port, std::strerror(err));
      return -1;
    }
    ::poll(nullptr, 0, 10);  // the kernel frees ports and descriptors as connections close
  }
}

inline std::string Exchange(uint16_t port, std::string_view bytes, int timeout_ms = 5000) {
  const int fd = ConnectLoopback(port, std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms));
  if (fd < 0) return "";
  std::string reply;
  {
    size_t sent = 0;
    while (sent < bytes.size()) {
      const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
    ::shutdown(fd, SHUT_WR);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    char buf[16384];
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;
      reply.append(buf, static_cast<size_t>(n));
    }
  }
  // Abortive close: this side sent the first FIN, so a plain close would leave the connection
  // in TIME_WAIT for 60 s; at thousands of exchanges a second that used up the loopback ports
  // (~28k) and connect() failed, which the harnesses took for an unanswered request.
  const linger abortive{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &abortive, sizeof(abortive));
  ::close(fd);
  return reply;
}

}  // namespace abgate::fuzz

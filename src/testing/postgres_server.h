// Test helper: a private PostgreSQL server (initdb + pg_ctl on a temporary data folder, a free
// loopback port, trust auth, fsync off) that a test can stop and start again — for store
// outage tests. As root, PostgreSQL's commands run as the `postgres` user. Not thread-safe.
#pragma once

#include <cstdint>
#include <string>

namespace abgate::testing {

class PostgresServer {
 public:
  // Creates the data folder under `dir` (which must exist) and starts the server. ok() false
  // with reason() when PostgreSQL is not installed or does not start.
  explicit PostgresServer(const std::string& dir);
  ~PostgresServer();  // stops the server and removes its folder
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  bool ok() const { return reason_.empty(); }
  const std::string& reason() const { return reason_; }
  // postgresql://postgres@127.0.0.1:PORT/postgres
  const std::string& uri() const { return uri_; }

  // pg_ctl stop -m fast (open connections are closed) / start; both wait until done.
  bool Stop();
  bool Start();

 private:
  bool Run(const std::string& command);
  std::string bin_, base_, uri_, reason_;
  uint16_t port_ = 0;
  bool running_ = false;
};

}  // namespace abgate::testing

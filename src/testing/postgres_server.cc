#include "testing/postgres_server.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "testing/raw_http.h"

namespace abgate::testing {

namespace {
std::string Quote(const std::string& s) { return "'" + s + "'"; }
}  // namespace

PostgresServer::PostgresServer(const std::string& dir) {
  std::string newest;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
    const std::string bin = (entry.path() / "bin").string();
    if (std::filesystem::exists(bin + "/pg_ctl") && bin > newest) newest = bin;
  }
  if (newest.empty()) {
    reason_ = "PostgreSQL is not installed (/usr/lib/postgresql/*/bin/pg_ctl; scripts/install-deps.sh installs it)";
    return;
  }
  bin_ = newest;
  base_ = dir + "/pg";
  std::filesystem::create_directories(base_);
  if (::geteuid() == 0 && !Run("chown postgres:postgres " + Quote(base_))) {
    reason_ = "cannot give " + base_ + " to the postgres user";
    return;
  }
  std::filesystem::permissions(base_, std::filesystem::perms::owner_all);
  if (!Run(bin_ + "/initdb -D " + Quote(base_ + "/data") +
           " -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null")) {
    reason_ = "initdb failed";
    return;
  }
  port_ = FreeLoopbackPort();
  uri_ = "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/postgres";
  if (!Start()) reason_ = "the PostgreSQL server did not start (see " + base_ + "/server.log)";
}

PostgresServer::~PostgresServer() {
  if (running_) Stop();
  if (!base_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(base_, ec);
  }
}

bool PostgresServer::Run(const std::string& command) {
  // PostgreSQL refuses to run as root.
  const std::string line = ::geteuid() == 0 && !command.starts_with("chown")
                               ? "runuser -u postgres -- sh -c " + Quote(command)
                               : command;
  return std::system(line.c_str()) == 0;
}

bool PostgresServer::Start() {
  running_ = Run(bin_ + "/pg_ctl -D " + base_ + "/data -l " + base_ + "/server.log -w -t 60 -o \"-p " +
                 std::to_string(port_) + " -c listen_addresses=127.0.0.1 -c unix_socket_directories=" + base_ +
                 " -c fsync=off\" start >/dev/null");
  return running_;
}

bool PostgresServer::Stop() {
  const bool stopped = Run(bin_ + "/pg_ctl -D " + base_ + "/data -m fast -w -t 60 stop >/dev/null");
  if (stopped) running_ = false;
  return stopped;
}

}  // namespace abgate::testing

// Test helper: runs a child process with captured stdout/stderr, for whole-binary tests.
// Not thread-safe; one owner.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace abgate::testing {

class Subprocess {
 public:
  // Starts `argv[0]` with `argv`; extra environment entries as "NAME=value".
  Subprocess(const std::vector<std::string>& argv, const std::vector<std::string>& env = {});
  ~Subprocess();  // SIGKILLs a child still running

  pid_t pid() const { return pid_; }
  // One stdout line (without '\n'); empty on EOF or after `timeout_ms`.
  std::string ReadStdoutLine(int timeout_ms);
  void Signal(int sig);
  // Waits for exit (up to timeout_ms, then SIGKILL); returns the exit code, or 128+signal.
  int Wait(int timeout_ms);
  // Everything the child wrote to stdout/stderr (call after Wait).
  const std::string& stdout_text();
  const std::string& stderr_text();

 private:
  void Drain(int fd, std::string& into, bool block);
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  std::string out_, err_, out_pending_;
  bool exited_ = false;
  int code_ = -1;
};

}  // namespace abgate::testing

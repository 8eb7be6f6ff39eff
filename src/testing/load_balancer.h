// Test helper: nginx as a round-robin HTTP load balancer on a loopback port in front of several
// backends (gateway replicas), as users run a fleet. One owner.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "testing/subprocess.h"

namespace abgate::testing {

class LoadBalancer {
 public:
  // Files go in `dir`. Check ok() (and error()) before use.
  LoadBalancer(const std::string& dir, const std::vector<uint16_t>& backend_ports);
  ~LoadBalancer();  // graceful stop (SIGQUIT)

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  uint16_t port() const { return port_; }

 private:
  std::string dir_;
  uint16_t port_ = 0;
  std::string error_;
  std::unique_ptr<Subprocess> nginx_;
};

}  // namespace abgate::testing

// Test helper: nginx terminating TLS on a loopback port and proxying to a plain HTTP backend,
// with a certificate (for 127.0.0.1 and localhost) signed by a CA made for the test with the
// openssl CLI — a model server or an MLflow server behind a TLS ingress. One owner.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "testing/subprocess.h"

namespace abgate::testing {

class TlsProxy {
 public:
  // Files go in `dir`. Check ok() (and error()) before use.
  TlsProxy(const std::string& dir, uint16_t backend_port);
  ~TlsProxy();

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  uint16_t port() const { return port_; }
  // The CA that signed the proxy's certificate (PEM).
  std::string ca_file() const { return dir_ + "/ca.pem"; }

 private:
  std::string dir_;
  uint16_t port_ = 0;
  std::string error_;
  std::unique_ptr<Subprocess> nginx_;
};

}  // namespace abgate::testing

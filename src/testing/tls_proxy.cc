#include "testing/tls_proxy.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>
#include <vector>

#include "testing/raw_http.h"

namespace abgate::testing {

TlsProxy::TlsProxy(const std::string& dir, uint16_t backend_port) : dir_(dir) {
  auto run = [&](const std::vector<std::string>& argv) {
    if (!error_.empty()) return;
    Subprocess p(argv);
    if (p.Wait(30000) != 0) error_ = argv[0] + " " + argv[1] + " failed: " + p.stderr_text();
  };
  std::ofstream(dir_ + "/san.cnf") << "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
  run({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir_ + "/ca.key", "-out",
       dir_ + "/ca.pem", "-days", "2", "-subj", "/CN=abgate test CA"});
  run({"/usr/bin/openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", dir_ + "/server.key", "-out",
       dir_ + "/server.csr", "-subj", "/CN=localhost"});
  run({"/usr/bin/openssl", "x509", "-req", "-in", dir_ + "/server.csr", "-CA", dir_ + "/ca.pem", "-CAkey",
       dir_ + "/ca.key", "-CAcreateserial", "-out", dir_ + "/server.pem", "-days", "2", "-extfile", dir_ + "/san.cnf"});
  if (!error_.empty()) return;
  port_ = FreeLoopbackPort();
  std::ofstream(dir_ + "/nginx.conf")
      << "daemon off;\nworker_processes 1;\npid " << dir_ << "/nginx.pid;\n"
      << (::getuid() == 0 ? "user root;\n" : "") << "events {}\nhttp {\n  access_log off;\n"
      << "  client_body_temp_path " << dir_ << ";\n  proxy_temp_path " << dir_ << ";\n"
      << "  server {\n    listen 127.0.0.1:" << port_ << " ssl;\n"
      << "    ssl_certificate " << dir_ << "/server.pem;\n    ssl_certificate_key " << dir_ << "/server.key;\n"
      << "    client_max_body_size 100m;\n    location / {\n"
      << "      proxy_pass http://127.0.0.1:" << backend_port << ";\n"
      << "      proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n    }\n  }\n}\n";
  nginx_ = std::make_unique<Subprocess>(
      std::vector<std::string>{"/usr/sbin/nginx", "-p", dir_, "-c", dir_ + "/nginx.conf", "-e", dir_ + "/nginx-error.log"});
  for (int i = 0; i < 200 && !AcceptsConnections(port_); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  if (!AcceptsConnections(port_)) error_ = "nginx did not start; see " + dir_ + "/nginx-error.log";
}

TlsProxy::~TlsProxy() {
  if (!nginx_) return;
  nginx_->Signal(SIGQUIT);  // graceful
  nginx_->Wait(10000);
}

}  // namespace abgate::testing

#include "testing/load_balancer.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "testing/raw_http.h"

namespace abgate::testing {

LoadBalancer::LoadBalancer(const std::string& dir, const std::vector<uint16_t>& backend_ports) : dir_(dir) {
  port_ = FreeLoopbackPort();
  std::ofstream conf(dir_ + "/nginx-lb.conf");
  conf << "daemon off;\nworker_processes 1;\npid " << dir_ << "/nginx-lb.pid;\n"
       << (::getuid() == 0 ? "user root;\n" : "") << "events {}\nhttp {\n  access_log off;\n"
       << "  client_body_temp_path " << dir_ << ";\n  proxy_temp_path " << dir_ << ";\n"
       << "  upstream gateways {\n";
  for (uint16_t p : backend_ports) conf << "    server 127.0.0.1:" << p << ";\n";
  conf << "    keepalive 16;\n  }\n"
       << "  server {\n    listen 127.0.0.1:" << port_ << ";\n    client_max_body_size 10m;\n"
       << "    location / {\n      proxy_pass http://gateways;\n"
       << "      proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n    }\n  }\n}\n";
  conf.close();
  nginx_ = std::make_unique<Subprocess>(std::vector<std::string>{
      "/usr/sbin/nginx", "-p", dir_, "-c", dir_ + "/nginx-lb.conf", "-e", dir_ + "/nginx-lb-error.log"});
  // Polls for the listener (a started process, no observable event to wait on otherwise).
  for (int i = 0; i < 400 && !AcceptsConnections(port_); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  if (!AcceptsConnections(port_)) error_ = "nginx did not start; see " + dir_ + "/nginx-lb-error.log";
}

LoadBalancer::~LoadBalancer() {
  if (!nginx_) return;
  nginx_->Signal(SIGQUIT);
  nginx_->Wait(10000);
}

}  // namespace abgate::testing

#include "http/service.h"

#include "common/status_macros.h"

namespace abgate::http {

absl::StatusOr<std::unique_ptr<Service>> Service::Create(int threads, ServerOptions options, Handler handler) {
  std::unique_ptr<Service> service(new Service(threads));
  ABGATE_ASSIGN_OR_RETURN(service->server_, Server::Create(service->pool_, std::move(options), std::move(handler)));
  return service;
}

void Service::Start() {
  pool_.Start();
  server_->Start();
}

void Service::Shutdown(int64_t drain_us) {
  if (stopped_ || !server_) return;
  stopped_ = true;
  server_->Shutdown(drain_us);
  pool_.Stop();
  server_.reset();
}

}  // namespace abgate::http

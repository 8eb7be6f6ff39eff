#include "serving/model_server.h"

#include "common/status_macros.h"
#include "common/strings.h"
#include "http/server.h"
#include "http/service.h"

namespace abgate::serving {
namespace {

http::Response ErrorOf(const ScoringError& e) {
  if (e.error_code.empty()) return http::Response::Text(e.http_status, e.message);
  return http::ErrorResponse(e.http_status, e.error_code, e.message);
}

}  // namespace

namespace {

// Bodies up to this size are parsed on the calling (I/O) thread, a fraction of a millisecond;
// larger ones on the predictor's threads, so that a large body (the model server accepts
// 64 MB) never holds an I/O thread, and with it every connection on that thread, for long.
constexpr size_t kInlineParseBytes = 64 << 10;

void ParseAndPredict(Predictor& predictor, bool csv, std::string_view body,
                     absl::AnyInvocable<void(ScoringReply) &&> done) {
  const auto& inputs = predictor.model().inputs;
  ScoringResult parsed = csv ? ParseCsvInput(body, inputs, predictor.num_features())
                             : ParseJsonInput(body, inputs, predictor.num_features());
  if (!parsed.ok()) {
    std::move(done)(ScoringReply{{}, std::move(parsed.error), absl::OkStatus()});
    return;
  }
  predictor.Predict(std::move(parsed.matrix), [done = std::move(done)](absl::StatusOr<std::vector<float>> r) mutable {
    if (r.ok()) {
      std::move(done)(ScoringReply{*std::move(r), std::nullopt, absl::OkStatus()});
    } else {
      std::move(done)(ScoringReply{{}, std::nullopt, r.status()});
    }
  });
}

}  // namespace

void Score(Predictor& predictor, std::string_view content_type, std::string body,
           absl::AnyInvocable<void(ScoringReply) &&> done) {
  bool csv = false;
  if (auto bad = CheckContentType(content_type, csv)) {
    std::move(done)(ScoringReply{{}, std::move(*bad), absl::OkStatus()});
    return;
  }
  if (body.size() <= kInlineParseBytes) return ParseAndPredict(predictor, csv, body, std::move(done));
  // `done` is kept here until the task has surely run or been refused: Post drops a refused task.
  auto shared_done = std::make_shared<absl::AnyInvocable<void(ScoringReply) &&>>(std::move(done));
  const bool queued = predictor.Post([&predictor, csv, body = std::move(body), shared_done]() mutable {
    ParseAndPredict(predictor, csv, body, std::move(*shared_done));
  });
  if (!queued) {
    std::move(*shared_done)(ScoringReply{{}, std::nullopt,
                                          absl::ResourceExhaustedError("the model's prediction queue is full")});
  }
}

struct ModelServer::Impl {
  std::shared_ptr<Predictor> predictor;
  ModelServerOptions options;
  std::unique_ptr<http::Service> service;

  Impl(std::shared_ptr<Predictor> p, ModelServerOptions o)
      : predictor(std::move(p)), options(std::move(o)) {}

  void Handle(http::Request& req, http::Respond respond) {
    const std::string_view path = req.path;
    if (path == "/ping" || path == "/health") {
      if (req.method != "GET") return std::move(respond)(http::ErrorResponse(405, "METHOD_NOT_ALLOWED", "GET only"));
      return std::move(respond)(http::Response::Json(200, "\n"));
    }
    if (path == "/version") {
      const std::string& v = predictor->model().mlflow_version;
      return std::move(respond)(http::Response::Json(200, v.empty() ? "2.17.2" : v));
    }
    if (path != "/invocations") {
      return std::move(respond)(http::ErrorResponse(404, "ENDPOINT_NOT_FOUND", StrCat("no endpoint ", path)));
    }
    if (req.method != "POST") {
      http::Response r = http::ErrorResponse(405, "METHOD_NOT_ALLOWED", "POST /invocations");
      r.headers.push_back({"Allow", "POST"});
      return std::move(respond)(std::move(r));
    }
    const bool labels = predictor->model().predicts_labels();
    Score(*predictor, req.FindHeader("Content-Type"), std::move(req.body),
          [respond = std::move(respond), labels](ScoringReply reply) mutable {
            if (reply.error) return std::move(respond)(ErrorOf(*reply.error));
            if (!reply.status.ok()) {
              const bool busy = reply.status.code() == absl::StatusCode::kResourceExhausted;
              return std::move(respond)(http::ErrorResponse(
                  busy ? 503 : 400, busy ? "TEMPORARILY_UNAVAILABLE" : "BAD_REQUEST",
                  busy ? std::string(ToStd(reply.status.message()))
                       : StrCat("Encountered an unexpected error while evaluating the model. Verify that the input is "
                                "compatible with the model for inference. Error '",
                                ToStd(reply.status.message()), "'")));
            }
            std::move(respond)(http::Response::Json(200, PredictionsJson(reply.predictions, labels)));
          });
  }
};

ModelServer::ModelServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ModelServer::~ModelServer() { Shutdown(); }

absl::StatusOr<std::unique_ptr<ModelServer>> ModelServer::Create(std::shared_ptr<Predictor> predictor,
                                                                 ModelServerOptions options) {
  auto impl = std::make_unique<Impl>(std::move(predictor), options);
  http::ServerOptions so;
  so.host = options.host;
  so.port = options.port;
  so.max_body_bytes = options.max_body_bytes;
  so.read_timeout_us = options.read_timeout_us;
  so.max_connections = options.max_connections;
  Impl* raw = impl.get();
  ABGATE_ASSIGN_OR_RETURN(impl->service,
                          http::Service::Create(options.threads, so, [raw](http::Request& req, http::Respond respond) {
                            raw->Handle(req, std::move(respond));
                          }));
  return std::unique_ptr<ModelServer>(new ModelServer(std::move(impl)));
}

uint16_t ModelServer::port() const { return impl_->service->port(); }

void ModelServer::Start() { impl_->service->Start(); }

void ModelServer::Shutdown() {
  if (impl_ && impl_->service) impl_->service->Shutdown();
}

}  // namespace abgate::serving

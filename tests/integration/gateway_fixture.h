// Integration fixture: a real Gateway on port 0 in front of real HTTP upstreams (abgate's own
// http::Server on port 0, scripted per test), with a temp-dir SQLite event store.
#pragma once

#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/clock.h"
#include "config/gateway_config.h"
#include "gateway/gateway.h"
#include "gtest/gtest.h"
#include "http/server.h"
#include "testing/raw_http.h"
#include "testing/test_store.h"

namespace abgate::testing {

enum class UpstreamMode { kOk, kServerError, kHang, kBadRequest, kNotJson, kNonFiniteScores };

// A model stand-in: answers {"predictions": [score]} and remembers what it was sent.
class FakeModel {
 public:
  FakeModel(http::IoPool& pool, double score) : score_(score) {
    auto s = http::Server::Create(pool, {}, [this](http::Request& req, http::Respond respond) {
      hits_.fetch_add(1);
      {
        std::lock_guard lock(mu_);
        last_body_ = req.body;
        last_content_type_ = std::string(req.FindHeader("Content-Type"));
      }
      switch (mode_.load()) {
        case UpstreamMode::kOk:
          return std::move(respond)(http::Response::Json(200, "{\"predictions\": [" + std::to_string(score_) + "]}"));
        case UpstreamMode::kServerError:
          return std::move(respond)(http::Response::Json(500, R"({"error_code":"INTERNAL_ERROR","message":"boom"})"));
        case UpstreamMode::kBadRequest:
          return std::move(respond)(http::Response::Json(400, R"({"error_code":"BAD_REQUEST","message":"schema"})"));
        case UpstreamMode::kNonFiniteScores:  // Boost.JSON reads these as inf and NaN
          return std::move(respond)(http::Response::Json(200, R"({"predictions": [1e400, 0e400]})"));
        case UpstreamMode::kNotJson:
          return std::move(respond)(http::Response::Text(200, "<html>oops</html>"));
        case UpstreamMode::kHang: {
          std::lock_guard lock(mu_);
          parked_.push_back(std::make_shared<http::Respond>(std::move(respond)));
          return;
        }
      }
    });
    EXPECT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
  }
  void Start() { server_->Start(); }
  // Answers parked requests (must run before the pool stops).
  void Release() {
    std::lock_guard lock(mu_);
    for (auto& r : parked_) std::move(*r)(http::Response::Json(200, R"({"predictions": [0]})"));
    parked_.clear();
  }
  void Shutdown() { server_->Shutdown(200'000); }
  uint16_t port() const { return server_->port(); }
  void set_mode(UpstreamMode m) { mode_ = m; }
  int hits() const { return hits_.load(); }
  std::string last_body() {
    std::lock_guard lock(mu_);
    return last_body_;
  }
  std::string last_content_type() {
    std::lock_guard lock(mu_);
    return last_content_type_;
  }

 private:
  double score_;
  std::unique_ptr<http::Server> server_;
  std::atomic<UpstreamMode> mode_{UpstreamMode::kOk};
  std::atomic<int> hits_{0};
  std::mutex mu_;
  std::string last_body_, last_content_type_;
  std::vector<std::shared_ptr<http::Respond>> parked_;
};

class GatewayFixture : public ::testing::Test {
 protected:
  static constexpr char kToken[] = "test-token-123";

  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("abgate_it_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    upstream_pool_ = std::make_unique<http::IoPool>(1);
    model_a_ = std::make_unique<FakeModel>(*upstream_pool_, 0.25);
    model_b_ = std::make_unique<FakeModel>(*upstream_pool_, 0.75);
    upstream_pool_->Start();
    model_a_->Start();
    model_b_->Start();
    ::setenv("ABGATE_TEST_ADMIN_TOKEN", kToken, 1);
    store_ = std::make_unique<TestStore>(TestBackend(), dir_.string());
    if (store_->unconfigured()) GTEST_SKIP() << store_->reason();
    ASSERT_TRUE(store_->ok()) << store_->reason();
  }

  void TearDown() override {
    if (!upstream_pool_) return;  // skipped before SetUp
    if (gateway_) gateway_->Shutdown();
    gateway_.reset();
    model_a_->Release();
    model_b_->Release();
    model_a_->Shutdown();
    model_b_->Shutdown();
    upstream_pool_->Stop();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  // The experiment block used by most tests; `extra` is appended inside the experiment.
  std::string ConfigYaml(std::string_view extra = "", std::string_view weights = "80, 20") {
    const size_t comma = weights.find(',');
    return "server:\n  listen: 127.0.0.1:0\n  admin_listen: 127.0.0.1:0\n  admin_token_env: ABGATE_TEST_ADMIN_TOKEN\n"
           "  threads: 2\n  max_body_bytes: 65536\n  max_header_bytes: 8192\n"
           "upstream:\n  request_timeout: " + upstream_timeout_ + "\n  connect_timeout: " + upstream_timeout_ + "\n"
           "events:\n  store: '" + store_->uri() + "'\n  flush_ms: 5\n"
           "experiments:\n  - name: hyatt_booking_ab\n    model: hyatt_booking_model\n    default: true\n"
           "    unit: {field: user_id, header: X-User-Id}\n    control: A\n"
           "    arms:\n"
           "      - {name: A, version: '7', weight: " + std::string(weights.substr(0, comma)) +
           ", upstream: 'http://127.0.0.1:" + std::to_string(model_a_->port()) + "/invocations'}\n"
           "      - {name: B, version: '8', weight: " + std::string(weights.substr(comma + 1)) +
           ", upstream: 'http://127.0.0.1:" + std::to_string(model_b_->port()) + "/invocations'}\n" +
           std::string(extra);
  }

  void StartGateway(const std::string& yaml) {
    auto config = config::ParseGatewayConfig(yaml);
    ASSERT_TRUE(config.ok()) << config.status();
    auto gw = gateway::Gateway::Create(*std::move(config), common::SystemClock::Get());
    ASSERT_TRUE(gw.ok()) << gw.status();
    gateway_ = std::move(*gw);
    gateway_->Start();
  }

  RawResponse Predict(std::string_view body, std::string_view target = "/predict",
                      std::string_view extra_headers = "") {
    return RawRequest(gateway_->port(), "POST", target, body, "application/json", extra_headers);
  }

  RawResponse Admin(std::string_view method, std::string_view target, std::string_view body = "",
                    bool with_token = true) {
    return RawRequest(gateway_->admin_port(), method, target, body, "application/json",
                      with_token ? std::string("Authorization: Bearer ") + kToken + "\r\n" : "");
  }

  // Runs a scalar SQL query against the event store (after committing queued events).
  int64_t QueryInt(const std::string& sql) {
    gateway_->FlushEventsForTest();
    return store_->QueryInt(sql);
  }
  // The same without flushing: sees only what is already committed.
  int64_t QueryIntNoFlush(const std::string& sql) { return store_->QueryInt(sql); }

  // The upstream timeouts ConfigYaml writes. Long enough that a model stand-in answering late
  // on a loaded machine under AddressSanitizer is not a 504 or a fallback: with 300 ms,
  // AdminTest.ModeCreatePatchDelete got a 504, and a fallback's answer names control's arm,
  // which the sticky tests read as a unit that moved. A test of hung upstreams sets a short
  // one before ConfigYaml.
  std::string upstream_timeout_ = "5s";

  std::filesystem::path dir_;
  std::unique_ptr<http::IoPool> upstream_pool_;
  std::unique_ptr<FakeModel> model_a_, model_b_;
  std::unique_ptr<gateway::Gateway> gateway_;
  std::unique_ptr<TestStore> store_;
};

}  // namespace abgate::testing

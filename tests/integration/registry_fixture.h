// A real `abgate registry` process on port 0 with a fresh SQLite file and artifact folder,
// plus helpers for JSON calls over raw loopback HTTP. Shared by the conformance and client
// tests.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "testing/raw_http.h"
#include "testing/subprocess.h"
#include "testing/test_paths.h"

namespace abgate::testing {

struct ApiReply {
  int status = 0;
  boost::json::value json;
  std::string body;
  std::map<std::string, std::string> headers;
  std::string Code() const {
    if (!json.is_object()) return "";
    auto* c = json.as_object().if_contains("error_code");
    return c && c->is_string() ? std::string(c->as_string()) : "";
  }
  std::string Message() const {
    if (!json.is_object()) return "";
    auto* c = json.as_object().if_contains("message");
    return c && c->is_string() ? std::string(c->as_string()) : "";
  }
  const boost::json::value& operator[](std::string_view key) const { return json.as_object().at(key); }
};

class RegistryFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("abgate-reg-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    Start();
  }
  void TearDown() override {
    Stop();
    std::filesystem::remove_all(dir_);
  }

  void Start(std::vector<std::string> extra_args = {}, std::vector<std::string> env = {}) {
    std::vector<std::string> argv = {ABGATE_BINARY, "registry", "--store", "sqlite:" + (dir_ / "registry.db").string(),
                                     "--artifacts", (dir_ / "artifacts").string()};
    if (std::find(extra_args.begin(), extra_args.end(), "--port") == extra_args.end()) {
      argv.insert(argv.end(), {"--port", "0"});
    }
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    process_ = std::make_unique<Subprocess>(argv, env);
    const std::string line = process_->ReadStdoutLine(10000);
    const size_t colon = line.rfind(':');
    ASSERT_NE(colon, std::string::npos) << "no readiness line: " << line;
    port_ = static_cast<uint16_t>(std::stoi(line.substr(colon + 1)));
  }
  void Stop() {
    if (!process_) return;
    process_->Signal(SIGTERM);
    EXPECT_EQ(process_->Wait(10000), 0) << process_->stderr_text();
    process_.reset();
  }
  std::string uri() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // One call under /api/2.0/mlflow/. GET passes `query` in the target.
  ApiReply Api(std::string_view method, std::string_view path, std::string_view body = "",
               std::string_view content_type = "application/json", std::string_view extra_headers = "") {
    return Raw(method, "/api/2.0/mlflow/" + std::string(path), body, content_type, extra_headers);
  }
  ApiReply Raw(std::string_view method, const std::string& target, std::string_view body = "",
               std::string_view content_type = "application/json", std::string_view extra_headers = "") {
    RawResponse r = RawRequest(port_, method, target, body, method == "GET" ? "" : content_type, extra_headers);
    ApiReply out;
    out.status = r.status;
    out.body = r.body;
    out.headers = r.headers;
    boost::system::error_code ec;
    out.json = boost::json::parse(r.body, ec);
    return out;
  }

  std::filesystem::path dir_;
  std::unique_ptr<Subprocess> process_;
  uint16_t port_ = 0;
};

}  // namespace abgate::testing
